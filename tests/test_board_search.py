"""The large board's search and its lower bound, against brute force: on small random
boards (fractional and multi-day scenes, unavailable slots, a fixed scene, an order
pair, drop/pickup over a calendar with weekends, day, week-like and guaranteed tables)
every board is tried and priced by the budget's own rule (``costing.hold_count``), and
the bound <= that optimum <= what the search and CP-SAT report."""

from __future__ import annotations

import datetime as dt
import itertools
import time

from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis_profiles import examples

from castroom.core import costing, scheduling
from castroom.core import talent_scheduling as classic
from castroom.core.board_model import BoardProblem, solve_board
from castroom.core.board_search import HOLE, anneal, board_cost, place, work_bound
from castroom.core.contracts import ScheduleRequest
from castroom.core.document import CastDocument
from castroom.core.model import Availability, Candidate, Deal, Entity, Role, Scene, Talent
from castroom.core.view import ProductionView

MONDAY = dt.date(2027, 3, 1)
CAPACITY = 100


@st.composite
def boards(draw: st.DrawFn) -> BoardProblem:
    """A board small enough to try every placement of (at most 6^5 start slots)."""
    scenes = draw(st.integers(2, 5))
    slots = draw(st.integers(3, 6))
    units = [draw(st.sampled_from([25, 40, 50, 60, 100, 150])) for _ in range(scenes)]
    payees = draw(st.integers(1, 3))
    cast = [draw(st.sets(st.integers(0, scenes - 1), min_size=1)) for _ in range(payees)]
    tables = []
    for _ in range(payees):
        rate = draw(st.integers(1, 9)) * 10
        floor = draw(st.integers(0, 3))  # a guarantee, or a week's minimum when larger
        tables.append([rate * max(n, floor) if n else 0 for n in range(slots + 1)])
    forbidden = [draw(st.sets(st.integers(0, slots - 1), max_size=2)) for _ in range(scenes)]
    fixed = {}
    if draw(st.booleans()):
        fixed[draw(st.integers(0, scenes - 1))] = draw(st.integers(0, slots - 1))
    after = []
    if scenes > 2 and draw(st.booleans()):
        a, b = draw(st.lists(st.integers(0, scenes - 1), min_size=2, max_size=2, unique=True))
        after.append((a, b))
    # Slots on weekdays from a Monday, some skipped (a calendar with gaps).
    offsets = sorted(draw(st.sets(st.integers(0, 20), min_size=slots, max_size=slots)))
    dates = [d + 2 * (d // 5) for d in offsets]  # weekday offsets to calendar days
    return BoardProblem(
        slots=slots,
        capacity=CAPACITY,
        units=units,
        payee_scenes=[sorted(c) for c in cast],
        tables=tables,
        forbidden=forbidden,
        fixed=fixed,
        after=after,
        locations=[draw(st.sampled_from(["", "Pier", "Pub"])) for _ in range(scenes)],
        dates=dates,
        drop_after=draw(st.sampled_from([0, 3, 6])),
    )


def meets(problem: BoardProblem, starts: list[int]) -> bool:
    """The hard constraints, checked from scratch."""
    load = [0] * problem.slots
    for s, k in enumerate(starts):
        span = problem.span(s)
        if k + span > problem.slots or k in problem.forbidden[s]:
            return False
        if problem.fixed.get(s, k) != k:
            return False
        for j in range(k, k + span):
            load[j] += problem.units[s] if span == 1 else CAPACITY
    if any(day > CAPACITY for day in load):
        return False
    return all(starts[b] >= starts[a] + problem.span(a) - 1 for a, b in problem.after)


def budget(problem: BoardProblem, starts: list[int]) -> int:
    """The board priced as the budget prices it: its used slots are the shoot days, each
    payee billed work plus hold days (``costing.hold_count``, drops and all)."""
    on = [range(k, k + problem.span(s)) for s, k in enumerate(starts)]
    used = sorted({j for slots in on for j in slots})
    days = [MONDAY + dt.timedelta(days=problem.dates[k]) for k in used]
    total = 0
    for table, scenes in zip(problem.tables, problem.payee_scenes, strict=True):
        work = {used.index(j) for s in scenes for j in on[s]}
        total += table[len(work) + costing.hold_count(days, work, problem.drop_after)]
    return total


def optimum(problem: BoardProblem) -> int | None:
    """The least cost of every board that meets the constraints (None: there is none)."""
    costs = [
        budget(problem, list(starts))
        for starts in itertools.product(range(problem.slots), repeat=len(problem.units))
        if meets(problem, list(starts))
    ]
    return min(costs, default=None)


@settings(max_examples=examples(60))
@given(boards(), st.randoms(use_true_random=False))
def test_placed_boards_meet_the_constraints_and_cost_what_the_budget_says(
    problem: BoardProblem, rng
) -> None:
    order = [*range(len(problem.units)), HOLE, HOLE]
    rng.shuffle(order)
    starts = place(problem, order)
    if starts is None:
        return
    assert meets(problem, starts)
    assert board_cost(problem, starts) == budget(problem, starts)


@settings(max_examples=examples(25))
@given(boards())
def test_bound_is_below_the_optimum_and_the_search_and_cp_sat_above(
    problem: BoardProblem,
) -> None:
    best = optimum(problem)
    if best is None:
        return
    assert work_bound(problem) <= best
    searched = anneal(problem, list(range(len(problem.units))), time.monotonic() + 0.2)
    if searched is not None:
        starts, cost = searched
        assert meets(problem, starts) and cost == budget(problem, starts) >= best
    problem.lower_bound = work_bound(problem)
    problem.hint = searched[0] if searched is not None else None
    answer = solve_board(problem, time_limit=10)
    assert answer is not None  # a board exists
    assert meets(problem, answer.starts) and answer.cost == budget(problem, answer.starts)
    assert answer.lower_bound <= best <= answer.cost
    assert answer.optimal and answer.cost == best  # a board this small is proven


@st.composite
def productions(draw: st.DrawFn) -> CastDocument:
    """A small production: booked actors with day or week deals (a guarantee, a fringe),
    scenes of a quarter to two days with their cast, one actor unavailable some days,
    drop/pickup after 0 (never), 2 or 4 days."""
    scenes = draw(st.integers(2, 4))
    actors = draw(st.integers(1, 3))
    doc = CastDocument.create(
        "Brute", start_date=MONDAY, drop_pickup_days=draw(st.sampled_from([0, 2, 4]))
    )
    entities: list[Entity] = []
    for a in range(actors):
        entities += [
            Talent(id=f"T{a}", name=f"Actor {a}"),
            Role(id=f"R{a}", name=f"Role {a}"),
            Candidate(id=f"C{a}", talent_id=f"T{a}", role_id=f"R{a}", stage="booked"),
            Deal(id=f"D{a}", talent_id=f"T{a}", role_id=f"R{a}", status="signed",
                 rate=draw(st.integers(1, 9)) * 1000,
                 unit=draw(st.sampled_from(["day", "day", "week"])),
                 guaranteed_days=draw(st.integers(0, 2)),
                 fringe_rate=draw(st.sampled_from([None, 0.18]))),
        ]  # fmt: skip
    for s in range(scenes):
        cast = draw(st.sets(st.integers(0, actors - 1), min_size=1))
        entities.append(
            Scene(id=f"S{s}", number=str(s + 1), characters=[f"R{a}" for a in sorted(cast)],
                  duration_days=draw(st.sampled_from([0.25, 0.5, 1.0, 2.0])))
        )  # fmt: skip
    if draw(st.booleans()):
        day = MONDAY + dt.timedelta(days=draw(st.integers(0, 3)))
        entities.append(Availability(id="U0", talent_id="T0", start=day, end=day))
    doc.put_many(entities)
    return doc


@settings(max_examples=examples(12))
@given(productions())
def test_the_schedulers_bound_and_board_bracket_the_optimum(doc: CastDocument) -> None:
    """``castroom schedule``'s answer (the exact core, the local search, CP-SAT, the
    bound) on a whole production, against every board of its calendar priced by the
    budget's rule: bound <= optimum <= cost, and equal when it says optimal."""
    view = ProductionView(doc)
    plan = scheduling.propose(view, ScheduleRequest(time_limit=5))
    # The calendar the scheduler chose among (as propose sizes it).
    units = [
        max(1, round(scheduling.scene_days(s, view.production) * 100)) for s in view.scenes.values()
    ]
    needed = sum(scheduling.span_of(u) for u in units)
    problem = scheduling.build_problem(view, ScheduleRequest(), needed + max(3, needed // 3))
    best = optimum(scheduling._board_problem(problem, len(problem.dates)))
    assert best is not None  # the plan's board is one
    assert plan.lower_bound <= best <= plan.cost
    # The bound before CP-SAT's (the plan's is at most its cost): the exact core's.
    instance, linear, constant = scheduling.classic_instance(problem)
    exact = classic.solve(instance)
    assert scheduling._bound(problem, exact, constant, linear) <= best
    if plan.optimal:
        assert plan.cost == best
