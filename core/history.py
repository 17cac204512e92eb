"""Who changed what, when: the update log as rows people read, one per entity changed.

The one place the history's rows are made, for ``castroom history`` and the web
dashboard's History view alike.
"""

from __future__ import annotations

import datetime as dt

import msgspec

from . import model
from .document import CREATED, UNLISTED
from .labels import label, own_name
from .workspace import StoredProduction


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


def history_rows(
    production: StoredProduction, *, limit: int, entity: str | None = None
) -> list[HistoryRow]:
    """The newest ``limit`` changes (rows, not log entries), newest first."""
    return [
        HistoryRow(
            seq=entry.seq,
            time=dt.datetime.fromtimestamp(entry.ts, dt.UTC).isoformat(timespec="seconds"),
            member=entry.member,
            device=entry.device,
            origin=entry.origin,
            kind=kind_name(collection),
            entity_id=entity_id,
            label=_label(production, collection, entity_id),
            fields=history_fields(fields),
        )
        for entry, collection, entity_id, fields in production.history_changes(
            limit=limit, entity=entity
        )
    ]


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
