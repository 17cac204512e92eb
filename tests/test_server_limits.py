"""What one hostile peer may cost the server: half-open connections, slow heads and bodies,
too many sockets per token, presence floods, amplified answers, control characters in the
log. Real uvicorn servers on 127.0.0.1 (a thread, or `castroom serve` in a subprocess with
its file descriptors limited), real sockets."""

from __future__ import annotations

import contextlib
import logging
import os
import re
import resource
import select
import socket
import ssl
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
from patience import PATIENCE
from pycrdt import Doc, Map, Text
from sync_helpers import close_code, make_cert, raw_websocket, stop_process, wait_until
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from castroom.core import model, presenting, yupdate
from castroom.core.workspace import Workspace
from castroom.core.yupdate import decode_state_vector, walk_update
from castroom.sync import hocuspocus as hp
from castroom.sync import protocol as p
from castroom.sync.auth import TokenStore
from castroom.sync.limits import MAX_REQUEST_HEAD, PresenceLimits
from castroom.sync.server import ServerOptions, ServerThread

sys.path.insert(0, str(Path(__file__).parent / "data"))
import make_hostile as hostile

EXE = str(Path(sys.executable).with_name("castroom"))


class Seeded:
    def __init__(self, root: Path) -> None:
        self.path = root / "server"
        with Workspace.open(self.path, member="casting") as ws:
            production = ws.create_production("Harbour Lights")
            assert production.id is not None
            self.pid = production.id
            for i in range(50):
                production.doc.add(model.Talent, name=f"Talent {i}", notes="n" * 200)
            tokens = TokenStore(ws.store)
            self.write = tokens.create("write")[1]
            self.read = tokens.create("read")[1]
            self.other = tokens.create("read")[1]


@pytest.fixture
def seeded(tmp_path: Path) -> Seeded:
    return Seeded(tmp_path)


def ws(server: ServerThread, pid: str, token: str) -> ClientConnection:
    return connect(
        f"{server.ws_url}/{pid}?token={token}", proxy=None, open_timeout=PATIENCE, max_size=None
    )


def closed_with(conn: ClientConnection, timeout: float = PATIENCE) -> int | None:
    """The close code the server sent, waiting at most ``timeout``."""
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            conn.recv(timeout=deadline - time.monotonic())
    except ConnectionClosed as closed:
        return closed.rcvd.code if closed.rcvd else None
    except TimeoutError:
        return None
    return None


def presence(client: int, clock: int, size: int = 100) -> bytes:
    entry = p.AwarenessEntry(client, clock, {"user": {"name": "x" * size}})
    return p.awareness_frame(p.encode_awareness([entry]))


def frames_until_marker(conn: ClientConnection, timeout: float = PATIENCE) -> list[bytes]:
    """Send a step 1 as a marker and collect what arrives before its answer."""
    conn.send(p.step1_frame(Doc().get_state()))
    out = []
    deadline = time.monotonic() + timeout
    while True:
        frame = conn.recv(timeout=max(0.01, deadline - time.monotonic()))
        message = p.decode_message(frame)
        if message.sync_type is p.SyncType.STEP2:
            conn.recv(timeout=PATIENCE)  # and the server's own step 1, which follows it
            return out
        out.append(frame)


# -- connections -----------------------------------------------------------------------------


class Served:
    """`castroom serve` in a subprocess, its file descriptors limited to ``nofile``."""

    def __init__(self, workspace: Path, nofile: int, *extra: str) -> None:
        self.log = workspace.parent / "serve.log"
        with self.log.open("w") as out:
            self.proc = subprocess.Popen(
                [EXE, "--workspace", str(workspace), "serve", "--port", "0", *extra],
                stdout=out,
                stderr=subprocess.STDOUT,
                preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile)),
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        deadline = time.monotonic() + PATIENCE
        while not (found := re.search(r"at https?://127\.0\.0\.1:(\d+)", self.log.read_text())):
            if time.monotonic() > deadline or self.proc.poll() is not None:
                self.stop()
                raise AssertionError(f"server did not start:\n{self.log.read_text()}")
            time.sleep(0.05)
        self.port = int(found.group(1))

    def stop(self) -> None:
        stop_process(self.proc)


def half_open(port: int, count: int) -> list[socket.socket]:
    """``count`` connections that never send a byte."""
    socks = []
    for _ in range(count):
        sock = socket.socket()
        sock.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            sock.connect(("127.0.0.1", port))
        socks.append(sock)
    return socks


@pytest.mark.parametrize("config", ["", "[server]\nmax_connections = 20\n"], ids=["fd-cap", "set"])
def test_half_open_connections_do_not_keep_health_from_answering(
    seeded: Seeded, config: str
) -> None:
    """1,000 connections that never send a request, against a server with 256 file
    descriptors: the cap (from the descriptors, or the config's) drops the oldest idle."""
    with (seeded.path / "config.toml").open("a") as out:
        out.write("\n" + config)
    served = Served(seeded.path, nofile=256)
    socks: list[socket.socket] = []
    try:
        socks = half_open(served.port, 1000)
        # Before: a read timeout (accept failed with EMFILE while 1,000 idle sockets held on).
        answer = httpx.get(f"http://127.0.0.1:{served.port}/health", timeout=PATIENCE)
        assert answer.json() == {"status": "ok"}
    finally:
        for sock in socks:
            sock.close()
        served.stop()
    assert "Traceback" not in served.log.read_text()


def test_a_request_head_that_never_ends_is_dropped(seeded: Seeded) -> None:
    with ServerThread(seeded.path, options=ServerOptions(header_timeout=0.3)) as server:
        with socket.create_connection(("127.0.0.1", server.port), timeout=PATIENCE) as sock:
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")  # and never the blank line
            assert sock.recv(100) == b""  # closed by the server, within the bound
        guard = server.config.castroom_guard  # type: ignore[attr-defined]
        assert guard.dropped >= 1 and not guard.waiting


def test_a_request_body_that_stalls_gets_408(seeded: Seeded) -> None:
    with (
        ServerThread(seeded.path, options=ServerOptions(body_timeout=0.3)) as server,
        socket.create_connection(("127.0.0.1", server.port), timeout=PATIENCE) as sock,
    ):
        sock.sendall(
            f"POST /sync/{seeded.pid}/push HTTP/1.1\r\nHost: x\r\n"
            f"Authorization: Bearer {seeded.write}\r\nContent-Length: 1000\r\n\r\n"
            "0123456789".encode()
        )
        answer = b""
        while chunk := sock.recv(1000):  # until the server closes (bounded by timeout)
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 408") and b"paused" in answer, answer


def test_live_connections_are_capped_per_token_and_in_total(seeded: Seeded) -> None:
    options = ServerOptions(max_peers_per_token=2, max_peers=3)
    with ServerThread(seeded.path, options=options) as server, contextlib.ExitStack() as open_:
        counts = server.app_state.peer_counts
        first = open_.enter_context(ws(server, seeded.pid, seeded.read))
        open_.enter_context(ws(server, seeded.pid, seeded.read))
        with pytest.raises(InvalidStatus) as refused:
            ws(server, seeded.pid, seeded.read)
        assert refused.value.response.status_code == 429
        assert b"per token" in (refused.value.response.body or b"")
        open_.enter_context(ws(server, seeded.pid, seeded.other))
        with pytest.raises(InvalidStatus) as full:
            ws(server, seeded.pid, seeded.write)
        assert b"limit of 3 live connections" in (full.value.response.body or b"")
        first.close()
        deadline = time.monotonic() + PATIENCE
        while sum(counts.by_token.values()) >= 3 and time.monotonic() < deadline:
            time.sleep(0.02)
        open_.enter_context(ws(server, seeded.pid, seeded.read))  # room again


# -- presence --------------------------------------------------------------------------------


@pytest.fixture
def presence_server(seeded: Seeded) -> Iterator[ServerThread]:
    limits = PresenceLimits(clients_per_peer=2, state_bytes=1000, room_bytes=2500, burst=10)
    with ServerThread(seeded.path, options=ServerOptions(presence=limits)) as server:
        yield server


def test_presence_is_capped_per_peer_per_state_and_per_room(
    seeded: Seeded, presence_server: ServerThread
) -> None:
    too_many = p.awareness_frame(
        p.encode_awareness([p.AwarenessEntry(c, 1, {"n": c}) for c in (1, 2, 3)])
    )
    cases: list[tuple[bytes, int]] = [
        (too_many, 1008),
        (presence(7, 1, size=3000), 1009),  # refused before decoding: larger than it may be
        (presence(8, 1, size=990), 1008),  # decodes, but the state is over 1000 bytes
    ]
    for frame, code in cases:
        with ws(presence_server, seeded.pid, seeded.read) as conn:
            conn.send(frame)
            assert closed_with(conn) == code
    with contextlib.ExitStack() as open_:
        for client in (10, 11, 12):
            conn = open_.enter_context(ws(presence_server, seeded.pid, seeded.read))
            conn.send(presence(client, 1, size=900))
            frames_until_marker(conn) if client != 12 else None
        assert closed_with(conn) == 1008  # 3 x ~920 bytes > 2,500
        room = presence_server.app_state.rooms[seeded.pid]
        assert set(room.awareness.states) - {room.awareness.client_id} == {10, 11}


def test_a_presence_flood_is_rate_limited(seeded: Seeded, presence_server: ServerThread) -> None:
    with (
        ws(presence_server, seeded.pid, seeded.read) as flooder,
        ws(presence_server, seeded.pid, seeded.read) as watcher,
    ):
        frames_until_marker(watcher)
        started = time.monotonic()
        for clock in range(1, 201):
            flooder.send(presence(1, clock))
        frames_until_marker(flooder)  # every flood frame has been handled by now
        elapsed = time.monotonic() - started
        relayed = [f for f in frames_until_marker(watcher) if f[:1] == b"\x01"]
    assert len(relayed) <= 10 + 20 * elapsed + 1 < 200


def test_repeated_questions_are_answered_once(
    seeded: Seeded, presence_server: ServerThread
) -> None:
    """Twenty query-awareness frames, or twenty step 1s asking for everything, cost one
    answer: what is sent back is bounded by what was asked."""
    with (
        ws(presence_server, seeded.pid, seeded.read) as present,
        ws(presence_server, seeded.pid, seeded.read) as asker,
    ):
        present.send(presence(5, 1, size=800))
        frames_until_marker(present)
        frames_until_marker(asker)  # it has heard of client 5 by now
        for _ in range(20):
            asker.send(p.QUERY_AWARENESS_FRAME)
        answered = frames_until_marker(asker)
        # One answer: what changed since it joined (client 5); the other 19 get nothing.
        assert len(answered) == 1 and b'"xxxx' in answered[0]
    with ws(presence_server, seeded.pid, seeded.read) as fresh:
        for _ in range(20):
            fresh.send(p.step1_frame(b"\x00"))
        answers = [p.decode_message(fresh.recv(timeout=PATIENCE)) for _ in range(40)]
    sizes = [len(m.payload) for m in answers if m.sync_type is p.SyncType.STEP2]
    assert len(sizes) == 20 and sizes[0] > 10_000
    assert sum(sizes[1:]) == 19 * len(p.EMPTY_UPDATE)


# -- the log ---------------------------------------------------------------------------------


def test_control_characters_from_the_network_never_reach_the_log(
    seeded: Seeded, caplog: pytest.LogCaptureFixture
) -> None:
    with ServerThread(seeded.path) as server, caplog.at_level(logging.INFO, "castroom"):
        answer = httpx.post(
            f"{server.url}/sync/%1b%5b31mred%00/pull", content=b"", timeout=PATIENCE
        )
        assert answer.status_code == 401
        with pytest.raises(InvalidStatus):
            connect(
                f"{server.ws_url}/%1b%5D0%3Bowned%07?token=x", proxy=None, open_timeout=PATIENCE
            )
        httpx.get(
            f"{server.url}/productions",
            headers={"Authorization": f"Bearer {seeded.read}", "X-Castroom-Device": "d"},
            timeout=PATIENCE,
        )
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "refused" in text and "\\x1b[31mred\\x00" in text and "\\x07" in text
    assert not any(ch in text for ch in "\x1b\x00\x07"), text


# -- oversized frames --------------------------------------------------------------------------


def test_an_oversized_frame_is_refused_from_its_header(seeded: Seeded) -> None:
    """A frame whose header declares more than the update cap is refused before its body
    is read: the server closes 1009 although most of the body was never sent (uvicorn's
    own limit was twice the cap, so it waited for all of it)."""
    cap = 1024 * 1024
    with ServerThread(seeded.path, options=ServerOptions(max_message=cap)) as server:
        sock = raw_websocket(server.port, f"/sync/{seeded.pid}?token={seeded.write}")
        with sock:
            declared = cap + 64 * 1024
            mask = os.urandom(4)
            sock.sendall(bytes([0x82, 0x80 | 127]) + struct.pack("!Q", declared) + mask)
            sock.sendall(bytes(4096))  # a sliver of the body, then nothing
            assert close_code(sock, timeout=PATIENCE) == 1009
        # A frame at the cap still goes through (the y-protocols header on top of it).
        with ws(server, seeded.pid, seeded.write) as conn:
            conn.send(p.update_frame(bytes(cap - 16)))
            assert closed_with(conn, timeout=PATIENCE) in (1007, 1011)  # read, then refused


def test_a_request_head_over_the_limit_is_refused(seeded: Seeded) -> None:
    with ServerThread(seeded.path) as server:
        with socket.create_connection(("127.0.0.1", server.port), timeout=PATIENCE) as sock:
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Junk: " + b"a" * MAX_REQUEST_HEAD)
            answer = sock.recv(4096)
            assert answer.startswith(b"HTTP/1.1 400"), answer
        assert httpx.get(f"{server.url}/health", timeout=PATIENCE).json() == {"status": "ok"}


# -- heavy merges ------------------------------------------------------------------------------


def _two_productions(path: Path) -> tuple[str, str, str]:
    """A workspace with productions A and B: (A's id, B's id, a write token)."""
    with Workspace.open(path, member="casting") as workspace:
        a = workspace.create_production("Harbour Lights").id
        b = workspace.create_production("Night Shift").id
        token = TokenStore(workspace.store).create("write")[1]
    assert a and b
    return a, b, token


def _round_trip(url: str, pid: str, headers: dict[str, str], text: str) -> None:
    """An edit (``text`` in a Y.Text) pushed to production ``pid`` and read back."""
    peer = Doc()
    peer.get("notes", type=Text).insert(0, text)
    pushed = httpx.post(
        f"{url}/sync/{pid}/push", headers=headers, content=peer.get_update(), timeout=30
    )
    assert pushed.status_code == 200, pushed.text
    pulled = httpx.post(
        f"{url}/sync/{pid}/pull", headers=headers, content=b"\x00", timeout=PATIENCE
    )
    back = Doc()
    back.apply_update(pulled.content)
    assert text in str(back.get("notes", type=Text))


def _merging(url: str, pid: str, token: str) -> bool:
    """Whether the server says ``pid`` is merging a large update (it refuses new peers)."""
    try:
        with connect(f"{url}/{pid}?token={token}", proxy=None, open_timeout=30):
            return False
    except InvalidStatus as refused:
        assert refused.response.status_code == 503, refused.response.status_code
        return True


class HeavyMerge:
    """Productions A and B on a server thread (updates over 16 KiB merged off the loop),
    and a live writer that has just sent A ``heavy`` (2,000 entries)."""

    heavy = hostile.many_entries(2_000)

    def __init__(self, server: ServerThread, path: Path, a: str, b: str, token: str) -> None:
        self.server, self.path, self.a, self.b = server, path, a, b
        self.headers = {"Authorization": f"Bearer {token}"}

    def a_holds_it(self) -> bool:
        state = httpx.get(
            f"{self.server.url}/sync/{self.a}/state", headers=self.headers, timeout=120
        )
        clocks = decode_state_vector(state.content)
        return state.status_code == 200 and all(
            clocks.get(c) == end for c, end in walk_update(self.heavy).clocks.items()
        )


@contextlib.contextmanager
def heavy_merge(tmp_path: Path) -> Iterator[HeavyMerge]:
    path = tmp_path / "server"
    a, b, token = _two_productions(path)
    with ServerThread(path, options=ServerOptions(heavy_update=16 * 1024)) as server:
        writer = connect(
            f"{server.ws_url}/{a}?token={token}", proxy=None, open_timeout=PATIENCE, max_size=None
        )
        with writer:
            writer.send(p.update_frame(HeavyMerge.heavy))
            yield HeavyMerge(server, path, a, b, token)


def test_a_heavy_merge_leaves_other_productions_and_health_responsive(tmp_path: Path) -> None:
    """While production A merges a 100,000-entry update (walk and Yrs in a worker thread,
    Yrs fed in slices), production B's edit goes in and comes back out and /health
    answers: each of them finishes while A is still merging. Before, the merge ran on
    the event loop and nothing else was served until it was done."""
    from test_sync_cli import Served as CliServed

    path = tmp_path / "server"
    a, b, token = _two_productions(path)
    served = CliServed(path, tmp_path / "serve.log")
    ws_url = served.url.replace("http", "ws", 1) + "/sync"
    headers = {"Authorization": f"Bearer {token}"}
    try:
        heavy = hostile.many_entries(100_000)
        with connect(
            f"{ws_url}/{a}?token={token}", proxy=None, open_timeout=PATIENCE, max_size=None
        ) as writer:
            writer.send(p.update_frame(heavy))
            assert wait_until(lambda: _merging(ws_url, a, token), timeout=60)
            # B: an edit pushed and read back, and /health, all while A merges.
            _round_trip(served.url, b, headers, "while A merges")
            assert httpx.get(f"{served.url}/health", timeout=30).json() == {"status": "ok"}
            assert _merging(ws_url, a, token), "A finished before B was served: no evidence"
            # A's merge completes, durably: the state waits for it, then holds the update.
            state = httpx.get(f"{served.url}/sync/{a}/state", headers=headers, timeout=600)
            assert state.status_code == 200
            heavy_clients = walk_update(heavy).clocks
            held = decode_state_vector(state.content)
            assert all(held.get(c) == end for c, end in heavy_clients.items())
    finally:
        code = served.stop()
    assert code in (0, -15), served.log.read_text()[-2000:]
    assert "Traceback" not in served.log.read_text()


def test_a_heavy_merge_writes_its_row_off_the_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ordering, not timing: a heavy merge's log row (megabytes to write, and a checkpoint
    after) is written from a worker thread, on the store's second connection. Held at a
    gate inside that write (SQLite's one write lock taken), /health answers, also once
    production B's push has arrived: B's write waits for the row without holding the
    event loop (before, the row was written on the loop; and a write on the loop meanwhile
    would have held it until the lock came free). Released, B's edit goes in and comes
    back, and A's update is stored whole. B's first edit, pushed while A merged, logged a
    row before A's: the server's copy of A still counts its own row as merged, so no
    later refresh merges the whole update again on the loop (before, any other
    process's commit made it do so)."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from castroom.core import storage
    from castroom.core.workspace import Merged, StoredProduction
    from castroom.sync.server import SyncServer

    encoded, encode_gate = threading.Event(), threading.Event()
    writing, write_gate = threading.Event(), threading.Event()
    real_prepare, real_insert = StoredProduction.prepare_store, storage._insert_update
    real_until = SyncServer.until_merged
    arrived: list[str] = []

    def prepare(self: StoredProduction, merged: Merged) -> Merged:
        prepared = real_prepare(self, merged)
        encoded.set()
        assert encode_gate.wait(120), "the test never opened the gate"
        return prepared

    def insert(*args: Any) -> int | None:
        if threading.current_thread().name.startswith("asyncio_"):  # a worker thread's
            writing.set()
            assert write_gate.wait(120), "the test never opened the gate"
        return real_insert(*args)

    async def until_merged(self: SyncServer, production_id: str) -> None:
        arrived.append(production_id)
        await real_until(self, production_id)

    monkeypatch.setattr(StoredProduction, "prepare_store", prepare)
    monkeypatch.setattr(storage, "_insert_update", insert)
    monkeypatch.setattr(SyncServer, "until_merged", until_merged)
    with heavy_merge(tmp_path) as merge, ThreadPoolExecutor(1) as pool:
        server, a, b, headers = merge.server, merge.a, merge.b, merge.headers
        try:
            assert encoded.wait(60), "the merge never reached its encoding"
            _round_trip(server.url, b, headers, "while A merges")  # a row before A's
            encode_gate.set()
            assert writing.wait(60), "the row was never written apart"
            arrived.clear()
            second = pool.submit(_round_trip, server.url, b, headers, "while A is written")
            assert wait_until(lambda: b in arrived, timeout=30), "B's push never came"
            assert httpx.get(f"{server.url}/health", timeout=30).json() == {"status": "ok"}
            assert not second.done(), "B's write did not wait for A's row"
            production = server.app_state.rooms[a].production
            write_gate.set()
            second.result(timeout=60)
            assert merge.a_holds_it()
            with Workspace.open(merge.path, create=False) as other:
                assert production.seen == other.store.position(a)
        finally:
            encode_gate.set()
            write_gate.set()
    with Workspace.open(merge.path, create=False) as workspace:
        assert len(workspace.production(a).doc.to_data()["talents"]) == 2_000


def test_a_heavy_merge_stores_its_names_off_the_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ordering, not timing: the names a heavy merge's history row refers to (one per
    entity: half a million took the event loop 3 s in slices) are stored in a worker
    thread, on the store's second connection, a short transaction per slice. Held at a
    gate inside the first (SQLite's write lock taken), /health answers, also once
    production B's push has arrived: B's write waits for the slice without holding the
    event loop, and goes in between two slices. Released, A's update is stored whole and
    its history names every entity."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from castroom.core import storage
    from castroom.sync.server import SyncServer

    reached, gate = threading.Event(), threading.Event()
    threads: list[str] = []
    real_many, real_until = storage.Store._intern_many, SyncServer.until_merged
    arrived: list[str] = []

    def intern_many(self: storage.Store, db: Any, texts: Any, pending: dict[str, int]) -> None:
        if len(texts) >= 100:  # A's names, not B's
            threads.append(threading.current_thread().name)
            if not reached.is_set():
                reached.set()
                if threads[-1].startswith("asyncio_"):
                    assert gate.wait(120), "the test never opened the gate"
        real_many(self, db, texts, pending)

    async def until_merged(self: SyncServer, production_id: str) -> None:
        arrived.append(production_id)
        await real_until(self, production_id)

    monkeypatch.setattr(storage.Store, "_intern_many", intern_many)
    monkeypatch.setattr(SyncServer, "until_merged", until_merged)
    with heavy_merge(tmp_path) as merge, ThreadPoolExecutor(1) as pool:
        server, b, headers = merge.server, merge.b, merge.headers
        try:
            assert reached.wait(60), "the merge never stored its names"
            assert threads[0].startswith("asyncio_"), threads
            arrived.clear()
            trip = pool.submit(_round_trip, server.url, b, headers, "while A's names go in")
            assert wait_until(lambda: b in arrived, timeout=30), "B's push never came"
            assert httpx.get(f"{server.url}/health", timeout=30).json() == {"status": "ok"}
            assert not trip.done(), "B's write did not wait for A's slice"
            gate.set()
            trip.result(timeout=60)
            assert merge.a_holds_it()
        finally:
            gate.set()
    assert len(threads) == 4 and all(t.startswith("asyncio_") for t in threads), threads
    with Workspace.open(merge.path, create=False) as workspace:
        entry = workspace.production(merge.a).history(limit=1)[0]
        assert {entity for _, entity, _ in entry.changes} >= {f"T{i:07d}" for i in range(2_000)}


def test_a_large_first_push_of_a_new_production_is_adopted_off_the_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ordering, not timing: a production the server has never seen, pushed whole over
    HTTP (a first sync: megabytes), is rehearsed on a scratch copy and merged in worker
    threads. Held at a gate in the rehearsal, /health answers and production B's edit
    goes in and comes back. A second push of the same bytes meanwhile merges into the
    same production. Before, the rehearsal and the merge (each with its walk) ran on the
    event loop: a 4.5 MB first push held it over a second."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from castroom.core.workspace import MergeStart, StoredProduction
    from castroom.sync import server as server_module

    reached, gate = threading.Event(), threading.Event()
    threads: dict[str, list[str]] = {"rehearsal": [], "merge": []}
    real_production_in, real_merge = server_module.production_in, StoredProduction.merge_document

    def production_in(update: bytes, base: bytes | None = None) -> str | None:
        threads["rehearsal"].append(threading.current_thread().name)
        if not reached.is_set():  # the first push's only
            reached.set()
            assert gate.wait(120), "the test never opened the gate"
        return real_production_in(update, base)

    def merge_document(
        self: StoredProduction, update: bytes, started: MergeStart, **kw: Any
    ) -> Any:
        if self.id != b:
            threads["merge"].append(threading.current_thread().name)
        return real_merge(self, update, started, **kw)

    monkeypatch.setattr(server_module, "production_in", production_in)
    monkeypatch.setattr(StoredProduction, "merge_document", merge_document)
    path = tmp_path / "server"
    _, b, token = _two_productions(path)
    headers = {"Authorization": f"Bearer {token}"}
    with Workspace.open(tmp_path / "laptop", member="casting") as laptop:
        fresh = laptop.create_production("Brand New")
        with fresh.doc.transaction():
            for i in range(300):
                fresh.doc.add(model.Talent, name=f"Talent {i}", notes="n" * 100)
        new_id, update = fresh.id, fresh.doc.encode_update()
    assert len(update) > 16 * 1024

    def push() -> httpx.Response:
        return httpx.post(
            f"{server.url}/sync/{new_id}/push", headers=headers, content=update, timeout=120
        )

    with ServerThread(path, options=ServerOptions(heavy_update=16 * 1024)) as server:
        try:
            with ThreadPoolExecutor(2) as pool:
                first = pool.submit(push)
                assert reached.wait(60), "the push was never rehearsed"
                assert httpx.get(f"{server.url}/health", timeout=30).json() == {"status": "ok"}
                _round_trip(server.url, b, headers, "while the new production is adopted")
                second = pool.submit(push)
                assert wait_until(lambda: len(threads["rehearsal"]) == 2, timeout=30)
                assert not first.done(), "the first push finished while held: no evidence"
                gate.set()
                answers = [first.result(timeout=120), second.result(timeout=120)]
        finally:
            gate.set()
        assert [a.status_code for a in answers] == [200, 200], [a.text for a in answers]
        # One merged it, the other then found everything known. Usually the second, not
        # held; but the gate opens once its rehearsal has begun, not ended, so under load
        # the first may still merge first.
        assert sorted((a.json() for a in answers), key=lambda a: a["changed"]) == [
            {"changed": 0, "created": True},
            {"changed": 301, "created": True},
        ]
        listing = httpx.get(f"{server.url}/productions", headers=headers, timeout=PATIENCE).json()[
            "productions"
        ]
        assert [p["id"] for p in listing].count(new_id) == 1
    assert all(name.startswith("asyncio_") for name in threads["rehearsal"]), threads
    assert threads["merge"] and all(name.startswith("asyncio_") for name in threads["merge"])
    with Workspace.open(path, create=False) as workspace:
        adopted = workspace.production(new_id)
        assert adopted.title() == "Brand New"
        assert len(adopted.doc.all(model.Talent)) == 300


@pytest.mark.parametrize("via", ["y-websocket", "hocuspocus", "presentation", "dashboard write"])
def test_a_large_production_s_snapshot_is_walked_off_the_loop_before_it_opens(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, via: str
) -> None:
    """Ordering, not timing: the first peer of a stored production makes the server open
    it, and opening walks its snapshot (seconds for a large production). The walk runs
    in a worker thread: held at a gate there, /health answers and production B's edit
    goes in and comes back, and a second peer of A waits for the same walk. Released,
    both peers get the whole production, and the open does not walk it again. Before,
    the open walked it on the event loop (5,000 talents: a 1.4 s stall); a Hocuspocus
    document's authentication, a presentation's page and the dashboard's write actions
    still did until this walk came first there too."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    path = tmp_path / "server"
    a, b, token = _two_productions(path)
    with Workspace.open(path, member="casting") as workspace:
        production = workspace.production(a)
        with production.doc.transaction():
            for i in range(300):
                production.doc.add(model.Talent, name=f"Talent {i}", notes="n" * 100)
            role = production.doc.add(model.Role, name="Nora")
        show = presenting.showing(production.doc, role.id)
        _, present = TokenStore(workspace.store).create("present", production=a, presentation=show)
        production.compact()
        snapshot, _, named = workspace.store.load_from_snapshot(a)
    assert named is not None
    size = len(snapshot[0])
    reached, gate = threading.Event(), threading.Event()
    walks: list[str] = []
    real_guard = yupdate.guard_update

    def guard_update(update: bytes, **kw: Any) -> yupdate.UpdateShape:
        if len(update) == size:  # the snapshot's walk
            walks.append(threading.current_thread().name)
            reached.set()
            if walks[-1].startswith("asyncio_"):
                assert gate.wait(120), "the test never opened the gate"
        return real_guard(update, **kw)

    monkeypatch.setattr(yupdate, "guard_update", guard_update)
    headers = {"Authorization": f"Bearer {token}"}

    def step2_of_a() -> bytes:
        """The server's step 2 to a peer of A with nothing (over ``via``)."""
        if via == "hocuspocus":
            url = server.ws_url.removesuffix("/sync") + "/hocuspocus"
            with connect(url, proxy=None, open_timeout=PATIENCE, max_size=None) as peer:
                peer.send(hp.token(a, token))
                peer.send(hp.wrap(a, p.step1_frame(Doc().get_state())))
                while True:
                    frame = hp.decode(cast(bytes, peer.recv(timeout=120)), max_size=1 << 26)
                    if frame.yjs and p.decode_message(frame.yjs).sync_type is p.SyncType.STEP2:
                        return p.decode_message(frame.yjs).payload
        with connect(
            f"{server.ws_url}/{a}?token={token}", proxy=None, open_timeout=PATIENCE, max_size=None
        ) as peer:
            peer.send(p.step1_frame(Doc().get_state()))
            while (message := p.decode_message(peer.recv(timeout=120))).sync_type is not (
                p.SyncType.STEP2
            ):
                pass
        return message.payload

    def talents_of_a() -> int:
        """The talents a peer of A gets; for a presentation, the selects it shows; for
        the dashboard, the status of a replacement asked for nobody (refused once A is
        open)."""
        if via == "dashboard write":
            url = f"{server.url}/api/{a}/replacement"
            return httpx.post(url, headers=headers, content=b"{}", timeout=120).status_code
        if via == "presentation":
            auth = {"Authorization": f"Bearer {present}"}
            shown = httpx.get(f"{server.url}/present/api", headers=auth, timeout=120)
            assert shown.status_code == 200, shown.text
            return len(shown.json()["selects"])
        doc = Doc()
        doc.apply_update(step2_of_a())
        return len(doc.get("talents", type=Map))

    with ServerThread(path) as server:
        try:
            with ThreadPoolExecutor(2) as pool:
                first = pool.submit(talents_of_a)
                assert reached.wait(60), "the snapshot was never walked"
                assert walks == [walks[0]] and walks[0].startswith("asyncio_"), walks
                assert httpx.get(f"{server.url}/health", timeout=30).json() == {"status": "ok"}
                _round_trip(server.url, b, headers, "while A's snapshot is walked")
                second = pool.submit(talents_of_a)
                assert wait_until(lambda: a in server.app_state.walking, timeout=30)
                assert not first.done(), "A opened while its walk was held: no evidence"
                gate.set()
                shown = {"presentation": 0, "dashboard write": 400}.get(via, 300)
                assert [first.result(timeout=120), second.result(timeout=120)] == [shown, shown]
        finally:
            gate.set()
    assert len(walks) == 1, walks  # neither the open nor the second peer walked it again


def test_a_server_whose_plugins_hear_changes_loads_them_before_serving(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Loaded at the first change instead (imports, entry points), the plugins held the
    event loop a quarter of a second in the middle of whichever merge came first. (With
    no plugin hearing changes none is imported at all: tests/test_loop_watch.py.)"""
    import types

    from castroom.core import plugins
    from castroom.core.hookspecs import hookimpl

    listener = types.ModuleType("listener")
    listener.castroom_changed = hookimpl(lambda view, changes, origin: None)  # type: ignore[attr-defined]
    made = plugins.make_plugins
    monkeypatch.setattr(plugins, "make_plugins", lambda: made(entry_points=False, extra=[listener]))
    path = tmp_path / "server"
    _two_productions(path)
    with ServerThread(path) as server:
        workspace = server.app_state.workspace
        assert workspace is not None and workspace.plugins.loaded


def test_change_records_are_freed_one_by_one_unless_still_held() -> None:
    """server._release empties a merge's change records an entry at a time (freed in one
    go, half a million held the GIL 0.2 s), but leaves alone one a listener still holds."""
    from castroom.sync.server import _release

    popped: list[tuple[str, str]] = []

    class Record(dict[tuple[str, str], set[str]]):
        def popitem(self) -> tuple[tuple[str, str], set[str]]:
            key, value = super().popitem()
            popped.append(key)
            return key, value

    listener_kept = Record({("talents", "KEPT"): {"name"}})
    records = [Record({("talents", f"T{i}"): {"*"} for i in range(1_000)}), listener_kept]
    _release(records)  # type: ignore[arg-type]
    assert records == []
    assert len(popped) == 1_000 and ("talents", "KEPT") not in popped
    assert listener_kept == {("talents", "KEPT"): {"name"}}


# -- TLS handshakes ----------------------------------------------------------------------------


def _closed_by_server(sock: socket.socket) -> bool:
    if not select.select([sock], [], [], 0)[0]:
        return False  # nothing to read: still open
    try:
        return sock.recv(1, socket.MSG_PEEK) == b""
    except OSError:  # reset
        return True


def test_tls_handshakes_count_against_the_connection_cap(seeded: Seeded, tmp_path: Path) -> None:
    """100 connections that never start their TLS handshake, against a TLS server capped
    at 20 connections: they count against the cap (the oldest are dropped to make room)
    and /health answers. Before, asyncio's TLS made the protocol only once the handshake
    was done, so these were outside the cap, each held for 60 s."""
    cert, key = make_cert(tmp_path)
    options = ServerOptions(max_connections=20, header_timeout=60.0)  # the cap, not time
    with ServerThread(seeded.path, options=options, tls_cert=cert, tls_key=key) as server:
        socks = [socket.create_connection(("127.0.0.1", server.port), timeout=PATIENCE)]
        try:
            for _ in range(99):
                socks.append(socket.create_connection(("127.0.0.1", server.port), timeout=PATIENCE))
            assert wait_until(lambda: sum(map(_closed_by_server, socks)) >= 75)
            context = ssl.create_default_context(cafile=str(cert))
            answer = httpx.get(f"{server.url}/health", verify=context, timeout=PATIENCE)
            assert answer.json() == {"status": "ok"}
        finally:
            for sock in socks:
                sock.close()


@pytest.mark.parametrize("sent", [b"", b"\x16\x03\x01\x02\x00\x01"], ids=["silent", "partial"])
def test_a_tls_handshake_that_never_finishes_is_dropped(
    seeded: Seeded, tmp_path: Path, sent: bytes
) -> None:
    cert, key = make_cert(tmp_path)
    options = ServerOptions(header_timeout=0.3)
    with ServerThread(seeded.path, options=options, tls_cert=cert, tls_key=key) as server:
        with socket.create_connection(("127.0.0.1", server.port), timeout=PATIENCE) as sock:
            sock.sendall(sent)  # no ClientHello, or the start of one and no more
            started = time.monotonic()
            assert sock.recv(1) == b""  # closed by the server (asyncio's own wait: 60 s)
            assert time.monotonic() - started < 30  # not asyncio's 60 s
        context = ssl.create_default_context(cafile=str(cert))
        assert httpx.get(f"{server.url}/health", verify=context, timeout=PATIENCE).json() == {
            "status": "ok"
        }


# -- separate caps: a first full-state sync, and incremental updates ---------------------------


def _entry(i: int) -> bytes:
    """One talent key in the root map (one struct)."""
    return hostile.in_root("talents", f"T{i:07d}", hostile.any_content(hostile.any_string("x")))


def _entries(count: int, client: int) -> bytes:
    """``count`` talents in one update of Yjs client ``client``."""
    return hostile.update([_entry(i) for i in range(count)], client=client)


def _stored(path: Path, pid: str) -> tuple[int, bytes]:
    """(log rows, the production's state vector) as a fresh open reads them."""
    with Workspace.open(path, create=False) as workspace:
        rows = workspace.store.db.execute("SELECT COUNT(*) FROM updates").fetchone()[0]
        return rows, workspace.production(pid).doc.state_vector()


def _synced(conn: ClientConnection) -> None:
    """Finish the handshake as a peer with nothing to add: read the server's step 2 and
    step 1, answer with an empty step 2 (the peer's first)."""
    frames_until_marker(conn)
    conn.send(p.step2_frame(p.EMPTY_UPDATE))


def test_a_first_full_state_may_be_larger_than_an_incremental_update(seeded: Seeded) -> None:
    """With max_incremental_structs = 1,000, a 3,000-struct update merges as a peer's first
    step 2 (the full state it answers the server's step 1 with) and is refused as an
    update frame after the handshake: closed 1007 with the cap named, nothing stored."""
    options = ServerOptions(max_incremental_structs=1_000)
    with ServerThread(seeded.path, options=options) as server:
        with ws(server, seeded.pid, seeded.write) as first:
            frames_until_marker(first)
            first.send(p.step2_frame(_entries(3_000, client=7001)))
            assert wait_until(
                lambda: decode_state_vector(_stored(seeded.path, seeded.pid)[1]).get(7001) == 3_000
            )
        before = _stored(seeded.path, seeded.pid)
        with ws(server, seeded.pid, seeded.write) as later:
            _synced(later)
            later.send(p.update_frame(_entries(3_000, client=7002)))
            with pytest.raises(ConnectionClosed) as closed:
                while True:
                    later.recv(timeout=PATIENCE)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1007
        reason = closed.value.rcvd.reason
        assert "3,000 structs in one client (incremental-update limit 1,000)" in reason
        assert _stored(seeded.path, seeded.pid) == before


def test_a_million_entry_incremental_update_is_refused_from_its_header(seeded: Seeded) -> None:
    """At the default caps: an update frame whose header declares 1,000,000 structs is
    refused from those few bytes (the rest was never sent), naming the incremental cap;
    the same header as a first step 2 passes the header check (a full state may hold
    4,000,000) and is refused only as truncated. Nothing is stored either way."""
    header = hostile.var_uint(1) + hostile.var_uint(1_000_000) + hostile.var_uint(7003)
    header += hostile.var_uint(0) + b"".join(_entry(i) for i in range(10))  # ten, no more
    before = _stored(seeded.path, seeded.pid)
    reasons = []
    with ServerThread(seeded.path) as server:
        for first_step2 in (False, True):
            with ws(server, seeded.pid, seeded.write) as conn:
                if first_step2:
                    frames_until_marker(conn)
                    conn.send(p.step2_frame(header))
                else:
                    _synced(conn)
                    conn.send(p.update_frame(header))
                with pytest.raises(ConnectionClosed) as closed:
                    while True:
                        conn.recv(timeout=30)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1007
            reasons.append(closed.value.rcvd.reason)
    assert "1,000,000 structs in one client (incremental-update limit 500,000)" in reasons[0]
    assert "declares 1,000,000 structs in one client in" in reasons[1]
    assert _stored(seeded.path, seeded.pid) == before


def test_an_update_taking_a_collection_past_its_key_limit_is_refused(seeded: Seeded) -> None:
    """100,001 talents in one update frame (within the incremental struct cap) would grow
    the talents map past yupdate.MAX_MAP_KEYS, where each growth of Yrs's table rehashes
    it holding the GIL: closed 1007 naming the limit, nothing stored, /health answers."""
    before = _stored(seeded.path, seeded.pid)
    with ServerThread(seeded.path) as server:
        with ws(server, seeded.pid, seeded.write) as conn:
            _synced(conn)
            conn.send(p.update_frame(hostile.many_entries(yupdate.MAX_MAP_KEYS + 1)))
            with pytest.raises(ConnectionClosed) as closed:
                while True:
                    conn.recv(timeout=PATIENCE)
        assert httpx.get(f"{server.url}/health", timeout=PATIENCE).json() == {"status": "ok"}
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1007
    assert "more than 100,000 keys in one map" in closed.value.rcvd.reason
    assert _stored(seeded.path, seeded.pid) == before


@pytest.mark.slow
def test_a_50000_talent_production_syncs_to_a_fresh_server_as_a_first_step2(
    tmp_path: Path,
) -> None:
    """A 50,000-talent production (802,000 structs, over the incremental cap) reaches a
    server that holds only its title, as the peer's answer to the server's step 1 (a
    full state): merged whole, at the default caps."""
    from castroom.core.document import CastDocument
    from castroom.core.sample import SampleSize, build_sample

    path = tmp_path / "server"
    with Workspace.open(path, member="casting") as workspace:
        production = workspace.create_production("Big Show")
        pid = production.id
        held = production.doc.encode_update()
        known = production.doc.state_vector()
        token = TokenStore(workspace.store).create("write")[1]
    assert pid
    peer = CastDocument()
    peer.apply_update(held)
    build_sample(peer, SampleSize(talents=50_000, roles=400, scenes=1_500, shoot_days=60))
    missing = peer.encode_update(known)
    assert walk_update(missing).structs > yupdate.MAX_INCREMENTAL_STRUCTS
    with ServerThread(path) as server, ws(server, pid, token) as conn:
        frames_until_marker(conn)
        conn.send(p.step2_frame(missing))
        wanted = decode_state_vector(peer.state_vector())
        assert wait_until(
            lambda: (
                decode_state_vector(
                    httpx.get(
                        f"{server.url}/sync/{pid}/state",
                        headers={"Authorization": f"Bearer {token}"},
                        timeout=600,
                    ).content
                )
                == wanted
            ),
            timeout=300,
            step=1,
        )


def test_a_heavy_merge_holds_neither_the_loop_nor_its_hocuspocus_socket(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ordering, not timing: a heavy merge's last step in its worker thread (its changes
    encoded, after Yrs merged them there and the loop stored their names in slices) is
    held at a gate. While it is held,
    /health answers, production B's edit is pushed and read back, and on the very
    Hocuspocus socket that sent A's update, document B's step 1 is answered (before, the
    socket read nothing more until A's merge was over). Released, A's update is stored
    whole and acknowledged."""
    import asyncio
    import threading

    import websockets

    from castroom.core.workspace import Merged, StoredProduction
    from castroom.sync import hocuspocus as hp

    reached, gate = threading.Event(), threading.Event()
    real = StoredProduction.prepare_store

    def held(self: StoredProduction, merged: Merged) -> Merged:
        prepared = real(self, merged)  # merged, its names stored, its changes encoded
        reached.set()
        assert gate.wait(120), "the test never opened the gate"
        return prepared

    monkeypatch.setattr(StoredProduction, "prepare_store", held)
    path = tmp_path / "server"
    a, b, token = _two_productions(path)
    heavy = hostile.many_entries(2_000)
    headers = {"Authorization": f"Bearer {token}"}

    async def scenario(server: ServerThread) -> list[str]:
        seen: list[str] = []
        url = server.ws_url.removesuffix("/sync") + "/hocuspocus"
        async with websockets.connect(
            url, proxy=None, open_timeout=PATIENCE, max_size=None
        ) as conn:

            async def next_for(name: str, kind: hp.HPType) -> hp.Frame:
                async with asyncio.timeout(60):
                    while True:
                        frame = hp.decode(await conn.recv(), max_size=1 << 26)  # type: ignore[arg-type]
                        if frame.name == name and frame.type is kind:
                            return frame

            for name in (a, b):
                await conn.send(hp.token(name, token))
                await next_for(name, hp.HPType.AUTH)
            await conn.send(hp.wrap(a, p.update_frame(heavy)))
            assert await asyncio.to_thread(reached.wait, 60), "the merge never started"
            seen.append("A merged in its thread, held there")
            await conn.send(hp.wrap(b, p.step1_frame(b"\x00")))
            await next_for(b, hp.HPType.SYNC)
            seen.append("B answered on the same socket")
            health = await asyncio.to_thread(httpx.get, f"{server.url}/health", timeout=60)
            assert health.json() == {"status": "ok"}
            seen.append("/health answered")
            peer = Doc()
            peer.get("notes", type=Text).insert(0, "while A merges")
            pushed = await asyncio.to_thread(
                httpx.post, f"{server.url}/sync/{b}/push", headers=headers,
                content=peer.get_update(), timeout=60,
            )  # fmt: skip
            assert pushed.status_code == 200, pushed.text
            pulled = await asyncio.to_thread(
                httpx.post, f"{server.url}/sync/{b}/pull", headers=headers, content=b"\x00",
                timeout=60,
            )  # fmt: skip
            back = Doc()
            back.apply_update(pulled.content)
            assert str(back.get("notes", type=Text)) == "while A merges"
            seen.append("B's edit went in and came back")
            assert a in server.app_state.merging
            seen.append("A still merging")
            gate.set()
            status = await next_for(a, hp.HPType.SYNC_STATUS)
            assert status.applied is True
            seen.append("A acknowledged")
        return seen

    with ServerThread(path, options=ServerOptions(heavy_update=16 * 1024)) as server:
        try:
            seen = asyncio.run(scenario(server))
        finally:
            gate.set()  # a failed step must not leave the merge's thread waiting
    assert seen == [
        "A merged in its thread, held there",
        "B answered on the same socket",
        "/health answered",
        "B's edit went in and came back",
        "A still merging",
        "A acknowledged",
    ]
    with Workspace.open(path, create=False) as workspace:
        held_clocks = decode_state_vector(workspace.production(a).doc.state_vector())
        assert all(held_clocks.get(c) == end for c, end in walk_update(heavy).clocks.items())
        assert len(workspace.production(a).doc.to_data()["talents"]) == 2_000


def test_a_misspelt_server_setting_stops_serve_before_it_listens(cli) -> None:
    """``max_peer`` for ``max_peers`` would leave the default cap in force unseen: serve
    refuses the config in one line, before it binds a port."""
    from tests.test_cli_core import fails, ok

    ok(cli("init", "--production", "Tides"))
    config = cli.path / "config.toml"
    config.write_text(config.read_text() + "\n[server]\nmax_peer = 10\n")
    fails(cli("serve", "--port", "0"), "config [server]", "max_peer")


def test_a_misspelt_presence_limit_is_refused_too() -> None:
    from castroom.core.errors import CastroomError
    from castroom.sync.server import ServerOptions

    with pytest.raises(CastroomError, match=r"config \[server\].*max_client"):
        ServerOptions.from_config({"server": {"presence": {"max_client": 3}}})
