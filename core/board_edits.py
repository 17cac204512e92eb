"""A proposed board as edits: ``castroom schedule --apply`` is *plan, then apply*.

:func:`plan_board` turns a :class:`SchedulePlan` into an :class:`.edits.Plan`: each plan
day reuses the stored day it names (its date, order and number changed only when they
differ) or is created; stored days the plan leaves empty are deleted (restorable), so
they hold no one. The edits name only the shoot days and their ordered ``scene_ids``:
each scene's ``shoot_day_id`` follows from the lists by the one rule that keeps the two
sides in step (:mod:`.shoot_days`, applied with the edits in the same transaction). A
scene the plan leaves off (one cut from the script) is put on no day by an edit of its
own, since no list that changes may have held it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypedDict

from . import edits, model
from .contracts import SchedulePlan
from .resolve import Reader

if TYPE_CHECKING:
    from .document import CastDocument


class BoardCounts(TypedDict):
    added: int
    updated: int
    deleted: int
    scenes: int


def plan_board(reader: Reader, plan: SchedulePlan) -> tuple[edits.Plan, BoardCounts]:
    """The edits that write ``plan``'s board, and what they change (days added, updated,
    emptied and deleted; scenes whose first shoot day changes)."""
    stored = {d.id: d for d in reader.all(model.ShootDay)}
    out: list[edits.Edit] = []
    counts = BoardCounts(added=0, updated=0, deleted=0, scenes=0)
    first_day: dict[str, str] = {}
    kept: set[str] = set()
    for number, day in enumerate(plan.days, start=1):
        old = stored.get(day.shoot_day_id or "")
        if old is None:
            fields = {
                "id": model.new_id(),
                "date": day.date.isoformat(),
                "scene_ids": day.scene_ids,
                "day_number": number,
                "location": day.location,
            }
            out.append(edits.create(reader, model.ShootDay, fields, reason="scheduled"))
            day_id = out[-1].id
            counts["added"] += 1
        else:
            day_id = old.id
            if (old.scene_ids, old.day_number, old.date) != (day.scene_ids, number, day.date):
                fields = {
                    "scene_ids": day.scene_ids,
                    "day_number": number,
                    "date": day.date.isoformat(),
                }
                out.append(edits.change(reader, model.ShootDay, day_id, fields, reason="scheduled"))
                counts["updated"] += 1  # a day already as planned is not "updated"
        kept.add(day_id)
        for scene_id in day.scene_ids:
            first_day.setdefault(scene_id, day_id)
    for day_id in stored.keys() - kept:
        out.append(edits.delete(reader, model.ShootDay, day_id, reason="empty on the new board"))
        counts["deleted"] += 1
    for scene in reader.all(model.Scene):
        target = first_day.get(scene.id)
        if scene.shoot_day_id != target:
            counts["scenes"] += 1
            if target is None:  # left off the board: on no day now
                fields = {"shoot_day_id": None}
                out.append(edits.change(reader, model.Scene, scene.id, fields, reason="cut"))
    return edits.Plan(edits=out, reason="castroom schedule"), counts


def apply_board(doc: CastDocument, plan: SchedulePlan) -> BoardCounts:
    """Write ``plan``'s board in one transaction (see :func:`plan_board`)."""
    board, counts = plan_board(doc, plan)
    edits.apply(doc, board)
    return counts
