"""The scheduler: the board (which scenes on which shoot day) of least cast cost.

The cost of a board is exactly what the budget computes for it (:mod:`.costing`): every
counted deal is a *payee* whose cost for ``n`` paid days is read off the budget's own
deal cost, and the proposed board is priced by :func:`.costing.budget_report` itself.

How a board is found:

- The calendar: shooting dates from the production's ``start_date`` (else the first
  stored shoot day, else today), the first ``shooting_days_per_week`` days of each week
  from it; locked days keep their dates. A scene lasts ``duration_days`` (else its pages
  over ``pages_per_day``, an eighth of a page at least), in hundredths of a day: scenes
  of a day or less share a day up to its length, a longer one has its days to itself.
- The exact core (:mod:`.talent_scheduling`): the classic problem over the payees paid
  by the day, scenes in sequence. When nothing else constrains the board (whole-day
  scenes, day deals, no unavailability on the calendar, no lock, tie or order, no drop
  possible), its proven optimum is the board's; packed onto the calendar it is the
  answer. Otherwise it seeds the local search (:mod:`.board_search`: orders placed day
  by day, priced as the budget prices them, drops and every deal included), and the
  better board of the two seeds CP-SAT (:mod:`.board_model`), which prices every payee
  exactly (week and flat deals, guarantees) under the hard constraints and proves what
  it can; the answer is the cheapest of the three boards.
- The lower bound is proven: the classic optimum over the day-paid payees (every board
  is, scene by scene, a sequence no cheaper than it; a day holds at most a day of work)
  or those payees at their fewest whole days, whichever is higher, plus each other payee
  at their fewest days, or CP-SAT's bound, whichever is higher. With drop/pickup
  possible (a board spanning more than ``drop_pickup_days``) CP-SAT models the one
  unpaid gap per deal; the exact core then only seeds it, and the bound is CP-SAT's or
  every payee paid only their fewest work days. (Tighter ones were measured and left
  out: on the 150-scene sample the set-partitioning relaxation of the work days, by
  column generation, gives 44.55 M against 43.61 M, in 96 s; and letting a drop
  fall anywhere, not only across ten calendar days, gives concert's and rehearsal's
  work cost, no more.)

Hard constraints: a booked actor's ``unavailable`` days and other productions'
bookings (``booked`` availability held by someone else) are never scheduled over; other
productions' first and second holds are only warnings. Secondary objective: fewest
(day, location) pairs, i.e. company moves.
"""

from __future__ import annotations

import datetime as dt
import math
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from . import costing
from .contracts import PlanDay, SchedulePlan, ScheduleRequest, TalentCost
from .errors import CastroomError
from .model import Deal, Production, Scene, Talent

if TYPE_CHECKING:
    from . import talent_scheduling as classic
    from .board_model import BoardAnswer, BoardProblem
    from .costing import BudgetReport
    from .view import ProductionView

UNITS = 100  # a day, in the units scene lengths are counted in
MIN_PAGES = 0.125  # an eighth of a page: the smallest length on a breakdown sheet
HARD = frozenset({"unavailable", "booked"})


def scene_days(scene: Scene, production: Production) -> float:
    """A scene's estimated shooting time in days."""
    if scene.duration_days is not None:
        return scene.duration_days
    pages = scene.pages or (scene.eighths or 0) / 8
    return max(pages, MIN_PAGES) / production.pages_per_day


def to_shoot(view: ProductionView) -> list[Scene]:
    """The scenes a board holds, in script order: all but those cut (omitted)."""
    live = [s for s in view.scenes.values() if not s.omitted]
    return sorted(live, key=lambda s: view.scene_order[s.id])


def shooting_dates(start: dt.date, days_per_week: int, count: int) -> list[dt.date]:
    """The first ``count`` shooting dates from ``start``: the first ``days_per_week``
    days of each week counted from it."""
    out: list[dt.date] = []
    offset = 0
    while len(out) < count:
        if offset % 7 < days_per_week:
            out.append(start + dt.timedelta(days=offset))
        offset += 1
    return out


@dataclass
class Payee:
    deal: Deal
    talent_id: str
    scenes: list[int]  # scene positions
    table: list[int]  # cost for n paid days, n = 0..slots
    linear: bool  # paid by the day: table[n] = a + b*n, up to fringe rounding
    booked: bool
    fringe: float = 0.0
    overtime: int = 0


@dataclass
class Problem:
    """The board to choose, in the solvers' terms (positions, not ids)."""

    scenes: list[Scene]
    units: list[int]
    dates: list[dt.date]  # slot -> date
    payees: list[Payee]
    forbidden: list[set[int]]
    fixed: dict[int, int]
    locked_slots: dict[int, str]  # slot -> locked shoot day id
    after: list[tuple[int, int]]
    current: list[int | None]
    drop_after: int
    warnings: list[str] = field(default_factory=list)

    def span(self, scene: int) -> int:
        return max(1, -(-self.units[scene] // UNITS))

    @property
    def drops_possible(self) -> bool:
        return self.drop_after > 0 and (self.dates[-1] - self.dates[0]).days > self.drop_after


# -- building the problem ---------------------------------------------------------------------


def _start(view: ProductionView) -> dt.date:
    production = view.production
    if production.start_date is not None:
        return production.start_date
    days = costing.ordered_days(view)
    return days[0].date if days else dt.date.today()


def _payees(view: ProductionView, scene_ids: list[str], slots: int) -> list[Payee]:
    booked = costing.booked_pairs(view)
    work = costing.scene_work(view, scene_ids)
    out = []
    for deal in view.deals:
        if not costing.deal_counts(deal, booked) or view.find(Talent, deal.talent_id) is None:
            continue
        key, projected = costing.deal_key(deal, booked)
        scenes = sorted(work.get(key, set()))
        priced = [costing.deal_cost(view, deal, n, 0) for n in range(slots + 1)]
        out.append(
            Payee(
                deal,
                deal.talent_id,
                scenes,
                [c.total for c in priced],
                linear=deal.unit == "day",  # and no guarantee above its fewest days (below)
                booked=not projected,
                fringe=priced[0].fringe_rate,
                overtime=priced[0].overtime,
            )
        )
    return out


def _blocked_dates(view: ProductionView, talent_id: str) -> tuple[set[dt.date], list]:
    """Dates a talent cannot work (hard), and other productions' holds (warnings)."""
    title = view.production.title
    hard: set[dt.date] = set()
    holds = []
    for item in view.availability_by_talent.get(talent_id, ()):
        if item.kind in HARD and not (item.kind == "booked" and item.held_by in ("", title)):
            day = item.start
            while day <= item.end:
                hard.add(day)
                day += dt.timedelta(days=1)
        elif item.kind in ("first_hold", "second_hold") and item.held_by not in ("", title):
            holds.append(item)
    return hard, holds


def build_problem(view: ProductionView, request: ScheduleRequest, slots: int) -> Problem:
    """The board to choose over the first ``slots`` shooting dates (plus locked days)."""
    production = view.production
    scenes = to_shoot(view)
    units = [max(1, round(scene_days(s, production) * UNITS)) for s in scenes]
    locked = {d: view.shoot_days[d] for d in request.locks if d in view.shoot_days}
    locked_dates = {day.date: day_id for day_id, day in locked.items()}
    tied = {s.tied_date for s in scenes if s.tied_date is not None}
    calendar = [d for d in shooting_dates(_start(view), production.shooting_days_per_week, slots)]
    dates = sorted(set(calendar) | set(locked_dates) | tied)
    slot_of = {d: k for k, d in enumerate(dates)}
    position = {s.id: i for i, s in enumerate(scenes)}
    payees = _payees(view, [s.id for s in scenes], len(dates))
    forbidden: list[set[int]] = [set() for _ in scenes]
    warnings: list[str] = []
    for payee in payees:  # a guarantee above the fewest days it can work bends its cost
        payee.linear = payee.linear and payee.deal.guaranteed_days <= _fewest(units, payee)
    for payee in {p.talent_id: p for p in payees if p.booked}.values():
        hard, holds = _blocked_dates(view, payee.talent_id)
        name = view.get(Talent, payee.talent_id).name
        for s in {s for p in payees if p.talent_id == payee.talent_id for s in p.scenes}:
            for k, _date in enumerate(dates):
                if any(dates[j] in hard for j in range(k, min(len(dates), k + span_of(units[s])))):
                    forbidden[s].add(k)
        for hold in holds:
            warnings.append(
                f"{name} is on a {hold.kind.replace('_', ' ')} for {hold.held_by} "
                f"{hold.start}..{hold.end}"
            )
    fixed: dict[int, int] = {}
    locked_slots = {slot_of[d]: day_id for d, day_id in locked_dates.items()}
    by_day = view.scenes_by_shoot_day
    for day_id, day in locked.items():
        for scene in by_day.get(day_id, ()):
            i = position[scene.id]
            fixed.setdefault(i, slot_of[day.date])
            fixed[i] = min(fixed[i], slot_of[day.date])
    for i, scene in enumerate(scenes):
        if scene.tied_date is not None and i not in fixed:
            fixed[i] = slot_of[scene.tied_date]
        if i not in fixed:  # nothing new joins a locked day
            forbidden[i] |= set(locked_slots)
    after = [(position[a], position[s.id]) for s in scenes for a in s.after if a in position]
    current: list[int | None] = []
    for scene in scenes:
        now = view.shoot_days.get(scene.shoot_day_id or "")
        current.append(slot_of.get(now.date) if now is not None else None)
    return Problem(
        scenes=scenes,
        units=units,
        dates=dates,
        payees=payees,
        forbidden=forbidden,
        fixed=fixed,
        locked_slots=locked_slots,
        after=after,
        current=current,
        drop_after=costing.drop_after_days(production),
        warnings=warnings,
    )


def span_of(units: int) -> int:
    return max(1, -(-units // UNITS))


# -- the exact core ---------------------------------------------------------------------------


def classic_instance(problem: Problem) -> tuple[classic.Instance, list[int], float]:
    """The classic problem over the day-paid payees (durations in hundredths of a day,
    costs per day in exact millionths), which payees it holds, and the constant that
    makes it a bound in money: its cost / MICRO / UNITS + constant <= their board cost."""
    # Here, not at the top: every plugin imports this module (through the plugin API),
    # and the search (with its compiled extension) is for `castroom schedule` only.
    from . import talent_scheduling as classic

    linear = [p for p, payee in enumerate(problem.payees) if payee.linear and payee.scenes]
    casts = [0] * len(problem.scenes)
    costs = []
    constant = 0.0
    for bit, p in enumerate(linear):
        payee = problem.payees[p]
        # A day deal's table[n] = rate*n + overtime, plus the fringe on both, rounded
        # once: at least (rate*n + overtime) * (1 + fringe) - 1/2.
        fringe = costing.micro(payee.fringe)
        costs.append(payee.deal.rate * (costing.MICRO + fringe))
        constant += payee.overtime * (costing.MICRO + fringe) / costing.MICRO
        constant -= 0.5 if fringe else 0.0
        for s in payee.scenes:
            casts[s] |= 1 << bit
    instance = classic.Instance(tuple(problem.units), tuple(costs), tuple(casts))
    return instance, linear, constant


def _fewest(units: list[int], payee: Payee, fixed: dict[int, int] | None = None) -> int:
    """The fewest days a payee can be paid for (see :func:`.board_search.fewest`)."""
    from .board_search import fewest

    return fewest(units, UNITS, payee.scenes, fixed)


def pack(problem: Problem, order: list[int]) -> list[int] | None:
    """Start slots for scenes shot in ``order`` over the whole calendar (see
    :func:`.board_search.place`); None when the calendar is too short."""
    from .board_search import place

    return place(_board_problem(problem, len(problem.dates)), order)


# -- proposing a plan -------------------------------------------------------------------------


def is_classic(problem: Problem) -> bool:
    return (
        all(u % UNITS == 0 for u in problem.units)
        and all(p.linear or not p.scenes for p in problem.payees)
        and not any(problem.forbidden)
        and not problem.fixed
        and not problem.after
        and not problem.drops_possible
        and len({s.location for s in problem.scenes if s.location}) <= 1  # company moves
    )


def propose(view: ProductionView, request: ScheduleRequest) -> SchedulePlan:
    """The built-in answer to ``castroom_propose_schedule`` (see the module docstring)."""
    started = time.monotonic()
    deadline = started + request.time_limit
    production = view.production
    if not to_shoot(view):
        before = costing.budget_report(view)
        return _plan(view, [], before, before, before.total, True, "nothing to schedule", started)
    needed = sum(span_of(max(1, round(scene_days(s, production) * UNITS))) for s in to_shoot(view))
    slots = needed + max(3, needed // 3) + len(request.locks)
    problem = build_problem(view, request, slots)
    instance, linear, constant = classic_instance(problem)
    # Where CP-SAT must run (constraints, drops, company moves) the exact core only seeds
    # it: CP-SAT gets most of the time, building its model included.
    share = 0.5 if is_classic(problem) and not request.repair else 0.2
    from . import talent_scheduling as classic

    exact = classic.solve(instance, time_limit=max(0.1, request.time_limit * share))
    method = "dynamic programme"
    starts = pack(problem, exact.order)
    if starts is None:  # the constraints push the board further: a calendar twice as long
        problem = build_problem(view, request, 2 * slots)
        instance, linear, constant = classic_instance(problem)
        starts = pack(problem, exact.order)
    bound = _bound(problem, exact, constant, linear)
    optimal_model = False
    seed = starts
    if not (is_classic(problem) and exact.optimal and starts is not None and not request.repair):
        answer = _constrained(problem, request, starts, exact.order, deadline, bound)
        if answer is not None:
            starts = answer.starts
            method = (
                f"local search from the dynamic programme (CP-SAT: {answer.status})"
                if answer.status in ("no better", "too large")
                else "CP-SAT seeded by the dynamic programme and the local search"
            )
            if not request.repair:  # drops are in the model: its bound holds for the budget
                bound = max(bound, answer.lower_bound)
            optimal_model = answer.optimal and request.repair
        elif starts is None or request.repair:
            raise ScheduleError(
                "no board meets the constraints within the calendar: check the locked "
                "days, tied dates and the booked actors' unavailability"
            )
        else:
            method = "dynamic programme, packed around the constraints (CP-SAT: no board in time)"
    assert starts is not None
    days = _board(view, problem, starts, request)
    after = _price(view, days)
    if seed is not None and seed is not starts and not request.repair and feasible(problem, seed):
        # CP-SAT may not complete its hint in time: never return worse than the seed.
        seed_days = _board(view, problem, seed, request)
        seed_after = _price(view, seed_days)
        if seed_after.total < after.total:
            days, after, method = seed_days, seed_after, "dynamic programme (CP-SAT: no better)"
    before = costing.budget_report(view)
    lower = min(after.total, max(0, bound))
    optimal = after.total == lower or optimal_model
    warnings = list(problem.warnings)
    return _plan(view, days, before, after, lower, optimal, method, started, warnings)


def _price(view: ProductionView, days: list[PlanDay]) -> BudgetReport:
    """The budget for a proposed board: the one cost function."""
    board = [costing.BoardDay(date=d.date, scene_ids=d.scene_ids) for d in days]
    return costing.budget_report(view, days=board)


def feasible(problem: Problem, starts: list[int]) -> bool:
    """Whether start slots meet the hard constraints (day length aside: packing keeps it)."""
    for s, k in enumerate(starts):
        if k in problem.forbidden[s] or k + problem.span(s) > len(problem.dates):
            return False
        if s in problem.fixed and problem.fixed[s] != k:
            return False
    return all(starts[b] >= starts[a] + problem.span(a) - 1 for a, b in problem.after)


class ScheduleError(CastroomError):
    """No board meets the constraints."""


#: On a board CP-SAT must solve, the share of its time the local search has first, to
#: hand it a better board than the exact core's (which prices only the day-paid payees,
#: and no drops); on the published instances CP-SAT then proves. A board too large for
#: CP-SAT (:data:`.board_model.TOO_LARGE`) has the local search all the time.
SEARCH_SHARE = 0.5
#: Whether the local search runs (off: the benchmark's same-run baseline).
SEARCH = True


def _constrained(
    problem: Problem,
    request: ScheduleRequest,
    seed: list[int] | None,
    order: list[int],
    deadline: float,
    bound: int,
) -> BoardAnswer | None:
    """The board under the hard constraints, by CP-SAT, from the better of the exact
    core's board (``seed``, packed from ``order``) and what the local search finds from
    it (None: no board found in time)."""
    from .board_model import TOO_LARGE, BoardAnswer, size, solve_board
    from .board_search import anneal

    board = _board_problem(problem, _model_slots(problem, seed))
    board.current = problem.current if request.repair else None
    board.lower_bound = max(0, bound)
    board.hint = seed
    searched = None
    large = size(board) > TOO_LARGE
    if SEARCH and seed is not None and not request.repair:  # repair counts moves; it does not
        share = 1.0 if large else SEARCH_SHARE
        until = time.monotonic() + share * max(0.0, deadline - time.monotonic())
        searched = anneal(board, order, until)
        if searched is not None:
            board.hint = searched[0]
    if large and searched is not None:
        return BoardAnswer(searched[0], searched[1], 0, False, 0, 0.0, "too large")
    answer = solve_board(board, time_limit=max(0.5, deadline - time.monotonic()))
    if searched is not None and (answer is None or answer.cost > searched[1]):
        starts, cost = searched
        proven = answer.lower_bound if answer is not None else 0
        return BoardAnswer(starts, cost, proven, cost <= proven, 0, 0.0, "no better")
    return answer


def _board_problem(problem: Problem, slots: int) -> BoardProblem:
    """The board over the first ``slots`` dates, in the solvers' terms."""
    from .board_model import BoardProblem

    return BoardProblem(
        slots=slots,
        capacity=UNITS,
        units=problem.units,
        payee_scenes=[p.scenes for p in problem.payees],
        tables=[p.table for p in problem.payees],
        forbidden=problem.forbidden,
        fixed=problem.fixed,
        after=problem.after,
        locations=[s.location for s in problem.scenes],
        dates=[(d - problem.dates[0]).days for d in problem.dates[:slots]],
        drop_after=problem.drop_after if problem.drops_possible else 0,
    )


def _model_slots(problem: Problem, seed: list[int] | None) -> int:
    """The shooting dates CP-SAT chooses among: the seed's days and half as many again
    (room to spread out for drops, to regroup locations), not the whole calendar the
    seed was packed on (a model over 200 dates for a 42-day board is too large to find a
    board in time). Locked and tied days stay inside."""
    if seed is None:
        return len(problem.dates)
    ends = [k + problem.span(s) for s, k in enumerate(seed)]
    ends += [k + problem.span(s) for s, k in problem.fixed.items()]
    ends += [k + 1 for k in problem.locked_slots]
    used = max(ends, default=0)
    return min(len(problem.dates), used + max(5, used // 2))


def _bound(
    problem: Problem,
    exact: classic.Result,
    constant: float,
    linear: list[int],
    whole_days: bool = True,
) -> int:
    """A proven lower bound on the cast cost of every board (see the module docstring).
    ``whole_days=False``: the bound before the day-paid payees' fewest whole days were
    counted too (the benchmark's same-run baseline)."""
    from .board_search import fewest_costs

    floors = fewest_costs(_board_problem(problem, len(problem.dates)))
    if problem.drops_possible or not linear:
        return sum(floors)
    # The classic bound is in fractions of a day and for the day-paid payees together:
    # each of them at their fewest whole days may be more (on a board of many short
    # scenes it is: the 150-scene sample without drops, 43.6 M against 41.7 M).
    day_paid = math.ceil(exact.lower_bound / costing.MICRO / UNITS + constant - 1e-6)
    paid_by_day = set(linear)
    others = sum(f for i, f in enumerate(floors) if i not in paid_by_day)
    return max(day_paid, sum(floors[i] for i in linear) if whole_days else 0) + others


def _board(
    view: ProductionView, problem: Problem, starts: list[int], request: ScheduleRequest
) -> list[PlanDay]:
    """Plan days for the start slots: each used slot with its scenes, grouped by location
    within the day, a multi-day scene on each of its days."""
    on: dict[int, list[int]] = {}
    for s, k in enumerate(starts):
        for j in range(k, k + problem.span(s)):
            on.setdefault(j, []).append(s)
    stored = {d.date: d.id for d in costing.ordered_days(view) if d.id not in request.locks}
    rank = {s: n for n, s in enumerate(sorted(range(len(starts)), key=lambda s: (starts[s], s)))}
    days = []
    for k in sorted(on):
        scenes = sorted(on[k], key=lambda s: (problem.scenes[s].location, rank[s]))
        scenes = _respect_order(scenes, problem.after)
        locations = [problem.scenes[s].location for s in scenes if problem.scenes[s].location]
        day_id = problem.locked_slots.get(k) or stored.get(problem.dates[k])
        days.append(
            PlanDay(
                date=problem.dates[k],
                scene_ids=[problem.scenes[s].id for s in scenes],
                shoot_day_id=day_id,
                location=locations[0] if len(set(locations)) == 1 else "",
                locked=k in problem.locked_slots,
            )
        )
    return days


def _respect_order(scenes: list[int], after: list[tuple[int, int]]) -> list[int]:
    """``scenes`` with every (a, b) pair of the day in order (a before b), else as given."""
    out = list(scenes)
    for _ in range(len(out)):
        moved = False
        for a, b in after:
            if a in out and b in out and out.index(a) > out.index(b):
                out.remove(a)
                out.insert(out.index(b), a)
                moved = True
        if not moved:
            break
    return out


def _plan(
    view: ProductionView,
    days: list[PlanDay],
    before: BudgetReport,
    after: BudgetReport,
    lower: int,
    optimal: bool,
    method: str,
    started: float,
    warnings: list[str] | None = None,
) -> SchedulePlan:
    """The plan for ``days``: costs per actor before and after, and how many scenes move."""
    names: dict[str, str] = {}
    for line in before.lines + after.lines:
        names[line.talent_id] = line.talent
    was = {s.id: s.total for s in before.by_talent}
    now = {s.id: s.total for s in after.by_talent}
    per_talent = [
        TalentCost(
            talent_id=t, talent=names.get(t, t), cost_before=was.get(t, 0), cost_after=now.get(t, 0)
        )
        for t in sorted(set(was) | set(now), key=lambda t: (-now.get(t, 0), names.get(t, t)))
    ]
    new_date = {sid: d.date for d in reversed(days) for sid in d.scene_ids}
    moved = 0
    for scene in to_shoot(view):
        day = view.shoot_days.get(scene.shoot_day_id or "")
        if day is None or new_date.get(scene.id) != day.date:
            moved += 1
    return SchedulePlan(
        currency=view.production.currency,
        cost=after.total,
        cost_before=before.total,
        lower_bound=lower,
        optimal=optimal,
        days=days,
        per_talent=per_talent,
        moved=moved,
        method=method,
        seconds=round(time.monotonic() - started, 3),
        warnings=warnings or [],
    )
