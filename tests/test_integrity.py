"""The integrity check: an entity a peer's well-formed update left invalid under the model
is an error finding in ``castroom check``, naming the kind, id, field, rule and the device
the update came from, never a silent "No findings."."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from click.testing import CliRunner
from pycrdt import Doc, Map

from castroom.core.cli import build_cli
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
from castroom.core.view import ProductionView
from castroom.core.workspace import Workspace
from castroom.plugins import integrity


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
        doc.add(Scene, id="s1", number="1", characters=[nora.id, "GHOST"])
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
        assert found[("reference-to-deleted", "c-deleted", "warning")].fix.startswith(
            f"castroom restore talent {gone.id}"
        )
