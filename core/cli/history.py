"""``history``, ``compact`` and ``invalid``: what the update log and the model say."""

from __future__ import annotations

import sys

import click
import msgspec
from rich.table import Table

from .. import model
from ..errors import Ambiguous, NotFound
from ..history import history_rows
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
    found = history_rows(production, limit=limit, entity=entity)
    rows = [msgspec.to_builtins(row) for row in found]
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
