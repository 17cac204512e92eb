"""Sync tokens: hashed at rest, scoped, revocable, shared by every process on a workspace."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import pytest

from castroom.core.errors import CastroomError, NotFound
from castroom.core.workspace import Workspace
from castroom.sync.auth import AccessDenied, LiveTokens, TokenStore, parse_duration


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


def test_tokens_may_expire(tokens: TokenStore) -> None:
    info, token = tokens.create("write", expires_in=3600)
    assert info.expires is not None and info.expires - info.created == pytest.approx(3600)
    assert tokens.verify(token) == info
    _, stale = tokens.create("write", expires_in=0.001)
    time.sleep(0.01)
    assert tokens.verify(stale) is None
    with pytest.raises(AccessDenied, match="expired"):
        tokens.authorize(stale, None, write=False)
    assert [t.expired() for t in tokens.list()] == [False, True]


@pytest.mark.parametrize(
    ("text", "seconds"), [("30d", 30 * 86400), ("12h", 43200), ("90m", 5400), ("2W", 14 * 86400)]
)
def test_durations(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["", "30", "d", "0d", "30s", "1.5d", "-3d", "30 days"])
def test_bad_durations_say_how_to_write_one(bad: str) -> None:
    with pytest.raises(CastroomError, match="like 30d"):
        parse_duration(bad)


def test_a_database_from_before_expiry_still_opens(tmp_path: Path) -> None:
    """An older workspace's token table has no ``expires`` column: it is added on open."""
    path = tmp_path / "old"
    with Workspace.open(path) as ws:
        ws.store.db.execute("DROP TABLE sync_tokens")
        ws.store.db.execute(
            "CREATE TABLE sync_tokens (id TEXT PRIMARY KEY, name TEXT NOT NULL, scope TEXT"
            " NOT NULL, production TEXT, hash BLOB NOT NULL, created REAL NOT NULL,"
            " revoked REAL)"
        )
        ws.store.db.execute(
            "INSERT INTO sync_tokens VALUES ('abc', 'old', 'read', NULL, x'00', 1.0, NULL)"
        )
    with Workspace.open(path, create=False) as ws:
        (old,) = TokenStore(ws.store).list()
        assert (old.id, old.expires) == ("abc", None)
        _, token = TokenStore(ws.store).create("read", expires_in=60)
        assert TokenStore(ws.store).verify(token) is not None


def test_live_tokens_notice_a_revocation_by_another_process(tmp_path: Path) -> None:
    path = tmp_path / "ws"
    with Workspace.open(path) as server, Workspace.open(path, create=False) as cli:
        info, token = TokenStore(cli.store).create("write")
        live = LiveTokens(TokenStore(server.store))
        assert live.still_valid(token)
        TokenStore(cli.store).revoke(info.id)
        assert not live.still_valid(token)
        assert not live.still_valid("crt_nope_nope")
