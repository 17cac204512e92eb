"""Day-out-of-days, exact cast cost, budget findings and ``castroom budget``."""

from __future__ import annotations

import datetime as dt
import itertools
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from castroom.core.cli import build_cli
from castroom.core.costing import hold_count
from castroom.core.hookspecs import hookimpl
from castroom.core.model import Candidate, Deal, Role, Scene, ShootDay, Talent
from castroom.core.money import format_money
from castroom.core.plugins import make_plugins
from castroom.core.view import ProductionView
from castroom.core.workspace import StoredProduction, Workspace
from castroom.plugins import budget
from castroom.plugins.budget import (
    BudgetReport,
    budget_findings,
    budget_report,
    day_out_of_days,
    deal_cost,
    schedule_codes,
)

START = dt.date(2027, 3, 1)


def dates(*offsets: int) -> list[dt.date]:
    return [START + dt.timedelta(days=o) for o in offsets]


# -- the day-out-of-days -------------------------------------------------------------------------


def test_schedule_codes_start_work_hold_finish() -> None:
    days = dates(0, 1, 2, 3, 4, 5)
    assert schedule_codes(days, {1, 2, 4}) == ["", "SW", "W", "H", "WF", ""]
    assert schedule_codes(days, {3}) == ["", "", "", "SWF", "", ""]
    assert schedule_codes(days, set()) == [""] * 6


def test_schedule_codes_drop_and_pickup() -> None:
    # Work on day 0 and 1, nothing for 12 days, then back: a drop and a pickup.
    days = dates(0, 1, 5, 13, 14, 30)
    assert schedule_codes(days, {0, 1, 4}) == ["SW", "WD", "", "", "PWF", ""]
    # A gap of exactly ten days is a hold, not a drop.
    assert schedule_codes(dates(0, 5, 10), {0, 2}) == ["SW", "H", "WF"]
    # One break per actor per production: the gap skipping the most shoot days (two
    # here, against one later) is dropped; the other is held.
    codes = schedule_codes(dates(0, 1, 20, 21, 40, 41), {0, 3, 5})
    assert codes == ["SWD", "", "", "PW", "H", "WF"]
    # A long gap with no shoot day in it costs nothing to keep: no drop.
    assert schedule_codes(dates(0, 20, 40), {0, 1, 2}) == ["SW", "W", "WF"]
    assert schedule_codes(dates(0, 20), {0, 1}, drop_after=30) == ["SW", "WF"]
    # 0 = never drop.
    assert schedule_codes(days, {0, 1, 4}, drop_after=0) == ["SW", "W", "H", "H", "WF", ""]


@given(
    gaps=st.lists(st.integers(min_value=1, max_value=20), min_size=1, max_size=30),
    data=st.data(),
    drop_after=st.sampled_from([0, 10, 14]),
)
def test_a_budget_counts_the_holds_the_day_out_of_days_shows(
    gaps: list[int], data: st.DataObject, drop_after: int
) -> None:
    """The budget counts hold days without making each deal's codes: the same count."""
    days = dates(*itertools.accumulate(gaps))
    work = data.draw(st.sets(st.integers(min_value=0, max_value=len(days) - 1)))
    codes = schedule_codes(days, work, drop_after)
    assert hold_count(days, work, drop_after) == codes.count("H")


@pytest.fixture
def prod(workspace: Workspace) -> StoredProduction:
    return workspace.create_production(
        "Ledger",
        budget_cap=5_000_000,
        fringe_rate=0.21,
        hours_per_day=10,
        overtime_multiplier=1.5,
    )


def shoot(prod: StoredProduction, offsets: list[int], cast: dict[int, list[str]]) -> list[ShootDay]:
    """Shoot days at START+offset; cast[i] = role ids in day i's one scene."""
    days = []
    for i, offset in enumerate(offsets):
        scene = prod.doc.add(Scene, number=str(i + 1), characters=cast.get(i, []))
        days.append(
            prod.doc.add(ShootDay, date=START + dt.timedelta(days=offset), scene_ids=[scene.id])
        )
    return days


def test_day_out_of_days_grid(prod: StoredProduction) -> None:
    mara, june = prod.doc.add(Role, name="Mara"), prod.doc.add(Role, name="June")
    ada = prod.doc.add(Talent, name="Ada")
    bo = prod.doc.add(Talent, name="Bo")
    prod.doc.add(Candidate, talent_id=ada.id, role_id=mara.id, stage="booked")
    prod.doc.add(Candidate, talent_id=bo.id, role_id=june.id, stage="booked")
    shoot(prod, [0, 1, 2, 3, 20], {0: [mara.id], 2: [mara.id, june.id], 4: [june.id]})
    grid = day_out_of_days(ProductionView(prod.doc))
    assert [d.day_number for d in grid.days] == [1, 2, 3, 4, 5]
    rows = {r.talent: r for r in grid.rows}
    assert rows["Ada"].codes == ["SW", "H", "WF", "", ""]
    assert (rows["Ada"].work_days, rows["Ada"].hold_days, rows["Ada"].paid_days) == (2, 1, 3)
    assert rows["Bo"].codes == ["", "", "SWD", "", "PWF"]
    assert rows["Bo"].drop_days == 1 and rows["Bo"].paid_days == 2
    assert rows["Bo"].start == START + dt.timedelta(days=2)
    assert rows["Bo"].finish == START + dt.timedelta(days=20)
    assert [r.talent for r in grid.rows] == ["Ada", "Bo"]  # by start date


def test_era_deals_cost_only_their_eras_days(prod: StoredProduction) -> None:
    nell = prod.doc.add(Role, name="Nell", eras=[{"name": "young"}, {"name": "old"}])
    kid, elder = prod.doc.add(Talent, name="Kid"), prod.doc.add(Talent, name="Elder")
    prod.doc.add(Candidate, talent_id=kid.id, role_id=nell.id, era="young", stage="booked")
    prod.doc.add(Candidate, talent_id=elder.id, role_id=nell.id, era="old", stage="booked")
    for offset, era in ((0, "young"), (1, "young"), (2, "old")):
        scene = prod.doc.add(Scene, number=str(offset + 1), era=era, characters=[nell.id])
        prod.doc.add(ShootDay, date=START + dt.timedelta(days=offset), scene_ids=[scene.id])
    for who, era in ((kid, "young"), (elder, "old")):
        prod.doc.add(
            Deal,
            talent_id=who.id,
            role_id=nell.id,
            era=era,
            rate=1_000,
            fringe_rate=0.0,
            status="signed",
        )
    view = ProductionView(prod.doc)
    report = budget_report(view)
    assert {line.talent: line.total for line in report.lines} == {"Kid": 2_000, "Elder": 1_000}
    rows = {r.talent: r.codes for r in day_out_of_days(view).rows}
    assert rows == {"Kid": ["SW", "WF", ""], "Elder": ["", "", "SWF"]}


# -- cost arithmetic (exact, integer minor units) ----------------------------------------------


def _deal(**fields: Any) -> Deal:
    return Deal(id="D1", talent_id="T", role_id="R", **fields)


def test_day_deal_cost_is_exact(prod: StoredProduction) -> None:
    view = ProductionView(prod.doc)
    cost = deal_cost(view, _deal(rate=123_457, guaranteed_days=5, overtime_hours=2.5), 3, 1)
    assert cost.billed_days == 5  # the guarantee beats 4 days worked
    assert cost.base == 617_285
    # 2.5 h x (123,457 / 10 per hour) x 1.5 = 46,296.375 -> 46,296
    assert cost.overtime == 46_296
    # 21% of 663,581 = 139,352.01 -> 139,352
    assert cost.fringe == 139_352
    assert cost.total == 617_285 + 46_296 + 139_352
    assert cost.day_rate == 123_457


def test_week_and_flat_deals(prod: StoredProduction) -> None:
    view = ProductionView(prod.doc)
    week = deal_cost(view, _deal(rate=333_333, unit="week", fringe_rate=0.0), 7, 0)
    assert week.billed_days == 7
    assert week.base == 466_666  # a week and 2/5 of one: 466,666.2 rounded half up
    assert week.day_rate == 66_667
    flat = deal_cost(
        view, _deal(rate=1_000_000, unit="flat", overtime_hours=1, fringe_rate=0.1), 4, 0
    )
    assert flat.base == 1_000_000
    # day rate 250,000 over 10 hours x 1.5 = 37,500 for one hour
    assert flat.overtime == 37_500 and flat.fringe == 103_750
    none = deal_cost(view, _deal(rate=1_000_000, unit="flat"), 0, 0)
    assert none.billed_days == 0 and none.day_rate is None  # no days: no day rate
    guaranteed = deal_cost(view, _deal(rate=1_000_000, unit="flat", guaranteed_days=8), 0, 0)
    assert guaranteed.billed_days == 8 and guaranteed.day_rate == 125_000


def test_a_weekly_deal_pays_at_least_a_week_then_a_fifth_per_extra_day(
    prod: StoredProduction,
) -> None:
    view = ProductionView(prod.doc)

    def week(days: int, **fields: Any) -> Any:
        return deal_cost(view, _deal(rate=500_000, unit="week", fringe_rate=0.0, **fields), days, 0)

    assert week(3).base == 500_000 and week(3).billed_days == 5  # never less than a week
    assert week(0).base == 500_000  # a weekly engagement, even before it is scheduled
    assert week(5).base == 500_000
    assert week(6).base == 600_000 and week(6).billed_days == 6  # one extra day: 1/5
    assert week(12).base == 1_200_000  # two weeks and two days
    assert week(3, guaranteed_days=10).base == 1_000_000  # a two-week guarantee
    odd = deal_cost(view, _deal(rate=333_334, unit="week", fringe_rate=0.0), 8, 0)
    assert odd.base == 333_334 + 200_000  # 3 x 66,666.8 = 200,000.4, rounded once


def test_flat_fee_rate_cap_uses_its_days_not_the_whole_fee(prod: StoredProduction) -> None:
    """A flat fee is not one day's pay: with no days it cannot break a day-rate cap, and
    with guaranteed days it is compared per guaranteed day."""
    cap = prod.doc.add(Role, name="Narrator", rate_cap=150_000)
    una = prod.doc.add(Talent, name="Una")
    prod.doc.add(Candidate, talent_id=una.id, role_id=cap.id, stage="booked")
    deal = prod.doc.add(
        Deal, talent_id=una.id, role_id=cap.id, rate=1_000_000, unit="flat", status="signed"
    )  # no scenes scheduled, no days guaranteed
    view = ProductionView(prod.doc)
    report = budget_report(view)
    [line] = report.lines
    assert line.day_rate is None and line.total == 1_210_000  # still costed in full
    assert "over-rate-cap" not in {f.code for f in budget_findings(view, report)}
    # Eight guaranteed days: 125,000 a day, within the 150,000 cap.
    prod.doc.update(Deal, deal.id, {"guaranteed_days": 8})
    view = ProductionView(prod.doc)
    assert "over-rate-cap" not in {f.code for f in budget_findings(view, budget_report(view))}
    # Five guaranteed days: 200,000 a day, over the cap.
    prod.doc.update(Deal, deal.id, {"guaranteed_days": 5})
    view = ProductionView(prod.doc)
    found = {f.code: f for f in budget_findings(view, budget_report(view))}
    assert "$2,000.00 a day" in found["over-rate-cap"].message


def test_fringe_rates_are_exact_decimals(prod: StoredProduction) -> None:
    view = ProductionView(prod.doc)
    # 0.1 + 0.2 style float noise must not leak into money: 0.3 x 10 = 3 exactly.
    cost = deal_cost(view, _deal(rate=10, fringe_rate=0.3), 1, 0)
    assert cost.fringe == 3
    half = deal_cost(view, _deal(rate=5, fringe_rate=0.5), 1, 0)
    assert half.fringe == 3  # 2.5 rounds half up


def _cast(prod: StoredProduction) -> dict[str, Any]:
    mara = prod.doc.add(Role, name="Mara", rate_cap=150_000)
    june = prod.doc.add(Role, name="June")
    ada = prod.doc.add(Talent, name="Ada")
    bo = prod.doc.add(Talent, name="Bo")
    prod.doc.add(Candidate, talent_id=ada.id, role_id=mara.id, stage="booked")
    prod.doc.add(Candidate, talent_id=bo.id, role_id=june.id, stage="booked")
    shoot(prod, [0, 1, 2], {0: [mara.id, june.id], 2: [mara.id]})
    return {"mara": mara, "june": june, "ada": ada, "bo": bo}


def test_budget_report_totals_per_actor_and_role(prod: StoredProduction) -> None:
    c = _cast(prod)
    prod.doc.add(Deal, talent_id=c["ada"].id, role_id=c["mara"].id, rate=100_000, status="signed")
    prod.doc.add(
        Deal,
        talent_id=c["bo"].id,
        role_id=c["june"].id,
        rate=80_000,
        unit="flat",
        fringe_rate=0.0,
        status="accepted",
    )
    prod.doc.add(
        Deal, talent_id=c["bo"].id, role_id=c["june"].id, rate=9_999_999, status="cancelled"
    )
    report = budget_report(ProductionView(prod.doc))
    # Ada: 2 work + 1 hold = 3 days x 100,000 = 300,000 + 21% = 363,000. Bo: flat 80,000.
    lines = {(line.talent, line.status): line for line in report.lines}
    ada = lines[("Ada", "signed")]
    assert (ada.work_days, ada.hold_days, ada.base, ada.fringe, ada.total) == (
        2,
        1,
        300_000,
        63_000,
        363_000,
    )
    assert lines[("Bo", "accepted")].total == 80_000
    assert not lines[("Bo", "cancelled")].counted
    assert report.total == 443_000
    assert report.remaining == 5_000_000 - 443_000 and not report.over_cap
    assert {s.name: s.total for s in report.by_talent} == {"Ada": 363_000, "Bo": 80_000}
    assert {s.name: s.total for s in report.by_role} == {"Mara": 363_000, "June": 80_000}
    assert budget_findings(ProductionView(prod.doc), report) == []


def test_drafts_count_only_for_booked_talent(prod: StoredProduction) -> None:
    c = _cast(prod)
    stranger = prod.doc.add(Talent, name="Cy")
    prod.doc.add(
        Deal,
        talent_id=c["ada"].id,
        role_id=c["mara"].id,
        rate=1_000,
        status="draft",
        fringe_rate=0.0,
    )
    prod.doc.add(Deal, talent_id=stranger.id, role_id=c["mara"].id, rate=5_000, status="draft")
    offered = prod.doc.add(
        Deal, talent_id=stranger.id, role_id=c["june"].id, rate=7, fringe_rate=0.0, status="offered"
    )
    report = budget_report(ProductionView(prod.doc))
    assert report.total == 3_000 + 7  # Ada's 3 days; the offer priced on June's one day
    [line] = [ln for ln in report.lines if ln.deal_id == offered.id]
    assert line.projected and line.work_days == 1 and line.hold_days == 0
    assert line.counted and line.total == 7


def test_over_cap_and_over_rate_cap_are_findings(prod: StoredProduction) -> None:
    c = _cast(prod)
    prod.doc.update_production({"budget_cap": 300_000})
    prod.doc.add(
        Deal,
        talent_id=c["ada"].id,
        role_id=c["mara"].id,
        rate=900_000,
        unit="week",
        status="signed",
    )  # 180,000 a day, over the 150,000 cap
    prod.doc.add(Deal, talent_id=c["bo"].id, role_id=c["june"].id, rate=1, status="signed")
    view = ProductionView(prod.doc)
    found = {f.code: f for f in budget_findings(view, budget_report(view))}
    assert found["over-cap"].severity == "error"
    assert "$3,000.00" in found["over-cap"].message
    assert found["over-rate-cap"].severity == "error"
    assert "$1,800.00 a day" in found["over-rate-cap"].message
    assert "booked-without-deal" not in found


def test_within_caps_no_findings_and_missing_deals_warned(prod: StoredProduction) -> None:
    c = _cast(prod)
    prod.doc.add(
        Deal,
        talent_id=c["ada"].id,
        role_id=c["mara"].id,
        rate=750_000,
        unit="week",
        status="signed",
    )  # exactly the 150,000 day cap
    prod.doc.add(Deal, talent_id="NOBODY", role_id=c["june"].id, rate=1, status="signed")
    view = ProductionView(prod.doc)
    found = budget_findings(view, budget_report(view))
    assert sorted(f.code for f in found) == ["booked-without-deal", "deal-unknown"]
    [missing] = [f for f in found if f.code == "booked-without-deal"]
    assert missing.severity == "warning" and "Bo" in missing.message


def test_budget_findings_reach_castroom_check(prod: StoredProduction) -> None:
    c = _cast(prod)
    prod.doc.update_production({"budget_cap": 1})
    prod.doc.add(Deal, talent_id=c["ada"].id, role_id=c["mara"].id, rate=10, status="signed")
    found = make_plugins(entry_points=False).check(ProductionView(prod.doc))
    assert any(f.plugin == "budget" and f.code == "over-cap" for f in found)


# -- the command and the castroom_cost_report hook ---------------------------------------------


def _workspace(tmp_path: Path, cap: int | None = 5_000_000) -> Path:
    path = tmp_path / "cli-ws"
    with Workspace.open(path, member="tester") as ws:
        prod = ws.create_production("Ledger", fringe_rate=0.21)
        if cap is not None:
            prod.doc.update_production({"budget_cap": cap})
        c = _cast(prod)
        prod.doc.add(
            Deal, talent_id=c["ada"].id, role_id=c["mara"].id, rate=100_000, status="signed"
        )
    return path


def run(path: Path, *args: str, extra: list[Any] = (), columns: int = 80) -> Any:  # type: ignore[assignment]
    plugins = make_plugins(extra=extra, entry_points=False)
    root = build_cli(plugins)
    return CliRunner(env={"COLUMNS": str(columns)}).invoke(
        root, ["--workspace", str(path), *args], obj=plugins, catch_exceptions=False
    )


def test_budget_command_text(tmp_path: Path) -> None:
    result = run(_workspace(tmp_path), "budget")
    assert result.exit_code == 0, result.output
    assert "Ada" in result.output and "Mara" in result.output
    assert "Total: $3,630.00 of cap $50,000.00: within ($46,370.00 left)" in result.output
    result = run(_workspace(tmp_path / "nocap", cap=None), "budget")
    assert "(no budget cap set)" in result.output


def test_budget_text_labels_days_plainly_and_names_booked_talent_with_no_deal(
    tmp_path: Path,
) -> None:
    path = _workspace(tmp_path)
    with Workspace.open(path) as ws:
        doc = ws.production().doc
        [deal] = doc.all(Deal)
        doc.update(Deal, deal.id, {"unit": "week", "rate": 500_000})
    result = run(path, "budget", columns=200)  # wide enough not to wrap the days
    assert result.exit_code == 0, result.output
    assert "W+" not in result.output
    assert "2 work + 1 hold" in result.output and "billed 5 (min. 1 week)" in result.output
    assert "$5,000.00" in result.output  # a week, not 4/5 of one
    assert "Booked with no deal" in result.output
    assert "Bo as June" in result.output and "castroom add deal" in result.output


def test_budget_command_json_and_over_cap(tmp_path: Path) -> None:
    result = run(_workspace(tmp_path, cap=100), "budget", "--json")
    assert result.exit_code == 0
    data = json.loads(result.output)
    assert data["total"] == 363_000 and data["cap"] == 100 and data["over_cap"] is True
    assert data["remaining"] == 100 - 363_000
    [line] = data["lines"]
    assert line["talent"] == "Ada" and line["base"] == 300_000 and line["fringe"] == 63_000
    assert data["by_talent"][0] == {
        "id": line["talent_id"],
        "name": "Ada",
        "total": 363_000,
        "deals": 1,
    }
    assert "OVER" in run(_workspace(tmp_path / "t", cap=100), "budget").output


class UnionScale:
    """A third-party plugin with its own cost rules (castroom_cost_report override)."""

    __name__ = "union_scale"

    @hookimpl
    def castroom_cost_report(self, view: ProductionView) -> BudgetReport:
        report = budget.budget_report(view)
        return BudgetReport(
            currency=report.currency,
            cap=report.cap,
            total=42,
            remaining=None,
            over_cap=False,
            lines=[],
            by_talent=[],
            by_role=[],
        )


class Silent:
    __name__ = "silent"

    @hookimpl
    def castroom_cost_report(self, view: ProductionView) -> None:
        return None  # lets the next plugin answer


def test_cost_report_hook_override_and_fallthrough(tmp_path: Path, prod: StoredProduction) -> None:
    _cast(prod)
    view = ProductionView(prod.doc)
    assert make_plugins(entry_points=False).cost_report(view).total == 0
    assert make_plugins(extra=[UnionScale()], entry_points=False).cost_report(view).total == 42
    assert make_plugins(extra=[Silent()], entry_points=False).cost_report(view).total == 0
    data = json.loads(run(_workspace(tmp_path), "budget", "--json", extra=[UnionScale()]).output)
    assert data["total"] == 42


class OverBudget:
    """A third-party cost report that puts the production over its cap."""

    __name__ = "over_budget"

    @hookimpl
    def castroom_cost_report(self, view: ProductionView) -> BudgetReport:
        return BudgetReport(
            currency=view.production.currency,
            cap=100,
            total=1_000,
            remaining=-900,
            over_cap=True,
            lines=[],
            by_talent=[budget.Subtotal(id="x", name="Union Scale", total=1_000, deals=1)],
            by_role=[],
        )


def test_checks_use_the_plugins_cost_report(tmp_path: Path, prod: StoredProduction) -> None:
    """budget's check judges the report the plugins give (a third-party
    castroom_cost_report wins), not the built-in report called directly."""
    _cast(prod)
    view = ProductionView(prod.doc)
    assert "over-cap" not in {f.code for f in make_plugins(entry_points=False).check(view)}
    found = make_plugins(extra=[OverBudget()], entry_points=False).check(ProductionView(prod.doc))
    [over] = [f for f in found if f.code == "over-cap"]
    assert over.plugin == "budget" and "Union Scale" in over.message
    assert "$10.00 is over the cap $1.00" in over.message
    # The same through the real `castroom check` command.
    result = run(_workspace(tmp_path), "check", "--json", extra=[OverBudget()])
    codes = {f["code"] for f in json.loads(result.output)["findings"]}
    assert "over-cap" in codes
    # A view made with no plugin façade still gets the built-in report.
    assert budget.report_for(ProductionView(prod.doc)).total == 0


class PlainData:
    """A third-party plugin answering with plain data (it need not import castroom's
    Structs); a second one whose answer has the wrong shape."""

    __name__ = "plain_data"

    def __init__(self, total: object) -> None:
        self.total = total

    @hookimpl
    def castroom_cost_report(self, view: ProductionView) -> dict[str, Any]:
        return {
            "currency": "USD",
            "cap": None,
            "total": self.total,
            "remaining": None,
            "over_cap": False,
            "lines": [],
            "by_talent": [],
            "by_role": [],
        }


def test_a_plain_data_cost_report_is_accepted_and_a_malformed_one_refused(tmp_path: Path) -> None:
    path = _workspace(tmp_path)
    data = json.loads(run(path, "budget", "--json", extra=[PlainData(7)]).output)
    assert data["total"] == 7
    # An answer that breaks the BudgetReport contract is that plugin's failure (named,
    # with the field), like a raise: the next plugin (the built-in) answers.
    result = run(path, "budget", "--json", extra=[PlainData("lots")])
    assert result.exit_code == 0, result.output
    assert "plugin 'plain_data' failed in castroom_cost_report" in result.output
    assert "a plugin's cost report is malformed" in result.output
    assert "total" in result.output  # names the field
    assert json.loads(result.stdout)["total"] != "lots"


@pytest.mark.parametrize("columns", [80, 132])
def test_budget_table_never_cuts_money_the_days_wrap_instead(tmp_path: Path, columns: int) -> None:
    path = _workspace(tmp_path)
    with Workspace.open(path) as ws:
        doc = ws.production().doc
        [deal] = doc.all(Deal)
        doc.update(Deal, deal.id, {"unit": "week", "rate": 123_456_789, "guaranteed_days": 12})
    report = json.loads(run(path, "budget", "--json").output)
    result = run(path, "budget", columns=columns)
    assert result.exit_code == 0, result.output
    [line] = report["lines"]
    amounts = [format_money(line[f], "USD") for f in ("base", "overtime", "fringe", "total")]
    for amount in ["$1,234,567.89", *amounts]:
        assert amount in result.output
    assert "/week" in result.output
    assert "…" not in result.output
    assert "(guaranteed)" in result.output  # the days wrap at word boundaries
    # Every table fits 80 columns, amounts of millions a week too (it drew 124).
    table = result.output.split("Booked with no deal")[0]
    assert max(len(row) for row in table.splitlines()) <= columns, table
