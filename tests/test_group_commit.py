"""Group commit (Workspace.batch / Store.batch): many peers' updates stored in one SQLite
transaction, durable together when the block ends, and nothing of them when it fails."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from pycrdt import Doc, Map

from castroom.core import model
from castroom.core.errors import StorageError
from castroom.core.workspace import DB_NAME, Workspace


def _peer_update(talent_id: str, name: str) -> bytes:
    doc = Doc()
    doc.get("talents", type=Map)[talent_id] = Map({"id": talent_id, "name": name})
    return doc.get_update()


def _committed(path: Path) -> int:
    """Log entries another connection sees (only what was committed)."""
    other = sqlite3.connect(path / DB_NAME)
    try:
        return int(other.execute("SELECT COUNT(*) FROM updates").fetchone()[0])
    finally:
        other.close()


@pytest.fixture
def ws(tmp_path: Path):
    with Workspace.open(tmp_path / "ws", member="casting") as workspace:
        workspace.create_production("Group")
        yield workspace


def test_a_batch_is_durable_only_when_it_ends_and_listeners_hear_after(ws) -> None:
    production = ws.production()
    heard: list[set[tuple[str, str]]] = []
    production.doc.on_change.append(lambda changes, origin: heard.append(set(changes)))
    before = _committed(ws.path)
    with ws.batch():
        for i in range(3):
            production.apply_update(_peer_update(f"g{i}", f"Peer {i}"), origin="sync", device="d")
        # In memory at once; not yet committed, and plugins have not been told.
        assert {t.id for t in production.doc.all(model.Talent)} == {"g0", "g1", "g2"}
        assert _committed(ws.path) == before
        assert heard == []
    assert _committed(ws.path) == before + 3  # one row per update, one commit for all
    assert heard == [{("talents", f"g{i}")} for i in range(3)]
    assert [e.device for e in production.history(limit=3)] == ["d", "d", "d"]


def test_a_failed_batch_stores_nothing_and_the_document_is_rebuilt(ws) -> None:
    production = ws.production()
    production.doc.add(model.Talent, id="kept", name="Stored Before")
    heard: list[object] = []
    production.doc.on_change.append(lambda changes, origin: heard.append(changes))
    before = _committed(ws.path)
    with pytest.raises(RuntimeError), ws.batch():
        production.apply_update(_peer_update("lost", "Never Stored"), origin="sync", device="d")
        raise RuntimeError("the commit never happens")
    assert {t.id for t in production.doc.all(model.Talent)} == {"kept"}
    assert _committed(ws.path) == before
    assert heard == []
    # The production is usable afterwards, and the peer's update merges again.
    production.apply_update(_peer_update("lost", "Stored Now"), origin="sync", device="d")
    with Workspace.open(ws.path, create=False) as fresh:
        assert {t.name for t in fresh.production().doc.all(model.Talent)} == {
            "Stored Before",
            "Stored Now",
        }


def test_a_batch_that_only_reads_takes_no_lock(ws) -> None:
    production = ws.production()
    with ws.batch():
        production.refresh()
        assert not ws.store.db.in_transaction
        # Another process may write meanwhile.
        with Workspace.open(ws.path, create=False) as other:
            other.production().doc.add(model.Talent, name="Written Elsewhere")
    assert "Written Elsewhere" in {t.name for t in production.doc.all(model.Talent)}


def test_a_failing_write_inside_a_batch_undoes_only_itself(ws) -> None:
    store = ws.store
    with store.batch():
        store.set_kv("first", "1")
        with pytest.raises(StorageError), store.write() as db:
            db.execute("INSERT INTO kv (key, value) VALUES ('second', '2')")
            db.execute("INSERT INTO no_such_table VALUES (1)")
        store.set_kv("third", "3")
    assert (store.get_kv("first"), store.get_kv("second"), store.get_kv("third")) == (
        "1",
        None,
        "3",
    )
    assert not store.db.in_transaction


def test_a_failing_first_write_of_a_batch_undoes_only_itself(ws) -> None:
    """The batch's first write begins its transaction without a savepoint: failing, it
    rolls all of it back (only itself), lets the write lock go, and the batch goes on,
    seeing what another process commits meanwhile."""
    store = ws.store
    with store.batch():
        with pytest.raises(StorageError), store.write() as db:
            db.execute("INSERT INTO kv (key, value) VALUES ('first', '1')")
            db.execute("INSERT INTO no_such_table VALUES (1)")
        assert not store.db.in_transaction
        version = store.data_version()
        with Workspace.open(ws.path, create=False) as other:
            other.store.set_kv("elsewhere", "e")
        assert store.data_version() != version  # not the failed write's, held on to
        store.set_kv("second", "2")
    assert [store.get_kv(k) for k in ("first", "elsewhere", "second")] == [None, "e", "2"]
    assert not store.db.in_transaction


def test_a_refused_write_in_a_batch_is_one_error_and_the_rest_still_serves(ws) -> None:
    """A store that refuses writes (here SQLite's query_only; on a read-only mount the
    same SQLITE_READONLY): each update of the batch is one clear error, merged nowhere,
    and reads in the same batch still work."""
    production = ws.production()
    before = _committed(ws.path)
    ws.store.db.execute("PRAGMA query_only = ON")
    try:
        with ws.batch():
            for i in range(2):
                with pytest.raises(StorageError, match=r"read-only|readonly"):
                    production.apply_update(
                        _peer_update(f"r{i}", "Nope"), origin="sync", device="d"
                    )
                assert production.doc.state_vector()  # still readable
        assert production.doc.all(model.Talent) == []
    finally:
        ws.store.db.execute("PRAGMA query_only = OFF")
    assert _committed(ws.path) == before
