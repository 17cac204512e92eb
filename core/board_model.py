"""The constrained board, as a CP-SAT model (OR-Tools; no castroom imports).

Slots are shoot days in date order. Each scene starts on one slot and covers ``span``
consecutive slots (one for a scene of a day or less, which shares its day with others up
to the day's length; a longer scene has its days to itself). Each payee (a deal) works
the slots its scenes cover and is paid for every *used* slot from its first work slot to
its last, at ``tables[p][n]`` for ``n`` paid days: any non-decreasing cost, so day, week
and flat deals, guarantees and fringes are priced exactly as the budget prices them;
with drop/pickup, one gap per payee may go unpaid, as the budget's rule allows.

Hard constraints: slots a scene may not start on (an actor unavailable on a day it
would cover, a locked day), scenes fixed to a slot (locked, tied to a date), scene ``b``
after scene ``a``, day length. Objectives, in strict order of priority: the fewest
scenes moved from ``current`` (``--repair``), then the cast cost, then the fewest
(day, location) pairs (company moves), then the fewest calendar days from the first shoot
day to the last (nothing priced must not spread the board), then the earliest start.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ortools.sat.python import cp_model


#: Variables past which CP-SAT searches from the hinted board without presolving: on the
#: 150-scene sample (48,000 variables after presolve) presolve took all of 17 s and
#: left no board, though the hint was complete and feasible.
LARGE = 20_000
#: Variables past which the scheduler leaves CP-SAT out (:func:`size` estimates them
#: before a model is built): on the 150-scene sample (about 29,000) building the model
#: took seconds and the search then improved on neither board it was hinted with (the
#: exact core's, the local search's), under load it found none at all, and the command
#: overran its time limit by 60 %.
TOO_LARGE = 25_000


@dataclass
class BoardProblem:
    slots: int
    capacity: int  # a day's length in units
    units: list[int]  # each scene's length in units
    payee_scenes: list[list[int]]  # the scenes each payee works in
    tables: list[list[int]]  # tables[p][n]: payee p's cost for n paid days, n = 0..slots
    forbidden: list[set[int]] = field(default_factory=list)  # per scene: start slots refused
    fixed: dict[int, int] = field(default_factory=dict)  # scene -> start slot
    after: list[tuple[int, int]] = field(default_factory=list)  # (a, b): b after a
    locations: list[str] = field(default_factory=list)  # per scene ("" = none)
    current: list[int | None] | None = None  # per scene, for repair: its slot now
    hint: list[int] | None = None  # per scene: a start slot to begin from
    #: Drop/pickup: ``dates`` are the slots' calendar days (from the first), and a payee
    #: may be unpaid, once, across a gap of more than ``drop_after`` of them (0: never).
    dates: list[int] = field(default_factory=list)
    drop_after: int = 0
    #: A proven lower bound on the cost (the exact core's): CP-SAT's own bound is weak,
    #: and with this one it stops as soon as a board reaches it.
    lower_bound: int = 0

    def span(self, scene: int) -> int:
        return max(1, -(-self.units[scene] // self.capacity))


def size(problem: BoardProblem) -> int:
    """About how many variables the model of ``problem`` has: a start literal per scene
    and slot, and per payee and slot three (six with drop/pickup)."""
    per_payee = 6 if problem.drop_after > 0 else 3
    return problem.slots * (len(problem.units) + 1 + per_payee * len(problem.payee_scenes))


@dataclass
class BoardAnswer:
    starts: list[int]  # per scene
    cost: int
    lower_bound: int
    optimal: bool
    moved: int
    seconds: float
    status: str


def solve_board(
    problem: BoardProblem, time_limit: float = 10.0, *, only_hint: bool = False
) -> BoardAnswer | None:
    """The best board CP-SAT finds in ``time_limit`` seconds (building the model counts),
    or None if none is feasible (or none was found in time). ``only_hint``: every
    variable fixed to its hinted value (a check that the hint is a whole, feasible
    solution)."""
    from ortools.sat.python import cp_model

    started = time.monotonic()
    model = cp_model.CpModel()
    starts = _starts(model, problem)
    if starts is None:
        return None
    cover = _cover(problem, starts)
    seed = _Seed(problem) if problem.hint is not None else None
    used = _used(model, problem, cover, seed)
    start_of = [sum(k * v for k, v in options.items()) for options in starts]
    for a, b in problem.after:
        model.add(start_of[b] >= start_of[a] + problem.span(a) - 1)
    costs = [_payee_cost(model, problem, p, cover, used, seed) for p in range(len(problem.tables))]
    cost = sum(costs)
    if problem.lower_bound and not isinstance(cost, int):
        model.add(cost >= problem.lower_bound)
    # The objectives in their order of priority, weighted into one: the scenes moved,
    # then the cost, then the company moves (the span is solved after, by _shortest).
    moved = _moved(problem, starts)
    company = _company(model, problem, cover, seed)
    top = sum(max(t) for t in problem.tables) + 1
    tie = len(company) + 1
    primary = (sum(moved) * top + cost) * tie + sum(company) if moved else cost * tie + sum(company)
    shorter = _span(model, problem, used, seed)
    model.minimize(primary)
    if seed is not None:
        _hint(model, problem, starts, seed)
    solver = _solver(model, started + time_limit, only_hint)
    status = solver.solve(model)
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return None
    optimal = status == cp_model.OPTIMAL
    values = solver
    if optimal and not only_hint:
        values = _shortest(model, solver, primary, shorter, started + time_limit)
    answer = _read(values, costs, moved, (top, tie), int(solver.best_objective_bound), optimal)
    answer.starts = [next(k for k, v in options.items() if values.value(v)) for options in starts]
    answer.seconds = time.monotonic() - started
    answer.status = solver.status_name(status)
    return answer


def _starts(
    model: cp_model.CpModel, problem: BoardProblem
) -> list[dict[int, cp_model.IntVar]] | None:
    """Per scene, a literal per slot it may start on (exactly one is true); None when a
    scene may start on none."""
    slots = range(problem.slots)
    forbidden = problem.forbidden or [set() for _ in problem.units]
    starts: list[dict[int, cp_model.IntVar]] = []
    for s in range(len(problem.units)):
        span = problem.span(s)
        allowed = [k for k in slots if k + span <= problem.slots and k not in forbidden[s]]
        if s in problem.fixed:
            allowed = [k for k in allowed if k == problem.fixed[s]]
        if not allowed:
            return None
        options = {k: model.new_bool_var(f"x{s}_{k}") for k in allowed}
        model.add_exactly_one(options.values())
        starts.append(options)
    return starts


def _cover(
    problem: BoardProblem, starts: list[dict[int, cp_model.IntVar]]
) -> list[dict[int, list[cp_model.IntVar]]]:
    """cover[s][k]: the start literals that put scene s on slot k (at most one is 1)."""
    cover: list[dict[int, list[cp_model.IntVar]]] = []
    for s, options in enumerate(starts):
        span = problem.span(s)
        on: dict[int, list[cp_model.IntVar]] = {}
        for k, var in options.items():
            for j in range(k, k + span):
                on.setdefault(j, []).append(var)
        cover.append(on)
    return cover


def _used(
    model: cp_model.CpModel,
    problem: BoardProblem,
    cover: list[dict[int, list[cp_model.IntVar]]],
    seed: _Seed | None,
) -> list[cp_model.IntVar]:
    """Per slot, whether any scene is shot on it; a day's scenes fit in its length."""
    scenes = range(len(cover))
    used = []
    for k in range(problem.slots):
        load = [(_weight(problem, s), v) for s in scenes for v in cover[s].get(k, [])]
        if load:
            model.add(sum(w * v for w, v in load) <= problem.capacity)
        used.append(_shot_on(model, cover, scenes, k, f"used{k}", seed))
    return used


def _weight(problem: BoardProblem, scene: int) -> int:
    """What a scene takes of a day's length: its units, or the whole day when it is longer
    than a day (it has its days to itself)."""
    return problem.units[scene] if problem.span(scene) == 1 else problem.capacity


def _shot_on(
    model: cp_model.CpModel,
    cover: list[dict[int, list[cp_model.IntVar]]],
    scenes: Iterable[int],
    k: int,
    name: str,
    seed: _Seed | None,
) -> cp_model.IntVar:
    """A literal that is 1 exactly when one of ``scenes`` is shot on slot ``k`` (0 when
    none can be), hinted with whether the seed board shoots one there."""
    scenes = list(scenes)
    literals = [v for s in scenes for v in cover[s].get(k, [])]
    flag = model.new_bool_var(name)
    if literals:
        model.add_max_equality(flag, literals)
    else:
        model.add(flag == 0)
    if seed is not None:
        seed.put(flag, seed.works(scenes, k))
    return flag


def _company(
    model: cp_model.CpModel,
    problem: BoardProblem,
    cover: list[dict[int, list[cp_model.IntVar]]],
    seed: _Seed | None,
) -> list[cp_model.IntVar]:
    """A literal per (slot, location) pair in use: the company moves (with two or more
    locations; none otherwise)."""
    locations = sorted({loc for loc in problem.locations if loc})
    company: list[cp_model.IntVar] = []
    if len(locations) < 2:
        return company
    for k in range(problem.slots):
        for loc in locations:
            # Only the pairs a scene can take: a pair no scene can use is no variable.
            at = [s for s, where in enumerate(problem.locations) if where == loc and k in cover[s]]
            if at:
                company.append(_shot_on(model, cover, at, k, f"loc{k}_{loc}", seed))
    return company


def _moved(
    problem: BoardProblem, starts: list[dict[int, cp_model.IntVar]]
) -> list[cp_model.LinearExpr | int]:
    """For repair: per scene, 1 unless it stays on its current slot (empty otherwise)."""
    if problem.current is None:
        return []
    moved: list[cp_model.LinearExpr | int] = []
    for s, slot in enumerate(problem.current):
        stay = starts[s].get(slot) if slot is not None else None
        moved.append(1 - stay if stay is not None else 1)
    return moved


def _read(
    values: cp_model.CpSolver,
    costs: list[cp_model.IntVar | int],
    moved: list[cp_model.LinearExpr | int],
    weights: tuple[int, int],
    objective_bound: int,
    optimal: bool,
) -> BoardAnswer:
    """The cost, moves and proven bound of the board in ``values`` (starts, time and
    status are the caller's to fill in). ``weights``: the objective's weight of a move
    and of the cost's unit (see solve_board)."""
    top, tie = weights
    cost = int(sum(values.value(c) for c in costs))
    moves = int(sum(values.value(m) for m in moved)) if moved else 0
    # The bound is on the whole objective; the cost's share of it is a bound on the cost
    # only when no scene had to move (repair puts moves first).
    bound = objective_bound // tie
    lower = cost if optimal else (bound - moves * top if moved else bound)
    return BoardAnswer(
        starts=[],
        cost=cost,
        lower_bound=min(cost, max(0, lower)),
        optimal=optimal,
        moved=moves,
        seconds=0.0,
        status="",
    )


def _hint(
    model: cp_model.CpModel,
    problem: BoardProblem,
    starts: list[dict[int, cp_model.IntVar]],
    seed: _Seed,
) -> None:
    """Every variable hinted from the seed board, not the starts alone: left to complete
    the rest (who is paid which day), CP-SAT may find no board at all in time on a large
    production."""
    assert problem.hint is not None
    for s, slot in enumerate(problem.hint):
        for k, var in starts[s].items():
            model.add_hint(var, 1 if k == slot else 0)
    for var, value in seed.values:
        model.add_hint(var, value)


def _solver(model: cp_model.CpModel, deadline: float, only_hint: bool) -> cp_model.CpSolver:
    from ortools.sat.python import cp_model

    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = max(0.1, deadline - time.monotonic())
    solver.parameters.num_workers = 2
    if len(model.proto.variables) > LARGE:  # presolve alone would take the time limit
        solver.parameters.cp_model_presolve = False
    solver.parameters.fix_variables_to_their_hinted_value = only_hint
    solver.parameters.random_seed = 1
    return solver


class _Seed:
    """The value each variable takes on the hinted board, each payee's drop taken where
    the budget takes it (a board the local search built around its drops is hinted at
    its cost, not at the cost of paying every gap)."""

    def __init__(self, problem: BoardProblem) -> None:
        assert problem.hint is not None
        self.problem = problem
        self.covered = [set(range(k, k + problem.span(s))) for s, k in enumerate(problem.hint)]
        self.busy = set().union(*self.covered)  # the slots any scene is shot on
        self.values: list[tuple[cp_model.IntVar, int]] = []

    def works(self, scenes: Iterable[int], k: int) -> bool:
        return any(k in self.covered[s] for s in scenes)

    def drop(self, scenes: Iterable[int]) -> tuple[int, int] | None:
        """The two work slots the budget drops a payee between (the most used slots
        between two work slots more than ``drop_after`` days apart, the earliest of
        equals), or None."""
        problem = self.problem
        scenes = list(scenes)
        work = [k for k in sorted(self.busy) if self.works(scenes, k)]
        best, gap = 0, None
        for x, y in itertools.pairwise(work):
            between = sum(1 for k in self.busy if x < k < y)
            if between > best and problem.dates[y] - problem.dates[x] > problem.drop_after:
                best, gap = between, (x, y)
        return gap

    def put(self, var: cp_model.IntVar, value: int | bool) -> None:
        self.values.append((var, int(value)))


def _shortest(
    model: cp_model.CpModel,
    solver: cp_model.CpSolver,
    primary: cp_model.LinearExprT,
    shorter: cp_model.LinearExprT,
    deadline: float,
) -> cp_model.CpSolver:
    """The last tie-break, once the rest is proven optimal: among boards as good, the
    fewest calendar days from the first shoot day to the last, then the earliest start.
    A second solve from the first one's board (weighting it into one objective made
    CP-SAT prove the span too, and so run to the time limit on boards it proved in a
    second); the first's answer stands if this one finds nothing better in time."""
    from ortools.sat.python import cp_model

    best = int(solver.objective_value)
    model.add(primary <= best)
    model.clear_hints()
    for index in range(len(model.proto.variables)):
        var = model.get_int_var_from_proto_index(index)
        model.add_hint(var, solver.value(var))
    model.minimize(shorter)
    again = cp_model.CpSolver()
    again.parameters.max_time_in_seconds = max(0.1, min(1.0, deadline - time.monotonic()))
    again.parameters.num_workers = 2
    again.parameters.random_seed = 1
    again.parameters.cp_model_presolve = solver.parameters.cp_model_presolve
    found = again.solve(model)
    return again if found in (cp_model.OPTIMAL, cp_model.FEASIBLE) else solver


def _span(
    model: cp_model.CpModel,
    problem: BoardProblem,
    used: list[cp_model.IntVar],
    seed: _Seed | None = None,
) -> cp_model.LinearExprT:
    """The fewest calendar days from the first shoot day to the last, then the earliest
    first day, as one value (see :func:`_shortest`)."""
    dates = problem.dates or list(range(problem.slots))
    width = dates[-1] + 1
    first = model.new_int_var(0, problem.slots - 1, "first_used")
    last = model.new_int_var(0, problem.slots - 1, "last_used")
    for k, flag in enumerate(used):
        model.add(first <= k).only_enforce_if(flag)
        model.add(last >= k).only_enforce_if(flag)
    on_first = model.new_int_var(0, dates[-1], "first_date")
    on_last = model.new_int_var(0, dates[-1], "last_date")
    model.add_element(first, dates, on_first)
    model.add_element(last, dates, on_last)
    if seed is not None:
        days = sorted(seed.busy)
        if days:
            for var, value in ((first, days[0]), (last, days[-1])):
                seed.put(var, value)
            seed.put(on_first, dates[days[0]])
            seed.put(on_last, dates[days[-1]])
    return (on_last - on_first) * width + on_first


def _payee_cost(
    model: cp_model.CpModel,
    problem: BoardProblem,
    p: int,
    cover: list[dict[int, list[cp_model.IntVar]]],
    used: list[cp_model.IntVar],
    seed: _Seed | None = None,
) -> cp_model.IntVar | int:
    """Payee p's cost: the table at the number of used slots from its first work slot to
    its last (both bounds pushed down by the minimisation, held up by the work)."""
    table = problem.tables[p]
    scenes = problem.payee_scenes[p]
    if not scenes:
        return table[0]
    last_slot = problem.slots - 1
    first = model.new_int_var(0, last_slot, f"first{p}")
    last = model.new_int_var(0, last_slot, f"last{p}")
    model.add(first <= last)
    worked = [[v for s in scenes for v in cover[s].get(k, [])] for k in range(problem.slots)]
    dropped = seed.drop(scenes) if seed is not None and problem.drop_after > 0 else None
    gap = _drop_gap(model, problem, p, worked, seed, dropped) if problem.drop_after > 0 else None
    hinted = [k for k in range(problem.slots) if seed.works(scenes, k)] if seed else []
    if seed is not None and hinted:
        seed.put(first, hinted[0])
        seed.put(last, hinted[-1])
    unpaid_hint = range(dropped[0] + 1, dropped[1]) if dropped else range(0)
    paid = []
    for k in range(problem.slots):
        works = worked[k]
        for v in works:
            model.add(first <= k).only_enforce_if(v)
            model.add(last >= k).only_enforce_if(v)
        began = model.new_bool_var(f"b{p}_{k}")  # first <= k
        model.add(first >= k + 1).only_enforce_if(~began)
        ended = model.new_bool_var(f"e{p}_{k}")  # last >= k
        model.add(last <= k - 1).only_enforce_if(~ended)
        day = model.new_bool_var(f"p{p}_{k}")
        if seed is not None and hinted:
            inside = hinted[0] <= k <= hinted[-1]
            seed.put(began, k >= hinted[0])
            seed.put(ended, k <= hinted[-1])
            seed.put(day, inside and k in seed.busy and k not in unpaid_hint)
        unpaid = [~began, ~ended, ~used[k], day]
        if gap is not None:  # a day inside the one drop is not paid
            unpaid.append(gap[k])
        model.add_bool_or(unpaid)
        paid.append(day)
    days = model.new_int_var(0, problem.slots, f"n{p}")
    model.add(days == sum(paid))
    cost = model.new_int_var(0, max(table), f"c{p}")
    model.add_element(days, table, cost)
    if seed is not None and hinted:
        n = sum(1 for k in range(hinted[0], hinted[-1] + 1) if k in seed.busy)
        n -= sum(1 for k in unpaid_hint if k in seed.busy)
        seed.put(days, n)
        seed.put(cost, table[n])
    return cost


def _drop_gap(
    model: cp_model.CpModel,
    problem: BoardProblem,
    p: int,
    works: list[list[cp_model.IntVar]],
    seed: _Seed | None = None,
    hinted: tuple[int, int] | None = None,
) -> list[cp_model.IntVar]:
    """Drop/pickup, once per payee: ``gap[k]`` may be true for the slots strictly between
    two slots ``g1 < g2`` more than ``drop_after`` calendar days apart, none of them
    worked (the budget drops the gap between two work days that saves the most: never
    less than this). ``hinted``: the seed's drop (g1, g2), if it takes one."""
    last_slot = problem.slots - 1
    g1 = model.new_int_var(0, last_slot, f"g1_{p}")
    g2 = model.new_int_var(0, last_slot, f"g2_{p}")
    d1 = model.new_int_var(0, problem.dates[-1], f"d1_{p}")
    d2 = model.new_int_var(0, problem.dates[-1], f"d2_{p}")
    model.add_element(g1, problem.dates, d1)
    model.add_element(g2, problem.dates, d2)
    dropped = model.new_bool_var(f"drop{p}")
    g1_hint, g2_hint = hinted or (0, 0)  # no drop: g1 = g2 = the first slot
    if seed is not None:
        seed.put(g1, g1_hint)
        seed.put(g2, g2_hint)
        seed.put(dropped, hinted is not None)
        seed.put(d1, problem.dates[g1_hint])
        seed.put(d2, problem.dates[g2_hint])
    model.add(d2 - d1 > problem.drop_after).only_enforce_if(dropped)
    gap = []
    for k in range(problem.slots):
        after_g1 = model.new_bool_var(f"a{p}_{k}")  # g1 < k, both ways
        model.add(g1 < k).only_enforce_if(after_g1)
        model.add(g1 >= k).only_enforce_if(~after_g1)
        before_g2 = model.new_bool_var(f"z{p}_{k}")  # k < g2, both ways
        model.add(g2 > k).only_enforce_if(before_g2)
        model.add(g2 <= k).only_enforce_if(~before_g2)
        for v in works[k]:  # nothing worked inside the dropped stretch
            model.add_bool_or([~v, ~dropped, ~after_g1, ~before_g2])
        inside = model.new_bool_var(f"gap{p}_{k}")
        if seed is not None:
            seed.put(after_g1, g1_hint < k)
            seed.put(before_g2, k < g2_hint)
            seed.put(inside, hinted is not None and g1_hint < k < g2_hint)
        model.add_implication(inside, dropped)
        model.add_implication(inside, after_g1)
        model.add_implication(inside, before_g2)
        gap.append(inside)
    return gap
