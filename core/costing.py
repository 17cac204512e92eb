"""The cast cost of a board: the day-out-of-days and what every deal costs for it.

One cost function for everything that prices the board: ``castroom budget`` (the budget
plugin's report), the scheduler (which minimises it) and contingency (which prices a
replacement). Money is integer minor units throughout, and every sum is exact integer
arithmetic: fractions (a weekly rate's day, an hourly overtime rate, a fringe percentage;
rates and hours are taken to six decimal places) are carried as integer ratios and rounded
once per component, half up, to a whole minor unit.

The day-out-of-days (DOOD)
    :func:`day_out_of_days` lists the shoot days in date order and, for each booked actor,
    a code per day: ``SW`` start work, ``W`` work, ``WF`` work finish, ``SWF`` a one-day
    actor, ``H`` hold (a paid day between two work days). Drop/pickup (SAG-AFTRA's rule):
    when a gap between two work days is longer than the production's
    ``drop_pickup_days`` calendar days, the actor may be dropped and picked up again,
    unpaid in between, once per production (the gap that saves the most paid days):
    ``WD`` work then drop, ``PW`` picked up again, ``PWF`` picked up and finished, ``SWD``
    start, work, drop, ``PWD`` picked up for one day then dropped. Days between a drop and
    a pickup are unpaid (code ``""``).

Cost of a deal
    Days billed = max(work + hold days, guaranteed days). ``day``: rate x days. ``week``
    (casting practice for a weekly engagement): paid at least one full week, so the billed
    days are never fewer than five; beyond whole weeks each extra day pays 1/5 of the
    weekly rate (a studio week is five shoot days): 3 days cost one week, 7 days a week
    and 2/5, 12 days two weeks and 2/5. Whole weeks are exact; the extra days' fifths are
    rounded once. ``flat``: the rate. Overtime:
    ``overtime_hours`` x (day rate / production ``hours_per_day``) x production
    ``overtime_multiplier`` (a flat deal's day rate is its rate over the billed days).
    Fringe: (base + overtime) x the deal's ``fringe_rate``, else the production's.
    A deal counts towards the total unless it is cancelled, or a draft for a talent who is
    not booked in that role (drafts for several candidates are alternatives, not costs).

A board other than the stored one (a proposed schedule) is priced by passing its days:
``budget_report(view, days=[BoardDay(...), ...])``.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from typing import TYPE_CHECKING

import msgspec

from .contracts import BudgetReport, CostLine, Subtotal
from .model import Deal, Production, ShootDay, Talent

if TYPE_CHECKING:
    from .view import ProductionView

#: SAG-AFTRA: a gap of more than ten calendar days between two work days (fourteen
#: outside the USA) may drop a day performer off the payroll until the pickup.
DROP_AFTER_DAYS = 10
DROP_AFTER_DAYS_ABROAD = 14
WEEK_DAYS = 5
WORK_CODES = frozenset({"SW", "W", "WF", "SWF", "WD", "PW", "PWF", "SWD", "PWD"})


# -- day-out-of-days --------------------------------------------------------------------------


class DoodDay(msgspec.Struct, kw_only=True, frozen=True):
    """One column of the grid: a shoot day."""

    id: str
    date: dt.date
    day_number: int
    location: str = ""


class DoodRow(msgspec.Struct, kw_only=True):
    """One actor's line: a code per shoot day (``""`` = not on the payroll that day)."""

    talent_id: str
    talent: str
    role_ids: list[str]
    roles: list[str]
    codes: list[str]
    work_days: int
    hold_days: int
    drop_days: int
    paid_days: int
    start: dt.date | None
    finish: dt.date | None


class DayOutOfDays(msgspec.Struct, kw_only=True):
    days: list[DoodDay]
    rows: list[DoodRow]


def schedule_codes(
    dates: list[dt.date], work: set[int], drop_after: int = DROP_AFTER_DAYS
) -> list[str]:
    """DOOD codes for one actor: ``dates`` are every shoot day in order, ``work`` the
    indexes of the days they work. See the module docstring for the codes."""
    codes = [""] * len(dates)
    stretches = _stretches(dates, work, drop_after)
    last = len(stretches) - 1
    for n, stretch in enumerate(stretches):
        first_code = "S" if n == 0 else "P"
        end_code = "F" if n == last else "D"
        codes[stretch[0] : stretch[-1] + 1] = ["H"] * (stretch[-1] + 1 - stretch[0])
        for index in stretch:
            codes[index] = "W"
        if len(stretch) == 1:
            codes[stretch[0]] = f"{first_code}W{end_code}"
        else:
            codes[stretch[0]] = f"{first_code}W"
            codes[stretch[-1]] = f"W{end_code}"
    return codes


def hold_count(dates: list[dt.date], work: set[int], drop_after: int = DROP_AFTER_DAYS) -> int:
    """How many ``H`` days :func:`schedule_codes` gives (without making the codes: a
    budget needs only the count, for each of thousands of deals)."""
    return sum(s[-1] + 1 - s[0] - len(s) for s in _stretches(dates, work, drop_after))


def _stretches(dates: list[dt.date], work: set[int], drop_after: int) -> list[list[int]]:
    """The worked day indexes in order, as one stretch, or two around the production's
    one break: the longest gap (in shoot days skipped) that is longer than
    ``drop_after`` calendar days, the earliest of equals; 0 means never drop."""
    worked = sorted(work)
    if not worked:
        return []
    if drop_after > 0:
        gaps = [
            (worked[n + 1] - worked[n], -n)
            for n in range(len(worked) - 1)
            if worked[n + 1] - worked[n] > 1
            and (dates[worked[n + 1]] - dates[worked[n]]).days > drop_after
        ]
        if gaps:
            cut = -max(gaps)[1] + 1
            return [worked[:cut], worked[cut:]]
    return [worked]


def drop_after_days(production: Production) -> int:
    """The production's drop/pickup gap: its ``drop_pickup_days``, else 10 calendar days
    for a production paid in US dollars (SAG-AFTRA) and 14 elsewhere; 0 = never drop."""
    if production.drop_pickup_days is not None:
        return production.drop_pickup_days
    return DROP_AFTER_DAYS if production.currency == "USD" else DROP_AFTER_DAYS_ABROAD


class BoardDay(msgspec.Struct, kw_only=True, frozen=True):
    """One shoot day of a board, stored or proposed: its date and scenes in order. ``id``
    is the stored shoot day's id, or ``""`` for a day a proposal would add."""

    date: dt.date
    scene_ids: list[str]
    id: str = ""
    location: str = ""
    day_number: int | None = None


def ordered_days(view: ProductionView) -> list[ShootDay]:
    return sorted(view.shoot_days.values(), key=lambda d: (d.date, d.day_number or 0, d.id))


def stored_board(view: ProductionView) -> list[BoardDay]:
    """The production's board as it is: every shoot day in date order with its scenes."""
    by_day = view.scenes_by_shoot_day
    return [
        BoardDay(
            id=d.id,
            date=d.date,
            scene_ids=[s.id for s in by_day.get(d.id, ())],
            location=d.location,
            day_number=d.day_number,
        )
        for d in ordered_days(view)
    ]


def _work_index(view: ProductionView, days: Sequence[BoardDay]) -> dict[tuple[str, ...], set[int]]:
    """Day indexes worked, keyed by (talent,), (talent, role), (talent, role, era),
    and the role's own days by ("role", role) and ("role", role, era)."""
    # Each cast member of each scene once, by (role, talent, era): a few thousand keys
    # for 15,000 scenes, then merged into the keys asked for.
    worked: dict[tuple[str, str | None, str | None], set[int]] = defaultdict(set)
    scenes, cast = view.scenes, view.scene_cast
    for i, day in enumerate(days):
        for scene_id in day.scene_ids:
            scene = scenes.get(scene_id)
            if scene is None or scene.omitted:  # cut from the script: not shot, not paid
                continue
            era = scene.era
            for role_id, talent in cast[scene.id]:
                worked[(role_id, talent.id if talent is not None else None, era)].add(i)
    index: dict[tuple[str, ...], set[int]] = defaultdict(set)
    for (role_id, talent_id, era), indexes in worked.items():
        index[("role", role_id)] |= indexes
        if era:
            index[("role", role_id, era)] |= indexes
        if talent_id is not None:
            index[(talent_id,)] |= indexes
            index[(talent_id, role_id)] |= indexes
            if era:
                index[(talent_id, role_id, era)] |= indexes
    return index


def day_out_of_days(
    view: ProductionView,
    *,
    drop_after: int | None = None,
    days: Sequence[BoardDay] | None = None,
) -> DayOutOfDays:
    """The day-out-of-days grid: every shoot day (of the stored board, or ``days``), and a
    row per booked actor who works. ``drop_after`` overrides the production's rule."""
    days = stored_board(view) if days is None else days
    drop_after = drop_after_days(view.production) if drop_after is None else drop_after
    dates = [d.date for d in days]
    index = _work_index(view, days)
    roles_of: dict[str, list[str]] = defaultdict(list)
    for (role_id, _era), cands in view.booked.items():
        for cand in cands:
            if (
                view.find(Talent, cand.talent_id) is not None
                and role_id not in roles_of[cand.talent_id]
            ):
                roles_of[cand.talent_id].append(role_id)
    rows = []
    for talent_id, role_ids in roles_of.items():
        work = index.get((talent_id,), set())
        codes = schedule_codes(dates, work, drop_after)
        worked = sorted(work)
        roles = [view.roles[r].name if r in view.roles else r for r in role_ids]
        holds = codes.count("H")
        first, last = (worked[0], worked[-1]) if worked else (None, None)
        rows.append(
            DoodRow(
                talent_id=talent_id,
                talent=view.get(Talent, talent_id).name,
                role_ids=role_ids,
                roles=roles,
                codes=codes,
                work_days=len(work),
                hold_days=holds,
                drop_days=0
                if first is None or last is None
                else (last - first + 1) - len(work) - holds,
                paid_days=len(work) + holds,
                start=dates[first] if first is not None else None,
                finish=dates[last] if last is not None else None,
            )
        )
    rows.sort(key=lambda r: (r.start or dt.date.max, r.talent.casefold(), r.talent_id))
    grid_days = [
        DoodDay(id=d.id, date=d.date, day_number=d.day_number or i + 1, location=d.location)
        for i, d in enumerate(days)
    ]
    return DayOutOfDays(days=grid_days, rows=rows)


# -- cost -------------------------------------------------------------------------------------


MICRO = 1_000_000  # rates and hours are exact to six decimal places


def div_round(numerator: int, denominator: int) -> int:
    """``numerator / denominator`` to the nearest integer, halves up (money rounding)."""
    return (2 * numerator + denominator) // (2 * denominator)


def micro(number: float) -> int:
    """A stored float as an exact count of millionths (0.21 -> 210000, not 0.2099...)."""
    return round(number * MICRO)


class DealCost(msgspec.Struct, kw_only=True, frozen=True):
    """One deal's cost for some days. Money in minor units."""

    billed_days: int
    base: int
    overtime: int
    fringe: int
    #: Rounded; compared with the role's rate cap. None for a flat fee with no days
    #: (none guaranteed, none scheduled): it is not one day's pay, so no day rate is known.
    day_rate: int | None
    fringe_rate: float

    @property
    def total(self) -> int:
        return self.base + self.overtime + self.fringe


def deal_cost(
    view: ProductionView, deal: Deal, work_days: int, hold_days: int, *, rate: int | None = None
) -> DealCost:
    """The cost of a deal worked ``work_days`` + ``hold_days`` (``rate`` overrides the
    deal's, for estimates). Integer arithmetic only: each component is rounded once."""
    production = view.production
    rate = deal.rate if rate is None else rate
    billed = max(work_days + hold_days, deal.guaranteed_days)
    # The day rate as an exact fraction day_num / day_den.
    if deal.unit == "day":
        base, day_num, day_den = rate * billed, rate, 1
    elif deal.unit == "week":
        billed = max(billed, WEEK_DAYS)  # a weekly engagement pays at least a week
        weeks, extra = divmod(billed, WEEK_DAYS)
        base = rate * weeks + div_round(rate * extra, WEEK_DAYS)
        day_num, day_den = rate, WEEK_DAYS
    else:
        # A flat fee covers its billed days; with none, overtime prices the fee as one day
        # (errs high), but no day rate is claimed for the rate-cap comparison.
        base, day_num, day_den = rate, rate, max(billed, 1)
    hours = micro(deal.overtime_hours)
    overtime = 0
    if hours:
        # hours x (day rate / hours per day) x multiplier
        overtime = div_round(
            day_num * hours * micro(production.overtime_multiplier),
            day_den * production.hours_per_day * MICRO * MICRO,
        )
    fringe_rate = production.fringe_rate if deal.fringe_rate is None else deal.fringe_rate
    fringe = div_round((base + overtime) * micro(fringe_rate), MICRO)
    return DealCost(
        billed_days=billed,
        base=base,
        overtime=overtime,
        fringe=fringe,
        day_rate=None if deal.unit == "flat" and billed == 0 else div_round(day_num, day_den),
        fringe_rate=fringe_rate,
    )


def booked_pairs(view: ProductionView) -> set[tuple[str, str]]:
    """(talent id, role id) of every booking."""
    return {(c.talent_id, role_id) for (role_id, _era), cands in view.booked.items() for c in cands}


def deal_key(deal: Deal, booked: set[tuple[str, str]]) -> tuple[tuple[str, ...], bool]:
    """Whose days a deal pays, as a work-index key, and whether they are projected: the
    talent's days in the role (and era), or the role's own when the talent is not booked
    in it."""
    era = (deal.era,) if deal.era else ()
    if (deal.talent_id, deal.role_id) in booked:
        return (deal.talent_id, deal.role_id, *era), False
    return ("role", deal.role_id, *era), True


def scene_work(view: ProductionView, scene_ids: Sequence[str]) -> dict[tuple[str, ...], set[int]]:
    """Which of ``scene_ids`` (by position) each work-index key works in: the budget's own
    index over a board of one scene per day, so the scheduler prices exactly alike."""
    return _work_index(view, [BoardDay(date=dt.date.min, scene_ids=[s]) for s in scene_ids])


def deal_counts(deal: Deal, booked: set[tuple[str, str]]) -> bool:
    if deal.status == "cancelled":
        return False
    return deal.status != "draft" or (deal.talent_id, deal.role_id) in booked


def budget_report(
    view: ProductionView,
    *,
    drop_after: int | None = None,
    days: Sequence[BoardDay] | None = None,
) -> BudgetReport:
    """The cast cost of every deal, per actor and role, against the production's cap, for
    the stored board or the board ``days`` (a proposal). ``drop_after`` overrides the
    production's drop/pickup rule."""
    production = view.production
    days = stored_board(view) if days is None else days
    drop_after = drop_after_days(production) if drop_after is None else drop_after
    dates = [d.date for d in days]
    index = _work_index(view, days)
    booked = booked_pairs(view)
    lines: list[CostLine] = []
    for deal in view.deals:
        talent = view.find(Talent, deal.talent_id)
        role = view.roles.get(deal.role_id)
        key, projected = deal_key(deal, booked)
        worked = index.get(key, set())
        work, holds = len(worked), hold_count(dates, worked, drop_after)
        cost = deal_cost(view, deal, work, holds)
        lines.append(
            CostLine(
                deal_id=deal.id,
                talent_id=deal.talent_id,
                talent=talent.name if talent else deal.talent_id,
                role_id=deal.role_id,
                role=role.name if role else deal.role_id,
                era=deal.era,
                status=deal.status,
                counted=deal_counts(deal, booked),
                projected=projected,
                unit=deal.unit,
                rate=deal.rate,
                work_days=work,
                hold_days=holds,
                guaranteed_days=deal.guaranteed_days,
                billed_days=cost.billed_days,
                day_rate=cost.day_rate,
                rate_cap=role.rate_cap if role else None,
                base=cost.base,
                overtime_hours=deal.overtime_hours,
                overtime=cost.overtime,
                fringe_rate=cost.fringe_rate,
                fringe=cost.fringe,
                total=cost.total,
            )
        )
    lines.sort(key=lambda line: (line.role.casefold(), line.talent.casefold(), line.deal_id))
    total = sum(line.total for line in lines if line.counted)
    with_deal = {(d.talent_id, d.role_id) for d in view.deals if d.status != "cancelled"}
    cap = production.budget_cap
    return BudgetReport(
        currency=production.currency,
        cap=cap,
        total=total,
        remaining=None if cap is None else cap - total,
        over_cap=cap is not None and total > cap,
        lines=lines,
        by_talent=_subtotals(lines, "talent_id", "talent"),
        by_role=_subtotals(lines, "role_id", "role"),
        booked_without_deal=sorted(
            pair for pair in booked - with_deal if view.find(Talent, pair[0]) is not None
        ),
    )


def report_for(view: ProductionView) -> BudgetReport:
    """The cost report as the loaded plugins give it (a third-party
    ``castroom_cost_report`` overrides the built-in for checks and contingency too), or
    the built-in one for a view made without plugins."""
    result = view.cost_report()  # checked against the BudgetReport contract already
    return budget_report(view) if result is None else result


def _subtotals(lines: list[CostLine], id_field: str, name_field: str) -> list[Subtotal]:
    out: dict[str, Subtotal] = {}
    for line in lines:
        if not line.counted:
            continue
        key = getattr(line, id_field)
        sub = out.setdefault(
            key, Subtotal(id=key, name=getattr(line, name_field), total=0, deals=0)
        )
        sub.total += line.total
        sub.deals += 1
    return sorted(out.values(), key=lambda s: (-s.total, s.name.casefold()))
