"""One production as one pycrdt document, behind a typed API.

Layout (a public contract, see docs/schema.md): the top-level map ``production`` holds
the production's fields; each collection (``roles``, ``talents``, ...) is a top-level map
of id -> map of fields, so concurrent edits of different fields of one entity both
survive. ``meta`` holds the schema version. List fields named in a Struct's
``crdt_arrays`` are Y.Arrays, ``crdt_texts`` Y.Texts and ``crdt_maps`` (objects) nested
Y.Maps that merge key by key; everything else is a plain
value in the entity's map (last writer wins, the same way on every machine). A field
absent from an entity's map reads as its default.

Nothing outside this module touches pycrdt maps: callers use put/get/update/delete/
restore/all/query, which validate on the way in and on the way out.

Speed: a validated Struct is cached per entity. Local writes through the typed API keep
the cache and the change list themselves (no deep observers on the hot path); merged
updates are observed deeply only while they are applied; any other transaction on the
Doc (someone bypassing the API) clears the whole cache, so reads are never stale.
"""

from __future__ import annotations

import contextlib
import difflib
import functools
import re
import warnings
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any, NamedTuple, TypeVar

import msgspec
from pycrdt import Array, Doc, Map, Text, TransactionEvent, get_update, merge_updates

from . import model
from .errors import Ambiguous, BadUpdate, NotFound, ValidationFailed
from .model import COLLECTIONS, Entity, Production
from .yupdate import guard_update, one_line, update_is_empty

SCHEMA_VERSION = 1
E = TypeVar("E", bound=Entity)

#: Key = (collection, entity id); value = the field names that changed, or one of:
CREATED = "*"  # the entity is new (to this document)
UNLISTED = "?"  # some of its fields changed in a large merge, not itemised (COARSE_CHANGES)
Changes = dict[tuple[str, str], set[str]]
Migration = Callable[["CastDocument"], None]

#: Additive migrations, by the version they migrate *to*. Each runs once, in order, when a
#: document older than SCHEMA_VERSION is opened. They must be idempotent: two peers may
#: migrate the same document concurrently and their edits merge.
MIGRATIONS: dict[int, Migration] = {}

_PRODUCTION_KEY = ("production", "")


class NewerSchemaWarning(UserWarning):
    """The document was written by a newer castroom (it is read, but not migrated)."""


class InvalidEntity(NamedTuple):
    """An entity in the document that breaks a model rule (e.g. it arrived from a peer)."""

    kind: str
    id: str
    field: str | None
    rule: str


def _plain(value: Any) -> Any:
    """A stored value as plain Python (pycrdt containers flattened)."""
    if isinstance(value, Text):
        return str(value)
    if isinstance(value, Map | Array):
        return value.to_py()
    return value


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


@functools.cache
def _collection_decoder(cls: type[Entity]) -> msgspec.json.Decoder[dict[str, Any]]:
    """A JSON decoder of a whole collection (id -> fields) into checked Structs; numbers
    come back from Yjs as floats, so integral floats are accepted as ints (strict=False)."""
    return msgspec.json.Decoder(dict[str, cls], strict=False)  # type: ignore[valid-type]


def _diff_map(target: Map, new: dict[str, Any]) -> None:
    """Turn ``target`` into ``new`` key by key (so other keys set concurrently survive)."""
    for key in [k for k in target.keys() if k not in new]:  # noqa: SIM118 - pycrdt keys()
        del target[key]
    for key, value in new.items():
        if key not in target or _plain(target[key]) != value:
            target[key] = value


def _diff_text(target: Text, old: str, new: str) -> None:
    ops = difflib.SequenceMatcher(a=old, b=new, autojunk=False).get_opcodes()
    for tag, i1, i2, j1, j2 in reversed(ops):
        if tag in ("replace", "delete"):
            del target[i1:i2]
        if tag in ("replace", "insert"):
            target.insert(i1, new[j1:j2])


def _dedupe(items: list[Any]) -> list[Any]:
    # Two peers moving the same item concurrently leave it twice in a Y.Array: keep the first.
    seen: set[Any] = set()
    out = []
    for item in items:
        key = item if isinstance(item, str | int | float) else repr(item)
        if key not in seen:
            seen.add(key)
            out.append(item)
    return out


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

#: Updates up to this size are watched for structs Yrs left pending (see _integrate).
STASH_LIMIT = 512 * 1024
#: Merged updates larger than this record changed entities, not each changed field.
COARSE_CHANGES = 64 * 1024


def _fatal(exc: BaseException) -> bool:
    return isinstance(exc, KeyboardInterrupt | SystemExit | GeneratorExit)


class _Transaction:
    """``CastDocument.transaction()``: a plain class, not a generator (on the hot path)."""

    __slots__ = ("doc", "outer", "ytxn")

    def __init__(self, doc: CastDocument) -> None:
        self.doc = doc
        self.outer = False
        self.ytxn: Any = None

    def __enter__(self) -> CastDocument:
        doc = self.doc
        if doc._depth:
            doc._depth += 1
            return doc
        doc._touch()
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


class CastDocument:
    """A production's CRDT document with a typed, validating API.

    ``on_commit(update, changes)`` is called after every outermost local transaction with
    its binary update; storage uses it to make the write durable before returning.
    ``on_abort()`` is called when a transaction raised half-way or a merged update failed
    half-way (Yrs cannot roll back): storage rebuilds the document from its log there.

    Entities returned by reads are shared with the cache: treat them as read-only (use
    ``msgspec.structs.replace`` and :meth:`put`, or :meth:`update`).
    """

    LOCAL = "castroom.local"

    def __init__(self, ydoc: Doc | None = None) -> None:
        self._cache: dict[tuple[str, str], Entity] = {}
        #: The pycrdt Map of each entity written or read lately (a lookup costs ~15 us).
        self._maps: dict[tuple[str, str], Map] = {}
        self._changes: Changes = {}
        self._updates: list[bytes] = []
        #: Updates with structs still waiting for a missing dependency (see _integrate).
        self._stash: list[bytes] = []
        self._depth = 0
        self._applying = False
        self._txn: Any = None
        self.on_commit: Callable[[bytes, Changes], None] | None = None
        self.on_abort: Callable[[], None] | None = None
        self.on_change: list[Callable[[Changes, str], None]] = []
        #: Called before reads and writes (storage merges other processes' commits there).
        self.before_access: Callable[[], Any] | None = None
        self._silenced = False
        self._bind(ydoc or Doc())

    def _bind(self, ydoc: Doc) -> None:
        self.ydoc = ydoc
        self._production = ydoc.get("production", type=Map)
        self._meta = ydoc.get("meta", type=Map)
        self._collections = {name: ydoc.get(name, type=Map) for name in COLLECTIONS}
        self._cache.clear()
        self._maps.clear()
        self._subs = [ydoc.observe(self._on_transaction)]

    def rebuild(self, updates: Iterable[bytes]) -> None:
        """Replace the content with a fresh Doc made of ``updates`` (the durable state),
        keeping this object, its listeners and hooks. ``ydoc`` is a new Doc afterwards."""
        self._changes = {}
        self._updates = []
        self._stash = []
        self._bind(Doc())
        self._applying = True
        try:
            for update in updates:
                self._integrate(update)
        finally:
            self._applying = False
        self._cache.clear()
        self._maps.clear()
        self._changes = {}

    def _covered(self, update: bytes) -> bool:
        """Whether every struct of ``update`` is integrated (none beyond our state)."""
        missing = get_update(update, self.ydoc.get_state())
        return update_is_empty(missing)

    def _integrate(self, update: bytes) -> None:
        """Apply an update, then retry those whose structs Yrs left pending.

        Yrs (pycrdt 0.14) can leave a pending struct stuck when several updates of one
        client arrive out of order (2, 3, then 1: 2 never integrates), although applying
        it again then works. So updates not fully integrated are kept and re-applied
        after each later update until they are; applying an update twice is harmless.
        """
        self.ydoc.apply_update(update)
        if len(update) <= STASH_LIMIT and not self._covered(update):
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

    # -- change tracking -----------------------------------------------------------------

    def _on_transaction(self, event: TransactionEvent) -> None:
        if self._depth:
            self._updates.append(event.update)
        elif not self._applying:
            # A write that bypassed the typed API: nothing cached can be trusted.
            self._cache.clear()
            self._maps.clear()

    def _note(self, collection: str, entity_id: str, fields: Iterable[str]) -> None:
        key = _PRODUCTION_KEY if collection == "production" else (collection, entity_id)
        self._cache.pop(key, None)
        self._changes.setdefault((collection, entity_id), set()).update(fields)

    def _production_observer(self, events: list[Any]) -> None:
        self._cache.pop(_PRODUCTION_KEY, None)
        # No reads here: this runs inside Yrs's transaction, where reading the document
        # fails. take_changes() puts the production's id on the key afterwards.
        fields = self._changes.setdefault(("production", ""), set())
        for event in events:
            fields.update([str(event.path[0])] if event.path else event.keys)

    def _observer(self, collection: str, coarse: bool = False) -> Callable[[list[Any]], None]:
        """Change tracking for a collection. ``coarse``: for a big merged update, note each
        changed entity with ``UNLISTED`` instead of reading every event's keys (which
        costs Yrs more than the merge itself for thousands of entities: bench_sync)."""

        def observe(events: list[Any]) -> None:
            for event in events:
                path = event.path
                if not path:
                    for entity_id in event.keys:
                        self._cache.pop((collection, entity_id), None)
                        self._maps.pop((collection, entity_id), None)
                        self._changes.setdefault((collection, entity_id), set()).add("*")
                    continue
                entity_id = path[0]
                self._cache.pop((collection, entity_id), None)
                fields = self._changes.setdefault((collection, entity_id), set())
                if len(path) >= 2:
                    fields.add(str(path[1]))
                elif coarse:
                    fields.add(UNLISTED)
                else:
                    fields.update(event.keys)

        return observe

    def _touch(self) -> None:
        if self.before_access is not None and not self._depth and not self._silenced:
            self._silenced = True
            try:
                self.before_access()
            finally:
                self._silenced = False

    @contextmanager
    def silenced_access(self) -> Iterator[None]:
        previous, self._silenced = self._silenced, True
        try:
            yield
        finally:
            self._silenced = previous

    def take_changes(self) -> Changes:
        """What changed since the last call (local and merged remote edits alike)."""
        changes, self._changes = self._changes, {}
        if ("production", "") in changes:
            fields = changes.pop(("production", ""))
            changes.setdefault(("production", self.production_id or ""), set()).update(fields)
        return changes

    def transaction(self) -> _Transaction:
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
        self._cache.clear()
        self._maps.clear()
        if self.on_abort is not None:
            self.on_abort()

    # -- binary updates --------------------------------------------------------------------

    def state_vector(self) -> bytes:
        self._touch()
        return self.ydoc.get_state()

    def encode_update(self, state_vector: bytes | None = None) -> bytes:
        """Everything this document has that a peer with ``state_vector`` lacks."""
        self._touch()
        try:
            return self.ydoc.get_update(state_vector) if state_vector else self.ydoc.get_update()
        except Exception as exc:  # pycrdt raises ValueError/RuntimeError on bad input
            raise BadUpdate(f"cannot decode state vector: {exc}") from None

    def apply_update(
        self, update: bytes, origin: str = "remote", *, notify: bool = True
    ) -> Changes:
        """Merge a peer's update. Raises BadUpdate (leaving the document as it was) if the
        bytes cannot be decoded or integrated; returns what changed. With ``notify=False``
        the ``on_change`` listeners are not called: the caller calls :meth:`notify` once the
        update is durable (storage), so nobody hears of a change that may yet be dropped."""
        if self._depth:
            raise RuntimeError("apply_update inside a local transaction")
        guard_update(update)  # before Yrs reserves memory for what the bytes declare
        update = bytes(update)
        # Yrs decodes the whole update before integrating any of it, so a decode error
        # leaves the document as it was. An update that decodes but cannot be integrated
        # (a crafted one) fails half-way: then the document is rebuilt from its durable
        # state (storage) or from a copy taken here (a document without storage).
        state = self.ydoc.get_state()
        if state == b"\x00":
            return self._load_into_empty(update, origin, notify=notify)
        backup = None if self.on_abort is not None else self.ydoc.get_update()
        stash = list(self._stash)
        self._changes = {}
        # Raw Yrs deep observers: pycrdt's own wrap every event in Python objects first,
        # which costs about three times the merge itself on a big update (bench_sync).
        errors: list[Exception] = []
        observers: list[tuple[Map, Callable[[list[Any]], None]]]
        observers = [(self._production, self._production_observer)]
        coarse = len(update) > COARSE_CHANGES
        observers += [(m, self._observer(n, coarse)) for n, m in self._collections.items()]
        subs = [(shared, _observe_raw(shared, callback, errors)) for shared, callback in observers]
        self._applying = True
        try:
            self._integrate(update)
        except BaseException as exc:
            if _fatal(exc):
                raise
            self._applying = False
            half_done = (
                bool(self._changes)
                or not isinstance(exc, ValueError)  # ValueError: it did not even decode
                or self.ydoc.get_state() != state
            )
            if half_done:
                self._changes = {}
                if backup is not None:
                    self.rebuild([backup, *stash])  # get_update() drops pending structs
                else:
                    self._abort()
            raise BadUpdate(f"cannot apply update: {one_line(exc)}") from None
        finally:
            self._applying = False
            for _shared, sub in subs:
                with contextlib.suppress(Exception):  # after a rebuild the old types are gone
                    sub.drop()
        if errors:  # change tracking failed part-way: trust no cached entity
            self._cache.clear()
            self._maps.clear()
        changes = self.take_changes()
        if notify:
            self.notify(changes, origin)
        return changes

    def notify(self, changes: Changes, origin: str) -> None:
        """Tell the ``on_change`` listeners about merged changes."""
        for listener in self.on_change:
            listener(changes, origin)

    def _load_into_empty(self, update: bytes, origin: str, *, notify: bool = True) -> Changes:
        """First load (opening a production): everything in it is new, so skip the deep
        observers, whose per-entity events cost more than the load itself."""
        self._applying = True
        try:
            self._integrate(update)
        except BaseException as exc:
            if _fatal(exc):
                raise
            self._applying = False
            if self.ydoc.get_state() != b"\x00" or len(self._production):
                self.rebuild([])  # it was empty, and nothing of this update is durable
            raise BadUpdate(f"cannot apply update: {one_line(exc)}") from None
        finally:
            self._applying = False
        self._cache.clear()
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

    # -- schema --------------------------------------------------------------------------

    @property
    def schema_version(self) -> int:
        value = self._meta.get("schema_version", 0)
        return int(value) if isinstance(value, int | float) else 0

    def migrate(self, migrations: dict[int, Migration] | None = None, target: int | None = None):
        """Bring an older document up to the current schema (additive changes only).
        A document newer than this program is left alone."""
        migrations = MIGRATIONS if migrations is None else migrations
        target = SCHEMA_VERSION if target is None else target
        current = self.schema_version
        if current > target:
            # Readable (unknown fields are kept, just not shown), but the user should know.
            warnings.warn(
                NewerSchemaWarning(
                    f"this production has schema version {current}, newer than this"
                    f" program's {target}: some fields may not be shown; install a newer"
                    " version of castroom"
                ),
                stacklevel=2,
            )
        if current >= target:
            return []
        done = []
        with self.transaction():
            for version in range(current + 1, target + 1):
                if version in migrations:
                    migrations[version](self)
                    done.append(version)
            self._meta["schema_version"] = target
            self._changes.setdefault(("meta", "schema_version"), set()).add("schema_version")
        return done

    # -- the production --------------------------------------------------------------------

    @classmethod
    def create(cls, title: str, production_id: str | None = None, **fields: Any) -> CastDocument:
        doc = cls()
        doc.init_production(title, production_id, **fields)
        return doc

    def init_production(self, title: str, production_id: str | None = None, **fields: Any):
        production = model.validate(
            Production, {"id": production_id or model.new_id(), "title": title, **fields}
        )
        with self.transaction():
            self._meta["schema_version"] = SCHEMA_VERSION
            self._write_fields(self._production, Production, model.to_fields(production), {})
            self._changes.setdefault(("production", production.id), set()).add("*")
        return production

    @property
    def production_id(self) -> str | None:
        value = self._production.get("id")
        return str(value) if value is not None else None

    @property
    def production(self) -> Production:
        self._touch()
        cached = self._cache.get(_PRODUCTION_KEY)
        if cached is None:
            if "id" not in self._production:
                raise NotFound("this document has no production yet")
            cached = model.validate(Production, _map_data(self._production))
            self._cache[_PRODUCTION_KEY] = cached
        return cached  # type: ignore[return-value]

    def production_fields(self) -> dict[str, Any]:
        """The production's stored fields over their defaults, valid or not. For display:
        a bad edit from a peer must not make every read fail (nor block its repair)."""
        self._touch()
        if "id" not in self._production:
            raise NotFound("this document has no production yet")
        return {**plain_defaults(Production), **_map_data(self._production)}

    def update_production(self, fields: dict[str, Any]) -> Production:
        # The id, not self.production: that validates, and an invalid production must
        # stay repairable (update() validates only the result).
        production_id = self.production_id
        if production_id is None:
            raise NotFound("this document has no production yet")
        return self.update(Production, production_id, fields)  # type: ignore[return-value]

    # -- entities --------------------------------------------------------------------------

    def _map_for(self, cls: type[Entity]) -> Map:
        if cls is Production:
            raise ValidationFailed("production", None, "use update_production")
        return self._collections[cls.collection]

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
        self, target: Map, cls: type[Entity], new: dict[str, Any], old: dict[str, Any]
    ) -> None:
        entity_id = str(new.get("id") or old.get("id") or "")
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
            elif raw_txn is not None:
                # Straight to Yrs inside our open transaction: pycrdt's __setitem__ opens
                # a nested transaction per field, a third of an edit's cost.
                target.integrated.insert(raw_txn, name, value)
            else:
                target[name] = value
        if written:
            self._note(cls.collection, entity_id, written)

    def _remember(self, cls: type[E], entity: E) -> E:
        if cls.crdt_arrays:
            values = {f: getattr(entity, f) for f in cls.crdt_arrays}
            deduped = {f: _dedupe(v) for f, v in values.items()}
            if deduped != values:
                entity = msgspec.structs.replace(entity, **deduped)
        key = _PRODUCTION_KEY if cls is Production else (cls.collection, entity.id)
        self._cache[key] = entity
        return entity

    def put(self, entity: E) -> E:
        """Store a new entity (or overwrite the fields of an existing one with this id)."""
        cls = type(entity)
        if cls is Production:
            raise ValidationFailed("production", None, "use update_production")
        checked = model.validate(cls, model.to_fields(entity))
        fields = model.to_fields(checked)
        cmap = self._map_for(cls)
        with self.transaction():
            existing = cmap.get(entity.id)
            if isinstance(existing, Map):
                # Compare with what is stored (valid or not), absent fields as defaults.
                old = {**plain_defaults(cls), **_map_data(existing)}
                self._write_fields(existing, cls, fields, old)
            else:
                prelim: dict[str, Any] = {}
                defaults = plain_defaults(cls)
                for name, value in fields.items():
                    if name in cls.crdt_arrays:
                        prelim[name] = Array(list(value))
                    elif name in cls.crdt_texts:
                        prelim[name] = Text(value)
                    elif name in cls.crdt_maps:
                        # Made with the entity, even empty: two peers each creating the
                        # map later would race for the field and one would lose its keys.
                        prelim[name] = Map(dict(value))
                    elif name not in defaults or defaults[name] != value:
                        # A new entity stores only fields that differ from their defaults
                        # (an absent field reads as its default): a third of the CRDT
                        # work for a typical imported talent.
                        prelim[name] = value
                cmap[entity.id] = Map(prelim)
                self._maps.pop((cls.collection, entity.id), None)
                self._note(cls.collection, entity.id, "*")
            # Cached even inside a larger transaction: an abort clears the whole cache.
            self._remember(cls, checked)
        return entity

    def add(self, cls: type[E], **fields: Any) -> E:
        """Create an entity from fields, giving it a new id unless one is passed."""
        model.check_field_names(cls, fields)
        generated = "id" not in fields
        fields.setdefault("id", model.new_id())
        try:
            entity = model.validate(cls, fields)
        except ValidationFailed as exc:
            if generated:  # an id that was never saved means nothing to the reader
                raise ValidationFailed(exc.kind, exc.field, exc.rule) from None
            raise
        return self.put(entity)  # type: ignore[return-value]

    def put_many(self, entities: Iterable[Entity]) -> int:
        """Store many entities in one transaction. All are validated before any is written."""
        checked = [model.validate(type(e), model.to_fields(e)) for e in entities]
        with self.transaction():
            for entity in checked:
                self.put(entity)
        return len(checked)

    def raw(self, cls: type[Entity], entity_id: str) -> dict[str, Any] | None:
        """The stored fields of an entity as plain data, valid or not."""
        if cls is Production:
            return _map_data(self._production) if "id" in self._production else None
        value = self._map_for(cls).get(entity_id)
        if not isinstance(value, Map):
            return None
        data = _map_data(value)
        data["id"] = entity_id  # the key is the identity, whatever a peer wrote inside
        return data

    def _load(self, cls: type[E], entity_id: str, data: dict[str, Any]) -> E:
        return self._remember(cls, model.validate(cls, data))  # type: ignore[return-value]

    def find(self, cls: type[E], entity_id: str, *, include_deleted: bool = False) -> E | None:
        """The entity, or None: absent, deleted (unless ``include_deleted``) or stored
        invalid. A peer's well-formed update may leave an entity invalid; typed queries
        treat it as absent (like :meth:`all`) and :meth:`invalid` reports it, so no check
        or report crashes on it. :meth:`raw` still reads it, and :meth:`update` repairs it."""
        if cls is Production:
            return self.production  # type: ignore[return-value]
        self._touch()
        entity = self._cache.get((cls.collection, entity_id))
        if entity is None:
            data = self.raw(cls, entity_id)
            if data is None:
                return None
            try:
                entity = self._load(cls, entity_id, data)
            except ValidationFailed:
                return None
        if entity.deleted and not include_deleted:
            return None
        return entity  # type: ignore[return-value]

    def get(self, cls: type[E], entity_id: str, *, include_deleted: bool = False) -> E:
        """The entity; NotFound if :meth:`find` gives None (saying so when it is stored
        invalid, so the reader knows where to look)."""
        entity = self.find(cls, entity_id, include_deleted=include_deleted)
        if entity is None:
            data = self.raw(cls, entity_id)
            if data is not None and (include_deleted or not data.get("deleted")):
                try:
                    model.validate(cls, data)
                except ValidationFailed as exc:
                    raise NotFound(
                        f"{cls.entity_kind} {entity_id} is invalid ({exc.field or '-'}:"
                        f" {exc.rule}); see `castroom invalid`"
                    ) from None
            raise NotFound(f"no {cls.entity_kind} with id {entity_id!r}")
        return entity

    def stored_fields(self, cls: type[Entity], entity_id: str) -> dict[str, Any]:
        """An entity's fields over their defaults, valid or not (NotFound if absent): what
        a repair starts from when the entity is stored invalid."""
        if cls is Production:
            try:
                return model.to_fields(self.production)
            except ValidationFailed:
                return self.production_fields()
        entity = self.find(cls, entity_id, include_deleted=True)
        if entity is not None:
            return model.to_fields(entity)
        data = self.raw(cls, entity_id)
        if data is None:
            raise NotFound(f"no {cls.entity_kind} with id {entity_id!r}")
        return {**plain_defaults(cls), **data}

    def update(self, cls: type[E], entity_id: str, fields: dict[str, Any]) -> E:
        """Change some fields of an entity. Validates the result before writing anything.
        Works on an entity that is stored invalid too, as long as the result is valid
        (that is how a bad edit from a peer gets fixed)."""
        if not _field_set(cls).issuperset(fields):
            model.check_field_names(cls, fields)
        if "id" in fields and fields["id"] != entity_id:
            raise ValidationFailed(cls.entity_kind, "id", "cannot be changed", entity_id)
        old = self.stored_fields(cls, entity_id)
        result = {**old, **fields}
        try:
            merged = model.validate(cls, result)
        except ValidationFailed as exc:
            # Name everything still wrong, the same way every time (a repair may need
            # several fields at once).
            (field, rule), *others = field_problems(cls, result, exc)
            also = "; ".join(f"{f or '-'}: {r}" for f, r in others)
            raise ValidationFailed(
                cls.entity_kind, field, rule + (f"; also {also}" if also else ""), entity_id
            ) from None
        new = {k: msgspec.to_builtins(getattr(merged, k)) for k in fields}
        with self.transaction():
            target = self._entity_map(cls, entity_id)
            self._write_fields(target, cls, new, old)
            self._remember(cls, merged)
        return merged  # type: ignore[return-value]

    def delete(self, cls: type[Entity], entity_id: str) -> None:
        """Soft delete: the entity is hidden, never lost, and can be restored."""
        self._set_deleted(cls, entity_id, True)

    def restore(self, cls: type[Entity], entity_id: str) -> None:
        self._set_deleted(cls, entity_id, False)

    def _set_deleted(self, cls: type[Entity], entity_id: str, deleted: bool) -> None:
        if cls is Production or self.find(cls, entity_id, include_deleted=True) is not None:
            self.update(cls, entity_id, {"deleted": deleted})
            return
        # Stored invalid: flip only the flag. update() would refuse, since the result is
        # still invalid, and deleting (or restoring) such an entity must not need a repair.
        old = self.stored_fields(cls, entity_id)
        with self.transaction():
            self._write_fields(self._entity_map(cls, entity_id), cls, {"deleted": deleted}, old)

    def ids(self, cls: type[Entity]) -> list[str]:
        self._touch()
        return list(self._map_for(cls).keys())

    def all(self, cls: type[E], *, include_deleted: bool = False) -> list[E]:
        """Every valid entity of a kind, sorted by id. Invalid ones are skipped here and
        reported by :meth:`invalid`, so a bad edit from a peer never crashes a query."""
        self._touch()
        cmap = self._map_for(cls)
        out: list[E] = []
        missing: list[str] = []
        for entity_id in cmap.keys():  # noqa: SIM118 - pycrdt types only keys() well
            entity = self._cache.get((cls.collection, entity_id))
            if entity is None:
                missing.append(entity_id)
            elif include_deleted or not entity.deleted:
                out.append(entity)  # type: ignore[arg-type]
        if missing and len(missing) > 8:
            # Many entities to read: decode the whole collection straight into Structs in
            # one Rust call; if anything in it is invalid, the per-entity path sorts it out.
            text = str(cmap)
            try:
                typed = _collection_decoder(cls).decode(text)
            except msgspec.MsgspecError:
                typed = None
            if typed is not None:
                rest = []
                for entity_id in missing:
                    entity = typed.get(entity_id)
                    if entity is None or entity.id != entity_id:  # the key is the identity
                        rest.append(entity_id)
                        continue
                    entity = self._remember(cls, entity)
                    if include_deleted or not entity.deleted:
                        out.append(entity)  # type: ignore[arg-type]
                missing = rest
        if missing:
            stored = msgspec.json.decode(str(cmap)) if len(missing) > 8 else None
            for entity_id in missing:
                if stored is not None:
                    data = stored.get(entity_id)
                    if not isinstance(data, dict):
                        continue
                    data["id"] = entity_id
                else:
                    data = self.raw(cls, entity_id)
                    if data is None:
                        continue
                try:
                    entity = self._load(cls, entity_id, data)
                except ValidationFailed:
                    continue
                if include_deleted or not entity.deleted:
                    out.append(entity)  # type: ignore[arg-type]
        out.sort(key=lambda e: e.id)
        return out

    def query(
        self,
        cls: type[E],
        where: Callable[[E], bool] | None = None,
        *,
        include_deleted: bool = False,
        **equals: Any,
    ) -> list[E]:
        """Entities of a kind matching ``where`` and every ``field=value`` given."""
        model.check_field_names(cls, equals)
        return [
            e
            for e in self.all(cls, include_deleted=include_deleted)
            if all(getattr(e, k) == v for k, v in equals.items()) and (where is None or where(e))
        ]

    def resolve(
        self, cls: type[E], ref: str, *, include_deleted: bool = False, prefer_deleted: bool = False
    ) -> E:
        """Find an entity by id, unique id prefix, or unique name/number (case-insensitive).

        Live entities win: a deleted one matches only if no live one does, and only with
        ``include_deleted``. ``prefer_deleted`` (restoring) turns that round: a deleted
        match wins, a live one is returned only if no deleted one matches. An entity
        stored invalid is NotFound here (saying it is invalid): see :meth:`resolve_id`."""
        entity_id = self.resolve_id(
            cls, ref, include_deleted=include_deleted, prefer_deleted=prefer_deleted
        )
        return self.get(cls, entity_id, include_deleted=True)

    def resolve_id(
        self,
        cls: type[Entity],
        ref: str,
        *,
        include_deleted: bool = False,
        prefer_deleted: bool = False,
    ) -> str:
        """The id :meth:`resolve` means, found among entities stored invalid too (by their
        stored name or number), so they can be shown, repaired, deleted and restored."""
        include_deleted = include_deleted or prefer_deleted
        stages: list[Callable[[], list[str]]] = [
            lambda: [ref] if self.raw(cls, ref) is not None else [],
            lambda: [i for i in self.ids(cls) if i.startswith(ref)] if len(ref) >= 4 else [],
            lambda: self._matching_label(cls, ref),
        ]
        for stage in stages:
            found = stage()
            live = [i for i in found if not self._deleted(cls, i)]
            dead = [i for i in found if i not in live] if include_deleted else []
            for group in (dead, live) if prefer_deleted else (live, dead):
                if len(group) > 1:
                    raise Ambiguous(
                        f"{ref!r} matches {len(group)} {cls.collection}:"
                        f" {self._briefly(cls, group)}; use the id"
                    )
                if group:
                    return group[0]
        raise NotFound(f"no {cls.entity_kind} matching {ref!r}")

    def _deleted(self, cls: type[Entity], entity_id: str) -> bool:
        cached = self._cache.get((cls.collection, entity_id))
        if cached is not None:
            return cached.deleted
        return bool((self.raw(cls, entity_id) or {}).get("deleted"))

    def _matching_label(self, cls: type[Entity], ref: str) -> list[str]:
        folded = ref.strip().casefold()
        valid = self.all(cls, include_deleted=True)
        found = [e.id for e in valid if any(str(lb).casefold() == folded for lb in labels(e))]
        known = {e.id for e in valid}
        for entity_id in self.ids(cls):  # stored invalid: match what is stored
            if entity_id not in known and _raw_label(self.raw(cls, entity_id)).casefold() == folded:
                found.append(entity_id)
        day = _DAY_NUMBER.match(folded) if cls is model.ShootDay else None
        if not found and day:  # "3" or "day 3": a shoot day by its number
            number = int(day.group(1))
            found = [
                e.id
                for e in self.all(model.ShootDay, include_deleted=True)
                if e.day_number == number
            ]
        return found

    def _briefly(self, cls: type[Entity], ids: list[str], most: int = 5) -> str:
        """Matches as "id-prefix label" (each prefix unique in the collection), at most 5."""
        every = self.ids(cls)
        out = []
        for entity_id in ids[:most]:
            size = next(
                (
                    n
                    for n in range(8, len(entity_id))
                    if sum(i.startswith(entity_id[:n]) for i in every) == 1
                ),
                len(entity_id),
            )
            data = self.raw(cls, entity_id)  # valid or not
            label = _raw_label(data)
            if data is not None and data.get("deleted"):
                label += " (deleted)"
            out.append(f"{entity_id[:size]} {label}".strip())
        return ", ".join(out) + (f", and {len(ids) - most} more" if len(ids) > most else "")

    def invalid(self) -> list[InvalidEntity]:
        """Entities that break a model rule, with the field and the rule."""
        self._touch()
        out = []
        if "id" in self._production or len(self._production):
            try:
                self.production  # noqa: B018 - validates and caches
            except ValidationFailed as exc:
                out.append(
                    InvalidEntity("production", self.production_id or "", exc.field, exc.rule)
                )
        for cls in model.KINDS.values():
            self.all(cls, include_deleted=True)  # decodes (and caches) the valid ones in bulk
            cmap = self._map_for(cls)
            # Sorted: Yrs's key order varies from run to run, and a report must not.
            for entity_id in sorted(cmap.keys()):
                if (cls.collection, entity_id) in self._cache:
                    continue
                out += self.problems(cls, entity_id)
        return out

    def problems(self, cls: type[Entity], entity_id: str) -> list[InvalidEntity]:
        """What is wrong with one stored entity ([] when it is valid or absent)."""
        if entity_id not in self._map_for(cls):
            return []
        data = self.raw(cls, entity_id)
        if data is None:
            return [InvalidEntity(cls.entity_kind, entity_id, None, "not a map of fields")]
        try:
            self._load(cls, entity_id, data)
        except ValidationFailed as exc:
            found = field_problems(cls, data, exc)
            return [InvalidEntity(cls.entity_kind, entity_id, f, rule) for f, rule in found]
        return []

    def counts(self) -> dict[str, int]:
        return {cls.collection: len(self.all(cls)) for cls in model.KINDS.values()}

    # -- ordered lists and long text -------------------------------------------------------

    def _container(self, cls: type[Entity], entity_id: str, field: str, kind: type) -> Any:
        if field not in cls.__struct_fields__:
            raise ValidationFailed(cls.entity_kind, field, "no such field", entity_id)
        wanted = cls.crdt_arrays if kind is Array else cls.crdt_texts
        if field not in wanted:
            raise ValidationFailed(
                cls.entity_kind, field, f"is not a CRDT {kind.__name__}", entity_id
            )
        self.get(cls, entity_id, include_deleted=True)
        target = self._entity_map(cls, entity_id)
        value: Any = target.get(field)
        if not isinstance(value, kind):
            # Absent, or written as a plain value by a peer: make it a CRDT container.
            plain = getattr(self.get(cls, entity_id, include_deleted=True), field)
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

    def move_item(self, cls: type[Entity], entity_id: str, field: str, src: int, dst: int):
        """Move one item of an ordered list (e.g. re-rank a backup)."""
        with self.transaction():
            array = self._container(cls, entity_id, field, Array)
            if not (0 <= src < len(array) and 0 <= dst < len(array)):
                raise ValidationFailed(cls.entity_kind, field, "index out of range", entity_id)
            if src != dst:
                item = array.pop(src)
                array.insert(dst, item)

    def insert_item(self, cls: type[Entity], entity_id: str, field: str, index: int, value: Any):
        current = self.get(cls, entity_id, include_deleted=True)
        items = [*getattr(current, field, []), value]
        model.validate(cls, {**model.to_fields(current), field: items})
        with self.transaction():
            array = self._container(cls, entity_id, field, Array)
            array.insert(max(0, min(index, len(array))), value)

    def remove_item(self, cls: type[Entity], entity_id: str, field: str, index: int) -> None:
        with self.transaction():
            array = self._container(cls, entity_id, field, Array)
            if not 0 <= index < len(array):
                raise ValidationFailed(cls.entity_kind, field, "index out of range", entity_id)
            del array[index]

    def edit_text(
        self, cls: type[Entity], entity_id: str, field: str, index: int, delete: int, insert: str
    ) -> None:
        """Splice a long-text field (merges character by character with peers' edits)."""
        current = str(getattr(self.get(cls, entity_id, include_deleted=True), field, ""))
        start = max(0, min(index, len(current)))
        result = current[:start] + insert + current[start + max(0, delete) :]
        model.validate(
            cls, {**model.to_fields(self.get(cls, entity_id, include_deleted=True)), field: result}
        )
        with self.transaction():
            text = self._container(cls, entity_id, field, Text)
            index = max(0, min(index, len(text)))
            if delete > 0:
                del text[index : min(len(text), index + delete)]
            if insert:
                text.insert(index, insert)

    # -- whole-document views --------------------------------------------------------------

    def to_data(self) -> dict[str, Any]:
        """Every collection as plain data (deleted entities included): for comparisons."""
        self._touch()
        out: dict[str, Any] = {"production": _map_data(self._production)}
        for name, cmap in self._collections.items():
            out[name] = _map_data(cmap)
        return out


_DAY_NUMBER = re.compile(r"^(?:day\s*)?(\d{1,9})$")


def labels(entity: Entity) -> list[Any]:
    """What people call an entity, besides its id: a name, a scene's number, a shoot
    day's ISO date (resolving and listing ambiguous matches use these)."""
    if isinstance(entity, model.Scene):
        return [entity.number]
    if isinstance(entity, model.ShootDay):
        return [entity.date.isoformat()]
    name = getattr(entity, "name", None)
    return [name] if name else []


def field_problems(
    cls: type[Entity], data: dict[str, Any], error: ValidationFailed
) -> list[tuple[str | None, str]]:
    """Every (field, rule) ``data`` breaks, in the Struct's field order, given the
    ``error`` validating it whole raised. msgspec stops at the first error, and which one
    comes first follows the dict's key order (Yrs's, which varies between runs), so each
    field is checked on its own. A rule across fields (a range) is reported, from
    validating the fields in order, only once every field is fine by itself."""
    out: list[tuple[str | None, str]] = []
    for info in msgspec.structs.fields(cls):
        if info.name not in data:
            if info.required:
                out.append((info.name, "is required"))
            continue
        try:
            msgspec.convert(data[info.name], info.type, strict=False)
        except msgspec.ValidationError as exc:
            text = str(exc)  # "... - at `$[0].name`" for nested values; put the field first
            text = text.replace(" - at `$", f" - at `$.{info.name}", 1)
            if " - at `$" not in text:
                text += f" - at `$.{info.name}`"
            found = model.validation_error(cls, msgspec.ValidationError(text), None)
            out.append((found.field or info.name, found.rule))
    if not out:
        ordered = {name: data[name] for name in cls.__struct_fields__ if name in data}
        try:
            model.validate(cls, ordered)
        except ValidationFailed as exc:
            error = exc
        out.append((error.field, error.rule))
    return out


def _raw_label(data: dict[str, Any] | None) -> str:
    """:func:`labels` of stored fields, valid or not (a shoot day's date is stored ISO)."""
    data = data or {}
    for key in ("name", "number", "date"):
        if data.get(key) not in (None, ""):
            return str(data[key])
    return ""


@functools.cache
def _field_set(cls: type[Entity]) -> frozenset[str]:
    return frozenset(cls.__struct_fields__)


@functools.cache
def plain_defaults(cls: type[Entity]) -> dict[str, Any]:
    """Each field's default as plain data (fields without one are absent)."""
    out: dict[str, Any] = {}
    for info in msgspec.structs.fields(cls):
        if info.default is not msgspec.NODEFAULT:
            out[info.name] = msgspec.to_builtins(info.default)
        elif info.default_factory is not msgspec.NODEFAULT:
            out[info.name] = msgspec.to_builtins(info.default_factory())
    return out


def _discard() -> None:
    """``on_abort`` of a scratch document: it is thrown away after a failure anyway."""


def production_in(update: bytes, base: bytes | None = None) -> str | None:
    """Merge ``update`` into a scratch document (holding ``base``, a whole document as one
    update, first if given) and return the id of the production it then holds, or None if
    it holds none: whether an update creates (or belongs to) a given production.

    Raises BadUpdate if ``update`` does not decode, or decodes but cannot be integrated
    (on top of ``base``), so a rehearsal with ``base`` vets an update before anything real
    is merged. Nothing outside the scratch document is touched."""
    scratch = CastDocument()
    scratch.on_abort = _discard  # no backup copy of the scratch state before merging
    if base:
        scratch.apply_update(base, origin="check", notify=False)
    scratch.apply_update(update, origin="check", notify=False)
    return scratch.production_id
