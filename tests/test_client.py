"""The sync client against a real server: one-shot HTTP, one-shot y-websocket, and live
mode in real processes (presence, CLI edits, a server restart)."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sync_helpers import PATIENCE, ctrl_c_works, wait_until

from castroom.core import model
from castroom.core.errors import CastroomError
from castroom.core.workspace import Workspace
from castroom.sync import client
from castroom.sync.auth import TokenStore
from castroom.sync.server import ServerThread

EXE = str(Path(sys.executable).with_name("castroom"))
#: ``--duration`` of a live sync the test stops itself: past every wait in the test, so
#: that on a loaded machine the session does not end before the test is done with it.
LIFETIME = "300"


class Seeded:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.path = root / "server"
        with Workspace.open(self.path, member="casting") as ws:
            production = ws.create_production("Harbour Lights")
            self.pid = production.id
            production.doc.add(model.Talent, name="Ada Stone")
            self.other = ws.create_production("Other Show").id
            tokens = TokenStore(ws.store)
            self.write = tokens.create("write")[1]
            self.read = tokens.create("read")[1]
            self.only_other = tokens.create("write", production=self.other)[1]

    def names(self, path: Path | None = None, pid: str | None = None) -> set[str]:
        with Workspace.open(path or self.path, create=False) as ws:
            if (pid or self.pid) not in dict(ws.productions()):
                return set()
            return {t.name for t in ws.production(pid or self.pid).doc.all(model.Talent)}


def state_of(path: Path) -> str:
    """Everything in a workspace, to compare before and after."""
    with Workspace.open(path, create=False) as ws:
        data = {pid: ws.production(pid).doc.to_data() for pid, _ in ws.productions()}
        rows = ws.store.db.execute("SELECT COUNT(*) FROM updates").fetchone()[0]
    return json.dumps([data, rows], sort_keys=True, default=str)


@pytest.fixture
def seeded(tmp_path: Path) -> Seeded:
    return Seeded(tmp_path)


@pytest.fixture
def server(seeded: Seeded) -> Iterator[ServerThread]:
    with ServerThread(seeded.path) as running:
        yield running


# -- one-shot HTTP ---------------------------------------------------------------------------


def test_first_sync_adopts_then_pushes_back(
    seeded: Seeded, server: ServerThread, tmp_path: Path
) -> None:
    lines: list[str] = []
    with Workspace.open(tmp_path / "laptop", member="ben") as laptop:
        moved = client.sync_http(laptop, server.url, token=seeded.write, echo=lines.append)
        assert {m.production_id for m in moved} == {seeded.pid, seeded.other}
        assert all(m.created_here for m in moved)
        assert any("Harbour Lights" in line and "new here" in line for line in lines)
        laptop.production(seeded.pid).doc.add(model.Talent, name="Ben Ray")
        lines.clear()
        again = client.sync_http(
            laptop, server.url + "/sync/", token=seeded.write, echo=lines.append
        )
        harbour = next(m for m in again if m.production_id == seeded.pid)
        assert harbour.pushed_changes == 1 and harbour.pulled_changes == 0
        assert any("pushed 1 change" in line for line in lines)
        assert any("Other Show" in line and "up to date" in line for line in lines)
    assert seeded.names() == {"Ada Stone", "Ben Ray"}


def test_both_sides_edit_then_converge(
    seeded: Seeded, server: ServerThread, tmp_path: Path
) -> None:
    with Workspace.open(tmp_path / "laptop") as laptop:
        client.sync_http(laptop, server.url, token=seeded.write)
        laptop.production(seeded.pid).doc.add(model.Talent, name="Laptop Edit")
        with Workspace.open(seeded.path, create=False) as ws:
            ws.production(seeded.pid).doc.add(model.Talent, name="Server Edit")
        moved = client.sync_http(laptop, server.url, token=seeded.write)
        harbour = next(m for m in moved if m.production_id == seeded.pid)
        assert harbour.pulled_changes == 1 and harbour.pushed_changes == 1
        here = {t.name for t in laptop.production(seeded.pid).doc.all(model.Talent)}
    assert here == seeded.names() == {"Ada Stone", "Laptop Edit", "Server Edit"}


def test_local_production_is_pushed_to_the_server(
    seeded: Seeded, server: ServerThread, tmp_path: Path
) -> None:
    with Workspace.open(tmp_path / "laptop") as laptop:
        mine = laptop.create_production("Laptop Only")
        mine.doc.add(model.Talent, name="Dee")
        moved = client.sync_http(laptop, server.url, token=seeded.write)
        assert any(m.created_there and m.production_id == mine.id for m in moved)
        assert seeded.names(pid=mine.id) == {"Dee"}


def test_read_token_pulls_but_never_pushes(
    seeded: Seeded, server: ServerThread, tmp_path: Path
) -> None:
    with Workspace.open(tmp_path / "laptop") as laptop:
        client.sync_http(laptop, server.url, token=seeded.read)
        laptop.production(seeded.pid).doc.add(model.Talent, name="Not Sent")
        laptop.create_production("Not Sent Either")
        lines: list[str] = []
        moved = client.sync_http(laptop, server.url, token=seeded.read, echo=lines.append)
        assert all(m.pushed_bytes == 0 for m in moved)
        assert any("Harbour" in x and "not sent (read-only token)" in x for x in lines)
        assert any(
            "Not Sent Either" in x and "a read-only token cannot add productions" in x
            for x in lines
        )
    assert seeded.names() == {"Ada Stone"}


def test_production_token_and_filter(seeded: Seeded, server: ServerThread, tmp_path: Path) -> None:
    with Workspace.open(tmp_path / "laptop") as laptop:
        moved = client.sync_http(laptop, server.url, token=seeded.only_other)
        assert [m.production_id for m in moved] == [seeded.other]
        laptop.create_production("Mine Only")  # this token may not add it to the server
        moved = client.sync_http(laptop, server.url, token=seeded.only_other)
        assert [m.not_sent for m in moved if m.production_id != seeded.other] == [
            "this token is limited to another production"
        ]
        # Naming a production this token does not reach is a failure, not a quiet no-op,
        # even though the server holds it (and nothing changes here).
        client.sync_http(laptop, server.url, token=seeded.write, production="Harbour Lights")
        before = laptop.production(seeded.pid).doc.encode_update()
        with pytest.raises(
            CastroomError,
            match=r"^Harbour Lights not synced: this token is limited to another production$",
        ):
            client.sync_http(
                laptop, server.url, token=seeded.only_other, production="Harbour Lights"
            )
        assert laptop.production(seeded.pid).doc.encode_update() == before
        moved = client.sync_http(
            laptop, server.url, token=seeded.write, production="Harbour Lights"
        )
        assert [m.production_id for m in moved] == [seeded.pid]
        with pytest.raises(CastroomError, match="matches no production"):
            client.sync_http(laptop, server.url, token=seeded.write, production="Nope")


def test_unreachable_server_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "laptop"
    with Workspace.open(path) as laptop:
        laptop.create_production("Mine").doc.add(model.Talent, name="Ada")
    before = state_of(path)
    from castroom.sync.server import bind_socket

    sock = bind_socket("127.0.0.1", 0)  # a port nobody answers on once closed
    port = sock.getsockname()[1]
    sock.close()
    with Workspace.open(path) as laptop:
        with pytest.raises(CastroomError, match="cannot reach"):
            client.sync_http(laptop, f"http://127.0.0.1:{port}", token="t", timeout=5)
        with pytest.raises(CastroomError, match="cannot sync"):
            client.sync_websocket(laptop, f"ws://127.0.0.1:{port}", token="t", timeout=5)
    assert state_of(path) == before


def test_refused_token_changes_nothing(
    seeded: Seeded, server: ServerThread, tmp_path: Path
) -> None:
    path = tmp_path / "laptop"
    with Workspace.open(path) as laptop:
        laptop.create_production("Mine")
    before = state_of(path)
    with Workspace.open(path) as laptop:
        with pytest.raises(CastroomError, match=r"refused \(401\): invalid, expired or revoked"):
            client.sync_http(laptop, server.url, token="crt_0_bad")
        with pytest.raises(CastroomError, match=r"refused \(401\)"):
            client.sync_websocket(laptop, server.ws_url, token="crt_0_bad", production=seeded.pid)
    assert state_of(path) == before


class MisbehavingPeer:
    """A server-like HTTP endpoint on 127.0.0.1 answering each production's pull with
    fixed bytes (good or corrupt), as a broken or hostile peer would."""

    def __init__(self, answers: dict[str, bytes], state_vectors: dict[str, bytes]) -> None:
        import base64
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.pushes: list[str] = []
        peer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, body: bytes, headers: dict[str, str]) -> None:
                self.send_response(200)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                listing = {
                    "scope": "write",
                    "all_productions": False,
                    "productions": [{"id": pid, "title": ""} for pid in answers],
                }
                self._send(json.dumps(listing).encode(), {"Content-Type": "application/json"})

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                _, _, pid, action = self.path.split("/")
                if action == "push":
                    peer.pushes.append(pid)
                    self._send(b'{"changed": 0}', {"Content-Type": "application/json"})
                    return
                encoded = base64.b64encode(state_vectors[pid]).decode()
                self._send(answers[pid], {"X-Castroom-State-Vector": encoded})

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> MisbehavingPeer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


def _integration_breaker(base: bytes, update: bytes) -> bytes:
    """A mutation of ``update`` that decodes but fails half-way through integration on
    top of ``base`` (as found by fuzzing: see tests/test_document.py)."""
    from pycrdt import Doc, get_state

    for position in range(len(update)):
        for value in range(4):
            mutated = bytearray(update)
            mutated[position] = value
            try:
                get_state(bytes(mutated))  # decodes
            except BaseException as exc:  # Yrs panics are BaseExceptions
                if isinstance(exc, KeyboardInterrupt):
                    raise
                continue
            raw = Doc()
            raw.apply_update(base)
            try:
                raw.apply_update(bytes(mutated))
            except BaseException as exc:
                if isinstance(exc, KeyboardInterrupt):
                    raise
                return bytes(mutated)
    raise AssertionError("no integration-breaking mutation found")


@pytest.mark.parametrize("corruption", ["undecodable", "fails-to-integrate"])
def test_a_bad_answer_for_one_production_changes_no_production(
    tmp_path: Path, corruption: str
) -> None:
    """One production's pull answers a good update, the next one's a corrupt one: the
    sync fails and neither production changed (nothing merged, nothing pushed)."""
    from castroom.core.document import CastDocument

    path = tmp_path / "laptop"
    with Workspace.open(path, member="ben") as laptop:
        first = laptop.create_production("First Show")
        first.doc.add(model.Talent, name="Ada Stone")
        second = laptop.create_production("Second Show")
        second.doc.add(model.Talent, name="Cy Moss")
        assert first.id is not None and second.id is not None
        # The peer holds one more talent in each production.
        answers, state_vectors = {}, {}
        for production in (first, second):
            peer = CastDocument()
            peer.apply_update(production.doc.encode_update())
            peer.add(model.Talent, name="From The Peer")
            answers[production.id] = peer.encode_update(production.doc.state_vector())
            state_vectors[production.id] = peer.state_vector()
        good = answers[second.id]
        if corruption == "undecodable":
            answers[second.id] = b"\x01\xff\xff\xff\xff\x0f\x00corrupt" + good[:4]
        else:
            answers[second.id] = _integration_breaker(second.doc.encode_update(), good)
    before = state_of(path)
    with MisbehavingPeer(answers, state_vectors) as peer_server, Workspace.open(path) as laptop:
        with pytest.raises(CastroomError, match="sent a bad update"):
            client.sync_http(laptop, peer_server.url, token="t")
        assert peer_server.pushes == []
    assert state_of(path) == before
    # A good answer for both then merges both.
    answers[second.id] = good
    with MisbehavingPeer(answers, state_vectors) as peer_server, Workspace.open(path) as laptop:
        moved = client.sync_http(laptop, peer_server.url, token="t")
        assert [m.pulled_changes for m in moved] == [1, 1]
        for pid in answers:
            names = {t.name for t in laptop.production(pid).doc.all(model.Talent)}
            assert "From The Peer" in names


# -- one-shot over plain y-websocket ---------------------------------------------------------


def test_websocket_one_shot_adopts_and_pushes(
    seeded: Seeded, server: ServerThread, tmp_path: Path
) -> None:
    with Workspace.open(tmp_path / "laptop") as laptop:
        moved = client.sync_websocket(
            laptop, server.ws_url, token=seeded.write, production=seeded.pid
        )
        assert moved.created_here
        assert {t.name for t in laptop.production(seeded.pid).doc.all(model.Talent)} == {
            "Ada Stone"
        }
        laptop.production(seeded.pid).doc.add(model.Talent, name="Over WS")
        lines: list[str] = []
        client.sync_websocket(laptop, server.ws_url, token=seeded.write, echo=lines.append)
    assert seeded.names() == {"Ada Stone", "Over WS"}
    # Every line names the production; the byte count is not mistaken for changes.
    assert all(line.startswith("Harbour Lights") for line in lines), lines
    assert re.fullmatch(
        r"Harbour Lights \(\.\.\.\w{8}\): .* \([\d,]+ bytes sent in all\)", lines[-1]
    )


def test_websocket_empty_room_is_an_error(
    seeded: Seeded, server: ServerThread, tmp_path: Path
) -> None:
    with Workspace.open(tmp_path / "laptop") as laptop:
        with pytest.raises(CastroomError, match="refused \\(404\\)"):
            client.sync_websocket(laptop, server.ws_url, token=seeded.write, production="NOPE")
        assert laptop.productions() == []


# -- helpers for live mode -----------------------------------------------------------------------


def test_urls() -> None:
    assert client.http_base("http://h:1/sync/") == "http://h:1"
    assert client.websocket_base("https://h:1") == "wss://h:1/sync"
    assert client.websocket_base("ws://h:1/rooms/") == "ws://h:1/rooms"
    assert client.room_url("ws://h:1/sync", "P 1") == "ws://h:1/sync/P%201"
    assert client.room_url("ws://h:1/sync?x=1", "P1") == "ws://h:1/sync/P1?x=1"


def test_backoff_grows_and_resets() -> None:
    backoff = client.Backoff(0.1, 2, 1)
    delays = [backoff.next() for _ in range(6)]
    assert delays[0] < 0.13 and all(d <= 1.25 for d in delays) and delays[3] >= 0.8
    backoff.reset()
    assert backoff.next() < 0.13


def test_describe_presence() -> None:
    states = {
        1: {"user": {"name": "Ada", "device": "lap"}},
        2: {},
        3: {"user": {"name": "Ben"}},
        9: {"x": 1},
    }
    assert client.describe_presence(states, own=3) == ["Ada (lap)", "client 2", "client 9"]


# -- live mode in real processes -----------------------------------------------------------------


class Proc:
    """A castroom subprocess whose output goes to a file (read at any time)."""

    def __init__(self, log: Path, *args: str) -> None:
        self.log = log
        self.handle = log.open("w")
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(
            [EXE, *args],
            stdout=self.handle,
            stderr=subprocess.STDOUT,
            env=env,
            text=True,
            preexec_fn=ctrl_c_works,  # stop() sends it a Ctrl-C
        )

    def output(self) -> str:
        return self.log.read_text()

    def wait_line(self, pattern: str, timeout: float = PATIENCE) -> re.Match[str]:
        found = wait_until(lambda: re.search(pattern, self.output()), timeout)
        assert found, f"no {pattern!r} in output:\n{self.output()}"
        return found

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=PATIENCE)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self.handle.close()


def start_server(path: Path, log: Path, port: int = 0) -> tuple[Proc, str]:
    proc = Proc(log, "--workspace", str(path), "serve", "--port", str(port))
    url = proc.wait_line(r"at (http://127\.0\.0\.1:\d+)").group(1)
    return proc, url


def live_sync(
    log: Path,
    workspace: Path,
    url: str,
    token: str,
    *,
    member: str | None = None,
    production: str | None = None,
) -> Proc:
    """``castroom sync URL --token T --live`` on ``workspace`` as a process of its own,
    alive past every wait of the test (``LIFETIME``)."""
    who = ["--member", member] if member else []
    only = ["--production", production] if production else []
    return Proc(
        log,
        *("--workspace", str(workspace), *who, "sync", url, "--token", token, *only),
        *("--live", "--duration", LIFETIME),
    )


def cli(path: Path, *args: str, member: str = "casting") -> None:
    subprocess.run(
        [EXE, "--workspace", str(path), "--member", member, *args],
        check=True,
        capture_output=True,
        timeout=PATIENCE,
    )


@pytest.mark.slow
def test_live_peers_see_each_other_and_cli_edits(seeded: Seeded, tmp_path: Path) -> None:
    server, url = start_server(seeded.path, tmp_path / "server.log")
    peers: list[Proc] = []
    try:
        for name in ("ben", "carol"):
            peers.append(
                live_sync(tmp_path / f"{name}.log", tmp_path / name, url, seeded.write, member=name)
            )
        for peer in peers:
            peer.wait_line(r"live: 2 production")
        peers[0].wait_line(r"connected with: .*carol")
        peers[1].wait_line(r"connected with: .*ben")
        # An edit by a CLI command on ben's workspace (another process) reaches carol live.
        cli(tmp_path / "ben", "-p", seeded.pid, "add", "talent", "name=From Ben", member="ben")
        assert wait_until(lambda: "From Ben" in seeded.names(tmp_path / "carol"))
        # And an edit on the server's workspace reaches both.
        cli(seeded.path, "-p", seeded.pid, "add", "talent", "name=From Server")
        for name in ("ben", "carol"):
            assert wait_until(lambda n=name: "From Server" in seeded.names(tmp_path / n))
        peers[1].stop()
        peers[0].wait_line(r"no one else is connected")
    finally:
        for proc in (*peers, server):
            proc.stop()
    assert seeded.names() == {"Ada Stone", "From Ben", "From Server"}


@pytest.mark.slow
def test_live_client_reconnects_after_server_restart(seeded: Seeded, tmp_path: Path) -> None:
    server, url = start_server(seeded.path, tmp_path / "server1.log")
    port = url.rsplit(":", 1)[1]
    laptop = tmp_path / "laptop"
    live = live_sync(tmp_path / "live.log", laptop, url, seeded.write)
    try:
        live.wait_line("no one else is connected")
        server.stop()
        live.wait_line("reconnecting in")
        # Edited while the server is down: kept locally, sent after the reconnect.
        cli(laptop, "-p", seeded.pid, "add", "talent", "name=Offline Edit")
        server, _ = start_server(seeded.path, tmp_path / "server2.log", int(port))
        assert wait_until(lambda: "Offline Edit" in seeded.names()), live.output()
        cli(seeded.path, "-p", seeded.pid, "add", "talent", "name=After Restart")
        assert wait_until(lambda: "After Restart" in seeded.names(laptop)), live.output()
    finally:
        live.stop()
        server.stop()


@pytest.mark.slow
def test_live_client_waits_for_a_server_not_up_yet(seeded: Seeded, tmp_path: Path) -> None:
    """--live started while the server is down (restarting, not up yet) retries its
    opening sync with backoff instead of giving up, then stays live."""
    with socket.socket() as probe:  # a free loopback port nobody listens on yet
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    laptop = tmp_path / "laptop"
    live = live_sync(tmp_path / "live.log", laptop, f"http://127.0.0.1:{port}", seeded.write)
    server = None
    try:
        live.wait_line(r"cannot reach .*; retrying in")
        # Nothing arrived (and nothing broke) while the server was away.
        assert not (laptop / "castroom.db").exists() or seeded.names(laptop) == set()
        server, _ = start_server(seeded.path, tmp_path / "server.log", port)
        live.wait_line("no one else is connected")
        assert "Ada Stone" in seeded.names(laptop)
        cli(seeded.path, "-p", seeded.pid, "add", "talent", "name=Once Up")
        assert wait_until(lambda: "Once Up" in seeded.names(laptop)), live.output()
    finally:
        live.stop()
        if server is not None:
            server.stop()


def test_live_gives_up_on_an_unreachable_server_within_its_duration(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            EXE,
            "--workspace",
            str(tmp_path / "x"),
            "sync",
            "http://127.0.0.1:9",
            "--live",
            "--duration",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=PATIENCE,
    )
    assert result.returncode == 1
    assert re.search(r"Error: gave up after \d+ attempt\(s\): cannot reach", result.stderr)


def test_a_url_with_a_production_path_says_to_give_the_server_address(
    seeded: Seeded, server: ServerThread, tmp_path: Path
) -> None:
    with Workspace.open(tmp_path / "laptop") as laptop:
        url = f"{server.url}/sync/{seeded.pid}"
        with pytest.raises(CastroomError) as refused:
            client.sync_http(laptop, url, token=seeded.write)
        assert str(refused.value) == (
            f"no castroom server at {url}: give the server's address ({server.url})"
            " and pick a production with --production"
        )
        assert laptop.productions() == []


def test_live_client_stops_at_once_when_its_token_is_revoked(
    seeded: Seeded, server: ServerThread, tmp_path: Path
) -> None:
    with Workspace.open(seeded.path, create=False) as ws:
        info, secret = TokenStore(ws.store).create("write")
    live = live_sync(tmp_path / "live.log", tmp_path / "laptop", server.url, secret)
    try:
        live.wait_line("no one else is connected")
        with Workspace.open(seeded.path, create=False) as ws:
            TokenStore(ws.store).revoke(info.id)
        assert live.proc.wait(timeout=PATIENCE) == 1, live.output()
        assert "token revoked" in live.output()
        assert "reconnecting in" not in live.output()  # a refusal is not retried
    finally:
        live.stop()


def test_live_fatal_refusal_exits_1(seeded: Seeded, server: ServerThread, tmp_path: Path) -> None:
    result = subprocess.run(
        [
            EXE,
            "--workspace",
            str(tmp_path / "x"),
            "sync",
            server.ws_url,
            "--token",
            seeded.only_other,
            "--production",
            seeded.pid,
            "--live",
            "--duration",
            "10",
        ],
        capture_output=True,
        text=True,
        timeout=PATIENCE,
    )
    assert result.returncode == 1
    assert "refused (403)" in result.stderr


def test_sync_live_in_process_bounded(seeded: Seeded, server: ServerThread, tmp_path: Path) -> None:
    """The synchronous entry point returns after ``duration``."""
    lines: list[str] = []
    with Workspace.open(tmp_path / "laptop") as laptop:
        started = time.monotonic()
        client.sync_live(laptop, server.url, token=seeded.read, echo=lines.append, duration=1.5)
        assert time.monotonic() - started < PATIENCE  # it ends (it does not stay live)
        assert seeded.pid in dict(laptop.productions())
    assert any(line.startswith("live:") for line in lines)


def test_live_goes_live_only_for_productions_the_server_serves(
    seeded: Seeded, server: ServerThread, tmp_path: Path
) -> None:
    """A production-scoped token while this workspace holds a second production: that one
    is reported and left out; the served one stays live (its WebSocket would be refused)."""
    import threading

    lines: list[str] = []
    with Workspace.open(tmp_path / "laptop") as laptop:
        mine = laptop.create_production("Mine Only").id
        assert mine is not None

        def edit_once_live() -> None:
            # Once the laptop is in the served production's room, edit it on the server.
            rooms = server.app_state.rooms
            if wait_until(lambda: seeded.other in rooms and rooms[seeded.other].peers):
                with Workspace.open(seeded.path, create=False) as ws:
                    ws.production(seeded.other).doc.add(model.Talent, name="Live Arrival")

        def arrived() -> bool:
            talents = laptop.production(seeded.other).doc.all(model.Talent)
            return "Live Arrival" in {t.name for t in talents}

        editor = threading.Thread(target=edit_once_live, daemon=True)
        editor.start()
        started = time.monotonic()
        client.sync_live(
            laptop,
            server.url,
            token=seeded.only_other,
            echo=lines.append,
            duration=2 * PATIENCE,
            stop=arrived,
        )
        assert time.monotonic() - started < PATIENCE  # ended by stop(), not by duration
        editor.join(PATIENCE)
        assert arrived(), lines
    assert any(line.startswith("live: 1 production(s)") for line in lines), lines
    assert any("Mine Only" in line and "not kept live" in line for line in lines), lines
    assert not any("refused" in line for line in lines), lines


def test_moved_label_tells_productions_apart() -> None:
    # Two ULIDs made in the same millisecond share their first 10 characters.
    a = client.Moved("01J0000000AAAAAAAAAAAAAAAA", "Pilot")
    b = client.Moved("01J0000000BBBBBBBBBBBBBBBB", "Pilot")
    assert a.describe() != b.describe()
    assert "AAAAAAAA" in a.describe() and "Pilot" in a.describe()


EDITOR = """
import sys, time
from castroom.core import model
from castroom.core.workspace import Workspace
path, pid, who, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
with Workspace.open(path, create=False, member=who) as ws:
    doc = ws.production(pid).doc
    for i in range(count):
        doc.add(model.Talent, name=f"{who} {i}")
        time.sleep(0.02)
"""


def everything(path: Path, pid: str) -> str:
    with Workspace.open(path, create=False) as ws:
        return json.dumps(ws.production(pid).doc.to_data(), sort_keys=True, default=str)


@pytest.mark.slow
def test_three_live_workspaces_edit_concurrently_and_converge(
    seeded: Seeded, tmp_path: Path
) -> None:
    """Three machines, each with a live sync and an editor process of its own, edit at
    once; one sync is killed mid-way (SIGKILL) and restarted. Nothing is lost."""
    server, url = start_server(seeded.path, tmp_path / "server.log")
    names = ("ann", "bob", "cat")
    count = 25
    lives: dict[str, Proc] = {}
    editors: list[subprocess.Popen[bytes]] = []

    def live(name: str, log: str) -> Proc:
        return live_sync(
            tmp_path / log, tmp_path / name, url, seeded.write, member=name, production=seeded.pid
        )

    try:
        for name in names:
            lives[name] = live(name, f"{name}.log")
        for name in names:
            lives[name].wait_line("connected")
        for name in names:
            editors.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-c",
                        EDITOR,
                        str(tmp_path / name),
                        seeded.pid,
                        name,
                        str(count),
                    ]
                )
            )
        time.sleep(0.3)
        lives["bob"].proc.kill()  # mid-sync, no goodbye
        lives["bob"].proc.wait(timeout=5)
        for editor in editors:
            assert editor.wait(timeout=PATIENCE) == 0
        lives["bob"] = live("bob", "bob-again.log")
        expected = {"Ada Stone"} | {f"{n} {i}" for n in names for i in range(count)}
        for path in [seeded.path, *(tmp_path / n for n in names)]:
            assert wait_until(lambda p=path: seeded.names(p) == expected), (
                path,
                expected - seeded.names(path),
            )
        reference = everything(seeded.path, seeded.pid)
        for name in names:
            assert everything(tmp_path / name, seeded.pid) == reference
    finally:
        for editor in editors:
            if editor.poll() is None:
                editor.kill()
        for proc in (*lives.values(), server):
            proc.stop()


def test_server_with_a_long_history_of_writers(seeded: Seeded, tmp_path: Path) -> None:
    """Thousands of past writers make a state vector too big for an HTTP header: the
    client then asks for it separately."""
    from pycrdt import Doc, Map, merge_updates

    from castroom.sync.server import MAX_HEADER

    updates = []
    for i in range(1500):
        writer = Doc()
        writer.get("scratch", type=Map)[f"k{i}"] = i
        updates.append(writer.get_update())
    with Workspace.open(seeded.path, create=False) as ws:
        production = ws.production(seeded.pid)
        production.apply_update(merge_updates(*updates), origin="sync", device="old")
        assert len(production.doc.state_vector()) * 4 / 3 > MAX_HEADER
    with ServerThread(seeded.path) as server, Workspace.open(tmp_path / "laptop") as laptop:
        client.sync_http(laptop, server.url, token=seeded.write)
        laptop.production(seeded.pid).doc.add(model.Talent, name="Late Writer")
        moved = client.sync_http(laptop, server.url, token=seeded.write)
        assert next(m for m in moved if m.production_id == seeded.pid).pushed_changes == 1
    assert seeded.names() == {"Ada Stone", "Late Writer"}


def test_websocket_sync_credits_the_member_who_sent_it(
    seeded: Seeded, server: ServerThread, tmp_path: Path
) -> None:
    """Over WebSocket too the server's history names the sending member (any name: sent
    percent-encoded, since HTTP headers are ASCII)."""
    with Workspace.open(tmp_path / "laptop", member="Zoë Ng") as laptop:
        client.sync_websocket(laptop, server.ws_url, token=seeded.write, production=seeded.pid)
        laptop.production(seeded.pid).doc.add(model.Talent, name="Over WS")
        client.sync_websocket(laptop, server.ws_url, token=seeded.write)
    with Workspace.open(seeded.path, create=False) as ws:
        production = ws.production(seeded.pid)
        [talent] = [t for t in production.doc.all(model.Talent) if t.name == "Over WS"]
        [entry] = production.history(entity=talent.id)
    assert (entry.origin, entry.member) == ("sync", "Zoë Ng")


def test_live_picks_up_a_production_created_on_the_server_after_it_started(
    seeded: Seeded, server: ServerThread, tmp_path: Path
) -> None:
    """--live re-lists the server's productions: one created there after the session began
    goes live here too (adopted, then receiving edits), without a restart."""
    import threading

    lines: list[str] = []
    late: dict[str, str] = {}
    rooms = server.app_state.rooms

    def create_then_edit_live() -> None:
        if not wait_until(lambda: seeded.pid in rooms and seeded.other in rooms):
            return
        with Workspace.open(seeded.path, create=False) as ws:
            production = ws.create_production("Late Show")
            assert production.id is not None
            late["id"] = production.id
            production.doc.add(model.Talent, name="First Cast")
            # Once the laptop has joined the new production's room, edit it live.
            if wait_until(lambda: production.id in rooms and rooms[production.id].peers):
                production.doc.add(model.Talent, name="Live Arrival")

    with Workspace.open(tmp_path / "laptop") as laptop:

        def arrived() -> bool:
            if late.get("id") not in dict(laptop.productions()):
                return False
            talents = laptop.production(late["id"]).doc.all(model.Talent)
            return "Live Arrival" in {t.name for t in talents}

        editor = threading.Thread(target=create_then_edit_live, daemon=True)
        editor.start()
        client.sync_live(
            laptop,
            server.url,
            token=seeded.write,
            echo=lines.append,
            duration=2 * PATIENCE,
            discover_every=0.5,
            stop=arrived,
        )
        editor.join(PATIENCE)
        assert "id" in late, lines
        assert dict(laptop.productions()).get(late["id"]) == "Late Show", lines
        names = {t.name for t in laptop.production(late["id"]).doc.all(model.Talent)}
    assert names == {"First Cast", "Live Arrival"}, lines
    assert any(line.startswith("live: 2 production(s)") for line in lines), lines
    assert sum("Late Show: new on the server" in line for line in lines) == 1, lines


def test_the_client_does_not_load_the_server_stack() -> None:
    """A client sync needs no starlette or uvicorn (the shared headers are protocol's)."""
    code = (
        "import sys, castroom.sync.client\n"
        "print(sorted(m for m in ('starlette', 'uvicorn') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_token_travels_in_a_header_never_in_the_url(tmp_path: Path) -> None:
    """A relay (or the proxy in front of it) logs URLs: the token must not be in one."""
    import threading

    from websockets.sync.server import serve

    seen: list[tuple[str, str | None]] = []

    def handler(conn: Any) -> None:
        seen.append((conn.request.path, conn.request.headers.get("Authorization")))
        conn.close()

    with serve(handler, "127.0.0.1", 0) as relay:
        port = relay.socket.getsockname()[1]
        threading.Thread(target=relay.serve_forever, daemon=True).start()
        with Workspace.open(tmp_path / "laptop", member="ben") as laptop:
            pid = laptop.create_production("Harbour Lights").id
            with pytest.raises(CastroomError):
                client.sync_websocket(
                    laptop, f"ws://127.0.0.1:{port}/rooms", token="crt_a_secret", timeout=5
                )
        relay.shutdown()
    assert seen and all(path == f"/rooms/{pid}" for path, _ in seen)
    assert {auth for _, auth in seen} == {"Bearer crt_a_secret"}
