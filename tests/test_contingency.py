"""Contingency: ranking replacements for a drop-out, ``castroom replace`` and ``--apply``."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from castroom.core.cli import build_cli
from castroom.core.hookspecs import hookimpl
from castroom.core.model import Availability, Candidate, Deal, Role, Scene, ShootDay, Talent
from castroom.core.plugins import make_plugins
from castroom.core.view import ProductionView
from castroom.core.workspace import Workspace
from castroom.plugins.contingency import ContingencyPlan, Replacement, RolePlan, rank

DAY1, DAY2, DAY3 = dt.date(2027, 5, 3), dt.date(2027, 5, 4), dt.date(2027, 5, 5)


def build(path: Path, *, cap: int | None = 100_000_000) -> dict[str, str]:
    """A production where Ada (booked as Mara) may drop out. Returns names -> ids."""
    with Workspace.open(path, member="tester") as ws:
        prod = ws.create_production("Backup Plan", budget_cap=cap, fringe_rate=0.0)
        doc = prod.doc
        mara = doc.add(Role, name="Mara", age_min=30, age_max=40, rate_cap=200_000)
        june = doc.add(Role, name="June")
        ids: dict[str, str] = {"mara": mara.id, "june": june.id}

        def talent(name: str, low: int, high: int, rate: int | None = 100_000) -> str:
            ids[name] = doc.add(
                Talent, name=name, playing_age_min=low, playing_age_max=high, rate=rate
            ).id
            return ids[name]

        def cand(name: str, stage: str = "audition", **fields: Any) -> str:
            ids[f"c_{name}"] = doc.add(
                Candidate, talent_id=ids[name], role_id=mara.id, stage=stage, **fields
            ).id
            return ids[f"c_{name}"]

        talent("Ada", 30, 40)
        talent("Bo", 20, 30)
        doc.add(Candidate, talent_id=ids["Bo"], role_id=june.id, stage="booked")
        cand("Ada", "booked")
        talent("Cal", 28, 36)  # a backup with no candidate record
        talent("Dee", 50, 60)
        cand("Dee", "callback")
        talent("Eve", 32, 38)
        cand("Eve", "callback", ratings={"cd": 5, "director": 4})
        talent("Fay", 32, 38)
        cand("Fay", "audition", ratings={"cd": 2})
        talent("Gus", 30, 40)
        cand("Gus", "declined")
        talent("Hal", 30, 40, rate=None)
        cand("Hal", "shortlisted", backup_rank=1)
        doc.update(Role, mara.id, {"backups": [ids["Cal"], ids["c_Dee"]]})
        s1 = doc.add(Scene, number="1", characters=[mara.id, june.id])
        s2 = doc.add(Scene, number="2", characters=[june.id])
        s3 = doc.add(Scene, number="3", characters=[mara.id])
        ids.update(s1=s1.id, s2=s2.id, s3=s3.id)
        ids["d1"] = doc.add(ShootDay, date=DAY1, scene_ids=[s1.id]).id
        ids["d2"] = doc.add(ShootDay, date=DAY2, scene_ids=[s2.id]).id
        ids["d3"] = doc.add(ShootDay, date=DAY3, scene_ids=[s3.id]).id
        doc.add(Availability, talent_id=ids["Fay"], start=DAY3, end=DAY3, kind="unavailable")
        doc.add(Deal, talent_id=ids["Ada"], role_id=mara.id, rate=150_000, status="signed")
        ids["production"] = prod.id
    return ids


@pytest.fixture
def ws_path(tmp_path: Path) -> Path:
    return tmp_path / "contingency-ws"


def run(path: Path, *args: str, extra: list[Any] = ()) -> Any:  # type: ignore[assignment]
    plugins = make_plugins(extra=extra, entry_points=False)
    root = build_cli(plugins)
    return CliRunner().invoke(
        root, ["--workspace", str(path), *args], obj=plugins, catch_exceptions=False
    )


def plan_for(path: Path, talent_id: str, role_id: str | None = None) -> ContingencyPlan:
    with Workspace.open(path) as ws:
        return rank(ProductionView(ws.production().doc), talent_id, role_id)


# -- ranking ---------------------------------------------------------------------------------


def test_backups_first_then_ranked_backups_then_candidates_by_score(ws_path: Path) -> None:
    ids = build(ws_path)
    plan = plan_for(ws_path, ids["Ada"])
    [role] = plan.roles
    names = [r.name for r in role.replacements]
    # Role.backups order (Cal, Dee) first, then the backup_rank candidate, then by score;
    # but Dee (50-60 for a 30-40 part) fails a hard constraint and drops below everyone
    # who fits. The declined candidate and the dropped talent are not offered.
    assert names == ["Cal", "Hal", "Eve", "Fay", "Dee"]
    assert [r.rank for r in role.replacements] == [1, 2, 3, 4, 5]
    by_name = {r.name: r for r in role.replacements}
    assert by_name["Cal"].tier == "backup" and by_name["Cal"].candidate_id is None
    assert by_name["Dee"].tier == "backup" and by_name["Dee"].candidate_id == ids["c_Dee"]
    assert (
        "ranked after those who fit: playing age 50-60 does not fit 30-40" in by_name["Dee"].reasons
    )
    assert by_name["Hal"].tier == "ranked backup"
    assert by_name["Eve"].score > by_name["Fay"].score


def test_reasons_explain_each_rank(ws_path: Path) -> None:
    ids = build(ws_path)
    reps = {r.name: r for r in plan_for(ws_path, ids["Ada"]).roles[0].replacements}
    assert "backup #1 for Mara" in reps["Cal"].reasons
    assert "playing age 50-60 does not fit 30-40" in reps["Dee"].reasons
    assert "free on all 2 affected shoot days" in reps["Eve"].reasons
    assert "rated 4.5/5 by 2" in reps["Eve"].reasons
    assert any(
        r.startswith("unavailable on 1 of 2 affected days (2027-05-05)")
        for r in reps["Fay"].reasons
    )
    assert reps["Fay"].conflicts == [DAY3]
    assert "rate unknown" in reps["Hal"].reasons
    assert "no audition ratings" in reps["Cal"].reasons
    # Priced on Ada's deal terms: 2 work days and the hold between, at Eve's 100,000.
    assert reps["Eve"].estimated_cost == 300_000
    assert any("fits the" in r for r in reps["Eve"].reasons)
    # Fit is 30 (age) + 30 (free) + 20 (budget) + 20 x (4.5 - 1) / 4 = 97.5 -> 98
    assert reps["Eve"].score == 98


def test_scenes_and_days_affected(ws_path: Path) -> None:
    ids = build(ws_path)
    role = plan_for(ws_path, ids["Ada"]).roles[0]
    assert role.role == "Mara" and role.candidate_ids == [ids["c_Ada"]]
    assert [s.number for s in role.scenes] == ["1", "3"]
    assert [d.date for d in role.shoot_days] == [DAY1, DAY3]


def test_a_scene_cut_from_the_script_is_not_affected(ws_path: Path) -> None:
    ids = build(ws_path)
    with Workspace.open(ws_path) as ws:
        doc = ws.production().doc
        cut = doc.add(Scene, number="4", characters=[ids["mara"]], omitted=True)
    role = plan_for(ws_path, ids["Ada"]).roles[0]
    assert cut.id not in {s.id for s in role.scenes}
    assert [s.number for s in role.scenes] == ["1", "3"]


def test_budget_left_and_rate_cap_weigh_in(ws_path: Path) -> None:
    ids = build(ws_path, cap=500_000)
    with Workspace.open(ws_path) as ws:
        doc = ws.production().doc
        doc.update(Talent, ids["Eve"], {"rate": 300_000})  # over the 200,000 rate cap
        doc.update(Talent, ids["Fay"], {"rate": 10_000})
        doc.update(Talent, ids["Cal"], {"rate": 150_000})
        view = ProductionView(doc)
        plan = rank(view, ids["Ada"], None)
    reps = {r.name: r for r in plan.roles[0].replacements}
    # The cap is 500,000; Ada costs 450,000 (3 paid days), which comes back on a drop-out.
    assert plan.remaining_budget == 50_000
    assert any("over the rate cap" in r for r in reps["Eve"].reasons)
    assert (
        "estimated $9,000.00 is $4,000.00 over the budget left without Ada's deal"
        in reps["Eve"].reasons
    )
    assert "estimated $4,500.00 fits the $5,000.00 left without Ada's deal" in reps["Cal"].reasons


def test_a_candidate_already_in_the_scenes_as_another_role(ws_path: Path) -> None:
    ids = build(ws_path)
    with Workspace.open(ws_path) as ws:
        doc = ws.production().doc
        doc.add(Candidate, talent_id=ids["Bo"], role_id=ids["mara"], stage="callback")
        for deal in doc.all(Deal):
            doc.delete(Deal, deal.id)  # no deal: priced on the affected days and holds
        plan = rank(ProductionView(doc), ids["Ada"], None)
    reps = {r.name: r for r in plan.roles[0].replacements}
    assert "already plays June in scene 1" in reps["Bo"].reasons
    assert reps["Bo"].score < reps["Eve"].score
    assert reps["Eve"].estimated_cost == 300_000  # 2 work days and the hold between


def test_era_bookings_rank_only_that_eras_candidates(tmp_path: Path) -> None:
    with Workspace.open(tmp_path / "era", member="tester") as ws:
        doc = ws.create_production("Decades").doc
        role = doc.add(
            Role,
            name="Nell",
            eras=[
                {"name": "young", "age_min": 8, "age_max": 12},
                {"name": "old", "age_min": 60, "age_max": 70},
            ],
        )
        kid = doc.add(Talent, name="Kid", playing_age_min=8, playing_age_max=11)
        kid2 = doc.add(Talent, name="Kid Two", playing_age_min=9, playing_age_max=12)
        elder = doc.add(Talent, name="Elder", playing_age_min=60, playing_age_max=70)
        doc.add(Candidate, talent_id=kid.id, role_id=role.id, era="young", stage="booked")
        doc.add(Candidate, talent_id=kid2.id, role_id=role.id, era="young", stage="callback")
        doc.add(Candidate, talent_id=elder.id, role_id=role.id, era="old", stage="callback")
        doc.add(Scene, number="1", era="young", characters=[role.id])
        doc.add(Scene, number="9", era="old", characters=[role.id])
        plan = rank(ProductionView(doc), kid.id, None)
    [role_plan] = plan.roles
    assert role_plan.era == "young"
    assert [s.number for s in role_plan.scenes] == ["1"]
    assert [r.name for r in role_plan.replacements] == ["Kid Two"]
    assert "playing age 9-12 fits 8-12" in role_plan.replacements[0].reasons


# -- the command ------------------------------------------------------------------------------


def test_replace_command_lists_plan(ws_path: Path) -> None:
    build(ws_path)
    result = run(ws_path, "replace", "Ada")
    assert result.exit_code == 0, result.output
    assert "Ada drops out of Mara" in result.output
    assert "scenes affected (2): 1, 3" in result.output
    assert "2027-05-03, 2027-05-05" in result.output
    assert "Cal" in result.output and "Eve" in result.output


def test_replace_json(ws_path: Path) -> None:
    ids = build(ws_path)
    result = run(ws_path, "replace", ids["Ada"][:20], "--role", "Mara", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["talent"] == "Ada" and data["remaining_budget"] == 100_000_000 - 450_000
    [role] = data["roles"]
    assert role["role_id"] == ids["mara"]
    first = role["replacements"][0]
    assert set(first) >= {"rank", "talent_id", "name", "candidate_id", "tier", "score", "reasons"}
    assert [s["number"] for s in role["scenes"]] == ["1", "3"]


def test_replace_errors_are_one_line(ws_path: Path) -> None:
    build(ws_path)
    result = run(ws_path, "replace", "Eve")
    assert result.exit_code == 1 and "Eve is not booked: nothing to replace" in result.output
    result = run(ws_path, "replace", "Bo", "--role", "Mara")
    assert result.exit_code == 1 and "not booked for Mara" in result.output
    result = run(ws_path, "replace", "Nobody")
    assert result.exit_code == 1 and "no talent matching 'Nobody'" in result.output
    result = run(ws_path, "replace", "Ada", "--apply", "Zed")
    assert result.exit_code == 1 and "not among the ranked replacements" in result.output


def test_apply_books_the_replacement_in_one_recorded_change(ws_path: Path) -> None:
    ids = build(ws_path)
    result = run(ws_path, "replace", "Ada", "--apply", "Eve")
    assert result.exit_code == 0, result.output
    assert "Booked Eve as Mara" in result.output
    with Workspace.open(ws_path) as ws:
        prod = ws.production()
        doc = prod.doc
        assert doc.get(Candidate, ids["c_Eve"]).stage == "booked"
        dropped = doc.get(Candidate, ids["c_Ada"])
        assert dropped.stage == "dropped" and "replaced by Eve" in dropped.notes
        assert "booked to replace Ada" in doc.get(Candidate, ids["c_Eve"]).notes
        view = ProductionView(doc)
        assert view.booked_talent(ids["mara"]).name == "Eve"
        # One transaction: the newest history entry holds both candidates.
        [entry] = prod.history(limit=1)
        touched = {entity_id for _, entity_id, _ in entry.changes}
        assert {ids["c_Eve"], ids["c_Ada"]} <= touched
    # --limit counts rows: the newest log entry's rows are those with the newest seq.
    rows = json.loads(run(ws_path, "history", "--json", "--limit", "20").output)
    history = [row for row in rows if row["seq"] == rows[0]["seq"]]
    assert {row["entity_id"] for row in history} >= {ids["c_Eve"], ids["c_Ada"]}
    assert all(row["member"] == "tester" for row in history)


def test_apply_dry_run_shows_the_plan_and_writes_nothing(ws_path: Path) -> None:
    build(ws_path)
    with Workspace.open(ws_path) as ws:
        before = ws.production().doc.to_data()
    result = run(ws_path, "replace", "Ada", "--apply", "Eve", "--dry-run")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert "change candidate Ada for Mara: stage dropped (Ada dropped out of Mara," in lines[0]
    assert any(line.startswith("change candidate Eve for Mara: stage booked") for line in lines)
    assert any(line.startswith("change deal Ada / Mara: status cancelled") for line in lines)
    plan = json.loads(
        run(ws_path, "replace", "Ada", "--apply", "Eve", "--dry-run", "--json").output
    )
    assert {edit["op"] for edit in plan["edits"]} <= {"create", "change"}
    with Workspace.open(ws_path) as ws:
        assert ws.production().doc.to_data() == before


def test_apply_a_backup_without_candidate_creates_one(ws_path: Path) -> None:
    ids = build(ws_path)
    result = run(ws_path, "replace", "Ada", "--apply", ids["Cal"], "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["booked"]["talent_id"] == ids["Cal"] and data["booked"]["stage"] == "booked"
    assert data["booked"]["source"] == "contingency" and data["dropped"] == [ids["c_Ada"]]
    with Workspace.open(ws_path) as ws:
        doc = ws.production().doc
        assert doc.get(Role, ids["mara"]).backups == [ids["c_Dee"]]  # Cal is no backup now
        booked = [c for c in doc.all(Candidate) if c.role_id == ids["mara"] and c.stage == "booked"]
        assert [c.talent_id for c in booked] == [ids["Cal"]]


def test_a_failed_apply_leaves_the_document_unchanged(ws_path: Path) -> None:
    ids = build(ws_path)
    with Workspace.open(ws_path) as ws:
        before = ws.production().doc.to_data()
    assert run(ws_path, "replace", "Ada", "--apply", "Gus").exit_code == 1  # declined
    with Workspace.open(ws_path) as ws:
        assert ws.production().doc.to_data() == before
        assert ws.production().doc.get(Candidate, ids["c_Ada"]).stage == "booked"


# -- a third-party ranking (castroom_rank_replacements is firstresult) -------------------------


class AlwaysFay:
    """Overrides the built-in ranking: Fay, whoever drops out."""

    __name__ = "always_fay"

    @hookimpl
    def castroom_rank_replacements(
        self, view: ProductionView, talent_id: str, role_id: str | None
    ) -> ContingencyPlan:
        fay = next(t for t in view.all(Talent) if t.name == "Fay")
        (rid, era), cands = next(
            (key, c) for key, c in view.booked.items() if any(x.talent_id == talent_id for x in c)
        )
        return ContingencyPlan(
            talent_id=talent_id,
            talent="someone",
            remaining_budget=None,
            currency="USD",
            roles=[
                RolePlan(
                    role_id=rid,
                    role="Mara",
                    era=era,
                    candidate_ids=[c.id for c in cands if c.talent_id == talent_id],
                    scenes=[],
                    shoot_days=[],
                    replacements=[
                        Replacement(
                            rank=1,
                            talent_id=fay.id,
                            name="Fay",
                            candidate_id=None,
                            stage=None,
                            tier="house favourite",
                            score=100,
                            reasons=["the director insists"],
                        )
                    ],
                )
            ],
        )


class Abstains:
    __name__ = "abstains"

    @hookimpl
    def castroom_rank_replacements(
        self, view: ProductionView, talent_id: str, role_id: str | None
    ) -> None:
        return None


class AsPlainData:
    __name__ = "as_plain_data"

    @hookimpl
    def castroom_rank_replacements(
        self, view: ProductionView, talent_id: str, role_id: str | None
    ) -> dict[str, Any]:
        return {
            "talent_id": talent_id,
            "talent": "Ada",
            "remaining_budget": None,
            "currency": "USD",
            "roles": [],
        }


def test_third_party_ranking_overrides_the_builtin(ws_path: Path) -> None:
    ids = build(ws_path)
    data = json.loads(run(ws_path, "replace", "Ada", "--json", extra=[AlwaysFay()]).output)
    [rep] = data["roles"][0]["replacements"]
    assert rep["name"] == "Fay" and rep["reasons"] == ["the director insists"]
    # Falling through: None lets the built-in answer.
    data = json.loads(run(ws_path, "replace", "Ada", "--json", extra=[Abstains()]).output)
    assert data["roles"][0]["replacements"][0]["name"] == "Cal"
    # Plain data of the plan's shape is accepted too.
    data = json.loads(run(ws_path, "replace", "Ada", "--json", extra=[AsPlainData()]).output)
    assert data["roles"] == []
    # And --apply books the override's choice.
    result = run(ws_path, "replace", "Ada", "--apply", "Fay", extra=[AlwaysFay()])
    assert result.exit_code == 0, result.output
    with Workspace.open(ws_path) as ws:
        view = ProductionView(ws.production().doc)
        assert view.booked_talent(ids["mara"]).name == "Fay"


def test_rank_replacements_through_the_facade(ws_path: Path) -> None:
    ids = build(ws_path)
    with Workspace.open(ws_path) as ws:
        view = ProductionView(ws.production().doc)
        plan = make_plugins(entry_points=False).rank_replacements(view, ids["Ada"], None)
        assert isinstance(plan, ContingencyPlan) and plan.roles[0].replacements[0].name == "Cal"
        plugins = make_plugins(extra=[AlwaysFay()], entry_points=False)
        assert plugins.rank_replacements(view, ids["Ada"], None).talent == "someone"


class TightBudget:
    """A third-party cost report (plain data of BudgetReport's shape) with little left."""

    __name__ = "tight_budget"

    @hookimpl
    def castroom_cost_report(self, view: ProductionView) -> dict[str, Any]:
        return {
            "currency": "USD",
            "cap": 100_000_000,
            "total": 99_990_000,
            "remaining": 10_000,
            "over_cap": False,
            "lines": [],
            "by_talent": [],
            "by_role": [],
        }


def test_ranking_uses_the_plugins_cost_report(ws_path: Path) -> None:
    """The remaining budget comes from the plugins' cost report, so a third-party
    castroom_cost_report changes what a replacement can afford."""
    ids = build(ws_path)
    with Workspace.open(ws_path) as ws:
        view = ProductionView(ws.production().doc)
        plugins = make_plugins(extra=[TightBudget()], entry_points=False)
        plan = plugins.rank_replacements(view, ids["Ada"], None)
    assert plugins.failures == []
    assert plan.remaining_budget == 10_000
    eve = next(r for r in plan.replacements if r.name == "Eve")
    assert any("over the budget left" in reason for reason in eve.reasons)
    result = run(ws_path, "replace", ids["Ada"], "--json", extra=[TightBudget()])
    assert json.loads(result.output)["remaining_budget"] == 10_000


def test_backups_are_era_aware_and_must_fit_to_lead(tmp_path: Path) -> None:
    """A character played by several actors over the years: a backup recorded (as a
    candidate) for another era is no backup here, and a backup whose playing age misses
    the affected scenes is ranked after a candidate who fits."""
    with Workspace.open(tmp_path / "ws") as ws:
        doc = ws.create_production("Decades", fringe_rate=0.0).doc
        nell = doc.add(
            Role,
            name="Nell",
            eras=[
                {"name": "1962", "age_min": 16, "age_max": 20},
                {"name": "2022", "age_min": 76, "age_max": 80},
            ],
        )
        who = {
            name: doc.add(Talent, name=name, playing_age_min=low, playing_age_max=high).id
            for name, low, high in (
                ("Young", 16, 22),
                ("Old", 74, 82),
                ("Teen", 15, 19),
                ("Mid", 30, 40),
            )
        }
        doc.add(Candidate, talent_id=who["Young"], role_id=nell.id, era="1962", stage="booked")
        old = doc.add(Candidate, talent_id=who["Old"], role_id=nell.id, era="2022")
        doc.add(Candidate, talent_id=who["Teen"], role_id=nell.id, era="1962")
        mid = doc.add(Candidate, talent_id=who["Mid"], role_id=nell.id, era="1962")
        # Backups: the 2022 one (a candidate id), then a 1962 one who does not fit.
        doc.update(Role, nell.id, {"backups": [old.id, mid.id]})
        doc.add(Scene, number="1", era="1962", characters=[nell.id])
        plan = rank(ProductionView(doc), who["Young"], nell.id)
    reps = plan.replacements
    assert [r.name for r in reps] == ["Teen", "Mid"]  # Old is 2022's, not a 1962 backup
    assert reps[0].tier == "candidate" and "playing age 15-19 fits 16-20" in reps[0].reasons
    assert reps[1].tier == "backup"
    assert "ranked after those who fit: playing age 30-40 does not fit 16-20" in reps[1].reasons


# -- the budget after --apply -----------------------------------------------------------------


def budget_json(path: Path) -> dict[str, Any]:
    result = run(path, "budget", "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_apply_cancels_the_dropped_deal_and_drafts_one_at_the_replacements_rate(
    ws_path: Path,
) -> None:
    """The dropped talent's deal stops counting, in the same transaction as the booking,
    and the replacement gets a draft deal at their rate: the budget after --apply is the
    budget the preview promised."""
    ids = build(ws_path, cap=1_000_000)
    with Workspace.open(ws_path) as ws:
        [deal] = ws.production().doc.all(Deal)
        ws.production().doc.update(Deal, deal.id, {"rate": 250_000})  # over the 200,000 cap
    before = budget_json(ws_path)
    assert before["total"] == 750_000  # 2 work days and the hold between, at 250,000
    check = run(ws_path, "check", "--json")
    assert "over-rate-cap" in {f["code"] for f in json.loads(check.output)["findings"]}
    preview = plan_for(ws_path, ids["Ada"])
    eve = next(r for r in preview.replacements if r.name == "Eve")
    assert eve.estimated_cost == 300_000
    assert preview.roles[0].remaining_budget == 1_000_000  # Ada's deal comes back
    assert "estimated $3,000.00 fits the $10,000.00 left without Ada's deal" in eve.reasons

    result = run(ws_path, "replace", "Ada", "--apply", "Eve")
    assert result.exit_code == 0, result.output
    assert "Cancelled Ada's signed deal for Mara" in result.output
    assert "Drafted a deal for Eve at $1,000.00/day" in result.output

    after = budget_json(ws_path)
    assert after["total"] == 300_000 == eve.estimated_cost
    assert after["remaining"] == preview.roles[0].remaining_budget - eve.estimated_cost
    assert [ids["Eve"], ids["mara"]] not in after["booked_without_deal"]
    lines = {line["talent"]: line for line in after["lines"]}
    assert lines["Ada"]["status"] == "cancelled" and not lines["Ada"]["counted"]
    assert lines["Eve"]["status"] == "draft" and lines["Eve"]["counted"]
    findings = json.loads(run(ws_path, "check", "--json").output)["findings"]
    assert "over-rate-cap" not in {f["code"] for f in findings}
    with Workspace.open(ws_path) as ws:
        prod = ws.production()
        cancelled = prod.doc.get(Deal, deal.id)
        assert "cancelled: Ada dropped out of Mara, replaced by Eve" in cancelled.notes
        [entry] = prod.history(limit=1)  # one transaction: bookings and deals together
        touched = {entity_id for _, entity_id, _ in entry.changes}
        assert {deal.id, ids["c_Eve"], ids["c_Ada"], lines["Eve"]["deal_id"]} <= touched


def test_apply_says_a_deal_is_needed_when_the_rate_is_unknown(ws_path: Path) -> None:
    ids = build(ws_path)
    result = run(ws_path, "replace", "Ada", "--apply", "Hal")
    assert result.exit_code == 0, result.output
    assert "No deal yet for Hal (rate unknown): add one with castroom add deal" in result.output
    after = budget_json(ws_path)
    assert after["total"] == 0 and [ids["Hal"], ids["mara"]] in after["booked_without_deal"]
    other = ws_path.with_name("as-json")
    build(other)
    data = json.loads(run(other, "replace", "Ada", "--apply", "Hal", "--json").output)
    assert data["deal"] is None and data["deal_needed"] is True
    assert [d["status"] for d in data["cancelled_deals"]] == ["cancelled"]


def test_apply_counts_the_replacements_own_deal_instead_of_drafting(ws_path: Path) -> None:
    ids = build(ws_path)
    with Workspace.open(ws_path) as ws:
        own = ws.production().doc.add(
            Deal, talent_id=ids["Eve"], role_id=ids["mara"], rate=120_000, status="offered"
        )
    result = run(ws_path, "replace", "Ada", "--apply", "Eve")
    assert result.exit_code == 0, result.output
    assert "Eve's offered deal for Mara now counts" in result.output
    after = budget_json(ws_path)
    assert [line["deal_id"] for line in after["lines"] if line["counted"]] == [own.id]
    assert after["total"] == 360_000


def test_replacements_show_short_ids_that_apply_takes(ws_path: Path) -> None:
    ids = build(ws_path)
    listed = run(ws_path, "replace", "Ada")
    assert listed.exit_code == 0, listed.output
    shown = [
        line.split("  ID ")[1].strip() for line in listed.output.splitlines() if "  ID " in line
    ]
    assert shown and all(8 <= len(s) < 26 for s in shown)
    assert not any(i in listed.output for i in ids.values() if len(i) == 26)  # no full ids
    (eve,) = [line for line in listed.output.splitlines() if "Eve" in line and "  ID " in line]
    booked = run(ws_path, "replace", "Ada", "--apply", eve.split("  ID ")[1].strip())
    assert booked.exit_code == 0 and "Booked Eve as Mara" in booked.output
