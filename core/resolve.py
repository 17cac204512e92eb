"""Turning what a person typed into ids: the one place every front end resolves names.

- :func:`resolve_id` (:class:`Resolver` for many at once): an entity of one kind by id,
  unique id prefix (4+ characters), what people call it (a name, a scene's number, a
  shoot day's date or number: "3", "day 3"), or a candidate as "TALENT for ROLE",
  "TALENT for ROLE (ERA)", or by its talent alone when that names one. Live entities
  first; accent-, case- and space-insensitive ("zoe" finds "Zoë").
- :func:`resolve_any`: the same across every kind (``history --entity``).
- :func:`resolve_references`: a write's reference fields (ids, prefixes or names) turned
  into ids, refusing one that names nothing or only deleted entities.
- ``fold`` (from :mod:`castroom.core.names`): the comparison key for what people type.

A ``reader`` is a :class:`Reader`: a document or a read-only view. No click or rich here.
"""

from __future__ import annotations

import bisect
import contextlib
import itertools
import re
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from . import model
from .errors import Ambiguous, CastroomError, NotFound
from .labels import called, label, names, own_name, short_id, short_ids
from .model import Entity
from .names import fold

E = TypeVar("E", bound=Entity)

#: "3" or "day 3": a shoot day by its number.
_DAY_NUMBER = re.compile(r"^(?:day\s*)?(\d{1,9})$")
#: "Ada Stone for Nora (1962)": a candidate by its talent, role and era.
_CANDIDATE = re.compile(r"^(?P<talent>.+?)\s+for\s+(?P<role>.+?)(?:\s*\((?P<era>[^()]*)\))?$")


class Reader(Protocol):
    """What resolution reads: a :class:`~castroom.core.document.CastDocument` or a
    :class:`~castroom.core.view.ProductionView`."""

    def raw(self, cls: type[Entity], entity_id: str) -> dict[str, Any] | None: ...

    def ids(self, cls: type[Entity]) -> list[str]: ...

    def all(self, cls: type[E], *, include_deleted: bool = False) -> list[E]: ...


def resolve_id(
    reader: Reader,
    cls: type[Entity],
    ref: str,
    *,
    include_deleted: bool = False,
    prefer_deleted: bool = False,
) -> str:
    """The id ``ref`` means among entities of ``cls``, stored invalid ones included (by
    their stored name), so they can be shown, repaired, deleted and restored.

    Stages, the first that matches anything wins: the id itself, a unique id prefix of 4
    or more characters, what people call it. Within a stage, live entities win; a deleted
    one matches only with ``include_deleted`` and when no live one does.
    ``prefer_deleted`` (restoring) turns that round."""
    return Resolver(reader).id(
        cls, ref, include_deleted=include_deleted, prefer_deleted=prefer_deleted
    )


class Resolver:
    """:func:`resolve_id` for many references against one unchanging reader (an import):
    each kind's ids and names are indexed once."""

    def __init__(self, reader: Reader) -> None:
        self.reader = reader
        self._ids: dict[type[Entity], list[str]] = {}
        self._names: dict[type[Entity], dict[str, list[str]]] = {}

    def id(
        self,
        cls: type[Entity],
        ref: str,
        *,
        include_deleted: bool = False,
        prefer_deleted: bool = False,
    ) -> str:
        """See :func:`resolve_id`."""
        include_deleted = include_deleted or prefer_deleted
        stages: list[Callable[[], list[str]]] = [
            lambda: [ref] if self.reader.raw(cls, ref) is not None else [],
            lambda: self._prefixed(cls, ref) if len(ref) >= 4 else [],
            lambda: self._called(cls, ref),
        ]
        for stage in stages:
            found = stage()
            live = [i for i in found if not _deleted(self.reader, cls, i)]
            dead = [i for i in found if i not in live] if include_deleted else []
            for group in (dead, live) if prefer_deleted else (live, dead):
                if len(group) > 1:
                    how = ' or "TALENT for ROLE (ERA)"' if cls is model.Candidate else ""
                    raise Ambiguous(
                        f"{ref!r} matches {len(group)} {cls.collection}:"
                        f" {briefly(self.reader, cls, group)}; use the id{how}"
                    )
                if group:
                    return group[0]
        raise NotFound(f"no {cls.entity_kind} matching {ref!r}")

    def _prefixed(self, cls: type[Entity], prefix: str) -> list[str]:
        ids = self._ids.get(cls)
        if ids is None:
            ids = self._ids[cls] = sorted(self.reader.ids(cls))
        start = bisect.bisect_left(ids, prefix)
        return list(itertools.takewhile(lambda i: i.startswith(prefix), ids[start:]))

    def _index(self, cls: type[Entity]) -> dict[str, list[str]]:
        """fold(what people call it) -> ids, stored invalid entities by their stored name."""
        index = self._names.get(cls)
        if index is None:
            index = self._names[cls] = {}
            valid = self.reader.all(cls, include_deleted=True)
            for entity in valid:
                for name in names(entity):
                    index.setdefault(fold(str(name)), []).append(entity.id)
            known = {e.id for e in valid}
            for entity_id in self.reader.ids(cls):  # stored invalid: what is stored
                if entity_id not in known:
                    name = own_name(self.reader.raw(cls, entity_id))
                    if name:
                        index.setdefault(fold(name), []).append(entity_id)
        return index

    def _called(self, cls: type[Entity], ref: str) -> list[str]:
        """The ids of entities people call ``ref``: by name (number, date); a shoot day by
        its number; a candidate by "TALENT for ROLE (ERA)" or its talent."""
        folded = fold(ref)
        found = self._index(cls).get(folded, [])
        if found:
            return list(found)
        day = _DAY_NUMBER.match(folded) if cls is model.ShootDay else None
        if day:
            number = int(day.group(1))
            days = self.reader.all(model.ShootDay, include_deleted=True)
            return [d.id for d in days if d.day_number == number]
        if cls is model.Candidate:
            return self._candidates_called(ref)
        return []

    def _candidates_called(self, ref: str) -> list[str]:
        """Candidates named "TALENT for ROLE" (any era), "TALENT for ROLE (ERA)", or by
        their talent alone ("Ada Stone": one of several is Ambiguous, listing them)."""
        match = _CANDIDATE.match(ref.strip())
        found = self._candidates_of(match["talent"], match["role"], match["era"]) if match else []
        return found or self._candidates_of(ref, None, None)

    def _candidates_of(self, talent_ref: str, role_ref: str | None, era: str | None) -> list[str]:
        try:
            talent = self.id(model.Talent, talent_ref, include_deleted=True)
            role = self.id(model.Role, role_ref, include_deleted=True) if role_ref else None
        except (NotFound, Ambiguous):
            return []
        folded = fold(era) if era is not None else None
        return [
            c.id
            for c in self.reader.all(model.Candidate, include_deleted=True)
            if c.talent_id == talent
            and (role is None or c.role_id == role)
            and (folded is None or fold(c.era or "") == folded)
        ]


def resolve_any(reader: Reader, ref: str, kind: str | None = None) -> tuple[str, str]:
    """(entity kind, id) of what ``ref`` means in ``kind``, or in any kind; an entity of
    several kinds matching is Ambiguous (name the kind)."""
    kinds = [model.kind_class(kind)] if kind else list(model.KINDS.values())
    exact = [cls for cls in kinds if reader.raw(cls, ref) is not None]
    if exact:
        return exact[0].entity_kind, ref
    found: list[tuple[type[Entity], str]] = []
    for cls in kinds:
        with contextlib.suppress(NotFound):  # (Ambiguous within one kind: it lists them)
            found.append((cls, resolve_id(reader, cls, ref, include_deleted=True)))
    if not found:
        raise NotFound(f"no entity matching {ref!r}")
    if len(found) > 1:
        which = ", ".join(called(reader, c, i) for c, i in found[:5])
        raise Ambiguous(f"{ref!r} matches {which}; use --kind or the id")
    return found[0][0].entity_kind, found[0][1]


def _deleted(reader: Reader, cls: type[Entity], entity_id: str) -> bool:
    return bool((reader.raw(cls, entity_id) or {}).get("deleted"))


def briefly(reader: Reader, cls: type[Entity], ids: list[str], most: int = 5) -> str:
    """Matches as "id-prefix label" (each prefix unique in the collection), at most 5."""
    shorts = short_ids(reader.ids(cls))
    out = []
    for entity_id in ids[:most]:
        data = reader.raw(cls, entity_id) or {"id": entity_id}  # valid or not
        text = label(reader, cls, data, default="")
        if data.get("deleted"):
            text += " (deleted)"
        out.append(f"{shorts.get(entity_id, entity_id)} {text}".strip())
    return ", ".join(out) + (f", and {len(ids) - most} more" if len(ids) > most else "")


# -- a write's reference fields ---------------------------------------------------------------


def resolve_references(
    reader: Reader | Resolver,
    cls: type[Entity],
    fields: dict[str, Any],
    *,
    where: bool = False,
    stored: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Reference fields given as an id, id prefix or name (as `show` resolves them, live
    entities first) turned into ids; one that names nothing, or only deleted entities, is
    refused. Only local writes are checked here: what a peer merges is reported by the
    integrity plugin instead. ``where``: for a filter, a deleted match is fine. Pass a
    :class:`Resolver` to resolve many entities' references against one reader.
    ``stored``: the changed entity's stored fields; ratings it holds already, with the
    same value, are kept as they are (the rater may be no member: rated on the page)."""
    reader = reader if isinstance(reader, Resolver) else Resolver(reader)
    out = dict(fields)
    for (owner, name), target in model.REFERENCES.items():
        if owner != cls.entity_kind or out.get(name) is None:
            continue
        value = out[name]
        kinds = model.reference_kinds(owner, name, target)
        ids = [_reference(reader, cls, name, kinds, str(v), where) for v in _listed(value)]
        out[name] = ids if isinstance(value, list) else ids[0]
    if cls is model.Audition and isinstance(out.get("pairings"), list):
        out["pairings"] = [_pairing(reader, p, where) for p in out["pairings"]]
    # Object keys that name entities: a scene's looks are keyed by role id (like its
    # characters, which the model checks them against).
    if cls is model.Scene and isinstance(out.get("looks"), dict):
        out["looks"] = _resolve_keys(
            cls,
            "looks",
            "role",
            out["looks"],
            lambda k: _reference(reader, cls, "looks", ("role",), k, where),
        )
    # A candidate's ratings are keyed by member *name* (as the sample and existing
    # productions store them): a name, id or id prefix typed becomes that name.
    if cls is model.Candidate and isinstance(out.get("ratings"), dict):
        had = (stored or {}).get("ratings")
        had = had if isinstance(had, dict) else {}
        given = {k: v for k, v in out["ratings"].items() if k not in had or had[k] != v}
        out["ratings"] = {
            **{k: v for k, v in out["ratings"].items() if k not in given},
            **_resolve_keys(
                cls, "ratings", "member", given, lambda k: _member_name(reader, k, where)
            ),
        }
    return out


def _pairing(reader: Resolver, pairing: Any, where: bool) -> Any:
    """A chemistry read's pairing with its candidates resolved."""
    if not isinstance(pairing, dict) or not isinstance(pairing.get("candidate_ids"), list):
        return pairing
    ids = [
        _reference(reader, model.Audition, "pairings", ("candidate",), str(ref), where)
        for ref in pairing["candidate_ids"]
    ]
    return {**pairing, "candidate_ids": ids}


def _member_name(reader: Resolver, ref: str, where: bool) -> str:
    if ref.endswith(model.VIEWER_SUFFIX):
        return ref  # a presentation's viewer (castroom.core.presenting), not a member
    try:
        member_id = _reference(reader, model.Candidate, "ratings", ("member",), ref, where)
    except NotFound as exc:  # say how to make one: ratings are only by known members
        raise NotFound(f"{exc} (add them with `castroom add member name=...`)") from None
    return own_name(reader.reader.raw(model.Member, member_id)) or member_id


def _resolve_keys(
    cls: type[Entity],
    name: str,
    target: str,
    value: dict[str, Any],
    resolve: Callable[[str], str],
) -> dict[str, Any]:
    """``value`` with each key replaced by what ``resolve`` makes of it; two keys meaning
    the same entity are refused (one would silently overwrite the other)."""
    out: dict[str, Any] = {}
    typed: dict[str, str] = {}
    for key, item in value.items():
        resolved = resolve(str(key))
        if resolved in out:
            raise CastroomError(
                f"{cls.entity_kind}.{name}: {typed[resolved]!r} and {key!r} are the same {target}"
            )
        out[resolved], typed[resolved] = item, str(key)
    return out


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _reference(
    reader: Resolver,
    cls: type[Entity],
    name: str,
    kinds: tuple[str, ...],
    ref: str,
    where: bool,
) -> str:
    """The id ``ref`` means in the first of ``kinds`` where it matches anything (a
    role's backups: a talent, else a candidate)."""
    for target in kinds:
        with contextlib.suppress(NotFound):
            return _reference_to(reader, cls, name, target, ref, where)
    raise NotFound(f"{cls.entity_kind}.{name}: no {' or '.join(kinds)} matching {ref!r}")


def _reference_to(
    resolver: Resolver, cls: type[Entity], name: str, target: str, ref: str, where: bool
) -> str:
    reader = resolver.reader
    target_cls = model.kind_class(target)
    where_from = f"{cls.entity_kind}.{name}"
    raw = reader.raw(target_cls, ref)
    if raw is not None and (where or not raw.get("deleted")):
        return ref  # an existing id (even one stored invalid: it is still that entity)
    try:
        entity_id = resolver.id(target_cls, ref, include_deleted=True)
    except Ambiguous as exc:
        raise Ambiguous(f"{where_from}: {exc}") from None
    data = reader.raw(target_cls, entity_id) or {"id": entity_id}
    if data.get("deleted") and not where:
        raise CastroomError(
            f"{where_from}: {target} {label(reader, target_cls, data)} is deleted"
            f" (`castroom restore {target} {short_id(entity_id, reader.ids(target_cls))}` first)"
        )
    return entity_id
