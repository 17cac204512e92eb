"""``castroom serve`` speaking Hocuspocus at ``ws://HOST:PORT/hocuspocus``.

One WebSocket carries many productions (a ``@hocuspocus/provider`` per document, sharing
a ``HocuspocusProviderWebsocket``). Each document name is a production id; each document
is authenticated on its own by the token in its auth message, checked exactly as a bearer
token is (scope, production limit, revocation). The socket's own ``Authorization`` header
or ``?token=`` is used for a document whose auth message carries no token.

Once authenticated, a document is an ordinary peer of its production's room: its Yjs
frames (sync, awareness, query awareness) go through the same
:class:`~castroom.sync.protocol.SyncSession` and :meth:`SyncServer.handle` as a
y-websocket peer's, so the same intake checks, merges, relays and presence apply. What
differs is only the framing: the address prefix, ``authenticated``/``permission denied``
answers, a sync status after each update (``applied`` false for a read-only token, whose
updates are dropped), per-document close messages, and ping/pong.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from dataclasses import dataclass, field

from . import hocuspocus as hp
from . import protocol
from .logsafe import printable_logger
from .server import (
    Channel,
    Peer,
    Refused,
    Room,
    SyncServer,
    bearer_token,
    frames,
    peer_device,
    peer_member,
    write_out,
)

log = printable_logger("castroom.sync.hocuspocus")

#: Documents one socket may hold open (a browser tab holds a handful).
MAX_DOCUMENTS = 1000
#: Documents' tasks taking their waiting frames (DocumentPeer.draining).
_DRAINING: set[asyncio.Task[None]] = set()
#: Close codes that end one document only; any other closes the whole socket.
_DOCUMENT_ONLY = frozenset({1000, 4401, 4403})


@dataclass(eq=False, kw_only=True)
class DocumentPeer(Peer):
    """One document on a Hocuspocus socket: a room peer whose frames carry its address."""

    socket: HocuspocusSocket
    address: str
    #: Frames waiting while this document is busy (a heavy merge; None: the provider's
    #: close), taken in order by ``draining``; the socket's other documents go on.
    waiting: deque[bytes | None] = field(default_factory=deque)
    draining: asyncio.Task[None] | None = None

    def send(self, frame: bytes) -> None:
        if self.closed:
            return
        if frame[:1] == bytes([protocol.MessageType.AUTH]):
            # y-protocols' permission denied (a revoked token) in Hocuspocus's words.
            reason = protocol.decode_message(frame).payload.decode("utf-8", "replace")
            self.socket.send(hp.permission_denied(self.address, reason))
        else:
            self.socket.send(hp.wrap(self.address, frame))

    def answer(self, outcome: protocol.Outcome) -> None:
        for reply in outcome.replies:
            if outcome.dropped is None:  # a read-only refusal is the sync status below
                self.send(reply)
        message = outcome.message
        if message.type is protocol.MessageType.SYNC and message.sync_type in (
            protocol.SyncType.STEP2,
            protocol.SyncType.UPDATE,
        ):
            # The provider counts its unsynced changes down on each applied status.
            self.socket.send(hp.sync_status(self.address, applied=outcome.dropped is None))

    def backlog(self) -> int:
        return self.socket.backlog()

    def abort(self, code: int, reason: str) -> None:
        """Drop what the socket has queued (this document's acknowledgements among it)
        and close the socket: its provider reconnects and resyncs every document."""
        self.socket.abort(code, reason)
        self.close(code, reason)

    def close(self, code: int = 1000, reason: str = "") -> None:
        if self.closed:
            return
        self.closed = True
        self.socket.send(hp.close(self.address, reason or "closed by the server"))
        self.socket.detach(self)
        if code not in _DOCUMENT_ONLY:
            self.socket.close(code, reason)


@dataclass(eq=False, kw_only=True)
class HocuspocusSocket(Channel):
    """One Hocuspocus WebSocket and the documents authenticated on it."""

    server: SyncServer
    documents: dict[str, tuple[DocumentPeer, Room]] = field(default_factory=dict)
    merge_updates: bool = False  # its frames carry a document address
    #: True while run() handles a frame (it may await: an auth, a busy production); no
    #: frame is taken as it arrives meanwhile (take_now), so none overtakes it.
    receiving: bool = False

    def detach(self, peer: DocumentPeer) -> None:
        entry = self.documents.pop(peer.address, None)
        if entry is not None:
            self.server.part(*entry)

    async def run(self) -> None:
        await self.websocket.accept()
        writer = asyncio.create_task(write_out(self))
        if self.direct is not None:
            self.direct.take = self.take_now
        try:
            async for data in frames(self.websocket):
                if isinstance(data, str):
                    self.close(1003, "binary Hocuspocus frames only")
                    break
                self.receiving = True
                try:
                    await self.receive(data)
                finally:
                    self.receiving = False
                if self.closed:
                    break
        finally:
            if self.direct is not None:
                self.direct.take = None
            if self.server.inbox:
                self.server.flush()  # what it sent before leaving is merged first
            for peer, _room in list(self.documents.values()):
                peer.closed = True
                self.detach(peer)
            self.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer, timeout=5)
            writer.cancel()

    def take_now(self, data: bytes) -> bool:
        """A Yjs frame for an open document as it arrives (wire.py), before the ASGI
        queue, as :meth:`SyncServer.take_now` takes a y-websocket peer's: only while this
        socket handles nothing else and the document waits for nothing; anything else
        (auth, close, ping, a bad frame, a busy document) goes the ASGI way, in order, to
        :meth:`receive`. Saves the reading task's wake-up and starlette's and uvicorn's
        receive layers per frame (a live edit's on /hocuspocus cost 43.5 % more CPU than
        on /sync, bench_live 50 x 4)."""
        if self.receiving or self.closed:
            return False
        try:
            frame = hp.decode(data, max_size=self.server.options.max_message)
        except protocol.ProtocolError:
            return False  # receive() decodes it again and says why
        entry = self.documents.get(frame.address) if frame.yjs else None
        if entry is None or entry[0].draining is not None:
            return False
        return self.server.take_now(entry[0], entry[1], frame.yjs)

    async def receive(self, data: bytes) -> None:
        """Handle one frame from the provider."""
        try:
            frame = hp.decode(data, max_size=self.server.options.max_message)
        except protocol.ProtocolError as exc:
            log.warning("bad Hocuspocus frame: %s", exc)
            code = 1009 if "exceeds" in str(exc) else 1007
            self.close(code, f"bad message: {exc}")
            return
        if frame.type is hp.HPType.PING:
            self.send(hp.PONG)
            return
        if not frame.yjs and self.server.inbox:
            # Yjs frames wait for the turn's flush; what comes after them (a close, an
            # auth) must not overtake them.
            self.server.flush()
        entry = self.documents.get(frame.address)
        if frame.type is hp.HPType.AUTH:
            if entry is None and frame.auth is hp.AuthType.TOKEN:
                await self.authenticate(frame)
            return  # a token refresh on an open document needs no answer
        if entry is None:
            # Not (or no longer) authenticated: Hocuspocus drops these too.
            log.debug("frame for unauthenticated document %r dropped", frame.name)
            return
        peer, room = entry
        if frame.yjs:
            await self._take(peer, room, frame.yjs)
        elif frame.type is hp.HPType.CLOSE:
            if peer.draining is None:
                peer.close(1000, "provider_initiated")
            else:
                peer.waiting.append(None)  # after what it sent before
        elif frame.type is hp.HPType.BROADCAST_STATELESS:
            peer.close(1000, "broadcast stateless is a server-internal message")
        # Stateless messages have no meaning for castroom; pong needs nothing.

    async def _take(self, peer: DocumentPeer, room: Room, data: bytes) -> None:
        """A document's Yjs frame, taken at once unless it would make the socket wait
        (a heavy merge, or its production busy with one): then it is taken in a task of
        its document's, with the frames that follow it for that document, in order."""
        if peer.draining is None and room.idle.is_set() and not self.server.is_heavy(peer, data):
            await self.server.take(peer, room, data)
            return
        peer.waiting.append(data)
        if peer.draining is None:
            peer.draining = task = asyncio.create_task(self._drain(peer, room))
            _DRAINING.add(task)  # held until done (the loop keeps only weak references)
            task.add_done_callback(_DRAINING.discard)

    async def _drain(self, peer: DocumentPeer, room: Room) -> None:
        try:
            while peer.waiting and not peer.closed:
                data = peer.waiting.popleft()
                if data is None:
                    peer.close(1000, "provider_initiated")
                elif not await self.server.take(peer, room, data):
                    break
        except Exception:  # take handles a frame's own failures: this is a bug
            log.exception("a frame for document %r failed", peer.address)
            peer.close(1011, "internal error; reconnect to resync")
        finally:
            peer.waiting.clear()
            peer.draining = None

    async def authenticate(self, frame: hp.Frame) -> None:
        """Check one document's token; open it as a room peer, or say why not. The open
        walks a large stored snapshot first in a worker thread (SyncServer.opened), as
        for a y-websocket peer; this socket's later frames wait for it, in order."""
        secret = frame.text or bearer_token(self.websocket)
        try:
            info = self.server.check_token(secret, frame.name, write=False)
            production = await self.server.opened(frame.name)
            self.server.admit(info)
            if len(self.documents) >= MAX_DOCUMENTS:
                raise Refused(429, f"at most {MAX_DOCUMENTS} documents on one connection")
        except Refused as refusal:
            log.warning("refused Hocuspocus document %r: %s", frame.name, refusal.message)
            self.send(hp.permission_denied(frame.address, refusal.message))
            return
        device = peer_device(self.websocket, info)
        session = protocol.SyncSession(
            production,
            can_write=info.scope == "write",
            device=device,
            member=peer_member(self.websocket),
            answer_step1_with_step1=True,
            max_message=self.server.options.max_message,
            max_incremental_structs=self.server.options.max_incremental_structs,
        )
        peer = DocumentPeer(
            self.websocket,
            session=session,
            token=secret or "",
            info=info,
            device=device,
            socket=self,
            address=frame.address,
        )
        self.send(hp.authenticated(frame.address, read_only=info.scope != "write"))
        self.documents[frame.address] = (peer, self.server.join(peer))
