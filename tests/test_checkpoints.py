"""`castroom serve` copies its write-ahead log back into the database file in a thread,
never in a commit on its event loop: a checkpoint fsyncs both files, which with other
processes writing to the disk can take seconds. Held here (the checkpoint waits on an
event), the server goes on committing and answering meanwhile."""

from __future__ import annotations

import threading
from pathlib import Path

import httpx
import pytest
from sync_helpers import PATIENCE, make_token, wait_until

from castroom.core import model
from castroom.core.storage import PAGE_SIZE, Checkpointer
from castroom.core.workspace import DB_NAME, Workspace
from castroom.sync.server import ServerOptions, ServerThread

#: Updates pushed, each a talent with NOTE_BYTES of notes: some 2,000 pages of log, twice
#: what makes SQLite checkpoint in a commit.
UPDATES = 20
NOTE_BYTES = 180_000


def _updates(tmp_path: Path, path: Path) -> tuple[str, list[bytes]]:
    """A production on the server's workspace, and a peer's updates adding talents."""
    with Workspace.open(path, member="casting") as ws:
        production = ws.create_production("Checkpoints")
        pid = str(production.id)
        state = production.doc.encode_update()
    updates = []
    with Workspace.open(tmp_path / "peer", member="peer") as peer:
        copy, _ = peer.adopt(pid, state, origin="bundle")
        for n in range(UPDATES):
            before = copy.doc.state_vector()
            notes = (f"{n:04d} callback notes " * (NOTE_BYTES // 20))[:NOTE_BYTES]
            copy.doc.add(model.Talent, name=f"Talent {n}", notes=notes)
            updates.append(copy.doc.encode_update(before))
    return pid, updates


def test_a_checkpoint_under_way_holds_no_commit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "server"
    pid, updates = _updates(tmp_path, path)
    token = make_token(path, "write")
    entered, release = threading.Event(), threading.Event()
    done: list[tuple[int, int]] = []
    real = Checkpointer.run

    def held(self: Checkpointer) -> tuple[int, int]:
        entered.set()
        assert release.wait(2 * PATIENCE), "the test never let the checkpoint go"
        done.append(real(self))
        return done[-1]

    monkeypatch.setattr(Checkpointer, "run", held)
    auth = {"Authorization": f"Bearer {token}"}
    wal = path / f"{DB_NAME}-wal"
    try:
        with ServerThread(path, options=ServerOptions(checkpoint_every=0.05)) as server:
            push = f"{server.url}/sync/{pid}/push"
            assert (
                httpx.post(push, content=updates[0], headers=auth, timeout=PATIENCE).status_code
                == 200
            )
            assert wait_until(entered.is_set)
            # The checkpoint is under way (held): every push is still committed and
            # answered, and /health with them.
            for update in updates[1:]:
                answer = httpx.post(push, content=update, headers=auth, timeout=PATIENCE)
                assert answer.status_code == 200, answer.text
                assert answer.json()["changed"] == 1
            assert httpx.get(f"{server.url}/health", timeout=PATIENCE).status_code == 200
            # No commit checkpointed meanwhile: SQLite's own would keep the log near
            # 1,000 pages; it holds every push.
            assert wal.stat().st_size > 1500 * PAGE_SIZE
            release.set()
            assert wait_until(lambda: done)
            log, copied = done[0]
            assert log > 1500
            assert copied == log  # passive, and nothing read meanwhile: all of it
    finally:
        release.set()
    with Workspace.open(path) as ws:
        talents = ws.production(pid).doc.all(model.Talent)
        assert len(talents) == UPDATES


def test_no_checkpoint_thread_when_sqlite_keeps_its_own(tmp_path: Path) -> None:
    """``checkpoint_every = 0``: SQLite checkpoints in the commits, as any process."""
    path = tmp_path / "server"
    pid, updates = _updates(tmp_path, path)
    token = make_token(path, "write")
    with ServerThread(path, options=ServerOptions(checkpoint_every=0)) as server:
        for update in updates:
            answer = httpx.post(
                f"{server.url}/sync/{pid}/push",
                content=update,
                headers={"Authorization": f"Bearer {token}"},
                timeout=PATIENCE,
            )
            assert answer.status_code == 200
        names = {t.name for t in threading.enumerate()}
        assert not any(name.startswith("castroom-checkpoint") for name in names)
        # The commits checkpointed: the log never grew far past SQLite's 1,000 pages.
        assert (path / f"{DB_NAME}-wal").stat().st_size < 1500 * PAGE_SIZE
