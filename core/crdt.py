"""The only module that imports pycrdt: the binding of a production to a Yjs document.

What lives here is what needs Yrs: the top-level maps of the layout (docs/schema.md),
writing fields into them (plain values, Y.Arrays, Y.Texts, nested Y.Maps), transactions
that commit one update, merging a peer's update and rolling back one that fails
half-way, change tracking, and the few update functions storage, workspace and sync
need (fold, merge, diff, check, awareness, the y-protocols encoders). It provides the
primitives the typed reads (:class:`castroom.core.reads.DocumentReads`, which need no
Yrs) read through; the typed writes on top are
:class:`castroom.core.document.CastDocument`.

Private pycrdt attributes used here, each pinned by tests/test_crdt.py against the
pycrdt versions pyproject allows: ``Map.integrated`` (the Yrs map, for raw deep
observers and the fast field write) and ``Transaction._txn`` (the open Yrs transaction
those need). Both are read once, at import, and a missing one falls back to the slow,
public path.
"""

from __future__ import annotations

import contextlib
import difflib
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, Generic, Self, TypeVar

import msgspec
from pycrdt import (
    Array,
    Awareness,
    Doc,
    Map,
    Text,
    TransactionEvent,
    create_awareness_message,
    create_update_message,
    get_state,
    get_update,
    merge_updates,
    write_message,
)

from .errors import BadUpdate, NotFound, UpdateLimit, ValidationFailed
from .model import COLLECTIONS, Entity, Production
from .reads import CREATED, UNLISTED, Changes, DocumentReads, collection_only
from .yupdate import (
    EMPTY_UPDATE,
    MAX_MAP_KEYS,
    MAX_NESTING,
    UpdateShape,
    decode_state_vector,
    guard_update,
    one_line,
    slices,
    update_is_empty,
)

__all__ = [
    "COARSE_CHANGES",
    "COARSE_ITEMISED",
    "CREATED",
    "STASH_LIMIT",
    "UNLISTED",
    "Awareness",
    "Changes",
    "CrdtDocument",
    "awareness_for",
    "check_update",
    "create_awareness_message",
    "create_update_message",
    "diff_update",
    "fold",
    "merge_all",
    "write_message",
]

#: Key = (collection, entity id); value = plain field -> [old, new], as this document saw
#: the change (for the history: "stage: offer -> booked"). Only scalar values are kept.
Values = dict[tuple[str, str], dict[str, list[Any]]]

_PRODUCTION_KEY = ("production", "")
#: The production's id not cached (it is read for every merge; a map read costs ~15 us).
_UNKNOWN = object()


def _plain(value: Any) -> Any:
    """A stored value as plain Python (pycrdt containers flattened)."""
    if isinstance(value, Text):
        return str(value)
    if isinstance(value, Map | Array):
        return value.to_py()
    return value


_SCALARS = (str, int, float, bool, type(None))


def _scalar(value: Any) -> bool:
    return isinstance(value, _SCALARS)


def _number(value: Any) -> Any:
    """Yrs hands numbers to observers as floats: an integral one is the int it was."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _map_data(value: Map) -> dict[str, Any]:
    # One Rust call (to_json) instead of one transaction per key (Map.to_py): ~10x faster.
    data = msgspec.json.decode(str(value))
    return data if isinstance(data, dict) else {}


def _diff_list(target: Array, old: list[Any], new: list[Any]) -> None:
    """Turn ``old`` into ``new`` with the fewest inserts and deletes (merges item-wise)."""
    ops = difflib.SequenceMatcher(a=old, b=new, autojunk=False).get_opcodes()
    for tag, i1, i2, j1, j2 in reversed(ops):
        if tag in ("replace", "delete"):
            del target[i1:i2]
        if tag in ("replace", "insert"):
            for offset, item in enumerate(new[j1:j2]):
                target.insert(i1 + offset, item)


def _diff_map(target: Map, new: dict[str, Any]) -> None:
    """Turn ``target`` into ``new`` key by key (so other keys set concurrently survive)."""
    for key in [k for k in target.keys() if k not in new]:  # noqa: SIM118 - pycrdt keys()
        del target[key]
    for key, value in new.items():
        if key not in target or _plain(target[key]) != value:
            target[key] = value


def _utf8_len(text: str) -> int:
    return len(text.encode("utf-8", "surrogatepass"))


def _diff_text(target: Text, old: str, new: str) -> None:
    """Rewrite ``target`` (holding ``old``) to ``new`` by a minimal character diff.
    pycrdt's Text indexes are UTF-8 byte offsets, so each position is converted (with
    code point indexes, "café noir" edits landed a byte early and mangled the text)."""
    ops = difflib.SequenceMatcher(a=old, b=new, autojunk=False).get_opcodes()
    for tag, i1, i2, j1, j2 in reversed(ops):  # from the end: earlier offsets stay valid
        start = _utf8_len(old[:i1])
        if tag in ("replace", "delete"):
            del target[start : start + _utf8_len(old[i1:i2])]
        if tag in ("replace", "insert"):
            target.insert(start, new[j1:j2])


def _observe_raw(shared: Map, callback: Callable[[list[Any]], None], errors: list[Exception]):
    """Observe ``shared`` deeply with Yrs's own events (they have ``path`` and ``keys``,
    all the change tracking reads); an error in ``callback`` is kept in ``errors``."""

    def observe(events: list[Any]) -> None:
        try:
            callback(events)
        except Exception as exc:  # never let it unwind through Yrs
            errors.append(exc)

    return shared.integrated.observe_deep(observe)


#: Whether pycrdt exposes what the fast field write needs (checked once, at import).
_FAST_INSERT = hasattr(Map, "integrated") and hasattr(Doc().transaction(), "_txn")
#: Whether a merge may run in one bare Yrs transaction (pycrdt's Rust Doc, and the list
#: its observer wrappers keep errors in): pycrdt's own get_state and apply_update each
#: wrap a Yrs transaction in a Python one that commits.
_BARE_TXN = all(hasattr(Doc()._doc, n) for n in ("create_transaction", "get_state")) and (
    isinstance(getattr(Doc(), "_exceptions", None), list)
)


def _bare_state(ydoc: Doc) -> bytes:
    """``ydoc``'s state vector, read in a bare Yrs transaction (a third of pycrdt's
    get_state, which commits a Python transaction around it)."""
    if not _BARE_TXN or ydoc._txn is not None or ydoc._allow_multithreading:
        return ydoc.get_state()
    raw = ydoc._doc
    txn = raw.create_transaction()
    try:
        return bytes(raw.get_state(txn))
    finally:
        txn.drop()


def _apply_reading_state(ydoc: Doc, update: bytes) -> bytes:
    """Apply ``update`` and return the state vector after it, in one Yrs transaction
    where it can be (pycrdt: one to apply, one more to read the state). Observers run
    at its commit, as in pycrdt's; their errors are raised as pycrdt raises them."""
    if not _BARE_TXN or ydoc._txn is not None or ydoc._allow_multithreading:
        ydoc.apply_update(update)
        return ydoc.get_state()
    raw = ydoc._doc
    txn = raw.create_transaction()
    try:
        raw.apply_update(txn, update)
        state = bytes(raw.get_state(txn))
        txn.commit()
    finally:
        txn.drop()
    if ydoc._exceptions:
        exceptions = tuple(ydoc._exceptions)
        ydoc._exceptions.clear()
        raise ExceptionGroup("Observer callback error", exceptions)
    return state


#: Updates up to this size are watched for structs Yrs left pending (see _integrate).
STASH_LIMIT = 512 * 1024
#: Merged updates larger than this record changed entities, not each changed field,
#: past the first COARSE_ITEMISED entities edited (those are itemised, values and all).
COARSE_CHANGES = 64 * 1024
COARSE_ITEMISED = 256


def _fatal(exc: BaseException) -> bool:
    return isinstance(exc, KeyboardInterrupt | SystemExit | GeneratorExit)


D = TypeVar("D", bound="CrdtDocument")


class _Transaction(Generic[D]):
    """``CrdtDocument.transaction()``: a plain class, not a generator (on the hot path)."""

    __slots__ = ("doc", "outer", "ytxn")

    def __init__(self, doc: D) -> None:
        self.doc: D = doc
        self.outer = False
        self.ytxn: Any = None

    def __enter__(self) -> D:
        doc = self.doc
        if doc._depth:
            doc._depth += 1
            return doc
        doc._touch()
        doc._unwatch_merges()  # local writes track their own changes
        self.outer = True
        doc._depth = 1
        try:
            self.ytxn = doc.ydoc.transaction(origin=doc.LOCAL)
            doc._txn = self.ytxn.__enter__()
        except BaseException:
            doc._depth = 0
            doc._txn = None
            raise
        return doc

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        doc = self.doc
        if not self.outer:
            doc._depth -= 1
            return
        failed = exc_type is not None
        try:
            self.ytxn.__exit__(exc_type, exc, tb)
        except BaseException:
            failed = True
            raise
        finally:
            doc._depth = 0
            doc._txn = None
            if failed:
                doc._abort()
        doc._commit_local()


class _Held(Mapping[str, int]):
    """Keys each root map of a document holds, by name (where their tables will grow: the
    walk ends a slice there, yupdate.REHASH_AT): the layout's maps and any other root an
    update names keys of, each counted only when the walk asks for it, once. A live edit
    of an entity's fields names no root key, so nothing is counted; counting the layout's
    ten maps for every merge cost about 40 us, and another root named meant a second walk."""

    def __init__(self, doc: CrdtDocument) -> None:
        self._doc = doc

    def __getitem__(self, name: str) -> int:
        return self._doc._root_size(name)  # 0: no such root map

    def __iter__(self) -> Iterator[str]:
        return iter(self._doc.ydoc.keys())

    def __len__(self) -> int:
        return len(list(self._doc.ydoc.keys()))


class CrdtDocument(DocumentReads):
    """A production's Yjs document: its layout, transactions, merges and change tracking.

    ``on_commit(update, changes)`` is called after every outermost local transaction with
    its binary update; storage uses it to make the write durable before returning.
    ``on_abort()`` is called when a transaction raised half-way or a merged update failed
    half-way (Yrs cannot roll back): storage rebuilds the document from its log there.

    Subclasses read and write entities only through the methods here that take a
    collection name or an entity class (``_stored``, ``_write_fields``, ...): no pycrdt
    object leaves this module.
    """

    LOCAL = "castroom.local"

    def __init__(self, ydoc: Doc | None = None) -> None:
        super().__init__()
        self._id: object = _UNKNOWN  # the production's id, or _UNKNOWN
        #: The pycrdt Map of each entity written or read lately (a lookup costs ~15 us);
        #: dropped on every merge, which may have freed it.
        self._maps: dict[tuple[str, str], Map] = {}
        #: Each collection's JSON as last read, until the next transaction of any kind
        #: (what a read copy stores: see :mod:`castroom.core.read_copy`), kept only
        #: with ``keep_json`` (opened to be read): a server would hold it for nothing.
        self._json: dict[str, str] = {}
        self.keep_json = False
        #: Each collection's keys, while settled (until the next transaction of any kind).
        self._key_lists: dict[str, list[str]] = {}
        self._key_sets: dict[str, set[str]] = {}
        self._changes: Changes = {}
        self._values: Values = {}
        #: The plain fields' old and new values of the changes take_changes() last
        #: returned (storage logs them with the update).
        self.last_values: Values = {}
        self._updates: list[bytes] = []
        #: Updates with structs still waiting for a missing dependency (see _integrate).
        self._stash: list[bytes] = []
        self._applying = False
        self._too_deep = False  # set by the collection observers during a merge
        self._itemised = 0  # entities whose changed fields a merge read, so far
        #: Collection keys the last merge deleted (the typed API never deletes a key).
        self.merge_deleted: set[tuple[str, str]] = set()
        #: The walk of the last update merged.
        self.merge_shape: UpdateShape | None = None
        self._txn: Any = None
        self.on_commit: Callable[[bytes, Changes], None] | None = None
        self.on_abort: Callable[[], None] | None = None
        self.on_change: list[Callable[[Changes, str], None]] = []
        #: The change-tracking observers of merges (see _watch_merges), while subscribed.
        self._merge_subs: list[Any] | None = None
        self._observe_errors: list[Exception] = []
        self._coarse = False
        #: Set for good once some change went unreported (tracking failed in a merge, or
        #: a write bypassed the typed API): a read copy is then never patched from what
        #: this document reported (StoredProduction.patch_read_copy).
        self.changes_lost = False
        #: The state vector as last read or merged to, until the next transaction of any
        #: kind (every live merge read it before and after: one Yrs encode fewer each).
        self._state: bytes | None = None
        self._bind(ydoc or Doc())

    def _bind(self, ydoc: Doc) -> None:
        self._merge_subs = None  # they belonged to the Doc being replaced
        self._state = None
        self.ydoc = ydoc
        self._production = ydoc.get("production", type=Map)
        self._meta = ydoc.get("meta", type=Map)
        self._collections = {name: ydoc.get(name, type=Map) for name in COLLECTIONS}
        self._forget()
        self._maps.clear()
        self._json.clear()
        self._subs = [ydoc.observe(self._on_transaction)]

    def _watch_merges(self) -> None:
        """Subscribe the merges' change tracking: raw Yrs deep observers on the production
        and every collection. They stay subscribed from one merge to the next (setting
        them up cost a third of a live server's time per update) and are dropped when a
        local transaction begins, so local writes, which track their own changes, never
        pay for them."""
        if self._merge_subs is not None:
            return
        observers: list[tuple[Map, Callable[[list[Any]], None]]]
        observers = [(self._production, self._production_observer)]
        observers += [(m, self._observer(n)) for n, m in self._collections.items()]
        errors = self._observe_errors
        self._merge_subs = [_observe_raw(shared, call, errors) for shared, call in observers]

    def _unwatch_merges(self) -> None:
        subs, self._merge_subs = self._merge_subs, None
        for sub in subs or ():
            with contextlib.suppress(Exception):
                sub.drop()

    def rebuild(self, updates: Iterable[bytes]) -> None:
        """Replace the content with a fresh Doc made of ``updates`` (the durable state),
        keeping this object, its listeners and hooks. ``ydoc`` is a new Doc afterwards."""
        self._changes = {}
        self._values = {}
        self._updates = []
        self._stash = []
        self._bind(Doc())
        self._applying = True
        try:
            for update in updates:
                self._integrate(update)
        finally:
            self._applying = False
        self._forget()
        self._maps.clear()
        self._changes = {}

    def _covered(self, update: bytes) -> bool:
        """Whether every struct of ``update`` is integrated (none beyond our state)."""
        missing = get_update(update, self.ydoc.get_state())
        return update_is_empty(missing)

    def waits_for_more(self, update: bytes) -> bool:
        """Whether some struct of ``update`` (applied before) is still not integrated:
        Yrs keeps it pending until the structs it follows or refers to arrive."""
        return not self._covered(update)

    def _integrate(self, update: bytes, shape: UpdateShape | None = None) -> None:
        """Apply an update (in slices when the walk's ``shape`` is given), then retry
        those whose structs Yrs left pending.

        Yrs (pycrdt 0.14) can leave a pending struct stuck when several updates of one
        client arrive out of order (2, 3, then 1: 2 never integrates), although applying
        it again then works. So updates not fully integrated are kept and re-applied
        after each later update until they are; applying an update twice is harmless.
        """
        state = self._apply_sliced(update, shape)
        # Its commit has run _on_transaction; a retry of the stash below drops it again.
        self._state = state if self.ydoc._txn is None else None
        if len(update) <= STASH_LIMIT and not update_is_empty(get_update(update, state)):
            self._stash.append(update)
            del self._stash[:-256]  # bounded: storage keeps every update anyway
        progress = bool(self._stash)
        while progress:
            progress = False
            for waiting in list(self._stash):
                self.ydoc.apply_update(waiting)  # the retry Yrs may have missed
                if self._covered(waiting):
                    self._stash.remove(waiting)
                    progress = True

    def _apply_sliced(self, update: bytes, shape: UpdateShape | None) -> bytes:
        """Yrs holds the GIL while it integrates (16 s for a 1M-entry update), so a large
        update is fed to it in slices (yupdate.slices): a merge in a worker thread then
        lets the server's event loop run between two. Should a slice wait on one that
        came later (structs of several clients referring to each other both ways), the
        whole update is applied once more, which Yrs sorts out itself. Returns the state
        vector after it."""
        pieces = slices(update, shape) if shape is not None else [update]
        if len(pieces) == 1:
            return _apply_reading_state(self.ydoc, update)
        assert shape is not None
        before = decode_state_vector(self.ydoc.get_state())
        for piece in pieces:
            self.ydoc.apply_update(piece)
        state = self.ydoc.get_state()
        after = decode_state_vector(state)
        if any(
            before.get(client, 0) >= shape.starts[client] and after.get(client, 0) < end
            for client, end in shape.clocks.items()
        ):
            return _apply_reading_state(self.ydoc, update)
        return state

    # -- change tracking -----------------------------------------------------------------

    def _on_transaction(self, event: TransactionEvent) -> None:
        self._state = None
        self._json.clear()  # any change at all, whoever made it
        self._generation += 1
        self._every.clear()
        self._key_lists.clear()
        self._key_sets.clear()
        if self._depth:
            self._updates.append(event.update)
            self._id = _UNKNOWN  # a local write may set it
        elif not self._applying:
            # A write that bypassed the typed API: nothing cached can be trusted.
            self.changes_lost = True
            self._forget()
            self._maps.clear()

    def _forget(self) -> None:
        """Drop every cached entity (and the production's id)."""
        self._cache.clear()
        self._generation += 1
        self._every.clear()
        self._key_lists.clear()
        self._key_sets.clear()
        self._id = _UNKNOWN

    def _note(self, collection: str, entity_id: str, fields: Iterable[str]) -> None:
        if collection == "production":
            key = _PRODUCTION_KEY
            self._id = _UNKNOWN
        else:
            key = (collection, entity_id)
        self._cache.pop(key, None)
        self._changes.setdefault((collection, entity_id), set()).update(fields)

    def _note_value(self, collection: str, entity_id: str, field: str, old: Any, new: Any) -> None:
        """Keep a plain field's change (the first old value and the last new one of a
        transaction or merge); non-scalar values are not kept."""
        if not (_scalar(old) and _scalar(new)):
            return
        key = _PRODUCTION_KEY if collection == "production" else (collection, entity_id)
        fields = self._values.setdefault(key, {})
        if field in fields:
            fields[field][1] = new
        else:
            fields[field] = [old, new]

    def _note_event_values(self, collection: str, entity_id: str, keys: dict[str, Any]) -> None:
        for field, change in keys.items():
            old = _number(change.get("oldValue"))
            new = _number(change.get("newValue"))
            if change.get("action") == "add" and not _scalar(new):
                continue
            self._note_value(collection, entity_id, str(field), old, new)

    def _production_observer(self, events: list[Any]) -> None:
        if not self._applying:
            return  # a raw write between merges: _on_transaction drops the caches
        self._cache.pop(_PRODUCTION_KEY, None)
        self._id = _UNKNOWN
        # No reads here: this runs inside Yrs's transaction, where reading the document
        # fails. take_changes() puts the production's id on the key afterwards.
        fields = self._changes.setdefault(("production", ""), set())
        for event in events:
            if event.path:
                fields.add(str(event.path[0]))
            else:
                fields.update(event.keys)
                self._note_event_values("production", "", event.keys)

    def _observer(self, collection: str) -> Callable[[list[Any]], None]:
        """Change tracking for a collection. ``self._coarse``: for a big merged update,
        note each changed entity past the first COARSE_ITEMISED with ``UNLISTED`` instead
        of reading its event's keys (which for thousands of entities costs Yrs more than
        the merge itself: bench_sync); the first ones keep their fields and values (a
        colleague's day of edits offline, merged with the talents they added)."""

        def observe(events: list[Any]) -> None:
            if not self._applying:
                return  # a raw write between merges: _on_transaction drops the caches
            coarse = self._coarse
            for event in events:
                path = event.path
                if not path:
                    for entity_id, change in event.keys.items():
                        self._cache.pop((collection, entity_id), None)
                        self._changes.setdefault((collection, entity_id), set()).add("*")
                        if change.get("action") == "delete":
                            self.merge_deleted.add((collection, entity_id))
                    continue
                entity_id = path[0]
                if len(path) >= MAX_NESTING:  # a type at the limit gained a child
                    self._too_deep = True
                self._cache.pop((collection, entity_id), None)
                fields = self._changes.setdefault((collection, entity_id), set())
                if CREATED in fields:
                    continue  # new in this merge (its fields came in a later slice)
                if len(path) >= 2:
                    fields.add(str(path[1]))
                elif coarse and self._itemised >= COARSE_ITEMISED:
                    fields.add(UNLISTED)
                else:
                    self._itemised += 1
                    keys = event.keys
                    fields.update(keys)
                    self._note_event_values(collection, entity_id, keys)

        return observe

    def take_changes(self) -> Changes:
        """What changed since the last call (local and merged remote edits alike)."""
        changes, self._changes = self._changes, {}
        values, self._values = self._values, {}
        if ("production", "") in changes:
            key = ("production", self.production_id or "")
            changes.setdefault(key, set()).update(changes.pop(("production", "")))
            if ("production", "") in values:
                values[key] = values.pop(("production", ""))
        # A field set back to what it was in one go changed nothing worth a history line.
        self.last_values = {
            key: kept
            for key, fields in values.items()
            if (kept := {f: v for f, v in fields.items() if v[0] != v[1]})
        }
        return changes

    def transaction(self) -> _Transaction[Self]:
        """Group writes into one atomic, durable update. Nests; the outermost one commits.

        If the block raises, nothing is committed: the document is rebuilt from its durable
        state (``on_abort``) since a CRDT cannot roll back.
        """
        return _Transaction(self)

    def _commit_local(self) -> None:
        updates, self._updates = self._updates, []
        changes = self.take_changes()
        update = merge_updates(*updates) if len(updates) > 1 else b"".join(updates)
        if update and changes and self.on_commit:
            self.on_commit(update, changes)
        for listener in self.on_change:
            listener(changes, "local")

    def _abort(self) -> None:
        self._updates = []
        self._changes = {}
        self._values = {}
        self._forget()
        self._maps.clear()
        if self.on_abort is not None:
            self.on_abort()

    # -- binary updates --------------------------------------------------------------------

    def state_vector(self) -> bytes:
        self._touch()
        if self.ydoc._txn is not None:  # an open transaction's writes clear it at commit only
            return _bare_state(self.ydoc)
        if self._state is None:
            self._state = _bare_state(self.ydoc)
        return self._state

    def encode_update(self, state_vector: bytes | None = None) -> bytes:
        """Everything this document has that a peer with ``state_vector`` lacks."""
        self._touch()
        try:
            return self.ydoc.get_update(state_vector) if state_vector else self.ydoc.get_update()
        except Exception as exc:  # pycrdt raises ValueError/RuntimeError on bad input
            raise BadUpdate(f"cannot decode state vector: {exc}") from None

    def apply_update(
        self,
        update: bytes,
        origin: str = "remote",
        *,
        notify: bool = True,
        walked: bool = False,
        max_structs: int | None = None,
        state: bytes | None = None,
    ) -> Changes:
        """Merge a peer's update. Raises BadUpdate (leaving the document as it was) if the
        bytes cannot be decoded or integrated; returns what changed. With ``notify=False``
        the ``on_change`` listeners are not called: the caller calls :meth:`notify` once the
        update is durable (storage), so nobody hears of a change that may yet be dropped.
        ``walked``: these exact bytes passed :func:`guard_update` before (a stored snapshot
        this version walked), so the walk is not repeated. ``max_structs``: the walk's
        struct cap (``yupdate.MAX_INCREMENTAL_STRUCTS`` for a peer's incremental update;
        default: a full state's). ``state``: this document's state vector, if the caller
        has just read it (one Yrs encode fewer per update)."""
        if self._depth:
            raise RuntimeError("apply_update inside a local transaction")
        # Walked here (before Yrs reserves memory for what the bytes declare) unless these
        # exact bytes were walked before; the walk's shape is what slices a large update.
        shape = None if walked else guard_update(update, max_structs=max_structs, held=_Held(self))
        self.merge_shape = shape
        self.merge_deleted = set()
        update = bytes(update)
        # Yrs decodes the whole update before integrating any of it, so a decode error
        # leaves the document as it was. An update that decodes but cannot be integrated
        # (a crafted one) fails half-way: then the document is rebuilt from its durable
        # state (storage) or from a copy taken here (a document without storage).
        if state is None:
            state = self.ydoc.get_state()
        if shape is not None and origin != "storage":  # what is stored opens, whatever its size
            self._check_map_keys(update, shape, state)
        if state == b"\x00":
            return self._load_into_empty(update, origin, shape, notify=notify)
        backup = None if self.on_abort is not None else self.ydoc.get_update()
        stash = list(self._stash)
        self._changes = {}
        self._values = {}
        # Raw Yrs deep observers: pycrdt's own wrap every event in Python objects first,
        # which costs about three times the merge itself on a big update (bench_sync).
        errors = self._observe_errors
        errors.clear()
        self._coarse = len(update) > COARSE_CHANGES
        self._watch_merges()
        self._applying = True
        self._too_deep = False
        self._itemised = 0
        try:
            self._integrate(update, shape)
            if self._too_deep:
                # The bounded walk sees one update; nesting built up over many shows here.
                raise UpdateLimit(
                    f"update beyond castroom's limits: Y types nested deeper than"
                    f" {MAX_NESTING} levels (with what the document holds)"
                )
        except BaseException as exc:
            if _fatal(exc):
                raise
            self._applying = False
            # Always rolled back: what Yrs did before it failed (deletions leave the state
            # vector as it was, observers may have failed) cannot be told from outside.
            # Rare by now: the bounded walk refuses what Yrs would fail to decode.
            self._changes = {}
            self._values = {}
            if backup is not None:
                self.rebuild([backup, *stash])  # get_update() drops pending structs
            else:
                self._abort()
            if isinstance(exc, UpdateLimit):
                raise
            raise BadUpdate(f"cannot apply update: {one_line(exc)}") from None
        finally:
            self._applying = False
        # Map handles are looked up afresh after every merge, whatever the observers saw:
        # Yrs frees a type a peer deleted or replaced, and pycrdt writes through a stale
        # handle without checking (a segfault: tests/test_stale_types.py). A lookup is ~15 us.
        self._maps.clear()
        if errors:  # change tracking failed part-way: trust no cached entity
            self.changes_lost = True
            self._forget()
        changes = self.take_changes()
        if notify:
            self.notify(changes, origin)
        return changes

    def _check_map_keys(self, update: bytes, shape: UpdateShape, state: bytes) -> None:
        """Refuse (UpdateLimit, before Yrs sees the update) what would take one map past
        MAX_MAP_KEYS keys (yupdate: past it, Yrs rehashes a map holding the GIL for
        longer than a merge's slice). The walk's counts are an upper bound (an item that
        names its key may be one this document holds already, as in a bundle of a
        production it has), so when only what the maps hold takes them past it, the
        structs this document lacks are counted again (a Yrs call: not for an update past
        the limit alone)."""
        if not self._keys_over(shape, state != b"\x00"):
            return
        alone = self._keys_over(shape, False)
        if state != b"\x00" and not alone:  # past it only with what the maps hold
            missing = get_update(update, state)  # the walk passed: Yrs may decode it
            shape = guard_update(missing, max_structs=max(shape.structs, 1))
            if not self._keys_over(shape, True):
                return
        where = "in one update" if alone else "(with what the document holds)"
        raise UpdateLimit(
            f"update beyond castroom's limits: more than {MAX_MAP_KEYS:,} keys in one map {where}"
        )

    def _keys_over(self, shape: UpdateShape, held: bool) -> bool:
        """Whether the keys ``shape`` names, with those the maps hold (``held``), pass
        MAX_MAP_KEYS in some map."""
        if shape.nested_keys > MAX_MAP_KEYS:
            return True
        for name, count in shape.root_keys.items():
            if count + (self._root_size(name) if held else 0) > MAX_MAP_KEYS:
                return True
        return False

    def _root_size(self, name: str) -> int:
        """Keys of the root map ``name`` (0 if the document has no such root map)."""
        if name == "production":
            return len(self._production)
        if name in self._collections:
            return len(self._collections[name])
        if name not in self.ydoc.keys():  # noqa: SIM118 - a pycrdt Doc is not a Mapping
            return 0
        try:
            return len(self.ydoc.get(name, type=Map))
        except Exception:  # a root of another type: its keys are not a map's
            return 0

    def notify(self, changes: Changes, origin: str) -> None:
        """Tell the ``on_change`` listeners about merged changes."""
        for listener in self.on_change:
            listener(changes, origin)

    def _load_into_empty(
        self, update: bytes, origin: str, shape: UpdateShape | None, *, notify: bool = True
    ) -> Changes:
        """First load (opening a production): everything in it is new, so skip the deep
        observers, whose per-entity events cost more than the load itself."""
        self._unwatch_merges()
        self._applying = True
        try:
            self._integrate(update, shape)
        except BaseException as exc:
            if _fatal(exc):
                raise
            self._applying = False
            if self.ydoc.get_state() != b"\x00" or len(self._production):
                self.rebuild([])  # it was empty, and nothing of this update is durable
            raise BadUpdate(f"cannot apply update: {one_line(exc)}") from None
        finally:
            self._applying = False
        self._forget()
        self._maps.clear()
        changes: Changes = {}
        if len(self._production):
            changes[("production", self.production_id or "")] = {"*"}
        for name, cmap in self._collections.items():
            for entity_id in cmap.keys():  # noqa: SIM118 - pycrdt types only keys() well
                changes[(name, entity_id)] = {"*"}
        if notify:
            self.notify(changes, origin)
        return changes

    # -- the layout, for the typed API ------------------------------------------------------

    @property
    def production_id(self) -> str | None:
        """The production's id (cached until a merge or a write touches the production)."""
        if self._id is _UNKNOWN:
            value = self._production.get("id")
            self._id = str(value) if value is not None else None
        return self._id  # type: ignore[return-value]

    def _settled(self) -> bool:
        return not self._depth and not self._applying

    def _meta_get(self, key: str, default: Any = None) -> Any:
        return self._meta.get(key, default)

    def _meta_set(self, key: str, value: Any) -> None:
        """Inside a transaction: set a ``meta`` key (the schema version)."""
        self._meta[key] = value
        self._changes.setdefault(("meta", key), set()).add(key)

    def _has_production(self) -> bool:
        return "id" in self._production

    def _production_stored(self) -> bool:
        """Whether the production map holds anything (an id or stray fields)."""
        return "id" in self._production or len(self._production) > 0

    def _production_data(self) -> dict[str, Any]:
        return _map_data(self._production)

    def _map_for(self, cls: type[Entity]) -> Map:
        collection_only(cls)
        return self._collections[cls.collection]

    def _entity_ids(self, cls: type[Entity]) -> list[str]:
        cmap = self._map_for(cls)
        if not self._settled():
            return list(cmap.keys())
        keys = self._key_lists.get(cls.collection)
        if keys is None:  # a Yrs call each (a transaction), and checks ask often
            generation = self._generation
            keys = list(cmap.keys())
            if generation == self._generation and self._settled():
                self._key_lists[cls.collection] = keys
        return list(keys)

    def _contains(self, cls: type[Entity], entity_id: str) -> bool:
        if not self._settled():
            return entity_id in self._map_for(cls)
        keys = self._key_sets.get(cls.collection)
        if keys is None:
            generation = self._generation
            keys = set(self._entity_ids(cls))
            if generation == self._generation and self._settled():
                self._key_sets[cls.collection] = keys
        return entity_id in keys

    def _collection_json(self, cls: type[Entity]) -> str:
        """A whole collection as JSON (id -> fields), in one Rust call."""
        text = self._json.get(cls.collection)
        if text is None:
            text = str(self._map_for(cls))
            if self.keep_json and not self._depth and not self._applying:  # not mid-write
                self._json[cls.collection] = text
        return text

    def layout_json(self) -> tuple[str, str, dict[str, str], dict[str, list[str]]]:
        """The document as plain data, for a read copy: the production's and ``meta``'s
        fields as JSON, each collection as JSON, and each collection's keys in Yrs's
        order (collections read since the last change are not serialised again)."""
        texts = {name: self._collection_json(cls) for name, cls in COLLECTIONS.items()}
        keys = {name: list(cmap.keys()) for name, cmap in self._collections.items()}
        return *self.fields_json(), texts, keys

    def fields_json(self) -> tuple[str, str]:
        """The production's and ``meta``'s fields as JSON (as :meth:`layout_json`)."""
        return str(self._production), str(self._meta)

    def holds(self, cls: type[Entity], entity_id: str) -> bool:
        """Whether the collection holds this key, asked of Yrs: a patch asks for a few,
        where :meth:`has` would list every key of a collection a merge just changed."""
        return entity_id in self._map_for(cls)

    def entity_json(self, cls: type[Entity], entity_id: str) -> str | None:
        """One entity's fields as JSON, as its collection's JSON holds them; None when
        absent or not a map of fields (a read copy is then made whole, not patched)."""
        value = self._map_for(cls).get(entity_id)
        return str(value) if isinstance(value, Map) else None

    def _stored(self, cls: type[Entity], entity_id: str) -> dict[str, Any] | None:
        """An entity's stored fields as plain data (None if absent or not a map)."""
        value = self._map_for(cls).get(entity_id)
        return _map_data(value) if isinstance(value, Map) else None

    def _entity_map(self, cls: type[Entity], entity_id: str) -> Map:
        if cls is Production:
            return self._production
        key = (cls.collection, entity_id)
        target = self._maps.get(key)
        if target is None:
            target = self._map_for(cls).get(entity_id)
            if not isinstance(target, Map):
                raise NotFound(f"no {cls.entity_kind} with id {entity_id!r}")
            self._maps[key] = target
        return target

    def _write_fields(
        self, cls: type[Entity], entity_id: str, new: dict[str, Any], old: dict[str, Any]
    ) -> None:
        """Inside a transaction: write the fields of ``new`` that differ from ``old`` into
        an existing entity (the production for ``Production``), each the CRDT way."""
        target = self._entity_map(cls, entity_id)
        written = []
        raw_txn = getattr(self._txn, "_txn", None) if _FAST_INSERT else None
        for name, value in new.items():
            if name in old and old[name] == value:
                continue
            written.append(name)
            if name in cls.crdt_arrays:
                current = target.get(name)
                if isinstance(current, Array):
                    _diff_list(current, _plain(current), value)
                    continue
                target[name] = Array(list(value))
            elif name in cls.crdt_texts:
                current = target.get(name)
                if isinstance(current, Text):
                    _diff_text(current, str(current), value)
                    continue
                target[name] = Text(value)
            elif name in cls.crdt_maps:
                current = target.get(name)
                if isinstance(current, Map):
                    _diff_map(current, value)
                    continue
                target[name] = Map(dict(value))  # a plain object from an older peer: upgraded
            else:
                self._note_value(cls.collection, entity_id, name, old.get(name), value)
                if raw_txn is not None:
                    # Straight to Yrs inside our open transaction: pycrdt's __setitem__
                    # opens a nested transaction per field, a third of an edit's cost.
                    target.integrated.insert(raw_txn, name, value)
                else:
                    target[name] = value
        if written:
            self._note(cls.collection, entity_id, written)

    def _create_entity(
        self, cls: type[Entity], entity_id: str, fields: dict[str, Any], defaults: dict[str, Any]
    ) -> None:
        """Inside a transaction: store a new entity's map. Plain fields equal to their
        default are left out (an absent field reads as its default): a third of the CRDT
        work for a typical imported talent."""
        prelim: dict[str, Any] = {}
        for name, value in fields.items():
            if name in cls.crdt_arrays:
                prelim[name] = Array(list(value))
            elif name in cls.crdt_texts:
                prelim[name] = Text(value)
            elif name in cls.crdt_maps:
                # Made with the entity, even empty: two peers each creating the map
                # later would race for the field and one would lose its keys.
                prelim[name] = Map(dict(value))
            elif name not in defaults or defaults[name] != value:
                prelim[name] = value
        self._map_for(cls)[entity_id] = Map(prelim)
        self._maps.pop((cls.collection, entity_id), None)
        self._note(cls.collection, entity_id, "*")

    # -- ordered lists and long text -------------------------------------------------------

    def _container(
        self, cls: type[Entity], entity_id: str, field: str, kind: type, plain: Any
    ) -> Any:
        """Inside a transaction: the Y.Array or Y.Text of a field, made from ``plain``
        (its current value) when a peer wrote it as a plain value or it is absent."""
        target = self._entity_map(cls, entity_id)
        value: Any = target.get(field)
        if not isinstance(value, kind):
            target[field] = Array(list(plain)) if kind is Array else Text(plain)
            value = target[field]
        elif kind is Array:
            # Concurrent moves can leave an item twice; reads show the first copy only.
            # Drop the later copies before editing, so indexes mean what reads show.
            seen: set[Any] = set()
            later = []
            array: Any = value
            for index, item in enumerate(array):
                key = item if isinstance(item, str | int | float) else repr(item)
                if key in seen:
                    later.append(index)
                seen.add(key)
            for index in reversed(later):
                del array[index]
        self._note(cls.collection, entity_id, [field])
        return value

    def _array_move(
        self, cls: type[Entity], entity_id: str, field: str, plain: list[Any], src: int, dst: int
    ) -> None:
        with self.transaction():
            array = self._container(cls, entity_id, field, Array, plain)
            if not (0 <= src < len(array) and 0 <= dst < len(array)):
                raise ValidationFailed(cls.entity_kind, field, "index out of range", entity_id)
            if src != dst:
                item = array.pop(src)
                array.insert(dst, item)

    def _array_insert(
        self,
        cls: type[Entity],
        entity_id: str,
        field: str,
        plain: list[Any],
        index: int,
        value: Any,
    ) -> None:
        with self.transaction():
            array = self._container(cls, entity_id, field, Array, plain)
            array.insert(max(0, min(index, len(array))), value)

    def _array_remove(
        self, cls: type[Entity], entity_id: str, field: str, plain: list[Any], index: int
    ) -> None:
        with self.transaction():
            array = self._container(cls, entity_id, field, Array, plain)
            if not 0 <= index < len(array):
                raise ValidationFailed(cls.entity_kind, field, "index out of range", entity_id)
            del array[index]

    def _text_splice(
        self,
        cls: type[Entity],
        entity_id: str,
        field: str,
        plain: str,
        index: int,
        delete: int,
        insert: str,
    ) -> None:
        with self.transaction():
            text = self._container(cls, entity_id, field, Text, plain)
            current = str(text)
            index = max(0, min(index, len(current)))
            start = _utf8_len(current[:index])  # pycrdt's offsets are UTF-8 bytes
            if delete > 0:
                del text[start : start + _utf8_len(current[index : index + delete])]
            if insert:
                text.insert(start, insert)

    # -- whole-document views --------------------------------------------------------------

    def is_empty(self) -> bool:
        """Whether nothing at all has been integrated (a document not loaded yet)."""
        return self.ydoc.get_state() == b"\x00"

    def to_data(self) -> dict[str, Any]:
        """Every collection as plain data (deleted entities included): for comparisons."""
        self._touch()
        out: dict[str, Any] = {"production": _map_data(self._production)}
        for name, cmap in self._collections.items():
            out[name] = _map_data(cmap)
        return out


def awareness_for(doc: CrdtDocument) -> Awareness:
    """A y-protocols Awareness (presence) bound to ``doc``'s Yjs document."""
    return Awareness(doc.ydoc)


def diff_update(update: bytes, state_vector: bytes) -> bytes:
    """What of ``update`` a peer with ``state_vector`` lacks (pending structs and
    deletions kept)."""
    return get_update(update, state_vector)


def check_update(update: bytes) -> None:
    """Raise BadUpdate unless ``update`` is a Yjs v1 update that decodes and integrates
    into an empty scratch document (stricter than decoding alone: a few crafted updates
    decode but fail to integrate). Nothing else is touched."""
    guard_update(update)
    try:
        Doc().apply_update(bytes(update))
    except BaseException as exc:  # a Rust panic surfaces as a BaseException
        if isinstance(exc, KeyboardInterrupt | SystemExit | GeneratorExit):
            raise
        raise BadUpdate(f"cannot decode update: {one_line(exc)}") from None


def merge_all(blobs: list[bytes], fan_in: int = 32) -> bytes:
    """Merge Yjs updates into one, keeping even content still waiting for its
    dependencies (a Doc's own encoding would drop it). merge_updates grows worse than
    linearly with its argument count, so merge in a tree of small groups."""
    while len(blobs) > 1:
        blobs = [
            merge_updates(*blobs[i : i + fan_in]) if len(blobs[i : i + fan_in]) > 1 else blobs[i]
            for i in range(0, len(blobs), fan_in)
        ]
    return blobs[0]


def fold(blobs: list[bytes]) -> bytes:
    """One update equivalent to applying ``blobs`` in order, as small and as fast to load
    as possible.

    The blobs are applied in order to a bare Doc (as the live document applied them), not
    merged with ``merge_updates``: for updates that carry a struct id twice with different
    content (a mutated or forged copy from a misbehaving peer), or that arrive with gaps,
    a merge may keep another copy than the Doc did, and the log would then load
    differently from the document it records (found by the sync fuzz test). The Doc's own
    encoding keeps every struct with its original id (so peers that synced before can
    still sync, and nothing is duplicated: jupyterlab #13550) and drops deleted content
    (garbage collection keeps the ids), so 100,000 edits of history load fast. What the
    Doc could not integrate yet (structs waiting for a missing dependency, which its
    encoding would lose) is added back from each blob, with every deletion.
    """
    doc: Doc = Doc()
    for blob in blobs:
        try:
            doc.apply_update(blob)
        except Exception as exc:  # pycrdt raises ValueError/RuntimeError on bad bytes
            raise BadUpdate(f"cannot apply update: {one_line(exc)}") from None
    clean = doc.get_update()
    state = get_state(clean)
    residue = [rest for blob in blobs if (rest := get_update(blob, state)) != EMPTY_UPDATE]
    return merge_all([clean, *residue]) if residue else clean
