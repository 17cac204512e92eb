"""Built-in plugin: audition slots, and the clashes an audition can have.

``castroom audition plan ROLE --on DATE --from 10:00 --slot 15 [--until 18:00]
[--place P | --link URL] [--apply]`` puts the role's shortlisted candidates into
back-to-back slots: best rated first, each in the first slot that day where the talent
is not unavailable, not already at another audition or chemistry read, and the room (or
link) is free. The plan is printed first; ``--apply`` writes it in one transaction (an
audition per slot, each candidate moved to the ``audition`` stage). A candidate who
cannot be placed is listed with the reason.

Checks (``castroom check``): two sessions of one talent that overlap (an audition and a
chemistry read, or two auditions) and an audition on a day the talent is unavailable.
"""

from __future__ import annotations

import datetime as dt
import shlex
from collections.abc import Callable, Iterable
from typing import Annotated

import click
import msgspec
from msgspec import Meta

from castroom.core.api import (
    Audition,
    Availability,
    Candidate,
    CastroomError,
    CommandContext,
    EntityRef,
    Finding,
    ImportResult,
    ProductionView,
    Role,
    Talent,
    hookimpl,
    model,
    pass_command,
    plan_import,
    short_ids,
)

#: Availability kinds that keep a talent from an audition that day.
BLOCKING = frozenset({"unavailable"})


class Slot(msgspec.Struct, kw_only=True, frozen=True):
    """One planned audition: a candidate, when, and for how long."""

    candidate_id: str
    talent: str
    starts_at: dt.datetime
    minutes: int


class Unplaced(msgspec.Struct, kw_only=True, frozen=True):
    candidate_id: str
    talent: str
    reason: str


class AuditionPlan(msgspec.Struct, kw_only=True, frozen=True):
    """What ``audition plan`` proposes, before anything is written."""

    role_id: str
    role: str
    date: dt.date
    place: str = ""
    link: str = ""
    slots: tuple[Slot, ...] = ()
    unplaced: tuple[Unplaced, ...] = ()


class PlanRequest(msgspec.Struct, kw_only=True, frozen=True):
    """The day a role's auditions go in: slots of ``minutes`` from ``start`` to ``end``."""

    date: dt.date
    start: dt.time
    minutes: Annotated[int, Meta(ge=1, le=24 * 60)]
    end: dt.time | None = None
    place: str = ""
    link: str = ""

    def __post_init__(self) -> None:
        if self.place and self.link:
            raise ValueError("give --place or --link, not both")
        if self.end is not None and self.end <= self.start:
            raise ValueError("--until must be after --from")


def _span(audition: Audition) -> tuple[dt.datetime, dt.datetime]:
    start = audition.starts_at.replace(tzinfo=None)
    return start, start + dt.timedelta(minutes=audition.minutes)


def _talents_of(audition: Audition, candidates: dict[str, Candidate]) -> set[str]:
    """Every talent an audition or chemistry read holds (its candidates and pairings)."""
    ids = set(audition.candidate_ids)
    for pairing in audition.pairings:
        ids.update(pairing.candidate_ids)
    return {candidates[c].talent_id for c in ids if c in candidates}


def _rating(candidate: Candidate) -> float:
    values = list(candidate.ratings.values())
    return sum(values) / len(values) if values else 0.0


def _unavailable(view: ProductionView, talent_id: str, day: dt.date) -> Availability | None:
    for item in view.availability_by_talent.get(talent_id, []):
        if item.kind in BLOCKING and item.covers(day):
            return item
    return None


def _quoted(text: str) -> str:
    """``text`` as a shell word, in the double quotes people write (``"Will's Date"``)."""
    return f'"{text}"' if not set(text) & set('"$`\\!') else shlex.quote(text)


def _no_shortlist(role: Role, others: list[Candidate], name: Callable[[Candidate], str]) -> str:
    """Why there is nothing to plan, with the ids `castroom set candidate` takes (a
    candidate has no name of its own to type)."""
    if not others:
        return (
            f"{role.name} has no shortlisted candidates, nor any other: add one with"
            f" castroom add candidate talent_id=NAME role_id={_quoted(role.name)}"
            " stage=shortlisted"
        )
    short = short_ids(c.id for c in others)
    others = sorted(others, key=lambda c: (name(c).casefold(), c.id))
    listed = ", ".join(f"{name(c)} ({c.stage}) {short[c.id]}" for c in others[:5])
    more = f" and {len(others) - 5} more" if len(others) > 5 else ""
    first = short[others[0].id]
    return (
        f"{role.name} has no shortlisted candidates: {listed}{more}; shortlist one with"
        f" castroom set candidate {first} stage=shortlisted"
    )


def plan(view: ProductionView, role: Role, request: PlanRequest) -> AuditionPlan:
    """The slots for ``role``'s shortlisted candidates (see the module docstring)."""
    candidates = {c.id: c for c in view.candidates}
    shortlisted = [
        c for c in candidates.values() if c.role_id == role.id and c.stage == "shortlisted"
    ]

    def name(c: Candidate) -> str:
        talent = view.talents.get(c.talent_id)
        return talent.name if talent else c.talent_id

    if not shortlisted:
        raise CastroomError(
            _no_shortlist(role, [c for c in candidates.values() if c.role_id == role.id], name)
        )

    shortlisted.sort(key=lambda c: (-_rating(c), name(c).casefold(), c.id))
    busy: dict[str, list[tuple[dt.datetime, dt.datetime]]] = {}  # talent -> sessions
    room: list[tuple[dt.datetime, dt.datetime]] = []  # the place's (or link's) sessions
    for audition in view.all(Audition):
        span = _span(audition)
        for talent_id in _talents_of(audition, candidates):
            busy.setdefault(talent_id, []).append(span)
        where = audition.place or audition.link
        if where and where == (request.place or request.link):
            room.append(span)
    start = dt.datetime.combine(request.date, request.start)
    end = dt.datetime.combine(request.date, request.end or dt.time(23, 59))
    length = dt.timedelta(minutes=request.minutes)
    taken: list[tuple[dt.datetime, dt.datetime]] = []
    slots: list[Slot] = []
    unplaced: list[Unplaced] = []
    for candidate in shortlisted:
        who = name(candidate)
        away = _unavailable(view, candidate.talent_id, request.date)
        if away is not None:
            unplaced.append(
                Unplaced(
                    candidate_id=candidate.id,
                    talent=who,
                    reason=f"unavailable {away.start}..{away.end}",
                )
            )
            continue
        clashes = busy.get(candidate.talent_id, []) + room + taken
        at = start
        while at + length <= end and any(a < at + length and at < b for a, b in clashes):
            at += length
        if at + length > end:
            until = request.end.strftime("%H:%M") if request.end else "midnight"
            unplaced.append(
                Unplaced(
                    candidate_id=candidate.id, talent=who, reason=f"no free slot before {until}"
                )
            )
            continue
        taken.append((at, at + length))
        slots.append(
            Slot(candidate_id=candidate.id, talent=who, starts_at=at, minutes=request.minutes)
        )
    slots.sort(key=lambda s: s.starts_at)
    return AuditionPlan(
        role_id=role.id,
        role=role.name,
        date=request.date,
        place=request.place,
        link=request.link,
        slots=tuple(slots),
        unplaced=tuple(unplaced),
    )


def plan_entities(view: ProductionView, proposal: AuditionPlan) -> list[model.Entity]:
    """What applying the plan writes: one audition per slot, each candidate at stage
    ``audition``."""
    candidates = {c.id: c for c in view.candidates}
    out: list[model.Entity] = []
    for slot in proposal.slots:
        out.append(
            Audition(
                id=model.new_id(),
                role_id=proposal.role_id,
                starts_at=slot.starts_at,
                minutes=slot.minutes,
                place=proposal.place,
                link=proposal.link,
                candidate_ids=[slot.candidate_id],
            )
        )
        out.append(msgspec.structs.replace(candidates[slot.candidate_id], stage="audition"))
    return out


# -- checks -------------------------------------------------------------------------------------


def _ref(view: ProductionView, entity: model.Entity) -> EntityRef:
    return EntityRef(kind=entity.entity_kind, id=entity.id, label=view.label(entity))


def _what(audition: Audition, view: ProductionView) -> str:
    roles = [audition.role_id] if audition.role_id else list(audition.role_ids)
    names = ", ".join(view.roles[r].name for r in roles if r in view.roles) or "a role"
    kind = "chemistry read" if audition.chemistry else "audition"
    return f"the {kind} for {names} at {audition.starts_at:%Y-%m-%d %H:%M}"


def _warning(code: str, message: str, fix: str, view: ProductionView, *about: model.Entity):
    refs = tuple(_ref(view, entity) for entity in about)
    return Finding(code=code, severity="warning", message=message, entities=refs, fix=fix)


def _clashes(view: ProductionView, talent: Talent, sessions: list[Audition]) -> list[Finding]:
    """One talent's sessions (in time order): a day away, or two that overlap."""
    out = []
    for i, first in enumerate(sessions):
        away = _unavailable(view, talent.id, _span(first)[0].date())
        if away is not None:
            message = (
                f"{talent.name} is unavailable ({away.start}..{away.end}) on the day of "
                f"{_what(first, view)}"
            )
            fix = "move the audition to another day, or check the availability"
            out.append(_warning("audition.unavailable", message, fix, view, first, talent, away))
        for second in sessions[i + 1 :]:
            a, b = _span(first), _span(second)
            if a[0] < b[1] and b[0] < a[1]:
                message = (
                    f"{talent.name} is due at {_what(first, view)} and {_what(second, view)}, "
                    "which overlap"
                )
                fix = "move one of them (castroom set audition ID starts_at=...)"
                out.append(_warning("audition.conflict", message, fix, view, first, second, talent))
    return out


def check(view: ProductionView) -> list[Finding]:
    candidates = {c.id: c for c in view.candidates}
    by_talent: dict[str, list[Audition]] = {}
    findings: list[Finding] = []
    for audition in sorted(view.all(Audition), key=lambda a: (_span(a)[0], a.id)):
        for talent_id in sorted(_talents_of(audition, candidates)):
            by_talent.setdefault(talent_id, []).append(audition)
    for talent_id, sessions in by_talent.items():
        talent: Talent | None = view.find(Talent, talent_id)  # the few who audition
        if talent is not None:
            findings.extend(_clashes(view, talent, sessions))
    return findings


@hookimpl(trylast=True)
def castroom_check(view: ProductionView) -> Iterable[Finding]:
    return check(view)


# -- the command --------------------------------------------------------------------------------


def _time(text: str, flag: str) -> dt.time:
    try:
        return dt.time.fromisoformat(text)
    except ValueError:
        raise CastroomError(f"{flag} expects a time HH:MM, got {text!r}") from None


def request_from(on: str, start: str, slot: int, until: str | None, place: str, link: str):
    try:
        date = dt.date.fromisoformat(on)
    except ValueError:
        raise CastroomError(f"--on expects a date YYYY-MM-DD, got {on!r}") from None
    try:
        return PlanRequest(
            date=date,
            start=_time(start, "--from"),
            minutes=slot,
            end=_time(until, "--until") if until else None,
            place=place,
            link=link,
        )
    except (ValueError, msgspec.ValidationError) as exc:
        raise CastroomError(str(exc)) from None


def render(proposal: AuditionPlan) -> list[str]:
    where = proposal.place or proposal.link or "no place set"
    lines = [f"Auditions for {proposal.role} on {proposal.date} ({where}):"]
    for slot in proposal.slots:
        ends = slot.starts_at + dt.timedelta(minutes=slot.minutes)
        lines.append(f"  {slot.starts_at:%H:%M}-{ends:%H:%M}  {slot.talent}")
    for item in proposal.unplaced:
        lines.append(f"  not placed: {item.talent} ({item.reason})")
    return lines


@hookimpl(trylast=True)
def castroom_register_commands(cli: click.Group) -> None:
    @cli.group(name="audition")
    def audition() -> None:
        """Audition slots for a role's shortlisted candidates."""

    @audition.command(name="plan")
    @click.argument("role_ref", metavar="ROLE")
    @click.option("--on", "on", required=True, help="The day, YYYY-MM-DD.")
    @click.option("--from", "start", required=True, help="First slot, HH:MM.")
    @click.option(
        "--slot",
        type=click.IntRange(1, 24 * 60),
        default=15,
        show_default=True,
        help="Minutes per slot.",
    )
    @click.option("--until", default=None, help="No slot ends after this, HH:MM.")
    @click.option("--place", default="", help="The room.")
    @click.option("--link", default="", help="A video link instead of a room.")
    @click.option("--apply", "apply_", is_flag=True, help="Write the plan (else only show it).")
    @click.option("--json", "as_json", is_flag=True, help="The plan as JSON.")
    @pass_command
    def audition_plan(
        obj: CommandContext,
        role_ref: str,
        on: str,
        start: str,
        slot: int,
        until: str | None,
        place: str,
        link: str,
        apply_: bool,
        as_json: bool,
    ) -> None:
        """Put ROLE's shortlisted candidates into slots; --apply writes them."""
        view = obj.view()
        role = view.resolve(Role, role_ref)
        proposal = plan(view, role, request_from(on, start, slot, until, place, link))
        if as_json:
            click.echo(msgspec.json.encode(proposal).decode())
        else:
            for line in render(proposal):
                click.echo(line)
        if not apply_:
            if proposal.slots and not as_json:
                click.echo("Nothing written: add --apply to book these slots.", err=True)
            return
        entities = plan_entities(view, proposal)
        applied = obj.apply(plan_import(view, ImportResult(entities=entities)))
        click.echo(
            f"Booked {len(proposal.slots)} audition(s) ({applied.created} created).", err=True
        )
