"""Screenplay files read into scenes: Fountain (screenplain's parser), Final Draft FDX
(the stdlib's XML) and PDF (pypdfium2, by layout; see script_pdf).

What every format gives the same way: each scene's heading, number, story day and era
where the script marks them, the cues spoken in order (joint cues such as ``WALT &
SKYLER``, ``EDWARD AND WILL`` and ``BOTH`` resolved to the characters they name), and its
layout elements (for its length in eighths and who the action introduces).

Story days: ``DAY 2`` / ``STORY DAY 2`` in a scene heading (``INT. KITCHEN - NIGHT (DAY
2)``), in a note inside the scene (``[[DAY 2]]``), or in a synopsis (``= Day 2``); in FDX,
the heading, or the scene's properties (title or summary). An era is marked the same
way with ``ERA: name``. A plain ``- DAY`` (time of day) is not a story day.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from castroom.core.api import CastroomError
from castroom.plugins import breakdown

if TYPE_CHECKING:
    import xml.etree.ElementTree as ET

#: How a writer marks a story day (said when a scene has none).
HOW_TO_MARK = {
    "fountain": "mark one with a note [[DAY 2]] in the scene, (DAY 2) in its heading, or a "
    "synopsis line = Day 2",
    "fdx": "mark one with DAY 2 in the scene heading, a script note, or the scene's "
    "properties (Title or Summary)",
    "pdf": "mark one with (DAY 2) in the scene heading, or set it here: castroom set scene "
    "NUMBER story_day=2",
}
FOUNTAIN_SUFFIXES = frozenset({".fountain", ".spmd"})
FDX_SUFFIXES = frozenset({".fdx"})
PDF_SUFFIXES = frozenset({".pdf"})

_STORY_DAY = re.compile(r"\b(?:STORY[\s-]+)?DAY\s*#?\s*(\d{1,3})\b", re.IGNORECASE)
_ERA = re.compile(r"\bERA\s*[:=]\s*([^\]\n;]+)", re.IGNORECASE)
_EXTENSION = re.compile(r"\s*\(.*$")
#: Separators of a joint cue (``WALT & SKYLER``, ``EDWARD AND WILL``, ``MOM/DAD``).
_JOINT = re.compile(r"\s*(?:&|\+|/|\bAND\b)\s*", re.IGNORECASE)
#: Cues that name no one but the two (or all) characters speaking in the scene.
BOTH_CUES = frozenset({"BOTH", "THE TWO", "TOGETHER"})
ALL_CUES = frozenset({"ALL", "EVERYONE", "EVERYBODY", "ALL OF THEM", "THE GROUP"})
_MARKUP = re.compile(r"(\*{1,3}|_)(?=\S)(.+?)(?<=\S)\1")
_WORD = re.compile(r"[^\W\d_]+(?:['\u2019][^\W\d_]+)*")
_ROMAN = re.compile(r"^(?=[IVX]{2,}$)X{0,3}(?:IX|IV|V?I{0,3})$")


@dataclass
class ParsedScene:
    """One scene as the script has it, before it becomes an entity."""

    heading: str
    number: str | None = None
    story_day: int | None = None
    era: str | None = None
    pages: float | None = None  # a length the script states (FDX "1 3/8" pages)
    #: Every cue spoken, in order (extensions removed; joint cues as written).
    cues: list[str] = field(default_factory=list)
    #: The characters in the scene, in order of first appearance (joint cues resolved).
    characters: list[str] = field(default_factory=list)
    #: The scene as laid out: (kind, text) with kind heading/action/character/dialogue/
    #: parenthetical/transition, for its length in eighths and who the action introduces.
    elements: list[tuple[str, str]] = field(default_factory=list)
    #: Lines the scene took on its pages (a PDF says so; else laid out from elements).
    measured_lines: float | None = None
    #: Speeches per character (casefolded name): a joint cue counts for each of them.
    speeches: dict[str, int] = field(default_factory=dict)

    def mark(self, text: str) -> None:
        """Take a story day or era from a note, synopsis or heading (first mark wins)."""
        if self.story_day is None:
            day = _STORY_DAY.search(text)
            if day:
                self.story_day = int(day.group(1))
        if self.era is None:
            era = _ERA.search(text)
            if era:
                self.era = era.group(1).strip()

    def add_character(self, cue: str) -> None:
        name = character_name(cue)
        if name:
            self.cues.append(name)

    @property
    def eighths(self) -> int:
        """The scene's length in eighths of a page."""
        if self.pages is not None:
            return breakdown.eighths_of_pages(self.pages)
        if self.measured_lines is not None:
            return breakdown.eighths_of_lines(self.measured_lines)
        return breakdown.eighths_of_lines(breakdown.layout_lines(self.elements))


@dataclass
class ParsedScript:
    title: str = ""
    format: str = "fountain"  # or "fdx", "pdf"
    scenes: list[ParsedScene] = field(default_factory=list)

    def solo_cues(self) -> set[str]:
        """Cues someone speaks on their own somewhere in the script (casefolded)."""
        return {
            cue.casefold()
            for scene in self.scenes
            for cue in scene.cues
            if not joint_parts(cue) and cue.upper() not in BOTH_CUES | ALL_CUES
        }

    def resolve_cues(self, joint: dict[str, list[str]] | None = None) -> list[str]:
        """Fill each scene's characters from its cues: a joint cue (``WALT & SKYLER``) is
        each of its characters, ``BOTH`` the last two who spoke, ``ALL`` no one new;
        ``joint`` maps a cue to its characters by hand. Returns the joint-looking cues
        left whole because a part of them never speaks alone (a warning's worth)."""
        joint = {k.casefold(): v for k, v in (joint or {}).items()}
        solo = self.solo_cues()
        unsure: list[str] = []
        for scene in self.scenes:
            order: dict[str, str] = {}  # casefolded -> as written, in first appearance
            recent: list[str] = []  # most recent speaker last
            scene.speeches = {}
            for cue in scene.cues:
                for name in _speakers(cue, joint, solo, recent, unsure):
                    key = name.casefold()
                    scene.speeches[key] = scene.speeches.get(key, 0) + 1
                    order.setdefault(key, name)
                    recent = [c for c in recent if c.casefold() != key] + [name]
            scene.characters = list(order.values())
        return sorted(set(unsure))


_HEADING = re.compile(
    r"^\s*(?:INT\.?\s*/\s*EXT|EXT\.?\s*/\s*INT|I\s*/\s*E|INT|EXT|EST)[. ]", re.IGNORECASE
)


def is_heading(line: str) -> bool:
    """Does a line read as a scene heading (``INT.``, ``EXT.``, ``INT./EXT.``, ``I/E``)?"""
    return bool(_HEADING.match(line)) and line.upper() == line


def joint_parts(cue: str) -> list[str]:
    """``WALT & SKYLER`` -> [WALT, SKYLER]; a cue of one character -> []."""
    parts = [p.strip() for p in _JOINT.split(cue)]
    return parts if len(parts) > 1 and all(parts) else []


def _speakers(
    cue: str, joint: dict[str, list[str]], solo: set[str], spoken: list[str], unsure: list[str]
) -> list[str]:
    """The characters one cue stands for (see ParsedScript.resolve_cues)."""
    key = cue.casefold()
    if key in joint:
        return joint[key]
    upper = cue.upper()
    if upper in BOTH_CUES:
        return spoken[-2:]
    if upper in ALL_CUES:
        return []
    parts = joint_parts(cue)
    if parts and all(p.casefold() in solo for p in parts):
        return parts
    if parts and (" & " in cue or re.search(r"\bAND\b", cue, re.I)):
        unsure.append(cue)
    return [cue]


def character_name(cue: str) -> str:
    """A dialogue cue without extensions: ``MARY (V.O.)`` / ``MARY (CONT'D) ^`` -> ``MARY``."""
    text = cue.strip().rstrip("^").strip()
    text = _EXTENSION.sub("", text).strip()
    return " ".join(text.split())


def _capitalise(match: re.Match[str]) -> str:
    word = match.group()
    if _ROMAN.match(word):
        return word  # HENRY VIII
    head, sep, tail = word.replace("\u2019", "'").partition("'")
    if sep and len(head) == 1:  # O'BRIEN, D'ARCY
        return f"{head.upper()}'{tail.capitalize()}"
    return word.capitalize()  # WILL'S -> Will's (str.title() makes it Will'S)


def pretty_name(name: str) -> str:
    """Script cues are upper case; a role gets the usual capitalisation: ``WILL'S DATE``
    -> ``Will's Date``, ``O'BRIEN`` -> ``O'Brien``, ``HENRY VIII`` stays ``Henry VIII``."""
    return _WORD.sub(_capitalise, name) if name.isupper() else name


def strip_markup(text: str) -> str:
    """Fountain emphasis off a title: ``_**BRICK & STEEL**_`` -> ``BRICK & STEEL``."""
    previous = None
    while previous != text:
        previous, text = text, _MARKUP.sub(r"\2", text)
    return " ".join(text.split())


def page_length(text: str) -> float | None:
    """Final Draft's scene length: ``"3/8"``, ``"1 3/8"`` or ``"2"`` pages."""
    total = 0.0
    try:
        for part in text.split():
            if "/" in part:
                num, den = part.split("/", 1)
                total += int(num) / int(den)
            else:
                total += int(part)
    except (ValueError, ZeroDivisionError):
        return None
    return total if text.strip() else None


location_of = breakdown.location_of


# -- Fountain ----------------------------------------------------------------------------------


def _fountain_elements(item: Any) -> list[tuple[str, str]]:
    """One screenplain paragraph as layout elements."""
    from screenplain.types import Action, Dialog, DualDialog, Transition

    if isinstance(item, Action):
        return [("action", "\n".join(str(line) for line in item.lines))]
    if isinstance(item, Transition):
        return [("transition", str(item.line))]
    if isinstance(item, DualDialog):  # side by side: the longer column counts
        left, right = _fountain_elements(item.left), _fountain_elements(item.right)
        lines = [breakdown.layout_lines(side) for side in (left, right)]
        return left if lines[0] >= lines[1] else right
    if isinstance(item, Dialog):
        out = [("character", str(item.character))]
        for is_paren, line in item.blocks:
            out.append(("parenthetical" if is_paren else "dialogue", str(line)))
        return out
    return []


def parse_fountain(text: str) -> ParsedScript:
    """Fountain text into scenes, using screenplain's paragraph parser.

    We drive screenplain paragraph by paragraph (as its own ``parse_body`` does) so the
    notes it strips can be read first and tied to the scene they sit in."""
    from screenplain.parsers import fountain as fp
    from screenplain.types import Dialog, DualDialog, Slug

    content = fp.boneyard_re.sub("", text)
    lines = [fp._preprocess_line(line) for line in fp.linebreak_re.split(content)]
    head = list(itertools.takewhile(lambda line: line != "", lines))
    title_page = fp.parse_title_page(head) if head else None
    body = lines[len(head) :] if title_page else lines
    title = " ".join(title_page.get("Title", [])) if title_page else ""
    script = ParsedScript(title=strip_markup(title))

    paragraphs: list[Any] = []
    pending_notes: list[str] = []  # notes before the first scene heading
    current: ParsedScene | None = None
    slugs: dict[int, ParsedScene] = {}
    for blank, group in itertools.groupby(body, fp._is_blank):
        if blank:
            continue
        raw = "\n".join(group)
        notes = [note[2:-2] for note in fp.note_re.findall(raw)]
        # A line that held only a note is gone, not blank (a blank line would split the
        # paragraph and turn ``HEADING / [[note]]`` into a dialogue cue).
        kept = [line for line in fp.note_re.sub("", raw).split("\n") if not fp._is_blank(line)]
        if kept:
            fp.InputParagraph(kept).update_list(paragraphs)
        last = paragraphs[-1] if paragraphs else None
        if isinstance(last, Slug) and id(last) not in slugs:
            current = ParsedScene(
                heading=str(last.line).strip(),
                number=str(last.scene_number).strip() if last.scene_number else None,
            )
            current.mark(current.heading)
            slugs[id(last)] = current
            script.scenes.append(current)
            for note in pending_notes:
                current.mark(note)
            pending_notes = []
        if current is not None and isinstance(last, Slug) and last.synopsis:
            current.mark(str(last.synopsis))
        for note in notes:
            if current is None:
                pending_notes.append(note)
            else:
                current.mark(note)
    # The whole list once parsed (a dual dialogue replaces the paragraph before it).
    scene: ParsedScene | None = None
    for item in paragraphs:
        if isinstance(item, Slug):
            scene = slugs.get(id(item), scene)
            if scene is not None:
                scene.elements.append(("heading", scene.heading))
            continue
        if scene is None:
            continue
        if isinstance(item, Dialog):
            scene.add_character(str(item.character))
        elif isinstance(item, DualDialog):
            scene.add_character(str(item.left.character))
            scene.add_character(str(item.right.character))
        scene.elements.extend(_fountain_elements(item))
    script.resolve_cues()
    return script


# -- Final Draft -------------------------------------------------------------------------------


#: Final Draft paragraph types as layout elements.
FDX_KINDS = {
    "Action": "action",
    "General": "action",
    "Shot": "action",
    "Character": "character",
    "Dialogue": "dialogue",
    "Parenthetical": "parenthetical",
    "Transition": "transition",
}


def _text(paragraph: ET.Element) -> str:
    return "".join("".join(t.itertext()) for t in paragraph.findall("Text")).strip()


def _fdx_root(data: bytes) -> tuple[ET.Element, ET.Element]:
    """The document's root and its ``Content``, or one clear error."""
    import xml.etree.ElementTree as ET  # here: every command that loads plugins imports this

    try:
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        raise CastroomError(f"not a Final Draft file: {exc}") from None
    if root.tag != "FinalDraft":
        raise CastroomError(f"not a Final Draft file (root element is <{root.tag}>)")
    content = root.find("Content")
    if content is None:
        raise CastroomError("Final Draft file has no <Content>")
    return root, content


def _fdx_scene(paragraph: ET.Element) -> ParsedScene:
    """A scene from its heading paragraph, with what its properties say."""
    number = (paragraph.get("Number") or "").strip() or None
    scene = ParsedScene(heading=_text(paragraph), number=number)
    scene.mark(scene.heading)
    props = paragraph.find("SceneProperties")
    if props is not None:
        scene.pages = page_length(props.get("Length", ""))
        scene.mark(props.get("Title", ""))
        summary = props.find("Summary")
        if summary is not None:
            scene.mark(" ".join(summary.itertext()))
    scene.elements.append(("heading", scene.heading))
    return scene


class _FdxReader:
    """One pass over FDX paragraphs; a dual dialogue's inner paragraphs are visited in turn."""

    def __init__(self, script: ParsedScript) -> None:
        self.script = script
        self.current: ParsedScene | None = None

    def visit(self, paragraph: ET.Element) -> None:
        kind = paragraph.get("Type", "")
        if kind == "Scene Heading":
            self.current = _fdx_scene(paragraph)
            self.script.scenes.append(self.current)
        elif self.current is not None and kind in FDX_KINDS:
            text = _text(paragraph)
            if kind == "Character":
                self.current.add_character(text)
            self.current.elements.append((FDX_KINDS[kind], text))
        if self.current is not None:
            for note in paragraph.iter("ScriptNote"):
                self.current.mark(" ".join(note.itertext()))
        for dual in paragraph.findall("DualDialogue"):
            for inner in dual.findall("Paragraph"):
                self.visit(inner)


def parse_fdx(data: bytes) -> ParsedScript:
    """Final Draft XML: ``Content/Paragraph[@Type]`` with ``Text`` runs (stdlib only)."""
    root, content = _fdx_root(data)
    script = ParsedScript(format="fdx")
    title = root.find("./TitlePage/Content/Paragraph")
    if title is not None:
        script.title = _text(title)
    reader = _FdxReader(script)
    for paragraph in content.findall("Paragraph"):
        reader.visit(paragraph)
    script.resolve_cues()
    return script


# -- into entities -----------------------------------------------------------------------------


def read_script(path: str, options: dict[str, Any]) -> ParsedScript:
    """Parse a file as Fountain, FDX or PDF (by ``--format``, the suffix, or its first
    bytes)."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise CastroomError(f"cannot read {path}: {exc.strerror or exc}") from None
    fmt = str(options.get("format") or "").lower()
    if not fmt:
        suffix = Path(path).suffix.lower()
        sniff = data.lstrip()[:200]
        fmt = "fdx" if suffix in FDX_SUFFIXES or b"<FinalDraft" in sniff else "fountain"
        if suffix in PDF_SUFFIXES or data[:5] == b"%PDF-":
            fmt = "pdf"
    if fmt == "fdx":
        return parse_fdx(data)
    if fmt == "pdf":
        from castroom.plugins.script_pdf import parse_pdf

        return parse_pdf(data)
    if fmt != "fountain":
        raise CastroomError(f"unknown script format {fmt!r} (fountain, fdx or pdf)")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise CastroomError(f"{path} is not UTF-8 text") from None
    return parse_fountain(text)
