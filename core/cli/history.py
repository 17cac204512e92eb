"""``history``, ``compact`` and ``invalid``: what the update log and the model say."""

from __future__ import annotations

import datetime as dt
import sys
from typing import Any

import click
from rich.table import Table

from .. import model
from ..document import CREATED, UNLISTED
from ..errors import Ambiguous, NotFound
from ..labels import label, own_name
from ..workspace import StoredProduction
from .context import Context, emit_json, kind_arg, pass_ctx
from .root import cli


@cli.command()
@click.option("--limit", default=30, show_default=True, help="How many rows to show.")
@click.option("--entity", help="Only changes to this entity: an id, id prefix or name.")
@click.option("--kind", "kind", help="The --entity's kind, when a name is used by several.")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def history(obj: Context, limit: int, entity: str | None, kind: str | None, as_json: bool) -> None:
    """Who changed which entity and fields, when; newest first."""
    production = obj.production()
    if entity is not None:
        entity = _history_entity(production, entity, kind)
    # --limit counts the rows shown (one per entity changed), not log entries.
    rows: list[dict[str, Any]] = []
    for entry, collection, entity_id, fields in production.history_changes(
        limit=limit, entity=entity
    ):
        rows.append(
            {
                "seq": entry.seq,
                "time": dt.datetime.fromtimestamp(entry.ts, dt.UTC).isoformat(timespec="seconds"),
                "member": entry.member,
                "device": entry.device,
                "origin": entry.origin,
                "kind": _kind_name(collection),
                "entity_id": entity_id,
                "label": _label(production, collection, entity_id),
                "fields": _history_fields(fields),
            }
        )
    if as_json:
        emit_json(rows)
        return
    table = Table(title="history (newest first)")
    for column in ("time", "member", "origin", "kind", "entity", "fields"):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(
            row["time"][:19].replace("T", " "),
            row["member"],
            row["origin"],
            row["kind"],
            row["label"] or row["entity_id"],
            ", ".join(row["fields"]),
        )
    obj.console.print(table)


def _history_entity(production: StoredProduction, ref: str, kind: str | None) -> str:
    """The id ``--entity`` means: resolved in ``kind``, or across every kind (an id as
    it is, so the history of an entity stored invalid still shows)."""
    doc = production.doc
    if ref == production.id:
        return ref
    kinds = [kind_arg(kind)] if kind else list(model.KINDS.values())
    if any(doc.raw(cls, ref) is not None for cls in kinds):
        return ref
    found: list[tuple[type[model.Entity], str]] = []
    for cls in kinds:
        try:  # resolve_id: an entity stored invalid has a history too
            found.append((cls, doc.resolve_id(cls, ref, include_deleted=True)))
        except NotFound:
            continue  # (Ambiguous within one kind: its message lists the matches)
    if not found:
        raise NotFound(f"no entity matching {ref!r}")
    if len(found) > 1:
        which = ", ".join(f"{c.entity_kind} {i}" for c, i in found[:5])
        raise Ambiguous(f"{ref!r} matches {which}; use --kind or the id")
    return found[0][1]


def _kind_name(collection: str) -> str:
    cls = model.COLLECTIONS.get(collection)
    return cls.entity_kind if cls else collection


@cli.command()
@pass_ctx
def compact(obj: Context) -> None:
    """Fold the update log into a snapshot (history of who/what/when is kept)."""
    folded, size = obj.production().compact()
    click.echo(f"Folded {folded} updates into a snapshot of {size:,} bytes")


@cli.command()
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def invalid(obj: Context, as_json: bool) -> None:
    """Entities that break a model rule (e.g. edited on an older version elsewhere)."""
    items = obj.production().invalid()
    if as_json:
        emit_json([{**item._asdict(), "device": device} for item, device in items])
        return
    if not items:
        click.echo("No invalid entities.")
    for item, device in items:
        click.echo(
            f"{item.kind} {item.id}: {item.field or '-'}: {item.rule}"
            f" (last written by device {device})"
        )
    if items:
        sys.exit(1)


def _history_fields(fields: list[str]) -> list[str]:
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
