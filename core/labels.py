"""What people call an entity: the one place every message, table, history line and
finding takes an entity's name from.

- :func:`label` names any entity, valid or stored invalid: its own name (a talent's or
  role's name, a scene's number, a shoot day's date, the production's title), else what
  it refers to ("Ada Stone for Nora (1962)" for a candidate, "Ada Stone / Nora" for a
  deal, "Ada Stone 2027-03-01..03" for an availability, "Nora 2027-03-01 10:00" for an
  audition), else its id.
- :func:`short_id` / :func:`short_ids`: the shortest unique prefix of an id, what people
  see of ids; :func:`called` names an entity in a message ("role Nora (01M8S3KX)").
- :func:`names` are what a person may type to mean an entity (resolution matches these).

No click, rich or pycrdt here; a ``source`` is anything with ``raw(cls, id)`` (a
document or a read-only view), read for the names of what an entity refers to.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Iterable
from typing import Any, Protocol

from . import model
from .model import Entity

#: Stored fields that are an entity's own name, in the order they are looked for.
_OWN_NAME = ("name", "title", "number", "date")


class Source(Protocol):
    """Where referred entities' names are read from (a document or a view)."""

    def raw(self, cls: type[Entity], entity_id: str) -> dict[str, Any] | None: ...


def names(entity: Entity) -> list[str]:
    """What people call an entity besides its id, to match what they type: a name, a
    scene's number, a shoot day's ISO date, the production's title."""
    name = own_name(_fields(entity))
    return [name] if name else []


def own_name(data: dict[str, Any] | None) -> str:
    """An entity's own name from its stored fields (valid or not), or "" if it has none."""
    data = data or {}
    for key in _OWN_NAME:
        value = data.get(key)
        if value not in (None, ""):
            return value.isoformat() if hasattr(value, "isoformat") else str(value)
    return ""


def label(
    source: Source | None,
    entity: Entity | type[Entity],
    data: dict[str, Any] | None = None,
    *,
    default: str | None = None,
) -> str:
    """What people call ``entity`` (a Struct, or a class and its stored fields, valid or
    not): its own name, else a description from what it refers to, else ``default``
    (its id unless given)."""
    if isinstance(entity, type):
        cls, fields = entity, data or {}
        found = own_name(fields) or describe(source, cls, fields)
        return found or (str(fields.get("id") or "") if default is None else default)
    # A Struct: its own name read straight off it (checks label thousands of entities).
    for key in _OWN_NAME:
        value = getattr(entity, key, None)
        if value not in (None, ""):
            return value.isoformat() if hasattr(value, "isoformat") else str(value)
    found = describe(source, type(entity), _fields(entity))
    return found or (entity.id if default is None else default)


def describe(source: Source | None, cls: type[Entity], data: dict[str, Any]) -> str:
    """A label for an entity without a name of its own, from what it refers to ("" for
    a kind that has its own name, or for one that refers to nothing)."""
    if cls is model.Candidate:
        era = f" ({data['era']})" if data.get("era") else ""
        return f"{_called(source, model.Talent, data.get('talent_id'))} for" + (
            f" {_called(source, model.Role, data.get('role_id'))}{era}"
        )
    if cls is model.Deal:
        talent = _called(source, model.Talent, data.get("talent_id"))
        return f"{talent} / {_called(source, model.Role, data.get('role_id'))}"
    if cls is model.Availability:
        return _availability(_called(source, model.Talent, data.get("talent_id")), data)
    if cls is model.Audition:
        return _audition(source, data)
    return ""


def _availability(talent: str, data: dict[str, Any]) -> str:
    start, end = _text(data.get("start")), _text(data.get("end"))
    if not end or end == start:
        return f"{talent} {start}".rstrip()
    same_month = start[:8] == end[:8] and len(end) == 10
    return f"{talent} {start}..{end[8:] if same_month else end}"


def _audition(source: Source | None, data: dict[str, Any]) -> str:
    when = _text(data.get("starts_at"))[:16].replace("T", " ")
    role = _called(source, model.Role, data.get("role_id"))
    ids = data.get("role_ids") if data.get("role_id") is None else None
    if isinstance(ids, list) and ids:  # a chemistry read of several roles
        role = " & ".join(_called(source, model.Role, ref) for ref in ids)
    return f"{role} {when}".rstrip()


def _called(source: Source | None, cls: type[Entity], ref: Any) -> str:
    """The own name of the entity ``ref`` points at, else ``ref`` itself, else "?"."""
    fields = source.raw(cls, str(ref)) if source is not None and ref else None
    return own_name(fields) or (str(ref) if ref else "?")


class Listing(Source, Protocol):
    """A source that also lists each kind's ids (for short unique prefixes)."""

    def ids(self, cls: type[Entity]) -> list[str]: ...


def short_id(entity_id: str, ids: Iterable[str], least: int = 8) -> str:
    """``entity_id``'s shortest prefix (at least ``least`` characters) that no other of
    ``ids`` starts with (see :func:`short_ids`, for many at once)."""
    shared = max((_common(entity_id, other) for other in ids if other != entity_id), default=0)
    return entity_id[: max(least, shared + 1)]


def called(
    source: Listing,
    cls: type[Entity],
    entity_id: str,
    data: dict[str, Any] | None = None,
    *,
    short: str | None = None,
) -> str:
    """How a message names an entity: its kind, what people call it and its short id
    ("role Nora (01M8S3KX)"; "scene 01M8S3KX" for one with no name). ``data``: its fields
    when they are not (or no longer) in ``source``; ``short``: its short id, when known."""
    short = short or short_id(entity_id, source.ids(cls))
    name = label(source, cls, data or source.raw(cls, entity_id) or {}, default="")
    return f"{cls.entity_kind} {name} ({short})" if name else f"{cls.entity_kind} {short}"


class ShortIds:
    """Short ids among ``ids`` (see :func:`short_ids`), each worked out when asked: a
    check naming a few of 50,000 talents sorts their ids once, and compares each asked
    for with its two neighbours in that order (where its longest shared prefix is)."""

    def __init__(self, ids: Iterable[str], least: int = 8) -> None:
        self._ordered = sorted(set(ids))
        self._least = least

    def __getitem__(self, entity_id: str) -> str:
        ordered, least = self._ordered, self._least
        at = bisect.bisect_left(ordered, entity_id)
        left = _common(ordered[at - 1], entity_id, least) if at > 0 else 0
        after = at + 1 if at < len(ordered) and ordered[at] == entity_id else at
        right = _common(entity_id, ordered[after], least) if after < len(ordered) else 0
        return entity_id[: max(least, left + 1, right + 1)]


def short_ids(ids: Iterable[str], least: int = 8) -> dict[str, str]:
    """Each id's shortest prefix (at least ``least`` characters) that no other of
    ``ids`` starts with: what people see and type (ULIDs made in one second share their
    first nine characters, so a fixed cut would not be unique)."""
    ordered = sorted(set(ids))
    # In sorted order an id shares its longest prefix with a neighbour: one comparison
    # per pair (50,000 talents: 1.5 s of a check was this, pair by pair, twice).
    shared = [_common(a, b, least) for a, b in itertools.pairwise(ordered)]
    before, after = [0, *shared], [*shared, 0]
    return {
        entity_id: entity_id[: max(least, left + 1, right + 1)]
        for entity_id, left, right in zip(ordered, before, after, strict=False)
    }


def _common(a: str, b: str, least: int = 0) -> int:
    """The length of ``a`` and ``b``'s common prefix; below ``least`` only as 0 (a short
    id is never shorter than ``least``, so the exact length does not matter there)."""
    if a[:least] != b[:least]:
        return 0
    n = least
    end = min(len(a), len(b))
    while n < end and a[n] == b[n]:
        n += 1
    return n


def _text(value: Any) -> str:
    if value is None:
        return ""
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


def _fields(entity: Entity) -> dict[str, Any]:
    return {name: getattr(entity, name) for name in entity.__struct_fields__}


__all__ = [
    "Listing",
    "Source",
    "called",
    "describe",
    "label",
    "names",
    "own_name",
    "short_id",
    "short_ids",
]
