"""Rows from the spreadsheets offices have: CSV in any of Excel's encodings and
separators, and .xlsx workbooks (openpyxl).

A CSV file's encoding is found without options: UTF-8 (with or without a byte-order
mark), UTF-16 (Excel's "Unicode Text", found by its byte-order mark or its NUL bytes), or
Windows-1252 (Excel's "CSV" on Windows). Its separator is found from its first lines:
``,``, ``;`` (Excel where the decimal mark is a comma), tab or ``|``. ``--encoding`` and
``--delimiter`` override; what cannot be told apart is one error naming what was found
and the option that settles it. A quote that is never closed is one error naming the
line it opened on, never rows merged into one cell.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from castroom.core.api import CastroomError

DELIMITERS = (",", ";", "\t", "|")
_NAMES = {",": "','", ";": "';'", "\t": "tab", "|": "'|'"}
XLSX_SUFFIXES = frozenset({".xlsx", ".xlsm"})
#: Lines read to find the separator.
SNIFF_LINES = 20


@dataclass
class Table:
    """A header and its rows, each with the line (or sheet row) it starts on."""

    header: list[str]
    rows: list[tuple[int, list[str]]]
    unit: str = "line"  # how errors name a row's place: "line 7", or "row 7" in a sheet
    notes: list[str] = field(default_factory=list)  # how the file was read, for people


def read_table(path: str, options: dict[str, Any]) -> Table:
    """The rows of a CSV file or an .xlsx workbook (by suffix, or a zip's first bytes)."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise CastroomError(f"cannot read {path}: {exc.strerror or exc}") from None
    if Path(path).suffix.lower() in XLSX_SUFFIXES or data[:4] == b"PK\x03\x04":
        return read_xlsx(path, data, options)
    if data[:8] == b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1":  # an OLE2 file: Excel 97-2003
        raise CastroomError(
            f"{path} is an old Excel workbook (.xls): save it as .xlsx (or CSV) and import that"
        )
    text, encoding = decode(path, data, options.get("encoding"))
    if "\x00" in text:  # no spreadsheet writes NUL into CSV text: this is some other file
        raise CastroomError(f"{path} is not a CSV file (it holds binary data): save it as CSV")
    delimiter = options.get("delimiter")
    if delimiter is None:
        delimiter = find_delimiter(path, text)
    elif not isinstance(delimiter, str) or len(delimiter) != 1:
        raise CastroomError("--delimiter takes one character, e.g. --delimiter ';'")
    table = read_csv_rows(path, text, delimiter)
    if encoding not in ("utf-8", "utf-8-sig"):
        table.notes.append(f"read {Path(path).name} as {encoding} (--encoding overrides)")
    return table


# -- CSV ----------------------------------------------------------------------------------------


def decode(path: str, data: bytes, encoding: Any = None) -> tuple[str, str]:
    """The file's text and the encoding it was read with."""
    if encoding:
        try:
            return data.decode(str(encoding)), str(encoding)
        except LookupError:
            raise CastroomError(f"--encoding {encoding}: no such encoding") from None
        except UnicodeDecodeError as exc:
            byte = data[exc.start : exc.start + 1]
            raise CastroomError(
                f"{path} is not {encoding} text (byte {exc.start}: {byte!r})"
            ) from None
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return _utf16(path, data, "utf-16"), "utf-16"
    head = data[:2000]
    if len(head) >= 4 and head.count(0) * 3 > len(head):  # UTF-16 without a mark
        order = "utf-16-le" if head[1::2].count(0) > head[0::2].count(0) else "utf-16-be"
        return _utf16(path, data, order), order
    try:
        return data.decode("utf-8-sig"), "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("cp1252"), "Windows-1252"
    except UnicodeDecodeError as exc:
        raise CastroomError(
            f"{path} is neither UTF-8 nor Windows-1252 text (byte {exc.start} is "
            f"{data[exc.start : exc.start + 1]!r}); give its encoding, e.g. --encoding latin-1"
        ) from None


def _utf16(path: str, data: bytes, encoding: str) -> str:
    try:
        return data.decode(encoding)
    except UnicodeDecodeError:
        raise CastroomError(
            f"{path} looks like UTF-16 text but does not decode as {encoding}; give its "
            "encoding with --encoding"
        ) from None


def _shape(text: str, delimiter: str) -> tuple[int, int]:
    """(cells in the header, rows among the first lines with as many cells)."""
    lines = text.splitlines()[:SNIFF_LINES]
    try:
        rows = [r for r in csv.reader(lines, delimiter=delimiter) if any(c.strip() for c in r)]
    except csv.Error:
        return 0, 0
    if not rows:
        return 0, 0
    width = len(rows[0])
    return width, sum(1 for r in rows[1:] if len(r) == width)


def find_delimiter(path: str, text: str) -> str:
    """The separator whose cells line up: most columns in a header that the next rows
    match. Two that fit equally well (and differently) is one error naming both."""
    scored = []
    for delimiter in DELIMITERS:
        width, agreeing = _shape(text, delimiter)
        if width > 1:
            scored.append((agreeing, width, delimiter))
    if not scored:
        return ","
    scored.sort(key=lambda s: (s[0], s[1]), reverse=True)
    best = scored[0]
    if len(scored) > 1 and scored[1][0] == best[0]:
        a, b = _NAMES[best[2]], _NAMES[scored[1][2]]
        raise CastroomError(
            f"cannot tell whether {path} separates cells with {a} or {b}; say which, "
            f"e.g. --delimiter {best[2]!r}"
        )
    return best[2]


def read_csv_rows(path: str, text: str, delimiter: str) -> Table:
    """Every row with the line it starts on. An unclosed quote (the file ends inside it,
    or it swallows whole rows) is one error naming the line it opened on."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    rows: list[tuple[int, list[str]]] = []
    width = 0
    while True:
        start = reader.line_num + 1
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            if "end of data" in str(exc) or "EOF" in str(exc):
                raise _unclosed(path, start, reader.line_num) from None
            raise CastroomError(f"{path}: line {start}: {exc}") from None
        if not rows:
            width = len(row)
        elif reader.line_num > start and _swallows_rows(row, delimiter, width):
            raise _unclosed(path, start, reader.line_num)
        rows.append((start, row))
    if not rows:
        raise CastroomError(f"{path} is empty")
    (_, header), *body = rows
    return Table(header=header, rows=body)


def _swallows_rows(row: list[str], delimiter: str, width: int) -> bool:
    """Does a cell that runs over several lines hold what look like whole rows (each
    inner line as many cells as the header: two such lines, or one in a wide sheet)?"""
    if width < 2:
        return False
    for cell in row:
        inner = [line for line in cell.split("\n")[1:] if line.strip()]
        if not inner:
            continue
        try:
            shaped = sum(1 for r in csv.reader(inner, delimiter=delimiter) if len(r) == width)
        except csv.Error:
            continue
        if shaped >= 2 or (width >= 3 and shaped == len(inner)):
            return True
    return False


def _unclosed(path: str, start: int, end: int) -> CastroomError:
    ran = f" (lines {start}-{end} ran into one cell)" if end > start else ""
    return CastroomError(
        f"{path}: line {start}: a quote opened in this row is never closed{ran}; close it "
        "or remove it. Nothing imported"
    )


# -- xlsx ---------------------------------------------------------------------------------------


def _text(value: Any) -> str:
    """A cell as the text a person sees (an integral number without ``.0``)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dt.datetime):
        if value.time() == dt.time(0, 0):
            return value.date().isoformat()
        return value.isoformat(sep=" ", timespec="minutes")
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    return str(value)


def read_xlsx(path: str, data: bytes, options: dict[str, Any]) -> Table:
    """The rows of one sheet (``--sheet NAME``, else the first) of an .xlsx workbook,
    values as shown (formulas' cached results), each with its row number."""
    import zipfile

    from openpyxl import load_workbook

    try:
        book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError) as exc:
        raise CastroomError(f"{path} is not an Excel workbook (.xlsx): {exc}") from None
    try:
        wanted = options.get("sheet")
        if wanted is not None:
            if str(wanted) not in book.sheetnames:
                names = ", ".join(repr(n) for n in book.sheetnames)
                raise CastroomError(f"{path} has no sheet {wanted!r} (it has {names})")
            sheet = book[str(wanted)]
        else:
            sheet = book.worksheets[0]
        rows = [
            (number, [_text(v) for v in values])
            for number, values in enumerate(sheet.iter_rows(values_only=True), 1)
        ]
    finally:
        book.close()
    while rows and not any(c.strip() for c in rows[0][1]):
        rows.pop(0)  # blank rows above the header
    if not rows:
        raise CastroomError(f"{path}: the sheet {sheet.title!r} is empty")
    (_, header), *body = rows
    while header and not header[-1].strip():
        header.pop()  # a sheet's used range often runs past the last named column
    table = Table(header=header, rows=body, unit="row")
    if wanted is None and len(book.sheetnames) > 1:
        table.notes.append(f"read the sheet {sheet.title!r} (--sheet NAME picks another)")
    return table
