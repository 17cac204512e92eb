"""Spreadsheets as offices have them: .xlsx, and CSV in Excel's encodings and separators
(tests/data/sheets, see tests/data/SOURCES.md). Each imports the same talents through the
same column mapping; each malformed file is one clear error and writes nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from castroom.core.document import CastDocument
from castroom.core.errors import CastroomError
from castroom.core.importing import apply_import
from castroom.core.model import Talent
from castroom.core.view import ProductionView
from castroom.plugins import tables
from castroom.plugins.csv_io import read_csv

SHEETS = Path(__file__).parent / "data" / "sheets"
OPTIONS = {"kind": "talent", "map": "Office ID=external_id", "source": "office"}
EXPECTED = [
    ("Aoife Ní Bhriain", "Crème Talent", "Equity", 25, 35, 168, ["Irish", "English"], "A-101"),
    ("José Álvarez", "L\u2019Agence", "", 40, 50, 181, ["Spanish", "English"], "A-102"),
    ("Zoë Müller", "", "SAG-AFTRA", 18, 24, None, ["German"], "A-103"),
]


def talents(doc: CastDocument) -> list[tuple]:
    return [
        (
            t.name,
            t.agent,
            t.union,
            t.playing_age_min,
            t.playing_age_max,
            t.height_cm,
            t.languages,
            t.external_ids["office"],
        )
        for t in doc.all(Talent)
    ]


@pytest.mark.parametrize(
    ("name", "note"),
    [
        ("office_talent.csv", None),
        ("office_talent_cp1252.csv", "read office_talent_cp1252.csv as Windows-1252"),
        ("office_talent_utf16.txt", "read office_talent_utf16.txt as utf-16"),
        ("office_talent.xlsx", "read the sheet 'Talent' (--sheet NAME picks another)"),
    ],
)
def test_every_office_format_imports_the_same_talents(name: str, note: str | None) -> None:
    doc = CastDocument.create("Night Ferry")
    result = read_csv(str(SHEETS / name), ProductionView(doc), OPTIONS)
    assert not result.errors and not result.warnings
    assert [n for n in result.report if note and n.startswith(note)] == (
        [] if not note else [next(n for n in result.report if n.startswith(note))]
    )
    apply_import(doc, result)
    assert talents(doc) == EXPECTED
    # The same sheet again (any of the formats) updates nothing.
    again = apply_import(
        doc, read_csv(str(SHEETS / "office_talent.csv"), ProductionView(doc), OPTIONS)
    )
    assert (again.created, again.updated, again.unchanged) == (0, 0, 3)


def test_cli_imports_xlsx_with_its_own_importer_and_sheet_option(cli) -> None:
    cli("init", "--production", "Night Ferry")
    path = str(SHEETS / "office_talent.xlsx")
    done = cli("import", "xlsx", path, "--kind", "talent", "--map", "Office ID=external_id")
    assert done.exit_code == 0, done.output
    assert "3 created" in done.stdout and "read the sheet 'Talent'" in done.stdout
    failed = cli("import", "xlsx", path, "--kind", "talent", "--sheet", "Cast")
    assert failed.exit_code == 1
    assert "has no sheet 'Cast' (it has 'Talent', 'Notes')" in failed.stderr
    assert len(json.loads(cli("list", "talents", "--json").stdout)) == 3


MALFORMED = [
    ("unclosed_quote.csv", "line 3: a quote opened in this row is never closed (lines 3-5"),
    ("truncated.xlsx", "is not an Excel workbook (.xlsx)"),
]


@pytest.mark.parametrize(("name", "error"), MALFORMED)
def test_a_malformed_sheet_is_one_error_and_writes_nothing(name: str, error: str, cli) -> None:
    cli("init", "--production", "Night Ferry")
    cli("add", "talent", "name=Ada Stone")
    before = cli("list", "talents", "--json").stdout
    failed = cli("import", "csv", str(SHEETS / name), "--kind", "talent")
    assert failed.exit_code == 1 and error in failed.stderr, failed.stderr
    assert len(failed.stderr.strip().splitlines()) == 1
    assert cli("list", "talents", "--json").stdout == before


def test_encoding_and_separator_errors_name_what_was_found_and_the_option(tmp_path: Path) -> None:
    doc = CastDocument.create("X")
    view = ProductionView(doc)
    odd = tmp_path / "odd.csv"
    odd.write_bytes(b"name,agent\nAda\x81,North\n")  # 0x81: not UTF-8, not Windows-1252
    with pytest.raises(CastroomError, match=r"neither UTF-8 nor Windows-1252.*--encoding latin-1"):
        read_csv(str(odd), view, {"kind": "talent"})
    result = read_csv(str(odd), view, {"kind": "talent", "encoding": "latin-1"})
    assert [e.name for e in result.entities] == ["Ada\x81"]
    both = tmp_path / "both.csv"
    both.write_text("name,agent;union\nAda,North;Equity\n", encoding="utf-8")
    with pytest.raises(CastroomError, match=r"cannot tell whether .* ',' or ';'.*--delimiter"):
        read_csv(str(both), view, {"kind": "talent"})
    result = read_csv(str(both), view, {"kind": "talent", "delimiter": ","})
    assert result.entities[0].name == "Ada"  # type: ignore[attr-defined]
    with pytest.raises(CastroomError, match="no such encoding"):
        read_csv(str(both), view, {"kind": "talent", "encoding": "klingon"})


def test_a_binary_file_is_not_a_csv_and_writes_nothing(tmp_path: Path, cli) -> None:
    cli("init", "--production", "Night Ferry")
    before = cli("list", "talents", "--json").stdout
    binary = tmp_path / "bin.csv"
    binary.write_bytes(b"\x00\x01\x02binary")
    failed = cli("import", "csv", str(binary), "--kind", "talent")
    assert failed.exit_code == 1, failed.stdout
    assert failed.stderr.strip().splitlines() == [
        f"Error: {binary} is not a CSV file (it holds binary data): save it as CSV"
    ]
    assert cli("list", "talents", "--json").stdout == before


def test_an_old_xls_workbook_says_to_save_it_as_xlsx(tmp_path: Path) -> None:
    old = tmp_path / "talent.xls"
    old.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(504))  # an OLE2 header
    with pytest.raises(CastroomError, match=r"old Excel workbook \(.xls\): save it as .xlsx"):
        read_csv(str(old), ProductionView(CastDocument.create("X")), {"kind": "talent"})


def test_multi_line_notes_are_not_an_unclosed_quote(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text('name,notes\nAda,"Line one\nline two, still notes"\nBen,x\n', encoding="utf-8")
    table = tables.read_table(str(path), {})
    assert table.rows == [(2, ["Ada", "Line one\nline two, still notes"]), (4, ["Ben", "x"])]
