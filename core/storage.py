"""The embedded store: one SQLite file (WAL) holding every production's update log.

Every local transaction appends its binary update, with who, which device and when, and
is acknowledged only after the SQLite commit. Opening a production reads its latest
snapshot plus the log after it. Compaction folds the log into a new snapshot that is the
*merge* of the updates it replaces (never a re-creation of the content), so every peer
can still sync against it; the rows' metadata stay behind for ``castroom history``.

The file's format has a version (``PRAGMA user_version``, :data:`STORE_VERSION`); an
older file is migrated when it is opened, keeping every row. Since version 2 every
string a row would repeat (production, member, device, origin, collection, entity and
field names) is stored once, in ``names``, and rows hold its number; a row's changes are
MessagePack; the file reclaims what compaction frees (``auto_vacuum=INCREMENTAL``).
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, suppress
from pathlib import Path
from typing import Any, NamedTuple

import msgspec

from .errors import StorageError

__all__ = [
    "STORE_VERSION",
    "AtticEntry",
    "Checkpointer",
    "LogEntry",
    "QuarantinedUpdate",
    "Store",
    "compact_file",
    "fold",
    "merge_all",
]


# The CRDT's update functions, imported when first called: opening a store (a read copy
# read, a listing) must not load pycrdt (issue 14: `castroom list` <= 150 ms).
def fold(blobs: list[bytes]) -> bytes:
    """:func:`castroom.core.crdt.fold`."""
    from . import crdt

    return crdt.fold(blobs)


def merge_all(blobs: list[bytes], fan_in: int = 32) -> bytes:
    """:func:`castroom.core.crdt.merge_all`."""
    from . import crdt

    return crdt.merge_all(blobs, fan_in)


#: The file format this castroom writes (``PRAGMA user_version``): 0 is the first one
#: (strings and JSON in every row), 2 the one with ``names``.
STORE_VERSION = 2
#: Consecutive log entries of one author that changed the same fields of the same
#: entities without a value to show (keystrokes in a note) and are at most this many
#: seconds apart become one history row when compacted.
COALESCE_SECONDS = 60.0
#: Compaction deletes and gives pages back this many rows (pages) per write transaction,
#: and a background one lets go of the write lock for SLICE_PAUSE seconds between two:
#: longer than SQLite's first retries of a writer waiting for the lock (1+2+5+10+15 ms).
SLICE_ROWS = 200
SLICE_PAUSE = 0.04
#: The page size of a new database file (bytes).
PAGE_SIZE = 2048


def _pause(seconds: float) -> None:
    """Between two slices of a compaction (a test replaces it to act in between)."""
    if seconds > 0:
        time.sleep(seconds)


#: Tables keyed by text are WITHOUT ROWID in a new file: one b-tree each, not two.
_TABLES = (
    """CREATE TABLE IF NOT EXISTS productions (
        id TEXT PRIMARY KEY,
        title TEXT NOT NULL,
        created REAL NOT NULL
    ) WITHOUT ROWID""",
    # Every string rows refer to, once: rows hold the number (ids stored once, not per row).
    """CREATE TABLE IF NOT EXISTS names (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE
    )""",
    # One row per log entry, kept for the history after compaction. ts: seconds since
    # the epoch; production: names.id; author: the names.id of "member\x1fdevice\x1forigin";
    # changes: MessagePack (_encode_changes). No index on production: queries walk seq.
    """CREATE TABLE IF NOT EXISTS updates (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        production INTEGER NOT NULL,
        ts INTEGER NOT NULL,
        author INTEGER NOT NULL,
        changes BLOB NOT NULL
    )""",
    # The bytes of the entries not folded into a snapshot yet: compaction deletes whole
    # rows, so their pages come free (updating them to NULL left pages half empty).
    # digest: only for a peer's update that changed nothing visible (a re-sent one).
    """CREATE TABLE IF NOT EXISTS update_data (
        seq INTEGER PRIMARY KEY,
        production INTEGER NOT NULL,
        digest BLOB,
        data BLOB NOT NULL
    )""",
    """CREATE UNIQUE INDEX IF NOT EXISTS update_data_digest ON update_data (production, digest)
        WHERE digest IS NOT NULL""",
    """CREATE TABLE IF NOT EXISTS snapshots (
        production TEXT PRIMARY KEY,
        upto INTEGER NOT NULL,
        ts REAL NOT NULL,
        data BLOB NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS kv (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
    ) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS sync_tokens (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        scope TEXT NOT NULL,
        production TEXT,
        hash BLOB NOT NULL,
        created REAL NOT NULL,
        revoked REAL,
        expires REAL,
        presentation TEXT
    ) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS attic (
        production TEXT NOT NULL,
        collection TEXT NOT NULL,
        entity TEXT NOT NULL,
        seq INTEGER NOT NULL,
        ts REAL NOT NULL,
        member TEXT NOT NULL,
        device TEXT NOT NULL,
        data TEXT NOT NULL,
        PRIMARY KEY (production, collection, entity, seq)
    ) WITHOUT ROWID""",
)
#: Columns added after a table was first shipped: (table, column, declaration).
_ADDED_COLUMNS = (
    ("sync_tokens", "expires", "REAL"),
    # A presentation link's token: what it shows, as JSON (castroom.core.presenting).
    ("sync_tokens", "presentation", "TEXT"),
    # 1 on a peer's update whose changes are exactly what it changed in the log before it:
    # its merger's document held that log and nothing else (Store.append ``exact_after``).
    # NULL: unknown (a local write's changes are its typed writes' either way).
    ("updates", "exact", "INTEGER"),
)
#: Tables added after format 2 shipped (additive: a format-2 file gains them when it is
#: next opened for writing; one without them reads as if they were empty).
_ADDED_TABLES = {
    # Stored updates that no longer decode or integrate (planted by an older castroom
    # before the limits existed, or damaged on disk), moved out of update_data once: kept
    # for diagnosis (`castroom quarantine`), never loaded or compacted again. seq: the log
    # entry's (its history row stays); production: names.id; moved: seconds since the epoch.
    "quarantine": """CREATE TABLE IF NOT EXISTS quarantine (
        seq INTEGER PRIMARY KEY,
        production INTEGER NOT NULL,
        moved INTEGER NOT NULL,
        reason TEXT NOT NULL,
        data BLOB NOT NULL
    )""",
    # A production's decoded copy at one log position, so a read-only command need not
    # load the CRDT (castroom.core.read_copy). Derived data: dropping it loses nothing.
    "read_copies": """CREATE TABLE IF NOT EXISTS read_copies (
        production TEXT PRIMARY KEY,
        version TEXT NOT NULL,
        data BLOB NOT NULL
    )""",
    # A read copy's parts (its collections, whole or in buckets), written with its row
    # in read_copies in one transaction.
    "read_copy_parts": """CREATE TABLE IF NOT EXISTS read_copy_parts (
        production TEXT NOT NULL,
        part TEXT NOT NULL,
        data BLOB NOT NULL,
        PRIMARY KEY (production, part)
    )""",
}


#: SQLite errors on opening that mean "you may read this, not write it" (a read-only
#: mount, a file we may not write, a disk too full for the shared-memory file).
_NOT_WRITABLE = ("SQLITE_READONLY", "SQLITE_CANTOPEN", "SQLITE_IOERR", "SQLITE_FULL", "SQLITE_PERM")


def _has_table(db: sqlite3.Connection, name: str) -> bool:
    found = db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,))
    return found.fetchone() is not None


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


#: What a row's changes decode to: [collection, entity, field...] per entity changed,
#: each a names.id; a field with values is [field, old, new].
_Encoded = list[list[Any]]
_changes_encoder = msgspec.msgpack.Encoder()
_changes_decoder = msgspec.msgpack.Decoder(_Encoded)


#: Keys of a large change set are sorted this many at a time, then merged: one sort holds
#: the GIL throughout (a worker thread sorting half a million keys kept the server's event
#: loop waiting 1.7 s), a merge of sorted runs hands it back between two keys.
SORT_RUN = 8192


def sorted_keys(keys: Iterable[tuple[str, str]]) -> Iterator[tuple[str, str]]:
    """``sorted(keys)``, in runs of SORT_RUN merged lazily (the same order)."""
    items = list(keys)
    if len(items) <= SORT_RUN:
        return iter(sorted(items))
    import heapq  # here: only a large change set needs it

    runs = [sorted(items[start : start + SORT_RUN]) for start in range(0, len(items), SORT_RUN)]
    return heapq.merge(*runs)


def _encode_changes(
    changes: dict[tuple[str, str], set[str]],
    values: dict[tuple[str, str], dict[str, list[Any]]],
    ref: Callable[[str], int],
) -> bytes:
    rows: _Encoded = []
    for collection, entity in sorted_keys(changes):
        fields = changes[(collection, entity)]
        kept = values.get((collection, entity), {})
        row: list[Any] = [ref(collection), ref(entity)]
        for name in sorted(fields):
            row.append([ref(name), *kept[name]] if name in kept else ref(name))
        rows.append(row)
    return _changes_encoder.encode(rows)


def _may_name_many(
    changes: dict[tuple[str, str], set[str]], values: dict[tuple[str, str], dict[str, list[Any]]]
) -> bool:
    """Whether an encoding of ``changes`` may refer to ``_MANY_NAMES`` names or more (a
    live edit's few do not: they are stored one by one, with no list of them made)."""
    if len(changes) + len(values) < _MANY_NAMES // 4:
        most = sum(len(f) for f in changes.values()) + sum(len(v) for v in values.values())
        return most + 2 * (len(changes) + len(values)) >= _MANY_NAMES
    return True


def _names_in(
    changes: dict[tuple[str, str], set[str]], values: dict[tuple[str, str], dict[str, list[Any]]]
) -> list[str]:
    """Every name an encoding of ``changes`` refers to, once each, in order."""
    names: dict[str, None] = {}
    for (collection, entity), fields in changes.items():
        names[collection] = names[entity] = None
        names.update(dict.fromkeys(fields))
    for (collection, entity), kept in values.items():
        names[collection] = names[entity] = None
        names.update(dict.fromkeys(kept))
    return list(names)


def _decode_changes(
    blob: bytes, name: Callable[[int], str], keep: Callable[[str, str], bool] | None
) -> tuple[list[tuple[str, str, list[str]]], dict[tuple[str, str], dict[str, list[Any]]]]:
    changes: list[tuple[str, str, list[str]]] = []
    values: dict[tuple[str, str], dict[str, list[Any]]] = {}
    for collection_ref, entity_ref, *fields in _changes_decoder.decode(blob):
        collection, entity = name(collection_ref), name(entity_ref)
        if keep is not None and not keep(collection, entity):
            continue
        names = []
        for field in fields:
            if isinstance(field, list):
                values.setdefault((collection, entity), {})[name(field[0])] = field[1:]
                names.append(name(field[0]))
            else:
                names.append(name(field))
        changes.append((collection, entity, names))
    return changes, values


def _has_values(blob: bytes) -> bool:
    return any(isinstance(f, list) for change in _changes_decoder.decode(blob) for f in change[2:])


class QuarantinedUpdate(NamedTuple):
    """A stored update moved out of the log because it no longer decodes or integrates."""

    seq: int  # the log entry it was
    ts: float  # when it was stored
    moved: float  # when it was moved aside
    member: str
    device: str
    origin: str
    reason: str
    data: bytes


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
    #: A presentation's token: what it shows, as JSON (``castroom.core.presenting.Showing``).
    presentation: str | None = None


#: Names new to the store in one append from which they are stored with one statement
#: (a merge of 100,000 entities took 200,000 statements: 2 s of a 5 s storing step).
_MANY_NAMES = 64
#: Names stored per transaction (Store.intern) when a large merge's names are stored in
#: slices, between which the event loop serves everyone else.
NAMES_PER_TRANSACTION = 512

#: How a write inside a batch is undone (its savepoint), leaving the batch open.
_UNDO_WRITE = ("ROLLBACK TO castroom_write", "RELEASE castroom_write")

#: A log entry's columns, for Store._entries.
_ENTRY_COLUMNS = "seq, ts, author, changes, length(data)"
#: Joins an author's member, device and origin into one name (none holds it: printable).
_AUTHOR_SEP = "\x1f"


def author_name(member: str, device: str, origin: str) -> str:
    """The name a log row's author is stored as."""
    return _AUTHOR_SEP.join((member, device, origin))


def _insert_update(
    db: sqlite3.Connection,
    production: int,
    author: int,
    encoded: bytes,
    digest: bytes | None,
    data: bytes,
    exact_after: int | None = None,
    newest: int | None = None,
) -> int | None:
    """Insert one log row in ``db``'s open write transaction: its sequence number, or
    None when ``digest`` is given and those bytes are stored already. ``exact_after``:
    the production's last row its writer's document held; the row is marked exact if no
    row of the production came after that one (checked in the same transaction, by a
    query unless ``newest``, the production's newest row, is known and no later)."""
    if digest is not None:
        known = db.execute(
            "SELECT 1 FROM update_data WHERE production = ? AND digest = ?", (production, digest)
        ).fetchone()
        if known is not None:
            return None
    exact = None
    if exact_after is not None and newest is not None and exact_after >= newest:
        exact = 1
    elif exact_after is not None:
        later = db.execute(
            "SELECT 1 FROM updates WHERE seq > ? AND production = ? LIMIT 1",
            (exact_after, production),
        ).fetchone()
        exact = 1 if later is None else None
    row = (production, round(time.time()), author, encoded, exact)
    seq = db.execute(
        "INSERT INTO updates (production, ts, author, changes, exact) VALUES (?, ?, ?, ?, ?)", row
    ).lastrowid
    db.execute(
        "INSERT INTO update_data (seq, production, digest, data) VALUES (?, ?, ?, ?)",
        (seq, production, digest, data),
    )
    return seq


class _Savepoint:
    """:meth:`Store.write` inside an open transaction: a savepoint, exactly as
    :meth:`Store._atomic` would make it, as a plain class (a live server takes one for
    every update after a turn's first; two generator context managers cost a quarter
    of the append)."""

    __slots__ = ("store",)

    def __init__(self, store: Store) -> None:
        self.store = store

    def __enter__(self) -> sqlite3.Connection:
        db = self.store.db
        try:
            db.execute("SAVEPOINT castroom_write")
        except sqlite3.Error as exc:
            self.store._forget_names()
            raise StorageError(self.store._why(exc)) from None
        return db

    def __exit__(self, kind: Any, exc: BaseException | None, tb: Any) -> None:
        store = self.store
        db = store.db
        if kind is None:
            try:
                if db.in_transaction:
                    db.execute("RELEASE castroom_write")
                return
            except sqlite3.Error as error:
                exc = error
        store._forget_names()  # numbers given in this transaction may be given again
        with suppress(sqlite3.Error):  # SQLite may have rolled back already
            for sql in _UNDO_WRITE if db.in_transaction else ():
                db.execute(sql)
        if isinstance(exc, sqlite3.Error):
            raise StorageError(store._why(exc)) from None


_TOKEN_COLUMNS = "id, name, scope, production, created, revoked, expires, hash, presentation"


class Store:
    """A workspace's SQLite database. One instance per process and workspace."""

    def __init__(self, path: Path, *, synchronous: str = "NORMAL") -> None:
        self.path = Path(path)
        #: Opened read-only (a read-only mount, a file we may not write): reads work,
        #: every write is one clear StorageError.
        self.read_only = False
        #: Inside batch(); and data_version once it holds the write lock (it cannot
        #: change then).
        self._batching = False
        self._batch_version: int | None = None
        #: Why it could not be opened for writing (SQLite's error name), if it was not.
        self._not_writable = ""
        self._synchronous = synchronous
        #: A second connection for :meth:`append_apart` (a worker thread's), opened once
        #: needed, and the lock that keeps two threads from sharing it.
        self._apart: sqlite3.Connection | None = None
        self._apart_lock = threading.Lock()
        #: Whether commits leave checkpoints to a Checkpointer (defer_checkpoints): on
        #: both connections, the second one's too.
        self._deferred = False
        #: The names rows refer to, both ways, and the highest number known.
        self._refs: dict[str, int] = {}
        self._texts: dict[int, str] = {}
        self._names_upto = 0
        #: The newest log row this connection wrote of each production (names.id), as of
        #: data_version ``_tails_at`` inside a batch: while no other connection has
        #: committed since, no later row of that production exists, so a live merge's
        #: row is marked exact without a query (Store.append). Too high after a rollback,
        #: which only makes that test stricter.
        self._tails: dict[int, int] = {}
        self._tails_at: int | None = None
        #: Whether ``updates`` has the ``exact`` column (False: a read-only file of an
        #: older castroom), known once the file is brought up to date or first asked.
        self._has_exact: bool | None = None
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
            # Before the first table exists (a new file), so compaction can give freed
            # pages back; an older file switches when it is migrated (VACUUM).
            # A new file's pages are 2 KiB, not 4: every table and index holds at least one
            # page, and a small production's store was mostly such pages (bench_store:
            # a 72 KB document, 4,000 edits, 2.98x -> 2.59x after compaction). No effect
            # on an existing file.
            db.execute(f"PRAGMA page_size={PAGE_SIZE}")
            db.execute("PRAGMA auto_vacuum=INCREMENTAL")
            # WAL: readers never block the writer, and several processes share the file.
            # synchronous=NORMAL in WAL mode survives any process crash (SIGKILL); FULL
            # also survives power loss, at an fsync per commit (config: storage.synchronous).
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(f"PRAGMA synchronous={synchronous}")
            db.execute("PRAGMA busy_timeout=30000")
            self.db = db
            self._bring_up_to_date()
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
                version = db.execute("PRAGMA user_version").fetchone()[0]
            except sqlite3.Error as exc:
                db.close()
                last = exc
                continue
            if version != STORE_VERSION:
                db.close()
                raise StorageError(self._other_format(version, "is read-only here"))
            return db
        assert last is not None
        raise last

    def _other_format(self, version: int, why: str) -> str:
        if version > STORE_VERSION:
            return (
                f"the workspace database {self.path} was written by a newer castroom"
                f" (format {version}; this one reads up to {STORE_VERSION}): upgrade castroom"
            )
        return (
            f"the workspace database {self.path} is in an older format ({version}) and {why}:"
            " open it once with write access to bring it up to date"
        )

    def _user_version(self) -> int:
        return int(self.db.execute("PRAGMA user_version").fetchone()[0])

    def _bring_up_to_date(self) -> None:
        """Create the tables of a new file, or migrate an older file's format to
        :data:`STORE_VERSION` in one transaction (every row kept), then reclaim space."""
        if self._user_version() == STORE_VERSION:
            self._add_columns()
            return
        pending: dict[str, int] = {}
        with self.write() as db:
            version = self._user_version()  # again, now that we hold the write lock
            if version > STORE_VERSION:
                raise StorageError(self._other_format(version, ""))
            if version < STORE_VERSION:
                legacy = version == 0 and _has_table(db, "updates")
                if legacy:
                    db.execute("ALTER TABLE updates RENAME TO updates_v0")
                    db.execute("DROP INDEX IF EXISTS updates_by_production")
                    db.execute("DROP INDEX IF EXISTS updates_digest")
                for statement in (*_TABLES, *_ADDED_TABLES.values()):
                    db.execute(statement)
                if legacy:
                    self._rows_from_v0(db, self._interner(db, pending))
                db.execute(f"PRAGMA user_version = {STORE_VERSION}")
            self._add_columns()
        self._remember(pending)
        if self.db.execute("PRAGMA auto_vacuum").fetchone()[0] != 2:
            with suppress(sqlite3.OperationalError):  # busy: the next open tries again
                self.db.execute("VACUUM")  # applies auto_vacuum=INCREMENTAL to this file

    @staticmethod
    def _rows_from_v0(db: sqlite3.Connection, ref: Callable[[str], int]) -> None:
        """Copy format 0's log (strings and JSON in every row) into format 2's."""
        rows = db.execute(
            "SELECT seq, production, ts, member, device, origin, changes, digest, data"
            " FROM updates_v0 ORDER BY seq"
        )
        while batch := rows.fetchmany(1000):
            converted, kept = [], []
            for seq, production, ts, member, device, origin, changed, digest, data in batch:
                parsed = json.loads(changed)
                changes = {(c[0], c[1]): set(c[2]) for c in parsed}
                values = {(c[0], c[1]): c[3] for c in parsed if len(c) > 3}
                author = ref(author_name(member, device, origin))
                row = (seq, ref(production), round(ts), author)
                converted.append((*row, _encode_changes(changes, values, ref)))
                if data is not None:
                    kept.append((seq, row[1], digest, data))
            db.executemany(
                "INSERT INTO updates (seq, production, ts, author, changes) VALUES (?, ?, ?, ?, ?)",
                converted,
            )
            db.executemany(
                "INSERT INTO update_data (seq, production, digest, data) VALUES (?, ?, ?, ?)",
                kept,
            )
        # Sequence numbers are never given twice, even those of rows gone before.
        old = db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'updates_v0'").fetchone()
        if old is not None:
            db.execute("DELETE FROM sqlite_sequence WHERE name = 'updates'")
            db.execute("INSERT INTO sqlite_sequence (name, seq) VALUES ('updates', ?)", old)
        db.execute("DROP TABLE updates_v0")

    def _add_columns(self) -> None:
        """Bring a database made by an older castroom up to date (additive only)."""
        for table, statement in _ADDED_TABLES.items():
            if not _has_table(self.db, table):
                self.db.execute(statement)
        for table, column, declaration in _ADDED_COLUMNS:
            have = {row[1] for row in self.db.execute(f"PRAGMA table_info({table})")}
            if column not in have:
                self.db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {declaration}")
        self._has_exact = True

    def close(self) -> None:
        with self._apart_lock:
            if self._apart is not None:
                self._apart.close()
                self._apart = None
        self.db.close()

    def write(self) -> AbstractContextManager[sqlite3.Connection]:
        """One write transaction; the lock is taken up front so writers queue, not fail.
        SQLite's own failures (a full disk, a read-only workspace) become one StorageError
        saying so; the transaction is rolled back, so nothing was written. Inside
        :meth:`batch` it is a savepoint of the batch's transaction (or begins it): a
        failure rolls back only this write, and nothing is durable before the batch
        commits."""
        if self.db.in_transaction:
            return _Savepoint(self)  # every live update after a turn's first
        return self._write()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        if self._batching and not self.db.in_transaction:
            # The batch's first write begins its transaction. No savepoint: a failure
            # rolls back all of it, which holds only this write (two statements fewer in
            # a turn of one update, the usual live turn).
            with self._atomic("BEGIN IMMEDIATE", ("ROLLBACK",), ""):
                # Nobody else can commit while we hold the write lock: data_version
                # stands still until the batch ends.
                self._batch_version = self.data_version()
                try:
                    yield self.db
                except BaseException:
                    self._batch_version = None  # the lock is let go with the rollback
                    raise
            return
        with self._atomic("BEGIN IMMEDIATE", ("ROLLBACK",), "COMMIT"):
            yield self.db

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Group commit: every write in the block is one transaction, begun by the first
        write and committed (one journal write, and one fsync with ``synchronous=FULL``)
        when the block ends; the write lock is held from the first write to the end, so
        keep the block short and never await in it. Nothing written in it is durable, or
        seen by other processes, before it ends; if the commit fails, none of it is
        (StorageError). A block that only reads takes no lock. Nested batches join the
        outer one."""
        if self._batching:
            yield
            return
        self._batching = True
        try:
            with self._atomic("", ("ROLLBACK",), "COMMIT"):
                yield
        finally:
            self._batching = False
            self._batch_version = None

    @contextmanager
    def _atomic(self, begin: str, undo: tuple[str, ...], done: str) -> Iterator[None]:
        """``begin``, the block, ``done`` (either may be ""); on any failure (a failed
        commit too) ``undo``, so no transaction is left open by mistake. SQLite's errors
        become one StorageError."""
        try:
            if begin:
                self.db.execute(begin)
            try:
                yield
                if done and self.db.in_transaction:
                    self.db.execute(done)
            except BaseException:
                self._forget_names()  # numbers given in this transaction may be given again
                with suppress(sqlite3.Error):  # SQLite may have rolled back already
                    for sql in undo if self.db.in_transaction else ():
                        self.db.execute(sql)
                raise
        except sqlite3.Error as exc:
            self._forget_names()
            raise StorageError(self._why(exc)) from None

    def _disk_full(self) -> bool:
        """Whether the disk is (all but) full: SQLite reports that as an I/O error when
        it cannot even grow its shared-memory file."""
        import shutil

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
        """A consistent view across several SELECTs (a batch's transaction is one)."""
        if self.db.in_transaction:
            yield self.db
            return
        self.db.execute("BEGIN")
        try:
            yield self.db
        finally:
            self.db.execute("COMMIT")

    def defer_checkpoints(self) -> None:
        """Never copy the write-ahead log back into the database file on this connection
        (SQLite does it in the commit that takes the log past 1,000 pages, fsyncing both
        files): a server leaves that to a :class:`Checkpointer` in another thread, so its
        event loop never waits for the disk beyond its own commits. The second
        connection (:meth:`append_apart`) neither: its commit of a large merge's row
        checkpointed megabytes while the server's other writers waited for it."""
        self._deferred = True
        self.db.execute("PRAGMA wal_autocheckpoint=0").fetchall()
        with self._apart_lock:
            if self._apart is not None:
                self._apart.execute("PRAGMA wal_autocheckpoint=0").fetchall()

    def rows_written(self) -> int:
        """Rows both connections have written since they opened (to tell whether the
        store wrote)."""
        apart = self._apart
        return self.db.total_changes + (apart.total_changes if apart is not None else 0)

    def data_version(self) -> int:
        """Changes whenever another connection (process) commits to the database."""
        if self._batch_version is not None:
            return self._batch_version
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

    # -- names: each string rows refer to, stored once -------------------------------------

    def _load_names(self) -> None:
        """Learn the names other connections added (names are never changed or removed,
        so what is known stays true)."""
        rows = self.db.execute("SELECT id, name FROM names WHERE id > ?", (self._names_upto,))
        for ref, text in rows:
            self._texts[ref] = text
            self._refs[text] = ref
            self._names_upto = max(self._names_upto, ref)

    def _name(self, ref: int) -> str:
        if ref not in self._texts:
            self._load_names()
        return self._texts.get(ref, "?")

    def _known_ref(self, text: str) -> int | None:
        """The number of a name already stored (None: no row refers to it)."""
        if text not in self._refs:
            # One row, not every name (a 50,000-talent production has 300,000 of them:
            # loading them all cost a third of a second of every open).
            row = self.db.execute("SELECT id FROM names WHERE name = ?", (text,)).fetchone()
            if row is not None:
                self._refs[text], self._texts[row[0]] = row[0], text
        return self._refs.get(text)

    def _interner(self, db: sqlite3.Connection, pending: dict[str, int]) -> Callable[[str], int]:
        """Inside a write transaction: a name's number, storing the name if it is new.
        New numbers are remembered only once the transaction commits (``pending``): a
        rolled-back one may be given to another name."""

        def ref(text: str) -> int:
            found = self._refs.get(text) or pending.get(text)
            if found is None:
                row = db.execute("SELECT id FROM names WHERE name = ?", (text,)).fetchone()
                found = (
                    row[0]
                    if row
                    else db.execute("INSERT INTO names (name) VALUES (?)", (text,)).lastrowid
                )
                assert found is not None
                pending[text] = found
            return found

        return ref

    def _intern_many(
        self, db: sqlite3.Connection, texts: Sequence[str], pending: dict[str, int]
    ) -> None:
        """Inside a write transaction: store every name of ``texts`` not stored yet with
        one statement, and learn their numbers into ``pending`` (see :meth:`_interner`)
        with one query per 500."""
        new = [t for t in texts if t not in self._refs and t not in pending]
        if len(new) < _MANY_NAMES:
            return  # one by one (the interner) is as fast
        db.executemany("INSERT OR IGNORE INTO names (name) VALUES (?)", [(t,) for t in new])
        for start in range(0, len(new), 500):
            chunk = new[start : start + 500]
            found = db.execute(
                f"SELECT name, id FROM names WHERE name IN ({','.join('?' * len(chunk))})", chunk
            )
            pending.update(found)

    def names_unknown(
        self,
        changes: dict[tuple[str, str], set[str]],
        values: dict[tuple[str, str], dict[str, list[Any]]],
    ) -> list[str]:
        """The names an encoding of these changes needs that this store does not know yet
        (reads only what is in memory: safe in a worker thread)."""
        return [name for name in _names_in(changes, values) if name not in self._refs]

    def intern(self, names: Sequence[str]) -> None:
        """Store these names (those not stored yet) in one short transaction: a large
        merge's names go in slices, so no slice holds the write lock (or the event loop)
        for long. Raises StorageError as :meth:`write` does."""
        with self.write() as db:
            pending = self._intern_in(db, names)
        self._remember(pending)

    def encode_known(
        self,
        changes: dict[tuple[str, str], set[str]],
        values: dict[tuple[str, str], dict[str, list[Any]]],
    ) -> bytes | None:
        """These changes encoded for :meth:`append` (``encoded``) when every name they
        refer to is known (:meth:`intern`), else None. Reads only what is in memory, so a
        worker thread may encode a large merge's changes while the event loop goes on."""
        try:
            return _encode_changes(changes, values, self._refs.__getitem__)
        except KeyError:  # forgotten meanwhile (a rollback elsewhere): append encodes
            return None

    def _forget_names(self) -> None:
        """Drop what is known of names (read again when needed): after a rollback, since
        a number remembered in it may be given to another name."""
        self._refs.clear()
        self._texts.clear()
        self._names_upto = 0

    def _remember(self, pending: dict[str, int]) -> None:
        for text, ref in pending.items():
            self._refs[text] = ref
            self._texts[ref] = text

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
        encoded: bytes | None = None,
        exact_after: int | None = None,
    ) -> int | None:
        """Append one update durably; returns its sequence number once committed.
        ``values``: the plain fields' old and new values, for the history. ``encoded``:
        ``changes`` and ``values`` as :meth:`encode_known` encoded them (then not read).
        ``exact_after``: a merge's, see :func:`_insert_update` and :meth:`exact_rows`.

        With ``dedupe`` (updates from peers), bytes already in the log are not stored
        twice and None is returned.
        """
        import hashlib  # here, not at start: OpenSSL's library loads with it

        digest = hashlib.blake2b(data, digest_size=16).digest() if dedupe else None
        pending: dict[str, int] = {}
        with self.write() as db:
            ref = self._interner(db, pending)
            if encoded is None:
                changes, values = changes or {}, values or {}
                if _may_name_many(changes, values):
                    self._intern_many(db, _names_in(changes, values), pending)
                encoded = _encode_changes(changes, values, ref)
            author = ref(author_name(member, device, origin))
            production_ref = ref(production)
            at = self._batch_version  # known without a query: a batch holds the lock
            newest = self._tails.get(production_ref) if at == self._tails_at else None
            seq = _insert_update(
                db, production_ref, author, encoded, digest, data, exact_after, newest
            )
            if seq is not None:
                self._note_tail(at, production_ref, seq)
        if pending:
            self._remember(pending)
        return seq

    def _note_tail(self, at: int | None, production: int, seq: int) -> None:
        """Remember row ``seq`` as ``production``'s newest (see ``_tails``); a row
        written outside a batch forgets them all (its data_version is not known)."""
        if at is None or at != self._tails_at:
            self._tails, self._tails_at = {}, at
        if at is not None:
            self._tails[production] = seq

    def append_apart(
        self,
        production: str,
        data: bytes,
        *,
        author: str,
        encoded: bytes,
        dedupe: bool,
        exact_after: int | None = None,
    ) -> int | None:
        """:meth:`append` on a connection of its own, for a worker thread: a large
        merge's row (megabytes to write, and perhaps a checkpoint after) is committed
        while the event loop goes on using the main connection. The names it refers to
        (``production``, ``author``: :func:`author_name`) must be stored already
        (:meth:`intern`); KeyError if they are not known (forgotten after a rollback)."""
        import hashlib  # here, not at start: OpenSSL's library loads with it

        refs = self._refs[production], self._refs[author]
        digest = hashlib.blake2b(data, digest_size=16).digest() if dedupe else None
        with self._apart_transaction() as db:
            return _insert_update(db, *refs, encoded, digest, data, exact_after)

    def intern_apart(self, names: Sequence[str]) -> None:
        """:meth:`intern` on the second connection, for a worker thread: a large merge's
        names (half a million: seconds of work) go in slices, each one short transaction,
        while the event loop goes on; its own writes wait for SQLite's lock a slice at
        most. Raises StorageError as :meth:`write` does."""
        with self._apart_transaction() as db:
            pending = self._intern_in(db, names)
        self._remember(pending)

    def _intern_in(self, db: sqlite3.Connection, names: Sequence[str]) -> dict[str, int]:
        """Inside a write transaction on ``db``: store the names not stored yet; their
        numbers, to remember once it commits."""
        pending: dict[str, int] = {}
        self._intern_many(db, names, pending)
        ref = self._interner(db, pending)
        for name in names:
            ref(name)
        return pending

    @contextmanager
    def _apart_transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction on the second connection (opened once needed; one
        thread at a time); SQLite's failures become StorageError, nothing written."""
        with self._apart_lock:
            if self._apart is None:
                self._apart = self._connect_apart()
            db = self._apart
            try:
                db.execute("BEGIN IMMEDIATE")
                try:
                    yield db
                    db.execute("COMMIT")
                except BaseException:
                    with suppress(sqlite3.Error):
                        db.execute("ROLLBACK")
                    raise
            except sqlite3.Error as exc:
                raise StorageError(self._why(exc)) from None

    def _connect_apart(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
        db.execute(f"PRAGMA synchronous={self._synchronous}")
        db.execute("PRAGMA busy_timeout=30000")
        if self._deferred:
            db.execute("PRAGMA wal_autocheckpoint=0").fetchall()
        return db

    def load(self, production: str, after: int = 0) -> tuple[list[bytes], int]:
        """The updates needed to bring a document that has seen ``after`` up to date:
        (update blobs in order, the last sequence number included)."""
        blobs, last, _ = self.load_from_snapshot(production, after)
        return blobs, last

    def load_from_snapshot(
        self, production: str, after: int = 0
    ) -> tuple[list[bytes], int, str | None]:
        """:meth:`load`, and a name for the snapshot's bytes when the first blob is the
        snapshot (its last update, when it was written and its size), else None."""
        with self.read() as db:
            snap = db.execute(
                "SELECT upto, data, ts FROM snapshots WHERE production = ?", (production,)
            ).fetchone()
            blobs: list[bytes] = []
            start = after
            named = None
            if snap is not None and snap[0] > after:
                blobs.append(snap[1])
                start = snap[0]
                named = f"{snap[0]}:{snap[2]!r}:{len(snap[1])}"
            ref = self._known_ref(production)
            rows = db.execute(
                "SELECT seq, data FROM update_data WHERE production = ? AND seq > ? ORDER BY seq",
                (ref, start),
            ).fetchall()
            last = self._last_after(db, production, start)
        blobs.extend(r[1] for r in rows)
        return blobs, max(last, start), named

    def quarantine(self, production: str, data: bytes, reason: str) -> int:
        """Move the log entries of ``production`` whose bytes are ``data`` out of the log
        into the quarantine, with ``reason``, in one transaction (their history rows
        stay). Returns how many moved (0: none left in the log, e.g. the bytes are the
        snapshot's)."""
        ref = self._known_ref(production)
        if ref is None:
            return 0
        with self.write() as db:
            seqs = [
                seq
                for (seq,) in db.execute(
                    "SELECT seq FROM update_data WHERE production = ? AND data = ?", (ref, data)
                )
            ]
            db.executemany(
                "INSERT OR REPLACE INTO quarantine (seq, production, moved, reason, data)"
                " VALUES (?, ?, ?, ?, ?)",
                [(seq, ref, round(time.time()), reason, data) for seq in seqs],
            )
            db.executemany("DELETE FROM update_data WHERE seq = ?", [(seq,) for seq in seqs])
        return len(seqs)

    def quarantined(self, production: str) -> list[QuarantinedUpdate]:
        """The quarantined updates of a production, oldest entry first (none in a
        read-only file made before the quarantine existed)."""
        if not _has_table(self.db, "quarantine"):
            return []
        rows = self.db.execute(
            "SELECT q.seq, u.ts, q.moved, u.author, q.reason, q.data FROM quarantine q"
            " LEFT JOIN updates u USING (seq) WHERE q.production = ? ORDER BY q.seq",
            (self._known_ref(production),),
        ).fetchall()
        out = []
        for seq, ts, moved, author, reason, data in rows:
            who = self._author(author) if author is not None else ("", "", "")
            out.append(
                QuarantinedUpdate(seq, float(ts or 0), float(moved), *who, reason, bytes(data))
            )
        return out

    def position(self, production: str) -> int:
        """The last sequence number :meth:`load` would include for ``production`` (a
        compaction leaves it as it is: the content is the same)."""
        with self.read() as db:
            upto = db.execute(
                "SELECT COALESCE(MAX(upto), 0) FROM snapshots WHERE production = ?", (production,)
            ).fetchone()[0]
            return max(self._last_after(db, production, upto), int(upto))

    def logged_between(self, production: str, low: int, high: int) -> bool:
        """Whether ``production`` has a log row numbered strictly between the two."""
        ref = self._known_ref(production)
        found = self.db.execute(
            "SELECT 1 FROM updates WHERE seq > ? AND seq < ? AND production = ? LIMIT 1",
            (low, high, ref),
        ).fetchone()
        return found is not None

    def logged_after(self, production: str, low: int) -> list[int]:
        """The sequence numbers of ``production``'s log rows after ``low``, in order."""
        rows = self.db.execute(
            "SELECT seq FROM updates WHERE production = ? AND seq > ? ORDER BY seq",
            (self._known_ref(production), low),
        ).fetchall()
        return [int(seq) for (seq,) in rows]

    def exact_rows(self, production: str, seqs: Sequence[int]) -> set[int]:
        """Which of the log rows ``seqs`` are marked exact: a peer's update whose logged
        changes are every entity it changed in the log before it, those its structs
        completed included (structs that waited there for it). A read copy of the log
        before such a row may be patched with them (StoredProduction.patch_read_copy)."""
        if self._has_exact is None:
            columns = self.db.execute("PRAGMA table_info(updates)")
            self._has_exact = "exact" in {row[1] for row in columns}
        if not self._has_exact:
            return set()  # a read-only file of an older castroom: none known
        out: set[int] = set()
        for start in range(0, len(seqs), 500):  # SQLite's bound on parameters
            some = seqs[start : start + 500]
            rows = self.db.execute(
                f"SELECT seq FROM updates WHERE production = ? AND exact = 1"
                f" AND seq IN ({', '.join('?' * len(some))})",
                (self._known_ref(production), *some),
            )
            out.update(int(seq) for (seq,) in rows)
        return out

    def entries(self, production: str, seqs: Sequence[int]) -> list[LogEntry]:
        """The log entries numbered ``seqs`` that are still logged, in order."""
        out: list[LogEntry] = []
        for start in range(0, len(seqs), 500):  # SQLite's bound on parameters
            some = seqs[start : start + 500]
            sql = (
                f"SELECT {_ENTRY_COLUMNS} FROM updates u LEFT JOIN update_data d USING (seq)"
                f" WHERE u.production = ? AND seq IN ({', '.join('?' * len(some))}) ORDER BY seq"
            )
            out += self._entries(sql, (self._known_ref(production), *some), None)
        return out

    def _last_after(self, db: sqlite3.Connection, production: str, start: int) -> int:
        """The last logged sequence number of ``production`` after ``start`` (0: none)."""
        return int(
            db.execute(
                "SELECT COALESCE(MAX(seq), 0) FROM updates WHERE production = ? AND seq > ?",
                (self._known_ref(production), start),
            ).fetchone()[0]
        )

    def read_copy(self, production: str) -> tuple[str, bytes] | None:
        """(version, bytes) of the production's stored read copy, if there is one."""
        try:
            row = self.db.execute(
                "SELECT version, data FROM read_copies WHERE production = ?", (production,)
            ).fetchone()
        except sqlite3.OperationalError:  # a read-only file from before the table
            return None
        return (row[0], row[1]) if row else None

    def read_copy_parts(
        self, production: str, names: Sequence[str] | None = None
    ) -> dict[str, bytes]:
        """The stored parts of the production's read copy: those ``names`` (all without)
        that exist. Read with :meth:`read_copy` inside one :meth:`read` for a consistent
        copy."""
        query = "SELECT part, data FROM read_copy_parts WHERE production = ?"
        try:
            if names is None:
                return dict(self.db.execute(query, (production,)).fetchall())
            found: dict[str, bytes] = {}
            for start in range(0, len(names), 500):  # SQLite's bound on parameters
                some = names[start : start + 500]
                marks = ", ".join("?" * len(some))
                rows = self.db.execute(f"{query} AND part IN ({marks})", (production, *some))
                found.update(rows.fetchall())
            return found
        except sqlite3.OperationalError:  # a read-only file from before the table
            return {}

    def read_copy_part_sizes(self, production: str) -> dict[str, int]:
        """The bytes each of the production's stored read copy parts is stored in."""
        try:
            rows = self.db.execute(
                "SELECT part, length(data) FROM read_copy_parts WHERE production = ?",
                (production,),
            ).fetchall()
        except sqlite3.OperationalError:  # a read-only file from before the table
            return {}
        return {name: int(size) for name, size in rows}

    def keep_read_copy(
        self,
        production: str,
        version: str,
        head: bytes,
        parts: dict[str, bytes],
        *,
        drop: Sequence[str] | None = None,
        was: str | None = None,
    ) -> bool:
        """Store a read copy in one transaction: its head and ``parts``, replacing every
        part stored before, or (``drop`` given: a patch) only ``parts`` and ``drop``,
        and only if the copy stored is still of version ``was``. Returns whether it
        stored it."""
        with self.write() as db:
            if was is not None:
                row = db.execute(
                    "SELECT version FROM read_copies WHERE production = ?", (production,)
                ).fetchone()
                if row is None or row[0] != was:
                    return False
            if drop is None:
                db.execute("DELETE FROM read_copy_parts WHERE production = ?", (production,))
            else:
                db.executemany(
                    "DELETE FROM read_copy_parts WHERE production = ? AND part = ?",
                    [(production, name) for name in drop],
                )
            db.execute(
                "INSERT OR REPLACE INTO read_copies (production, version, data) VALUES (?, ?, ?)",
                (production, version, head),
            )
            db.executemany(
                "INSERT OR REPLACE INTO read_copy_parts (production, part, data) VALUES (?, ?, ?)",
                [(production, name, data) for name, data in parts.items()],
            )
        return True

    def log_bytes(self, production: str) -> tuple[int, int]:
        """(bytes in the snapshot, bytes in the log after it)."""
        snap = self.db.execute(
            "SELECT upto, length(data) FROM snapshots WHERE production = ?", (production,)
        ).fetchone()
        upto, snap_size = snap if snap else (0, 0)
        tail = self.db.execute(
            "SELECT COALESCE(SUM(length(data)), 0) FROM update_data WHERE production = ?"
            " AND seq > ?",
            (self._known_ref(production), upto),
        ).fetchone()[0]
        return int(snap_size), int(tail)

    def needs_compaction(self, production: str, floor: int) -> bool:
        """Whether the log after the snapshot outgrew the snapshot and ``floor`` bytes."""
        snapshot, tail = self.log_bytes(production)
        return tail > max(snapshot, floor)

    def compact(self, production: str, *, wait: bool = True) -> tuple[int, int]:
        """Fold the log into a new snapshot. Returns (updates folded, snapshot bytes).

        The fold (the slow part) runs outside any write transaction, and the write
        transaction that swaps the snapshot in holds nothing else: the rows it made dead
        (those the snapshot covers: no load reads them again) are deleted afterwards,
        :data:`SLICE_ROWS` at a time, and the freed pages given back likewise, with the
        write lock let go between two slices (``wait=False``, a server's background
        compaction: for :data:`SLICE_PAUSE` seconds, so that a peer's write waiting for
        the lock gets it), so no writer waits for more than one slice. If another
        process compacted meanwhile, this one gives way and folds nothing. The history
        rows stay (their bytes go), runs of keystrokes become one row each
        (:data:`COALESCE_SECONDS`); ``wait``: the file shrinks at once, waiting for
        readers (else at the next checkpoint)."""
        ref = self._known_ref(production)
        pause = 0.0 if wait else SLICE_PAUSE
        with self.read() as db:
            snap = db.execute(
                "SELECT upto, data FROM snapshots WHERE production = ?", (production,)
            ).fetchone()
            upto = snap[0] if snap else 0
            rows = db.execute(
                "SELECT seq, data FROM update_data WHERE production = ? AND seq > ? ORDER BY seq",
                (ref, upto),
            ).fetchall()
        self._drop_folded(ref, upto, pause)  # left by a compaction cut short, if any
        if not rows:
            return 0, len(snap[1]) if snap else 0
        merged = fold(([snap[1]] if snap else []) + [r[1] for r in rows])
        last = rows[-1][0]
        with self.write() as db:
            now = db.execute(
                "SELECT COALESCE(MAX(upto), 0) FROM snapshots WHERE production = ?",
                (production,),
            ).fetchone()[0]
            if now != upto:
                return 0, len(snap[1]) if snap else 0  # another process compacted first
            db.execute(
                "INSERT OR REPLACE INTO snapshots (production, upto, ts, data) VALUES (?, ?, ?, ?)",
                (production, last, time.time(), merged),
            )
        # Keep who/when/what for history; the bytes now live in the snapshot.
        self._drop_folded(ref, last, pause)
        self._coalesce(ref, upto, last, pause)
        self.reclaim(wait=wait, pause=pause)
        return len(rows), len(merged)

    def _slices(self, statement: str, args: Sequence[Any], pause: float) -> None:
        """Run a DELETE bounded by ``LIMIT`` (SLICE_ROWS) in write transactions of its own
        until it deletes nothing, pausing between two."""
        while True:
            with self.write() as db:
                if db.execute(statement, args).rowcount < SLICE_ROWS:
                    return
            _pause(pause)

    def _drop_folded(self, ref: int | None, upto: int, pause: float) -> None:
        """Delete the log bytes a snapshot up to ``upto`` holds (dead rows: loads read only
        what follows the snapshot), in slices."""
        if ref is None or not upto:
            return
        self._slices(
            "DELETE FROM update_data WHERE seq IN (SELECT seq FROM update_data"
            f" WHERE production = ? AND seq <= ? LIMIT {SLICE_ROWS})",
            (ref, upto),
            pause,
        )

    def _coalesce(self, ref: int | None, upto: int, last: int, pause: float) -> None:
        """Drop each history row that a later one of the same author repeats (the same
        entities and fields, no values to show) at most COALESCE_SECONDS later: a run of
        keystrokes in a note is one row, even with a colleague typing elsewhere between.
        Found by a read, deleted in slices (a row gone already is no matter). Only rows
        alike in being exact or not (a read copy's patch trusts only a run of exact
        rows: one not exact must not vanish behind one that is)."""
        rows = self.db.execute(
            "SELECT seq, ts, author, changes, exact FROM updates"
            " WHERE production = ? AND seq > ? AND seq <= ? ORDER BY seq",
            (ref, upto, last),
        ).fetchall()
        latest: dict[tuple[int, bytes, int | None], tuple[int, int]] = {}
        repeated = []
        for seq, ts, author, changes, exact in rows:
            if _has_values(changes):
                continue
            key = (author, changes, exact)
            if key in latest and ts - latest[key][1] <= COALESCE_SECONDS:
                repeated.append((latest[key][0],))
            latest[key] = (seq, ts)
        for start in range(0, len(repeated), SLICE_ROWS):
            if start:
                _pause(pause)
            with self.write() as db:
                db.executemany(
                    "DELETE FROM updates WHERE seq = ?", repeated[start : start + SLICE_ROWS]
                )

    def reclaim(self, *, wait: bool = True, pause: float = 0.0) -> None:
        """Give the pages compaction freed back to the disk, SLICE_ROWS pages per write
        transaction (the file shrinks when the WAL is next checkpointed: now with
        ``wait``, which waits for readers and holds writers meanwhile, so a server's
        background compaction does not)."""
        if self.read_only:
            return
        with suppress(sqlite3.Error):  # busy: the next compaction tries again
            free = self._free_pages()
            while free:
                # executescript steps it to the end (execute frees one page per step).
                self.db.executescript(f"PRAGMA incremental_vacuum({SLICE_ROWS});")
                left = self._free_pages()
                if left >= free:
                    break  # nothing given back (a file without incremental vacuum)
                free = left
                if free:
                    _pause(pause)
            mode = "TRUNCATE" if wait else "PASSIVE"
            self.db.execute(f"PRAGMA wal_checkpoint({mode})").fetchall()

    def _free_pages(self) -> int:
        return int(self.db.execute("PRAGMA freelist_count").fetchone()[0])

    def _entries(self, sql: str, args: Sequence[Any], keep: Callable[[str, str], bool] | None):
        """Log entries from ``sql`` (selecting _ENTRY_COLUMNS), each with only the changes
        ``keep`` accepts (none: left out)."""
        for seq, ts, author, blob, size in self.db.execute(sql, args):
            changes, values = _decode_changes(blob, self._name, keep)
            if keep is not None and not changes:
                continue
            member, device, origin = self._author(author)
            yield LogEntry(seq, float(ts), member, device, origin, changes, size or 0, values)

    def _author(self, ref: int) -> tuple[str, str, str]:
        member, device, origin = [*self._name(ref).split(_AUTHOR_SEP), "", "", ""][:3]
        return member, device, origin

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
        if entity is not None and self._known_ref(entity) is None:
            return []  # nothing logged ever named it
        sql = (
            f"SELECT {_ENTRY_COLUMNS} FROM updates u LEFT JOIN update_data d USING (seq)"
            " WHERE u.production = ?"
        )
        args: list[Any] = [self._known_ref(production)]
        if before is not None:
            sql += " AND seq < ?"
            args.append(before)
        sql += " ORDER BY seq DESC"
        if not entity:
            sql += " LIMIT ?"
            args.append(limit)
        keep = (lambda _c, i: i == entity) if entity else None
        out: list[LogEntry] = []
        for entry in self._entries(sql, args, keep):
            out.append(entry)
            if len(out) >= limit:
                break
        return out

    def last_writers(
        self, production: str, entities: Iterable[tuple[str, str]]
    ) -> dict[tuple[str, str], LogEntry]:
        """The latest log entry that touched each (collection, id), listing only its
        changes to that entity (to say where a bad edit came from). One pass over the log,
        newest first, each entry decoded once, stopping when every entity is found: asking
        for 10,000 entities is one pass, not 10,000 (it took 90 s)."""
        wanted = set(entities)
        found: dict[tuple[str, str], LogEntry] = {}
        if not wanted:
            return found
        entries = self._entries(
            f"SELECT {_ENTRY_COLUMNS} FROM updates u LEFT JOIN update_data d USING (seq)"
            " WHERE u.production = ? ORDER BY seq DESC",
            (self._known_ref(production),),
            lambda c, i: (c, i) in wanted and (c, i) not in found,
        )
        for entry in entries:
            for change in entry.changes:
                found[(change[0], change[1])] = entry._replace(changes=[change])
            if len(found) == len(wanted):
                break
        return found

    def log_since(self, production: str, after: int, *, origin: str) -> tuple[int, int]:
        """(the last sequence number, how many entries after ``after`` came from another
        origin than ``origin``): whether a document holds anything a peer may lack."""
        rows = self.db.execute(
            "SELECT seq, author FROM updates WHERE production = ? AND seq > ?",
            (self._known_ref(production), after),
        ).fetchall()
        others = sum(self._author(author)[2] != origin for _, author in rows)
        return max((seq for seq, _ in rows), default=0), others

    # -- sync tokens (hashed; castroom.sync.auth gives them meaning) -------------------------

    def add_token(self, record: TokenRecord) -> None:
        with self.write() as db:
            db.execute(
                f"INSERT INTO sync_tokens ({_TOKEN_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
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


class Checkpointer:
    """Copies a store's write-ahead log back into its database file, on a connection of
    its own, for a thread beside a server whose store :meth:`Store.defer_checkpoints`.
    Passive: it waits for no reader and no writer (peers' commits go on meanwhile); what
    a reader still needs is copied next time."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._db: sqlite3.Connection | None = None

    def run(self) -> tuple[int, int]:
        """One checkpoint: (pages in the log, pages copied back so far)."""
        if self._db is None:
            self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        try:
            _, log, done = self._db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        except sqlite3.Error as exc:
            raise StorageError(f"cannot checkpoint {self.path}: {exc}") from None
        return int(log), int(done)

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None


def compact_file(path: str, production: str, floor: int | None = None) -> tuple[int, int, int]:
    """Compact one production of the store at ``path`` on a connection of its own, for a
    worker process (a server's background compaction: the fold holds the GIL, so it must
    not run in the server's process); with ``floor``, only if it needs it
    (:meth:`Store.needs_compaction`: asking sums the log, which is not for a server's
    event loop either). Returns (updates folded, snapshot bytes, the pid)."""
    store = Store(Path(path))
    try:
        if floor is not None and not store.needs_compaction(production, floor):
            return 0, 0, os.getpid()
        folded, size = store.compact(production, wait=False)
    finally:
        store.close()
    return folded, size, os.getpid()
