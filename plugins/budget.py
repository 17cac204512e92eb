"""Built-in plugin: the day-out-of-days, cast cost, budget findings and ``castroom budget``.

The cost itself (the day-out-of-days codes, what each deal costs, the report) is core's
one cost function, :mod:`castroom.core.costing`, shared with the scheduler and
contingency; this plugin answers ``castroom_cost_report`` with it, turns the report into
findings and prints it.

Findings: ``over-cap`` (total above the production's ``budget_cap``), ``over-rate-cap`` (a
deal's day rate above its role's ``rate_cap``, a day rate), ``booked-without-deal`` and
``deal-unknown`` (a deal naming a talent or role that does not exist).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from castroom.core.api import (  # noqa: F401 (the names tests and third parties use)
    BoardDay,
    BudgetReport,
    CastroomError,
    CommandContext,
    CostLine,
    DayOutOfDays,
    DealCost,
    DoodDay,
    DoodRow,
    EntityRef,
    Finding,
    Subtotal,
    Talent,
    budget_report,
    collector_paused,
    day_out_of_days,
    deal_cost,
    drop_after_days,
    emit_json,
    format_money,
    hookimpl,
    ordered_days,
    pass_command,
    plain_console,
    print_table,
    report_for,
    schedule_codes,
)

if TYPE_CHECKING:
    from castroom.core.api import ProductionView


def budget_findings(view: ProductionView, report: BudgetReport) -> list[Finding]:
    """Over-cap, over-rate-cap, booked-without-deal and deal-unknown findings."""
    money = lambda minor: format_money(minor, report.currency)  # noqa: E731
    out = []
    if report.over_cap and report.cap is not None:
        top = ", ".join(f"{s.name} {money(s.total)}" for s in report.by_talent[:3])
        out.append(
            Finding(
                code="over-cap",
                severity="error",
                message=f"cast cost {money(report.total)} is over the cap {money(report.cap)} "
                f"by {money(report.total - report.cap)} (largest: {top})",
                entities=(
                    EntityRef(
                        kind="production", id=view.production.id, label=view.production.title
                    ),
                ),
                fix="renegotiate or cut deals, reschedule to fewer days, or raise budget_cap",
            )
        )
    for line in report.lines:
        if view.find(Talent, line.talent_id) is None or line.role_id not in view.roles:
            missing = "talent" if view.find(Talent, line.talent_id) is None else "role"
            missing_id = line.talent_id if missing == "talent" else line.role_id
            # One stored invalid (a peer's edit) exists but is skipped: say which it is.
            invalid = view.raw(view.kind_of(missing), missing_id) is not None
            why = "that is invalid (see `castroom invalid`)" if invalid else "that does not exist"
            out.append(
                Finding(
                    code="deal-unknown",
                    severity="warning",
                    message=f"deal {view.short_id('deal', line.deal_id)} names a {missing}"
                    f" {why} ({view.short_id(missing, missing_id)})",
                    entities=(EntityRef(kind="deal", id=line.deal_id),),
                    fix="fix the deal's talent_id/role_id, or cancel it",
                )
            )
            continue
        if (
            not line.counted
            or line.rate_cap is None
            or line.day_rate is None
            or line.day_rate <= line.rate_cap
        ):
            continue
        out.append(
            Finding(
                code="over-rate-cap",
                severity="error",
                message=f"{line.talent}'s deal for {line.role} is {money(line.day_rate)} a day, "
                f"over the role's rate cap {money(line.rate_cap)} by "
                f"{money(line.day_rate - line.rate_cap)}",
                entities=(
                    EntityRef(kind="deal", id=line.deal_id),
                    EntityRef(kind="talent", id=line.talent_id, label=line.talent),
                    EntityRef(kind="role", id=line.role_id, label=line.role),
                ),
                fix="renegotiate the rate, or raise the role's rate_cap",
            )
        )
    for talent_id, role_id in report.booked_without_deal:
        talent, role = view.get(Talent, talent_id), view.roles.get(role_id)
        role_name = role.name if role else role_id
        out.append(
            Finding(
                code="booked-without-deal",
                severity="warning",
                message=f"{talent.name} is booked for {role_name} with no deal: the cost is "
                "missing from the budget",
                entities=(
                    EntityRef(kind="talent", id=talent_id, label=talent.name),
                    EntityRef(kind="role", id=role_id, label=role_name),
                ),
                fix=f"castroom add deal talent_id={view.short_id(Talent, talent_id)}"
                f" role_id={view.short_id('role', role_id)} rate=...",
            )
        )
    return out


# -- hooks ------------------------------------------------------------------------------------


@hookimpl(trylast=True)
def castroom_cost_report(view: ProductionView) -> BudgetReport:
    return budget_report(view)


@hookimpl(trylast=True)
def castroom_check(view: ProductionView) -> list[Finding]:
    return budget_findings(view, report_for(view))


@hookimpl(trylast=True)
def castroom_register_commands(cli: click.Group) -> None:
    @cli.command(name="budget")
    @click.option("--json", "as_json", is_flag=True, help="The full report as JSON.")
    @pass_command
    def budget_cmd(obj: CommandContext, as_json: bool) -> None:
        """Cast cost per actor and role, and the total against the cap."""
        with collector_paused(command=True):  # bounded: one report
            view = obj.view()
            result = obj.plugins.cost_report(view)
            if result is None:
                raise CastroomError("no plugin produced a cost report")
            report = result
            if as_json:
                emit_json(report)
            else:
                _print_report(obj, report, view)
        for failure in obj.plugins.failures:
            if failure.hook == "castroom_cost_report":
                click.echo(f"Warning: {failure}", err=True)


def _deal_table(report: BudgetReport, money: Any) -> tuple[Any, int]:
    """Deals as a table that fits 80 columns: text folds (a deal's role, talent and
    status share one column), money never does. A deal's base, overtime and fringe stand
    in one column, one amount a line, under a header saying which is which. Returns the
    table and the narrowest width that keeps every amount whole."""
    from rich.table import Table

    rows = []
    for line in report.lines:
        days = f"{line.work_days} work + {line.hold_days} hold"
        if line.billed_days > line.work_days + line.hold_days:
            why = "guaranteed" if line.guaranteed_days >= line.billed_days else "min. 1 week"
            days += f", billed {line.billed_days} ({why})"
        status = line.status + ("" if line.counted else " (not counted)")
        status += " (projected days)" if line.projected and line.counted else ""
        era = f" ({line.era})" if line.era else ""
        parts = (money(line.base), money(line.overtime), money(line.fringe))
        rows.append(
            (
                f"{line.role}{era} / {line.talent}: {status}",
                f"{money(line.rate)}\n/{line.unit}",
                days,
                "\n".join(parts),
                money(line.total),
            )
        )
    table = Table(title="cast cost by deal")
    readable = len("(guaranteed)")  # the widest word of days: text narrower would fold words
    columns = ("deal", "rate", "days", "base\novertime\nfringe", "total")
    widths = []
    for i, column in enumerate(columns):
        widest = max(
            len(part) for text in (column, *(row[i] for row in rows)) for part in text.split("\n")
        )
        if column in ("deal", "days"):  # text folds to leave room for the money
            table.add_column(
                column, overflow="fold", justify="right" if column == "days" else "left"
            )
            widths.append(min(widest, readable))
        else:  # money is never cut or wrapped: its column is as wide as its widest amount
            style = "bold" if column == "total" else ""
            table.add_column(column, justify="right", no_wrap=True, min_width=widest, style=style)
            widths.append(widest)
    for row in rows:
        table.add_row(*row)
    return table, sum(widths) + 3 * len(widths) + 1  # 3 a column: padding and rules


def _print_report(obj: Any, report: BudgetReport, view: ProductionView) -> None:
    """The report as tables; ``view`` names booked talents with no deal and their roles
    (the report only carries their ids)."""
    from rich.table import Table

    money = lambda minor: format_money(minor, report.currency)  # noqa: E731
    if not report.lines:
        click.echo("No deals yet (castroom add deal talent_id=... role_id=... rate=...).")
    table, width = _deal_table(report, money)
    # Rich squeezes every column, money too, when the table cannot fit: never print
    # narrower than the amounts plus a readable width of text; a line too wide for the
    # terminal beats a cut amount (amounts of millions a week still fit 80 columns).
    console = plain_console(width=max(obj.console.width, width), highlight=False)
    if report.lines:
        print_table(console, table)
    for title, subs in (("by actor", report.by_talent), ("by role", report.by_role)):
        if not subs:
            continue
        sub_table = Table(title=title)
        sub_table.add_column("name", overflow="fold")
        sub_table.add_column("deals", justify="right", no_wrap=True)
        sub_table.add_column("total", justify="right", no_wrap=True)
        for sub in subs:
            sub_table.add_row(sub.name, str(sub.deals), money(sub.total))
        print_table(console, sub_table)
    if report.booked_without_deal:
        click.echo("Booked with no deal (their cost is missing from the total):")
        for talent_id, role_id in report.booked_without_deal:
            talent, role = view.short_id(Talent, talent_id), view.short_id("role", role_id)
            found, cast = view.find(Talent, talent_id), view.roles.get(role_id)
            click.echo(
                f"  {found.name if found else talent} as {cast.name if cast else role}:"
                f" castroom add deal talent_id={talent} role_id={role} rate=..."
            )
    if report.cap is None:
        click.echo(f"Total: {money(report.total)} (no budget cap set)")
    else:
        state = "OVER" if report.over_cap else "within"
        remaining = report.remaining or 0
        click.echo(
            f"Total: {money(report.total)} of cap {money(report.cap)}: {state} "
            f"({'over by ' + money(-remaining) if report.over_cap else money(remaining) + ' left'})"
        )
