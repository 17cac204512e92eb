"""Shared-folder sync: real workspaces (SQLite files) meeting through a real folder."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace

import msgspec
import pytest
from sync_helpers import PATIENCE, wait_until

from castroom.core import model
from castroom.core.errors import CastroomError
from castroom.core.workspace import StoredProduction, Workspace
from castroom.sync.folder import FILE_RE, FOLDER_NAME, sync_folder


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    path = tmp_path / "shared"
    path.mkdir()
    return path


@pytest.fixture
def open_ws(tmp_path: Path) -> Iterator[Callable[[str], Workspace]]:
    opened: list[Workspace] = []

    def make(name: str) -> Workspace:
        ws = Workspace.open(tmp_path / name, member=name)
        opened.append(ws)
        return ws

    yield make
    for ws in opened:
        ws.close()


def quiet(ws: Workspace, folder: Path, **kw):
    lines: list[str] = []
    result = sync_folder(ws, folder, echo=lines.append, **kw)
    return SimpleNamespace(**msgspec.structs.asdict(result), lines=lines)


def data(ws: Workspace, production_id: str) -> dict:
    return ws.production(production_id).doc.to_data()


def talent_names(ws: Workspace, production_id: str) -> set[str]:
    return {t.name for t in ws.production(production_id).doc.all(model.Talent)}


def update_files(folder: Path) -> dict[Path, bytes]:
    root = folder / FOLDER_NAME
    return {p: p.read_bytes() for p in sorted(root.rglob("*.yupd"))}


def test_two_workspaces_converge_and_empty_workspace_adopts(open_ws, folder: Path) -> None:
    a, b = open_ws("a"), open_ws("b")
    production = a.create_production("Harbour Lights", kind="series")
    pid = production.id
    assert pid is not None
    production.doc.add(model.Talent, name="Ada Quinn")
    production.doc.add(model.Role, name="Keeper", kind="lead")

    first = quiet(a, folder)
    assert first.exported_files == 1 and first.imported_files == 0
    joined = quiet(b, folder)
    assert joined.adopted == [pid]
    assert [p for p, _ in b.productions()] == [pid]
    assert b.productions()[0][1] == "Harbour Lights"
    assert data(b, pid) == data(a, pid)

    b.production(pid).doc.add(model.Talent, name="Ben Ode")
    a.production(pid).doc.update_production({"title": "Harbour Lights II"})
    quiet(b, folder)
    quiet(a, folder)
    quiet(b, folder)
    assert talent_names(a, pid) == talent_names(b, pid) == {"Ada Quinn", "Ben Ode"}
    assert b.production(pid).doc.production.title == "Harbour Lights II"
    assert data(a, pid) == data(b, pid)
    # Adopting what the folder holds writes nothing back: b's folder holds only its edit.
    b_files = list((folder / FOLDER_NAME / pid / b.identity.device_id).glob("*.yupd"))
    assert len(b_files) == 1


def test_three_workspaces_concurrent_edits_converge(open_ws, folder: Path) -> None:
    ws = [open_ws(n) for n in ("a", "b", "c")]
    pid = ws[0].create_production("Night Ferry").id
    assert pid is not None
    quiet(ws[0], folder)
    for w in ws[1:]:
        quiet(w, folder)
    talents = {}
    for round_no in range(3):
        for i, w in enumerate(ws):
            doc = w.production(pid).doc
            t = doc.add(model.Talent, name=f"T{round_no}-{i}")
            talents[t.id] = t.name
            # Same field edited concurrently everywhere: one value must win everywhere.
            doc.update_production({"notes": f"from {i}"})
        for w in ws:
            quiet(w, folder)
    for w in ws:
        quiet(w, folder)
    expected = set(talents.values())
    for w in ws:
        assert talent_names(w, pid) == expected
    assert data(ws[0], pid) == data(ws[1], pid) == data(ws[2], pid)


def test_incremental_passes_move_only_whats_new(open_ws, folder: Path) -> None:
    a, b = open_ws("a"), open_ws("b")
    production = a.create_production("Incremental")
    pid = production.id
    assert pid is not None
    production.doc.put_many(
        [model.Talent(id=model.new_id(), name=f"Talent {i}") for i in range(200)]
    )
    full = quiet(a, folder)
    quiet(b, folder)
    # Nothing changed: nothing read, nothing written, and it says so.
    again_a, again_b = quiet(a, folder), quiet(b, folder)
    assert (again_a.exported_files, again_a.imported_files) == (0, 0)
    assert (again_b.exported_files, again_b.imported_files) == (0, 0)
    assert any("up to date" in line for line in again_b.lines)
    # One small edit: one small file, read once by the other side.
    t = production.doc.all(model.Talent)[0]
    production.doc.update(model.Talent, t.id, {"union": "SAG-AFTRA"})
    small = quiet(a, folder)
    assert small.exported_files == 1
    assert small.exported_bytes < full.exported_bytes / 20
    got = quiet(b, folder)
    assert got.imported_files == 1 and got.imported_bytes == small.exported_bytes
    assert b.production(pid).doc.get(model.Talent, t.id).union == "SAG-AFTRA"
    # A pure deletion (no new struct, only the delete set) is exported too.
    production.doc.edit_text(model.Talent, t.id, "notes", 0, 0, "abcdef")
    quiet(a, folder)
    quiet(b, folder)
    production.doc.edit_text(model.Talent, t.id, "notes", 0, 3, "")
    deleted = quiet(a, folder)
    assert deleted.exported_files == 1
    quiet(b, folder)
    assert b.production(pid).doc.get(model.Talent, t.id).notes == "def"


def test_each_device_writes_only_its_own_folder_atomically(open_ws, folder: Path) -> None:
    a, b, c = open_ws("a"), open_ws("b"), open_ws("c")
    pid = a.create_production("Own Files").id
    assert pid is not None
    quiet(a, folder)
    quiet(b, folder)
    b.production(pid).doc.add(model.Talent, name="Bea")
    quiet(b, folder)
    root = folder / FOLDER_NAME / pid
    others = {
        p: (p.read_bytes(), p.stat().st_mtime_ns)
        for p in root.rglob("*")
        if p.is_file() and c.identity.device_id not in p.parts
    }
    c_doc = quiet(c, folder)
    assert c_doc.adopted == [pid]
    c.production(pid).doc.add(model.Talent, name="Cy")
    quiet(c, folder)
    after = {
        p: (p.read_bytes(), p.stat().st_mtime_ns)
        for p in root.rglob("*")
        if p.is_file() and c.identity.device_id not in p.parts
    }
    assert after == others  # c never touched another device's files
    own = sorted((root / c.identity.device_id).iterdir())
    names = [p.name for p in own]
    assert "manifest.json" in names
    for p in own:
        if p.name != "manifest.json":
            match = FILE_RE.match(p.name)
            assert match, p.name
            assert hashlib.blake2b(p.read_bytes(), digest_size=16).hexdigest() == match.group(2)
    assert not [p for p in root.rglob(".*")]  # no temporary file left behind


def test_truncated_then_completed_file_is_skipped_then_merged(
    open_ws, folder: Path, tmp_path: Path
) -> None:
    a, b = open_ws("a"), open_ws("b")
    production = a.create_production("Half Copied")
    pid = production.id
    assert pid is not None
    quiet(a, folder)
    quiet(b, folder)
    production.doc.add(model.Talent, name="Late Arrival")
    staging = tmp_path / "staging"
    staging.mkdir()
    quiet(a, staging)  # a writes its new file elsewhere; we copy it over by hand
    src = max(
        (staging / FOLDER_NAME / pid / a.identity.device_id).glob("*.yupd"),
        key=lambda p: FILE_RE.match(p.name).group(1),  # type: ignore[union-attr]
    )
    dest = folder / FOLDER_NAME / pid / a.identity.device_id / src.name
    whole = src.read_bytes()
    dest.write_bytes(whole[: len(whole) // 2])  # a synced drive still copying it
    half = quiet(b, folder)
    assert half.imported_files == 0
    assert any("incomplete or corrupt" in w and src.name in w for w in half.warnings)
    assert "Late Arrival" not in talent_names(b, pid)
    before = data(b, pid)
    assert data(b, pid) == before
    dest.write_bytes(whole)  # the copy completes
    done = quiet(b, folder)
    assert done.imported_files == 1 and not done.warnings
    assert "Late Arrival" in talent_names(b, pid)


def test_corrupt_files_are_refused_and_change_nothing(open_ws, folder: Path) -> None:
    a, b = open_ws("a"), open_ws("b")
    pid = a.create_production("Corrupt").id
    assert pid is not None
    quiet(a, folder)
    quiet(b, folder)
    before = data(b, pid)
    rogue = folder / FOLDER_NAME / pid / "ROGUEDEVICE"
    rogue.mkdir()
    garbage = b"\x01\xff\xff\xff\xff\xff\xff\xff\xff\x0f\x00garbage"
    (rogue / f"00000001-{hashlib.blake2b(garbage, digest_size=16).hexdigest()}.yupd").write_bytes(
        garbage
    )
    (rogue / "00000002-notahash.yupd").write_bytes(b"ignored: not an update file name")
    (rogue / "notes.txt").write_text("ignored")
    result = quiet(b, folder)
    assert result.imported_files == 0
    assert any(w.startswith("refused") for w in result.warnings)
    assert data(b, pid) == before
    # Refused once, not re-read and re-warned on every pass.
    assert not quiet(b, folder).warnings


def test_a_production_folder_holding_another_production_is_not_adopted(
    open_ws, folder: Path
) -> None:
    a, c = open_ws("a"), open_ws("c")
    pid = a.create_production("Real").id
    assert pid is not None
    quiet(a, folder)
    real = folder / FOLDER_NAME / pid
    fake = folder / FOLDER_NAME / "01FAKEPRODUCTION000000000X"
    fake.mkdir()
    for device in real.iterdir():
        (fake / device.name).mkdir()
        for f in device.glob("*.yupd"):
            (fake / device.name / f.name).write_bytes(f.read_bytes())
    result = quiet(c, folder)
    assert result.adopted == [pid]
    assert any("holds production" in w for w in result.warnings)
    assert [p for p, _ in c.productions()] == [pid]


def test_own_files_are_compacted_and_peers_still_converge(open_ws, folder: Path) -> None:
    a, b, late = open_ws("a"), open_ws("b"), open_ws("late")
    production = a.create_production("Compacted")
    pid = production.id
    assert pid is not None
    quiet(a, folder, compact_at=4)
    quiet(b, folder, compact_at=4)
    for i in range(10):
        production.doc.add(model.Talent, name=f"N{i}")
        quiet(a, folder, compact_at=4)
        if i == 5:
            quiet(b, folder, compact_at=4)  # b has read some of the pre-compaction files
    own = list((folder / FOLDER_NAME / pid / a.identity.device_id).glob("*.yupd"))
    assert len(own) <= 5
    quiet(b, folder, compact_at=4)
    quiet(late, folder, compact_at=4)
    assert talent_names(b, pid) == talent_names(a, pid) == talent_names(late, pid)
    assert len(talent_names(a, pid)) == 10
    assert data(a, pid) == data(b, pid) == data(late, pid)


def test_damaged_own_file_is_rewritten(open_ws, folder: Path) -> None:
    a, b = open_ws("a"), open_ws("b")
    production = a.create_production("Repair")
    pid = production.id
    assert pid is not None
    production.doc.add(model.Talent, name="Kept")
    quiet(a, folder)
    own = next((folder / FOLDER_NAME / pid / a.identity.device_id).glob("*.yupd"))
    own.write_bytes(own.read_bytes()[:10])  # truncated by a bad copy
    repaired = quiet(a, folder)
    assert repaired.exported_files == 1
    assert any("damaged" in w for w in repaired.warnings)
    assert not own.exists()
    joined = quiet(b, folder)
    assert joined.adopted == [pid] and not joined.warnings
    assert talent_names(b, pid) == {"Kept"}


def test_missing_folder_is_a_clear_error(open_ws, tmp_path: Path) -> None:
    a = open_ws("a")
    with pytest.raises(CastroomError, match="no folder at"):
        sync_folder(a, tmp_path / "nope", echo=lambda _m: None)


def test_live_mode_pulls_and_pushes_until_stopped(open_ws, folder: Path, tmp_path: Path) -> None:
    a, b = open_ws("a"), open_ws("b")
    pid = a.create_production("Live").id
    assert pid is not None
    quiet(a, folder)
    quiet(b, folder)
    a.production(pid).doc.add(model.Talent, name="Before Live")  # for the first pass to write
    stop = threading.Event()
    lines: list[str] = []
    out: list = []
    live_ws = Workspace.open(tmp_path / "a")  # the live syncer's own connection

    def run() -> None:
        # Rescans far apart: within this test only watchdog events (pull) and the
        # workspace's own change counter (push) can start a pass.
        out.append(sync_folder(live_ws, folder, live=True, echo=lines.append, stop=stop, rescan=60))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        # The first pass (after the watcher started) exported a's pending edit.
        assert wait_until(lambda: any("wrote 1 file(s)" in line for line in lines)), lines
        # Pull: b writes a file; the watcher sees it and merges it into a's workspace.
        b.production(pid).doc.add(model.Talent, name="From B")
        quiet(b, folder)
        assert wait_until(lambda: "From B" in talent_names(a, pid)), lines
        # Push: a local edit by another process/connection reaches the folder by itself.
        a.production(pid).doc.add(model.Talent, name="From A")
        assert wait_until(lambda: quiet(b, folder) and "From A" in talent_names(b, pid)), lines
    finally:
        stop.set()
        thread.join(timeout=PATIENCE)
        live_ws.close()
    assert not thread.is_alive()
    assert out and out[0].passes >= 3


def test_workspaces_in_separate_processes_converge(open_ws, folder: Path, tmp_path: Path) -> None:
    """Three real processes edit and sync concurrently through one folder."""
    seed = open_ws("seed")
    pid = seed.create_production("Processes").id
    assert pid is not None
    quiet(seed, folder)
    script = (
        "import sys, time\n"
        "from castroom.core import model\n"
        "from castroom.core.workspace import Workspace\n"
        "from castroom.sync.folder import sync_folder\n"
        "ws = Workspace.open(sys.argv[1], member=sys.argv[3])\n"
        "sync_folder(ws, sys.argv[2], echo=lambda m: None)\n"
        "doc = ws.production().doc\n"
        "for i in range(5):\n"
        "    doc.add(model.Talent, name=f'{sys.argv[3]}-{i}')\n"
        "    sync_folder(ws, sys.argv[2], echo=lambda m: None)\n"
        "for _ in range(3):\n"
        "    time.sleep(0.2)\n"
        "    sync_folder(ws, sys.argv[2], echo=lambda m: None)\n"
        "ws.close()\n"
    )
    names = ["p1", "p2", "p3"]
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(tmp_path / n), str(folder), n],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={**os.environ},
        )
        for n in names
    ]
    for p in procs:
        _, err = p.communicate(timeout=PATIENCE)
        assert p.returncode == 0, err.decode()
    quiet(seed, folder)
    expected = {f"{n}-{i}" for n in names for i in range(5)}
    assert talent_names(seed, pid) == expected
    for n in names:
        w = open_ws(n)
        quiet(w, folder)
        assert data(w, pid) == data(seed, pid)


def test_live_mode_survives_the_folder_going_away(open_ws, folder: Path, tmp_path: Path) -> None:
    a, b = open_ws("a"), open_ws("b")
    pid = a.create_production("Unplugged").id
    assert pid is not None
    quiet(a, folder)
    quiet(b, folder)
    stop = threading.Event()
    lines: list[str] = []
    live_ws = Workspace.open(tmp_path / "a")
    thread = threading.Thread(
        target=sync_folder,
        args=(live_ws, folder),
        kwargs={"live": True, "echo": lines.append, "stop": stop, "rescan": 0.3},
        daemon=True,
    )
    thread.start()
    try:
        assert wait_until(lambda: any("watching" in line for line in lines))
        time.sleep(0.5)  # let the first pass finish (the test is about later ones)
        away = tmp_path / "unplugged"
        (folder / FOLDER_NAME).rename(away)  # the stick is pulled out
        assert wait_until(lambda: any("pass failed" in line for line in lines)), lines
        assert thread.is_alive()
        (away).rename(folder / FOLDER_NAME)  # ...and plugged back in
        b.production(pid).doc.add(model.Talent, name="After Replug")
        quiet(b, folder)
        assert wait_until(lambda: "After Replug" in talent_names(a, pid)), lines
    finally:
        stop.set()
        thread.join(timeout=PATIENCE)
        live_ws.close()
    assert not thread.is_alive()


def test_a_storage_error_while_importing_is_retried_not_marked_bad(open_ws, folder: Path) -> None:
    """A good file that could not be stored (the log refused the write: a busy or
    read-only database) is read again on the next pass, never refused for good."""
    a, b = open_ws("a"), open_ws("b")
    production = a.create_production("Busy Log")
    pid = production.id
    assert pid is not None
    quiet(a, folder)
    quiet(b, folder)
    production.doc.add(model.Talent, name="Ada Quinn")
    production.doc.add(model.Talent, name="Ben Ode")
    quiet(a, folder)
    # A real SQLite refusal of the log append only (the kv table, where the pass keeps
    # its bookkeeping, still takes writes): a transient "database is locked" on append.
    b.store.db.execute(
        "CREATE TEMP TRIGGER refuse_log BEFORE INSERT ON updates"
        " BEGIN SELECT RAISE(ABORT, 'database is locked'); END"
    )
    with pytest.raises(CastroomError, match="database is locked"):
        quiet(b, folder)
    b.store.db.execute("DROP TRIGGER refuse_log")
    assert talent_names(b, pid) == set()
    retried = quiet(b, folder)
    assert retried.imported_files == 1
    assert talent_names(b, pid) == {"Ada Quinn", "Ben Ode"}
    assert data(b, pid) == data(a, pid)


def test_a_read_only_store_fails_the_pass_and_the_next_one_imports(open_ws, folder: Path) -> None:
    a, b = open_ws("a"), open_ws("b")
    production = a.create_production("Read Only")
    pid = production.id
    assert pid is not None
    quiet(a, folder)
    quiet(b, folder)
    production.doc.add(model.Talent, name="Ada Quinn")
    quiet(a, folder)
    b.store.db.execute("PRAGMA query_only=ON")  # a real SQLite write failure
    try:
        with pytest.raises(CastroomError):
            quiet(b, folder)
    finally:
        b.store.db.execute("PRAGMA query_only=OFF")
    assert quiet(b, folder).imported_files == 1
    assert talent_names(b, pid) == {"Ada Quinn"}


# -- ids and links never lead outside the shared folder ---------------------------------------


def outside_entries(tmp_path: Path, *known: str) -> set[str]:
    return {p.name for p in tmp_path.iterdir()} - set(known)


def test_a_production_id_that_is_a_path_is_never_a_folder(
    open_ws, folder: Path, tmp_path: Path
) -> None:
    """A workspace holding such an id (from before ids were checked) syncs the rest, warns,
    and writes nothing for it, anywhere."""
    a = open_ws("a")
    good = a.create_production("Harbour Lights").id
    donor = a.create_production("Loot")
    update = donor.doc.encode_update()
    for bad in ("..", "../../x"):
        a.store.add_production(bad, "Evil")
        a.store.append(bad, update, member="m", device="d", origin="local")
    before = outside_entries(tmp_path)
    result = quiet(a, folder)
    assert any("production id '..' is not an id of letters" in w for w in result.warnings)
    assert any("'../../x'" in w for w in result.warnings)
    assert sorted(p.name for p in (folder / FOLDER_NAME).iterdir()) == sorted([good, donor.id])
    assert outside_entries(tmp_path) == before
    with pytest.raises(CastroomError, match=r"production id '\.\./\.\./x' is not an id"):
        a.adopt("../../x", update, origin="bundle")


def own_folder(folder: Path, ws: Workspace, pid: str) -> Path:
    return folder / FOLDER_NAME / pid / ws.identity.device_id


def workspace_a(open_ws) -> tuple[Workspace, StoredProduction, str]:
    a = open_ws("a")
    production = a.create_production("Harbour Lights")
    assert production.id is not None
    return a, production, production.id


def test_a_symlinked_device_folder_does_not_redirect_writes(
    open_ws, folder: Path, tmp_path: Path
) -> None:
    a, production, pid = workspace_a(open_ws)
    quiet(a, folder)
    mine = own_folder(folder, a, pid)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    for child in mine.iterdir():
        child.unlink()
    mine.rmdir()
    mine.symlink_to(elsewhere)
    production.doc.add(model.Talent, name="Ada Quinn")
    with pytest.raises(CastroomError, match=r"refusing to write through .* it is a symlink"):
        quiet(a, folder)
    assert list(elsewhere.iterdir()) == []


def test_a_symlinked_peer_folder_is_not_read(open_ws, folder: Path, tmp_path: Path) -> None:
    a, production, pid = workspace_a(open_ws)
    b = open_ws("b")
    production.doc.add(model.Talent, name="Ada Quinn")
    quiet(a, folder)
    quiet(b, folder)
    production.doc.add(model.Talent, name="Ben Ode")
    quiet(a, folder)
    real = own_folder(folder, a, pid)
    moved = tmp_path / "moved"
    real.rename(moved)
    real.symlink_to(moved)
    assert quiet(b, folder).imported_files == 0
    assert talent_names(b, pid) == {"Ada Quinn"}


def test_a_device_folder_that_is_a_file_is_one_clear_error(
    open_ws, folder: Path, tmp_path: Path
) -> None:
    a, _, pid = workspace_a(open_ws)
    (folder / FOLDER_NAME / pid).mkdir(parents=True)
    own_folder(folder, a, pid).write_text("not a folder")
    with pytest.raises(CastroomError, match="it is a file, not a folder"):
        quiet(a, folder)
    a.close()
    exe = Path(sys.executable).with_name("castroom")
    run = subprocess.run(
        [str(exe), "--workspace", str(tmp_path / "a"), "sync", str(folder)],
        capture_output=True,
        text=True,
        timeout=PATIENCE,
    )
    assert run.returncode == 1 and "Traceback" not in run.stderr
    assert "it is a file, not a folder" in run.stderr
