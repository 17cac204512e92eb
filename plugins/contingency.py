"""Built-in plugin: contingency. When a booked talent drops out, who replaces them?

``castroom replace TALENT [--role ROLE] [--json] [--apply ID]`` lists, for each role the
talent is booked in, the scenes and shoot days affected and the replacements ranked by
fit, each with the reasons for its rank. The ranking is the firstresult hook
``castroom_rank_replacements``; the built-in (``trylast``) one here ranks:

1. the role's backups, in ``Role.backups`` order (ids of talents or of candidates; a
   candidate id for another era of the character is not a backup for this one);
2. then candidates with a ``backup_rank``, by that rank;
3. then the role's other live candidates, by score;

but only among those who fit: anyone who breaks a hard constraint (a playing age that
fits none of the character's ages in the affected scenes, unavailable on every affected
shoot day, already playing another character in those scenes) comes after everyone who
fits, in the same order, with the reason.

The score (0-100) adds playing age against the character's ages in the affected scenes
(30), availability on the affected shoot days (30), the estimated cost against the
remaining budget and the role's rate cap (20) and the mean audition rating (20); a
factor that is unknown scores half. A replacement is priced on the dropped talent's
days and deal terms at their own rate (a day deal; their own live deal for the role if
they have one), against the budget left once the dropped talent's deals are cancelled.

``--apply`` books the chosen replacement through :mod:`castroom.core.replacing` (the
rules the dashboard's API applies too), in one transaction, so ``castroom history``
shows it as one change: book the replacement; drop the talent; cancel the dropped
talent's live deals for that role (and era), with a dated note saying why; and give the
replacement a deal so the budget stays whole: their own live deal for the role counts
from then on; failing that, a ``draft`` deal at their rate on the terms the estimate
used (the estimate and the budget then agree); with no rate on file, no deal, and the
command says one is needed.
"""

from __future__ import annotations

import datetime as dt
from fractions import Fraction
from typing import TYPE_CHECKING, Any

import click

from castroom.core.api import (
    AppliedChoice,
    Candidate,
    CastroomError,
    CommandContext,
    ContingencyPlan,
    DayRef,
    Deal,
    NotFound,
    Replacement,
    Role,
    RolePlan,
    SceneRef,
    Talent,
    age_range,
    age_span,
    applied_choice,
    budget_report,
    choose,
    conflicts,
    deal_cost,
    drop_after_days,
    emit_json,
    fits_age,
    format_money,
    hookimpl,
    ordered_days,
    own_deal,
    pass_command,
    plan_choice,
    replacement_terms,
    report_for,
    schedule_codes,
    short_ids,
)

if TYPE_CHECKING:
    from castroom.core.api import Plugins, ProductionView

#: Stages of a candidate no longer in the running.
GONE = frozenset({"declined", "released", "dropped"})
WEIGHTS = {"age": 30, "availability": 30, "budget": 20, "ratings": 20}


# -- ranking ----------------------------------------------------------------------------------


def booked_roles(
    view: ProductionView, talent_id: str
) -> list[tuple[str, str | None, list[Candidate]]]:
    """(role id, era, candidates) where this talent is booked."""
    out = []
    for (role_id, era), cands in sorted(
        view.booked.items(), key=lambda kv: (kv[0][0], kv[0][1] or "")
    ):
        mine = [c for c in cands if c.talent_id == talent_id]
        if mine and role_id in view.roles:
            out.append((role_id, era, mine))
    return out


def _role_scenes(view: ProductionView, role_id: str, era: str | None, talent_id: str):
    scenes = []
    for scene in view.scenes.values():
        if scene.omitted:  # cut from the script: not shot, so nothing to recast
            continue
        if role_id not in scene.characters or (era is not None and scene.era != era):
            continue
        holder = view.booked_talent(role_id, scene.era)
        if holder is None or holder.id == talent_id:
            scenes.append(scene)
    scenes = view.in_order(scenes)
    return scenes


def _age_reason(
    view: ProductionView, talent: Talent, role: Role, scenes: list[Any], era: str | None
) -> tuple[float, str]:
    ranges = {age_range(role, s) for s in scenes}
    if not ranges:
        era_obj = role.era(era) if era else None
        ranges = {
            (era_obj.age_min, era_obj.age_max)
            if era_obj and (era_obj.age_min is not None or era_obj.age_max is not None)
            else (role.age_min, role.age_max)
        }
    verdicts = [fits_age(talent, lo, hi) for lo, hi in ranges]
    plays = age_span(talent.playing_age_min, talent.playing_age_max)
    wanted = ", ".join(sorted(age_span(lo, hi) for lo, hi in ranges))
    if all(v is None for v in verdicts):
        return 0.5, "playing age unknown"
    known = [v for v in verdicts if v is not None]
    fit = sum(1 for v in known if v) / len(known)
    if fit == 1:
        return 1.0, f"playing age {plays} fits {wanted}"
    if fit == 0:
        return 0.0, f"playing age {plays} does not fit {wanted}"
    return fit, f"playing age {plays} fits only some of {wanted}"


def _availability(
    view: ProductionView, talent_id: str, days: list[Any]
) -> tuple[float, str, list[dt.date]]:
    if not days:
        return 1.0, "no shoot days affected", []
    blocked = [d.date for d in days if conflicts(view, talent_id, d)]
    free = len(days) - len(blocked)
    if not blocked:
        return 1.0, f"free on all {len(days)} affected shoot days", []
    dates = ", ".join(d.isoformat() for d in blocked[:5]) + (" ..." if len(blocked) > 5 else "")
    return (
        free / len(days),
        f"unavailable on {len(blocked)} of {len(days)} affected days ({dates})",
        blocked,
    )


def _estimate(
    view: ProductionView,
    talent: Talent,
    role: Role,
    era: str | None,
    paid_days: int,
    template: Deal | None,
    own: Deal | None,
) -> int | None:
    """The replacement's cost for the dropped talent's days: their own deal for the role if
    they have one, else :func:`replacement_terms`."""
    deal = own if own is not None else replacement_terms(talent, role.id, era, template)
    if deal is None:
        return None
    return deal_cost(view, deal, paid_days, 0).total


def _ratings(cand: Candidate | None) -> tuple[float, str]:
    if cand is None or not cand.ratings:
        return 0.5, "no audition ratings"
    mean = Fraction(sum(cand.ratings.values()), len(cand.ratings))
    shown = f"{float(mean):.1f}".rstrip("0").rstrip(".")
    return float((mean - 1) / 4), f"rated {shown}/5 by {len(cand.ratings)}"


def rank(view: ProductionView, talent_id: str, role_id: str | None) -> ContingencyPlan:
    """The built-in contingency plan (see the module docstring for the ranking)."""
    talent = view.find(Talent, talent_id)
    if talent is None:
        raise NotFound(f"no talent with id {talent_id!r}")
    roles = booked_roles(view, talent_id)
    if role_id is not None:
        roles = [r for r in roles if r[0] == role_id]
    report = report_for(view)  # the plugins' cost report, not only the built-in
    money = lambda minor: format_money(minor, report.currency)  # noqa: E731
    plans = []
    for rid, era, cands in roles:
        role = view.roles[rid]
        scenes = _role_scenes(view, rid, era, talent_id)
        day_ids = {s.shoot_day_id for s in scenes if s.shoot_day_id in view.shoot_days}
        scene_ids = {s.id for s in scenes}
        for day_id, day_scenes in view.scenes_by_shoot_day.items():
            if any(s.id in scene_ids for s in day_scenes):
                day_ids.add(day_id)
        days = sorted((view.shoot_days[d] for d in day_ids), key=lambda d: (d.date, d.id))
        # Their deal (if any) prices the replacement; its cost comes back to the budget.
        dropped_lines = [
            line
            for line in report.lines
            if line.talent_id == talent_id
            and line.role_id == rid
            and line.counted
            and (era is None or line.era in (None, era))
        ]
        freed = sum(line.total for line in dropped_lines)
        remaining = None if report.remaining is None else report.remaining + freed
        template = (
            next((d for d in view.deals if d.id == dropped_lines[0].deal_id), None)
            if dropped_lines
            else None
        )
        if dropped_lines:
            paid_days = dropped_lines[0].work_days + dropped_lines[0].hold_days
        else:  # no deal: the affected days plus the holds between them
            schedule = ordered_days(view)
            wanted = {d.id for d in days}
            codes = schedule_codes(
                [d.date for d in schedule],
                {i for i, d in enumerate(schedule) if d.id in wanted},
                drop_after_days(view.production),
            )
            paid_days = sum(1 for c in codes if c)
        plans.append(
            RolePlan(
                role_id=rid,
                role=role.name,
                era=era,
                candidate_ids=[c.id for c in cands],
                scenes=[
                    SceneRef(
                        id=s.id, number=s.number, story_day=s.story_day, shoot_day_id=s.shoot_day_id
                    )
                    for s in scenes
                ],
                shoot_days=[DayRef(id=d.id, date=d.date, day_number=d.day_number) for d in days],
                replacements=_rank_role(
                    view,
                    talent_id,
                    role,
                    era,
                    scenes,
                    days,
                    remaining,
                    paid_days,
                    template,
                    money,
                    f" without {talent.name}'s deal" if freed else "",
                ),
                remaining_budget=remaining,
            )
        )
    return ContingencyPlan(
        talent_id=talent_id,
        talent=talent.name,
        remaining_budget=report.remaining,
        currency=report.currency,
        roles=plans,
    )


def _pool(view: ProductionView, dropped: str, role: Role, era: str | None) -> dict[str, Candidate]:
    """Everyone in the running for this role (and era), by talent; a candidate for this
    very era is preferred to one for any era."""
    pool: dict[str, Candidate] = {}
    for cand in view.candidates:
        if (
            cand.role_id == role.id
            and cand.talent_id != dropped
            and cand.stage not in GONE
            and cand.stage != "booked"
            and (era is None or cand.era in (None, era))
            and view.find(Talent, cand.talent_id) is not None
        ):
            best = pool.get(cand.talent_id)
            if best is None or (cand.era == era and best.era != era):
                pool[cand.talent_id] = cand
    return pool


def _backups(
    view: ProductionView, dropped: str, role: Role, era: str | None, pool: dict[str, Candidate]
) -> list[str]:
    """The role's named backups still available, in the role's order, as talent ids."""
    backups: list[str] = []
    by_candidate = {c.id: c for c in view.candidates}
    for ref in role.backups:
        backup_cand = by_candidate.get(ref)
        if backup_cand is not None and era is not None and backup_cand.era not in (None, era):
            continue  # a backup for another era of the character (another actor's age)
        talent_id = backup_cand.talent_id if backup_cand is not None else ref
        if view.find(Talent, talent_id) is None or talent_id == dropped or talent_id in backups:
            continue
        if pool.get(talent_id) is None and any(
            c.talent_id == talent_id
            and c.role_id == role.id
            and (c.stage in GONE or c.stage == "booked")
            for c in view.candidates
        ):
            continue  # a backup who has since declined, been released or booked
        backups.append(talent_id)
    return backups


def _tier(
    talent_id: str, role: Role, backups: list[str], cand: Candidate | None
) -> tuple[str, tuple[int, int], str]:
    """Named backup, ranked backup or candidate: the tier, its sort order and why."""
    if talent_id in backups:
        at = backups.index(talent_id)
        return "backup", (0, at), f"backup #{at + 1} for {role.name}"
    if cand is not None and cand.backup_rank is not None:
        return "ranked backup", (1, cand.backup_rank), f"backup rank {cand.backup_rank}"
    return "candidate", (2, 0), f"candidate ({cand.stage})" if cand else "candidate"


def _clash(view: ProductionView, talent_id: str, role: Role, scenes: list[Any]) -> str | None:
    """Why the talent cannot play these scenes as this role: already in them as another
    character (one actor, two roles), or None."""
    clashes = [
        (scene, other)
        for scene in scenes
        for other in scene.characters
        if other != role.id
        and other in view.roles
        and (holder := view.booked_talent(other, scene.era)) is not None
        and holder.id == talent_id
    ]
    if not clashes:
        return None
    numbers = ", ".join(dict.fromkeys(scene.number for scene, _ in clashes))
    others = ", ".join(dict.fromkeys(view.roles[o].name for _, o in clashes))
    plural = "s" if "," in numbers else ""
    return f"already plays {others} in scene{plural} {numbers}"


def _budget_fit(
    talent: Talent,
    role: Role,
    cost: int | None,
    remaining: int | None,
    money: Any,
    left_note: str,
) -> tuple[float, list[str]]:
    """How well the estimated cost fits the rate cap and the budget left (0-1), and why."""
    reasons: list[str] = []
    rate_cap_ok = True
    if talent.rate is not None and role.rate_cap is not None and talent.rate > role.rate_cap:
        rate_cap_ok = False
        reasons.append(f"day rate {money(talent.rate)} over the rate cap {money(role.rate_cap)}")
    if cost is None:
        reasons.append("rate unknown")
        return 0.5, reasons
    if remaining is None:
        reasons.append(f"estimated {money(cost)} (no budget cap)")
    elif cost <= remaining:
        reasons.append(f"estimated {money(cost)} fits the {money(remaining)} left{left_note}")
    else:
        reasons.append(
            f"estimated {money(cost)} is {money(cost - remaining)} over the budget left" + left_note
        )
        return 0.0, reasons
    return (1.0 if rate_cap_ok else 0.0), reasons


def _rank_role(
    view: ProductionView,
    dropped: str,
    role: Role,
    era: str | None,
    scenes: list[Any],
    days: list[Any],
    remaining: int | None,
    paid_days: int,
    template: Deal | None,
    money: Any,
    left_note: str = "",
) -> list[Replacement]:
    pool = _pool(view, dropped, role, era)
    backups = _backups(view, dropped, role, era, pool)
    entries = []
    for talent_id in dict.fromkeys([*backups, *pool]):
        talent = view.get(Talent, talent_id)
        cand = pool.get(talent_id)
        tier, order, why = _tier(talent_id, role, backups, cand)
        reasons = [why]
        misfits: list[str] = []  # hard constraints broken: ranked after everyone who fits
        age, why = _age_reason(view, talent, role, scenes, era)
        reasons.append(why)
        if age == 0.0:  # known, and fits none of the character's ages here
            misfits.append(why)
        free, why, blocked = _availability(view, talent_id, days)
        reasons.append(why)
        if days and not free:
            misfits.append(why)
        clash = _clash(view, talent_id, role, scenes)
        if clash is not None:
            free = 0.0
            reasons.append(clash)
            misfits.append(clash)
        deal = own_deal(view.deals, talent_id, role.id, era)
        cost = _estimate(view, talent, role, era, paid_days, template, deal)
        fits, why_fits = _budget_fit(talent, role, cost, remaining, money, left_note)
        reasons.extend(why_fits)
        rated, why = _ratings(cand)
        reasons.append(why)
        score = round(
            WEIGHTS["age"] * age
            + WEIGHTS["availability"] * free
            + WEIGHTS["budget"] * fits
            + WEIGHTS["ratings"] * rated
        )
        if misfits and tier != "candidate":
            # Being a backup earns the top only for someone who can play these scenes.
            reasons.append(f"ranked after those who fit: {'; '.join(misfits)}")
        replacement = Replacement(
            rank=0,
            talent_id=talent_id,
            name=talent.name,
            candidate_id=cand.id if cand else None,
            stage=cand.stage if cand else None,
            tier=tier,
            score=score,
            reasons=reasons,
            estimated_cost=cost,
            conflicts=blocked,
        )
        entries.append(
            ((bool(misfits), *order), -score, talent.name.casefold(), talent_id, replacement)
        )
    entries.sort(key=lambda e: e[:4])
    out = []
    for position, entry in enumerate(entries, start=1):
        entry[4].rank = position
        out.append(entry[4])
    return out


# -- hooks ------------------------------------------------------------------------------------


@hookimpl(trylast=True)
def castroom_rank_replacements(
    view: ProductionView, talent_id: str, role_id: str | None
) -> ContingencyPlan:
    return rank(view, talent_id, role_id)


@hookimpl(trylast=True)
def castroom_register_commands(cli: click.Group) -> None:
    @cli.command(name="replace")
    @click.argument("talent")
    @click.option("--role", "role_ref", help="Only this role (id, prefix or name).")
    @click.option(
        "--apply",
        "apply_ref",
        metavar="ID",
        help="Book this replacement (talent or candidate id, or name).",
    )
    @click.option(
        "--dry-run", is_flag=True, help="With --apply: show what it would change, change nothing."
    )
    @click.option("--json", "as_json", is_flag=True)
    @click.option(
        "--schedule-time",
        type=click.FloatRange(0, 600),
        default=2.0,
        show_default=True,
        help="Seconds the scheduler may take per replacement to price them (0: skip).",
    )
    @pass_command
    def replace_cmd(
        obj: CommandContext,
        talent: str,
        role_ref: str | None,
        apply_ref: str | None,
        dry_run: bool,
        as_json: bool,
        schedule_time: float,
    ) -> None:
        """A booked talent drops out: what it affects, and who could replace them.

        --apply books the one you pick and, in the same single change: drops the talent,
        cancels their live deals for the role (noting why and when), and gives the
        replacement a deal: their own live deal for the role if they have one, else a
        draft deal at their rate on the dropped deal's terms (negotiate it, then set its
        status). With no rate on file, no deal is drafted and the command says to add one.
        """
        view = obj.view()
        who = view.resolve(Talent, talent)
        role_id = view.resolve(Role, role_ref).id if role_ref else None
        if not booked_roles(view, who.id) or (
            role_id and all(r[0] != role_id for r in booked_roles(view, who.id))
        ):
            where = f" for {view.get(Role, role_id).name}" if role_id else ""
            raise CastroomError(f"{who.name} is not booked{where}: nothing to replace")
        plan = to_plan(obj.plugins.rank_replacements(view, who.id, role_id))
        failures = [f for f in obj.plugins.failures if f.hook == "castroom_rank_replacements"]
        for failure in failures:
            click.echo(f"Warning: {failure}", err=True)
        if apply_ref is None:
            if schedule_time > 0 and view.shoot_days:
                price_on_schedule(obj, view, plan, schedule_time)
            if as_json:
                emit_json(plan)
            else:
                _print_plan(plan)
            return
        role_plan, chosen = choose(plan, apply_ref)
        edits, choice = plan_choice(view, plan, role_plan, chosen)
        if dry_run:
            if as_json:
                emit_json(edits)
            else:
                for line in obj.describe(edits):
                    click.echo(line)
            return
        applied = applied_choice(obj.view(), role_plan, chosen, choice, obj.apply(edits))
        if as_json:
            emit_json(applied.summary())
        else:
            _print_applied(obj.view(), plan, role_plan, chosen, applied)


def price_on_schedule(
    obj: CommandContext, view: ProductionView, plan: ContingencyPlan, time_limit: float
) -> None:
    """Fill each replacement's schedule cost: preview booking them (the plan --apply
    would apply, on a scratch copy), ask the scheduler (``castroom_propose_schedule``)
    for the best board given their availability, and compare with the cast cost of the
    board as it is."""
    from castroom.core.api import ScheduleRequest

    plugins: Plugins = obj.plugins
    now = budget_report(view).total
    for role_plan in plan.roles:
        for rep in role_plan.replacements:
            edits, _ = plan_choice(view, plan, role_plan, rep)
            preview = obj.preview(edits)
            proposal = plugins.propose_schedule(preview, ScheduleRequest(time_limit=time_limit))
            if proposal is None:
                continue
            rep.schedule_cost = proposal.cost
            rep.schedule_change = proposal.cost - now
            rep.schedule_optimal = proposal.optimal


def _print_applied(
    view: ProductionView,
    plan: ContingencyPlan,
    role_plan: RolePlan,
    chosen: Replacement,
    applied: AppliedChoice,
) -> None:
    """What --apply did, naming entities by short ids (``view``: as it left them)."""
    money = lambda minor: format_money(minor, plan.currency)  # noqa: E731
    era = f" ({role_plan.era})" if role_plan.era else ""
    booked = view.short_id(Candidate, applied.booked.id)
    click.echo(
        f"Booked {chosen.name} as {role_plan.role}{era} (candidate {booked}); "
        f"{plan.talent} dropped."
    )
    for deal in applied.cancelled_deals:
        was = applied.was.get(deal.id, "live")
        click.echo(
            f"Cancelled {plan.talent}'s {was} deal for {role_plan.role}{era} "
            f"({money(deal.rate)}/{deal.unit}, deal {view.short_id(Deal, deal.id)}):"
            " it no longer counts."
        )
    deal = applied.deal
    if deal is not None and applied.drafted:
        short = view.short_id(Deal, deal.id)
        click.echo(
            f"Drafted a deal for {chosen.name} at {money(deal.rate)}/{deal.unit} (their rate; "
            f"deal {short}, counted in the budget): negotiate it, then "
            f"castroom set deal {short} status=signed"
        )
    elif deal is not None:
        click.echo(
            f"{chosen.name}'s {deal.status} deal for {role_plan.role}{era} now counts "
            f"({money(deal.rate)}/{deal.unit}, deal {view.short_id(Deal, deal.id)})."
        )
    else:
        era_field = f" era={role_plan.era}" if role_plan.era else ""
        click.echo(
            f"No deal yet for {chosen.name} (rate unknown): add one with castroom add deal "
            f"talent_id={view.short_id(Talent, chosen.talent_id)}"
            f" role_id={view.short_id(Role, role_plan.role_id)}{era_field} rate=..."
        )


def to_plan(result: ContingencyPlan | None) -> ContingencyPlan:
    """The plugins' ranking (already checked against its contract), or an error."""
    if result is None:
        raise CastroomError("no plugin could rank replacements")
    return result


def _print_plan(plan: ContingencyPlan) -> None:
    """Plain text: what is affected, then each replacement with its reasons (and the
    short id that --apply takes: unique among the plan's, which is where it looks)."""
    short = short_ids(
        i
        for role_plan in plan.roles
        for rep in role_plan.replacements
        for i in (rep.talent_id, rep.candidate_id)
        if i
    )
    for role_plan in plan.roles:
        era = f" ({role_plan.era})" if role_plan.era else ""
        click.echo(click.style(f"{plan.talent} drops out of {role_plan.role}{era}", bold=True))
        click.echo(
            f"  scenes affected ({len(role_plan.scenes)}): "
            + (", ".join(s.number for s in role_plan.scenes) or "none")
        )
        click.echo(
            f"  shoot days affected ({len(role_plan.shoot_days)}): "
            + (", ".join(d.date.isoformat() for d in role_plan.shoot_days) or "none")
        )
        left = role_plan.remaining_budget
        if left is not None and left != plan.remaining_budget:
            click.echo(
                f"  budget left once {plan.talent}'s deal is cancelled (--apply does): "
                f"{format_money(left, plan.currency)}"
            )
        if not role_plan.replacements:
            click.echo("  no replacements: add candidates or backups for the role")
            continue
        click.echo("  replacements, best first (book one with --apply ID):")
        for rep in role_plan.replacements:
            name = click.style(rep.name, bold=True)
            click.echo(
                f"  {rep.rank:>3}. {name}  [{rep.tier}, fit {rep.score}/100]"
                f"  ID {short[rep.candidate_id or rep.talent_id]}"
            )
            for reason in rep.reasons:
                click.echo(f"         - {reason}")
            if rep.schedule_cost is not None and rep.schedule_change is not None:
                change = rep.schedule_change
                sign = "+" if change > 0 else "-" if change < 0 else "+"
                proven = "optimal" if rep.schedule_optimal else "best found"
                click.echo(
                    f"         - schedule with them: cast cost "
                    f"{format_money(rep.schedule_cost, plan.currency)} ({proven}), "
                    f"{sign}{format_money(abs(change), plan.currency)} on the board now"
                )
    if plan.remaining_budget is not None:
        click.echo(f"Budget left: {format_money(plan.remaining_budget, plan.currency)}")
