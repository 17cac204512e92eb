"""``add``, ``list``, ``show``, ``set``, ``delete``, ``restore``: entities of every kind."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from .. import collector, model
from ..commands import emit_json
from ..fields import parse_assignments, parse_filters
from ..labels import called, label, short_id, short_ids
from ..printing import print_table
from .context import Context, currency_of, display, kind_arg, pass_ctx
from .root import cli

if TYPE_CHECKING:
    from rich.table import Table

    from ..document import CastDocument
    from ..storage import AtticEntry

#: Columns shown by ``castroom list KIND`` for people (``--json`` has every field).
COLUMNS: dict[str, tuple[str, ...]] = {
    "role": ("name", "kind", "age_min", "age_max", "status", "rate_cap"),
    "talent": ("name", "playing_age_min", "playing_age_max", "rate", "agent", "union"),
    "candidate": ("talent_id", "role_id", "era", "stage", "backup_rank"),
    "audition": ("starts_at", "role_id", "place", "chemistry"),
    "scene": ("number", "heading", "story_day", "era", "shoot_day_id"),
    "shoot_day": ("date", "day_number", "location", "call_time"),
    "availability": ("talent_id", "start", "end", "kind", "held_by"),
    "deal": ("talent_id", "role_id", "rate", "unit", "guaranteed_days", "status"),
    "member": ("name", "job", "email"),
}


FORCE = click.option(
    "--force",
    is_flag=True,
    help="Write a talent even if a live one has this name (case and accents aside).",
)


@cli.command(name="add")
@click.argument("kind")
@click.argument("assignments", nargs=-1)
@FORCE
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def add_cmd(
    obj: Context, kind: str, assignments: tuple[str, ...], force: bool, as_json: bool
) -> None:
    """Add an entity: castroom add talent name="Ada Stone" playing_age_min=30"""
    cls = kind_arg(kind, "add")
    doc = obj.production().doc
    fields = parse_assignments(cls, assignments, doc.currency)
    from .. import edits  # with the commands that write: not for list, show

    edit = edits.create(doc, cls, fields, force=force)
    entity = edits.apply(doc, edit).entities[edit.id]
    if as_json:
        emit_json(entity)
    else:
        click.echo(f"Added {called(doc, cls, entity.id)}")


@cli.command(name="list")
@click.argument("kind")
@click.option("--all", "include_deleted", is_flag=True, help="Include deleted entities.")
@click.option(
    "--where",
    "filters",
    multiple=True,
    metavar="FIELD=VALUE",
    help="Keep the ones whose FIELD equals VALUE; for a list field (languages, characters,"
    " ...) the ones whose list holds VALUE. References take an id, id prefix or name."
    " Repeat to require several.",
)
@click.option("--ids", "show_ids", is_flag=True, help="Show references as ids, not names.")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def list_cmd(
    obj: Context,
    kind: str,
    include_deleted: bool,
    filters: tuple[str, ...],
    show_ids: bool,
    as_json: bool,
) -> None:
    """List entities of a kind (singular or plural: talent, talents)."""
    with collector.paused(command=True):  # bounded: one listing
        _list(obj, kind_arg(kind, "list"), include_deleted, filters, show_ids, as_json)


def _list(
    obj: Context,
    cls: type[model.Entity],
    include_deleted: bool,
    filters: tuple[str, ...],
    show_ids: bool,
    as_json: bool,
) -> None:
    production = obj.production(read_only=True)
    tests = parse_filters(production.doc, cls, filters)
    valid = production.doc.all(cls, include_deleted=True)
    # Invalid entities are skipped by all(): say so (on stderr, --json stays clean).
    hidden = len(production.doc.ids(cls)) - len(valid)
    if hidden:
        what = cls.collection if hidden > 1 else cls.entity_kind
        click.echo(f"{hidden} invalid {what} hidden; see `castroom invalid`", err=True)
    entities = [
        e
        for e in valid
        if (include_deleted or not e.deleted) and all(test(model.to_fields(e)) for test in tests)
    ]
    if as_json:
        emit_json(entities)
        return
    print_table(obj.console, _table(production.doc, cls, entities, include_deleted, show_ids))


def _table(
    doc: CastDocument,
    cls: type[model.Entity],
    entities: list[model.Entity],
    include_deleted: bool,
    show_ids: bool,
) -> Table:
    """People's words: a reference shows what it names (``--ids``: its id), an id its
    short unique prefix, never wrapped."""
    from rich.table import Table

    currency = doc.currency
    shorts = {cls: short_ids(doc.ids(cls))}
    table = Table(title=f"{len(entities)} {cls.collection}")
    table.add_column("id", no_wrap=True)
    columns = COLUMNS[cls.entity_kind] + (("deleted",) if include_deleted else ())
    refers = {c: REFERS[(cls.entity_kind, c)] for c in columns if (cls.entity_kind, c) in REFERS}
    for column in columns:
        if column in refers and not show_ids:
            table.add_column(column.removesuffix("_id").replace("_", " "), overflow="fold")
        else:
            table.add_column(column, overflow="fold", no_wrap=column in refers)
    for entity in entities:
        cells = [shorts[cls].get(entity.id, entity.id)]
        for column in columns:
            value, target = getattr(entity, column), refers.get(column)
            if target is None or not isinstance(value, str):
                cells.append(display(cls, column, value, currency))
            elif show_ids:
                short = shorts.setdefault(target, short_ids(doc.ids(target)))
                cells.append(short.get(value, value))
            else:
                cells.append(label(doc, target, doc.raw(target, value) or {}, default=value))
        table.add_row(*cells)
    return table


#: Reference columns shown by what they name (a scene's shoot day by its date).
REFERS: dict[tuple[str, str], type[model.Entity]] = {
    (owner, field): model.kind_class(target)
    for (owner, field), target in model.REFERENCES.items()
    if field.endswith("_id")
}


@cli.command()
@click.argument("kind")
@click.argument("ref")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def show(obj: Context, kind: str, ref: str, as_json: bool) -> None:
    """Show one entity, by id, id prefix, or name."""
    cls = kind_arg(kind, "show")
    production = obj.production(read_only=True)
    doc = production.doc
    entity_id = doc.resolve_id(cls, ref, include_deleted=True)
    # What is stored, valid or not: an entity a peer left invalid must be seen to be fixed.
    fields = doc.stored_fields(cls, entity_id)
    short = short_id(entity_id, doc.ids(cls))
    for problem in doc.problems(cls, entity_id):
        click.echo(
            f"Warning: {called(doc, cls, entity_id)} is invalid: {problem.field or '-'}:"
            f" {problem.rule} (fix it with `castroom set {cls.entity_kind} {short}"
            f" {problem.field or 'FIELD'}=...`)",
            err=True,
        )
    if as_json:
        emit_json(fields)
        return
    currency = currency_of(production)
    from rich.table import Table

    table = Table(show_header=False, title=called(doc, cls, entity_id))
    table.add_column("field", style="bold")
    table.add_column("value", overflow="fold")
    for name in cls.__struct_fields__:
        value = fields.get(name)
        shown = _attached(value) if name == "media" else display(cls, name, value, currency)
        table.add_row(name, shown)
    obj.console.print(table)


def _attached(media: object) -> str:
    """The media map in a few words (`castroom media list` has the rest)."""
    if not isinstance(media, dict) or not media:
        return ""
    names = [
        f"{r.get('name', '?')} ({r.get('kind', '?')})" if isinstance(r, dict) else "?"
        for r in media.values()
    ]
    return ", ".join(sorted(names))


@cli.command(name="set")
@click.argument("kind")
@click.argument("ref")
# Not required by click, so `set production start_date=...` reaches kind_arg, which
# names `production set`, instead of a usage error about the missing assignments.
@click.argument("assignments", nargs=-1, metavar="ASSIGNMENTS...")
@FORCE
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def set_cmd(
    obj: Context, kind: str, ref: str, assignments: tuple[str, ...], force: bool, as_json: bool
) -> None:
    """Change fields of an entity: castroom set talent "Ada Stone" rate=1500

    References take an id, id prefix or name. A JSON object or list replaces the whole
    field: ratings='{"Rosa": 4}' drops the candidate's other ratings, so give them all
    (a rating another member gives offline at the same time is lost: last write wins)."""
    cls = kind_arg(kind, "set")
    if not assignments:
        raise click.UsageError("Missing argument 'ASSIGNMENTS...'.")
    doc = obj.production().doc
    # The id, not the entity: one stored invalid is repaired here (update() validates the
    # stored fields with the given ones, and writes only the given ones).
    entity_id = doc.resolve_id(cls, ref, include_deleted=True)
    fields = parse_assignments(cls, assignments, doc.currency)
    from .. import edits  # with the commands that write: not for list, show

    edit = edits.change(doc, cls, entity_id, fields, force=force)
    updated = edits.apply(doc, edit).entities[entity_id]
    if as_json:
        emit_json(updated)
    else:
        click.echo(f"Updated {called(doc, cls, entity_id)}")


@cli.command()
@click.argument("kind")
@click.argument("ref")
@click.option("--json", "as_json", is_flag=True, help="Print the entity (with its id).")
@pass_ctx
def delete(obj: Context, kind: str, ref: str, as_json: bool) -> None:
    """Delete an entity (soft: `castroom restore` brings it back)."""
    cls = kind_arg(kind, "delete")
    doc = obj.production().doc
    # A live match wins; a deleted one only when nothing live matches (then: say so).
    # By id and stored fields: an entity stored invalid can be deleted too.
    entity_id = doc.resolve_id(cls, ref, include_deleted=True)
    _flag(doc, cls, entity_id, as_json, back=False)


@cli.command()
@click.argument("kind", required=False)
@click.argument("ref", required=False)
@click.option(
    "--from-history",
    is_flag=True,
    help="Bring back every entity a peer removed outright (hard-deleted), as it was.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the entity (with its id).")
@pass_ctx
def restore(
    obj: Context, kind: str | None, ref: str | None, from_history: bool, as_json: bool
) -> None:
    """Bring back a deleted entity (KIND REF), or with --from-history every entity a
    peer hard-deleted (from the attic the update log keeps, which compaction keeps)."""
    if from_history:
        _restore_from_history(obj, as_json)
        return
    if kind is None or ref is None:
        raise click.UsageError("give KIND and REF, or --from-history")
    cls = kind_arg(kind, "restore")
    doc = obj.production().doc
    entity_id = doc.resolve_id(cls, ref, prefer_deleted=True)
    _flag(doc, cls, entity_id, as_json, back=True)


def _flag(
    doc: CastDocument, cls: type[model.Entity], entity_id: str, as_json: bool, *, back: bool
) -> None:
    """Delete (``back``: restore) through a plan: nothing to do is said, not written."""
    from .. import edits  # with the commands that write: not for list, show

    plan = edits.deletion(doc, cls, entity_id, back=back)
    if plan.edits:
        edits.apply(doc, plan)
        message = f"{'Restored' if back else 'Deleted'} {called(doc, cls, entity_id)}"
    else:
        message = plan.reason
    if as_json:
        emit_json(doc.stored_fields(cls, entity_id))
    else:
        click.echo(message)


def _restore_from_history(obj: Context, as_json: bool) -> None:
    restored, failed = obj.production().restore_from_history()
    if as_json:
        emit_json(
            {
                "restored": [{"collection": e.collection, "id": e.entity} for e in restored],
                "failed": [
                    {"collection": e.collection, "id": e.entity, "error": why} for e, why in failed
                ],
            }
        )
    elif not restored and not failed:
        click.echo("Nothing to restore: no entity was hard-deleted by a peer")
    doc = obj.production().doc
    for entry in restored if not as_json else []:
        click.echo(f"Restored {_attic(doc, entry)}, hard-deleted by device {entry.device}")
    for entry, why in failed:
        click.echo(f"Error: cannot restore {_attic(doc, entry)}: {why}", err=True)
    if failed:
        sys.exit(1)


def _attic(doc: CastDocument, entry: AtticEntry) -> str:
    """An entity from the attic, as messages name it (the production: by its title)."""
    cls = model.COLLECTIONS.get(entry.collection)
    if cls is None:
        return f"{entry.collection} {label(doc, model.Production, entry.data)}"
    return called(doc, cls, entry.entity, entry.data)
