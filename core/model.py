"""The casting model: one msgspec Struct per entity kind.

Field names are the names used in the CRDT document, on the command line and in
``--json`` output. Money is kept in integer minor units (cents) so sums are exact.
Structs are validated at the boundaries only (see :func:`validate`), never on every
attribute access.
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import itertools
import operator
import os
import re
import threading
import time
from collections.abc import Collection, Mapping
from typing import Annotated, Any, ClassVar, Literal, get_args, get_origin, get_type_hints

import msgspec
from msgspec import Meta, Struct

from .errors import UnsafeId, ValidationFailed

# -- constrained scalar types -------------------------------------------------------------

ID_PATTERN = r"^[0-9A-Za-z_.:-]+$"
#: Ids that also name a folder (a production's, a device's, in a shared folder): no dots,
#: so never ``..``, and no separators, so never a path.
FOLDER_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$"
CURRENCY_PATTERN = r"^[A-Z]{3}$"
#: A blob's SHA-256, as 64 lowercase hex digits (its name in the blob store).
SHA256_PATTERN = r"^[0-9a-f]{64}$"
TIME_PATTERN = r"^([01]\d|2[0-3]):[0-5]\d$"
#: A name is one line: a line break in one breaks every table, label and CSV row it is in.
NAME_PATTERN = r"^[^\r\n\u2028\u2029]*$"
#: Each pattern in words, for error messages: a raw regex means nothing to most people.
PATTERN_WORDS = {
    ID_PATTERN: "an id (letters, digits and _ . : -)",
    FOLDER_ID_PATTERN: "an id of letters, digits, _ and - (at most 128, starting with a"
    " letter or digit)",
    CURRENCY_PATTERN: "a 3-letter ISO currency code like EUR",
    TIME_PATTERN: "a time HH:MM (24-hour)",
    NAME_PATTERN: "one line of text (no line breaks)",
    SHA256_PATTERN: "a SHA-256 hash (64 lowercase hex digits)",
}

Id = Annotated[str, Meta(min_length=1, max_length=64, pattern=ID_PATTERN)]
FolderId = Annotated[str, Meta(pattern=FOLDER_ID_PATTERN)]
#: Stripped of surrounding whitespace by :func:`validate` before it is checked.
Name = Annotated[str, Meta(min_length=1, max_length=200, pattern=NAME_PATTERN)]
ShortText = Annotated[str, Meta(max_length=2_000)]
LongText = Annotated[str, Meta(max_length=200_000)]
#: Yjs numbers are float64: integers beyond 2**53 would not survive a round trip exactly.
MAX_SAFE_INT = 2**53 - 1
Age = Annotated[int, Meta(ge=0, le=150)]
Money = Annotated[int, Meta(ge=0, le=MAX_SAFE_INT, description="integer minor units (cents)")]
Count = Annotated[int, Meta(ge=0, le=MAX_SAFE_INT)]
Rating = Annotated[int, Meta(ge=1, le=5)]
#: A candidate's ratings are keyed by member name, or by a presentation viewer's name
#: followed by this (castroom.core.presenting): a viewer is no member.
VIEWER_SUFFIX = " (presentation)"
Rate = Annotated[float, Meta(ge=0, le=1, description="a fraction, 0.21 = 21%")]
Currency = Annotated[str, Meta(pattern=CURRENCY_PATTERN)]

ProductionKind = Literal[
    "film", "series", "animation", "live_broadcast", "commercial", "theatre", "game"
]
RoleKind = Literal[
    "lead",
    "supporting",
    "day_player",
    "background",
    "voice",
    "host",
    "commentator",
    "stunt",
    "featured",
]
RoleStatus = Literal["open", "casting", "cast", "on_hold", "cut"]
Stage = Literal[
    "submitted",
    "shortlisted",
    "audition",
    "callback",
    "chemistry_read",
    "offer",
    "booked",
    "declined",
    "released",
    "dropped",
]
AvailabilityKind = Literal["unavailable", "first_hold", "second_hold", "booked"]
DealUnit = Literal["day", "week", "flat"]
DealStatus = Literal["draft", "offered", "accepted", "signed", "cancelled"]
Job = Literal[
    "casting_director",
    "casting_associate",
    "assistant_director",
    "producer",
    "talent_coordinator",
    "script_analyst",
    "director",
]

IntExt = Literal["", "INT", "EXT", "INT/EXT"]
#: What an attachment is for (``castroom attach --as``).
MediaKind = Literal["headshot", "reel", "resume", "selftape", "other"]
MEDIA_KINDS: tuple[str, ...] = MediaKind.__args__  # type: ignore[attr-defined]
#: The file types castroom accepts, as sniffed from a file's bytes (never its name).
MimeType = Literal[
    "image/jpeg",
    "image/png",
    "image/webp",
    "image/gif",
    "application/pdf",
    "video/mp4",
    "video/quicktime",
    "video/webm",
]
MIME_TYPES: tuple[str, ...] = MimeType.__args__  # type: ignore[attr-defined]
Sha256 = Annotated[str, Meta(pattern=SHA256_PATTERN)]
Pixels = Annotated[int, Meta(ge=1, le=1_000_000)]
LeadMinutes = Annotated[int, Meta(ge=0, le=24 * 60)]

STAGES: tuple[str, ...] = Stage.__args__  # type: ignore[attr-defined]


_CROCKFORD = bytes.maketrans(
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", b"0123456789ABCDEFGHJKMNPQRSTVWXYZ"
)


class MonotonicIds:
    """ULIDs (48-bit milliseconds + 80 random bits, Crockford base32) that also sort in
    the order they are made: within one millisecond (or if the clock steps back) the
    next id is the previous one plus a random step of up to 2**72, so listings (sorted by
    id) keep entities imported together in the order made. The ULID spec's monotonic mode
    steps by one, which leaves ids made together differing only in their last characters:
    people could no longer tell them apart by a short id prefix."""

    def __init__(self) -> None:
        self._last = 0
        self._lock = threading.Lock()

    def __call__(self) -> str:
        fresh = (int(time.time() * 1000) << 80) | int.from_bytes(os.urandom(10), "big")
        with self._lock:
            # Same (or an earlier) millisecond as the last id: increment it instead. An
            # overflowing random part carries into the time part: still unique and ordered.
            step = 1 + int.from_bytes(os.urandom(9), "big")
            value = fresh if fresh >> 80 > self._last >> 80 else self._last + step
            self._last = value
        # 160 bits encode as 32 base32 digits; the first 6 are always zero for a 128-bit
        # value. (C-speed b32encode: bulk imports make tens of thousands of ids.)
        return base64.b32encode(value.to_bytes(20, "big"))[6:].translate(_CROCKFORD).decode()


#: One generator per process: ids are made all over (imports, the sample, the CLI), and
#: ordering holds only among ids of one generator, so this is the one piece of
#: module-level mutable state here (tiny and guarded by a lock for threads).
new_id = MonotonicIds()


def folder_id(value: object, what: str) -> str:
    """``value`` if it is safe to use as one folder name (see FOLDER_ID_PATTERN), else
    UnsafeId naming ``what``: checked before an id from a peer touches the file system."""
    if isinstance(value, str) and re.fullmatch(FOLDER_ID_PATTERN, value):
        return value
    shown = repr(value)[:80]
    raise UnsafeId(f"{what} {shown} is not {PATTERN_WORDS[FOLDER_ID_PATTERN]}")


def check_ordered(struct: Struct) -> None:
    """The rule each ``ordered`` pair states: the second field is not below the first
    (ages: a range; dates: an end not before its start). Declared on the class, so the
    web dashboard's JSON Schema carries the same pairs (``x-ordered``) and refuses the
    same edits with the same words."""
    for low_name, high_name in getattr(struct, "ordered", ()):
        low, high = getattr(struct, low_name), getattr(struct, high_name)
        if low is None or high is None or low <= high:
            continue
        if isinstance(low, dt.date):
            raise ValueError(f"{high_name}: must not be before {low_name}")
        raise ValueError(f"{high_name}: must be >= {low_name} ({high} < {low})")


def _check_time_zone(name: str) -> None:
    if not name:
        return
    import zoneinfo

    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"time_zone: {name!r} is not a time zone name like Europe/Dublin or America/New_York"
        ) from None


# -- nested values (stored whole inside one field) -----------------------------------------


class Era(Struct, kw_only=True, forbid_unknown_fields=True):
    """A period of a character's life played by one actor (a series spanning decades)."""

    name: Name
    age_min: Age | None = None
    age_max: Age | None = None
    starts: ShortText = ""

    ordered: ClassVar[tuple[tuple[str, str], ...]] = (("age_min", "age_max"),)

    def __post_init__(self) -> None:
        check_ordered(self)


class Look(Struct, kw_only=True, forbid_unknown_fields=True):
    """How a character looks in one scene."""

    hair: ShortText = ""
    wardrobe: ShortText = ""
    makeup: ShortText = ""
    age: Age | None = None
    note: ShortText = ""


class Pairing(Struct, kw_only=True, forbid_unknown_fields=True):
    """One pairing at a chemistry read: candidates of several roles, and how it rated."""

    candidate_ids: Annotated[list[Id], Meta(min_length=2)]
    rating: Rating | None = None
    notes: ShortText = ""


class MediaRef(Struct, kw_only=True, forbid_unknown_fields=True):
    """A file attached to a talent or a candidate: a headshot, a reel, a résumé, a
    self-tape. The bytes live in the workspace's blob store under ``hash``; this record
    travels in the document. ``thumbnail`` and ``poster`` name derived blobs (a small
    JPEG of an image or a résumé's first page; a video's poster frame), made once,
    without the original's metadata."""

    hash: Sha256
    kind: MediaKind
    #: The file's name when it was attached (no folders): what people call it.
    name: Annotated[str, Meta(min_length=1, max_length=255, pattern=NAME_PATTERN)]
    mime: MimeType
    bytes: Annotated[int, Meta(ge=0, le=MAX_SAFE_INT)]
    width: Pixels | None = None
    height: Pixels | None = None
    #: A video's length in seconds.
    duration: Annotated[float, Meta(ge=0, le=1_000_000)] | None = None
    #: A PDF's page count.
    pages: Annotated[int, Meta(ge=1, le=100_000)] | None = None
    thumbnail: Sha256 | None = None
    poster: Sha256 | None = None
    added_by: ShortText = ""
    added_at: dt.datetime

    def __post_init__(self) -> None:
        if (self.width is None) != (self.height is None):
            raise ValueError("height: width and height go together")
        if self.duration is not None and not self.mime.startswith("video/"):
            raise ValueError("duration: only a video has a duration")
        if self.pages is not None and self.mime != "application/pdf":
            raise ValueError("pages: only a PDF has pages")


def check_media(media: dict[str, MediaRef]) -> None:
    """Each attachment is keyed by its own hash (the key is what peers merge on)."""
    for key, ref in media.items():
        if key != ref.hash:
            raise ValueError(f"media: the attachment under {key[:12]}… has hash {ref.hash[:12]}…")


# -- entities --------------------------------------------------------------------------------


class Entity(Struct, kw_only=True):
    """Common fields. ``deleted`` is a soft delete: nothing is ever unrecoverable."""

    # Fields stored as CRDT arrays (ordered, merge item by item), CRDT text (merge
    # character by character) and CRDT maps (objects that merge key by key: two members
    # rating one candidate offline both keep their rating). Everything else is a
    # last-writer-wins map field.
    crdt_arrays: ClassVar[frozenset[str]] = frozenset()
    crdt_texts: ClassVar[frozenset[str]] = frozenset({"notes"})
    crdt_maps: ClassVar[frozenset[str]] = frozenset()
    entity_kind: ClassVar[str] = ""
    collection: ClassVar[str] = ""

    id: Id
    deleted: bool = False


class Production(Entity, kw_only=True):
    entity_kind: ClassVar[str] = "production"
    collection: ClassVar[str] = "production"

    title: Name
    kind: ProductionKind = "film"
    currency: Currency = "USD"
    budget_cap: Money | None = None
    fringe_rate: Rate = 0.0
    overtime_multiplier: Annotated[float, Meta(ge=1, le=5)] = 1.5
    hours_per_day: Annotated[int, Meta(ge=1, le=24)] = 10
    #: The scheduler's calendar: a scene's default length is its pages over this, and
    #: the first ``shooting_days_per_week`` days of each week from ``start_date`` shoot.
    pages_per_day: Annotated[float, Meta(gt=0, le=1_000)] = 5.0
    shooting_days_per_week: Annotated[int, Meta(ge=1, le=7)] = 5
    #: Drop/pickup: a gap of more than this many calendar days between two work days
    #: is unpaid, once per actor; None = 10 for a production in USD (SAG-AFTRA), else
    #: 14; 0 = never drop.
    drop_pickup_days: Annotated[int, Meta(ge=0, le=366)] | None = None
    start_date: dt.date | None = None
    end_date: dt.date | None = None
    # Where the production shoots, as an IANA name (Europe/Dublin): calendars carry it,
    # so call times mean the same hour on every member's machine. "" = floating times.
    time_zone: ShortText = ""
    # Makeup and wardrobe before an actor's first scene: a call sheet calls each actor
    # this long before it (a role's own lead_minutes overrides it).
    lead_minutes: LeadMinutes = 60
    notes: LongText = ""

    ordered: ClassVar[tuple[tuple[str, str], ...]] = (("start_date", "end_date"),)

    def __post_init__(self) -> None:
        check_ordered(self)
        _check_time_zone(self.time_zone)


class Role(Entity, kw_only=True):
    """A character, or an on-air slot such as a backup commentator."""

    entity_kind: ClassVar[str] = "role"
    collection: ClassVar[str] = "roles"
    crdt_maps: ClassVar[frozenset[str]] = frozenset({"external_ids"})
    crdt_arrays: ClassVar[frozenset[str]] = frozenset({"backups"})

    name: Name
    description: ShortText = ""
    kind: RoleKind = "supporting"
    age_min: Age | None = None
    age_max: Age | None = None
    specs: dict[str, str] = {}
    rate_cap: Money | None = None
    eras: list[Era] = []
    status: RoleStatus = "open"
    backups: list[Id] = []
    # The character's id in each source it was imported from (a script's cue name, an
    # office sheet's id), so re-imports find it even after a rename here.
    external_ids: dict[str, str] = {}
    # Makeup and wardrobe this character needs before their first scene of a day (a
    # prosthetic, a period wig); None = the production's lead_minutes.
    lead_minutes: LeadMinutes | None = None
    notes: LongText = ""

    ordered: ClassVar[tuple[tuple[str, str], ...]] = (("age_min", "age_max"),)

    def __post_init__(self) -> None:
        check_ordered(self)
        names = [era.name for era in self.eras]
        if len(names) != len(set(names)):
            raise ValueError("eras: era names must be unique")

    def era(self, name: str | None) -> Era | None:
        return next((e for e in self.eras if e.name == name), None)


class Talent(Entity, kw_only=True):
    entity_kind: ClassVar[str] = "talent"
    collection: ClassVar[str] = "talents"
    crdt_maps: ClassVar[frozenset[str]] = frozenset({"external_ids", "media"})

    name: Name
    agent: ShortText = ""
    contact: ShortText = ""
    union: ShortText = ""
    playing_age_min: Age | None = None
    playing_age_max: Age | None = None
    height_cm: Annotated[int, Meta(ge=30, le=260)] | None = None
    hair: ShortText = ""
    eyes: ShortText = ""
    languages: list[str] = []
    accents: list[str] = []
    skills: list[str] = []
    attributes: dict[str, str] = {}
    rate: Money | None = None
    # Links to media kept elsewhere (a casting site's URL, a path): text, as imported.
    # Files stored with the production are in ``media`` (``castroom attach``).
    headshot: ShortText = ""
    reel: ShortText = ""
    external_ids: dict[str, str] = {}
    #: Attached files by their hash (a CRDT map: two members attaching offline both keep
    #: theirs).
    media: dict[Sha256, MediaRef] = {}
    notes: LongText = ""

    ordered: ClassVar[tuple[tuple[str, str], ...]] = (("playing_age_min", "playing_age_max"),)

    def __post_init__(self) -> None:
        check_ordered(self)
        check_media(self.media)


class Candidate(Entity, kw_only=True):
    """A talent considered for a role (and era)."""

    entity_kind: ClassVar[str] = "candidate"
    collection: ClassVar[str] = "candidates"
    crdt_maps: ClassVar[frozenset[str]] = frozenset({"ratings", "media"})

    talent_id: Id
    role_id: Id
    era: ShortText | None = None
    stage: Stage = "submitted"
    source: ShortText = ""
    ratings: dict[str, Rating] = {}
    backup_rank: Annotated[int, Meta(ge=1, le=MAX_SAFE_INT)] | None = None
    #: Self-tapes (and anything else) for this role, by hash; see Talent.media.
    media: dict[Sha256, MediaRef] = {}
    notes: LongText = ""

    def __post_init__(self) -> None:
        check_media(self.media)


class Audition(Entity, kw_only=True):
    """An audition slot; with ``chemistry`` set, a read pairing candidates of several roles."""

    entity_kind: ClassVar[str] = "audition"
    collection: ClassVar[str] = "auditions"

    role_id: Id | None = None
    starts_at: dt.datetime
    minutes: Annotated[int, Meta(ge=1, le=24 * 60)] = 30
    place: ShortText = ""
    link: ShortText = ""
    candidate_ids: list[Id] = []
    panel: list[Id] = []
    chemistry: bool = False
    role_ids: list[Id] = []
    pairings: list[Pairing] = []
    notes: LongText = ""

    def __post_init__(self) -> None:
        if self.pairings and not self.chemistry:
            raise ValueError("pairings: only a chemistry read has pairings")
        if self.role_id is None and not self.role_ids:
            raise ValueError("role_id: an audition needs a role (or role_ids for chemistry)")


class Scene(Entity, kw_only=True):
    entity_kind: ClassVar[str] = "scene"
    collection: ClassVar[str] = "scenes"
    crdt_maps: ClassVar[frozenset[str]] = frozenset({"looks", "external_ids"})

    number: Annotated[str, Meta(min_length=1, max_length=20)]
    heading: ShortText = ""
    story_day: Annotated[int, Meta(ge=0, le=MAX_SAFE_INT)] | None = None
    era: ShortText | None = None
    characters: list[Id] = []
    shoot_day_id: Id | None = None
    location: ShortText = ""
    looks: dict[str, Look] = {}
    pages: Annotated[float, Meta(ge=0, le=10_000)] = 0.0
    # The breakdown a script gives: INT/EXT, DAY/NIGHT (the heading's time of day) and
    # the length in eighths of a page (a stripboard's unit: 11 = 1 3/8 pages).
    int_ext: IntExt = ""
    time_of_day: ShortText = ""
    eighths: Annotated[int, Meta(ge=0, le=80_000)] | None = None
    # Cut from the script after its numbers were locked: kept (with its looks and shoot
    # day) under its number, so no later scene is renumbered.
    omitted: bool = False
    #: Estimated shooting time in days (fractions allowed); None: pages over the
    #: production's pages_per_day. A scene longer than a day takes consecutive days.
    duration_days: Annotated[float, Meta(gt=0, le=1_000)] | None = None
    #: Scheduler constraints: shoot on this date; shoot after these scenes (a later day,
    #: or later the same day).
    tied_date: dt.date | None = None
    after: list[Id] = []
    # The scene's id in each source it was imported from: a script's numbers shift when
    # a draft inserts a scene, so re-imports match on this before the number.
    external_ids: dict[str, str] = {}
    notes: LongText = ""

    def __post_init__(self) -> None:
        stray = set(self.looks) - set(self.characters)
        if stray:
            raise ValueError(f"looks: look for a character not in the scene: {sorted(stray)[0]}")


class ShootDay(Entity, kw_only=True):
    entity_kind: ClassVar[str] = "shoot_day"
    collection: ClassVar[str] = "shoot_days"
    crdt_arrays: ClassVar[frozenset[str]] = frozenset({"scene_ids"})

    date: dt.date
    day_number: Annotated[int, Meta(ge=1, le=MAX_SAFE_INT)] | None = None
    location: ShortText = ""
    call_time: Annotated[str, Meta(pattern=TIME_PATTERN)] = "07:00"
    scene_ids: list[Id] = []
    notes: LongText = ""


class Availability(Entity, kw_only=True):
    entity_kind: ClassVar[str] = "availability"
    collection: ClassVar[str] = "availabilities"

    talent_id: Id
    start: dt.date
    end: dt.date
    kind: AvailabilityKind = "unavailable"
    held_by: ShortText = ""
    notes: LongText = ""

    ordered: ClassVar[tuple[tuple[str, str], ...]] = (("start", "end"),)

    def __post_init__(self) -> None:
        check_ordered(self)

    def covers(self, day: dt.date) -> bool:
        return self.start <= day <= self.end


class Deal(Entity, kw_only=True):
    entity_kind: ClassVar[str] = "deal"
    collection: ClassVar[str] = "deals"

    talent_id: Id
    role_id: Id
    era: ShortText | None = None
    rate: Money
    unit: DealUnit = "day"
    guaranteed_days: Count = 0
    fringe_rate: Rate | None = None
    overtime_hours: Annotated[float, Meta(ge=0, le=100_000)] = 0.0
    status: DealStatus = "draft"
    notes: LongText = ""


class Member(Entity, kw_only=True):
    entity_kind: ClassVar[str] = "member"
    collection: ClassVar[str] = "members"

    name: Name
    job: Job = "casting_director"
    email: ShortText = ""
    devices: list[str] = []
    notes: LongText = ""


#: Every entity kind stored in a collection map, by singular kind name.
KINDS: dict[str, type[Entity]] = {
    cls.entity_kind: cls
    for cls in (Role, Talent, Candidate, Audition, Scene, ShootDay, Availability, Deal, Member)
}
COLLECTIONS: dict[str, type[Entity]] = {cls.collection: cls for cls in KINDS.values()}
_ALIASES = {
    **{k: k for k in KINDS},
    **{cls.collection: k for k, cls in KINDS.items()},
    "shootday": "shoot_day",
    "shootdays": "shoot_day",
    "shoot-day": "shoot_day",
    "shoot-days": "shoot_day",
    "production": "production",
    "productions": "production",
}


#: Fields that hold other entities' ids: (kind, field) -> the kind referred to. A list
#: field holds several. Checked by the integrity plugin (a reference that arrived from a
#: peer may point nowhere) and on local writes by the CLI.
REFERENCES: dict[tuple[str, str], str] = {
    ("candidate", "talent_id"): "talent",
    ("candidate", "role_id"): "role",
    ("audition", "role_id"): "role",
    ("audition", "role_ids"): "role",
    ("audition", "candidate_ids"): "candidate",
    ("audition", "panel"): "member",
    ("scene", "characters"): "role",
    ("scene", "shoot_day_id"): "shoot_day",
    ("scene", "after"): "scene",
    ("shoot_day", "scene_ids"): "scene",
    ("availability", "talent_id"): "talent",
    ("deal", "talent_id"): "talent",
    ("deal", "role_id"): "role",
    ("role", "backups"): "talent",
}

#: Reference fields that may also hold ids of other kinds, tried after the one in
#: REFERENCES: a role's backups are talents, or candidates (a candidate pins the era the
#: backup is for; see plugins/contingency.py).
ALSO_REFERS_TO: dict[tuple[str, str], tuple[str, ...]] = {("role", "backups"): ("candidate",)}


_REFERENCES_BY_KIND: dict[str, list[tuple[str, str]]] = {}
for (_owner, _field), _target in REFERENCES.items():
    _REFERENCES_BY_KIND.setdefault(_owner, []).append((_field, _target))


def references(entity: Entity) -> list[tuple[str, str, str]]:
    """``(field, kind, id)`` for every id this entity holds of another entity (including
    the candidates paired at a chemistry read, reported as field ``pairings``)."""
    out = []
    for name, target in _REFERENCES_BY_KIND.get(entity.entity_kind, ()):
        value = getattr(entity, name)
        for ref in value if isinstance(value, list) else [value]:
            if ref is not None:
                out.append((name, target, ref))
    if isinstance(entity, Audition):
        for pairing in entity.pairings:
            out.extend(("pairings", "candidate", ref) for ref in pairing.candidate_ids)
    return out


def holding_unknown(
    kind: str, entities: list[Entity], known: Mapping[str, Collection[str]]
) -> set[str]:
    """Ids of ``entities`` (all of ``kind``) holding an id (see :func:`references`) that
    ``known`` (kind -> ids) lacks for the kind meant. A set difference per field first:
    when every reference is known, the common case, no entity is looked at on its own
    (50,000 talents: issue 14)."""
    out: set[str] = set()
    for name, target in _REFERENCES_BY_KIND.get(kind, ()):
        values = list(map(operator.attrgetter(name), entities))
        listed = bool(values) and isinstance(values[0], list)  # one type a field: validated
        held = set(itertools.chain.from_iterable(values) if listed else values)
        unknown = held.difference(known[target])  # C speed for a dict or a set
        unknown.discard(None)  # type: ignore[arg-type]
        if unknown:
            out.update(
                e.id
                for e, value in zip(entities, values, strict=True)
                if not unknown.isdisjoint(value if listed else (value,))
            )
    if kind == "audition":  # the candidates paired at chemistry reads
        out.update(e.id for e in entities if any(r[2] not in known[r[1]] for r in references(e)))
    return out


def reference_kinds(owner: str, field: str, target: str) -> tuple[str, ...]:
    """Every kind ``owner.field`` may refer to, in the order an id is looked up in them
    (``target``: the kind :func:`references` reported)."""
    return (target, *ALSO_REFERS_TO.get((owner, field), ()))


def kind_class(name: str) -> type[Entity]:
    """The Struct for a kind, accepting singular or plural (``talent``/``talents``)."""
    key = _ALIASES.get(name.strip().lower().replace(" ", "_"))
    if key == "production":
        return Production
    if key is None:
        known = ", ".join(sorted(KINDS))
        raise ValidationFailed(name, None, f"unknown kind; expected one of: {known}")
    return KINDS[key]


def field_names(cls: type[Entity]) -> tuple[str, ...]:
    return cls.__struct_fields__


#: "... - at `$.field[0]`", or for a map's key "... - at `key` in `$.field`".
_PATH = re.compile(r" - at `(?:key` in `)?\$\.?([A-Za-z0-9_]*)[^`]*`$")


def validation_error(cls: type[Entity], exc: msgspec.ValidationError, entity_id: str | None):
    """Turn msgspec's message into a ValidationFailed naming the field and the rule."""
    message = str(exc)
    match = _PATH.search(message)
    field: str | None = None
    if match:
        field = match.group(1) or None
        message = message[: match.start()]
    elif ": " in message and message.split(": ", 1)[0] in cls.__struct_fields__:
        field, message = message.split(": ", 1)
    elif message.startswith("Object missing required field `"):
        field = message.split("`")[1]
        message = "is required"
    return ValidationFailed(cls.entity_kind, field, humane(cls, field, message), entity_id)


_TYPE_WORDS = {
    "int": "a whole number",
    "float": "a number",
    "bool": "true or false",
    "str": "text",
    "array": 'a JSON list like ["a", "b"]',
    "object": 'a JSON object like {"key": "value"}',
    "date": "a date YYYY-MM-DD",
    "datetime": "a date and time like 2026-03-01 10:00",
}
_MISMATCH = re.compile(r"^Expected `([^`]+)`, got `[^`]+`$")
_REGEX = re.compile(r"^Expected `str` matching regex '(.*)'$")
_LENGTH = re.compile(r"^Expected `(str|array|object)` of length (>=|<=) (\d+)$")
_BOUND = re.compile(r"^Expected `(?:int|float)` (>=|<=|>|<) (\S+)$")
_BOUND_WORDS = {">=": "at least", "<=": "at most", ">": "more than", "<": "less than"}


def expected(message: str) -> str | None:
    """What a msgspec type or format error wanted, in words ("a whole number"), or None
    when ``message`` is about something else (a range, a length, a rule)."""
    if match := _MISMATCH.match(message):
        wanted = [t for t in match.group(1).split(" | ") if t != "null"]
        return " or ".join(_TYPE_WORDS.get(t, t) for t in wanted)
    if match := _REGEX.match(message):
        pattern = match.group(1).replace("\\\\", "\\")  # msgspec doubles backslashes
        return PATTERN_WORDS.get(pattern, f"text matching {pattern}")
    if message.startswith("Invalid RFC3339 encoded "):
        return _TYPE_WORDS.get(message.rsplit(" ", 1)[-1], message)
    return None


def humane(cls: type[Entity], field: str | None, message: str) -> str:
    """A msgspec message in words people use (no types in backticks, no regexes)."""
    if (wanted := expected(message)) is not None:
        return f"expected {wanted}"
    if match := _LENGTH.match(message):
        what, op, size = match.groups()
        if op == ">=" and size == "1":
            return "must not be empty"
        unit = "characters" if what == "str" else "items"
        return f"must have {_BOUND_WORDS[op]} {size} {unit}"
    if match := _BOUND.match(message):
        return f"must be {_BOUND_WORDS[match.group(1)]} {match.group(2)}"
    if message.startswith("Invalid enum value ") and field in cls.__struct_fields__:
        choices = _choices(cls, field)
        if choices:
            return f"{message[len('Invalid enum value ') :]} is not one of: {', '.join(choices)}"
    return message


def _choices(cls: type[Entity], field: str) -> tuple[str, ...]:
    """The values a Literal field allows (empty for other fields)."""
    for info in msgspec.structs.fields(cls):
        if info.name == field:
            hint = info.type
            for arg in (hint, *get_args(hint)):
                if get_origin(arg) is Literal:
                    return tuple(str(a) for a in get_args(arg))
    return ()


def validate(cls: type[Entity], data: dict[str, Any]) -> Entity:
    """Decode plain data (from a document, a file or the network) into a checked Struct.

    Integral floats become ints (Yjs stores every number as float64); anything else that
    breaks a rule raises :class:`ValidationFailed`.
    """
    names = name_fields(cls)
    if names and isinstance(data, dict):  # "  Ada Stone " is Ada Stone, however it came
        data = {k: v.strip() if k in names and isinstance(v, str) else v for k, v in data.items()}
    try:
        return msgspec.convert(data, cls, strict=False)
    except msgspec.ValidationError as exc:
        entity_id = data.get("id") if isinstance(data, dict) else None
        raise validation_error(cls, exc, entity_id) from None


@functools.cache
def name_fields(cls: type[Entity]) -> frozenset[str]:
    """The fields :func:`validate` strips of surrounding whitespace (typed ``Name``)."""
    hints = get_type_hints(cls, include_extras=True)
    return frozenset(f for f in cls.__struct_fields__ if hints.get(f) == Name)


def to_fields(entity: Entity) -> dict[str, Any]:
    """Plain, JSON-compatible fields of an entity (dates as ISO strings)."""
    return msgspec.to_builtins(entity)


def check_field_names(cls: type[Entity], names: Any) -> None:
    unknown = [n for n in names if n not in cls.__struct_fields__]
    if unknown:
        raise ValidationFailed(cls.entity_kind, unknown[0], "no such field")
