"""Built-in plugin: integrity. Entities that break a model rule are findings.

A well-formed update from a peer always merges (refusing it would split the replicas
for good), so it may leave an entity invalid under this version's model: a negative
rate, a stage this version does not know, a field of the wrong type. Such an entity is
skipped by queries; this check makes sure ``castroom check`` still says so, as an
error naming the entity, the field, the rule and, when the view knows the update log,
the device that last wrote it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from castroom.core import model
from castroom.core.findings import EntityRef, Finding
from castroom.core.hookspecs import hookimpl

if TYPE_CHECKING:
    from castroom.core.view import ProductionView


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


@hookimpl(trylast=True)
def castroom_check(view: ProductionView) -> list[Finding]:
    return findings(view)
