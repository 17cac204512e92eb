"""Built-in plugin: a screenplay (Fountain, Final Draft FDX or PDF) into scenes and roles.

``castroom import script FILE`` turns a script into Scenes (number, heading, location,
story day and era where the script marks them, the characters who speak in each) and
Roles (one per character). Fountain is parsed with screenplain's Fountain parser (a
well-kept, MIT-licensed library); FDX is Final Draft's XML, read with the stdlib.

Re-importing updates instead of duplicating. Each scene and role records its id in the
script under ``external_ids["script:<title>"]`` (``--source NAME`` overrides): a scene's
script number, or for an unnumbered scene its heading and occurrence (so a scene inserted
in a new draft does not shift the others onto the wrong entities); a role's cue name.
Re-imports match on those first, then roles by name (case-insensitive) and scenes by
number: a scene the script numbers matches a scene with that number unless that scene
came from another script (``script:...`` id); a scene numbered only by its position never
matches by number alone (only a scene with no source id and the same heading). Fields the
script does not carry (looks, shoot day, notes) are kept.

Locked numbers: once a script has been imported, a re-import never renumbers. A scene
found again keeps its number; an inserted one takes a letter after the scene before it
(12A, then 12B; A1 before the first); a scene cut from the draft is marked ``omitted``
and kept under its number with its looks and shoot day. The import reports the scenes
added, omitted and changed (heading or characters).

The breakdown (see breakdown.py): each scene's INT/EXT, time of day, location and length
in eighths; a character's first appearance in action fills an empty description and age
range; a new role's kind is proposed from its scenes and speeches; characters who never
speak but are introduced in capitals become featured or background roles in the scenes
that name them.

Joint cues: ``WALT & SKYLER`` and ``EDWARD AND WILL`` are each named character, when
each speaks alone somewhere in the script (else a warning); ``BOTH`` is the last two who
spoke; ``--cue 'EDWARD AND WILL=Edward,Will'`` maps one by hand (cues or roles).

Cues and existing roles: ``--cue NORA="Nora Quill"`` (repeatable; a role's name or id)
maps a cue to a role the team already made, and records the cue as that role's source id
so later imports keep matching. A cue matching no role by source id or name, but exactly
one role whose name starts with it (NORA -> "Nora Quill"), is taken to be that role, with
a warning. Looks stay with a character whose cue moves to another role.

Several scripts in one production (a series' episodes) each number from 1:
``--prefix 3.`` makes episode 3's scenes 3.1, 3.2, ... and keeps their ids under
``script:<title> (3.)`` (episodes share the series' title). Without it, a new scene whose
number another scene already holds gets a letter (1A) and a warning names the clash.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

from castroom.core.api import (
    CastroomError,
    EntityRef,
    Finding,
    Importer,
    ImportResult,
    ProductionView,
    Role,
    Scene,
    hookimpl,
    model,
)
from castroom.plugins import breakdown
from castroom.plugins.script_formats import (
    FDX_SUFFIXES,
    FOUNTAIN_SUFFIXES,
    HOW_TO_MARK,
    PDF_SUFFIXES,
    ParsedScene,
    ParsedScript,
    character_name,
    location_of,
    page_length,
    parse_fdx,
    parse_fountain,
    pretty_name,
    read_script,
    strip_markup,
)

__all__ = [
    "character_name",
    "location_of",
    "page_length",
    "parse_fdx",
    "parse_fountain",
    "read_script",
]


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


def prefixed_source(source: str, prefix: str) -> str:
    """A series' episodes share the series' title: with ``--prefix 3.`` the script's ids
    live under ``script:<title> (3.)``, so one episode never takes over another's scenes."""
    return f"{source} ({prefix})" if prefix else source


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


def _role_named(cue: str, ref: str, roles: list[Role]) -> Role | None:
    """The role with id or name ``ref`` (ignoring case); two with that name is an error."""
    for role in roles:
        if role.id == ref:
            return role
    named = [r for r in roles if r.name.casefold() == ref.casefold()]
    if len(named) > 1:
        raise CastroomError(f"--cue {cue}: {len(named)} roles are named {ref!r}; use the id")
    return named[0] if named else None


@dataclass
class CueMap:
    """What ``--cue`` options say: a cue played by one existing role, or a joint cue
    (``EDWARD AND WILL=Edward,Will``) spoken by several characters."""

    roles: dict[str, Role] = field(default_factory=dict)  # casefolded cue -> role
    joint: dict[str, list[str]] = field(default_factory=dict)  # cue -> the cues it stands for
    #: Stand-in cues for parts of a joint cue that name a role, not a cue of the script.
    by_hand: dict[str, Role] = field(default_factory=dict)
    requested: list[str] = field(default_factory=list)  # every cue --cue named


def _mapped_cues(cues: dict[str, str], roles: list[Role], script: ParsedScript) -> CueMap:
    """Each ``--cue`` resolved: to an existing role (by id, else by name, ignoring case),
    or, for ``CUE=A,B``, to the characters A and B (cues of the script, or roles). A role
    that does not exist (or a name two roles share) is one clear error."""
    spoken = {c.casefold(): c for scene in script.scenes for c in scene.cues}
    out = CueMap()
    for cue, ref in cues.items():
        role = _role_named(cue, ref, roles)
        if role is not None:
            out.roles[cue.casefold()] = role
            continue
        parts = [p.strip() for p in ref.split(",") if p.strip()]
        if len(parts) < 2:
            raise CastroomError(
                f"--cue {cue}: no role with id or name {ref!r} (see castroom list roles)"
            )
        names: list[str] = []
        for part in parts:
            said = spoken.get(character_name(part).casefold())
            if said is not None:
                names.append(said)
                continue
            role = _role_named(cue, part, roles)
            if role is None:
                raise CastroomError(
                    f"--cue {cue}: {part!r} is neither a character in the script nor a role"
                )
            stand_in = f"role:{role.id}"
            out.by_hand[stand_in.casefold()] = role
            names.append(stand_in)
        out.joint[cue] = names
    return out


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


@dataclass
class Numbering:
    """What deciding a script's scene numbers needs: the parsed scenes, the number each
    wants, the stored scene each updates (or None), every scene stored, those claimed."""

    scenes: list[ParsedScene]
    wanted: list[str]
    matches: list[Scene | None]
    existing: list[Scene]
    claimed: set[str]
    warnings: list[str]


def _final_numbers(job: Numbering) -> list[str]:
    """The number each scene gets. Scenes this import does not touch keep theirs, so a
    wanted number one of them holds (another script's scene 1, a hand-made scene) is not
    given twice: a scene found again keeps the number it has, a new one gets a letter
    (``1A``), and one warning names every clash and suggests ``--prefix``."""
    wanted, matches, warnings = job.wanted, job.matches, job.warnings
    held: dict[str, Scene] = {}
    for scene in job.existing:
        if scene.id not in job.claimed:
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


def _after(previous: str | None, following: str | None, used: set[str]) -> str:
    """A locked script's number for a scene inserted after ``previous``: 12 -> 12A, then
    12B; before the first scene, A1. Never one ``used`` already."""
    if previous is None:
        base = following or "1"
        options = [f"{c}{base}" for c in _LETTERS]
    else:
        match = re.fullmatch(r"(.*\d)([A-Z]*)", previous)
        base, tail = match.groups() if match else (previous, "")
        start = _LETTERS.index(tail[-1]) + 1 if tail and tail[-1] in _LETTERS else 0
        options = [f"{base}{tail[:-1]}{c}" for c in _LETTERS[start:]] if tail else []
        options += [f"{base}{c}" for c in _LETTERS] + [f"{previous}{c}" for c in _LETTERS]
        options += [f"{previous[:16]}-{n}" for n in range(2, 1000)]
    return next(n for n in options if len(n) <= 20 and n not in used)


def _locked_numbers(job: Numbering) -> list[str]:
    """A re-import of a numbered draft never renumbers: each scene found again keeps its
    number, a scene the script numbers takes that number if it is free, and an inserted
    one takes a letter after the scene before it (12A, 12B)."""
    used = {s.number for s in job.existing}
    matches = job.matches
    final: list[str] = []
    for i, (parsed, number, match) in enumerate(zip(job.scenes, job.wanted, matches, strict=True)):
        if match is not None:
            given = match.number
        elif parsed.number and number not in used:
            given = number
        elif parsed.number:
            given = _after(number, None, used)
            job.warnings.append(f"scene number {number} is already taken: the new scene is {given}")
        else:
            following = next((m.number for m in matches[i + 1 :] if m is not None), None)
            given = _after(final[-1] if final else None, following, used)
        used.add(given)
        final.append(given)
    return final


@dataclass
class ScriptImport:
    """One import of a parsed script into roles and scenes (see :func:`script_entities`)."""

    script: ParsedScript
    view: ProductionView
    source: str
    cues: CueMap
    #: The bare title a --prefix import kept its scene ids under before they carried the
    #: prefix: still this script's for scenes numbered with ``prefix``.
    legacy: str = ""
    prefix: str = ""
    warnings: list[str] = field(default_factory=list)
    report: list[str] = field(default_factory=list)
    entities: list[model.Entity] = field(default_factory=list)
    chosen: dict[str, Role] = field(default_factory=dict)  # casefolded cue -> role
    created: set[str] = field(default_factory=set)  # ids of roles this import makes
    #: Roles that held a cue now given to another role: their looks follow the character.
    moved: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.all_roles = self.view.all(Role)
        #: Keys this script's ids were once kept under (its title with Fountain markup).
        self.aliases = {
            key
            for entity in [*self.all_roles, *self.view.all(Scene)]
            for key in entity.external_ids
            if key != self.source and key.startswith("script:") and strip_markup(key) == self.source
        }
        self.roles_by_key = {
            key.casefold(): r for r in self.all_roles if (key := self.key_of(r)) is not None
        }
        self.roles_by_name = {r.name.casefold(): r for r in self.all_roles}

    def key_of(self, entity: Role | Scene) -> str | None:
        """The entity's id in this script (under its source name, or an old alias)."""
        ids = entity.external_ids
        found = ids.get(self.source)
        if found is None and self.is_legacy(entity):
            found = ids.get(self.legacy)
        return (
            found if found is not None else next((ids[k] for k in self.aliases if k in ids), None)
        )

    def is_legacy(self, entity: Role | Scene) -> bool:
        """A scene this --prefix import stored under the bare title (see ``legacy``)."""
        return (
            bool(self.legacy)
            and isinstance(entity, Scene)
            and self.legacy in entity.external_ids
            and entity.number.startswith(self.prefix)
        )

    def ids_with(self, entity: Role | Scene, key: str) -> dict[str, str]:
        old = self.aliases | ({self.legacy} if self.is_legacy(entity) else set())
        ids = {k: v for k, v in entity.external_ids.items() if k not in old}
        return {**ids, self.source: key}

    def free(self, role: Role, key: str) -> bool:
        """Not tied to another of this script's characters (nor taken in this import)."""
        held = self.key_of(role)
        if held is not None and held.casefold() != key:
            return False
        return all(other.id != role.id for other in self.chosen.values())

    def role_for(self, cue: str) -> Role:
        key = cue.casefold()
        if key in self.chosen:
            return self.chosen[key]
        if key in self.cues.by_hand:  # a role named by hand in a joint --cue
            self.chosen[key] = self.cues.by_hand[key]
            return self.chosen[key]
        known = self.roles_by_key.get(key)
        role = self.cues.roles.get(key) or known
        if role is None:
            named = self.roles_by_name.get(pretty_name(cue).casefold())
            if named is not None and self.free(named, key):
                role = named
        if role is None:
            free = [r for r in self.all_roles if self.free(r, key)]
            role = _role_by_first_words(cue, free, self.warnings)
        if role is None:
            role = Role(id=model.new_id(), name=pretty_name(cue)[:200])
            self.created.add(role.id)
        if known is not None and known.id != role.id:
            self.moved[known.id] = role.id
        if role.external_ids != self.ids_with(role, cue):
            role = msgspec.structs.replace(role, external_ids=self.ids_with(role, cue))
            self.entities.append(role)
        self.chosen[key] = role
        return role

    def match_scenes(self, wanted: list[str], keys: list[str]) -> list[Scene | None]:
        """The stored scene each parsed one is: by its id in the script first (pass 1
        claims all of those, so the number fallback can never hand a claimed scene to an
        inserted scene that took over its number), then by number (pass 2)."""
        all_scenes = self.view.all(Scene)
        self.by_key = {k: s for s in all_scenes if (k := self.key_of(s)) is not None}
        by_number: dict[str, list[Scene]] = {}
        for scene in all_scenes:
            by_number.setdefault(scene.number, []).append(scene)
        matches: list[Scene | None] = [self.by_key.get(key) for key in keys]
        self.claimed = {s.id for s in matches if s is not None}
        for i, (parsed, number) in enumerate(zip(self.script.scenes, wanted, strict=True)):
            if matches[i] is not None:
                continue
            for candidate in by_number.get(number, []):
                if candidate.id not in self.claimed and _same_scene_by_number(
                    parsed, candidate, self.source
                ):
                    matches[i] = candidate
                    self.claimed.add(candidate.id)
                    break
        self.all_scenes = all_scenes
        return matches

    def scene_fields(self, number: str, parsed: ParsedScene) -> dict[str, Any]:
        characters = [self.role_for(name).id for name in parsed.characters]
        eighths = parsed.eighths
        fields: dict[str, Any] = {
            "number": number,
            "heading": parsed.heading[:2000],
            "characters": list(dict.fromkeys(characters)),
            "int_ext": breakdown.int_ext(parsed.heading),
            "time_of_day": breakdown.time_of_day(parsed.heading)[:2000],
            "eighths": eighths,
            "pages": parsed.pages if parsed.pages is not None else eighths / 8,
            "omitted": False,
        }
        if parsed.story_day is not None:
            fields["story_day"] = parsed.story_day
        if parsed.era is not None:
            fields["era"] = parsed.era[:2000]
        return fields

    def scene_entity(
        self, number: str, key: str, parsed: ParsedScene, existing: Scene | None
    ) -> Scene:
        fields = self.scene_fields(number, parsed)
        if existing is None:
            return Scene(
                id=model.new_id(),
                location=location_of(parsed.heading),
                external_ids={self.source: key},
                **fields,
            )
        characters = fields["characters"]
        looks = {k: v for k, v in existing.looks.items() if k in characters}
        for old_role, look in existing.looks.items():
            new_role = self.moved.get(old_role)
            if new_role in characters and new_role not in looks:
                looks[new_role] = look  # the same character, now under its mapped role
        if len(looks) != len(existing.looks):
            self.warnings.append(f"scene {number}: looks kept only for characters still in it")
        if not existing.location:
            fields["location"] = location_of(parsed.heading)
        ids = self.ids_with(existing, key)
        return msgspec.structs.replace(existing, looks=looks, external_ids=ids, **fields)

    def numbers(self, prefix: str) -> tuple[list[str], list[str], list[Scene | None]]:
        """Each scene's final number, its id in the script, and the scene it updates."""
        numbers = _number_scenes(self.script.scenes, self.warnings)
        keys = scene_keys(self.script.scenes, numbers)
        wanted = [f"{prefix}{number}" for number in numbers]
        too_long = next((n for n in wanted if len(n) > 20), None)
        if too_long is not None:
            raise CastroomError(
                f"scene number {too_long!r} (--prefix {prefix!r}) is longer than 20 characters"
            )
        matches = self.match_scenes(wanted, keys)
        job = Numbering(
            self.script.scenes, wanted, matches, self.all_scenes, self.claimed, self.warnings
        )
        # Imported from this script before: its numbers are locked.
        final = _locked_numbers(job) if self.by_key else _final_numbers(job)
        return final, keys, matches

    def survey(self) -> None:
        """Who the action introduces: a speaking character's first appearance (for their
        description and age), and characters who never speak but are introduced in
        capitals (``a NURSE``, ``LORELEI (22)``), added to the scenes that name them."""
        speaking = {c.casefold(): c for scene in self.script.scenes for c in scene.characters}
        self.intros: dict[str, breakdown.Introduction] = {}
        silent: dict[str, breakdown.Introduction] = {}
        for scene in self.script.scenes:
            for kind, text in scene.elements:
                if kind != "action":
                    continue
                for intro in breakdown.introductions(text):
                    who = _who(intro.name, speaking)
                    if who is not None:
                        self.intros.setdefault(who, intro)
                    elif intro.name.casefold() not in self.cues.roles:
                        silent.setdefault(intro.name.casefold(), intro)
        self.silent = silent
        for name, intro in silent.items():
            self.intros[name] = intro
            pattern = re.compile(rf"(?<![\w'])({re.escape(intro.name)})(?![\w'])")
            for scene in self.script.scenes:
                if any(k == "action" and pattern.search(t) for k, t in scene.elements):
                    scene.characters.append(intro.name)

    def fill_roles(self) -> None:
        """A role's description and age range from the character's first appearance, when
        the role has none; a new role's kind from its scenes and lines."""
        total = len(self.script.scenes)
        for key, role in list(self.chosen.items()):
            scenes = [s for s in self.script.scenes if key in {c.casefold() for c in s.characters}]
            speeches = sum(s.speeches.get(key, 0) for s in scenes)
            intro = self.intros.get(key)
            fields: dict[str, Any] = {}
            if intro is not None and not role.description:
                fields["description"] = intro.sentence[:2000]
            if (
                intro is not None
                and intro.age_min is not None
                and (role.age_min, role.age_max)
                == (
                    None,
                    None,
                )
            ):
                fields["age_min"], fields["age_max"] = intro.age_min, intro.age_max
            if role.id in self.created:
                if key in self.silent:
                    has_age = intro is not None and intro.age_min is not None
                    fields["kind"] = breakdown.proposed_silent_kind(
                        key.upper(), len(scenes), has_age
                    )
                else:
                    fields["kind"] = breakdown.proposed_kind(len(scenes), speeches, total)
            updated = msgspec.structs.replace(role, **fields)
            if updated != role:
                self.entities.append(updated)
                for cue, same in self.chosen.items():
                    if same.id == role.id:
                        self.chosen[cue] = updated

    def run(self, prefix: str) -> ImportResult:
        self.survey()
        final, keys, matches = self.numbers(prefix)
        unmarked: list[str] = []  # scenes left with no story day (script or castroom)
        added: list[str] = []
        changed: list[str] = []
        scenes: list[Scene] = []
        for number, key, parsed, existing in zip(
            final, keys, self.script.scenes, matches, strict=True
        ):
            scene = self.scene_entity(number, key, parsed, existing)
            if existing is None or existing.omitted:
                added.append(number)
            elif (existing.heading, existing.characters) != (scene.heading, scene.characters):
                changed.append(number)
            if scene.story_day is None:  # one set by hand in castroom is kept: no warning
                unmarked.append(number)
            scenes.append(scene)
        self.entities.extend(scenes)
        self.release_moved_cues()
        self.fill_roles()
        omitted = self.omit_gone()
        if self.by_key:
            self.say_what_changed(added, omitted, changed)
        self.warn_unmarked(unmarked)
        return ImportResult(entities=self.entities, warnings=self.warnings, report=self.report)

    def release_moved_cues(self) -> None:
        """A cue now given to another role (--cue): the old role stops matching it."""
        taken = {role.id for role in self.chosen.values()}
        for key, role in self.roles_by_key.items():
            if key in self.chosen and role.id not in taken:
                ids = {k: v for k, v in role.external_ids.items()}
                ids = {k: v for k, v in ids.items() if k != self.source and k not in self.aliases}
                self.entities.append(msgspec.structs.replace(role, external_ids=ids))

    def omit_gone(self) -> list[str]:
        """Scenes imported from this script before and cut from it now: marked omitted,
        kept (with their looks and shoot day) under their number."""
        gone = []
        for scene in self.by_key.values():
            if scene.id in self.claimed or scene.omitted:
                continue
            self.entities.append(msgspec.structs.replace(scene, omitted=True))
            gone.append(scene.number)
        return gone

    def say_what_changed(self, added: list[str], omitted: list[str], changed: list[str]) -> None:
        for what, numbers in (("added", added), ("omitted", omitted), ("changed", changed)):
            if numbers:
                kept = " (kept with their looks and shoot days)" if what == "omitted" else ""
                self.report.append(
                    f"{what} {len(numbers)} scene{'s' if len(numbers) != 1 else ''}{kept}: "
                    + ", ".join(sorted(numbers, key=_number_order))
                )
        if not (added or omitted or changed):
            self.report.append("no scene added, omitted or changed")

    def warn_unmarked(self, unmarked: list[str]) -> None:
        unused = sorted(c for c in self.cues.requested if c.casefold() not in self.chosen)
        if unused:
            self.warnings.append(f"--cue names cues the script does not have: {', '.join(unused)}")
        if unmarked:
            shown = ", ".join(unmarked[:12]) + (", ..." if len(unmarked) > 12 else "")
            self.warnings.append(
                f"{len(unmarked)} of {len(self.script.scenes)} scenes have no story day marked "
                f"({shown}); {HOW_TO_MARK[self.script.format]}"
            )


def _who(name: str, speaking: dict[str, str]) -> str | None:
    """The speaking character (casefolded cue) an introduction names: the cue itself
    (``YOUNG MARY``), else the one cue that begins or ends the name (``MARY MARSH``)."""
    if name.casefold() in speaking:
        return name.casefold()
    fits = [k for k, cue in speaking.items() if breakdown.same_character(cue, name)]
    return fits[0] if len(fits) == 1 else None


def _number_order(number: str) -> tuple[int, str]:
    digits = re.search(r"\d+", number)
    return (int(digits.group()) if digits else 0, number)


def script_entities(
    script: ParsedScript,
    view: ProductionView,
    source: str = "script",
    *,
    prefix: str = "",
    cues: dict[str, str] | None = None,
    scope_by_prefix: bool = True,
) -> ImportResult:
    """Roles and scenes for a parsed script. Existing ones are found by their id in
    ``source`` (``external_ids``; with ``prefix``, the source scoped by it unless
    ``scope_by_prefix`` is off, as for an explicit ``--source``) first, then by name
    (roles) or number (scenes)."""
    if not script.scenes:
        raise CastroomError("no scene headings found (INT./EXT. lines, or .FORCED headings)")
    mapped = _mapped_cues(cues or {}, view.all(Role), script)
    mapped.requested = list(cues or {})
    scoped = prefixed_source(source, prefix) if scope_by_prefix else source
    legacy = source if scoped != source else ""
    job = ScriptImport(
        script=script, view=view, source=scoped, cues=mapped, legacy=legacy, prefix=prefix
    )
    for cue in script.resolve_cues(mapped.joint):
        if cue.casefold() not in mapped.roles:
            job.warnings.append(
                f"cue {cue} looks like several characters speaking at once, but not every "
                f"one of them speaks alone in the script; if it is, map it with --cue "
                f"'{cue}=Name,Name'"
            )
    return job.run(prefix)


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
    return script_entities(
        script,
        view,
        name,
        prefix=_prefix(options),
        cues=parse_cues(options),
        scope_by_prefix=not str(options.get("source") or "").strip(),
    )


def check_omitted(view: ProductionView) -> list[Finding]:
    """An omitted scene (cut from a locked script) still on a shoot day's board."""
    out = []
    for day in sorted(view.shoot_days.values(), key=lambda d: (d.date, d.id)):
        cut = [s for s in view.scenes_by_shoot_day.get(day.id, []) if s.omitted]
        if cut:
            numbers = ", ".join(s.number for s in cut)
            out.append(
                Finding(
                    code="script.omitted-scheduled",
                    severity="warning",
                    message=f"shoot day {day.date} still has omitted scene(s) {numbers} "
                    "(cut from the script)",
                    entities=(
                        EntityRef(kind="shoot_day", id=day.id, label=str(day.date)),
                        *(EntityRef(kind="scene", id=s.id, label=s.number) for s in cut),
                    ),
                    fix="take them off the day, or set omitted=false if they are back",
                )
            )
    return out


@hookimpl(trylast=True)
def castroom_check(view: ProductionView) -> list[Finding]:
    return check_omitted(view)


def _claims(path: Path) -> bool:
    return path.suffix.lower() in FOUNTAIN_SUFFIXES | FDX_SUFFIXES | PDF_SUFFIXES


@hookimpl(trylast=True)
def castroom_register_importers(register: Any) -> None:
    register(
        Importer(
            name="script",
            description=(
                "a screenplay (Fountain or Final Draft .fdx) into scenes and roles "
                '(--prefix 3. numbers scenes 3.1, 3.2; --cue NORA="Nora Quill" ... maps a '
                "cue to an existing role, --cue 'A AND B=A,B' a joint cue; --source NAME; "
                "--format fountain|fdx|pdf)"
            ),
            run=import_script,
            claims=_claims,
        )
    )
