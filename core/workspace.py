"""A workspace: a folder with the SQLite store, a TOML config and this device's identity.

Several processes may use one workspace at once (a running server and a CLI command):
each open production notices the others' commits (SQLite's ``data_version``) and merges
them before every read or write, so nobody has to restart to see a colleague's change.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shlex
import sqlite3
import time
import tomllib
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from . import model, yupdate
from .blobs import BlobStore
from .errors import (
    Ambiguous,
    BadUpdate,
    CastroomError,
    NotFound,
    SkippedStoredUpdates,
    StorageError,
    UpdateLimit,
)
from .labels import short_ids
from .reads import Changes, InvalidEntity
from .storage import (
    NAMES_PER_TRANSACTION,
    AtticEntry,
    LogEntry,
    QuarantinedUpdate,
    Store,
    author_name,
    fold,
)
from .yupdate import EMPTY_UPDATE, decode_state_vector

if TYPE_CHECKING:
    from .document import CastDocument
    from .plugins import Plugins

DB_NAME = "castroom.db"
#: The blob store's folder (media/ab/cdef...: see castroom.core.blobs).
MEDIA_DIR = "media"
CONFIG_NAME = "config.toml"
#: Compact when the log after the snapshot outgrows the snapshot (and this floor).
COMPACT_FLOOR = 4 * 1024 * 1024
#: kv key prefix: "1" when a production is deleted (its document's ``deleted`` field).
_log = logging.getLogger("castroom.workspace")
_DELETED_KEY = "production-deleted:"
#: production id -> the stored snapshot last walked and found within the limits.
_WALKED_KEY = "snapshot-walked:"
#: Rows of ours (commits and merges) remembered to patch a read copy with; past them,
#: the memory starts again (a copy older than that is not patched by this process).
_PATCH_AT_MOST = 10_000


class Identity(msgspec.Struct, kw_only=True):
    """Who is editing, and from which device. Stamped on every update in the log."""

    member: str
    device_id: model.FolderId  # names this device's folder in a shared folder
    device_name: str
    job: str = "casting_director"


def default_path() -> Path:
    env = os.environ.get("CASTROOM_WORKSPACE")
    if env:
        return Path(env).expanduser()
    import platformdirs  # only without --workspace: a module ~2 ms to import

    return Path(platformdirs.user_data_dir("castroom", appauthor=False))


class Workspace:
    """A workspace folder. Use :meth:`open` (or as a context manager) and close it."""

    def __init__(self, path: Path, identity: Identity, config: dict[str, Any]) -> None:
        self.path = path
        self.identity = identity
        self.config = config
        synchronous = str(config.get("storage", {}).get("synchronous", "NORMAL")).upper()
        if synchronous not in ("NORMAL", "FULL", "EXTRA"):
            raise CastroomError(f"config storage.synchronous: unknown mode {synchronous!r}")
        self.store = Store(path / DB_NAME, synchronous=synchronous)
        self._open: dict[str, StoredProduction] = {}
        self._plugins: Plugins | None = None
        #: The workspace's media files, by SHA-256 (shared by its productions).
        self.blobs = BlobStore(path / MEDIA_DIR)
        #: While a :meth:`batch` is open: what to do once it commits (tell listeners), and
        #: the productions it wrote to (rebuilt from the store if the commit fails).
        self._after_commit: list[Callable[[], None]] | None = None
        self._batched: set[StoredProduction] = set()

    @classmethod
    def open(
        cls, path: str | Path | None = None, *, create: bool = True, member: str | None = None
    ) -> Workspace:
        root = Path(path).expanduser() if path else default_path()
        config_file = root / CONFIG_NAME
        if not config_file.exists():
            if not create:
                raise NotFound(f"no castroom workspace at {root} (run `castroom init`)")
            # Only its owner may look inside: the database holds everything the team wrote.
            root.mkdir(mode=0o700, parents=True, exist_ok=True)
            # Imported here, creating a workspace, not by every command that opens one.
            import socket

            import tomli_w

            identity = Identity(
                member=member or os.environ.get("CASTROOM_MEMBER") or _user(),
                device_id=model.new_id(),
                device_name=socket.gethostname(),
            )
            config = {
                "identity": msgspec.to_builtins(identity),
                "storage": {"synchronous": "NORMAL"},
            }
            tmp = config_file.with_suffix(".tmp")
            with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as out:
                out.write(tomli_w.dumps(config).encode())
            tmp.replace(config_file)
        try:
            config = tomllib.loads(config_file.read_text())
            identity = msgspec.convert(config.get("identity", {}), Identity)
        except (tomllib.TOMLDecodeError, msgspec.ValidationError, OSError) as exc:
            raise StorageError(f"bad workspace config {config_file}: {exc}") from None
        if member:
            identity = msgspec.structs.replace(identity, member=member)
        return cls(root, identity, config)

    def opened(self) -> list[StoredProduction]:
        """The productions open in this process (a server's, for background upkeep)."""
        return [p for p in self._open.values() if p.id is not None]

    def close(self) -> None:
        for production in self._open.values():
            if production.copy_wanted:
                production.keep_read_copy()
            else:
                production.patch_read_copy()
            # Fold the log once it outgrows its snapshot, so opening stays fast.
            if production.id is not None:
                with contextlib.suppress(CastroomError, sqlite3.Error):
                    production.maybe_compact()
            production.close()
        self._open.clear()
        self.store.close()

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Group commit: every update merged in the block (``apply_update``) is stored in
        one SQLite transaction, committed when the block ends, so a burst of peers' edits
        costs one commit. Each is durable once the block has ended without error, not
        before: whoever acknowledges an edit does so after the block. The documents hold
        the updates at once, and update listeners hear of them at once (the sync server
        relays nothing before the commit either); the documents' change listeners
        (plugins) hear of them after the commit. If the commit fails, nothing of the
        block is stored, every production written in it is rebuilt from the store, and
        StorageError is raised. Keep the block synchronous and short: it holds the
        workspace's write lock. Nested batches join the outer one."""
        if self._after_commit is not None:
            yield
            return
        self._after_commit = []
        try:
            with self.store.batch():
                yield
        except BaseException:
            for production in self._batched:
                with contextlib.suppress(CastroomError, sqlite3.Error):
                    production._reload()
            raise
        else:
            for call in self._after_commit:
                call()
        finally:
            self._after_commit = None
            self._batched = set()

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- plugins ---------------------------------------------------------------------------

    @property
    def plugins(self) -> Plugins:
        """This workspace's plugin manager (made on first use, one per workspace)."""
        if self._plugins is None:
            from .plugins import make_plugins

            self._plugins = make_plugins()
        return self._plugins

    # -- productions ------------------------------------------------------------------------

    def productions(self, *, include_deleted: bool = True) -> list[tuple[str, str]]:
        """(id, title) of the productions in the workspace (sync and bundles move deleted
        ones too; listings and the choice among several leave them out)."""
        known = self.store.productions()
        if include_deleted:
            return known
        return [(i, t) for i, t in known if not self.is_deleted(i)]

    def short_ids(self) -> dict[str, str]:
        """Each production's id as people see it: its shortest unique prefix here."""
        return short_ids(i for i, _ in self.store.productions())

    def is_deleted(self, production_id: str) -> bool:
        """Whether a production is (soft) deleted. Read from a note kept beside the log
        (see StoredProduction._note_deleted), so listing needs no document opened."""
        return self.store.get_kv(_DELETED_KEY + production_id) == "1"

    def create_production(self, title: str, **fields: Any) -> StoredProduction:
        doc = _new_document()
        production = StoredProduction(self, None, doc)
        created = doc.init_production(title, **fields)
        production.bind(created.id)
        return production

    def resolve_production(self, ref: str | None = None, *, prefer_deleted: bool = False) -> str:
        """A production by id, id prefix or title; without ``ref``, the only live one.
        Live productions win over deleted ones (``prefer_deleted``, for restoring: the
        other way round)."""
        known = self.productions()
        if not known:
            raise NotFound(f"no production in workspace {self.path} (run `castroom init`)")
        if ref is None:
            live = [(i, t) for i, t in known if not self.is_deleted(i)]
            if len(live) == 1:
                return live[0][0]
            if not live:
                raise NotFound(
                    f"every production in workspace {self.path} is deleted"
                    " (`castroom production list --all`, `castroom production restore`)"
                )
            shorts = self.short_ids()
            names = ", ".join(f"{t} ({shorts[i]})" for i, t in live)
            raise Ambiguous(
                f"this workspace holds several productions; pick one with --production: {names}"
            )
        exact = [i for i, t in known if i == ref]
        if exact:
            return exact[0]
        matches = [i for i, t in known if i.startswith(ref) or t.casefold() == ref.casefold()]
        gone = [i for i in matches if self.is_deleted(i)]
        kept = [i for i in matches if i not in gone]
        for group in (gone, kept) if prefer_deleted else (kept, gone):
            if len(group) == 1:
                return group[0]
            if group:
                titles, shorts = dict(known), self.short_ids()
                which = ", ".join(f"{titles[i]} ({shorts[i]})" for i in group[:5])
                raise Ambiguous(f"{ref!r} matches {len(group)} productions: {which}; use the id")
        raise NotFound(f"no production matching {ref!r}")

    def production(self, ref: str | None = None) -> StoredProduction:
        """Open a production (by id, id prefix or title; or the only one there is)."""
        production_id = self.resolve_production(ref)
        if production_id not in self._open:
            production = StoredProduction(self, production_id, _new_document())
            # Opening is not a change: listeners (plugins' castroom_changed, which would
            # load every plugin) hear of changes made after the production is open.
            listeners, production.doc.on_change = production.doc.on_change, []
            try:
                production.refresh()
            finally:
                production.doc.on_change = listeners
            # A schema migration is upkeep, not an edit: it runs even on a deleted
            # production, which must stay readable.
            production.writable_when_deleted = True
            try:
                production.doc.migrate()
            finally:
                production.writable_when_deleted = False
            production.patch_from = production.seen
            self._open[production_id] = production
        return self._open[production_id]

    def reading(self, ref: str | None = None) -> StoredProduction:
        """A production to read, not write: the open one if it is open, else its read
        copy when one of the current log position is stored (no CRDT is loaded: see
        :mod:`castroom.core.read_copy`), else opened (and a read copy kept on close)."""
        production_id = self.resolve_production(ref)
        if production_id in self._open:
            return self._open[production_id]
        reader, stale = self._copy_reader(production_id)
        if reader is not None:
            return reader
        production = self.production(production_id)
        # A copy only behind by other processes' own writes (two writers at once, one
        # killed before it patched) is patched from the log and read: the CRDT is loaded
        # all the same, but not turned into JSON whole (1 s of 2.9 at 50,000 talents).
        if stale and production.patch_read_copy(stale=True):
            reader, _ = self._copy_reader(production_id)
            if reader is not None:
                return reader
        production.copy_wanted = production.doc.keep_json = True
        return production

    def _copy_reader(self, production_id: str) -> tuple[StoredProduction | None, bool]:
        """A reader of the production's stored read copy, if it holds the current log
        position; and whether a copy of an earlier position is stored."""
        from . import read_copy

        copy = None
        with self.store.read():  # the head and its parts of one copy
            position = self.store.position(production_id)
            stored = self.store.read_copy(production_id)
            if stored is not None and stored[0] == read_copy.version(position):
                copy = read_copy.decode(stored[1], self.store.read_copy_parts(production_id))
        if copy is None:
            at = read_copy.position_of(stored[0]) if stored is not None else None
            return None, at is not None and at < position
        reader = StoredProduction(self, production_id, copy)
        copy.before_access = None  # a copy of one position: nothing to merge into it
        reader.seen = position
        return reader, False

    def adopt(
        self, production_id: str, update: bytes, *, origin: str, device: str = "", member: str = ""
    ) -> tuple[StoredProduction, Changes]:
        """Merge an update into a production, creating the production here if it is new
        (how a new team member's empty workspace receives a bundle or a sync). The id
        names folders in a shared folder, so it must be a plain name (UnsafeId).

        In two steps around the merge, which the sync server takes apart to merge a
        large first push off its event loop: :meth:`adoptee`, :meth:`adopted`."""
        production = self.adoptee(production_id)
        changes = production.apply_update(update, origin=origin, device=device, member=member)
        self.adopted(production)
        return production, changes

    def unwalked_snapshot(self, production_id: str) -> tuple[bytes, str] | None:
        """The stored snapshot that opening this production would walk first (bytes and
        name), or None: open already, no snapshot, or walked before by this version. A
        server walks it in a worker thread (:func:`yupdate.guard_update`) and then calls
        :meth:`snapshot_walked`, so its event loop does not walk it while opening."""
        if production_id in self._open:
            return None
        blobs, _, named = self.store.load_from_snapshot(production_id)
        if named is None or _walked_before(self.store, production_id, named):
            return None
        return blobs[0], named

    def snapshot_walked(self, production_id: str, named: str) -> None:
        """Remember that the snapshot ``named`` keeps within the limits (walked)."""
        _remember_walked(self.store, production_id, named)

    def adoptee(self, production_id: str) -> StoredProduction:
        """The production an adopted update merges into: the open one, the stored one, or
        a new empty one (kept open, so a second adoption before :meth:`adopted` merges
        into the same)."""
        model.folder_id(production_id, "production id")
        if production_id in self._open:
            return self._open[production_id]
        if production_id in dict(self.productions()):
            return self.production(production_id)
        production = self._open[production_id] = StoredProduction(
            self, production_id, _new_document()
        )
        # New here: its read copy is kept whole on close (nothing to patch yet), so the
        # first read after a sync or bundle brought it is not a cold one.
        production.copy_wanted = True
        return production

    def adopted(self, production: StoredProduction) -> None:
        """After an adoption's merge: listed, once its document holds the production."""
        if production.id is not None and production.doc.production_id is not None:
            self.store.add_production(production.id, production.title())


def _walked_before(store: Store, production_id: str, named: str) -> bool:
    """Whether this version walked the snapshot ``named`` and found it within limits."""
    return store.get_kv(_WALKED_KEY + production_id) == f"{named}|{yupdate.limits_signature()}"


def _remember_walked(store: Store, production_id: str, named: str) -> None:
    with contextlib.suppress(StorageError):  # a read-only workspace walks every time
        store.set_kv(_WALKED_KEY + production_id, f"{named}|{yupdate.limits_signature()}")


def _new_document() -> CastDocument:
    # Imported here: a command reading a production's read copy never loads pycrdt.
    from .document import CastDocument

    return CastDocument()


#: Updates up to this size (bytes) are always diffed against the state vector before
#: they are stored (Yrs: 1-4 us for a live edit) instead of first checked for re-sent
#: structs in Python, whose decode of the state vector grows with every client the
#: production ever had (7 us at 6 clients, 180 us at 100: once per live update).
DIFF_ALWAYS = 4 * 1024


def _needs_diff(update: bytes, shape: yupdate.UpdateShape | None, known: bytes) -> bool:
    """Whether ``update`` may hold structs a document with state vector ``known`` had
    (then only its diff against ``known`` is new). A small one is diffed whatever it
    holds: cheaper than telling."""
    if len(update) <= DIFF_ALWAYS or shape is None:
        return True
    clocks = decode_state_vector(known)
    return any(start < clocks.get(c, 0) for c, start in shape.starts.items())


def _diff_update() -> Callable[[bytes, bytes], bytes]:
    """:func:`castroom.core.crdt.diff_update`, loaded once a merge needs it (a command
    reading a read copy never loads pycrdt); not a relative import per live update, which
    cost 4 % of a merge."""
    global _DIFF_UPDATE
    if _DIFF_UPDATE is None:
        from .crdt import diff_update

        _DIFF_UPDATE = diff_update
    return _DIFF_UPDATE


_DIFF_UPDATE: Callable[[bytes, bytes], bytes] | None = None


def _touches_members(changes: Changes) -> bool:
    return any(collection == "members" for collection, _ in changes)


def _digest(blob: bytes) -> bytes:
    import hashlib  # not at start: OpenSSL's library loads with it

    return hashlib.blake2b(blob, digest_size=16).digest()


def _user() -> str:
    import getpass

    try:
        return getpass.getuser()
    except Exception:
        return "castroom"


class ProductionDeleted(CastroomError):
    """A local write to a deleted production (reads, and merges from peers, still work)."""


class MergeStart(msgspec.Struct, frozen=True):
    """The document's state vector and production id before a merge; and the log row it
    holds up to and the count of the document's changes then (see Merged.base)."""

    known: bytes
    had: str | None
    seen: int = 0
    epoch: int = -1


class Merged(msgspec.Struct, frozen=True):
    """What merging an update into the document made, for the storage step: the part of
    the update that was new (to store and relay), what changed (with the plain fields'
    old and new values, for the history), and the keys it deleted."""

    update: bytes
    changes: Changes
    values: dict[tuple[str, str], dict[str, list[Any]]]
    had: str | None
    removed: list[tuple[str, str]]
    #: ``changes`` and ``values`` encoded for the log, their names stored (prepare_store).
    encoded: bytes | None = None
    #: Whether it changed a member (found in the merging thread: half a million changes
    #: take the event loop tens of milliseconds to look through).
    members: bool | None = None
    #: The log row the document held up to, and nothing else, when the update merged
    #: into it (None: not so, or its change tracking is not trusted): ``changes`` are then
    #: every entity the update changed in the log up to there, those whose structs waited
    #: for it included, so its row is marked exact if appended right after that one.
    base: int | None = None
    #: The count of the document's changes once merged (nothing else merged since: the
    #: row may be exact).
    epoch: int = -1


class Finishing(msgspec.Struct, frozen=True, kw_only=True):
    """What storing a merge needs decided before its row is appended (begin_finish)."""

    origin: str
    member: str
    #: The device it came from ("": made on this one).
    device: str
    #: What it hard-deleted, as the durable state before it held it (for the attic).
    removed: dict[tuple[str, str], Any]
    #: Whether there is a row to append (a production's, and a non-empty update).
    store: bool


class StoredProduction:
    """An open production whose every write is durable: the document plus its log.

    A deleted production is read-only here: a local write is refused (and dropped) until
    ``production restore``, so nobody keeps casting a show the team has shelved without
    noticing. Peers' updates still merge (refusing them would split the replicas).
    """

    def __init__(self, workspace: Workspace, production_id: str | None, doc: CastDocument):
        self.workspace = workspace
        self.store = workspace.store
        self.id = production_id
        self.doc = doc
        self.seen = 0  # the last log sequence number merged into ``doc``
        #: origin_of's answers, and the log position they hold for.
        self._origins: dict[tuple[str, str], str | None] = {}
        self._origins_at = -1
        self._version = -1
        #: Let local writes through even while the production is deleted (migrations).
        self.writable_when_deleted = False
        #: Who local writes are recorded as, when not this workspace's member
        #: (:meth:`writing_as`).
        self._author: str | None = None
        #: Bytes the store holds for this production (snapshot + log), kept up to date by
        #: our own appends and recounted when another process commits (None: unknown).
        self._held: int | None = None
        #: _member_of's answers, until the team (the members collection) changes.
        self._members: dict[str, str] = {}
        #: Digests of stored bytes that do not load but could not be moved aside.
        self._left_out: set[bytes] = set()
        #: Called with (update bytes, origin, changes) for every update this object makes
        #: durable or merges: "local" writes, "storage" (another process's commits picked
        #: up by refresh) and peers' updates. The sync server relays them to live peers.
        self.update_listeners: list[Callable[[bytes, str, Changes], None]] = []
        #: Opened to be read (Workspace.reading): keep a read copy when closed.
        self.copy_wanted = False
        #: Some stored update was set aside on opening (said each time): no read copy.
        self._opened_without_some = False
        #: The log position from which this object remembers the rows it logged itself
        #: (``_own``: its commits and the peers' updates it merged; their changes are
        #: ``_own_changes``), to patch a read copy when every row after the copy's
        #: position is one of them (:meth:`patch_read_copy`). None: it does not.
        self.patch_from: int | None = None
        self._own: set[int] = set()
        self._own_changes: Changes = {}
        #: Whether refresh merged another process's rows since (patch_read_copy may fold
        #: them in, from the log).
        self._merged_others = False
        #: time.monotonic() of the last row remembered or merged from another process (a
        #: server patches once quiet).
        self.own_at = 0.0
        #: Counts what entered the document (merges, commits, rebuilds): a merge's row is
        #: exact only if nothing else did between its start and its append.
        self._epoch = 0
        doc.on_commit = self._persist
        doc.on_abort = self._reload
        doc.before_access = self.refresh
        doc.on_change.append(self._notify)

    def bind(self, production_id: str) -> None:
        """Attach a just-created document to its id, writing what it holds so far."""
        self.id = production_id
        self.store.add_production(production_id, self.doc.production.title)
        seq = self.store.append(
            production_id,
            self.doc.encode_update(),
            member=self.workspace.identity.member,
            device=self.workspace.identity.device_id,
            origin="local",
            changes={("production", production_id): {"*"}},
        )
        self.doc.take_changes()
        self.seen = seq or 0
        self.workspace._open[production_id] = self
        # A new production's read copy, while it holds nothing to speak of: every later
        # row is ours, so the copy is patched like any other (on close; a server, once
        # quiet), and no read of a production made here is ever the cold first one.
        self.keep_read_copy()
        self.patch_from = self.seen

    @contextmanager
    def writing_as(self, member: str) -> Iterator[None]:
        """Record the local writes made inside as ``member``'s in the history: the
        dashboard's server writes for the member its token names, not for its own."""
        before, self._author = self._author, member or None
        try:
            yield
        finally:
            self._author = before

    def title(self) -> str:
        """The stored title, even if the production is invalid (a peer's bad edit must
        not stop its update from being stored)."""
        return str(self.doc.production_fields().get("title") or "")

    def _notify(self, changes: Changes, origin: str) -> None:
        # Plugins hear of every change, local or merged; the façade contains failures.
        if changes and self.id is not None and self.workspace.plugins.hears_changes():
            from .view import ProductionView

            self.workspace.plugins.changed(ProductionView(self.doc), changes, origin)

    def close(self) -> None:
        self.doc.on_commit = None
        self.doc.on_abort = None
        self.doc.before_access = None

    def _persist(self, update: bytes, changes: Changes) -> None:
        if self.id is None:
            return
        if self._refused(changes):
            self._reload()  # the edit is only in memory: drop it
            title = self.title()
            typed = shlex.quote(title or str(self.id))
            raise ProductionDeleted(
                f"production {title} is deleted: restore it first"
                f" (castroom production restore {typed}); reading it still works"
            )
        try:
            seq = self.store.append(
                self.id,
                update,
                member=self._author or self.workspace.identity.member,
                device=self.workspace.identity.device_id,
                origin="local",
                changes=changes,
                values=self.doc.last_values,
            )
        except Exception as exc:
            # The change is in memory but not on disk: drop it rather than pretend.
            self._reload()
            raise StorageError(f"write not saved: {exc}") from None
        self._epoch += 1
        self._advance(seq)
        self._note_own(seq, changes)
        self._stored(update, changes)
        if ("production", self.id) in changes:
            self.store.set_title(self.id, self.title())
            self._note_deleted()
        self._relay(update, "local", changes)

    def _note_own(self, seq: int | None, changes: Changes) -> None:
        """Remember a row we logged (a commit, or a peer's update we merged) for
        :meth:`patch_read_copy`. A long-running process that has not patched for many
        rows starts again: such a patch would not be much cheaper than a new copy."""
        if self.patch_from is None or not seq:
            return
        if len(self._own) >= _PATCH_AT_MOST:
            self._forget_own(seq - 1)
        self._own.add(seq)
        for key, fields in changes.items():
            self._own_changes.setdefault(key, set()).update(fields)
        self.own_at = time.monotonic()

    def _forget_own(self, position: int) -> None:
        self.patch_from, self._own, self._own_changes = position, set(), {}
        self._merged_others = False

    @property
    def copy_behind(self) -> bool:
        """Whether rows of ours are logged, or another process's merged, that
        :meth:`patch_read_copy` has not patched a read copy with yet."""
        return bool(self._own) or self._merged_others

    def patch_read_copy(self, *, stale: bool = False) -> bool:
        """After rows of ours (our writes, or peers' updates we merged), or another
        process's we merged: bring the stored read copy up to where the store is now, so
        the next read-only command reads a copy instead of loading the CRDT (issue 14: the
        first ``check`` after a ``set``, or after a peer's edit, on 50,000 talents). Only
        if every row logged after the copy's position is one of ours (whose changes we
        know) or another process's own write (a command's, a crashed one's: the log
        keeps which entities each changed, :meth:`_logged_changes`) or a peer's update
        whose row is exact (whoever merged it); one that is not (merged while another
        process logged a row) leaves the copy as it is: stale, so unread. ``stale``: a
        copy behind with none of our rows (a reader that just loaded the CRDT). Returns
        whether the copy was patched."""
        with contextlib.suppress(CastroomError, sqlite3.Error):
            if self.id is not None and self.store.position(self.id) != self.seen:
                self.refresh()  # the rows another process logged since: merged, then folded
            target = self._patch_target(stale=stale)
            if target is None:
                return False
            stored, at, position, changes = target
            if at < position and not self._patch(stored, position, changes):
                return False
            self._forget_own(position)
            return True
        return False

    def copy_to_split(self) -> bool:
        """Whether :meth:`patch_read_copy` would patch a copy that holds a collection it
        changes whole and large, so would first split it (read_copy.split_stored: a
        server has that done in a worker process, off its event loop)."""
        from . import read_copy

        with contextlib.suppress(CastroomError, sqlite3.Error):
            target = self._patch_target()
            if target is None or target[1] == target[2]:
                return False
            assert self.id is not None
            held = read_copy.to_split(self.store.read_copy_part_sizes(self.id))
            return any(collection in held for collection, _ in target[3])
        return False

    def _patch_target(
        self, *, stale: bool = False
    ) -> tuple[tuple[str, bytes], int, int, Changes] | None:
        """The stored read copy (version, head), its position, the log's and the changes
        since, when :meth:`patch_read_copy` may patch it; else None."""
        from . import read_copy
        from .document import SCHEMA_VERSION

        doc = self.doc
        if self.patch_from is None or self.id is None or self.store.read_only:
            return None
        if not (stale or self.copy_behind):
            return None
        if self._opened_without_some or doc.schema_version != SCHEMA_VERSION:
            return None
        if doc.changes_lost:  # some change went unreported: the patch could miss it
            return None
        position = self.store.position(self.id)
        stored = self.store.read_copy(self.id)
        at = read_copy.position_of(stored[0]) if stored is not None else None
        if position != self.seen or stored is None or at is None or at > position:
            return None
        after = self.store.logged_after(self.id, at)
        if all(seq in self._own for seq in after):
            return stored, at, position, self._own_changes
        # Rows of another process too: the log's word for every row since the copy,
        # ours included (a peer's update we merged while another process logged a row
        # is not exact: what our merge reported can miss what needed both).
        logged = self._logged_changes(after)
        if logged is None:
            return None
        for key, fields in self._own_changes.items():
            logged.setdefault(key, set()).update(fields)
        return stored, at, position, logged

    def _logged_changes(self, seqs: list[int]) -> Changes | None:
        """What the rows ``seqs`` (another process's) changed, as the log says, if each is
        that process's own write ("local": a command's, or a server's worker's, tracked by
        its typed writes as ours are) or a peer's update marked exact (its merger's
        document held the log right up to it: what its merge reported is every entity it
        changed there, those whose structs waited for it included); None if one is a
        peer's update merged into a document that held something else (its report can
        lack an entity whose structs waited there for one they follow, reported by no
        row), or too many to be worth it."""
        assert self.id is not None
        if len(seqs) > _PATCH_AT_MOST:
            return None
        entries = self.store.entries(self.id, seqs)
        if len(entries) != len(seqs):
            return None
        merged = [e.seq for e in entries if e.origin != "local"]
        if merged and not self.store.exact_rows(self.id, merged).issuperset(merged):
            return None
        changes: Changes = {}
        for entry in entries:
            for collection, entity, fields in entry.changes:
                changes.setdefault((collection, entity), set()).update(fields)
        return changes

    def _patch(self, stored: tuple[str, bytes], position: int, changes: Changes) -> bool:
        """Patch the read copy ``stored`` (version, head) with ``changes``, as of
        ``position``: only if it is still that copy when the patch is written."""
        from . import read_copy

        assert self.id is not None
        with self.doc.silenced_access():
            if read_copy.cheaper_whole(self.doc, changes):
                head, whole = read_copy.encode(self.doc)
                return self.store.keep_read_copy(
                    self.id, read_copy.version(position), head, whole, was=stored[0]
                )
        names = read_copy.wanted(stored[1], changes)
        if names is None:
            return False
        parts = self.store.read_copy_parts(self.id, names)
        with self.doc.silenced_access():
            patched = read_copy.patch(stored[1], parts, self.doc, changes)
        if patched is None:
            return False
        return self.store.keep_read_copy(
            self.id, read_copy.version(position), patched.head, patched.put,
            drop=patched.drop, was=stored[0],
        )  # fmt: skip

    def _advance(self, seq: int | None) -> None:
        """After appending our own row ``seq``: nothing to merge again on refresh, unless
        another process logged a row of this production before it (then refresh merges
        both). Other productions' rows in between do not count: merging a large update
        of ours again, after a push to another production came in while it was stored,
        held the server's event loop 11 s."""
        if not seq or self.id is None:
            return
        if (
            seq == self.seen + 1
            # No other process committed since refresh read the log up to ``seen``, so
            # every row in between is another production's: no query per update (with
            # 50 productions live, a row of ours is hardly ever seen + 1).
            or self.store.data_version() == self._version
            or not self.store.logged_between(self.id, self.seen, seq)
        ):
            self.seen = seq

    def _stored(self, update: bytes, changes: Changes, *, members: bool | None = None) -> None:
        """Keep the caches in step with an update we have just appended (``members``:
        whether it changed a member, if known)."""
        if self.workspace._after_commit is not None:
            self.workspace._batched.add(self)  # rebuilt if the batch's commit fails
        if self._held is not None:
            self._held += len(update)
        if members is None:
            members = _touches_members(changes)
        if members:
            self._members = {}

    def _refused(self, changes: Changes) -> bool:
        """Whether a local commit writes to a production that was already deleted. The
        workspace's note says "before this commit" (it is updated after): the delete
        itself passes, and so does the commit that sets ``deleted`` again (a restore)."""
        if self.writable_when_deleted or self.id is None:
            return False
        if "deleted" in changes.get(("production", self.id), set()):
            return False
        return self.workspace.is_deleted(self.id)

    def _note_deleted(self) -> None:
        """Keep the workspace's note of whether this production is deleted in step with
        its document (a local delete or restore, or one merged from a peer)."""
        if self.id is None:
            return
        deleted = "1" if self.doc.production_fields().get("deleted") is True else "0"
        key = _DELETED_KEY + self.id
        if (self.store.get_kv(key) or "0") != deleted:
            self.store.set_kv(key, deleted)

    def _relay(self, update: bytes, origin: str, changes: Changes) -> None:
        # The update is durable already: one failing listener (a peer's relay) must not
        # keep it from the others, nor undo the write it reports.
        for listener in list(self.update_listeners):
            try:
                listener(update, origin, changes)
            except Exception:
                _log.exception("a listener of production %s failed on an update", self.id)

    def _reload(self) -> None:
        """Rebuild the document from the durable log, in place (same CastDocument object):
        after a write that did not reach the disk, or an update that failed half-way."""
        blobs, last = self.store.load(self.id) if self.id is not None else ([], 0)
        if self._left_out:  # stored bytes known not to load (a snapshot, a read-only file)
            blobs = [blob for blob in blobs if _digest(blob) not in self._left_out]
        self.doc.rebuild(blobs)
        self._epoch += 1
        self.seen = last
        self._forget_own(last)  # the document holds exactly the log up to ``last``
        self._version = -1
        self._held = None
        self._members = {}

    def refresh(self) -> Changes:
        """Merge whatever other processes committed since we last looked. A stored update
        that does not load is set aside (:meth:`_set_aside`), so the production opens."""
        if self.id is None:
            return {}
        version = self.store.data_version()
        if version == self._version:
            return {}
        # Another process committed (an edit, or a compaction that shrank the log):
        # count the bytes held again when asked.
        self._held = None
        blobs, last, snapshot = self.store.load_from_snapshot(self.id, after=self.seen)
        # Only once its rows are read: a load that failed (the database busy) is tried
        # again next time, and _advance may trust that nothing is left unread.
        self._version = version
        if last <= self.seen:
            return {}
        self._members = {}  # the team may have changed
        self._epoch += 1
        changes: Changes = {}
        with self.doc.silenced_access():
            if snapshot is not None and self.doc.is_empty() and self._walk_once(blobs[0], snapshot):
                self._merge_stored(blobs[:1], changes, walked=True)
                blobs = blobs[1:]
            if self.seen == 0 and len(blobs) > 1 and self.doc.is_empty():
                # Opening: one folded update integrates much faster than a long log one by
                # one through the guarded CastDocument.apply_update (fold replays the log
                # in order on a bare Doc, keeping structs still waiting for a dependency).
                try:
                    self._merge_stored([fold(blobs)], changes)
                    blobs = []
                except BadUpdate:
                    pass  # something stored does not load: find it one by one
            set_aside = self._merge_stored(blobs, changes, careful=True)
        if set_aside:
            self._opened_without_some = True
            aside = {blob for _, _, blob in set_aside}
            waiting = sum(1 for b in blobs if b not in aside and self.doc.waits_for_more(b))
            self._say_set_aside(set_aside, waiting)
        self.seen = last
        if self.patch_from is not None:
            self._merged_others, self.own_at = True, time.monotonic()
        return changes

    def _say_set_aside(self, set_aside: list[tuple[str, bool, bytes]], waiting: int) -> None:
        """Say, in one warning, which stored updates did not load and where they went, and
        how many later ones wait for what those held (``waiting``)."""
        name = self.id
        with contextlib.suppress(NotFound):  # the production's own fields may be left out
            name = self.title() or self.id
        reasons = "; ".join(dict.fromkeys(reason for reason, _, _ in set_aside))
        moved = sum(was_moved for _, was_moved, _ in set_aside)
        said = []
        if moved:
            said.append(
                f"{moved} moved out of its log into the quarantine, kept and never loaded"
                " again (`castroom quarantine` lists and exports them)"
            )
        if len(set_aside) > moved:
            said.append(
                f"{len(set_aside) - moved} left out of this load (a snapshot, or a workspace"
                " that is read-only here)"
            )
        rest = "the production opens with everything else"
        if waiting:
            # Yjs keeps an update whose structs follow missing ones pending; it shows once
            # what it follows arrives (a peer sending the damaged update again, whole).
            rest = (
                f"the production opens with everything else, but {waiting} later stored"
                " update(s) build on what it held and wait, kept and not shown, until a"
                " peer sends it again whole"
            )
        warnings.warn(
            SkippedStoredUpdates(
                f"{len(set_aside)} stored update(s) of production {name} do not load"
                f" ({reasons}): {'; '.join(said)}; {rest}"
            ),
            stacklevel=3,
        )

    def keep_read_copy(self) -> None:
        """Store a read copy of the document, if it holds exactly the log up to where
        the store is now (nobody wrote since), all of it, in this program's schema.
        Asked when :meth:`Workspace.reading` found no usable copy: one is written."""
        from . import read_copy
        from .document import SCHEMA_VERSION

        doc = self.doc
        if self.id is None or self.store.read_only or self._opened_without_some:
            return
        if isinstance(doc, read_copy.ReadCopy) or doc.schema_version != SCHEMA_VERSION:
            return
        with contextlib.suppress(CastroomError, sqlite3.Error):
            position = self.store.position(self.id)
            if position != self.seen or not position:
                return
            with doc.silenced_access():
                head, parts = read_copy.encode(doc)
            self.store.keep_read_copy(self.id, read_copy.version(position), head, parts)

    def _walk_once(self, snapshot: bytes, named: str) -> bool:
        """Whether the stored snapshot keeps within the limits, walking it only the first
        time this version opens it (remembered in the workspace): the walk of a
        50,000-talent production costs more than loading it (issue 14)."""
        assert self.id is not None
        if _walked_before(self.store, self.id, named):
            return True
        try:
            yupdate.guard_update(snapshot)
        except BadUpdate:
            return False  # opened the careful way, one update at a time
        _remember_walked(self.store, self.id, named)
        return True

    def _merge_stored(
        self, blobs: list[bytes], changes: Changes, *, careful: bool = False, walked: bool = False
    ) -> list[tuple[str, bool, bytes]]:
        """Merge stored blobs in order. ``careful``: a blob that does not load (beyond the
        limits, undecodable, or failing to integrate) is set aside instead of raising, so a
        production poisoned before the limits existed, or damaged on disk, still opens;
        returns (why, whether it was moved into the quarantine, the blob) for each.
        ``walked``: the blobs passed the bounded walk before (see :meth:`_walk_once`)."""
        set_aside: list[tuple[str, bool, bytes]] = []
        failed: list[bool] = []
        for blob in blobs:
            if self._left_out and _digest(blob) in self._left_out:
                continue  # known not to load, and still stored (said when first met)
            failed.clear()
            if careful:  # a half-integrated blob is rolled back once it is set aside
                self.doc.on_abort = lambda: failed.append(True)
            try:
                applied = self.doc.apply_update(blob, origin="storage", walked=walked)
            except BadUpdate as exc:
                if not careful:
                    raise
                set_aside.append((str(exc), self._set_aside(blob, str(exc)), blob))
                if failed:
                    self._reload()  # without it; what follows it is merged (again: harmless)
                continue
            finally:
                self.doc.on_abort = self._reload
            for key, fields in applied.items():
                changes.setdefault(key, set()).update(fields)
            if applied:
                self._relay(blob, "storage", applied)
        return set_aside

    def _set_aside(self, blob: bytes, reason: str) -> bool:
        """Move a stored update that does not load out of the log into the quarantine (so
        no later load meets it again); returns whether it moved. A snapshot (an older
        castroom compacted it in, so it cannot be split from the good state) or a
        read-only workspace's update stays stored, and is skipped for this object's life."""
        assert self.id is not None
        with contextlib.suppress(StorageError):  # a read-only workspace: left out only
            if self.store.quarantine(self.id, blob, reason):
                return True
        self._left_out.add(_digest(blob))
        return False

    def _check_size(self, update: bytes) -> None:
        """Refuse a peer's update that would take the stored production past
        ``yupdate.MAX_PRODUCTION_BYTES`` (snapshot plus log): one peer must not fill the disk
        of every machine it syncs with."""
        if self.id is None:
            return
        if self._held is None:
            self._held = sum(self.store.log_bytes(self.id))
        held = self._held
        if held + len(update) > yupdate.MAX_PRODUCTION_BYTES:
            raise UpdateLimit(
                f"update beyond castroom's limits: the production would hold"
                f" {held + len(update):,} bytes (limit {yupdate.MAX_PRODUCTION_BYTES:,})"
            )

    def apply_update(
        self,
        update: bytes,
        *,
        origin: str = "remote",
        device: str = "",
        member: str = "",
        max_structs: int | None = None,
    ) -> Changes:
        """Merge a peer's update and make it durable. Bad bytes raise BadUpdate and leave
        both the document and the store as they were. ``member`` and ``device`` say who
        made it, for the history; without a member, the one whose Member.devices lists
        ``device`` (if any) is recorded.

        In three steps, which the sync server takes apart to run the middle one (the
        walk and Yrs) in a worker thread for a large update: :meth:`begin_merge`,
        :meth:`merge_document`, :meth:`finish_merge`."""
        started = self.begin_merge(update)
        merged = self.merge_document(update, started, origin=origin, max_structs=max_structs)
        return self.finish_merge(merged, origin=origin, device=device, member=member)

    def begin_merge(self, update: bytes) -> MergeStart:
        """Before a merge: other processes' commits merged in, the size cap checked."""
        self.refresh()
        self._check_size(update)
        return MergeStart(
            known=self.doc.state_vector(),
            had=self.doc.production_id,
            seen=self.seen,
            epoch=self._epoch,
        )

    def merge_document(
        self, update: bytes, started: MergeStart, *, origin: str, max_structs: int | None = None
    ) -> Merged:
        """Merge into the document only (no storage, no listeners): safe in a worker
        thread while nothing else touches this production. Raises BadUpdate (the
        document rebuilt from the log) as :meth:`CastDocument.apply_update` does;
        ``max_structs`` as there (a peer's incremental update has a smaller cap)."""
        doc = self.doc
        # The document holds the log up to ``seen`` and nothing more, all of it, and its
        # change tracking is whole: what the merge reports is what it changes in the log.
        held = started.epoch == self._epoch and not self._opened_without_some
        # silenced_access(), inlined (a generator context manager per live update): the
        # storage is read on the caller's thread.
        silenced, doc._silenced = doc._silenced, True
        try:
            # Listeners (plugins) hear of the change only once it is stored, as for local
            # commits (_persist runs before on_change): a failed append drops it again.
            changes = doc.apply_update(
                update, origin=origin, notify=False, max_structs=max_structs, state=started.known
            )
        finally:
            doc._silenced = silenced
            self._epoch += 1
        exact = held and not doc.changes_lost and not self._left_out
        # Store (and relay) only what was new to us. Yrs skips structs whose ids it already
        # has, but a log that kept them could load differently: a merge of the log may
        # pick a re-sent struct's other content (a mutated or forged copy of a known id)
        # over the one this document holds. Pending structs and deletions are kept.
        if _needs_diff(update, doc.merge_shape, started.known):
            update = _diff_update()(update, started.known)  # else all of it is new
        return Merged(
            update=update,
            changes=changes,
            values=doc.last_values,
            had=started.had,
            removed=sorted(doc.merge_deleted),
            members=_touches_members(changes),
            base=started.seen if exact else None,
            epoch=self._epoch,
        )

    def names_to_store(self, merged: Merged) -> Iterator[list[str]]:
        """The names a large merge's changes need stored before they can be encoded, in
        slices of ``storage.NAMES_PER_TRANSACTION`` (:meth:`store_names` each; the caller
        may serve others between two). Computed from memory only: call it in the thread
        that merged."""
        names = self.store.names_unknown(merged.changes, merged.values)
        step = NAMES_PER_TRANSACTION
        return iter([names[start : start + step] for start in range(0, len(names), step)])

    def store_names(self, names: list[str], *, apart: bool = False) -> bool:
        """Store one slice of :meth:`names_to_store`; False if the store refused (then
        :meth:`finish_merge` says why and drops the merge). ``apart``: on the store's
        second connection, from a worker thread (:meth:`Store.intern_apart`)."""
        try:
            if apart:
                self.store.intern_apart(names)
            else:
                self.store.intern(names)
        except StorageError:
            return False
        return True

    def prepare_store(self, merged: Merged) -> Merged:
        """``merged`` with its changes encoded for the log (their names stored first):
        for a worker thread, so the event loop only appends the row."""
        if self.id is None or merged.update == EMPTY_UPDATE:
            return merged
        encoded = self.store.encode_known(merged.changes, merged.values)
        return msgspec.structs.replace(merged, encoded=encoded)

    def finish_merge(
        self, merged: Merged, *, origin: str, device: str = "", member: str = ""
    ) -> Changes:
        """After :meth:`merge_document`: store the update, keep what it hard-deleted in
        the attic, relay it, tell the listeners. In three steps, which the sync server
        takes apart to write a large merge's row from a worker thread:
        :meth:`begin_finish`, :meth:`append_merged`, :meth:`end_finish`."""
        finishing = self.begin_finish(merged, origin=origin, device=device, member=member)
        seq = None
        if finishing.store:
            try:
                seq = self.append_merged(merged, finishing)
            except Exception as exc:
                raise self.not_stored(exc) from None
        return self.end_finish(merged, finishing, seq)

    def begin_finish(
        self, merged: Merged, *, origin: str, device: str = "", member: str = ""
    ) -> Finishing:
        """What storing ``merged`` needs decided first: who made it, and what it removed
        as the durable state (before it) holds it."""
        # Merged all the same (refusing it would split the replicas), but what it removed
        # is kept for `restore --from-history`, read from the durable state before it.
        removed = self._fields_before(self._removed(merged))
        if not device:
            member = member or self.workspace.identity.member  # made here (e.g. an import)
        elif not member:
            member = self._member_of(device)
        store = self.id is not None and merged.update != EMPTY_UPDATE
        return Finishing(origin=origin, member=member, device=device, removed=removed, store=store)

    def author_names(self, finishing: Finishing) -> list[str]:
        """The names a merge's row refers to besides its changes' (store them, with
        :meth:`store_names`, before :meth:`append_merged` ``apart``)."""
        assert self.id is not None
        device = finishing.device or self.workspace.identity.device_id
        return [self.id, author_name(finishing.member, device, finishing.origin)]

    def append_merged(
        self, merged: Merged, finishing: Finishing, *, apart: bool = False
    ) -> int | None:
        """Append ``merged``'s row to the log: its sequence number, or None (those bytes
        were stored before). ``apart``: on the store's second connection, from a worker
        thread (:meth:`Store.append_apart`; KeyError if its names are not known, then
        append on the caller's thread instead); a failure is for :meth:`not_stored`."""
        assert self.id is not None
        device = finishing.device or self.workspace.identity.device_id
        author = (finishing.member, device, finishing.origin)
        dedupe = not merged.changes  # a re-send changes nothing: keep it once
        # Nothing entered the document since the merge (it holds the log up to ``base``
        # and this update): the store marks the row exact if it follows ``base``'s.
        exact_after = merged.base if merged.epoch == self._epoch else None
        if apart:
            assert merged.encoded is not None
            return self.store.append_apart(
                self.id, merged.update, author=author_name(*author), encoded=merged.encoded,
                dedupe=dedupe, exact_after=exact_after,
            )  # fmt: skip
        return self.store.append(
            self.id, merged.update, member=finishing.member, device=device,
            origin=finishing.origin, changes=merged.changes, values=merged.values,
            dedupe=dedupe, encoded=merged.encoded, exact_after=exact_after,
        )  # fmt: skip

    def not_stored(self, exc: Exception) -> StorageError:
        """A merge whose row could not be appended (``exc``): as in _persist, what is only
        in memory is dropped, or our state vector would claim this update and no peer
        would ever send it again."""
        self._reload()
        return StorageError(f"update not saved: {exc}")

    def end_finish(self, merged: Merged, finishing: Finishing, seq: int | None) -> Changes:
        """After the row is appended (``seq``; None: stored before, or nothing to store):
        the attic, the caches, the relay, the listeners."""
        update, changes = merged.update, merged.changes
        if update == EMPTY_UPDATE:
            return changes
        if finishing.store:
            assert self.id is not None
            if seq and finishing.removed:
                self.store.keep_in_attic(
                    self.id, finishing.removed, seq=seq, member=finishing.member,
                    device=finishing.device or "unknown",
                )  # fmt: skip
            self._advance(seq)
            self._note_own(seq, changes)
            # Stored even when nothing visible changed: part of it may be waiting for an
            # update from a third peer. The digest keeps the same bytes from being stored
            # twice: None, those bytes were stored.
            self._stored(update if seq else b"", changes, members=merged.members)
        if self.id is not None and ("production", self.id) in changes:
            self._note_deleted()
        self._relay(update, finishing.origin, changes)
        batch = self.workspace._after_commit
        if batch is None:
            self.doc.notify(changes, finishing.origin)
        else:  # a group commit (Workspace.batch): plugins hear of it once it is stored
            batch.append(lambda: self.doc.notify(changes, finishing.origin))
        return changes

    # -- hard deletes: what a peer removed that the schema says is never removed ---------

    def _removed(self, merged: Merged) -> list[tuple[str, str]]:
        """The entities a merge removed: keys gone from their collection (the typed API
        only ever marks an entity deleted), and the production's own fields."""
        gone = [
            (collection, entity_id)
            for collection, entity_id in merged.removed
            if collection in model.COLLECTIONS
            and not self.doc.has(model.COLLECTIONS[collection], entity_id)
        ]
        if merged.had is not None and self.doc.production_id is None:
            gone.append(("production", merged.had))
        return gone

    def _fields_before(self, keys: list[tuple[str, str]]) -> dict[tuple[str, str], Any]:
        """Those entities' fields as the durable state (before this merge) holds them."""
        if not keys or self.id is None:
            return {}
        blobs, _ = self.store.load(self.id)
        before = _new_document()
        if blobs:
            before.apply_update(fold(blobs), origin="storage", notify=False)
        out: dict[tuple[str, str], Any] = {}
        for collection, entity_id in keys:
            if collection == "production":
                with contextlib.suppress(NotFound):
                    out[(collection, entity_id)] = before.production_fields()
            elif (data := before.raw(model.COLLECTIONS[collection], entity_id)) is not None:
                out[(collection, entity_id)] = data
        return out

    def hard_deleted(self) -> list[AtticEntry]:
        """Entities a peer hard-deleted that are still gone (newest removal kept)."""
        if self.id is None:
            return []
        present = {c: set(self.doc.ids(cls)) for c, cls in model.COLLECTIONS.items()}
        out = []
        for entry in self.store.attic(self.id):
            if entry.collection == "production":
                if self.doc.production_id is None:
                    out.append(entry)
            elif entry.entity not in present.get(entry.collection, {entry.entity}):
                out.append(entry)
        return out

    def restore_from_history(self) -> tuple[list[AtticEntry], list[tuple[AtticEntry, str]]]:
        """Bring back every entity a peer hard-deleted, as it was before (a local write
        each, which peers merge as any edit). Returns (restored, [(not restored, why)])."""
        restored: list[AtticEntry] = []
        failed: list[tuple[AtticEntry, str]] = []
        for entry in self.hard_deleted():
            data = dict(entry.data)
            try:
                if entry.collection == "production":
                    title = str(data.pop("title", "") or "Untitled")
                    self.doc.init_production(title, str(data.pop("id", entry.entity)), **data)
                else:
                    cls = model.COLLECTIONS[entry.collection]
                    self.doc.put(model.validate(cls, {**data, "id": entry.entity}))
            except CastroomError as exc:
                failed.append((entry, str(exc)))
            else:
                restored.append(entry)
        return restored, failed

    def _member_of(self, device: str) -> str:
        """The name of the team member who lists ``device`` among theirs, or "" (asked
        for every peer's update, so remembered until the team changes)."""
        if device not in self._members:
            self._members[device] = next(
                (p.name for p in self.doc.all(model.Member) if device in p.devices), ""
            )
        return self._members[device]

    # -- maintenance and history ------------------------------------------------------------

    def compact(self) -> tuple[int, int]:
        assert self.id is not None
        self._held = None
        return self.store.compact(self.id)

    def maybe_compact(self) -> bool:
        if self.needs_compaction():
            self.compact()
            return True
        return False

    def quarantined(self) -> list[QuarantinedUpdate]:
        """Stored updates moved out of the log because they do not load (:meth:`refresh`)."""
        return self.store.quarantined(self.id) if self.id is not None else []

    def needs_compaction(self, floor: int | None = None) -> bool:
        """Whether the log after the snapshot outgrew the snapshot and ``floor`` bytes
        (COMPACT_FLOOR unless given)."""
        assert self.id is not None
        return self.store.needs_compaction(self.id, COMPACT_FLOOR if floor is None else floor)

    def history(
        self, *, limit: int = 50, entity: str | None = None, before: int | None = None
    ) -> list[LogEntry]:
        assert self.id is not None
        return self.store.history(self.id, limit=limit, entity=entity, before=before)

    def history_changes(
        self, *, limit: int = 50, entity: str | None = None
    ) -> Iterator[tuple[LogEntry, str, str, list[str]]]:
        """At most ``limit`` changes (entry, collection, entity id, fields), newest first:
        one log entry may hold many changes, so entries are read page by page."""
        before: int | None = None
        left = limit
        while left > 0:
            entries = self.history(limit=left, entity=entity, before=before)
            for entry in entries:
                for collection, entity_id, fields in entry.changes:
                    yield entry, collection, entity_id, fields
                    left -= 1
                    if left <= 0:
                        return
            if not entries:
                return
            before = entries[-1].seq

    def origin_of(self, kind: str, entity_id: str) -> str | None:
        """The device whose logged update last touched an entity (None if unlogged).
        Asked for one invalid entity, it looks up every invalid entity in the same pass
        over the log (``check`` asks for each in turn), remembered until the log moves."""
        key = (model.kind_class(kind).collection, entity_id)
        if self._origins_at != self.seen or key not in self._origins:
            self._look_up_origins(self.doc.invalid(), key)
        return self._origins[key]

    def _look_up_origins(self, items: list[InvalidEntity], *also: tuple[str, str]) -> None:
        assert self.id is not None
        wanted = {(model.kind_class(i.kind).collection, i.id) for i in items} | set(also)
        found = self.store.last_writers(self.id, wanted)
        self._origins = {k: found[k].device if k in found else None for k in wanted}
        self._origins_at = self.seen

    def invalid(self) -> list[tuple[InvalidEntity, str]]:
        """Invalid entities, each with the device that last wrote it."""
        items = self.doc.invalid()
        self._look_up_origins(items)
        return [(item, self.origin_of(item.kind, item.id) or "unknown") for item in items]

    @contextmanager
    def transaction(self) -> Iterator[CastDocument]:
        with self.doc.transaction() as doc:
            yield doc
