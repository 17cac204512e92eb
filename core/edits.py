"""Every write rule in one place, as *plan, then apply*.

A :class:`Plan` is data: the :class:`Edit` s it will make (create, change, delete or
restore an entity; cancelling a deal is a change of its status), each with its reason.
It can be shown (:func:`describe`), sent as JSON, and applied (:func:`apply`) in one
transaction: every edit is checked first, against the document as the edits before it
leave it, and any refusal means nothing is written.

The rules a write must keep beyond one entity's own model rules live here, once: a
reference names a live entity (:func:`castroom.core.resolve.resolve_references`), a
candidate's or deal's era is one of its role's eras, one live candidate per talent,
role and era. The CLI, every importer, plugin commands and the web server build plans
with :func:`create`, :func:`change`, :func:`delete`, :func:`restore`, :func:`deletion` (which
check as they build) and :func:`castroom.core.importing.plan_import`, and apply them with
:func:`apply`, so they refuse the same writes with the same words. No click or rich.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import msgspec

from . import model
from .errors import CastroomError, NotFound, ValidationFailed
from .labels import label, short_id
from .model import Entity, Production
from .names import check_talent_name
from .reads import plain_defaults, validate_change
from .resolve import Reader, resolve_references
from .shoot_days import LINKED, Written, keep_in_step

if TYPE_CHECKING:
    from .document import CastDocument

E = TypeVar("E", bound=Entity)
Op = Literal["create", "change", "delete", "restore"]


class Edit(msgspec.Struct, kw_only=True, frozen=True):
    """One write: ``create`` an entity with ``fields``, ``change`` some of its
    ``fields``, ``delete`` or ``restore`` it. ``fields`` are plain data (ids for
    references); ``reason`` says why, for people."""

    op: Op
    kind: str
    id: str
    fields: dict[str, Any] = {}
    reason: str = ""
    #: Override the refusals meant for people typing (a talent named like a live one:
    #: ``castroom add talent ... --force``).
    force: bool = False


class Plan(msgspec.Struct, kw_only=True, frozen=True):
    """What a command, an importer or a plugin will write, applied all or nothing."""

    edits: list[Edit] = []
    reason: str = ""

    def __add__(self, other: Plan) -> Plan:
        return Plan(edits=[*self.edits, *other.edits], reason=self.reason or other.reason)


class Applied(msgspec.Struct, kw_only=True, frozen=True):
    """What :func:`apply` wrote: each edited entity as stored afterwards, by id."""

    entities: dict[str, Entity] = {}
    created: int = 0
    changed: int = 0
    deleted: int = 0
    restored: int = 0

    def entity(self, cls: type[E], entity_id: str) -> E:
        entity = self.entities[entity_id]
        assert isinstance(entity, cls)
        return entity


# -- building edits (each checked as it is built) ---------------------------------------------


def create(
    reader: Reader,
    cls: type[Entity],
    fields: dict[str, Any],
    *,
    reason: str = "",
    force: bool = False,
) -> Edit:
    """An edit creating a ``cls`` from ``fields`` (references as ids, prefixes or names;
    a new id unless ``fields`` has one), checked against ``reader``."""
    fields = dict(fields)
    entity_id = str(fields.pop("id", None) or model.new_id())
    return _built(reader, "create", cls, entity_id, fields, reason=reason, force=force)


def change(
    reader: Reader,
    cls: type[Entity],
    entity_id: str,
    fields: dict[str, Any],
    *,
    reason: str = "",
    force: bool = False,
) -> Edit:
    """An edit changing some fields of an entity (one stored invalid too, as long as the
    result is valid: that is how a peer's bad edit is repaired)."""
    return _built(reader, "change", cls, entity_id, fields, reason=reason, force=force)


def delete(reader: Reader, cls: type[Entity], entity_id: str, *, reason: str = "") -> Edit:
    """An edit deleting an entity (soft: :func:`restore` brings it back)."""
    return _built(reader, "delete", cls, entity_id, {}, reason=reason)


def restore(reader: Reader, cls: type[Entity], entity_id: str, *, reason: str = "") -> Edit:
    """An edit bringing a deleted entity back (refused if it would duplicate a live
    candidate)."""
    return _built(reader, "restore", cls, entity_id, {}, reason=reason)


def _built(
    reader: Reader,
    op: Op,
    cls: type[Entity],
    entity_id: str,
    fields: dict[str, Any],
    *,
    reason: str,
    force: bool = False,
) -> Edit:
    """The edit, its field names known and references resolved to ids, checked."""
    if fields:
        model.check_field_names(cls, fields)
        stored = reader.raw(cls, entity_id) if op == "change" else None
        fields = resolve_references(reader, cls, fields, stored=stored)
    edit = Edit(
        op=op, kind=cls.entity_kind, id=entity_id, fields=fields, reason=reason, force=force
    )
    Checker(reader).check(edit)
    return edit


def deletion(reader: Reader, cls: type[Entity], entity_id: str, *, back: bool = False) -> Plan:
    """The plan deleting an entity (``back``: restoring it), valid or stored invalid;
    empty when it already is so, its ``reason`` saying that ("talent Ada is already
    deleted")."""
    stored = reader.raw(cls, entity_id)
    if stored is None:
        raise NotFound(f"no {cls.entity_kind} with id {entity_id!r}")
    if bool(stored.get("deleted")) != back:
        state = "not deleted" if back else "already deleted"
        return Plan(reason=f"{cls.entity_kind} {label(reader, cls, stored)} is {state}")
    return Plan(edits=[(restore if back else delete)(reader, cls, entity_id)])


def append_line(notes: str, line: str) -> str:
    """``notes`` with ``line`` added at the end, on its own line (how a write adds to a
    candidate's or deal's notes without touching what is there)."""
    return f"{notes.rstrip()}\n{line}" if notes.strip() else line


# -- applying ---------------------------------------------------------------------------------


def apply(doc: CastDocument, plan: Plan | Edit) -> Applied:
    """Check every edit (each against the document as the edits before it leave it),
    then write them all in one transaction; any refusal raises and writes nothing.

    A plan built elsewhere (by a plugin, or before another write) is checked again here:
    it is never trusted as built."""
    edits = [plan] if isinstance(plan, Edit) else list(plan.edits)
    checker = Checker(doc)
    return write_checked(doc, edits, [checker.check(edit) for edit in edits])


def write_checked(doc: CastDocument, edits: list[Edit], checked: list[Entity | None]) -> Applied:
    """Write edits :class:`Checker` has just checked against ``doc`` (``checked``: what
    each check returned), in one transaction. :func:`apply` is the way in; an importer's
    plan, checked as it was built a moment ago, is written through here directly."""
    entities: dict[str, Entity] = {}
    counts = {"create": 0, "change": 0, "delete": 0, "restore": 0}
    written: list[Written] = []
    with doc.transaction():
        for edit, entity in zip(edits, checked, strict=True):
            cls = model.kind_class(edit.kind)
            written.append((cls, edit.id, doc.raw(cls, edit.id) if cls in LINKED else None))
            if edit.op == "create":
                assert entity is not None
                doc.put(entity)
            elif edit.op == "change":
                doc.update(cls, edit.id, edit.fields)
            elif edit.op == "delete":
                doc.delete(cls, edit.id)
            else:
                doc.restore(cls, edit.id)
            counts[edit.op] += 1
        # A scene's shoot day is said on both sides: the other side follows, in this
        # same transaction (castroom.core.shoot_days).
        keep_in_step(doc, written)
        for edit in edits:
            found = doc.find(model.kind_class(edit.kind), edit.id, include_deleted=True)
            if found is not None:
                entities[edit.id] = found
    return Applied(
        entities=entities,
        created=counts["create"],
        changed=counts["change"],
        deleted=counts["delete"],
        restored=counts["restore"],
    )


def describe(reader: Reader, plan: Plan) -> list[str]:
    """The plan for people, one line per edit: "change deal Ada Stone / Nora: status
    cancelled (Ada Stone dropped out)"."""
    lines = []
    seen = Checker(reader)  # later edits are named as the earlier ones leave things
    for edit in plan.edits:
        cls = model.kind_class(edit.kind)
        seen.note(edit)
        name = label(seen, cls, seen.raw(cls, edit.id))
        what = f"{edit.op} {edit.kind} {name}"
        if edit.op == "change":
            shown = ", ".join(
                f"{k} {_shown(seen, edit.kind, k, v)}"
                for k, v in edit.fields.items()
                if k != "notes"
            )
            what += f": {shown or 'notes'}"
        lines.append(what + (f" ({edit.reason})" if edit.reason else ""))
    return lines


def fingerprint(plan: Plan) -> str:
    """What ``plan`` writes, as a short digest: equal for two plans that write the same.
    The ids made up for new entities count by position (an importer or a replacement
    makes fresh ones each time it plans), and notes, which carry today's date, are left
    out. A front end that showed a plan sends this back with the request to apply it, so
    what is applied is what was shown."""
    new = {e.id: f"new #{n}" for n, e in enumerate(e for e in plan.edits if e.op == "create")}
    writes = [[e.op, e.kind, new.get(e.id, e.id), e.force, _written(e, new)] for e in plan.edits]
    return hashlib.sha256(msgspec.json.encode(writes)).hexdigest()[:16]


def _written(edit: Edit, new: dict[str, str]) -> dict[str, Any]:
    # Field order is the planner's, the same each time it plans the same thing.
    fields = dict(edit.fields)
    fields.pop("notes", None)
    for name in _HOLD_IDS.get(edit.kind, ()):
        if name in fields and new:
            fields[name] = _renamed(fields[name], new)
    return fields


#: The fields that may hold other entities' ids (references, a scene's looks by role, a
#: chemistry read's pairings): the only ones :func:`fingerprint` renames in.
_HOLD_IDS: dict[str, list[str]] = {}
for _kind, _field in [*model.REFERENCES, ("scene", "looks"), ("audition", "pairings")]:
    _HOLD_IDS.setdefault(_kind, []).append(_field)


def _renamed(value: Any, names: dict[str, str]) -> Any:
    """``value`` with every string (and key) in ``names`` replaced by its name there."""
    kind = type(value)  # exact types: fields are plain data, and this runs per field
    if kind is str:
        return names.get(value, value)
    if kind is list or kind is tuple:
        return [_renamed(v, names) for v in value]
    if kind is dict:
        return {names.get(k, k): _renamed(v, names) for k, v in value.items()}
    return value


def _shown(reader: Checker, kind: str, field: str, value: Any) -> str:
    """A changed value for people: a reference by what its entity is called, a list of
    them as names in order ("backups Ada Stone, Cal Reyes"), anything else as it is."""
    target = model.REFERENCES.get((kind, field))
    if target is not None and value is not None:
        kinds = model.reference_kinds(kind, field, target)
        refs = value if isinstance(value, list) else [value]
        text = ", ".join(_called(reader, kinds, str(ref)) for ref in refs) or "none"
    else:
        text = str(value)
    return text if len(text) <= 40 else text[:39] + "…"


def _called(reader: Checker, kinds: tuple[str, ...], entity_id: str) -> str:
    for kind in kinds:
        cls = model.kind_class(kind)
        data = reader.raw(cls, entity_id)
        if data is not None:
            return label(reader, cls, data)
    return entity_id


# -- the rules --------------------------------------------------------------------------------


class Checker:
    """Checks edits one after another, each against ``reader`` as the edits before it
    leave it (an overlay: a deal may refer to a talent created earlier in the plan)."""

    def __init__(self, reader: Reader) -> None:
        self.base = reader
        self.pending: dict[tuple[type[Entity], str], dict[str, Any]] = {}
        self._valid: dict[tuple[type[Entity], str], Entity | None] = {}
        #: (talent, role, era) -> live candidate ids, built on first use (an import of
        #: thousands of candidates checks each against it, not against every candidate).
        self._keys: dict[tuple[Any, Any, Any], set[str]] | None = None
        self._key_of: dict[str, tuple[Any, Any, Any]] = {}

    # The Reader protocol, over the base and the pending edits.

    def raw(self, cls: type[Entity], entity_id: str) -> dict[str, Any] | None:
        pending = self.pending.get((cls, entity_id))
        return dict(pending) if pending is not None else self.base.raw(cls, entity_id)

    def ids(self, cls: type[Entity]) -> list[str]:
        ids = self.base.ids(cls)
        known = set(ids)
        return ids + [i for (c, i) in self.pending if c is cls and i not in known]

    def all(self, cls: type[E], *, include_deleted: bool = False) -> list[E]:
        base = self.base.all(cls, include_deleted=True)
        mine = {i: e for (c, i), e in self._valid.items() if c is cls}
        if not mine:
            return [e for e in base if include_deleted or not e.deleted]
        out = [mine.pop(e.id, e) for e in base]
        out += [e for e in mine.values()]
        return sorted(
            (e for e in out if e is not None and (include_deleted or not e.deleted)),  # type: ignore[misc]
            key=lambda e: e.id,
        )

    def check(self, edit: Edit) -> Entity | None:
        """The entity as ``edit`` leaves it (None when it stays stored invalid); raises
        the rule it breaks. Remembered for the edits after it."""
        cls = model.kind_class(edit.kind)
        if cls is Production:
            raise CastroomError("the production is changed with update_production")
        stored = self.raw(cls, edit.id)  # one read per edit: it costs Yrs a transaction
        entity = _CHECKS[edit.op](self, cls, edit, stored)
        self.note(edit, entity, stored)
        return entity

    def note(
        self, edit: Edit, entity: Entity | None = None, stored: dict[str, Any] | None = None
    ) -> None:
        """Take ``edit`` as done for what follows (unchecked: for showing a plan).
        ``stored``: the entity's fields before it, when the caller has just read them."""
        cls = model.kind_class(edit.kind)
        if stored is None and edit.op != "create":
            stored = self.raw(cls, edit.id)
        fields = {**plain_defaults(cls), **(stored or {}), **edit.fields, "id": edit.id}
        if edit.op in ("delete", "restore"):
            fields["deleted"] = edit.op == "delete"
        self.pending[(cls, edit.id)] = fields
        self._valid[(cls, edit.id)] = entity
        if cls is model.Candidate and self._keys is not None:
            self._index_candidate(edit.id, fields)

    def live_candidates(self) -> dict[tuple[Any, Any, Any], set[str]]:
        """(talent, role, era) -> the ids of the live candidates with those."""
        if self._keys is None:
            self._keys = {}
            for candidate in self.base.all(model.Candidate):
                self._index_candidate(candidate.id, model.to_fields(candidate))
            for (cls, entity_id), fields in self.pending.items():
                if cls is model.Candidate:
                    self._index_candidate(entity_id, fields)
        return self._keys

    def _index_candidate(self, entity_id: str, fields: dict[str, Any]) -> None:
        assert self._keys is not None
        old = self._key_of.pop(entity_id, None)
        if old is not None:
            self._keys[old].discard(entity_id)
        if not fields.get("deleted"):
            key = (fields.get("talent_id"), fields.get("role_id"), fields.get("era"))
            self._keys.setdefault(key, set()).add(entity_id)
            self._key_of[entity_id] = key


def _check_create(
    checker: Checker, cls: type[Entity], edit: Edit, stored: dict[str, Any] | None
) -> Entity:
    if stored is not None:
        raise CastroomError(f"{edit.kind} {edit.id} already exists")
    model.check_field_names(cls, edit.fields)
    try:
        entity = model.validate(cls, {**edit.fields, "id": edit.id})
    except ValidationFailed as exc:  # a new entity's id means nothing to the reader
        raise ValidationFailed(exc.kind, exc.field, exc.rule) from None
    _check_references(checker, cls, edit.fields)
    check_era(checker, cls, edit.fields)
    check_duplicate_candidate(checker, cls, edit.fields, {"id": edit.id})
    check_talent_name(checker, cls, edit.fields, {"id": edit.id}, force=edit.force)
    return entity


def _check_change(
    checker: Checker, cls: type[Entity], edit: Edit, stored: dict[str, Any] | None
) -> Entity:
    if stored is None:
        raise NotFound(f"no {edit.kind} with id {edit.id!r}")
    old = {**plain_defaults(cls), **stored}
    entity = validate_change(cls, edit.id, old, edit.fields)
    _check_references(checker, cls, edit.fields, old)
    check_era(checker, cls, edit.fields, old)
    check_duplicate_candidate(checker, cls, edit.fields, old)
    check_talent_name(checker, cls, edit.fields, old, force=edit.force)
    return entity


def _check_flag(
    checker: Checker, cls: type[Entity], edit: Edit, stored: dict[str, Any] | None
) -> Entity | None:
    if stored is None:
        raise NotFound(f"no {edit.kind} with id {edit.id!r}")
    if edit.op == "restore":  # coming back: it must not duplicate a live candidate
        check_duplicate_candidate(checker, cls, stored, stored)
    fields = {**plain_defaults(cls), **stored, "deleted": edit.op == "delete"}
    try:
        return model.validate(cls, fields)
    except ValidationFailed:
        return None  # stored invalid: the flag flips all the same


_CHECKS = {
    "create": _check_create,
    "change": _check_change,
    "delete": _check_flag,
    "restore": _check_flag,
}


def _check_references(
    reader: Reader, cls: type[Entity], fields: dict[str, Any], stored: dict[str, Any] | None = None
) -> None:
    """Every reference written names a live entity, by its id (a plan holds ids)."""
    resolved = resolve_references(reader, cls, fields, stored=stored)
    for name, value in resolved.items():
        if value != fields.get(name) and (cls.entity_kind, name) in model.REFERENCES:
            raise CastroomError(f"{cls.entity_kind}.{name}: {fields[name]!r} is not an id")


def check_duplicate_candidate(
    reader: Reader,
    cls: type[Entity],
    fields: dict[str, Any],
    current: dict[str, Any] | None = None,
) -> None:
    """One live candidate per (talent, role, era): a second one would split its stage,
    ratings and notes in two. Changing the existing one is `set`'s job. ``current``: the
    stored fields of the one being changed (valid or not)."""
    if cls is not model.Candidate or not {"talent_id", "role_id", "era", "deleted"} & (
        fields.keys()
    ):
        return
    now = current or {}
    talent_id, role_id, era = (fields.get(f, now.get(f)) for f in ("talent_id", "role_id", "era"))
    if isinstance(reader, Checker):
        same = sorted(reader.live_candidates().get((talent_id, role_id, era), ()))
    else:
        same = [
            c.id
            for c in reader.all(model.Candidate)
            if (c.talent_id, c.role_id, c.era) == (talent_id, role_id, era)
        ]
    other = next((i for i in same if i != now.get("id")), None)
    if other is not None:
        talent = _named(reader, model.Talent, str(talent_id))
        role = _named(reader, model.Role, str(role_id))
        shown = f" ({era})" if era else ""
        short = short_id(other, reader.ids(model.Candidate))
        raise CastroomError(
            f"{talent} is already a candidate for {role}{shown}: candidate {short}"
            f" (change it with `castroom set candidate {short} ...`)"
        )


def _named(reader: Reader, cls: type[Entity], entity_id: str) -> str:
    return label(reader, cls, reader.raw(cls, entity_id) or {"id": entity_id})


def check_era(
    reader: Reader,
    cls: type[Entity],
    fields: dict[str, Any],
    current: dict[str, Any] | None = None,
) -> None:
    """A candidate's or deal's era must be one of its role's eras, when the role has any."""
    if cls not in (model.Candidate, model.Deal) or not {"era", "role_id"} & fields.keys():
        return
    era = fields.get("era", (current or {}).get("era"))
    role_id = fields.get("role_id", (current or {}).get("role_id"))
    stored = reader.raw(model.Role, str(role_id)) if era and role_id else None
    try:
        role = model.validate(model.Role, stored) if stored else None
    except ValidationFailed:
        return  # a role stored invalid: integrity reports it
    if isinstance(role, model.Role) and role.eras and role.era(era) is None:
        known = ", ".join(e.name for e in role.eras)
        raise CastroomError(
            f"{cls.entity_kind}.era: {era!r} is not one of {role.name}'s eras ({known})"
        )
