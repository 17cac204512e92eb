"""The integrity check: an entity a peer's well-formed update left invalid under the model
is an error finding in ``castroom check``, naming the kind, id, field, rule and the device
the update came from, never a silent "No findings."."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner
from pycrdt import Doc, Map

from castroom.core.cli import build_cli
from castroom.core.model import Talent
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
