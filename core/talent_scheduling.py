"""The classic talent scheduling problem, solved exactly (no castroom imports).

Scenes are shot one after another; scene ``s`` lasts ``durations[s]`` time units and needs
the actors in ``casts[s]`` (a bitset: bit ``a`` set when actor ``a`` is in it); actor ``a``
costs ``costs[a]`` per unit and is paid from the start of their first scene to the end
of their last, idle time included. Find the order of scenes of least total cost.

:func:`solve` is the dynamic programme of de la Banda, Stuckey & Chu ("Solving talent
scheduling with dynamic programming", INFORMS J. Computing 23(1), 2011): the state is the
set of scenes still to shoot; what shooting scene ``s`` next costs depends only on that
set (the actors *on location* are those who appeared in a shot scene and appear in a
remaining one), so the cost of the rest is memoised per set. Around it:

- preprocessing: an actor in one block only, or in every block (the lead in every
  scene), is never idle, so they leave the problem (their pay is fixed); scenes with the
  same cast are shot together in some optimal order, so they merge into one block;
  repeated until nothing changes;
- bounded search with memoisation of exact values and of lower bounds (a state explored
  under a bound it could not beat records that bound), children tried by their bound;
- the first search is bounded by what a quick greedy-and-local-search order achieves
  (the fewest states to the optimum); if it runs out of its share of the time, probes
  search under limits stepping from what is proven towards that order's cost (a probe
  that finds a cost below its limit has found the optimum, one that does not proves its
  limit), reusing what the first memoised, so out of time the bound is still well
  above the work cost; and the order is the best of that first order, the cheapest
  whole order the search went through (the path it took to a state, then that state's
  exact answer) and the greedy one over what the search learnt (its exact values deep
  down, its proven bounds), each polished by local search: at 10 s on film30x10s1 the
  order seen is the optimum (4,003, not proven; the two others 4,075);
- dominance: a block whose cast is exactly the actors on location is shot next
  (it costs no idle time and delays no one); a block ``i`` is not shot next while a
  remaining block ``j`` has ``cast(i) ⊆ cast(j)`` and every actor of ``j`` already
  started or in ``i`` (then ``j`` first is never worse);
- the mirror rule: an order reversed costs the same, so only orders with the block
  three quarters into the seed before its first are searched (the seed's mirror is
  one): on the film-like instances proven 0.49-0.91x the states, never more;
- the relaxation is shaved by the size of its terms before it is rounded up: at money
  scale (``castroom schedule``'s hundredths of a day, millionths of a dollar) they
  cancel to a bound near 0, and float noise must not lift it above the truth;
- the lower bound on the idle cost of the actors on location: each such actor stays
  until their last remaining scene, a weighted-completion-time relaxation solved by
  Smith's rule (scene time split among its on-location actors by cost); where that
  cannot cut a state off, once per state, the order bound (:meth:`_Search.order_bound`:
  the same actors leaving in the best order, each waiting in full through the blocks of
  those who left before it), exact over the subsets of up to 12 of them and 1.5-4x fewer
  states on the film-like 24- and 30-block instances. It sums over the subsets closed
  under "an actor whose remaining blocks are a subset of another's leaves first" only
  (the same bound, fewer steps), and before it, for a state with 8 or more actors on
  location, a filter runs: the order bound without the two cheapest plus the relaxation
  for those two, which cuts about half the states the full one would be run for, in a
  quarter of its steps;
- where the order bound cannot cut a state off either, the unstarted bound
  (:meth:`_Search.unstarted_bound`): the same programme with one actor not yet started
  who shares a block with those on location, in three phases. The order bound
  alone misses what the leaving order costs such an actor: on 150 states sampled from
  film20x8s0's proof the order bound averaged 0.61 of the true idle cost and cut 57, with
  this one 0.71 and 94 (with the costliest such actor). Along any one leaving order the
  phases are a bound above it, for each such actor: it is worked out for the one they put
  highest, and not at all where that is below the limit;
- a greedy leaving order (:meth:`_Search._greedy_leaving`, k^2 steps) costs at least
  what the order bound and the unstarted bound find (each the least over orders): where
  it is below the limit neither can cut the state off, and neither is worked out. On
  film30x10s1's proof it caught 630k of the 664k order-bound runs that did not cut (the
  order bound then cuts 98 % of the states it runs for, 73 % before), and the unstarted
  bound is checked along it on every visit, not worked out in full on revisits: the
  thirteen film-like boards proven in 0.86x the CPU, the same states to 1 %.

Everything is integers: sets are Python ints used as bitsets. The search runs compiled
(``core/_talent.c``, the same programme over 64-bit words, some hundred times faster)
when that extension is built and the reduced problem fits it (at most 64 blocks and 64
actors, costs that cannot overflow); otherwise, and when asked, in Python here.
"""

from __future__ import annotations

import contextlib
import importlib
import itertools
import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import ModuleType

# -- the instance -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Instance:
    """``casts[s]`` is a bitset of actors; ``durations`` and ``costs`` are integers."""

    durations: tuple[int, ...]
    costs: tuple[int, ...]
    casts: tuple[int, ...]
    name: str = ""

    def __post_init__(self) -> None:
        if len(self.durations) != len(self.casts):
            raise ValueError("durations: one per scene")
        if any(d < 0 for d in self.durations) or any(c < 0 for c in self.costs):
            raise ValueError("durations and costs must not be negative")
        if any(cast >> len(self.costs) for cast in self.casts):
            raise ValueError("casts: an actor without a cost")

    @property
    def scenes(self) -> int:
        return len(self.durations)

    def cost(self, order: list[int] | tuple[int, ...]) -> int:
        """Total cost of shooting the scenes in ``order`` (every scene once)."""
        if sorted(order) != list(range(self.scenes)):
            raise ValueError("order: every scene exactly once")
        return sequence_cost(self.durations, self.costs, self.casts, order)

    def work_cost(self) -> int:
        """What the actors cost when they work: the part no order can avoid."""
        return work_cost(self.durations, self.costs, self.casts)


def bits(mask: int) -> list[int]:
    """The set bits of ``mask``, lowest first."""
    out = []
    while mask:
        low = mask & -mask
        out.append(low.bit_length() - 1)
        mask ^= low
    return out


def cast_cost(costs: tuple[int, ...] | list[int], cast: int) -> int:
    return sum(costs[a] for a in bits(cast))


def sequence_cost(
    durations: tuple[int, ...],
    costs: tuple[int, ...],
    casts: tuple[int, ...],
    order: list[int] | tuple[int, ...],
) -> int:
    """Each actor's cost times the time from the start of their first scene to the end of
    their last, for the scenes shot in ``order``."""
    first: dict[int, int] = {}
    last: dict[int, int] = {}
    clock = 0
    for s in order:
        for a in bits(casts[s]):
            first.setdefault(a, clock)
            last[a] = clock + durations[s]
        clock += durations[s]
    return sum(costs[a] * (last[a] - first[a]) for a in first)


def work_cost(durations: tuple[int, ...], costs: tuple[int, ...], casts: tuple[int, ...]) -> int:
    return sum(d * cast_cost(costs, cast) for d, cast in zip(durations, casts, strict=True))


# -- .dzn files (MiniZinc benchmarks, CSPLib prob039) -----------------------------------------

_STATEMENT = re.compile(r"(\w+)\s*=\s*(.*?);", re.S)
_NUMBER = re.compile(r"-?\d+")


def parse_dzn(text: str, name: str = "") -> Instance:
    """A talent-scheduling ``.dzn``: MiniZinc's ``numScenes``/``numActors``/``ia``/``c``/``d``,
    or CSPLib's rehearsal ``num_pieces``/``num_players``/``rehearsal``/``duration`` (every
    player costs 1)."""
    text = re.sub(r"%[^\n]*", "", text)
    values: dict[str, str] = {m.group(1): m.group(2) for m in _STATEMENT.finditer(text)}

    def numbers(key: str) -> list[int]:
        if key not in values:
            raise ValueError(f"{name or 'dzn'}: no {key}")
        body = values[key]
        if body.lstrip().startswith("array2d"):
            body = body[body.index("[") :]  # drop the index sets 1..n, 1..m
        return [int(n) for n in _NUMBER.findall(body)]

    if "numScenes" in values:
        n, m = numbers("numScenes")[0], numbers("numActors")[0]
        matrix, costs, durations = numbers("ia"), numbers("c"), numbers("d")
    elif "num_pieces" in values:
        n, m = numbers("num_pieces")[0], numbers("num_players")[0]
        matrix, durations = numbers("rehearsal"), numbers("duration")
        costs = [1] * m
    else:
        raise ValueError(f"{name or 'dzn'}: not a talent scheduling instance")
    if len(matrix) != n * m or len(costs) != m or len(durations) != n:
        raise ValueError(f"{name or 'dzn'}: sizes do not match numScenes x numActors")
    casts = [0] * n
    for a in range(m):
        for s in range(n):
            if matrix[a * n + s]:
                casts[s] |= 1 << a
    return Instance(tuple(durations), tuple(costs), tuple(casts), name)


# -- preprocessing ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Blocks:
    """The reduced problem: ``members[b]`` are the original scenes of block ``b`` (shot
    together), ``casts`` over the actors kept, and the fixed pay of the actors dropped."""

    durations: tuple[int, ...]
    costs: tuple[int, ...]
    casts: tuple[int, ...]
    members: tuple[tuple[int, ...], ...]
    fixed: int


def reduce(instance: Instance) -> Blocks:
    """Drop actors in one block or in all of them, and merge blocks with the same cast,
    until stable."""
    casts = list(instance.casts)
    members: list[list[int]] = [[s] for s in range(instance.scenes)]
    durations = list(instance.durations)
    fixed = 0
    while True:
        merged: dict[int, int] = {}
        new_casts: list[int] = []
        new_members: list[list[int]] = []
        new_durations: list[int] = []
        for cast, group, d in zip(casts, members, durations, strict=True):
            if cast in merged:
                b = merged[cast]
                new_members[b] += group
                new_durations[b] += d
            else:
                merged[cast] = len(new_casts)
                new_casts.append(cast)
                new_members.append(list(group))
                new_durations.append(d)
        casts, members, durations = new_casts, new_members, new_durations
        seen: dict[int, int] = {}
        for cast in casts:
            for a in bits(cast):
                seen[a] = seen.get(a, 0) + 1
        # In one block only, or in every block: never idle, whatever the order.
        lone = [a for a, count in seen.items() if count == 1 or count == len(casts)]
        if not lone:
            break
        lone_mask = sum(1 << a for a in lone)
        for b, cast in enumerate(casts):
            fixed += durations[b] * cast_cost(instance.costs, cast & lone_mask)
            casts[b] = cast & ~lone_mask
    return Blocks(
        tuple(durations),
        tuple(instance.costs),
        tuple(casts),
        tuple(tuple(g) for g in members),
        fixed,
    )


# -- the dynamic programme --------------------------------------------------------------------


@dataclass
class Result:
    """An order of the original scenes, its cost, a proven lower bound on the optimum, and
    whether the order is proven optimal (``lower_bound == cost``)."""

    order: list[int]
    cost: int
    lower_bound: int
    optimal: bool
    seconds: float
    states: int = 0
    blocks: int = 0
    compiled: bool = False  # the search ran compiled
    seed_cost: int = 0  # what the polished seed order cost (the search's first limit)


#: The most actors on location the order bound runs for (its table has 2^k entries).
ORDER_ACTORS = 12
#: With at least this many actors on location, a filter runs before the order bound: the
#: order bound without the FILTER_LEAVES cheapest, and the relaxation for those. From 8
#: (measured in instructions, callgrind, proving the optimum): film24x10s0 3.50 G, from 6
#: or 7 3.57 G, from 9 3.70 G, never 4.64 G; film30x8s1 (8 actors) 4.85 G, never 5.61 G;
#: leaving out one actor, not two, 1.16x the instructions on film24x10s0.
FILTER_FROM = 8
FILTER_LEAVES = 2
_NONE = math.inf  # no order reaches this phase of that subset


class _Timeout(Exception):
    pass


_talent: ModuleType | None
try:  # the compiled search (an optional extension: built where there is a C compiler)
    _talent = importlib.import_module("._talent", __package__)
except ImportError:  # pragma: no cover - exercised where the build had no compiler
    _talent = None
#: The compiled search's interface spoken here: an extension built from an older
#: core/_talent.c (an editable install not rebuilt since) is not used.
_VERSION = 10
_Compiled = getattr(_talent, "Search", None) if getattr(_talent, "VERSION", 0) == _VERSION else None

#: Whether this install has the compiled search.
COMPILED = _Compiled is not None


class _Probes:
    """The probes of :func:`solve` through the compiled search or :class:`_Search`."""

    def __init__(self, blocks: Blocks, search: _Search, compiled: bool) -> None:
        self.search = search
        self.kernel = None
        used = bits(search.cast_of(search.all))
        idle_at_most = sum(blocks.costs[a] for a in used) * sum(blocks.durations)
        # 64-bit words: at most 64 blocks and 64 actors, and no sum that could overflow
        # or reach 2^62, which marks an unstarted bound's phase no order reaches (its
        # sums come to at most three times ``idle_at_most``).
        fits = len(blocks.casts) <= 64 and len(used) <= 64 and idle_at_most < 2**60
        if compiled and _Compiled is not None and fits:
            # Actors renumbered to those in some block: 64 of them fit a word.
            index = {a: i for i, a in enumerate(used)}
            casts = [sum(1 << index[a] for a in bits(c)) for c in blocks.casts]
            costs = [blocks.costs[a] for a in used]
            self.kernel = _Compiled(
                list(blocks.durations),
                costs,
                casts,
                order_actors=search.order_actors,
                filter_from=search.filter_from,
                closed=search.closed,
                lead=search.lead,
                trail=search.trail,
                unstarted=search.unstarted,
            )

    def probe(self, limit: int, deadline: float) -> int:
        """The least idle cost if below ``limit``, else a proven bound >= ``limit``."""
        if self.kernel is None:
            # A probe cut short by time (an exception through the search) left its path.
            self.search.deadline, self.search.path, self.search.spent = deadline, [], 0
            return self.search.solve(self.search.all, 0, limit)
        value = self.kernel.probe(limit, deadline)
        if value is None:
            raise _Timeout
        return int(value)

    def order(self) -> list[int]:
        return self.search.order() if self.kernel is None else list(self.kernel.order())

    def descend(self) -> list[int]:
        """The greedy order over what the search has learnt (see :func:`greedy`)."""
        return greedy(self.search) if self.kernel is None else list(self.kernel.descend())

    def seen(self) -> list[int]:
        """The cheapest order of all blocks the search has seen ([] before the first)."""
        return list(self.search.seen if self.kernel is None else self.kernel.seen())

    def proven(self) -> int:
        if self.kernel is None:
            return self.search.lower.get(self.search.all, 0)
        return int(self.kernel.proven())

    @property
    def states(self) -> int:
        return self.search.states if self.kernel is None else int(self.kernel.states)


@dataclass
class _Unstarted:
    """The unstarted bound's actor ``u``: its remaining blocks, its cost, and per leaver
    its cost if it shares a block with ``u`` (else 0); see :meth:`_Search.unstarted_bound`."""

    mine: int
    dear: int
    shared: list[int]


@dataclass
class _Leaving:
    """The order bound's actors on location in a state (see :meth:`_Search._leavers`), the sum
    of what they work, and the greedy leaving order, last leaver first, with its cost
    (:meth:`_Search._greedy_leaving`)."""

    own: list[int]
    costs: list[int]
    first: list[int]
    work: int
    order: list[int]
    path: int


#: The unstarted bound's phases [pre, post, stay] of the empty set, and of none reached.
_START: tuple[float, ...] = (0, math.inf, math.inf)
_NO_PHASES: tuple[float, ...] = (math.inf, math.inf, math.inf)


@dataclass
class _Search:
    durations: tuple[int, ...]
    costs: tuple[int, ...]
    casts: tuple[int, ...]
    deadline: float
    order_actors: int = ORDER_ACTORS  # the order bound for at most this many (0: never)
    filter_from: int = 0  # the filter runs with at least this many on location (0: never)
    closed: bool = True  # the order bound over closed subsets only
    # The mirror of an order costs the same: only orders with block ``lead`` before block
    # ``trail`` are searched (-1: every order; see :meth:`children`).
    lead: int = -1
    trail: int = -1
    exact: dict[int, tuple[int, int]] = field(default_factory=dict)  # Q -> (cost, block)
    lower: dict[int, int] = field(default_factory=dict)  # Q -> proven lower bound
    ordered: set[int] = field(default_factory=set)  # Q whose bound has the order bound in
    filtered: set[int] = field(default_factory=set)  # Q the filter was run for
    unstarted: bool = True  # the unstarted bound after the order bound
    joined: set[int] = field(default_factory=set)  # Q the unstarted bound was run for
    states: int = 0
    # The path from the whole set (the blocks shot, in order, and their idle cost), and
    # the cheapest whole order seen (see :meth:`record_seen`).
    path: list[int] = field(default_factory=list)
    spent: int = 0
    seen_cost: float = _NONE
    seen: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        n = len(self.casts)
        self.all = (1 << n) - 1
        # j dominates i when cast(i) is a proper subset of cast(j): candidates per block.
        self.supersets = [
            [j for j in range(n) if j != i and self.casts[i] & ~self.casts[j] == 0]
            for i in range(n)
        ]
        # Unions of casts (and sums of costs) by byte: a set's union is a few lookups.
        self.cast_tables = _byte_tables(list(self.casts), lambda x, y: x | y)
        self.cost_tables = _byte_tables(list(self.costs), lambda x, y: x + y)
        self.bounds: dict[int, int] = {}
        # Each actor's blocks, and durations by byte: the order bound's set arithmetic.
        self.blocks_of = [
            sum(1 << b for b, cast in enumerate(self.casts) if cast >> a & 1)
            for a in range(len(self.costs))
        ]
        self.duration_tables = _byte_tables(list(self.durations), lambda x, y: x + y)
        # Per set of actors on location in a block: its members, their cost, and
        # cost + sum of squares / cost (the bound's correction for splitting a scene).
        self.groups: dict[int, tuple[list[int], int, float]] = {}

    def cast_of(self, remaining: int) -> int:
        cast, tables = 0, self.cast_tables
        for table in tables:
            cast |= table[remaining & 255]
            remaining >>= 8
        return cast

    def cost_of(self, actors: int) -> int:
        return _table_sum(self.cost_tables, actors)

    def bound(self, remaining: int) -> int:
        """A lower bound on the idle cost of the actors on location while ``remaining``
        is shot (see the module docstring); the actors on location follow from the set."""
        hit = self.bounds.get(remaining)
        if hit is None:
            on_location = self.cast_of(self.all & ~remaining) & self.cast_of(remaining)
            hit = self.bounds[remaining] = self._bound(remaining, on_location)
        return hit

    def _bound(self, remaining: int, on_location: int) -> int:
        if not on_location:
            return 0
        durations, casts, groups, costs = self.durations, self.casts, self.groups, self.costs
        # Each actor a on location is a job of weight c_a and processing time
        # sum over their remaining scenes s of d_s * c_a / C_s (C_s: on-location cost of s).
        ratio: dict[int, float] = {}
        correction = 0.0
        rest = remaining
        while rest:
            low = rest & -rest
            rest ^= low
            present = casts[low.bit_length() - 1] & on_location
            if not present:
                continue
            group = groups.get(present)
            if group is None:
                group = groups[present] = _group(costs, present)
            members, total, spread = group
            if not total:
                continue
            d = durations[low.bit_length() - 1]
            share = d / total
            for a in members:
                ratio[a] = ratio.get(a, 0.0) + share
            correction += d * spread
        clock = weighted = 0.0
        for a in sorted(ratio, key=ratio.__getitem__):
            c = costs[a]
            clock += ratio[a] * c
            weighted += c * clock
        lb = weighted - correction / 2.0
        # Float error must never lift the bound above the truth: shave by the size of the
        # terms (not of their difference: at money scale they cancel to near 0), then ceil.
        return max(0, math.ceil(lb - 1e-9 * max(1.0, weighted, correction)))

    def known(self, remaining: int) -> int:
        """What the idle cost of ``remaining`` is known to be at least: its exact value,
        else the larger of its proven bound and :meth:`bound`."""
        hit = self.exact.get(remaining)
        if hit is not None or not remaining:
            return hit[0] if hit is not None else 0
        return max(self.lower.get(remaining, 0), self.bound(remaining))

    def duration_of(self, blocks: int) -> int:
        return _table_sum(self.duration_tables, blocks)

    def _leavers(
        self, remaining: int, on_location: int
    ) -> tuple[list[int], list[int], list[int]] | None:
        """The order bound's actors on location: each one's remaining blocks and cost
        (with ``closed``, those with the same blocks as one, their costs summed), and
        ``first[i]``, who leaves before ``i`` (their blocks a proper subset of ``i``'s);
        None when fewer than two are on location or more than ``order_actors`` remain."""
        own: list[int] = []
        costs: list[int] = []
        seen = 0
        for a in bits(on_location):
            blocks, seen = self.blocks_of[a] & remaining, seen + 1
            if self.closed and blocks in own:  # the same blocks: they leave together
                costs[own.index(blocks)] += self.costs[a]
                continue
            if len(own) == self.order_actors:
                return None
            own.append(blocks)
            costs.append(self.costs[a])
        k = len(own)
        if seen < 2 or k < 2:
            return None
        first = [
            sum(1 << j for j in range(k) if j != i and own[j] & ~own[i] == 0) if self.closed else 0
            for i in range(k)
        ]
        return own, costs, first

    def order_bound(self, remaining: int, on_location: int) -> int:
        """A tighter lower bound on the same idle cost, dearer (``2^k k`` steps for ``k``
        actors on location, so at most :data:`ORDER_ACTORS` of them; 0 beyond): the actors
        on location leave in some order, and the one to leave last of a set ``T`` waited
        through every remaining block of ``T``'s actors that is not its own. The least
        such sum over orders, by a programme over the subsets of those actors.

        With ``closed`` (the default) over fewer subsets, to the same least sum: actors
        with the same remaining blocks leave together (one actor, their costs summed),
        and one whose blocks are a proper subset of another's leaves before it (moving it
        to just before the other never costs more), so only subsets closed under that
        order are summed over."""
        leaving = self._leaving(remaining, on_location)
        if leaving is None:
            return 0
        # Each one's own time is taken off once, at the end (the same for every order).
        return self._order_least(leaving.own, leaving.costs, leaving.first) - leaving.work

    def _leaving(self, remaining: int, on_location: int) -> _Leaving | None:
        """The order bound's actors on location (see :meth:`_leavers`), what they work, and
        the greedy leaving order (:meth:`_greedy_leaving`); None as :meth:`_leavers`."""
        leavers = self._leavers(remaining, on_location)
        if leavers is None:
            return None
        own, costs, first = leavers
        work = sum(c * self.duration_of(b) for c, b in zip(costs, own, strict=True))
        order, path = self._greedy_leaving(own, costs, first)
        return _Leaving(own, costs, first, work, order, path)

    def _greedy_leaving(
        self, own: list[int], costs: list[int], first: list[int]
    ) -> tuple[list[int], int]:
        """A good leaving order, last leaver first, and its sum of each one's cost times the
        time until it leaves (never below the order bound's least, the least such sum):
        the first to leave, then the next, each the one whose new blocks take least time
        per unit of their cost among those nobody must leave before (the lowest on a tie).
        Cheap (k^2 steps to the order bound's 2^k k): where it is below the limit, neither
        the order bound nor the unstarted bound can cut a state off (see :meth:`solve`)."""
        left, done, span, path = (1 << len(own)) - 1, 0, 0, 0
        order = [0] * len(own)
        for t in range(len(own) - 1, -1, -1):
            pick, added = -1, 0
            for i in bits(left):
                if first[i] & left:  # someone who leaves before i is still here
                    continue
                a = self.duration_of(own[i] & ~done)
                if pick < 0 or a * costs[pick] < added * costs[i]:
                    pick, added = i, a
            left &= ~(1 << pick)
            done |= own[pick]
            span += added
            path += costs[pick] * span
            order[t] = pick
        return order, path

    def _order_least(self, own: list[int], costs: list[int], first: list[int]) -> int:
        """The order bound's programme: per subset ``T`` of the leavers, the least sum over
        its orders of each one's cost times the time until it leaves (-1 for a subset
        someone in it must leave after one not in it), over the union of its blocks and
        who in it must leave before another in it (``need``); the whole set's."""
        k = len(own)
        union = [0] * (1 << k)
        need = [0] * (1 << k)
        least = [0] * (1 << k)
        for subset in range(1, 1 << k):
            low = subset & -subset
            lowest = low.bit_length() - 1
            union[subset] = union[subset ^ low] | own[lowest]
            need[subset] = need[subset ^ low] | first[lowest]
            if need[subset] & ~subset:  # someone in it leaves after one not in it
                least[subset] = -1
                continue
            # The last to leave, i, waited through the set's time; not one who leaves
            # before someone else in the set (those are in need).
            span = self.duration_of(union[subset])
            best = -1
            rest = subset & ~need[subset]
            while rest:
                bit = rest & -rest
                rest ^= bit
                i = bit.bit_length() - 1
                value = least[subset ^ bit] + costs[i] * span
                if best < 0 or value < best:
                    best = value
            least[subset] = best
        return least[-1]

    def filter_bound(self, remaining: int, on_location: int) -> int:
        """A cheaper bound run first (with ``filter_from``): with at least that many actors
        on location, the order bound over all but the :data:`FILTER_LEAVES` cheapest plus
        the relaxation over those, each a bound on its own actors' part of the idle cost,
        in a quarter of the order bound's steps; 0 with fewer actors on location."""
        actors = bits(on_location)
        if len(actors) < self.filter_from:
            return 0
        actors.sort(key=lambda a: (-self.costs[a], a))  # the costliest; the lower on a tie
        top = sum(1 << a for a in actors[: len(actors) - FILTER_LEAVES])
        return self.order_bound(remaining, top) + self._bound(remaining, on_location & ~top)

    def unstarted_bound(
        self, remaining: int, on_location: int, unstarted: int, limit: int = -1
    ) -> int:
        """A bound on the idle cost of the actors on location and of one actor ``u`` not
        started yet, together (the order bound's actors alone miss most of what their
        order costs those still to start): ``u`` is one of ``unstarted`` in a remaining
        block with one on location. As in the order bound, those on location
        leave one after another, each at least when the blocks of all who left so far are
        shot; the first to leave who shares a block with ``u`` leaves after ``u`` started.
        Until ``u`` has shot its last block, each later leaver's new blocks without ``u``
        are shot inside ``u``'s stay (``u`` waits through them) or before it started (then
        every sharer gone so far waits through them): the cheaper of the two is counted.
        The leaver during whose stretch ``u`` finishes waited through ``u``'s blocks none
        who left so far is in. The least over orders, by the order bound's programme over
        subsets with three phases (no sharer gone; ``u`` still there; ``u`` done); 0
        without such a ``u``.

        With ``limit`` >= 0, ``u`` is the one whose phases along the order the order bound
        finds best come highest (a bound above this one), and -1 is returned when that is
        below ``limit`` (this one cannot cut the state off either, so it is not worked
        out); without, the costliest."""
        leaving = self._leaving(remaining, on_location)
        return 0 if leaving is None else self._unstarted(remaining, unstarted, leaving, limit)

    def _unstarted(self, remaining: int, unstarted: int, leaving: _Leaving, limit: int) -> int:
        """:meth:`unstarted_bound` for the leavers ``leaving``."""
        own, costs, first = leaving.own, leaving.costs, leaving.first
        located = 0
        for blocks in own:
            located |= blocks
        sharing = [a for a in bits(unstarted) if self.blocks_of[a] & located]
        if not sharing:
            return 0
        work = leaving.work
        if limit >= 0:
            order = leaving.order
            shapes = [self._shape(a, remaining, own, costs) for a in sharing]
            along = [self._unstarted_path(shape, own, costs, order) for shape in shapes]
            highest = max(along)
            if highest - work < limit:
                return -1
            u = sharing[along.index(highest)]  # the lowest actor on a tie
        else:
            u = max(sharing, key=lambda a: (self.costs[a], -a))  # the lowest on a tie
        shape = self._shape(u, remaining, own, costs)
        mine = shape.mine
        full = (1 << len(own)) - 1
        union, need, gone = [0] * (full + 1), [0] * (full + 1), [0] * (full + 1)
        table = [list(_START)] + [list(_NO_PHASES) for _ in range(full)]
        for subset in range(1, full + 1):
            low = subset & -subset
            lowest = low.bit_length() - 1
            union[subset] = union[subset ^ low] | own[lowest]
            need[subset] = need[subset ^ low] | first[lowest]
            gone[subset] = gone[subset ^ low] + shape.shared[lowest]
            if need[subset] & ~subset:  # someone in it leaves after one not in it
                continue
            span = self.duration_of(union[subset])
            late = self.duration_of(mine & ~union[subset])
            for i in bits(subset & ~need[subset]):
                was = subset ^ 1 << i
                charge = min(shape.dear, gone[was])
                step = (i, costs[i], own[i], union[was], span, late, charge)
                self._unstarted_step(shape, table[was], table[subset], *step)
        return max(0, int(min(table[full][1:])) - work)  # every order ends in post or stay

    def _shape(self, u: int, remaining: int, own: list[int], costs: list[int]) -> _Unstarted:
        mine = self.blocks_of[u] & remaining
        shared = [c if b & mine else 0 for c, b in zip(costs, own, strict=True)]
        return _Unstarted(mine, self.costs[u], shared)

    def _unstarted_path(
        self, shape: _Unstarted, own: list[int], costs: list[int], order: list[int]
    ) -> float:
        """The unstarted bound's phases along one order of the leavers (``order``, last
        leaver first): one order's, so at least the least over orders."""
        at, done, gone = list(_START), 0, 0
        for i in reversed(order):
            after = done | own[i]
            span, late = self.duration_of(after), self.duration_of(shape.mine & ~after)
            step = (i, costs[i], own[i], done, span, late, min(shape.dear, gone))
            at = self._unstarted_step(shape, at, list(_NO_PHASES), *step)
            done, gone = after, gone + shape.shared[i]
        return min(at[1:])

    def _unstarted_step(
        self,
        shape: _Unstarted,
        was: list[float],
        into: list[float],
        i: int,
        cost: int,
        own: int,
        before: int,
        span: int,
        late: int,
        charge: int,
    ) -> list[float]:
        """Leaver ``i`` after a set in phases ``was`` ([pre, post, stay]; the blocks of
        its leavers ``before``; ``charge`` per unit of ``i``'s new blocks without ``u``,
        the cheaper of ``u`` and the sharers in it), folded into ``into`` (returned)."""
        base = cost * span
        ends = base + cost * late  # u finishes in i's stretch
        if was[0] < _NONE:
            if own & shape.mine:  # i shares a block with u: u started before i left
                into[2] = min(into[2], was[0] + base)
                into[1] = min(into[1], was[0] + ends)
            else:
                into[0] = min(into[0], was[0] + base)
        if was[2] < _NONE:
            fresh = self.duration_of(own & ~before & ~shape.mine)
            into[2] = min(into[2], was[2] + base + charge * fresh)
            into[1] = min(into[1], was[2] + ends)
        if was[1] < _NONE:
            into[1] = min(into[1], was[1] + base)
        return into

    def solve(self, remaining: int, before: int, limit: int) -> int:
        """The least idle cost to shoot ``remaining`` after the blocks not in it (whose
        actors are ``before``) if below ``limit``; otherwise a lower bound >= ``limit``."""
        if remaining == 0:
            return 0
        hit = self.exact.get(remaining)
        if hit is not None:
            return hit[0]
        self.states += 1
        if not self.states & 1023 and time.monotonic() > self.deadline:
            raise _Timeout
        on_location = before & self.cast_of(remaining)
        known = max(self.lower.get(remaining, 0), self.bound(remaining))
        if known < limit and self.filter_from and remaining not in self.filtered:
            # The filter first, once: most states the dearer bound is run for, it cuts.
            self.filtered.add(remaining)
            known = max(known, self.filter_bound(remaining, on_location))
        if known < limit and self.order_actors and remaining not in self.joined:
            known = max(known, self._dearer(remaining, before, on_location, known, limit))
        if known >= limit:
            self.lower[remaining] = known
            return known
        # Children by what they are known to cost at least (idle now + the bound, or the
        # exact value, after): the most promising first, and the rest cut off at once.
        exact, lower = self.exact, self.lower
        ranked = []
        for _, idle, b in self.children(remaining, before, on_location):
            rest = remaining & ~(1 << b)
            done = exact.get(rest)
            after = done[0] if done is not None else max(lower.get(rest, 0), self.bound(rest))
            ranked.append((idle + after, idle, b))
        ranked.sort()
        best, best_block = limit, -1
        floor = None  # the least lower bound over children that did not beat ``best``
        for quick, idle, b in ranked:
            if quick >= best:
                floor = quick if floor is None else min(floor, quick)
                break  # sorted: every later child is at least as costly
            rest = remaining & ~(1 << b)
            child_before = before | self.casts[b]
            self.path.append(b)
            self.spent += idle
            value = idle + self.solve(rest, child_before, best - idle)
            self.spent -= idle
            self.path.pop()
            if value < best:
                self.record_seen(b, rest, self.spent + value)
                best, best_block = value, b
            else:
                floor = value if floor is None else min(floor, value)
        if best_block >= 0:
            self.exact[remaining] = (best, best_block)
            return best
        proven = max(known, limit if floor is None else floor)
        self.lower[remaining] = proven
        return proven

    def record_seen(self, b: int, rest: int, cost: int) -> None:
        """The path so far, block ``b``, then the exact answer of ``rest`` (a value below
        its limit is exact): a whole order of idle ``cost``, kept when the cheapest seen.
        Out of time, the search has often been through an order better than any it can
        rebuild from its memo (on film30x10s1 at 10 s, the optimum)."""
        if cost >= self.seen_cost:
            return
        self.seen, self.seen_cost = [*self.path, b, *self.exact_order(rest)], cost

    def _dearer(self, remaining: int, before: int, on_location: int, known: int, limit: int) -> int:
        """The order bound, then the unstarted bound, for a state the cheaper bounds could not
        cut off (``known`` below ``limit``), each kept as its bound; the larger of ``known``
        and them. Neither is ever above what the greedy leaving order costs them: where that
        is below the limit they cannot cut the state off and are not worked out (again on a
        later visit under a higher limit). The order bound at most once; ``joined``: both
        are in (the unstarted bound is never below the order bound)."""
        leaving = self._leaving(remaining, on_location)
        if leaving is None:
            self.joined.add(remaining)  # the order bound has no actors: both are 0
            return known
        if remaining not in self.ordered and leaving.path - leaving.work >= limit:
            self.ordered.add(remaining)
            tighter = self._order_least(leaving.own, leaving.costs, leaving.first) - leaving.work
            self.bounds[remaining] = max(self.bounds[remaining], tighter)
            known = max(known, tighter)
        if known < limit and self.unstarted:
            # Where the order bound could not cut either: with one actor still to start.
            tighter = self._unstarted(remaining, self.cast_of(remaining) & ~before, leaving, limit)
            if tighter >= 0:
                self.joined.add(remaining)
                self.bounds[remaining] = max(self.bounds[remaining], tighter)
                known = max(known, tighter)
        return known

    def children(self, remaining: int, before: int, on_location: int) -> list[tuple[int, int, int]]:
        """The blocks worth shooting next, cheapest (idle now + bound after) first.

        With ``lead`` and ``trail``: ``trail`` not while ``lead`` is still to shoot (the
        mirror of any order has them the other way round, at the same cost). The two
        dominance rules below move the block they pick earlier and the block they skip
        later; so that no move puts ``trail`` before ``lead``, ``trail`` picks nothing
        while ``lead`` is left, and ``lead`` is not skipped while ``trail`` is left."""
        casts = self.casts
        choices = bits(remaining)
        lead_left = self.lead >= 0 and remaining >> self.lead & 1
        trail_left = self.trail >= 0 and remaining >> self.trail & 1
        if lead_left:
            choices = [b for b in choices if b != self.trail]
        for b in choices:
            if casts[b] == on_location:  # forced: nobody waits, nobody starts early
                return [(0, 0, b)]
        out = []
        for b in choices:
            cast = casts[b]
            dominated = False
            for j in () if b == self.lead and trail_left else self.supersets[b]:
                if j == self.trail and lead_left:
                    continue
                if remaining >> j & 1 and casts[j] & ~(before | cast) == 0:
                    dominated = True
                    break
            if dominated:
                continue
            idle = self.durations[b] * self.cost_of(on_location & ~cast)
            out.append((idle, idle, b))
        out.sort()
        return out

    def order(self) -> list[int]:
        return self.exact_order(self.all)

    def exact_order(self, remaining: int) -> list[int]:
        """The blocks of ``remaining``'s exact answer, in order."""
        out = []
        while remaining:
            _, b = self.exact[remaining]
            out.append(b)
            remaining &= ~(1 << b)
        return out


def _group(costs: tuple[int, ...], actors: int) -> tuple[list[int], int, float]:
    members = bits(actors)
    total = sum(costs[a] for a in members)
    squares = sum(costs[a] * costs[a] for a in members)
    return members, total, (total + squares / total) if total else 0.0


def _table_sum(tables: list[list[int]], mask: int) -> int:
    """The sum over the set bits of ``mask`` of what :func:`_byte_tables` summed."""
    total = 0
    for table in tables:
        total += table[mask & 255]
        mask >>= 8
    return total


def _byte_tables(values: list[int], join: Callable[[int, int], int]) -> list[list[int]]:
    """For each byte of a bitset over ``values``: the join of the values its bits select."""
    tables = []
    for base in range(0, max(len(values), 1), 8):
        chunk = values[base : base + 8]
        table = [0] * 256
        for byte in range(1, 256):
            low = byte & -byte
            index = low.bit_length() - 1
            value = chunk[index] if index < len(chunk) else 0
            table[byte] = join(table[byte ^ low], value)
        tables.append(table)
    return tables


def greedy(search: _Search) -> list[int]:
    """A quick good order: repeatedly the block with least idle now plus what is known
    after: the bound, and once the search has run, its exact values and proven bounds."""
    remaining, before, out = search.all, 0, []
    while remaining:
        kids = search.children(remaining, before, before & search.cast_of(remaining))
        scored = [(idle + search.known(remaining & ~(1 << b)), b) for _, idle, b in kids]
        b = min(scored)[1]
        out.append(b)
        before |= search.casts[b]
        remaining &= ~(1 << b)
    return out


def _block_cost(blocks: Blocks, order: list[int]) -> int:
    """Idle + work cost of the kept actors for a block order."""
    return sequence_cost(blocks.durations, blocks.costs, blocks.casts, order)


def moves(blocks: Blocks, order: list[int], i: int) -> list[int]:
    """What the order costs (as :func:`_block_cost`) with its ``i``-th block taken out and
    put back at each place ``j`` of the rest (before its ``j``-th block; at the end for
    the last ``j``): per actor, the span changes only by where the block lands against
    their first and last block in the rest, so all places cost one pass over the actors
    each, not one over the whole order (10x fewer steps on 30 blocks)."""
    rest = order[:i] + order[i + 1 :]
    moved, durations, casts, costs = order[i], blocks.durations, blocks.casts, blocks.costs
    d = durations[moved]
    starts = list(itertools.accumulate((durations[b] for b in rest), initial=0))
    first: dict[int, int] = {}
    last: dict[int, int] = {}
    for p, b in enumerate(rest):
        for a in bits(casts[b]):
            first.setdefault(a, p)
            last[a] = p
    mine = casts[moved]
    alone = sum(costs[a] for a in bits(mine) if a not in first) * d  # only in the block
    out = []
    for j in range(len(rest) + 1):
        at = starts[j]
        total = alone
        for a, f in first.items():
            lo, hi = starts[f], starts[last[a] + 1]
            if f < j <= last[a]:  # inside their span: they wait through it
                span = hi - lo + d
            elif not mine >> a & 1:  # outside it and not in it: shifted, not longer
                span = hi - lo
            elif j <= f:  # in it, before their first: it starts their span
                span = hi + d - at
            else:  # in it, after their last: it ends their span
                span = at + d - lo
            total += costs[a] * span
        out.append(total)
    return out


def improve(blocks: Blocks, order: list[int], deadline: float) -> list[int]:
    """Local search (move one block elsewhere) until no move helps or time runs out: the
    first move that helps, in the order of ``itertools.permutations(range(n), 2)``, then
    again from the start (each block's moves priced at once by :func:`moves`)."""
    best = _block_cost(blocks, order)
    improved = True
    while improved and time.monotonic() < deadline:
        improved = False
        for i in range(len(order)):
            costs = moves(blocks, order, i)
            j = next((j for j, cost in enumerate(costs) if j != i and cost < best), -1)
            if j >= 0:
                block, best, improved = order[i], costs[j], True
                order = order[:i] + order[i + 1 :]
                order.insert(j, block)
                break
    return order


def solve(
    instance: Instance,
    time_limit: float = 10.0,
    compiled: bool = True,
    order_bound: bool = True,
    filter_bound: bool = True,
    closed: bool = True,
    mirror: bool = True,
    unstarted: bool = True,
) -> Result:
    """The optimal order, proven, or (out of time) the best order found with a lower bound.
    ``compiled=False``: the search in Python even where the compiled one is built; the
    benchmark's baselines: ``order_bound=False`` without the order bound (the relaxation
    alone), ``filter_bound=False`` without the filter before it, ``closed=False`` the
    order bound over every subset of the actors on location, ``mirror=False`` every order
    searched (not only those with the seed's three-quarters block before its first)."""
    started = time.monotonic()
    deadline = started + max(0.0, time_limit)
    blocks = reduce(instance)
    search = _Search(
        blocks.durations,
        blocks.costs,
        blocks.casts,
        deadline=deadline,
        order_actors=ORDER_ACTORS if order_bound else 0,
        filter_from=FILTER_FROM if order_bound and filter_bound else 0,
        closed=closed,
        unstarted=order_bound and unstarted,
    )
    work = work_cost(blocks.durations, blocks.costs, blocks.casts)
    constant = work + blocks.fixed

    def expand(block_order: list[int]) -> list[int]:
        return [s for b in block_order for s in blocks.members[b]]

    seed = greedy(search) if blocks.casts else []
    # A tight first bound prunes most of the search: polish the greedy order briefly.
    seed = improve(blocks, seed, started + min(0.5, time_limit / 20))
    if mirror and len(seed) > 1:
        # An order and its mirror cost the same: search only those with the block three
        # quarters into the seed before its first (the seed's mirror among them). The
        # bound draws the search to the seed's opening, where this cuts most. States to
        # the optimum on the ten film-like instances proven (film30 x8/x10/x12, film24,
        # film20): 0.49-0.91x those with every order, never more; the middle block
        # instead: 0.49-1.27x (1.27x on film30x12s0), 4 % more states in all.
        search.lead, search.trail = seed[3 * len(seed) // 4], seed[0]
    seed_idle = _block_cost(blocks, seed) - work
    probes = _Probes(blocks, search, compiled)
    lo = 0  # proven: no order idles less
    order: list[int] | None = [] if not blocks.casts else None
    idle = 0
    try:
        # First the search bounded by the seed (the bounded programme of de la Banda et
        # al.): below a limit the seed beats, it finds the optimum with the fewest states.
        # It has most of the time; what it memoised (exact values, proven bounds) serves
        # what follows if it runs out.
        if order is None:
            idle = probes.probe(seed_idle + 1, started + 0.7 * max(0.0, time_limit))
            order = probes.order()
    except _Timeout:
        pass
    try:
        # Out of that time: probes a quarter of the way from what is proven to what the
        # seed achieves: each finds the optimum (a value below its limit is exact) or
        # proves more, so out of time there is a bound well above the work cost.
        while order is None:
            limit = lo + max(1, (seed_idle + 1 - lo) // 4) if seed_idle - lo > 1 else seed_idle + 1
            value = probes.probe(limit, deadline)
            if value < limit:
                idle, order = value, probes.order()
            else:
                lo = max(lo, value)
    except _Timeout:
        pass
    if order is not None:
        return Result(
            expand(order),
            constant + idle,
            constant + idle,
            True,
            time.monotonic() - started,
            probes.states,
            len(blocks.casts),
            probes.kernel is not None,
            constant + seed_idle,
        )
    # Out of time: the best of the seed, the cheapest order the search went through and
    # the greedy order over what it learnt (exact values deep down, proven bounds), each
    # polished by local search, and what is proven below it.
    polished = time.monotonic() + min(1.0, max(0.1, time_limit / 10))
    orders = [improve(blocks, seed, polished)]  # the seed first: it is polished already
    seen = probes.seen()
    if seen:
        orders.append(improve(blocks, seen, polished))
    with contextlib.suppress(MemoryError):  # the compiled memo may be full
        orders.append(improve(blocks, probes.descend(), polished))
    order = min(orders, key=lambda o: _block_cost(blocks, o))
    proven = max(lo, probes.proven())
    cost = _block_cost(blocks, order) + blocks.fixed
    lower_bound = min(cost, constant + proven)
    return Result(
        expand(order),
        cost,
        lower_bound,
        lower_bound == cost,
        time.monotonic() - started,
        probes.states,
        len(blocks.casts),
        probes.kernel is not None,
        constant + seed_idle,
    )
