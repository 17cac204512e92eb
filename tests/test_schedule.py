"""``castroom schedule``: published instances imported through the CLI into a real
production, the plan's cost checked against ``castroom budget`` after ``--apply``, and the
hard constraints, locks, repair and the ``castroom_propose_schedule`` hook."""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from castroom.core import costing
from castroom.core.cli import build_cli
from castroom.core.contracts import PlanDay, SchedulePlan, ScheduleRequest, TalentCost
from castroom.core.hookspecs import hookimpl
from castroom.core.model import Scene, ShootDay
from castroom.core.plugins import make_plugins
from castroom.core.talent_scheduling import Instance, bits, parse_dzn
from castroom.core.view import ProductionView
from castroom.core.workspace import Workspace

DATA = Path(__file__).parent / "data" / "talent_scheduling"
OPTIMA = {"tiny": 29, "small": 54, "concert": 111, "rehearsal_smith": 109}
START = dt.date(2027, 3, 1)  # a Monday


def run(ws: Path, *args: str, extra: list[Any] = (), ok: bool = True) -> Any:  # type: ignore[assignment]
    plugins = make_plugins(extra=extra, entry_points=False)
    result = CliRunner().invoke(
        build_cli(plugins), ["--workspace", str(ws), *args], obj=plugins, catch_exceptions=False
    )
    if ok:
        assert result.exit_code == 0, result.output
    return result


def add(ws: Path, kind: str, *fields: str) -> str:
    return json.loads(run(ws, "add", kind, *fields, "--json").output)["id"]


def import_instance(ws: Path, name: str, unit: str = "day") -> tuple[Instance, int, list[str]]:
    """The instance as a production: an actor per row (a talent booked in a role, a signed
    deal at their cost per day), a scene per column with its cast and duration_days.
    Returns the instance, the minor units one cost unit became, and the talent ids."""
    instance = parse_dzn((DATA / f"{name}.dzn").read_text(), name)
    run(ws, "init", "--production", name)
    run(ws, "production", "set", f"start_date={START}", "drop_pickup_days=0")
    roles, talents, scale = [], [], 0
    for a, cost in enumerate(instance.costs):
        talent = add(ws, "talent", f"name=Actor {a + 1}")
        role = add(ws, "role", f"name=Role {a + 1}")
        add(ws, "candidate", f"talent_id={talent}", f"role_id={role}", "stage=booked")
        deal = run(
            ws, "add", "deal", f"talent_id={talent}", f"role_id={role}", f"rate={cost}",
            f"unit={unit}", "status=signed", "--json",
        ).output  # fmt: skip
        scale = json.loads(deal)["rate"] // cost  # however money is parsed, it is linear
        roles.append(role)
        talents.append(talent)
    for s in range(instance.scenes):
        cast = json.dumps([roles[a] for a in bits(instance.casts[s])])
        add(ws, "scene", f"number={s + 1}", f"characters={cast}",
            f"duration_days={instance.durations[s]}")  # fmt: skip
    return instance, scale, talents


def schedule(ws: Path, *args: str) -> dict[str, Any]:
    return json.loads(run(ws, "schedule", "--json", *args).output)


def budget_total(ws: Path) -> int:
    return json.loads(run(ws, "budget", "--json").output)["total"]


def board(ws: Path) -> list[tuple[dt.date, list[str]]]:
    with Workspace.open(ws) as w:
        view = ProductionView(w.production().doc)
        days = sorted(view.shoot_days.values(), key=lambda d: d.date)
        return [(d.date, [s.id for s in view.scenes_by_shoot_day[d.id]]) for d in days]


@pytest.mark.parametrize("name", sorted(OPTIMA))
def test_published_optimum_through_the_cli_and_the_budget_agrees(tmp_path: Path, name: str) -> None:
    ws = tmp_path / "ws"
    instance, scale, talents = import_instance(ws, name)
    plan = schedule(ws, "--apply")
    assert plan["cost"] == OPTIMA[name] * scale
    assert plan["lower_bound"] == plan["cost"] and plan["optimal"] is True
    assert plan["cost_before"] == 0  # no shoot days yet: nobody works, nobody is paid
    assert {t["talent_id"] for t in plan["per_talent"]} == set(talents)
    assert sum(t["cost_after"] for t in plan["per_talent"]) == plan["cost"]
    assert budget_total(ws) == plan["cost"]  # the one cost function, after --apply
    # The board: a scene of d days on d consecutive shooting days, weekends skipped.
    days = board(ws)
    assert len(days) == sum(instance.durations)
    assert all(date.weekday() < 5 for date, _ in days)
    assert [d.isoformat() for d, _ in days] == [d["date"] for d in plan["days"]]
    # A scene of several days is on each of them, its shoot_day_id the first: no finding.
    findings = json.loads(run(ws, "check", "--json", ok=False).output)["findings"]
    assert [f for f in findings if f["code"] == "scene-day-mismatch"] == []
    # Scheduling again keeps the (optimal) cost, now as the cost before.
    again = schedule(ws)
    assert again["cost_before"] == again["cost"] == plan["cost"]


def test_applying_the_board_it_has_again_updates_no_day(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    import_instance(ws, "tiny")
    schedule(ws, "--apply")
    before = board(ws)
    again = run(ws, "schedule", "--repair", "--apply", "--time-limit", "20").output
    assert board(ws) == before
    assert "Applied: 0 shoot day(s) added, 0 updated, 0 emptied and deleted, 0 scene(s)" in again


def test_unavailable_actor_is_never_scheduled_and_the_budget_agrees(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    _, scale, talents = import_instance(ws, "small")
    free = schedule(ws)
    # Actor 1 (scenes 1, 5, 6) cannot work the first week.
    add(ws, "availability", f"talent_id={talents[0]}", f"start={START}",
        f"end={START + dt.timedelta(days=6)}", "kind=unavailable")  # fmt: skip
    plan = schedule(ws, "--apply", "--time-limit", "5")
    assert plan["lower_bound"] <= OPTIMA["small"] * scale <= free["cost"] <= plan["cost"]
    assert plan["lower_bound"] <= plan["cost"]
    assert budget_total(ws) == plan["cost"]
    with Workspace.open(ws) as w:
        view = ProductionView(w.production().doc)
        scenes_of_actor_1 = {s.id for s in view.scenes.values() if s.number in {"1", "5", "6"}}
    for date, scene_ids in board(ws):
        if date <= START + dt.timedelta(days=6):
            assert not scenes_of_actor_1 & set(scene_ids), date


def test_lock_keeps_a_day_and_repair_moves_few_scenes(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    _, _, talents = import_instance(ws, "tiny")
    schedule(ws, "--apply")
    before = board(ws)
    first_date, first_scenes = before[0]
    plan = schedule(ws, "--lock", first_date.isoformat(), "--time-limit", "3")
    assert plan["days"][0]["scene_ids"] == first_scenes and plan["days"][0]["locked"] is True
    # Actor 2 (in every scene but one) becomes unavailable on the last day they work.
    with Workspace.open(ws) as w:
        view = ProductionView(w.production().doc)
        roles_of_2 = {r.id for r in view.roles.values() if r.name == "Role 2"}
        works = {s.id for s in view.scenes.values() if roles_of_2 & set(s.characters)}
    last_date = max(date for date, ids in before if works & set(ids))
    add(ws, "availability", f"talent_id={talents[1]}", f"start={last_date}", f"end={last_date}")
    repaired = schedule(ws, "--repair", "--apply", "--time-limit", "20")  # stops once proven
    assert repaired["optimal"] is True  # fewest moves, then cheapest, proven
    assert 1 <= repaired["moved"] <= 2
    assert budget_total(ws) == repaired["cost"]
    after = dict(board(ws))
    assert not works & set(after.get(last_date, []))


def test_week_deals_and_fractional_scenes_are_priced_as_the_budget(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    import_instance(ws, "tiny", unit="week")
    with Workspace.open(ws) as w:
        doc = w.production().doc
        for scene in doc.all(Scene):  # half-day scenes: two to a day
            doc.update(Scene, scene.id, {"duration_days": 0.5})
    plan = schedule(ws, "--apply", "--time-limit", "3")
    assert "CP-SAT" in plan["method"]
    assert budget_total(ws) == plan["cost"] >= plan["lower_bound"] > 0
    assert all(len(d["scene_ids"]) <= 2 for d in plan["days"]) and len(plan["days"]) >= 2


def test_tied_date_and_after_are_kept(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    import_instance(ws, "small")
    with Workspace.open(ws) as w:
        doc = w.production().doc
        scenes = {s.number: s for s in doc.all(Scene)}
        tied = START + dt.timedelta(days=14)  # a Monday, two weeks in
        doc.update(Scene, scenes["3"].id, {"tied_date": tied.isoformat()})
        doc.update(Scene, scenes["1"].id, {"after": [scenes["2"].id]})
        ids = {n: s.id for n, s in scenes.items()}
    plan = schedule(ws, "--apply", "--time-limit", "3")
    dates = {}
    for day in plan["days"]:
        for sid in day["scene_ids"]:
            dates.setdefault(sid, day["date"])
    assert dates[ids["3"]] == tied.isoformat()
    assert dates[ids["1"]] >= dates[ids["2"]]
    assert budget_total(ws) == plan["cost"]


def test_bad_lock_is_one_error_and_changes_nothing(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    import_instance(ws, "tiny")
    result = run(ws, "schedule", "--apply", "--lock", "2031-01-01", ok=False)
    assert result.exit_code == 1
    assert "no shoot day '2031-01-01'" in result.output
    with Workspace.open(ws) as w:
        assert w.production().doc.all(ShootDay) == []


class FixedBoard:
    """A studio's own scheduler: everything on one day (firstresult beats the built-in)."""

    __name__ = "fixed_board"

    @hookimpl
    def castroom_propose_schedule(
        self, view: ProductionView, request: ScheduleRequest
    ) -> SchedulePlan:
        scene_ids = sorted(view.scenes)
        return SchedulePlan(
            currency=view.production.currency,
            cost=1,
            cost_before=0,
            lower_bound=1,
            optimal=True,
            days=[PlanDay(date=START, scene_ids=scene_ids)],
            per_talent=[TalentCost(talent_id="x", talent="X", cost_before=0, cost_after=1)],
            method=f"one day, {request.time_limit:g} s allowed",
        )


def test_a_plugin_schedule_wins_and_is_applied(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    import_instance(ws, "tiny")
    result = run(ws, "schedule", "--json", "--apply", "--time-limit", "2", extra=[FixedBoard()])
    plan = json.loads(result.output)
    assert plan["method"] == "one day, 2 s allowed" and len(plan["days"]) == 1
    [(date, scene_ids)] = board(ws)
    assert date == START and len(scene_ids) == 4


class GhostBoard(FixedBoard):
    """A plugin's board that names a scene the production does not have."""

    __name__ = "ghost_board"

    @hookimpl
    def castroom_propose_schedule(
        self, view: ProductionView, request: ScheduleRequest
    ) -> SchedulePlan:
        plan = FixedBoard.castroom_propose_schedule(self, view, request)
        plan.days.append(PlanDay(date=START + dt.timedelta(days=1), scene_ids=["no-such-scene"]))
        return plan


def test_apply_goes_through_edits_a_bad_board_is_refused_and_nothing_written(
    tmp_path: Path,
) -> None:
    """``--apply`` is plan, then apply: the plan's edits are checked like any other write
    (a scene that is not there is refused) and nothing of the board is written."""
    ws = tmp_path / "ws"
    import_instance(ws, "tiny")
    schedule(ws, "--apply")
    before = board(ws)
    result = run(ws, "schedule", "--apply", extra=[GhostBoard()], ok=False)
    assert result.exit_code != 0
    assert "no-such-scene" in result.output
    assert board(ws) == before  # the first day of the ghost board is not written either
    findings = json.loads(run(ws, "check", "--json", ok=False).output)["findings"]
    assert [f for f in findings if f["code"] == "scene-day-mismatch"] == []


def test_text_output_has_the_board_dood_costs_and_bound(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    import_instance(ws, "tiny")
    out = run(ws, "schedule").output
    assert "proposed board" in out and "day-out-of-days" in out and "SW" in out
    assert "cast cost by actor" in out and "Actor 2" in out
    assert "Optimal: proven lower bound" in out


def test_replace_prices_each_replacement_on_the_schedule(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    import_instance(ws, "tiny")
    schedule(ws, "--apply")
    now = budget_total(ws)
    # Two understudies for Actor 2 (in three of the four scenes) at the same day rate:
    # one free every day, one unavailable on the first shoot day.
    role = json.loads(run(ws, "list", "role", "--json").output)[1]["id"]
    first = board(ws)[0][0]
    free = add(ws, "talent", "name=Free Understudy", "rate=2")
    busy = add(ws, "talent", "name=Busy Understudy", "rate=2")
    for who in (free, busy):
        add(ws, "candidate", f"talent_id={who}", f"role_id={role}", "stage=shortlisted")
    add(ws, "availability", f"talent_id={busy}", f"start={first}", f"end={first}")
    plan = json.loads(run(ws, "replace", "Actor 2", "--json", "--schedule-time", "20").output)
    reps = {r["name"]: r for r in plan["roles"][0]["replacements"]}
    same = reps["Free Understudy"]
    assert same["schedule_cost"] == now and same["schedule_change"] == 0
    assert same["schedule_optimal"] is True
    # The busy one cannot work the first day: the board must change around them.
    other = reps["Busy Understudy"]
    assert other["schedule_cost"] >= now and other["schedule_optimal"] is True
    # Booking them and scheduling gives exactly the price replace said.
    run(ws, "replace", "Actor 2", "--apply", busy)
    assert schedule(ws, "--apply", "--time-limit", "20")["cost"] == other["schedule_cost"]
    assert budget_total(ws) == other["schedule_cost"]
    out = run(ws, "replace", "Busy Understudy", "--schedule-time", "20").output
    assert "Free Understudy" in out and "schedule with them: cast cost" in out
    assert "(optimal)" in out


def test_drop_pickup_is_optimised_and_priced_as_the_budget(tmp_path: Path) -> None:
    """A lead tied to the first day and to a day three weeks later: with drop/pickup
    (more than ten days apart) they are paid two days, not three weeks."""
    ws = tmp_path / "ws"
    run(ws, "init", "--production", "Bookends")
    run(ws, "production", "set", f"start_date={START}", "drop_pickup_days=10")
    ids = {}
    for name, rate in (("Lead", 1000), ("Day Player", 10)):
        ids[name] = add(ws, "talent", f"name={name}")
        role = add(ws, "role", f"name={name} Role")
        add(ws, "candidate", f"talent_id={ids[name]}", f"role_id={role}", "stage=booked")
        run(ws, "add", "deal", f"talent_id={ids[name]}", f"role_id={role}", f"rate={rate}",
            "status=signed")  # fmt: skip
    late = START + dt.timedelta(days=18)  # a Friday
    add(ws, "scene", "number=1", 'characters=["Lead Role"]', f"tied_date={START}")
    add(ws, "scene", "number=2", 'characters=["Lead Role"]', f"tied_date={late}")
    for n in range(3, 13):
        add(ws, "scene", f"number={n}", 'characters=["Day Player Role"]', "duration_days=1")
    plan = schedule(ws, "--apply", "--time-limit", "20")  # it stops once proven
    lead = next(t for t in plan["per_talent"] if t["talent_id"] == ids["Lead"])
    deals = json.loads(run(ws, "list", "deal", "--json").output)
    [rate] = [d["rate"] for d in deals if d["talent_id"] == ids["Lead"]]
    assert lead["cost_after"] == 2 * rate  # two work days; the weeks between are dropped
    assert plan["optimal"] is True and plan["lower_bound"] == plan["cost"]
    assert budget_total(ws) == plan["cost"]
    report = json.loads(run(ws, "budget", "--json").output)
    [line] = [x for x in report["lines"] if x["talent_id"] == ids["Lead"]]
    assert (line["work_days"], line["hold_days"]) == (2, 0)


def test_omitted_scenes_are_not_shot_and_holds_elsewhere_are_warnings(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    _, _, talents = import_instance(ws, "tiny")
    schedule(ws, "--apply")
    with Workspace.open(ws) as w:
        doc = w.production().doc
        cut = next(s for s in doc.all(Scene) if s.number == "4")
        doc.update(Scene, cut.id, {"omitted": True})
    add(ws, "availability", f"talent_id={talents[2]}", f"start={START}", f"end={START}",
        "kind=first_hold", "held_by=Other Show")  # fmt: skip
    plan = schedule(ws, "--apply")
    assert all(cut.id not in d["scene_ids"] for d in plan["days"])
    assert any("first hold for Other Show" in w for w in plan["warnings"])
    assert budget_total(ws) == plan["cost"]
    with Workspace.open(ws) as w:
        doc = w.production().doc
        assert doc.get(Scene, cut.id).shoot_day_id is None
        assert sum(len(d.scene_ids) for d in doc.all(ShootDay)) == 1 + 2 + 3  # days of 1-3


def test_scenes_group_by_location_at_no_extra_cost(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    run(ws, "init", "--production", "Two Sets")
    run(ws, "production", "set", f"start_date={START}", "drop_pickup_days=0")
    talent = add(ws, "talent", "name=Solo")
    role = add(ws, "role", "name=Lone")
    add(ws, "candidate", f"talent_id={talent}", f"role_id={role}", "stage=booked")
    run(ws, "add", "deal", f"talent_id={talent}", f"role_id={role}", "rate=100", "status=signed")
    for n, place in enumerate(["Beach", "Office", "Beach", "Office"], start=1):
        add(ws, "scene", f"number={n}", 'characters=["Lone"]', f"location={place}",
            "duration_days=0.5")  # fmt: skip
    plan = schedule(ws, "--apply", "--time-limit", "20")  # it stops once proven
    assert plan["optimal"] is True and len(plan["days"]) == 2
    assert sorted(d["location"] for d in plan["days"]) == ["Beach", "Office"]
    assert budget_total(ws) == plan["cost"]


def test_with_nothing_priced_the_board_is_as_short_as_it_can_be(tmp_path: Path) -> None:
    """Cost and company moves tie (no deal is priced): the fewest calendar days from the
    first shoot day to the last breaks the tie, and the board starts on the first date."""
    ws = tmp_path / "ws"
    run(ws, "init", "--production", "Unpriced")
    run(ws, "production", "set", f"start_date={START}", "drop_pickup_days=0")
    for n, place in enumerate(["Beach", "Office"] * 4, start=1):
        add(ws, "scene", f"number={n}", f"location={place}", "duration_days=1")
    plan = schedule(ws, "--apply", "--time-limit", "5")
    dates = [dt.date.fromisoformat(d["date"]) for d in plan["days"]]
    # Eight days, five a week from a Monday: Monday to the next Wednesday.
    assert dates[0] == START and dates[-1] == START + dt.timedelta(days=9)
    assert plan["cost"] == 0 and budget_total(ws) == 0
    assert len({d["location"] for d in plan["days"]}) == 2


def test_the_seed_is_a_whole_feasible_hint() -> None:
    """CP-SAT is handed the seed board with every variable's value (who is paid which
    day, the drops the budget takes, company moves, span), not the starts alone, so on a large board
    it starts from a board instead of finding none in time: with every variable fixed
    to its hint the model must still be feasible, and the board the seed's."""
    from castroom.core.board_model import BoardProblem, solve_board

    units = [100, 50, 50, 100, 200, 100, 25, 75]
    casts = [[0, 1], [1], [0, 2], [2], [0, 1, 2], [1, 3], [3], [0, 3]]
    hint = [0, 1, 1, 2, 3, 5, 6, 6]
    problem = BoardProblem(
        slots=12,
        capacity=100,
        units=units,
        payee_scenes=[[s for s, c in enumerate(casts) if a in c] for a in range(4)],
        tables=[[rate * n for n in range(13)] for rate in (500, 300, 200, 100)],
        forbidden=[set() for _ in units],
        locations=["Beach", "Office"] * 4,
        hint=hint,
        dates=[0, 1, 2, 3, 4, 7, 8, 9, 10, 11, 14, 15],
        drop_after=3,
    )
    answer = solve_board(problem, time_limit=20, only_hint=True)
    assert answer is not None and answer.starts == hint
    # Paid as the budget pays the board (slots 0-6 hold work): work and hold days, the
    # gap of more than three days dropped where it drops one.
    on = [range(k, k + -(-units[s] // 100)) for s, k in enumerate(hint)]
    used = sorted({k for slots in on for k in slots})
    dates = [START + dt.timedelta(days=problem.dates[k]) for k in used]
    rates = (500, 300, 200, 100)

    def cost(drop_after: int) -> int:
        total = 0
        for rate, scenes in zip(rates, problem.payee_scenes, strict=True):
            work = {used.index(k) for s in scenes for k in on[s]}
            total += rate * (len(work) + costing.hold_count(dates, work, drop_after))
        return total

    assert answer.cost == cost(problem.drop_after) < cost(0)  # a drop is taken


def test_the_seed_board_is_packed_around_every_constraint(tmp_path: Path) -> None:
    """The exact core's order, packed around unavailability, ties and order, is a board
    that meets them: CP-SAT starts from it, and it is the answer if CP-SAT finds none in
    time (a large production)."""
    from castroom.core import scheduling
    from castroom.core import talent_scheduling as classic

    ws = tmp_path / "ws"
    _, _, talents = import_instance(ws, "small")
    add(ws, "availability", f"talent_id={talents[0]}", f"start={START}",
        f"end={START + dt.timedelta(days=3)}")  # fmt: skip
    with Workspace.open(ws) as w:
        doc = w.production().doc
        scenes = {s.number: s for s in doc.all(Scene)}
        doc.update(Scene, scenes["2"].id, {"tied_date": (START + dt.timedelta(days=9)).isoformat()})
        doc.update(Scene, scenes["6"].id, {"after": [scenes["3"].id]})
        view = ProductionView(doc)
        problem = scheduling.build_problem(view, ScheduleRequest(), 30)
        instance, _, _ = scheduling.classic_instance(problem)
        starts = scheduling.pack(problem, classic.solve(instance).order)
    assert starts is not None and scheduling.feasible(problem, starts)
    position = {s.number: i for i, s in enumerate(problem.scenes)}
    assert problem.dates[starts[position["2"]]] == START + dt.timedelta(days=9)
    assert starts[position["6"]] >= starts[position["3"]]


def test_a_six_day_week_and_scenes_as_long_as_their_pages(tmp_path: Path) -> None:
    """The README's calendar: shooting days are the first ``shooting_days_per_week`` of
    each week from ``start_date``, and a scene without ``duration_days`` lasts its pages
    over ``pages_per_day``: sixteen pages at eight a day take two days of their own (at
    the default five a day, four)."""
    ws = tmp_path / "ws"
    run(ws, "init", "--production", "Six Days")
    run(ws, "production", "set", f"start_date={START}", "drop_pickup_days=0")
    run(ws, "production", "set", "shooting_days_per_week=6", "pages_per_day=8")
    talent, role = add(ws, "talent", "name=Ada Stone"), add(ws, "role", "name=Nora")
    add(ws, "candidate", f"talent_id={talent}", f"role_id={role}", "stage=booked")
    add(ws, "deal", f"talent_id={talent}", f"role_id={role}", "rate=100", "status=signed")
    long_one = add(ws, "scene", "number=1", f"characters={json.dumps([role])}", "pages=16")
    for n in range(2, 7):
        add(ws, "scene", f"number={n}", f"characters={json.dumps([role])}", "pages=8")
    schedule(ws, "--apply")
    days = board(ws)
    # Seven days: Monday to Saturday, then Monday; never a Sunday.
    assert [d for d, _ in days] == [START + dt.timedelta(days=n) for n in (0, 1, 2, 3, 4, 5, 7)]
    assert sum(long_one in scenes for _, scenes in days) == 2
    assert all(len(scenes) == 1 for _, scenes in days)


def test_the_sample_production_is_searched_and_kept_to_its_time() -> None:
    """The 150-scene sample (``castroom demo``'s production: week and day deals with
    guarantees, fractional scenes, unavailability, drops after 14 days) is too large for
    CP-SAT within the time limit: the local search has the time, from the exact core's
    board. Its board meets every hard constraint, is priced by the budget, costs well
    under the stored board, and the command ends near its time limit."""
    from castroom.core import scheduling
    from castroom.core.document import CastDocument
    from castroom.core.sample import build_sample

    doc = CastDocument.create("The Harbour Years", kind="series", currency="EUR")
    build_sample(doc)
    view = ProductionView(doc)
    started = time.monotonic()
    plan = scheduling.propose(view, ScheduleRequest(time_limit=4))
    assert time.monotonic() - started < 4 + 3  # pricing the boards after the search
    assert "local search" in plan.method and "too large" in plan.method
    board = [costing.BoardDay(date=d.date, scene_ids=d.scene_ids) for d in plan.days]
    assert costing.budget_report(view, days=board).total == plan.cost
    problem = scheduling.build_problem(view, ScheduleRequest(), 200)
    slot = {date: k for k, date in enumerate(problem.dates)}
    position = {s.id: i for i, s in enumerate(problem.scenes)}
    starts = [0] * len(problem.scenes)
    for day in reversed(plan.days):  # a scene's first day
        for sid in day.scene_ids:
            starts[position[sid]] = slot[day.date]
    assert scheduling.feasible(problem, starts)
    assert plan.lower_bound <= plan.cost < 0.7 * plan.cost_before
