"""A peer's update that deletes collection keys or clears the production map (which the
schema forbids: castroom only marks entities deleted) is merged all the same, so the
replicas never split, but nothing is lost: what it removed is kept in the attic (apart
from the log, so compaction keeps it), `check` reports each as an error, and
`castroom restore --from-history` brings it back as it was."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pycrdt import Doc, Map

from castroom.core import model
from castroom.core.workspace import Workspace


def seeded(path: Path) -> str:
    with Workspace.open(path, member="owner") as ws:
        production = ws.create_production("Harbour Lights", kind="film", budget_cap=500_000)
        doc = production.doc
        doc.add(model.Talent, id="T1", name="Ada Stone", rate=1200, notes="reliable")
        doc.add(model.Talent, id="T2", name="Ben Hale")
        doc.add(model.Role, id="R1", name="Maya", backups=["T1", "T2"])
        assert production.id
        return production.id


def wipe(path: Path, pid: str, *, production_map: bool = False) -> None:
    """A hostile writer's update: every talent and role key deleted (and, if asked, the
    production map cleared), merged as a sync peer's."""
    with Workspace.open(path) as ws:
        production = ws.production(pid)
        peer = Doc()
        peer.apply_update(production.doc.encode_update())
        before = peer.get_state()
        with peer.transaction():
            for name in ("talents", "roles"):
                shared = peer.get(name, type=Map)
                for key in list(shared.keys()):
                    del shared[key]
            if production_map:
                shared = peer.get("production", type=Map)
                for key in list(shared.keys()):
                    del shared[key]
        production.apply_update(peer.get_update(before), origin="sync", device="evil-laptop")
        assert production.doc.ids(model.Talent) == []  # merged: replicas must not split


def test_hard_deleted_entities_are_errors_and_come_back_from_history(cli: Any) -> None:
    path = cli.path
    pid = seeded(path)
    wipe(path, pid)
    checked = cli("check", "--json")
    assert checked.exit_code == 1
    found = [f for f in json.loads(checked.output)["findings"] if f["code"] == "hard-deleted"]
    assert sorted(f["entities"][0]["id"] for f in found) == ["R1", "T1", "T2"]
    assert all(f["severity"] == "error" and "evil-laptop" in f["message"] for f in found)
    assert found[0]["fix"] == "castroom restore --from-history"
    # Compaction folds the log into a snapshot: the attic keeps what restore needs.
    assert cli("compact").exit_code == 0
    restored = cli("restore", "--from-history")
    assert restored.exit_code == 0, restored.output
    assert "Restored talent Ada Stone (T1), hard-deleted by device evil-laptop" in restored.output
    with Workspace.open(path) as ws:
        doc = ws.production(pid).doc
        ada = doc.get(model.Talent, "T1")
        assert (ada.name, ada.rate, ada.notes) == ("Ada Stone", 1200, "reliable")
        assert doc.get(model.Role, "R1").backups == ["T1", "T2"]
    again = cli("check", "--json")
    assert not [f for f in json.loads(again.output)["findings"] if f["code"] == "hard-deleted"]
    nothing = cli("restore", "--from-history")
    assert nothing.output.strip() == "Nothing to restore: no entity was hard-deleted by a peer"


def test_a_cleared_production_map_comes_back(cli: Any) -> None:
    path = cli.path
    pid = seeded(path)
    wipe(path, pid, production_map=True)
    # Until then reads fail, but say first what happened and what brings it back.
    listed = cli("list", "talents")
    assert listed.exit_code == 1 and "no production yet" in listed.stderr
    assert listed.stderr.startswith(
        "Warning: a peer cleared this production's fields (device evil-laptop,"
    )
    assert "`castroom restore --from-history` brings them back" in listed.stderr
    # Until then check says so as an error (the integrity plugin failed on it before).
    checked = json.loads(cli("check", "--json").stdout)
    [found] = [f for f in checked["findings"] if f["entities"][0]["kind"] == "production"]
    assert (found["code"], found["severity"]) == ("hard-deleted", "error")
    assert found["fix"] == "castroom restore --from-history"
    assert found["message"].startswith("production Harbour Lights was hard-deleted by a peer")
    assert [f["plugin"] for f in checked["failures"]] == ["budget"]  # no production to cost
    restored = cli("restore", "--from-history")
    assert restored.exit_code == 0, restored.output
    assert "Restored production Harbour Lights" in restored.output
    listed = cli("list", "talents")
    assert listed.exit_code == 0 and "Ada Stone" in listed.output
    with Workspace.open(path) as ws:
        production = ws.production(pid).doc.production
        assert (production.title, production.budget_cap) == ("Harbour Lights", 500_000)


def test_restore_needs_kind_and_ref_or_from_history(cli: Any) -> None:
    seeded(cli.path)
    result = cli("restore")
    assert result.exit_code == 2 and "give KIND and REF, or --from-history" in result.output
