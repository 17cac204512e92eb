"""The SQLite store: append, load, compaction (folding, pending structs), history, kv."""

from __future__ import annotations

import hashlib
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pycrdt import Doc, Map, Text
from sync_helpers import copy_workspace

from castroom.core import storage
from castroom.core.errors import StorageError
from castroom.core.storage import STORE_VERSION, Store, fold, merge_all
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


def log_rates(
    store: Store, production: str, updates: list[bytes], entity: str = "t1", **author: str
) -> None:
    """Log each update as one local edit of ``entity``'s rate, with its values."""
    who = {"member": "ana", "device": "d1", **author}
    for i, update in enumerate(updates):
        store.append(
            production,
            update,
            origin="local",
            changes={("talents", entity): {"rate"}},
            values={("talents", entity): {"rate": [i, i + 1]}},
            **who,
        )


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


def test_a_merge_row_is_exact_only_right_after_the_row_its_document_held(
    tmp_path: Path,
) -> None:
    store = Store(tmp_path / "c.db")
    _, updates = edits(5)
    peer = {"member": "", "device": "peer", "origin": "sync"}
    first = store.append("P", updates[0], member="m", device="d", origin="local")
    assert first is not None
    held = store.append("P", updates[1], **peer, exact_after=first)  # right after it
    store.append("Q", updates[2], member="m", device="d", origin="local")  # another's
    after = store.append("P", updates[3], **peer, exact_after=held)  # Q's row between
    late = store.append("P", updates[4], **peer, exact_after=held)  # P's row between
    assert None not in (held, after, late)
    assert store.exact_rows("P", [first, held, after, late]) == {held, after}
    # Compaction folds a run of rows alike into its last: only rows alike in being
    # exact too, or the inexact one here would hide behind the exact ones after it.
    run = []
    for i, update in enumerate(edits(2, client_id=2)[1][:4]):
        exact_after = store.position("P") if i != 1 else None
        notes = {("talents", "t1"): {"notes"}}
        run.append(store.append("P", update, **peer, changes=notes, exact_after=exact_after))
    assert store.exact_rows("P", run) == {run[0], run[2], run[3]}
    store.compact("P")
    assert store.logged_after("P", late) == [run[1], run[3]]  # each folded into a later
    assert store.exact_rows("P", [run[1], run[3]]) == {run[3]}
    store.close()


def test_compaction_folds_and_keeps_history(tmp_path: Path) -> None:
    store = Store(tmp_path / "c.db")
    source, updates = edits(200)
    log_rates(store, "P", updates)
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


def _other_process_reads(database: Path) -> str:
    """``kv['x']`` as a fresh process sees it (it opens the database, then closes it)."""
    read = (
        "import sqlite3, sys; print(sqlite3.connect(sys.argv[1]).execute("
        + repr("SELECT value FROM kv WHERE key = 'x'")
        + ").fetchone()[0])"
    )
    done = subprocess.run(
        [sys.executable, "-c", read, str(database)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_copying_a_live_workspace_leaves_its_connections_their_files(tmp_path: Path) -> None:
    """The tests copy workspaces a server of theirs has open. A plain file copy drops this
    process's SQLite locks (POSIX locks go with any closed descriptor), so the next process
    thinks it is alone: it deletes the -wal and -shm as it closes (our later commits are
    lost) or truncates the -shm we have mapped (a SIGBUS). ``copy_workspace`` copies the
    database through SQLite instead."""
    with Workspace.open(tmp_path / "live", member="tester") as ws:
        ws.store.set_kv("x", "1")
        copy = copy_workspace(ws.path, tmp_path / "copy")
        assert _other_process_reads(ws.store.path) == "1"
        assert Path(f"{ws.store.path}-shm").exists()  # still there for this connection
        ws.store.set_kv("x", "2")
        assert _other_process_reads(ws.store.path) == "2"
    assert _other_process_reads(copy / "castroom.db") == "1"
    assert (copy / "config.toml").read_text() == (ws.path / "config.toml").read_text()


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


# -- the file format: names stored once, migration, reclaiming space ---------------------------

#: Format 0, as castroom wrote it before format 2 (every string and JSON in every row).
FORMAT_0 = """
CREATE TABLE productions (id TEXT PRIMARY KEY, title TEXT NOT NULL, created REAL NOT NULL);
CREATE TABLE updates (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, production TEXT NOT NULL, ts REAL NOT NULL,
    member TEXT NOT NULL, device TEXT NOT NULL, origin TEXT NOT NULL, changes TEXT NOT NULL,
    size INTEGER NOT NULL, digest BLOB, data BLOB
);
CREATE INDEX updates_by_production ON updates (production, seq);
CREATE UNIQUE INDEX updates_digest ON updates (production, digest) WHERE digest IS NOT NULL;
CREATE TABLE snapshots (
    production TEXT PRIMARY KEY, upto INTEGER NOT NULL, ts REAL NOT NULL, data BLOB NOT NULL
);
CREATE TABLE kv (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE sync_tokens (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, scope TEXT NOT NULL, production TEXT,
    hash BLOB NOT NULL, created REAL NOT NULL, revoked REAL, expires REAL
);
CREATE TABLE attic (
    production TEXT NOT NULL, collection TEXT NOT NULL, entity TEXT NOT NULL,
    seq INTEGER NOT NULL, ts REAL NOT NULL, member TEXT NOT NULL, device TEXT NOT NULL,
    data TEXT NOT NULL, PRIMARY KEY (production, collection, entity, seq)
);
"""


def format_0_workspace(path: Path) -> tuple[Doc, list[tuple]]:
    """A workspace database in format 0: six updates, the first four compacted into a
    snapshot (their bytes gone, as format 0's compaction left them), the last from a peer
    with its digest; a token, a kv note, an attic entry. Returns the document and rows."""
    _, updates = edits(6)
    updates = updates[:6]
    source = load_doc(updates)
    path.mkdir(parents=True)
    db = sqlite3.connect(path / "castroom.db", isolation_level=None)
    db.executescript(FORMAT_0)
    db.execute("INSERT INTO productions VALUES ('P', 'Harbour Lights', 1.5)")
    rows = []
    for i, update in enumerate(updates):
        peer = i == len(updates) - 1
        changes = '[["talents","t1",["notes","rate"]]]' if i else '[["talents","t1",["*"]]]'
        row = (
            "P",
            1_700_000_000.0 + i,
            "noor" if peer else "ana",
            "LAPTOP" if peer else "d1",
            "sync" if peer else "local",
            changes,
            len(update),
            hashlib.blake2b(update, digest_size=16).digest() if peer else None,
            None if i < 4 else update,
        )
        db.execute(
            "INSERT INTO updates (production, ts, member, device, origin, changes, size,"
            " digest, data) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            row,
        )
        rows.append(row)
    db.execute("INSERT INTO snapshots VALUES ('P', 4, 1.0, ?)", (merge_all(updates[:4]),))
    db.execute("INSERT INTO kv VALUES ('production-deleted:P', '0')")
    db.execute(
        "INSERT INTO sync_tokens VALUES ('t', 'laptop', 'write', NULL, X'00', 1.0, NULL, 9.0)"
    )
    db.execute(
        "INSERT INTO attic VALUES ('P', 'talents', 't9', 3, 2.0, 'noor', 'LAPTOP', ?)",
        ('{"name":"Bo"}',),
    )
    db.execute("UPDATE sqlite_sequence SET seq = 40 WHERE name = 'updates'")  # rows gone before
    db.close()
    return source, rows


def test_a_format_0_store_migrates_with_nothing_lost(tmp_path: Path) -> None:
    source, rows = format_0_workspace(tmp_path / "ws")
    store = Store(tmp_path / "ws" / "castroom.db")
    assert store.db.execute("PRAGMA user_version").fetchone()[0] == STORE_VERSION
    assert store.db.execute("PRAGMA auto_vacuum").fetchone()[0] == 2  # incremental
    assert store.quarantined("P") == []  # the quarantine table is made too
    blobs, last = store.load("P")
    assert last == 6 and len(blobs) == 3  # the snapshot, then the two updates after it
    assert load_doc(blobs).get_update() == source.get_update()
    entries = store.history("P", limit=10)
    assert [(e.seq, e.ts, e.member, e.device, e.origin) for e in entries] == [
        (6 - i, r[1], r[2], r[3], r[4]) for i, r in enumerate(reversed(rows))
    ]
    assert entries[0].changes == [("talents", "t1", ["notes", "rate"])]
    assert entries[-1].changes == [("talents", "t1", ["*"])]
    assert store.log_bytes("P")[1] == sum(r[6] for r in rows[4:])
    # The peer's digest still dedupes a re-send; the token, note and attic are kept.
    assert store.append("P", rows[5][8], member="", device="x", origin="sync", dedupe=True) is None
    assert [t.name for t in store.tokens()] == ["laptop"]
    assert store.get_kv("production-deleted:P") == "0"
    assert [(a.entity, a.data) for a in store.attic("P")] == [("t9", {"name": "Bo"})]
    # Sequence numbers go on from format 0's counter, never reusing one.
    assert store.append("P", b"\x00\x00", member="m", device="d", origin="local") == 41
    store.close()
    with Workspace.open(tmp_path / "ws") as ws:  # and a workspace opens it as before
        assert ws.production("P").doc.to_data()["talents"]["t1"]["rate"] == 2


def test_a_store_from_a_newer_castroom_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    Store(path).close()
    with sqlite3.connect(path) as db:
        db.execute(f"PRAGMA user_version = {STORE_VERSION + 1}")
    before = path.read_bytes()
    with pytest.raises(StorageError, match="newer castroom"):
        Store(path)
    assert path.read_bytes() == before


def test_rows_name_each_string_once(tmp_path: Path) -> None:
    """The ids and names a row refers to are stored once, in ``names``, however many
    rows refer to them."""
    store = Store(tmp_path / "c.db")
    _, updates = edits(50)
    entity = "01JZ6Q3XKD8M4W0V7C2N5B9TRH"
    author = {"member": "Ana Lima", "device": "0f8c6a2e-DEVICE-1b4d"}
    log_rates(store, "01JZ6Q3XKD8M4W0V7C2N5PRODN", updates, entity, **author)
    names = [r[0] for r in store.db.execute("SELECT name FROM names")]
    joined = "Ana Lima\x1f0f8c6a2e-DEVICE-1b4d\x1flocal"
    assert sorted(names) == sorted(
        ["01JZ6Q3XKD8M4W0V7C2N5PRODN", joined, "talents", entity, "rate"]
    )
    raw = b"".join(r[0] for r in store.db.execute("SELECT changes FROM updates"))
    assert entity.encode() not in raw and b"Ana Lima" not in raw
    [entry] = store.history("01JZ6Q3XKD8M4W0V7C2N5PRODN", limit=1)
    assert (entry.member, entry.device, entry.origin) == (
        "Ana Lima",
        "0f8c6a2e-DEVICE-1b4d",
        "local",
    )
    last = len(updates) - 1
    assert entry.values == {("talents", entity): {"rate": [last, last + 1]}}


def test_compaction_gives_the_space_back_and_folds_typing_into_one_row(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    store = Store(path)
    _, updates = edits(300)
    for i, update in enumerate(updates):
        typed = i % 3 != 0  # two keystrokes in the note, then a rate with its values
        store.append(
            "P",
            update,
            member="ana",
            device="d1",
            origin="local",
            changes={("talents", "t1"): {"notes"} if typed else {"rate"}},
            values={} if typed else {("talents", "t1"): {"rate": [i, i + 1]}},
        )
    store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    before = path.stat().st_size
    store.compact("P")
    assert path.stat().st_size < before  # the file shrank (incremental vacuum)
    assert store.db.execute("PRAGMA freelist_count").fetchone()[0] == 0
    entries = store.history("P", limit=1000)
    rates = [e for e in entries if e.values]
    assert len(rates) == len(updates[::3])  # every edit with values to show stays
    typing = [e for e in entries if e.changes[0][2] == ["notes"]]
    assert len(typing) < 10  # the keystrokes between them: a row per run, not 400
    store.close()


def test_compaction_gives_way_to_another_process_compacting_meanwhile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fold runs outside the write lock; if another process swapped a snapshot in
    meanwhile, this compaction changes nothing (the other one's snapshot stands)."""
    path = tmp_path / "c.db"
    store, other = Store(path), Store(path)
    source, updates = edits(20)
    log_rates(store, "P", updates)
    real_fold = storage.fold

    def racing_fold(blobs: list[bytes]) -> bytes:
        monkeypatch.setattr(storage, "fold", real_fold)
        assert other.compact("P")[0] == len(updates)  # the other process, mid-way
        return real_fold(blobs)

    monkeypatch.setattr(storage, "fold", racing_fold)
    assert store.compact("P")[0] == 0
    blobs, _ = store.load("P")
    assert len(blobs) == 1 and load_doc(blobs).get_update() == source.get_update()
    assert len(store.history("P", limit=100)) == len(updates)


def test_a_large_merges_changes_stored_in_slices_read_back_as_one_append(tmp_path: Path) -> None:
    """The server stores a large merge's names in slices (Store.intern), encodes its
    changes apart (Store.encode_known) and appends the row: the history reads exactly as
    for an append that did it all at once, and names already stored are not stored twice."""
    changes = {("talents", f"t{i}"): {"name", "rate"} for i in range(2_000)}
    values = {("talents", "t1"): {"rate": [1, 2]}}
    whole, sliced = Store(tmp_path / "whole.db"), Store(tmp_path / "sliced.db")
    whole.append(
        "P", b"\x00\x00", member="m", device="d", origin="sync", changes=changes, values=values
    )
    names = sliced.names_unknown(changes, values)
    assert len(names) == 2_000 + 3  # the ids, the collection and both fields
    for start in range(0, len(names), storage.NAMES_PER_TRANSACTION):
        sliced.intern(names[start : start + storage.NAMES_PER_TRANSACTION])
    assert sliced.names_unknown(changes, values) == []
    encoded = sliced.encode_known(changes, values)
    assert encoded is not None
    sliced.append(
        "P", b"\x00\x00", member="m", device="d", origin="sync", changes=changes,
        values=values, encoded=encoded,
    )  # fmt: skip
    assert [e[2:] for e in sliced.history("P")] == [e[2:] for e in whole.history("P")]  # not ts
    count = sliced.db.execute("SELECT COUNT(*) FROM names").fetchone()[0]
    assert count == whole.db.execute("SELECT COUNT(*) FROM names").fetchone()[0]
    assert Store(tmp_path / "fresh.db").encode_known(changes, values) is None  # names unknown


def _write_now(path: Path) -> None:
    """A write by another process that must not wait: fails at once if the lock is held."""
    db = sqlite3.connect(path, isolation_level=None, timeout=0)
    try:
        db.execute("BEGIN IMMEDIATE")
        db.execute("INSERT INTO names (name) VALUES (?)", (f"w{id(db)}-{len(str(db))}",))
        db.execute("ROLLBACK")
    finally:
        db.close()


def test_a_background_compaction_holds_the_write_lock_one_slice_at_a_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Neither the fold nor the pauses between the slices (deleting what the snapshot
    made dead, giving pages back) hold the write lock: another process's write gets in
    at each of them, without waiting."""
    path = tmp_path / "c.db"
    store = Store(path)
    source, updates = edits(3 * storage.SLICE_ROWS)
    log_rates(store, "P", updates)
    real_fold = storage.fold
    pauses: list[float] = []

    def fold_and_write(blobs: list[bytes]) -> bytes:
        _write_now(path)
        return real_fold(blobs)

    def pause(seconds: float) -> None:
        pauses.append(seconds)
        _write_now(path)

    monkeypatch.setattr(storage, "fold", fold_and_write)
    monkeypatch.setattr(storage, "_pause", pause)
    assert store.compact("P", wait=False)[0] == len(updates)
    assert len(pauses) >= 3 and set(pauses) == {storage.SLICE_PAUSE}
    # Done all the same: one snapshot, no dead rows, the pages given back.
    blobs, _ = store.load("P")
    assert len(blobs) == 1 and load_doc(blobs).get_update() == source.get_update()
    assert store.db.execute("SELECT COUNT(*) FROM update_data").fetchone()[0] == 0
    assert store.db.execute("PRAGMA freelist_count").fetchone()[0] == 0
    assert len(store.history("P", limit=10_000)) == len(updates)
    store.close()


def test_a_compaction_cut_short_after_its_swap_loses_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Killed after the snapshot is in but before the dead rows are gone: the production
    loads the same, and the next compaction deletes them."""
    path = tmp_path / "c.db"
    store = Store(path)
    source, updates = edits(3 * storage.SLICE_ROWS)
    log_rates(store, "P", updates)

    def killed(seconds: float) -> None:
        raise KeyboardInterrupt  # as if the worker process died here

    monkeypatch.setattr(storage, "_pause", killed)
    with pytest.raises(KeyboardInterrupt):
        store.compact("P", wait=False)
    store.close()
    store = Store(path)
    blobs, _ = store.load("P")
    assert len(blobs) == 1 and load_doc(blobs).get_update() == source.get_update()
    dead = "SELECT COUNT(*) FROM update_data"
    assert store.db.execute(dead).fetchone()[0] > 0  # left behind, harmlessly
    monkeypatch.setattr(storage, "_pause", lambda seconds: None)
    assert store.compact("P")[0] == 0  # nothing new to fold, but the rest is cleared
    assert store.db.execute(dead).fetchone()[0] == 0
    assert load_doc(store.load("P")[0]).get_update() == source.get_update()
    store.close()


@given(st.lists(st.tuples(st.sampled_from(["roles", "talents"]), st.text(max_size=4)), max_size=60))
def test_sorted_keys_sorts_as_sorted_does_in_runs(keys: list[tuple[str, str]]) -> None:
    """A large change set's keys are sorted in runs, then merged (one sort of half a
    million held the GIL 1.7 s): the order is sorted()'s all the same."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(storage, "SORT_RUN", 7)
        assert list(storage.sorted_keys(dict.fromkeys(keys))) == sorted(set(keys))


def test_a_row_appended_apart_is_one_like_append_writes(tmp_path: Path) -> None:
    """Store.append_apart (a worker thread's, on a second connection) writes the row
    append would, given names already stored; unknown names are a KeyError, and nothing
    is written."""
    store = Store(tmp_path / "castroom.db")
    author = storage.author_name("casting", "dev1", "sync")
    changes = {("talents", "T1"): {"name"}}
    update = b"\x00\x00"
    with pytest.raises(KeyError):
        store.append_apart("P1", update, author=author, encoded=b"", dedupe=False)
    assert store.load("P1") == ([], 0)
    store.intern([*storage._names_in(changes, {}), "P1", author])
    encoded = store.encode_known(changes, {})
    assert encoded is not None
    seq = store.append_apart("P1", update, author=author, encoded=encoded, dedupe=True)
    assert store.load("P1") == ([update], seq)
    entry = store.history("P1")[-1]
    assert (entry.member, entry.device, entry.origin) == ("casting", "dev1", "sync")
    assert entry.changes == [("talents", "T1", ["name"])]
    # The same bytes again (dedupe): not stored twice.
    assert store.append_apart("P1", update, author=author, encoded=encoded, dedupe=True) is None
    store.close()


@pytest.mark.parametrize("opened_first", [False, True], ids=["deferred-first", "opened-first"])
def test_a_row_appended_apart_leaves_checkpoints_to_the_checkpointer(
    tmp_path: Path, opened_first: bool
) -> None:
    """A store that defers checkpoints (a server's) does so on its second connection
    too: a 4 MB row appended apart stays in the write-ahead log (the database file does
    not grow) until a Checkpointer copies it back. Before, that commit checkpointed the
    megabytes itself while the server's other writers waited for it. rows_written counts
    the second connection's rows, so the server's checkpointer knows it wrote."""
    path = tmp_path / "castroom.db"
    store = Store(path)
    author = storage.author_name("casting", "dev1", "sync")
    store.intern(["P1", author])
    if opened_first:  # the second connection already open when checkpoints are deferred
        store.append_apart("P1", b"\x00\x00", author=author, encoded=b"", dedupe=False)
    store.defer_checkpoints()
    size, written = path.stat().st_size, store.rows_written()
    blob = bytes(range(256)) * (4 * 1024 * 4)  # 4 MiB: past 1,000 pages of the log
    seq = store.append_apart("P1", blob, author=author, encoded=b"", dedupe=False)
    assert store.rows_written() > written
    assert path.stat().st_size < size + 1024 * 1024, "the commit checkpointed"
    checkpointer = storage.Checkpointer(path)
    log, done = checkpointer.run()
    checkpointer.close()
    assert log == done > 1000
    assert path.stat().st_size > size + 4 * 1024 * 1024
    assert store.load("P1")[0][-1] == blob and store.load("P1")[1] == seq
    store.close()


def test_a_live_merge_row_is_marked_exact_without_a_query_while_nobody_else_wrote(
    tmp_path: Path,
) -> None:
    # In a batch (a server's loop turn) the store knows the newest row it wrote of each
    # production, so a merge right after it is exact with no query for later rows; once
    # another connection has written, or a row was written outside a batch, it asks.
    store = Store(tmp_path / "c.db")
    _, updates = edits(8)
    peer = {"member": "", "device": "peer", "origin": "sync"}
    asked: list[str] = []
    store.db.set_trace_callback(
        lambda sql: asked.append(sql) if "FROM updates WHERE seq >" in sql else None
    )
    with store.batch():
        first = store.append("P", updates[0], **peer)
        second = store.append("P", updates[1], **peer, exact_after=first)
    with store.batch():
        third = store.append("P", updates[2], **peer, exact_after=second)
    assert asked == []
    assert store.exact_rows("P", [second, third]) == {second, third}
    other = Store(tmp_path / "c.db")  # another process's row of P
    other.append("P", updates[3], member="m", device="d", origin="local")
    other.close()
    with store.batch():
        stale = store.append("P", updates[4], **peer, exact_after=third)
    assert len(asked) == 1 and store.exact_rows("P", [stale]) == set()
    outside = store.append("P", updates[5], **peer)  # no batch: its version unknown
    asked.clear()
    with store.batch():
        late = store.append("P", updates[6], **peer, exact_after=stale)  # outside's after
        right = store.append("P", updates[7], **peer, exact_after=late)
    assert len(asked) == 1 and store.exact_rows("P", [outside, late, right]) == {right}
    store.close()


def test_exact_rows_asks_for_the_columns_of_updates_at_most_once(tmp_path: Path) -> None:
    store = Store(tmp_path / "c.db")
    _, updates = edits(2)
    first = store.append("P", updates[0], member="", device="peer", origin="sync")
    second = store.append(
        "P", updates[1], member="", device="peer", origin="sync", exact_after=first
    )
    asked: list[str] = []
    store.db.set_trace_callback(lambda sql: asked.append(sql) if "PRAGMA" in sql else None)
    for _ in range(3):
        assert store.exact_rows("P", [first, second]) == {second}
    assert asked == []  # known since the file was brought up to date
    store.close()
