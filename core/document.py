"""One production's document behind a typed, validating API: the only way code changes
a document (``put``, ``add``, ``update``, ``delete``, ``restore``; queries return Structs).

Layout (a public contract, see docs/schema.md): the top-level map ``production`` holds
the production's fields; each collection (``roles``, ``talents``, ...) is a top-level map
of id -> map of fields, so concurrent edits of different fields of one entity both
survive. ``meta`` holds the schema version. List fields named in a Struct's
``crdt_arrays`` are Y.Arrays, ``crdt_texts`` Y.Texts and ``crdt_maps`` (objects) nested
Y.Maps that merge key by key; everything else is a plain value in the entity's map (last
writer wins, the same way on every machine). A field absent from an entity's map reads
as its default. The Yjs binding itself (transactions, merges, rollback, change
tracking) is :mod:`castroom.core.crdt`, the only module that imports pycrdt.

Speed: a validated Struct is cached per entity. Local writes through the typed API keep
the cache and the change list themselves (no deep observers on the hot path); merged
updates are observed deeply only while they are applied; any other transaction on the
Doc (someone bypassing the API) clears the whole cache, so reads are never stale.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple, TypeVar

import msgspec

from . import collector, model, resolve
from .crdt import CREATED, UNLISTED, Changes, CrdtDocument
from .errors import NotFound, ValidationFailed
from .model import Entity, Production

SCHEMA_VERSION = 1
E = TypeVar("E", bound=Entity)

__all__ = ["CREATED", "UNLISTED", "CastDocument", "Changes", "InvalidEntity", "NewerSchemaWarning"]

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


@functools.cache
def _collection_decoder(cls: type[Entity]) -> msgspec.json.Decoder[dict[str, Any]]:
    """A JSON decoder of a whole collection (id -> fields) into checked Structs; numbers
    come back from Yjs as floats, so integral floats are accepted as ints (strict=False)."""
    return msgspec.json.Decoder(dict[str, cls], strict=False)  # type: ignore[valid-type]


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


class CastDocument(CrdtDocument):
    """A production's CRDT document with a typed, validating API (the binding, with its
    transactions, merges and hooks, is :class:`castroom.core.crdt.CrdtDocument`).

    Entities returned by reads are shared with the cache: treat them as read-only (use
    ``msgspec.structs.replace`` and :meth:`put`, or :meth:`update`).
    """

    # -- schema --------------------------------------------------------------------------

    @property
    def schema_version(self) -> int:
        value = self._meta_get("schema_version", 0)
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
            self._meta_set("schema_version", target)
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
            self._meta_set("schema_version", SCHEMA_VERSION)
            self._write_fields(Production, production.id, model.to_fields(production), {})
            self._changes.setdefault(("production", production.id), set()).add("*")
        return production

    @property
    def production(self) -> Production:
        self._touch()
        cached = self._cache.get(_PRODUCTION_KEY)
        if cached is None:
            if not self._has_production():
                raise NotFound("this document has no production yet")
            cached = model.validate(Production, self._production_data())
            self._cache[_PRODUCTION_KEY] = cached
        return cached  # type: ignore[return-value]

    @property
    def currency(self) -> str:
        """The currency money is read and shown in: the stored one even if a peer left
        the production invalid (a bad edit must not make every amount unreadable)."""
        try:
            return self.production.currency
        except ValidationFailed:
            return str(self.production_fields().get("currency") or "USD")

    def production_fields(self) -> dict[str, Any]:
        """The production's stored fields over their defaults, valid or not. For display:
        a bad edit from a peer must not make every read fail (nor block its repair)."""
        self._touch()
        if not self._has_production():
            raise NotFound("this document has no production yet")
        return {**plain_defaults(Production), **self._production_data()}

    def update_production(self, fields: dict[str, Any]) -> Production:
        # The id, not self.production: that validates, and an invalid production must
        # stay repairable (update() validates only the result).
        production_id = self.production_id
        if production_id is None:
            raise NotFound("this document has no production yet")
        return self.update(Production, production_id, fields)  # type: ignore[return-value]

    # -- entities --------------------------------------------------------------------------

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
        with self.transaction():
            existing = self._stored(cls, entity.id)
            if existing is not None:
                # Compare with what is stored (valid or not), absent fields as defaults.
                old = {**plain_defaults(cls), **existing}
                self._write_fields(cls, entity.id, fields, old)
            else:
                self._create_entity(cls, entity.id, fields, plain_defaults(cls))
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
            return self._production_data() if self._has_production() else None
        data = self._stored(cls, entity_id)
        if data is None:
            return None
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
        old = self.stored_fields(cls, entity_id)
        merged = validate_change(cls, entity_id, old, fields)
        new = {k: msgspec.to_builtins(getattr(merged, k)) for k in fields}
        with self.transaction():
            self._write_fields(cls, entity_id, new, old)
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
            self._write_fields(cls, entity_id, {"deleted": deleted}, old)

    def has(self, cls: type[Entity], entity_id: str) -> bool:
        """Whether the collection holds this key (a valid, invalid or deleted entity)."""
        self._touch()
        return self._contains(cls, entity_id)

    def ids(self, cls: type[Entity]) -> list[str]:
        self._touch()
        return self._entity_ids(cls)

    def all(self, cls: type[E], *, include_deleted: bool = False) -> list[E]:
        """Every valid entity of a kind, sorted by id. Invalid ones are skipped here and
        reported by :meth:`invalid`, so a bad edit from a peer never crashes a query."""
        self._touch()
        out: list[E] = []
        missing: list[str] = []
        for entity_id in self._entity_ids(cls):
            entity = self._cache.get((cls.collection, entity_id))
            if entity is None:
                missing.append(entity_id)
            elif include_deleted or not entity.deleted:
                out.append(entity)  # type: ignore[arg-type]
        if missing and len(missing) > 8:
            missing = self._decode_collection(cls, missing, out, include_deleted)
        if missing:
            self._decode_each(cls, missing, out, include_deleted)
        out.sort(key=lambda e: e.id)
        return out

    def _decode_collection(
        self, cls: type[E], missing: list[str], out: list[E], include_deleted: bool
    ) -> list[str]:
        """Many entities to read: decode the whole collection straight into Structs in
        one Rust call (appending to ``out``). If anything in it is invalid, nothing is
        decoded here: the ids left for the per-entity path are returned."""
        try:
            with collector.paused():
                typed = _collection_decoder(cls).decode(self._collection_json(cls))
        except msgspec.MsgspecError:
            return missing
        rest = []
        for entity_id in missing:
            entity = typed.get(entity_id)
            if entity is None or entity.id != entity_id:  # the key is the identity
                rest.append(entity_id)
                continue
            entity = self._remember(cls, entity)
            if include_deleted or not entity.deleted:
                out.append(entity)
        return rest

    def _decode_each(
        self, cls: type[E], missing: list[str], out: list[E], include_deleted: bool
    ) -> None:
        """Validate entities one by one (skipping invalid ones), appending to ``out``."""
        stored = msgspec.json.decode(self._collection_json(cls)) if len(missing) > 8 else None
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
                out.append(entity)

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

    def resolve(self, cls: type[E], ref: str, **options: bool) -> E:
        """The entity ``ref`` means (``include_deleted``, ``prefer_deleted``): see
        :func:`castroom.core.resolve.resolve_id`; one stored invalid is NotFound here,
        saying it is invalid."""
        return self.get(cls, self.resolve_id(cls, ref, **options), include_deleted=True)

    def resolve_id(self, cls: type[Entity], ref: str, **options: bool) -> str:
        """The id ``ref`` means, stored invalid entities included: see
        :func:`castroom.core.resolve.resolve_id`."""
        return resolve.resolve_id(self, cls, ref, **options)

    def invalid(self) -> list[InvalidEntity]:
        """Entities that break a model rule, with the field and the rule."""
        self._touch()
        out = []
        if self._production_stored():
            try:
                self.production  # noqa: B018 - validates and caches
            except ValidationFailed as exc:
                out.append(
                    InvalidEntity("production", self.production_id or "", exc.field, exc.rule)
                )
        for cls in model.KINDS.values():
            self.all(cls, include_deleted=True)  # decodes (and caches) the valid ones in bulk
            # Sorted: Yrs's key order varies from run to run, and a report must not.
            for entity_id in sorted(self._entity_ids(cls)):
                if (cls.collection, entity_id) in self._cache:
                    continue
                out += self.problems(cls, entity_id)
        return out

    def problems(self, cls: type[Entity], entity_id: str) -> list[InvalidEntity]:
        """What is wrong with one stored entity ([] when it is valid or absent)."""
        if not self._contains(cls, entity_id):
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

    def _plain_value(self, cls: type[Entity], entity_id: str, field: str, kind: str) -> Any:
        """A CRDT list (``kind`` "array") or long-text ("text") field's current value,
        refusing a field that is not one."""
        if field not in cls.__struct_fields__:
            raise ValidationFailed(cls.entity_kind, field, "no such field", entity_id)
        wanted = cls.crdt_arrays if kind == "array" else cls.crdt_texts
        if field not in wanted:
            name = "Array" if kind == "array" else "Text"
            raise ValidationFailed(cls.entity_kind, field, f"is not a CRDT {name}", entity_id)
        return getattr(self.get(cls, entity_id, include_deleted=True), field)

    def move_item(self, cls: type[Entity], entity_id: str, field: str, src: int, dst: int):
        """Move one item of an ordered list (e.g. re-rank a backup)."""
        plain = self._plain_value(cls, entity_id, field, "array")
        self._array_move(cls, entity_id, field, list(plain), src, dst)

    def insert_item(self, cls: type[Entity], entity_id: str, field: str, index: int, value: Any):
        plain = self._plain_value(cls, entity_id, field, "array")
        current = self.get(cls, entity_id, include_deleted=True)
        model.validate(cls, {**model.to_fields(current), field: [*plain, value]})
        self._array_insert(cls, entity_id, field, list(plain), index, value)

    def remove_item(self, cls: type[Entity], entity_id: str, field: str, index: int) -> None:
        plain = self._plain_value(cls, entity_id, field, "array")
        self._array_remove(cls, entity_id, field, list(plain), index)

    def edit_text(
        self, cls: type[Entity], entity_id: str, field: str, index: int, delete: int, insert: str
    ) -> None:
        """Splice a long-text field (merges character by character with peers' edits)."""
        current = str(self._plain_value(cls, entity_id, field, "text") or "")
        start = max(0, min(index, len(current)))
        result = current[:start] + insert + current[start + max(0, delete) :]
        model.validate(
            cls, {**model.to_fields(self.get(cls, entity_id, include_deleted=True)), field: result}
        )
        self._text_splice(cls, entity_id, field, current, index, delete, insert)


def validate_change(cls: type[E], entity_id: str, old: dict[str, Any], fields: dict[str, Any]) -> E:
    """The entity ``fields`` make of stored fields ``old`` (valid or not); refused naming
    everything still wrong, the same way every time (a repair may need several fields at
    once). The id cannot change."""
    if not _field_set(cls).issuperset(fields):
        model.check_field_names(cls, fields)
    if "id" in fields and fields["id"] != entity_id:
        raise ValidationFailed(cls.entity_kind, "id", "cannot be changed", entity_id)
    result = {**old, **fields}
    try:
        return model.validate(cls, result)  # type: ignore[return-value]
    except ValidationFailed as exc:
        (field, rule), *others = field_problems(cls, result, exc)
        also = "; ".join(f"{f or '-'}: {r}" for f, r in others)
        raise ValidationFailed(
            cls.entity_kind, field, rule + (f"; also {also}" if also else ""), entity_id
        ) from None


def field_problems(
    cls: type[Entity], data: dict[str, Any], error: ValidationFailed
) -> list[tuple[str | None, str]]:
    """Every (field, rule) ``data`` breaks, in the Struct's field order, given the
    ``error`` validating it whole raised. msgspec stops at the first error, and which one
    comes first follows the dict's key order (Yrs's, which varies between runs), so each
    field is checked on its own. A rule across fields (a range) is reported, from
    validating the fields in order, only once every field is fine by itself."""
    out: list[tuple[str | None, str]] = []
    for info in _struct_fields(cls):
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


@functools.cache
def _struct_fields(cls: type[Entity]) -> tuple[msgspec.structs.FieldInfo, ...]:
    """msgspec.structs.fields, once per class: it evaluates every annotation on each call
    (5 ms a talent: ``check`` on 10,000 invalid entities spent most of its time there)."""
    return msgspec.structs.fields(cls)


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
