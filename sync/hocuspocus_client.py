"""``castroom sync ws[s]://HOST:PORT --protocol hocuspocus``: a Hocuspocus provider.

One WebSocket carries every production the workspace holds (or those named), each a
Hocuspocus document named by its production id and authenticated on its own with the
token (Hocuspocus's auth message). The server's answer is honoured per document:
``readonly`` means local edits stay here (and are said so), a permission denied means that
production is not synced. Everything else is as in the y-websocket mode
(:mod:`castroom.sync.client`): the Yjs frames inside go through the same
:class:`~castroom.sync.protocol.SyncSession` (one intake for every peer), presence is
shown, one-shot or live with reconnects and backoff.

A one-shot sync is *confirmed* before it says anything: Hocuspocus answers every step 1
with its own, so the client asks again after the exchange and checks the state vectors
both ways (:mod:`castroom.sync.confirm`); a server that has not taken our edits, or
that holds edits we did not get, is reported and the command fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import websockets
from websockets.asyncio.client import ClientConnection

from castroom.core.crdt import awareness_for
from castroom.core.document import Changes
from castroom.core.errors import CastroomError
from castroom.core.workspace import Workspace

from . import confirm, protocol
from . import hocuspocus as hp
from .client import (
    AWARENESS_RENEW,
    POLL_INTERVAL,
    TIMEOUT,
    Echo,
    Moved,
    Retries,
    _awareness_frame,
    _awareness_frame_leaving,
    _connect,
    _Connection,
    _describe,
    _Fatal,
    _peer_label,
    _presence_state,
    _prune_presence,
    _receive,
    _resolve_room_production,
    _strip_token,
    _Target,
    _websocket_headers,
    live_media,
    short_id,
    tls_context,
)
from .read_copies import fresh_read_copies

log = logging.getLogger("castroom.sync.hocuspocus")


@dataclass
class _Document(_Connection):
    """One production on the shared socket: its session, presence and what it is owed."""

    address: str = ""
    target: _Target | None = None
    label: str = ""
    scope: str | None = None  # "read-write" / "readonly" once authenticated
    denied: str | None = None
    closed: str | None = None  # the server closed this document (why)
    announced: bytes | None = None  # the server's latest state vector (its step 1)
    step1_seen: int = 0
    refused: int = 0  # updates the server answered "not applied"
    withheld: bool = False  # read-only: we had edits the server lacks
    listener: Callable[[bytes, str, Changes], None] | None = None

    async def flush(self) -> None:
        while not self.outbox.empty():
            frame = self.outbox.get_nowait()
            if self.scope == hp.SCOPE_READ and _is_write(frame):
                # A read-only connection's writes are refused: keep them here, say so.
                self.withheld = self.withheld or _carries_content(frame)
                continue
            wrapped = hp.wrap(self.address, frame)
            self.sent_bytes += len(wrapped)
            await self.conn.send(wrapped)

    @property
    def settled(self) -> bool:
        """Authenticated and both halves of the handshake done, or refused."""
        if self.denied is not None or self.closed is not None:
            return True
        return self.scope is not None and self.session.synced and self.step1_seen > 0

    def waiting_for(self) -> str:
        if self.scope is None:
            return "the answer to its auth message"
        if not self.session.synced:
            return "the server's sync step 2"
        return "the server's sync step 1"


def _is_write(frame: bytes) -> bool:
    return frame[:1] == bytes([protocol.MessageType.SYNC]) and frame[1:2] != bytes(
        [protocol.SyncType.STEP1]
    )


def _carries_content(frame: bytes) -> bool:
    return protocol.decode_message(frame).payload != protocol.EMPTY_UPDATE


class HocuspocusClient:
    """One socket to a Hocuspocus server and the documents (productions) on it."""

    def __init__(
        self,
        workspace: Workspace,
        url: str,
        production_ids: list[str],
        *,
        token: str | None,
        echo: Echo,
        ssl_ctx: ssl.SSLContext | None,
        timeout: float,
    ) -> None:
        self.workspace = workspace
        self.url = url
        self.production_ids = production_ids
        self.token = token
        self.echo = echo
        self.ssl_ctx = ssl_ctx
        self.timeout = timeout
        self.device = _peer_label(url)
        self.documents: dict[str, _Document] = {}
        self.conn: ClientConnection | None = None
        #: Frames addressed to no document we opened (a y-websocket relay's look like that).
        self.stray = 0

    # -- connecting --------------------------------------------------------------------------

    async def open(self) -> None:
        # The token travels in the auth messages; the header is for castroom serve's logs.
        self.conn = await _connect(self.url, _websocket_headers(self.workspace, None), self.ssl_ctx)
        titles = dict(self.workspace.productions())
        self.documents = {}
        for pid in self.production_ids:
            target = _Target(self.workspace, pid)
            session = protocol.SyncSession(target.production, device=self.device)
            awareness = awareness_for(target.production.doc)
            awareness.set_local_state(_presence_state(self.workspace))
            label = titles.get(pid) or short_id(pid)
            doc = _Document(self.conn, session, awareness, address=pid, target=target, label=label)
            self.documents[pid] = doc
            await self.conn.send(hp.token(pid, self.token or ""))

    def _tell(self, doc: _Document) -> Echo:
        return lambda line: self.echo(f"{doc.label}: {line}")

    async def handshake(self) -> None:
        """Every document authenticated and synced (or refused), within the timeout."""
        deadline = time.monotonic() + self.timeout
        while not all(d.settled for d in self.documents.values()):
            try:
                if time.monotonic() >= deadline:
                    raise TimeoutError
                await self.receive_one(deadline)
            except TimeoutError:
                raise TimeoutError(self._late()) from None

    def _late(self) -> str:
        """What a handshake that timed out was waiting for, with a hint for a relay that
        is not Hocuspocus at all."""
        docs = self.documents.values()
        late = [f"{d.label}: {d.waiting_for()}" for d in docs if not d.settled]
        line = f"{_strip_token(self.url)} did not answer in {self.timeout:g} s; waited for "
        line += "; ".join(late)
        if self.stray and all(d.scope is None and d.denied is None for d in docs):
            line += (
                ". It sent frames for no document we asked for, as a y-websocket relay"
                " does: if it is one, sync without --protocol hocuspocus"
            )
        return line

    async def receive_one(self, deadline: float | None) -> None:
        assert self.conn is not None
        if deadline is None:
            data = await self.conn.recv()
        else:
            data = await asyncio.wait_for(self.conn.recv(), max(0.0, deadline - time.monotonic()))
        if isinstance(data, str):
            raise protocol.ProtocolError("the server sent a text frame")
        frame = hp.decode(data, max_size=protocol.MAX_MESSAGE)
        if frame.type is hp.HPType.PING:
            await self.conn.send(hp.PONG)
            return
        doc = self.documents.get(frame.name)
        if doc is None:
            self.stray += 1  # an answer for a document we did not open (or closed)
            return
        await self.dispatch(doc, frame, data)

    async def dispatch(self, doc: _Document, frame: hp.Frame, data: bytes) -> None:
        tell = self._tell(doc)
        if frame.type is hp.HPType.AUTH:
            await self._auth(doc, frame, tell)
        elif frame.yjs:
            outcome = _receive(doc, frame.yjs, tell)
            doc.received_bytes += len(data) - len(frame.yjs)  # count the address too
            if outcome.message.sync_type is protocol.SyncType.STEP1:
                doc.step1_seen += 1
                doc.announced = outcome.message.payload
            if outcome.changes and doc.listener is not None:
                tell(f"received {len(outcome.changes)} change(s)")
            await doc.flush()
        elif frame.type is hp.HPType.SYNC_STATUS and not frame.applied:
            doc.refused += 1
        elif frame.type is hp.HPType.CLOSE:
            doc.closed = frame.text or "closed by the server"
            tell(f"the server closed it: {doc.closed}")

    async def _auth(self, doc: _Document, frame: hp.Frame, tell: Echo) -> None:
        assert self.conn is not None
        if frame.auth is hp.AuthType.TOKEN:  # the server asks for the token again
            await self.conn.send(hp.token(doc.address, self.token or ""))
        elif frame.auth is hp.AuthType.PERMISSION_DENIED:
            # Said once, by whoever reports the outcome (the one-shot's error or line,
            # the live loop's stop), not here as well.
            doc.denied = frame.text or "permission denied"
        elif doc.scope is None:
            doc.scope = frame.text
            if frame.text == hp.SCOPE_READ:
                tell("read-only: local edits stay here")
            for opening in doc.session.opening():
                doc.outbox.put_nowait(opening)
            doc.outbox.put_nowait(_awareness_frame(doc.awareness, [doc.awareness.client_id]))
            await doc.flush()

    # -- one shot ----------------------------------------------------------------------------

    async def confirm(self) -> None:
        """Ask every synced document's state again and check it both ways (bounded)."""
        live = [d for d in self.documents.values() if d.denied is None and d.closed is None]
        deadline = time.monotonic() + min(self.timeout, confirm.WAIT)
        while True:
            for doc in live:
                doc.outbox.put_nowait(
                    protocol.step1_frame(doc.session.production.doc.state_vector())
                )
                await doc.flush()
            seen = {id(d): d.step1_seen for d in live}
            try:
                while any(d.step1_seen == seen[id(d)] for d in live):
                    await self.receive_one(deadline)
            except TimeoutError:
                late = ", ".join(d.label for d in live if d.step1_seen == seen[id(d)])
                raise CastroomError(
                    f"{_strip_token(self.url)} did not answer our confirming sync step 1"
                    f" in {confirm.WAIT:g} s ({late})"
                ) from None
            gaps = {d.address: self._gap(d) for d in live}
            if not any(gaps.values()):
                return
            if time.monotonic() + confirm.RETRY > deadline:
                lines = [f"{self.documents[a].label}: {g}" for a, g in gaps.items() if g]
                raise CastroomError("not in sync with the server: " + "; ".join(lines))
            await asyncio.sleep(confirm.RETRY)

    def _gap(self, doc: _Document) -> str:
        assert doc.announced is not None
        ours = doc.session.production.doc.state_vector()
        if doc.scope == hp.SCOPE_READ:
            return confirm.gap(ours, doc.announced, ours_may_lead=True)
        return confirm.gap(ours, doc.announced)

    def results(self) -> list[Moved]:
        titles = dict(self.workspace.productions())
        moved = []
        for doc in self.documents.values():
            assert doc.target is not None
            item = Moved(
                doc.address,
                titles.get(doc.address, ""),
                pulled_bytes=doc.received_bytes,
                pulled_changes=doc.received_changes,
                pushed_bytes=doc.sent_bytes,
                served=doc.denied is None and doc.closed is None,
            )
            if doc.denied is not None:
                item.not_sent = f"the server says: {doc.denied}"
            elif doc.withheld or doc.refused:
                item.not_sent = "read-only token"
            moved.append(item)
        return moved

    async def leave(self) -> None:
        """Say goodbye (presence gone, documents closed); quiet on a dead socket."""
        assert self.conn is not None
        with contextlib.suppress(*_NETWORK_ERRORS):
            for doc in self.documents.values():
                if doc.scope is not None and doc.denied is None:
                    gone = _awareness_frame_leaving(doc.awareness, doc.awareness.client_id)
                    await self.conn.send(hp.wrap(doc.address, gone))
                    await self.conn.send(hp.close(doc.address))
        await self.conn.close()

    def adopt(self) -> None:
        """Productions new here (named with --production) become stored ones."""
        for doc in self.documents.values():
            assert doc.target is not None
            if doc.denied is not None or doc.closed is not None or doc.target.adopted:
                continue
            if not doc.target.settle(self.device):
                doc.denied = "the server holds no such production (an empty document)"
            else:
                doc.session.production = doc.target.production

    # -- live --------------------------------------------------------------------------------

    async def pump(self) -> None:
        """Live: forward local edits, apply the server's, renew presence, until a drop."""
        assert self.conn is not None
        active = [d for d in self.documents.values() if d.denied is None and d.closed is None]
        if not active:
            raise _Fatal("the server refused every production")
        for doc in active:
            doc.listener = _forwarder(doc)
            doc.session.production.update_listeners.append(doc.listener)
        try:
            await self._run_live(active)
        finally:
            for doc in active:
                with contextlib.suppress(ValueError):
                    doc.session.production.update_listeners.remove(doc.listener)  # type: ignore[arg-type]

    async def _run_live(self, active: list[_Document]) -> None:
        async def receiver() -> None:
            while True:
                await self.receive_one(None)
                for doc in active:
                    if doc.denied is not None:  # e.g. the token was revoked
                        raise _Fatal(f"{doc.label}: the server says: {doc.denied}")
                    if doc.closed is not None:  # e.g. the server is shutting down
                        raise ConnectionError(f"{doc.label}: {doc.closed}")

        async def poller() -> None:
            renew = time.monotonic() + AWARENESS_RENEW
            while True:
                await asyncio.sleep(POLL_INTERVAL)
                for doc in active:
                    doc.session.production.refresh()
                    if time.monotonic() >= renew:
                        doc.awareness.set_local_state(doc.awareness.get_local_state())
                        doc.outbox.put_nowait(
                            _awareness_frame(doc.awareness, [doc.awareness.client_id])
                        )
                        _prune_presence(doc, self._tell(doc))
                    await doc.flush()
                if time.monotonic() >= renew:
                    renew = time.monotonic() + AWARENESS_RENEW

        tasks = [asyncio.create_task(receiver()), asyncio.create_task(poller())]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                task.result()
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


def _forwarder(doc: _Document) -> Callable[[bytes, str, Changes], None]:
    def forward(update: bytes, origin: str, changes: Changes) -> None:
        # Only what was written here (or by another process on this workspace).
        if origin in ("local", "storage") and update != protocol.EMPTY_UPDATE:
            doc.outbox.put_nowait(protocol.update_frame(update))

    return forward


def _production_ids(workspace: Workspace, refs: list[str] | None) -> list[str]:
    """Every production here, or the ones named (ids not here yet are adopted)."""
    if refs:
        return list(dict.fromkeys(_resolve_room_production(workspace, r) for r in refs))
    ids = [pid for pid, _ in workspace.productions()]
    if not ids:
        raise CastroomError(
            "no production here to sync: name one the server holds with --production ID"
        )
    return ids


_NETWORK_ERRORS = (OSError, TimeoutError, websockets.WebSocketException, protocol.ProtocolError)


def sync_hocuspocus(
    workspace: Workspace,
    url: str,
    *,
    token: str | None = None,
    productions: list[str] | None = None,
    echo: Echo | None = None,
    cacert: str | Path | None = None,
    timeout: float = TIMEOUT,
    media: str = "eager",
    fetch: list[str] | None = None,
) -> list[Moved]:
    """One-shot sync of the workspace's productions (or those named) with the Hocuspocus
    server at ``url``, confirmed both ways; then, when it is ``castroom serve``, the
    files the synced productions refer to, both ways (``media``: none, eager or all;
    ``fetch``: files named, whatever the mode; live_media.py; a server that holds no
    files is said once). Raises CastroomError when
    the server cannot be reached, refuses every production asked for, or is not in sync
    afterwards."""
    say: Echo = echo or (lambda _line: None)
    ids = _production_ids(workspace, productions)
    ssl_ctx = tls_context(cacert)
    client = HocuspocusClient(
        workspace, url, ids, token=token, echo=say, ssl_ctx=ssl_ctx, timeout=timeout
    )

    async def run() -> None:
        await client.open()
        try:
            await client.handshake()
            client.adopt()
            await client.confirm()
        finally:
            await client.leave()

    try:
        asyncio.run(run())
    except _NETWORK_ERRORS as exc:
        raise CastroomError(f"cannot sync with {_strip_token(url)}: {_describe(exc)}") from None
    moved = client.results()
    refused = [m for m in moved if not m.served]
    failed = bool(refused) and (bool(productions) or len(refused) == len(moved))
    for item in moved:
        if failed and not item.served:
            continue  # the error below says it, once
        # Confirmed both ways by now: "up to date" means the two sides agree.
        say(f"{item.describe()} ({item.pushed_bytes:,} bytes sent in all)")
    if failed:
        why = sorted({m.not_sent or "closed by the server" for m in refused})
        names = ", ".join(m.name for m in refused)
        raise CastroomError(f"not synced with {_strip_token(url)}: {names}: {'; '.join(why)}")
    served = [m.production_id for m in moved if m.served]
    if (media != "none" or fetch) and served:
        mover = live_media(workspace, url, lambda: served, token, ssl_ctx, say, media, timeout)
        mover.once(served, fetch)
    return moved


def sync_hocuspocus_live(
    workspace: Workspace,
    url: str,
    *,
    token: str | None = None,
    productions: list[str] | None = None,
    echo: Echo | None = None,
    cacert: str | Path | None = None,
    duration: float | None = None,
    max_attempts: int | None = None,
    timeout: float = TIMEOUT,
    media: str = "eager",
) -> None:
    """Stay connected (until ``duration`` seconds pass, or Ctrl-C) over one socket,
    reconnecting with backoff; ``max_attempts`` bounds consecutive failed attempts. With
    a castroom server, the blobs the documents refer to move over HTTP beside it
    (``media``: none, eager or all; :mod:`castroom.sync.live_media`)."""
    say: Echo = echo or (lambda _line: None)
    ids = _production_ids(workspace, productions)
    ssl_ctx = tls_context(cacert)
    base = _strip_token(url)

    async def once() -> None:
        client = HocuspocusClient(
            workspace, url, ids, token=token, echo=say, ssl_ctx=ssl_ctx, timeout=timeout
        )
        await client.open()
        try:
            await client.handshake()
            client.adopt()
            for item in client.results():
                if not item.served:
                    say(f"{item.name}: not kept live ({item.not_sent or 'closed'})")
            await client.pump()
        finally:
            with contextlib.suppress(*_NETWORK_ERRORS):
                await client.leave()

    async def main() -> None:
        retries = Retries(max_attempts)
        while True:
            started = time.monotonic()
            try:
                await once()
                reason = "connection closed"
            except _NETWORK_ERRORS as exc:
                reason = _describe(exc)
            delay = retries.delay(started, reason, base)
            say(f"{reason}; reconnecting in {delay:.1f}s")
            await asyncio.sleep(delay)

    async def with_media() -> None:
        if media == "none":
            await main()
            return
        blobs = live_media(workspace, url, lambda: ids, token, ssl_ctx, say, media, timeout)
        mover = asyncio.create_task(blobs.run())
        try:
            await main()
        finally:
            mover.cancel()
            await asyncio.gather(mover, return_exceptions=True)

    async def bounded() -> None:
        async with fresh_read_copies(workspace):
            if duration is None:
                await with_media()
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(with_media(), duration)

    say(f"live: {len(ids)} production(s) with {base} over Hocuspocus (Ctrl-C to stop)")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(bounded())
