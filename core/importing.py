"""Applying what an importer read: validate everything, then write all of it or nothing.

Importers (plugins) only read and return an :class:`~castroom.core.registry.ImportResult`;
this module is the one place that turns such a result into document writes. Every entity
is validated first; any error (reported by the importer, or found here) means nothing is
written. The writes then happen in one transaction, so the update log gets one update and
other processes and peers never see half an import.
"""

from __future__ import annotations

import msgspec

from . import model
from .document import CastDocument
from .errors import CastroomError, ValidationFailed
from .model import Entity, Production
from .registry import ImportResult
from .shoot_days import LINKED, Written, keep_in_step

#: How many row errors an ImportFailed message lists before "... and N more".
SHOWN_ERRORS = 20


class ImportCounts(msgspec.Struct, kw_only=True, frozen=True):
    """What an import did: entities created, changed, and found already up to date."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0

    @property
    def total(self) -> int:
        return self.created + self.updated + self.unchanged


class ImportFailed(CastroomError):
    """The source had bad rows: nothing was written. ``errors`` holds one line per row."""

    def __init__(self, errors: list[str]) -> None:
        self.errors = list(errors)
        super().__init__(
            f"nothing imported: {len(self.errors)} bad "
            f"{'row' if len(self.errors) == 1 else 'rows'} (first: {self.errors[0]})"
        )


def validate_result(result: ImportResult) -> list[Entity]:
    """Every entity checked against the model; raises ImportFailed listing every problem."""
    errors = list(result.errors)
    checked: list[Entity] = []
    seen: dict[tuple[str, str], int] = {}
    for index, entity in enumerate(result.entities):
        cls = type(entity)
        if not isinstance(entity, Entity) or cls is Production or cls not in model.KINDS.values():
            errors.append(f"entity {index + 1}: {cls.__name__} is not an importable entity kind")
            continue
        try:
            fresh = model.validate(cls, model.to_fields(entity))
        except ValidationFailed as exc:
            errors.append(f"entity {index + 1}: {exc}")
            continue
        key = (cls.collection, fresh.id)
        if key in seen:
            # The same entity twice (e.g. one talent on two rows): the later one wins.
            checked[seen[key]] = fresh
            continue
        seen[key] = len(checked)
        checked.append(fresh)
    if errors:
        raise ImportFailed(errors)
    return checked


def apply_import(doc: CastDocument, result: ImportResult) -> ImportCounts:
    """Validate all of ``result``, then write it in one transaction (or raise, writing none).

    An entity whose id already exists is updated field by field (so concurrent edits of
    other fields by peers survive); one identical to what is stored is left alone.
    """
    checked = validate_result(result)
    created = updated = unchanged = 0
    written: list[Written] = []
    with doc.transaction():
        for entity in checked:
            cls = type(entity)
            before = doc.raw(cls, entity.id) if cls in LINKED else None
            try:
                old = doc.find(cls, entity.id, include_deleted=True)
            except ValidationFailed:
                updated += 1  # stored invalid (e.g. a peer's bad edit): the import fixes it
                doc.put(entity)
                written.append((cls, entity.id, before))
                continue
            if old is None:
                created += 1
            elif old == entity:  # Structs compare field by field
                unchanged += 1
                continue
            else:
                updated += 1
            doc.put(entity)
            written.append((cls, entity.id, before))
        keep_in_step(doc, written)  # a scene's shoot day, said on both sides
    return ImportCounts(created=created, updated=updated, unchanged=unchanged)


def format_errors(errors: list[str], limit: int = SHOWN_ERRORS) -> list[str]:
    """At most ``limit`` error lines, then a count of the rest."""
    shown = errors[:limit]
    if len(errors) > limit:
        shown.append(f"... and {len(errors) - limit} more")
    return shown
