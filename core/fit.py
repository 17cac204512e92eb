"""What a casting judgement weighs, once: the character's age in a scene, whether an
actor's playing ages fit it, and the availabilities that keep an actor from a shoot day.

The continuity checks (``playing-age``, ``booked-unavailable``) and the ranking of
replacements (``castroom replace``) judge by these same rules; plugins import them from
:mod:`castroom.core.api`. No click or rich here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .model import Availability, Role, Scene, ShootDay, Talent

if TYPE_CHECKING:
    from .view import ProductionView

#: Availability kinds that block a shoot day when another production holds them.
HOLD_KINDS = frozenset({"first_hold", "second_hold", "booked"})


def age_range(role: Role, scene: Scene) -> tuple[int | None, int | None]:
    """The character's age in a scene: its look's age, else the era's range, else the role's."""
    look = scene.looks.get(role.id)
    if look is not None and look.age is not None:
        return look.age, look.age
    era = role.era(scene.era) if scene.era else None
    if era is not None and (era.age_min is not None or era.age_max is not None):
        return era.age_min, era.age_max
    return role.age_min, role.age_max


def fits_age(talent: Talent, low: int | None, high: int | None) -> bool | None:
    """Do the actor's playing ages overlap the character's? None when either is unknown."""
    if talent.playing_age_min is None and talent.playing_age_max is None:
        return None
    if low is None and high is None:
        return None
    if talent.playing_age_max is not None and low is not None and talent.playing_age_max < low:
        return False
    return not (
        talent.playing_age_min is not None and high is not None and talent.playing_age_min > high
    )


def age_span(low: int | None, high: int | None) -> str:
    """An age range as people write it: "30-45", "12", "?-40"."""
    if low == high and low is not None:
        return str(low)
    return f"{'?' if low is None else low}-{'?' if high is None else high}"


def blocks_us(view: ProductionView, item: Availability) -> bool:
    """Does this availability block our production (unavailable, or another's hold)?"""
    if item.kind == "unavailable":
        return True
    if item.kind not in HOLD_KINDS or not item.held_by.strip():
        return False
    return item.held_by.strip().casefold() not in view._our_names


def conflicts(view: ProductionView, talent_id: str, day: ShootDay) -> list[Availability]:
    """The availabilities that keep a talent from working on a shoot day."""
    return [
        a
        for a in view.availability_by_talent.get(talent_id, ())
        if a.start <= day.date <= a.end and blocks_us(view, a)
    ]


def describe_block(item: Availability) -> str:
    """Why an availability blocks a day, for people: "unavailable (surgery)", "first hold
    by Other Show"."""
    if item.kind == "unavailable":
        return "unavailable" + (f" ({item.held_by})" if item.held_by else "")
    return f"{item.kind.replace('_', ' ')} by {item.held_by}"
