"""Bearer tokens for the sync server: scoped (read or write), optionally to one production.

A token looks like ``crt_<id>_<secret>``: the id (public, shown by ``token list``) finds
the row, the secret is checked against its SHA-256 with a constant-time comparison. Only
the hash is stored, in the workspace's SQLite database (table ``sync_tokens``), so every
process on the workspace (the server, the CLI revoking a token) sees the same tokens and
a revocation takes effect on the next request.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import sqlite3
import time
from typing import Literal

import msgspec

from castroom.core.errors import CastroomError, NotFound
from castroom.core.storage import Store

Scope = Literal["read", "write"]
SCOPES: tuple[str, ...] = ("read", "write")
PREFIX = "crt_"

SCHEMA = """
CREATE TABLE IF NOT EXISTS sync_tokens (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    scope TEXT NOT NULL,
    production TEXT,
    hash BLOB NOT NULL,
    created REAL NOT NULL,
    revoked REAL
);
"""


class TokenInfo(msgspec.Struct, kw_only=True, frozen=True):
    """A token's public description (never its secret)."""

    id: str
    name: str
    scope: Scope
    production: str | None  # None = every production in the workspace
    created: float
    revoked: float | None = None

    def may_read(self, production_id: str) -> bool:
        return self.revoked is None and self.production in (None, production_id)

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


class TokenStore:
    """The workspace's tokens. Uses the workspace's own SQLite connection."""

    def __init__(self, store: Store) -> None:
        self.store = store
        with store.write() as db:
            db.execute(SCHEMA)

    def create(
        self, scope: str, *, production: str | None = None, name: str = ""
    ) -> tuple[TokenInfo, str]:
        """Make a token; returns its description and the token itself (shown once)."""
        if scope not in SCOPES:
            raise CastroomError(f"scope must be read or write, not {scope!r}")
        token_id = secrets.token_hex(6)
        secret = secrets.token_urlsafe(32)
        info = TokenInfo(
            id=token_id,
            name=name,
            scope=scope,  # type: ignore[arg-type]  # checked against SCOPES above
            production=production,
            created=time.time(),
        )
        with self.store.write() as db:
            db.execute(
                "INSERT INTO sync_tokens (id, name, scope, production, hash, created)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (token_id, name, scope, production, _hash(secret), info.created),
            )
        return info, f"{PREFIX}{token_id}_{secret}"

    def list(self) -> list[TokenInfo]:
        rows = self.store.db.execute(
            "SELECT id, name, scope, production, created, revoked FROM sync_tokens"
            " ORDER BY created, id"
        )
        return [self._info(r) for r in rows]

    def revoke(self, ref: str) -> TokenInfo:
        """Revoke a token by id (or unique id prefix). Revoking twice is harmless."""
        ref = ref.removeprefix(PREFIX).split("_", 1)[0]
        matches = [t for t in self.list() if t.id.startswith(ref)] if ref else []
        if not matches:
            raise NotFound(f"no token with id {ref!r}")
        if len(matches) > 1:
            raise CastroomError(f"{ref!r} matches {len(matches)} tokens; give more of the id")
        info = matches[0]
        if info.revoked is None:
            with self.store.write() as db:
                db.execute(
                    "UPDATE sync_tokens SET revoked = ? WHERE id = ?", (time.time(), info.id)
                )
        return self._get(info.id) or info

    def verify(self, token: str | None) -> TokenInfo | None:
        """The token's description if it is genuine and not revoked, else None."""
        parts = _split(token or "")
        if parts is None:
            return None
        token_id, secret = parts
        row = self.store.db.execute(
            "SELECT id, name, scope, production, created, revoked, hash FROM sync_tokens"
            " WHERE id = ?",
            (token_id,),
        ).fetchone()
        # Compare even when the id is unknown, so timing says nothing about which ids exist.
        expected = row[6] if row else b"\0" * 32
        genuine = hmac.compare_digest(expected, _hash(secret))
        if row is None or not genuine or row[5] is not None:
            return None
        return self._info(row)

    def authorize(self, token: str | None, production_id: str | None, *, write: bool) -> TokenInfo:
        """The token's description, or AccessDenied (401 no/bad token, 403 not allowed)."""
        if not token:
            raise AccessDenied(401, "a bearer token is required (Authorization: Bearer TOKEN)")
        info = self.verify(token)
        if info is None:
            raise AccessDenied(401, "invalid or revoked token")
        if production_id is not None and not info.may_read(production_id):
            raise AccessDenied(403, "this token does not give access to that production")
        if write and info.scope != "write":
            raise AccessDenied(403, "this token is read-only")
        return info

    def _get(self, token_id: str) -> TokenInfo | None:
        row = self.store.db.execute(
            "SELECT id, name, scope, production, created, revoked FROM sync_tokens WHERE id = ?",
            (token_id,),
        ).fetchone()
        return self._info(row) if row else None

    @staticmethod
    def _info(row: sqlite3.Row | tuple) -> TokenInfo:
        return TokenInfo(
            id=row[0], name=row[1], scope=row[2], production=row[3], created=row[4], revoked=row[5]
        )
