"""Two processes writing one workspace at once lose nothing, and a third that holds the
production open sees everything without reopening."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from castroom.core.model import Role, Talent
from castroom.core.workspace import Workspace

WRITES = 120

WRITER = r"""
import sys, time
from castroom.core.model import Role, Talent
from castroom.core.workspace import Workspace

name, count, start_at = sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
with Workspace.open(sys.argv[1], member=name) as ws:
    production = ws.production()
    doc = production.doc
    while time.time() < start_at:  # start together, to really overlap
        time.sleep(0.005)
    for i in range(count):
        doc.add(Talent, id=f"{name}-{i}", name=f"{name} {i}", rate=i)
        doc.update(Talent, "shared", {"agent" if name == "a" else "union": f"{name}{i}"})
        doc.insert_item(Role, "r1", "backups", 0, f"{name}-{i}")
        doc.edit_text(Talent, "shared", "notes", 0, 0, f"<{name}{i}>")
        if i % 50 == 49:
            production.compact()
"""


@pytest.mark.slow
def test_two_writers_at_once_lose_nothing(tmp_path: Path) -> None:
    path = tmp_path / "ws"
    with Workspace.open(path) as ws:
        production = ws.create_production("Busy")
        watcher = production.doc
        watcher.add(Talent, id="shared", name="Shared talent")
        watcher.add(Role, id="r1", name="Maya")
        start_at = time.time() + 1.5
        writers = [
            subprocess.Popen(
                [sys.executable, "-c", WRITER, str(path), name, str(WRITES), str(start_at)],
                stderr=subprocess.PIPE,
                text=True,
            )
            for name in ("a", "b")
        ]
        seen_during = 0
        while any(w.poll() is None for w in writers):
            seen_during = max(seen_during, len(watcher.all(Talent)))  # reads while they write
            time.sleep(0.05)
        for writer in writers:
            assert writer.wait(timeout=120) == 0, writer.stderr.read() if writer.stderr else ""
        # The watcher (open all along, never reopened) sees every write.
        check(watcher)
        assert seen_during > 1
    with Workspace.open(path) as ws:  # and so does a fresh open
        check(ws.production().doc)
        authors = {e.member for e in ws.production().history(limit=10_000)}
        assert {"a", "b"} <= authors


def check(doc) -> None:
    ids = {t.id for t in doc.all(Talent)}
    expected = {f"{n}-{i}" for n in ("a", "b") for i in range(WRITES)}
    assert expected <= ids, sorted(expected - ids)[:5]
    shared = doc.get(Talent, "shared")
    assert (shared.agent, shared.union) == (f"a{WRITES - 1}", f"b{WRITES - 1}")
    for n in ("a", "b"):
        for i in range(WRITES):
            assert f"<{n}{i}>" in shared.notes
    assert set(doc.get(Role, "r1").backups) == expected
    assert doc.invalid() == []
