"""``history``, ``compact``, ``invalid`` and ``quarantine``: what the update log and the
model say."""

from __future__ import annotations

import datetime as dt
import os
import sys
from pathlib import Path

import click
import msgspec

from .. import model
from ..commands import emit_json
from ..errors import CastroomError
from ..history import history_rows
from ..labels import ShortIds, called
from ..media import collect, size_words
from ..resolve import resolve_any
from ..storage import QuarantinedUpdate
from ..workspace import StoredProduction
from .context import Context, kind_arg, pass_ctx
from .root import cli


@cli.command()
@click.option("--limit", default=30, show_default=True, help="How many rows to show.")
@click.option("--entity", help="Only changes to this entity: an id, id prefix or name.")
@click.option("--kind", "kind", help="The --entity's kind, when a name is used by several.")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def history(obj: Context, limit: int, entity: str | None, kind: str | None, as_json: bool) -> None:
    """Who changed what, when, newest first: each field's old → new value."""
    production = obj.production()
    if entity is not None:
        entity = _history_entity(production, entity, kind)
    # --limit counts the rows shown (one per entity changed), not log entries.
    found = history_rows(production, limit=limit, entity=entity)
    rows = [msgspec.to_builtins(row) for row in found]
    if as_json:
        emit_json(rows)
        return
    from rich.table import Table

    table = Table(title="history (newest first)")
    for column in ("time", "who", "kind", "entity"):
        table.add_column(column, overflow="fold")
    # The widest column: one change per line, each folded only when it must be.
    table.add_column("changes", overflow="fold", min_width=26)
    for row in rows:
        table.add_row(
            row["time"][:16].replace("T", "\n"),  # the date above the time: narrower
            row["member"] if row["origin"] == "local" else f"{row['member']} ({row['origin']})",
            row["kind"],
            row["label"] or row["entity_id"],
            "\n".join(row["changes"]),
        )
    obj.console.print(table)


def _history_entity(production: StoredProduction, ref: str, kind: str | None) -> str:
    """The id ``--entity`` means: resolved in ``kind``, or across every kind (an entity
    stored invalid has a history too)."""
    if ref == production.id:
        return ref
    if kind:
        kind_arg(kind, "history")  # the production itself is not a --kind
    return resolve_any(production.doc, ref, kind)[1]


@cli.command()
@pass_ctx
def compact(obj: Context) -> None:
    """Fold the update log into a snapshot (history of who/what/when is kept), and
    remove media files no live entity has used for the grace days (media.grace_days)."""
    folded, size = obj.production().compact()
    click.echo(f"Folded {folded} updates into a snapshot of {size:,} bytes")
    collected = collect(obj.workspace())
    if collected.removed:
        click.echo(
            f"Removed {collected.removed} unused media file(s),"
            f" {size_words(collected.removed_bytes)}"
        )
    if collected.kept:
        click.echo(
            f"Kept {collected.kept} unused media file(s), {size_words(collected.kept_bytes)},"
            " within their grace days"
        )


@cli.command()
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def invalid(obj: Context, as_json: bool) -> None:
    """Entities that break a model rule (e.g. edited on an older version elsewhere)."""
    production = obj.production(read_only=True)
    items = production.invalid()
    if as_json:
        emit_json([{**item._asdict(), "device": device} for item, device in items])
        return
    if not items:
        click.echo("No invalid entities.")
    doc = production.doc
    # Short ids worked out once per kind: per entity, each compared its id with every
    # other (10,000 invalid talents: 117 s).
    shorts: dict[str, ShortIds] = {}
    for item, device in items:
        cls = model.kind_class(item.kind)
        if item.kind not in shorts:
            shorts[item.kind] = ShortIds(doc.ids(cls))
        click.echo(
            f"{called(doc, cls, item.id, short=shorts[item.kind][item.id])}:"
            f" {item.field or '-'}: {item.rule} (last written by device {device})"
        )
    if items:
        sys.exit(1)


@cli.command()
@click.option(
    "--export",
    "folder",
    type=click.Path(file_okay=False, path_type=Path),
    help="Also write each quarantined update to FOLDER/<entry>.yupd (the bytes as stored).",
)
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def quarantine(obj: Context, folder: Path | None, as_json: bool) -> None:
    """Stored updates that no longer load, moved out of the log (kept, never loaded)."""
    rows = obj.production().quarantined()
    written = [_export(folder, row) for row in rows] if folder is not None else []
    if as_json:
        emit_json(
            [
                {
                    "entry": row.seq,
                    "stored": _when(row.ts),
                    "moved": _when(row.moved),
                    "member": row.member,
                    "device": row.device,
                    "origin": row.origin,
                    "reason": row.reason,
                    "bytes": len(row.data),
                    **({"file": str(written[i])} if written else {}),
                }
                for i, row in enumerate(rows)
            ]
        )
        return
    if not rows:
        click.echo("No quarantined updates.")
    for i, row in enumerate(rows):
        who = f"{row.member or '?'} on device {row.device or '?'} ({row.origin or '?'})"
        click.echo(
            f"entry {row.seq}: {size_words(len(row.data))} from {who}, stored {_when(row.ts)},"
            f" moved {_when(row.moved)}: {row.reason}"
        )
        if written:
            click.echo(f"  written to {written[i]}")


def _when(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).isoformat(timespec="seconds") if ts else ""


def _export(folder: Path, row: QuarantinedUpdate) -> Path:
    """Write one quarantined update's bytes into ``folder`` (made if missing)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / f"{row.seq}.yupd"
        # Owner-only, as the database is: the bytes hold what the team wrote.
        with os.fdopen(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as f:
            f.write(row.data)
    except OSError as exc:
        raise CastroomError(f"cannot write the quarantined updates to {folder}: {exc}") from None
    return target
