"""The embedded store: one SQLite file (WAL) holding every production's update log.

Every local transaction appends its binary update, with who, which device and when, and
is acknowledged only after the SQLite commit. Opening a production reads its latest
snapshot plus the log after it. Compaction folds the log into a new snapshot that is the
*merge* of the updates it replaces (never a re-creation of the content), so every peer
can still sync against it; the rows' metadata stay behind for ``castroom history``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, NamedTuple

from .crdt import fold, merge_all
from .errors import StorageError

__all__ = ["AtticEntry", "LogEntry", "Store", "fold", "merge_all"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS productions (
    id TEXT PRIMARY KEY,
    title TEXT NOT NULL,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS updates (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    production TEXT NOT NULL,
    ts REAL NOT NULL,
    member TEXT NOT NULL,
    device TEXT NOT NULL,
    origin TEXT NOT NULL,
    changes TEXT NOT NULL,
    size INTEGER NOT NULL,
    digest BLOB,
    data BLOB
);
CREATE INDEX IF NOT EXISTS updates_by_production ON updates (production, seq);
CREATE UNIQUE INDEX IF NOT EXISTS updates_digest ON updates (production, digest)
    WHERE digest IS NOT NULL;
CREATE TABLE IF NOT EXISTS snapshots (
    production TEXT PRIMARY KEY,
    upto INTEGER NOT NULL,
    ts REAL NOT NULL,
    data BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS kv (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS sync_tokens (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    scope TEXT NOT NULL,
    production TEXT,
    hash BLOB NOT NULL,
    created REAL NOT NULL,
    revoked REAL,
    expires REAL
);
CREATE TABLE IF NOT EXISTS attic (
    production TEXT NOT NULL,
    collection TEXT NOT NULL,
    entity TEXT NOT NULL,
    seq INTEGER NOT NULL,
    ts REAL NOT NULL,
    member TEXT NOT NULL,
    device TEXT NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (production, collection, entity, seq)
);
"""
#: Columns added after a table was first shipped: (table, column, declaration).
_ADDED_COLUMNS = (("sync_tokens", "expires", "REAL"),)


#: SQLite errors on opening that mean "you may read this, not write it" (a read-only
#: mount, a file we may not write, a disk too full for the shared-memory file).
_NOT_WRITABLE = ("SQLITE_READONLY", "SQLITE_CANTOPEN", "SQLITE_IOERR", "SQLITE_FULL", "SQLITE_PERM")


def _create_private(path: Path) -> None:
    """Create the database file readable by its owner only (the log holds everything the
    team wrote); SQLite gives its -wal and -shm files the same mode."""
    if not path.exists():
        with suppress(FileExistsError):
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


class AtticEntry(NamedTuple):
    """An entity's fields as they were before a peer's update removed its key (a hard
    delete, which the schema forbids), kept apart from the log so that compaction never
    loses them and ``restore --from-history`` can bring the entity back."""

    collection: str
    entity: str
    seq: int  # the log entry that removed it
    ts: float
    member: str
    device: str
    data: dict[str, Any]


class LogEntry(NamedTuple):
    seq: int
    ts: float
    member: str
    device: str
    origin: str
    changes: list[tuple[str, str, list[str]]]
    size: int
    #: (collection, id) -> plain field -> [old, new], as the document saw the change.
    values: dict[tuple[str, str], dict[str, list[Any]]] = {}


def _encode_changes(
    changes: dict[tuple[str, str], set[str]], values: dict[tuple[str, str], dict[str, list[Any]]]
) -> str:
    rows: list[list[Any]] = []
    for (collection, entity), fields in sorted(changes.items()):
        row: list[Any] = [collection, entity, sorted(fields)]
        if kept := values.get((collection, entity)):
            row.append(kept)
        rows.append(row)
    return json.dumps(rows, separators=(",", ":"))


def _entry(row: Any, keep: Callable[[str, str], bool] | None = None) -> LogEntry | None:
    """A log entry from its row (seq, ts, member, device, origin, changes, size), with
    only the changes ``keep`` accepts (None when that leaves none)."""
    changes: list[tuple[str, str, list[str]]] = []
    values: dict[tuple[str, str], dict[str, list[Any]]] = {}
    for change in json.loads(row[5]):
        if keep is not None and not keep(change[0], change[1]):
            continue
        changes.append((change[0], change[1], change[2]))
        if len(change) > 3:
            values[(change[0], change[1])] = change[3]
    if keep is not None and not changes:
        return None
    return LogEntry(row[0], row[1], row[2], row[3], row[4], changes, row[6], values)


class TokenRecord(NamedTuple):
    """One sync token's row (the secret's hash only; never the secret)."""

    id: str
    name: str
    scope: str
    production: str | None
    created: float
    revoked: float | None
    expires: float | None
    hash: bytes


_TOKEN_COLUMNS = "id, name, scope, production, created, revoked, expires, hash"


class Store:
    """A workspace's SQLite database. One instance per process and workspace."""

    def __init__(self, path: Path, *, synchronous: str = "NORMAL") -> None:
        self.path = Path(path)
        #: Opened read-only (a read-only mount, a file we may not write): reads work,
        #: every write is one clear StorageError.
        self.read_only = False
        #: Why it could not be opened for writing (SQLite's error name), if it was not.
        self._not_writable = ""
        try:
            _create_private(self.path)
            try:
                self.db = self._connect_writable(synchronous)
            except sqlite3.OperationalError as exc:
                name = getattr(exc, "sqlite_errorname", "")
                if not self.path.is_file() or not name.startswith(_NOT_WRITABLE):
                    raise  # e.g. busy: not a reason to pretend the workspace is read-only
                self._not_writable = name
                self.db = self._connect_read_only()
        except (OSError, sqlite3.DatabaseError) as exc:
            raise StorageError(f"cannot open workspace database {self.path}: {exc}") from None

    def _connect_writable(self, synchronous: str) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
        try:
            # WAL: readers never block the writer, and several processes share the file.
            # synchronous=NORMAL in WAL mode survives any process crash (SIGKILL); FULL
            # also survives power loss, at an fsync per commit (config: storage.synchronous).
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(f"PRAGMA synchronous={synchronous}")
            db.execute("PRAGMA busy_timeout=30000")
            db.executescript(SCHEMA)
            self.db = db
            self._add_columns()
        except BaseException:
            db.close()
            raise
        return db

    def _connect_read_only(self) -> sqlite3.Connection:
        """A WAL database on a read-only mount cannot even get its shared-memory file:
        ``immutable`` reads it without one (nobody can write there anyway)."""
        self.read_only = True
        last: sqlite3.Error | None = None
        for flags in ("mode=ro", "mode=ro&immutable=1"):
            uri = f"{self.path.resolve().as_uri()}?{flags}"
            db = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
            try:
                db.execute("SELECT COUNT(*) FROM productions").fetchone()
                return db
            except sqlite3.Error as exc:
                db.close()
                last = exc
        assert last is not None
        raise last

    def _add_columns(self) -> None:
        """Bring a database made by an older castroom up to date (additive only)."""
        for table, column, declaration in _ADDED_COLUMNS:
            have = {row[1] for row in self.db.execute(f"PRAGMA table_info({table})")}
            if column not in have:
                self.db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {declaration}")

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction; the lock is taken up front so writers queue, not fail.
        SQLite's own failures (a full disk, a read-only workspace) become one StorageError
        saying so; the transaction is rolled back, so nothing was written."""
        try:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                yield self.db
            except BaseException:
                with suppress(sqlite3.Error):  # SQLite may have rolled back already
                    self.db.execute("ROLLBACK")
                raise
            else:
                self.db.execute("COMMIT")
        except sqlite3.Error as exc:
            raise StorageError(self._why(exc)) from None

    def _disk_full(self) -> bool:
        """Whether the disk is (all but) full: SQLite reports that as an I/O error when
        it cannot even grow its shared-memory file."""
        try:
            return shutil.disk_usage(self.path.parent).free < 1024 * 1024
        except OSError:
            return False

    def _why(self, exc: sqlite3.Error) -> str:
        name = getattr(exc, "sqlite_errorname", "")
        if "SQLITE_FULL" in (name, self._not_writable) or self._disk_full():
            return f"the disk holding {self.path} is full: nothing was written"
        if self.read_only or name.startswith("SQLITE_READONLY"):
            return f"the workspace database {self.path} is read-only: nothing was written"
        return f"cannot write to {self.path}: {exc}"

    @contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """A consistent view across several SELECTs."""
        self.db.execute("BEGIN")
        try:
            yield self.db
        finally:
            self.db.execute("COMMIT")

    def data_version(self) -> int:
        """Changes whenever another connection (process) commits to the database."""
        return int(self.db.execute("PRAGMA data_version").fetchone()[0])

    # -- productions -------------------------------------------------------------------------

    def add_production(self, production_id: str, title: str) -> None:
        with self.write() as db:
            db.execute(
                "INSERT OR IGNORE INTO productions (id, title, created) VALUES (?, ?, ?)",
                (production_id, title, time.time()),
            )
            db.execute("UPDATE productions SET title = ? WHERE id = ?", (title, production_id))

    def productions(self) -> list[tuple[str, str]]:
        rows = self.db.execute("SELECT id, title FROM productions ORDER BY created, id")
        return [(r[0], r[1]) for r in rows]

    def set_title(self, production_id: str, title: str) -> None:
        with self.write() as db:
            db.execute("UPDATE productions SET title = ? WHERE id = ?", (title, production_id))

    # -- the update log ----------------------------------------------------------------------

    def append(
        self,
        production: str,
        data: bytes,
        *,
        member: str,
        device: str,
        origin: str,
        changes: dict[tuple[str, str], set[str]] | None = None,
        values: dict[tuple[str, str], dict[str, list[Any]]] | None = None,
        dedupe: bool = False,
    ) -> int | None:
        """Append one update durably; returns its sequence number once committed.
        ``values``: the plain fields' old and new values, for the history.

        With ``dedupe`` (updates from peers), bytes already in the log are not stored
        twice and None is returned.
        """
        digest = hashlib.blake2b(data, digest_size=16).digest() if dedupe else None
        changed = _encode_changes(changes or {}, values or {})
        with self.write() as db:
            cursor = db.execute(
                "INSERT OR IGNORE INTO updates"
                " (production, ts, member, device, origin, changes, size, digest, data)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (production, time.time(), member, device, origin, changed, len(data), digest, data),
            )
            return cursor.lastrowid if cursor.rowcount else None

    def load(self, production: str, after: int = 0) -> tuple[list[bytes], int]:
        """The updates needed to bring a document that has seen ``after`` up to date:
        (update blobs in order, the last sequence number included)."""
        with self.read() as db:
            snap = db.execute(
                "SELECT upto, data FROM snapshots WHERE production = ?", (production,)
            ).fetchone()
            blobs: list[bytes] = []
            start = after
            if snap is not None and snap[0] > after:
                blobs.append(snap[1])
                start = snap[0]
            rows = db.execute(
                "SELECT seq, data FROM updates WHERE production = ? AND seq > ?"
                " AND data IS NOT NULL ORDER BY seq",
                (production, start),
            ).fetchall()
            last = db.execute(
                "SELECT COALESCE(MAX(seq), 0) FROM updates WHERE production = ?", (production,)
            ).fetchone()[0]
        blobs.extend(r[1] for r in rows)
        return blobs, max(last, start)

    def log_bytes(self, production: str) -> tuple[int, int]:
        """(bytes in the snapshot, bytes in the log after it)."""
        snap = self.db.execute(
            "SELECT upto, length(data) FROM snapshots WHERE production = ?", (production,)
        ).fetchone()
        upto, snap_size = snap if snap else (0, 0)
        tail = self.db.execute(
            "SELECT COALESCE(SUM(size), 0) FROM updates WHERE production = ? AND seq > ?"
            " AND data IS NOT NULL",
            (production, upto),
        ).fetchone()[0]
        return int(snap_size), int(tail)

    def compact(self, production: str) -> tuple[int, int]:
        """Fold the log into a new snapshot. Returns (updates folded, snapshot bytes)."""
        with self.write() as db:
            snap = db.execute(
                "SELECT upto, data FROM snapshots WHERE production = ?", (production,)
            ).fetchone()
            upto = snap[0] if snap else 0
            rows = db.execute(
                "SELECT seq, data FROM updates WHERE production = ? AND seq > ?"
                " AND data IS NOT NULL ORDER BY seq",
                (production, upto),
            ).fetchall()
            if not rows:
                return 0, len(snap[1]) if snap else 0
            merged = fold(([snap[1]] if snap else []) + [r[1] for r in rows])
            last = rows[-1][0]
            db.execute(
                "INSERT OR REPLACE INTO snapshots (production, upto, ts, data) VALUES (?, ?, ?, ?)",
                (production, last, time.time(), merged),
            )
            # Keep who/when/what for history; the bytes now live in the snapshot.
            db.execute(
                "UPDATE updates SET data = NULL WHERE production = ? AND seq <= ?",
                (production, last),
            )
        return len(rows), len(merged)

    def history(
        self,
        production: str,
        *,
        limit: int = 50,
        entity: str | None = None,
        before: int | None = None,
    ) -> list[LogEntry]:
        """Log entries, newest first. With ``entity``, only entries that touched it, each
        listing only its changes to that entity. ``before``: only entries older than that
        sequence number (the next page)."""
        sql = (
            "SELECT seq, ts, member, device, origin, changes, size FROM updates"
            " WHERE production = ?"
        )
        args: list[Any] = [production]
        if before is not None:
            sql += " AND seq < ?"
            args.append(before)
        if entity:
            # A cheap pre-filter (LIKE wildcards escaped); the exact match is below.
            escaped = entity.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            sql += " AND changes LIKE ? ESCAPE '\\'"
            args.append(f'%"{escaped}"%')
        sql += " ORDER BY seq DESC"
        if not entity:
            sql += " LIMIT ?"
            args.append(limit)
        out: list[LogEntry] = []
        keep = (lambda _c, i: i == entity) if entity else None
        for r in self.db.execute(sql, args):
            if (found := _entry(r, keep)) is None:
                continue
            out.append(found)
            if len(out) >= limit:
                break
        return out

    def last_writers(
        self, production: str, entities: Iterable[tuple[str, str]]
    ) -> dict[tuple[str, str], LogEntry]:
        """The latest log entry that touched each (collection, id), listing only its
        changes to that entity (to say where a bad edit came from). One pass over the log,
        newest first, each entry parsed once, stopping when every entity is found: asking
        for 10,000 entities is one pass, not 10,000 (it took 90 s)."""
        wanted = set(entities)
        found: dict[tuple[str, str], LogEntry] = {}
        if not wanted:
            return found
        rows = self.db.execute(
            "SELECT seq, ts, member, device, origin, changes, size FROM updates"
            " WHERE production = ? ORDER BY seq DESC",
            (production,),
        )
        for r in rows:
            entry = _entry(r, lambda c, i: (c, i) in wanted and (c, i) not in found)
            for change in entry.changes if entry is not None else ():
                assert entry is not None
                found[(change[0], change[1])] = entry._replace(changes=[change])
            if len(found) == len(wanted):
                break
        return found

    def log_since(self, production: str, after: int, *, origin: str) -> tuple[int, int]:
        """(the last sequence number, how many entries after ``after`` came from another
        origin than ``origin``): whether a document holds anything a peer may lack."""
        row = self.db.execute(
            "SELECT COALESCE(MAX(seq), 0), COALESCE(SUM(origin != ?), 0) FROM updates"
            " WHERE production = ? AND seq > ?",
            (origin, production, after),
        ).fetchone()
        return int(row[0]), int(row[1])

    # -- sync tokens (hashed; castroom.sync.auth gives them meaning) -------------------------

    def add_token(self, record: TokenRecord) -> None:
        with self.write() as db:
            db.execute(
                f"INSERT INTO sync_tokens ({_TOKEN_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                tuple(record),
            )

    def tokens(self) -> list[TokenRecord]:
        rows = self.db.execute(f"SELECT {_TOKEN_COLUMNS} FROM sync_tokens ORDER BY created, id")
        return [TokenRecord(*r) for r in rows]

    def token(self, token_id: str) -> TokenRecord | None:
        row = self.db.execute(
            f"SELECT {_TOKEN_COLUMNS} FROM sync_tokens WHERE id = ?", (token_id,)
        ).fetchone()
        return TokenRecord(*row) if row else None

    def revoke_token(self, token_id: str, when: float) -> None:
        """Mark a token revoked at ``when`` (a second revocation keeps the first time)."""
        with self.write() as db:
            db.execute(
                "UPDATE sync_tokens SET revoked = ? WHERE id = ? AND revoked IS NULL",
                (when, token_id),
            )

    # -- the attic: what peers hard-deleted ----------------------------------------------

    def keep_in_attic(
        self,
        production: str,
        removed: dict[tuple[str, str], dict[str, Any]],
        *,
        seq: int,
        member: str,
        device: str,
    ) -> None:
        """Keep the fields of the entities that log entry ``seq`` removed."""
        now = time.time()
        rows = [
            (production, collection, entity, seq, now, member, device, json.dumps(data))
            for (collection, entity), data in removed.items()
        ]
        with self.write() as db:
            db.executemany(
                "INSERT OR REPLACE INTO attic"
                " (production, collection, entity, seq, ts, member, device, data)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )

    def attic(self, production: str) -> list[AtticEntry]:
        """The latest attic entry of each hard-deleted entity, oldest removal first."""
        rows = self.db.execute(
            "SELECT collection, entity, MAX(seq), ts, member, device, data FROM attic"
            " WHERE production = ? GROUP BY collection, entity ORDER BY MAX(seq)",
            (production,),
        ).fetchall()
        return [AtticEntry(r[0], r[1], r[2], r[3], r[4], r[5], json.loads(r[6])) for r in rows]

    # -- small settings shared by every process on the workspace ---------------------------

    def get_kv(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM kv WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def set_kv(self, key: str, value: str) -> None:
        with self.write() as db:
            db.execute("INSERT OR REPLACE INTO kv (key, value) VALUES (?, ?)", (key, value))
