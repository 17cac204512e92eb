"""The integrity check: an entity a peer's well-formed update left invalid under the model
is an error finding in ``castroom check``, naming the kind, id, field, rule and the device
the update came from, never a silent "No findings."."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from pycrdt import Doc, Map

from castroom.core import model
from castroom.core.cli import build_cli
from castroom.core.document import CastDocument
from castroom.core.errors import NotFound
from castroom.core.findings import Finding
from castroom.core.hookspecs import hookimpl
from castroom.core.model import (
    Audition,
    Candidate,
    Deal,
    Era,
    Pairing,
    Role,
    Scene,
    ShootDay,
    Talent,
)
from castroom.core.plugins import DEFAULT_PLUGINS, make_plugins
from castroom.core.sample import build_sample
from castroom.core.view import ProductionView
from castroom.core.workspace import Workspace
from castroom.plugins import budget, integrity


def _merge_bad_rate(path: Path) -> str:
    """A production whose talent t1 got a negative rate from device LAPTOP-7: written raw
    through pycrdt by a peer (as any Yjs client could) and merged like a sync would."""
    with Workspace.open(path, member="tester") as ws:
        production = ws.create_production("Tides")
        production.doc.add(Talent, id="t1", name="Ada Stone", rate=100_000)
        peer = Doc()
        peer.apply_update(production.doc.encode_update())
        peer.get("talents", type=Map)["t1"]["rate"] = -3
        production.apply_update(
            peer.get_update(production.doc.state_vector()), origin="sync", device="LAPTOP-7"
        )
        assert [(i.kind, i.id, i.field) for i in production.doc.invalid()] == [
            ("talent", "t1", "rate")
        ]
        return production.id


def test_an_invalid_entity_is_an_error_finding_with_its_device(tmp_path: Path) -> None:
    _merge_bad_rate(tmp_path / "ws")
    with Workspace.open(tmp_path / "ws") as ws:
        production = ws.production()
        view = ProductionView(production.doc, origin_of=production.origin_of)
        [finding] = integrity.findings(view)
        assert finding.code == "invalid-entity" and finding.severity == "error"
        assert [(e.kind, e.id, e.label) for e in finding.entities] == [
            ("talent", "t1", "Ada Stone")
        ]
        assert finding.message.startswith("talent Ada Stone: rate: ")
        assert "last written by device LAPTOP-7" in finding.message
        assert finding.fix.startswith("castroom set talent t1 rate=")
        # Through the façade, stamped with the plugin's name; a bare view has no device.
        found = make_plugins(entry_points=False).check(ProductionView(production.doc))
        [mine] = [f for f in found if f.code == "invalid-entity"]
        assert mine.plugin == "integrity" and "device" not in mine.message


def test_castroom_check_reports_it_and_fails(tmp_path: Path) -> None:
    _merge_bad_rate(tmp_path / "ws")
    plugins = make_plugins(entry_points=False)
    result = CliRunner().invoke(
        build_cli(plugins), ["--workspace", str(tmp_path / "ws"), "check", "--json"], obj=plugins
    )
    assert result.exit_code == 1, result.output
    [finding] = [f for f in json.loads(result.output)["findings"] if f["plugin"] == "integrity"]
    assert finding["entities"][0]["id"] == "t1"
    assert "rate" in finding["message"] and "LAPTOP-7" in finding["message"]


def test_integrity_is_a_builtin_and_silent_when_all_is_valid(tmp_path: Path) -> None:
    assert DEFAULT_PLUGINS["integrity"] == "castroom.plugins.integrity"
    with Workspace.open(tmp_path / "ws") as ws:
        production = ws.create_production("Fine")
        production.doc.add(Talent, name="Bo", rate=5)
        assert integrity.findings(ProductionView(production.doc)) == []


def test_broken_references_and_unknown_eras_are_findings(tmp_path: Path) -> None:
    """References a peer's update left pointing nowhere or at a deleted entity, and an era
    the role does not have: each a finding naming the entity, the field and the fix."""
    with Workspace.open(tmp_path / "ws") as ws:
        doc = ws.create_production("Tides").doc
        ada = doc.add(Talent, name="Ada Stone")
        gone = doc.add(Talent, name="Gil Hart")
        nora = doc.add(Role, name="Nora", eras=[Era(name="1962"), Era(name="2022")])
        fine = doc.add(Candidate, talent_id=ada.id, role_id=nora.id, era="1962")
        doc.add(Candidate, id="c-dangling", talent_id="NOBODY", role_id=nora.id)
        doc.add(Candidate, id="c-deleted", talent_id=gone.id, role_id=nora.id)
        doc.add(Deal, id="d-era", talent_id=ada.id, role_id=nora.id, era="1990", rate=1)
        doc.add(Scene, id="s1", number="1", characters=[nora.id, "GHOST"], shoot_day_id="day1")
        doc.add(ShootDay, id="day1", date=dt.date(2027, 3, 1), scene_ids=["s1", "s404"])
        doc.add(
            Audition,
            id="chem",
            starts_at=dt.datetime(2027, 1, 5, 10, tzinfo=dt.UTC),
            chemistry=True,
            role_ids=[nora.id],
            pairings=[Pairing(candidate_ids=[fine.id, "c-nowhere"])],
        )
        doc.delete(Talent, gone.id)
        found = {
            (f.code, f.entities[0].id, f.severity): f
            for f in integrity.findings(ProductionView(doc))
        }
        assert set(found) == {
            ("dangling-reference", "c-dangling", "error"),
            ("reference-to-deleted", "c-deleted", "warning"),
            ("unknown-era", "d-era", "error"),
            ("dangling-reference", "s1", "error"),
            ("dangling-reference", "day1", "error"),
            ("dangling-reference", "chem", "error"),
        }
        message = found[("dangling-reference", "s1", "error")].message
        assert message == "scene 1: characters refers to role GHOST, which does not exist"
        assert "pairings" in found[("dangling-reference", "chem", "error")].message
        assert "1962, 2022" in found[("unknown-era", "d-era", "error")].message
        fix = found[("reference-to-deleted", "c-deleted", "warning")].fix
        assert fix.startswith(f"castroom restore talent {gone.id[:8]}") and gone.id not in fix


def _sample_with_a_bad_peer(path: Path) -> tuple[str, str, str]:
    """The sample series, then a peer (raw pycrdt, merged like a sync) gives booked talent
    B rate=-5 and playing_age_min=12.5 and role R kind='villain'. B is also made a
    candidate for another role, whose booked talent T is returned to rank replacements for.
    Returns (B, R, T)."""
    with Workspace.open(path, member="tester") as ws:
        production = ws.create_production("Tides")
        doc = production.doc
        build_sample(doc)
        deals = {d.talent_id for d in doc.all(Deal)}
        booked = [c for c in doc.all(Candidate) if c.stage == "booked" and c.talent_id in deals]
        bad_talent = booked[0].talent_id
        others = [c for c in booked if c.role_id != booked[0].role_id]
        bad_role, kept = others[0].role_id, others[-1]
        assert kept.role_id != bad_role and kept.talent_id != bad_talent
        doc.add(Candidate, talent_id=bad_talent, role_id=kept.role_id, stage="shortlisted")
        peer = Doc()
        peer.apply_update(doc.encode_update())
        talent = peer.get("talents", type=Map)[bad_talent]
        talent["rate"] = -5
        talent["playing_age_min"] = 12.5
        peer.get("roles", type=Map)[bad_role]["kind"] = "villain"
        update = peer.get_update(doc.state_vector())
        production.apply_update(update, origin="sync", device="LAPTOP-7")
        return bad_talent, bad_role, kept.talent_id


def _keys(found: list[Finding], *avoid: str) -> set[tuple[str | None, str, str]]:
    return {
        (f.plugin, f.code, f.message)
        for f in found
        if not any(a in f.message or a in {e.id for e in f.entities} for a in avoid)
    }


def test_every_plugin_runs_on_a_production_holding_invalid_entities(tmp_path: Path) -> None:
    """Typed reads treat a stored-invalid entity as absent, so continuity, budget and
    contingency keep every finding about the valid entities, and integrity reports it."""
    path = tmp_path / "ws"
    bad_talent, bad_role, kept = _sample_with_a_bad_peer(path)
    with Workspace.open(path) as ws:
        production = ws.production()
        doc = production.doc
        view = ProductionView(doc, origin_of=production.origin_of)
        assert view.find(Talent, bad_talent) is None and view.find(Role, bad_role) is None
        with pytest.raises(NotFound, match=r"is invalid \(.*\); see `castroom invalid`"):
            view.get(Talent, bad_talent)
        with pytest.raises(NotFound, match="invalid"):
            view.resolve(Role, bad_role)
        plugins = make_plugins(entry_points=False)
        found = plugins.check(view)
        assert plugins.failures == []
        invalid = {(f.entities[0].id) for f in found if f.code == "invalid-entity"}
        assert invalid == {bad_talent, bad_role}
        # The bad talent's deals are still costed (a deal has its own rate) and flagged.
        report = budget.report_for(view)
        assert report is not None and bad_talent in {line.talent_id for line in report.lines}
        assert any(
            f.code == "deal-unknown" and "talent that is invalid" in f.message for f in found
        )
        plan = plugins.rank_replacements(view, kept, None)
        assert plugins.failures == [] and plan.roles
        assert bad_talent not in {r.talent_id for r in plan.replacements}
        # What continuity and budget said about the valid entities is all still said.
        bad_names = [str(doc.raw(Talent, bad_talent)["name"]), str(doc.raw(Role, bad_role)["name"])]
        after = _keys(found, bad_talent, bad_role, *bad_names)
        with Workspace.open(tmp_path / "clean") as clean_ws:
            clean = clean_ws.create_production("Tides")
            clean.doc.apply_update(doc.encode_update())
            for item in clean.doc.invalid():  # the same production, repaired
                fix = {"talent": {"rate": 1, "playing_age_min": 12}, "role": {"kind": "lead"}}
                clean.doc.update(model.kind_class(item.kind), item.id, fix[item.kind])
            before = _keys(
                make_plugins(entry_points=False).check(ProductionView(clean.doc)),
                bad_talent,
                bad_role,
                *bad_names,
            )
        assert {k for k in before if k[0] in ("continuity", "budget")} <= after
    plugins = make_plugins(entry_points=False)
    runner = CliRunner()
    result = runner.invoke(build_cli(plugins), ["--workspace", str(path), "budget"], obj=plugins)
    assert result.exit_code == 0, result.output
    assert "Total:" in result.output


def test_a_reference_to_an_invalid_entity_says_so_as_a_warning(tmp_path: Path) -> None:
    with Workspace.open(tmp_path / "ws", member="tester") as ws:
        production = ws.create_production("Tides")
        doc = production.doc
        ada = doc.add(Talent, name="Ada Stone")
        nora = doc.add(Role, name="Nora")
        doc.add(Candidate, id="c1", talent_id=ada.id, role_id=nora.id)
        doc.add(Scene, id="s1", number="1", characters=[nora.id, "GHOST"])
        peer = Doc()
        peer.apply_update(doc.encode_update())
        peer.get("roles", type=Map)[nora.id]["kind"] = "villain"
        production.apply_update(peer.get_update(doc.state_vector()), origin="sync", device="P")
        found = {(f.code, f.entities[0].id): f for f in integrity.findings(ProductionView(doc))}
        assert set(found) == {
            ("invalid-entity", nora.id),
            ("reference-to-invalid", "c1"),
            ("reference-to-invalid", "s1"),
            ("dangling-reference", "s1"),  # GHOST really does not exist
        }
        scene = found[("reference-to-invalid", "s1")]
        assert scene.severity == "warning"
        assert scene.message == (
            "scene 1: characters refers to role Nora, which is invalid (see `castroom invalid`)"
        )
        assert "GHOST, which does not exist" in found[("dangling-reference", "s1")].message


def test_references_to_one_invalid_entity_are_one_finding_per_kind_and_field(
    tmp_path: Path,
) -> None:
    with Workspace.open(tmp_path / "ws", member="tester") as ws:
        production = ws.create_production("Tides")
        doc = production.doc
        nora = doc.add(Role, name="Nora")
        for n in range(1, 6):
            doc.add(Scene, id=f"s{n}", number=str(n), characters=[nora.id])
        doc.add(Candidate, id="c1", talent_id=doc.add(Talent, name="Ada").id, role_id=nora.id)
        peer = Doc()
        peer.apply_update(doc.encode_update())
        peer.get("roles", type=Map)[nora.id]["kind"] = "villain"
        production.apply_update(peer.get_update(doc.state_vector()), origin="sync", device="P")
        grouped = [
            f for f in integrity.findings(ProductionView(doc)) if f.code == "reference-to-invalid"
        ]
        assert len(grouped) == 2  # the scenes' characters, the candidate's role_id
        scenes = next(f for f in grouped if f.entities[0].kind == "scene")
        assert scenes.message == (
            "5 scenes (scene 1, scene 2, scene 3 and 2 more): characters refers to role"
            " Nora, which is invalid (see `castroom invalid`)"
        )
        assert [e.id for e in scenes.entities] == ["s1", "s2", "s3", nora.id]
        assert scenes.entities[-1].label == "Nora"


def test_role_backups_are_checked_as_talent_or_candidate_references(tmp_path: Path) -> None:
    with Workspace.open(tmp_path / "ws") as ws:
        doc = ws.create_production("Tides").doc
        ada = doc.add(Talent, name="Ada Stone")
        gone = doc.add(Talent, name="Gil Hart")
        nora = doc.add(Role, name="Nora")
        cand = doc.add(Candidate, talent_id=ada.id, role_id=nora.id)
        doc.add(Role, id="fine", name="June", backups=[ada.id, cand.id])
        doc.add(Role, id="dangling", name="Maggie", backups=[ada.id, "NOBODY"])
        doc.add(Role, id="deleted", name="Vera", backups=[gone.id])
        doc.delete(Talent, gone.id)
        found = {
            (f.code, f.entities[0].id): f
            for f in integrity.findings(ProductionView(doc))
            if f.entities[0].kind == "role"
        }
        assert set(found) == {
            ("dangling-reference", "dangling"),
            ("reference-to-deleted", "deleted"),
        }
        message = found[("dangling-reference", "dangling")].message
        assert message == (
            "role Maggie: backups refers to talent or candidate NOBODY, which does not exist"
        )
        assert found[("reference-to-deleted", "deleted")].message.endswith(
            "deleted talent Gil Hart"
        )


def _two_days_and_a_scene() -> tuple[CastDocument, Scene, ShootDay, ShootDay, ShootDay]:
    doc = CastDocument.create("Tides")
    days = [doc.add(ShootDay, date=dt.date(2027, 3, n), day_number=n) for n in (1, 2, 3)]
    scene = doc.add(Scene, number="12", shoot_day_id=days[0].id)
    doc.update(ShootDay, days[0].id, {"scene_ids": [scene.id]})
    return doc, scene, *days


def mismatches(doc: CastDocument) -> list[Finding]:
    return [f for f in integrity.findings(ProductionView(doc)) if f.code == "scene-day-mismatch"]


def test_a_scene_and_its_shoot_day_that_agree_are_silent() -> None:
    doc, *_ = _two_days_and_a_scene()
    assert mismatches(doc) == []
    sample = CastDocument.create("Sample")
    build_sample(sample)
    assert mismatches(sample) == []  # the sample production writes both sides


def test_a_day_listing_a_scene_whose_shoot_day_id_disagrees_is_a_finding() -> None:
    doc, scene, one, two, _ = _two_days_and_a_scene()
    doc.update(Scene, scene.id, {"shoot_day_id": None})  # one side written alone
    [finding] = mismatches(doc)
    assert finding.severity == "warning"
    assert finding.message == (
        "scene 12: its shoot_day_id is empty, but shoot day day 1, 2027-03-01 lists it"
    )
    assert finding.fix.startswith("castroom set scene 12 shoot_day_id=2027-03-01")
    assert [e.id for e in finding.entities] == [scene.id, one.id]
    doc.update(Scene, scene.id, {"shoot_day_id": two.id})
    [finding] = mismatches(doc)
    assert "says shoot day day 2, 2027-03-02, but shoot day day 1, 2027-03-01 lists" in (
        finding.message
    )
    doc.update(ShootDay, one.id, {"scene_ids": []})
    [finding] = mismatches(doc)
    assert finding.message.endswith("but no shoot day lists the scene")


def test_two_peers_moving_one_scene_to_different_days_is_a_finding() -> None:
    """Offline, one member moves scene 12 to day 2 and another to day 3, each keeping
    both sides in step; the merge keeps one shoot_day_id but both days' lists."""
    doc, scene, one, two, three = _two_days_and_a_scene()
    peer = CastDocument()
    peer.apply_update(doc.encode_update())
    for replica, day in ((doc, two), (peer, three)):
        with replica.transaction():
            replica.update(ShootDay, one.id, {"scene_ids": []})
            replica.update(ShootDay, day.id, {"scene_ids": [scene.id]})
            replica.update(Scene, scene.id, {"shoot_day_id": day.id})
    doc.apply_update(peer.encode_update(doc.state_vector()))
    peer.apply_update(doc.encode_update(peer.state_vector()))
    for replica in (doc, peer):
        [finding] = mismatches(replica)
        assert "2 shoot days list it: shoot day day 2, 2027-03-02, shoot day day 3" in (
            finding.message
        )
        assert {e.id for e in finding.entities} == {scene.id, two.id, three.id}


def test_a_scene_on_a_deleted_day_is_left_to_the_reference_check() -> None:
    doc, scene, one, *_ = _two_days_and_a_scene()
    doc.delete(ShootDay, one.id)
    found = [(f.code, f.entities[0].id) for f in integrity.findings(ProductionView(doc))]
    assert found == [("reference-to-deleted", scene.id)]


def test_a_view_indexes_each_kind_once_for_every_plugin() -> None:
    """``view.by_id``: the valid entities of a kind by id (deleted ones only when asked),
    the same dict for every plugin handed the view, so no check builds its own."""
    doc = CastDocument.create("Tides")
    ada = doc.add(Talent, name="Ada Stone")
    gone = doc.add(Talent, name="Ida Marsh")
    doc.delete(Talent, gone.id)
    view = ProductionView(doc)
    assert dict(view.by_id(Talent)) == {ada.id: ada}
    assert list(view.by_id(Talent, include_deleted=True)) == sorted([ada.id, gone.id])
    assert view.by_id(Talent) is view.by_id(Talent)
    seen: list[object] = []

    class Looker:
        def __init__(self, name: str) -> None:
            self.__name__ = name

        @hookimpl
        def castroom_check(self, view: ProductionView) -> list[Finding]:
            seen.append(view.by_id(Talent))
            return []

    extra = [Looker("one"), Looker("two")]
    make_plugins(builtins={}, entry_points=False, extra=extra).check(view)
    assert len(seen) == 2 and seen[0] is seen[1] is view.by_id(Talent)
