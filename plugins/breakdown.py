"""A script breakdown: what a scene heading says, how long a scene runs, who is introduced.

Pure functions over text, shared by every script format (Fountain, FDX, PDF):

- a heading's INT/EXT, location and time of day (``INT. KITCHEN - NIGHT (DAY 2)``; an en
  or em dash separates the parts like a hyphen);
- a scene's length in eighths of a page, laid out as a standard screenplay page is (the
  layout screenplain's PDF writer uses: 55 lines of 12-point Courier, action 61
  characters wide, dialogue 35, parentheticals 26);
- a character's first appearance in action (``LORELEI (22)``, ``LORELEI, 22, a ...``,
  ``MARA (60s)``, ``a NURSE``): their age range and the sentence that introduces them;
- the role kind a character's scenes and lines suggest.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

#: A standard screenplay page (screenplain's PDF layout, the industry's Courier page).
LINES_PER_PAGE = 55
WIDTHS = {
    "action": 61,
    "heading": 61,
    "transition": 61,
    "character": 42,
    "dialogue": 35,
    "parenthetical": 26,
}
#: Blank lines before an element of each kind (and after a heading or transition).
SPACE_BEFORE = {"action": 1, "heading": 1, "transition": 1, "character": 1}
SPACE_AFTER = {"heading": 1, "transition": 1}

_DASHES = re.compile("\\s+[-\u2013\u2014]+\\s+")
_PREFIX = re.compile(
    r"^\s*(?P<ie>INT\.?\s*/\s*EXT\.?|EXT\.?\s*/\s*INT\.?|I\s*/\s*E\.?|INT\.?|EXT\.?|EST\.?)"
    r"(?:[ .]+|$)",
    re.I,
)
_PARENS = re.compile(r"\s*\([^)]*\)\s*$")
TIMES_OF_DAY = frozenset(
    {
        "DAY",
        "NIGHT",
        "MORNING",
        "AFTERNOON",
        "EVENING",
        "DAWN",
        "DUSK",
        "SUNSET",
        "SUNRISE",
        "NOON",
        "MIDNIGHT",
        "MAGIC HOUR",
        "CONTINUOUS",
        "LATER",
        "MOMENTS LATER",
        "SAME",
        "SAME TIME",
        "DAY/NIGHT",
    }
)


def normalise_dashes(heading: str) -> str:
    """En and em dashes between heading parts become `` - ``: writers use any dash."""
    return _DASHES.sub(" - ", heading.strip())


def int_ext(heading: str) -> str:
    """``INT``, ``EXT``, ``INT/EXT`` or ``""`` from a heading's prefix."""
    match = _PREFIX.match(heading)
    if not match:
        return ""
    word = re.sub(r"[\s.]", "", match.group("ie")).upper()
    if "/" in word:
        return "INT/EXT"
    return {"EST": "EXT"}.get(word, word)


def _parts(heading: str) -> list[str]:
    text = _PREFIX.sub("", normalise_dashes(heading), count=1)
    return [p.strip(" .") for p in text.split(" - ")]


def time_of_day(heading: str) -> str:
    """The heading's last part when it is a time of day (``NIGHT``), else ``""``."""
    parts = _parts(heading)
    if len(parts) < 2:
        return ""
    last = _PARENS.sub("", parts[-1]).strip(" .").upper()
    return last if last in TIMES_OF_DAY else ""


def location_of(heading: str) -> str:
    """``INT. KITCHEN - NIGHT (DAY 2)`` -> ``KITCHEN``; ``INT. CAR - MOVING - DAY`` -> ``CAR``."""
    parts = _parts(heading)
    if len(parts) == 2:
        return parts[0].strip(" .-")
    return parts[0].strip(" .-")


# -- length -----------------------------------------------------------------------------------


def wrapped_rows(line: str, width: int) -> int:
    """Rows a line takes wrapped at ``width`` characters, breaking only between words (as
    a screenplay page does); a word longer than a row runs over several."""
    rows, used = 1, -1
    for word in line.split():
        if used >= 0 and used + 1 + len(word) <= width:
            used += 1 + len(word)
            continue
        if used >= 0:
            rows += 1
        rows += (len(word) - 1) // width  # a word longer than a row runs on
        used = (len(word) - 1) % width + 1
    return rows


def layout_lines(elements: list[tuple[str, str]]) -> int:
    """Lines a scene takes on a standard page: each element wrapped to its width, with
    the blank lines the format puts around it."""
    total = 0
    for kind, text in elements:
        width = WIDTHS.get(kind, WIDTHS["action"])
        rows = sum(wrapped_rows(line, width) for line in text.split("\n"))
        total += SPACE_BEFORE.get(kind, 0) + rows + SPACE_AFTER.get(kind, 0)
    return total


def eighths_of_lines(lines: int | float) -> int:
    """A length in lines as whole eighths of a page, rounded up, at least one."""
    return max(1, math.ceil(round(lines * 8 / LINES_PER_PAGE, 6)))


def eighths_of_pages(pages: float) -> int:
    """``1.375`` pages -> 11 eighths (at least one)."""
    return max(1, round(pages * 8))


def eighths_words(eighths: int) -> str:
    """11 -> ``1 3/8`` (how a stripboard writes a length)."""
    whole, rest = divmod(eighths, 8)
    if not rest:
        return str(whole)
    return f"{whole} {rest}/8" if whole else f"{rest}/8"


# -- who is introduced --------------------------------------------------------------------------

#: Capitalised words in action that are not people: camera, sound, transitions.
NOT_PEOPLE = frozenset(
    """
    A AN THE AND OR OF TO IN ON AT BY WITH FOR FROM INTO
    INT EXT CUT FADE DISSOLVE SMASH MATCH BACK CLOSE ON ANGLE POV WIDE INSERT SUPER
    TITLE TITLES CREDITS CONTINUOUS LATER DAY NIGHT MORNING EVENING END OS OC VO V.O. O.S.
    O.C. CONT'D MORE SFX FX SOUND MUSIC BANG BOOM CRASH SLAM SLAMS RING RINGS THUD SNAP
    BEEP BUZZ KNOCK KNOCKS CRACK POP SCREAM SCREAMS HONK HONKS CLICK FLASH FLASHBACK TV
    OK NO YES STOP HELP HEY I
    """.split()
)
#: Words that make a capitalised phrase a crowd rather than one person.
CROWD = frozenset(
    """
    CROWD CROWDS PEOPLE GUESTS PASSENGERS DINERS PATRONS SOLDIERS STUDENTS KIDS CHILDREN
    WORKERS OFFICERS COPS NURSES DANCERS FANS SPECTATORS SHOPPERS TOURISTS EXTRAS
    PASSERSBY PEDESTRIANS VILLAGERS MOURNERS REPORTERS MEN WOMEN GIRLS BOYS TEENS
    GUARDS AGENTS SAILORS FISHERMEN DRINKERS REVELLERS PARTYGOERS COMMUTERS
    """.split()
)
#: Words for a person: ``a NURSE``, ``the OLD FISHERMAN`` introduce someone (while ``the
#: RADIO`` or ``a DOOR SLAMS`` do not).
PERSON_WORDS = CROWD | frozenset(
    """
    MAN WOMAN BOY GIRL KID CHILD BABY TEEN TEENAGER GUY LADY GENTLEMAN STRANGER
    NURSE DOCTOR SURGEON COP OFFICER DETECTIVE SERGEANT CAPTAIN GUARD SOLDIER SAILOR
    FISHERMAN DRIVER CABBIE PILOT WAITER WAITRESS BARTENDER BARMAN BARMAID CLERK CASHIER
    SHOPKEEPER TEACHER STUDENT PRIEST VICAR NUN JUDGE LAWYER REPORTER JOURNALIST
    PHOTOGRAPHER NEIGHBOUR NEIGHBOR MOTHER FATHER GRANDMOTHER GRANDFATHER WIDOW
    POSTMAN COURIER BUTLER MAID COOK CHEF FARMER MINER WORKER MECHANIC RECEPTIONIST
    SECRETARY ASSISTANT MANAGER BOSS AGENT THUG BOUNCER DOORMAN JANITOR PARAMEDIC
    HOSTESS HOST SINGER DANCER MUSICIAN BUSKER BEGGAR TOURIST PASSENGER VENDOR
    """.split()
)
_CAPS = r"[A-Z][A-Z'\u2019.\-]*[A-Z.]|[A-Z]"
_NAME = rf"(?:{_CAPS})(?:\s+(?:{_CAPS}))*"
_AGE = (
    r"(?:(?P<qual>early|mid|late)[\s-]*)?"
    r"(?P<age>\d{1,3})(?P<decade>['\u2019]?s)?"
    r"(?:\s*(?:-|\u2013|to)\s*(?P<to>\d{1,3})(?:['\u2019]?s)?)?"
)
_WITH_AGE = re.compile(rf"(?<![\w'])(?P<name>{_NAME})\s*(?:\(|,)\s*{_AGE}\s*(?:\)|(?=[,.;]))")
_PHRASE = re.compile(
    r"(?:(?<=\s)|^)(?i:an?|the|two|three|four|five|several|some|his|her|their|our|my)\s+"
    rf"(?P<name>{_NAME})(?![\w'\u2019])"
)
_CROWD_PHRASE = re.compile(rf"(?<![\w'])(?P<name>{_NAME})(?![\w'\u2019])")
_SENTENCE = re.compile(r"[^.!?]*(?:[.!?]+|$)")


@dataclass(frozen=True)
class Introduction:
    """How the action introduces a character the first time."""

    name: str  # as written (``MARY MARSH``)
    sentence: str
    age_min: int | None = None
    age_max: int | None = None


def age_range(qual: str | None, age: str, decade: str | None, to: str | None) -> tuple[int, int]:
    """``(22)`` -> 22..22, ``60s`` -> 60..69, ``late 30s`` -> 37..39, ``30-35`` -> 30..35."""
    low = int(age)
    if to:
        return low, max(low, int(to) + (9 if decade and int(to) % 10 == 0 else 0))
    if not decade:
        return low, low
    if qual:
        qual = qual.lower()
        return {"early": (low, low + 3), "mid": (low + 3, low + 6), "late": (low + 6, low + 9)}[
            qual
        ]
    return low, low + 9


def _sentence_around(text: str, start: int) -> str:
    for match in _SENTENCE.finditer(text):
        if match.start() <= start < match.end():
            return " ".join(match.group().split())
    return " ".join(text.split())


def _words(name: str) -> list[str]:
    return [w.strip(".'\u2019") for w in name.split()]


def _is_person(name: str) -> bool:
    words = _words(name)
    return bool(words) and not all(w in NOT_PEOPLE or len(w) < 2 for w in words)


def introductions(action: str) -> list[Introduction]:
    """Every character an action paragraph introduces in capitals, in order: with an age
    (``LORELEI (22)``, ``LORELEI, 22,``, ``MARA (60s)``), or as a person after an article
    (``a NURSE``, ``two COPS``), or as a crowd (``PASSENGERS``)."""
    found: list[Introduction] = []
    seen: set[str] = set()
    spans: list[tuple[int, int]] = []
    for match in _WITH_AGE.finditer(action):
        name = " ".join(match.group("name").split())
        groups = match.groupdict()
        low, high = age_range(groups["qual"], groups["age"], groups["decade"], groups["to"])
        if not _is_person(name) or high > 150:
            continue
        spans.append(match.span())
        if name not in seen:
            seen.add(name)
            found.append(Introduction(name, _sentence_around(action, match.start()), low, high))
    for match in _PHRASE.finditer(action):
        name = " ".join(match.group("name").split())
        words = _words(name)
        if not words or words[-1] not in PERSON_WORDS or name in seen:
            continue
        if any(a <= match.start("name") < b for a, b in spans):
            continue
        seen.add(name)
        found.append(Introduction(name, _sentence_around(action, match.start())))
    for match in _CROWD_PHRASE.finditer(action):  # PASSENGERS shuffle in, no article
        name = " ".join(match.group("name").split())
        if name not in seen and _words(name)[-1:] and _words(name)[-1] in CROWD:
            seen.add(name)
            found.append(Introduction(name, _sentence_around(action, match.start())))
    return found


def is_crowd(name: str) -> bool:
    return any(w in CROWD for w in _words(name))


def same_character(cue: str, name: str) -> bool:
    """Is the cue ``MARY`` the one the action introduced as ``MARY MARSH``?"""
    cue_words, name_words = cue.upper().split(), name.upper().split()
    if cue_words == name_words:
        return True
    n = len(cue_words)
    return n < len(name_words) and cue_words in (name_words[:n], name_words[-n:])


# -- role kind --------------------------------------------------------------------------------


def proposed_kind(scenes: int, speeches: int, total_scenes: int) -> str:
    """A speaking character's kind from how much of the script they carry: a lead is in
    at least a quarter of the scenes (and three); a supporting role in two or more
    scenes or with five speeches; anyone else who speaks is a day player."""
    if scenes >= 3 and scenes * 4 >= total_scenes:
        return "lead"
    if scenes >= 2 or speeches >= 5:
        return "supporting"
    return "day_player"


def proposed_silent_kind(name: str, scenes: int, has_age: bool) -> str:
    """A character introduced in capitals who never speaks: a crowd (``PASSENGERS``) is
    background; a named person seen in two scenes, or introduced with an age, is featured."""
    if is_crowd(name):
        return "background"
    return "featured" if scenes >= 2 or has_age else "background"
