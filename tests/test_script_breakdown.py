"""A script's breakdown: joint cues, first appearances, role kinds, INT/EXT, time of day
and eighths, the same for Fountain and FDX; and a locked script's scene numbers.

The script is tests/data/scripts/night_ferry.fountain (see tests/data/SOURCES.md); its
FDX twin was written from it by screenplain."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from castroom.core.document import CastDocument
from castroom.core.errors import CastroomError
from castroom.core.importing import apply_import
from castroom.core.model import Role, Scene
from castroom.core.view import ProductionView
from castroom.plugins import breakdown
from castroom.plugins.screenplay import import_script, parse_fountain
from castroom.plugins.script_formats import pretty_name, strip_markup

SCRIPTS = Path(__file__).parent / "data" / "scripts"
FERRY = SCRIPTS / "night_ferry.fountain"


def imported(path: Path, options: dict | None = None, doc: CastDocument | None = None):
    doc = doc or CastDocument.create("Night Ferry")
    result = import_script(str(path), ProductionView(doc), options or {})
    apply_import(doc, result)
    return doc, result


def breakdown_of(doc: CastDocument) -> list[tuple]:
    names = {r.id: r.name for r in doc.all(Role)}
    return [
        (
            s.number,
            s.int_ext,
            s.time_of_day,
            s.location,
            s.eighths,
            [names[c] for c in s.characters],
        )
        for s in sorted(doc.all(Scene), key=lambda s: int(s.number))
    ]


FERRY_SCENES = [
    ("1", "EXT", "NIGHT", "FERRY TERMINAL", 4, ["Lorelei", "Mara", "Passengers"]),
    ("2", "INT", "NIGHT", "FERRY", 3, ["Walt", "Skyler", "Lorelei", "Bartender"]),
    ("3", "EXT", "NIGHT", "FERRY", 3, ["Edward", "Will", "Will's Date"]),
    ("4", "INT", "CONTINUOUS", "FERRY", 3, ["Mara", "Lorelei"]),
    ("5", "EXT", "DAWN", "HARBOUR", 3, ["Walt", "Mr. And Mrs. Price", "Lorelei", "Bartender"]),
    ("6", "INT", "DAY", "HARBOUR OFFICE", 2, ["Mara", "Lorelei", "Harbourmaster"]),
]


@pytest.mark.parametrize("name", ["night_ferry.fountain", "night_ferry.fdx"])
def test_scenes_break_down_the_same_from_fountain_and_fdx(name: str) -> None:
    doc, result = imported(SCRIPTS / name)
    assert breakdown_of(doc) == FERRY_SCENES
    # WALT & SKYLER, EDWARD AND WILL and BOTH named no new character; each is in the scene.
    names = sorted(r.name for r in doc.all(Role))
    assert not [n for n in names if "&" in n or n in {"Both", "Edward And Will"}]
    (unsure,) = [w for w in result.warnings if "several characters" in w]
    assert "MR. AND MRS. PRICE" in unsure and "--cue 'MR. AND MRS. PRICE=Name,Name'" in unsure
    scenes = {s.number: s for s in doc.all(Scene)}
    assert scenes["1"].pages == 0.5 and scenes["6"].pages == 0.25


def test_first_appearances_fill_descriptions_ages_and_kinds() -> None:
    doc, _ = imported(FERRY)
    roles = {r.name: r for r in doc.all(Role)}
    got = {n: (r.kind, r.age_min, r.age_max) for n, r in roles.items()}
    assert got == {
        "Lorelei": ("lead", 22, 22),  # LORELEI, 22, a deckhand ...; in all six scenes
        "Mara": ("lead", 60, 69),  # MARA (60s)
        "Walt": ("supporting", 50, 59),  # two scenes
        "Skyler": ("day_player", 46, 49),  # SKYLER (late 40s), one scene
        "Edward": ("day_player", 30, 39),
        "Will": ("day_player", 8, 8),
        "Will's Date": ("day_player", None, None),  # not "Will'S Date"
        "Mr. And Mrs. Price": ("day_player", None, None),
        "Bartender": ("featured", None, None),  # never speaks; seen in two scenes
        "Harbourmaster": ("featured", 70, 70),  # never speaks; introduced with an age
        "Passengers": ("background", None, None),  # a crowd
    }
    assert roles["Lorelei"].description.startswith("LORELEI, 22, a deckhand in a torn oilskin")
    assert (
        roles["Mara"].description == "MARA (60s) pushes a pram full of library books up the ramp."
    )
    # The title's markup is not part of the source key.
    assert roles["Mara"].external_ids == {"script:NIGHT FERRY": "MARA"}


def test_a_role_the_team_described_keeps_its_description_and_kind() -> None:
    doc = CastDocument.create("Night Ferry")
    mara = doc.add(Role, name="Mara", description="Our lead.", kind="supporting", age_min=58)
    imported(FERRY, doc=doc)
    kept = doc.get(Role, mara.id)
    assert (kept.description, kept.kind, kept.age_min, kept.age_max) == (
        "Our lead.",
        "supporting",
        58,
        None,
    )


def test_cue_option_maps_a_joint_cue_and_bad_parts_are_one_error(tmp_path: Path) -> None:
    text = FERRY.read_text(encoding="utf-8").replace("MR. AND MRS. PRICE", "THE PRICES")
    path = tmp_path / "ferry.fountain"
    path.write_text(text, encoding="utf-8")
    doc = CastDocument.create("Night Ferry")
    mrs = doc.add(Role, name="Mrs Price")
    imported(path, {"cue": "THE PRICES=Walt,Mrs Price"}, doc=doc)
    names = {r.id: r.name for r in doc.all(Role)}
    five = next(s for s in doc.all(Scene) if s.number == "5")
    assert [names[c] for c in five.characters][:3] == ["Walt", "Mrs Price", "Lorelei"]
    assert "The Prices" not in names.values()
    assert doc.get(Role, mrs.id).external_ids == {}  # named by hand, not the cue's role
    before = doc.state_vector()
    with pytest.raises(CastroomError, match="'Nobody' is neither a character in the script nor"):
        import_script(str(path), ProductionView(doc), {"cue": "THE PRICES=Walt,Nobody"})
    assert doc.state_vector() == before


def test_cli_joint_cue_option(tmp_path: Path, cli) -> None:
    cli("init", "--production", "Night Ferry")
    done = cli("import", "script", str(FERRY), "--cue", "MR. AND MRS. PRICE=Mara,Walt")
    assert done.exit_code == 0, done.output
    assert "several characters" not in done.stderr
    roles = [r["name"] for r in json.loads(cli("list", "roles", "--json").stdout)]
    assert "Mr. And Mrs. Price" not in roles and "Walt & Skyler" not in roles


def test_helpers_names_markup_and_headings() -> None:
    assert pretty_name("WILL'S DATE") == "Will's Date"
    assert pretty_name("O'BRIEN") == "O'Brien" and pretty_name("HENRY VIII") == "Henry VIII"
    assert pretty_name("MARY-ANNE") == "Mary-Anne" and pretty_name("McALLISTER") == "McALLISTER"
    assert strip_markup("_**BRICK & STEEL**_") == "BRICK & STEEL"
    assert strip_markup("*Night* Ferry") == "Night Ferry"
    heading = "INT. KITCHEN \u2013 NIGHT (DAY 2)"  # an en dash
    assert breakdown.location_of(heading) == "KITCHEN"
    assert breakdown.time_of_day(heading) == "NIGHT" and breakdown.int_ext(heading) == "INT"
    assert breakdown.int_ext("I/E CAR \u2014 MOVING \u2014 DAY") == "INT/EXT"
    assert breakdown.time_of_day("EXT. PIER") == "" and breakdown.int_ext("FLASHBACK") == ""
    assert breakdown.eighths_words(11) == "1 3/8" and breakdown.eighths_of_lines(55) == 8
    assert breakdown.age_range("early", "20", "s", None) == (20, 23)
    assert breakdown.age_range(None, "30", None, "35") == (30, 35)


def test_a_script_imported_under_a_title_with_markup_is_found_again(tmp_path: Path) -> None:
    doc, _ = imported(FERRY)
    # As an import before markup was stripped left the ids: under "script:_**NIGHT FERRY**_".
    old = "script:_**NIGHT FERRY**_"
    for cls in (Role, Scene):
        for entity in doc.all(cls):
            doc.update(
                cls, entity.id, {"external_ids": {old: entity.external_ids["script:NIGHT FERRY"]}}
            )
    ids = {s.number: s.id for s in doc.all(Scene)}
    _, result = imported(FERRY, doc=doc)
    assert {s.number: s.id for s in doc.all(Scene)} == ids and len(doc.all(Role)) == 11
    assert all(list(s.external_ids) == ["script:NIGHT FERRY"] for s in doc.all(Scene))
    assert result.report == ["no scene added, omitted or changed"]


def test_both_is_the_last_two_speakers() -> None:
    script = parse_fountain(
        "INT. ROOM - DAY\n\nANN\nHi.\n\nBEN\nHi.\n\nCAL\nHi.\n\nBEN\nBye.\n\nBOTH\nBye!\n"
    )
    (scene,) = script.scenes
    assert scene.characters == ["ANN", "BEN", "CAL"]
    assert scene.speeches == {"ann": 1, "ben": 3, "cal": 2}  # BOTH: Cal and Ben


# -- locked scene numbers ----------------------------------------------------------------------


def numbered(scenes: list[str]) -> str:
    return "Title: Lock\n\n" + "".join(f"INT. {h} - DAY\n\nANN\nHi.\n\n" for h in scenes)


def test_a_locked_script_gets_letters_and_omissions_never_renumbering(tmp_path: Path, cli) -> None:
    cli("init", "--production", "Lock")
    path = tmp_path / "lock.fountain"
    path.write_text(numbered([f"ROOM {n}" for n in range(1, 15)]), encoding="utf-8")
    assert cli("import", "script", str(path)).exit_code == 0
    draft = [f"ROOM {n}" for n in range(1, 13)] + ["ATTIC", "CELLAR"] + ["ROOM 14"]
    draft.remove("ROOM 5")  # cut
    draft.insert(0, "PROLOGUE")
    path.write_text(numbered(draft), encoding="utf-8")
    done = cli("import", "script", str(path))
    assert done.exit_code == 0, done.output
    assert "added 3 scenes: A1, 12A, 12B" in done.stdout
    assert "omitted 2 scenes (kept with their looks and shoot days): 5, 13" in done.stdout
    scenes = {s["number"]: s for s in json.loads(cli("list", "scenes", "--json").stdout)}
    assert scenes["12A"]["heading"] == "INT. ATTIC - DAY" and scenes["12B"]["heading"].startswith(
        "INT. CELLAR"
    )
    assert scenes["14"]["heading"] == "INT. ROOM 14 - DAY"  # not renumbered
    assert scenes["5"]["omitted"] and scenes["13"]["omitted"] and not scenes["6"]["omitted"]
    again = json.loads(cli("import", "script", str(path), "--json").stdout)
    assert again["report"] == ["no scene added, omitted or changed"]
    assert (again["created"], again["updated"]) == (0, 0)


def test_an_omitted_scene_needs_no_actor_but_is_flagged_on_a_shoot_day(tmp_path: Path) -> None:
    from castroom.core.model import ShootDay
    from castroom.plugins.continuity import check_uncast
    from castroom.plugins.screenplay import check_omitted

    doc = CastDocument.create("Lock")
    path = tmp_path / "lock.fountain"
    path.write_text(numbered(["ROOM 1", "ROOM 2"]), encoding="utf-8")
    imported(path, doc=doc)
    two = next(s for s in doc.all(Scene) if s.number == "2")
    day = doc.add(ShootDay, date="2027-03-01", scene_ids=[two.id])
    doc.update(Scene, two.id, {"shoot_day_id": day.id})
    path.write_text(numbered(["ROOM 1"]), encoding="utf-8")
    imported(path, doc=doc)
    assert doc.get(Scene, two.id).omitted
    view = ProductionView(doc)
    # Ann needs an actor for scene 1 only (was: "in 2 scenes: 1, 2").
    assert [f.message for f in check_uncast(view)] == [
        "Ann has no booked actor but is in 1 scene: 1"
    ]
    (flag,) = check_omitted(view)
    assert flag.code == "script.omitted-scheduled" and "omitted scene(s) 2" in flag.message
