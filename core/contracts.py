"""Typed contracts between the application layer, the plugins and the front ends: what
a hook answers, a command's ``--json`` prints and the web page shows (money in integer
minor units of the production's currency), so every front end shows the same thing.

- :class:`BudgetReport` (with :class:`CostLine`, :class:`Subtotal`): what
  ``castroom_cost_report`` returns and ``castroom budget --json`` prints.
- :class:`ContingencyPlan` (with :class:`RolePlan`, :class:`Replacement`,
  :class:`SceneRef`, :class:`DayRef`): what ``castroom_rank_replacements`` returns and
  ``castroom replace --json`` prints.
- :class:`SchedulePlan` (with :class:`PlanDay`, :class:`TalentCost`) and
  :class:`ScheduleRequest`: ``castroom_propose_schedule`` and ``castroom schedule``.

:func:`validate_answer` checks a hook's answer against its contract: a third-party
plugin may return the Struct, plain data of its shape, or any object msgspec can turn
into builtins; anything else is one clear error naming the field.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, TypeVar

import msgspec

from .errors import CastroomError

T = TypeVar("T", bound=msgspec.Struct)

# -- castroom_cost_report ---------------------------------------------------------------------


class CostLine(msgspec.Struct, kw_only=True):
    """The cost of one deal. Money in minor units."""

    deal_id: str
    talent_id: str
    talent: str
    role_id: str
    role: str
    era: str | None
    status: str
    counted: bool
    projected: bool  # days taken from the role's schedule: the talent is not booked in it
    unit: str
    rate: int
    work_days: int
    hold_days: int
    guaranteed_days: int
    billed_days: int
    day_rate: int | None  # None: a flat fee with no days to spread it over
    rate_cap: int | None
    base: int
    overtime_hours: float
    overtime: int
    fringe_rate: float
    fringe: int
    total: int


class Subtotal(msgspec.Struct, kw_only=True):
    id: str
    name: str
    total: int
    deals: int


class BudgetReport(msgspec.Struct, kw_only=True):
    """What ``castroom_cost_report`` returns and ``castroom budget --json`` prints."""

    currency: str
    cap: int | None
    total: int
    remaining: int | None
    over_cap: bool
    lines: list[CostLine]
    by_talent: list[Subtotal]
    by_role: list[Subtotal]
    booked_without_deal: list[tuple[str, str]] = []  # (talent id, role id)


# -- castroom_rank_replacements ---------------------------------------------------------------


class SceneRef(msgspec.Struct, kw_only=True, frozen=True):
    id: str
    number: str
    story_day: int | None
    shoot_day_id: str | None


class DayRef(msgspec.Struct, kw_only=True, frozen=True):
    id: str
    date: dt.date
    day_number: int | None


class Replacement(msgspec.Struct, kw_only=True):
    """One ranked replacement. ``rank`` starts at 1; ``reasons`` explain it to a person."""

    rank: int
    talent_id: str
    name: str
    candidate_id: str | None
    stage: str | None
    tier: str  # "backup", "ranked backup" or "candidate"
    score: int
    reasons: list[str]
    estimated_cost: int | None = None
    conflicts: list[dt.date] = []
    #: What booking them does to the schedule's cast cost, given their availability:
    #: the best board the scheduler finds with them (None: no schedule to price) and
    #: its change against the cast cost of the board as it is now.
    schedule_cost: int | None = None
    schedule_change: int | None = None
    schedule_optimal: bool | None = None


class RolePlan(msgspec.Struct, kw_only=True):
    """What one role loses, and who could take over."""

    role_id: str
    role: str
    era: str | None
    candidate_ids: list[str]  # the dropped talent's booked candidates for this role
    scenes: list[SceneRef]
    shoot_days: list[DayRef]
    replacements: list[Replacement]
    #: The budget left once the dropped talent's deals for this role are cancelled.
    remaining_budget: int | None = None


class ContingencyPlan(msgspec.Struct, kw_only=True):
    """What ``castroom_rank_replacements`` returns: one plan per affected role."""

    talent_id: str
    talent: str
    remaining_budget: int | None
    currency: str
    roles: list[RolePlan]

    @property
    def replacements(self) -> list[Replacement]:
        """Every role's replacements, role by role (most plans have one role)."""
        return [rep for role in self.roles for rep in role.replacements]


# -- castroom_propose_schedule ----------------------------------------------------------------


class ScheduleRequest(msgspec.Struct, kw_only=True, frozen=True):
    """What ``castroom schedule`` asks of ``castroom_propose_schedule``."""

    #: Seconds the solver may take (the exact programme stops early when it proves).
    time_limit: float = 10.0
    #: Shoot day ids kept exactly as they are (their scenes stay, nothing joins them).
    locks: list[str] = []
    #: Restore feasibility moving as few scenes as possible (then the cheapest board).
    repair: bool = False


class PlanDay(msgspec.Struct, kw_only=True):
    """One shoot day of a proposed board. ``shoot_day_id``: the stored day it reuses (same
    date, or locked), None for a day the plan adds."""

    date: dt.date
    scene_ids: list[str]
    shoot_day_id: str | None = None
    location: str = ""
    locked: bool = False


class TalentCost(msgspec.Struct, kw_only=True):
    """One actor's cast cost on the stored board and on the proposed one (minor units)."""

    talent_id: str
    talent: str
    cost_before: int
    cost_after: int


class SchedulePlan(msgspec.Struct, kw_only=True):
    """A proposed board: what ``castroom_propose_schedule`` returns, ``castroom schedule
    --json`` prints and ``--apply`` writes.

    ``cost`` is exactly what ``castroom budget`` reports once the plan is applied;
    ``lower_bound`` is proven: no board meeting the constraints costs less; ``optimal``
    is true when ``cost`` equals it (for ``repair``: fewest scenes moved, then cheapest).
    """

    currency: str
    cost: int
    cost_before: int
    lower_bound: int
    optimal: bool
    days: list[PlanDay]
    per_talent: list[TalentCost]
    #: Scenes the plan puts on another date than they have now.
    moved: int = 0
    #: How the board was found ("dynamic programme", "CP-SAT", a plugin's own words).
    method: str = ""
    seconds: float = 0.0
    #: Things a person should know, such as other productions' holds on the cast.
    warnings: list[str] = []

    @property
    def gap(self) -> float:
        """How far the cost may be above the optimum, as a fraction of the cost."""
        return 0.0 if self.cost <= 0 else (self.cost - self.lower_bound) / self.cost


# -- checking an answer -----------------------------------------------------------------------


class MalformedAnswer(CastroomError):
    """A plugin's answer does not match its hook's contract."""


def validate_answer(result: Any, cls: type[T], what: str) -> T:
    """``result`` as ``cls``: an instance already, or plain data of its shape from a
    third-party plugin (which need not import castroom's Struct); else MalformedAnswer
    saying which field is wrong."""
    if isinstance(result, cls):
        return result
    try:
        data = result if isinstance(result, dict) else msgspec.to_builtins(result)
        return msgspec.convert(data, cls, strict=False)
    except (msgspec.ValidationError, TypeError) as exc:
        raise MalformedAnswer(f"a plugin's {what} is malformed: {exc}") from None
