"""Screenplay PDFs read by their layout (PDFium, through pypdfium2): the same scenes, characters and
eighths as the Fountain each was written from (tests/data/scripts, see SOURCES.md)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from castroom.core.errors import CastroomError
from castroom.plugins.script_formats import ParsedScript, read_script

SCRIPTS = Path(__file__).parent / "data" / "scripts"


def shape(script: ParsedScript) -> list[tuple]:
    return [
        (s.number, s.heading, s.characters, s.speeches, s.eighths, s.elements)
        for s in script.scenes
    ]


@pytest.mark.parametrize(
    ("pdf", "fountain"),
    [
        ("night_ferry.pdf", "night_ferry.fountain"),  # screenplain's PDF, a title page
        ("night_ferry_numbered.pdf", "night_ferry_numbered.fountain"),  # by hand, (MORE)
        ("crossing.pdf", "crossing.fountain"),  # dual dialogue: two columns side by side
    ],
)
def test_a_pdf_reads_as_the_fountain_it_was_written_from(pdf: str, fountain: str) -> None:
    from_pdf = read_script(str(SCRIPTS / pdf), {})
    from_fountain = read_script(str(SCRIPTS / fountain), {})
    assert from_pdf.format == "pdf" and from_pdf.title == from_fountain.title
    assert shape(from_pdf) == shape(from_fountain)
    assert len(from_pdf.scenes) == (2 if pdf == "crossing.pdf" else 6)
    assert all(len(s.characters) >= 2 for s in from_pdf.scenes)


def test_numbers_in_the_margins_and_a_speech_over_a_page_break() -> None:
    script = read_script(str(SCRIPTS / "night_ferry_numbered.pdf"), {})
    assert [s.number for s in script.scenes] == ["1", "2", "2A", "3", "4", "5"]
    cabin = script.scenes[3]
    # MARA's speech breaks with (MORE) and goes on under MARA (CONT'D): one speech.
    assert cabin.speeches == {"mara": 3, "lorelei": 2} and cabin.characters == ["MARA", "LORELEI"]
    (speech,) = [t for k, t in cabin.elements if k == "dialogue" and "mother" in t]
    assert speech.endswith("long after we were both gone.") and "(MORE)" not in speech


def test_screenplain_renders_a_numbered_fountain_that_reads_back(tmp_path: Path) -> None:
    out = tmp_path / "numbered.pdf"
    screenplain = Path(sys.executable).with_name("screenplain")
    subprocess.run(
        [str(screenplain), str(SCRIPTS / "night_ferry_numbered.fountain"), str(out)],
        check=True,
        timeout=120,
    )
    assert shape(read_script(str(out), {})) == shape(
        read_script(str(SCRIPTS / "night_ferry_numbered.fountain"), {})
    )


def test_cli_imports_a_pdf_like_its_fountain(cli) -> None:
    cli("init", "--production", "Night Ferry")
    done = cli("import", "script", str(SCRIPTS / "night_ferry_numbered.pdf"), "--json")
    assert done.exit_code == 0, done.output
    scenes = json.loads(cli("list", "scenes", "--json").stdout)
    got = sorted((s["number"], s["eighths"], s["int_ext"], s["time_of_day"]) for s in scenes)
    assert got == [
        ("1", 4, "EXT", "NIGHT"),
        ("2", 3, "INT", "NIGHT"),
        ("2A", 3, "EXT", "NIGHT"),
        ("3", 4, "INT", "CONTINUOUS"),
        ("4", 3, "EXT", "DAWN"),
        ("5", 2, "INT", "DAY"),
    ]
    # The Fountain of the same draft finds every scene and role again: nothing new.
    again = cli("import", "script", str(SCRIPTS / "night_ferry_numbered.fountain"), "--json")
    counts = json.loads(again.stdout)
    assert (counts["created"], counts["updated"]) == (0, 0), again.output


@pytest.mark.parametrize(
    ("name", "error"),
    [
        ("truncated.pdf", "not a readable PDF"),
        ("scanned.pdf", "the PDF has no text (a scanned script needs OCR first)"),
    ],
)
def test_a_malformed_pdf_is_one_error_and_writes_nothing(name: str, error: str, cli) -> None:
    cli("init", "--production", "Night Ferry")
    failed = cli("import", "script", str(SCRIPTS / name))
    assert failed.exit_code == 1 and error in failed.stderr, failed.stderr
    assert len(failed.stderr.strip().splitlines()) == 1
    assert json.loads(cli("list", "scenes", "--json").stdout) == []
    with pytest.raises(CastroomError, match=error.split(" (")[0]):
        read_script(str(SCRIPTS / name), {})
