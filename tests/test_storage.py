"""The SQLite store: append, load, compaction (folding, pending structs), history, kv."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from pycrdt import Doc, Map, Text

from castroom.core.errors import StorageError
from castroom.core.storage import Store, fold, merge_all
from castroom.core.workspace import Workspace


def edits(count: int, client_id: int = 1) -> tuple[Doc, list[bytes]]:
    doc = Doc(client_id=client_id)
    updates: list[bytes] = []
    doc.observe(lambda event: updates.append(event.update))
    talents = doc.get("talents", type=Map)
    talents["t1"] = Map({"name": "Ada", "notes": Text("")})
    for i in range(count):
        talents["t1"]["rate"] = i
        talents["t1"]["notes"].insert(0, "x")
    return doc, updates


def load_doc(blobs: list[bytes]) -> Doc:
    doc = Doc()
    for blob in blobs:
        doc.apply_update(blob)
    return doc


def test_wal_mode_and_schema(tmp_path: Path) -> None:
    store = Store(tmp_path / "c.db")
    assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    tables = {r[0] for r in store.db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"productions", "updates", "snapshots", "kv"} <= tables
    store.close()


def test_append_load_and_sequence(tmp_path: Path) -> None:
    store = Store(tmp_path / "c.db")
    source, updates = edits(5)
    seqs = [store.append("P", u, member="m", device="d", origin="local") for u in updates]
    assert seqs == sorted(seqs) and None not in seqs
    blobs, last = store.load("P")
    assert last == seqs[-1] and blobs == updates
    tail, last2 = store.load("P", after=seqs[2])
    assert tail == updates[3:] and last2 == last
    assert load_doc(blobs).get_update() == source.get_update()
    assert store.load("other") == ([], 0)


def test_dedupe_keeps_one_copy_of_peer_updates(tmp_path: Path) -> None:
    store = Store(tmp_path / "c.db")
    _, updates = edits(1)
    assert store.append("P", updates[0], member="", device="peer", origin="sync", dedupe=True)
    assert (
        store.append("P", updates[0], member="", device="peer", origin="sync", dedupe=True) is None
    )
    assert len(store.load("P")[0]) == 1


def test_compaction_folds_and_keeps_history(tmp_path: Path) -> None:
    store = Store(tmp_path / "c.db")
    source, updates = edits(200)
    for u in updates:
        store.append(
            "P", u, member="ana", device="d1", origin="local", changes={("talents", "t1"): {"rate"}}
        )
    folded, size = store.compact("P")
    assert folded == len(updates) and size > 0
    blobs, _ = store.load("P")
    assert len(blobs) == 1
    assert (
        load_doc(blobs).get("talents", type=Map).to_py() == source.get("talents", type=Map).to_py()
    )
    assert len(store.history("P", limit=1000)) == len(updates)  # who/what/when stay
    assert store.history("P", limit=1)[0].member == "ana"
    # The folded snapshot drops overwritten content: smaller than the log it replaces.
    assert size < sum(len(u) for u in updates)
    assert store.compact("P") == (0, size)  # nothing new: nothing to do
    snap, tail = store.log_bytes("P")
    assert snap == size and tail == 0
    # Later updates go after the snapshot and load on top of it.
    more = Doc(client_id=9)
    more.apply_update(blobs[0])
    more.get("talents", type=Map)["t1"]["hair"] = "red"
    store.append("P", more.get_update(source.get_state()), member="b", device="d2", origin="local")
    blobs, _ = store.load("P")
    assert len(blobs) == 2 and load_doc(blobs).get("talents", type=Map)["t1"]["hair"] == "red"
    store.compact("P")
    assert load_doc(store.load("P")[0]).get("talents", type=Map)["t1"]["hair"] == "red"


def test_fold_keeps_structs_still_waiting_for_a_dependency() -> None:
    # A peer's update that depends on one we never received: a Doc would drop it from
    # its own encoding; the fold must keep it, so it integrates once the gap is filled.
    base = Doc(client_id=1)
    base.get("talents", type=Map)["t1"] = Map({"name": "Ada", "notes": Text("")})
    first = base.get_update()
    state = base.get_state()
    base.get("talents", type=Map)["t1"]["notes"].insert(0, "hello")
    gap = base.get_update(state)
    peer = Doc(client_id=2)
    peer.apply_update(base.get_update())
    state = peer.get_state()
    peer.get("talents", type=Map)["t1"]["notes"].insert(5, " world")  # origin: in `gap`
    dependent = peer.get_update(state)
    snapshot = fold([first, dependent])  # `gap` is missing: `dependent` must wait
    assert str(load_doc([snapshot]).get("talents", type=Map)["t1"]["notes"]) == ""
    healed = load_doc([snapshot, gap]).get("talents", type=Map)["t1"]
    assert str(healed["notes"]) == "hello world"
    # A snapshot made by a Doc's own encoding would have lost " world" for good.
    lossy = load_doc([first, dependent]).get_update()
    assert str(load_doc([lossy, gap]).get("talents", type=Map)["t1"]["notes"]) == "hello"


def test_fold_keeps_deletions_of_items_not_yet_received() -> None:
    a = Doc(client_id=1)
    a.get("talents", type=Map)["t1"] = Map({"name": "Ada"})
    item = a.get_update()
    c = Doc(client_id=3)
    c.apply_update(item)
    del c.get("talents", type=Map)["t1"]
    deletion = c.get_update(a.get_state())
    snapshot = fold([deletion])  # we have the deletion but not the item yet
    assert "t1" not in load_doc([snapshot, item]).get("talents", type=Map)


# Found by the sync fuzz test: two well-formed updates from one client, the second a
# mutated copy of the first from clock 1 on. The first one's struct at clock 1 names a
# parent that does not exist, so it waits; the second supplies clock 1 with a real parent.
# Applied in order, PEER1 gets its fields; a merge_updates of the two keeps the waiting copy
# of clock 1 instead, and PEER1 loads empty.
REUSED_ID_LOG = [
    bytes.fromhex(
        "0105aefe9290b7aff80a0027010774616c656e7473055045455231012800aefe9290b7eff80a0002"
        "696401770550454552312800aefe9290b7aff80a00046e616d6501770b46726f6d20612070656572"
        "2700aefe9290b7aff80a00056e6f746573020400aefe9290b7aff80a030568656c6c6f00"
    ),
    bytes.fromhex(
        "0104aefe9290b7aff80a012800aefe9290b7aff80a0002696401770550454552312800aefe9290b7"
        "aff80a00046e616d6501770b46726f6d206120706465722700aefe9290b7aff80a00056e6f746573"
        "020400aefe9290b7aff80a030568656c6c6f00"
    ),
]


def test_fold_loads_as_the_log_was_applied_even_with_a_reused_struct_id() -> None:
    in_order = Doc()
    for blob in REUSED_ID_LOG:
        in_order.apply_update(blob)
    expected = in_order.get("talents", type=Map).to_py()
    assert expected == {"PEER1": {"id": "PEER1", "name": "From a pder", "notes": "hello"}}
    folded = Doc()
    folded.apply_update(fold(REUSED_ID_LOG))
    assert folded.get("talents", type=Map).to_py() == expected


def test_a_workspace_reopens_as_it_was_with_a_reused_struct_id(tmp_path: Path) -> None:
    with Workspace.open(tmp_path / "ws") as ws:
        production = ws.create_production("Tides")
        for blob in REUSED_ID_LOG:
            production.apply_update(blob, origin="sync", device="fuzz")
        live = production.doc.to_data()
        assert live["talents"]["PEER1"]["name"] == "From a pder"
        production_id = production.id
    with Workspace.open(tmp_path / "ws") as again:
        assert again.production(production_id).doc.to_data() == live
        again.production(production_id).compact()
    with Workspace.open(tmp_path / "ws") as again:
        assert again.production(production_id).doc.to_data() == live


def test_merge_all_tree_equals_flat_merge() -> None:
    source, updates = edits(100)
    merged = merge_all(list(updates), fan_in=4)
    assert load_doc([merged]).get_update() == source.get_update()


def test_history_filters_by_entity_and_is_newest_first(tmp_path: Path) -> None:
    store = Store(tmp_path / "c.db")
    _, updates = edits(3)
    store.append(
        "P", updates[0], member="a", device="d", origin="local", changes={("talents", "t1"): {"*"}}
    )
    store.append(
        "P", updates[1], member="b", device="d", origin="local", changes={("roles", "r1"): {"name"}}
    )
    store.append(
        "P",
        updates[2],
        member="c",
        device="d",
        origin="local",
        changes={("talents", "t1"): {"rate", "hair"}},
    )
    entries = store.history("P")
    assert [e.member for e in entries] == ["c", "b", "a"]
    assert entries[0].changes == [("talents", "t1", ["hair", "rate"])]
    assert [e.member for e in store.history("P", entity="t1")] == ["c", "a"]
    writers = store.last_writers("P", [("roles", "r1"), ("talents", "t1"), ("roles", "zz")])
    assert {k: e.member for k, e in writers.items()} == {
        ("roles", "r1"): "b",
        ("talents", "t1"): "c",
    }
    assert writers[("talents", "t1")].changes == [("talents", "t1", ["hair", "rate"])]


def test_productions_titles_and_kv(tmp_path: Path) -> None:
    store = Store(tmp_path / "c.db")
    store.add_production("P1", "First")
    store.add_production("P2", "Second")
    store.add_production("P1", "First, renamed")
    assert store.productions() == [("P1", "First, renamed"), ("P2", "Second")]
    assert store.get_kv("x") is None
    store.set_kv("x", "1")
    store.set_kv("x", "2")
    assert store.get_kv("x") == "2"


def test_data_version_moves_when_another_connection_commits(tmp_path: Path) -> None:
    a, b = Store(tmp_path / "c.db"), Store(tmp_path / "c.db")
    before = a.data_version()
    a.set_kv("mine", "1")
    assert a.data_version() == before  # our own commits do not count
    b.set_kv("theirs", "1")
    assert a.data_version() != before


def test_a_failed_write_transaction_rolls_back(tmp_path: Path) -> None:
    store = Store(tmp_path / "c.db")
    with pytest.raises(RuntimeError), store.write() as db:
        db.execute("INSERT INTO kv (key, value) VALUES ('k', 'v')")
        raise RuntimeError("boom")
    assert store.get_kv("k") is None


def test_a_file_that_is_not_a_database_is_a_storage_error(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StorageError):
        Store(path)


def test_concurrent_writers_queue_instead_of_failing(tmp_path: Path) -> None:
    a, b = Store(tmp_path / "c.db"), Store(tmp_path / "c.db")
    with a.write():
        # b would wait for the lock (busy timeout); prove the lock is held, then release.
        other = sqlite3.connect(tmp_path / "c.db", timeout=0.05)
        with pytest.raises(sqlite3.OperationalError):
            other.execute("BEGIN IMMEDIATE")
        other.close()
    b.set_kv("after", "1")
    assert a.get_kv("after") == "1"


def test_history_for_one_entity_is_exact(tmp_path: Path) -> None:
    store = Store(tmp_path / "c.db")
    _, updates = edits(3)
    store.append(
        "P",
        updates[0],
        member="a",
        device="d",
        origin="local",
        changes={("talents", "t_1"): {"*"}, ("talents", "other"): {"*"}},
    )
    store.append(
        "P",
        updates[1],
        member="b",
        device="d",
        origin="local",
        changes={("talents", "tX1"): {"name"}},
    )  # "_" must not match "X"
    store.append(
        "P",
        updates[2],
        member="c",
        device="d",
        origin="local",
        changes={("talents", "t_1"): {"rate"}},
    )
    entries = store.history("P", entity="t_1")
    assert [e.member for e in entries] == ["c", "a"]
    assert entries[1].changes == [("talents", "t_1", ["*"])]  # not the other entity
    assert [e.member for e in store.history("P", entity="t_1", limit=1)] == ["c"]
    assert store.history("P", entity="t%") == []
