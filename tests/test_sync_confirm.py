"""A one-shot sync never says "up to date" when it is not: through the stock relay with
a lazily loading persistence (tests/interop/relay.mjs --lazy), the client waits for the
relay's copy and confirms state vectors both ways; a relay that never sends it fails the
command, naming what is missing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sync_helpers import NodeRelay, needs_node_peers

from castroom.core import model
from castroom.core.workspace import Workspace
from castroom.sync import confirm
from castroom.sync.client import sync_websocket


def test_gap_in_words() -> None:
    # State vectors: varUint count, then (client, clock) pairs.
    ours, theirs = bytes([2, 1, 5, 2, 3]), bytes([1, 1, 2])
    assert confirm.missing(ours, theirs) == {1: 3, 2: 3}
    assert confirm.gap(ours, ours) == ""
    assert confirm.gap(ours, theirs) == "the peer lacks 6 edits by 2 writers made or received here"
    assert confirm.gap(theirs, ours) == "this workspace lacks 6 edits by 2 writers the peer holds"
    assert confirm.gap(ours, theirs, ours_may_lead=True) == ""
    assert confirm.maybe_loading(ours, b"\x00") and not confirm.maybe_loading(theirs, ours)


@pytest.fixture
def published(tmp_path: Path) -> Iterator[tuple[Path, Path, str]]:
    a_path, b_path = tmp_path / "a", tmp_path / "b"
    with Workspace.open(a_path, member="casting") as ws:
        production = ws.create_production("Lazy River")
        production.doc.add(model.Talent, name="Ada Quinn")
        assert production.id
        yield a_path, b_path, production.id


@needs_node_peers
@pytest.mark.parametrize("lazy_ms", ["250", "0"])
def test_lazy_relay_is_waited_for(published, lazy_ms: str) -> None:
    a_path, b_path, pid = published
    with NodeRelay(0, "--lazy", lazy_ms) as relay:
        url = f"{relay.url}/sync"
        for path in (a_path, b_path):  # both hold the production; the relay stores it
            with Workspace.open(path) as ws:
                sync_websocket(ws, url, production=pid)
        with Workspace.open(a_path) as a:
            edit = a.production(pid).doc.add(model.Talent, name="Edit From A")
            sync_websocket(a, url, production=pid)
        with Workspace.open(b_path) as b:
            b.production(pid).doc.add(model.Talent, name="Offline On B")
            lines: list[str] = []
            sync_websocket(b, url, production=pid, echo=lines.append)
            # The relay reopened the room empty and loaded A's edit later: B waited for it.
            assert b.production(pid).doc.find(model.Talent, edit.id) is not None
            assert not any("up to date" in line for line in lines), lines


@needs_node_peers
def test_relay_that_loses_writes_fails_the_sync(published, tmp_path: Path) -> None:
    """The relay takes the handshake but loses every update: the command says what the
    relay lacks and exits non-zero (it used to say "up to date")."""
    import subprocess
    import sys

    a_path, _, pid = published
    castroom = Path(sys.executable).with_name("castroom")
    with NodeRelay(0, "--drop-writes", "1") as relay:
        result = subprocess.run(
            [str(castroom), "-w", str(a_path), "sync", f"{relay.url}/sync", "--production", pid],
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert result.returncode != 0
    assert "not in sync with" in result.stderr
    assert "the peer lacks" in result.stderr
    assert "up to date" not in result.stdout
