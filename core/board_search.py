"""The board by local search: an order of scenes, placed day by day and priced exactly
(no castroom imports).

On a large board (the 150-scene sample) CP-SAT finds nothing better than its hint within
the time limit, and that hint is the exact core's order, which prices only the payees
paid by the day, and none of their drops. This search works on the order the board is
shot in: each order is placed on the calendar by :func:`place` (the packer the seed uses
too) and priced by :func:`board_cost` as the budget prices a board (every payee's table
at their paid days, the one unpaid gap where the budget drops it), and simulated
annealing moves scenes and segments of the order. A :data:`HOLE` in the order leaves the
calendar empty until more than ``drop_after`` calendar days have passed: a gap every
actor working on both sides of it may be dropped across, which no board without one
allows (unused dates cost nothing).
"""

from __future__ import annotations

import itertools
import math
import random
import time
from collections.abc import Sequence

from .board_model import BoardProblem

#: In an order: leave the calendar empty here for more than ``drop_after`` days.
HOLE = -1
#: Holes offered to the search (it may move them anywhere, or to the end, where they do
#: nothing). On the 150-scene sample, 40 s of annealing from random orders: 86.1 M with
#: none, 85.4 M with one, 80.4 M with two.
HOLES = 2
#: The annealing stops after this many moves per item of the order without a better board.
STALL = 40
#: The annealing's temperature at its start, as a share of the starting board's cost,
#: falling linearly to nothing at the deadline.
HEAT = 0.0005


def place(problem: BoardProblem, order: Sequence[int]) -> list[int] | None:
    """Start slots for scenes shot in ``order`` (scenes to shoot after others moved after
    them), each day filled in turn, a longer scene on days of its own: a scene goes on
    the first slot from the last one used where it fits and may go, fixed scenes on
    their own; after a :data:`HOLE`, on a slot more than ``drop_after`` days after the
    last one used. None when the calendar is too short (or a fixed scene may not go
    where it is fixed)."""
    return _Placer(problem).place(order)


class _Placer:
    """What every placement of one problem shares: spans, day loads, the fixed scenes."""

    def __init__(self, problem: BoardProblem) -> None:
        self.problem = problem
        self.spans = [problem.span(s) for s in range(len(problem.units))]
        # What a scene takes of a day: its units, or the whole day when it is longer.
        self.weights = [
            u if span == 1 else problem.capacity
            for u, span in zip(problem.units, self.spans, strict=True)
        ]
        self.forbidden = problem.forbidden or [set() for _ in problem.units]
        self.before: dict[int, list[int]] = {}
        for a, b in problem.after:
            self.before.setdefault(b, []).append(a)
        self.load = [0] * problem.slots
        self.starts: list[int | None] = [None] * len(problem.units)
        for s, k in problem.fixed.items():
            self._put(self.load, self.starts, s, k)
        # Fixed scenes that overfill a day, or a scene fixed to a day it may not be shot
        # on (as CP-SAT refuses it): no board.
        self.broken = any(day > problem.capacity for day in self.load) or any(
            k in self.forbidden[s] for s, k in problem.fixed.items()
        )
        self.single = all(span == 1 for span in self.spans)  # every scene a day or less
        places = sorted({loc for loc in problem.locations if loc})
        self.places = len(places) if len(places) > 1 else 0  # company moves count from two
        self.place_of = [places.index(loc) if loc else -1 for loc in problem.locations]

    def _put(self, load: list[int], starts: list[int | None], s: int, k: int) -> None:
        starts[s] = k
        for j in range(k, k + self.spans[s]):
            load[j] += self.weights[s]

    def _fits(self, load: list[int], s: int, k: int) -> bool:
        span = self.spans[s]
        if k + span > self.problem.slots or k in self.forbidden[s]:
            return False
        if span == 1:
            return load[k] + self.weights[s] <= self.problem.capacity
        return all(load[j] == 0 for j in range(k, k + span))

    def place(self, order: Sequence[int]) -> list[int] | None:
        problem = self.problem
        if self.broken:
            return None
        load, starts = list(self.load), list(self.starts)
        slots, capacity, spans, weights = problem.slots, problem.capacity, self.spans, self.weights
        before = self.before
        slot, placed = 0, False
        for s in after_first(order, problem.after):
            if s == HOLE:
                slot, placed = (_past_gap(problem, slot), False) if placed else (slot, placed)
                continue
            if starts[s] is not None:
                continue
            k = slot
            for a in before.get(s, ()) if before else ():
                if (k0 := starts[a]) is not None:
                    k = max(k, k0 + spans[a] - 1)
            if spans[s] == 1:  # most scenes: inline, this is the search's inner loop
                forbidden, weight = self.forbidden[s], weights[s]
                while k < slots and (k in forbidden or load[k] + weight > capacity):
                    k += 1
                if k >= slots:
                    return None
                starts[s] = k
                load[k] += weight
            else:
                while k < slots and not self._fits(load, s, k):
                    k += 1
                if k >= slots:
                    return None
                self._put(load, starts, s, k)
            slot, placed = k, True
        return [k for k in starts if k is not None] if None not in starts else None

    def _on(self, starts: Sequence[int]) -> list[tuple[int, ...]]:
        """The slots each scene is shot on."""
        spans = self.spans
        return [
            (k,) if spans[s] == 1 else tuple(range(k, k + spans[s])) for s, k in enumerate(starts)
        ]

    def cost(self, starts: Sequence[int]) -> int:
        """:func:`board_cost`, with the spans worked out once."""
        problem = self.problem
        on = None if self.single else self._on(starts)
        used = sorted(set(starts) if on is None else {j for slots in on for j in slots})
        index = [0] * problem.slots
        for n, k in enumerate(used):
            index[k] = n
        dates = problem.dates or list(range(problem.slots))
        total = 0
        for table, scenes in zip(problem.tables, problem.payee_scenes, strict=True):
            if on is None:
                work = sorted({index[starts[s]] for s in scenes})
            else:
                work = sorted({index[j] for s in scenes for j in on[s]})
            if not work:
                total += table[0]
                continue
            dropped = 0
            if problem.drop_after > 0:
                for x, y in itertools.pairwise(work):
                    if y - x - 1 > dropped and dates[used[y]] - dates[used[x]] > problem.drop_after:
                        dropped = y - x - 1
            total += table[work[-1] - work[0] + 1 - dropped]
        return total

    def company_moves(self, starts: Sequence[int]) -> int:
        """:func:`company_moves`, with the locations numbered once."""
        if not self.places:
            return 0
        places, place_of = self.places, self.place_of
        if self.single:
            return len({k * places + c for k, c in zip(starts, place_of, strict=True) if c >= 0})
        on = self._on(starts)
        return len({j * places + c for s, c in enumerate(place_of) if c >= 0 for j in on[s]})


def _past_gap(problem: BoardProblem, slot: int) -> int:
    """The first slot more than ``drop_after`` calendar days after ``slot`` (the number
    of slots when there is none; ``slot`` itself when nothing is dropped)."""
    if problem.drop_after <= 0 or not problem.dates:
        return slot
    k = slot + 1
    while k < problem.slots and problem.dates[k] - problem.dates[slot] <= problem.drop_after:
        k += 1
    return k


def after_first(order: Sequence[int], after: list[tuple[int, int]]) -> list[int]:
    """``order`` with every scene moved after the scenes it must follow (stable)."""
    if not after:
        return list(order)
    must: dict[int, set[int]] = {}
    for a, b in after:
        must.setdefault(b, set()).add(a)
    out: list[int] = []
    done: set[int] = set()
    waiting = list(order)
    while waiting:
        ready = next((s for s in waiting if must.get(s, set()) <= done), waiting[0])
        waiting.remove(ready)
        out.append(ready)
        done.add(ready)
    return out


def board_cost(problem: BoardProblem, starts: Sequence[int]) -> int:
    """What the budget charges for the board: each payee's table at their paid days,
    the used slots from their first work slot to their last, less the longest run of
    used slots between two work slots more than ``drop_after`` days apart (one drop)."""
    return _Placer(problem).cost(starts)


def fewest(
    units: Sequence[int], capacity: int, scenes: Sequence[int], fixed: dict[int, int] | None = None
) -> int:
    """The fewest days a payee working ``scenes`` can be paid for on any board: their
    scenes' length in days, their longest scene, or the distinct days their scenes are
    fixed to, whichever is most (a day holds at most ``capacity`` of work)."""
    if not scenes:
        return 0
    total = sum(units[s] for s in scenes)
    tied = len({fixed[s] for s in scenes if s in fixed}) if fixed else 0
    longest = max(-(-units[s] // capacity) for s in scenes)
    return max(-(-total // capacity), longest, tied)


def fewest_costs(problem: BoardProblem) -> list[int]:
    """Per payee, a lower bound on their cost on every board, drops or not: their table
    (non-decreasing) at the fewest days they can work."""
    return [
        table[fewest(problem.units, problem.capacity, scenes, problem.fixed)]
        for table, scenes in zip(problem.tables, problem.payee_scenes, strict=True)
    ]


def work_bound(problem: BoardProblem) -> int:
    """A lower bound on every board's cost: every payee at :func:`fewest_costs`."""
    return sum(fewest_costs(problem))


def company_moves(problem: BoardProblem, starts: Sequence[int]) -> int:
    """The (slot, location) pairs in use, with two or more locations (else 0)."""
    return _Placer(problem).company_moves(starts)


def anneal(
    problem: BoardProblem, order: Sequence[int], deadline: float, seed: int = 1
) -> tuple[list[int], int] | None:
    """The best board simulated annealing finds from ``order`` by ``deadline`` (sooner
    once it costs ``problem.lower_bound`` or stops finding better): its start slots and
    cost; None when ``order`` cannot be placed. Cost first, then the fewest company
    moves."""
    rng = random.Random(seed)
    holes = HOLES if problem.drop_after > 0 and problem.dates else 0
    sequence = [s for s in order if s != HOLE] + [HOLE] * holes
    placer = _Placer(problem)
    starts = placer.place(sequence)
    if starts is None:
        return None
    if len(sequence) < 2:
        return starts, placer.cost(starts)
    weight = len(problem.units) * problem.slots + 1  # a company move is worth less than 1

    def value(starts: list[int]) -> int:
        return placer.cost(starts) * weight + placer.company_moves(starts)

    current = value(starts)
    best, best_value = starts, current
    began, heat = time.monotonic(), max(1.0, HEAT * current)
    stall, patience = 0, STALL * len(sequence)
    while (now := time.monotonic()) < deadline and best_value // weight > problem.lower_bound:
        stall += 1
        if stall > patience:  # a small board settles fast: leave CP-SAT the time
            break
        trial = _move(sequence, rng)
        placed = placer.place(trial)
        if placed is None:
            continue
        found = value(placed)
        temperature = heat * (deadline - now) / max(1e-9, deadline - began)
        if found <= current or rng.random() < math.exp((current - found) / max(1e-9, temperature)):
            sequence, current = trial, found
            if found < best_value:
                best, best_value, stall = placed, found, 0
    return best, best_value // weight


def _move(sequence: list[int], rng: random.Random) -> list[int]:
    """A neighbour of ``sequence``: one item moved, two swapped, or a stretch reversed."""
    trial = list(sequence)
    i, j = sorted(rng.sample(range(len(trial)), 2))
    kind = rng.random()
    if kind < 0.4:
        trial.insert(j, trial.pop(i))
    elif kind < 0.7:
        trial[i], trial[j] = trial[j], trial[i]
    else:
        trial[i : j + 1] = trial[i : j + 1][::-1]
    return trial
