"""`castroom demo`, the main job behind `make demo`, runs end to end in a real process."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
from patience import PATIENCE
from sync_helpers import stop_process
from web_helpers import wait_for

from castroom.core.model import Candidate, Role, Scene, ShootDay, Talent
from castroom.core.workspace import Workspace
from tests.conftest import run_castroom


def test_demo_builds_the_sample_and_converges(tmp_path: Path) -> None:
    root = tmp_path / "demo"
    result = run_castroom("demo", "--dir", str(root), timeout=240)
    assert result.returncode == 0, result.stderr
    assert "converged" in result.stdout
    assert "DIVERGED" not in result.stdout
    # Money as everywhere else: in the production's currency, never a bare float.
    assert re.search(r"rate €\d{1,3}(,\d{3})*\.\d\d \(Alex\)", result.stdout)
    # make demo also runs the checks, the budget and a drop-out (issue 3).
    out = result.stdout
    assert re.search(r"castroom check: \d+ findings", out)
    assert "castroom budget: the five most" in out and "against a cap of" in out
    assert "castroom replace: ranked replacements" in out
    top = _replacements(out)[0]
    assert top.startswith("1. ") and re.search(r"playing age \d+-\d+ fits \d+", top), top
    for misfit in ("does not fit", "ranked after those who fit", "already plays"):
        assert misfit not in top, top

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
        assert len(a.all(ShootDay)) == 25  # the README's "150 scenes over 25 shoot days"
        maggie = a.resolve(Role, "Maggie Doyle")
        assert [era.name for era in maggie.eras] == ["1962", "1994", "2022"]
        # Backups come from each era's own pool: two candidates (of that era) per era.
        backup_eras = [a.get(Candidate, ref).era for ref in maggie.backups]
        assert sorted(backup_eras) == ["1962", "1962", "1994", "1994", "2022", "2022"]
        assert maggie.notes.startswith("Wig fittings")

    listed = run_castroom("-w", str(root / "sam"), "list", "roles", "--json")
    assert listed.returncode == 0, listed.stderr
    assert len(json.loads(listed.stdout)) == 40


def test_demo_can_run_twice_in_the_same_folder(tmp_path: Path) -> None:
    root = tmp_path / "again"
    for _ in range(2):
        result = run_castroom("demo", "--dir", str(root), timeout=240)
        assert result.returncode == 0, result.stderr


def _replacements(out: str) -> list[str]:
    """The demo's ranked replacements, one string each (the panel's wrapping undone)."""
    panel = out.split("castroom replace: ranked replacements", 1)[1].split("╰", 1)[0]
    text = " ".join(line.strip().strip("│").strip() for line in panel.splitlines())
    return [m.strip() for m in re.split(r"\s(?=\d+\. \S)", text) if re.match(r"\d+\. ", m)]


def test_demo_refuses_a_folder_it_did_not_make(tmp_path: Path) -> None:
    """`--dir` pointing at someone's folder (a workspace, a home folder, /) is refused and
    left exactly as it was: the demo only ever wipes a folder an earlier demo made."""
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "notes.txt").write_text("keep me")
    (precious / "castroom.db").write_bytes(b"a real workspace")
    result = run_castroom("demo", "--dir", str(precious))
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"Error: {precious} is not empty and was not made by `castroom demo`: nothing was"
        " touched; give --dir a new or empty folder"
    ]
    assert sorted(p.name for p in precious.iterdir()) == ["castroom.db", "notes.txt"]
    assert (precious / "notes.txt").read_text() == "keep me"
    afile = tmp_path / "afile"
    afile.write_text("x")
    assert run_castroom("demo", "--dir", str(afile)).returncode != 0
    assert afile.read_text() == "x"


def test_demo_ends_by_saying_how_to_open_the_dashboard(tmp_path: Path) -> None:
    root = tmp_path / "demo"
    result = run_castroom("demo", "--dir", str(root), timeout=240)
    assert result.returncode == 0, result.stderr
    last = result.stdout.strip().splitlines()[-1]
    assert last.startswith(f"Open the casting room's dashboard: castroom -w {root}/alex serve")
    assert "castroom demo --serve" in last


def test_demo_serve_keeps_serving_with_the_sign_in_link(tmp_path: Path) -> None:
    log = tmp_path / "demo.log"
    exe = str(Path(sys.executable).with_name("castroom"))
    with log.open("w") as out:
        proc = subprocess.Popen(
            [exe, "demo", "--dir", str(tmp_path / "demo"), "--serve", "--port", "0"],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        try:
            pattern = re.compile(r"Open the dashboard as (.+): (http://\S+)/\?token=(\S+)")
            match = wait_for(lambda: pattern.search(log.read_text()), 120, "the sign-in link")
            member, url, token = match.groups()
            assert member == "Alex Moreno (casting director)"
            session = httpx.get(f"{url}/api/session", params={"token": token}, timeout=PATIENCE)
            assert session.status_code == 200, session.text
            assert [p["title"] for p in session.json()["productions"]] == ["The Harbour Years"]
            assert httpx.get(f"{url}/", timeout=PATIENCE).status_code == 200
        finally:
            code = stop_process(proc)
    assert code == 0, log.read_text()[-2000:]
    assert "castroom server stopped" in log.read_text()
