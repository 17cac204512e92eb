"""Every core CLI command, with its error paths, exit codes and --json output."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from pycrdt import Doc, Map

from castroom.core import model
from castroom.core.workspace import Workspace
from tests.conftest import run_castroom


def ok(result) -> str:
    assert result.exit_code == 0, result.output
    return result.stdout


def fails(result, *words: str) -> str:
    assert result.exit_code != 0, result.output
    message = result.stderr.strip()
    assert message.startswith("Error:") and len(message.splitlines()) == 1, message
    for word in words:
        assert word in message, message
    return message


@pytest.fixture
def castroom(cli):
    ok(cli("init", "--production", "Tides", "--kind", "series", "--budget-cap", "1000000"))
    return cli


def as_json(result) -> object:
    return json.loads(ok(result))


def log_rows(path: Path) -> int:
    """Rows in the workspace's update log (read straight from the SQLite file)."""
    with sqlite3.connect(path / "castroom.db") as db:
        return db.execute("SELECT COUNT(*) FROM updates").fetchone()[0]


def one_of_each(castroom) -> dict[str, str]:
    """One entity of every kind; kind -> id."""
    ids = {"talent": as_json(castroom("add", "talent", "name=Ada", "--json"))["id"]}
    ids["role"] = as_json(castroom("add", "role", "name=Maya", "--json"))["id"]
    talent, role = ids["talent"], ids["role"]
    samples = {
        "candidate": ["talent_id=" + talent, "role_id=" + role],
        "audition": ["role_id=" + role, "starts_at=2026-03-01T10:00:00"],
        "scene": ["number=12A", f'characters=["{role}"]'],
        "shoot_day": ["date=2026-04-01"],
        "availability": ["talent_id=" + talent, "start=2026-04-01", "end=2026-04-02"],
        "deal": ["talent_id=" + talent, "role_id=" + role, "rate=100000"],
        "member": ["name=Rosa"],
    }
    for kind, fields in samples.items():
        ids[kind] = as_json(castroom("add", kind, *fields, "--json"))["id"]
    return ids


#: Per kind: a valid change (field, value, as JSON) and a change that breaks a rule.
CHANGES = {
    "talent": (("rate", "5", 500), "rate=-1"),
    "role": (("status", "cast", "cast"), "age_min=-1"),
    "candidate": (("stage", "callback", "callback"), "stage=maybe"),
    "audition": (("minutes", "45", 45), "minutes=0"),
    "scene": (("heading", "EXT. PIER", "EXT. PIER"), "number="),
    "shoot_day": (("call_time", "06:30", "06:30"), "call_time=25:00"),
    "availability": (("kind", "booked", "booked"), "end=2026-03-01"),
    "deal": (("status", "offered", "offered"), "unit=month"),
    "member": (("job", "producer", "producer"), "job=boss"),
}


@pytest.mark.parametrize("kind", sorted(CHANGES))
def test_set_delete_restore_every_kind(castroom, kind: str) -> None:
    ref = one_of_each(castroom)[kind]
    (field, text, value), bad = CHANGES[kind]
    assert as_json(castroom("set", kind, ref, f"{field}={text}", "--json"))[field] == value
    before = log_rows(castroom.path)
    fails(castroom("set", kind, ref, bad), bad.split("=")[0])
    assert log_rows(castroom.path) == before  # a refused set writes nothing
    assert as_json(castroom("show", kind, ref, "--json"))[field] == value
    assert f"Deleted {kind}" in ok(castroom("delete", kind, ref))
    assert ref not in [e["id"] for e in as_json(castroom("list", kind, "--json"))]
    assert as_json(castroom("show", kind, ref, "--json"))["deleted"] is True
    before = log_rows(castroom.path)
    assert "is already deleted" in ok(castroom("delete", kind, ref))  # writes nothing
    assert log_rows(castroom.path) == before
    assert f"Restored {kind}" in ok(castroom("restore", kind, ref))
    assert ref in [e["id"] for e in as_json(castroom("list", kind, "--json"))]


def test_init_creates_workspace_and_production(cli) -> None:
    data = as_json(cli("init", "--production", "Tides", "--kind", "series", "--json"))
    assert data["title"] == "Tides" and data["kind"] == "series" and data["id"]
    assert (cli.path / "castroom.db").exists()
    fails(cli("init", "--production", ""), "title")
    fails(cli("init", "--production", "X", "--currency", "dollars"), "currency")
    assert cli("init", "--production", "X", "--kind", "opera").exit_code == 2  # click's choice


@pytest.mark.parametrize(
    "args", [("--currency", "dollars"), ("--budget-cap", "-5")], ids=["currency", "budget"]
)
def test_init_with_a_bad_field_creates_nothing(cli, args: tuple[str, ...]) -> None:
    fails(cli("init", "--production", "X", *args), args[0][2:].replace("-", "_"))
    assert not cli.path.exists()  # no castroom.db, no config.toml, not even the folder
    message = fails(cli("init", "--production", "", *args))
    assert "title" in message or "currency" in message or "budget" in message
    assert not cli.path.exists()


@pytest.mark.parametrize("kind", ["talent", "talents", "Talent"])
def test_add_accepts_singular_and_plural(castroom, kind: str) -> None:
    data = as_json(
        castroom(
            "add",
            kind,
            "name=Ada Stone",
            "playing_age_min=30",
            "playing_age_max=40",
            "rate=1500",
            'languages=["en", "fr"]',
            "--json",
        )
    )
    assert data["name"] == "Ada Stone" and data["rate"] == 150000 and data["id"]
    assert data["languages"] == ["en", "fr"]
    assert "Added talent" in ok(castroom("add", kind, "name=Bo"))


def test_every_kind_can_be_added_listed_and_shown(castroom) -> None:
    talent = as_json(castroom("add", "talent", "name=Ada", "--json"))["id"]
    role = as_json(
        castroom(
            "add",
            "role",
            "name=Maya",
            "age_min=30",
            "age_max=40",
            'eras=[{"name": "young", "age_max": 12}]',
            "--json",
        )
    )["id"]
    samples = {
        "candidates": ["talent_id=" + talent, "role_id=" + role, "stage=shortlisted"],
        "auditions": ["role_id=" + role, "starts_at=2026-03-01T10:00:00"],
        "scenes": ["number=12A", f'characters=["{role}"]', "story_day=3"],
        "shoot-days": ["date=2026-04-01", "scene_ids=[]"],
        "availabilities": [
            "talent_id=" + talent,
            "start=2026-04-01",
            "end=2026-04-02",
            "kind=first_hold",
        ],
        "deals": ["talent_id=" + talent, "role_id=" + role, "rate=100000", "unit=week"],
        "members": ["name=Rosa", "job=producer"],
    }
    for kind, fields in samples.items():
        made = as_json(castroom("add", kind, *fields, "--json"))
        listed = as_json(castroom("list", kind, "--json"))
        assert [e["id"] for e in listed] == [made["id"]]
        shown = as_json(castroom("show", kind, made["id"], "--json"))
        assert shown == made
        assert made["id"] in ok(castroom("show", kind, made["id"]))
        assert "1 " in ok(castroom("list", kind))  # the rich table's title


def test_list_hides_deleted_unless_all_and_restore_brings_back(castroom) -> None:
    ada = as_json(castroom("add", "talent", "name=Ada", "--json"))["id"]
    as_json(castroom("add", "talent", "name=Bo", "--json"))
    assert "Deleted talent" in ok(castroom("delete", "talent", "Ada"))
    names = [t["name"] for t in as_json(castroom("list", "talents", "--json"))]
    assert names == ["Bo"]
    everything = as_json(castroom("list", "talents", "--all", "--json"))
    assert {t["name"]: t["deleted"] for t in everything} == {"Ada": True, "Bo": False}
    assert "deleted" in ok(castroom("list", "talents", "--all"))
    assert "talent Ada is already deleted" in ok(castroom("delete", "talent", "Ada"))
    assert "Restored" in ok(castroom("restore", "talent", ada))
    assert len(as_json(castroom("list", "talents", "--json"))) == 2


def test_list_where_filters(castroom) -> None:
    castroom("add", "talent", "name=Ada", "rate=100")
    castroom("add", "talent", "name=Bo", "rate=200")
    rows = as_json(castroom("list", "talents", "--where", "rate=200", "--json"))
    assert [r["name"] for r in rows] == ["Bo"]
    fails(castroom("list", "talents", "--where", "salary=3"), "salary", "no such field")


def test_set_changes_fields_and_validates(castroom) -> None:
    ada = as_json(
        castroom(
            "add", "talent", "name=Ada Stone", "playing_age_min=30", "playing_age_max=40", "--json"
        )
    )["id"]
    data = as_json(castroom("set", "talent", "Ada Stone", "rate=2500", "hair=red", "--json"))
    assert data["rate"] == 250000 and data["hair"] == "red"
    assert "Updated talent" in ok(castroom("set", "talent", ada, "eyes=green"))
    before = log_rows(castroom.path)
    fails(castroom("set", "talent", ada, "playing_age_min=50"), "playing_age_max", "must be >=")
    fails(castroom("set", "talent", ada, "rate=-5"), "rate")
    fails(castroom("set", "talent", ada, "rate=lots"), "rate")
    fails(castroom("set", "talent", ada, "salary=5"), "salary", "no such field")
    fails(castroom("set", "talent", ada, "novalue"), "field=value")
    fails(castroom("set", "talent", ada, "languages=[broken"), "languages", "JSON")
    fails(castroom("set", "talent", "nobody", "rate=5"), "no talent")
    assert log_rows(castroom.path) == before  # none of the refused sets wrote anything
    shown = as_json(castroom("show", "talent", ada, "--json"))
    assert (shown["playing_age_min"], shown["rate"], shown["eyes"]) == (30, 250000, "green")
    data = as_json(castroom("set", "talent", ada, "rate=null", "--json"))
    assert data["rate"] is None


def test_the_production_is_no_kind_and_each_command_names_its_own(castroom) -> None:
    """The README lists production among the kinds; the entity commands refuse it, each
    naming the production command that does what was asked, and write nothing."""
    before = log_rows(castroom.path)
    instead = {
        ("list", "productions"): "`castroom production list`",
        ("show", "production", "Tides"): "`castroom production show`",
        ("set", "production", "Tides", "hours_per_day=9"): "`castroom production set",
        # As people type it: no REF, since a workspace's production needs none.
        ("set", "production", "hours_per_day=9"): "`castroom production set",
        ("delete", "production", "Tides"): "`castroom production delete",
        ("restore", "production", "Tides"): "`castroom production restore",
        ("history", "--kind", "production", "--entity", "Tides"): "`castroom history --entity",
    }
    for args, command in instead.items():
        fails(castroom(*args), command)
    assert log_rows(castroom.path) == before
    [tides] = as_json(castroom("production", "list", "--json"))
    ok(castroom("history", "--entity", tides["id"]))


def test_set_without_assignments_is_a_usage_error(castroom) -> None:
    ok(castroom("add", "talent", "name=Ada Stone"))
    result = castroom("set", "talent", "Ada Stone")
    assert result.exit_code == 2 and "Missing argument 'ASSIGNMENTS...'" in result.stderr


def test_add_errors_write_nothing(castroom) -> None:
    before = log_rows(castroom.path)
    fails(castroom("add", "talent", "rate=5"), "name", "required")
    fails(castroom("add", "talent", "name=Ada", "playing_age_min=-1"), "playing_age_min")
    fails(castroom("add", "candidate", "talent_id=t", "role_id=r", "stage=maybe"), "stage")
    fails(castroom("add", "dragon", "name=Smaug"), "unknown kind")
    fails(castroom("add", "production", "title=x"), "castroom init --production")
    fails(castroom("add", "talent", "id=mine", "name=x"), "id")
    assert as_json(castroom("list", "talents", "--json")) == []
    assert as_json(castroom("list", "candidates", "--json")) == []
    assert log_rows(castroom.path) == before


def test_add_errors_do_not_show_a_generated_id(castroom) -> None:
    message = fails(castroom("add", "talent", "name=Ada", "rate=-5"), "talent.rate")
    assert message.startswith("Error: invalid talent.rate:"), message  # no "(01J...)"
    message = fails(castroom("add", "talent", "name=Ada", "playing_age_min=9", "playing_age_max=8"))
    assert message.startswith("Error: invalid talent.playing_age_max:"), message


@pytest.mark.parametrize("when", ["2026-01-01T10:00", "2026-01-01 10:00", "2026-01-01T10:00:00"])
def test_datetimes_without_seconds_are_accepted(castroom, when: str) -> None:
    role = as_json(castroom("add", "role", "name=Maya", "--json"))["id"]
    made = as_json(castroom("add", "audition", f"role_id={role}", f"starts_at={when}", "--json"))
    assert made["starts_at"] == "2026-01-01T10:00:00"
    changed = as_json(
        castroom("set", "audition", made["id"], "starts_at=2026-01-02T09:30", "--json")
    )
    assert changed["starts_at"] == "2026-01-02T09:30:00"
    fails(castroom("set", "audition", made["id"], "starts_at=2026-01-02T25:00"), "starts_at")


def test_a_newer_document_gives_a_warning(castroom) -> None:
    with Workspace.open(castroom.path) as ws:
        production = ws.production()
        peer = Doc()
        peer.apply_update(production.doc.encode_update())
        peer.get("meta", type=Map)["schema_version"] = 99
        production.apply_update(peer.get_update(production.doc.state_vector()), device="NEW")
    result = castroom("list", "talents", "--json")
    assert json.loads(result.stdout) == []  # still readable
    assert result.stderr.startswith("Warning: ") and "schema version 99" in result.stderr
    assert "newer version of castroom" in result.stderr


def test_show_by_prefix_and_ambiguity(castroom) -> None:
    castroom("add", "talent", "name=Ada")
    castroom("add", "talent", "name=Ada", "--force")  # a namesake
    fails(castroom("show", "talent", "Ada"), "matches 2")
    fails(castroom("show", "talent", "Zed"), "no talent")


def test_production_show_set_list(castroom) -> None:
    data = as_json(castroom("production", "show", "--json"))
    assert data["title"] == "Tides" and data["budget_cap"] == 100000000
    assert "$1,000,000.00" in ok(castroom("production", "show"))
    assert "Updated production" in ok(
        castroom("production", "set", "fringe_rate=0.2", "title=Tides of Time")
    )
    assert as_json(castroom("production", "show", "--json"))["fringe_rate"] == 0.2
    before = log_rows(castroom.path)
    fails(castroom("production", "set", "fringe_rate=2"), "fringe_rate")
    assert log_rows(castroom.path) == before
    listed = as_json(castroom("production", "list", "--json"))
    assert [p["title"] for p in listed] == ["Tides of Time"]
    assert "Tides of Time" in ok(castroom("production", "list"))


def test_production_option_with_several_productions(castroom) -> None:
    ok(castroom("init", "--production", "Harbour"))
    fails(castroom("list", "talents"), "several productions", "--production")
    ok(castroom("--production", "Harbour", "add", "talent", "name=Only in Harbour"))
    ok(castroom("--production", "Tides", "add", "talent", "name=Only in Tides"))
    harbour = as_json(castroom("--production", "harbour", "list", "talents", "--json"))
    assert [t["name"] for t in harbour] == ["Only in Harbour"]
    tides = as_json(castroom("-p", "Tides", "list", "talents", "--json"))
    assert [t["name"] for t in tides] == ["Only in Tides"]
    fails(castroom("--production", "Nope", "list", "talents"), "no production")


def test_commands_on_a_missing_workspace_fail_cleanly(cli, tmp_path: Path) -> None:
    fails(cli("list", "talents", workspace=tmp_path / "nowhere"), "no castroom workspace")
    assert not (tmp_path / "nowhere").exists()


def test_history_lists_who_changed_what_newest_first(castroom) -> None:
    ada = as_json(castroom("--member", "rosa", "add", "talent", "name=Ada", "--json"))["id"]
    castroom("--member", "sam", "set", "talent", ada, "rate=5", "hair=red")
    rows = as_json(castroom("history", "--json"))
    assert rows[0]["member"] == "sam" and rows[0]["fields"] == ["hair", "rate"]
    assert rows[0]["kind"] == "talent" and rows[0]["label"] == "Ada"
    assert rows[1]["member"] == "rosa" and rows[1]["fields"] == ["(created)"]
    assert rows[-1]["kind"] == "production"
    assert len(as_json(castroom("history", "--limit", "1", "--json"))) == 1
    assert all(
        r["entity_id"] == ada for r in as_json(castroom("history", "--entity", ada, "--json"))
    )
    assert "sam" in ok(castroom("history"))


def test_history_limit_counts_rows_not_log_entries(castroom) -> None:
    with Workspace.open(castroom.path) as ws:
        doc = ws.production().doc
        with doc.transaction():  # one log entry that changes five entities
            for i in range(5):
                doc.add(model.Talent, name=f"T{i}")
    ok(castroom("add", "role", "name=Nora"))
    assert len(as_json(castroom("history", "--limit", "3", "--json"))) == 3
    rows = as_json(castroom("history", "--limit", "6", "--json"))
    assert [r["kind"] for r in rows] == ["role"] + ["talent"] * 5  # across two entries
    assert len(as_json(castroom("history", "--limit", "50", "--json"))) == 7  # + production
    table = ok(castroom("history", "--limit", "3"))
    assert sum(f" T{i} " in table for i in range(5)) == 2 and "Nora" in table


def test_history_labels_entities_without_a_name_by_what_they_refer_to(castroom) -> None:
    ids = one_of_each(castroom)
    ok(castroom("add", "audition", "role_ids=Maya", "chemistry=true", "starts_at=2026-03-02 09:00"))
    ok(castroom("set", "role", "Maya", 'eras=[{"name": "1962"}]'))
    ok(castroom("set", "candidate", ids["candidate"], "era=1962"))
    labels = {
        (r["kind"], r["entity_id"]): r["label"]
        for r in as_json(castroom("history", "--limit", "100", "--json"))
    }
    assert labels[("candidate", ids["candidate"])] == "Ada for Maya (1962)"
    assert labels[("deal", ids["deal"])] == "Ada / Maya"
    assert labels[("availability", ids["availability"])] == "Ada 2026-04-01..02"
    assert labels[("audition", ids["audition"])] == "Maya 2026-03-01 10:00"
    assert "Maya 2026-03-02 09:00" in labels.values()  # a chemistry read: its role_ids
    assert labels[("shoot_day", ids["shoot_day"])] == "2026-04-01"
    assert labels[("scene", ids["scene"])] == "12A"
    assert "Ada / Maya" in ok(castroom("history", "--limit", "100"))  # the table too


def test_history_of_a_large_merge_does_not_call_edits_creations(castroom, tmp_path: Path) -> None:
    ada = as_json(castroom("add", "talent", "name=Ada", "--json"))["id"]
    # A colleague's copy, joined by bundle, edits Ada and adds many talents offline.
    first, back = tmp_path / "first.bundle", tmp_path / "back.bundle"
    ok(castroom("bundle", "create", str(first)))
    colleague = tmp_path / "colleague"
    ok(castroom("bundle", "apply", str(first), workspace=colleague))
    with Workspace.open(colleague, member="noor") as ws:
        doc = ws.production().doc
        with doc.transaction():
            doc.update(model.Talent, ada, {"agent": "Blake & Co"})
            for i in range(1500):
                doc.add(model.Talent, name=f"Extra {i}", notes="x" * 40)
    ok(castroom("bundle", "create", str(back), workspace=colleague))
    ok(castroom("bundle", "apply", str(back)))
    rows = as_json(castroom("history", "--entity", ada, "--json"))
    # One of the first COARSE_ITEMISED entities edited: itemised, with its values.
    assert rows[0]["changes"] == ["agent: (none) → Blake & Co"]
    assert rows[-1]["fields"] == ["(created)"]


def test_compact_keeps_content_and_history(castroom) -> None:
    for i in range(5):
        castroom("add", "talent", f"name=T{i}")
    assert "Folded" in ok(castroom("compact"))
    assert len(as_json(castroom("list", "talents", "--json"))) == 5
    assert len(as_json(castroom("history", "--json"))) >= 6


def test_invalid_reports_and_exits_non_zero(castroom) -> None:
    assert "No invalid entities" in ok(castroom("invalid"))
    ada = as_json(castroom("add", "talent", "name=Ada", "--json"))["id"]
    with Workspace.open(castroom.path) as ws:
        production = ws.production()
        peer = Doc()
        peer.apply_update(production.doc.encode_update())
        peer.get("talents", type=Map)[ada]["rate"] = -1
        production.apply_update(
            peer.get_update(production.doc.state_vector()), origin="sync", device="LAPTOP"
        )
    result = castroom("invalid", "--json")
    assert result.exit_code == 0
    [item] = json.loads(result.stdout)
    assert (item["kind"], item["id"], item["field"], item["device"]) == (
        "talent",
        ada,
        "rate",
        "LAPTOP",
    )
    result = castroom("invalid")
    assert result.exit_code == 1 and "rate" in result.stdout
    assert as_json(castroom("list", "talents", "--json")) == []  # hidden, not crashing


def test_invalid_names_each_entity_by_its_short_id_among_its_kind(castroom) -> None:
    """`invalid` works each kind's short ids out once (per entity, against every other
    id, 10,000 junk talents took 117 s; now 1.1 s): still each the shortest unique one."""
    ok(castroom("add", "talent", "name=Valid"))
    with Workspace.open(castroom.path) as ws:
        production = ws.production()
        peer = Doc()
        peer.apply_update(production.doc.encode_update())
        before = peer.get_state()
        with peer.transaction():
            for junk in ("JUNK000001", "JUNK000002", "JUNK100000"):
                peer.get("talents", type=Map)[junk] = Map({"id": junk, "name": junk, "rate": -1})
        production.apply_update(peer.get_update(before), origin="sync", device="LAPTOP")
    result = castroom("invalid")
    assert result.exit_code == 1
    lines = sorted(result.stdout.splitlines())
    assert [line.split(": ")[0] for line in lines] == [
        "talent JUNK000001 (JUNK000001)",
        "talent JUNK000002 (JUNK000002)",
        "talent JUNK100000 (JUNK1000)",
    ]


def test_messages_name_entities_by_short_ids_never_full_ones(castroom) -> None:
    """`invalid`, `production list`, `check`'s fixes, a refused duplicate, `restore
    --from-history`'s lines and tokens: people's words and short unique ids."""
    ada = as_json(castroom("add", "talent", "name=Ada", "--json"))["id"]
    ok(castroom("add", "role", "name=Nora"))
    cand = as_json(castroom("add", "candidate", "talent_id=Ada", "role_id=Nora", "--json"))["id"]
    with Workspace.open(castroom.path) as ws:
        production = ws.production()
        pid = str(production.id)
        peer = Doc()
        peer.apply_update(production.doc.encode_update())
        peer.get("talents", type=Map)[ada]["rate"] = -1
        production.apply_update(
            peer.get_update(production.doc.state_vector()), origin="sync", device="LAPTOP"
        )
    said = castroom("invalid").stdout
    assert said.startswith(f"talent Ada ({ada[:8]}): rate: ") and ada not in said, said
    listed = ok(castroom("production", "list"))
    assert listed.startswith(f"{pid[:8]}  Tides") and pid not in listed, listed
    checked = castroom("check").output
    assert f"castroom set talent {ada[:8]} rate=" in checked and ada not in checked, checked
    twice = castroom("add", "candidate", "talent_id=Ada", "role_id=Nora")
    assert f"candidate {cand[:8]} (change it with" in twice.stderr and cand not in twice.stderr
    ok(castroom("token", "create", "--scope", "read", "--production", "Tides"))
    tokens = ok(castroom("token", "list"))
    assert f"Tides ({pid[:8]})" in tokens and pid not in tokens, tokens


def test_bundle_commands(castroom, cli, tmp_path: Path) -> None:
    castroom("add", "talent", "name=Ada")
    bundle = tmp_path / "tides.castroom"
    assert "Wrote 1 production" in ok(castroom("bundle", "create", str(bundle)))
    newcomer = tmp_path / "newcomer"
    assert "entities changed" in ok(cli("bundle", "apply", str(bundle), workspace=newcomer))
    names = json.loads(ok(cli("list", "talents", "--json", workspace=newcomer)))
    assert [t["name"] for t in names] == ["Ada"]
    state = tmp_path / "newcomer.state"
    ok(cli("bundle", "state", str(state), workspace=newcomer))
    castroom("add", "talent", "name=Bo")
    ok(castroom("bundle", "create", str(tmp_path / "delta.castroom"), "--for", str(state)))
    ok(cli("bundle", "apply", str(tmp_path / "delta.castroom"), workspace=newcomer))
    assert len(json.loads(ok(cli("list", "talents", "--json", workspace=newcomer)))) == 2
    junk = tmp_path / "junk.castroom"
    junk.write_bytes(b"nonsense")
    fails(cli("bundle", "apply", str(junk), workspace=newcomer), "not a castroom bundle")
    fails(
        cli("bundle", "create", str(tmp_path / "x"), "--for", str(junk), workspace=newcomer),
        "state",
    )


def test_bundles_report_only_the_productions_they_change(castroom, cli, tmp_path) -> None:
    ok(castroom("init", "--production", "Harbour"))
    first, state, delta = (tmp_path / n for n in ("first.bundle", "peer.state", "d.bundle"))
    ok(castroom("bundle", "create", str(first)))
    peer = tmp_path / "peer"
    joined = ok(cli("bundle", "apply", str(first), workspace=peer))
    assert "Tides (" in joined and "Harbour (" in joined
    ok(cli("bundle", "state", str(state), workspace=peer))
    made = ok(castroom("bundle", "create", str(delta), "--for", str(state)))
    assert made.startswith("Nothing new for that peer")
    ok(castroom("-p", "Harbour", "add", "role", "name=Ghost"))
    made = ok(castroom("bundle", "create", str(delta), "--for", str(state)))
    assert made.startswith("Wrote 1 production(s) (Harbour),")
    applied = ok(cli("bundle", "apply", str(delta), workspace=peer)).splitlines()
    assert len(applied) == 1 and applied[0].startswith("Harbour (")
    assert applied[0].endswith(": 1 entity changed")
    again = ok(cli("bundle", "apply", str(delta), workspace=peer))
    assert again.startswith("Nothing new in") and "entities changed" not in again


def test_plugins_listing(castroom) -> None:
    data = as_json(castroom("plugins", "--json"))
    assert data["failures"] == []
    assert {"continuity", "budget", "csv_io"} <= {p["name"] for p in data["plugins"]}
    assert all({"name", "version", "hooks"} <= set(p) for p in data["plugins"])
    ok(castroom("plugins"))


def test_help_and_version(cli) -> None:
    for command in (
        "init",
        "add",
        "list",
        "show",
        "set",
        "delete",
        "restore",
        "history",
        "compact",
        "invalid",
        "bundle",
        "production",
    ):
        assert command in ok(cli("--help"))
    assert "castroom" in ok(cli("--version")).lower()


def break_production(path: Path, **fields: object) -> None:
    """A peer writes bad production fields; they arrive as a merged raw pycrdt update."""
    with Workspace.open(path) as ws:
        production = ws.production()
        peer = Doc()
        peer.apply_update(production.doc.encode_update())
        target = peer.get("production", type=Map)
        for name, value in fields.items():
            target[name] = value
        production.apply_update(
            peer.get_update(production.doc.state_vector()), origin="sync", device="LAPTOP"
        )


def test_invalid_production_keeps_the_workspace_usable_and_repairable(castroom) -> None:
    ada = as_json(castroom("add", "talent", "name=Ada", "rate=1500", "--json"))["id"]
    break_production(castroom.path, currency="usd")
    # Reads degrade to the raw fields instead of failing on the production's rule.
    assert [t["id"] for t in as_json(castroom("list", "talents", "--json"))] == [ada]
    assert "Ada" in ok(castroom("list", "talents"))
    assert "Ada" in ok(castroom("show", "talent", ada))
    assert as_json(castroom("show", "talent", ada, "--json"))["rate"] == 150000
    rows = as_json(castroom("history", "--json"))
    assert rows[0]["kind"] == "production" and rows[0]["label"] == "Tides"
    ok(castroom("history"))
    shown = castroom("production", "show")
    assert shown.exit_code == 0 and "currency: usd" in shown.stdout
    assert "production.currency" in shown.stderr  # says what is wrong
    assert as_json(castroom("production", "show", "--json"))["currency"] == "usd"
    invalid = as_json(castroom("invalid", "--json"))
    assert [(i["kind"], i["field"]) for i in invalid] == [("production", "currency")]
    # And the team can repair it, from a real process running the installed script.
    fixed = run_castroom("--workspace", str(castroom.path), "production", "set", "currency=USD")
    assert fixed.returncode == 0, fixed.stderr
    assert as_json(castroom("production", "show", "--json"))["currency"] == "USD"
    assert "No invalid entities" in ok(castroom("invalid"))
    assert "$1,500.00" in ok(castroom("list", "talents"))


def test_list_says_how_many_invalid_entities_it_hides(castroom) -> None:
    ids = [as_json(castroom("add", "talent", f"name=T{i}", "--json"))["id"] for i in range(3)]
    result = castroom("list", "talents")
    assert result.exit_code == 0 and "invalid" not in result.stderr
    with Workspace.open(castroom.path) as ws:
        production = ws.production()
        peer = Doc()
        peer.apply_update(production.doc.encode_update())
        for bad in ids[:2]:
            peer.get("talents", type=Map)[bad]["rate"] = -1
        production.apply_update(
            peer.get_update(production.doc.state_vector()), origin="sync", device="LAPTOP"
        )
    result = castroom("list", "talents", "--json")
    assert [t["id"] for t in json.loads(result.stdout)] == [ids[2]]  # stdout stays JSON
    assert result.stderr.strip() == "2 invalid talents hidden; see `castroom invalid`"
    result = castroom("list", "talents")
    assert result.exit_code == 0 and "2 invalid talents hidden" in result.stderr
    assert "invalid" not in ok(castroom("list", "roles")) and not castroom("list", "roles").stderr


@pytest.mark.parametrize(
    ("kind", "args", "message"),
    [
        ("talent", ["name="], "talent.name: must not be empty"),
        ("talent", ["name=Ada", "height_cm=12.5"], "expected a whole number, got '12.5'"),
        ("talent", ["name=Ada", "playing_age_min=old"], "expected a whole number, got 'old'"),
        ("talent", ["name=Ada", "languages=en"], "expected a JSON list"),
        ("talent", ["name=Ada", "rate=-1"], "talent.rate: must be at least 0"),
        ("shoot_day", ["date=2027-01-01", "call_time=7"], "expected a time HH:MM"),
        ("shoot_day", ["date=2027-13-01"], "expected a date YYYY-MM-DD, got '2027-13-01'"),
        ("candidate", ["talent_id=t", "role_id=r", "stage=maybe"], "'maybe' is not one of:"),
        ("talent", ["name=" + "x" * 201], "must have at most 200 characters"),
    ],
)
def test_value_errors_are_in_words(castroom, kind: str, args: list[str], message: str) -> None:
    before = log_rows(castroom.path)
    text = fails(castroom("add", kind, *args), message)
    assert "`" not in text and "regex" not in text and "JSON: Expecting" not in text
    assert log_rows(castroom.path) == before


def test_an_empty_value_is_the_empty_string_or_null(castroom) -> None:
    data = as_json(castroom("add", "talent", "name=Ada", "hair=", "height_cm=", "--json"))
    assert data["hair"] == "" and data["height_cm"] is None
    message = fails(castroom("production", "set", "currency=eur"))
    assert "a 3-letter ISO currency code like EUR, got 'eur'" in message, message


def test_names_prefer_live_entities_and_restore_looks_among_deleted(castroom) -> None:
    old = as_json(castroom("add", "talent", "name=Ada Stone", "--json"))["id"]
    ok(castroom("delete", "talent", old))
    new = as_json(castroom("add", "talent", "name=Ada Stone", "--json"))["id"]
    # The live one wins for set, show and delete; the deleted one does not make it ambiguous.
    assert as_json(castroom("set", "talent", "Ada Stone", "rate=5", "--json"))["id"] == new
    assert as_json(castroom("show", "talent", "ada stone", "--json"))["id"] == new
    before = log_rows(castroom.path)
    assert "talent Ada Stone is not deleted" in ok(castroom("restore", "talent", new))
    assert log_rows(castroom.path) == before  # nothing written
    # restore looks among the deleted ones first.
    said = ok(castroom("restore", "talent", "Ada Stone"))  # "Restored talent Ada Stone (01M8…)"
    shown = said.split("(")[1].split(")")[0]
    assert said.startswith("Restored talent Ada Stone (") and old.startswith(shown)
    assert not new.startswith(shown)  # a short id, yet unique
    message = fails(castroom("show", "talent", "Ada Stone"), "matches 2 talents")
    assert old[:8] in message and new[:8] in message and "Ada Stone" in message
    ok(castroom("delete", "talent", new))
    ok(castroom("delete", "talent", old))
    # Only deleted ones match: show still finds them (ambiguous here), delete says so.
    fails(castroom("show", "talent", "Ada Stone"), "matches 2 talents", "(deleted)")


def test_ambiguous_lists_at_most_five_matches(castroom) -> None:
    for _ in range(7):
        ok(castroom("add", "talent", "name=Bo", "--force"))
    message = fails(castroom("show", "talent", "bo"), "matches 7 talents", "and 2 more")
    assert message.count(" Bo") == 5, message


def test_delete_and_restore_take_json(castroom) -> None:
    ada = as_json(castroom("add", "talent", "name=Ada", "--json"))["id"]
    data = as_json(castroom("delete", "talent", "Ada", "--json"))
    assert (data["id"], data["name"], data["deleted"]) == (ada, "Ada", True)
    assert as_json(castroom("delete", "talent", ada, "--json"))["deleted"] is True  # already
    data = as_json(castroom("restore", "talent", "Ada", "--json"))
    assert (data["id"], data["deleted"]) == (ada, False)
    assert as_json(castroom("restore", "talent", ada, "--json"))["deleted"] is False


def test_shoot_days_resolve_by_date_or_day_number_and_scenes_by_number(castroom) -> None:
    first = as_json(castroom("add", "shoot_day", "date=2027-03-03", "day_number=3", "--json"))
    as_json(castroom("add", "shoot_day", "date=2027-03-04", "day_number=4", "--json"))
    assert as_json(castroom("show", "shoot_day", "2027-03-03", "--json"))["id"] == first["id"]
    for ref in ("3", "day 3", "Day3"):
        assert as_json(castroom("show", "shoot_day", ref, "--json"))["id"] == first["id"]
    data = as_json(castroom("set", "shoot_day", "2027-03-03", "location=Pier", "--json"))
    assert (data["id"], data["location"]) == (first["id"], "Pier")
    fails(castroom("show", "shoot_day", "day 9"), "no shoot_day matching 'day 9'")
    as_json(castroom("add", "shoot_day", "date=2027-03-03", "--json"))  # a second unit
    fails(castroom("show", "shoot_day", "2027-03-03"), "matches 2 shoot_days", "2027-03-03")
    scene = as_json(castroom("add", "scene", "number=12A", "--json"))["id"]
    assert as_json(castroom("show", "scene", "12a", "--json"))["id"] == scene


def test_references_by_id_prefix_or_name_are_stored_as_ids(castroom) -> None:
    ada = as_json(castroom("add", "talent", "name=Ada Stone", "--json"))["id"]
    nora = as_json(
        castroom("add", "role", "name=Nora", 'eras=[{"name": "1962"}, {"name": "2022"}]', "--json")
    )["id"]
    data = as_json(
        castroom("add", "candidate", "talent_id=Ada Stone", "role_id=nora", "era=1962", "--json")
    )
    assert (data["talent_id"], data["role_id"]) == (ada, nora)
    deal = as_json(
        castroom("add", "deal", f"talent_id={ada[:20]}", "role_id=Nora", "rate=5", "--json")
    )
    assert (deal["talent_id"], deal["role_id"]) == (ada, nora)
    one = as_json(castroom("add", "scene", "number=1", "characters=Nora", "--json"))
    two = as_json(castroom("add", "scene", "number=2", 'characters=["Nora"]', "--json"))
    assert one["characters"] == two["characters"] == [nora]
    day = as_json(castroom("add", "shoot_day", "date=2027-03-03", 'scene_ids=["2", "1"]', "--json"))
    assert day["scene_ids"] == [two["id"], one["id"]]
    moved = as_json(castroom("set", "scene", "1", "shoot_day_id=2027-03-03", "--json"))
    assert moved["shoot_day_id"] == day["id"]

    before = log_rows(castroom.path)
    fails(
        castroom("add", "candidate", "talent_id=Ada Stonee", "role_id=Nora"),
        "candidate.talent_id: no talent matching 'Ada Stonee'",
    )
    fails(
        castroom("add", "candidate", "talent_id=Ada Stone", "role_id=Nora", "era=elderly"),
        "candidate.era: 'elderly' is not one of Nora's eras (1962, 2022)",
    )
    fails(castroom("set", "deal", deal["id"], "era=elderly"), "deal.era", "Nora's eras")
    fails(castroom("add", "scene", "number=3", 'characters=["Nora", "Zed"]'), "no role matching")
    fails(castroom("set", "shoot_day", day["id"], 'scene_ids=["9"]'), "no scene matching '9'")
    ok(castroom("add", "talent", "name=Bo"))
    ok(castroom("add", "talent", "name=Bo", "--force"))
    fails(
        castroom("add", "availability", "talent_id=Bo", "start=2027-01-01", "end=2027-01-02"),
        "availability.talent_id: 'Bo' matches 2 talents",
    )
    ok(castroom("delete", "talent", ada))
    fails(castroom("add", "deal", f"talent_id={ada}", "role_id=Nora", "rate=5"), "is deleted")
    assert log_rows(castroom.path) == before + 3  # the two Bos and the delete only


def test_a_second_live_candidate_for_one_talent_role_and_era_is_refused(castroom) -> None:
    ok(castroom("add", "talent", "name=Ada Stone"))
    ok(castroom("add", "role", "name=Nora", 'eras=[{"name": "1962"}, {"name": "2022"}]'))
    first = as_json(castroom("add", "candidate", "talent_id=Ada Stone", "role_id=Nora", "--json"))
    before = log_rows(castroom.path)
    said = fails(
        castroom("add", "candidate", "talent_id=Ada Stone", "role_id=Nora", "stage=callback"),
        "Ada Stone is already a candidate for Nora",
        "castroom set candidate",
    )
    assert _short_in(said, first["id"])  # the one to change, by its short id
    assert log_rows(castroom.path) == before
    # Another era is another candidacy; moving it onto the first one's era is refused too.
    later = as_json(
        castroom("add", "candidate", "talent_id=Ada Stone", "role_id=Nora", "era=1962", "--json")
    )
    assert _short_in(fails(castroom("set", "candidate", later["id"], "era=null")), first["id"])
    ok(castroom("set", "candidate", later["id"], "stage=callback"))  # itself is no duplicate
    # Once the first is deleted, a new one may be added.
    ok(castroom("delete", "candidate", first["id"]))
    ok(castroom("add", "candidate", "talent_id=Ada Stone", "role_id=Nora"))


def _short_in(message: str, entity_id: str) -> bool:
    """``message`` names ``entity_id`` by a short prefix of it, not by the whole id."""
    return entity_id not in message and entity_id[:8] in message


def test_list_where_on_a_list_field_tests_membership(castroom) -> None:
    ok(castroom("add", "talent", "name=Ada", 'languages=["en", "fr"]'))
    ok(castroom("add", "talent", "name=Bo", 'languages=["fr"]'))
    ok(castroom("add", "role", "name=Nora"))
    ok(castroom("add", "scene", "number=1", "characters=Nora"))
    ok(castroom("add", "scene", "number=2"))

    def names(*where: str) -> list[str]:
        args = [a for w in where for a in ("--where", w)]
        rows = as_json(castroom("list", "talents", *args, "--json"))
        return [r["name"] for r in rows]

    assert names("languages=en") == ["Ada"]
    assert names("languages=fr") == ["Ada", "Bo"]
    assert names("languages=fr", "name=Bo") == ["Bo"]
    assert names('languages=["fr"]') == ["Bo"]  # a JSON list: the whole list equals
    assert names("languages=de") == []
    scenes = as_json(castroom("list", "scenes", "--where", "characters=Nora", "--json"))
    assert [s["number"] for s in scenes] == ["1"]
    fails(castroom("list", "scenes", "--where", "characters=Zed"), "no role matching 'Zed'")
    assert "list holds VALUE" in " ".join(ok(castroom("list", "--help")).split())


def test_history_of_an_entity_by_name(castroom) -> None:
    ada = as_json(castroom("add", "talent", "name=Ada Stone", "--json"))["id"]
    ok(castroom("set", "talent", "Ada Stone", "rate=5"))
    ok(castroom("add", "role", "name=Nora"))
    rows = as_json(castroom("history", "--entity", "Ada Stone", "--json"))
    assert [r["entity_id"] for r in rows] == [ada, ada]
    assert rows[0]["fields"] == ["rate"] and rows[1]["fields"] == ["(created)"]
    assert as_json(castroom("history", "--entity", ada[:20], "--json")) == rows
    assert as_json(castroom("history", "--entity", ada, "--json")) == rows
    ok(castroom("add", "role", "name=Ada Stone"))  # the same name, another kind
    said = fails(castroom("history", "--entity", "Ada Stone"), "talent Ada Stone (", "--kind")
    assert "role Ada Stone (" in said and _short_in(said, ada)
    rows = as_json(castroom("history", "--entity", "Ada Stone", "--kind", "role", "--json"))
    assert [r["kind"] for r in rows] == ["role"]
    fails(castroom("history", "--entity", "Nobody"), "no entity matching 'Nobody'")


def test_init_with_a_title_that_exists_is_refused_unless_forced(castroom) -> None:
    tides = as_json(castroom("production", "show", "--json"))["id"]
    before = log_rows(castroom.path)
    said = fails(castroom("init", "--production", "tides"), "a production titled 'Tides' exists")
    assert _short_in(said, tides)
    assert log_rows(castroom.path) == before
    ok(castroom("init", "--production", "Tides", "--force"))
    assert len(as_json(castroom("production", "list", "--json"))) == 2


def test_production_delete_and_restore(castroom) -> None:
    harbour = as_json(castroom("init", "--production", "Harbour", "--json"))["id"]
    fails(castroom("list", "talents"), "several productions")
    fails(castroom("production", "set", "deleted=true"), "production delete")
    assert "Deleted production Harbour" in ok(castroom("production", "delete", "Harbour"))
    assert "already deleted" in ok(castroom("production", "delete", "Harbour"))
    listed = as_json(castroom("production", "list", "--json"))
    assert [p["title"] for p in listed] == ["Tides"]
    everything = as_json(castroom("production", "list", "--all", "--json"))
    assert {p["title"]: p["deleted"] for p in everything} == {"Tides": False, "Harbour": True}
    assert "(deleted)" in ok(castroom("production", "list", "--all"))
    ok(castroom("list", "talents"))  # the only live production: no choice to make
    ok(castroom("-p", "Harbour", "list", "talents"))  # still reachable by name
    ok(castroom("init", "--production", "Harbour"))  # a deleted title does not block init
    fails(castroom("production", "restore", "Nope"), "no production matching 'Nope'")
    said = ok(castroom("production", "restore", "Harbour"))
    assert said.startswith("Restored production Harbour (") and _short_in(said, harbour)
    assert "is not deleted" in ok(castroom("production", "restore", harbour))
    assert len(as_json(castroom("production", "list", "--json"))) == 3


def test_a_deleted_production_is_readable_but_refuses_writes(castroom) -> None:
    ok(castroom("init", "--production", "Old Show"))
    ok(castroom("-p", "Old Show", "add", "role", "name=Nora"))
    ok(castroom("production", "delete", "Old Show"))
    before = log_rows(castroom.path)
    for args in (("add", "role", "name=Ghost"), ("set", "role", "Nora", "notes=x")):
        fails(castroom("-p", "Old Show", *args), "Old Show is deleted", "production restore")
    fails(castroom("-p", "Old Show", "production", "set", "budget_cap=5"), "is deleted")
    assert log_rows(castroom.path) == before  # nothing written
    listed = castroom("-p", "Old Show", "list", "roles", "--json")
    assert [r["name"] for r in as_json(listed)] == ["Nora"]  # refused edits were dropped
    assert "Warning: production Old Show is deleted" in listed.stderr
    assert "refused" in ok(castroom("production", "delete", "--help"))
    ok(castroom("production", "restore", "Old Show"))
    added = castroom("-p", "Old Show", "add", "role", "name=Ghost")
    assert "Added role" in ok(added) and not added.stderr


def break_entities(path: Path, **entities: dict[str, object]) -> None:
    """A peer writes bad fields into entities (``talents__ID={...}``, collection and id
    split at ``__``), merged as a raw pycrdt update from device LAPTOP."""
    with Workspace.open(path) as ws:
        production = ws.production()
        peer = Doc()
        peer.apply_update(production.doc.encode_update())
        for key, fields in entities.items():
            collection, entity_id = key.split("__", 1)
            target = peer.get(collection, type=Map)[entity_id]
            for name, value in fields.items():
                target[name] = value
        production.apply_update(
            peer.get_update(production.doc.state_vector()), origin="sync", device="LAPTOP"
        )


def test_an_entity_a_peer_left_invalid_can_be_shown_repaired_deleted_and_restored(
    castroom,
) -> None:
    ada = as_json(
        castroom("add", "talent", "name=Ada Stone", "playing_age_max=45", "rate=100", "--json")
    )["id"]
    nora = as_json(castroom("add", "role", "name=Nora", "--json"))["id"]
    bad = {"rate": -5, "playing_age_min": 12.5}
    break_entities(castroom.path, **{f"talents__{ada}": bad, f"roles__{nora}": {"kind": "villain"}})
    # show: the stored fields, and a one-line warning naming each invalid field.
    shown = castroom("show", "talent", "Ada Stone")
    assert shown.exit_code == 0 and "Ada Stone" in shown.stdout and "12.5" in shown.stdout
    stored = as_json(castroom("show", "talent", ada, "--json"))
    assert (stored["rate"], stored["playing_age_min"]) == (-5, 12.5)
    warnings = shown.stderr.strip().splitlines()
    assert warnings and all(w.startswith("Warning: talent Ada Stone (") for w in warnings)
    assert all(_short_in(w, ada) and ") is invalid: " in w for w in warnings)
    assert "playing_age_min" in shown.stderr or "rate" in shown.stderr
    assert as_json(castroom("show", "role", nora, "--json"))["kind"] == "villain"
    # set: a result still invalid is refused, naming what is still wrong; nothing written.
    before = log_rows(castroom.path)
    fails(castroom("set", "talent", ada, "rate=5000"), "talent.playing_age_min", ada)
    fails(castroom("set", "talent", ada, "playing_age_min=38"), "talent.rate")
    assert log_rows(castroom.path) == before
    # A valid result is written (only the given fields), and the entity is back in reads.
    ok(castroom("set", "talent", ada[:20], "rate=5000", "playing_age_min=38"))
    ok(castroom("set", "role", "Nora", "kind=day_player"))
    fixed = as_json(castroom("show", "talent", ada, "--json"))
    assert (fixed["rate"], fixed["playing_age_min"], fixed["playing_age_max"]) == (500000, 38, 45)
    assert not castroom("show", "talent", ada).stderr
    assert [t["id"] for t in as_json(castroom("list", "talents", "--json"))] == [ada]
    assert "No invalid entities" in ok(castroom("invalid"))
    # delete, restore and history work on an entity stored invalid.
    break_entities(castroom.path, **{f"roles__{nora}": {"kind": "villain"}})
    assert f"Deleted role Nora ({nora[:8]}" in ok(castroom("delete", "role", "Nora"))
    assert "already deleted" in ok(castroom("delete", "role", nora))
    restored = as_json(castroom("restore", "role", nora, "--json"))
    assert (restored["deleted"], restored["kind"]) == (False, "villain")
    rows = as_json(castroom("history", "--entity", "Nora", "--json"))
    assert {r["entity_id"] for r in rows} == {nora} and len(rows) >= 4
    assert {r["device"] for r in rows} >= {"LAPTOP"}


def test_role_backups_are_talents_or_candidates_by_id_prefix_or_name(castroom) -> None:
    ada = as_json(castroom("add", "talent", "name=Ada Stone", "--json"))["id"]
    bo = as_json(castroom("add", "talent", "name=Bo", "--json"))["id"]
    ok(castroom("add", "role", "name=Maggie"))
    cand = as_json(castroom("add", "candidate", "talent_id=Bo", "role_id=Maggie", "--json"))["id"]
    role = as_json(castroom("set", "role", "Maggie", 'backups=["Ada Stone"]', "--json"))
    assert role["backups"] == [ada]
    # A talent first (prefix or name), else a candidate (it pins the backup's era).
    role = as_json(castroom("set", "role", "Maggie", f'backups=["{cand}", "{ada[:20]}"]', "--json"))
    assert role["backups"] == [cand, ada]
    rows = as_json(castroom("list", "roles", "--where", "backups=Ada Stone", "--json"))
    assert [r["name"] for r in rows] == ["Maggie"]

    before = log_rows(castroom.path)
    fails(
        castroom("set", "role", "Maggie", 'backups=["NOPE"]'),
        "role.backups: no talent or candidate matching 'NOPE'",
    )
    ok(castroom("delete", "talent", bo))
    fails(castroom("add", "role", "name=June", f"backups={bo}"), "talent Bo is deleted")
    assert log_rows(castroom.path) == before + 1  # the delete only


def test_scene_looks_are_keyed_by_role_id_prefix_or_name(castroom) -> None:
    nora = as_json(castroom("add", "role", "name=Nora", "--json"))["id"]
    ok(castroom("add", "role", "name=Maggie"))
    scene = as_json(
        castroom("add", "scene", "number=1.1", "characters=Nora", 'looks={"nora": {}}', "--json")
    )
    assert list(scene["looks"]) == [nora]
    looks = '{"Nora": {"hair": "braids"}}'
    scene = as_json(castroom("set", "scene", "1.1", f"looks={looks}", "--json"))
    assert scene["looks"] == {nora: {**scene["looks"][nora], "hair": "braids"}}
    looks = f'{{"{nora[:20]}": {{"hair": "bob"}}}}'
    assert (
        as_json(castroom("set", "scene", "1.1", f"looks={looks}", "--json"))["looks"][nora]["hair"]
        == "bob"
    )

    before = log_rows(castroom.path)
    fails(castroom("set", "scene", "1.1", 'looks={"Zed": {}}'), "scene.looks: no role matching")
    fails(castroom("set", "scene", "1.1", 'looks={"Maggie": {}}'), "not in the scene")
    fails(
        castroom("set", "scene", "1.1", f'looks={{"Nora": {{}}, "{nora}": {{}}}}'),
        f"scene.looks: 'Nora' and '{nora}' are the same role",
    )
    assert log_rows(castroom.path) == before


def test_ratings_are_keyed_by_member_name_and_unknown_members_refused(castroom) -> None:
    ok(castroom("add", "talent", "name=Ada"))
    ok(castroom("add", "role", "name=Nora"))
    rosa = as_json(castroom("add", "member", "name=Rosa", "--json"))["id"]
    ok(castroom("add", "member", "name=Ken"))
    cand = as_json(castroom("add", "candidate", "talent_id=Ada", "role_id=Nora", "--json"))["id"]
    # Stored by name (as the sample and existing productions are), whatever was typed.
    ratings = f'ratings={{"rosa": 4, "{rosa[:20]}": 5}}'
    fails(castroom("set", "candidate", cand, ratings), "'rosa' and", "are the same member")
    ratings = f'ratings={{"ken": 4, "{rosa}": 5}}'
    assert as_json(castroom("set", "candidate", cand, ratings, "--json"))["ratings"] == {
        "Ken": 4,
        "Rosa": 5,
    }
    before = log_rows(castroom.path)
    fails(
        castroom("set", "candidate", cand, 'ratings={"Rosa": 3, "Nobody": 2}'),
        "candidate.ratings: no member matching 'Nobody'",
        "castroom add member",
    )
    assert log_rows(castroom.path) == before
    assert as_json(castroom("show", "candidate", cand, "--json"))["ratings"] == {
        "Ken": 4,
        "Rosa": 5,
    }
    # Setting ratings replaces them all: the help says so.
    assert "replaces the whole field" in " ".join(ok(castroom("set", "--help")).split())


# -- money as people write it: one parser for the command line and every importer ----------


def test_the_command_line_reads_money_as_people_write_it(castroom) -> None:
    """`rate=1500.00` was $15.00 (msgspec read "1500.00" as 1500 minor units) while a CSV
    cell 1500.00 was $1,500.00; every way of writing fifteen hundred dollars is now one
    amount, stored (and in --json) as minor units."""
    for i, written in enumerate(["1500", "1500.00", "1,500", "$1,500.00", "1500 USD"]):
        data = as_json(castroom("add", "talent", f"name=T{i}", f"rate={written}", "--json"))
        assert data["rate"] == 150000, written
    listed = ok(castroom("list", "talents"))
    assert listed.count("$1,500.00") == 5
    rows = as_json(castroom("list", "talents", "--where", "rate=$1,500", "--json"))
    assert len(rows) == 5
    production = as_json(castroom("production", "show", "--json"))
    assert production["budget_cap"] == 100_000_000  # init --budget-cap 1000000
    ok(castroom("production", "set", "budget_cap=2,500,000"))
    assert as_json(castroom("production", "show", "--json"))["budget_cap"] == 250_000_000


def test_init_reads_the_budget_cap_in_its_own_currency(cli) -> None:
    data = as_json(
        cli(
            "init",
            "--production",
            "Kaiju",
            "--currency",
            "JPY",
            "--budget-cap",
            "¥5,000,000",
            "--json",
        )
    )
    assert data["budget_cap"] == 5_000_000  # JPY has no minor unit
    fails(
        cli("init", "--production", "X", "--budget-cap", "5000 EUR", "--force"),
        "production.budget_cap",
        "is in EUR, but this production's money is in USD",
    )


@pytest.mark.parametrize(
    ("field", "written", "message"),
    [
        ("rate", "1.500", "'1.500' is ambiguous: $1,500.00 or $1.50? Write 1500.00 or 1.50"),
        ("rate", "1500 EUR", "'1500 EUR' is in EUR, but this production's money is in USD"),
        ("rate", "10.5555", "'10.5555' has too many decimals (USD has 2 decimals): write 10.55"),
        ("rate", "lots", "'lots' is not an amount of money: write it in USD major units, like"),
        ("name", "Ada\nStone", "expected one line of text (no line breaks)"),
    ],
)
def test_the_command_line_and_the_importers_refuse_the_same_in_the_same_words(
    castroom, tmp_path: Path, field: str, written: str, message: str
) -> None:
    before = log_rows(castroom.path)
    cells = {"name": "Ada", field: written}
    said = fails(castroom("add", "talent", *(f"{k}={v}" for k, v in cells.items())))
    assert f"talent.{field}" in said and message in said
    path = tmp_path / "talents.csv"
    path.write_text(f'name,rate\n"{cells["name"]}","{cells.get("rate", "")}"\n', "utf-8")
    imported = castroom("import", "csv", str(path), "--kind", "talent")
    assert imported.exit_code == 1 and f"talent.{field}: {message}" in imported.output
    assert log_rows(castroom.path) == before


def test_names_are_stripped_and_a_second_talent_of_one_name_asks_for_force(castroom) -> None:
    ada = as_json(castroom("add", "talent", "name=  Zoë Stone ", "--json"))
    assert ada["name"] == "Zoë Stone"
    fails(castroom("add", "talent", "name=   "), "talent.name", "must not be empty")
    before = log_rows(castroom.path)
    for typed in ("Zoë Stone", "zoe  STONE"):
        fails(
            castroom("add", "talent", f"name={typed}"),
            f"a talent named 'Zoë Stone' exists already (id {ada['id'][:8]})",
            "--force if this is another person",
        )
    bo = as_json(castroom("add", "talent", "name=Bo Li", "--json"))
    fails(castroom("set", "talent", bo["id"], "name=ZOE STONE"), "exists already")
    assert log_rows(castroom.path) == before + 1  # only Bo
    ok(castroom("set", "talent", ada["id"], "name=Zoë  Stone"))  # her own name, respaced
    twin = as_json(castroom("add", "talent", "name=Zoe Stone", "--force", "--json"))
    assert twin["id"] != ada["id"]
    assert len(as_json(castroom("list", "talents", "--json"))) == 3


def test_tables_show_names_short_ids_and_fit_80_columns(castroom) -> None:
    """Candidates, deals, availabilities and auditions name their talent and role (ids
    only with --ids); ids are short unique prefixes, never wrapped; confirmations name
    what changed."""
    ada = as_json(castroom("add", "talent", "name=Ada Stone", "--json"))["id"]
    added = ok(castroom("add", "role", "name=Nora"))
    nora = as_json(castroom("show", "role", "Nora", "--json"))["id"]
    assert added == f"Added role Nora ({nora[:8]})\n"
    assert ok(castroom("set", "role", "Nora", "kind=lead")).startswith("Updated role Nora (")
    cand = ok(castroom("add", "candidate", "talent_id=Ada Stone", "role_id=Nora"))
    assert cand.startswith("Added candidate Ada Stone for Nora (")
    ok(castroom("add", "deal", "talent_id=Ada Stone", "role_id=Nora", "rate=1500"))
    ok(castroom("add", "availability", "talent_id=Ada Stone", "start=2027-03-01", "end=2027-03-03"))
    ok(castroom("add", "audition", "role_id=Nora", "starts_at=2027-01-05 10:00"))
    for kind in ("candidates", "deals", "availabilities", "auditions"):
        shown = ok(castroom("list", kind))
        assert ada not in shown and nora not in shown, shown  # names, not ids
        assert "Nora" in shown or "Ada Stone" in shown, shown
        assert max(len(line) for line in shown.splitlines()) <= 80, shown
        raw = ok(castroom("list", kind, "--ids"))  # short ids of what is referred to
        assert nora[:8] in raw and "Nora" not in raw and nora not in raw, raw
    deals = ok(castroom("list", "deals"))
    assert "Ada Stone" in deals and "Nora" in deals and "$1,500.00" in deals
    (row,) = [line for line in deals.splitlines() if "Ada Stone" in line]
    short = row.split("│")[1].strip()
    assert 8 <= len(short) < 26 and short in ok(castroom("list", "deals", "--json"))


def test_check_names_the_entities_of_a_finding(castroom) -> None:
    ok(castroom("add", "talent", "name=Ada Stone"))
    ok(castroom("add", "role", "name=Nora", "rate_cap=1000"))
    ok(castroom("add", "deal", "talent_id=Ada Stone", "role_id=Nora", "rate=1500", "status=signed"))
    said = castroom("check").output
    assert "entities: deal Ada Stone / Nora, talent Ada Stone, role Nora" in said, said
