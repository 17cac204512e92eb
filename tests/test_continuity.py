"""Continuity checks and ``castroom check``, on real workspaces (SQLite in tmp_path)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from castroom.core.cli import build_cli
from castroom.core.findings import Finding
from castroom.core.hookspecs import hookimpl
from castroom.core.model import (
    Availability,
    Candidate,
    Role,
    Scene,
    ShootDay,
    Talent,
)
from castroom.core.plugins import make_plugins
from castroom.core.view import ProductionView
from castroom.core.workspace import StoredProduction, Workspace
from castroom.plugins import continuity

DAY1 = dt.date(2027, 3, 1)


@pytest.fixture
def prod(workspace: Workspace) -> StoredProduction:
    return workspace.create_production("Long Summer", budget_cap=10_000_000)


def findings(prod: StoredProduction, code: str | None = None) -> list[Finding]:
    found = continuity.findings(ProductionView(prod.doc))
    return [f for f in found if code is None or f.code == code]


def book(prod: StoredProduction, talent: Talent, role: Role, era: str | None = None) -> Candidate:
    return prod.doc.add(Candidate, talent_id=talent.id, role_id=role.id, era=era, stage="booked")


def talent(prod: StoredProduction, name: str, low: int | None = 30, high: int | None = 40):
    return prod.doc.add(Talent, name=name, playing_age_min=low, playing_age_max=high)


# -- a scene whose character has no booked actor ---------------------------------------------


def test_uncast_character_warning_then_error_when_scheduled(prod: StoredProduction) -> None:
    mara = prod.doc.add(Role, name="Mara")
    scene = prod.doc.add(Scene, number="1", characters=[mara.id])
    [found] = findings(prod, "uncast-character")
    assert found.severity == "warning"
    assert "Mara" in found.message and found.entities[0].id == mara.id
    assert {e.id for e in found.entities} == {mara.id, scene.id}
    day = prod.doc.add(ShootDay, date=DAY1, scene_ids=[scene.id])
    prod.doc.update(Scene, scene.id, {"shoot_day_id": day.id})
    [found] = findings(prod, "uncast-character")
    assert found.severity == "error" and "already scheduled" in found.message
    book(prod, talent(prod, "Ada"), mara)
    assert findings(prod, "uncast-character") == []


def test_uncast_character_respects_the_scenes_era(prod: StoredProduction) -> None:
    mara = prod.doc.add(Role, name="Mara", eras=[{"name": "young"}, {"name": "old"}])
    prod.doc.add(Scene, number="1", era="young", characters=[mara.id])
    prod.doc.add(Scene, number="2", era="old", characters=[mara.id])
    book(prod, talent(prod, "Bea", 18, 25), mara, era="young")
    [found] = findings(prod, "uncast-character")
    assert "Mara (old)" in found.message and "2" in found.message
    # An era-less booking covers every era.
    prod2 = findings(prod)
    assert all(f.code != "uncast-character" or "(young)" not in f.message for f in prod2)


def test_uncast_role_without_eras_names_no_era(prod: StoredProduction) -> None:
    """The era belongs to the scene; a role with no eras is one part in every era."""
    clerk = prod.doc.add(Role, name="Ferry Clerk")
    prod.doc.add(Scene, number="4", era="adult", characters=[clerk.id])
    prod.doc.add(Scene, number="9", era="old", characters=[clerk.id])
    [found] = findings(prod, "uncast-character")
    assert found.message.startswith("Ferry Clerk has no booked actor but is in 2 scenes: 4, 9")
    assert "(adult)" not in found.message + found.fix and "(old)" not in found.message


def test_scenes_are_listed_in_natural_number_order(prod: StoredProduction) -> None:
    mara = prod.doc.add(Role, name="Mara")
    for number in ("10A", "2", "10", "1"):
        prod.doc.add(Scene, number=number, characters=[mara.id])
    [found] = findings(prod, "uncast-character")
    assert "4 scenes: 1, 2, 10, 10A" in found.message
    assert [e.label for e in found.entities[1:]] == ["1", "2", "10", "10A"]


def test_a_view_orders_scenes_once_in_natural_number_order(prod: StoredProduction) -> None:
    """``view.scenes_in_order``: every live scene by number (2 < 10 < 10A < 11, ties by
    id), and ``scene_order`` and ``in_order`` agree with it."""
    numbers = ("10A", "2", "11", "10", "1", "B", "1", "02b")
    for number in numbers:
        prod.doc.add(Scene, number=number)
    view = ProductionView(prod.doc)
    ordered = view.scenes_in_order
    assert [s.number for s in ordered] == ["1", "1", "2", "02b", "10", "10A", "11", "B"]
    assert ordered[0].id < ordered[1].id
    assert view.scenes_in_order is ordered
    assert [view.scene_order[s.id] for s in ordered] == list(range(len(numbers)))
    assert view.in_order(reversed(ordered)) == ordered


def test_cut_roles_and_unknown_characters(prod: StoredProduction) -> None:
    cut = prod.doc.add(Role, name="Cut", status="cut")
    prod.doc.add(Scene, number="1", characters=[cut.id, "GHOST"])
    assert findings(prod, "uncast-character") == []
    [found] = findings(prod, "unknown-character")
    assert "GHOST" in found.message


# -- playing age ---------------------------------------------------------------------------------


def test_playing_age_uses_look_age_then_era_then_role(prod: StoredProduction) -> None:
    mara = prod.doc.add(
        Role,
        name="Mara",
        age_min=30,
        age_max=40,
        eras=[{"name": "young", "age_min": 16, "age_max": 20}, {"name": "adult"}],
    )
    ada = talent(prod, "Ada", 30, 40)
    book(prod, ada, mara)
    fits = prod.doc.add(Scene, number="1", characters=[mara.id])
    assert findings(prod, "playing-age") == []
    # The look's age wins: 55 is beyond a 30-40 playing range.
    old = prod.doc.add(Scene, number="2", characters=[mara.id], looks={mara.id: {"age": 55}})
    [found] = findings(prod, "playing-age")
    assert found.severity == "warning" and "55" in found.message
    assert {e.id for e in found.entities} >= {ada.id, mara.id, old.id}
    assert fits.id not in {e.id for e in found.entities}
    prod.doc.update(Scene, old.id, {"looks": {mara.id: {"age": 38}}})
    assert findings(prod, "playing-age") == []
    # No look age: the era's range (16-20) applies to a scene in that era.
    prod.doc.add(Scene, number="3", era="young", characters=[mara.id])
    [found] = findings(prod, "playing-age")
    assert "16-20" in found.message
    # An era without ages falls back to the role's range (30-40): fits.
    prod.doc.add(Scene, number="4", era="adult", characters=[mara.id])
    assert len(findings(prod, "playing-age")) == 1


def test_playing_age_unknown_is_not_a_finding(prod: StoredProduction) -> None:
    mara = prod.doc.add(Role, name="Mara", age_min=60, age_max=70)
    book(prod, talent(prod, "Ada", None, None), mara)
    prod.doc.add(Scene, number="1", characters=[mara.id])
    assert findings(prod, "playing-age") == []


# -- looks -------------------------------------------------------------------------------------


def test_look_change_between_consecutive_story_days(prod: StoredProduction) -> None:
    mara = prod.doc.add(Role, name="Mara")
    prod.doc.add(
        Scene,
        number="1",
        story_day=1,
        characters=[mara.id],
        looks={mara.id: {"hair": "red", "wardrobe": "coat"}},
    )
    second = prod.doc.add(
        Scene,
        number="2",
        story_day=2,
        characters=[mara.id],
        looks={mara.id: {"hair": "blond", "wardrobe": "coat"}},
    )
    [found] = findings(prod, "look-change")
    assert "hair 'red' -> 'blond'" in found.message and "wardrobe" not in found.message
    assert found.severity == "warning" and "story day 1 to 2" in found.message
    # A note on the later look explains the change.
    prod.doc.update(Scene, second.id, {"looks": {mara.id: {"hair": "blond", "note": "dyed"}}})
    assert findings(prod, "look-change") == []


def test_look_change_ignores_gaps_blanks_and_other_eras(prod: StoredProduction) -> None:
    mara = prod.doc.add(Role, name="Mara", eras=[{"name": "young"}, {"name": "old"}])
    prod.doc.add(
        Scene, number="1", story_day=1, characters=[mara.id], looks={mara.id: {"hair": "red"}}
    )
    prod.doc.add(
        Scene, number="5", story_day=3, characters=[mara.id], looks={mara.id: {"hair": "grey"}}
    )  # story day 2 passes in between
    prod.doc.add(
        Scene, number="6", story_day=4, characters=[mara.id], looks={mara.id: {"makeup": "scar"}}
    )  # hair unspecified: not a change
    prod.doc.add(
        Scene,
        number="7",
        story_day=5,
        era="old",
        characters=[mara.id],
        looks={mara.id: {"hair": "white", "makeup": "none"}},
    )  # another era
    assert findings(prod, "look-change") == []
    prod.doc.add(
        Scene, number="8", story_day=5, characters=[mara.id], looks={mara.id: {"makeup": "clean"}}
    )
    [found] = findings(prod, "look-change")
    assert "makeup 'scar' -> 'clean'" in found.message


def test_look_age_change_counts(prod: StoredProduction) -> None:
    mara = prod.doc.add(Role, name="Mara")
    prod.doc.add(Scene, number="1", story_day=7, characters=[mara.id], looks={mara.id: {"age": 30}})
    prod.doc.add(Scene, number="2", story_day=8, characters=[mara.id], looks={mara.id: {"age": 31}})
    assert [f.code for f in findings(prod, "look-change")] == ["look-change"]


# -- one actor in two roles of one scene ---------------------------------------------------------


def test_actor_in_two_roles_of_one_scene(prod: StoredProduction) -> None:
    mara, june = prod.doc.add(Role, name="Mara"), prod.doc.add(Role, name="June")
    ada = talent(prod, "Ada")
    book(prod, ada, mara)
    book(prod, ada, june)
    prod.doc.add(Scene, number="1", characters=[mara.id])
    prod.doc.add(Scene, number="2", characters=[june.id])
    assert findings(prod, "actor-in-two-roles") == []
    both = prod.doc.add(Scene, number="3", characters=[mara.id, june.id])
    [found] = findings(prod, "actor-in-two-roles")
    assert found.severity == "error" and "Mara and June" in found.message
    assert both.id in {e.id for e in found.entities}


# -- a booked actor unavailable on a shoot day --------------------------------------------------


def _scheduled(prod: StoredProduction) -> tuple[Talent, ShootDay]:
    mara = prod.doc.add(Role, name="Mara")
    ada = talent(prod, "Ada")
    book(prod, ada, mara)
    scene = prod.doc.add(Scene, number="4", characters=[mara.id])
    day = prod.doc.add(ShootDay, date=DAY1, scene_ids=[scene.id])
    return ada, day


def test_booked_actor_unavailable(prod: StoredProduction) -> None:
    ada, day = _scheduled(prod)
    prod.doc.add(
        Availability,
        talent_id=ada.id,
        start=DAY1 + dt.timedelta(days=1),
        end=DAY1 + dt.timedelta(days=3),
        kind="unavailable",
    )
    assert findings(prod, "booked-unavailable") == []
    block = prod.doc.add(
        Availability,
        talent_id=ada.id,
        start=DAY1 - dt.timedelta(days=2),
        end=DAY1,
        kind="unavailable",
        held_by="surgery",
    )
    [found] = findings(prod, "booked-unavailable")
    assert found.severity == "error" and "2027-03-01" in found.message
    assert {ada.id, day.id, block.id} <= {e.id for e in found.entities}


def test_hold_by_another_production(prod: StoredProduction) -> None:
    ada, _day = _scheduled(prod)
    ours = prod.doc.add(
        Availability,
        talent_id=ada.id,
        start=DAY1,
        end=DAY1,
        kind="first_hold",
        held_by="long summer",
    )  # our own hold: fine
    prod.doc.add(Availability, talent_id=ada.id, start=DAY1, end=DAY1, kind="second_hold")
    assert findings(prod, "booked-unavailable") == []
    prod.doc.update(Availability, ours.id, {"held_by": "Other Show"})
    [found] = findings(prod, "booked-unavailable")
    assert "first hold by Other Show" in found.message


# -- two talents booked for one role and era ----------------------------------------------------


def test_double_booking(prod: StoredProduction) -> None:
    mara = prod.doc.add(Role, name="Mara", eras=[{"name": "young"}, {"name": "old"}])
    book(prod, talent(prod, "Bea"), mara, era="young")
    book(prod, talent(prod, "Cleo"), mara, era="old")
    assert findings(prod, "double-booking") == []
    book(prod, talent(prod, "Dot"), mara, era="young")
    [found] = findings(prod, "double-booking")
    assert found.severity == "error" and "Bea" in found.message and "Dot" in found.message


def test_double_booking_from_two_offline_replicas(tmp_path: Path) -> None:
    """Two people book different talents offline; after the merge the check shows it."""
    with Workspace.open(tmp_path / "a", member="ana") as a:
        pa = a.create_production("Merge Film")
        role = pa.doc.add(Role, name="Mara")
        bea, dot = talent(pa, "Bea"), talent(pa, "Dot")
        base = pa.doc.encode_update()
        with Workspace.open(tmp_path / "b", member="ben") as b:
            pb, _ = b.adopt(pa.id, base, origin="bundle")
            book(pa, bea, role)
            book(pb, dot, role)
            pa.apply_update(pb.doc.encode_update(pa.doc.state_vector()), origin="sync")
        [found] = findings(pa, "double-booking")
        assert {bea.id, dot.id} <= {e.id for e in found.entities}


# -- era hand-over with no actor -----------------------------------------------------------------


def test_era_handover_without_actor(prod: StoredProduction) -> None:
    mara = prod.doc.add(
        Role,
        name="Mara",
        eras=[{"name": "young"}, {"name": "adult", "starts": "1995"}, {"name": "old"}],
    )
    bea = talent(prod, "Bea")
    book(prod, bea, mara, era="young")
    book(prod, talent(prod, "Cleo"), mara, era="old")
    [found] = findings(prod, "era-handover")
    assert "from Bea" in found.message and "adult" in found.message and "1995" in found.message
    book(prod, talent(prod, "Ivy"), mara, era="adult")
    assert findings(prod, "era-handover") == []


def test_era_handover_is_reported_in_both_directions(prod: StoredProduction) -> None:
    """An earlier era with nobody booked breaks the hand-over to a booked later era just
    as a later era with nobody breaks it from a booked earlier one."""
    nora = prod.doc.add(
        Role, name="Nora Quill", eras=[{"name": "1962"}, {"name": "1994"}, {"name": "2022"}]
    )
    book(prod, talent(prod, "Old Nora", 70, 80), nora, era="2022")
    found = findings(prod, "era-handover")
    messages = sorted(f.message for f in found)
    assert len(found) == 2, messages
    assert any("1994" in m and "to Old Nora (2022)" in m for m in messages)
    assert any("1962" in m and "1994" in m for m in messages)
    book(prod, talent(prod, "Mid Nora", 40, 50), nora, era="1994")
    [found] = findings(prod, "era-handover")
    assert "(1962)" in found.message and "to Mid Nora (1994)" in found.message
    assert found.fix == "book a candidate for Nora Quill with era=1962"
    book(prod, talent(prod, "Young Nora", 16, 20), nora, era="1962")
    assert findings(prod, "era-handover") == []


def test_single_actor_for_all_eras_needs_no_handover(prod: StoredProduction) -> None:
    mara = prod.doc.add(Role, name="Mara", eras=[{"name": "young"}, {"name": "old"}])
    book(prod, talent(prod, "Ada"), mara)
    assert findings(prod, "era-handover") == []


def test_a_clean_production_has_no_findings(prod: StoredProduction) -> None:
    mara = prod.doc.add(Role, name="Mara", age_min=30, age_max=40)
    book(prod, talent(prod, "Ada"), mara)
    scene = prod.doc.add(Scene, number="1", story_day=1, characters=[mara.id])
    prod.doc.add(ShootDay, date=DAY1, scene_ids=[scene.id])
    assert findings(prod) == []


# -- through the plugin manager and the command line ----------------------------------------------


class Boom:
    """A third-party plugin whose check raises."""

    __name__ = "boom"

    @hookimpl
    def castroom_check(self, view: ProductionView) -> list[Finding]:
        raise RuntimeError("kaboom")


def _uncast_workspace(tmp_path: Path, scheduled: bool) -> Path:
    path = tmp_path / "cli-ws"
    with Workspace.open(path, member="tester") as ws:
        prod = ws.create_production("CLI Film")
        mara = prod.doc.add(Role, name="Mara")
        scene = prod.doc.add(Scene, number="12", characters=[mara.id])
        if scheduled:
            day = prod.doc.add(ShootDay, date=DAY1, scene_ids=[scene.id])
            prod.doc.update(Scene, scene.id, {"shoot_day_id": day.id})  # as castroom writes
    return path


def run(path: Path, *args: str, extra: list[Any] = ()) -> Any:  # type: ignore[assignment]
    plugins = make_plugins(extra=extra, entry_points=False)
    root = build_cli(plugins)
    return CliRunner().invoke(
        root, ["--workspace", str(path), *args], obj=plugins, catch_exceptions=False
    )


def test_a_raising_plugin_is_reported_and_the_others_still_run(prod: StoredProduction) -> None:
    mara = prod.doc.add(Role, name="Mara")
    prod.doc.add(Scene, number="1", characters=[mara.id])
    plugins = make_plugins(extra=[Boom()], entry_points=False)
    found = plugins.check(ProductionView(prod.doc))
    assert {f.plugin for f in found} == {"continuity"}
    assert any(f.code == "uncast-character" for f in found)
    [failure] = [f for f in plugins.failures if f.hook == "castroom_check"]
    assert failure.plugin == "boom" and "kaboom" in failure.error


def test_check_command_exit_codes(tmp_path: Path) -> None:
    warn_only = _uncast_workspace(tmp_path / "w", scheduled=False)
    result = run(warn_only, "check")
    assert result.exit_code == 0, result.output
    assert "uncast-character" in result.output and "Mara" in result.output
    errors = _uncast_workspace(tmp_path / "e", scheduled=True)
    result = run(errors, "check")
    assert result.exit_code == 1
    assert "error" in result.output


def test_check_json_lists_findings_and_failures(tmp_path: Path) -> None:
    path = _uncast_workspace(tmp_path, scheduled=True)
    result = run(path, "check", "--json", extra=[Boom()])
    assert result.exit_code == 1
    out = result.stdout if hasattr(result, "stdout") else result.output
    data = json.loads(out[out.index("{") : out.rindex("}") + 1])
    [finding] = [f for f in data["findings"] if f["code"] == "uncast-character"]
    assert finding["plugin"] == "continuity" and finding["severity"] == "error"
    assert set(finding) >= {"code", "severity", "message", "entities", "fix", "plugin"}
    assert finding["entities"][0]["kind"] == "role"
    assert data["failures"] == [
        {"plugin": "boom", "hook": "castroom_check", "error": data["failures"][0]["error"]}
    ]
    assert "kaboom" in data["failures"][0]["error"]
    assert data["counts"]["error"] >= 1
    assert "Error: plugin 'boom' failed in castroom_check" in result.output


def test_check_fails_when_a_check_plugin_fails(tmp_path: Path) -> None:
    """A check that raised is no clean bill: exit 1, and never a bare "No findings."."""
    path = tmp_path / "ws"
    with Workspace.open(path, member="tester") as ws:
        ws.create_production("Empty")
    result = run(path, "check", extra=[Boom()])
    assert result.exit_code == 1
    assert "No findings from the checks that ran." in result.output
    assert "No findings.\n" not in result.output
    assert "Error: plugin 'boom' failed in castroom_check" in result.output
    assert "its findings are missing" in result.output


def test_check_on_a_clean_production(tmp_path: Path) -> None:
    path = tmp_path / "ws"
    with Workspace.open(path, member="tester") as ws:
        ws.create_production("Empty")
    result = run(path, "check")
    assert result.exit_code == 0 and "No findings." in result.output


def test_check_without_a_workspace_is_one_clear_error(tmp_path: Path) -> None:
    result = run(tmp_path / "nothing-here", "check")
    assert result.exit_code == 1
    assert result.output.count("Error:") == 1


def test_check_console_script_exit_status(tmp_path: Path) -> None:
    """The real `castroom` executable, in a subprocess, exits 1 on an error finding."""
    from conftest import run_castroom

    path = _uncast_workspace(tmp_path, scheduled=True)
    done = run_castroom("--workspace", str(path), "check", "--json", timeout=120)
    assert done.returncode == 1, done.stderr
    data = json.loads(done.stdout)
    assert [f["code"] for f in data["findings"]] == ["uncast-character"]
