"""core/labels.py: short ids, checked against their definition over every other id."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from castroom.core.labels import ShortIds, short_id, short_ids
from castroom.core.model import new_id

IDS = st.lists(st.text(alphabet="ab0", max_size=12), max_size=12)


def _by_definition(entity_id: str, ids: set[str], least: int) -> str:
    def common(a: str, b: str) -> int:
        n = 0
        while n < min(len(a), len(b)) and a[n] == b[n]:
            n += 1
        return n

    shared = max((common(entity_id, o) for o in ids if o != entity_id), default=0)
    return entity_id[: max(least, shared + 1)]


@given(IDS, st.integers(min_value=0, max_value=6))
def test_short_ids_are_the_shortest_unique_prefixes(ids: list[str], least: int) -> None:
    shorts = short_ids(ids, least)
    assert set(shorts) == set(ids)
    for entity_id, short in shorts.items():
        assert short == _by_definition(entity_id, set(ids), least)
        assert short == short_id(entity_id, ids, least)


@given(IDS, st.text(alphabet="ab0", max_size=12), st.integers(min_value=0, max_value=6))
def test_short_ids_worked_out_one_at_a_time_are_the_same(
    ids: list[str], other: str, least: int
) -> None:
    """ShortIds (each id's short id when asked, from its neighbours in sorted order)
    gives what short_ids gives for every id, and short_id's answer for one not among them."""
    one_at_a_time = ShortIds(ids, least)
    for entity_id, short in short_ids(ids, least).items():
        assert one_at_a_time[entity_id] == short
    assert one_at_a_time[other] == short_id(other, ids, least)
    assert one_at_a_time[other] == _by_definition(other, set(ids), least)


def test_ulids_made_together_get_longer_prefixes() -> None:
    ids = [new_id() for _ in range(2000)]
    shorts = short_ids(ids)
    assert len(set(shorts.values())) == len(ids)
    assert all(len(s) >= 8 and i.startswith(s) for i, s in shorts.items())
