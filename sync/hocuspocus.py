"""The Hocuspocus wire format: pure frame encoding and decoding, no I/O.

Read from the npm packages themselves (``@hocuspocus/server`` and ``@hocuspocus/provider``
4.7: ``types.ts`` MessageType, ``IncomingMessage``/``OutgoingMessage``,
``ClientConnection.handleQueueingMessage``, ``@hocuspocus/common`` ``auth.ts``).
Hocuspocus multiplexes many documents over one WebSocket, so every frame but ping and
pong starts with the document's *address*::

    varString address     the document name, or "name\\0sessionId" (session-aware providers;
                          the server answers on the same address)
    varUint   type        0 sync, 1 awareness, 2 auth, 3 query awareness, 4 sync reply,
                          5 stateless, 6 broadcast stateless (server-internal), 7 close,
                          8 sync status
    ...                   type 0/1/3/4: exactly the y-websocket frame's body after its type
                          (so ``type + rest`` is a y-websocket frame, 4 read as 0);
                          2: varUint 0 token [varString token [varString provider version]]
                             | 1 permission denied, varString reason
                             | 2 authenticated, varString scope ("read-write" / "readonly");
                          5, 6: varString payload; 7: [varString reason];
                          8: varUint 1 (applied) or 0 (refused: a read-only connection)

Ping and pong are one bare byte each (``09`` from the server, ``10`` answered).

Decoding is strict, like :mod:`castroom.sync.protocol`: truncation, trailing bytes or an
unknown type raise :class:`~castroom.sync.protocol.ProtocolError`. The y-websocket body
is handed to :class:`~castroom.sync.protocol.SyncSession`, which checks it as it checks
every y-websocket frame (one intake for both formats).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from .protocol import ProtocolError, read_var_bytes, read_var_uint, write_var_string, write_var_uint

#: What castroom says it is in its auth message (Hocuspocus logs the provider version).
VERSION = "castroom"
SCOPE_WRITE = "read-write"
SCOPE_READ = "readonly"


class HPType(IntEnum):
    SYNC = 0
    AWARENESS = 1
    AUTH = 2
    QUERY_AWARENESS = 3
    SYNC_REPLY = 4
    STATELESS = 5
    BROADCAST_STATELESS = 6
    CLOSE = 7
    SYNC_STATUS = 8
    PING = 9
    PONG = 10


class AuthType(IntEnum):
    TOKEN = 0
    PERMISSION_DENIED = 1
    AUTHENTICATED = 2


#: The types whose body is a y-websocket frame's body.
_YJS_TYPES = (HPType.SYNC, HPType.AWARENESS, HPType.QUERY_AWARENESS, HPType.SYNC_REPLY)

PING = bytes([HPType.PING])
PONG = bytes([HPType.PONG])


@dataclass(frozen=True)
class Frame:
    """One decoded Hocuspocus frame.

    ``address`` is what the frame was sent to (``name`` or ``name\\0session``); ``name``
    the document. For the Yjs types ``yjs`` is the equivalent y-websocket frame; for auth,
    ``auth`` is its sub-type and ``text`` the token, reason or scope; ``text`` is also the
    stateless payload and the close reason; ``applied`` is a sync status's flag."""

    address: str
    type: HPType
    yjs: bytes = b""
    auth: AuthType | None = None
    text: str = ""
    version: str = ""
    applied: bool = False

    @property
    def name(self) -> str:
        return self.address.partition("\0")[0]


def is_auth(data: bytes) -> bool:
    """Whether ``data`` is a Hocuspocus provider's auth message (its first frame), e.g.
    sent to a y-websocket endpoint by mistake."""
    try:
        frame = decode(data, max_size=len(data))
    except ProtocolError:
        return False
    return frame.type is HPType.AUTH and frame.auth is AuthType.TOKEN


def _read_string(data: bytes, pos: int) -> tuple[str, int]:
    raw, pos = read_var_bytes(data, pos)
    try:
        return raw.decode("utf-8"), pos
    except UnicodeDecodeError:
        raise ProtocolError("a string that is not UTF-8") from None


def decode(data: bytes, *, max_size: int) -> Frame:
    """Decode one frame strictly. A bare ping or pong has the empty address."""
    data = bytes(data)
    if len(data) > max_size:
        raise ProtocolError(f"frame of {len(data)} bytes exceeds the {max_size}-byte limit")
    if data in (PING, PONG):
        return Frame("", HPType(data[0]))
    if not data:
        raise ProtocolError("empty frame")
    address, pos = _read_string(data, 0)
    kind, pos = read_var_uint(data, pos)
    try:
        kind = HPType(kind)
    except ValueError:
        raise ProtocolError(f"unknown Hocuspocus message type {kind}") from None
    if kind in (HPType.PING, HPType.PONG):
        raise ProtocolError("a ping or pong carries no document name")
    if kind in _YJS_TYPES:
        # The body's own checks (sub-types, lengths, trailing bytes) are SyncSession's.
        inner = HPType.SYNC if kind is HPType.SYNC_REPLY else kind
        return Frame(address, kind, yjs=write_var_uint(inner) + data[pos:])
    frame, pos = _decode_rest(address, kind, data, pos)
    if pos != len(data):
        raise ProtocolError(f"{len(data) - pos} unexpected bytes after the message")
    return frame


def _decode_rest(address: str, kind: HPType, data: bytes, pos: int) -> tuple[Frame, int]:
    if kind is HPType.AUTH:
        sub, pos = read_var_uint(data, pos)
        try:
            auth = AuthType(sub)
        except ValueError:
            raise ProtocolError(f"unknown auth message type {sub}") from None
        text = version = ""
        if pos < len(data):  # a server's token request carries nothing
            text, pos = _read_string(data, pos)
        if auth is AuthType.TOKEN and pos < len(data):
            version, pos = _read_string(data, pos)
        return Frame(address, kind, auth=auth, text=text, version=version), pos
    if kind is HPType.SYNC_STATUS:
        flag, pos = read_var_uint(data, pos)
        return Frame(address, kind, applied=flag == 1), pos
    text = ""
    if kind in (HPType.STATELESS, HPType.BROADCAST_STATELESS) or pos < len(data):
        text, pos = _read_string(data, pos)  # a provider's close carries no reason
    return Frame(address, kind, text=text), pos


# -- encoding --------------------------------------------------------------------------------


def wrap(address: str, yjs_frame: bytes) -> bytes:
    """A y-websocket frame (sync, awareness, query awareness) sent to ``address``."""
    return write_var_string(address) + yjs_frame


def token(address: str, secret: str, version: str = VERSION) -> bytes:
    """A provider's auth message: the token for this document."""
    return (
        write_var_string(address)
        + bytes([HPType.AUTH, AuthType.TOKEN])
        + write_var_string(secret)
        + write_var_string(version)
    )


def authenticated(address: str, *, read_only: bool) -> bytes:
    scope = SCOPE_READ if read_only else SCOPE_WRITE
    return (
        write_var_string(address)
        + bytes([HPType.AUTH, AuthType.AUTHENTICATED])
        + write_var_string(scope)
    )


def permission_denied(address: str, reason: str) -> bytes:
    return (
        write_var_string(address)
        + bytes([HPType.AUTH, AuthType.PERMISSION_DENIED])
        + write_var_string(reason)
    )


def sync_status(address: str, *, applied: bool) -> bytes:
    return write_var_string(address) + bytes([HPType.SYNC_STATUS, int(applied)])


def close(address: str, reason: str | None = None) -> bytes:
    """Close one document (the socket stays open). A provider sends no reason."""
    body = write_var_string(address) + bytes([HPType.CLOSE])
    return body if reason is None else body + write_var_string(reason)


def stateless(address: str, payload: str) -> bytes:
    return write_var_string(address) + bytes([HPType.STATELESS]) + write_var_string(payload)
