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
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.frames import Frame, Opcode
from websockets.protocol import State

#: The scope extension's name.
EXTENSION = "castroom.direct"


class _Encoded:
    """The last payload encoded, and its frame: one room's merged frame goes to every
    peer of the room in a row, so it is encoded once."""

    payload: bytes = b""
    frame: bytes = b""


_last = _Encoded()


def encode(payload: bytes) -> bytes:
    """``payload`` as one unmasked binary WebSocket frame (a server's frame)."""
    if payload is not _last.payload:
        _last.frame = Frame(Opcode.BINARY, payload).serialize(mask=False)
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


class DirectWebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's sans-I/O WebSocket protocol, offering :class:`DirectSend` in the scope,
    and reading a few messages ahead of the application: uvicorn pauses the socket after
    every message and resumes it when the application takes it (two epoll changes per
    message); here it pauses only once READ_AHEAD messages wait, or a large one does."""

    def handle_connect(self, event: Any) -> None:
        super().handle_connect(event)
        scope = getattr(self, "scope", None)
        if scope is not None:  # None: the handshake was refused
            scope["extensions"][EXTENSION] = DirectSend(self)

    def send_receive_event_to_app(self) -> None:
        if self._taken():
            return
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
