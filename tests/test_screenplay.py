"""Screenplays into scenes and roles: Fountain (via screenplain) and Final Draft FDX."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from castroom.core.document import CastDocument
from castroom.core.errors import CastroomError
from castroom.core.importing import apply_import
from castroom.core.model import Look, Role, Scene
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
