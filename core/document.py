"""One production as one pycrdt document, behind a typed API.

Layout (a public contract, see docs/schema.md): the top-level map ``production`` holds
the production's fields; each collection (``roles``, ``talents``, ...) is a top-level map
of id -> map of fields, so concurrent edits of different fields of one entity both
survive. ``meta`` holds the schema version. List fields named in a Struct's
``crdt_arrays`` are Y.Arrays and ``crdt_texts`` are Y.Texts; everything else is a plain
value in the entity's map (last writer wins, the same way on every machine).

Nothing outside this module touches pycrdt maps: callers use put/get/update/delete/
restore/all/query, which validate on the way in and on the way out.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any, NamedTuple, TypeVar

import msgspec
from pycrdt import Array, Doc, Map, Text, TransactionEvent

from . import model
from .errors import Ambiguous, BadUpdate, NotFound, ValidationFailed
from .model import COLLECTIONS, Entity, Production

SCHEMA_VERSION = 1
E = TypeVar("E", bound=Entity)

#: Key = (collection, entity id); value = the field names that changed ("*" = created).
Changes = dict[tuple[str, str], set[str]]
Migration = Callable[["CastDocument"], None]

#: Additive migrations, by the version they migrate *to*. Each runs once, in order, when a
#: document older than SCHEMA_VERSION is opened.
MIGRATIONS: dict[int, Migration] = {}


class InvalidEntity(NamedTuple):
    """An entity in the document that breaks a model rule (e.g. it arrived from a peer)."""

    kind: str
    id: str
    field: str | None
    rule: str


def _plain(value: Any) -> Any:
    """A stored value as plain Python (pycrdt containers flattened)."""
    if isinstance(value, Map | Array | Text):
        return value.to_py() if not isinstance(value, Text) else str(value)
    return value


def _diff_list(target: Array, old: list[Any], new: list[Any]) -> None:
    """Turn ``old`` into ``new`` with the fewest inserts and deletes (merges item-wise)."""
    ops = difflib.SequenceMatcher(a=old, b=new, autojunk=False).get_opcodes()
    for tag, i1, i2, j1, j2 in reversed(ops):
        if tag in ("replace", "delete"):
            del target[i1:i2]
        if tag in ("replace", "insert"):
            for offset, item in enumerate(new[j1:j2]):
                target.insert(i1 + offset, item)


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


class CastDocument:
    """A production's CRDT document with a typed, validating API.

    ``on_commit(update, changes)`` is called after every outermost local transaction with
    its binary update; storage uses it to make the write durable before returning.
    """

    LOCAL = "castroom.local"

    def __init__(self, ydoc: Doc | None = None) -> None:
        self.ydoc = ydoc or Doc()
        self._production = self.ydoc.get("production", type=Map)
        self._meta = self.ydoc.get("meta", type=Map)
        self._collections = {name: self.ydoc.get(name, type=Map) for name in COLLECTIONS}
        self._cache: dict[tuple[str, str], Entity] = {}
        self._changes: Changes = {}
        self._updates: list[bytes] = []
        self._depth = 0
        self._txn: Any = None
        self.on_commit: Callable[[bytes, Changes], None] | None = None
        self.on_change: list[Callable[[Changes, str], None]] = []
        #: Called before reads and writes (storage merges other processes' commits there).
        self.before_access: Callable[[], Any] | None = None
        self._silenced = False
        self._subs = [self.ydoc.observe(self._on_transaction)]
        self._subs.append(self._production.observe(self._on_production))
        for name, cmap in self._collections.items():
            self._subs.append(cmap.observe_deep(self._observer(name)))

    # -- change tracking -----------------------------------------------------------------

    def _on_transaction(self, event: TransactionEvent) -> None:
        if self._depth:
            self._updates.append(event.update)

    def _on_production(self, event: Any) -> None:
        self._cache.pop(("production", ""), None)
        self._changes.setdefault(("production", self.production_id or ""), set()).update(
            event.keys
        )

    def _observer(self, collection: str) -> Callable[[list[Any]], None]:
        def observe(events: list[Any]) -> None:
            for event in events:
                path = event.path
                if not path:
                    for entity_id in event.keys:
                        self._cache.pop((collection, entity_id), None)
                        self._changes.setdefault((collection, entity_id), set()).add("*")
                    continue
                entity_id = path[0]
                self._cache.pop((collection, entity_id), None)
                fields = self._changes.setdefault((collection, entity_id), set())
                if len(path) >= 2:
                    fields.add(str(path[1]))
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
        return changes

    @contextmanager
    def transaction(self) -> Iterator[CastDocument]:
        """Group writes into one atomic, durable update. Nests; the outermost one commits."""
        if self._depth:
            self._depth += 1
            try:
                yield self
            finally:
                self._depth -= 1
            return
        self._touch()
        self._depth = 1
        try:
            with self.ydoc.transaction(origin=self.LOCAL) as txn:
                self._txn = txn
                yield self
        finally:
            self._depth = 0
            self._txn = None
        updates, self._updates = self._updates, []
        changes = self.take_changes()
        update = b"".join(updates[:1]) if len(updates) == 1 else None
        if updates and update is None:
            from pycrdt import merge_updates

            update = merge_updates(*updates)
        if update and changes and self.on_commit:
            self.on_commit(update, changes)
        for listener in self.on_change:
            listener(changes, "local")

    # -- binary updates --------------------------------------------------------------------

    def state_vector(self) -> bytes:
        return self.ydoc.get_state()

    def encode_update(self, state_vector: bytes | None = None) -> bytes:
        """Everything this document has that a peer with ``state_vector`` lacks."""
        try:
            return self.ydoc.get_update(state_vector) if state_vector else self.ydoc.get_update()
        except Exception as exc:  # pycrdt raises ValueError/RuntimeError on bad input
            raise BadUpdate(f"cannot decode state vector: {exc}") from None

    def apply_update(self, update: bytes, origin: str = "remote") -> Changes:
        """Merge a peer's update. Raises BadUpdate (leaving the document as it was) if the
        bytes cannot be decoded; returns what changed."""
        if self._depth:
            raise RuntimeError("apply_update inside a local transaction")
        if not isinstance(update, bytes) or len(update) < 2:
            raise BadUpdate("not a Yjs update (too short)")
        # Yrs decodes the whole update before integrating any of it, so a decode error
        # leaves the document exactly as it was.
        self._changes = {}
        try:
            self.ydoc.apply_update(update)
        except Exception as exc:
            raise BadUpdate(f"cannot apply update: {exc}") from None
        changes = self.take_changes()
        for listener in self.on_change:
            listener(changes, origin)
        return changes

    # -- schema --------------------------------------------------------------------------

    @property
    def schema_version(self) -> int:
        return int(self._meta.get("schema_version", 0) or 0)

    def migrate(self, migrations: dict[int, Migration] | None = None, target: int | None = None):
        """Bring an older document up to the current schema (additive changes only)."""
        migrations = MIGRATIONS if migrations is None else migrations
        target = SCHEMA_VERSION if target is None else target
        current = self.schema_version
        if current >= target:
            return []
        done = []
        with self.transaction():
            for version in range(current + 1, target + 1):
                if version in migrations:
                    migrations[version](self)
                    done.append(version)
            self._meta["schema_version"] = target
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
        return production

    @property
    def production_id(self) -> str | None:
        value = self._production.get("id")
        return str(value) if value is not None else None

    @property
    def production(self) -> Production:
        self._touch()
        cached = self._cache.get(("production", ""))
        if cached is None:
            if "id" not in self._production:
                raise NotFound("this document has no production yet")
            cached = model.validate(Production, self._production.to_py())
            self._cache[("production", "")] = cached
        return cached  # type: ignore[return-value]

    def update_production(self, fields: dict[str, Any]) -> Production:
        return self.update(Production, self.production.id, fields)  # type: ignore[return-value]

    # -- entities --------------------------------------------------------------------------

    def _map_for(self, cls: type[Entity]) -> Map:
        if cls is Production:
            raise ValidationFailed("production", None, "use update_production")
        return self._collections[cls.collection]

    def _write_fields(
        self, target: Map, cls: type[Entity], new: dict[str, Any], old: dict[str, Any]
    ) -> None:
        for name, value in new.items():
            if name in old and old[name] == value:
                continue
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
            else:
                target[name] = value

    def put(self, entity: E) -> E:
        """Store a new entity (or overwrite the fields of an existing one with this id)."""
        cls = type(entity)
        fields = model.to_fields(model.validate(cls, model.to_fields(entity)))
        cmap = self._map_for(cls)
        with self.transaction():
            existing = cmap.get(entity.id)
            if isinstance(existing, Map):
                old = model.to_fields(self.get(cls, entity.id, include_deleted=True))
                self._write_fields(existing, cls, fields, old)
            else:
                prelim: dict[str, Any] = {}
                for name, value in fields.items():
                    if name in cls.crdt_arrays:
                        prelim[name] = Array(list(value))
                    elif name in cls.crdt_texts:
                        prelim[name] = Text(value)
                    else:
                        prelim[name] = value
                cmap[entity.id] = Map(prelim)
        return entity

    def add(self, cls: type[E], **fields: Any) -> E:
        """Create an entity from fields, giving it a new id unless one is passed."""
        model.check_field_names(cls, fields)
        fields.setdefault("id", model.new_id())
        entity = model.validate(cls, fields)
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
            return self._production.to_py() if "id" in self._production else None
        value = self._map_for(cls).get(entity_id)
        if not isinstance(value, Map):
            return None
        # Yrs renders the map as JSON in one call: ~5x faster than to_py's per-key walk.
        data = msgspec.json.decode(str(value))
        data["id"] = entity_id  # the key is the identity, whatever a peer wrote inside
        return data

    def _load(self, cls: type[E], entity_id: str, data: dict[str, Any]) -> E:
        entity = model.validate(cls, data)
        if cls.crdt_arrays:
            entity = msgspec.structs.replace(
                entity, **{f: _dedupe(getattr(entity, f)) for f in cls.crdt_arrays}
            )
        self._cache[(cls.collection, entity_id)] = entity
        return entity  # type: ignore[return-value]

    def find(self, cls: type[E], entity_id: str, *, include_deleted: bool = False) -> E | None:
        if cls is Production:
            return self.production  # type: ignore[return-value]
        self._touch()
        entity = self._cache.get((cls.collection, entity_id))
        if entity is None:
            data = self.raw(cls, entity_id)
            if data is None:
                return None
            entity = self._load(cls, entity_id, data)
        if entity.deleted and not include_deleted:
            return None
        return entity  # type: ignore[return-value]

    def get(self, cls: type[E], entity_id: str, *, include_deleted: bool = False) -> E:
        entity = self.find(cls, entity_id, include_deleted=include_deleted)
        if entity is None:
            raise NotFound(f"no {cls.entity_kind} with id {entity_id!r}")
        return entity

    def update(self, cls: type[E], entity_id: str, fields: dict[str, Any]) -> E:
        """Change some fields of an entity. Validates the result before writing anything."""
        model.check_field_names(cls, fields)
        if "id" in fields and fields["id"] != entity_id:
            raise ValidationFailed(cls.entity_kind, "id", "cannot be changed", entity_id)
        current = self.get(cls, entity_id, include_deleted=True)
        old = model.to_fields(current)
        merged = model.validate(cls, {**old, **fields})
        new = model.to_fields(merged)
        target = self._production if cls is Production else self._map_for(cls)[entity_id]
        with self.transaction():
            self._write_fields(target, cls, {k: new[k] for k in fields}, old)
        return merged  # type: ignore[return-value]

    def delete(self, cls: type[Entity], entity_id: str) -> None:
        """Soft delete: the entity is hidden, never lost, and can be restored."""
        self.update(cls, entity_id, {"deleted": True})

    def restore(self, cls: type[Entity], entity_id: str) -> None:
        self.update(cls, entity_id, {"deleted": False})

    def ids(self, cls: type[Entity]) -> list[str]:
        self._touch()
        return list(self._map_for(cls).keys())

    def all(self, cls: type[E], *, include_deleted: bool = False) -> list[E]:
        """Every valid entity of a kind. Invalid ones are skipped here and reported by
        :meth:`invalid`, so a bad edit from a peer never crashes a query."""
        self._touch()
        cmap = self._map_for(cls)
        out: list[E] = []
        missing: list[str] = []
        for entity_id in cmap.keys():
            entity = self._cache.get((cls.collection, entity_id))
            if entity is None:
                missing.append(entity_id)
            elif include_deleted or not entity.deleted:
                out.append(entity)  # type: ignore[arg-type]
        if missing:
            # Many to decode (a first read): Yrs renders the whole map as JSON in one call,
            # several times faster than walking thousands of maps key by key from Python.
            bulk = msgspec.json.decode(str(cmap)) if len(missing) > 64 else None
            for entity_id in missing:
                if bulk is None:
                    data = self.raw(cls, entity_id)
                else:
                    data = bulk.get(entity_id)
                    data = {**data, "id": entity_id} if isinstance(data, dict) else None
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

    def resolve(self, cls: type[E], ref: str, *, include_deleted: bool = False) -> E:
        """Find an entity by id, unique id prefix, or unique name/number (case-insensitive)."""
        found = self.find(cls, ref, include_deleted=include_deleted)
        if found is not None:
            return found
        candidates = [i for i in self.ids(cls) if i.startswith(ref)] if len(ref) >= 4 else []
        if not candidates:
            label = "number" if cls is model.Scene else "name"
            folded = ref.casefold()
            candidates = [
                e.id
                for e in self.all(cls, include_deleted=include_deleted)
                if str(getattr(e, label, "")).casefold() == folded
            ]
        if len(candidates) > 1:
            raise Ambiguous(f"{ref!r} matches {len(candidates)} {cls.collection}; use the id")
        if not candidates:
            raise NotFound(f"no {cls.entity_kind} matching {ref!r}")
        return self.get(cls, candidates[0], include_deleted=include_deleted)

    def invalid(self) -> list[InvalidEntity]:
        """Entities that break a model rule, with the field and the rule."""
        self._touch()
        out = []
        sources: list[tuple[type[Entity], str]] = [(Production, "")] if "id" in self._production else []
        for cls in model.KINDS.values():
            sources.extend((cls, i) for i in self.ids(cls))
        for cls, entity_id in sources:
            if cls is not Production and (cls.collection, entity_id) in self._cache:
                continue
            data = self.raw(cls, entity_id)
            if data is None:
                out.append(InvalidEntity(cls.entity_kind, entity_id, None, "not a map of fields"))
                continue
            try:
                model.validate(cls, data)
            except ValidationFailed as exc:
                out.append(InvalidEntity(cls.entity_kind, data.get("id", entity_id), exc.field, exc.rule))
        return out

    def counts(self) -> dict[str, int]:
        return {cls.collection: len(self.all(cls)) for cls in model.KINDS.values()}

    # -- ordered lists and long text -------------------------------------------------------

    def _container(self, cls: type[Entity], entity_id: str, field: str, kind: type) -> Any:
        self.get(cls, entity_id, include_deleted=True)
        target = self._map_for(cls)[entity_id]
        value = target.get(field)
        if not isinstance(value, kind):
            raise ValidationFailed(cls.entity_kind, field, f"is not a CRDT {kind.__name__}")
        return value

    def move_item(self, cls: type[Entity], entity_id: str, field: str, src: int, dst: int):
        """Move one item of an ordered list (e.g. re-rank a backup)."""
        with self.transaction():
            array = self._container(cls, entity_id, field, Array)
            if not (0 <= src < len(array) and 0 <= dst < len(array)):
                raise ValidationFailed(cls.entity_kind, field, "index out of range", entity_id)
            item = array.pop(src)
            array.insert(dst, item)

    def insert_item(self, cls: type[Entity], entity_id: str, field: str, index: int, value: Any):
        with self.transaction():
            array = self._container(cls, entity_id, field, Array)
            items = _plain(array) + [value]
            model.validate(cls, {**model.to_fields(self.get(cls, entity_id, include_deleted=True)), field: items})
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
        with self.transaction():
            text = self._container(cls, entity_id, field, Text)
            index = max(0, min(index, len(text)))
            if delete:
                del text[index : min(len(text), index + delete)]
            if insert:
                text.insert(index, insert)

    # -- whole-document views --------------------------------------------------------------

    def to_data(self) -> dict[str, Any]:
        """Every collection as plain data (deleted entities included): for comparisons."""
        self._touch()
        out: dict[str, Any] = {"production": self._production.to_py()}
        for name, cmap in self._collections.items():
            out[name] = cmap.to_py()
        return out


def check_update(update: bytes) -> None:
    """Raise BadUpdate unless ``update`` decodes as a Yjs v1 update (on a scratch doc)."""
    if not isinstance(update, bytes | bytearray) or len(update) < 2:
        raise BadUpdate("not a Yjs update (too short)")
    try:
        Doc().apply_update(bytes(update))
    except Exception as exc:
        raise BadUpdate(f"cannot decode update: {exc}") from None
