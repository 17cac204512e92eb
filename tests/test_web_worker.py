"""The dashboard's heavy work runs in its worker process, not on the server's event loop:
while an import, a ranking or an export is under way for one production, a peer of
another production still gets its round trip.

The proof is by the order of events, not by timing: a third-party plugin (a real
installed distribution, loaded by the real ``castroom serve`` and its worker) stops the
import, the ranking or the export at a gate until the test opens it. Another production's edit goes
from one peer to another, and ``/health`` answers, while the gate is shut: the job is
provably still running. On the event loop, the gate would have held every room until it
opened, and the edit would never have arrived within its bound.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pycrdt import Doc, Text
from sync_helpers import PATIENCE, wait_until
from test_sync_cli import Served
from websockets.sync.client import connect

from castroom.core import model
from castroom.core.workspace import Workspace
from castroom.sync import protocol as p
from castroom.sync.auth import TokenStore

#: Bounds (seconds): the gate opens by itself after GATE at the latest, so a failing test
#: never hangs the server; a round trip that takes longer than ROUND_TRIP fails.
ROUND_TRIP = PATIENCE
GATE = 2 * PATIENCE

PLUGIN = '''
import os, select
from castroom.core.hookspecs import hookimpl
from castroom.core.model import Talent, new_id
from castroom.core.registry import Exporter, Importer, ImportResult

GATE = os.environ["CASTROOM_TEST_GATE"]


def _wait_at_the_gate(what):
    """Say the job has started (a file), then wait until the test writes to the FIFO."""
    fifo = os.open(os.path.join(GATE, "fifo"), os.O_RDONLY | os.O_NONBLOCK)
    # Written whole, then named: the test never reads a half-written mark.
    with open(os.path.join(GATE, "started.part"), "w") as mark:
        mark.write(what)
    os.replace(os.path.join(GATE, "started.part"), os.path.join(GATE, "started"))
    try:
        select.select([fifo], [], [], GATE_SECONDS)
    finally:
        os.close(fifo)


def _read(source, view, options):
    _wait_at_the_gate("import")
    return ImportResult(entities=[Talent(id=new_id(), name="Gate Keeper")])


@hookimpl
def castroom_register_importers(register):
    register(Importer(name="gate", description="waits at the test's gate", run=_read,
                      claims=lambda path: path.suffix == ".gate"))


def _export(view, options):
    _wait_at_the_gate("export")
    return "talents: " + ", ".join(t.name for t in view.all(Talent))


@hookimpl
def castroom_register_exporters(register):
    register(Exporter(name="gate", description="waits at the test's gate", run=_export))


@hookimpl(tryfirst=True)
def castroom_rank_replacements(view, talent_id, role_id):
    _wait_at_the_gate("ranking")
    return None  # the built-in ranks
'''.replace("GATE_SECONDS", str(GATE))


@pytest.fixture
def gated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """``castroom serve`` with the gate plugin installed, over two productions."""
    site = tmp_path / "site"
    info = site / "castroom_gate-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: castroom_gate\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[castroom]\ngate = castroom_gate_plugin\n")
    (site / "castroom_gate_plugin.py").write_text(PLUGIN)
    gate = tmp_path / "gate"
    gate.mkdir()
    os.mkfifo(gate / "fifo")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]))
    monkeypatch.setenv("CASTROOM_TEST_GATE", str(gate))
    path = tmp_path / "server"
    with Workspace.open(path, member="casting") as ws:
        a = ws.create_production("Harbour Lights")
        ada = a.doc.add(model.Talent, name="Ada Stone")
        b = ws.create_production("Night Shift").id
        token = TokenStore(ws.store).create("write")[1]
    served = Served(path, tmp_path / "serve.log")
    try:
        yield {"served": served, "a": a.id, "b": b, "ada": ada.id, "token": token, "gate": gate}
    finally:
        _open(gate)
        code = served.stop()
        assert code in (0, -15), served.log.read_text()[-2000:]


def _open(gate: Path) -> None:
    """Let the job past the gate (a no-op when nothing waits there)."""
    try:
        fifo = os.open(gate / "fifo", os.O_WRONLY | os.O_NONBLOCK)
    except OSError:  # no reader: nothing is waiting
        return
    with os.fdopen(fifo, "w") as opened:
        opened.write("go")


def _another_room_round_trip(url: str, production: str, token: str) -> None:
    """One peer's edit of ``production`` reaches another peer, and /health answers."""
    sync = url.replace("http", "ws", 1) + f"/sync/{production}?token={token}"
    with (
        connect(sync, proxy=None, open_timeout=ROUND_TRIP) as watcher,
        connect(sync, proxy=None, open_timeout=ROUND_TRIP) as editor,
    ):
        doc = Doc()
        doc.get("notes", type=Text).insert(0, "while A works")
        editor.send(p.update_frame(doc.get_update()))
        while True:  # the watcher's own sync answers first, then the relayed edit
            frame = watcher.recv(timeout=ROUND_TRIP)
            assert isinstance(frame, bytes)
            if frame[:2] in (b"\x00\x01", b"\x00\x02") and b"while A works" in frame:
                break
    health = httpx.get(f"{url}/health", timeout=ROUND_TRIP)
    assert health.json() == {"status": "ok"}


@pytest.mark.parametrize("job", ["import", "ranking", "export"])
def test_another_room_is_served_while_an_import_a_ranking_or_an_export_runs(
    gated: dict[str, Any], job: str
) -> None:
    served, token, gate = gated["served"], gated["token"], gated["gate"]
    headers = {"Authorization": f"Bearer {token}"}
    api = f"{served.url}/api/{gated['a']}"
    answers: list[httpx.Response] = []

    def ask() -> None:
        if job == "import":
            answer = httpx.post(
                f"{api}/import/gate", params={"filename": "cast.gate"}, content=b"x",
                headers=headers, timeout=GATE + 30,
            )  # fmt: skip
        elif job == "ranking":
            answer = httpx.get(
                f"{api}/replacements", params={"talent": gated["ada"]}, headers=headers,
                timeout=GATE + 30,
            )  # fmt: skip
        else:
            answer = httpx.get(f"{api}/export/gate", headers=headers, timeout=GATE + 30)
        answers.append(answer)

    asking = threading.Thread(target=ask)
    asking.start()
    try:
        # 1. The job is under way, shut in at the gate.
        assert wait_until(lambda: (gate / "started").exists())
        assert (gate / "started").read_text() == job
        # 2. Meanwhile another production's peers get their round trip.
        _another_room_round_trip(served.url, gated["b"], token)
        assert not answers, "the job answered before the gate opened: no evidence"
    finally:
        _open(gate)
        asking.join(GATE + 60)
    # 3. Then the job finishes, with its usual answer.
    [answer] = answers
    if job == "import":
        assert answer.status_code == 200, answer.text
        assert answer.json()["created"] == 1
        with Workspace.open(gated["served"].log.parent / "server", create=False) as ws:
            names = [t.name for t in ws.production(gated["a"]).doc.all(model.Talent)]
        assert "Gate Keeper" in names
    elif job == "export":
        assert answer.status_code == 200, answer.text
        assert answer.text == "talents: Ada Stone"
        assert answer.headers["content-disposition"] == (
            'attachment; filename="harbour-lights-gate.txt"'
        )
    else:
        assert answer.status_code == 200, answer.text
        assert answer.json()["talent_id"] == gated["ada"]


def test_a_dead_worker_fails_its_job_and_the_next_job_starts_another() -> None:
    """dashboard.md: if the worker dies, the request that was running gets 503 (its
    WorkerFailed is a CastroomError, which the routes answer 503) and the next one starts
    a new worker. Here the job is the worker's own exit."""
    from castroom.sync.web.worker import Worker, WorkerFailed

    pool = Worker()
    try:
        first = asyncio.run(pool.run(os.getpid))
        with pytest.raises(WorkerFailed, match="worker process stopped"):
            asyncio.run(pool.run(os._exit, 3))
        second = asyncio.run(pool.run(os.getpid))
        assert len({first, second, os.getpid()}) == 3
    finally:
        pool.close()
