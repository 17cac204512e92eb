"""``castroom serve``: a workspace's productions over WebSocket (Yjs) and plain HTTP.

Endpoints (every one but ``/health`` needs a bearer token: ``Authorization: Bearer T``,
or ``?token=T`` for browsers, which cannot set headers on a WebSocket):

- ``WS   /sync/{production_id}``  y-websocket protocol; a stock y-websocket client with
  server URL ``ws://HOST:PORT/sync`` and room = production id is a peer. The server answers
  a step 1 with step 2 and its own step 1, relays updates and awareness (presence) to the
  room's other peers, and drops (and tells) a read-only peer's step-2/update frames.
- ``WS   /hocuspocus``  Hocuspocus providers: one socket, many productions (document name
  = production id), each authenticated by the token in its auth message
  (``hocuspocus_server.py``).
- ``POST /sync/{id}/pull``  body: the caller's state vector (empty = everything); answers
  the missing update bytes, with the server's state vector (base64) in
  ``X-Castroom-State-Vector`` (when under 8 KiB; else ask ``/state``) so the caller can push
  back exactly what the server lacks.
- ``POST /sync/{id}/push``  body: an update; merged durably. Pushing to an unknown id is
  allowed when the update creates that very production (a first sync from a new machine).
- ``GET  /sync/{id}/state`` the server's state vector.
- ``GET  /productions``      ``{"scope", "all_productions", "productions": [{"id", "title"}]}``
  (the productions the token sees; ``all_productions``: it is not limited to one).
- ``GET|HEAD|PUT /media/{hash}``, ``POST /media/missing``  attached files by their
  SHA-256 (``media_routes.py``).
- ``GET  /stats``            ``{"rooms", "peers", "loop": {"ticks", "longest", "stalls"}}``
  (any token): how long the event loop last went without turning, and why
  (``loop_watch.py``).
- ``GET  /health``           ``{"status": "ok"}``, no token, nothing else.

Peers may name their device (``X-Castroom-Device`` header or ``?device=``) and their team
member (``X-Castroom-Member``, percent-encoded UTF-8, or ``?member=``); both are recorded
with every update they send, so the history says who made a synced change.

Refusals: 400 undecodable, 401 no, bad, expired or revoked token, 403 not allowed, 404
unknown production, 408 a body that stalls, 413 too large, 429 too many live connections
(per token, or in all), 507 the server cannot store (a full disk); on a WebSocket that is
already open, a bad frame closes it with 1007, an oversized one with 1009, presence over
its limits with 1008 and a revoked or expired token (checked before every frame) with
4401.

What one peer may cost is bounded (``limits.py``; every limit is a ServerOptions field,
settable in the workspace config's ``[server]`` table): a request head must arrive within
``header_timeout`` and a body may not pause longer than ``body_timeout``; past
``max_connections`` (lowered to fit the file descriptors) the oldest connection still
waiting for its head is dropped, so half-open connections cannot keep ``/health`` from
answering; presence is limited per peer, per state and per room, and rate-limited; a
repeated question (a query-awareness, a step 1) is answered with what changed since the
last answer, so twenty copies of one frame cost one answer. Log lines escape control
characters (``logsafe.py``).

All writes go through the workspace's storage, like the CLI's: a CLI edit from another
process is picked up by polling ``refresh()`` and relayed to the live peers.

Live frames are handled a turn of the event loop at a time (:meth:`SyncServer.flush`):
every frame that arrived in the turn is handled in order, its token checked first and its
update walked (bounded) before Yrs sees it, all the turn's updates are stored in one
SQLite transaction (group commit: one commit, and with ``storage.synchronous = "FULL"``
one fsync, per turn instead of per update), and only then does anything go out: a
Hocuspocus provider's "applied" status, and to each peer of a room one frame merging the
turn's updates (Hocuspocus does the same; a peer alone in sending this turn is not sent
its own update back). Presence is relayed the same way: one frame per peer per turn,
merging each awareness client's latest entry, after the per-frame presence limits. Frames
go straight to the socket when nothing of the peer's is waiting (``wire.py``); a slow
peer's backlog of update frames is merged again when it is written.

For tests and benchmarks, :class:`ServerThread` runs a server in a background thread.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import gc
import json
import logging
import socket
import sys
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import unquote

import msgspec
import uvicorn
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, HTTPConnection, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from castroom.core import collector, media, model, yupdate
from castroom.core.crdt import awareness_for, merge_all
from castroom.core.document import Changes, production_in
from castroom.core.errors import BadUpdate, CastroomError, StorageError
from castroom.core.workspace import Finishing, Merged, StoredProduction, Workspace

from . import hocuspocus, protocol
from .auth import AccessDenied, LiveTokens, TokenInfo, TokenStore
from .checkpoints import background_checkpoints
from .compaction import background_compaction
from .limits import (
    BACKLOG,
    MAX_REQUEST_HEAD,
    ConnectionGuard,
    GuardedH11Protocol,
    PeerCounts,
    PresenceLimits,
    RateLimit,
    tls_in_front,
)
from .logsafe import printable_logger
from .loop_watch import LoopWatch
from .media_routes import UploadBook, media_routes
from .presentation import presentation_routes
from .read_copies import fresh_read_copies
from .web.app import routes as web_routes
from .wire import DirectSend, DirectWebSocketProtocol, direct_send

log = printable_logger("castroom.sync.server")

# The headers live in protocol.py (the client needs them without starlette); re-exported.
STATE_VECTOR_HEADER = protocol.STATE_VECTOR_HEADER
DEVICE_HEADER = protocol.DEVICE_HEADER
MEMBER_HEADER = protocol.MEMBER_HEADER
#: Largest state vector sent in that header (base64 characters); else GET /sync/{id}/state.
MAX_HEADER = 8 * 1024


class QuietHandshakeNoise(logging.Filter):
    """uvicorn logs a spurious error after a refused WebSocket handshake (a 401 sent as a
    plain HTTP response); the refusal itself is logged by us."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "without completing handshake" not in record.getMessage()


def quiet_handshake_noise() -> None:
    """Install :class:`QuietHandshakeNoise` on uvicorn's error logger (once)."""
    uvicorn_errors = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, QuietHandshakeNoise) for f in uvicorn_errors.filters):
        uvicorn_errors.addFilter(QuietHandshakeNoise())


class ServerOptions(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """Limits and timings of one server."""

    #: Largest HTTP request body (bytes); larger ones get 413.
    max_body: int = protocol.MAX_MESSAGE
    #: Largest WebSocket frame (bytes); larger ones close the socket with 1009.
    max_message: int = protocol.MAX_MESSAGE
    #: How often to look for other processes' commits (seconds).
    poll_interval: float = 0.05
    #: How often to re-check live peers' tokens, so a revocation cuts them off (seconds).
    token_recheck: float = 1.0
    #: Bytes queued for one slow peer before it is disconnected (it resyncs on reconnect).
    max_queued: int = 64 * 1024 * 1024
    #: Structs in one incremental update from a live peer (an update frame, or a step 2
    #: after its first); its first step 2 (a full state) may hold yupdate.MAX_STRUCTS.
    max_incremental_structs: Annotated[int, msgspec.Meta(ge=1)] = yupdate.MAX_INCREMENTAL_STRUCTS
    #: Updates larger than this (bytes) are merged in a worker thread, Yrs fed in slices,
    #: while their production's other frames and requests wait: other productions and
    #: /health are served meanwhile (a 500,000-entry update takes minutes).
    heavy_update: int = 256 * 1024
    #: Seconds a connection may take to send a whole request head (then it is dropped).
    header_timeout: float = 10.0
    #: Seconds a request body may pause between two chunks (then 408).
    body_timeout: float = 30.0
    #: Open connections in all (lowered to fit the process's file descriptors); past it
    #: the oldest connection still waiting for its request head is dropped.
    max_connections: int = 1000
    #: Live peers (a WebSocket, or one document on a Hocuspocus socket) in all, and per token.
    max_peers: int = 500
    max_peers_per_token: int = 32
    #: What presence (awareness) one peer and one room may hold.
    presence: PresenceLimits = PresenceLimits()
    #: How often to look for open productions whose log outgrew their snapshot and
    #: ``compact_floor`` bytes, to compact them in a worker process (seconds; 0: never).
    compact_every: float = 30.0
    compact_floor: int = 1024 * 1024
    #: How often the write-ahead log is copied back into the database file, in a thread
    #: (checkpoints.py: never in a commit on the event loop; seconds; 0: SQLite's own).
    checkpoint_every: float = 1.0
    #: Whether the event loop's stalls are watched (loop_watch.py; GET /stats).
    loop_watch: bool = True
    #: Seconds a flush of live frames waits after the one before (0: every event-loop
    #: turn). A longer window merges more updates into each peer's frame (fewer sends,
    #: less CPU with many peers) and adds up to that much latency, only when the server
    #: flushed less than that long ago: a quiet room's edit goes out at once. 5 ms took
    #: 50 rooms x 4 peers from 33-37 % to 23 % of a core (docs/deploy.md).
    flush_window: Annotated[float, msgspec.Meta(ge=0, le=1)] = 0.005
    #: Seconds a production stays quiet before its read copy is patched with what the
    #: server merged (read_copies.py: the next `castroom check` reads the copy; 0: only
    #: when the server stops).
    read_copy_quiet: float = 1.0

    @classmethod
    def from_config(cls, config: dict[str, Any], **overrides: Any) -> ServerOptions:
        """The ``[server]`` table of a workspace's config.toml (field names as here)."""
        table = {**config.get("server", {}), **overrides}
        try:
            return msgspec.convert(table, cls)
        except msgspec.ValidationError as exc:
            raise CastroomError(f"config [server]: {exc}") from None


#: First bytes of presence frames: awareness, query-awareness (y-protocols).
PRESENCE_TYPES = (
    bytes([protocol.MessageType.AWARENESS]),
    bytes([protocol.MessageType.QUERY_AWARENESS]),
)


class Refused(Exception):
    """An HTTP refusal: status and one clear line."""

    def __init__(self, status: int, message: str) -> None:
        self.status = status
        self.message = message
        super().__init__(message)


# -- live rooms ------------------------------------------------------------------------------


def _merged_frame(updates: list[bytes]) -> bytes | None:
    """One y-websocket update frame carrying every update (None if they hold nothing).
    The updates relayed in one turn are each what was new to the document when it was
    merged, so they never carry the same struct twice and merging them is exact."""
    update = updates[0] if len(updates) == 1 else merge_all(updates)
    return None if update == protocol.EMPTY_UPDATE else protocol.update_frame(update)


class Gate:
    """Shut while a turn's updates are merged and not yet committed: nothing may reach a
    peer before the commit (an acknowledgement, a relay), so the channels' frames are
    held (Channel.held) until :meth:`open` releases them."""

    def __init__(self) -> None:
        self.shut = False
        self.held: list[Channel] = []

    def open(self) -> None:
        self.shut = False
        channels, self.held = self.held, []
        for channel in channels:
            channel.release()


@dataclass(eq=False)
class Channel:
    """One WebSocket's outgoing frames, sent by :func:`write_out`."""

    websocket: WebSocket
    queue: asyncio.Queue[bytes | None] = field(default_factory=asyncio.Queue)
    queued: int = 0
    closed: bool = False
    close_code: int = 1000
    close_reason: str = ""
    #: Whether write_out may merge consecutive queued y-websocket update frames into one
    #: (not for a Hocuspocus socket, whose frames carry a document's address).
    merge_updates: bool = True
    #: Writes straight to the socket when the server offers it (wire.py); None: not.
    direct: DirectSend | None = None
    #: True while write_out holds frames it has taken and not yet written.
    writing: bool = False
    #: Shut by the server while a turn's updates are not yet committed (see Gate).
    gate: Gate | None = None
    #: Frames held while the gate was shut (released, in order, after the commit).
    held: list[bytes] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.direct = direct_send(getattr(self.websocket, "scope", None))

    def send(self, frame: bytes) -> None:
        """Send a frame: written at once when nothing is waiting before it and the socket
        takes it (held until the turn's commit while the server's gate is shut), else
        queued for write_out (never blocks: a slow peer must not hold up the others)."""
        if self.closed:
            return
        if self.direct is not None and not self.queued and not self.writing:
            gate = self.gate
            if gate is not None and gate.shut:
                if not self.held:
                    gate.held.append(self)
                self.held.append(frame)
                return
            if self.direct.write(frame):
                return
        self._enqueue(frame)

    def _enqueue(self, frame: bytes) -> None:
        self.queued += len(frame)
        self.queue.put_nowait(frame)

    def release(self) -> None:
        """Send what was held while the gate was shut, in one write when it can be."""
        frames, self.held = self.held, []
        if not frames or self.closed:
            return
        if self.direct is None or not self.direct.write_all(frames):
            for frame in frames:
                self._enqueue(frame)

    def backlog(self) -> int:
        """Bytes queued or written and not yet taken by the kernel."""
        return self.queued + (self.direct.buffered() if self.direct is not None else 0)

    def abort(self, code: int, reason: str) -> None:
        """Close without writing what is queued (answers that must not go out)."""
        if not self.closed:
            while not self.queue.empty():
                self.queue.get_nowait()
            self.queued = 0
            self.held = []
        self.close(code, reason)

    def close(self, code: int = 1000, reason: str = "") -> None:
        """Close after the frames already queued (the writer task does it)."""
        if not self.closed:
            for frame in self.held:  # held for a commit: they go out first
                self._enqueue(frame)
            self.held = []
            self.closed = True
            self.close_code = code
            # The close reason must fit in a control frame (123 bytes).
            self.close_reason = reason.encode()[:120].decode(errors="ignore")
            self.queue.put_nowait(None)


@dataclass(eq=False, kw_only=True)
class Peer(Channel):
    """One WebSocket connection in a room."""

    session: protocol.SyncSession
    token: str
    info: TokenInfo
    device: str
    #: Presence frames this peer may still send now (PresenceLimits.rate).
    presence_rate: RateLimit | None = None
    #: The room's presence version this peer was last sent in full (None: never).
    presence_seen: int | None = None
    #: True while SyncServer.take holds one of its frames (then its later frames queue).
    taking: bool = False

    def answer(self, outcome: protocol.Outcome) -> None:
        """Send the session's replies to one of this peer's frames."""
        for reply in outcome.replies:
            self.send(reply)


class Room:
    """The live peers of one production, and their presence (awareness)."""

    def __init__(self, production: StoredProduction, limits: PresenceLimits | None = None) -> None:
        self.production = production
        self.limits = limits or PresenceLimits()
        self.peers: set[Peer] = set()
        #: Bumped on every presence change; each client's state remembers its bump, so a
        #: query-awareness is answered with what changed since the peer last asked.
        self.version = 0
        self.stamps: dict[int, int] = {}
        self.sizes: dict[int, int] = {}  # bytes of each present client's state
        #: The peer whose frame is being handled: its own update (origin "sync") is not
        #: echoed back to it. Other updates relayed meanwhile still reach it.
        self.sender: Peer | None = None
        #: Clear while a large update merges in a worker thread (SyncServer.take).
        self.idle = asyncio.Event()
        self.idle.set()
        #: Updates to relay, with the peer that sent each (None: from elsewhere), until
        #: :meth:`send_out` sends them, merged, once per event-loop turn.
        self.outbox: list[tuple[bytes, Peer | None]] = []
        #: Presence to relay, likewise: (entries, their frame, the peer that sent them;
        #: None: the server, for peers that left), merged into one frame per turn.
        self.presence_out: list[tuple[list[protocol.AwarenessEntry], bytes, Peer | None]] = []
        #: Called when either outbox gains its first item (the server schedules a flush).
        self.on_outbox: Callable[[Room], None] | None = None
        self.awareness = awareness_for(production.doc)
        self.awareness.set_local_state(None)  # the server itself is not present
        production.update_listeners.append(self._relay_update)

    def close(self) -> None:
        with contextlib.suppress(ValueError):
            self.production.update_listeners.remove(self._relay_update)

    def _relay_update(self, update: bytes, origin: str, changes: Changes) -> None:
        if update == protocol.EMPTY_UPDATE:
            return
        # Handling a peer's frame first refreshes the production, which may relay other
        # processes' commits (origin "storage"): those must reach the sender too. Only the
        # update merged from the sender's frame (origin "sync") is its own.
        skip = self.sender if origin == "sync" else None
        self.outbox.append((update, skip))
        self._filled()

    def _filled(self) -> None:
        if len(self.outbox) + len(self.presence_out) == 1 and self.on_outbox is not None:
            self.on_outbox(self)

    def send_out(self) -> list[Peer]:
        """Relay the outbox: one frame per peer, the merge of the turn's updates (a burst
        of N updates to N peers costs N sends, not N x N), as Hocuspocus does. A peer
        whose update is the only one from a peer this turn is not sent it back; when
        several peers' updates merge, everyone gets the one merge, their own included
        (a Yjs peer skips what it has; one merge per room instead of one per sender).
        Presence is relayed the same way, after the updates (:meth:`_send_presence`).
        Returns the peers sent to."""
        entries, self.outbox = self.outbox, []
        sent = self._send_updates(entries) if entries else []
        if self.presence_out:
            self._send_presence()
            sent = list(self.peers)
        return sent

    def _send_updates(self, entries: list[tuple[bytes, Peer | None]]) -> list[Peer]:
        merged = _merged_frame([u for u, _ in entries])
        senders = {s for _, s in entries if s is not None}
        skip: Peer | None = None
        rest: bytes | None = None
        if len(senders) == 1:
            skip = senders.pop()
            others = [u for u, s in entries if s is not skip]
            rest = _merged_frame(others) if others else None
        peers = list(self.peers)
        for peer in peers:
            frame = rest if peer is skip else merged
            if frame is not None:
                peer.send(frame)
        return peers

    def _send_presence(self) -> None:
        """One presence frame per peer for the turn: a lone frame as it came, several
        merged (each client's latest entry). As for updates, a peer that alone sent
        presence this turn is not sent it back."""
        items, self.presence_out = self.presence_out, []
        senders = {sender for _, _, sender in items}
        skip = next(iter(senders)) if len(senders) == 1 else None
        if len(items) == 1:
            frame = items[0][1]
        else:
            latest: dict[int, protocol.AwarenessEntry] = {}
            for entries, _, _ in items:
                for entry in entries:
                    known = latest.get(entry.client_id)
                    if known is None or entry.clock >= known.clock:
                        latest[entry.client_id] = entry
            frame = protocol.awareness_frame(protocol.encode_awareness(list(latest.values())))
        for peer in list(self.peers):
            if peer is not skip:
                peer.send(frame)

    def _relay_presence(
        self, entries: list[protocol.AwarenessEntry], frame: bytes, sender: Peer | None
    ) -> None:
        self.presence_out.append((entries, frame, sender))
        self._filled()

    def others(self, peer: Peer) -> list[Peer]:
        return [p for p in self.peers if p is not peer]

    def discard_outbox(self) -> None:
        """Drop the updates not yet relayed (their commit failed); presence stays."""
        self.outbox = []

    def presence_frame(self, since: int | None = None) -> bytes | None:
        """Present clients' states (for a newcomer: all; for a query-awareness: those
        changed since ``since``, the version the asking peer last got)."""
        ids = [
            c
            for c in self.awareness.states
            if c != self.awareness.client_id and (since is None or self.stamps.get(c, 0) > since)
        ]
        if not ids:
            return None
        return protocol.awareness_frame(self.awareness.encode_awareness_update(ids))

    def answer_presence(self, peer: Peer) -> None:
        """What ``peer`` has not been told of the room's presence (nothing, if it asks again
        without anything having changed: twenty queries cost one answer)."""
        frame = self.presence_frame(peer.presence_seen)
        peer.presence_seen = self.version
        if frame:
            peer.send(frame)

    def _over_limits(self, peer: Peer, entries: list[protocol.AwarenessEntry]) -> str | None:
        """Why taking these presence entries would break a PresenceLimits rule, or None."""
        limits = self.limits
        if len(peer.session.client_ids) > limits.clients_per_peer:
            return f"at most {limits.clients_per_peer} presence clients per connection"
        sizes = {e.client_id: len(json.dumps(e.state)) for e in entries if e.state is not None}
        largest = max(sizes.values(), default=0)
        if largest > limits.state_bytes:
            return f"a presence state of {largest} bytes (limit {limits.state_bytes})"
        held = sum(size for c, size in self.sizes.items() if c not in sizes)
        if held + sum(sizes.values()) > limits.room_bytes:
            return f"this room's presence is full ({limits.room_bytes} bytes)"
        return None

    def _took(self, entries: list[protocol.AwarenessEntry]) -> None:
        self.version += 1
        for entry in entries:
            self.stamps[entry.client_id] = self.version
            if entry.state is None:
                self.sizes.pop(entry.client_id, None)
            else:
                self.sizes[entry.client_id] = len(json.dumps(entry.state))

    def apply_awareness(
        self, peer: Peer, entries: list[protocol.AwarenessEntry], payload: bytes, frame: bytes
    ) -> str | None:
        """Take a peer's presence, but only for awareness clients that are its own: a
        stock y-websocket client leaving marks every state it knows as gone, and passing
        that on would tell everyone that the others left too. Returns why the frame was
        refused (PresenceLimits), or None."""
        others = {c for p in self.others(peer) for c in p.session.client_ids}
        mine = [e for e in entries if e.client_id not in others]
        peer.session.client_ids -= {e.client_id for e in entries if e.client_id in others}
        if not mine:
            return None
        problem = self._over_limits(peer, mine)
        if problem:
            return problem
        if len(mine) != len(entries):
            payload = protocol.encode_awareness(mine)
            frame = protocol.awareness_frame(payload)
        self.awareness.apply_awareness_update(payload, peer)
        self._took(mine)
        self._relay_presence(mine, frame, peer)
        return None

    def leave(self, peer: Peer) -> None:
        """Forget a peer; tell the others its clients are gone."""
        self.peers.discard(peer)
        gone = [c for c in peer.session.client_ids if c in self.awareness.states]
        if gone:
            entries = [
                protocol.AwarenessEntry(c, self.awareness.meta[c]["clock"] + 1, None) for c in gone
            ]
            self.awareness.remove_awareness_states(gone, "left")
            self._took([protocol.AwarenessEntry(c, 0, None) for c in gone])
            frame = protocol.awareness_frame(protocol.encode_awareness(entries))
            self._relay_presence(entries, frame, None)


class SyncServer:
    """The application state: one workspace, its tokens, the live rooms."""

    def __init__(self, workspace_path: Path, options: ServerOptions) -> None:
        self.workspace_path = workspace_path
        self.options = options
        self.workspace: Workspace | None = None
        self.tokens: TokenStore | None = None
        self.live_tokens: LiveTokens | None = None
        self.rooms: dict[str, Room] = {}
        self.peer_counts = PeerCounts(options.max_peers_per_token, options.max_peers)
        self.media_refs = media.RefCache()
        #: Each token's uploads (PUT /media, POST /media/store), for its quota.
        self.uploads = UploadBook()
        #: Productions merging a large update in a worker thread, and the events set
        #: once each is done (nothing else may touch their documents meanwhile).
        self.merging: dict[str, asyncio.Event] = {}
        #: Productions whose stored snapshot is walked in a worker thread before they
        #: open (walk_ahead), and the events set once each is done.
        self.walking: dict[str, asyncio.Event] = {}
        #: Large merges' rows being written from worker threads (_append_off_loop), and
        #: an event set when there are none: SQLite has one writer, so a write on the
        #: loop meanwhile would hold the loop until theirs commits. Writes wait for it.
        self._writing_apart = 0
        self.store_free = asyncio.Event()
        self.store_free.set()
        #: Frames received and not yet handled: every frame that arrives in one event-loop
        #: turn is handled in one :meth:`flush`, merged in one SQLite transaction.
        self.inbox: list[tuple[Peer, Room, bytes]] = []
        #: Frames taken as they arrived (take_now), not through the ASGI queue.
        self.frames_taken_now = 0
        #: Rooms with updates to relay.
        self.outboxes: set[Room] = set()
        self._flush_handle: asyncio.Handle | asyncio.TimerHandle | None = None
        #: Holds what peers are sent while a turn's updates are not yet committed.
        self.gate = Gate()
        self._flushed_at = 0.0
        #: The event loop serving it (set once it runs; every document access is on it).
        self.loop: asyncio.AbstractEventLoop | None = None
        #: Called when the server stops (the dashboard's worker process is stopped).
        self.on_close: list[Callable[[], None]] = []
        #: How long the event loop went without turning (GET /stats; loop_watch.py).
        #: Beaten by _poll every poll_interval, so it never wakes the loop itself.
        self.loop_watch = LoopWatch(tick=options.poll_interval)

    # -- lifecycle ---------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def lifespan(self, app: Starlette) -> AsyncIterator[None]:
        # Opened here, inside the server's event loop thread: every document access
        # happens on this one thread.
        self.workspace = Workspace.open(self.workspace_path, create=False)
        # When a plugin hears changes, plugins load before anyone is served: loaded at the
        # first change instead, they held the event loop a quarter of a second, in the
        # middle of whatever merge came first. When none does, none is imported at all.
        plugins = self.workspace.plugins
        if plugins.hears_changes():
            _ = plugins.pm
        self.loop = asyncio.get_running_loop()
        self.tokens = TokenStore(self.workspace.store)
        self.live_tokens = LiveTokens(self.tokens)
        poller = asyncio.create_task(self._poll())
        options = self.options
        try:
            async with (
                self.loop_watch.watching(enabled=options.loop_watch, ticking=False),
                background_checkpoints(self.workspace.store, options.checkpoint_every),
                background_compaction(self.workspace, options.compact_every, options.compact_floor),
                fresh_read_copies(self.workspace, options.read_copy_quiet, self._busy),
            ):
                yield
        finally:
            poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await poller
            self.flush()
            for room in self.rooms.values():
                for peer in list(room.peers):
                    peer.close(1001, "server shutting down")
                room.close()
            self.rooms.clear()
            for close in self.on_close:
                close()
            self.workspace.close()

    def _busy(self, production_id: str) -> bool:
        """Whether a production's document or the store is in a worker thread's hands."""
        return production_id in self.merging or not self.store_free.is_set()

    async def _poll(self) -> None:
        """Relay other processes' commits to live peers; cut off revoked tokens."""
        assert self.workspace is not None
        store = self.workspace.store
        loop = asyncio.get_running_loop()
        next_check = loop.time() + self.options.token_recheck
        looked: int | None = None
        while True:
            await asyncio.sleep(self.options.poll_interval)
            self.loop_watch.beat()
            # One look for every room: the database's version moves only when another
            # process commits (50 rooms cost one query a round, not 50).
            version = store.data_version()
            if version != looked:
                looked = version
                for room in list(self.rooms.values()):
                    if room.production.id in self.merging:
                        looked = None  # merging in a worker thread: look again next round
                        continue
                    try:
                        room.production.refresh()
                    except Exception:
                        looked = None  # try again next round
                        log.exception("refreshing production %s failed", room.production.id)
            if loop.time() >= next_check:
                next_check = loop.time() + self.options.token_recheck
                try:
                    self._recheck_tokens()
                except Exception:  # e.g. the database busy: try again next round
                    log.exception("re-checking tokens failed")

    def _recheck_tokens(self) -> None:
        for room in list(self.rooms.values()):
            for peer in list(room.peers):
                self._token_holds(peer)

    def _token_holds(self, peer: Peer) -> bool:
        """Whether the peer's token is still good; if not, tell it and close (4401)."""
        assert self.live_tokens is not None
        if peer.closed:
            return False
        if self.live_tokens.still_valid(peer.token):
            return True
        log.warning("token %s revoked or expired: disconnecting %s", peer.info.id, peer.device)
        peer.send(protocol.permission_denied_frame("token revoked or expired"))
        peer.close(4401, "token revoked or expired")
        return False

    # -- helpers -----------------------------------------------------------------------------

    def authorize(
        self, conn: HTTPConnection, production_id: str | None, *, write: bool
    ) -> TokenInfo:
        return self.check_token(bearer_token(conn), production_id, write=write)

    def check_token(
        self, token: str | None, production_id: str | None, *, write: bool
    ) -> TokenInfo:
        """The token's grant for ``production_id``, or Refused (401/403)."""
        assert self.tokens is not None
        try:
            return self.tokens.authorize(token, production_id, write=write)
        except AccessDenied as exc:
            raise Refused(exc.status, str(exc)) from None

    def admit(self, info: TokenInfo) -> None:
        """Refused (429) if one more live peer on this token is one too many."""
        refusal = self.peer_counts.refusal(info.id)
        if refusal:
            raise Refused(429, refusal)

    def production(self, production_id: str) -> StoredProduction:
        assert self.workspace is not None
        if production_id not in dict(self.workspace.productions()):
            raise Refused(404, f"no production {production_id!r} on this server")
        if production_id in self.merging:
            raise Refused(
                503, f"production {production_id} is merging a large update; try again shortly"
            )
        return self.workspace.production(production_id)

    async def opened(self, production_id: str) -> StoredProduction:
        """:meth:`production`, its stored snapshot walked first in a worker thread if
        opening it would walk it (:meth:`walk_ahead`)."""
        await self.walk_ahead(production_id)
        return self.production(production_id)

    async def walk_ahead(self, production_id: str) -> None:
        """Opening a production walks its stored snapshot (bounded decoding) the first
        time this version opens it: for a large production, seconds on the event loop
        (5,000 talents: 1.4 s). So the walk runs here, in a worker thread, once however
        many peers arrive meanwhile, and the open then finds it done. A snapshot beyond
        the limits is left for the open, which sets it aside."""
        assert self.workspace is not None
        if (walking := self.walking.get(production_id)) is not None:
            await walking.wait()
            return
        if production_id not in dict(self.workspace.productions()):
            return
        found = self.workspace.unwalked_snapshot(production_id)
        if found is None:
            return
        snapshot, named = found
        done = self.walking[production_id] = asyncio.Event()
        try:
            await asyncio.to_thread(yupdate.guard_update, snapshot)
            self.workspace.snapshot_walked(production_id, named)
        except BadUpdate:
            pass
        finally:
            del self.walking[production_id]
            done.set()

    async def body_chunks(self, request: Request) -> AsyncIterator[bytes]:
        """The request's body as it arrives, refused (408) when it pauses longer than
        ``body_timeout`` and (400) when the client hangs up part way."""
        stream = request.stream()
        pause = self.options.body_timeout
        try:
            while True:
                try:
                    chunk = await asyncio.wait_for(anext(stream), pause)
                except StopAsyncIteration:
                    return
                except TimeoutError:
                    raise Refused(408, f"the request body paused for over {pause:g} s") from None
                yield chunk
        except ClientDisconnect:
            # Cut off mid-body: nothing was applied; nobody is left to answer.
            raise Refused(400, "connection closed before the body was complete") from None

    async def until_merged(self, production_id: str) -> None:
        """Wait while a large update merges into this production in a worker thread."""
        while (done := self.merging.get(production_id)) is not None:
            await done.wait()

    async def merge_off_loop(
        self,
        production: StoredProduction,
        update: bytes,
        *,
        device: str,
        member: str,
        sender: Peer | None = None,
        max_structs: int | None = None,
    ) -> int:
        """Merge a large update off the event loop; returns how many entities changed.
        The walk and Yrs (fed in slices, so the GIL comes back between two) run in a
        worker thread; the names its changes need are stored there too, in short
        transactions on the store's second connection; its changes are encoded for the
        log in the thread again, and its row written there, on that connection. The
        loop then only relays and tells the listeners; every other production and
        /health are served meanwhile. Automatic garbage collection waits
        (:func:`collection_paused`) until the change records are freed, in the thread,
        one by one (:func:`_release`). Raises what :meth:`StoredProduction.apply_update`
        raises."""
        assert production.id is not None
        await self.until_merged(production.id)
        done = self.merging[production.id] = asyncio.Event()
        room = self.rooms.get(production.id)
        if room is not None:
            room.idle.clear()
        with collection_paused():
            try:
                records = await self._merge_steps(
                    production, update, device=device, member=member, room=room,
                    sender=sender, max_structs=max_structs,
                )  # fmt: skip
            finally:
                del self.merging[production.id]
                done.set()
                if room is not None:
                    room.sender = None
                    room.idle.set()
            changed = len(records[0])
            await asyncio.to_thread(_release, records)
        return changed

    async def _merge_steps(
        self,
        production: StoredProduction,
        update: bytes,
        *,
        device: str,
        member: str,
        room: Room | None,
        sender: Peer | None,
        max_structs: int | None,
    ) -> list[Changes]:
        """:meth:`merge_off_loop`'s steps; returns the changes, alone in a list (so the
        caller holds the only reference)."""
        started = production.begin_merge(update)
        merged = await asyncio.to_thread(
            production.merge_document, update, started, origin="sync", max_structs=max_structs
        )
        slices = await asyncio.to_thread(production.names_to_store, merged)
        for names in slices:  # in a thread, a short transaction each; the loop's writers
            async with self.writing_apart():  # wait meanwhile, and go between two
                stored = await asyncio.to_thread(production.store_names, names, apart=True)
            if not stored:
                break
            await asyncio.sleep(0)
        merged = await asyncio.to_thread(production.prepare_store, merged)
        finishing = production.begin_finish(merged, origin="sync", device=device, member=member)
        seq = await self._append_off_loop(production, merged, finishing)
        if room is not None:
            room.sender = sender  # not echoed back to the peer that sent it
        return [production.end_finish(merged, finishing, seq)]

    async def _append_off_loop(
        self, production: StoredProduction, merged: Merged, finishing: Finishing
    ) -> int | None:
        """Append a large merge's row from a worker thread, on the store's second
        connection: writing megabytes (and the checkpoint after) took the event loop up
        to 0.8 s. Its names were stored in the thread; the author's, here, first."""
        if not finishing.store:
            return None
        try:
            if merged.encoded is None:  # its names forgotten meanwhile: here, then
                return production.append_merged(merged, finishing)
            production.store_names(production.author_names(finishing))
            with contextlib.suppress(KeyError):  # forgotten meanwhile (a rollback elsewhere)
                async with self.writing_apart():
                    return await asyncio.to_thread(
                        production.append_merged, merged, finishing, apart=True
                    )
            return production.append_merged(merged, finishing)  # here, then
        except Exception as exc:
            raise production.not_stored(exc) from None

    @contextlib.asynccontextmanager
    async def writing_apart(self) -> AsyncIterator[None]:
        """While a worker thread writes on the store's second connection: the loop's own
        writers wait (``store_free``) instead of holding the loop on SQLite's lock until
        it commits; the frames that waited are flushed after."""
        self._writing_apart += 1
        self.store_free.clear()
        try:
            yield
        finally:
            self._writing_apart -= 1
            if not self._writing_apart:
                self.store_free.set()
                if self.inbox:
                    self._schedule_flush()  # the frames that waited for it

    async def read_body(self, request: Request, *, limit: int | None = None) -> bytes:
        """The request's body, refused (413) past ``limit`` bytes (default: max_body)."""
        limit = self.options.max_body if limit is None else limit
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise Refused(
                413, f"request body of {int(declared)} bytes exceeds the {limit}-byte limit"
            )
        chunks: list[bytes] = []
        size = 0
        async for chunk in self.body_chunks(request):
            size += len(chunk)
            if size > limit:
                raise Refused(413, f"request body exceeds the {limit}-byte limit")
            chunks.append(chunk)
        return b"".join(chunks)

    # -- HTTP --------------------------------------------------------------------------------

    async def health(self, request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def stats(self, request: Request) -> Response:
        """How the server is doing (any token): live rooms and peers, and the event
        loop's stalls (loop_watch.py)."""
        self.authorize(request, None, write=False)
        body = {
            "rooms": len(self.rooms),
            "peers": sum(len(room.peers) for room in self.rooms.values()),
            "loop": self.loop_watch.report(),
            # The live path's fast paths, counted (wire.py): frames cut from the stream by
            # FrameReader, and taken as they arrived instead of through the ASGI queue.
            "frames": {
                "read_here": DirectWebSocketProtocol.read_here,
                "taken_now": self.frames_taken_now,
            },
        }
        return Response(msgspec.json.encode(body), media_type="application/json")

    async def productions(self, request: Request) -> Response:
        info = self.authorize(request, None, write=False)
        assert self.workspace is not None
        visible = [
            {"id": pid, "title": title}
            for pid, title in self.workspace.productions()
            if info.may_read(pid)
        ]
        return JSONResponse(
            {
                "scope": info.scope,
                # May this token add productions (push one the server has never seen)?
                "all_productions": info.production is None,
                "productions": visible,
            }
        )

    async def state(self, request: Request) -> Response:
        production_id = request.path_params["production_id"]
        self.authorize(request, production_id, write=False)
        await self.until_merged(production_id)
        production = await self.opened(production_id)
        production.refresh()
        return Response(production.doc.state_vector(), media_type="application/octet-stream")

    async def pull(self, request: Request) -> Response:
        production_id = request.path_params["production_id"]
        self.authorize(request, production_id, write=False)
        body = await self.read_body(request)
        await self.until_merged(production_id)
        production = await self.opened(production_id)
        try:
            missing = protocol.encode_missing(production, body)
        except protocol.ProtocolError as exc:
            raise Refused(400, f"bad state vector: {exc}") from None
        state_vector = base64.b64encode(production.doc.state_vector()).decode()
        # Every process that ever wrote is a Yjs client, so a state vector grows with a
        # production's age; HTTP header blocks are capped (h11: 16 KiB). Past the cap the
        # caller asks GET /sync/{id}/state instead.
        headers = {STATE_VECTOR_HEADER: state_vector} if len(state_vector) <= MAX_HEADER else {}
        return Response(missing, media_type="application/octet-stream", headers=headers)

    async def push(self, request: Request) -> Response:
        production_id = request.path_params["production_id"]
        info = self.authorize(request, production_id, write=True)
        body = await self.read_body(request)
        device = peer_device(request, info)
        member = peer_member(request)
        assert self.workspace is not None
        await self.until_merged(production_id)
        await self.store_free.wait()
        try:
            if production_id in dict(self.workspace.productions()):
                production = await self.opened(production_id)
                if len(body) > self.options.heavy_update:
                    changed = await self.merge_off_loop(
                        production, body, device=device, member=member
                    )
                else:
                    changed = len(
                        protocol.merge_into(production, body, device=device, member=member)
                    )
                created = False
            elif len(body) > self.options.heavy_update:
                changed = await self._adopt_off_loop(production_id, body, device, member)
                created = True
            else:
                changed = len(self._adopt(production_id, body, device, member))
                created = True
        except BadUpdate as exc:  # undecodable, or a production id that is not a plain name
            raise Refused(400, f"bad update: {exc}") from None
        except StorageError as exc:  # a full disk, a read-only workspace: nothing merged
            raise Refused(507, f"the server could not store the update: {exc}") from None
        return JSONResponse({"changed": changed, "created": created})

    def _adopt(self, production_id: str, update: bytes, device: str, member: str) -> Changes:
        """A production this server has never seen: accept it only if the update
        creates that very production (so a typo cannot plant an empty document)."""
        assert self.workspace is not None
        _creates(production_id, update)
        _, changes = self.workspace.adopt(
            production_id, update, origin="sync", device=device, member=member
        )
        log.info("adopted production %s from %s", production_id, device)
        return changes

    async def _adopt_off_loop(
        self, production_id: str, update: bytes, device: str, member: str
    ) -> int:
        """:meth:`_adopt` for a large first push (a whole production: megabytes), off the
        event loop: its rehearsal on a scratch copy in a worker thread, then merged as a
        large update into an existing production is (:meth:`merge_off_loop`). Before,
        both ran on the loop (a 4.5 MB push held it over a second in the walk alone)."""
        assert self.workspace is not None
        model.folder_id(production_id, "production id")  # before any work: UnsafeId
        await asyncio.to_thread(_creates, production_id, update)
        await self.until_merged(production_id)  # another push of it, adopted meanwhile
        production = self.workspace.adoptee(production_id)
        changed = await self.merge_off_loop(production, update, device=device, member=member)
        self.workspace.adopted(production)
        log.info("adopted production %s from %s", production_id, device)
        return changed

    # -- WebSocket ---------------------------------------------------------------------------

    async def websocket(self, websocket: WebSocket) -> None:
        production_id = websocket.path_params["production_id"]
        try:
            info = self.authorize(websocket, production_id, write=False)
            production = await self.opened(production_id)
            self.admit(info)
        except Refused as refusal:
            log.warning(
                "refused WebSocket to %s: %s %s", production_id, refusal.status, refusal.message
            )
            await deny(websocket, refusal.status, refusal.message)
            return
        await websocket.accept()
        device = peer_device(websocket, info)
        session = protocol.SyncSession(
            production,
            can_write=info.scope == "write",
            device=device,
            member=peer_member(websocket),
            answer_step1_with_step1=True,
            max_message=self.options.max_message,
            max_incremental_structs=self.options.max_incremental_structs,
        )
        peer = Peer(
            websocket,
            session=session,
            token=bearer_token(websocket) or "",
            info=info,
            device=device,
            gate=self.gate,
        )
        room = self.join(peer)
        writer = asyncio.create_task(self._write(peer))
        if peer.direct is not None:
            peer.direct.take = lambda data: self.take_now(peer, room, data)
        try:
            await self._read(peer, room)
        finally:
            if peer.direct is not None:
                peer.direct.take = None
            if self.inbox:
                self.flush()  # what it sent before leaving is merged, then it leaves
            peer.close()
            self.part(peer, room)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer, timeout=5)
            writer.cancel()

    async def hocuspocus(self, websocket: WebSocket) -> None:
        """Hocuspocus providers: one socket, many productions (hocuspocus_server.py)."""
        from .hocuspocus_server import HocuspocusSocket

        await HocuspocusSocket(websocket, server=self, gate=self.gate).run()

    def join(self, peer: Peer) -> Room:
        """Put a peer in its production's room and show it who is present."""
        production = peer.session.production
        assert production.id is not None
        room = self.rooms.get(production.id)
        if room is None:
            room = self.rooms[production.id] = Room(production, self.options.presence)
            room.on_outbox = self._outbox_filled
        room.peers.add(peer)
        self.peer_counts.add(peer.info.id)
        presence = self.options.presence
        peer.presence_rate = RateLimit(presence.rate, presence.burst)
        log.info(
            "%s joined %s (%s; %d connected)",
            peer.device,
            production.id,
            peer.info.scope,
            len(room.peers),
        )
        room.answer_presence(peer)
        return room

    def part(self, peer: Peer, room: Room) -> None:
        """Take a peer out of its room (closing the room when it was the last)."""
        room.leave(peer)
        self.peer_counts.remove(peer.info.id)
        log.info("%s left %s", peer.device, room.production.id)
        if not room.peers:
            room.close()
            room.discard_outbox()
            room.presence_out = []
            self.outboxes.discard(room)
            if self.rooms.get(str(room.production.id)) is room:
                del self.rooms[str(room.production.id)]

    async def _read(self, peer: Peer, room: Room) -> None:
        async for data in frames(peer.websocket):
            if isinstance(data, str):
                peer.close(1003, "binary Yjs frames only")
                return
            if not await self.take(peer, room, data) or peer.closed:
                return

    async def take(self, peer: Peer, room: Room, data: bytes) -> bool:
        """One frame from a live peer (y-websocket or Hocuspocus): taken for this turn's
        flush (:meth:`handle`), or, when it carries a large update from a writer, merged
        off the event loop (:meth:`merge_off_loop`) while the room's other frames wait,
        in order (what was taken before it is flushed first)."""
        peer.taking = True
        try:
            await room.idle.wait()
            if self.is_heavy(peer, data):
                if self.inbox:
                    self.flush()
                return await self._merge_frame_off_loop(peer, room, data)
            return self.handle(peer, room, data)
        finally:
            peer.taking = False

    def take_now(self, peer: Peer, room: Room, data: bytes) -> bool:
        """A y-websocket peer's frame as it arrives (wire.py), before the ASGI queue: taken
        for this turn's flush, as :meth:`take` would, when it can be handled at once (the
        room not waiting for a large merge, the frame not a large update itself, nothing
        of this peer's held by :meth:`take`, the peer open and the frame within the size
        cap); otherwise False, and it goes the ASGI way, in order. Saves, per frame, the
        reading task's wake-up and starlette's and uvicorn's receive layers."""
        if (
            peer.taking
            or peer.closed
            or not room.idle.is_set()
            or len(data) > self.options.max_message
            or self.is_heavy(peer, data)
        ):
            return False
        self.frames_taken_now += 1
        return self.handle(peer, room, data)

    def is_heavy(self, peer: Peer, data: bytes) -> bool:
        """Whether a frame carries an update large enough to merge off the loop."""
        return (
            len(data) > self.options.heavy_update
            and peer.session.can_write
            and data[:1] == bytes([protocol.MessageType.SYNC])
            and data[1:2] in (bytes([protocol.SyncType.STEP2]), bytes([protocol.SyncType.UPDATE]))
        )

    def _failed(self, peer: Peer, room: Room, data: bytes, exc: Exception) -> None:
        """Close a peer whose frame failed (called in the ``except`` block), saying why."""
        if isinstance(exc, BadUpdate):  # ProtocolError too: nothing of it was merged
            log.warning("bad frame from %s on %s: %s", peer.device, room.production.id, exc)
            if hocuspocus.is_auth(data):  # a provider on the wrong endpoint: say which
                peer.close(1007, "a Hocuspocus provider: connect to /hocuspocus instead")
            else:
                peer.close(1007, f"bad message: {exc}")
        elif isinstance(exc, CastroomError):
            log.error("could not merge from %s: %s", peer.device, exc)
            peer.close(1011, str(exc))
        else:
            # A bug, or storage trouble: drop this peer (it will resync), keep serving.
            log.exception("failed handling a frame from %s", peer.device)
            peer.close(1011, "internal error; reconnect to resync")

    def _admitted(self, peer: Peer, data: bytes) -> bool:
        """Whether a frame may be handled: within the size cap, its token still valid."""
        limit = self.options.max_message
        if len(data) > limit:
            log.warning("oversized frame (%d bytes) from %s", len(data), peer.device)
            peer.close(1009, f"message of {len(data)} bytes exceeds the {limit}-byte limit")
            return False
        return self._token_holds(peer)  # per frame: nothing sent after a revocation merges

    async def _merge_frame_off_loop(self, peer: Peer, room: Room, data: bytes) -> bool:
        if not self._admitted(peer, data):
            return False
        try:
            message = protocol.decode_message(data, max_size=self.options.max_message)
            await self.merge_off_loop(
                room.production,
                message.payload,
                device=peer.session.device,
                member=peer.session.member,
                sender=peer,
                max_structs=peer.session.struct_cap(message.sync_type),
            )
        except Exception as exc:
            self._failed(peer, room, data, exc)
            return False
        if message.sync_type is protocol.SyncType.STEP2:
            peer.session.synced = True
        peer.answer(protocol.Outcome(message))  # stored: a Hocuspocus provider is told so
        return True

    # -- the frames of one event-loop turn -------------------------------------------------

    def handle(self, peer: Peer, room: Room, data: bytes) -> bool:
        """Take one y-websocket frame from a peer, to be handled (merged, answered,
        relayed) with every other frame that arrives in this event-loop turn, by
        :meth:`flush`. False once the peer has been closed (an oversized frame, or an
        earlier one that was refused)."""
        limit = self.options.max_message
        if peer.closed:
            return False
        if len(data) > limit:
            log.warning("oversized frame (%d bytes) from %s", len(data), peer.device)
            peer.close(1009, f"message of {len(data)} bytes exceeds the {limit}-byte limit")
            return False
        self.inbox.append((peer, room, data))
        self._schedule_flush()
        return True

    def _outbox_filled(self, room: Room) -> None:
        self.outboxes.add(room)
        self._schedule_flush()

    def _schedule_flush(self) -> None:
        if self._flush_handle is not None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # not on the server's loop (a test driving it directly)
            self.flush()
            return
        # call_soon runs after every callback already due in this turn: the reads of all
        # the sockets that had data join this flush.
        wait = self._flushed_at + self.options.flush_window - loop.time()
        if wait > 0:
            self._flush_handle = loop.call_later(wait, self.flush)
        else:
            self._flush_handle = loop.call_soon(self.flush)

    def flush(self) -> None:
        """Handle the frames taken since the last flush, in the order they came, merging
        every update in one SQLite transaction (group commit); then relay. Nothing is
        sent before the commit (answers queue and go out after it), so a peer is told an
        update was applied, and others see it, only once it is durable. If the commit
        fails, nothing of it is stored, the documents are rebuilt from the store, and the
        peers whose updates were lost are disconnected (they resync on reconnecting)."""
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        if self.loop is not None:
            self._flushed_at = self.loop.time()
        self._send_out()  # relays from outside a batch (other processes, HTTP pushes)
        if not self.store_free.is_set():
            return  # a large merge's row is being written: flushed once it is
        batch, self.inbox = self.inbox, []
        if not batch:
            return
        assert self.workspace is not None
        wrote: list[Peer] = []
        self.gate.shut = True
        try:
            with self.workspace.batch():
                for peer, room, data in batch:
                    if self._handle_now(peer, room, data):
                        wrote.append(peer)
        except StorageError as exc:
            log.error("could not store %d update(s): %s", len(wrote), exc)
            for room in self.outboxes:
                room.discard_outbox()  # presence still goes out
            for peer in wrote:
                peer.abort(1011, "the server could not store the update; reconnect to resync")
        finally:
            self.gate.open()
        self._send_out()
        if self._flush_handle is not None and not self.inbox and not self.outboxes:
            # The relays of this flush scheduled another, with nothing left for it.
            self._flush_handle.cancel()
            self._flush_handle = None

    def _send_out(self) -> None:
        rooms, self.outboxes = self.outboxes, set()
        limit = self.options.max_queued
        for room in rooms:
            for peer in room.send_out():
                if peer.backlog() > limit:
                    peer.close(1013, "too far behind; reconnect to resync")

    def _handle_now(self, peer: Peer, room: Room, data: bytes) -> bool:
        """One frame from a peer: merge, answer, take presence. True if it merged an
        update (the peer waits for its acknowledgement)."""
        if peer.closed:
            return False  # closed by an earlier frame of this turn: the rest is dropped
        if not self._token_holds(peer):
            return False  # checked per frame: nothing sent after a revocation is merged
        if data[:1] in PRESENCE_TYPES and not self._presence_allowed(peer, data):
            return False
        room.sender = peer
        try:
            outcome = peer.session.receive(data)
        except Exception as exc:
            self._failed(peer, room, data, exc)
            return False
        finally:
            room.sender = None
        peer.answer(outcome)
        if outcome.awareness is not None:
            refused = room.apply_awareness(
                peer, outcome.awareness_entries, outcome.message.payload, outcome.awareness
            )
            if refused:
                log.warning("presence from %s refused: %s", peer.device, refused)
                peer.close(1008, refused)
                return False
        if outcome.message.type is protocol.MessageType.QUERY_AWARENESS:
            room.answer_presence(peer)
        if peer.backlog() > self.options.max_queued:
            peer.close(1013, "too far behind; reconnect to resync")
        return outcome.update is not None

    def _presence_allowed(self, peer: Peer, data: bytes) -> bool:
        """Presence frames are rate-limited (the extra ones dropped: presence is best
        effort) and size-limited before they are decoded (too large: the peer is closed)."""
        limits = self.options.presence
        largest = limits.clients_per_peer * (limits.state_bytes + 32) + 16
        if len(data) > largest:
            peer.close(1009, f"a presence frame of {len(data)} bytes (limit {largest})")
            return False
        if peer.presence_rate is not None and not peer.presence_rate.allow():
            log.debug("presence frame from %s dropped (over %g/s)", peer.device, limits.rate)
            return False
        return True

    async def _write(self, peer: Peer) -> None:
        await write_out(peer)


async def frames(websocket: WebSocket) -> AsyncIterator[bytes | str]:
    """A WebSocket's messages until it disconnects (a text message as str)."""
    while True:
        try:
            message = await websocket.receive()
        except (WebSocketDisconnect, RuntimeError):
            return
        if message["type"] == "websocket.disconnect":
            return
        data = message.get("bytes")
        yield data if data is not None else str(message.get("text") or "")


async def write_out(channel: Channel) -> None:
    """Send a channel's queued frames until it is closed (None), then close its socket.
    Whatever has queued up is taken at once, and a run of update frames (a slow peer's
    backlog) goes out as one merged frame."""
    done = False
    while not done:
        frames: list[bytes] = []
        item = await channel.queue.get()
        while item is not None:
            frames.append(item)
            if channel.queue.empty():
                break
            item = channel.queue.get_nowait()
        done = item is None  # closed: what was queued before goes out first
        channel.writing = True
        channel.queued -= sum(len(f) for f in frames)
        try:
            for frame in _merge_runs(frames) if channel.merge_updates else frames:
                await channel.websocket.send_bytes(frame)
        except Exception:
            channel.close(1011)
            break
        finally:
            channel.writing = False
    with contextlib.suppress(Exception):
        await channel.websocket.close(code=channel.close_code, reason=channel.close_reason)


_UPDATE_PREFIX = bytes([protocol.MessageType.SYNC, protocol.SyncType.UPDATE])


#: Seconds the worker thread's Python code (change tracking) may hold the GIL while the
#: event loop waits for it, during a heavy merge (Python's default: 0.005).
HEAVY_SWITCH_INTERVAL = 0.001
#: Heavy merges under way (collection_paused nests), and the switch interval before.
_paused: list[Any] = [0, 0.005]


@contextlib.contextmanager
def collection_paused() -> Iterator[None]:
    """Pause Python's automatic garbage collection while a heavy merge runs. Its change
    records (a set of fields for each of up to 500,000 entities) hold no cycles, and each
    full collection walked all of them and the document's objects holding the GIL, in
    whichever thread allocated: the event loop stopped with it. Reference counting still
    frees them; collection resumes when the last heavy merge ends."""
    _paused[0] += 1
    if _paused[0] == 1:
        gc.disable()
        _paused[1] = sys.getswitchinterval()
        sys.setswitchinterval(HEAVY_SWITCH_INTERVAL)
    try:
        yield
    finally:
        _paused[0] -= 1
        if _paused[0] == 0:
            gc.enable()
            sys.setswitchinterval(_paused[1])


def _creates(production_id: str, update: bytes) -> None:
    """Refuse (404) an update that does not create production ``production_id`` (checked
    on a scratch copy: :func:`production_in`); ProtocolError if it does not decode."""
    try:
        found = production_in(update)
    except BadUpdate as exc:
        raise protocol.ProtocolError(str(exc)) from None
    if found != production_id:
        raise Refused(404, f"no production {production_id!r} on this server")


def _release(records: list[Changes]) -> None:
    """Free a large merge's change records an entity at a time (in a worker thread):
    dropped in one go, half a million of them were freed in one call that held the GIL,
    and so the event loop, 0.2 s. A record that something else still refers to (a
    listener kept it) is left whole, to be freed whenever that lets go."""
    while records:
        record = records.pop()
        if sys.getrefcount(record) > 2:  # more than `record` and getrefcount's argument
            continue
        while record:
            record.popitem()


def _merge_runs(frames: list[bytes]) -> list[bytes]:
    """The frames, with each run of consecutive y-websocket update frames merged into one
    (the order of everything else kept)."""
    if sum(1 for f in frames if f[:2] == _UPDATE_PREFIX) < 2:
        return frames
    out: list[bytes] = []
    run: list[bytes] = []
    for frame in [*frames, b""]:
        if frame[:2] == _UPDATE_PREFIX:
            run.append(protocol.decode_message(frame).payload)
            continue
        if run:
            merged = _merged_frame(run)
            if merged is not None:
                out.append(merged)
            run = []
        if frame:
            out.append(frame)
    return out


def bearer_token(conn: HTTPConnection) -> str | None:
    header = conn.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return conn.query_params.get("token") or None


def peer_device(conn: HTTPConnection, info: TokenInfo) -> str:
    """The device a peer says it is (for the log), else the token it used."""
    named = conn.headers.get(DEVICE_HEADER.lower()) or conn.query_params.get("device") or ""
    named = "".join(ch for ch in named if ch.isprintable())[:100]
    return named or f"token:{info.name or info.id}"


def peer_member(conn: HTTPConnection) -> str:
    """The team member a peer says it speaks for, or "" (then the history falls back to
    the member who lists its device). Self-declared, like the device: attribution for the
    history, not access control (that is the token's job)."""
    named = conn.headers.get(MEMBER_HEADER.lower())
    named = unquote(named) if named is not None else conn.query_params.get("member", "")
    return "".join(ch for ch in named if ch.isprintable()).strip()[:100]


def _refusal(status: int, message: str) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse({"error": message}, status_code=status, headers=headers)


async def deny(websocket: WebSocket, status: int, message: str) -> None:
    """Refuse a WebSocket handshake with a plain HTTP status where the server supports it
    (uvicorn does), else accept-and-close with 4000 + status."""
    try:
        await websocket.send_denial_response(_refusal(status, message))
    except RuntimeError:
        await websocket.close(code=4000 + status, reason=message[:120])


async def no_such_socket(websocket: WebSocket) -> None:
    path = websocket.url.path
    log.warning("refused WebSocket %s: no such path", path)
    await deny(
        websocket,
        404,
        f"no WebSocket at {path}: castroom serves /sync/PRODUCTION_ID (y-websocket)"
        " and /hocuspocus (Hocuspocus)",
    )


def create_app(workspace_path: str | Path, options: ServerOptions | None = None) -> Starlette:
    """The ASGI application serving one workspace."""
    server = SyncServer(Path(workspace_path), options or ServerOptions())

    async def on_refused(request: Any, exc: Exception) -> Response:
        assert isinstance(exc, Refused)
        log.warning(
            "%s %s refused: %s %s", request.method, request.url.path, exc.status, exc.message
        )
        return _refusal(exc.status, exc.message)

    app = Starlette(
        routes=[
            Route("/health", server.health, methods=["GET"]),
            Route("/productions", server.productions, methods=["GET"]),
            Route("/stats", server.stats, methods=["GET"]),
            Route("/sync/{production_id}/state", server.state, methods=["GET"]),
            Route("/sync/{production_id}/pull", server.pull, methods=["POST"]),
            Route("/sync/{production_id}/push", server.push, methods=["POST"]),
            WebSocketRoute("/sync/{production_id}", server.websocket),
            WebSocketRoute("/hocuspocus", server.hocuspocus),
            *media_routes(server),  # blobs by hash (media_routes.py)
            *presentation_routes(server),  # presentation links (presentation.py)
            *web_routes(server),  # the dashboard (sync/web/)
            # Last: any other WebSocket path is a 404 that says where the sockets are
            # (starlette's default closes the handshake, which uvicorn answers 403).
            WebSocketRoute("/{path:path}", no_such_socket),
        ],
        exception_handlers={Refused: on_refused},
        lifespan=server.lifespan,
    )
    app.state.sync = server
    return app


# -- running it ------------------------------------------------------------------------------


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening socket (port 0 = any free port; read it back from getsockname)."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except socket.gaierror as exc:
        raise CastroomError(f"cannot resolve host {host!r}: {exc}") from None
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        raise CastroomError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.listen(BACKLOG)
    sock.set_inheritable(True)
    return sock


def server_url(host: str, port: int, *, tls: bool = False, websocket: bool = False) -> str:
    """``http(s)://host:port`` (or ``ws(s)://``), with an IPv6 host in brackets."""
    scheme = ("wss" if tls else "ws") if websocket else ("https" if tls else "http")
    shown = f"[{host}]" if ":" in host and not host.startswith("[") else host
    return f"{scheme}://{shown}:{port}"


class _Server(uvicorn.Server):
    """uvicorn's server, telling us once it is listening."""

    def __init__(self, config: uvicorn.Config, on_ready: Any = None) -> None:
        super().__init__(config)
        self.on_ready = on_ready

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        context = self.config.ssl
        if context is not None:
            # TLS inside the connection guard (limits.TlsFront), not asyncio's own, which
            # leaves connections in their handshake outside the cap for 60 s each.
            self.config.http_protocol_class = tls_in_front(
                self.config.http_protocol_class,  # type: ignore[arg-type]
                context,
            )
            self.config.ssl = None
        try:
            await super().startup(sockets=sockets)
        finally:
            self.config.ssl = context
        if self.started and self.on_ready is not None:
            self.on_ready()


def make_config(
    workspace_path: str | Path,
    *,
    tls_cert: str | Path | None = None,
    tls_key: str | Path | None = None,
    options: ServerOptions | None = None,
) -> uvicorn.Config:
    options = options or ServerOptions()
    if bool(tls_cert) != bool(tls_key):
        raise CastroomError("--tls-cert and --tls-key go together")
    for path in (tls_cert, tls_key):
        if path and not Path(path).is_file():
            raise CastroomError(f"no such file: {path}")
    config = uvicorn.Config(
        create_app(workspace_path, options),
        http=GuardedH11Protocol,
        # uvicorn's own WebSocket protocol, with frames written straight to the socket for
        # live fan-out (wire.py).
        ws=DirectWebSocketProtocol,
        backlog=BACKLOG,
        ssl_certfile=str(tls_cert) if tls_cert else None,
        ssl_keyfile=str(tls_key) if tls_key else None,
        log_level="warning",
        access_log=False,
        lifespan="on",
        # A frame whose header declares more than the cap is refused (1009) before its
        # body is read; our own check in handle() is for the frames that get through.
        ws_max_size=options.max_message,
        # A request head is buffered whole until its blank line: bounded here (h11's own
        # default, said once); bodies are streamed and counted (read_body).
        h11_max_incomplete_event_size=MAX_REQUEST_HEAD,
        ws_ping_interval=20,
        # Yjs frames are small and binary: compressing each one (permessage-deflate, which
        # browsers and y-websocket offer) cost castroom serve ~10% of its CPU under live load
        # (bench_live) for little gain. The Node relays do not compress by default either.
        ws_per_message_deflate=False,
        ws_ping_timeout=20,
        timeout_graceful_shutdown=2,
    )
    config.castroom_guard = ConnectionGuard(  # type: ignore[attr-defined]
        options.max_connections, options.header_timeout
    )
    return config


def serve(
    workspace_path: str | Path,
    *,
    host: str = "127.0.0.1",
    port: int = 8765,
    tls_cert: str | Path | None = None,
    tls_key: str | Path | None = None,
    options: ServerOptions | None = None,
    on_ready: Any = None,
) -> None:
    """Run the server in the foreground until interrupted. ``on_ready(url)`` is called once
    it listens (port 0 picks a free port, shown in the URL)."""
    Workspace.open(workspace_path, create=False).close()  # a clear error if there is none
    config = make_config(workspace_path, tls_cert=tls_cert, tls_key=tls_key, options=options)
    sock = bind_socket(host, port)
    url = server_url(host, sock.getsockname()[1], tls=bool(tls_cert))

    def ready() -> None:
        collector.settle_server()  # this process is the server (not ServerThread's)
        if on_ready:
            on_ready(url)

    server = _Server(config, on_ready=ready)
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()


class ServerThread:
    """A server in a background thread, for tests and benchmarks::

    with ServerThread(workspace_path) as server:
        httpx.get(f"{server.url}/health")
    """

    def __init__(
        self,
        workspace_path: str | Path,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        options: ServerOptions | None = None,
        tls_cert: str | Path | None = None,
        tls_key: str | Path | None = None,
    ) -> None:
        self.config = make_config(
            workspace_path, tls_cert=tls_cert, tls_key=tls_key, options=options
        )
        quiet_handshake_noise()  # as `castroom serve` does: refusals are logged by us
        self.sock = bind_socket(host, port)
        self.port = self.sock.getsockname()[1]
        self.url = server_url(host, self.port, tls=bool(tls_cert))
        self.ws_url = server_url(host, self.port, tls=bool(tls_cert), websocket=True) + "/sync"
        self._ready = threading.Event()
        self.server = _Server(self.config, on_ready=self._ready.set)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True
        )

    @property
    def app_state(self) -> SyncServer:
        return self.config.app.state.sync  # type: ignore[union-attr]

    def start(self, timeout: float = 10) -> ServerThread:
        self.thread.start()
        if not self._ready.wait(timeout):
            self.stop()
            raise RuntimeError("sync server did not start")
        return self

    def stop(self, timeout: float = 10) -> None:
        self.server.should_exit = True
        self.thread.join(timeout)
        self.sock.close()

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
