"""Live frames written straight to the socket (sync/wire.py): in order with what the
writer task has queued, held until the turn's commit, counted for the slow-peer limit;
and uvicorn's WebSocket protocol reading a few messages ahead before it pauses."""

from __future__ import annotations

import asyncio
import base64
import os
import socket
import time
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from pycrdt import Doc, Map, Text
from sync_helpers import PATIENCE, make_token, wait_until
from test_server import handshake, is_update, recv_frames, ws_connect
from uvicorn.server import ServerState
from websockets.frames import Frame, Opcode

from castroom.core.workspace import Workspace
from castroom.sync import protocol as p
from castroom.sync import wire
from castroom.sync.server import Channel, Gate, ServerOptions, ServerThread, write_out

# -- a channel over a fake connection ---------------------------------------------------------


class _Transport:
    def __init__(self, wire_log: list[bytes]) -> None:
        self.log = wire_log
        self.paused = 0
        self.resumed = 0

    def write(self, data: bytes) -> None:
        self.log.append(data)

    def is_closing(self) -> bool:
        return False

    def get_write_buffer_size(self) -> int:
        return 0

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 1) if name in ("sockname", "peername") else default

    def pause_reading(self) -> None:
        self.paused += 1

    def resume_reading(self) -> None:
        self.resumed += 1

    def close(self) -> None:
        pass


class _Protocol:
    """What DirectSend reads of uvicorn's protocol."""

    def __init__(self, wire_log: list[bytes]) -> None:
        from websockets.protocol import State

        self.conn = type("Conn", (), {"state": State.OPEN, "extensions": []})()
        self.close_sent = False
        self.disconnected = False
        self.writable = asyncio.Event()
        self.writable.set()
        self.transport = _Transport(wire_log)


class _WebSocket:
    """The ASGI way: frames written (encoded) to the same wire, after a pause."""

    def __init__(self, proto: _Protocol) -> None:
        self.proto = proto
        self.scope = {"extensions": {wire.EXTENSION: wire.DirectSend(proto)}}  # type: ignore[arg-type]

    async def send_bytes(self, data: bytes) -> None:
        await self.proto.writable.wait()
        await asyncio.sleep(0)
        self.proto.transport.write(wire.encode(data))

    async def close(self, code: int = 1000, reason: str = "") -> None:
        pass


def _payloads(wire_log: list[bytes]) -> list[bytes]:
    """The payloads of the unmasked binary frames written, in order."""
    data = b"".join(wire_log)
    out = []
    while data:
        assert data[0] == 0x82
        size, start = data[1], 2
        if size == 126:
            size, start = int.from_bytes(data[2:4], "big"), 4
        elif size == 127:
            size, start = int.from_bytes(data[2:10], "big"), 10
        out.append(data[start : start + size])
        data = data[start + size :]
    return out


def test_direct_frames_never_overtake_queued_ones() -> None:
    async def run() -> list[bytes]:
        log: list[bytes] = []
        proto = _Protocol(log)
        channel = Channel(_WebSocket(proto))  # type: ignore[arg-type]
        assert channel.direct is not None
        writer = asyncio.create_task(write_out(channel))
        channel.send(b"one")  # written at once
        assert _payloads(log) == [b"one"]
        proto.writable.clear()  # the kernel's buffer is full: uvicorn pauses writing
        channel.send(b"two")  # queued for the writer
        channel.send(b"three")  # behind it, though writing resumes before it goes
        proto.writable.set()
        channel.send(b"four")  # still behind them: the writer has not written them yet
        await asyncio.sleep(0.01)
        channel.send(b"five")  # nothing queued any more: straight out
        channel.close()
        await asyncio.wait_for(writer, PATIENCE)
        return _payloads(log)

    assert asyncio.run(run()) == [b"one", b"two", b"three", b"four", b"five"]


def test_frames_sent_while_the_gate_is_shut_go_out_after_it_opens_in_one_write() -> None:
    async def run() -> None:
        log: list[bytes] = []
        gate = Gate()
        channel = Channel(_WebSocket(_Protocol(log)), gate=gate)  # type: ignore[arg-type]
        gate.shut = True
        channel.send(b"ack")
        channel.send(b"relay")
        assert log == []  # nothing before the commit
        gate.open()
        assert len(log) == 1 and _payloads(log) == [b"ack", b"relay"]
        # Closed while held: the held frames still go out, before the close.
        gate.shut = True
        channel.send(b"last")
        channel.close()
        gate.open()
        writer = asyncio.create_task(write_out(channel))
        await asyncio.wait_for(writer, PATIENCE)
        assert _payloads(log)[-1] == b"last"

    asyncio.run(run())


async def _accepted(app: Any) -> tuple[wire.DirectWebSocketProtocol, _Transport]:
    """Our protocol over a fake transport, its WebSocket handshake done with ``app``."""
    config = uvicorn.Config(app, ws=wire.DirectWebSocketProtocol, lifespan="off")
    config.load()
    proto = wire.DirectWebSocketProtocol(config, ServerState(), {})
    transport = _Transport([])
    proto.connection_made(transport)  # type: ignore[arg-type]
    key = base64.b64encode(os.urandom(16)).decode()
    proto.data_received(
        (
            "GET /sync/x HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    await asyncio.sleep(0.05)  # accepted
    return proto, transport


def test_the_protocol_reads_ahead_then_pauses() -> None:
    """uvicorn pauses reading after every message; ours only once READ_AHEAD wait."""

    async def app(scope: Any, receive: Any, send: Any) -> None:
        assert (await receive())["type"] == "websocket.connect"
        await send({"type": "websocket.accept"})
        await asyncio.sleep(3600)  # never takes a message

    async def run() -> _Transport:
        proto, transport = await _accepted(app)
        assert transport.log and transport.log[0].startswith(b"HTTP/1.1 101")
        frame = Frame(Opcode.BINARY, b"\x00\x02\x02\x00\x00").serialize(mask=True)
        for _ in range(wire.READ_AHEAD - 1):
            proto.data_received(frame)
        assert transport.paused == 0, "paused before READ_AHEAD messages waited"
        proto.data_received(frame)
        assert transport.paused == 1
        for task in asyncio.all_tasks() - {asyncio.current_task()}:
            task.cancel()
        return transport

    asyncio.run(run())


def test_the_application_takes_messages_as_they_arrive_in_order() -> None:
    """DirectSend.take is offered a binary message as it arrives while nothing waits in
    the ASGI queue; one it declines is queued, and those after it queue behind it."""
    taken: list[bytes] = []
    decline = {b"heavy"}

    async def app(scope: Any, receive: Any, send: Any) -> None:
        assert (await receive())["type"] == "websocket.connect"
        await send({"type": "websocket.accept"})
        await asyncio.sleep(3600)  # takes nothing through the queue

    async def run() -> list[bytes]:
        proto, _ = await _accepted(app)
        direct = wire.direct_send(proto.scope)
        assert direct is not None
        direct.take = lambda data: data not in decline and not taken.append(data)
        for payload in (b"one", b"two", b"heavy", b"three"):
            proto.data_received(Frame(Opcode.BINARY, payload).serialize(mask=True))
        proto.data_received(Frame(Opcode.TEXT, b"text").serialize(mask=True))
        queued = [proto.queue.get_nowait() for _ in range(proto.queue.qsize())]
        for task in asyncio.all_tasks() - {asyncio.current_task()}:
            task.cancel()
        assert [m.get("bytes") or m.get("text") for m in queued] == [b"heavy", b"three", "text"]
        return taken

    assert asyncio.run(run()) == [b"one", b"two"]


# -- a real server ------------------------------------------------------------------------------


@pytest.fixture
def seeded(tmp_path: Path) -> tuple[Path, str, str]:
    path = tmp_path / "server"
    with Workspace.open(path, member="casting") as ws:
        production = ws.create_production("Wire")
        assert production.id
        pid = production.id
    return path, pid, make_token(path, "write")


def test_live_relays_are_written_straight_to_the_socket(seeded) -> None:
    path, pid, token = seeded
    with (
        ServerThread(path) as server,
        ws_connect(server, pid, token) as a,
        ws_connect(server, pid, token) as b,
    ):
        docs = [Doc(), Doc()]
        handshake(a, docs[0])
        handshake(b, docs[1])
        room = server.app_state.rooms[pid]
        assert all(peer.direct is not None for peer in room.peers)
        queued: list[bytes] = []
        for peer in room.peers:  # what goes the ASGI way, if anything
            peer._enqueue = queued.append  # type: ignore[method-assign]
        for n in range(20):
            before = docs[0].get_state()
            docs[0].get("talents", type=Map)[f"t{n}"] = Map({"id": f"t{n}", "name": f"T {n}"})
            a.send(p.update_frame(docs[0].get_update(before)))
        deadline = time.monotonic() + PATIENCE
        while len(docs[1].get("talents", type=Map)) < 20 and time.monotonic() < deadline:
            for message in recv_frames(b, 1, until=is_update):
                if is_update(message):
                    docs[1].apply_update(message.payload)
        assert len(docs[1].get("talents", type=Map)) == 20
        assert queued == []
        # ...and read straight from it: taken as they arrived, not through ASGI's queue.
        assert server.app_state.frames_taken_now >= 20


def test_a_peer_that_never_reads_is_cut_off_counting_what_the_socket_holds(seeded) -> None:
    """Frames written straight to the socket count toward the slow-peer limit (bytes the
    kernel has not taken yet), and once the socket stops taking them they queue: a peer
    that never reads is cut off with 1013 either way."""
    path, pid, token = seeded
    options = ServerOptions(max_queued=256 * 1024)
    with ServerThread(path, options=options) as server:
        # A raw socket that does the handshake, then never reads again.
        slow = socket.create_connection(("127.0.0.1", server.port))
        slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        key = base64.b64encode(os.urandom(16)).decode()
        slow.sendall(
            (
                f"GET /sync/{pid}?token={token}&device=slow HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        head = b""
        while b"\r\n\r\n" not in head:
            head += slow.recv(1)
        assert head.startswith(b"HTTP/1.1 101")
        with slow, ws_connect(server, pid, token) as writer:
            doc = Doc()
            handshake(writer, doc)
            talents = doc.get("talents", type=Map)
            before = doc.get_state()
            talents["t"] = Map({"id": "t", "name": "Noisy", "notes": Text("")})
            writer.send(p.update_frame(doc.get_update(before)))
            assert wait_until(lambda: len(server.app_state.rooms[pid].peers) == 2)
            room = server.app_state.rooms[pid]
            # Far more than the kernel's socket buffers hold (several MB on loopback).
            slow_peer = next(peer for peer in room.peers if peer.device == "slow")
            for n in range(600):
                if slow_peer.closed:
                    break
                before = doc.get_state()
                text = talents["t"]["notes"]
                text += f"{n:04d}" + "x" * 20_000
                writer.send(p.update_frame(doc.get_update(before)))
            assert wait_until(lambda: slow_peer.closed), "the slow peer was kept"
            assert slow_peer.close_code == 1013
