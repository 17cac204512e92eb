"""Refusal changes nothing: a peer's update is merged whole or not at all.

Updates a peer really makes (renames, field deletes, new entities, text edits, a field
replaced by a nested map, and their merges) are mutated by our own mutator: bit flips,
byte changes, truncation, insertions, duplicated runs, and splices of two valid updates
(the head of one, the tail of another). Each case goes to a real stored production
(SQLite), and then:

- refused (BadUpdate, one line): memory, the log and what a fresh process reloads are
  exactly as before;
- merged: what a reload shows is what memory shows (the log records exactly what was
  merged).

A deterministic slice runs on CI; ``make fuzz`` runs thousands of cases at random.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis_profiles import examples
from pycrdt import Doc, Map, Text

from castroom.core import model, yupdate
from castroom.core.errors import BadUpdate, UpdateLimit
from castroom.core.workspace import StoredProduction, Workspace

sys.path.insert(0, str(Path(__file__).parent / "data"))
import make_hostile as hostile


def seeded(path: Path) -> tuple[Workspace, StoredProduction]:
    ws = Workspace.open(path, member="owner")
    production = ws.create_production("Refusals", kind="film")
    doc = production.doc
    for i in range(4):
        doc.add(model.Talent, id=f"T{i}", name=f"Talent {i}", rate=100 * i, notes="notes " * 3)
    doc.add(model.Role, id="R0", name="Lead", backups=["T0", "T1"])
    return ws, production


def peer_updates(production: StoredProduction) -> list[bytes]:
    """What peers send: edits of what the production holds, each from its own peer."""
    base = production.doc.encode_update()
    made = []

    def edit(change: Any) -> None:
        peer = Doc()
        peer.apply_update(base)
        before = peer.get_state()
        with peer.transaction():
            change(peer)
        made.append(peer.get_update(before))

    talents = lambda d: d.get("talents", type=Map)  # noqa: E731
    edit(lambda d: talents(d)["T1"].__setitem__("name", "Renamed"))
    edit(lambda d: talents(d)["T2"].pop("rate"))
    edit(
        lambda d: talents(d).__setitem__(
            "P1", Map({"id": "P1", "name": "Peer", "notes": Text("x")})
        )
    )
    edit(lambda d: talents(d)["T0"]["notes"].insert(3, "inserted "))
    edit(lambda d: talents(d)["T3"].__setitem__("external_ids", Map({"site": "1"})))
    edit(lambda d: d.get("roles", type=Map)["R0"]["backups"].append("T3"))
    return made


@st.composite
def mutated(draw: Any, seeds: list[bytes]) -> bytes:
    data = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(1, 3))):
        op = draw(st.sampled_from(["flip", "set", "truncate", "insert", "dup", "splice", "splice"]))
        at = draw(st.integers(0, max(0, len(data) - 1)))
        if op == "flip" and data:
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif op == "set" and data:
            data[at] = draw(st.sampled_from([0x00, 0x01, 0x07, 0x7F, 0x80, 0xFF]))
        elif op == "truncate":
            del data[at:]
        elif op == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=4))
        elif op == "dup" and data:
            data[at:at] = data[at : at + draw(st.integers(1, 12))]
        elif op == "splice":
            other = draw(st.sampled_from(seeds))
            data[at:] = other[draw(st.integers(0, len(other))) :]
    return bytes(data)


def observed(ws: Workspace, production: StoredProduction) -> tuple[str, int]:
    assert production.id is not None
    rows = ws.store.db.execute(
        "SELECT COUNT(*) FROM updates WHERE production = ?", (production.id,)
    ).fetchone()[0]
    return json.dumps(production.doc.to_data(), sort_keys=True, default=str), rows


def reloaded(path: Path, production_id: str) -> str:
    with Workspace.open(path, create=False) as fresh:
        data = fresh.production(production_id).doc.to_data()
    return json.dumps(data, sort_keys=True, default=str)


def test_a_refused_update_changes_nothing_and_a_merged_one_is_what_reloads(
    tmp_path: Path,
) -> None:
    ws, production = seeded(tmp_path / "ws")
    assert production.id is not None
    seeds = peer_updates(production)
    counts = {"refused": 0, "merged": 0}

    @settings(max_examples=examples(300))
    @given(updates=st.lists(mutated(seeds), min_size=1, max_size=4))
    def run(updates: list[bytes]) -> None:
        for update in updates:
            before = observed(ws, production)
            try:
                production.apply_update(update, origin="sync", device="mutant")
            except BadUpdate as exc:
                counts["refused"] += 1
                assert "\n" not in str(exc) and str(exc)
                assert observed(ws, production) == before
                assert reloaded(tmp_path / "ws", production.id) == before[0]
            else:
                counts["merged"] += 1
                assert reloaded(tmp_path / "ws", production.id) == observed(ws, production)[0]

    try:
        run()
    finally:
        ws.close()
    assert counts["refused"] > 100 and counts["merged"] > 10, counts


def test_a_production_is_capped_in_size(tmp_path: Path, monkeypatch: Any) -> None:
    """A peer cannot grow a stored production past yupdate.MAX_PRODUCTION_BYTES: the
    update that would is refused, naming the limit, and nothing changes."""
    ws, production = seeded(tmp_path / "ws")
    assert production.id is not None
    [update, *_] = peer_updates(production)
    held = sum(ws.store.log_bytes(production.id))
    monkeypatch.setattr(yupdate, "MAX_PRODUCTION_BYTES", held + len(update) - 1)
    before = observed(ws, production)
    with pytest.raises(UpdateLimit, match=rf"would hold {held + len(update):,} bytes \(limit"):
        production.apply_update(update, origin="sync", device="big")
    assert observed(ws, production) == before
    monkeypatch.setattr(yupdate, "MAX_PRODUCTION_BYTES", held + len(update))
    production.apply_update(update, origin="sync", device="big")
    assert observed(ws, production) != before
    ws.close()


def test_nesting_built_up_over_many_updates_is_refused(tmp_path: Path) -> None:
    """Each update nests one more Y.Map in a talent (each alone within the walk's limit):
    the one that would go past yupdate.MAX_NESTING is refused and changes nothing."""
    ws, production = seeded(tmp_path / "ws")
    peer = Doc()
    peer.apply_update(production.doc.encode_update())
    inner = peer.get("talents", type=Map)["T0"]
    level = 1  # the talent's own map
    refused = None
    while level < yupdate.MAX_NESTING + 2 and refused is None:
        before_state = peer.get_state()
        with peer.transaction():
            inner["n" if level > 1 else "looks"] = Map({"x": level})
        inner = inner["n" if level > 1 else "looks"]
        level += 1
        before = observed(ws, production)
        try:
            production.apply_update(peer.get_update(before_state), origin="sync", device="deep")
        except UpdateLimit as exc:
            refused = (level, str(exc))
            assert observed(ws, production) == before
            assert reloaded(tmp_path / "ws", production.id or "") == before[0]
    assert refused is not None and refused[0] == yupdate.MAX_NESTING + 1, refused
    assert "Y types nested deeper than 32 levels (with what the document holds)" in refused[1]
    assert production.doc.get(model.Talent, "T0").name == "Talent 0"  # still readable
    ws.close()


def test_no_map_is_taken_past_its_key_limit(tmp_path: Path) -> None:
    """Yrs rehashes every key of a map, holding the GIL, each time the map's table grows
    (yupdate.MAX_MAP_KEYS): a peer's update that would take a collection past 100,000
    entities is refused before Yrs sees it, naming the limit, and changes nothing, be it
    too big alone or with what the production holds; a collection of exactly the limit
    merges, and so do keys it holds already, sent again (a bundle of the production). A
    nested map given more than the limit in one update is refused too."""
    ws, production = seeded(tmp_path / "ws")  # 4 talents
    room = yupdate.MAX_MAP_KEYS - 4
    limit = re.escape("more than 100,000 keys in one map (with what the document holds)")
    alone = "more than 100,000 keys in one map in one update"
    for update, why in (
        (hostile.many_entries(yupdate.MAX_MAP_KEYS + 1), alone),
        (hostile.many_entries(room + 1), limit),
    ):
        before = observed(ws, production)
        with pytest.raises(UpdateLimit, match=why):
            production.apply_update(update, origin="sync", device="big")
        assert observed(ws, production) == before
    full = hostile.many_entries(room)
    production.apply_update(full, origin="sync", device="big")
    assert len(production.doc.ids(model.Talent)) == yupdate.MAX_MAP_KEYS
    merged = observed(ws, production)
    production.apply_update(full, origin="sync", device="again")  # all held already
    assert observed(ws, production) == merged
    one_more = hostile.update(
        [hostile.in_root("talents", "X", hostile.any_content(hostile.any_string("x")))], client=2
    )
    with pytest.raises(UpdateLimit, match=limit):
        production.apply_update(one_more, origin="sync", device="big")
    nested = hostile.talent("WIDE") + [
        hostile.in_item(0, f"k{i}", hostile.any_content(hostile.any_string("x")))
        for i in range(yupdate.MAX_MAP_KEYS + 1)
    ]
    with pytest.raises(UpdateLimit, match=alone):
        production.apply_update(hostile.update(nested, client=3), origin="sync", device="big")
    assert observed(ws, production) == merged
    assert reloaded(tmp_path / "ws", production.id or "") == merged[0]
    ws.close()
