"""Applying what an importer read: check everything, then write all of it or nothing.

Importers (plugins) only read and return an :class:`~castroom.core.registry.ImportResult`;
:func:`plan_import` turns it into an :class:`~castroom.core.edits.Plan` checked by the
same rules as every other write (:mod:`castroom.core.edits`), and :func:`apply_import`
applies that plan in one transaction, so the update log gets one update and other
processes and peers never see half an import. Any error (reported by the importer, or
found here) means nothing is written.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec

from . import model
from .edits import Checker, Edit, Plan, write_checked
from .errors import CastroomError
from .model import Entity
from .reads import plain_defaults
from .registry import Importer, ImportResult
from .resolve import Reader

if TYPE_CHECKING:
    from .document import CastDocument

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


def plan_import(reader: Reader, result: ImportResult, *, reason: str = "import") -> Plan:
    """What an importer read, as a plan: a new entity is created, one whose id exists is
    changed field by field (so peers' concurrent edits of other fields survive), one
    identical to what is stored is left out. Raises :class:`ImportFailed` listing every
    problem (the importer's own, then each entity's) so nothing is written."""
    return _checked_import(reader, result, reason)[0]


def _checked_import(
    reader: Reader, result: ImportResult, reason: str = "import"
) -> tuple[Plan, list[Entity | None]]:
    """:func:`plan_import`, with what each check returned (for writing at once)."""
    errors = list(result.errors)
    wanted: dict[tuple[str, str], tuple[int, Edit | None]] = {}
    for index, entity in enumerate(result.entities, 1):
        try:
            edit = _import_edit(reader, entity, reason)
        except CastroomError as exc:
            errors.append(f"entity {index}: {exc}")
            continue
        key = (type(entity).entity_kind, entity.id)
        # The same entity twice (one talent on two rows): the later one wins.
        wanted[key] = (wanted.get(key, (index, edit))[0], edit)
    checker = Checker(reader)
    edits: list[Edit] = []
    checked: list[Entity | None] = []
    for index, edit in wanted.values():
        if edit is None:
            continue
        try:
            found = checker.check(edit)
        except CastroomError as exc:
            errors.append(f"entity {index}: {exc}")
            continue
        edits.append(edit)
        checked.append(found)
    if errors:
        raise ImportFailed(errors)
    return Plan(edits=edits, reason=reason), checked


def _import_edit(reader: Reader, entity: Any, reason: str) -> Edit | None:
    if not isinstance(entity, Entity) or type(entity) not in model.KINDS.values():
        raise CastroomError(f"{type(entity).__name__} is not an importable entity kind")
    cls: type[Entity] = type(entity)
    fields = model.to_fields(entity)
    stored = reader.raw(cls, entity.id)
    if stored is None:
        del fields["id"]
        # force: an importer matches people by source ids and natural keys itself (and
        # says when a file names one twice); the namesake refusal is for people typing.
        return Edit(
            op="create",
            kind=cls.entity_kind,
            id=entity.id,
            fields=fields,
            reason=reason,
            force=True,
        )
    old = {**plain_defaults(cls), **stored}
    changed = {k: v for k, v in fields.items() if k not in old or old[k] != v}
    if not changed:
        return None
    return Edit(
        op="change", kind=cls.entity_kind, id=entity.id, fields=changed, reason=reason, force=True
    )


class ImportPreview(msgspec.Struct, kw_only=True, frozen=True):
    """What an import would write, checked and not yet written: what the importer read,
    its plan, what each check returned (for :func:`apply_preview`) and the counts."""

    result: ImportResult
    plan: Plan
    checked: list[Entity | None]
    counts: ImportCounts


def preview(reader: Reader, result: ImportResult) -> ImportPreview:
    """:func:`plan_import`, kept with its checks and counts (or ImportFailed)."""
    plan, checked = _checked_import(reader, result)
    created = sum(1 for e in plan.edits if e.op == "create")
    unchanged = len({(e.entity_kind, e.id) for e in result.entities}) - len(plan.edits)
    counts = ImportCounts(created=created, updated=len(plan.edits) - created, unchanged=unchanged)
    return ImportPreview(result=result, plan=plan, checked=checked, counts=counts)


def apply_preview(doc: CastDocument, checked: ImportPreview) -> ImportCounts:
    """Write a preview of ``doc`` made just now, with no write in between (its checks
    hold for the document as it is), in one transaction."""
    write_checked(doc, checked.plan.edits, checked.checked)
    return checked.counts


def apply_import(doc: CastDocument, result: ImportResult) -> ImportCounts:
    """Check all of ``result`` (:func:`plan_import`), then write it in one transaction
    (or raise, writing none)."""
    return apply_preview(doc, preview(doc, result))


def preview_import(
    doc: CastDocument, importer: Importer, source: str, options: dict[str, Any]
) -> ImportPreview:
    """Run ``importer`` on ``source`` against a read-only view of ``doc``: what
    :func:`import_into` would write, written nowhere (or the error it would raise). A
    plugin's bug is one line naming the plugin."""
    from .view import ProductionView

    return preview(doc, importer.read(source, ProductionView(doc), options))


def import_into(
    doc: CastDocument, importer: Importer, source: str, options: dict[str, Any]
) -> tuple[ImportResult, ImportCounts]:
    """Run ``importer`` on ``source`` and apply what it read (or raise, writing none)."""
    checked = preview_import(doc, importer, source, options)
    return checked.result, apply_preview(doc, checked)


def format_errors(errors: list[str], limit: int = SHOWN_ERRORS) -> list[str]:
    """At most ``limit`` error lines, then a count of the rest."""
    shown = errors[:limit]
    if len(errors) > limit:
        shown.append(f"... and {len(errors) - limit} more")
    return shown
