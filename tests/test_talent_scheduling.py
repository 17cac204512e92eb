"""The exact talent-scheduling solver against published optima and brute force."""

from __future__ import annotations

import itertools
import math
import os
import random
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from castroom.core import talent_scheduling
from castroom.core.talent_scheduling import (
    COMPILED,
    FILTER_LEAVES,
    ORDER_ACTORS,
    Blocks,
    Instance,
    _block_cost,
    _Search,
    bits,
    improve,
    moves,
    parse_dzn,
    reduce,
    solve,
)

_talent = talent_scheduling._talent

DATA = Path(__file__).parent / "data" / "talent_scheduling"
#: Published optima (tests/data/talent_scheduling/SOURCES.md names where each is from).
OPTIMA = {"tiny": 29, "small": 54, "concert": 111, "film105": 849, "rehearsal_smith": 109}


def load(name: str) -> Instance:
    return parse_dzn((DATA / f"{name}.dzn").read_text(), name)


#: Both searches where this install has the compiled one (CI builds it: gcc is there).
SEARCHES = [True, False] if COMPILED else [False]


def test_the_compiled_search_is_built_on_ci() -> None:
    """CI has a C compiler, so the optional extension must have been built there: a
    silent fall back to the Python search would only show as a slow benchmark."""
    if os.environ.get("CI"):
        assert COMPILED


@pytest.mark.parametrize("compiled", SEARCHES)
@pytest.mark.parametrize("name", sorted(OPTIMA))
def test_published_optimum_is_found_and_proven(name: str, compiled: bool) -> None:
    instance = load(name)
    result = solve(instance, time_limit=30, compiled=compiled)
    assert result.compiled is compiled
    assert result.optimal
    assert result.cost == result.lower_bound == OPTIMA[name]
    assert instance.cost(result.order) == result.cost  # the order really costs that


#: Film-like instances made with a fixed seed (make_film_like.py beside them); their
#: optima are as proven here by both searches (nothing published to compare with).
FILM_LIKE = {"film16x8s0": 985, "film20x8s0": 1382}


#: The Python search on the smaller one only: the larger takes it seconds.
FILM_CASES = [("film16x8s0", c) for c in SEARCHES] + [("film20x8s0", True)] * COMPILED


@pytest.mark.parametrize(("name", "compiled"), FILM_CASES)
def test_film_like_instances_are_proven(name: str, compiled: bool) -> None:
    """16 and 20 scene blocks (every scene its own block), proven optimal."""
    instance = load(name)
    result = solve(instance, time_limit=30, compiled=compiled)
    assert result.blocks == instance.scenes
    assert result.optimal and result.cost == result.lower_bound == FILM_LIKE[name]
    assert instance.cost(result.order) == result.cost


@pytest.mark.parametrize("compiled", SEARCHES)
def test_without_the_order_bound_the_same_optimum(compiled: bool) -> None:
    """The benchmark's baseline (the relaxation alone) still proves the optimum."""
    instance = load("film16x8s0")
    result = solve(instance, time_limit=30, compiled=compiled, order_bound=False)
    assert result.optimal and result.cost == FILM_LIKE["film16x8s0"]
    assert instance.cost(result.order) == result.cost


@pytest.mark.skipif(not COMPILED, reason="the compiled search is not built here")
def test_the_compiled_search_refuses_an_order_bound_it_has_no_table_for() -> None:
    with pytest.raises(ValueError, match="order_actors: 0 to 12"):
        _talent.Search([1], [1], [1], order_actors=ORDER_ACTORS + 1)
    with pytest.raises(ValueError, match="filter_from: 0, or more than 2"):
        _talent.Search([1], [1], [1], filter_from=FILTER_LEAVES)


@pytest.mark.skipif(not COMPILED, reason="the compiled search is not built here")
@pytest.mark.parametrize(("lead", "trail"), [(0, 0), (0, -1), (-1, 1), (0, 2), (-2, -1)])
def test_the_compiled_search_refuses_a_mirror_pair_that_is_not_two_blocks(
    lead: int, trail: int
) -> None:
    with pytest.raises(ValueError, match="lead, trail: two different blocks, or both -1"):
        _talent.Search([1, 1], [1], [1, 1], lead=lead, trail=trail)


def test_parse_both_formats() -> None:
    film = load("film105")
    assert (film.scenes, len(film.costs)) == (18, 8)
    assert film.costs[5] == 40 and film.durations[0] == 2
    assert film.casts[0] == 0b1000010  # actors 2 and 7 (1-based) are in scene 1
    smith = load("rehearsal_smith")
    assert smith.costs == (1,) * 5 and smith.durations[-1] == 6
    # The CSPLib page's example: the pieces in the given order wait 49 units in all.
    assert smith.cost(list(range(9))) - smith.work_cost() == 49


def test_parse_refuses_what_is_not_an_instance() -> None:
    with pytest.raises(ValueError, match="not a talent scheduling instance"):
        parse_dzn("x = 3;")
    with pytest.raises(ValueError, match="sizes do not match"):
        parse_dzn("numScenes = 2; numActors = 1; ia = [|1|]; c = [1]; d = [1,1];")


def test_reduce_merges_same_cast_and_drops_lone_actors() -> None:
    # Actor 2 (only in scene 0) and actor 3 (only in scene 3) are never idle: their pay
    # is fixed. Without them scenes 0-2 share a cast and merge; then actor 1 is in one
    # block only, and so on until one block is left and the whole cost is fixed.
    instance = Instance((3, 1, 2, 1), (1, 1, 5, 2), (0b0111, 0b0011, 0b0011, 0b1001))
    blocks = reduce(instance)
    assert blocks.casts == (0,) and sorted(blocks.members[0]) == [0, 1, 2, 3]
    assert blocks.fixed == 3 * 5 + 1 * 2 + 6 * 1 + 7 * 1
    assert solve(instance).cost == blocks.fixed == instance.cost([0, 1, 2, 3])


def test_an_actor_in_every_scene_leaves_the_problem() -> None:
    """The lead in every scene of film105 is never idle: paid for the whole shoot in any
    order, they leave the search, and the optimum moves by exactly their pay."""
    film = load("film105")
    lead = 1 << len(film.costs)
    with_lead = Instance(film.durations, (*film.costs, 100), tuple(c | lead for c in film.casts))
    blocks = reduce(with_lead)
    assert not any(cast & lead for cast in blocks.casts)
    assert blocks.fixed >= 100 * sum(film.durations)
    result = solve(with_lead, time_limit=30)
    assert result.optimal and result.cost == OPTIMA["film105"] + 100 * sum(film.durations)
    assert with_lead.cost(result.order) == result.cost


def test_out_of_time_gives_an_order_and_a_lower_bound() -> None:
    instance = load("film105")
    result = solve(instance, time_limit=0)
    assert not result.optimal or result.cost == OPTIMA["film105"]
    assert result.lower_bound <= OPTIMA["film105"] <= result.cost
    assert instance.cost(result.order) == result.cost


@st.composite
def instances(draw: st.DrawFn) -> Instance:
    scenes = draw(st.integers(1, 7))
    actors = draw(st.integers(1, 5))
    casts = tuple(draw(st.integers(0, 2**actors - 1)) for _ in range(scenes))
    durations = tuple(draw(st.integers(0, 4)) for _ in range(scenes))
    costs = tuple(draw(st.integers(0, 9)) for _ in range(actors))
    return Instance(durations, costs, casts)


@pytest.mark.parametrize("compiled", SEARCHES)
@given(instance=instances())
def test_the_programme_matches_brute_force(instance: Instance, compiled: bool) -> None:
    best = min(instance.cost(p) for p in itertools.permutations(range(instance.scenes)))
    result = solve(instance, time_limit=30, compiled=compiled)
    assert result.optimal and result.cost == result.lower_bound == best
    assert instance.cost(result.order) == best


@given(instance=instances(), data=st.data())
def test_each_move_is_priced_as_the_whole_order(instance: Instance, data: st.DataObject) -> None:
    """The local search's moves of one block, priced at once, cost what each moved order
    costs in full; and it stops where the one-at-a-time search stops (the same order)."""
    blocks = reduce(instance)
    order = data.draw(st.permutations(range(len(blocks.casts))))
    for i in range(len(order)):
        moved = []
        for j in range(len(order)):
            trial = order[:i] + order[i + 1 :]
            trial.insert(j, order[i])
            moved.append(_block_cost(blocks, trial))
        assert moves(blocks, order, i) == moved
    assert improve(blocks, list(order), math.inf) == _improve_one_at_a_time(blocks, list(order))


def _improve_one_at_a_time(blocks: Blocks, order: list[int]) -> list[int]:
    """The local search as it was: each move priced by pricing the whole order."""
    best, improved = _block_cost(blocks, order), True
    while improved:
        improved = False
        for i, j in itertools.permutations(range(len(order)), 2):
            trial = order[:i] + order[i + 1 :]
            trial.insert(j, order[i])
            if _block_cost(blocks, trial) < best:
                order, best, improved = trial, _block_cost(blocks, trial), True
                break
    return order


def _idle_after(search: _Search, remaining: int, order: tuple[int, ...]) -> int:
    """The idle cost the programme counts for shooting ``order`` (the blocks of
    ``remaining``) after every other block: each block's time for each actor on location
    (in a block shot and in one still to shoot) who is not in it."""
    before = search.cast_of(search.all & ~remaining)
    idle = 0
    left = remaining
    for b in order:
        on_location = before & search.cast_of(left)
        idle += search.durations[b] * search.cost_of(on_location & ~search.casts[b])
        before |= search.casts[b]
        left &= ~(1 << b)
    return idle


def _least_idle_of_a_rest(search: _Search, data: st.DataObject) -> tuple[int, int, int]:
    """A drawn set of blocks still to shoot, the actors on location (working both in what
    is shot and in the rest), and the least idle cost of the rest over every order of it
    (of those on location and of those still to start, as the programme counts it)."""
    remaining = data.draw(st.integers(0, search.all))
    on_location = search.cast_of(search.all & ~remaining) & search.cast_of(remaining)
    least = min(
        _idle_after(search, remaining, order) for order in itertools.permutations(bits(remaining))
    )
    return remaining, on_location, least


def _unstarted_bound_holds(
    search: _Search, remaining: int, least: int, data: st.DataObject
) -> None:
    """The unstarted bound is at most ``least``, with whichever actor still to start it
    takes; asked with a limit, it is still at most ``least``, and -1 only where the bound
    with every one of them is below the limit."""
    on_location = search.cast_of(search.all & ~remaining) & search.cast_of(remaining)
    unstarted = search.cast_of(remaining) & ~search.cast_of(search.all & ~remaining)
    each = [search.unstarted_bound(remaining, on_location, 1 << a) for a in bits(unstarted)]
    assert search.unstarted_bound(remaining, on_location, unstarted) <= least
    assert all(bound <= least for bound in each)
    limit = data.draw(st.integers(0, 2 * least + 1))
    checked = search.unstarted_bound(remaining, on_location, unstarted, limit)
    assert checked <= least
    assert checked >= 0 or all(bound < limit for bound in each)


@given(instance=instances(), data=st.data())
def test_every_bound_is_below_the_least_idle_cost(instance: Instance, data: st.DataObject) -> None:
    """Whatever is already shot, no lower bound exceeds the least idle cost of the rest,
    found by trying every order of it."""
    search = _Search(instance.durations, instance.costs, instance.casts, deadline=math.inf)
    remaining, on_location, least = _least_idle_of_a_rest(search, data)
    assert search.bound(remaining) <= least
    assert search.order_bound(remaining, on_location) <= least
    search.filter_from = FILTER_LEAVES + 1  # the filter with the fewest actors it runs for
    assert search.filter_bound(remaining, on_location) <= least
    _unstarted_bound_holds(search, remaining, least, data)
    _greedy_leaving_holds(search, remaining, on_location)


def test_the_relaxation_holds_at_money_scale() -> None:
    """``castroom schedule`` hands the search durations in hundredths of a day and costs
    in millionths: terms near 10^11 that cancel to a bound near 0. Blocks 1 and 2 of
    ``tiny`` shot, block 0 then block 3 idle no one; the relaxation, shaved by the size
    of its difference rather than of its terms, once proved 1 there: a bound above the
    truth, which can cut the optimum off."""
    tiny = load("tiny")
    durations = tuple(100 * d for d in tiny.durations)
    costs = tuple(10**8 * c for c in tiny.costs)
    search = _Search(durations, costs, tiny.casts, deadline=math.inf)
    remaining = 0b1001
    least = min(_idle_after(search, remaining, order) for order in ((0, 3), (3, 0)))
    assert least == 0 and search.bound(remaining) == 0
    if COMPILED:  # where the mirror rule (block 1 before block 3) met it: the optimum again
        kernel = _talent.Search(list(durations), list(costs), list(tiny.casts), lead=1, trail=3)
        assert kernel.probe(10**12, math.inf) == 100 * 10**8 * (OPTIMA["tiny"] - tiny.work_cost())


@given(instance=instances(), data=st.data())
def test_every_bound_holds_at_money_scale(instance: Instance, data: st.DataObject) -> None:
    """The bounds below the least idle cost with every duration in hundredths of a day
    and every cost in millionths (of a hundred dollars a day), as ``castroom schedule``
    gives them."""
    durations = tuple(100 * d for d in instance.durations)
    costs = tuple(10**8 * c for c in instance.costs)
    search = _Search(durations, costs, instance.casts, deadline=math.inf)
    remaining, on_location, least = _least_idle_of_a_rest(search, data)
    assert search.bound(remaining) <= least
    assert search.order_bound(remaining, on_location) <= least
    _unstarted_bound_holds(search, remaining, least, data)
    _greedy_leaving_holds(search, remaining, on_location)


def _greedy_leaving_holds(search: _Search, remaining: int, on_location: int) -> None:
    """The search skips the order bound and the unstarted bound where the greedy leaving
    order is below the limit: that order (one of those both take the least over) is never
    below either, and it is a leaving order every one of them may take (nobody leaves
    before one whose remaining blocks are a subset of theirs)."""
    leaving = search._leaving(remaining, on_location)
    if leaving is None:
        return
    assert sorted(leaving.order) == list(range(len(leaving.own)))
    gone = 0
    for i in reversed(leaving.order):  # last leaver first: the first to leave is last
        assert leaving.first[i] & ~gone == 0
        gone |= 1 << i
    assert search.order_bound(remaining, on_location) <= leaving.path - leaving.work
    unstarted = search.cast_of(remaining) & ~search.cast_of(search.all & ~remaining)
    for a in bits(unstarted):  # with each actor still to start, along the same order
        shape = search._shape(a, remaining, leaving.own, leaving.costs)
        along = search._unstarted_path(shape, leaving.own, leaving.costs, leaving.order)
        assert search.unstarted_bound(remaining, on_location, 1 << a) <= max(
            0, along - leaving.work
        )


@given(instance=instances(), data=st.data())
def test_the_order_bound_over_closed_subsets_is_the_same_bound(
    instance: Instance, data: st.DataObject
) -> None:
    """Merging actors with the same blocks and summing only over subsets closed under
    "a subset of blocks leaves first" gives exactly the sum over every subset, for any
    set of actors on location (the filter's group too)."""
    closed = _Search(instance.durations, instance.costs, instance.casts, deadline=math.inf)
    plain = _Search(
        instance.durations, instance.costs, instance.casts, deadline=math.inf, closed=False
    )
    remaining = data.draw(st.integers(0, closed.all))
    actors = data.draw(st.integers(0, 2 ** len(instance.costs) - 1))
    assert closed.order_bound(remaining, actors) == plain.order_bound(remaining, actors)


@pytest.mark.parametrize("compiled", SEARCHES)
@given(instance=instances())
def test_with_the_filter_over_few_actors_the_same_least_idle(
    instance: Instance, compiled: bool
) -> None:
    """The filter runs from FILTER_FROM actors on location, more than these small
    instances have: from three it runs where three or more are, and the search still
    finds the least idle cost that trying every order finds."""
    blocks = reduce(instance)  # the search's input: no two blocks with the same cast
    durations, costs, casts = blocks.durations, blocks.costs, blocks.casts
    idle = min(instance.cost(p) for p in itertools.permutations(range(instance.scenes)))
    idle -= blocks.fixed + talent_scheduling.work_cost(durations, costs, casts)
    few = FILTER_LEAVES + 1
    if not casts:
        value = 0
    elif compiled:
        kernel = _talent.Search(list(durations), list(costs), list(casts), filter_from=few)
        value = kernel.probe(10**9, math.inf)
    else:
        search = _Search(durations, costs, casts, deadline=math.inf, filter_from=few)
        value = search.solve(search.all, 0, 10**9)
    assert value == idle


#: Each baseline of the benchmark, and the search as it runs.
KNOBS = [
    {},
    {"unstarted": False},
    {"mirror": False},
    {"filter_bound": False},
    {"filter_bound": False, "closed": False},
]


@pytest.mark.skipif(not COMPILED, reason="the compiled search is not built here")
@pytest.mark.parametrize("knobs", KNOBS)
@pytest.mark.parametrize("name", [*sorted(OPTIMA), "film16x8s0"])
def test_both_searches_expand_the_same_states(name: str, knobs: dict[str, bool]) -> None:
    """The compiled search is the Python one, state for state, with every bound."""
    instance = load(name)
    compiled = solve(instance, time_limit=60, compiled=True, **knobs)
    python = solve(instance, time_limit=60, compiled=False, **knobs)
    assert compiled.optimal and python.optimal and compiled.cost == python.cost
    assert compiled.states == python.states


def test_the_order_bound_sees_what_the_relaxation_misses() -> None:
    """Three actors on location (block 2, all of them, is shot); left are block 0 (actors
    1 and 2) and block 1 (actors 0 and 2). Whichever goes first, the actor not in it waits
    through its day: 2. The relaxation spreads that wait over the actors and proves 1;
    the order bound proves the 2."""
    instance = Instance((1, 1, 1), (2, 2, 2), (0b110, 0b101, 0b111))
    search = _Search(instance.durations, instance.costs, instance.casts, deadline=math.inf)
    remaining = 0b011
    on_location = search.cast_of(search.all & ~remaining) & search.cast_of(remaining)
    assert on_location == 0b111
    least = min(_idle_after(search, remaining, order) for order in ((0, 1), (1, 0)))
    assert search.order_bound(remaining, on_location) == least == 2
    assert search.bound(remaining) == 1


@pytest.mark.skipif(not COMPILED, reason="the compiled search is not built here")
def test_costs_past_what_a_word_holds_safely_go_to_the_python_search() -> None:
    """The compiled search's sums stay below 2^62 (its mark for a phase of the unstarted
    bound no order reaches), which they can reach from a third of it: tiny with every cost
    times 2^55 (idle at most 42 x 2^55, past 2^60) is searched in Python, to the published
    optimum times the same."""
    tiny = load("tiny")
    scaled = Instance(tiny.durations, tuple(c << 55 for c in tiny.costs), tiny.casts)
    result = solve(scaled, time_limit=30)
    assert not result.compiled
    assert result.optimal and result.cost == OPTIMA["tiny"] << 55


def test_the_unstarted_bound_sees_what_the_order_bound_misses() -> None:
    """Block 1 (actors 1 and 2) is shot; left are block 0 (actor 1), block 2 (actor 0,
    not started) and block 3 (all three). Actor 2 leaves after block 3, actor 1 after
    blocks 0 and 3: block 3 then block 0 idles neither of them, so the order bound (and
    the relaxation) prove 0. But block 2 then goes before block 0 (actor 1 waits through
    it) or after it (actor 0 waits through block 0): the unstarted bound proves the 1."""
    instance = Instance((1, 1, 1, 1), (1, 1, 1), (0b010, 0b110, 0b001, 0b111))
    search = _Search(instance.durations, instance.costs, instance.casts, deadline=math.inf)
    remaining = 0b1101
    on_location = search.cast_of(search.all & ~remaining) & search.cast_of(remaining)
    assert on_location == 0b110
    least = min(_idle_after(search, remaining, p) for p in itertools.permutations(bits(remaining)))
    assert least == 1
    assert search.bound(remaining) == search.order_bound(remaining, on_location) == 0
    assert search.unstarted_bound(remaining, on_location, 0b001) == 1


@pytest.mark.parametrize("compiled", SEARCHES)
def test_the_unstarted_bound_searches_fewer_states(compiled: bool) -> None:
    """film16x8s0 proven with and without the unstarted bound: the same optimum, and
    with it fewer states."""
    instance = load("film16x8s0")
    without = solve(instance, time_limit=60, compiled=compiled, unstarted=False)
    joined = solve(instance, time_limit=60, compiled=compiled)
    assert without.optimal and joined.optimal and without.cost == joined.cost == 985
    assert joined.states < without.states


@pytest.mark.skipif(not COMPILED, reason="the compiled search is not built here")
@pytest.mark.parametrize("name", ["film105", "film16x8s0"])
def test_both_searches_expand_the_same_states_with_the_filter_everywhere(name: str) -> None:
    """From three actors on location the filter runs on most states: both searches still
    agree state for state, and on the least idle cost."""
    blocks = reduce(load(name))
    few = FILTER_LEAVES + 1
    search = _Search(blocks.durations, blocks.costs, blocks.casts, math.inf, filter_from=few)
    kernel = _talent.Search(
        list(blocks.durations), list(blocks.costs), list(blocks.casts), filter_from=few
    )
    assert kernel.probe(10**9, math.inf) == search.solve(search.all, 0, 10**9)
    assert kernel.states == search.states > 0
    assert len(search.filtered) > search.states // 2  # the filter ran on most states


@pytest.mark.skipif(not COMPILED, reason="the compiled search is not built here")
@pytest.mark.parametrize("name", ["film105", "film16x8s0"])
def test_out_of_time_the_greedy_order_over_what_the_search_learnt(name: str) -> None:
    """A probe under half the least idle cost fails (as a search out of time has only
    failed probes): the greedy order over its memo (exact values deep down, the bounds
    it proved) is the same in both searches, and an order of every block. (It need
    not beat the greedy order over the bound alone: a bound proved under a low limit
    can mislead it; the solver keeps the better of the two.)"""
    blocks = reduce(load(name))
    search = _Search(blocks.durations, blocks.costs, blocks.casts, math.inf)
    kernel = _talent.Search(list(blocks.durations), list(blocks.costs), list(blocks.casts))
    least = kernel.probe(10**9, math.inf)
    kernel = _talent.Search(list(blocks.durations), list(blocks.costs), list(blocks.casts))
    assert kernel.probe(least // 2, math.inf) >= least // 2
    assert search.solve(search.all, 0, least // 2) >= least // 2
    learnt = list(kernel.descend())
    assert learnt == talent_scheduling.greedy(search)
    assert sorted(learnt) == list(range(len(blocks.casts)))


@pytest.mark.parametrize("compiled", SEARCHES)
@given(instance=instances(), data=st.data())
def test_with_any_block_before_any_other_the_same_least_idle(
    instance: Instance, compiled: bool, data: st.DataObject
) -> None:
    """The mirror rule (only orders with block ``lead`` before block ``trail``) with
    any two blocks, beside both dominance rules: the least idle cost is still the one
    trying every order finds, and the order found has ``lead`` before ``trail``."""
    blocks = reduce(instance)
    durations, costs, casts = blocks.durations, blocks.costs, blocks.casts
    if len(casts) < 2:
        return
    lead, trail = data.draw(st.permutations(range(len(casts))))[:2]
    idle = min(instance.cost(p) for p in itertools.permutations(range(instance.scenes)))
    idle -= blocks.fixed + talent_scheduling.work_cost(durations, costs, casts)
    if compiled:
        kernel = _talent.Search(list(durations), list(costs), list(casts), lead=lead, trail=trail)
        value, order = kernel.probe(10**9, math.inf), list(kernel.order())
    else:
        search = _Search(durations, costs, casts, deadline=math.inf, lead=lead, trail=trail)
        value, order = search.solve(search.all, 0, 10**9), search.order()
    assert value == idle
    assert sorted(order) == list(range(len(casts))) and order.index(lead) < order.index(trail)


@pytest.mark.parametrize("compiled", SEARCHES)
def test_the_mirror_rule_searches_fewer_states(compiled: bool) -> None:
    """film16x8s0 proven with and without the mirror rule: the same optimum, and with
    it under 0.7 times the states (the orders with the seed's first block before its
    three-quarters one are left to their mirrors; 0.50x measured)."""
    instance = load("film16x8s0")
    every = solve(instance, time_limit=60, compiled=compiled, mirror=False)
    halved = solve(instance, time_limit=60, compiled=compiled)
    assert every.optimal and halved.optimal and every.cost == halved.cost == 985
    assert halved.states < every.states * 0.7


def _first_probe(name: str, compiled: bool) -> tuple[Blocks, talent_scheduling._Probes, int]:
    """``solve``'s first probe on ``name`` with no time (``time_limit=0``): the greedy
    seed unpolished, the mirror pair from it, bounded by the seed, and stopped at the
    first check of the clock (1,024 states), whatever the machine's speed. The blocks,
    the probes and the seed's idle cost."""
    blocks = reduce(load(name))
    durations, costs, casts = blocks.durations, blocks.costs, blocks.casts
    search = _Search(durations, costs, casts, 0.0, filter_from=talent_scheduling.FILTER_FROM)
    seed = talent_scheduling.greedy(search)
    search.lead, search.trail = seed[3 * len(seed) // 4], seed[0]
    probes = talent_scheduling._Probes(blocks, search, compiled)
    seed_idle = _block_cost(blocks, seed) - talent_scheduling.work_cost(durations, costs, casts)
    with pytest.raises(talent_scheduling._Timeout):
        probes.probe(seed_idle + 1, 0.0)
    return blocks, probes, seed_idle


@pytest.mark.skipif(not COMPILED, reason="the compiled search is not built here")
@pytest.mark.parametrize("name", ["film24x10s0", "film30x10s1"])
def test_a_search_cut_short_keeps_the_cheapest_order_it_saw(name: str) -> None:
    """Stopped after 1,024 states, both searches have been through the same whole orders
    and keep the same cheapest one: every block once, cheaper than the seed that bounded
    the search; a second probe cut short never leaves a dearer one."""
    (blocks, kernel, seed_idle), (_, python, _) = (_first_probe(name, c) for c in (True, False))
    seen = kernel.seen()
    assert seen == python.seen() and sorted(seen) == list(range(len(blocks.casts)))
    assert kernel.states == python.states == 1024
    work = talent_scheduling.work_cost(blocks.durations, blocks.costs, blocks.casts)
    assert _block_cost(blocks, seen) - work < seed_idle
    with pytest.raises(talent_scheduling._Timeout):
        kernel.probe(10**9, 0.0)
    assert _block_cost(blocks, kernel.seen()) <= _block_cost(blocks, seen)


@pytest.mark.parametrize("compiled", SEARCHES)
def test_a_probe_sees_an_order_only_below_its_limit(compiled: bool) -> None:
    """Under a limit at the least idle cost the search proves the limit and has seen no
    whole order (none is below it); one above, the order it saw last is the optimum."""
    blocks = reduce(load("film16x8s0"))
    work = talent_scheduling.work_cost(blocks.durations, blocks.costs, blocks.casts)
    least = solve(load("film16x8s0")).cost - blocks.fixed - work
    search = _Search(blocks.durations, blocks.costs, blocks.casts, math.inf)
    probes = talent_scheduling._Probes(blocks, search, compiled)
    assert probes.probe(least, math.inf) >= least and probes.seen() == []
    assert probes.probe(least + 1, math.inf) == least
    assert probes.seen() == probes.order()
    assert _block_cost(blocks, probes.seen()) - work == least


@pytest.mark.parametrize("compiled", SEARCHES)
def test_out_of_time_no_dearer_than_the_order_the_search_saw(compiled: bool) -> None:
    """film20x10s0 with no time: what ``solve`` returns costs no more than the cheapest
    order its first probe saw (without it, here: the polished seed, dearer)."""
    blocks, probes, _ = _first_probe("film20x10s0", compiled)
    saw = _block_cost(blocks, probes.seen()) + blocks.fixed
    result = solve(load("film20x10s0"), time_limit=0, compiled=compiled)
    assert not result.optimal and result.cost <= saw


@pytest.mark.skipif(not COMPILED, reason="the compiled search is not built here")
def test_both_searches_agree_past_32_blocks_and_16_actors() -> None:
    """The compiled search reads the byte tables of a set's first four bytes (blocks) or
    two (actors) unless the board is wider: on a 40-block, 20-actor board (drawn with a
    fixed seed), cut short at 1,024 states, both searches went through the same states
    and the same whole orders, and descend alike."""
    rng = random.Random(14)
    instance = Instance(
        tuple(rng.randint(1, 3) for _ in range(40)),
        tuple(rng.randint(1, 9) for _ in range(20)),
        tuple(sum(1 << a for a in rng.sample(range(20), rng.randint(2, 5))) for _ in range(40)),
    )
    blocks = reduce(instance)
    used = bits(_Search(blocks.durations, blocks.costs, blocks.casts, 0.0).cast_of(2**40 - 1))
    assert len(blocks.casts) == 40 and len(used) > 16
    runs = []
    for compiled in (True, False):
        search = _Search(blocks.durations, blocks.costs, blocks.casts, 0.0, filter_from=8)
        probes = talent_scheduling._Probes(blocks, search, compiled)
        with pytest.raises(talent_scheduling._Timeout):
            probes.probe(10**9, 0.0)
        runs.append((probes.states, probes.seen(), probes.descend(), probes.proven()))
    assert runs[0] == runs[1] and runs[0][0] == 1024 and runs[0][1]
