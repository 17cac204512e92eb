"""The import inbox: files dropped in a folder are imported by the importer that claims
them, then moved to done/ or failed/ (with the reason)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from patience import PATIENCE

from castroom.core.importing import import_into
from castroom.core.model import Scene, Talent
from castroom.core.plugins import make_plugins
from castroom.core.workspace import Workspace
from castroom.plugins.inbox import Inbox
from tests.test_screenplay import FOUNTAIN

GOOD_CSV = "name,playing_age_min,playing_age_max\nAda Stone,30,40\nBo Li,20,25\n"
BAD_CSV = "name,playing_age_min,playing_age_max\nAda Stone,30,40\nBackwards,40,30\n"


def test_once_imports_claimed_files_and_files_the_rest(cli, tmp_path: Path) -> None:
    cli("init", "--production", "Harbour Lights")
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "talents.csv").write_text(GOOD_CSV, encoding="utf-8")
    (inbox / "script.fountain").write_text(FOUNTAIN, encoding="utf-8")
    (inbox / "broken.csv").write_text(BAD_CSV, encoding="utf-8")
    (inbox / "holiday.jpg").write_bytes(b"\xff\xd8\xff")
    (inbox / "half.csv.part").write_text("name\n", encoding="utf-8")
    result = cli("watch-inbox", str(inbox), "--once")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (inbox / "done").iterdir()) == ["script.fountain", "talents.csv"]
    failed = sorted(p.name for p in (inbox / "failed").iterdir())
    assert failed == [
        "broken.csv",
        "broken.csv.reason.txt",
        "holiday.jpg",
        "holiday.jpg.reason.txt",
    ]
    reason = (inbox / "failed" / "broken.csv.reason.txt").read_text()
    assert "nothing imported" in reason and "line 3: talent.playing_age_max" in reason
    assert "no importer claims" in (inbox / "failed" / "holiday.jpg.reason.txt").read_text()
    assert (inbox / "half.csv.part").exists()  # still being written: left alone
    talents = json.loads(cli("list", "talents", "--json").stdout)
    assert sorted(t["name"] for t in talents) == ["Ada Stone", "Bo Li"]  # not "Backwards"
    assert len(json.loads(cli("list", "scenes", "--json").stdout)) == 5
    assert "talents.csv: imported with csv: 2 created" in result.stdout
    # The same name dropped again goes to done/ beside the first, not over it.
    (inbox / "talents.csv").write_text(GOOD_CSV, encoding="utf-8")
    cli("watch-inbox", str(inbox), "--once")
    assert len(list((inbox / "done").glob("talents*.csv"))) == 2
    assert len(json.loads(cli("list", "talents", "--json").stdout)) == 2


def test_watch_in_process_picks_up_new_files(tmp_path: Path) -> None:
    with Workspace.open(tmp_path / "ws") as ws:
        production = ws.create_production("Harbour Lights")
        box = Inbox(
            tmp_path / "in",
            make_plugins(entry_points=False).importers(),
            lambda importer, source: import_into(production.doc, importer, source, {}),
        )
        started = time.monotonic()
        dropped = False

        def drop_then_stop() -> bool:
            nonlocal dropped
            elapsed = time.monotonic() - started
            if elapsed > 0.5 and not dropped:
                tmp = tmp_path / "in" / "talents.csv.tmp"
                tmp.write_text(GOOD_CSV, encoding="utf-8")
                tmp.replace(tmp_path / "in" / "talents.csv")  # an atomic drop
                dropped = True
            return any((tmp_path / "in" / "done").iterdir()) or elapsed > PATIENCE

        outcomes = box.watch(seconds=2 * PATIENCE, stop=drop_then_stop)
        assert [o.ok for o in outcomes] == [True]
        assert len(production.doc.all(Talent)) == 2


def test_live_watch_subprocess(tmp_path: Path) -> None:
    env = {**os.environ, "CASTROOM_WORKSPACE": str(tmp_path / "ws")}
    exe = str(Path(sys.executable).with_name("castroom"))
    subprocess.run(
        [exe, "init", "--production", "Harbour Lights"],
        env=env,
        check=True,
        capture_output=True,
        timeout=PATIENCE,
    )
    inbox = tmp_path / "inbox"
    proc = subprocess.Popen(
        [exe, "watch-inbox", str(inbox), "--seconds", "4"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + PATIENCE
        while not (inbox / "done").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        (inbox / "script.fountain").write_text(FOUNTAIN, encoding="utf-8")
        while not (inbox / "done" / "script.fountain").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert (inbox / "done" / "script.fountain").exists()
        out, err = proc.communicate(timeout=PATIENCE)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    assert proc.returncode == 0, err
    assert "script.fountain: imported with script" in out
    with Workspace.open(tmp_path / "ws") as ws:
        assert len(ws.production().doc.all(Scene)) == 5
