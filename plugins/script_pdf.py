"""A screenplay PDF read by its layout (pdfplumber gives each word and where it sits).

A screenplay page is a fixed grid of 12-point Courier: action and scene headings at the
left margin, dialogue indented about an inch, parentheticals half an inch more, cues
about two inches; transitions end at the right margin. Scene numbers stand in the
margins beside a heading, page numbers at the top right. A speech that runs over a page
ends with ``(MORE)`` and carries on under the same cue with ``(CONT'D)``: one speech.
Every writer (Final Draft, Fade In, screenplain, WriterSolo) uses the same grid give or
take a tenth of an inch, so the indents are read relative to the page's own action margin.

The text read back is laid out again on the standard page for each scene's length, so a
PDF, the Fountain it was written from and its FDX give the same eighths.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from castroom.core.errors import CastroomError
from castroom.plugins.script_formats import ParsedScene, ParsedScript, is_heading

#: One inch, in PDF points.
INCH = 72.0
_SCENE_NUMBER = re.compile(r"^[A-Z]{0,2}\d{1,4}[A-Z]{0,3}\.?$")
_PAGE_NUMBER = re.compile(r"^\d{1,4}\.?$")
_SKIP = frozenset({"(MORE)", "(CONTINUED)", "CONTINUED:", "CONTINUED"})
_CONTD = re.compile(r"\(\s*CONT['\u2019]?D\s*\)|\(\s*CONTINUED\s*\)", re.I)


@dataclass
class Line:
    """One printed line: its words' text, where it starts and ends, and how big."""

    page: int
    top: float
    x0: float
    x1: float
    text: str
    size: float
    number: str | None = None  # a scene number printed in the margin beside it
    words: list[dict[str, Any]] = field(default_factory=list)  # pdfplumber's, in order


def _lines(page: Any, index: int) -> list[Line]:
    """The page's words grouped into lines (same baseline), left to right."""
    words = page.extract_words(keep_blank_chars=False, x_tolerance=1.5, extra_attrs=["size"])
    rows: dict[int, list[dict[str, Any]]] = {}
    for word in words:
        rows.setdefault(round(word["top"] / 2), []).append(word)
    out = []
    for key in sorted(rows):
        row = sorted(rows[key], key=lambda w: w["x0"])
        out.append(
            Line(
                page=index,
                top=min(w["top"] for w in row),
                x0=row[0]["x0"],
                x1=row[-1]["x1"],
                text=" ".join(w["text"] for w in row),
                size=max(w["size"] for w in row),
                words=row,
            )
        )
    return out


def _margin(lines: list[Line]) -> float:
    """The action margin: the leftmost edge that many lines start at (scene numbers in
    the margin left out; dialogue, however common, starts further right)."""
    counts: dict[int, int] = {}
    for line in lines:
        if not _SCENE_NUMBER.match(line.text.split(" ", 1)[0]):
            counts[round(line.x0)] = counts.get(round(line.x0), 0) + 1
    if not counts:
        raise CastroomError("the PDF has no text (a scanned script needs OCR first)")
    total = sum(counts.values())
    return float(min(x for x, n in counts.items() if n * 10 >= total))


def _take_numbers(line: Line, margin: float) -> Line:
    """Scene numbers printed left of the margin (and again at the right) come off."""
    words = line.words
    if len(words) < 2 or words[0]["x0"] > margin - 0.25 * INCH:
        return line
    if not _SCENE_NUMBER.match(words[0]["text"]):
        return line
    number = words[0]["text"].rstrip(".")
    rest = words[1:]
    if len(rest) > 1 and rest[-1]["text"].rstrip(".") == number:
        rest = rest[:-1]
    return Line(
        page=line.page,
        top=line.top,
        x0=rest[0]["x0"],
        x1=rest[-1]["x1"],
        text=" ".join(w["text"] for w in rest),
        size=line.size,
        number=number,
    )


def _kind(line: Line, margin: float) -> str:
    """What a line is, from where it starts (in inches right of the action margin)."""
    offset = (line.x0 - margin) / INCH
    text = line.text
    if offset < 0.4:
        return "heading" if is_heading(text) else "action"
    if text.isupper() and text.rstrip().endswith(("TO:", "OUT.", "IN:")) and offset >= 2:
        return "transition"  # right-aligned: CUT TO:, FADE OUT.
    if text.startswith("(") and offset >= 0.6:
        return "parenthetical"
    if offset >= 1.6 and text.split("(")[0].isupper():
        return "character"
    if offset >= 0.6:
        return "dialogue"
    return "action"


def _body(pages: list[list[Line]]) -> tuple[str, list[Line]]:
    """The title (the first page's biggest text, if it has no scene heading) and every
    line of the script itself, page numbers and continuation marks left out."""
    title = ""
    if pages and pages[0] and not any(is_heading(line.text) for line in pages[0]):
        biggest = max(line.size for line in pages[0])
        title = " ".join(line.text for line in pages[0] if line.size == biggest)
        pages = pages[1:]
    body: list[Line] = []
    for lines in pages:
        for i, line in enumerate(lines):
            if i == 0 and _PAGE_NUMBER.match(line.text) and line.top < INCH:
                continue  # the page number
            if line.text.strip() in _SKIP:
                continue
            body.append(line)
    return title, body


def parse_pdf(data: bytes) -> ParsedScript:
    """A screenplay PDF into scenes (see the module docstring)."""
    import io

    import pdfplumber
    from pdfminer.pdfparser import PDFSyntaxError
    from pdfplumber.utils.exceptions import PdfminerException

    try:
        with pdfplumber.open(io.BytesIO(data)) as pdf:
            pages = [_lines(page, i) for i, page in enumerate(pdf.pages)]
    except (PDFSyntaxError, PdfminerException, ValueError, KeyError, TypeError) as exc:
        raise CastroomError(f"not a readable PDF: {exc or type(exc).__name__}") from None
    title, body = _body(pages)
    margin = _margin(body)
    script = ParsedScript(title=" ".join(title.split()), format="pdf")
    _read(script, [_take_numbers(line, margin) for line in body], margin)
    if not script.scenes and body:
        raise CastroomError("no scene headings found in the PDF (INT./EXT. lines)")
    script.resolve_cues()
    return script


def _read(script: ParsedScript, lines: list[Line], margin: float) -> None:
    """Lines into scenes and layout elements: a paragraph is lines of one kind with no
    blank line between them; a cue after (MORE) on a new page goes on the same speech."""
    current: ParsedScene | None = None
    previous: Line | None = None
    last_kind = ""
    last_cue = ""
    for line in lines:
        kind = _kind(line, margin)
        gap = previous is not None and (
            line.page != previous.page or line.top - previous.top > 1.6 * line.size
        )
        new_page = previous is not None and line.page != previous.page
        previous = line
        if kind == "heading":
            current = ParsedScene(heading=line.text.strip(), number=line.number)
            current.mark(current.heading)
            current.elements.append(("heading", current.heading))
            script.scenes.append(current)
            last_kind = "heading"
            continue
        if current is None:
            continue
        if kind == "character":
            cue = _CONTD.sub("", line.text).strip()
            if new_page and _CONTD.search(line.text) and cue == last_cue:
                last_kind = "dialogue"  # the speech goes on after (MORE)
                continue
            current.add_character(line.text)
            current.elements.append(("character", cue))
            last_cue, last_kind = cue, "character"
            continue
        joins = kind == last_kind and kind in ("action", "dialogue") and (not gap or new_page)
        if joins and current.elements and current.elements[-1][0] == kind:
            text = current.elements[-1][1]
            current.elements[-1] = (kind, f"{text} {line.text.strip()}")
        else:
            current.elements.append((kind, line.text.strip()))
        last_kind = kind
