"""What booking a replacement writes, once for every front end.

A contingency plugin ranks replacements (``castroom_rank_replacements``, a
:class:`~castroom.core.contracts.ContingencyPlan`); choosing one of them is a write, and
its rules live here: ``castroom replace --apply`` and the dashboard's
``POST /api/{id}/replacement`` both build the plan with :func:`plan_choice` and apply it
with :func:`castroom.core.edits.apply`, in one transaction. It books the replacement
(their live candidate for the role and era if they have one, else a new one), drops the
talent, takes the replacement off the role's backups, cancels the dropped talent's live
deals for the role (and era) with a dated note, and gives the replacement a deal: their
own live deal for the role, else a draft at their rate on the dropped deal's terms
(:func:`replacement_terms`), else none (someone must add one).
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

import msgspec

from .contracts import ContingencyPlan, Replacement, RolePlan
from .edits import Applied, Edit, Plan, append_line, change, create
from .errors import Ambiguous, NotFound
from .model import Candidate, Deal, Role, Talent

if TYPE_CHECKING:
    from .view import ProductionView


def replacement_terms(
    talent: Talent, role_id: str, era: str | None, template: Deal | None
) -> Deal | None:
    """The deal a replacement would get: their rate (a day rate) on the dropped talent's
    terms (guaranteed days, fringe), as a day deal with no overtime. None: rate unknown."""
    if talent.rate is None:
        return None
    return Deal(
        id="estimate",
        talent_id=talent.id,
        role_id=role_id,
        era=era,
        rate=talent.rate,
        unit="day",
        guaranteed_days=template.guaranteed_days if template is not None else 0,
        fringe_rate=template.fringe_rate if template is not None else None,
        status="draft",
    )


def choose(plan: ContingencyPlan, ref: str) -> tuple[RolePlan, Replacement]:
    """Find a replacement in a plan by talent id, candidate id, id prefix or name."""
    hits: list[tuple[RolePlan, Replacement]] = []
    folded = ref.casefold()
    for role_plan in plan.roles:
        for rep in role_plan.replacements:
            ids = [rep.talent_id] + ([rep.candidate_id] if rep.candidate_id else [])
            if (
                ref in ids
                or (len(ref) >= 4 and any(i.startswith(ref) for i in ids))
                or rep.name.casefold() == folded
            ):
                hits.append((role_plan, rep))
    if not hits:
        raise NotFound(f"{ref!r} is not among the ranked replacements")
    if len(hits) > 1:
        raise Ambiguous(f"{ref!r} matches {len(hits)} replacements; use --role or the candidate id")
    return hits[0]


def live_deals(deals: list[Deal], talent_id: str, role_id: str, era: str | None) -> list[Deal]:
    """A talent's deals for a role (and era) that are not cancelled. ``era`` None: any era."""
    return [
        d
        for d in deals
        if d.talent_id == talent_id
        and d.role_id == role_id
        and d.status != "cancelled"
        and (era is None or d.era in (None, era))
    ]


def own_deal(deals: list[Deal], talent_id: str, role_id: str, era: str | None) -> Deal | None:
    """The replacement's own live deal for the role: one for this very era first."""
    mine = live_deals(deals, talent_id, role_id, era)
    return min(mine, key=lambda d: (d.era != era, d.id), default=None)


class AppliedChoice(msgspec.Struct, kw_only=True):
    """What applying a replacement changed (``replace --apply --json`` prints it, and so
    does the dashboard's API)."""

    booked: Candidate
    dropped: list[str]  # the dropped talent's candidate ids
    role_id: str
    replacement: Replacement
    cancelled_deals: list[Deal]
    deal: Deal | None  # the replacement's deal that now counts (drafted or their own)
    drafted: bool  # ``deal`` was created by this --apply
    deal_needed: bool  # no deal and no rate to draft one at: someone must add one
    was: dict[str, str] = {}  # a cancelled deal's id -> the status it had (not printed)

    def summary(self) -> dict[str, object]:
        """The stable JSON shape: every field but ``was``."""
        out = msgspec.structs.asdict(self)
        del out["was"]
        return out


def plan_choice(
    view: ProductionView, plan: ContingencyPlan, role_plan: RolePlan, chosen: Replacement
) -> tuple[Plan, Choice]:
    """What booking ``chosen`` does, for one role, as a plan applied in one transaction
    (see the module docstring): book them, drop the planned talent, cancel their deals for
    the role and give the replacement a deal. Nothing is written here."""
    today = dt.date.today().isoformat()
    why = f"{plan.talent} dropped out of {role_plan.role}, replaced by {chosen.name}"
    out: list[Edit] = []
    for cand_id in role_plan.candidate_ids:
        current = view.get(Candidate, cand_id)
        notes = append_line(current.notes, f"{today}: dropped; replaced by {chosen.name}")
        out.append(
            change(view, Candidate, cand_id, {"stage": "dropped", "notes": notes}, reason=why)
        )
    note = f"{today}: booked to replace {plan.talent}"
    # A ranking may name the talent only; their live candidate for the role (and era)
    # is the one booked then, never a second one beside it.
    candidate_id = chosen.candidate_id or next(
        (
            c.id
            for c in view.all(Candidate)
            if (c.talent_id, c.role_id, c.era)
            == (chosen.talent_id, role_plan.role_id, role_plan.era)
        ),
        None,
    )
    if candidate_id is not None:
        current = view.get(Candidate, candidate_id)
        era = current.era if current.era is not None else role_plan.era
        booking = change(
            view,
            Candidate,
            candidate_id,
            {"stage": "booked", "era": era, "notes": append_line(current.notes, note)},
            reason=why,
        )
    else:
        era = role_plan.era
        booking = create(
            view,
            Candidate,
            {
                "talent_id": chosen.talent_id,
                "role_id": role_plan.role_id,
                "era": era,
                "stage": "booked",
                "source": "contingency",
                "notes": note,
            },
            reason=why,
        )
    out.append(booking)
    role = view.get(Role, role_plan.role_id)
    keep = [b for b in role.backups if b not in (chosen.talent_id, booking.id)]
    if keep != role.backups:
        out.append(change(view, Role, role.id, {"backups": keep}, reason=why))
    # The dropped talent's deals for this role stop counting, except for an era they
    # are still booked in (their other candidates for the role).
    deals = view.all(Deal)
    still = {
        c.era
        for c in view.all(Candidate)
        if c.talent_id == plan.talent_id
        and c.role_id == role_plan.role_id
        and c.stage == "booked"
        and c.id not in role_plan.candidate_ids
    }
    to_cancel = [
        d
        for d in live_deals(deals, plan.talent_id, role_plan.role_id, role_plan.era)
        if d.era is None or d.era not in still or d.era == role_plan.era
    ]
    for deal in to_cancel:
        notes = append_line(deal.notes, f"{today}: cancelled: {why}")
        out.append(change(view, Deal, deal.id, {"status": "cancelled", "notes": notes}, reason=why))
    own = own_deal(deals, chosen.talent_id, role_plan.role_id, era)
    drafted: str | None = None
    if own is None:
        template = next(iter(to_cancel), None)
        talent = view.get(Talent, chosen.talent_id)
        terms = replacement_terms(talent, role_plan.role_id, era, template)
        if terms is not None:
            fields = msgspec.structs.asdict(terms)
            del fields["id"]
            fields["notes"] = (
                f"{today}: drafted by castroom replace at {talent.name}'s rate, "
                f"replacing {plan.talent}; negotiate, then set status"
            )
            draft = create(view, Deal, fields, reason=why)
            out.append(draft)
            drafted = draft.id
    choice = Choice(
        booked=booking.id,
        cancelled=[d.id for d in to_cancel],
        was={d.id: d.status for d in to_cancel},
        deal=own.id if own is not None else drafted,
        drafted=drafted is not None,
    )
    return Plan(edits=out, reason=why), choice


class Choice(msgspec.Struct, kw_only=True, frozen=True):
    """The ids a replacement plan books, cancels and drafts (known before it is applied)."""

    booked: str
    cancelled: list[str]
    was: dict[str, str]
    deal: str | None
    drafted: bool


def applied_choice(
    view: ProductionView,
    role_plan: RolePlan,
    chosen: Replacement,
    choice: Choice,
    applied: Applied,
) -> AppliedChoice:
    """What applying the plan changed, read back after it was applied."""
    deal = choice.deal
    return AppliedChoice(
        booked=applied.entity(Candidate, choice.booked),
        dropped=role_plan.candidate_ids,
        role_id=role_plan.role_id,
        replacement=chosen,
        cancelled_deals=[applied.entity(Deal, i) for i in choice.cancelled],
        was=choice.was,
        deal=(applied.entity(Deal, deal) if deal in applied.entities else view.get(Deal, deal))
        if deal is not None
        else None,
        drafted=choice.drafted,
        deal_needed=deal is None,
    )
