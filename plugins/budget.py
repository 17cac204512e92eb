"""Built-in plugin: the day-out-of-days, cast cost, budget findings and ``castroom budget``.

Money is integer minor units throughout, and every sum is exact integer arithmetic:
fractions (a weekly rate's day, an hourly overtime rate, a fringe percentage; rates and
hours are taken to six decimal places) are carried as integer ratios and rounded once per
component, half up, to a whole minor unit.

The day-out-of-days (DOOD)
    :func:`day_out_of_days` lists the production's shoot days in date order and, for each
    booked actor, a code per day: ``SW`` start work, ``W`` work, ``WF`` work finish, ``SWF``
    a one-day actor, ``H`` hold (a paid day between two work days), and for a gap longer
    than ``drop_after`` calendar days a drop/pickup: ``WD`` work then drop, ``PW`` picked up
    again, ``PWF`` picked up and finished, ``SWD`` start, work, drop, ``PWD`` picked up for
    one day then dropped again. Days between a drop and a pickup are unpaid (code ``""``).
    It is a plain function of a :class:`ProductionView`, reused by the exporters.

Cost of a deal
    Days billed = max(work + hold days, guaranteed days). ``day``: rate x days. ``week``
    (casting practice for a weekly engagement): paid at least one full week, so the billed
    days are never fewer than five; beyond whole weeks each extra day pays 1/5 of the
    weekly rate (a studio week is five shoot days): 3 days cost one week, 7 days a week
    and 2/5, 12 days two weeks and 2/5. Whole weeks are exact; the extra days' fifths are
    rounded once. ``flat``: the rate. Overtime:
    ``overtime_hours`` x (day rate / production ``hours_per_day``) x production
    ``overtime_multiplier`` (a flat deal's day rate is its rate over the billed days).
    Fringe: (base + overtime) x the deal's ``fringe_rate``, else the production's.
    A deal counts towards the total unless it is cancelled, or a draft for a talent who is
    not booked in that role (drafts for several candidates are alternatives, not costs).

Findings: ``over-cap`` (total above the production's ``budget_cap``), ``over-rate-cap`` (a
deal's day rate above its role's ``rate_cap``, a day rate), ``booked-without-deal`` and
``deal-unknown`` (a deal naming a talent or role that does not exist).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import TYPE_CHECKING, Any

import click
import msgspec

from castroom.core.errors import CastroomError
from castroom.core.findings import EntityRef, Finding
from castroom.core.hookspecs import hookimpl
from castroom.core.model import Deal, ShootDay, Talent
from castroom.core.money import format_money
from castroom.core.plugins import coerce_answer

if TYPE_CHECKING:
    from castroom.core.view import ProductionView

#: A gap between two work days longer than this (calendar days) may drop the actor off
#: the payroll and pick them up later (the usual union rule is "more than ten days").
DROP_AFTER_DAYS = 10
WEEK_DAYS = 5
WORK_CODES = frozenset({"SW", "W", "WF", "SWF", "WD", "PW", "PWF", "SWD", "PWD"})


# -- day-out-of-days --------------------------------------------------------------------------


class DoodDay(msgspec.Struct, kw_only=True, frozen=True):
    """One column of the grid: a shoot day."""

    id: str
    date: dt.date
    day_number: int
    location: str = ""


class DoodRow(msgspec.Struct, kw_only=True):
    """One actor's line: a code per shoot day (``""`` = not on the payroll that day)."""

    talent_id: str
    talent: str
    role_ids: list[str]
    roles: list[str]
    codes: list[str]
    work_days: int
    hold_days: int
    drop_days: int
    paid_days: int
    start: dt.date | None
    finish: dt.date | None


class DayOutOfDays(msgspec.Struct, kw_only=True):
    days: list[DoodDay]
    rows: list[DoodRow]


def schedule_codes(
    dates: list[dt.date], work: set[int], drop_after: int = DROP_AFTER_DAYS
) -> list[str]:
    """DOOD codes for one actor: ``dates`` are every shoot day in order, ``work`` the
    indexes of the days they work. See the module docstring for the codes."""
    codes = [""] * len(dates)
    worked = sorted(work)
    if not worked:
        return codes
    # Split the work days into stretches separated by gaps long enough to drop the actor.
    stretches: list[list[int]] = [[worked[0]]]
    for index in worked[1:]:
        if (dates[index] - dates[stretches[-1][-1]]).days > drop_after:
            stretches.append([index])
        else:
            stretches[-1].append(index)
    last = len(stretches) - 1
    for n, stretch in enumerate(stretches):
        first_code = "S" if n == 0 else "P"
        end_code = "F" if n == last else "D"
        for index in range(stretch[0], stretch[-1] + 1):
            codes[index] = "H"
        for index in stretch:
            codes[index] = "W"
        if len(stretch) == 1:
            codes[stretch[0]] = f"{first_code}W{end_code}"
        else:
            codes[stretch[0]] = f"{first_code}W"
            codes[stretch[-1]] = f"W{end_code}"
    return codes


def ordered_days(view: ProductionView) -> list[ShootDay]:
    return sorted(view.shoot_days.values(), key=lambda d: (d.date, d.day_number or 0, d.id))


def _work_index(view: ProductionView, days: list[ShootDay]) -> dict[tuple[str, ...], set[int]]:
    """Day indexes worked, keyed by (talent,), (talent, role), (talent, role, era),
    and the role's own days by ("role", role) and ("role", role, era)."""
    index: dict[tuple[str, ...], set[int]] = defaultdict(set)
    by_day, cast = view.scenes_by_shoot_day, view.scene_cast
    for i, day in enumerate(days):
        for scene in by_day.get(day.id, ()):
            era = scene.era
            for role_id, talent in cast[scene.id]:
                index[("role", role_id)].add(i)
                if era:
                    index[("role", role_id, era)].add(i)
                if talent is not None:
                    index[(talent.id,)].add(i)
                    index[(talent.id, role_id)].add(i)
                    if era:
                        index[(talent.id, role_id, era)].add(i)
    return index


def day_out_of_days(view: ProductionView, *, drop_after: int = DROP_AFTER_DAYS) -> DayOutOfDays:
    """The day-out-of-days grid: every shoot day, and a row per booked actor who works."""
    days = ordered_days(view)
    dates = [d.date for d in days]
    index = _work_index(view, days)
    roles_of: dict[str, list[str]] = defaultdict(list)
    for (role_id, _era), cands in view.booked.items():
        for cand in cands:
            if (
                view.find(Talent, cand.talent_id) is not None
                and role_id not in roles_of[cand.talent_id]
            ):
                roles_of[cand.talent_id].append(role_id)
    rows = []
    for talent_id, role_ids in roles_of.items():
        work = index.get((talent_id,), set())
        codes = schedule_codes(dates, work, drop_after)
        worked = sorted(work)
        roles = [view.roles[r].name if r in view.roles else r for r in role_ids]
        holds = codes.count("H")
        first, last = (worked[0], worked[-1]) if worked else (None, None)
        rows.append(
            DoodRow(
                talent_id=talent_id,
                talent=view.get(Talent, talent_id).name,
                role_ids=role_ids,
                roles=roles,
                codes=codes,
                work_days=len(work),
                hold_days=holds,
                drop_days=0
                if first is None or last is None
                else (last - first + 1) - len(work) - holds,
                paid_days=len(work) + holds,
                start=dates[first] if first is not None else None,
                finish=dates[last] if last is not None else None,
            )
        )
    rows.sort(key=lambda r: (r.start or dt.date.max, r.talent.casefold(), r.talent_id))
    grid_days = [
        DoodDay(id=d.id, date=d.date, day_number=d.day_number or i + 1, location=d.location)
        for i, d in enumerate(days)
    ]
    return DayOutOfDays(days=grid_days, rows=rows)


# -- cost -------------------------------------------------------------------------------------


class CostLine(msgspec.Struct, kw_only=True):
    """The cost of one deal. Money in minor units."""

    deal_id: str
    talent_id: str
    talent: str
    role_id: str
    role: str
    era: str | None
    status: str
    counted: bool
    projected: bool  # days taken from the role's schedule: the talent is not booked in it
    unit: str
    rate: int
    work_days: int
    hold_days: int
    guaranteed_days: int
    billed_days: int
    day_rate: int | None  # None: a flat fee with no days to spread it over
    rate_cap: int | None
    base: int
    overtime_hours: float
    overtime: int
    fringe_rate: float
    fringe: int
    total: int


class Subtotal(msgspec.Struct, kw_only=True):
    id: str
    name: str
    total: int
    deals: int


class BudgetReport(msgspec.Struct, kw_only=True):
    """What ``castroom_cost_report`` returns and ``castroom budget --json`` prints."""

    currency: str
    cap: int | None
    total: int
    remaining: int | None
    over_cap: bool
    lines: list[CostLine]
    by_talent: list[Subtotal]
    by_role: list[Subtotal]
    booked_without_deal: list[tuple[str, str]] = []  # (talent id, role id)


MICRO = 1_000_000  # rates and hours are exact to six decimal places


def div_round(numerator: int, denominator: int) -> int:
    """``numerator / denominator`` to the nearest integer, halves up (money rounding)."""
    return (2 * numerator + denominator) // (2 * denominator)


def micro(number: float) -> int:
    """A stored float as an exact count of millionths (0.21 -> 210000, not 0.2099...)."""
    return round(number * MICRO)


class DealCost(msgspec.Struct, kw_only=True, frozen=True):
    """One deal's cost for some days. Money in minor units."""

    billed_days: int
    base: int
    overtime: int
    fringe: int
    #: Rounded; compared with the role's rate cap. None for a flat fee with no days
    #: (none guaranteed, none scheduled): it is not one day's pay, so no day rate is known.
    day_rate: int | None
    fringe_rate: float

    @property
    def total(self) -> int:
        return self.base + self.overtime + self.fringe


def deal_cost(
    view: ProductionView, deal: Deal, work_days: int, hold_days: int, *, rate: int | None = None
) -> DealCost:
    """The cost of a deal worked ``work_days`` + ``hold_days`` (``rate`` overrides the
    deal's, for estimates). Integer arithmetic only: each component is rounded once."""
    production = view.production
    rate = deal.rate if rate is None else rate
    billed = max(work_days + hold_days, deal.guaranteed_days)
    # The day rate as an exact fraction day_num / day_den.
    if deal.unit == "day":
        base, day_num, day_den = rate * billed, rate, 1
    elif deal.unit == "week":
        billed = max(billed, WEEK_DAYS)  # a weekly engagement pays at least a week
        weeks, extra = divmod(billed, WEEK_DAYS)
        base = rate * weeks + div_round(rate * extra, WEEK_DAYS)
        day_num, day_den = rate, WEEK_DAYS
    else:
        # A flat fee covers its billed days; with none, overtime prices the fee as one day
        # (errs high), but no day rate is claimed for the rate-cap comparison.
        base, day_num, day_den = rate, rate, max(billed, 1)
    hours = micro(deal.overtime_hours)
    overtime = 0
    if hours:
        # hours x (day rate / hours per day) x multiplier
        overtime = div_round(
            day_num * hours * micro(production.overtime_multiplier),
            day_den * production.hours_per_day * MICRO * MICRO,
        )
    fringe_rate = production.fringe_rate if deal.fringe_rate is None else deal.fringe_rate
    fringe = div_round((base + overtime) * micro(fringe_rate), MICRO)
    return DealCost(
        billed_days=billed,
        base=base,
        overtime=overtime,
        fringe=fringe,
        day_rate=None if deal.unit == "flat" and billed == 0 else div_round(day_num, day_den),
        fringe_rate=fringe_rate,
    )


def _counts(view: ProductionView, deal: Deal, booked: set[tuple[str, str]]) -> bool:
    if deal.status == "cancelled":
        return False
    return deal.status != "draft" or (deal.talent_id, deal.role_id) in booked


def budget_report(view: ProductionView, *, drop_after: int = DROP_AFTER_DAYS) -> BudgetReport:
    """The cast cost of every deal, per actor and role, against the production's cap."""
    production = view.production
    days = ordered_days(view)
    dates = [d.date for d in days]
    index = _work_index(view, days)
    booked = {
        (c.talent_id, role_id) for (role_id, _era), cands in view.booked.items() for c in cands
    }
    lines: list[CostLine] = []
    for deal in view.deals:
        talent = view.find(Talent, deal.talent_id)
        role = view.roles.get(deal.role_id)
        key: tuple[str, ...] = (deal.talent_id, deal.role_id) + ((deal.era,) if deal.era else ())
        projected = (deal.talent_id, deal.role_id) not in booked
        if projected:
            key = ("role", deal.role_id) + ((deal.era,) if deal.era else ())
        worked = index.get(key, set())
        codes = schedule_codes(dates, worked, drop_after)
        work, holds = len(worked), codes.count("H")
        cost = deal_cost(view, deal, work, holds)
        lines.append(
            CostLine(
                deal_id=deal.id,
                talent_id=deal.talent_id,
                talent=talent.name if talent else deal.talent_id,
                role_id=deal.role_id,
                role=role.name if role else deal.role_id,
                era=deal.era,
                status=deal.status,
                counted=_counts(view, deal, booked),
                projected=projected,
                unit=deal.unit,
                rate=deal.rate,
                work_days=work,
                hold_days=holds,
                guaranteed_days=deal.guaranteed_days,
                billed_days=cost.billed_days,
                day_rate=cost.day_rate,
                rate_cap=role.rate_cap if role else None,
                base=cost.base,
                overtime_hours=deal.overtime_hours,
                overtime=cost.overtime,
                fringe_rate=cost.fringe_rate,
                fringe=cost.fringe,
                total=cost.total,
            )
        )
    lines.sort(key=lambda line: (line.role.casefold(), line.talent.casefold(), line.deal_id))
    total = sum(line.total for line in lines if line.counted)
    with_deal = {(d.talent_id, d.role_id) for d in view.deals if d.status != "cancelled"}
    cap = production.budget_cap
    return BudgetReport(
        currency=production.currency,
        cap=cap,
        total=total,
        remaining=None if cap is None else cap - total,
        over_cap=cap is not None and total > cap,
        lines=lines,
        by_talent=_subtotals(lines, "talent_id", "talent"),
        by_role=_subtotals(lines, "role_id", "role"),
        booked_without_deal=sorted(
            pair for pair in booked - with_deal if view.find(Talent, pair[0]) is not None
        ),
    )


def report_for(view: ProductionView) -> BudgetReport:
    """The cost report as the loaded plugins give it (a third-party
    ``castroom_cost_report`` overrides the built-in for checks and contingency too), or
    the built-in one for a view made without plugins."""
    result = view.cost_report()
    return budget_report(view) if result is None else as_report(result)


def as_report(result: Any) -> BudgetReport:
    """Accept a BudgetReport, or plain data of its shape from a third-party plugin."""
    return coerce_answer(result, BudgetReport, "cost report")


def _subtotals(lines: list[CostLine], id_field: str, name_field: str) -> list[Subtotal]:
    out: dict[str, Subtotal] = {}
    for line in lines:
        if not line.counted:
            continue
        key = getattr(line, id_field)
        sub = out.setdefault(
            key, Subtotal(id=key, name=getattr(line, name_field), total=0, deals=0)
        )
        sub.total += line.total
        sub.deals += 1
    return sorted(out.values(), key=lambda s: (-s.total, s.name.casefold()))


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
                    message=f"deal {line.deal_id} names a {missing} {why} ({missing_id})",
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
                fix=f"castroom add deal talent_id={talent_id} role_id={role_id} rate=...",
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
    from castroom.core.cli import Context, emit_json, pass_ctx

    @cli.command(name="budget")
    @click.option("--json", "as_json", is_flag=True, help="The full report as JSON.")
    @pass_ctx
    def budget_cmd(obj: Context, as_json: bool) -> None:
        """Cast cost per actor and role, and the total against the cap."""
        view = obj.view()
        result = obj.plugins.cost_report(view)
        if result is None:
            raise CastroomError("no plugin produced a cost report")
        report = as_report(result)
        if as_json:
            emit_json(report)
        else:
            names = {
                t: talent.name
                for t, _ in report.booked_without_deal
                if (talent := view.find(Talent, t)) is not None
            }
            roles = {
                r: view.roles[r].name for _, r in report.booked_without_deal if r in view.roles
            }
            _print_report(obj, report, names, roles)
        for failure in obj.plugins.failures:
            if failure.hook == "castroom_cost_report":
                click.echo(f"Warning: {failure}", err=True)


def _print_report(
    obj: Any, report: BudgetReport, names: dict[str, str], roles: dict[str, str]
) -> None:
    """The report as tables; ``names`` and ``roles`` name the ids of booked talents with
    no deal (the report only carries their ids)."""
    from rich.console import Console
    from rich.table import Table

    money = lambda minor: format_money(minor, report.currency)  # noqa: E731
    if not report.lines:
        click.echo("No deals yet (castroom add deal talent_id=... role_id=... rate=...).")
    rows = []
    for line in report.lines:
        days = f"{line.work_days} work + {line.hold_days} hold"
        if line.billed_days > line.work_days + line.hold_days:
            why = "guaranteed" if line.guaranteed_days >= line.billed_days else "min. 1 week"
            days += f", billed {line.billed_days} ({why})"
        status = line.status + ("" if line.counted else " (not counted)")
        status += " (projected days)" if line.projected and line.counted else ""
        era = f" ({line.era})" if line.era else ""
        rows.append(
            (
                line.role + era,
                line.talent,
                status,
                f"{money(line.rate)}/{line.unit}",
                days,
                money(line.base),
                money(line.overtime),
                money(line.fringe),
                money(line.total),
            )
        )
    table = Table(title="cast cost by deal")
    texts = ("role", "talent", "status", "days")
    readable = len("(guaranteed)")  # the widest word of days: text narrower would fold words
    columns = ("role", "talent", "status", "rate", "days", "base", "overtime", "fringe", "total")
    widths = []
    for i, column in enumerate(columns):
        widest = max([len(column), *(len(row[i]) for row in rows)])
        if column in texts:  # text wraps (days folds) to leave room for the money
            right = column == "days"
            table.add_column(column, overflow="fold", justify="right" if right else "left")
            widths.append(min(widest, readable))
        else:  # money is never cut or wrapped: its column is as wide as its widest amount
            style = "bold" if column == "total" else ""
            table.add_column(column, justify="right", no_wrap=True, min_width=widest, style=style)
            widths.append(widest)
    for row in rows:
        table.add_row(*row)
    # Rich squeezes every column, money too, when the table cannot fit: never print
    # narrower than the amounts plus a readable width of text (and 3 per column for
    # padding and rules); a line too wide for the terminal beats a cut amount.
    width = max(obj.console.width, sum(widths) + 3 * len(widths) + 1)
    console = Console(width=width, highlight=False)
    if report.lines:
        console.print(table)
    for title, subs in (("by actor", report.by_talent), ("by role", report.by_role)):
        if not subs:
            continue
        sub_table = Table(title=title)
        sub_table.add_column("name", overflow="fold")
        sub_table.add_column("deals", justify="right", no_wrap=True)
        sub_table.add_column("total", justify="right", no_wrap=True)
        for sub in subs:
            sub_table.add_row(sub.name, str(sub.deals), money(sub.total))
        console.print(sub_table)
    if report.booked_without_deal:
        click.echo("Booked with no deal (their cost is missing from the total):")
        for talent_id, role_id in report.booked_without_deal:
            talent = names.get(talent_id, talent_id)
            role = roles.get(role_id, role_id)
            click.echo(
                f"  {talent} as {role}: castroom add deal talent_id={talent_id} "
                f"role_id={role_id} rate=..."
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
