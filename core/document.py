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

import warnings
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import msgspec

from . import model
from .crdt import CrdtDocument
from .errors import NotFound, ValidationFailed
from .model import Entity, Production
from .reads import (
    CREATED,
    SCHEMA_VERSION,
    UNLISTED,
    Changes,
    InvalidEntity,
    NewerSchemaWarning,
    field_problems,
    plain_defaults,
    validate_change,
)

E = TypeVar("E", bound=Entity)

__all__ = [
    "CREATED",
    "SCHEMA_VERSION",
    "UNLISTED",
    "CastDocument",
    "Changes",
    "InvalidEntity",
    "NewerSchemaWarning",
    "field_problems",
    "plain_defaults",
    "validate_change",
]

Migration = Callable[["CastDocument"], None]

#: Additive migrations, by the version they migrate *to*. Each runs once, in order, when a
#: document older than SCHEMA_VERSION is opened. They must be idempotent: two peers may
#: migrate the same document concurrently and their edits merge.
MIGRATIONS: dict[int, Migration] = {}


class CastDocument(CrdtDocument):
    """A production's CRDT document with a typed, validating API: the reads are
    :class:`castroom.core.reads.DocumentReads`'s, the binding with its transactions,
    merges and hooks :class:`castroom.core.crdt.CrdtDocument`'s, the writes are here.

    Entities returned by reads are shared with the cache: treat them as read-only (use
    ``msgspec.structs.replace`` and :meth:`put`, or :meth:`update`).
    """

    # -- schema --------------------------------------------------------------------------

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

    def update_production(self, fields: dict[str, Any]) -> Production:
        # The id, not self.production: that validates, and an invalid production must
        # stay repairable (update() validates only the result).
        production_id = self.production_id
        if production_id is None:
            raise NotFound("this document has no production yet")
        return self.update(Production, production_id, fields)  # type: ignore[return-value]

    # -- entities --------------------------------------------------------------------------

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
