"""The Yjs sync protocol as y-websocket frames it, over one castroom production.

Wire format (y-protocols): each WebSocket binary message is one *frame*::

    varUint outer type   0 = sync, 1 = awareness, 2 = auth, 3 = query awareness
    sync:      varUint sub type (0 = step 1, 1 = step 2, 2 = update), varUint length, bytes
    awareness: varUint length, bytes (varUint count, then per client:
               varUint client id, varUint clock, varString JSON state or "null")
    auth:      varUint 0 (permission denied), varString reason

No document name travels inside a frame: the URL (``/sync/{production_id}``) names it.

Decoding here is strict: a frame that is truncated, carries trailing bytes, an unknown
type, or an update/state vector that does not decode raises :class:`ProtocolError`, and
the stored document is left exactly as it was. pycrdt's own ``Decoder`` trusts its input
(it indexes past the end), so the readers are ours (:mod:`castroom.core.yupdate`, shared
with storage and folder sync); encoders are pycrdt's where it has them.

:class:`SyncSession` is the transport-free state machine for one peer connection; the
server (``server.py``), the live client (``client.py``) and tests drive it with bytes:

    session = SyncSession(production, can_write=True, device="laptop-2")
    for frame in session.opening():           # what to send first (step 1, presence)
        send(frame)
    outcome = session.receive(frame_from_peer)  # raises ProtocolError on bad bytes
    for frame in outcome.replies: send(frame)   # e.g. step 2 answering a step 1
    outcome.update                              # bytes merged into the document, if any
    outcome.awareness                           # a validated awareness frame to relay

Updates are merged through :meth:`StoredProduction.apply_update`, so they are durable and
logged with origin ``"sync"`` and the peer's device. A well-formed update from a peer
allowed to write always merges; entities it leaves invalid show in
``StoredProduction.invalid()``, never dropped.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

import msgspec

from castroom.core import crdt, yupdate
from castroom.core.crdt import create_awareness_message, create_update_message, write_message
from castroom.core.errors import BadUpdate

from .logsafe import printable_logger

if TYPE_CHECKING:
    from castroom.core.document import Changes
    from castroom.core.workspace import StoredProduction

log = printable_logger("castroom.sync")
P = ParamSpec("P")
R = TypeVar("R")

#: Default cap on one frame or request body (bytes). A whole production's first sync is
#: one step-2 frame, so this is generous; the server makes it configurable.
MAX_MESSAGE = 32 * 1024 * 1024
#: Cap on one awareness state (JSON) and on the clients in one awareness frame.
MAX_AWARENESS_STATE = 64 * 1024
MAX_AWARENESS_CLIENTS = 1024
#: The empty Yjs update (no structs, no deletes): nothing to merge or relay.
EMPTY_UPDATE = yupdate.EMPTY_UPDATE

#: HTTP headers of ``castroom serve``'s pull/push endpoints (here, not in server.py, so the
#: client does not import starlette and uvicorn): the server's state vector (base64) in a
#: pull's answer, and the sending device and team member (percent-encoded: header values
#: are ASCII).
STATE_VECTOR_HEADER = "X-Castroom-State-Vector"
DEVICE_HEADER = "X-Castroom-Device"
MEMBER_HEADER = "X-Castroom-Member"


class MessageType(IntEnum):
    SYNC = 0
    AWARENESS = 1
    AUTH = 2
    QUERY_AWARENESS = 3


class SyncType(IntEnum):
    STEP1 = 0
    STEP2 = 1
    UPDATE = 2


class ProtocolError(BadUpdate):
    """A frame (or the update / state vector inside it) could not be decoded.

    Nothing was changed. The message is one line, fit to show the peer."""


# -- strict decoding ----------------------------------------------------------------------


def _protocol_errors(check: Callable[P, R]) -> Callable[P, R]:
    """``check`` (from :mod:`castroom.core.yupdate`) raising ProtocolError for BadUpdate."""

    @functools.wraps(check)
    def strict(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return check(*args, **kwargs)
        except ProtocolError:
            raise
        except BadUpdate as exc:
            raise ProtocolError(str(exc)) from None

    return strict


#: Decode a varUint at ``pos``; returns (value, next position). Refuses truncation and
#: values wider than 53 bits (JavaScript numbers), as lib0 does.
read_var_uint = _protocol_errors(yupdate.read_var_uint)
#: Raise ProtocolError unless the bytes are a well-formed Yjs state vector.
check_state_vector = _protocol_errors(yupdate.decode_state_vector)
#: The cheap checks every update gets before Yrs sees it (constant time).
guard_update = _protocol_errors(yupdate.guard_update)
#: Raise ProtocolError unless the bytes decode and integrate as a Yjs v1 update (into a
#: scratch document), for when bytes must be vetted before anything is merged.
check_update = _protocol_errors(crdt.check_update)


def read_var_bytes(data: bytes, pos: int) -> tuple[bytes, int]:
    """Decode a length-prefixed byte string at ``pos``."""
    length, pos = read_var_uint(data, pos)
    end = pos + length
    if end > len(data):
        raise ProtocolError(f"truncated frame (needs {length} bytes, has {len(data) - pos})")
    return bytes(data[pos:end]), end


def write_var_uint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    out.append(value)
    return bytes(out)


def merge_state_vectors(a: bytes, b: bytes) -> bytes:
    """The state vector of a peer that holds what ``a`` and ``b`` describe."""
    clocks = check_state_vector(a)
    for client, clock in check_state_vector(b).items():
        clocks[client] = max(clock, clocks.get(client, 0))
    return write_var_uint(len(clocks)) + b"".join(
        write_var_uint(client) + write_var_uint(clock) for client, clock in clocks.items()
    )


def write_var_string(text: str) -> bytes:
    raw = text.encode()
    return write_var_uint(len(raw)) + raw


class Message(msgspec.Struct, frozen=True):
    """One decoded frame. ``sync_type`` is set for sync frames only; ``payload`` is the
    state vector (step 1), the update (step 2 / update), the awareness update, or the
    auth reason (UTF-8). (A Struct: one is made per frame, a frozen dataclass cost 7x.)"""

    type: MessageType
    payload: bytes = b""
    sync_type: SyncType | None = None


_SYNC_TYPES = tuple(SyncType)


def decode_message(frame: bytes, *, max_size: int = MAX_MESSAGE) -> Message:
    """Decode one frame strictly (no trailing bytes). Raises ProtocolError."""
    if type(frame) is bytes and 3 <= len(frame) <= max_size and frame[0] == 0 and frame[1] < 3:
        # A live edit's frame: a sync message whose length takes one or two varint bytes,
        # read without the general path's calls (it decodes the same).
        length, start = frame[2], 3
        if length >= 0x80 and len(frame) > 3 and frame[3] < 0x80:
            length, start = (length & 0x7F) | (frame[3] << 7), 4
        if (length < 0x80 or start == 4) and len(frame) == start + length:
            return Message(MessageType.SYNC, frame[start:], _SYNC_TYPES[frame[1]])
    if not isinstance(frame, bytes | bytearray | memoryview):
        raise ProtocolError("not a binary frame")
    frame = bytes(frame)
    if len(frame) > max_size:
        raise ProtocolError(f"frame of {len(frame)} bytes exceeds the {max_size}-byte limit")
    if not frame:
        raise ProtocolError("empty frame")
    kind, pos = read_var_uint(frame, 0)
    message: Message
    if kind == MessageType.SYNC:
        sub, pos = read_var_uint(frame, pos)
        if sub not in (0, 1, 2):
            raise ProtocolError(f"unknown sync message type {sub}")
        payload, pos = read_var_bytes(frame, pos)
        message = Message(MessageType.SYNC, payload, SyncType(sub))
    elif kind == MessageType.AWARENESS:
        payload, pos = read_var_bytes(frame, pos)
        message = Message(MessageType.AWARENESS, payload)
    elif kind == MessageType.AUTH:
        sub, pos = read_var_uint(frame, pos)
        if sub != 0:
            raise ProtocolError(f"unknown auth message type {sub}")
        payload, pos = read_var_bytes(frame, pos)
        message = Message(MessageType.AUTH, payload)
    elif kind == MessageType.QUERY_AWARENESS:
        message = Message(MessageType.QUERY_AWARENESS)
    else:
        raise ProtocolError(f"unknown message type {kind}")
    if pos != len(frame):
        raise ProtocolError(f"{len(frame) - pos} unexpected bytes after the message")
    return message


@dataclass(frozen=True)
class AwarenessEntry:
    client_id: int
    clock: int
    state: dict[str, Any] | None  # None = the client left


def decode_awareness(payload: bytes) -> list[AwarenessEntry]:
    """Decode an awareness update strictly (states must be JSON objects or null)."""
    count, pos = read_var_uint(payload, 0)
    if count > MAX_AWARENESS_CLIENTS:
        raise ProtocolError(f"awareness update for {count} clients (limit {MAX_AWARENESS_CLIENTS})")
    entries = []
    for _ in range(count):
        client_id, pos = read_var_uint(payload, pos)
        clock, pos = read_var_uint(payload, pos)
        raw, pos = read_var_bytes(payload, pos)
        if len(raw) > MAX_AWARENESS_STATE:
            raise ProtocolError(f"awareness state of {len(raw)} bytes is too large")
        try:
            state = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise ProtocolError(f"awareness state is not JSON: {exc}") from None
        if state is not None and not isinstance(state, dict):
            raise ProtocolError("awareness state is neither an object nor null")
        entries.append(AwarenessEntry(client_id, clock, state))
    if pos != len(payload):
        raise ProtocolError("unexpected bytes after the awareness update")
    return entries


def encode_awareness(entries: list[AwarenessEntry]) -> bytes:
    """An awareness update payload (wrap it with :func:`awareness_frame`)."""
    out = [write_var_uint(len(entries))]
    for entry in entries:
        out.append(write_var_uint(entry.client_id))
        out.append(write_var_uint(entry.clock))
        out.append(write_var_string(json.dumps(entry.state, separators=(",", ":"))))
    return b"".join(out)


# -- encoding (pycrdt's encoders) --------------------------------------------------------


def step1_frame(state_vector: bytes) -> bytes:
    return bytes([MessageType.SYNC, SyncType.STEP1]) + write_message(state_vector)


def step2_frame(update: bytes) -> bytes:
    return bytes([MessageType.SYNC, SyncType.STEP2]) + write_message(update)


def update_frame(update: bytes) -> bytes:
    return create_update_message(update)


def awareness_frame(payload: bytes) -> bytes:
    return create_awareness_message(payload)


def permission_denied_frame(reason: str) -> bytes:
    """y-protocols auth message: a stock y-websocket client logs the reason."""
    return write_var_uint(MessageType.AUTH) + write_var_uint(0) + write_var_string(reason)


QUERY_AWARENESS_FRAME = write_var_uint(MessageType.QUERY_AWARENESS)


# -- merging --------------------------------------------------------------------------------


def merge_into(
    production: StoredProduction,
    update: bytes,
    *,
    device: str,
    member: str = "",
    max_structs: int | None = None,
) -> Changes:
    """Merge a peer's update durably (origin ``"sync"``), logged as from ``device`` and
    ``member`` (the peer's team member, if it said). Raises ProtocolError for bytes that do
    not decode or break a limit (``max_structs``: the struct cap, smaller for an
    incremental update); the document and its log are then exactly as they were."""
    # No separate check here: CastDocument.apply_update walks the bytes (bounded, before
    # any Yrs call) and rolls back whatever fails to integrate; and no refresh: its
    # begin_merge merges other processes' commits first.
    try:
        # A Yrs panic, or a failure half-way through integrating, is a BadUpdate by now:
        # CastDocument.apply_update has already rebuilt the document from the log.
        return production.apply_update(
            update, origin="sync", device=device, member=member, max_structs=max_structs
        )
    except ProtocolError:
        raise
    except BadUpdate as exc:
        raise ProtocolError(str(exc)) from None


def encode_missing(production: StoredProduction, state_vector: bytes) -> bytes:
    """What ``production`` holds that a peer with ``state_vector`` lacks."""
    check_state_vector(state_vector)
    production.refresh()
    try:
        return production.doc.encode_update(state_vector or None)
    except BadUpdate as exc:
        raise ProtocolError(str(exc)) from None


# -- one peer connection ------------------------------------------------------------------


class Outcome(msgspec.Struct):
    """What :meth:`SyncSession.receive` did with one frame (a Struct: one per frame)."""

    message: Message
    #: Frames to send back to this peer, in order.
    replies: list[bytes] = []
    #: The update merged into the document (relay it to the other peers), if any.
    update: bytes | None = None
    changes: Changes = {}
    #: A validated awareness frame to relay to the other peers, if any.
    awareness: bytes | None = None
    awareness_entries: list[AwarenessEntry] = []
    #: Why a frame was dropped (a read-only peer writing), if it was.
    dropped: str | None = None
    #: True once the peer's step 2 (its answer to our step 1) arrived.
    synced: bool = False
    #: The reason, when the peer sent a permission-denied auth message.
    denied: str | None = None


class SyncSession:
    """The protocol for one connection to one peer, over one stored production.

    Args:
        production: the production (its document and log) this connection syncs.
        can_write: False for a read-only peer: its step-2 and update frames are dropped and
            it is told once, with a y-protocols permission-denied message.
        device: the peer's device, recorded in the log with every update it sends.
        member: the peer's team member (if it said), recorded likewise.
        answer_step1_with_step1: the server role: answer a peer's step 1 with step 2 and then
            our own step 1 (as y-websocket servers do). A client sends its step 1 up front.
        max_message: frames larger than this are refused.
        max_incremental_structs: the struct cap of an incremental update from the peer (an
            update frame, or any step 2 after its first); its first step 2, the answer to
            our step 1, is a full state and may hold ``yupdate.MAX_STRUCTS``.
    """

    def __init__(
        self,
        production: StoredProduction,
        *,
        can_write: bool = True,
        device: str = "",
        member: str = "",
        answer_step1_with_step1: bool = False,
        max_message: int = MAX_MESSAGE,
        max_incremental_structs: int = yupdate.MAX_INCREMENTAL_STRUCTS,
    ) -> None:
        self.production = production
        self.max_incremental_structs = max_incremental_structs
        self.can_write = can_write
        self.device = device
        self.member = member
        self.answer_step1_with_step1 = answer_step1_with_step1
        self.max_message = max_message
        self.told_read_only = False
        self.synced = False
        #: Our state vector when we last answered the peer's step 1: all of that went out
        #: then, and everything since is relayed live, so a repeated step 1 is answered
        #: with only what lies beyond both (an amplification attack gets nothing twice).
        self.sent_state: bytes | None = None
        #: Awareness client ids this peer announced (removed for everyone when it leaves).
        self.client_ids: set[int] = set()

    def opening(self) -> list[bytes]:
        """Frames a client sends on connecting: its step 1."""
        self.production.refresh()
        return [step1_frame(self.production.doc.state_vector())]

    def receive(self, frame: bytes) -> Outcome:
        """Handle one frame from the peer. Raises ProtocolError (nothing changed) when the
        frame, or the update or state vector inside it, does not decode."""
        message = decode_message(frame, max_size=self.max_message)
        outcome = Outcome(message)
        if message.type is MessageType.SYNC:
            self._sync(message, outcome)
        elif message.type is MessageType.AWARENESS:
            entries = decode_awareness(message.payload)
            self.client_ids.update(e.client_id for e in entries if e.state is not None)
            self.client_ids.difference_update(e.client_id for e in entries if e.state is None)
            outcome.awareness = awareness_frame(message.payload)
            outcome.awareness_entries = entries
        elif message.type is MessageType.AUTH:
            outcome.denied = message.payload.decode("utf-8", "replace")
        # QUERY_AWARENESS: the caller answers with the awareness states it holds.
        return outcome

    def _answer_step1(self, asked: bytes) -> bytes:
        """The update answering a step 1 with state vector ``asked``: what the peer lacks,
        less what this connection has sent it already."""
        check_state_vector(asked)
        if self.sent_state is not None:
            self.production.refresh()
            now = self.production.doc.state_vector()
            asked = merge_state_vectors(asked, self.sent_state)
            if not yupdate.ahead(now, asked):
                self.sent_state = now
                return EMPTY_UPDATE  # nothing new: not even the delete set again
        missing = encode_missing(self.production, asked)
        self.sent_state = self.production.doc.state_vector()
        return missing

    def struct_cap(self, sync_type: SyncType | None) -> int | None:
        """The struct cap of an update the peer sends now (None: a full state's): its
        first step 2 answers our step 1 with everything we lack; anything later is an
        incremental update."""
        if sync_type is SyncType.STEP2 and not self.synced:
            return None
        return self.max_incremental_structs

    def _sync(self, message: Message, outcome: Outcome) -> None:
        if message.sync_type is SyncType.STEP1:
            outcome.replies.append(step2_frame(self._answer_step1(message.payload)))
            if self.answer_step1_with_step1:
                outcome.replies.append(step1_frame(self.production.doc.state_vector()))
            return
        update = message.payload
        cap = self.struct_cap(message.sync_type)
        if message.sync_type is SyncType.STEP2:
            outcome.synced = self.synced = True
        if update == EMPTY_UPDATE:
            # Nothing to merge. Checked before the read-only branch: an up-to-date reader
            # answers our step 1 with an empty step 2, which is not a write attempt.
            return
        if not self.can_write:
            # Dropped unparsed: nothing a read-only peer sends is decoded, so no bytes of
            # theirs can reach Yrs (26,000 nested arrays in one value crashed it).
            outcome.dropped = "read-only token: updates from this peer are not accepted"
            if not self.told_read_only:
                self.told_read_only = True
                outcome.replies.append(permission_denied_frame(outcome.dropped))
            log.info("dropped a sync frame from read-only peer %s", self.device or "?")
            return
        outcome.changes = merge_into(
            self.production, update, device=self.device, member=self.member, max_structs=cap
        )
        outcome.update = update
