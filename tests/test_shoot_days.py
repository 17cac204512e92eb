"""core/shoot_days.py: a scene's shoot day is said on both sides (Scene.shoot_day_id and
ShootDay.scene_ids), and a local write keeps them in step, in one transaction."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from castroom.core.document import CastDocument
from castroom.core.model import Scene, ShootDay
from castroom.core.shoot_days import complements, keep_in_step
from castroom.core.view import ProductionView
from castroom.plugins import integrity
from tests.test_cli_core import as_json, log_rows, ok


@pytest.fixture
def castroom(cli):
    ok(cli("init", "--production", "Tides"))
    return cli


def board() -> tuple[CastDocument, list[Scene], list[ShootDay]]:
    doc = CastDocument.create("Tides")
    scenes = [doc.add(Scene, number=str(n)) for n in (1, 2, 3)]
    days = [doc.add(ShootDay, date=dt.date(2027, 3, n), day_number=n) for n in (1, 2)]
    return doc, scenes, days


def write(doc: CastDocument, cls, entity_id: str, fields: dict) -> None:
    before = doc.raw(cls, entity_id)
    with doc.transaction():
        doc.update(cls, entity_id, fields)
        keep_in_step(doc, [(cls, entity_id, before)])


def where(doc: CastDocument) -> dict[str, tuple[str | None, list[str]]]:
    """Scene number -> (its shoot_day_id, the days that list it)."""
    days = doc.all(ShootDay)
    return {
        s.number: (s.shoot_day_id, [d.id for d in days if s.id in d.scene_ids])
        for s in doc.all(Scene)
    }


def agree(doc: CastDocument) -> bool:
    return all(f.code != "scene-day-mismatch" for f in integrity.findings(ProductionView(doc)))


def test_listing_scenes_on_a_day_sets_their_shoot_day_and_takes_them_off_others() -> None:
    doc, (one, two, three), (d1, d2) = board()
    write(doc, ShootDay, d1.id, {"scene_ids": [two.id, one.id]})
    assert where(doc) == {"1": (d1.id, [d1.id]), "2": (d1.id, [d1.id]), "3": (None, [])}
    write(doc, ShootDay, d2.id, {"scene_ids": [one.id, three.id]})  # scene 1 moves
    assert doc.get(ShootDay, d1.id).scene_ids == [two.id]
    assert where(doc) == {"1": (d2.id, [d2.id]), "2": (d1.id, [d1.id]), "3": (d2.id, [d2.id])}
    write(doc, ShootDay, d2.id, {"scene_ids": [three.id]})  # scene 1 is on no day now
    assert where(doc)["1"] == (None, [])
    assert agree(doc)


def test_setting_a_scenes_shoot_day_moves_it_to_the_end_of_that_days_list() -> None:
    doc, (one, two, _), (d1, d2) = board()
    write(doc, ShootDay, d1.id, {"scene_ids": [one.id, two.id]})
    write(doc, Scene, one.id, {"shoot_day_id": d2.id})
    assert doc.get(ShootDay, d1.id).scene_ids == [two.id]
    assert doc.get(ShootDay, d2.id).scene_ids == [one.id]
    write(doc, Scene, two.id, {"shoot_day_id": d2.id})
    assert doc.get(ShootDay, d2.id).scene_ids == [one.id, two.id]  # the order is kept
    write(doc, Scene, two.id, {"shoot_day_id": None})
    assert doc.get(ShootDay, d2.id).scene_ids == [one.id]
    assert agree(doc)


def test_nothing_to_do_when_they_already_agree_or_a_day_is_reordered() -> None:
    doc, (one, two, _), (d1, _) = board()
    write(doc, ShootDay, d1.id, {"scene_ids": [one.id, two.id]})
    before = doc.raw(ShootDay, d1.id)
    doc.update(ShootDay, d1.id, {"scene_ids": [two.id, one.id]})
    assert complements(doc, [(ShootDay, d1.id, before)]) == []


def test_a_new_day_listing_scenes_and_a_new_scene_on_a_day(tmp_path) -> None:
    doc, (one, _, _), (d1, _) = board()
    with doc.transaction():
        day = doc.add(ShootDay, date=dt.date(2027, 3, 9), scene_ids=[one.id])
        keep_in_step(doc, [(ShootDay, day.id, None)])
    assert where(doc)["1"] == (day.id, [day.id])
    with doc.transaction():
        scene = doc.add(Scene, number="4", shoot_day_id=d1.id)
        keep_in_step(doc, [(Scene, scene.id, None)])
    assert where(doc)["4"] == (d1.id, [d1.id])


def test_set_shoot_day_scene_ids_makes_list_where_shoot_day_id_find_them(castroom) -> None:
    """The bug: `set shoot_day 1 scene_ids=[...]` left each scene's shoot_day_id empty,
    so `list scenes --where shoot_day_id=1` found nothing."""
    for number in ("1", "2", "3"):
        ok(castroom("add", "scene", f"number={number}"))
    ok(castroom("add", "shoot_day", "date=2027-03-01", "day_number=1"))
    before = log_rows(castroom.path)
    ok(castroom("set", "shoot_day", "1", 'scene_ids=["2", "1"]'))
    assert log_rows(castroom.path) == before + 1  # the day and its scenes: one transaction
    found = as_json(castroom("list", "scenes", "--where", "shoot_day_id=1", "--json"))
    assert sorted(s["number"] for s in found) == ["1", "2"]
    ok(castroom("add", "shoot_day", "date=2027-03-02", "day_number=2"))
    ok(castroom("set", "scene", "1", "shoot_day_id=2"))
    days = {d["day_number"]: d for d in as_json(castroom("list", "shoot_days", "--json"))}
    scenes = {s["number"]: s["id"] for s in as_json(castroom("list", "scenes", "--json"))}
    assert days[1]["scene_ids"] == [scenes["2"]] and days[2]["scene_ids"] == [scenes["1"]]
    checked = json.loads(castroom("check", "--json").stdout)["findings"]
    assert [f for f in checked if f["code"] == "scene-day-mismatch"] == []


def test_an_import_of_scenes_with_a_shoot_day_column_lists_them_on_the_day(
    castroom, tmp_path
) -> None:
    ok(castroom("add", "shoot_day", "date=2027-03-01"))
    path = tmp_path / "scenes.csv"
    path.write_text("number,shoot_day_id\n1,2027-03-01\n2,2027-03-01\n3,\n", encoding="utf-8")
    ok(castroom("import", "csv", str(path), "--kind", "scene"))
    (day,) = as_json(castroom("list", "shoot_days", "--json"))
    scenes = {s["number"]: s["id"] for s in as_json(castroom("list", "scenes", "--json"))}
    assert day["scene_ids"] == [scenes["1"], scenes["2"]]


def test_a_scene_longer_than_a_day_may_stand_on_each_of_its_days() -> None:
    """As `castroom schedule` lays it out: listing a two-day scene on a second day keeps
    it on the first, and its shoot_day_id is the first of its days."""
    doc, (one, _, _), (d1, d2) = board()
    doc.update(Scene, one.id, {"duration_days": 2})
    write(doc, ShootDay, d2.id, {"scene_ids": [one.id]})
    write(doc, ShootDay, d1.id, {"scene_ids": [one.id]})
    assert where(doc)["1"] == (d1.id, [d1.id, d2.id])
    assert agree(doc)
    write(doc, ShootDay, d1.id, {"scene_ids": []})  # off its first day: day 2 is first now
    assert where(doc)["1"] == (d2.id, [d2.id])
    assert agree(doc)
