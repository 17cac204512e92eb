"""WebSocket frames written straight to the socket, for live fan-out.

A live room sends one merged frame to every peer each turn. Through ASGI, every such send
is a coroutine per peer (a writer task woken, starlette's and uvicorn's send layers, the
frame encoded again for each peer): in bench_live that was most of castroom's CPU per
delivery beyond the system call itself. uvicorn's WebSocket protocol (websockets'
sans-I/O implementation) is kept for everything else; :class:`DirectWebSocketProtocol`
only adds an ASGI scope extension, ``castroom.direct``, a :class:`DirectSend` that
writes an already encoded server frame to the connection's transport while the
connection is open and no extension (compression) was negotiated. Callers fall back to
the ordinary ``websocket.send`` whenever it declines, and use it only when nothing of
theirs is queued, so frames never overtake each other.

The other way, :attr:`DirectSend.take` lets the application take a binary message as it
arrives, in the protocol's ``data_received``, instead of through the ASGI queue and the
reading task; it is offered a message only while none waits in the queue, and one it
declines is queued as usual.

Once the connection is open, :class:`FrameReader` cuts the client's frames from the byte
stream itself: websockets' parser (generator-based, a Frame object and an event list per
frame) and uvicorn's dispatch took 8-10 us a frame, this 1-3 us. It takes only what a Yjs
peer sends, a masked, final binary frame within the size cap (unmasked and checked for
length from its header); a complete control frame is handed to websockets as it came,
which answers a ping, takes a pong or closes, and anything else (a text or fragmented
frame, reserved bits, a bad opcode, an oversized or unmasked frame) is handed over with
everything after it, for websockets to read, refuse or close as it always did.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.frames import Opcode, apply_mask  # apply_mask: its C speedup
from websockets.protocol import State
from websockets.streams import StreamReader

#: The scope extension's name.
EXTENSION = "castroom.direct"
_FIN_BINARY = 0x80 | Opcode.BINARY  # FIN set, no reserved bits


class _Encoded:
    """The last payload encoded, and its frame: one room's merged frame goes to every
    peer of the room in a row, so it is encoded once."""

    payload: bytes = b""
    frame: bytes = b"\x82\x00"  # the empty payload's (b"" is one object: it is never new)


_last = _Encoded()


def encode(payload: bytes) -> bytes:
    """``payload`` as one unmasked binary WebSocket frame (a server's frame)."""
    if payload is not _last.payload:
        # RFC 6455 5.2, as websockets' Frame.serialize(mask=False) writes it (1.5 us there).
        size = len(payload)
        if size < 126:
            head = bytes((_FIN_BINARY, size))
        elif size < 1 << 16:
            head = bytes((_FIN_BINARY, 126)) + size.to_bytes(2, "big")
        else:
            head = bytes((_FIN_BINARY, 127)) + size.to_bytes(8, "big")
        _last.frame = head + payload
        _last.payload = payload
    return _last.frame


class DirectSend:
    """Writes frames to one WebSocket connection's transport, bypassing ASGI."""

    def __init__(self, protocol: WebSocketsSansIOProtocol) -> None:
        self.protocol = protocol
        #: Set by the application: takes a binary message as it arrives, before the ASGI
        #: queue, returning True if it took it (else it is queued as usual). Offered only
        #: while nothing waits in the queue, so messages are taken in order.
        self.take: Callable[[bytes], bool] | None = None

    def open(self) -> bool:
        """Whether the connection is plainly open and writable (else: the ASGI way)."""
        proto = self.protocol
        return not (
            proto.conn.state is not State.OPEN
            or proto.conn.extensions
            or proto.close_sent
            or proto.disconnected
            or not proto.writable.is_set()
            or proto.transport.is_closing()
        )

    def write(self, payload: bytes) -> bool:
        """Write ``payload`` as a binary message now; False (nothing written) when the
        connection is not :meth:`open`."""
        if not self.open():
            return False
        self.protocol.transport.write(encode(payload))
        return True

    def write_all(self, payloads: list[bytes]) -> bool:
        """Write several messages in one go (one system call), or none of them."""
        if not self.open():
            return False
        self.protocol.transport.write(b"".join(encode(p) for p in payloads))
        return True

    def buffered(self) -> int:
        """Bytes written and not yet taken by the kernel."""
        transport = self.protocol.transport
        return 0 if transport is None else transport.get_write_buffer_size()


#: Messages, and bytes per message, read ahead of the application before reading pauses.
READ_AHEAD = 16
READ_AHEAD_BYTES = 64 * 1024


#: What :meth:`FrameReader.next` found: a binary message's payload (unmasked), a whole
#: control frame for websockets, or the rest of the stream for websockets to read.
BINARY, CONTROL, REST = 1, 2, 3
_CONTROLS = frozenset(0x80 | op for op in (Opcode.CLOSE, Opcode.PING, Opcode.PONG))


class FrameReader:
    """A client's frames cut from its byte stream (RFC 6455 5.2), for the frames a Yjs
    peer sends; everything else is left to websockets (see the module's docstring)."""

    def __init__(self, max_size: int | None) -> None:
        self.max_size = max_size if max_size is not None else 1 << 63
        self.buffer = bytearray()
        self.pos = 0
        #: Set once :data:`REST` was given: the stream is websockets' from there on.
        self.done = False

    def feed(self, data: bytes) -> None:
        if self.pos:
            del self.buffer[: self.pos]
            self.pos = 0
        self.buffer += data

    def next(self) -> tuple[int, bytes] | None:
        """The next complete item, or None until more bytes come."""
        buf, pos = self.buffer, self.pos
        size = len(buf) - pos
        if size < 2 or self.done:
            return None
        head, second = buf[pos], buf[pos + 1]
        length = second & 0x7F
        start = pos + 2
        if length == 126:
            if size < 4:
                return None
            length = int.from_bytes(buf[start : start + 2], "big")
            start += 2
        elif length == 127:
            if size < 10:
                return None
            length = int.from_bytes(buf[start : start + 8], "big")
            start += 8
        binary = head == _FIN_BINARY and length <= self.max_size
        if not (second & 0x80) or not (binary or (head in _CONTROLS and length <= 125)):
            self.done = True
            return REST, self.rest()
        end = start + 4 + length
        if end > len(buf):
            return None  # wait for the rest (at most max_size bytes)
        self.pos = end
        if binary:
            return BINARY, apply_mask(buf[start + 4 : end], buf[start : start + 4])
        return CONTROL, bytes(buf[pos:end])

    def rest(self) -> bytes:
        """Whatever has not been read yet (the reader holds nothing after)."""
        rest = bytes(self.buffer[self.pos :])
        self.buffer, self.pos = bytearray(), 0
        return rest


def _at_frame_boundary(conn: Any) -> bool:
    """Whether websockets' parser waits for the first byte of a frame, with nothing of
    one read (it waits in StreamReader.at_eof only between frames)."""
    gen = conn.parser
    while getattr(gen, "gi_yieldfrom", None) is not None:
        gen = gen.gi_yieldfrom
    code = getattr(gen, "gi_code", None)
    return code is _AT_EOF and not conn.reader.buffer and conn.current_size is None


_AT_EOF = StreamReader.at_eof.__code__


class DirectWebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's sans-I/O WebSocket protocol, offering :class:`DirectSend` in the scope,
    and reading a few messages ahead of the application: uvicorn pauses the socket after
    every message and resumes it when the application takes it (two epoll changes per
    message); here it pauses only once READ_AHEAD messages wait, or a large one does."""

    #: Cuts the frames once the connection is open (None: not yet, or websockets reads).
    frame_reader: FrameReader | None = None
    #: Set once it was decided whether this connection's frames are read here.
    reader_decided = False
    #: The connection's DirectSend, once the handshake is accepted.
    direct: DirectSend | None = None
    #: Binary messages a FrameReader cut, in this process (GET /stats: that it is used;
    #: it falls back to websockets' parser, silently, if _at_frame_boundary cannot tell).
    read_here = 0

    def data_received(self, data: bytes) -> None:
        reader = self.frame_reader or self._start_reading()
        if reader is None:
            super().data_received(data)
            return
        reader.feed(data)
        while (item := reader.next()) is not None:
            kind, chunk = item
            if kind == BINARY:
                DirectWebSocketProtocol.read_here += 1
                direct = self.direct
                take = direct.take if direct is not None else None
                if take is None or self.close_sent or not self.queue.empty() or not take(chunk):
                    self.curr_msg_data_type = "bytes"
                    self.frames = [chunk]
                    self._queue_message()
                continue
            if kind == CONTROL:
                super().data_received(chunk)
                if self.conn.state is State.OPEN:
                    continue
                chunk = reader.rest()  # closing: websockets takes what follows, as before
            self.frame_reader = None
            if chunk:
                super().data_received(chunk)
            return

    def _start_reading(self) -> FrameReader | None:
        """A FrameReader once the connection is open and websockets' parser stands between
        two frames; None before (the handshake is websockets') and, decided once, for a
        connection whose first frames websockets began to read, or with an extension."""
        if self.reader_decided or self.conn.state is not State.OPEN:
            return None
        self.reader_decided = True
        conn = self.conn
        if conn.extensions or self.close_sent or not _at_frame_boundary(conn):
            return None
        self.frame_reader = FrameReader(conn.max_message_size)
        return self.frame_reader

    def handle_connect(self, event: Any) -> None:
        super().handle_connect(event)
        scope = getattr(self, "scope", None)
        if scope is not None:  # None: the handshake was refused
            self.direct = scope["extensions"][EXTENSION] = DirectSend(self)

    def send_receive_event_to_app(self) -> None:
        if not self._taken():
            self._queue_message()

    def _queue_message(self) -> None:
        """The message in ``self.frames`` to the ASGI queue, reading paused only once
        READ_AHEAD messages wait (or a large one does)."""
        size = sum(len(f) for f in self.frames)
        paused = self.read_paused
        self.read_paused = True  # so uvicorn's own method does not pause the socket
        try:
            super().send_receive_event_to_app()
        finally:
            self.read_paused = paused
        if not paused and (self.queue.qsize() >= READ_AHEAD or size > READ_AHEAD_BYTES):
            self.read_paused = True
            self.transport.pause_reading()

    def _taken(self) -> bool:
        """Whether the application took the message now (DirectSend.take): a frame read
        through ASGI wakes the reading task, and starlette's and uvicorn's receive layers
        run, for each message."""
        scope = getattr(self, "scope", None)
        direct = direct_send(scope)
        take = direct.take if direct is not None else None
        if (
            take is None
            or self.curr_msg_data_type != "bytes"
            or self.close_sent
            or not self.queue.empty()
        ):
            return False
        data = self.frames[0] if len(self.frames) == 1 else b"".join(self.frames)
        if not take(data):
            return False
        self.frames = []
        return True


def direct_send(scope: Any) -> DirectSend | None:
    """The connection's :class:`DirectSend`, if the server offers one."""
    extensions = scope.get("extensions") if isinstance(scope, dict) else None
    found = (extensions or {}).get(EXTENSION)
    return found if isinstance(found, DirectSend) else None
