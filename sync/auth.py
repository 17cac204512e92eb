"""Bearer tokens for the sync server: scoped (read or write), optionally to one production,
optionally expiring; and presentation links' tokens (scope ``present``), which open their
presentation and nothing else (``castroom present``, :mod:`castroom.sync.presentation`).

A token looks like ``crt_<id>_<secret>``: the id (public, shown by ``token list``) finds
the row, the secret is checked against its SHA-256 with a constant-time comparison. Only
the hash is stored, in the workspace's database (through :class:`Store`'s token methods),
so every process on the workspace (the server, the CLI revoking a token) sees the same
tokens and a revocation takes effect on the next request, or the next frame of a live
connection (:class:`LiveTokens`).
"""

from __future__ import annotations

import builtins
import hashlib
import hmac
import re
import secrets
import time
from typing import Literal

import msgspec

from castroom.core.errors import CastroomError, NotFound
from castroom.core.presenting import Showing
from castroom.core.storage import Store, TokenRecord

Scope = Literal["read", "write", "present"]
SCOPES: tuple[str, ...] = ("read", "write", "present")
PREFIX = "crt_"
#: ``--expires`` units: minutes, hours, days, weeks.
_UNITS = {"m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_LIKE = " like 30d (days), 12h (hours), 90m (minutes) or 2w (weeks)"
_DURATION_RE = re.compile(r"^\s*(\d{1,6})\s*([mhdw])\s*$")


def parse_duration(text: str) -> float:
    """Seconds in a duration written like ``30d``, ``12h``, ``90m`` or ``2w``."""
    match = _DURATION_RE.match(text.lower())
    if match and int(match.group(1)) == 0:
        raise CastroomError(
            f"expires: {text!r} would expire at once; give a duration above zero,{_LIKE}"
        )
    if not match:
        raise CastroomError(
            f"expires: {text!r} is not a duration; write a number and a unit,{_LIKE}"
        )
    return int(match.group(1)) * _UNITS[match.group(2)]


class TokenInfo(msgspec.Struct, kw_only=True, frozen=True):
    """A token's public description (never its secret)."""

    id: str
    name: str
    scope: Scope
    production: str | None  # None = every production in the workspace
    created: float
    revoked: float | None = None
    expires: float | None = None  # None = never
    #: A presentation's token (scope ``present``): what it shows.
    presentation: Showing | None = None

    def expired(self, now: float | None = None) -> bool:
        return self.expires is not None and (now or time.time()) >= self.expires

    def active(self) -> bool:
        return self.revoked is None and not self.expired()

    def may_read(self, production_id: str) -> bool:
        # A presentation's token reads its presentation only, never a whole production.
        return (
            self.active() and self.scope != "present" and self.production in (None, production_id)
        )

    def may_write(self, production_id: str) -> bool:
        return self.may_read(production_id) and self.scope == "write"


class AccessDenied(CastroomError):
    """A request the token may not make. ``status`` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str) -> None:
        self.status = status
        super().__init__(message)


def _hash(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def _split(token: str) -> tuple[str, str] | None:
    if not token.startswith(PREFIX):
        return None
    token_id, _, secret = token[len(PREFIX) :].partition("_")
    if not token_id or not secret:
        return None
    return token_id, secret


def _info(record: TokenRecord) -> TokenInfo:
    shown = record.presentation
    return TokenInfo(
        id=record.id,
        name=record.name,
        scope=record.scope,  # type: ignore[arg-type]  # only SCOPES are ever stored
        production=record.production,
        created=record.created,
        revoked=record.revoked,
        expires=record.expires,
        presentation=msgspec.json.decode(shown, type=Showing) if shown else None,
    )


class TokenStore:
    """The workspace's tokens, kept by its :class:`Store`."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def create(
        self,
        scope: str,
        *,
        production: str | None = None,
        name: str = "",
        expires_in: float | None = None,
        presentation: Showing | None = None,
    ) -> tuple[TokenInfo, str]:
        """Make a token; returns its description and the token itself (shown once).
        With ``presentation`` (and a ``production``) it is a presentation's token."""
        if scope not in SCOPES:
            raise CastroomError(f"scope must be read or write, not {scope!r}")
        if (scope == "present") != (presentation is not None and production is not None):
            raise CastroomError("a presentation's token shows one production's role")
        token_id = secrets.token_hex(6)
        secret = secrets.token_urlsafe(32)
        now = time.time()
        record = TokenRecord(
            id=token_id,
            name=name,
            scope=scope,
            production=production,
            created=now,
            revoked=None,
            expires=now + expires_in if expires_in is not None else None,
            hash=_hash(secret),
            presentation=msgspec.json.encode(presentation).decode() if presentation else None,
        )
        self.store.add_token(record)
        return _info(record), f"{PREFIX}{token_id}_{secret}"

    def list(self) -> list[TokenInfo]:
        return [_info(r) for r in self.store.tokens()]

    def presentations(self) -> builtins.list[TokenInfo]:
        """The presentations' tokens, ended ones included."""
        return [t for t in self.list() if t.presentation is not None]

    def revoke(self, ref: str, *, presentation: bool = False) -> TokenInfo:
        """Revoke a token (``presentation``: a presentation's) by id or unique id prefix.
        Revoking twice is harmless."""
        what = "presentation" if presentation else "token"
        ref = ref.removeprefix(PREFIX).split("_", 1)[0]
        among = self.presentations() if presentation else self.list()
        matches = [t for t in among if t.id.startswith(ref)] if ref else []
        if not matches:
            raise NotFound(f"no {what} with id {ref!r}")
        if len(matches) > 1:
            raise CastroomError(f"{ref!r} matches {len(matches)} {what}s; give more of the id")
        info = matches[0]
        self.store.revoke_token(info.id, time.time())
        record = self.store.token(info.id)
        return _info(record) if record else info

    def verify(self, token: str | None) -> TokenInfo | None:
        """The token's description if it is genuine, not revoked and not expired."""
        info = self.genuine(token)
        return info if info is not None and info.active() else None

    def genuine(self, token: str | None) -> TokenInfo | None:
        """The token's description if it is one of ours, revoked or expired too (so a
        presentation can say it has ended rather than that its link is wrong)."""
        parts = _split(token or "")
        if parts is None:
            return None
        token_id, secret = parts
        record = self.store.token(token_id)
        # Compare even when the id is unknown, so timing says nothing about which ids exist.
        expected = record.hash if record else b"\0" * 32
        genuine = hmac.compare_digest(expected, _hash(secret))
        if record is None or not genuine:
            return None
        return _info(record)

    def authorize(self, token: str | None, production_id: str | None, *, write: bool) -> TokenInfo:
        """The token's description, or AccessDenied (401 no/bad token, 403 not allowed)."""
        if not token:
            raise AccessDenied(401, "a bearer token is required (Authorization: Bearer TOKEN)")
        info = self.verify(token)
        if info is None:
            raise AccessDenied(401, "invalid, expired or revoked token")
        if info.scope == "present":
            raise AccessDenied(
                403, "this is a presentation's link: it opens its presentation page only"
            )
        if production_id is not None and not info.may_read(production_id):
            raise AccessDenied(403, "this token does not give access to that production")
        if write and info.scope != "write":
            raise AccessDenied(403, "this token is read-only")
        return info


class LiveTokens:
    """Whether live connections' tokens still hold, checked before each of their frames.

    A revocation is another process's commit, so the answers are cached until the
    database's ``data_version`` moves (one cheap pragma per frame); expiry is checked
    against the clock every time.
    """

    def __init__(self, tokens: TokenStore) -> None:
        self.tokens = tokens
        self._version = -1
        self._known: dict[str, TokenInfo | None] = {}

    def still_valid(self, token: str) -> bool:
        version = self.tokens.store.data_version()
        if version != self._version:
            self._version = version
            self._known.clear()
        if token not in self._known:
            self._known[token] = self.tokens.verify(token)
        info = self._known[token]
        return info is not None and info.active()
