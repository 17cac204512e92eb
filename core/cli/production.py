"""``init`` and ``production show/set/delete/restore/list``: the production itself."""

from __future__ import annotations

import contextlib
import typing
from typing import Any

import click

from .. import model
from ..commands import emit_json
from ..errors import CastroomError, NotFound, ValidationFailed
from ..fields import parse_assignments
from ..money import parse_field
from .context import Context, display, pass_ctx
from .root import cli


@cli.command()
@click.option("--production", "title", required=True, help="The production's title.")
@click.option(
    "--kind",
    default="film",
    show_default=True,
    type=click.Choice(typing.get_args(model.ProductionKind)),
)
@click.option("--currency", default="USD", show_default=True)
@click.option(
    "--budget-cap",
    metavar="AMOUNT",
    help="Cast budget cap in the production's currency, as people write it: 2500000,"
    " '$2,500,000.00'.",
)
@click.option(
    "--force", is_flag=True, help="Make the production even if one with this title exists."
)
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def init(
    obj: Context,
    title: str,
    kind: str,
    currency: str,
    budget_cap: str | None,
    force: bool,
    as_json: bool,
) -> None:
    """Create a workspace (if needed) and a production in it."""
    fields: dict[str, Any] = {"kind": kind, "currency": currency}
    if budget_cap is not None:
        fields["budget_cap"] = parse_field(model.Production, "budget_cap", budget_cap, currency)
    # Validate before making anything: a refused init must leave no workspace behind.
    # (A placeholder id: the real one is made with the production.)
    try:
        model.validate(model.Production, {"id": "new", "title": title, **fields})
    except ValidationFailed as exc:
        raise ValidationFailed(exc.kind, exc.field, exc.rule) from None
    if not force:
        # Running init twice must not make a second production with the same title (a
        # deleted one does not count: restore it or make a new one).
        with contextlib.suppress(NotFound):  # no workspace yet
            for pid, known in obj.workspace().productions(include_deleted=False):
                if known.casefold() == title.strip().casefold():
                    raise CastroomError(
                        f"a production titled {known!r} exists here"
                        f" ({obj.workspace().short_ids()[pid]}); use"
                        " --production to work in it, or init --force to make another"
                    )
    workspace = obj.workspace(create=True)
    production = workspace.create_production(title, **fields)
    if as_json:
        emit_json(production.doc.production)
    else:
        short = workspace.short_ids()[str(production.id)]
        click.echo(f"Created production {title!r} ({short}) in {workspace.path}")


@cli.group()
def production() -> None:
    """Show or change the production itself, or list the workspace's productions."""


@production.command(name="show")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def production_show(obj: Context, as_json: bool) -> None:
    """Show the production's fields."""
    doc = obj.production().doc
    try:
        fields = model.to_fields(doc.production)
    except ValidationFailed as exc:
        # Show what is stored, and what is wrong with it, so it can be repaired.
        fields = doc.production_fields()
        click.echo(f"Warning: {exc} (fix it with `castroom production set`)", err=True)
    if as_json:
        emit_json(fields)
        return
    currency = str(fields.get("currency") or "USD")
    for name in model.Production.__struct_fields__:
        click.echo(f"{name}: {display(model.Production, name, fields.get(name), currency)}")


@production.command(name="set")
@click.argument("assignments", nargs=-1, required=True)
@pass_ctx
def production_set(obj: Context, assignments: tuple[str, ...]) -> None:
    """Change the production's fields: castroom production set budget_cap=2500000"""
    if any(pair.partition("=")[0].strip() == "deleted" for pair in assignments):
        raise CastroomError("deleted: use `castroom production delete` (or `restore`)")
    doc = obj.production().doc
    doc.update_production(parse_assignments(model.Production, assignments, doc.currency))
    click.echo("Updated production")


@production.command(name="delete")
@click.argument("ref", required=False)
@pass_ctx
def production_delete(obj: Context, ref: str | None) -> None:
    """Delete a production (soft: hidden from `production list`; `production restore`
    brings it back). REF: id, id prefix or title (default: --production, or the only one).

    A deleted production stays readable with --production (list, show, history,
    reports), but changes to it (add, set, delete, import, ...) are refused until it is
    restored; peers' edits arriving by sync or bundle still merge."""
    production = obj.workspace().production(ref or obj.production_ref)
    title = production.title()
    if production.workspace.is_deleted(str(production.id)):
        click.echo(f"production {title} is already deleted")
        return
    production.doc.update_production({"deleted": True})
    click.echo(
        f"Deleted production {title} ({production.workspace.short_ids()[str(production.id)]})"
    )


@production.command(name="restore")
@click.argument("ref", required=False)
@pass_ctx
def production_restore(obj: Context, ref: str | None) -> None:
    """Bring back a deleted production (REF: id, id prefix or title)."""
    workspace = obj.workspace()
    production_id = workspace.resolve_production(ref or obj.production_ref, prefer_deleted=True)
    production = workspace.production(production_id)
    title = production.title()
    if not workspace.is_deleted(production_id):
        click.echo(f"production {title} is not deleted")
        return
    production.doc.update_production({"deleted": False})
    click.echo(f"Restored production {title} ({workspace.short_ids()[production_id]})")


@production.command(name="list")
@click.option("--all", "include_deleted", is_flag=True, help="Include deleted productions.")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def production_list(obj: Context, include_deleted: bool, as_json: bool) -> None:
    """The productions in this workspace."""
    workspace = obj.workspace()
    known = workspace.productions(include_deleted=include_deleted)
    rows = [{"id": i, "title": t, "deleted": workspace.is_deleted(i)} for i, t in known]
    if as_json:
        emit_json(rows)
        return
    shorts = workspace.short_ids()
    for production_id, title in known:
        gone = "  (deleted)" if workspace.is_deleted(production_id) else ""
        click.echo(f"{shorts[production_id]}  {title}{gone}")
