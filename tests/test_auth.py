"""Sync tokens: hashed at rest, scoped, revocable, shared by every process on a workspace."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from castroom.core.errors import NotFound
from castroom.core.workspace import Workspace
from castroom.sync.auth import AccessDenied, TokenStore


@pytest.fixture
def tokens(workspace: Workspace) -> TokenStore:
    return TokenStore(workspace.store)


def test_create_verify_and_store_only_the_hash(tokens: TokenStore, workspace: Workspace) -> None:
    info, token = tokens.create("write", name="laptop")
    assert token.startswith(f"crt_{info.id}_")
    assert tokens.verify(token) == info
    rows = workspace.store.db.execute("SELECT hash FROM sync_tokens").fetchall()
    secret = token.split("_", 2)[2]
    assert rows == [(hashlib.sha256(secret.encode()).digest(),)]
    raw = (workspace.path / "castroom.db").read_bytes()
    assert secret.encode() not in raw


@pytest.mark.parametrize("bad", ["", "nonsense", "crt_", "crt_abc", "crt_abc_def"])
def test_garbage_tokens_do_not_verify(tokens: TokenStore, bad: str) -> None:
    tokens.create("read")
    assert tokens.verify(bad) is None


def test_wrong_secret_for_real_id(tokens: TokenStore) -> None:
    info, token = tokens.create("read")
    assert tokens.verify(f"crt_{info.id}_{'x' * 43}") is None
    assert tokens.verify(token + "x") is None


def test_scopes_and_productions(tokens: TokenStore) -> None:
    _, reader = tokens.create("read")
    _, writer = tokens.create("write", production="p1")
    assert tokens.authorize(reader, "p1", write=False).scope == "read"
    with pytest.raises(AccessDenied) as read_writes:
        tokens.authorize(reader, "p1", write=True)
    assert read_writes.value.status == 403 and "read-only" in str(read_writes.value)
    assert tokens.authorize(writer, "p1", write=True).production == "p1"
    with pytest.raises(AccessDenied) as other:
        tokens.authorize(writer, "p2", write=False)
    assert other.value.status == 403
    for missing in (None, ""):
        with pytest.raises(AccessDenied) as none:
            tokens.authorize(missing, "p1", write=False)
        assert none.value.status == 401
    with pytest.raises(AccessDenied) as wrong:
        tokens.authorize("crt_nope_nope", "p1", write=False)
    assert wrong.value.status == 401


def test_revoke_by_prefix_seen_by_another_process(tokens: TokenStore, tmp_path: Path) -> None:
    info, token = tokens.create("write", name="old laptop")
    other = Workspace.open(tmp_path / "ws")
    try:
        assert TokenStore(other.store).verify(token) is not None
        revoked = tokens.revoke(info.id[:6])
        assert revoked.revoked is not None
        assert TokenStore(other.store).verify(token) is None
        assert tokens.revoke(info.id).revoked == revoked.revoked  # idempotent
    finally:
        other.close()
    with pytest.raises(NotFound):
        tokens.revoke("zzzz")
    assert [t.id for t in tokens.list()] == [info.id]


def test_bad_scope_refused(tokens: TokenStore) -> None:
    with pytest.raises(Exception, match="read or write"):
        tokens.create("admin")
