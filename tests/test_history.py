"""``castroom history``: old → new values in people's words, deletes told from restores,
for local writes and for a peer's update merged in."""

from __future__ import annotations

from pathlib import Path

from pycrdt import Doc, Map

from castroom.core import model
from castroom.core.workspace import Workspace
from tests.test_cli_core import as_json, ok


def _changes(cli, *args: str) -> list[tuple[str, list[str]]]:
    rows = as_json(cli("history", "--limit", "100", *args, "--json"))
    return [(r["label"], r["changes"]) for r in rows]


def test_history_shows_old_and_new_values_as_people_write_them(cli) -> None:
    ok(cli("init", "--production", "Tides"))
    ok(cli("add", "talent", "name=Ada Stone", "rate=1200"))
    ok(cli("add", "talent", "name=Ben Ray"))
    ok(cli("add", "role", "name=Nora"))
    ok(cli("add", "candidate", "talent_id=Ada Stone", "role_id=Nora", "stage=offer"))
    ok(cli("set", "talent", "Ada Stone", "rate=$1,500", "hair=red"))
    ok(cli("set", "candidate", "Ada Stone for Nora", "stage=booked"))
    added = cli("add", "deal", "talent_id=Ada Stone", "role_id=Nora", "rate=900", "--json")
    deal = as_json(added)["id"]
    ok(cli("set", "deal", deal, "talent_id=Ben Ray"))
    shown = _changes(cli)
    assert shown[0] == ("Ben Ray / Nora", ["talent_id: Ada Stone → Ben Ray"])
    assert ("Ada Stone for Nora", ["stage: offer → booked"]) in shown
    assert ("Ada Stone", ["hair: (none) → red", "rate: $1,200.00 → $1,500.00"]) in shown
    assert ("Ada Stone", ["(created)"]) in shown
    table = ok(cli("history"))
    assert "stage: offer → booked" in table and "$1,200.00 →" in table, table


def test_history_tells_a_delete_from_a_restore(cli) -> None:
    ok(cli("init", "--production", "Tides"))
    ok(cli("add", "talent", "name=Ada Stone"))
    ok(cli("delete", "talent", "Ada Stone"))
    ok(cli("restore", "talent", "Ada Stone"))
    assert _changes(cli)[:3] == [
        ("Ada Stone", ["restored"]),
        ("Ada Stone", ["deleted"]),
        ("Ada Stone", ["(created)"]),
    ]


def test_a_peers_edits_show_their_values_once_merged(cli, tmp_path: Path) -> None:
    """The values come from the merge itself, not from a local write: a peer's update
    (a plain Yjs client writing the layout) shows old → new and its delete."""
    ok(cli("init", "--production", "Tides", "--currency", "EUR"))
    ada = as_json(cli("add", "talent", "name=Ada Stone", "rate=1200", "--json"))["id"]
    with Workspace.open(cli.path) as ws:
        production = ws.production()
        peer = Doc()
        peer.apply_update(production.doc.encode_update())
        talent = peer.get("talents", type=Map)[ada]
        with peer.transaction():
            talent["rate"] = 150000
            talent["union"] = "SAG-AFTRA"
        production.apply_update(
            peer.get_update(production.doc.state_vector()), origin="sync", device="LAPTOP"
        )
        talent["deleted"] = True
        production.apply_update(
            peer.get_update(production.doc.state_vector()), origin="sync", device="LAPTOP"
        )
    shown = as_json(cli("history", "--entity", ada, "--json"))
    assert [(r["origin"], r["changes"]) for r in shown[:2]] == [
        ("sync", ["deleted"]),
        ("sync", ["rate: €1,200.00 → €1,500.00", "union: (none) → SAG-AFTRA"]),
    ]
    assert shown[1]["values"][0] == {"field": "rate", "old": 120000, "new": 150000}


def test_values_are_kept_through_compaction_and_reopening(cli) -> None:
    ok(cli("init", "--production", "Tides"))
    ok(cli("add", "role", "name=Nora", "kind=lead"))
    ok(cli("set", "role", "Nora", "kind=supporting"))
    ok(cli("compact"))
    with Workspace.open(cli.path) as ws:
        ws.production().doc.update(
            model.Role, ws.production().doc.resolve_id(model.Role, "Nora"), {"kind": "lead"}
        )
    assert _changes(cli)[:2] == [
        ("Nora", ["kind: supporting → lead"]),
        ("Nora", ["kind: lead → supporting"]),
    ]


def test_a_delete_logged_before_values_were_says_it_may_be_a_restore(cli) -> None:
    """A workspace from before values were logged (format 0, migrated) has rows naming the
    deleted field only: the history does not guess which way it went."""
    ok(cli("init", "--production", "Tides"))
    ada = as_json(cli("add", "talent", "name=Ada Stone", "--json"))["id"]
    with Workspace.open(cli.path) as ws:
        production = ws.production()
        assert production.id is not None
        ws.store.append(
            production.id,
            b"\x00\x00",  # an empty update: the row stands for one whose values were not kept
            member="noor",
            device="LAPTOP",
            origin="sync",
            changes={("talents", ada): {"deleted"}},
        )
    assert _changes(cli)[0] == ("Ada Stone", ["deleted or restored"])
