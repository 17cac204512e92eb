"""Built-in plugin: continuity checks (``castroom check``, a core command, runs them).

Each check is a small function ``(view) -> list[Finding]``; :func:`findings` runs them
all. They read only the view's cached indexes, so the whole set stays fast on a
production of thousands of talents and scenes.

Codes (stable, for scripts):

- ``uncast-character``: a scene's character has no booked actor for that scene's era
  (error when the scene is on a shoot day, else a warning).
- ``unknown-character``: a scene lists a character id that is no role.
- ``playing-age``: the booked actor's playing age does not fit the character's age in
  a scene (the scene's look age, else the role's era age range, else the role's).
- ``look-change``: hair, wardrobe, makeup or age changes between consecutive story days
  (or within one story day) with no note on the later look.
- ``actor-in-two-roles``: one actor is booked for two characters of one scene.
- ``booked-unavailable``: a booked actor is unavailable, or held or booked by another
  production, on a shoot day their scenes are on.
- ``double-booking``: two talents booked for one role and era (the trace of two people
  booking offline on different machines).
- ``era-handover``: an era of a role played by several actors has nobody booked, so a
  hand-over breaks: from the actor of the era before it, or to the actor of the era
  after it (each unbooked era is reported once).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from itertools import pairwise
from typing import TYPE_CHECKING, Any

from castroom.core.api import (
    EntityRef,
    Finding,
    Look,
    Role,
    Scene,
    Severity,
    Talent,
    age_range,
    age_span,
    conflicts,
    describe_block,
    fits_age,
    hookimpl,
)

if TYPE_CHECKING:
    from castroom.core.api import ProductionView

PLUGIN = "continuity"
LOOK_FIELDS = ("hair", "wardrobe", "makeup", "age")


# -- helpers --------------------------------------------------------------------------------------


def ref(view: ProductionView, entity: Any) -> EntityRef:
    """An EntityRef for any entity, labelled the way people name it."""
    if isinstance(entity, Scene):  # the common case, thousands of times: skip the lookup
        return EntityRef(kind="scene", id=entity.id, label=entity.number)
    return EntityRef(kind=entity.entity_kind, id=entity.id, label=view.label(entity))


# -- the checks -------------------------------------------------------------------------------


def check_uncast(view: ProductionView) -> list[Finding]:
    out: list[Finding] = []
    missing: dict[tuple[str, str | None], list[Scene]] = defaultdict(list)
    unknown: dict[str, list[Scene]] = defaultdict(list)
    roles, cast = view.roles, view.scene_cast
    for scene in view.scenes_in_order:  # so each list below is in scene order already
        if scene.omitted:  # cut from a locked script: no one needs casting for it
            continue
        for role_id, talent in cast[scene.id]:
            role = roles[role_id]
            if talent is None and role.status != "cut":
                # The scene's era names the part only when the role is split into eras.
                missing[(role_id, scene.era if role.eras else None)].append(scene)
        if len(cast[scene.id]) < len(scene.characters):
            for role_id in scene.characters:
                if role_id not in roles:
                    unknown[role_id].append(scene)
    on_days = {s.id for day in view.scenes_by_shoot_day.values() for s in day}
    for (role_id, era), scenes in missing.items():
        role = view.roles[role_id]
        scheduled = [s for s in scenes if s.id in on_days]
        severity: Severity = "error" if scheduled else "warning"
        where = f" ({era})" if era else ""
        out.append(
            Finding(
                code="uncast-character",
                severity=severity,
                message=f"{role.name}{where} has no booked actor but is in "
                f"{_count(scenes, 'scene')}: {_numbers(scenes)}"
                + (f"; {len(scheduled)} already scheduled" if scheduled else ""),
                entities=(ref(view, role), *(ref(view, s) for s in scenes)),
                fix=f"book a candidate for {role.name}{where} "
                "(castroom set candidate ID stage=booked)",
            )
        )
    for role_id, scenes in unknown.items():
        stored = view.raw(Role, role_id)
        if stored is not None:
            # The role exists but is stored invalid (a peer's edit): it is skipped by
            # typed queries, so its casting cannot be judged until it is fixed.
            message = (
                f"character {stored.get('name') or role_id!r} in {_count(scenes, 'scene')} is"
                f" a role stored invalid, not checked: {_numbers(scenes)}"
            )
            fix = (
                "fix the role (see `castroom invalid`;"
                f" castroom show role {view.short_id(Role, role_id)})"
            )
        else:
            message = (
                f"character {role_id!r} in {_count(scenes, 'scene')} is no role: {_numbers(scenes)}"
            )
            fix = "add the role, or remove the character from the scenes"
        out.append(
            Finding(
                code="unknown-character",
                severity="warning",
                message=message,
                entities=tuple(ref(view, s) for s in scenes),
                fix=fix,
            )
        )
    return out


def check_playing_age(view: ProductionView) -> list[Finding]:
    Group = tuple[str, str, int | None, int | None]  # role, talent, the character's ages
    groups: dict[Group, list[Scene]] = defaultdict(list)
    # Most scenes repeat a (role, era, look age): judge each combination once.
    verdicts: dict[tuple[str, str | None, int | None], Group | None] = {}
    cast = view.scene_cast
    for scene in view.scenes_in_order:  # so each group is in scene order already
        for role_id, talent in cast[scene.id]:
            if talent is None:
                continue
            look = scene.looks.get(role_id)
            key = (role_id, scene.era, look.age if look is not None else None)
            if key not in verdicts:
                low, high = age_range(view.roles[role_id], scene)
                misfit = fits_age(talent, low, high) is False
                verdicts[key] = (role_id, talent.id, low, high) if misfit else None
            group = verdicts[key]
            if group is not None:
                groups[group].append(scene)
    out = []
    for (role_id, talent_id, low, high), scenes in groups.items():
        role, talent = view.roles[role_id], view.get(Talent, talent_id)
        out.append(
            Finding(
                code="playing-age",
                severity="warning",
                message=f"{talent.name} (plays "
                f"{age_span(talent.playing_age_min, talent.playing_age_max)})"
                f" does not fit {role.name} at age {age_span(low, high)} in "
                f"{_count(scenes, 'scene')}: {_numbers(scenes)}",
                entities=(ref(view, talent), ref(view, role), *(ref(view, s) for s in scenes)),
                fix="recast the role or era, adjust the look's age, or split the role into eras",
            )
        )
    return out


def check_looks(view: ProductionView) -> list[Finding]:
    # (role, era) -> the scenes that give that character a look, in story order.
    timelines: dict[tuple[str, str | None], list[tuple[int, Scene, Look]]] = defaultdict(list)
    for scene in view.scenes.values():
        if scene.story_day is None:
            continue
        for role_id, look in scene.looks.items():
            timelines[(role_id, scene.era)].append((scene.story_day, scene, look))
    order = view.scene_order
    out = []
    for (role_id, _era), items in timelines.items():
        items.sort(key=lambda item: (item[0], order[item[1].id]))
        for (day_a, scene_a, look_a), (day_b, scene_b, look_b) in pairwise(items):
            if day_b - day_a > 1 or look_b.note.strip():
                continue
            changed = [
                f"{name} {getattr(look_a, name)!r} -> {getattr(look_b, name)!r}"
                for name in LOOK_FIELDS
                if getattr(look_a, name) not in ("", None)
                and getattr(look_b, name) not in ("", None)
                and getattr(look_a, name) != getattr(look_b, name)
            ]
            if not changed:
                continue
            role = view.roles.get(role_id)
            label = role.name if role else str((view.raw(Role, role_id) or {}).get("name", role_id))
            when = (
                f"within story day {day_a}"
                if day_a == day_b
                else f"from story day {day_a} to {day_b}"
            )
            entities = ((ref(view, role),) if role else ()) + (
                ref(view, scene_a),
                ref(view, scene_b),
            )
            out.append(
                Finding(
                    code="look-change",
                    severity="warning",
                    message=f"{label}'s look changes {when} (scene {scene_a.number} -> "
                    f"{scene_b.number}) with no note: {'; '.join(changed)}",
                    entities=entities,
                    fix=f"match the look in scene {scene_b.number}, or add a note to its look "
                    "saying why it changes",
                )
            )
    return out


def check_two_roles(view: ProductionView) -> list[Finding]:
    out = []
    cast = view.scene_cast
    for scene in view.scenes.values():
        here = cast[scene.id]
        if len(here) < 2 or len({t.id for _, t in here if t}) == sum(1 for _, t in here if t):
            continue  # the common case: nobody twice
        by_talent: dict[str, list[Role]] = defaultdict(list)
        for role_id, talent in here:
            if talent is not None:
                by_talent[talent.id].append(view.roles[role_id])
        for talent_id, roles in by_talent.items():
            if len(roles) < 2:
                continue
            talent = view.get(Talent, talent_id)
            names = " and ".join(r.name for r in roles)
            out.append(
                Finding(
                    code="actor-in-two-roles",
                    severity="error",
                    message=f"{talent.name} is booked as {names} in scene {scene.number}",
                    entities=(ref(view, talent), ref(view, scene), *(ref(view, r) for r in roles)),
                    fix="book another actor for one of the roles (or plan a double and say so in "
                    "the scene's notes)",
                )
            )
    return out


def check_unavailable(view: ProductionView) -> list[Finding]:
    out = []
    cast, blockable = view.scene_cast, view.availability_by_talent
    for day_id, scenes in view.scenes_by_shoot_day.items():
        day = view.shoot_days[day_id]
        # talent id -> the scenes of that day they are booked in
        working: dict[str, list[Scene]] = defaultdict(list)
        for scene in scenes:
            for _role_id, talent in cast[scene.id]:
                if talent is not None and talent.id in blockable:
                    mine = working[talent.id]
                    if not mine or mine[-1] is not scene:
                        mine.append(scene)
        for talent_id, their_scenes in working.items():
            blocks = conflicts(view, talent_id, day)
            if not blocks:
                continue
            talent = view.get(Talent, talent_id)
            reasons = "; ".join(describe_block(b) for b in blocks)
            out.append(
                Finding(
                    code="booked-unavailable",
                    severity="error",
                    message=f"{talent.name} is {reasons} on {day.date.isoformat()} but works "
                    f"{_count(their_scenes, 'scene')} that day: {_numbers(their_scenes)}",
                    entities=(
                        ref(view, talent),
                        ref(view, day),
                        *(ref(view, b) for b in blocks),
                        *(ref(view, s) for s in their_scenes),
                    ),
                    fix="move the scenes to another shoot day, clear the hold, or recast "
                    f"(castroom replace {view.short_id(Talent, talent_id)})",
                )
            )
    return out


def check_double_booking(view: ProductionView) -> list[Finding]:
    out = []
    for (role_id, era), cands in view.booked.items():
        talent_ids = list(
            dict.fromkeys(c.talent_id for c in cands if view.find(Talent, c.talent_id) is not None)
        )
        if len(talent_ids) < 2:
            continue
        role = view.roles.get(role_id)
        label = (role.name if role else role_id) + (f" ({era})" if era else "")
        names = ", ".join(view.get(Talent, t).name for t in talent_ids)
        out.append(
            Finding(
                code="double-booking",
                severity="error",
                message=f"{len(talent_ids)} talents are booked for {label}: {names}",
                entities=((ref(view, role),) if role else ())
                + tuple(ref(view, view.get(Talent, t)) for t in talent_ids)
                + tuple(ref(view, c) for c in cands),
                fix="keep one booking and set the other candidates' stage to released",
            )
        )
    return out


def check_era_handover(view: ProductionView) -> list[Finding]:
    """Each era of a multi-era role with nobody booked, once, naming the hand-overs it
    breaks: from the booked era before it, and to the booked era after it."""
    out = []
    for role in view.roles.values():
        if len(role.eras) < 2 or role.status == "cut":
            continue
        holders = [view.booked_talent(role.id, era.name) for era in role.eras]
        for i, era in enumerate(role.eras):
            if holders[i] is not None:
                continue
            before = role.eras[i - 1] if i > 0 else None
            after = role.eras[i + 1] if i + 1 < len(role.eras) else None
            prior = holders[i - 1] if before is not None else None
            nxt = holders[i + 1] if after is not None else None
            starts = f", starting {era.starts}" if era.starts else ""
            if before is not None and (prior is not None or nxt is None):
                handing = f" from {prior.name}" if prior else ""
                message = (
                    f"{role.name} hands over{handing} ({before.name}) to {era.name}{starts}, "
                    "with no actor booked"
                )
                if after is not None and nxt is not None:
                    message += f", before {nxt.name} takes over ({after.name})"
            elif after is not None:
                taker = f"{nxt.name} ({after.name})" if nxt else after.name
                message = (
                    f"{role.name} ({era.name}{starts}) has no actor booked to hand over to {taker}"
                )
            else:  # pragma: no cover - a role with two or more eras has a neighbour
                continue
            out.append(
                Finding(
                    code="era-handover",
                    severity="warning",
                    message=message,
                    entities=(
                        ref(view, role),
                        *(ref(view, t) for t in (prior, nxt) if t is not None),
                    ),
                    fix=f"book a candidate for {role.name} with era={era.name}",
                )
            )
    return out


CHECKS: tuple[Callable[[ProductionView], list[Finding]], ...] = (
    check_uncast,
    check_playing_age,
    check_looks,
    check_two_roles,
    check_unavailable,
    check_double_booking,
    check_era_handover,
)


def findings(view: ProductionView) -> list[Finding]:
    """Every continuity finding for a production."""
    out: list[Finding] = []
    for check in CHECKS:
        out.extend(check(view))
    return out


def _count(items: list[Any], noun: str) -> str:
    return f"{len(items)} {noun}{'' if len(items) == 1 else 's'}"


def _numbers(scenes: Iterable[Scene], limit: int = 12) -> str:
    numbers = [s.number for s in scenes]
    more = f" and {len(numbers) - limit} more" if len(numbers) > limit else ""
    return ", ".join(numbers[:limit]) + more


# -- hooks ------------------------------------------------------------------------------------


@hookimpl(trylast=True)
def castroom_check(view: ProductionView) -> list[Finding]:
    return findings(view)
