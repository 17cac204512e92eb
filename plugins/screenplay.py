"""Built-in plugin: a screenplay (Fountain or Final Draft FDX) into scenes and characters.

``castroom import script FILE`` turns a script into Scenes (number, heading, location,
story day and era where the script marks them, the characters who speak in each) and
Roles (one per character). Fountain is parsed with screenplain's Fountain parser (a
well-kept, MIT-licensed library); FDX is Final Draft's XML, read with the stdlib.

Story days: ``DAY 2`` / ``STORY DAY 2`` in a scene heading (``INT. KITCHEN - NIGHT (DAY
2)``), in a note inside the scene (``[[DAY 2]]``), or in a synopsis (``= Day 2``); in FDX,
the heading, or the scene's properties (title or summary). An era is marked the same
way with ``ERA: name``. A plain ``- DAY`` (time of day) is not a story day.

Re-importing updates instead of duplicating. Each scene and role records its id in the
script under ``external_ids["script:<title>"]`` (``--source NAME`` overrides): a scene's
script number, or for an unnumbered scene its heading and occurrence (so a scene inserted
in a new draft does not shift the others onto the wrong entities); a role's cue name.
Re-imports match on those first, then roles by name (case-insensitive) and scenes by
number: a scene the script numbers matches a scene with that number unless that scene
came from another script (``script:...`` id); a scene numbered only by its position never
matches by number alone (only a scene with no source id and the same heading). Fields the
script does not carry (looks, shoot day, notes) are kept.

Cues and existing roles: ``--cue NORA="Nora Quill"`` (repeatable; a role's name or id)
maps a cue to a role the team already made, and records the cue as that role's source id
so later imports keep matching. A cue matching no role by source id or name, but exactly
one role whose name starts with it (NORA -> "Nora Quill"), is taken to be that role, with
a warning. Looks stay with a character whose cue moves to another role.

Several scripts in one production (a series' episodes) each number from 1:
``--prefix 3.`` makes episode 3's scenes 3.1, 3.2, ... Without it, a new scene whose
number another scene already holds gets a letter (1A) and a warning names the clash.
"""

from __future__ import annotations

import itertools
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

from castroom.core import model
from castroom.core.errors import CastroomError
from castroom.core.hookspecs import hookimpl
from castroom.core.model import Role, Scene
from castroom.core.registry import Importer, ImportResult
from castroom.core.view import ProductionView

#: How a writer marks a story day (said when a scene has none).
HOW_TO_MARK = {
    "fountain": "mark one with a note [[DAY 2]] in the scene, (DAY 2) in its heading, or a "
    "synopsis line = Day 2",
    "fdx": "mark one with DAY 2 in the scene heading, a script note, or the scene's "
    "properties (Title or Summary)",
}
FOUNTAIN_SUFFIXES = frozenset({".fountain", ".spmd"})
FDX_SUFFIXES = frozenset({".fdx"})

_STORY_DAY = re.compile(r"\b(?:STORY[\s-]+)?DAY\s*#?\s*(\d{1,3})\b", re.IGNORECASE)
_ERA = re.compile(r"\bERA\s*[:=]\s*([^\]\n;]+)", re.IGNORECASE)
_HEADING_PREFIX = re.compile(r"^\s*(?:INT\.?/EXT\.?|EXT\.?/INT\.?|I/E|INT|EXT|EST)[ .]+", re.I)
_EXTENSION = re.compile(r"\s*\(.*$")


@dataclass
class ParsedScene:
    """One scene as the script has it, before it becomes an entity."""

    heading: str
    number: str | None = None
    story_day: int | None = None
    era: str | None = None
    pages: float | None = None  # FDX scene length ("1 3/8" pages); Fountain has none
    characters: list[str] = field(default_factory=list)  # in order of first appearance

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
        if name and name.casefold() not in (c.casefold() for c in self.characters):
            self.characters.append(name)


@dataclass
class ParsedScript:
    title: str = ""
    format: str = "fountain"  # or "fdx"
    scenes: list[ParsedScene] = field(default_factory=list)


def character_name(cue: str) -> str:
    """A dialogue cue without extensions: ``MARY (V.O.)`` / ``MARY (CONT'D) ^`` -> ``MARY``."""
    text = cue.strip().rstrip("^").strip()
    text = _EXTENSION.sub("", text).strip()
    return " ".join(text.split())


def pretty_name(name: str) -> str:
    """Script cues are upper case; a role gets the usual capitalisation (``O'Brien``)."""
    return name.title() if name.isupper() else name


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


def location_of(heading: str) -> str:
    """``INT. KITCHEN - NIGHT (DAY 2)`` -> ``KITCHEN``."""
    text = _HEADING_PREFIX.sub("", heading).strip()
    if " - " in text:
        text = text.rsplit(" - ", 1)[0] if text.count(" - ") == 1 else text.split(" - ")[0]
    return text.strip(" .-")


# -- Fountain ----------------------------------------------------------------------------------


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
    script = ParsedScript(title=" ".join(title_page.get("Title", [])).strip() if title_page else "")

    paragraphs: list[Any] = []
    seen = 0
    pending_notes: list[str] = []  # notes before the first scene heading
    current: ParsedScene | None = None
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
        for item in paragraphs[seen:]:
            if isinstance(item, Slug):
                current = ParsedScene(
                    heading=str(item.line).strip(),
                    number=str(item.scene_number).strip() if item.scene_number else None,
                )
                current.mark(current.heading)
                script.scenes.append(current)
                for note in pending_notes:
                    current.mark(note)
                pending_notes = []
            elif current is not None and isinstance(item, Dialog):
                current.add_character(str(item.character))
            elif current is not None and isinstance(item, DualDialog):
                current.add_character(str(item.left.character))
                current.add_character(str(item.right.character))
        # A dual dialogue replaces the previous paragraph in place: look at the last one.
        last = paragraphs[-1] if paragraphs else None
        if current is not None and isinstance(last, DualDialog):
            current.add_character(str(last.left.character))
            current.add_character(str(last.right.character))
        if current is not None and isinstance(last, Slug) and last.synopsis:
            current.mark(str(last.synopsis))
        seen = len(paragraphs)
        for note in notes:
            if current is None:
                pending_notes.append(note)
            else:
                current.mark(note)
    return script


# -- Final Draft -------------------------------------------------------------------------------


def _text(paragraph: ET.Element) -> str:
    return "".join("".join(t.itertext()) for t in paragraph.findall("Text")).strip()


def parse_fdx(data: bytes) -> ParsedScript:
    """Final Draft XML: ``Content/Paragraph[@Type]`` with ``Text`` runs (stdlib only)."""
    try:
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        raise CastroomError(f"not a Final Draft file: {exc}") from None
    if root.tag != "FinalDraft":
        raise CastroomError(f"not a Final Draft file (root element is <{root.tag}>)")
    content = root.find("Content")
    if content is None:
        raise CastroomError("Final Draft file has no <Content>")
    script = ParsedScript(format="fdx")
    title = root.find("./TitlePage/Content/Paragraph")
    if title is not None:
        script.title = _text(title)
    current: ParsedScene | None = None

    def visit(paragraph: ET.Element) -> None:
        nonlocal current
        kind = paragraph.get("Type", "")
        if kind == "Scene Heading":
            number = (paragraph.get("Number") or "").strip() or None
            current = ParsedScene(heading=_text(paragraph), number=number)
            current.mark(current.heading)
            props = paragraph.find("SceneProperties")
            if props is not None:
                current.pages = page_length(props.get("Length", ""))
                current.mark(props.get("Title", ""))
                summary = props.find("Summary")
                if summary is not None:
                    current.mark(" ".join(summary.itertext()))
            script.scenes.append(current)
        elif kind == "Character" and current is not None:
            current.add_character(_text(paragraph))
        for note in paragraph.iter("ScriptNote"):
            if current is not None:
                current.mark(" ".join(note.itertext()))
        for dual in paragraph.findall("DualDialogue"):
            for inner in dual.findall("Paragraph"):
                visit(inner)

    for paragraph in content.findall("Paragraph"):
        visit(paragraph)
    return script


# -- into entities -----------------------------------------------------------------------------


def read_script(path: str, options: dict[str, Any]) -> ParsedScript:
    """Parse a file as Fountain or FDX (by ``--format``, the suffix, or its first bytes)."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise CastroomError(f"cannot read {path}: {exc.strerror or exc}") from None
    fmt = str(options.get("format") or "").lower()
    if not fmt:
        suffix = Path(path).suffix.lower()
        sniff = data.lstrip()[:200]
        fmt = "fdx" if suffix in FDX_SUFFIXES or b"<FinalDraft" in sniff else "fountain"
    if fmt == "fdx":
        return parse_fdx(data)
    if fmt != "fountain":
        raise CastroomError(f"unknown script format {fmt!r} (fountain or fdx)")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise CastroomError(f"{path} is not UTF-8 text") from None
    return parse_fountain(text)


def _number_scenes(scenes: list[ParsedScene], warnings: list[str]) -> list[str]:
    """The script's scene numbers. An unnumbered scene takes the next number after the
    previous scene's (1, 5, 6 ...); a number already taken gets a letter (12A)."""
    taken: set[str] = set()
    numbers: list[str] = []
    last = 0
    for scene in scenes:
        number = (scene.number or str(last + 1))[:20]
        if number in taken:
            base = number[:19]
            letter = next((c for c in "ABCDEFGHJKLMNPQRSTUVWXYZ" if f"{base}{c}" not in taken), "")
            if not letter:
                raise CastroomError(f"scene number {number} is used too many times")
            warnings.append(f"scene number {number} appears twice; the second is {base}{letter}")
            number = f"{base}{letter}"
        taken.add(number)
        numbers.append(number)
        digits = re.match(r"\d+", number)
        last = int(digits.group()) if digits else last + 1
    return numbers


def source_name(script: ParsedScript, path: str, options: dict[str, Any]) -> str:
    """The key of this script's ids in ``external_ids``: ``--source NAME``, else
    ``script:<title>`` (a title outlives a draft's file name), else ``script:<stem>``."""
    explicit = str(options.get("source") or "").strip()
    if explicit:
        return explicit
    return f"script:{' '.join(script.title.split()) or Path(path).stem}"


def scene_keys(scenes: list[ParsedScene], numbers: list[str]) -> list[str]:
    """Each scene's id in the script: its number where the script numbers it; else its
    heading (lower-cased, spaces collapsed) and its occurrence among scenes with that
    heading. Unlike a position, this stays put when a draft inserts another scene."""
    seen: dict[str, int] = {}
    keys: list[str] = []
    for parsed, number in zip(scenes, numbers, strict=True):
        if parsed.number:
            keys.append(number)
            continue
        heading = " ".join(parsed.heading.casefold().split())
        seen[heading] = seen.get(heading, 0) + 1
        keys.append(f"{heading}#{seen[heading]}")
    return keys


def parse_cues(options: dict[str, Any]) -> dict[str, str]:
    """``--cue NORA="Nora Quill"`` options (repeatable) as {cue: role name or id}."""
    value = options.get("cue")
    items = value if isinstance(value, list) else [] if value is None else [value]
    cues: dict[str, str] = {}
    for item in items:
        cue, eq, ref = item.partition("=") if isinstance(item, str) else ("", "", "")
        cue, ref = character_name(cue), ref.strip()
        if len(ref) >= 2 and ref[0] == ref[-1] and ref[0] in "\"'":
            ref = ref[1:-1].strip()
        if not eq or not cue or not ref:
            raise CastroomError(f'--cue expects CUE="Role name" (or a role id), got {item!r}')
        cues[cue] = ref
    return cues


def _mapped_cues(cues: dict[str, str], roles: list[Role]) -> dict[str, Role]:
    """Each ``--cue`` resolved to an existing role (by id, else by name, ignoring case);
    a role that does not exist (or a name two roles share) is one clear error."""
    by_id = {r.id: r for r in roles}
    mapped: dict[str, Role] = {}
    for cue, ref in cues.items():
        role = by_id.get(ref)
        if role is None:
            named = [r for r in roles if r.name.casefold() == ref.casefold()]
            if len(named) > 1:
                raise CastroomError(
                    f"--cue {cue}: {len(named)} roles are named {ref!r}; use the id"
                )
            if not named:
                raise CastroomError(
                    f"--cue {cue}: no role with id or name {ref!r} (see castroom list roles)"
                )
            role = named[0]
        mapped[cue.casefold()] = role
    return mapped


def _role_by_first_words(cue: str, roles: list[Role], warnings: list[str]) -> Role | None:
    """The one role whose name starts with the cue's words (NORA -> "Nora Quill")."""
    words = pretty_name(cue).casefold().split()
    fits = [r for r in roles if r.name.casefold().split()[: len(words)] == words]
    if len(fits) == 1:
        warnings.append(
            f"cue {cue} is taken to be role {fits[0].name!r} (the only role whose name starts "
            f'with it); if not, map it with --cue {cue}="Role name"'
        )
        return fits[0]
    if fits:
        names = ", ".join(sorted(repr(r.name) for r in fits)[:5])
        warnings.append(
            f"cue {cue} could be any of {names}: made a new role {pretty_name(cue)!r}; to use "
            f'one of them, import again with --cue {cue}="Role name"'
        )
    return None


def _heading_key(heading: str) -> str:
    return " ".join(heading.casefold().split())


def _script_sources(scene: Scene, source: str) -> list[str]:
    """The other scripts this scene came from (their ``script:...`` source ids)."""
    return [k for k in scene.external_ids if k != source and k.startswith("script:")]


def _same_scene_by_number(parsed: ParsedScene, scene: Scene, source: str) -> bool:
    """May ``parsed`` take over ``scene``, which it found only by number?

    Only when the script itself numbers the scene and ``scene`` came from no other script
    (another episode's scene 1 is not this one's); a scene numbered by its position only
    is never matched by number, except to a scene without any source id and with the same
    heading (imported by castroom before source ids were kept)."""
    if _script_sources(scene, source):
        return False
    if parsed.number:
        return True
    return not scene.external_ids and _heading_key(scene.heading) == _heading_key(parsed.heading)


_LETTERS = "ABCDEFGHJKLMNPQRSTUVWXYZ"


def _final_numbers(
    wanted: list[str],
    matches: list[Scene | None],
    existing: list[Scene],
    claimed: set[str],
    warnings: list[str],
) -> list[str]:
    """The number each scene gets. Scenes this import does not touch keep theirs, so a
    wanted number one of them holds (another script's scene 1, a hand-made scene) is not
    given twice: a scene found again keeps the number it has, a new one gets a letter
    (``1A``), and one warning names every clash and suggests ``--prefix``."""
    held: dict[str, Scene] = {}
    for scene in existing:
        if scene.id not in claimed:
            held.setdefault(scene.number, scene)
    reserved = set(wanted)
    assigned: set[str] = set()
    final: list[str] = []
    clashes: list[str] = []
    for number, match in zip(wanted, matches, strict=True):
        holder = held.get(number)
        if holder is not None:
            free = held.keys() | assigned | reserved
            if match is not None and match.number not in free:
                given = match.number
            else:
                base = number[:19]
                options = [f"{base}{c}" for c in _LETTERS]
                options += [f"{number[:16]}-{n}" for n in range(2, 1000)]
                given = next(n for n in options if n not in free)
            where = _script_sources(holder, "")
            origin = f", from {where[0]}" if where else ""
            clashes.append(
                f"{number} -> {given} ({number} is {holder.heading or 'a scene'}{origin})"
            )
            number = given
        assigned.add(number)
        final.append(number)
    if clashes:
        warnings.append(
            f"{len(clashes)} scene {'numbers clash' if len(clashes) > 1 else 'number clashes'} "
            f"with scenes already here, renumbered: {'; '.join(clashes)}. To number each "
            "script's scenes apart (a series' episodes), import with --prefix, e.g. "
            "--prefix 3. numbers them 3.1, 3.2, ..."
        )
    return final


def script_entities(
    script: ParsedScript,
    view: ProductionView,
    source: str = "script",
    *,
    prefix: str = "",
    cues: dict[str, str] | None = None,
) -> ImportResult:
    """Roles and scenes for a parsed script. Existing ones are found by their id in
    ``source`` (``external_ids``) first, then by name (roles) or number (scenes)."""
    warnings: list[str] = []
    if not script.scenes:
        raise CastroomError("no scene headings found (INT./EXT. lines, or .FORCED headings)")
    entities: list[model.Entity] = []
    new_id = model.new_id  # monotonic: scenes (and roles) made together list in script order

    all_roles = view.all(Role)
    mapped = _mapped_cues(cues or {}, all_roles)
    roles_by_key = {
        r.external_ids[source].casefold(): r for r in all_roles if source in r.external_ids
    }
    roles_by_name = {r.name.casefold(): r for r in all_roles}
    chosen: dict[str, Role] = {}
    # Roles that held a cue now given to another role: their looks follow the character.
    moved: dict[str, str] = {}

    def free(role: Role, key: str) -> bool:
        """Not tied to another of this script's characters (nor taken in this import)."""
        held = role.external_ids.get(source)
        if held is not None and held.casefold() != key:
            return False
        return all(other.id != role.id for other in chosen.values())

    def role_for(cue: str) -> Role:
        key = cue.casefold()
        if key in chosen:
            return chosen[key]
        known = roles_by_key.get(key)
        role = mapped.get(key) or known
        if role is None:
            named = roles_by_name.get(pretty_name(cue).casefold())
            if named is not None and free(named, key):
                role = named
        if role is None:
            role = _role_by_first_words(cue, [r for r in all_roles if free(r, key)], warnings)
        if role is None:
            role = Role(id=new_id(), name=pretty_name(cue)[:200])
        if known is not None and known.id != role.id:
            moved[known.id] = role.id
        if role.external_ids.get(source) != cue:
            ids = {**role.external_ids, source: cue}
            role = msgspec.structs.replace(role, external_ids=ids)
            entities.append(role)
        chosen[key] = role
        return role

    numbers = _number_scenes(script.scenes, warnings)
    keys = scene_keys(script.scenes, numbers)
    wanted = [f"{prefix}{number}" for number in numbers]
    too_long = next((n for n in wanted if len(n) > 20), None)
    if too_long is not None:
        raise CastroomError(
            f"scene number {too_long!r} (--prefix {prefix!r}) is longer than 20 characters"
        )
    all_scenes = view.all(Scene)
    by_key = {s.external_ids[source]: s for s in all_scenes if source in s.external_ids}
    by_number: dict[str, list[Scene]] = {}
    for scene in all_scenes:
        by_number.setdefault(scene.number, []).append(scene)
    # Pass 1 claims every scene found by its source id, so the number fallback (pass 2)
    # can never hand a claimed scene to an inserted scene that took over its number.
    matches: list[Scene | None] = [by_key.get(key) for key in keys]
    claimed = {s.id for s in matches if s is not None}
    for i, (parsed, number) in enumerate(zip(script.scenes, wanted, strict=True)):
        if matches[i] is not None:
            continue
        for candidate in by_number.get(number, []):
            if candidate.id not in claimed and _same_scene_by_number(parsed, candidate, source):
                matches[i] = candidate
                claimed.add(candidate.id)
                break
    final = _final_numbers(wanted, matches, all_scenes, claimed, warnings)

    unmarked: list[str] = []  # scenes left with no story day (script or castroom)
    for number, key, parsed, existing in zip(final, keys, script.scenes, matches, strict=True):
        characters = [role_for(name).id for name in parsed.characters]
        fields: dict[str, Any] = {
            "number": number,
            "heading": parsed.heading[:2000],
            "characters": characters,
        }
        if parsed.story_day is not None:
            fields["story_day"] = parsed.story_day
        if parsed.era is not None:
            fields["era"] = parsed.era[:2000]
        if parsed.pages is not None:
            fields["pages"] = parsed.pages
        if existing is None:
            scene = Scene(
                id=new_id(),
                location=location_of(parsed.heading),
                external_ids={source: key},
                **fields,
            )
        else:
            looks = {k: v for k, v in existing.looks.items() if k in characters}
            for old_role, look in existing.looks.items():
                new_role = moved.get(old_role)
                if new_role in characters and new_role not in looks:
                    looks[new_role] = look  # the same character, now under its mapped role
            if len(looks) != len(existing.looks):
                warnings.append(f"scene {number}: looks kept only for characters still in it")
            if not existing.location:
                fields["location"] = location_of(parsed.heading)
            ids = {**existing.external_ids, source: key}
            scene = msgspec.structs.replace(existing, looks=looks, external_ids=ids, **fields)
        if scene.story_day is None:  # one set by hand in castroom is kept: no warning
            unmarked.append(number)
        entities.append(scene)
    taken = {role.id for role in chosen.values()}
    for key, role in roles_by_key.items():
        if key in chosen and role.id not in taken:
            # The cue now belongs to another role (--cue): this one stops matching it.
            ids = {k: v for k, v in role.external_ids.items() if k != source}
            entities.append(msgspec.structs.replace(role, external_ids=ids))
    unused = sorted(c for c in cues or {} if c.casefold() not in chosen)
    if unused:
        warnings.append(f"--cue names cues the script does not have: {', '.join(unused)}")
    gone = [s.number for s in by_key.values() if s.id not in claimed]
    if gone:
        warnings.append(
            f"{len(gone)} scenes imported from {source} before are not in it now (kept; "
            f"delete any that were cut): {', '.join(sorted(gone))}"
        )
    if unmarked:
        shown = ", ".join(unmarked[:12]) + (", ..." if len(unmarked) > 12 else "")
        warnings.append(
            f"{len(unmarked)} of {len(script.scenes)} scenes have no story day marked "
            f"({shown}); {HOW_TO_MARK[script.format]}"
        )
    return ImportResult(entities=entities, warnings=warnings)


def _prefix(options: dict[str, Any]) -> str:
    value = options.get("prefix")
    if value is None:
        return ""
    if not isinstance(value, str) or not value.strip():
        raise CastroomError("--prefix needs a value, e.g. --prefix 3. (scenes 3.1, 3.2, ...)")
    return value.strip()


def import_script(source: str, view: ProductionView, options: dict[str, Any]) -> ImportResult:
    script = read_script(source, options)
    name = source_name(script, source, options)
    return script_entities(script, view, name, prefix=_prefix(options), cues=parse_cues(options))


def _claims(path: Path) -> bool:
    return path.suffix.lower() in FOUNTAIN_SUFFIXES | FDX_SUFFIXES


@hookimpl(trylast=True)
def castroom_register_importers(register: Any) -> None:
    register(
        Importer(
            name="script",
            description=(
                "a screenplay (Fountain or Final Draft .fdx) into scenes and roles "
                '(--prefix 3. numbers scenes 3.1, 3.2; --cue NORA="Nora Quill" ... maps a '
                "cue to an existing role; --source NAME; --format fountain|fdx)"
            ),
            run=import_script,
            claims=_claims,
        )
    )
