"""`castroom demo`, the main job behind `make demo`, runs end to end in a real process."""

from __future__ import annotations

import json
from pathlib import Path

from castroom.core.model import Role, Scene, Talent
from castroom.core.workspace import Workspace
from tests.conftest import run_castroom


def test_demo_builds_the_sample_and_converges(tmp_path: Path) -> None:
    root = tmp_path / "demo"
    result = run_castroom("demo", "--dir", str(root), timeout=240)
    assert result.returncode == 0, result.stderr
    assert "converged" in result.stdout
    assert "DIVERGED" not in result.stdout

    # Both team members' workspaces hold the same, complete production.
    with (
        Workspace.open(root / "alex", create=False) as alex,
        Workspace.open(root / "sam", create=False) as sam,
        Workspace.open(root / "priya", create=False) as priya,
    ):
        a, s, p = alex.production().doc, sam.production().doc, priya.production().doc
        # Sam converged with Alex by bundles; Priya then raised the cap through the server.
        assert a.to_data() == p.to_data()
        assert {k: v for k, v in a.to_data().items() if k != "production"} == {
            k: v for k, v in s.to_data().items() if k != "production"
        }
        assert a.production.budget_cap == (s.production.budget_cap or 0) + 10_000_000
        assert len(a.all(Talent)) == 300
        assert len(a.all(Role)) == 40
        assert len(a.all(Scene)) == 150
        maggie = a.resolve(Role, "Maggie Doyle")
        assert [era.name for era in maggie.eras] == ["1962", "1994", "2022"]
        assert maggie.notes.startswith("Wig fittings")

    listed = run_castroom("-w", str(root / "sam"), "list", "roles", "--json")
    assert listed.returncode == 0, listed.stderr
    assert len(json.loads(listed.stdout)) == 40


def test_demo_can_run_twice_in_the_same_folder(tmp_path: Path) -> None:
    root = tmp_path / "again"
    for _ in range(2):
        result = run_castroom("demo", "--dir", str(root), timeout=240)
        assert result.returncode == 0, result.stderr
