"""``schedule``: propose the board of least cast cost (the first plugin's answer to
``castroom_propose_schedule``), print it, and with ``--apply`` write it."""

from __future__ import annotations

import datetime as dt

import click

from ..board_edits import apply_board
from ..commands import emit_json
from ..contracts import SchedulePlan, ScheduleRequest
from ..costing import BoardDay, day_out_of_days
from ..errors import CastroomError, NotFound
from ..money import format_money
from ..view import ProductionView
from .context import Context, pass_ctx
from .root import cli


def resolve_day(view: ProductionView, ref: str) -> str:
    """A shoot day by id, id prefix, date (2027-03-01) or day number (3 or D3)."""
    days = view.shoot_days
    if ref in days:
        return ref
    try:
        date = dt.date.fromisoformat(ref)
    except ValueError:
        date = None
    number = ref[1:] if ref[:1] in "dD" and ref[1:].isdigit() else ref
    found = [
        d.id
        for d in days.values()
        if d.date == date
        or (number.isdigit() and d.day_number == int(number))
        or d.id.startswith(ref)
    ]
    if not found:
        raise NotFound(f"no shoot day {ref!r} (a shoot day id, a date or a day number)")
    if len(set(found)) > 1:
        raise CastroomError(f"{ref!r} matches {len(set(found))} shoot days: use the id")
    return found[0]


@cli.command(name="schedule")
@click.option("--apply", "apply_", is_flag=True, help="Write the plan (one change).")
@click.option("--json", "as_json", is_flag=True, help="The plan as JSON (money in minor units).")
@click.option(
    "--time-limit",
    type=click.FloatRange(0.1, 3600),
    default=10.0,
    show_default=True,
    help="Seconds the solver may take.",
)
@click.option(
    "--lock",
    "locks",
    multiple=True,
    metavar="DAY",
    help="Keep this shoot day as it is (id, date or day number); repeatable.",
)
@click.option("--repair", is_flag=True, help="Move as few scenes as possible.")
@pass_ctx
def schedule_cmd(
    obj: Context,
    apply_: bool,
    as_json: bool,
    time_limit: float,
    locks: tuple[str, ...],
    repair: bool,
) -> None:
    """Order the board (scenes on shoot days) for the least cast cost, as the budget
    computes it: exact where it can be, with a proven lower bound and the gap."""
    production = obj.production()
    view = ProductionView(production.doc, origin_of=production.origin_of)
    request = ScheduleRequest(
        time_limit=time_limit,
        locks=[resolve_day(view, ref) for ref in locks],
        repair=repair,
    )
    plan = obj.plugins.propose_schedule(view, request)
    failures = [f for f in obj.plugins.failures if f.hook == "castroom_propose_schedule"]
    if plan is None:
        raise CastroomError("no plugin proposed a schedule")
    if as_json:
        emit_json(plan)
    else:
        _print_plan(view, plan)
    if apply_:
        counts = apply_board(production.doc, plan)
        if not as_json:
            click.echo(
                f"Applied: {counts['added']} shoot day(s) added, {counts['updated']} updated, "
                f"{counts['deleted']} emptied and deleted, {counts['scenes']} scene(s) moved."
            )
    for failure in failures:
        click.echo(f"Warning: {failure}", err=True)


def _print_plan(view: ProductionView, plan: SchedulePlan) -> None:
    from rich.table import Table

    from ..printing import console as plain_console

    money = lambda minor: format_money(minor, plan.currency)  # noqa: E731
    console = plain_console(highlight=False)
    numbers = {s.id: s.number for s in view.scenes.values()}
    board = Table(title="proposed board")
    for column in ("day", "date", "scenes", "location"):
        board.add_column(column, overflow="fold")
    for n, day in enumerate(plan.days, start=1):
        lock = " (locked)" if day.locked else ""
        scenes = ", ".join(numbers.get(s, s) for s in day.scene_ids)
        board.add_row(f"D{n}{lock}", day.date.isoformat(), scenes, day.location)
    console.print(board)
    grid = day_out_of_days(
        view, days=[BoardDay(date=d.date, scene_ids=d.scene_ids) for d in plan.days]
    )
    if grid.rows:  # plain text: a code per day stays readable however many days
        width = max(len(r.talent) for r in grid.rows)
        click.echo("day-out-of-days")
        click.echo(
            " " * width + " " + "".join(f"{f'D{n}':>5}" for n in range(1, len(grid.days) + 1))
        )
        for row in grid.rows:
            click.echo(row.talent.ljust(width) + " " + "".join(f"{c or '.':>5}" for c in row.codes))
    costs = Table(title="cast cost by actor")
    costs.add_column("actor", overflow="fold")
    for column in ("before", "after", "change"):
        costs.add_column(column, justify="right", no_wrap=True)
    for t in plan.per_talent:
        change = t.cost_after - t.cost_before
        sign = "+" if change > 0 else ("-" if change < 0 else "")
        costs.add_row(
            t.talent, money(t.cost_before), money(t.cost_after), sign + money(abs(change))
        )
    console.print(costs)
    click.echo(f"Total: {money(plan.cost_before)} -> {money(plan.cost)}")
    if plan.optimal:
        click.echo(f"Optimal: proven lower bound {money(plan.lower_bound)} ({plan.method}).")
    else:
        click.echo(
            f"Not proven optimal: lower bound {money(plan.lower_bound)}, gap at most "
            f"{plan.gap:.1%} ({plan.method}, {plan.seconds:.1f} s)."
        )
    click.echo(f"{plan.moved} scene(s) change date.")
    for warning in plan.warnings:
        click.echo(f"Warning: {warning}", err=True)
