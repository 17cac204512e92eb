"""Coalesced live sync: the frames that reach `castroom serve` in one event-loop turn are
merged in one SQLite transaction (group commit) and relayed as one frame per peer, and a
peer is told its update was applied only once it is durable.

A burst is made deterministic by holding the server's event loop (a callback that waits)
while the peers send, until the kernel holds every peer's bytes for the server's socket
(read from /proc/net/tcp), then letting it go: the loop then reads them all in one turn."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import pytest
import websockets
from patience import PATIENCE
from pycrdt import Doc, Map
from sync_helpers import make_token, wait_until
from test_server import handshake, is_awareness, is_update, recv_frames, ws_connect
from test_sync_cli import Served

from castroom.core import model
from castroom.core.workspace import DB_NAME, Workspace
from castroom.sync import hocuspocus as hp
from castroom.sync import protocol as p
from castroom.sync.limits import PresenceLimits
from castroom.sync.server import ServerOptions, ServerThread


@pytest.fixture
def seeded(tmp_path: Path) -> tuple[Path, str, str]:
    """(workspace, production id, write token)."""
    path = tmp_path / "server"
    with Workspace.open(path, member="casting") as ws:
        production = ws.create_production("Burst")
        production.doc.add(model.Talent, id="shared", name="Shared Talent")
        assert production.id
        pid = production.id
    return path, pid, make_token(path, "write")


def _rx_queued(server_port: int, client_port: int) -> int:
    """Bytes the kernel holds, not yet read, on the server's end of one loopback TCP
    connection (/proc/net/tcp, hex ports, rx_queue after the colon of tx:rx)."""
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote = fields[1], fields[2]
        if int(local.split(":")[1], 16) == server_port and (
            int(remote.split(":")[1], 16) == client_port
        ):
            return int(fields[4].split(":")[1], 16)
    return 0


@contextmanager
def held_loop(server: ServerThread) -> Iterator[None]:
    """Keep the server's event loop busy for the block (bounded: 20 s)."""
    loop = server.app_state.loop
    assert loop is not None
    entered, release = threading.Event(), threading.Event()

    def hold() -> None:
        entered.set()
        release.wait(20)

    loop.call_soon_threadsafe(hold)
    assert entered.wait(10), "the server's loop did not run the hold"
    try:
        yield
    finally:
        release.set()


def _reached(server: ServerThread, conns: list[Any], sent: int) -> None:
    """Wait until the kernel holds all ``sent`` bytes of ``conns`` for the server."""
    ports = [c.socket.getsockname()[1] for c in conns]
    assert wait_until(lambda: sum(_rx_queued(server.port, port) for port in ports) >= sent, 10), (
        "the burst did not reach the server's sockets"
    )


def _one_frame(conn: Any, kind: Callable[[p.Message], bool]) -> list[p.Message]:
    """The frames of one kind a peer gets for a burst (asserted to be exactly one)."""
    got = [m for m in recv_frames(conn, 10, until=kind) if kind(m)]
    got += [m for m in recv_frames(conn, 0.5) if kind(m)]
    assert len(got) == 1
    return got


def _edit(doc: Doc, change: dict[str, str]) -> bytes:
    """Apply ``change`` (talent id -> name, or "shared" -> agent) to a peer's doc; the
    update it makes."""
    before = doc.get_state()
    talents = doc.get("talents", type=Map)
    for key, value in change.items():
        if key == "shared":
            talents["shared"]["agent"] = value
        else:
            talents[key] = Map({"id": key, "name": value, "deleted": False})
    return doc.get_update(before)


def test_a_burst_from_several_peers_is_one_frame_each_and_converges(seeded) -> None:
    path, pid, token = seeded
    writers = 4
    with ServerThread(path) as server, ExitStack() as stack:
        conns = [stack.enter_context(ws_connect(server, pid, token)) for _ in range(writers + 1)]
        docs = [Doc() for _ in conns]
        for conn, doc in zip(conns, docs, strict=True):
            handshake(conn, doc)
        observer, observer_doc = conns[-1], docs[-1]
        sent = 0
        with held_loop(server):
            for i in range(writers):
                # Two frames each: a talent of its own, then the one field they all set.
                for change in ({f"w{i}": f"Writer {i}"}, {"shared": f"agent of w{i}"}):
                    frame = p.update_frame(_edit(docs[i], change))
                    conns[i].send(frame)
                    sent += len(frame)
            _reached(server, conns[:writers], sent)
        # The observer gets the whole burst as one merged update.
        got = _one_frame(observer, is_update)
        observer_doc.apply_update(got[0].payload)
        # Each writer gets it too (its own edits included, as Hocuspocus does).
        for conn, doc in zip(conns[:writers], docs[:writers], strict=True):
            for message in recv_frames(conn, 5, until=is_update):
                if is_update(message):
                    doc.apply_update(message.payload)
        states = [d.get("talents", type=Map).to_py() for d in docs]
        assert all(state == states[0] for state in states)
        assert {f"w{i}" for i in range(writers)} <= set(states[0])
    with Workspace.open(path, create=False) as ws:
        production = ws.production(pid)
        stored = {t.id: t for t in production.doc.all(model.Talent)}
        assert {f"w{i}" for i in range(writers)} <= set(stored)
        assert stored["shared"].agent == states[0]["shared"]["agent"]
        # Group commit keeps one log entry per peer's update, each with its device.
        entries = [e for e in production.history(limit=50) if e.origin == "sync"]
        assert len(entries) == 2 * writers


async def _hp_peer(url: str, pid: str, token: str) -> websockets.ClientConnection:
    """A raw Hocuspocus socket authenticated on ``pid`` (no step 1 of its own: every sync
    status it gets then answers one of its updates, in order)."""
    conn = await websockets.connect(url, proxy=None, open_timeout=PATIENCE, max_size=None)
    await conn.send(hp.token(pid, token))
    async with asyncio.timeout(PATIENCE):
        while True:
            frame = hp.decode(await conn.recv(), max_size=1 << 24)  # type: ignore[arg-type]
            if frame.type is hp.HPType.AUTH:
                assert frame.auth is hp.AuthType.AUTHENTICATED, frame.text
                return conn


async def _acks(conn: websockets.ClientConnection, count: int, timeout: float) -> list[bool]:
    """The next ``count`` sync statuses' ``applied`` flags."""
    out: list[bool] = []
    async with asyncio.timeout(timeout):
        while len(out) < count:
            frame = hp.decode(await conn.recv(), max_size=1 << 24)  # type: ignore[arg-type]
            if frame.type is hp.HPType.SYNC_STATUS:
                out.append(frame.applied)
    return out


def _stored_talents(path: Path, pid: str) -> set[str]:
    """The talents committed to the store, read by a connection of our own (it sees only
    what was committed)."""
    with Workspace.open(path, create=False) as ws:
        return {t.id for t in ws.production(pid).doc.all(model.Talent)}


def test_no_update_is_acknowledged_before_its_commit(seeded) -> None:
    """While another process holds the workspace's write lock, the server cannot commit:
    it tells no peer its update was applied, and relays nothing. Once the lock goes,
    every acknowledged update is in the store."""
    path, pid, token = seeded
    with ServerThread(path) as server:
        url = server.ws_url.removesuffix("/sync") + "/hocuspocus"

        async def run() -> None:
            peers = [await _hp_peer(url, pid, token) for _ in range(3)]
            docs = [Doc() for _ in peers]
            reader = sqlite3.connect(path / DB_NAME)  # a read: not held up by the lock
            logged = "SELECT COUNT(*) FROM updates"
            before = reader.execute(logged).fetchone()[0]
            lock = sqlite3.connect(path / DB_NAME, isolation_level=None)
            lock.execute("BEGIN IMMEDIATE")  # as another process's write would
            try:
                for i, (conn, doc) in enumerate(zip(peers, docs, strict=True)):
                    for k in range(2):
                        update = _edit(doc, {f"h{i}-{k}": f"Peer {i} edit {k}"})
                        await conn.send(hp.wrap(pid, p.update_frame(update)))
                with pytest.raises(TimeoutError):
                    await _acks(peers[0], 1, timeout=1.0)
                try:
                    assert reader.execute(logged).fetchone()[0] == before
                finally:
                    reader.close()
            finally:
                lock.execute("ROLLBACK")
                lock.close()
            for i, conn in enumerate(peers):
                assert await _acks(conn, 2, timeout=PATIENCE) == [True, True]
                # Acknowledged: committed, so another connection sees it.
                assert {f"h{i}-0", f"h{i}-1"} <= _stored_talents(path, pid)
            for conn in peers:
                await conn.close()

        asyncio.run(run())


@pytest.mark.parametrize("peers", [3])
def test_sigkill_right_after_acks_loses_no_acknowledged_update(
    seeded, tmp_path: Path, peers: int
) -> None:
    """A real `castroom serve` takes a burst of updates from several Hocuspocus sockets
    and is killed with SIGKILL the moment enough of them are acknowledged: every update
    it acknowledged is in the workspace afterwards."""
    path, pid, token = seeded
    server = Served(path, tmp_path / "serve.log")
    url = server.url.replace("http://", "ws://") + "/hocuspocus"
    acked: list[str] = []
    per_peer = 40

    async def peer(i: int, conn: websockets.ClientConnection, killed: asyncio.Event) -> None:
        doc = Doc()
        names = [f"k{i}-{n}" for n in range(per_peer)]
        for name in names:
            await conn.send(hp.wrap(pid, p.update_frame(_edit(doc, {name: name}))))
        done = 0
        try:
            while done < per_peer and not killed.is_set():
                frame = hp.decode(await conn.recv(), max_size=1 << 24)  # type: ignore[arg-type]
                if frame.type is hp.HPType.SYNC_STATUS:
                    assert frame.applied
                    acked.append(names[done])
                    done += 1
                    if len(acked) >= per_peer and not killed.is_set():
                        server.proc.send_signal(signal.SIGKILL)  # right after this ack
                        killed.set()
        except websockets.ConnectionClosed:
            pass

    async def run() -> None:
        killed = asyncio.Event()
        # Every socket authenticated before any sends: a peer still signing in when the
        # kill comes (at load, two peers' 40 acks can beat a third's handshake) would
        # see the server die under it, not the burst this test is about.
        conns = await asyncio.gather(*(_hp_peer(url, pid, token) for _ in range(peers)))
        async with asyncio.timeout(PATIENCE):
            await asyncio.gather(*(peer(i, conn, killed) for i, conn in enumerate(conns)))

    try:
        asyncio.run(run())
    finally:
        code = server.stop()
    assert code == -signal.SIGKILL, "the server was not killed mid-burst"
    assert len(acked) >= per_peer
    stored = _stored_talents(path, pid)
    assert set(acked) <= stored, f"acknowledged but lost: {sorted(set(acked) - stored)}"
    # And the workspace still opens and takes writes.
    with Workspace.open(path, create=False) as ws:
        ws.production(pid).doc.add(model.Talent, name="After The Crash")
    assert wait_until(lambda: "After The Crash" in _names(path, pid))


def _names(path: Path, pid: str) -> set[str]:
    with Workspace.open(path, create=False) as ws:
        return {t.name for t in ws.production(pid).doc.all(model.Talent)}


def test_held_loop_really_holds(seeded) -> None:
    """The hold the burst tests rely on: nothing is relayed while the loop is held."""
    path, pid, token = seeded
    with (
        ServerThread(path) as server,
        ws_connect(server, pid, token) as writer,
        ws_connect(server, pid, token) as reader,
    ):
        writer_doc, reader_doc = Doc(), Doc()
        handshake(writer, writer_doc)
        handshake(reader, reader_doc)
        with held_loop(server):
            writer.send(p.update_frame(_edit(writer_doc, {"held": "Held"})))
            started = time.monotonic()
            assert not [m for m in recv_frames(reader, 0.5) if is_update(m)]
            assert time.monotonic() - started >= 0.5
        assert [m for m in recv_frames(reader, 10, until=is_update) if is_update(m)]


def test_a_flush_window_merges_updates_of_several_turns(seeded) -> None:
    """With ``[server] flush_window``, updates that arrive within the window of the last
    flush (here two peers' edits sent one after the other, well within 2 s) go out as
    one merged frame, at most the window later."""
    path, pid, token = seeded
    with (
        ServerThread(path, options=ServerOptions(flush_window=2.0)) as server,
        ExitStack() as stack,
    ):
        conns = [stack.enter_context(ws_connect(server, pid, token)) for _ in range(3)]
        docs = [Doc() for _ in conns]
        for conn, doc in zip(conns, docs, strict=True):
            handshake(conn, doc)  # the handshakes' flush opens the window
        started = time.monotonic()
        conns[0].send(p.update_frame(_edit(docs[0], {"first": "First Edit"})))
        conns[1].send(p.update_frame(_edit(docs[1], {"second": "Second Edit"})))
        assert time.monotonic() - started < 1.0  # both well within the window
        got = [m for m in recv_frames(conns[2], 10, until=is_update) if is_update(m)]
        got += [m for m in recv_frames(conns[2], 0.3) if is_update(m)]
        assert len(got) == 1
        docs[2].apply_update(got[0].payload)
        assert {"first", "second"} <= set(docs[2].get("talents", type=Map).to_py())


def test_presence_of_one_turn_is_one_frame_each_within_the_limits(seeded) -> None:
    """Presence sent in one turn by several peers reaches each peer as one frame, the
    merge of them all; a peer over the presence limits is refused (1008) as before, and
    its states are in nobody's frame."""
    path, pid, token = seeded
    writers = 4
    options = ServerOptions(presence=PresenceLimits(state_bytes=200))
    with ServerThread(path, options=options) as server, ExitStack() as stack:
        conns = [stack.enter_context(ws_connect(server, pid, token)) for _ in range(writers + 2)]
        for conn in conns:
            handshake(conn, Doc())
        observer, greedy = conns[-1], conns[-2]
        sent = 0
        with held_loop(server):
            for i in range(writers):
                for clock in (1, 2):  # two frames each: only the second state survives
                    state = {"user": {"name": f"Peer {i}", "seen": clock}}
                    frame = p.awareness_frame(
                        p.encode_awareness([p.AwarenessEntry(100 + i, clock, state)])
                    )
                    conns[i].send(frame)
                    sent += len(frame)
            big = {"user": {"name": "x" * 500}}  # over state_bytes
            frame = p.awareness_frame(p.encode_awareness([p.AwarenessEntry(999, 1, big)]))
            greedy.send(frame)
            sent += len(frame)
            _reached(server, conns[: writers + 1], sent)
        got = _one_frame(observer, is_awareness)
        entries = {e.client_id: e for e in p.decode_awareness(got[0].payload)}
        assert set(entries) == {100 + i for i in range(writers)}
        assert all(e.clock == 2 and e.state["user"]["seen"] == 2 for e in entries.values())
        with pytest.raises(websockets.ConnectionClosed) as closed:
            while True:
                greedy.recv(timeout=PATIENCE)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
