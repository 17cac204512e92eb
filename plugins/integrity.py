"""Built-in plugin: integrity. Entities that break a model rule are findings.

A well-formed update from a peer always merges (refusing it would split the replicas
for good), so it may leave an entity invalid under this version's model: a negative
rate, a stage this version does not know, a field of the wrong type. Such an entity is
skipped by queries; this check makes sure ``castroom check`` still says so, as an
error naming the entity, the field, the rule and, when the view knows the update log,
the device that last wrote it. So are references that point nowhere, and a scene whose
``shoot_day_id`` and the shoot days' ``scene_ids`` disagree (``scene-day-mismatch``),
and an entity a peer removed outright (``hard-deleted``: merged, kept in the attic, back
with ``castroom restore --from-history``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING

from castroom.core.api import EntityRef, Finding, Severity, hookimpl, model, scene_days
from castroom.core.api import label as label_of

if TYPE_CHECKING:
    from castroom.core.api import ProductionView


def findings(view: ProductionView) -> list[Finding]:
    return (
        hard_deleted(view)
        + invalid_entities(view)
        + broken_references(view)
        + scenes_off_their_days(view)
    )


def hard_deleted(view: ProductionView) -> list[Finding]:
    """Entities a peer removed outright: merged (replicas must not split) but an error,
    since the schema only ever marks an entity deleted."""
    out = []
    for entry in view.hard_deleted():
        # The production map is no collection: a peer that cleared it made this crash.
        cls = model.COLLECTIONS.get(entry.collection, model.Production)
        kind = cls.entity_kind
        label = str(entry.data.get("name") or entry.data.get("title") or entry.entity)
        what = "its fields were cleared" if kind == "production" else "its key was removed"
        when = time.strftime("%Y-%m-%d %H:%M", time.gmtime(entry.ts))
        out.append(
            Finding(
                code="hard-deleted",
                severity="error",
                message=(
                    f"{kind} {label} was hard-deleted by a peer ({what}; from device"
                    f" {entry.device}, {when} UTC)"
                ),
                entities=(EntityRef(kind=kind, id=entry.entity, label=label),),
                fix="castroom restore --from-history",
            )
        )
    return out


def invalid_entities(view: ProductionView) -> list[Finding]:
    out = []
    for item in view.invalid():
        cls = model.kind_class(item.kind)
        data = view.raw(cls, item.id) or {}
        label = label_of(view, cls, data, default="")
        device = view.origin(item.kind, item.id)
        field, short = item.field or "-", view.short_id(cls, item.id)
        where = f" (last written by device {device})" if device else ""
        if item.kind == "production":
            fix = f"castroom production set {item.field}=..." if item.field else ""
        elif item.field:
            fix = f"castroom set {item.kind} {short} {item.field}=... (a valid value)"
        else:
            fix = f"castroom delete {item.kind} {short}"
        out.append(
            Finding(
                code="invalid-entity",
                severity="error",
                message=f"{item.kind} {label or short}: {field}: {item.rule}{where}",
                entities=(EntityRef(kind=item.kind, id=item.id, label=label),),
                fix=fix,
            )
        )
    return out


def broken_references(view: ProductionView) -> list[Finding]:
    """References that point nowhere (an id typed wrong, or one that only existed on
    another machine), at a deleted entity or at one stored invalid, and eras a role does
    not have. A CRDT cannot
    refuse them when they arrive from a peer, so they are findings until someone fixes them."""
    referring = {owner for owner, _ in model.REFERENCES} | {"deal", "candidate"}  # + eras
    # Almost every reference names a live entity of the kind meant: a set lookup settles
    # it, and only the rest is looked at closely (bench_checks: 5,000 talents). The ids
    # are enough for that: the kinds that only are referred to (talents) stay undecoded
    # when the read copy knows them valid.
    live = {kind: view.live_ids(cls) for kind, cls in model.KINDS.items()}
    out = []
    to_invalid: dict[tuple[str, str, str, str], list[EntityRef]] = {}
    roles = view.by_id(model.Role, include_deleted=True)
    for kind in sorted(referring):
        entities = view.all(model.kind_class(kind))
        suspects = model.holding_unknown(kind, entities, live)
        if kind in _ERA_OF_A_ROLE:
            # Most name no era: asked of those only (30,000 candidates at 50,000 talents).
            named = [e for e in entities if getattr(e, "era", None)]
            suspects.update(e.id for e in named if _unknown_era(e, roles))
        for entity in entities if suspects else ():  # none, most of the time
            if entity.id in suspects:
                refs = [r for r in model.references(entity) if r[2] not in live[r[1]]]
                out += _entity_references(view, kind, entity, refs, roles, to_invalid)
    return out + _references_to_invalid(view, to_invalid)


#: The kinds naming an era of a role (candidates, deals).
_ERA_OF_A_ROLE = {
    kind for kind, cls in model.KINDS.items() if {"era", "role_id"} <= set(cls.__struct_fields__)
}


def _unknown_era(entity: model.Entity, roles: Mapping[str, model.Entity]) -> bool:
    """Whether the entity names an era its role (a valid one, with eras) does not have."""
    era = getattr(entity, "era", None)
    if not era:
        return False
    role = roles.get(getattr(entity, "role_id", None) or "")
    return isinstance(role, model.Role) and bool(role.eras) and role.era(era) is None


#: How many of the entities referring to one invalid entity its finding names.
SHOWN = 3


def _references_to_invalid(
    view: ProductionView, to_invalid: dict[tuple[str, str, str, str], list[EntityRef]]
) -> list[Finding]:
    """One finding per (invalid entity, referring kind, field): one invalid role listed
    by 80 scenes is one thing to fix (the role), not 80 warnings."""
    out = []
    for (target_kind, ref, kind, field), referrers in to_invalid.items():
        cls = model.kind_class(target_kind)
        label = label_of(view, cls, view.raw(cls, ref) or {}, default="")
        them = EntityRef(kind=target_kind, id=ref, label=label)
        short = view.short_id(cls, ref)
        invalid = f"{target_kind} {label or short}, which is invalid (see `castroom invalid`)"
        if len(referrers) == 1:
            message = f"{kind} {_named(view, referrers[0])}: {field} refers to {invalid}"
        else:
            named = ", ".join(f"{kind} {_named(view, r)}" for r in referrers[:SHOWN])
            more = f" and {len(referrers) - SHOWN} more" if len(referrers) > SHOWN else ""
            plural = model.kind_class(kind).collection
            message = f"{len(referrers)} {plural} ({named}{more}): {field} refers to {invalid}"
        fix = f"castroom show {target_kind} {short}, and fix what it warns about"
        shown = tuple(referrers[:SHOWN])
        out.append(_finding("reference-to-invalid", "warning", message, fix, *shown, them))
    return out


def _named(view: ProductionView, ref: EntityRef) -> str:
    return ref.label or view.short_id(ref.kind, ref.id)


def _entity_references(
    view: ProductionView,
    kind: str,
    entity: model.Entity,
    refs: list[tuple[str, str, str]],
    roles: Mapping[str, model.Entity],
    to_invalid: dict[tuple[str, str, str, str], list[EntityRef]],
) -> list[Finding]:
    """Findings for ``refs`` (the entity's references that name no live entity of the
    first kind meant) and for its era."""
    me = EntityRef(kind=kind, id=entity.id, label=label_of(view, entity, default=""))
    short = view.short_id(kind, entity.id)
    name = f"{kind} {me.label or short}"
    out = []
    for field, first_kind, ref in refs:
        kinds = model.reference_kinds(kind, field, first_kind)
        # The kind holding the id (valid or not) is the one meant (a role's backups are
        # talents or candidates); an id found nowhere is reported against every kind.
        target_kind = next((k for k in kinds if _holds(view, k, ref)), first_kind)
        target = view.find(model.kind_class(target_kind), ref, include_deleted=True)
        if target is None and view.raw(model.kind_class(target_kind), ref) is not None:
            # It exists, stored invalid (skipped by typed reads): its own finding says why.
            # Grouped by referenced entity (see _references_to_invalid).
            to_invalid.setdefault((target_kind, ref, kind, field), []).append(me)
        elif target is None:
            what = " or ".join(kinds)
            message = f"{name}: {field} refers to {what} {ref}, which does not exist"
            fix = f"castroom set {kind} {short} {field}=... (an existing {what})"
            out.append(_finding("dangling-reference", "error", message, fix, me))
        elif target.deleted:
            them = EntityRef(kind=target_kind, id=ref, label=label_of(view, target, default=""))
            theirs = view.short_id(target_kind, ref)
            message = f"{name}: {field} refers to deleted {target_kind} {them.label or theirs}"
            fix = f"castroom restore {target_kind} {theirs}, or change {kind} {short}"
            out.append(_finding("reference-to-deleted", "warning", message, fix, me, them))
    role = roles.get(getattr(entity, "role_id", None) or "")
    if _unknown_era(entity, roles) and isinstance(role, model.Role):
        era = getattr(entity, "era", None)
        known = ", ".join(e.name for e in role.eras)
        message = f"{name}: era {era!r} is not one of {role.name}'s eras ({known})"
        fix = f"castroom set {kind} {short} era=... (one of: {known})"
        them = EntityRef(kind="role", id=role.id, label=role.name)
        out.append(_finding("unknown-era", "error", message, fix, me, them))
    return out


def scenes_off_their_days(view: ProductionView) -> list[Finding]:
    """A scene's ``shoot_day_id`` and the shoot days' ``scene_ids`` say the same day, or
    this says how they disagree. castroom writes both in one transaction; two peers moving
    one scene to different days offline (or a Yjs client writing one side) leave them
    apart, and the merge cannot choose for them."""
    days = view.shoot_days
    listing: dict[str, list[model.ShootDay]] = {}
    for day in days.values():
        for scene_id in dict.fromkeys(day.scene_ids):
            listing.setdefault(scene_id, []).append(day)
    out = []
    for scene in view.scenes.values():
        listed = listing.get(scene.id, [])
        said = days.get(scene.shoot_day_id or "")
        if scene.shoot_day_id and said is None:
            continue  # a day deleted or missing: broken_references says so
        if [d.id for d in listed] == ([said.id] if said else []):
            continue
        if said is not None and listed and _takes_days(view, scene, said, listed):
            continue
        out.append(_off_its_day(scene, said, listed))
    return out


def _takes_days(
    view: ProductionView, scene: model.Scene, said: model.ShootDay, listed: list[model.ShootDay]
) -> bool:
    """A scene longer than a day is listed on each of its days, its shoot_day_id the first
    (as ``castroom schedule`` writes it)."""
    ordered = sorted(listed, key=lambda d: (d.date, d.id))
    days = math.ceil(scene_days(scene, view.production) - 1e-9)
    return ordered[0].id == said.id and 1 < len(ordered) <= days


def _day_label(day: model.ShootDay) -> str:
    number = f"day {day.day_number}, " if day.day_number else ""
    return f"shoot day {number}{day.date.isoformat()}"


def _off_its_day(
    scene: model.Scene, said: model.ShootDay | None, listed: list[model.ShootDay]
) -> Finding:
    where = f"says {_day_label(said)}" if said else "is empty"
    if not listed:
        lists = "no shoot day lists the scene"
    elif len(listed) == 1:
        lists = f"{_day_label(listed[0])} lists it"
    else:
        lists = f"{len(listed)} shoot days list it: " + ", ".join(map(_day_label, listed))
    message = f"scene {scene.number}: its shoot_day_id {where}, but {lists}"
    choice = said or listed[0]
    fix = (
        f"castroom set scene {scene.number} shoot_day_id={choice.date.isoformat()}"
        " (or the day it belongs to; the scene then stands on that day only)"
    )
    me = EntityRef(kind="scene", id=scene.id, label=scene.number)
    involved = {d.id: d for d in [*([said] if said else []), *listed]}
    them = [
        EntityRef(kind="shoot_day", id=i, label=d.date.isoformat()) for i, d in involved.items()
    ]
    return _finding("scene-day-mismatch", "warning", message, fix, me, *them)


def _holds(view: ProductionView, kind: str, ref: str) -> bool:
    cls = model.kind_class(kind)
    return view.find(cls, ref, include_deleted=True) is not None or view.raw(cls, ref) is not None


def _finding(
    code: str, severity: Severity, message: str, fix: str, *entities: EntityRef
) -> Finding:
    return Finding(code=code, severity=severity, message=message, entities=entities, fix=fix)


@hookimpl(trylast=True)
def castroom_check(view: ProductionView) -> list[Finding]:
    return findings(view)
