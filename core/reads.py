"""A production's typed, validating reads: queries that return Structs, invalid
entities found and described, schema version, whatever holds the production.

:class:`DocumentReads` reads through a few primitives (the ``meta`` map, the
production's fields, a collection's keys, JSON and one entity's fields) that a source
provides: the Yjs document (:class:`castroom.core.crdt.CrdtDocument`, under the typed
writes of :class:`castroom.core.document.CastDocument`) or a read copy's plain JSON
(:class:`castroom.core.read_copy.ReadCopy`). Nothing here imports pycrdt, so a command
that reads a production's read copy never loads Yrs, nor asyncio under it (issue 14:
``castroom list`` <= 150 ms).
"""

from __future__ import annotations

import functools
import operator
from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Iterable, Iterator
from contextlib import contextmanager
from typing import Any, NamedTuple, TypeVar

import msgspec

from . import collector, model, resolve
from .errors import NotFound, ValidationFailed
from .model import Entity, Production

#: The schema version this program writes (``meta.schema_version``; see docs/schema.md).
SCHEMA_VERSION = 1
E = TypeVar("E", bound=Entity)

#: Key = (collection, entity id); value = the field names that changed, or one of:
CREATED = "*"  # the entity is new (to this document)
UNLISTED = "?"  # some of its fields changed in a large merge, not itemised (COARSE_CHANGES)
Changes = dict[tuple[str, str], set[str]]

_PRODUCTION_KEY = ("production", "")
_BY_ID = operator.attrgetter("id")


class NewerSchemaWarning(UserWarning):
    """The document was written by a newer castroom (it is read, but not migrated)."""


class InvalidEntity(NamedTuple):
    """An entity in the document that breaks a model rule (e.g. it arrived from a peer)."""

    kind: str
    id: str
    field: str | None
    rule: str


@functools.cache
def collection_decoder(cls: type[Entity]) -> msgspec.json.Decoder[dict[str, Any]]:
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


def deduped(cls: type[E], entity: E) -> E:
    """``entity`` with each CRDT array holding an item once (see :func:`_dedupe`)."""
    if cls.crdt_arrays:
        values = {f: getattr(entity, f) for f in cls.crdt_arrays}
        if all(_distinct(v) for v in values.values()):  # the common case, thousands a read
            return entity
        unique = {f: _dedupe(v) for f, v in values.items()}
        if unique != values:
            entity = msgspec.structs.replace(entity, **unique)
    return entity


def _distinct(items: list[Any]) -> bool:
    """Whether no item is there twice (by value; False when that cannot be told fast)."""
    try:
        return len(set(items)) == len(items)
    except TypeError:  # unhashable items: _dedupe compares their repr
        return False


def unstripped(cls: type[Entity], entities: Iterable[Entity]) -> set[str]:
    """The ids of ``entities`` (decoded straight from JSON, as a peer wrote them) holding
    a name :func:`castroom.core.model.validate` would strip: read through it instead, so
    every path reads an entity the same way."""
    names = model.name_fields(cls)
    if not names:
        return set()
    return {
        e.id
        for e in entities
        for name in names
        if isinstance(value := getattr(e, name), str) and value != value.strip()
    }


class DocumentReads(ABC):
    """The typed reads of one production, over the primitives a source provides.

    Entities returned by reads are shared with the cache: treat them as read-only (use
    ``msgspec.structs.replace`` and a write of :class:`~castroom.core.document.CastDocument`).
    """

    def __init__(self) -> None:
        #: Validated Structs by (collection, id); a source that changes drops the
        #: entries a change touches.
        self._cache: dict[tuple[str, str], Entity] = {}
        #: Called before reads and writes (storage merges other processes' commits there).
        self.before_access: Callable[[], Any] | None = None
        self._silenced = False
        self._depth = 0  # open write transactions (none where nothing is written)
        #: What all() last gave per (kind, include_deleted), while the source is
        #: settled (see _settled): checks ask for each kind many times per run. A source
        #: that changes clears it (CrdtDocument: on every transaction, whoever made it).
        self._every: dict[tuple[type[Entity], bool], list[Any]] = {}
        #: Bumped by a source on every change: a read that a change overtook (another
        #: thread merging meanwhile) is not remembered.
        self._generation = 0

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

    # -- what a source provides ------------------------------------------------------------

    @property
    @abstractmethod
    def production_id(self) -> str | None: ...

    @abstractmethod
    def _meta_get(self, key: str, default: Any = None) -> Any: ...

    @abstractmethod
    def _has_production(self) -> bool: ...

    @abstractmethod
    def _production_stored(self) -> bool:
        """Whether the production map holds anything (an id or stray fields)."""
        ...

    @abstractmethod
    def _production_data(self) -> dict[str, Any]: ...

    @abstractmethod
    def _entity_ids(self, cls: type[Entity]) -> list[str]: ...

    @abstractmethod
    def _contains(self, cls: type[Entity], entity_id: str) -> bool: ...

    @abstractmethod
    def _collection_json(self, cls: type[Entity]) -> str:
        """A whole collection as JSON (id -> fields)."""
        ...

    @abstractmethod
    def _stored(self, cls: type[Entity], entity_id: str) -> dict[str, Any] | None:
        """An entity's stored fields as plain data (None if absent or not a map)."""
        ...

    def _settled(self) -> bool:
        """Whether reads may be remembered (not inside a write transaction)."""
        return not self._depth

    @abstractmethod
    def to_data(self) -> dict[str, Any]:
        """Every collection as plain data (deleted entities included): for comparisons."""

    # -- schema and the production ---------------------------------------------------------

    @property
    def schema_version(self) -> int:
        value = self._meta_get("schema_version", 0)
        return int(value) if isinstance(value, int | float) else 0

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

    # -- entities ----------------------------------------------------------------------------

    def _remember(self, cls: type[E], entity: E) -> E:
        entity = deduped(cls, entity)
        key = _PRODUCTION_KEY if cls is Production else (cls.collection, entity.id)
        self._cache[key] = entity
        return entity

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

    def has(self, cls: type[Entity], entity_id: str) -> bool:
        """Whether the collection holds this key (a valid, invalid or deleted entity)."""
        self._touch()
        return self._contains(cls, entity_id)

    def ids(self, cls: type[Entity]) -> list[str]:
        self._touch()
        return self._entity_ids(cls)

    def held(self, cls: type[Entity]) -> int:
        """How many keys the collection holds (valid, invalid and deleted entities)."""
        self._touch()
        return len(self._entity_ids(cls))

    def all(self, cls: type[E], *, include_deleted: bool = False) -> list[E]:
        """Every valid entity of a kind, sorted by id. Invalid ones are skipped here and
        reported by :meth:`invalid`, so a bad edit from a peer never crashes a query."""
        self._touch()
        if not self._settled():
            return self._read_all(cls, include_deleted)
        key = (cls, include_deleted)
        found = self._every.get(key)
        if found is None:
            generation = self._generation
            found = self._read_all(cls, include_deleted)
            if generation == self._generation and self._settled():
                self._every[key] = found
        return list(found)

    def _read_all(self, cls: type[E], include_deleted: bool) -> list[E]:
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
        out.sort(key=_BY_ID)
        return out

    def by_id(self, cls: type[E], *, include_deleted: bool = False) -> dict[str, E]:
        """:meth:`all` as a dict, id -> entity (a new dict: the caller may change it)."""
        return {e.id: e for e in self.all(cls, include_deleted=include_deleted)}

    def _decode_collection(
        self, cls: type[E], missing: list[str], out: list[E], include_deleted: bool
    ) -> list[str]:
        """Many entities to read: decode the whole collection straight into Structs in
        one Rust call (appending to ``out``). If anything in it is invalid, nothing is
        decoded here: the ids left for the per-entity path are returned."""
        try:
            with collector.paused():
                typed = collection_decoder(cls).decode(self._collection_json(cls))
        except msgspec.MsgspecError:
            return missing
        rest = []
        cache, collection, arrays = self._cache, cls.collection, cls.crdt_arrays
        odd = unstripped(cls, typed.values())
        for entity_id in missing:  # _remember, inlined: thousands of entities
            entity = typed.get(entity_id)
            # The key is the identity; a name to strip is read through validate().
            if entity is None or entity.id != entity_id or entity_id in odd:
                rest.append(entity_id)
                continue
            if arrays:
                entity = deduped(cls, entity)
            cache[(collection, entity_id)] = entity
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
            valid = self._valid_ids(cls)
            ids = self._entity_ids(cls)
            if len(valid) == len(ids):
                continue
            # Sorted: Yrs's key order varies from run to run, and a report must not.
            for entity_id in sorted(set(ids).difference(valid)):
                out += self.problems(cls, entity_id)
        return out

    def _valid_ids(self, cls: type[Entity]) -> Collection[str]:
        """The ids of the valid entities of a kind (decoding and caching them in bulk)."""
        return {e.id for e in self.all(cls, include_deleted=True)}

    def live_ids(self, cls: type[Entity]) -> Collection[str]:
        """The ids of the live (valid, not deleted) entities of a kind."""
        return self.by_id(cls).keys()

    def all_valid(self) -> dict[str, list[str]]:
        """The collections this document has read whole and found valid (every stored
        entity is cached), each with its deleted ids: what a read copy may record so
        that reading it need not validate them again (see core/read_copy.py)."""
        self._touch()
        cached: dict[str, list[Entity]] = {name: [] for name in model.COLLECTIONS}
        for (collection, _), entity in self._cache.items():
            if collection in cached:
                cached[collection].append(entity)
        out = {}
        for name, cls in model.COLLECTIONS.items():
            ids = self._entity_ids(cls)
            if len(cached[name]) == len(ids) and {e.id for e in cached[name]} == set(ids):
                out[name] = sorted(e.id for e in cached[name] if e.deleted)
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


def collection_only(cls: type[Entity]) -> None:
    """Refuse the production where a collection is meant (it has its own reads)."""
    if cls is Production:
        raise ValidationFailed("production", None, "use update_production")
