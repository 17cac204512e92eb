"""The live path's own frame reader (sync/wire.py FrameReader): what a Yjs peer sends is
cut from the byte stream here, anything else is left to websockets. Unit tests on bytes,
then a real uvicorn server on 127.0.0.1 read through raw sockets."""

from __future__ import annotations

import os
import socket
import struct
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis_profiles import examples
from patience import PATIENCE
from pycrdt import Doc, Map, Text
from sync_helpers import (
    NodePeer,
    close_code,
    make_token,
    needs_node_peers,
    raw_websocket,
    server_frames,
    stop_process,
    wait_until,
)
from test_server_limits import Seeded
from websockets.frames import Frame, Opcode

from castroom.core import model
from castroom.core.workspace import Workspace
from castroom.sync import protocol as p
from castroom.sync.server import ServerOptions, ServerThread
from castroom.sync.wire import (
    BINARY,
    CONTROL,
    REST,
    DirectWebSocketProtocol,
    FrameReader,
    encode,
)

CASTROOM = Path(sys.executable).with_name("castroom")


def client_frame(opcode: int, payload: bytes, *, fin: bool = True, masked: bool = True) -> bytes:
    """A frame as a client sends it (masked), of any opcode and reserved bits."""
    head = bytes([(0x80 if fin else 0) | opcode])
    size = len(payload)
    bit = 0x80 if masked else 0
    if size < 126:
        head += bytes([bit | size])
    elif size < 1 << 16:
        head += bytes([bit | 126]) + struct.pack("!H", size)
    else:
        head += bytes([bit | 127]) + struct.pack("!Q", size)
    if not masked:
        return head + payload
    mask = os.urandom(4)
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def binary(payload: bytes) -> bytes:
    return client_frame(Opcode.BINARY, payload)


def read_all(reader: FrameReader, pieces: list[bytes]) -> list[tuple[int, bytes]]:
    items = []
    for piece in pieces:
        reader.feed(piece)
        while (item := reader.next()) is not None:
            items.append(item)
            if item[0] == REST:
                return items
    return items


# Every length encoding: 7-bit (to 125), 16-bit (126 to 65535), 64-bit (65536 up).
SIZES = [0, 1, 125, 126, 300, 65535, 65536, 70000]


@pytest.mark.parametrize("size", SIZES)
def test_a_servers_frame_is_written_as_websockets_writes_it(size: int) -> None:
    payload = os.urandom(size)
    assert encode(payload) == Frame(Opcode.BINARY, payload).serialize(mask=False)


@pytest.mark.parametrize("size", SIZES)
def test_masked_binary_frames_of_every_length_are_unmasked(size: int) -> None:
    payload = os.urandom(size)
    assert read_all(FrameReader(1 << 20), [binary(payload)]) == [(BINARY, payload)]


def test_control_frames_go_to_websockets_whole_and_in_order() -> None:
    ping = client_frame(Opcode.PING, b"are you there")
    pong = client_frame(Opcode.PONG, b"")
    close = client_frame(Opcode.CLOSE, struct.pack("!H", 1000) + b"bye")
    stream = [binary(b"one"), ping, binary(b"two"), pong, close]
    assert read_all(FrameReader(1024), [b"".join(stream)]) == [
        (BINARY, b"one"),
        (CONTROL, ping),
        (BINARY, b"two"),
        (CONTROL, pong),
        (CONTROL, close),
    ]


def test_any_split_at_any_byte_reads_the_same() -> None:
    """Split in two at every byte (7- and 16-bit lengths, control frames between), and
    fed one byte at a time with a 64-bit one: the same items each time."""
    frames = [
        binary(b"a" * 5),
        client_frame(Opcode.PING, b"p"),
        binary(bytes(range(256)) + b"b" * 44),
        client_frame(Opcode.PONG, b""),
        binary(b""),
    ]
    stream = b"".join(frames)
    whole = read_all(FrameReader(1 << 20), [stream])
    assert [kind for kind, _ in whole] == [BINARY, CONTROL, BINARY, CONTROL, BINARY]
    for cut in range(len(stream) + 1):
        assert read_all(FrameReader(1 << 20), [stream[:cut], stream[cut:]]) == whole, cut
    big = os.urandom(66_000)
    stream = binary(big) + frames[1]
    one_by_one = [stream[i : i + 1] for i in range(len(stream))]
    assert read_all(FrameReader(1 << 20), one_by_one) == [(BINARY, big), (CONTROL, frames[1])]


@pytest.mark.parametrize(
    "unusual",
    [
        client_frame(Opcode.BINARY, b"x", masked=False),  # a client must mask
        client_frame(Opcode.TEXT, b"text"),
        client_frame(Opcode.BINARY, b"first half", fin=False),  # fragmented
        client_frame(Opcode.CONT, b"second half"),
        client_frame(0x40 | Opcode.BINARY, b"x"),  # RSV1: no extension was agreed
        client_frame(0x3, b"x"),  # a reserved opcode
        client_frame(Opcode.PING, b"x" * 126),  # a control frame over 125 bytes
        client_frame(Opcode.PING, b"x", fin=False),  # a fragmented control frame
        client_frame(Opcode.BINARY, b"x" * 2000),  # over the size cap
    ],
    ids=[
        "unmasked",
        "text",
        "fragmented",
        "continuation",
        "rsv1",
        "opcode-3",
        "long-ping",
        "fragmented-ping",
        "oversized",
    ],
)
def test_anything_else_is_handed_over_with_what_follows(unusual: bytes) -> None:
    after = binary(b"after")
    items = read_all(FrameReader(1024), [binary(b"before") + unusual + after])
    assert items == [(BINARY, b"before"), (REST, unusual + after)]


def test_an_oversized_frame_is_handed_over_from_its_header() -> None:
    """Its body is not waited for: websockets refuses it (1009) from the header."""
    header = bytes([0x82, 0x80 | 127]) + struct.pack("!Q", 1 << 40) + os.urandom(4)
    assert read_all(FrameReader(1 << 20), [header]) == [(REST, header)]
    header = bytes([0x82, 0x80 | 126]) + struct.pack("!H", 2000)
    assert read_all(FrameReader(1024), [header]) == [(REST, header)]


_payloads = st.sampled_from(SIZES[:5]).flatmap(lambda n: st.binary(min_size=n, max_size=n))
_frames = st.one_of(
    _payloads.map(lambda data: ("binary", data)),
    st.binary(max_size=125).map(lambda data: ("ping", data)),
    st.binary(max_size=125).map(lambda data: ("pong", data)),
)


@settings(max_examples=examples(200))
@given(frames=st.lists(_frames, max_size=12), cuts=st.lists(st.integers(0, 2000), max_size=8))
def test_any_split_of_a_byte_stream_reads_the_same_messages(
    frames: list[tuple[str, bytes]], cuts: list[int]
) -> None:
    opcodes = {"binary": Opcode.BINARY, "ping": Opcode.PING, "pong": Opcode.PONG}
    wire = [client_frame(opcodes[kind], data) for kind, data in frames]
    stream = b"".join(wire)
    points = sorted({min(c, len(stream)) for c in cuts})
    pieces = [stream[a:b] for a, b in zip([0, *points], [*points, len(stream)], strict=True)]
    expected = [
        (BINARY, data) if kind == "binary" else (CONTROL, raw)
        for (kind, data), raw in zip(frames, wire, strict=True)
    ]
    assert read_all(FrameReader(1 << 20), pieces) == expected
    # websockets reads the same payloads from the same bytes.
    for raw, (_, data) in zip(wire, frames, strict=True):
        assert _websockets_reads(raw) == data


def _websockets_reads(raw: bytes) -> bytes:
    reader = iter([raw])
    parser = Frame.parse(lambda n: _exact(reader, n), mask=True)
    try:
        while True:
            next(parser)
    except StopIteration as done:
        return bytes(done.value.data)


def _exact(reader: object, n: int):  # type: ignore[no-untyped-def]
    holder = _exact.__dict__.setdefault("buffer", {})
    buf = holder.setdefault(id(reader), bytearray())
    while len(buf) < n:
        buf += next(reader)  # type: ignore[call-overload]
        yield
    out = bytes(buf[:n])
    del buf[:n]
    return out


# -- a real server --------------------------------------------------------------------------


class Served(Seeded):
    """A production on disk, and a Yjs peer's copy of it that makes updates."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.token = self.write
        self.doc = Doc()
        with Workspace.open(self.path) as ws:
            self.doc.apply_update(ws.production(self.pid).doc.encode_update())

    def edit(self, notes: str) -> bytes:
        """A peer's update adding a talent with these notes, as its own update frame."""
        sent: list[bytes] = []
        subscription = self.doc.observe(lambda event: sent.append(event.update))
        talents = self.doc.get("talents", type=Map)
        talents[f"t{len(notes)}-{os.urandom(2).hex()}"] = Map({"notes": Text(notes)})
        self.doc.unobserve(subscription)
        return p.update_frame(sent[-1])

    def state(self, server: ServerThread) -> bytes:
        answer = httpx.get(
            f"{server.url}/sync/{self.pid}/state",
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=PATIENCE,
        )
        answer.raise_for_status()
        return answer.content

    def notes(self) -> set[str]:
        with Workspace.open(self.path) as ws:
            talents = ws.production(self.pid).doc.ydoc.get("talents", type=Map)
            return {str(t["notes"]) for t in talents.values() if "notes" in t}


@pytest.fixture
def served(tmp_path: Path) -> Served:
    return Served(tmp_path)


def _open(server: ServerThread, served: Served) -> socket.socket:
    sock = raw_websocket(server.port, f"/sync/{served.pid}?token={served.token}")
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def _readers(server: ServerThread) -> list[FrameReader]:
    connections = server.server.server_state.connections
    return [
        c.frame_reader
        for c in list(connections)
        if isinstance(c, DirectWebSocketProtocol) and c.frame_reader is not None
    ]


def test_a_peers_frames_byte_by_byte_with_pings_between(served: Served) -> None:
    """Updates of every length encoding, sent a byte at a time with pings between them:
    each is merged, each ping answered with its own payload, through the fast reader."""
    notes = ["short", "x" * 300, "y" * 70_000]
    with ServerThread(served.path) as server, _open(server, served) as sock:
        stream = b""
        for n, text in enumerate(notes):
            stream += binary(served.edit(text)) + client_frame(Opcode.PING, f"ping {n}".encode())
        for i in range(len(stream)):
            sock.sendall(stream[i : i + 1])
        pongs = []
        for opcode, payload in server_frames(sock, timeout=PATIENCE):
            if opcode == Opcode.PONG:
                pongs.append(payload)
            if len(pongs) == len(notes):
                break
        assert pongs == [f"ping {n}".encode() for n in range(len(notes))]
        assert _readers(server), "the connection's frames were not read by FrameReader"
        sock.sendall(client_frame(Opcode.CLOSE, struct.pack("!H", 1000)))
        assert close_code(sock, timeout=PATIENCE) == 1000
    assert set(notes) <= served.notes()


@pytest.mark.parametrize(
    ("garbage", "code"),
    [
        (client_frame(Opcode.BINARY, b"\x00\x02\x05abc", masked=False), 1002),  # unmasked
        (client_frame(0x3, b"\x00\x02"), 1002),  # a reserved opcode
        (client_frame(0x40 | Opcode.BINARY, b"\x00\x02"), 1002),  # RSV1
        (client_frame(Opcode.CONT, b"\x00\x02"), 1002),  # a continuation of nothing
        (binary(b"\x00\x02\x09not a Yjs update"), 1007),  # a frame, its update garbage
        (binary(b"\x07\x01"), 1007),  # an unknown message type
    ],
    ids=["unmasked", "opcode-3", "rsv1", "continuation", "bad-update", "bad-type"],
)
def test_garbage_closes_the_connection_and_changes_nothing(
    served: Served, garbage: bytes, code: int
) -> None:
    with ServerThread(served.path) as server:
        before = served.state(server)
        with _open(server, served) as sock:
            # A good frame first, so the fast reader is reading when the garbage comes.
            sock.sendall(binary(p.step1_frame(b"\x00")))
            wait_until(lambda: _readers(server))
            sock.sendall(garbage + binary(served.edit("after the garbage")))
            assert close_code(sock, timeout=PATIENCE) == code
        assert served.state(server) == before
    assert "after the garbage" not in served.notes()


def test_an_oversized_frame_after_others_is_refused_from_its_header(served: Served) -> None:
    cap = 64 * 1024
    options = ServerOptions(max_message=cap)
    with ServerThread(served.path, options=options) as server, _open(server, served) as sock:
        sock.sendall(binary(served.edit("small")))
        wait_until(lambda: "small" in served.notes())
        sock.sendall(bytes([0x82, 0x80 | 127]) + struct.pack("!Q", cap + 1) + os.urandom(4))
        assert close_code(sock, timeout=PATIENCE) == 1009  # its body was never sent


@needs_node_peers
def test_a_node_peers_frames_on_castroom_serve_take_the_fast_paths(tmp_path: Path) -> None:
    """On a real `castroom serve` process, a stock Node y-websocket peer's update frames
    are cut from the stream by FrameReader and taken as they arrive (GET /stats counts
    both): FrameReader falls back to websockets' parser without a word when it cannot
    tell websockets stands between frames, so this fails if the fast path is never taken."""
    path = tmp_path / "ws"
    with Workspace.open(path, member="casting") as ws:
        pid = ws.create_production("Fast").id
    assert pid is not None
    token = make_token(path, "write")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    url = f"http://127.0.0.1:{port}"
    args = [str(CASTROOM), "--workspace", str(path), "serve", "--port", str(port)]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def frames() -> dict[str, int] | None:
        try:
            answer = httpx.get(
                f"{url}/stats", headers={"Authorization": f"Bearer {token}"}, timeout=PATIENCE
            )
        except httpx.HTTPError:
            return None
        return answer.json()["frames"] if answer.status_code == 200 else None

    try:
        before = wait_until(frames)
        assert before, "castroom serve did not start"
        with NodePeer(f"ws://127.0.0.1:{port}/sync", pid, token=token) as peer:
            peer.wait_synced()
            for n in range(10):
                peer.request("put", collection="talents", id=f"T{n}", fields={"name": f"N {n}"})
            peer.request("wait", collection="talents", id="T9", field="name", value="N 9")

            def read() -> dict[str, int] | None:
                now = frames()
                done = now and all(now[k] - before[k] >= 10 for k in ("read_here", "taken_now"))
                return now if done else None

            assert wait_until(read), f"the fast paths took too few frames: {frames()}"
    finally:
        stop_process(proc)
    with Workspace.open(path) as ws:
        assert len(ws.production(pid).doc.all(model.Talent)) == 10
