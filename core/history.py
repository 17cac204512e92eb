"""Who changed what, when: the update log as rows people read, one per entity changed.

The one place the history's rows are made, for ``castroom history`` and the web
dashboard's History view alike.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

import msgspec

from . import model
from .labels import label, own_name
from .money import format_money, money_fields
from .reads import CREATED, UNLISTED, plain_defaults
from .workspace import StoredProduction

if TYPE_CHECKING:
    from .document import CastDocument

Scalar = str | int | float | bool | None


class FieldChange(msgspec.Struct, kw_only=True):
    """A plain field's value before and after one logged update, as stored."""

    field: str
    old: Scalar
    new: Scalar


class HistoryRow(msgspec.Struct, kw_only=True):
    """One entity changed by one logged update (``--json`` field names)."""

    seq: int
    time: str  # ISO 8601, UTC
    member: str
    device: str
    origin: str
    kind: str
    entity_id: str
    label: str
    fields: list[str]
    #: What people read: "stage: offer → booked", "deleted", "restored", or a field's
    #: name when its values were not kept (a Y.Text, a list, a large merge).
    changes: list[str]
    values: list[FieldChange]


def history_rows(
    production: StoredProduction, *, limit: int, entity: str | None = None
) -> list[HistoryRow]:
    """The newest ``limit`` changes (rows, not log entries), newest first."""
    rows = []
    for entry, collection, entity_id, fields in production.history_changes(
        limit=limit, entity=entity
    ):
        values = _values(collection, entry.values.get((collection, entity_id), {}))
        shown = history_fields(fields)
        rows.append(
            HistoryRow(
                seq=entry.seq,
                time=dt.datetime.fromtimestamp(entry.ts, dt.UTC).isoformat(timespec="seconds"),
                member=entry.member,
                device=entry.device,
                origin=entry.origin,
                kind=kind_name(collection),
                entity_id=entity_id,
                label=_label(production, collection, entity_id),
                fields=shown,
                changes=_described(production.doc, collection, shown, values),
                values=values,
            )
        )
    return rows


def _class(collection: str) -> type[model.Entity] | None:
    return model.Production if collection == "production" else model.COLLECTIONS.get(collection)


def _values(collection: str, stored: dict[str, list[Any]]) -> list[FieldChange]:
    """The logged values, an absent one read as the field's default (as the model does)."""
    cls = _class(collection)
    defaults = plain_defaults(cls) if cls is not None else {}
    return [
        FieldChange(
            field=name,
            old=defaults.get(name) if old is None else old,
            new=defaults.get(name) if new is None else new,
        )
        for name, (old, new) in sorted(stored.items())
    ]


def _described(
    doc: CastDocument, collection: str, fields: list[str], values: list[FieldChange]
) -> list[str]:
    """Each changed field in people's words, in the order of ``fields``."""
    by_name = {v.field: v for v in values}
    cls = _class(collection)
    out = []
    for name in fields:
        change = by_name.get(name)
        if change is None and name == "deleted":
            out.append("deleted or restored")  # logged before values were (format 0)
        elif change is None or cls is None:
            out.append(name)
        elif name == "deleted" and isinstance(change.new, bool):
            out.append("deleted" if change.new else "restored")
        else:
            old, new = (_shown(doc, cls, name, v) for v in (change.old, change.new))
            out.append(f"{name}: {old} → {new}")
    return out


def _shown(doc: CastDocument, cls: type[model.Entity], field: str, value: Scalar) -> str:
    """A field's value as people write it: money in the production's currency, an id as
    the name of what it refers to."""
    if value is None or value == "":
        return "(none)"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | float) and field in money_fields(cls):
        return format_money(int(value), doc.currency)
    target = model.REFERENCES.get((cls.entity_kind, field))
    if target is not None and isinstance(value, str):
        for kind in model.reference_kinds(cls.entity_kind, field, target):
            kind_cls = model.kind_class(kind)
            if (data := doc.raw(kind_cls, value)) is not None:
                return label(doc, kind_cls, data, default=value)
    return str(value)


def kind_name(collection: str) -> str:
    cls = model.COLLECTIONS.get(collection)
    return cls.entity_kind if cls else collection


def history_fields(fields: list[str]) -> list[str]:
    if CREATED in fields:
        return ["(created)"]
    named = sorted(f for f in fields if f != UNLISTED)
    return [*named, "(fields not itemised: a large merge)"] if UNLISTED in fields else named


def _label(production: StoredProduction, collection: str, entity_id: str) -> str:
    """The entity's label ("" when it has none: the table shows the id), valid or not."""
    cls = model.COLLECTIONS.get(collection)
    doc = production.doc
    if cls is None:
        return own_name(doc.production_fields()) if collection == "production" else ""
    return label(doc, cls, doc.raw(cls, entity_id) or {}, default="")
