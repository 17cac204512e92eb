"""A scene's shoot day, said twice and kept in step: ``Scene.shoot_day_id`` and the
shoot days' ordered ``ShootDay.scene_ids``.

Both are in the document (the public layout any Yjs peer writes), so a local write that
changes one side changes the other in the same transaction: listing a scene on a day
sets its ``shoot_day_id`` and takes it off any other day's list; a day that no longer
lists a scene leaves it on no day; setting a scene's ``shoot_day_id`` appends it to that
day's list and takes it off the old one. A scene longer than a day (``scene_days``) may
stand on several days, as ``castroom schedule`` lays it out: listing it on one more day
keeps it on the others, and its ``shoot_day_id`` is the first of them. When one write
says both and they differ, the day's list wins (it is the ordered, explicit one). What a
peer merges is not changed here: a disagreement it leaves is the integrity check's
``scene-day-mismatch`` finding.

:func:`complements` is the rule as data (what else to write); :func:`keep_in_step`
applies it. No click or rich here.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from . import model
from .errors import ValidationFailed
from .scheduling import scene_days

if TYPE_CHECKING:
    from .document import CastDocument

#: The kinds whose writes this module follows (others are skipped without a read).
LINKED: frozenset[type[model.Entity]] = frozenset({model.Scene, model.ShootDay})
#: A write already made: (kind, id, the entity's stored fields before it, None if new).
Written = tuple[type[model.Entity], str, dict[str, Any] | None]
#: A write to make: (kind, id, fields to change).
Change = tuple[type[model.Entity], str, dict[str, Any]]


def keep_in_step(doc: CastDocument, written: Iterable[Written]) -> list[Change]:
    """Write the other side of every scene-to-day link that ``written`` changed (call it
    inside the transaction that made those writes); returns what it wrote."""
    changes = complements(doc, written)
    for cls, entity_id, fields in changes:
        doc.update(cls, entity_id, fields)
    return changes


def complements(doc: CastDocument, written: Iterable[Written]) -> list[Change]:
    """What else to write so scenes and shoot days agree after ``written`` (as ``doc``
    now holds them)."""
    written = [w for w in written if w[0] in LINKED]
    if not written:
        return []
    stored = doc.all(model.ShootDay)
    days = {day.id: list(day.scene_ids) for day in stored}
    when = {day.id: (day.date, day.id) for day in stored}
    lists = {day_id: list(ids) for day_id, ids in days.items()}
    moved: list[str] = []
    relisted: list[tuple[str, list[str]]] = []
    for cls, entity_id, before in written:
        old, now = before or {}, doc.raw(cls, entity_id) or {}
        was = list(old.get("scene_ids") or [])
        if cls is model.Scene and now.get("shoot_day_id") != old.get("shoot_day_id"):
            moved.append(entity_id)
        elif cls is model.ShootDay and entity_id in lists and now.get("scene_ids") != was:
            relisted.append((entity_id, was))
    for scene_id in moved:
        _stand_on(lists, scene_id, (doc.raw(model.Scene, scene_id) or {}).get("shoot_day_id"))
    pointing: dict[str, str | None] = {}
    for day_id, was in relisted:
        listed = set(lists[day_id])
        # A scene longer than a day stays on its other days too (as `castroom schedule`
        # lays it out); any other scene stands on one day.
        several = {s for s in listed if _longer_than_a_day(doc, s)}
        for other, ids in lists.items():
            if other != day_id:
                lists[other] = [s for s in ids if s not in listed or s in several]
        for scene_id in {*listed, *(set(was) - listed)}:
            holding = sorted(
                (d for d, ids in lists.items() if scene_id in ids), key=when.__getitem__
            )
            if scene_id in listed or _day_of(doc, scene_id) == day_id:
                pointing[scene_id] = holding[0] if holding else None  # its first day
    out: list[Change] = [
        (model.ShootDay, day_id, {"scene_ids": ids})
        for day_id, ids in lists.items()
        if ids != days[day_id]
    ]
    out += [
        (model.Scene, scene_id, {"shoot_day_id": day_id})
        for scene_id, day_id in pointing.items()
        if _writable(doc, scene_id) and _day_of(doc, scene_id) != day_id
    ]
    return out


def _stand_on(lists: dict[str, list[str]], scene_id: str, day_id: str | None) -> None:
    """The scene on ``day_id``'s list (appended) and on no other day's."""
    for other, ids in lists.items():
        if other != day_id and scene_id in ids:
            lists[other] = [s for s in ids if s != scene_id]
        elif other == day_id and scene_id not in ids:
            lists[other] = [*ids, scene_id]


def _longer_than_a_day(doc: CastDocument, scene_id: str) -> bool:
    try:
        scene = doc.find(model.Scene, scene_id)
        return scene is not None and scene_days(scene, doc.production) > 1 + 1e-9
    except ValidationFailed:
        return False


def _day_of(doc: CastDocument, scene_id: str) -> str | None:
    return (doc.raw(model.Scene, scene_id) or {}).get("shoot_day_id")


def _writable(doc: CastDocument, scene_id: str) -> bool:
    """A live scene stored valid: one a peer left invalid keeps its own finding (and its
    repair), and a write here must not fail because of it."""
    try:
        return doc.find(model.Scene, scene_id) is not None
    except ValidationFailed:
        return False
