"""A screenplay PDF read by its layout (PDFium, through pypdfium2, gives each run of text
and where it sits).

A screenplay page is a fixed grid of 12-point Courier: action and scene headings at the
left margin, dialogue indented about an inch, parentheticals half an inch more, cues
about two inches; transitions end at the right margin. Scene numbers stand in the
margins beside a heading, page numbers at the top right. A speech that runs over a page
ends with ``(MORE)`` and carries on under the same cue with ``(CONT'D)``: one speech.
Every writer (Final Draft, Fade In, screenplain, WriterSolo) uses the same grid give or
take a tenth of an inch, so the indents are read from the script's own action margin
(where its scene headings start).

The text read back is laid out again on the standard page for each scene's length, so a
PDF, the Fountain it was written from and its FDX give the same eighths.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from castroom.core.api import CastroomError
from castroom.plugins.breakdown import layout_lines
from castroom.plugins.script_formats import ParsedScene, ParsedScript, is_heading

#: One inch, and one Courier character (a tenth of an inch), in PDF points.
INCH = 72.0
PITCH = INCH / 10
#: A screenplay's line: six to the inch (12-point Courier).
LINE = INCH / 6
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
    words: list[dict[str, Any]] = field(default_factory=list)  # its runs of text, in order


def _segments(page: Any) -> list[dict[str, Any]]:
    """The page's runs of text (PDFium's text rectangles), top-down coordinates."""
    text = page.get_textpage()
    height = page.get_height()
    out = []
    for index in range(text.count_rects()):
        left, bottom, right, top = text.get_rect(index)
        words = " ".join(text.get_text_bounded(left, bottom, right, top).split())
        if words:
            out.append(
                {
                    "x0": left,
                    "x1": right,
                    "top": height - top,
                    "middle": height - (top + bottom) / 2,
                    "size": top - bottom,
                    "text": words,
                }
            )
    return out


def _lines(page: Any, index: int) -> list[Line]:
    """The page's runs of text grouped into lines (the same height on the page, within a
    third of a line), left to right."""
    rows: list[list[dict[str, Any]]] = []
    for segment in sorted(_segments(page), key=lambda s: s["middle"]):
        if rows and abs(segment["middle"] - rows[-1][0]["middle"]) < 4:
            rows[-1].append(segment)
        else:
            rows.append([segment])
    out = []
    for row in rows:
        row.sort(key=lambda s: s["x0"])
        out.append(
            Line(
                page=index,
                top=min(s["top"] for s in row),
                x0=row[0]["x0"],
                x1=row[-1]["x1"],
                text=" ".join(s["text"] for s in row),
                size=max(s["size"] for s in row),
                words=row,
            )
        )
    return out


def _margin(lines: list[Line]) -> float:
    """The action margin: where the scene headings start (a scene number printed in the
    margin before one set aside), else the leftmost edge many lines start at (dialogue,
    however common, starts further right)."""
    headings: dict[int, list[float]] = {}
    starts: dict[int, list[float]] = {}
    for line in lines:
        segments = line.words
        if len(segments) > 1 and _SCENE_NUMBER.match(segments[0]["text"]):
            segments = segments[1:]
        x0 = segments[0]["x0"] if segments else line.x0
        text = " ".join(s["text"] for s in segments) or line.text
        target = headings if is_heading(text) else starts
        target.setdefault(round(x0 / PITCH), []).append(x0)
    counts = headings or starts
    if not counts:
        raise CastroomError("the PDF has no text (a scanned script needs OCR first)")
    total = sum(len(xs) for xs in counts.values())
    column = min(x for x, xs in counts.items() if len(xs) * 10 >= total)
    return min(counts[column])


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
    import pypdfium2 as pdfium

    try:
        pdf = pdfium.PdfDocument(data)
    except pdfium.PdfiumError as exc:
        raise CastroomError(f"not a readable PDF: {exc}") from None
    try:
        pages = [_lines(pdf[i], i) for i in range(len(pdf))]
    finally:
        pdf.close()
    title, body = _body(pages)
    margin = _margin(body)
    script = ParsedScript(title=" ".join(title.split()), format="pdf")
    _read(script, [_take_numbers(line, margin) for line in body], margin)
    if not script.scenes and body:
        raise CastroomError("no scene headings found in the PDF (INT./EXT. lines)")
    script.resolve_cues()
    return script


def _starts_dual(line: Line, margin: float) -> bool:
    """Two cues side by side: dual dialogue (two characters speaking at once)."""
    if len(line.words) != 2:
        return False
    left, right = line.words
    cues = all(w["text"].split("(")[0].strip().isupper() for w in (left, right))
    return cues and left["x0"] >= margin + 0.6 * INCH and right["x0"] >= margin + 3.2 * INCH


def _follows(line: Line, previous: Line) -> bool:
    """Is ``line`` the next line of the same block (same page, no blank line between)?"""
    return line.page == previous.page and line.top - previous.top <= 1.5 * LINE


def _column(block: list[Line], margin: float, right: bool) -> list[tuple[str, str]]:
    """One side of a dual dialogue as layout elements: its cue, then its speech."""
    middle = margin + 3.05 * INCH  # half of a 6.1-inch line
    texts = [
        " ".join(w["text"] for w in line.words if (w["x0"] >= middle) == right) for line in block
    ]
    texts = [t for t in texts if t]
    out: list[tuple[str, str]] = [("character", _CONTD.sub("", texts[0]).strip())]
    for text in texts[1:]:
        kind = "parenthetical" if text.startswith("(") else "dialogue"
        if out[-1][0] == kind == "dialogue":
            out[-1] = (kind, f"{out[-1][1]} {text}")
        else:
            out.append((kind, text))
    return out


def _read(script: ParsedScript, lines: list[Line], margin: float) -> None:
    """Lines into scenes and layout elements: a paragraph is lines of one kind with no
    blank line between them; a cue after (MORE) on a new page goes on the same speech."""
    current: ParsedScene | None = None
    previous: Line | None = None
    last_kind = ""
    last_cue = ""
    index = 0
    while index < len(lines):
        line = lines[index]
        index += 1
        kind = _kind(line, margin)
        gap = previous is not None and (
            line.page != previous.page or line.top - previous.top > 1.5 * LINE
        )
        new_page = previous is not None and line.page != previous.page
        previous = line
        if current is not None and _starts_dual(line, margin):
            block = [line]
            while index < len(lines) and _follows(lines[index], block[-1]):
                block.append(lines[index])
                index += 1
            previous = block[-1]
            sides = [_column(block, margin, right) for right in (False, True)]
            for side in sides:
                current.add_character(side[0][1])
            # Side by side, the longer column is the length the speeches take.
            current.elements.extend(max(sides, key=layout_lines))
            last_kind = "dialogue"
            continue
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
