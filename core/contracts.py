"""Typed contracts between the application layer, the plugins and the front ends.

A hook's answer, a command's ``--json`` and the web page's data are these Structs (money
in integer minor units), so every front end shows the same thing.
"""

from __future__ import annotations

import datetime as dt

import msgspec


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
