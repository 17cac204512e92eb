"""Every process that merges peers' updates keeps the production's read copy fresh
(sync/read_copies.py, StoredProduction.patch_read_copy): after a peer's edit merged by
a running ``castroom serve``, by a one-shot ``castroom sync`` (a server, a shared
folder) or by ``bundle apply``, the next read-only command reads the copy (pycrdt is
never imported) and answers as from the CRDT. Another process folds a peer's update
in from the log when its merger's document held the log right up to it (the row is
exact: tests below build an update that completes one waiting in the log); two merges
at once, or a crash between the write and the patch, leave the copy stale (so unread),
never wrong; a live ``castroom sync`` patches once the production has been quiet a
second. Real processes: the console
script, a real server on 127.0.0.1."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import httpx
import pytest
import tomli_w
from patience import PATIENCE
from pycrdt import Doc, Map
from sync_helpers import drop_read_copies, make_token, stop_process, wait_until

from castroom.core import read_copy
from castroom.core.model import Talent
from castroom.core.sample import SampleSize, build_sample
from castroom.core.storage import Store
from castroom.core.workspace import DB_NAME, Workspace
from tests.test_cli_start import COPY_PROBE
from tests.test_sync_cli import EXE, Served, castroom

#: Read-only commands whose answers are compared (JSON: parsed, whatever the key order).
READS = (("check", "--json"), ("list", "talents", "--json"))


def _seed(
    path: Path, quiet: float | None = None, size: SampleSize | None = None
) -> tuple[str, list[str]]:
    """A workspace holding the sample series (the server's, with ``read_copy_quiet``;
    of ``size``): its production's id and its talents' ids. Without the read copy the
    process that made it kept: the first read loads the CRDT (and keeps one)."""
    with Workspace.open(path, member="casting") as ws:
        production = ws.create_production("Tides")
        build_sample(production.doc, size or SampleSize())
        talents = [t.id for t in production.doc.all(Talent)]
        assert production.id
    drop_read_copies(path)
    if quiet is not None:
        _seed_config(path, quiet)
    return production.id, talents


def _seed_config(path: Path, quiet: float) -> None:
    """The server's ``read_copy_quiet`` in the workspace's config."""
    config = tomllib.loads((path / "config.toml").read_text())
    config["server"] = {"read_copy_quiet": quiet}
    (path / "config.toml").write_text(tomli_w.dumps(config))


def _run(path: Path, *args: str, token: str = "") -> str:
    done = castroom("--workspace", str(path), *args, env={"CASTROOM_TOKEN": token})
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def _answers(path: Path) -> tuple[dict[tuple[str, ...], object], bool]:
    """Each read-only command's parsed answer, and whether the first one read the read
    copy (no pycrdt imported: the CRDT was not loaded; if it was, it kept a copy, which
    the next command reads)."""
    answers, copies = {}, []
    for args in READS:
        probe = COPY_PROBE.format(names={"pycrdt"})
        out = subprocess.run(
            [sys.executable, "-c", probe, "-w", str(path), *args],
            capture_output=True,
            text=True,
            timeout=PATIENCE,
        )
        assert out.returncode in (0, 1), out.stderr  # check exits 1 on an error finding
        *printed, loaded = out.stdout.splitlines()
        answers[args] = json.loads("\n".join(printed))
        copies.append(json.loads(loaded) == [])
    assert all(copies[1:]), "a read after the first loaded the CRDT"
    return answers, copies[0]


def _fresh(path: Path, production_id: str) -> bool:
    """Whether the stored read copy holds the production's current log position."""
    store = Store(path / DB_NAME)
    try:
        return read_copy.is_current(store, production_id)
    finally:
        store.close()


def _as_from_the_crdt(path: Path, answers: dict[tuple[str, ...], object]) -> None:
    """The answers are the CRDT's: with the copy dropped, each command loads the
    production and answers the same."""
    drop_read_copies(path)
    loaded, from_copy = _answers(path)
    assert not from_copy and loaded == answers


def _agents(answers: dict[tuple[str, ...], object]) -> set[str]:
    talents = answers[("list", "talents", "--json")]
    assert isinstance(talents, list)
    return {t["agent"] for t in talents}


def _served_with_a_peers_edit(
    tmp_path: Path, quiet: float = 60
) -> tuple[Path, str, list[str], Served]:
    """A server (its workspace, production, talents and process) that has merged a
    laptop's edits (a talent's agent: Nell Park; a new talent's: Kit Lane) and
    acknowledged them, the production's read copy as a read kept it before (patched
    once the room has been ``quiet`` that long: by default, not while the test runs)."""
    server = tmp_path / "server"
    production_id, talents = _seed(server, quiet=quiet)
    assert not _answers(server)[1]  # the first read loads the CRDT and keeps a copy
    token = make_token(server)
    served = Served(server, tmp_path / "serve.log")
    try:
        laptop = tmp_path / "laptop"
        _run(laptop, "sync", served.url, token=token)
        _run(laptop, "set", "talent", talents[0], "agent=Nell Park")
        _run(laptop, "add", "talent", "name=Ola Brand", "agent=Kit Lane")
        _run(laptop, "sync", served.url, token=token)  # acknowledged: durable
    except BaseException:
        served.stop()
        raise
    return server, production_id, talents, served


def test_an_edit_merged_by_serve_then_by_a_one_shot_sync_is_read_from_the_copy(
    tmp_path: Path,
) -> None:
    server, production_id, talents, served = _served_with_a_peers_edit(tmp_path, quiet=0.3)
    laptop = tmp_path / "laptop"
    token = make_token(server)
    try:
        assert wait_until(lambda: _fresh(server, production_id))  # patched once quiet
        answers, from_copy = _answers(server)  # the server still running
        assert from_copy and {"Nell Park", "Kit Lane"} <= _agents(answers)

        # A one-shot sync merges an edit made on the server's side, and patches on close.
        assert _answers(laptop)[1]  # the sync that brought it here kept a copy
        _run(server, "set", "talent", talents[1], "agent=Mira Vale")
        _run(laptop, "sync", served.url, token=token)
        assert _fresh(laptop, production_id)
        on_laptop, from_copy = _answers(laptop)
        assert from_copy and "Mira Vale" in _agents(on_laptop)
    finally:
        assert served.stop() == 0
    assert "Traceback" not in served.log.read_text()
    assert _answers(server) == (on_laptop, True)  # the server's copy took it in too
    _as_from_the_crdt(server, on_laptop)
    _as_from_the_crdt(laptop, on_laptop)


def test_a_folder_sync_and_a_bundle_apply_patch_the_copy(tmp_path: Path) -> None:
    office, laptop, folder = tmp_path / "office", tmp_path / "laptop", tmp_path / "shared"
    production_id, talents = _seed(office)
    folder.mkdir()
    _run(office, "sync", str(folder))
    _run(laptop, "sync", str(folder))
    assert _answers(laptop)[1]  # new here: the sync that brought it kept a copy
    _run(office, "set", "talent", talents[0], "agent=Nell Park")
    _run(office, "sync", str(folder))
    _run(laptop, "sync", str(folder))  # merges the office's edit from its file
    answers, from_copy = _answers(laptop)
    assert from_copy and "Nell Park" in _agents(answers)
    _as_from_the_crdt(laptop, answers)

    assert _fresh(laptop, production_id)  # kept again by the reads from the CRDT
    _run(office, "set", "talent", talents[1], "agent=Mira Vale")
    _run(office, "bundle", "create", str(tmp_path / "tides.castroom"))
    _run(laptop, "bundle", "apply", str(tmp_path / "tides.castroom"))
    assert _fresh(laptop, production_id)
    answers, from_copy = _answers(laptop)
    assert from_copy and {"Nell Park", "Mira Vale"} <= _agents(answers)
    _as_from_the_crdt(laptop, answers)


def test_a_command_folds_in_the_peers_updates_a_running_server_merged(tmp_path: Path) -> None:
    server, production_id, talents, served = _served_with_a_peers_edit(tmp_path)
    try:
        # Another process writes too. As it closes, the server's rows after the copy's
        # position are peers' updates it merged into a document that held the log right
        # up to each (marked exact: what it reported is all they changed), so the
        # command folds them in from the log with its own write.
        _run(server, "set", "talent", talents[1], "agent=Mira Vale")
        assert _fresh(server, production_id)
        answers, from_copy = _answers(server)  # the server still running
        assert from_copy and {"Nell Park", "Kit Lane", "Mira Vale"} <= _agents(answers)
    finally:
        assert served.stop() == 0  # nothing left for the server to fold in
    assert _fresh(server, production_id)
    assert _answers(server) == (answers, True)
    _as_from_the_crdt_and_a_fresh_copy(server, answers)


#: A writer that stops where it is told (a line on its stdin): it opens the production,
#: sets a talent's agent, then closes the workspace (patching the read copy).
WRITER = """
import sys
from castroom.core.model import Talent
from castroom.core.workspace import Workspace
ws = Workspace.open(sys.argv[1])
production = ws.production()
production.doc.update(Talent, sys.argv[2], {"agent": sys.argv[3]})
print("written", flush=True)
sys.stdin.readline()
ws.close()
"""


def _writer(path: Path, talent: str, agent: str) -> subprocess.Popen[str]:
    """A WRITER that has written (and committed) ``talent``'s new agent, and waits."""
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path), talent, agent],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert writer.stdout is not None and writer.stdout.readline() == "written\n"
    except BaseException:
        _kill(writer)
        raise
    return writer


def _kill(writer: subprocess.Popen[str]) -> None:
    """Kill a writer before it closes (committed, never patched: a crash)."""
    writer.kill()
    writer.wait(timeout=PATIENCE)


def test_a_running_server_folds_in_a_commands_write_beside_its_own(tmp_path: Path) -> None:
    # The server has merged a peer's edits and not patched yet when a command writes
    # too and is killed before it closes (so it patched nothing): the server folds the
    # command's row in (its own write, from the log) once the production has been
    # quiet, while it runs.
    server, production_id, talents, served = _served_with_a_peers_edit(tmp_path, quiet=2)
    try:
        _kill(_writer(server, talents[1], "Mira Vale"))
        assert wait_until(lambda: _fresh(server, production_id))
        answers, from_copy = _answers(server)  # the server still running
        assert from_copy and {"Nell Park", "Kit Lane", "Mira Vale"} <= _agents(answers)
    finally:
        assert served.stop() == 0
    _as_from_the_crdt(server, answers)


def test_a_writer_killed_before_it_closed_leaves_the_copy_stale_then_a_read_folds_it(
    tmp_path: Path,
) -> None:
    path = tmp_path / "ws"
    # Talents enough that their part is split when patched (read_copy.SPLIT_PAST): the
    # split shows the read patched the copy, not made it anew.
    production_id, talents = _seed(path, size=SampleSize(talents=600))
    assert not _answers(path)[1]  # the first read keeps a copy
    with Workspace.open(path) as ws:  # whole, its talents large enough to split
        assert "talents" in read_copy.to_split(ws.store.read_copy_part_sizes(production_id))
    _kill(_writer(path, talents[0], "Nell Park"))  # the copy was not patched
    assert not _fresh(path, production_id)  # stale: no read uses it as it is
    # The next read loads the CRDT, patches the copy with what the log says the dead
    # writer changed, and answers from it; every later read reads that copy.
    answers, from_copy = _answers(path)
    assert not from_copy and "Nell Park" in _agents(answers)
    assert _fresh(path, production_id)
    with Workspace.open(path) as ws:  # patched (its talents split), not made anew (whole)
        assert "talents" not in _whole(ws, production_id)
    _as_from_the_crdt(path, answers)


def test_a_crash_before_the_patch_leaves_the_copy_stale_never_wrong(tmp_path: Path) -> None:
    server, production_id, _, served = _served_with_a_peers_edit(tmp_path)
    served.stop(signal.SIGKILL)  # before the room has been quiet for a minute
    assert not _fresh(server, production_id)
    answers, from_copy = _answers(server)
    assert not from_copy and "Nell Park" in _agents(answers)
    assert _answers(server) == (answers, True)


def _position(path: Path, production_id: str) -> int:
    store = Store(path / DB_NAME)
    try:
        return store.position(production_id)
    finally:
        store.close()


@pytest.mark.parametrize("via", ["server", "hocuspocus", "folder"])
def test_a_live_sync_patches_the_copy_once_quiet(tmp_path: Path, via: str) -> None:
    office, laptop, shared = tmp_path / "office", tmp_path / "laptop", tmp_path / "shared"
    production_id, talents = _seed(office)
    served, token, target = None, "", [str(shared)]
    if via == "folder":
        shared.mkdir()
        _run(office, "sync", str(shared))
    else:
        token = make_token(office)
        served = Served(office, tmp_path / "serve.log")
        target = [served.url]
        if via == "hocuspocus":  # one socket for every production, at /hocuspocus
            url = served.url.replace("http", "ws", 1) + "/hocuspocus"
            target = [url, "--protocol", via, "--production", production_id]
    try:
        _run(laptop, "sync", *target, token=token)
        assert _answers(laptop)[1]  # the sync that brought it here kept a copy
        before = _position(laptop, production_id)
        live = subprocess.Popen(
            [EXE, "--workspace", str(laptop), "sync", *target, "--live"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={**os.environ, "CASTROOM_TOKEN": token},
        )
        try:
            _run(office, "set", "talent", talents[0], "agent=Nell Park")
            if via == "folder":
                _run(office, "sync", str(shared))
            merged = wait_until(lambda: _position(laptop, production_id) > before)
            assert merged and wait_until(lambda: _fresh(laptop, production_id))
            answers, from_copy = _answers(laptop)  # the live sync still running
            assert from_copy and "Nell Park" in _agents(answers)
        finally:
            stop_process(live, signal.SIGINT)
    finally:
        if served is not None:
            served.stop()
    _as_from_the_crdt(laptop, answers)


#: Talents in the production whose first patch a server splits: enough that splitting
#: its copy on the event loop took the loop's CPU 0.3 s (40,000: 0.12 s; load 2).
LARGE = 60_000
#: A stall of the server's loop that ran this long on its CPU is work on the loop (the
#: rest of a stall, waiting for a CPU or blocked, is the machine's load).
ON_THE_LOOP_MS = 100


def test_serve_splits_a_large_first_copy_in_a_worker_and_its_loop_turns(tmp_path: Path) -> None:
    server = tmp_path / "server"
    with Workspace.open(server, member="casting") as ws:
        production = ws.create_production("Crowd")
        production.doc.put_many(
            [Talent(id=f"T{i:05d}", name=f"Talent {i}", rate=1000 + i) for i in range(LARGE)]
        )
        production.compact()
        production_id = production.id
        assert production_id
    # Its maker kept a copy when it created it, and on closing made it anew, whole: a
    # patch with every entity changed costs more (read_copy.cheaper_whole).
    assert _fresh(server, production_id)
    with Workspace.open(server) as ws:
        assert _whole(ws, production_id) == sorted(read_copy.COLLECTIONS)
    drop_read_copies(server)  # as a workspace that never read it
    with Workspace.open(server) as ws:
        assert len(ws.reading(production_id).doc.all(Talent)) == LARGE  # keeps a copy, whole
    with Workspace.open(server) as ws:
        assert _whole(ws, production_id) == sorted(read_copy.COLLECTIONS)
    _seed_config(server, quiet=0.3)
    token = make_token(server)
    served = Served(server, tmp_path / "serve.log")
    try:
        peer = Doc()  # a peer's new talent: an update that needs nothing the server holds
        talent = {"id": "P1", "name": "Pia Quay", "deleted": False}
        peer.get("talents", type=Map)["P1"] = Map(talent)
        auth = {"Authorization": f"Bearer {token}"}
        pushed = httpx.post(
            f"{served.url}/sync/{production_id}/push",
            headers=auth,
            content=peer.get_update(),
            timeout=PATIENCE,
        )
        assert pushed.status_code == 200, pushed.text
        merged_at = time.time()  # the first open's stall (the CRDT's load) began before
        assert wait_until(lambda: _fresh(server, production_id))
        stats = httpx.get(f"{served.url}/stats", headers=auth, timeout=PATIENCE).json()
    finally:
        assert served.stop() == 0
    stalls = [s for s in stats["loop"]["stalls"] if s["at"] >= merged_at]
    on_the_loop = [s for s in stalls if s["cpu_ms"] >= ON_THE_LOOP_MS]
    assert not on_the_loop, on_the_loop
    assert "Traceback" not in served.log.read_text()
    with Workspace.open(server) as ws:
        # Its large collection split; the small ones (read_copy.SPLIT_PAST) stay whole.
        held = _whole(ws, production_id)
        assert held == sorted(set(read_copy.COLLECTIONS) - {"talents"})
        copy = ws.reading(production_id).doc
        assert isinstance(copy, read_copy.ReadCopy)
        from_copy = copy.all(Talent, include_deleted=True)
    with Workspace.open(server) as ws:
        from_crdt = ws.production(production_id).doc.all(Talent, include_deleted=True)
    assert len(from_copy) == LARGE + 1 and from_copy == from_crdt


def _waiting_pair(path: Path, talent: str) -> tuple[bytes, bytes]:
    """Two updates of one peer, made in this order: ``first`` adds a talent (Ines
    Marr), ``second`` gives ``talent`` the agent Lee Wake. ``second`` alone waits: Yrs
    keeps its structs pending until ``first``'s (earlier clocks of the same client)
    arrive, and the merge of ``first`` then integrates both, so it changes an entity it
    does not name."""
    with Workspace.open(path) as ws:
        state = ws.production().doc.encode_update()
    peer = Doc()
    peer.apply_update(state)
    talents = peer.get("talents", type=Map)
    before = peer.get_state()
    talents["P1"] = Map({"id": "P1", "name": "Ines Marr", "deleted": False})
    first, middle = peer.get_update(before), peer.get_state()
    talents[talent]["agent"] = "Lee Wake"
    return first, peer.get_update(middle)


def _push(url: str, token: str, production_id: str, update: bytes) -> None:
    pushed = httpx.post(
        f"{url}/sync/{production_id}/push",
        headers={"Authorization": f"Bearer {token}"},
        content=update,
        timeout=PATIENCE,
    )
    assert pushed.status_code == 200, pushed.text


def _names(answers: dict[tuple[str, ...], object]) -> set[str]:
    talents = answers[("list", "talents", "--json")]
    assert isinstance(talents, list)
    return {t["name"] for t in talents}


def _as_from_the_crdt_and_a_fresh_copy(path: Path, answers: dict[tuple[str, ...], object]) -> None:
    _as_from_the_crdt(path, answers)  # the first command loads the CRDT and keeps a copy
    assert _answers(path) == (answers, True)  # every command, from that fresh copy


@pytest.mark.parametrize("closes_first", ["the command", "the server"])
def test_an_update_that_completes_a_waiting_one_is_folded_in_whoever_closes_first(
    tmp_path: Path, closes_first: str
) -> None:
    # The server merges a peer's update whose structs wait for one sent later, while a
    # command holds the production open (the waiting structs in its document too) and
    # writes. The later update completes the waiting one: the server's merge reports
    # both entities, its document holding the log right up to each row, so both rows
    # are exact, and whichever process closes first folds them in from the log.
    server = tmp_path / "server"
    production_id, talents = _seed(server, quiet=60)
    assert not _answers(server)[1]  # the first read keeps a copy
    first, second = _waiting_pair(server, talents[0])
    token = make_token(server)
    served = Served(server, tmp_path / "serve.log")
    writer = None
    try:
        _push(served.url, token, production_id, second)  # waits: changes nothing yet
        writer = _writer(server, talents[1], "Mira Vale")
        _push(served.url, token, production_id, first)  # integrates both
        with Workspace.open(server) as ws:
            after = ws.store.logged_after(production_id, 0)[-3:]
            assert ws.store.exact_rows(production_id, after) == {after[0], after[2]}
        if closes_first == "the server":
            assert served.stop() == 0
            assert _fresh(server, production_id)  # its rows and the command's, folded
        writer.communicate("\n", timeout=PATIENCE)
        assert writer.returncode == 0
        assert _fresh(server, production_id)  # the command's patch, or nothing left to do
        answers, from_copy = _answers(server)
        assert from_copy and {"Lee Wake", "Mira Vale"} <= _agents(answers)
        assert "Ines Marr" in _names(answers)
        _as_from_the_crdt_and_a_fresh_copy(server, answers)
    finally:
        if writer is not None and writer.poll() is None:
            _kill(writer)
        served.stop()
    assert "Traceback" not in served.log.read_text()


@pytest.mark.parametrize("closes_first", ["the one that merged first", "the other"])
def test_an_update_merged_beside_another_processs_merge_leaves_the_copy_stale(
    tmp_path: Path, closes_first: str
) -> None:
    # The hard case: two processes merge the two halves of a waiting pair at once, each
    # without the other's. Neither document ever held both before the other's row was
    # logged: the second merge reports the new talent only, and the entity the pair
    # changes together is in no row. Its row is not exact: the copy stays stale (so
    # unread), never wrong, whoever closes first.
    path = tmp_path / "ws"
    production_id, talents = _seed(path)
    assert not _answers(path)[1]
    first, second = _waiting_pair(path, talents[0])
    one, other = Workspace.open(path), Workspace.open(path)
    try:
        a, b = one.production(), other.production()
        started = b.begin_merge(first)  # b holds the log as it is now
        a.apply_update(second, origin="remote")  # waits in a's document, reports nothing
        merged = b.merge_document(first, started, origin="remote")
        b.finish_merge(merged, origin="remote")
        assert ("talents", talents[0]) not in merged.changes  # b never held `second`
        rows = one.store.logged_after(production_id, 0)[-2:]
        assert one.store.exact_rows(production_id, rows) == {rows[0]}
        order = (one, other) if closes_first == "the one that merged first" else (other, one)
        for workspace in order:
            workspace.close()
            assert not _fresh(path, production_id)
    finally:
        one.close()
        other.close()
    answers, from_copy = _answers(path)  # loads the CRDT: the copy kept anew
    assert not from_copy and "Lee Wake" in _agents(answers) and "Ines Marr" in _names(answers)
    _as_from_the_crdt_and_a_fresh_copy(path, answers)


def _whole(ws: Workspace, production_id: str) -> list[str]:
    """The collections the production's stored read copy holds whole (unsplit)."""
    sizes = ws.store.read_copy_part_sizes(production_id)
    return sorted(name for name in sizes if name in read_copy.COLLECTIONS)
