"""Media beside a WebSocket sync: the blobs a y-websocket or Hocuspocus session's
documents refer to, moved over HTTP beside the socket (``castroom sync ws://…``, one-shot
or ``--live``, in both modes).

A WebSocket carries the documents; the blobs travel as a one-shot HTTP sync moves them
(:func:`castroom.sync.media_client.transfer`: batched fetches, each blob checked against
its hash and size, what the server lacks sent with a write token). A one-shot sync makes
one round once its documents are in (:meth:`LiveMedia.once`). A live one listens
(:meth:`LiveMedia.run`): when a change touches an entity's ``media`` (a peer's attach
arriving, a local attach, a restore), it waits a moment for the rest of a burst, works
out what is referenced on the event loop (the documents live there), and moves the blobs
in a worker thread. A failed round is retried with backoff, at most ``MAX_FAILURES``
times in a row; then it waits for the next change. A server that serves no media (a
plain y-websocket relay, a stock Hocuspocus) has nowhere to put blobs: that is said once
and it is left alone.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from castroom.core import media
from castroom.core.document import CREATED, UNLISTED, Changes
from castroom.core.errors import CastroomError

from . import media_client

if TYPE_CHECKING:
    from castroom.core.workspace import StoredProduction, Workspace

#: Seconds to let a burst of changes settle before a round.
SETTLE = 0.2
#: How often (seconds) to look for live productions not listened to yet (adopted since).
LOOK_EVERY = 1.0
#: Failed rounds in a row before waiting for the next change.
MAX_FAILURES = 5
#: Seconds before asking again for blobs the server lacks too (a peer's upload follows
#: its document update); after these, the next change asks.
ABSENT_WAITS = (1.0, 2.0, 4.0, 8.0, 15.0, 30.0, 30.0, 30.0)
#: The entity fields whose change may mean new blobs to move (a new entity, a merge too
#: large to list its fields, its media, a restore).
MEDIA_FIELDS = frozenset({"media", "deleted", CREATED, UNLISTED})
_OWNERS = frozenset(cls.collection for cls in media.OWNERS.values())

Say = Callable[[str], Any]


def media_base(url: str) -> str:
    """The HTTP address of the server behind a sync URL: ``ws://host:port/sync`` or
    ``.../hocuspocus`` -> ``http://host:port``; an http(s) URL keeps its path prefix."""
    parts = urlsplit(url)
    scheme = {"ws": "http", "wss": "https"}.get(parts.scheme, parts.scheme)
    path = parts.path.rstrip("/")
    for tail in ("/sync", "/hocuspocus"):
        path = path.removesuffix(tail)
    return urlunsplit((scheme, parts.netloc, path, "", ""))


def touches_media(changes: Changes) -> bool:
    """Whether a change may refer to blobs this side or the server lacks."""
    return any(
        collection in _OWNERS and not fields.isdisjoint(MEDIA_FIELDS)
        for (collection, _id), fields in changes.items()
    )


class LiveMedia:
    """Moves the blobs of the productions ``live()`` names while a live sync runs."""

    def __init__(
        self,
        workspace: Workspace,
        url: str,
        live: Callable[[], Iterable[str]],
        *,
        token: str | None,
        headers: dict[str, str],
        verify: Any,
        say: Say,
        mode: str = "eager",
        timeout: float = 30.0,
    ) -> None:
        self.workspace = workspace
        self.base = media_base(url)
        self.live = live
        self.mode = mode
        self.say = say
        auth = {"Authorization": f"Bearer {token}"} if token else {}
        self._client_options = dict(
            base_url=self.base, headers={**headers, **auth}, verify=verify, timeout=timeout
        )
        self._due = asyncio.Event()
        self._listening: dict[str, tuple[StoredProduction, Callable[..., None]]] = {}
        self._refs = media.RefCache()
        self._there: set[str] = set()
        #: Whether the token may send (learnt from the server's listing on the first round).
        self._scope: str | None = None
        #: Why this session moves no media (the server serves none), once known.
        self.off: str | None = None
        self.rounds = 0
        from .client import Backoff  # client imports this module

        self._backoff = Backoff()
        self._failures = 0
        #: Follow-up rounds made for blobs on neither side yet (see ABSENT_WAITS).
        self._waited = 0

    def _changed(self, update: bytes, origin: str, changes: Changes) -> None:
        if touches_media(changes):
            self._due.set()

    def _listen(self) -> None:
        """Listen to live productions held here that are not listened to yet; each new
        one is due a round (what it refers to may be missing on either side)."""
        here = {pid for pid, _title in self.workspace.productions()}
        for pid in self.live():
            if pid in here and pid not in self._listening:
                production = self.workspace.production(pid)
                production.update_listeners.append(self._changed)
                self._listening[pid] = (production, self._changed)
                self._due.set()

    def close(self) -> None:
        for production, listener in self._listening.values():
            with contextlib.suppress(ValueError):
                production.update_listeners.remove(listener)
        self._listening.clear()

    async def run(self) -> None:
        """Until cancelled (or the server turns out to serve no media)."""
        try:
            with httpx.Client(**self._client_options) as client:  # type: ignore[arg-type]
                while self.off is None:
                    if await self._wait_due():
                        await self._attempt(client)
        finally:
            self.close()

    async def _wait_due(self) -> bool:
        """Whether a round is due (after letting a burst settle); False after LOOK_EVERY
        seconds with nothing due."""
        self._listen()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._due.wait(), LOOK_EVERY)
        if not self._due.is_set():
            return False
        await asyncio.sleep(SETTLE)
        self._due.clear()
        return True

    async def _attempt(self, client: httpx.Client) -> None:
        """One round; a failure is retried with backoff (MAX_FAILURES in a row at most),
        and blobs on neither side yet are asked for again a little later (a peer's
        upload may still be on its way: its document update came first)."""
        try:
            absent = await self._round(client)
        except (httpx.HTTPError, CastroomError, OSError) as exc:
            self._failures += 1
            why = _describe(exc, self.base)
            if self._failures >= MAX_FAILURES:
                self.say(f"media: {why}; trying again at the next change")
                self._failures = 0
                return
            delay = self._backoff.next()
            self.say(f"media: {why}; retrying in {delay:.1f}s")
            self._later(delay)
            return
        self._failures = 0
        self._backoff.reset()
        if not absent:
            self._waited = 0
        elif self._waited < len(ABSENT_WAITS):
            self._later(ABSENT_WAITS[self._waited])
            self._waited += 1

    def _later(self, delay: float) -> None:
        asyncio.get_running_loop().call_later(delay, self._due.set)

    async def _round(self, client: httpx.Client) -> int:
        """Move what is due; the number of wanted blobs the server lacks too."""
        pids = [pid for pid in self._listening if pid in self._live_now()]
        if not pids:
            return 0
        # On the loop: the documents are read where the live sessions write them.
        needs = self._refs.needs(self.workspace, pids)
        moved = await asyncio.to_thread(self._move, client, needs)
        self.rounds += 1
        if moved is None:
            return 0
        if line := moved.describe():
            self.say(line)
        return moved.absent

    def _live_now(self) -> set[str]:
        return set(self.live())

    def _move(
        self,
        client: httpx.Client,
        needs: dict[str, media.BlobNeed],
        also: frozenset[str] = frozenset(),
    ) -> media_client.MediaMoved | None:
        if self._scope is None:
            self._scope = self._server_scope(client)
            if self._scope is None:
                return None
        return media_client.transfer(
            client,
            self.workspace,
            needs,
            mode=self.mode,
            send=self._scope == "write",
            there=self._there,
            also=also,
        )

    def _server_scope(self, client: httpx.Client) -> str | None:
        """The token's scope, from the server's listing; None (and :attr:`off` set, said
        once) when the server is not a castroom server."""
        response = client.get("/productions")
        if response.status_code in (401, 403) or response.status_code >= 500:
            media_client.raise_for(response)  # worth trying again (a token renewed, a restart)
        try:
            listing = response.json() if response.status_code == 200 else None
        except ValueError:
            listing = None
        if not isinstance(listing, dict) or "productions" not in listing:
            self.off = (
                f"{self.base} is not a castroom server, so it holds no files: attached files"
                " were not moved (sync with castroom serve, a shared folder or a bundle)"
            )
            self.say(f"media: {self.off}")
            return None
        return str(listing.get("scope", "read"))

    def once(
        self, production_ids: list[str], fetch: list[str] | None = None
    ) -> media_client.MediaMoved | None:
        """A one-shot sync's round, once its documents are in: what ``production_ids``
        refer to, both ways (one line says what moved), and the files ``fetch`` names
        whatever the mode (media_client.named). None when they refer to no file, or the
        server serves none (said once). Raises CastroomError when the server cannot be
        reached or a file is refused every time."""
        also = media_client.named(self.workspace, production_ids, fetch or [])
        needs = self._refs.needs(self.workspace, production_ids)
        if not needs or self.off is not None:
            return None
        try:
            with httpx.Client(**self._client_options) as client:  # type: ignore[arg-type]
                moved = self._move(client, needs, also)
        except httpx.HTTPError as exc:
            raise CastroomError(f"media: {_describe(exc, self.base)}") from None
        if moved is not None and (line := moved.describe()):
            self.say(line)
        return moved


def _describe(exc: Exception, base: str) -> str:
    if isinstance(exc, httpx.TimeoutException):
        return f"{base} did not answer in time"
    if isinstance(exc, httpx.HTTPError):
        return f"cannot reach {base}: {exc}"
    if isinstance(exc, OSError):  # this side's disk (full, read-only): the session goes on
        return f"cannot store a file here: {exc.strerror or exc}"
    return str(exc)
