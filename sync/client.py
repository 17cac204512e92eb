"""``castroom sync URL``: pull and push a workspace's productions with a peer.

Synchronous entry points (the asyncio code stays in this module):

- :func:`sync_http` one-shot over HTTP (httpx) with ``castroom serve``: every production
  the token reaches is pulled (new ones adopted) and pushed back; local productions the
  server lacks are pushed when the token may write everywhere. Everything is fetched and
  checked (every merge rehearsed on a scratch copy) before anything is merged, so an
  unreachable or misbehaving peer changes nothing.
- :func:`sync_websocket` one-shot over plain y-websocket (``ws://`` / ``wss://``): any
  y-websocket-compatible relay, one production per room ``URL/{production_id}``, confirmed
  by comparing state vectors both ways after the exchange (:mod:`castroom.sync.confirm`).
  Hocuspocus servers: :mod:`castroom.sync.hocuspocus_client`.
- :func:`sync_live` stays connected over WebSocket (the ``websockets`` package), forwards
  local edits (and other processes' commits on this workspace) as they happen, applies
  the peers' edits, reconnects with backoff after a drop, and shows who else is connected.
  Against ``castroom serve`` it re-lists the server's productions every few seconds and
  goes live on new ones too.

Every network wait is bounded by a timeout.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import random
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit, urlunsplit

import httpx
import websockets
from websockets.asyncio.client import ClientConnection

from castroom.core import yupdate
from castroom.core.crdt import Awareness, awareness_for
from castroom.core.document import CastDocument, Changes, production_in
from castroom.core.errors import BadUpdate, CastroomError
from castroom.core.workspace import Identity, StoredProduction, Workspace

from . import confirm, media_client, protocol
from .live_media import LiveMedia
from .read_copies import patch_in_background

Echo = Callable[[str], Any]
TIMEOUT = 30.0
#: Reconnect delays: first, growth factor, cap (seconds); each gets up to 25% jitter.
BACKOFF = (0.25, 2.0, 10.0)
POLL_INTERVAL = 0.05
AWARENESS_RENEW = 15.0
#: Live mode re-lists the server's productions this often (seconds), to go live on ones
#: created there (or newly reachable by the token) since it started.
DISCOVER_INTERVAL = 5.0


@dataclass
class Moved:
    """What one sync did to one production."""

    production_id: str
    title: str = ""
    pulled_bytes: int = 0
    pulled_changes: int = 0  # entities changed here
    pushed_bytes: int = 0
    pushed_changes: int = 0  # entities changed there (as the server reports it)
    created_here: bool = False
    created_there: bool = False
    not_sent: str = ""  # why local edits stayed here, if they did
    served: bool = True  # whether the server holds it now (only those can go live)

    @property
    def name(self) -> str:
        return f"{self.title or '?'} ({short_id(self.production_id)})"

    def describe(self) -> str:
        name = self.name
        if self.created_here:
            return f"{name}: new here, pulled {self.pulled_bytes:,} bytes"
        if self.created_there:
            return f"{name}: new on the server, pushed {self.pushed_bytes:,} bytes"
        parts = []
        if self.pulled_changes:
            parts.append(f"pulled {_n(self.pulled_changes)} ({self.pulled_bytes:,} bytes)")
        if self.pushed_changes:
            parts.append(f"pushed {_n(self.pushed_changes)} ({self.pushed_bytes:,} bytes)")
        if self.not_sent:
            parts.append(f"local edits not sent ({self.not_sent})")
        return f"{name}: {', '.join(parts) if parts else 'up to date'}"


def short_id(production_id: str) -> str:
    """A short label for an id. Ids are ULIDs, whose first characters are the creation
    time (productions made the same day share them), so the random tail is shown."""
    return production_id if len(production_id) <= 8 else f"...{production_id[-8:]}"


def _n(count: int) -> str:
    return f"{count} change{'s' if count != 1 else ''}"


def is_websocket_url(url: str) -> bool:
    return urlsplit(url).scheme in ("ws", "wss")


def is_http_url(url: str) -> bool:
    return urlsplit(url).scheme in ("http", "https")


def http_base(url: str) -> str:
    """``http://host:port`` from what a person typed (tolerates a trailing ``/sync``)."""
    parts = urlsplit(url)
    path = parts.path.rstrip("/").removesuffix("/sync")
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def websocket_base(url: str) -> str:
    """The y-websocket server URL (rooms are ``{base}/{production_id}``)."""
    parts = urlsplit(url)
    if parts.scheme in ("http", "https"):
        base = urlsplit(http_base(url))
        scheme = "wss" if parts.scheme == "https" else "ws"
        return urlunsplit((scheme, base.netloc, base.path + "/sync", "", ""))
    return urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/"), parts.query, ""))


def room_url(base: str, production_id: str) -> str:
    """The room's URL. The token is never added to it: it travels in the Authorization
    header, which (unlike a URL) no relay or proxy writes to its access log. A query the
    user typed into the URL is kept."""
    parts = urlsplit(base)
    return urlunsplit(
        (parts.scheme, parts.netloc, f"{parts.path}/{quote(production_id)}", parts.query, "")
    )


def tls_context(cacert: str | Path | None) -> ssl.SSLContext | None:
    """A context trusting ``cacert`` (e.g. a self-signed server certificate)."""
    if cacert is None:
        return None
    try:
        return ssl.create_default_context(cafile=str(cacert))
    except (OSError, ssl.SSLError) as exc:
        raise CastroomError(f"cannot load CA certificate {cacert}: {exc}") from None


def _peer_label(url: str) -> str:
    return f"peer:{urlsplit(url).netloc}"


# -- one-shot over HTTP ----------------------------------------------------------------------


class Unreachable(CastroomError):
    """The peer could not be reached (or answered "unavailable"): worth retrying later."""


class _Http:
    """A small httpx wrapper turning transport and HTTP failures into one clear line."""

    def __init__(
        self, base: str, token: str | None, identity: Identity, verify: Any, timeout: float
    ):
        headers = _identity_headers(identity)
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self.base = base
        self.client = httpx.Client(base_url=base, headers=headers, verify=verify, timeout=timeout)

    def close(self) -> None:
        self.client.close()

    def request(self, method: str, path: str, content: bytes | None = None) -> httpx.Response:
        try:
            response = self.client.request(method, path, content=content)
        except httpx.TimeoutException:
            raise Unreachable(f"{self.base} did not answer in time") from None
        except httpx.HTTPError as exc:
            raise Unreachable(f"cannot reach {self.base}: {exc}") from None
        if response.status_code in (502, 503, 504):  # a proxy in front of a restarting server
            raise Unreachable(f"{self.base} is unavailable ({response.status_code})")
        if response.status_code >= 400:
            try:
                detail = response.json().get("error") or response.text
            except ValueError:
                detail = response.text.strip() or response.reason_phrase
            raise CastroomError(f"{self.base} refused ({response.status_code}): {detail}")
        return response


@dataclass
class _Listing:
    """``GET /productions``: what the token reaches."""

    scope: str
    remote: dict[str, str]  # id -> title
    all_productions: bool  # the token may add productions to the server

    @classmethod
    def fetch(cls, http: _Http) -> _Listing:
        try:
            listing = http.request("GET", "/productions").json()
        except CastroomError as exc:
            if "(404)" in str(exc) and urlsplit(http.base).path:
                # e.g. http://host:8765/sync/PRODUCTION: the server's address is enough.
                parts = urlsplit(http.base)
                root = urlunsplit((parts.scheme, parts.netloc, "", "", ""))
                raise CastroomError(
                    f"no castroom server at {http.base}: give the server's address ({root})"
                    " and pick a production with --production"
                ) from None
            raise
        return cls(
            scope=listing.get("scope", "read"),
            remote={p["id"]: p.get("title", "") for p in listing.get("productions", [])},
            all_productions=bool(listing.get("all_productions")),
        )


@dataclass
class _Fetched:
    """One production's pull: the update the server sent, and the server's state vector."""

    update: bytes
    server_sv: bytes


def sync_http(
    workspace: Workspace,
    url: str,
    *,
    token: str | None = None,
    production: str | None = None,
    echo: Echo | None = None,
    cacert: str | Path | None = None,
    timeout: float = TIMEOUT,
    media: str = "eager",
    fetch: list[str] | None = None,
) -> list[Moved]:
    """One-shot pull and push with ``castroom serve`` at ``url``, then the media the
    synced productions refer to (``media``: none, eager or all; ``fetch``: files named,
    fetched whatever the mode; see media_client.py).
    Returns what moved (and echoes one line per production). Raises CastroomError
    (nothing changed here) when the server is unreachable or refuses, or sends an update
    that does not merge."""
    base = http_base(url)
    # Plain http has no certificate to check (and skipping the CA bundle saves ~0.2 s).
    verify: Any = tls_context(cacert) or base.startswith("https:")
    http = _Http(base, token, workspace.identity, verify, timeout)
    try:
        listing = _Listing.fetch(http)
        local = dict(workspace.productions())
        wanted = _pick(production, listing.remote, local)
        # Fetch and check everything before merging anything.
        fetched = _fetch(http, workspace, [p for p in wanted if p in listing.remote], local)
        _check(workspace, fetched, local, base)
        moved = _merge(workspace, fetched, listing.remote, local, base)
        _push(http, workspace, wanted, fetched, moved, listing, local)
        if production is not None and all(not m.served for m in moved.values()):
            # The one production asked for did not sync at all: that is a failure.
            [item] = moved.values()
            title = item.title or local.get(item.production_id, "")
            raise CastroomError(f"{title or item.production_id} not synced: {item.not_sent}")
        for item in moved.values():
            if not item.title:
                item.title = dict(workspace.productions()).get(item.production_id, "")
            if echo:
                echo(item.describe())
        if echo and not moved:
            echo("nothing to sync: the token reaches no production")
        _exchange_media(http, workspace, moved, listing, media, echo, fetch or [])
        return list(moved.values())
    finally:
        http.close()


def _fetch(
    http: _Http, workspace: Workspace, pids: list[str], local: dict[str, str]
) -> dict[str, _Fetched]:
    """Pull each production: what the server has that we lack, and its state vector."""
    fetched: dict[str, _Fetched] = {}
    for pid in pids:
        since = workspace.production(pid).doc.state_vector() if pid in local else b""
        response = http.request("POST", f"/sync/{quote(pid)}/pull", since)
        try:
            encoded = response.headers.get(protocol.STATE_VECTOR_HEADER)
            if encoded is None:  # too big for a header
                server_sv = http.request("GET", f"/sync/{quote(pid)}/state").content
            else:
                server_sv = base64.b64decode(encoded, validate=True)
            protocol.check_state_vector(server_sv)
        except (protocol.ProtocolError, ValueError) as exc:
            raise CastroomError(f"{http.base} sent a bad state vector for {pid}: {exc}") from None
        fetched[pid] = _Fetched(response.content, server_sv)
    return fetched


def _check(
    workspace: Workspace, fetched: dict[str, _Fetched], local: dict[str, str], base: str
) -> None:
    """Rehearse every merge on a scratch copy, so that no production changes unless every
    update merges: a peer's bad answer for one production must not leave another merged.
    A production new here is always checked to be the one asked for. With one production
    to merge into, the merge itself is the rehearsal (a failed merge rolls back whole)."""
    pending = [p for p, i in fetched.items() if p not in local or i.update != protocol.EMPTY_UPDATE]
    for pid in pending:
        item = fetched[pid]
        if pid in local and len(pending) == 1:
            continue
        held = workspace.production(pid).doc.encode_update() if pid in local else None
        try:
            protocol.guard_update(item.update)
            found = production_in(item.update, held)
        except BadUpdate as exc:
            raise CastroomError(f"{base} sent a bad update for {pid}: {exc}") from None
        if pid not in local and found != pid:
            raise CastroomError(f"{base} sent an update that does not hold production {pid}")


def _merge(
    workspace: Workspace,
    fetched: dict[str, _Fetched],
    remote: dict[str, str],
    local: dict[str, str],
    base: str,
) -> dict[str, Moved]:
    """Merge the checked updates durably (adopting productions new here)."""
    device = _peer_label(base)
    moved: dict[str, Moved] = {}
    for pid, item in fetched.items():
        update = item.update
        entry = moved[pid] = Moved(pid, remote[pid], pulled_bytes=len(update))
        if pid in local:
            if update != protocol.EMPTY_UPDATE:
                try:
                    changes = protocol.merge_into(workspace.production(pid), update, device=device)
                except protocol.ProtocolError as exc:
                    raise CastroomError(f"{base} sent a bad update for {pid}: {exc}") from None
                entry.pulled_changes = len(changes)
        else:
            _, changes = workspace.adopt(pid, update, origin="sync", device=device)
            entry.created_here = True
            entry.pulled_changes = len(changes)
    return moved


def _push(
    http: _Http,
    workspace: Workspace,
    wanted: list[str],
    fetched: dict[str, _Fetched],
    moved: dict[str, Moved],
    listing: _Listing,
    local: dict[str, str],
) -> None:
    """Push what the server lacks (or say why it stays here)."""
    for pid in wanted:
        stored = workspace.production(pid)
        if pid in fetched:
            server_sv = fetched[pid].server_sv
            diff = stored.doc.encode_update(server_sv or None)
            if diff == protocol.EMPTY_UPDATE:
                continue
            if listing.scope != "write":
                if yupdate.ahead(stored.doc.state_vector(), server_sv):
                    moved[pid].not_sent = "read-only token"
                continue
            answer = http.request("POST", f"/sync/{quote(pid)}/push", diff).json()
            moved[pid].pushed_bytes = len(diff)
            moved[pid].pushed_changes = int(answer.get("changed", 0))
        elif listing.scope == "write" and listing.all_productions:
            full = stored.doc.encode_update()
            http.request("POST", f"/sync/{quote(pid)}/push", full)
            moved[pid] = Moved(pid, local[pid], pushed_bytes=len(full), created_there=True)
        else:
            # The server may well hold it: a token limited to one production sees no other.
            why = (
                "this token is limited to another production"
                if not listing.all_productions
                else "a read-only token cannot add productions"
            )
            moved[pid] = Moved(pid, local[pid], not_sent=why, served=False)


def _exchange_media(
    http: _Http,
    workspace: Workspace,
    moved: dict[str, Moved],
    listing: _Listing,
    mode: str,
    echo: Echo | None,
    fetch: list[str],
) -> None:
    """After the documents: the blobs they refer to, both ways (media_client.py)."""
    synced = [
        pid
        for pid, item in moved.items()
        if item.served and (pid in listing.remote or item.created_there)
    ]
    also = media_client.named(workspace, synced, fetch)
    try:
        done = media_client.exchange(
            http.client, workspace, synced, mode=mode, send=listing.scope == "write", also=also
        )
    except httpx.TimeoutException:
        raise Unreachable(f"{http.base} did not answer in time (media)") from None
    except httpx.HTTPError as exc:
        raise Unreachable(f"cannot reach {http.base} (media): {exc}") from None
    line = done.describe()
    if echo and line:
        echo(line)


def _pick(ref: str | None, remote: dict[str, str], local: dict[str, str]) -> list[str]:
    """The productions to sync: all the server shows and all local ones, or the one named."""
    everything = {**local, **remote}
    if ref is None:
        return list(dict.fromkeys([*remote, *local]))
    exact = [pid for pid in everything if pid == ref]
    matches = exact or [
        pid
        for pid, title in everything.items()
        if pid.startswith(ref) or title.casefold() == ref.casefold()
    ]
    if len(matches) != 1:
        what = "matches several productions" if matches else "matches no production here or there"
        raise CastroomError(f"--production {ref!r} {what}")
    return matches


# -- over WebSocket --------------------------------------------------------------------------


class _Target:
    """The production a WebSocket connection syncs. A production not yet in the workspace
    (first sync through a plain relay) is held in memory and adopted once the relay's
    step 2 shows it."""

    def __init__(self, workspace: Workspace, production_id: str) -> None:
        self.workspace = workspace
        self.id = production_id
        if production_id in dict(workspace.productions()):
            self.production = workspace.production(production_id)
            self.adopted = True
        else:
            self.production = StoredProduction(workspace, None, CastDocument())
            self.adopted = False

    def settle(self, device: str) -> bool:
        """After the peer's step 2: adopt a held production. False if the peer had none."""
        if self.adopted:
            return True
        if self.production.doc.production_id != self.id:
            return False
        held = self.production.doc.encode_update()
        self.production, _ = self.workspace.adopt(self.id, held, origin="sync", device=device)
        self.adopted = True
        return True


def _presence_state(workspace: Workspace) -> dict[str, Any]:
    identity = workspace.identity
    return {
        "user": {
            "name": identity.member,
            "device": identity.device_name,
            "device_id": identity.device_id,
            "app": "castroom",
        }
    }


def describe_presence(states: dict[int, dict[str, Any]], own: int) -> list[str]:
    """'Ada (laptop-2)' for every other connected client, sorted."""
    out = []
    for client_id, state in states.items():
        if client_id == own or state is None:
            continue  # a stock Yjs client with no user fields is still someone connected
        user = state.get("user")
        if not isinstance(user, dict):
            user = {}
        name = str(user.get("name") or f"client {client_id}")
        device = user.get("device")
        out.append(f"{name} ({device})" if device else name)
    return sorted(out)


@dataclass
class _Connection:
    """One live connection's state (rebuilt on every reconnect)."""

    conn: ClientConnection
    session: protocol.SyncSession
    awareness: Awareness
    outbox: asyncio.Queue[bytes] = field(default_factory=asyncio.Queue)
    presence: list[str] | None = None
    received_bytes: int = 0
    received_changes: int = 0
    sent_bytes: int = 0
    denied: str | None = None  # the peer refused our writes (a read-only token)

    async def flush(self) -> None:
        while not self.outbox.empty():
            frame = self.outbox.get_nowait()
            self.sent_bytes += len(frame)
            await self.conn.send(frame)


class Backoff:
    """Exponential reconnect delays with jitter, reset after a good connection."""

    def __init__(
        self, first: float = BACKOFF[0], factor: float = BACKOFF[1], cap: float = BACKOFF[2]
    ):
        self.first, self.factor, self.cap = first, factor, cap
        self.delay = first

    def next(self) -> float:
        delay = self.delay * (1 + random.random() / 4)
        self.delay = min(self.cap, self.delay * self.factor)
        return delay

    def reset(self) -> None:
        self.delay = self.first


class Retries:
    """Consecutive failed connection attempts, with backoff between them; a connection that
    lasted a while resets both."""

    def __init__(self, max_attempts: int | None) -> None:
        self.backoff = Backoff()
        self.failures = 0
        self.max_attempts = max_attempts

    def delay(self, started: float, reason: str, where: str) -> float:
        """The wait before the next attempt, or CastroomError when out of attempts."""
        if time.monotonic() - started > 5:
            self.backoff.reset()
            self.failures = 0
        self.failures += 1
        if self.max_attempts is not None and self.failures >= self.max_attempts:
            raise CastroomError(f"gave up on {where} after {self.failures} attempts: {reason}")
        return self.backoff.next()


#: Close codes for a refusal (token revoked, not allowed): reconnecting would only be
#: refused again.
REFUSED_CLOSE_CODES = frozenset({4401, 4403})


class _Fatal(CastroomError):
    """A refusal that retrying will not fix (bad token, no such production)."""


async def _connect(
    url: str, headers: dict[str, str], ssl_ctx: ssl.SSLContext | None
) -> ClientConnection:
    try:
        return await websockets.connect(
            url,
            additional_headers=headers,
            ssl=ssl_ctx if url.startswith("wss:") else None,
            max_size=protocol.MAX_MESSAGE,
            open_timeout=10,
            close_timeout=5,
            proxy=None,
            compression=None,
        )
    except websockets.InvalidStatus as exc:
        status = exc.response.status_code
        body = exc.response.body.decode("utf-8", "replace") if exc.response.body else ""
        with contextlib.suppress(ValueError, AttributeError):
            import json

            body = json.loads(body).get("error", body)
        message = f"{_strip_token(url)} refused ({status}): {body or exc}"
        if status in (401, 403, 404):
            raise _Fatal(message) from None
        raise ConnectionError(message) from None


def url_token(url: str) -> str | None:
    """The ``token`` a sync URL carries in its query (``…?token=SECRET``), if any."""
    given = parse_qs(urlsplit(url).query).get("token")
    return given[-1] if given else None


def _strip_token(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


async def _run_connection(
    target: _Target,
    url: str,
    headers: dict[str, str],
    ssl_ctx: ssl.SSLContext | None,
    echo: Echo,
    *,
    live: bool,
    timeout: float,
) -> _Connection:
    """One connection: handshake, then (live) relay both ways until it drops."""
    workspace = target.workspace
    conn = await _connect(url, headers, ssl_ctx)
    device = _peer_label(url)
    session = protocol.SyncSession(target.production, device=device)
    awareness = awareness_for(target.production.doc)
    awareness.set_local_state(_presence_state(workspace))
    state = _Connection(conn, session, awareness)
    own = awareness.client_id

    def forward(update: bytes, origin: str, changes: Changes) -> None:
        # Only what was written here (or by another process on this workspace): updates
        # that came from the peer are not echoed back.
        if origin in ("local", "storage") and update != protocol.EMPTY_UPDATE:
            state.outbox.put_nowait(protocol.update_frame(update))

    listener_on: StoredProduction | None = None
    answered_step1 = False
    started_with = target.production.doc.state_vector()
    announced = b"\x00"
    try:
        for frame in session.opening():
            await conn.send(frame)
        await conn.send(_awareness_frame(awareness, [own]))
        deadline = time.monotonic() + timeout
        # Handshake: our step 1 answered (their step 2), and theirs answered by us.
        while not (session.synced and answered_step1):
            try:
                received = await asyncio.wait_for(conn.recv(), deadline - time.monotonic())
            except TimeoutError:
                raise TimeoutError(_handshake_late(url, timeout, state, answered_step1)) from None
            outcome = _receive(state, received, echo)
            await state.flush()
            if outcome.message.sync_type is protocol.SyncType.STEP1:
                answered_step1 = True
                announced = outcome.message.payload
        if not live:
            await _confirm(state, url, headers, ssl_ctx, echo, started_with, announced)
        if not target.settle(device):
            raise _Fatal(f"{_strip_token(url)} has no production {target.id} (empty room)")
        if session.production is not target.production:
            # Adopted just now: later updates go to the stored production.
            session.production = target.production
        if not live:
            await conn.send(_awareness_frame_leaving(awareness, own))
            await conn.close()
            return state
        production = target.production
        production.update_listeners.append(forward)
        listener_on = production
        _show_presence(state, echo)
        await _pump(state, production, echo)
        return state
    finally:
        if listener_on is not None:
            with contextlib.suppress(ValueError):
                listener_on.update_listeners.remove(forward)
        await conn.close()


def _handshake_late(url: str, timeout: float, state: _Connection, answered_step1: bool) -> str:
    """What a handshake that timed out was waiting for, and a hint when the peer sent
    nothing at all (a y-websocket relay sends its step 1 at once; Hocuspocus waits for an
    auth message first and stays silent)."""
    waited = [] if state.session.synced else ["its sync step 2 (the answer to ours)"]
    if not answered_step1:
        waited.append("its sync step 1")
    line = f"{_strip_token(url)} did not answer in {timeout:g} s; waited for {' and '.join(waited)}"
    if state.received_bytes == 0:
        line += (
            ". It sent nothing at all, as a Hocuspocus server does to y-websocket frames:"
            " if it is one, use --protocol hocuspocus with its address (ws://HOST:PORT)"
        )
    return line


async def _confirm(
    state: _Connection,
    url: str,
    headers: dict[str, str],
    ssl_ctx: ssl.SSLContext | None,
    echo: Echo,
    started_with: bytes,
    announced: bytes,
) -> None:
    """One-shot: before saying "up to date", make sure both sides hold the same edits
    (confirm.py). A relay whose first state vector lacked edits held here, or that showed
    an empty room, may still be loading its copy: listen a little for it first."""
    production = state.session.production
    if confirm.maybe_loading(started_with, announced) or not production.doc.production_id:
        end = time.monotonic() + confirm.LAZY_WAIT
        with contextlib.suppress(TimeoutError):
            while (left := end - time.monotonic()) > 0:
                outcome = _receive(state, await asyncio.wait_for(state.conn.recv(), left), echo)
                await state.flush()
                if outcome.update is not None:
                    break  # the relay has sent what it loaded
    deadline = time.monotonic() + confirm.WAIT
    while True:
        theirs = await _fresh_state_vector(state, url, headers, ssl_ctx, echo)
        gap = confirm.gap(
            production.doc.state_vector(), theirs, ours_may_lead=state.denied is not None
        )
        if not gap:
            return
        if time.monotonic() + confirm.RETRY > deadline:
            raise CastroomError(
                f"not in sync with {_strip_token(url)} after {confirm.WAIT:g} s: {gap}"
            )
        await asyncio.sleep(confirm.RETRY)


async def _fresh_state_vector(
    state: _Connection,
    url: str,
    headers: dict[str, str],
    ssl_ctx: ssl.SSLContext | None,
    echo: Echo,
) -> bytes:
    """The peer's state vector now. castroom serve answers a step 1 with its own; a stock
    relay sends its step 1 only on connecting, so a second connection asks it."""
    production = state.session.production
    await state.conn.send(protocol.step1_frame(production.doc.state_vector()))
    end = time.monotonic() + 0.5
    with contextlib.suppress(TimeoutError):
        while (left := end - time.monotonic()) > 0:
            outcome = _receive(state, await asyncio.wait_for(state.conn.recv(), left), echo)
            await state.flush()
            if outcome.message.sync_type is protocol.SyncType.STEP1:
                return outcome.message.payload
    conn = await _connect(url, headers, ssl_ctx)
    try:
        check = _Connection(conn, state.session, state.awareness)
        await conn.send(protocol.step1_frame(production.doc.state_vector()))
        async with asyncio.timeout(TIMEOUT):
            while True:
                outcome = _receive(check, await conn.recv(), echo)
                await check.flush()
                if outcome.message.sync_type is protocol.SyncType.STEP1:
                    return outcome.message.payload
    finally:
        await conn.close()


def _receive(state: _Connection, frame: Any, echo: Echo) -> protocol.Outcome:
    if isinstance(frame, str):
        raise protocol.ProtocolError("peer sent a text frame")
    outcome = state.session.receive(frame)
    state.received_bytes += len(frame)
    state.received_changes += len(outcome.changes)
    for reply in outcome.replies:
        state.outbox.put_nowait(reply)
    if outcome.awareness_entries:
        state.awareness.apply_awareness_update(outcome.message.payload, "peer")
        _show_presence(state, echo)
    if outcome.message.type is protocol.MessageType.QUERY_AWARENESS:
        state.outbox.put_nowait(_awareness_frame(state.awareness, [state.awareness.client_id]))
    if outcome.denied:
        state.denied = outcome.denied
        echo(f"the server says: {outcome.denied}")
    return outcome


def _show_presence(state: _Connection, echo: Echo) -> None:
    present = describe_presence(state.awareness.states, state.awareness.client_id)
    if present != state.presence:
        state.presence = present
        echo(f"connected with: {', '.join(present)}" if present else "no one else is connected")


def _awareness_frame(awareness: Awareness, ids: list[int]) -> bytes:
    return protocol.awareness_frame(awareness.encode_awareness_update(ids))


def _awareness_frame_leaving(awareness: Awareness, own: int) -> bytes:
    clock = awareness.meta[own]["clock"] + 1
    return protocol.awareness_frame(
        protocol.encode_awareness([protocol.AwarenessEntry(own, clock, None)])
    )


async def _pump(state: _Connection, production: StoredProduction, echo: Echo) -> None:
    """Live: send the outbox, receive frames, poll the workspace, renew presence."""
    conn = state.conn

    async def sender() -> None:
        while True:
            frame = await state.outbox.get()
            state.sent_bytes += len(frame)
            await conn.send(frame)

    async def poller() -> None:
        renew = time.monotonic() + AWARENESS_RENEW
        while True:
            await asyncio.sleep(POLL_INTERVAL)
            production.refresh()  # other processes' commits reach `forward` as "storage"
            if time.monotonic() >= renew:
                renew = time.monotonic() + AWARENESS_RENEW
                state.awareness.set_local_state(state.awareness.get_local_state())
                state.outbox.put_nowait(
                    _awareness_frame(state.awareness, [state.awareness.client_id])
                )
                _prune_presence(state, echo)

    async def receiver() -> None:
        async for frame in conn:
            outcome = _receive(state, frame, echo)
            if outcome.changes:
                echo(f"received {_n(len(outcome.changes))}")

    tasks = [asyncio.create_task(t()) for t in (sender, poller, receiver)]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            task.result()  # re-raise what ended it
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def _prune_presence(state: _Connection, echo: Echo) -> None:
    now = int(time.time() * 1000)
    stale = [
        c
        for c, meta in state.awareness.meta.items()
        if c != state.awareness.client_id and now - meta["lastUpdated"] > 2 * AWARENESS_RENEW * 1000
    ]
    if stale:
        state.awareness.remove_awareness_states(stale, "timeout")
        _show_presence(state, echo)


def _identity_headers(identity: Identity) -> dict[str, str]:
    """Who is sending: the server logs pushed updates with this device and member (the
    name percent-encoded: header values are ASCII). What we pull is logged as from the
    server's address, not its member: it bundles edits by everyone on the team."""
    return {
        protocol.DEVICE_HEADER: identity.device_id,
        protocol.MEMBER_HEADER: quote(identity.member, safe=""),
    }


def _websocket_headers(workspace: Workspace, token: str | None) -> dict[str, str]:
    headers = _identity_headers(workspace.identity)
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return headers


def _resolve_room_production(workspace: Workspace, ref: str | None) -> str:
    """For a plain relay, where nobody lists productions: a local one, or a new id."""
    try:
        return workspace.resolve_production(ref)
    except CastroomError:
        if ref:
            return ref  # not here yet: adopt it from the relay
        raise


def sync_websocket(
    workspace: Workspace,
    url: str,
    *,
    token: str | None = None,
    production: str | None = None,
    echo: Echo | None = None,
    cacert: str | Path | None = None,
    timeout: float = TIMEOUT,
    media: str = "eager",
    fetch: list[str] | None = None,
) -> Moved:
    """One-shot sync of one production through a y-websocket relay at ``url``
    (room ``{url}/{production_id}``), then, when the relay is ``castroom serve``, the
    files it refers to both ways (``media``: none, eager or all; ``fetch``: files
    named, whatever the mode; live_media.py). A relay that holds no files is said once."""
    say: Echo = echo or (lambda _line: None)
    pid = _resolve_room_production(workspace, production)
    target = _Target(workspace, pid)
    was_here = target.adopted
    url_room = room_url(websocket_base(url), pid)
    headers = _websocket_headers(workspace, token)
    label = dict(workspace.productions()).get(pid) or short_id(pid)
    ssl_ctx = tls_context(cacert)
    try:
        state = asyncio.run(
            _run_connection(
                target,
                url_room,
                headers,
                ssl_ctx,
                lambda line: say(f"{label}: {line}"),  # as live mode labels its lines
                live=False,
                timeout=timeout,
            )
        )
    except (OSError, TimeoutError, websockets.WebSocketException) as exc:
        raise CastroomError(f"cannot sync with {websocket_base(url)}: {_describe(exc)}") from None
    moved = Moved(
        pid,
        dict(workspace.productions()).get(pid, ""),
        pulled_bytes=state.received_bytes,
        pulled_changes=state.received_changes,
        pushed_bytes=state.sent_bytes,
        created_here=not was_here,
    )
    if echo:
        # Bytes on the wire include the handshake and presence, not only edits: say so
        # apart from the changes, so "up to date" never reads as contradicted.
        echo(f"{moved.describe()} ({state.sent_bytes:,} bytes sent in all)")
    if media != "none" or fetch:
        mover = live_media(workspace, url, lambda: [pid], token, ssl_ctx, say, media, timeout)
        mover.once([pid], fetch)
    return moved


def _describe(exc: BaseException) -> str:
    if isinstance(exc, websockets.ConnectionClosed):
        rcvd = exc.rcvd
        if rcvd is not None:
            known = {1001: "peer going away", 1012: "server restarting"}
            why = rcvd.reason or known.get(rcvd.code, "no reason given")
            return f"connection closed ({rcvd.code}: {why})"
        return "connection lost"
    return str(exc) or type(exc).__name__


def _first_sync(
    attempt: Callable[[], list[Moved]],
    say: Echo,
    *,
    duration: float | None,
    max_attempts: int | None,
) -> list[Moved]:
    """Live mode's opening one-shot sync, retried with backoff while the server is
    unreachable (restarting, not up yet): staying connected is the point of --live.
    A refusal (bad token, no such production) is not retried."""
    backoff = Backoff()
    deadline = None if duration is None else time.monotonic() + duration
    failures = 0
    while True:
        try:
            return attempt()
        except Unreachable as exc:
            failures += 1
            delay = backoff.next()
            out_of_time = deadline is not None and time.monotonic() + delay > deadline
            if out_of_time or (max_attempts is not None and failures >= max_attempts):
                raise CastroomError(f"gave up after {failures} attempt(s): {exc}") from None
            say(f"{exc}; retrying in {delay:.1f}s")
            time.sleep(delay)


def sync_live(
    workspace: Workspace,
    url: str,
    *,
    token: str | None = None,
    production: str | None = None,
    echo: Echo | None = None,
    cacert: str | Path | None = None,
    duration: float | None = None,
    max_attempts: int | None = None,
    timeout: float = TIMEOUT,
    discover_every: float | None = DISCOVER_INTERVAL,
    media: str = "eager",
    stop: Callable[[], bool] | None = None,
) -> None:
    """Stay connected (until ``duration`` seconds pass, ``stop()`` says so, or Ctrl-C),
    reconnecting with backoff after a drop. With an http(s) URL a one-shot sync runs
    first, then every production the token reaches is kept live over ``/sync/{id}``, and
    (unless one ``production`` was asked for) the server's list is fetched again every
    ``discover_every`` seconds so productions that appear there later go live too.
    ``max_attempts`` bounds consecutive failed connection attempts (None = keep trying).
    The blobs the live documents come to refer to move over HTTP as they do
    (``media``: none, eager or all; :mod:`castroom.sync.live_media`)."""
    say: Echo = echo or (lambda _line: None)
    if is_http_url(url):
        ids = _served_ids(
            _first_sync(
                lambda: sync_http(
                    workspace,
                    url,
                    token=token,
                    production=production,
                    echo=say,
                    cacert=cacert,
                    timeout=timeout,
                    media=media,
                ),
                say,
                duration=duration,
                max_attempts=max_attempts,
            ),
            url,
            say,
        )
    else:
        ids = [_resolve_room_production(workspace, production)]
    if not ids:
        raise CastroomError("no production to keep in sync")
    session = _LiveSession(workspace, url, token, tls_context(cacert), say, max_attempts, timeout)
    if discover_every is not None and (production is not None or not is_http_url(url)):
        discover_every = None  # one production asked for, or a relay with no listing
    say(f"live: {len(ids)} production(s) with {session.base} (Ctrl-C to stop)")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(session.run(ids, discover_every, media, duration, stop))


def _served_ids(moved: list[Moved], url: str, say: Echo) -> list[str]:
    """The productions of an opening sync that the server holds: only those can go live
    (a WebSocket to any other is refused, which would end the session for all)."""
    for item in moved:
        if not item.served:
            say(f"{item.name}: not kept live (the server does not hold it)")
    ids = [m.production_id for m in moved if m.served]
    if moved and not ids:
        raise CastroomError(f"none of these productions is on {http_base(url)}")
    return ids


class _LiveSession:
    """One ``sync --live``: a connection per production (each reconnecting on its own),
    the server's list watched for new ones, and the blobs moved as documents change."""

    def __init__(
        self,
        workspace: Workspace,
        url: str,
        token: str | None,
        ssl_ctx: ssl.SSLContext | None,
        say: Echo,
        max_attempts: int | None,
        timeout: float,
    ) -> None:
        self.workspace, self.url, self.token, self.ssl_ctx = workspace, url, token, ssl_ctx
        self.say, self.max_attempts, self.timeout = say, max_attempts, timeout
        self.base = websocket_base(url)
        self.headers = _websocket_headers(workspace, token)
        self.titles = dict(workspace.productions())
        self.running: dict[str, asyncio.Task[None]] = {}

    def go_live(self, pid: str) -> None:
        self.running[pid] = asyncio.create_task(self.keep_connected(pid))

    async def keep_connected(self, pid: str) -> None:
        """Keep ``pid`` live: reconnect with backoff after a drop, until a refusal."""
        target = _Target(self.workspace, pid)
        url_room = room_url(self.base, pid)
        label = self.titles.get(pid) or short_id(pid)

        def tell(line: str) -> None:
            self.say(f"{label}: {line}")

        retries = Retries(self.max_attempts)
        while True:
            started = time.monotonic()
            try:
                await _run_connection(
                    target,
                    url_room,
                    self.headers,
                    self.ssl_ctx,
                    tell,
                    live=True,
                    timeout=self.timeout,
                )
                reason = "connection closed"
            except (
                OSError,
                TimeoutError,
                websockets.WebSocketException,
                protocol.ProtocolError,
            ) as exc:
                reason = _describe(exc)
                closed = exc.rcvd if isinstance(exc, websockets.ConnectionClosed) else None
                if closed is not None and closed.code in REFUSED_CLOSE_CODES:
                    raise _Fatal(f"{self.base}: {reason}") from None  # retrying cannot help
            delay = retries.delay(started, reason, self.base)
            tell(f"{reason}; reconnecting in {delay:.1f}s")
            await asyncio.sleep(delay)

    async def discover(self, every: float) -> None:
        """Go live on productions the server lists that are not live yet. Quiet: a failed
        listing is skipped (the live connections already report an unreachable server),
        and each request is bounded by a timeout no longer than the interval."""
        verify: Any = self.ssl_ctx or self.url.startswith("https:")
        auth = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        async with httpx.AsyncClient(
            base_url=http_base(self.url),
            headers={**_identity_headers(self.workspace.identity), **auth},
            verify=verify,
            timeout=min(self.timeout, max(1.0, every)),
        ) as http:
            while True:
                await asyncio.sleep(every)
                try:
                    response = await http.get("/productions")
                    response.raise_for_status()
                    listed = response.json().get("productions", [])
                    new = [(str(p["id"]), str(p.get("title") or "")) for p in listed]
                except (httpx.HTTPError, ValueError, AttributeError, KeyError, TypeError):
                    continue
                for pid, title in new:
                    if pid and pid not in self.running:
                        self.titles[pid] = title
                        self.say(f"{title or short_id(pid)}: new on the server; live now")
                        self.go_live(pid)

    async def run(
        self,
        ids: list[str],
        discover_every: float | None,
        media: str,
        duration: float | None,
        stop: Callable[[], bool] | None,
    ) -> None:
        """Until ``duration`` passes or ``stop()`` is true; a task that fails ends it
        (its error raised here)."""
        for pid in ids:
            self.go_live(pid)
        helpers = [asyncio.create_task(patch_in_background(self.workspace))]
        if discover_every is not None:
            helpers.append(asyncio.create_task(self.discover(discover_every)))
        if media != "none":
            blobs = live_media(
                self.workspace,
                self.url,
                self.running.keys,
                self.token,
                self.ssl_ctx,
                self.say,
                media,
                self.timeout,
            )
            helpers.append(asyncio.create_task(blobs.run()))
        try:
            await self._watch(helpers, duration, stop)
        finally:
            tasks = [*self.running.values(), *helpers]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _watch(
        self,
        helpers: list[asyncio.Task[None]],
        duration: float | None,
        stop: Callable[[], bool] | None,
    ) -> None:
        loop = asyncio.get_running_loop()
        deadline = None if duration is None else loop.time() + duration
        # Waits are short because discover() may add connections meanwhile, which must be
        # watched too (and ``stop`` is asked between two of them).
        step = 1.0 if stop is None else 0.1
        while stop is None or not stop():
            left = step if deadline is None else min(step, deadline - loop.time())
            pending = [t for t in (*self.running.values(), *helpers) if not t.done()]
            if left <= 0 or not pending:
                return
            done, _ = await asyncio.wait(pending, timeout=left, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                task.result()  # re-raise what ended it


def live_media(
    workspace: Workspace,
    url: str,
    live: Callable[[], Any],
    token: str | None,
    ssl_ctx: ssl.SSLContext | None,
    say: Echo,
    mode: str,
    timeout: float,
) -> LiveMedia:
    """The blob mover of a live session with the server at ``url`` (live_media.py). Its
    requests go over HTTP, beside the socket: a token typed only into the socket's URL
    (``ws://HOST:PORT/sync?token=…``) is their token too."""
    return LiveMedia(
        workspace,
        url,
        live,
        token=token or url_token(url),
        headers=_identity_headers(workspace.identity),
        verify=ssl_ctx or urlsplit(url).scheme in ("https", "wss"),
        say=say,
        mode=mode,
        timeout=timeout,
    )
