"""What one peer may cost the server: connections, time, presence, log lines.

Each class holds one limit, so every endpoint (y-websocket rooms, Hocuspocus sockets,
plain HTTP) applies the same ones:

- :class:`GuardedH11Protocol` (uvicorn's h11 protocol, with a :class:`ConnectionGuard`):
  a request head must arrive within ``header_timeout``, and past ``max_connections`` the
  oldest connection still waiting for its head is dropped to make room, so half-open
  connections can neither exhaust file descriptors nor keep ``/health`` from answering.
- :class:`PeerCounts`: live peers per token and in total.
- :class:`RateLimit`: a token bucket (presence frames per peer).
- :class:`PresenceLimits`: how many awareness clients a peer may announce, how large each
  state may be, and how much presence a room holds.
"""

from __future__ import annotations

import asyncio
import math
import resource
import ssl
import time
from asyncio.sslproto import SSLProtocol
from collections.abc import Callable
from typing import Any, cast

import msgspec
from uvicorn.protocols.http.h11_impl import H11Protocol

#: File descriptors kept free of connections (the database, its WAL, logs, the listener).
FD_RESERVE = 64
#: The listen backlog, which is also how many connections asyncio accepts in one go; a
#: few such batches are accepted before the first of them reaches the guard, so the cap
#: keeps IN_FLIGHT of them spare as well.
BACKLOG = 32
IN_FLIGHT = 4 * BACKLOG
#: The largest request head (request line and headers, bytes) a connection may send: a
#: token, a device and a member name need far less. Larger ones get 400 and are closed.
MAX_REQUEST_HEAD = 16 * 1024


def connection_cap(wanted: int) -> int:
    """``wanted``, lowered so that connections can never use up the process's file
    descriptors (accepting would then fail, and /health with it)."""
    try:
        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    except (OSError, ValueError):  # pragma: no cover - not a POSIX system
        return wanted
    if soft == resource.RLIM_INFINITY:
        return wanted
    return max(8, min(wanted, soft - FD_RESERVE - IN_FLIGHT))


class ConnectionGuard:
    """Connections not yet past their request head, oldest first, and the cap."""

    def __init__(self, max_connections: int, header_timeout: float) -> None:
        self.max_connections = connection_cap(max_connections)
        self.header_timeout = header_timeout
        self.waiting: dict[GuardedH11Protocol | TlsFront, asyncio.TimerHandle] = {}
        self.dropped = 0  # connections closed by the cap or the timeout (for tests, logs)

    def arrived(self, conn: GuardedH11Protocol | TlsFront, open_connections: int) -> bool:
        """A new connection; False if it must be closed at once (every slot busy)."""
        if open_connections > self.max_connections:
            if not self.waiting:
                self.dropped += 1
                return False
            oldest = next(iter(self.waiting))
            self.drop(oldest)
        self.wait_for_head(conn)
        return True

    def handshakes(self) -> int:
        """Connections still in their TLS handshake."""
        return sum(1 for conn in self.waiting if isinstance(conn, TlsFront))

    def wait_for_head(self, conn: GuardedH11Protocol | TlsFront) -> None:
        self.done(conn)
        self.waiting[conn] = conn.loop.call_later(self.header_timeout, self.drop, conn)

    def done(self, conn: GuardedH11Protocol | TlsFront) -> None:
        timer = self.waiting.pop(conn, None)
        if timer is not None:
            timer.cancel()

    def drop(self, conn: GuardedH11Protocol | TlsFront) -> None:
        self.done(conn)
        self.dropped += 1
        if conn.transport is not None and not conn.transport.is_closing():
            conn.transport.abort()


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol under a :class:`ConnectionGuard` (``config.castroom_guard``)."""

    def __init__(self, config: Any, *args: Any, **kwargs: Any) -> None:
        super().__init__(config, *args, **kwargs)
        self.guard: ConnectionGuard = config.castroom_guard
        self._head_of: object = None  # the request scope the guard last saw
        self.tls: TlsFront | None = None  # set when TLS runs in front of it

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if self.tls is not None:
            self.guard.done(self.tls)  # its handshake is over: now its head is timed
        if not self.guard.arrived(self, len(self.connections) + self.guard.handshakes()):
            transport.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        self.guard.done(self)
        super().connection_lost(exc)

    def handle_events(self) -> None:
        super().handle_events()
        if self.scope is not None and self.scope is not self._head_of:
            self._head_of = self.scope  # a whole request head arrived (or an upgrade)
            self.guard.done(self)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing() and self.scope is self._head_of:
            self.guard.wait_for_head(self)  # the next request's head is timed too


class TlsFront(SSLProtocol):
    """TLS in front of a :class:`GuardedH11Protocol`, under the same guard. asyncio's own
    TLS (``create_server(ssl=...)``) makes the protocol only once the handshake is done,
    so connections still in it were outside the cap, each held for 60 s: here a
    handshake counts against ``max_connections`` (the oldest unfinished one is dropped to
    make room) and must be done within ``header_timeout``."""

    def __init__(self, app: GuardedH11Protocol, context: ssl.SSLContext) -> None:
        super().__init__(
            app.loop,
            app,
            context,
            cast("asyncio.Future[Any]", None),  # nobody waits for the handshake
            server_side=True,
            ssl_handshake_timeout=math.ceil(app.guard.header_timeout),  # the guard's is exact
        )
        app.tls = self
        self.app = app
        self.guard = app.guard
        self.loop = app.loop
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        open_now = len(self.app.connections) + self.guard.handshakes() + 1
        if not self.guard.arrived(self, open_now):
            self.transport.abort()
            return
        super().connection_made(transport)

    def connection_lost(self, exc: BaseException | None) -> None:
        self.guard.done(self)
        super().connection_lost(exc)


def tls_in_front(protocol: Callable[..., GuardedH11Protocol], context: ssl.SSLContext):
    """A protocol factory for ``create_server`` without ``ssl``: each connection gets
    a :class:`TlsFront` wrapping the guarded protocol."""

    def make(**kwargs: Any) -> TlsFront:
        return TlsFront(protocol(**kwargs), context)

    return make


class PeerCounts:
    """Live peers (WebSockets, Hocuspocus documents) per token and in total."""

    def __init__(self, per_token: int, total: int) -> None:
        self.per_token = per_token
        self.total = total
        self.by_token: dict[str, int] = {}

    def refusal(self, token_id: str) -> str | None:
        """Why one more peer on this token may not join, or None."""
        if sum(self.by_token.values()) >= self.total:
            return f"the server is at its limit of {self.total} live connections"
        if self.by_token.get(token_id, 0) >= self.per_token:
            return f"at most {self.per_token} live connections per token"
        return None

    def add(self, token_id: str) -> None:
        self.by_token[token_id] = self.by_token.get(token_id, 0) + 1

    def remove(self, token_id: str) -> None:
        left = self.by_token.get(token_id, 0) - 1
        if left > 0:
            self.by_token[token_id] = left
        else:
            self.by_token.pop(token_id, None)


class RateLimit:
    """A token bucket: ``rate`` events a second, bursts of up to ``burst``."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = float(burst)
        self.stamp = time.monotonic()

    def allow(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


class PresenceLimits(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """Presence (awareness) is for showing who is here, not for storing data."""

    #: Awareness clients one peer may announce (a browser tab has one).
    clients_per_peer: int = 4
    #: Bytes of one client's state (JSON): a name, a colour, a cursor.
    state_bytes: int = 8 * 1024
    #: Bytes of presence one room holds in all: what a newcomer is sent at most.
    room_bytes: int = 1024 * 1024
    #: Presence frames (and queries) per second per peer, and the burst allowed.
    rate: float = 20.0
    burst: int = 40
