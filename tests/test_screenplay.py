"""Screenplays into scenes and roles: Fountain (via screenplain) and Final Draft FDX."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from castroom.core.document import CastDocument
from castroom.core.errors import CastroomError
from castroom.core.importing import apply_import
from castroom.core.model import Look, Role, Scene, ShootDay
from castroom.core.view import ProductionView
from castroom.plugins.screenplay import (
    character_name,
    import_script,
    location_of,
    page_length,
    parse_fdx,
    parse_fountain,
)

FOUNTAIN = """Title: Harbour Lights
Credit: written by
Author: Nell Ashby
Draft date: 2 March 2026

FADE IN:

INT. MARSH FAMILY KITCHEN - NIGHT (DAY 1)

Rain against the window. MARY MARSH (40s) stirs a pot that does not need stirring.

MARY
He said he'd be back by six.

TOMMY (V.O.)
(from the hall)
He says a lot of things.

/* Cut for time:
GRANDAD
I remember the flood.
*/

EXT. HARBOUR WALL - DAY #5#
[[DAY 2. Continuity: Mary's coat is still wet.]]

Gulls. The trawler sits low in the water.

MARY (CONT'D)
Look at her. She's taking on water.

DR. OKAFOR ^
She's been taking on water for years.

@McALLISTER
Not on my watch.

.FLASHBACK - THE OLD PIER

= Day 3; era: Young

YOUNG MARY
Race you to the end!

INT. LIFEBOAT STATION - CONTINUOUS

Nobody speaks. The radio crackles.

> CUT TO:

EXT. HARBOUR WALL - STORY DAY 4

MARY
It's over.

TOMMY
It's never over.
"""

FDX = """<?xml version="1.0" encoding="UTF-8" standalone="no" ?>
<FinalDraft DocumentType="Script" Template="No" Version="5">
  <Content>
    <Paragraph Type="Scene Heading" Number="1">
      <SceneProperties Length="3/8" Page="1" Title=""/>
      <Text>INT. MARSH FAMILY KITCHEN - NIGHT (DAY 1)</Text>
    </Paragraph>
    <Paragraph Type="Action">
      <Text>Rain against the window. MARY stirs a pot.</Text>
    </Paragraph>
    <Paragraph Type="Character"><Text>MARY</Text></Paragraph>
    <Paragraph Type="Dialogue"><Text>He said he'd be back by six.</Text></Paragraph>
    <Paragraph Type="Character">
      <Text>TOMMY</Text><Text AdornmentStyle="-1"> (V.O.)</Text>
    </Paragraph>
    <Paragraph Type="Parenthetical"><Text>(from the hall)</Text></Paragraph>
    <Paragraph Type="Dialogue"><Text>He says a lot of things.</Text></Paragraph>
    <Paragraph Type="Scene Heading" Number="5">
      <SceneProperties Length="1" Page="2" Title="Harbour">
        <Summary><Paragraph><Text>Day 2: the trawler is sinking</Text></Paragraph></Summary>
      </SceneProperties>
      <Text>EXT. HARBOUR WALL - DAY</Text>
    </Paragraph>
    <Paragraph Type="Action"><Text>Gulls. The trawler sits low in the water.</Text></Paragraph>
    <Paragraph>
      <DualDialogue>
        <Paragraph Type="Character"><Text>MARY (CONT'D)</Text></Paragraph>
        <Paragraph Type="Dialogue"><Text>Look at her.</Text></Paragraph>
        <Paragraph Type="Character"><Text>DR. OKAFOR</Text></Paragraph>
        <Paragraph Type="Dialogue"><Text>She's been taking on water for years.</Text></Paragraph>
      </DualDialogue>
    </Paragraph>
    <Paragraph Type="Scene Heading" Number="6">
      <Text>EXT. HARBOUR WALL - STORY DAY 4</Text>
      <ScriptNote><Paragraph><Text>ERA: Present</Text></Paragraph></ScriptNote>
    </Paragraph>
    <Paragraph Type="Character"><Text>MARY</Text></Paragraph>
    <Paragraph Type="Dialogue"><Text>It's over.</Text></Paragraph>
  </Content>
  <TitlePage>
    <Content>
      <Paragraph Type="Text"><Text>Harbour Lights</Text></Paragraph>
    </Content>
  </TitlePage>
</FinalDraft>
"""


def test_fountain_scenes_numbers_days_and_characters() -> None:
    script = parse_fountain(FOUNTAIN)
    assert script.title == "Harbour Lights"
    got = [(s.number, s.heading, s.story_day, s.era, s.characters) for s in script.scenes]
    assert got == [
        (None, "INT. MARSH FAMILY KITCHEN - NIGHT (DAY 1)", 1, None, ["MARY", "TOMMY"]),
        ("5", "EXT. HARBOUR WALL - DAY", 2, None, ["MARY", "DR. OKAFOR", "McALLISTER"]),
        (None, "FLASHBACK - THE OLD PIER", 3, "Young", ["YOUNG MARY"]),
        (None, "INT. LIFEBOAT STATION - CONTINUOUS", None, None, []),
        (None, "EXT. HARBOUR WALL - STORY DAY 4", 4, None, ["MARY", "TOMMY"]),
    ]  # the boneyard's GRANDAD is cut; "- DAY" alone is a time of day, not a story day


def test_fdx_scenes_numbers_days_and_characters() -> None:
    script = parse_fdx(FDX.encode())
    assert script.title == "Harbour Lights"
    got = [(s.number, s.story_day, s.era, s.pages, s.characters) for s in script.scenes]
    assert got == [
        ("1", 1, None, 0.375, ["MARY", "TOMMY"]),
        ("5", 2, None, 1.0, ["MARY", "DR. OKAFOR"]),
        ("6", 4, "Present", None, ["MARY"]),
    ]


def test_helpers() -> None:
    assert page_length("1 3/8") == 1.375 and page_length("") is None
    assert page_length("x/8") is None
    assert character_name("MARY (CONT'D) ^") == "MARY"
    assert location_of("INT. MARSH FAMILY KITCHEN - NIGHT (DAY 1)") == "MARSH FAMILY KITCHEN"
    assert location_of("INT./EXT. CAR - MOVING - DAY") == "CAR"


def test_import_creates_roles_and_scenes_then_updates(tmp_path: Path) -> None:
    doc = CastDocument.create("Harbour Lights")
    path = tmp_path / "harbour.fountain"
    path.write_text(FOUNTAIN, encoding="utf-8")
    result = import_script(str(path), ProductionView(doc), {})
    assert any("1 of 5 scenes have no story day" in w for w in result.warnings)
    counts = apply_import(doc, result)
    assert counts.created == 5 + 5  # five characters, five scenes
    roles = {r.name: r.id for r in doc.all(Role)}
    assert set(roles) == {"Mary", "Tommy", "Dr. Okafor", "McALLISTER", "Young Mary"}
    scenes = {s.number: s for s in doc.all(Scene)}
    assert sorted(scenes, key=int) == ["1", "5", "6", "7", "8"]  # numbering goes on after #5#
    assert scenes["5"].characters == [roles["Mary"], roles["Dr. Okafor"], roles["McALLISTER"]]
    assert scenes["5"].location == "HARBOUR WALL" and scenes["5"].story_day == 2
    # The team adds looks and a shoot day; the writer revises scene 5 (drops McAllister).
    looks = {roles["Mary"]: Look(hair="wet"), roles["McALLISTER"]: Look(wardrobe="oilskin")}
    doc.update(Scene, scenes["5"].id, {"looks": looks})
    path.write_text(FOUNTAIN.replace("@McALLISTER\nNot on my watch.\n", ""), encoding="utf-8")
    again = import_script(str(path), ProductionView(doc), {})
    counts = apply_import(doc, again)
    assert (counts.created, counts.updated) == (0, 1)
    scene = doc.get(Scene, scenes["5"].id)
    assert roles["McALLISTER"] not in scene.characters
    assert set(scene.looks) == {roles["Mary"]} and scene.looks[roles["Mary"]].hair == "wet"
    assert any("looks kept only" in w for w in again.warnings)
    assert len(doc.all(Role)) == 5 and len(doc.all(Scene)) == 5


def test_fountain_and_fdx_share_roles(tmp_path: Path) -> None:
    doc = CastDocument.create("Harbour Lights")
    fountain, fdx = tmp_path / "a.fountain", tmp_path / "b.fdx"
    fountain.write_text(FOUNTAIN, encoding="utf-8")
    fdx.write_text(FDX, encoding="utf-8")
    apply_import(doc, import_script(str(fountain), ProductionView(doc), {}))
    apply_import(doc, import_script(str(fdx), ProductionView(doc), {}))
    assert len(doc.all(Role)) == 5  # MARY, TOMMY, DR. OKAFOR matched by name


def test_cli_import_script_and_errors(tmp_path: Path, cli) -> None:
    cli("init", "--production", "Harbour Lights")
    fdx = tmp_path / "harbour.fdx"
    fdx.write_text(FDX, encoding="utf-8")
    done = cli("import", "script", str(fdx))
    assert done.exit_code == 0 and "6 created" in done.stdout  # three roles, three scenes
    scenes = json.loads(cli("list", "scenes", "--json").stdout)
    assert sorted(s["number"] for s in scenes) == ["1", "5", "6"]
    broken = tmp_path / "broken.fdx"
    broken.write_text("<FinalDraft><Content><Paragraph", encoding="utf-8")
    failed = cli("import", "script", str(broken))
    assert failed.exit_code == 1 and "not a Final Draft file" in failed.stderr
    empty = tmp_path / "notes.fountain"
    empty.write_text("Just some prose with no scene headings.\n", encoding="utf-8")
    failed = cli("import", "script", str(empty))
    assert failed.exit_code == 1 and "no scene headings" in failed.stderr
    assert len(json.loads(cli("list", "scenes", "--json").stdout)) == 3


def test_unreadable_file_is_one_clear_error(tmp_path: Path) -> None:
    doc = CastDocument.create("X")
    with pytest.raises(CastroomError, match="cannot read"):
        import_script(str(tmp_path / "missing.fountain"), ProductionView(doc), {})


# -- source ids: re-imports of a new draft ----------------------------------------------------

DRAFT_1 = [
    ("INT. KITCHEN - NIGHT", [("MARY", "He said six."), ("TOMMY", "He says a lot.")]),
    ("EXT. HARBOUR WALL - DAY", [("MARY", "Look at her."), ("DR. OKAFOR", "For years.")]),
    ("INT. KITCHEN - NIGHT", [("MARY", "Still not back.")]),  # the same heading again
    ("EXT. PIER - DAWN", [("TOMMY", "It's over.")]),
]
# The next draft inserts a scene in the middle and gives Mary a line on the pier.
DRAFT_2 = [
    *DRAFT_1[:1],
    ("EXT. LIGHTHOUSE - NIGHT", [("YOUNG MARY", "Race you!")]),
    *DRAFT_1[1:3],
    ("EXT. PIER - DAWN", [("TOMMY", "It's over."), ("MARY", "It's never over.")]),
]
Draft = list[tuple[str, list[tuple[str, str]]]]


def fountain_of(scenes: Draft, numbered: bool = False) -> str:
    out = ["Title: Harbour Lights", "Author: Nell Ashby", "", ""]
    for n, (heading, lines) in enumerate(scenes, 1):
        out += [f"{heading} #{n}#" if numbered else heading, ""]
        for cue, line in lines:
            out += [cue, line, ""]
    return "\n".join(out)


def fdx_of(scenes: Draft, numbered: bool = False) -> str:
    body = []
    for n, (heading, lines) in enumerate(scenes, 1):
        number = f' Number="{n}"' if numbered else ""
        body.append(f'<Paragraph Type="Scene Heading"{number}><Text>{heading}</Text></Paragraph>')
        for cue, line in lines:
            body.append(f'<Paragraph Type="Character"><Text>{cue}</Text></Paragraph>')
            body.append(f'<Paragraph Type="Dialogue"><Text>{line}</Text></Paragraph>')
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<FinalDraft DocumentType="Script">'
        f"<Content>{''.join(body)}</Content><TitlePage><Content>"
        '<Paragraph Type="Text"><Text>Harbour Lights</Text></Paragraph>'
        "</Content></TitlePage></FinalDraft>\n"
    )


WRITERS = {"fountain": fountain_of, "fdx": fdx_of}


def import_file(doc: CastDocument, path: Path, text: str):
    path.write_text(text, encoding="utf-8")
    result = import_script(str(path), ProductionView(doc), {})
    return result, apply_import(doc, result)


@pytest.mark.parametrize("fmt", list(WRITERS))
def test_reimporting_the_same_script_changes_nothing(tmp_path: Path, fmt: str) -> None:
    doc = CastDocument.create("Harbour Lights")
    path = tmp_path / f"harbour.{fmt}"
    _, first = import_file(doc, path, WRITERS[fmt](DRAFT_1))
    assert first.created == 4 + 3  # four scenes; Mary, Tommy, Dr. Okafor
    source = "script:Harbour Lights"
    scenes = sorted(doc.all(Scene), key=lambda s: int(s.number))
    assert [s.external_ids for s in scenes] == [
        {source: "int. kitchen - night#1"},
        {source: "ext. harbour wall - day#1"},
        {source: "int. kitchen - night#2"},
        {source: "ext. pier - dawn#1"},
    ]
    assert sorted(r.external_ids[source] for r in doc.all(Role)) == ["DR. OKAFOR", "MARY", "TOMMY"]
    before = doc.state_vector()
    _, again = import_file(doc, path, WRITERS[fmt](DRAFT_1))
    assert (again.created, again.updated, again.unchanged) == (0, 0, 4)
    assert doc.state_vector() == before  # not one write


@pytest.mark.parametrize("fmt", list(WRITERS))
def test_a_scene_inserted_in_a_new_draft_leaves_the_others_on_their_scenes(
    tmp_path: Path, fmt: str
) -> None:
    doc = CastDocument.create("Harbour Lights")
    import_file(doc, tmp_path / f"harbour.{fmt}", WRITERS[fmt](DRAFT_1))
    roles = {r.name: r.id for r in doc.all(Role)}
    old = {s.number: s.id for s in doc.all(Scene)}
    # The team works on draft 1: a look and a shoot day for the second kitchen scene (3),
    # the pier (4) on the same day; and Mary's role is renamed here, not in the script.
    kitchen, pier = old["3"], old["4"]
    day = doc.add(ShootDay, date="2026-05-04", scene_ids=[kitchen, pier])
    doc.update(Scene, kitchen, {"shoot_day_id": day.id, "looks": {roles["Mary"]: Look(hair="wet")}})
    doc.update(Scene, pier, {"shoot_day_id": day.id})
    doc.update(Role, roles["Mary"], {"name": "Mary Marsh"})

    result, counts = import_file(doc, tmp_path / f"harbour_v2.{fmt}", WRITERS[fmt](DRAFT_2))
    assert (counts.created, counts.updated) == (1 + 1, 1)  # lighthouse, Young Mary; the pier
    assert not any("looks kept only" in w for w in result.warnings)
    # The numbers are locked: the inserted scene is 1A, no other scene is renumbered.
    by_number = {s.number: s for s in doc.all(Scene)}
    assert [by_number[n].id for n in ("1", "2", "3", "4")] == [old["1"], old["2"], kitchen, pier]
    assert result.report == ["added 1 scene: 1A", "changed 1 scene: 4"]
    lighthouse = by_number["1A"]
    assert lighthouse.id not in old.values() and lighthouse.shoot_day_id is None
    assert lighthouse.looks == {} and lighthouse.characters == [roles_of(doc)["Young Mary"]]
    # The look and the shoot day stayed with the kitchen scene, still number 3 ...
    moved = doc.get(Scene, kitchen)
    assert moved.heading == "INT. KITCHEN - NIGHT" and moved.characters == [roles["Mary"]]
    assert moved.looks[roles["Mary"]].hair == "wet" and moved.shoot_day_id == day.id
    assert doc.get(ShootDay, day.id).scene_ids == [kitchen, pier]
    # ... and the new line went to the pier, found by its source id, not its old number.
    assert doc.get(Scene, pier).characters == [roles["Tommy"], roles["Mary"]]
    assert doc.get(Role, roles["Mary"]).name == "Mary Marsh"  # found by its cue, not renamed
    assert len(doc.all(Role)) == 4 and len(doc.all(Scene)) == 5


def roles_of(doc: CastDocument) -> dict[str, str]:
    return {r.name: r.id for r in doc.all(Role)}


def test_scenes_imported_before_source_ids_match_by_number_then_keep_ids(tmp_path: Path) -> None:
    doc = CastDocument.create("Harbour Lights")
    path = tmp_path / "harbour.fountain"
    import_file(doc, path, fountain_of(DRAFT_1))
    for cls in (Scene, Role):  # as an import made before external_ids existed left them
        for entity in doc.all(cls):
            doc.update(cls, entity.id, {"external_ids": {}})
    ids = {s.number: s.id for s in doc.all(Scene)}
    _, counts = import_file(doc, path, fountain_of(DRAFT_1))
    assert (counts.created, counts.updated) == (0, 4 + 3)  # each gains its source id
    assert {s.number: s.id for s in doc.all(Scene)} == ids
    assert all(s.external_ids for s in doc.all(Scene)) and all(
        r.external_ids for r in doc.all(Role)
    )
    # The writer locks the script (numbers it): the same scenes, now keyed by number.
    _, counts = import_file(doc, path, fountain_of(DRAFT_1, numbered=True))
    assert (counts.created, counts.updated) == (0, 4)
    assert {s.number: s.id for s in doc.all(Scene)} == ids
    assert doc.get(Scene, ids["3"]).external_ids == {"script:Harbour Lights": "3"}


def test_scenes_cut_from_a_draft_are_kept_marked_omitted(tmp_path: Path) -> None:
    doc = CastDocument.create("Harbour Lights")
    import_file(doc, tmp_path / "a.fountain", fountain_of(DRAFT_1))
    scenes = {s.number: s for s in doc.all(Scene)}
    day = doc.add(ShootDay, date="2026-05-04", scene_ids=[scenes["4"].id])
    roles = roles_of(doc)
    looks = {roles["Tommy"]: Look(wardrobe="oilskin")}
    doc.update(Scene, scenes["4"].id, {"shoot_day_id": day.id, "looks": looks})
    result, counts = import_file(doc, tmp_path / "a.fountain", fountain_of(DRAFT_1[:2]))
    assert (counts.created, counts.updated) == (0, 2) and len(doc.all(Scene)) == 4
    assert result.report == ["omitted 2 scenes (kept with their looks and shoot days): 3, 4"]
    cut = doc.get(Scene, scenes["4"].id)
    assert cut.omitted and cut.number == "4" and cut.shoot_day_id == day.id
    assert cut.looks[roles["Tommy"]].wardrobe == "oilskin"
    assert not doc.get(Scene, scenes["1"].id).omitted
    # The scene comes back in the next draft: no longer omitted, the same entity.
    result, counts = import_file(doc, tmp_path / "a.fountain", fountain_of(DRAFT_1))
    assert result.report == ["added 2 scenes: 3, 4"] and counts.created == 0
    assert not doc.get(Scene, scenes["4"].id).omitted


# -- several scripts in one production (a series' episodes) ------------------------------------

PILOT = """Title: Harbour Lights - Pilot

EXT. PIER - DAY #1#

[[DAY 1]]

NORA
You're late.

TOM
Tide was against me.

INT. LIGHTHOUSE - NIGHT #2#

NORA
Let it come.
"""
EPISODE_3 = """Title: Harbour Lights - Episode 3

EXT. MARKET SQUARE - DAY #1#

[[DAY 5]]

WAITRESS
Fresh fish!
"""


def test_a_second_script_numbering_from_one_never_takes_over_the_first(tmp_path: Path) -> None:
    doc = CastDocument.create("Harbour Lights")
    import_file(doc, tmp_path / "pilot.fountain", PILOT)
    pilot = {s.number: s for s in doc.all(Scene)}
    roles = roles_of(doc)
    day = doc.add(ShootDay, date="2026-05-04", scene_ids=[pilot["1"].id])
    doc.update(
        Scene, pilot["1"].id, {"looks": {roles["Nora"]: Look(hair="wet")}, "shoot_day_id": day.id}
    )
    result, counts = import_file(doc, tmp_path / "ep3.fountain", EPISODE_3)
    assert counts.created == 2  # the market scene and the waitress; the pilot untouched
    one = doc.get(Scene, pilot["1"].id)
    assert (one.heading, one.story_day, one.shoot_day_id) == ("EXT. PIER - DAY", 1, day.id)
    assert (
        one.characters == [roles["Nora"], roles["Tom"]] and one.looks[roles["Nora"]].hair == "wet"
    )
    market = next(s for s in doc.all(Scene) if s.id not in {p.id for p in pilot.values()})
    assert market.number == "1A" and market.heading == "EXT. MARKET SQUARE - DAY"
    assert market.external_ids == {"script:Harbour Lights - Episode 3": "1"}
    (clash,) = [w for w in result.warnings if "--prefix" in w]
    assert "1 -> 1A" in clash and "EXT. PIER - DAY" in clash
    assert sorted(s.number for s in doc.all(Scene)) == ["1", "1A", "2"]  # no number twice
    # Importing the episode again finds its scene by its source id and leaves it as it is.
    before = doc.state_vector()
    _, again = import_file(doc, tmp_path / "ep3.fountain", EPISODE_3)
    assert (again.created, again.updated) == (0, 0) and doc.state_vector() == before


def test_prefix_numbers_a_scripts_scenes_apart(tmp_path: Path) -> None:
    doc = CastDocument.create("Harbour Lights")
    import_file(doc, tmp_path / "pilot.fountain", PILOT)
    path = tmp_path / "ep3.fountain"
    path.write_text(EPISODE_3, encoding="utf-8")
    result = import_script(str(path), ProductionView(doc), {"prefix": "3."})
    assert not any("--prefix" in w for w in result.warnings)
    apply_import(doc, result)
    assert sorted(s.number for s in doc.all(Scene)) == ["1", "2", "3.1"]
    # The prefix is not part of the scene's id in the script: a re-import still finds it.
    again = apply_import(doc, import_script(str(path), ProductionView(doc), {"prefix": "3."}))
    assert (again.created, again.updated, again.unchanged) == (0, 0, 1)
    with pytest.raises(CastroomError, match="--prefix"):
        import_script(str(path), ProductionView(doc), {"prefix": True})
    with pytest.raises(CastroomError, match="longer than 20"):
        import_script(str(path), ProductionView(doc), {"prefix": "episode-three-part-a-"})


SERIES_EPISODE = """Title: The Long Summer

INT. KITCHEN - DAY

ANNA
Morning.

EXT. GARDEN - DAY

BEN
Hello.
"""


def test_episodes_with_one_title_and_a_prefix_each_never_touch_each_other(
    tmp_path: Path,
) -> None:
    """A series' title pages share the series' title: episode 2, imported with --prefix
    2., must neither take over episode 1's scenes that have its headings nor omit the rest."""
    doc = CastDocument.create("The Long Summer")
    one, two = tmp_path / "ep1.fountain", tmp_path / "ep2.fountain"
    one.write_text(SERIES_EPISODE, encoding="utf-8")
    two.write_text(SERIES_EPISODE.replace("ANNA", "CLARA").replace("EXT. GARDEN", "INT. CAR"))
    apply_import(doc, import_script(str(one), ProductionView(doc), {"prefix": "1."}))
    first = {s.number: s for s in doc.all(Scene)}
    result = import_script(str(two), ProductionView(doc), {"prefix": "2."})
    counts = apply_import(doc, result)
    assert counts.created == 2 + 1  # scenes 2.1 and 2.2; Clara (Ben is one role)
    assert {s.number: s for s in doc.all(Scene) if s.number.startswith("1.")} == first
    assert sorted(s.number for s in doc.all(Scene) if not s.omitted) == ["1.1", "1.2", "2.1", "2.2"]
    assert not any(line.startswith("omitted") for line in result.report)
    # Each episode's re-import finds its own scenes again and changes nothing.
    before = doc.state_vector()
    for path, prefix in ((one, "1."), (two, "2.")):
        again = apply_import(doc, import_script(str(path), ProductionView(doc), {"prefix": prefix}))
        assert (again.created, again.updated) == (0, 0)
    assert doc.state_vector() == before


def test_an_episode_imported_with_a_prefix_before_its_source_id_carried_it(
    tmp_path: Path,
) -> None:
    """Scenes an earlier castroom stored under the bare title for a --prefix import are
    found again by the same import (and move to the prefixed source id), not duplicated."""
    doc = CastDocument.create("The Long Summer")
    path = tmp_path / "ep3.fountain"
    path.write_text(SERIES_EPISODE, encoding="utf-8")
    apply_import(doc, import_script(str(path), ProductionView(doc), {"prefix": "3."}))
    for scene in doc.all(Scene):  # as castroom stored them before
        (key,) = scene.external_ids.values()
        doc.update(Scene, scene.id, {"external_ids": {"script:The Long Summer": key}})
    again = apply_import(doc, import_script(str(path), ProductionView(doc), {"prefix": "3."}))
    assert (again.created, again.updated) == (0, 2)
    scenes = sorted(doc.all(Scene), key=lambda s: s.number)
    assert [s.number for s in scenes] == ["3.1", "3.2"] and not any(s.omitted for s in scenes)
    assert all(set(s.external_ids) == {"script:The Long Summer (3.)"} for s in scenes)


def test_an_unnumbered_scene_never_takes_a_hand_made_scene_by_its_position(
    tmp_path: Path,
) -> None:
    doc = CastDocument.create("Harbour Lights")
    day = doc.add(ShootDay, date="2026-05-04")
    office = doc.add(Scene, number="3", heading="INT. HARBOUR OFFICE", shoot_day_id=day.id)
    # Scenes 1 and 2 are numbered; the third is not (so it would be "3" by position).
    text = PILOT + "\n.FLASHBACK - EXT. BEACH - DAY\n\nYOUNG NORA\nDad! Look!\n"
    result, _ = import_file(doc, tmp_path / "pilot.fountain", text)
    kept = doc.get(Scene, office.id)
    assert (kept.heading, kept.shoot_day_id, kept.external_ids) == (
        "INT. HARBOUR OFFICE",
        day.id,
        {},
    )
    beach = next(s for s in doc.all(Scene) if s.heading.startswith("FLASHBACK"))
    assert beach.number == "3A" and beach.shoot_day_id is None
    assert any("3 -> 3A" in w and "INT. HARBOUR OFFICE" in w for w in result.warnings)
    assert len({s.number for s in doc.all(Scene)}) == 4


def test_cli_warns_about_clashing_numbers_and_takes_prefix(tmp_path: Path, cli) -> None:
    cli("init", "--production", "Harbour Lights")
    (tmp_path / "pilot.fountain").write_text(PILOT, encoding="utf-8")
    (tmp_path / "ep3.fountain").write_text(EPISODE_3, encoding="utf-8")
    assert cli("import", "script", str(tmp_path / "pilot.fountain")).exit_code == 0
    done = cli("import", "script", str(tmp_path / "ep3.fountain"), "--prefix", "3.")
    assert done.exit_code == 0 and "--prefix" not in done.stderr
    scenes = json.loads(cli("list", "scenes", "--json").stdout)
    assert sorted(s["number"] for s in scenes) == ["1", "2", "3.1"]


# -- cues and existing roles -------------------------------------------------------------------


def test_a_cue_is_the_one_role_whose_name_starts_with_it(tmp_path: Path) -> None:
    doc = CastDocument.create("Harbour Lights")
    nora = doc.add(Role, name="Nora Quill")
    doc.add(Role, name="Tom Quill")
    doc.add(Role, name="Tom Hardy")
    result, _ = import_file(doc, tmp_path / "pilot.fountain", PILOT)
    roles = roles_of(doc)
    assert set(roles) == {"Nora Quill", "Tom Quill", "Tom Hardy", "Tom"}  # no "Nora"
    assert doc.get(Role, nora.id).external_ids == {"script:Harbour Lights - Pilot": "NORA"}
    assert all(nora.id in s.characters for s in doc.all(Scene))
    said = " | ".join(result.warnings)
    assert "cue NORA is taken to be role 'Nora Quill'" in said and '--cue NORA="' in said
    assert "cue TOM could be any of 'Tom Hardy', 'Tom Quill'" in said  # two: neither taken
    # Next time the source id matches: no guessing, no warning.
    again, counts = import_file(doc, tmp_path / "pilot.fountain", PILOT)
    assert counts.created == 0 and not any("taken to be" in w for w in again.warnings)


def test_cue_option_maps_a_cue_to_a_role_and_keeps_its_looks(tmp_path: Path) -> None:
    doc = CastDocument.create("Harbour Lights")
    path = tmp_path / "pilot.fountain"
    import_file(doc, path, PILOT)  # made roles "Nora" and "Tom"
    made = roles_of(doc)
    eleanor = doc.add(Role, name="Eleanor Quill")
    scene = next(s for s in doc.all(Scene) if s.number == "1")
    doc.update(Scene, scene.id, {"looks": {made["Nora"]: Look(hair="wet")}})
    # Tom Quill stands in the scene too (added by hand), with a look of his own.
    tom_q = doc.add(Role, name="Tom Quill")
    options = {"cue": ['NORA="Eleanor Quill"', f"TOM={tom_q.id}"]}
    result = import_script(str(path), ProductionView(doc), options)
    assert not any("looks kept only" in w for w in result.warnings)
    apply_import(doc, result)
    one = doc.get(Scene, scene.id)
    assert one.characters == [eleanor.id, tom_q.id]
    assert set(one.looks) == {eleanor.id} and one.looks[eleanor.id].hair == "wet"
    source = "script:Harbour Lights - Pilot"
    assert doc.get(Role, eleanor.id).external_ids == {source: "NORA"}
    assert doc.get(Role, made["Nora"]).external_ids == {}  # no longer matches NORA
    # A later import without --cue keeps the mapping (the role's source id).
    _, counts = import_file(doc, path, PILOT)
    assert (counts.created, counts.updated) == (0, 0)
    assert doc.get(Scene, scene.id).characters == [eleanor.id, tom_q.id]


def test_cue_option_errors_write_nothing(tmp_path: Path, cli) -> None:
    cli("init", "--production", "Harbour Lights")
    cli("add", "role", "name=Nora Quill")
    cli("add", "role", "name=Twin")
    cli("add", "role", "name=twin")
    path = tmp_path / "pilot.fountain"
    path.write_text(PILOT, encoding="utf-8")
    for option, error in [
        ("NORA=Nora Quil", "--cue NORA: no role with id or name 'Nora Quil'"),
        ("NORA=Twin", "--cue NORA: 2 roles are named 'Twin'; use the id"),
        ("NORA", '--cue expects CUE="Role name"'),
    ]:
        failed = cli("import", "script", str(path), "--cue", option)
        assert failed.exit_code == 1 and error in failed.stderr, failed.stderr
    assert json.loads(cli("list", "scenes", "--json").stdout) == []
    assert len(json.loads(cli("list", "roles", "--json").stdout)) == 3
    done = cli(
        "import", "script", str(path), "--cue", "nora=Nora Quill", "--cue", "GHOST=Nora Quill"
    )
    assert done.exit_code == 0, done.output
    assert "--cue names cues the script does not have: GHOST" in done.stderr.replace("\n", " ")
    names = sorted(r["name"] for r in json.loads(cli("list", "roles", "--json").stdout))
    assert names == ["Nora Quill", "Tom", "Twin", "twin"]


def test_scenes_and_roles_made_together_list_in_script_order(tmp_path: Path, cli) -> None:
    # Ids sort by time; many made in one millisecond must still sort in script order.
    numbers = ["1", "2", "3", "3A", "4", *(str(n) for n in range(5, 41))]
    text = "Title: Long Night\n\n" + "".join(
        f"INT. ROOM {n} - NIGHT #{n}#\n\nPERSON {n}\nHello.\n\n" for n in numbers
    )
    path = tmp_path / "long.fountain"
    path.write_text(text, encoding="utf-8")
    cli("init", "--production", "Long Night")
    assert cli("import", "script", str(path)).exit_code == 0
    scenes = json.loads(cli("list", "scenes", "--json").stdout)
    assert [s["number"] for s in scenes] == numbers
    roles = json.loads(cli("list", "roles", "--json").stdout)
    assert [r["name"] for r in roles] == [f"Person {n}" for n in numbers]


@pytest.mark.parametrize("fmt", list(WRITERS))
def test_no_story_day_warning_says_how_to_mark_one(tmp_path: Path, fmt: str) -> None:
    doc = CastDocument.create("Harbour Lights")
    result, _ = import_file(doc, tmp_path / f"harbour.{fmt}", WRITERS[fmt](DRAFT_1, True))
    (warning,) = [w for w in result.warnings if "no story day" in w]
    assert warning.startswith("4 of 4 scenes have no story day marked (1, 2, 3, 4)")
    if fmt == "fountain":
        assert "[[DAY 2]]" in warning and "(DAY 2)" in warning and "= Day 2" in warning
    else:
        assert "DAY 2" in warning and "Summary" in warning


@pytest.mark.parametrize("fmt", list(WRITERS))
def test_a_story_day_set_in_castroom_is_not_warned_about_on_reimport(
    tmp_path: Path, fmt: str
) -> None:
    doc = CastDocument.create("Harbour Lights")
    path = tmp_path / f"harbour.{fmt}"
    import_file(doc, path, WRITERS[fmt](DRAFT_1, True))
    scenes = {s.number: s for s in doc.all(Scene)}
    for number in ("1", "3"):  # the script marks none: the team sets two by hand
        doc.update(Scene, scenes[number].id, {"story_day": 2})
    result, again = import_file(doc, path, WRITERS[fmt](DRAFT_1, True))
    (warning,) = [w for w in result.warnings if "no story day" in w]
    assert warning.startswith("2 of 4 scenes have no story day marked (2, 4)")
    assert again.updated == 0  # and the hand-set days are kept
    for number in ("2", "4"):
        doc.update(Scene, scenes[number].id, {"story_day": 3})
    result, _ = import_file(doc, path, WRITERS[fmt](DRAFT_1, True))
    assert not [w for w in result.warnings if "no story day" in w]


def test_the_importer_description_names_its_options() -> None:
    from castroom.core.plugins import make_plugins

    description = make_plugins(entry_points=False).importers()["script"].description
    assert all(o in description for o in ("--prefix", "--cue", "--source", "--format"))
