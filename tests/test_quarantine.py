"""Stored updates that no longer load (damaged on disk, or planted by an older castroom
before the limits existed) are moved out of the log into the quarantine once, said once,
and the production opens with everything else. Real SQLite files, bad rows planted with
plain SQL (the crash-prone poisons run in subprocesses: tests/test_hostile.py)."""

from __future__ import annotations

import sqlite3
import sys
import warnings
from pathlib import Path

import pytest
from pycrdt import Doc, Map

from castroom.core import model
from castroom.core.document import CastDocument
from castroom.core.errors import BadUpdate, SkippedStoredUpdates, UpdateLimit
from castroom.core.storage import STORE_VERSION, Store
from castroom.core.workspace import Workspace

sys.path.insert(0, str(Path(__file__).parent / "data"))
import make_hostile as hostile


def three_talents(path: Path) -> tuple[str, int]:
    """A production with Ada, Ben and Cleo, each added by another session (so another
    Yjs client, and Cleo's update does not wait for Ben's). Returns (id, Ben's entry)."""
    with Workspace.open(path, member="casting") as ws:
        production = ws.create_production("Harbour Lights")
        production.doc.add(model.Talent, name="Ada Stone")
        assert production.id
        pid = production.id
    for name in ("Ben Okafor", "Cleo Marsh"):
        with Workspace.open(path, member="casting") as ws:
            ws.production(pid).doc.add(model.Talent, name=name)
    with sqlite3.connect(path / "castroom.db") as db:
        ben = db.execute("SELECT seq FROM update_data ORDER BY seq").fetchall()[-2][0]
    return pid, ben


def plant(path: Path, seq: int, data: bytes) -> None:
    """Overwrite one stored update's bytes, as a disk fault would."""
    with sqlite3.connect(path / "castroom.db") as db:
        assert db.execute("UPDATE update_data SET data = ? WHERE seq = ?", (data, seq)).rowcount


def fails_to_integrate(update: bytes) -> bytes:
    """``update`` with one byte changed so that it passes the bounded walk but Yrs fails
    to integrate it (searched for, as the bytes differ from run to run)."""
    for at in range(len(update)):
        bad = update[:at] + b"\x01" + update[at + 1 :]
        try:
            CastDocument().apply_update(bad)
        except BadUpdate as exc:
            if str(exc).startswith("cannot apply update"):
                return bad
    raise AssertionError("no one-byte change fails to integrate")


def names(path: Path, pid: str) -> tuple[list[str], list[str]]:
    """The talents a fresh open shows, and the warnings it gave."""
    with warnings.catch_warnings(record=True) as said, Workspace.open(path) as ws:
        warnings.simplefilter("always")
        found = sorted(t.name for t in ws.production(pid).doc.all(model.Talent))
    return found, [str(w.message) for w in said if w.category is SkippedStoredUpdates]


@pytest.mark.parametrize(
    ("damage", "why"),
    [
        (lambda b: b[: len(b) // 2], "malformed update (truncated"),
        # The header overwritten, and the first struct too: junk where Ben's structs began
        # is a varint past 53 bits, malformed whatever Ben's client id. (Only the header,
        # as before, left a valid update when the id's varint was 5 bytes long and Ben's
        # structs happened to parse: no checksum can tell that from a real one.)
        (
            lambda b: b"\x01\x02\xff\xff\xff\xff\x0f\x00" + b"\xff" * 12 + b[20:],
            "malformed update",
        ),
        (lambda b: fails_to_integrate(b), "cannot apply update"),
    ],
    ids=["truncated", "overwritten", "fails-to-integrate"],
)
def test_a_damaged_row_is_moved_aside_once_and_the_rest_loads(
    tmp_path: Path, damage, why: str
) -> None:
    path = tmp_path / "ws"
    pid, ben = three_talents(path)
    with sqlite3.connect(path / "castroom.db") as db:
        good = db.execute("SELECT data FROM update_data WHERE seq = ?", (ben,)).fetchone()[0]
    bad = damage(good)
    plant(path, ben, bad)
    found, said = names(path, pid)
    assert found == ["Ada Stone", "Cleo Marsh"]
    assert len(said) == 1 and said[0].startswith(
        "1 stored update(s) of production Harbour Lights do not load (" + why
    )
    assert "1 moved out of its log into the quarantine" in said[0]
    assert names(path, pid) == (["Ada Stone", "Cleo Marsh"], [])  # said once
    with Workspace.open(path) as ws:
        production = ws.production(pid)
        (row,) = production.quarantined()
        assert (row.seq, row.member, row.origin, row.data) == (ben, "casting", "local", bad)
        assert row.reason.startswith(why)
        assert bad not in ws.store.load(pid)[0]
        # Its history row stays; the log compacts (a fold of the poison would fail).
        assert ben in [entry.seq for entry in ws.store.history(pid, limit=10)]
        production.compact()
    assert names(path, pid) == (["Ada Stone", "Cleo Marsh"], [])


def test_a_read_only_workspace_leaves_the_poison_stored_and_says_so_each_time(
    tmp_path: Path,
) -> None:
    """Where nothing may be written the bad row stays, left out of every load (a reload
    too) and said on each open; the first writable open moves it aside."""
    path = tmp_path / "ws"
    pid, ben = three_talents(path)
    plant(path, ben, b"\x01\x02\xff\xff\xff\xff\x0f\x00garbage")
    for _ in range(2):
        with Workspace.open(path) as ws:
            ws.store.db.execute("PRAGMA query_only = ON")  # as on a read-only mount
            with pytest.warns(SkippedStoredUpdates, match="1 left out of this load"):
                production = ws.production(pid)
            production._reload()  # what a failed write does: rebuilt without it again
            assert sorted(t.name for t in production.doc.all(model.Talent)) == [
                "Ada Stone",
                "Cleo Marsh",
            ]
            assert production.quarantined() == []
    found, said = names(path, pid)
    assert found == ["Ada Stone", "Cleo Marsh"] and "1 moved out of its log" in said[0]


def test_a_format_2_file_from_before_the_quarantine_gains_it(tmp_path: Path) -> None:
    """Format 2 shipped without the quarantine table: such a file is brought up to date
    when it is next opened for writing (additive: nothing else changes, user_version
    stays), and its bad rows are then moved aside."""
    path = tmp_path / "ws"
    pid, ben = three_talents(path)
    db = sqlite3.connect(path / "castroom.db", isolation_level=None)
    db.execute("DROP TABLE quarantine")  # as format 2 first shipped
    rows = db.execute("SELECT seq, data FROM update_data ORDER BY seq").fetchall()
    history = db.execute("SELECT * FROM updates ORDER BY seq").fetchall()
    db.close()
    store = Store(path / "castroom.db")
    assert store.db.execute("PRAGMA user_version").fetchone()[0] == STORE_VERSION
    assert store.quarantined(pid) == []
    assert store.db.execute("SELECT seq, data FROM update_data ORDER BY seq").fetchall() == rows
    assert store.db.execute("SELECT * FROM updates ORDER BY seq").fetchall() == history
    store.close()
    plant(path, ben, b"\x01\x02\xff\xff\xff\xff\x0f\x00garbage")
    found, said = names(path, pid)
    assert found == ["Ada Stone", "Cleo Marsh"] and "1 moved out of its log" in said[0]
    with Workspace.open(path) as ws:
        assert [row.seq for row in ws.production(pid).quarantined()] == [ben]


def _ben_then_his_notes(path: Path) -> tuple[str, int, bytes, bytes]:
    """Ada (one session), then Ben and, in a second commit of the same session (so the
    same Yjs client, its clocks following his), his notes. Returns (the production, Ben's
    entry, Ben's bytes, the notes' bytes): the notes' update builds on Ben's."""
    with Workspace.open(path, member="casting") as ws:
        production = ws.create_production("Harbour Lights")
        production.doc.add(model.Talent, name="Ada Stone")
        assert production.id
        pid = production.id
    with Workspace.open(path, member="casting") as ws:
        doc = ws.production(pid).doc
        ben = doc.add(model.Talent, name="Ben Okafor")
        doc.update(model.Talent, ben.id, {"notes": "builds on the row before"})
    with sqlite3.connect(path / "castroom.db") as db:
        (seq, data), (_, notes) = db.execute(
            "SELECT seq, data FROM update_data ORDER BY seq"
        ).fetchall()[-2:]
    return pid, seq, data, notes


def shown(path: Path, pid: str) -> list[tuple[str, str]]:
    with Workspace.open(path) as ws:
        return sorted((t.name, t.notes) for t in ws.production(pid).doc.all(model.Talent))


def test_what_builds_on_a_quarantined_update_waits_until_a_peer_sends_it_whole(
    tmp_path: Path,
) -> None:
    """What docs/schema.md says "waits", shown: Ben's row damaged on disk is moved aside;
    the later update with his notes (same client, later clocks) is kept in the log but
    not shown, and the warning says so; compaction keeps it; once a peer sends Ben's
    update again whole, both show, and a fresh open agrees."""
    path = tmp_path / "ws"
    pid, seq, good, notes = _ben_then_his_notes(path)
    plant(path, seq, good[: len(good) // 2])
    found, said = names(path, pid)
    assert found == ["Ada Stone"]  # neither Ben nor the notes that build on him
    assert len(said) == 1 and "1 moved out of its log into the quarantine" in said[0]
    assert "1 later stored update(s) build on what it held and wait" in said[0]
    with Workspace.open(path) as ws:
        production = ws.production(pid)
        assert notes in ws.store.load(pid)[0]  # still stored
        production.compact()
    assert shown(path, pid) == [("Ada Stone", "")]  # compacted: still kept, still waiting
    with Workspace.open(path) as ws:
        changes = ws.production(pid).apply_update(good, origin="sync", device="peer")
        assert len(changes) == 1
    assert shown(path, pid) == [("Ada Stone", ""), ("Ben Okafor", "builds on the row before")]


def test_what_builds_on_a_poison_waits_for_good(tmp_path: Path) -> None:
    """An update beyond the limits (2,000 nested maps, stored by a castroom from before
    them) never comes back: every intake refuses it again, so the later update of the same
    client that builds on it stays kept, not shown, and said."""
    path = tmp_path / "ws"
    with Workspace.open(path, member="casting") as ws:
        production = ws.create_production("Harbour Lights")
        production.doc.add(model.Talent, name="Ada Stone")
        assert production.id
        pid = production.id
    poison = hostile.nested_maps(2_000)
    peer = Doc(client_id=hostile.CLIENT)
    peer.apply_update(poison)
    before = peer.get_state()
    peer.get("talents", type=Map)["NESTED"]["name"] = "built on the poison"
    after = peer.get_update(before)
    store = Store(path / "castroom.db")
    for data in (poison, after):  # as an older castroom stored them: no walk
        store.append(pid, data, member="peer", device="old", origin="sync")
    store.close()
    found, said = names(path, pid)
    assert found == ["Ada Stone"]
    assert "nested deeper than" in said[0] and "1 moved out of its log" in said[0]
    assert "1 later stored update(s) build on what it held and wait" in said[0]
    with Workspace.open(path) as ws:
        production = ws.production(pid)
        with pytest.raises(UpdateLimit):
            production.apply_update(poison, origin="sync", device="peer")
        assert after in ws.store.load(pid)[0]
    assert shown(path, pid) == [("Ada Stone", "")]
