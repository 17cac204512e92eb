"""Built-in plugin: integrity. Entities that break a model rule are findings.

A well-formed update from a peer always merges (refusing it would split the replicas
for good), so it may leave an entity invalid under this version's model: a negative
rate, a stage this version does not know, a field of the wrong type. Such an entity is
skipped by queries; this check makes sure ``castroom check`` still says so, as an
error naming the entity, the field, the rule and, when the view knows the update log,
the device that last wrote it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from castroom.core import model
from castroom.core.findings import EntityRef, Finding
from castroom.core.hookspecs import hookimpl

if TYPE_CHECKING:
    from castroom.core.view import ProductionView
    from castroom.core.workspace import StoredProduction


def findings(view: ProductionView) -> list[Finding]:
    out = []
    for item in view.invalid():
        cls = model.kind_class(item.kind)
        data = view.raw(cls, item.id) or {}
        label = str(data.get("name") or data.get("title") or data.get("number") or "")
        device = view.origin(item.kind, item.id)
        field = item.field or "-"
        where = f" (last written by device {device})" if device else ""
        if item.kind == "production":
            fix = f"castroom production set {item.field}=..." if item.field else ""
        elif item.field:
            fix = f"castroom set {item.kind} {item.id} {item.field}=... (a valid value)"
        else:
            fix = f"castroom delete {item.kind} {item.id}"
        out.append(
            Finding(
                code="invalid-entity",
                severity="error",
                message=f"{item.kind} {label or item.id}: {field}: {item.rule}{where}",
                entities=(EntityRef(kind=item.kind, id=item.id, label=label),),
                fix=fix,
            )
        )
    return out


def origin_lookup(production: StoredProduction) -> Callable[[str, str], str | None]:
    """``origin_of`` for a ProductionView of a stored production: the device of the
    latest logged update that touched the entity (through the public history API)."""

    def origin_of(kind: str, entity_id: str) -> str | None:
        collection = model.kind_class(kind).collection
        for entry in production.history(entity=entity_id):
            if any(c == collection for c, _, _ in entry.changes):
                return entry.device
        return None

    return origin_of


@hookimpl(trylast=True)
def castroom_check(view: ProductionView) -> list[Finding]:
    return findings(view)
