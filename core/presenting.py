"""Presentations: a role's selects shown to a producer or director through a read-only
link, whose viewers' votes and comments come back as ratings and notes on that role's
candidates.

The rule a presentation's writes keep lives here, once (:func:`check_scope`): a
presentation may change only the candidates it shows (:func:`selects`: that role, that
era when it names one, live, at its stage or later in the pipeline), and of those only
its own viewer's rating (``ratings[viewer_key(name)]``) and the end of the notes (a
comment is appended, never an edit of what is there). Its viewers are not members: their
ratings are keyed ``"Name (presentation)"`` (:data:`VIEWER_SUFFIX`), so a viewer who
types a member's name cannot overwrite that member's rating. :func:`plan_vote` builds a
vote as a :class:`~castroom.core.edits.Plan`, checked by the scope rule; the server
applies it with :func:`castroom.core.edits.apply`. No click, no tokens (those are the
server's, ``castroom.sync.auth``).
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any, TypeVar, get_args

import msgspec
from msgspec import Meta

from . import model
from .edits import Edit, Plan, append_line, change
from .errors import CastroomError, NotFound
from .labels import label
from .model import Candidate, Rating, Role, Stage, Talent
from .resolve import Reader

E = TypeVar("E", bound=model.Entity)

#: The candidate stages a presentation can start from, in the order a role moves through
#: them; declined, released and dropped candidates are never shown.
_STAGES: tuple[str, ...] = get_args(Stage)
PIPELINE = _STAGES[: _STAGES.index("booked") + 1]
#: What a viewer's name is followed by in ``ratings`` and in the history.
VIEWER_SUFFIX = model.VIEWER_SUFFIX
MAX_VIEWER = 60
MAX_COMMENT = 2_000
_SPACES = re.compile(r"\s+")


class PresentationRefused(CastroomError):
    """A write a presentation may not make (the server answers 403)."""


class Showing(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """What a presentation shows: the candidates of ``role_id`` (in ``era`` when set) at
    ``stage`` or later in :data:`PIPELINE`."""

    role_id: model.Id
    stage: Stage = "shortlisted"
    era: model.ShortText | None = None

    def __post_init__(self) -> None:
        if self.stage not in PIPELINE:
            raise ValueError(f"stage: a presentation starts at one of {', '.join(PIPELINE)}")

    def shows(self, candidate: Candidate) -> bool:
        """Whether ``candidate`` is one of this presentation's selects."""
        return (
            not candidate.deleted
            and candidate.role_id == self.role_id
            and (self.era is None or candidate.era == self.era)
            and candidate.stage in PIPELINE
            and PIPELINE.index(candidate.stage) >= PIPELINE.index(self.stage)
        )


class Vote(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """One viewer's vote on one select: 1 to 5 stars, a comment, or both."""

    candidate: model.Id
    rating: Rating | None = None
    comment: Annotated[str, Meta(max_length=MAX_COMMENT)] = ""


def showing(
    reader: Reader, role_id: str, *, stage: str = "shortlisted", era: str | None = None
) -> Showing:
    """A presentation of a live role (``era``: one of its eras), or one clear error."""
    role = reader_find(reader, Role, role_id)
    if role is None or role.deleted:
        raise NotFound(f"no role with id {role_id!r}")
    if era is not None and role.eras and role.era(era) is None:
        known = ", ".join(e.name for e in role.eras)
        raise CastroomError(f"era: {era!r} is not one of {role.name}'s eras ({known})")
    try:
        return Showing(role_id=role_id, stage=stage, era=era)  # type: ignore[arg-type]
    except (ValueError, TypeError) as exc:
        raise CastroomError(str(exc)) from None


def selects(reader: Reader, show: Showing) -> list[Candidate]:
    """The candidates ``show`` presents, furthest along first, then by talent name."""
    found = [c for c in reader.all(Candidate) if show.shows(c)]
    names = {c.talent_id: _talent_name(reader, c.talent_id) for c in found}
    return sorted(
        found, key=lambda c: (-PIPELINE.index(c.stage), names[c.talent_id].casefold(), c.id)
    )


def viewer_key(name: str) -> str:
    """The key a viewer's rating and comments go under: their name, tidied, and
    :data:`VIEWER_SUFFIX`."""
    tidy = _SPACES.sub(" ", name).strip()
    if not tidy or len(tidy) > MAX_VIEWER or not tidy.isprintable():
        raise CastroomError(f"viewer: give your name, 1 to {MAX_VIEWER} printable characters")
    return tidy + VIEWER_SUFFIX


def is_viewer_key(key: str) -> bool:
    """Whether a ratings key is a presentation viewer's, not a member's."""
    return key.endswith(VIEWER_SUFFIX)


def plan_vote(
    reader: Reader, show: Showing, viewer: str, vote: Vote, *, today: dt.date | None = None
) -> Plan:
    """The plan recording ``viewer``'s vote: their rating set (another vote replaces
    it), their comment appended to the candidate's notes, dated; checked by
    :func:`check_scope`."""
    key = viewer_key(viewer)
    candidate = _select(reader, show, vote.candidate)
    comment = _SPACES.sub(" ", vote.comment).strip()
    fields: dict[str, Any] = {}
    if vote.rating is not None:
        fields["ratings"] = {**candidate.ratings, key: vote.rating}
    if comment:
        day = (today or dt.date.today()).isoformat()
        fields["notes"] = append_line(candidate.notes, f"{day} {key}: {comment}")
    if not fields:
        raise CastroomError("vote: give a rating (1 to 5 stars), a comment, or both")
    edit = change(reader, Candidate, candidate.id, fields, reason=f"{key} voted")
    plan = Plan(edits=[edit], reason=f"{key} voted on {_talent_name(reader, candidate.talent_id)}")
    check_scope(reader, show, key, plan)
    return plan


def check_scope(reader: Reader, show: Showing, key: str, plan: Plan) -> None:
    """Refuse (:class:`PresentationRefused`) any edit in ``plan`` a presentation showing
    ``show`` may not make for the viewer whose ratings key is ``key``."""
    role = role_name(reader, show.role_id)
    for edit in plan.edits:
        if edit.op != "change" or edit.kind != "candidate":
            raise PresentationRefused(
                f"a presentation of {role} may only rate and comment on its selects:"
                f" it cannot {edit.op} a {edit.kind}"
            )
        candidate = _select(reader, show, edit.id)
        _check_fields(candidate, key, edit, role)


def _check_fields(candidate: Candidate, key: str, edit: Edit, role: str) -> None:
    other = sorted(set(edit.fields) - {"ratings", "notes"})
    if other:
        raise PresentationRefused(
            f"a presentation of {role} may only rate and comment: it cannot change"
            f" {', '.join(other)}"
        )
    if "ratings" in edit.fields:
        new = dict(edit.fields["ratings"] or {})
        changed = {
            k for k in set(new) | set(candidate.ratings) if new.get(k) != candidate.ratings.get(k)
        }
        if changed - {key}:
            raise PresentationRefused(
                f"a presentation's viewer may change only their own rating ({key}),"
                f" not {', '.join(sorted(changed - {key}))}'s"
            )
    if "notes" in edit.fields:
        kept = candidate.notes.rstrip()
        if not str(edit.fields["notes"]).startswith(kept):
            raise PresentationRefused(
                "a presentation may only add a comment to the notes, never change what is there"
            )


def _select(reader: Reader, show: Showing, candidate_id: str) -> Candidate:
    candidate = reader_find(reader, Candidate, candidate_id)
    if candidate is None or not show.shows(candidate):
        raise PresentationRefused(
            f"candidate {candidate_id!r} is not one of the selects of this presentation"
            f" of {role_name(reader, show.role_id)}"
        )
    return candidate


def reader_find(reader: Reader, cls: type[E], entity_id: str) -> E | None:
    """The entity stored under ``entity_id`` if it is there and valid."""
    data = reader.raw(cls, entity_id)
    if data is None:
        return None
    try:
        found = model.validate(cls, data)
    except CastroomError:
        return None
    return found if isinstance(found, cls) else None


def role_name(reader: Reader, role_id: str) -> str:
    """A role as people call it."""
    return label(reader, Role, reader.raw(Role, role_id) or {"id": role_id})


def _talent_name(reader: Reader, talent_id: str) -> str:
    return label(reader, Talent, reader.raw(Talent, talent_id) or {"id": talent_id})


# -- what the page shows ----------------------------------------------------------------------


class Select(msgspec.Struct, kw_only=True, frozen=True):
    """One select as a presentation shows it: who, how far along, their files, and the
    ratings its viewers gave (members' ratings and the notes stay in the room)."""

    candidate: str
    talent: str
    stage: str
    era: str | None
    playing_age_min: int | None
    playing_age_max: int | None
    union: str
    height_cm: int | None
    languages: list[str]
    skills: list[str]
    media: list[model.MediaRef]
    viewer_ratings: dict[str, int]


class Presented(msgspec.Struct, kw_only=True, frozen=True):
    """What a presentation's page shows."""

    production: str
    role: str
    description: str
    era: str | None
    stage: str
    selects: list[Select]

    def files(self) -> set[str]:
        """Every blob the page may fetch: the selects' files and what was derived."""
        out: set[str] = set()
        for select in self.selects:
            for ref in select.media:
                out.update(h for h in (ref.hash, ref.thumbnail, ref.poster) if h)
        return out

    def file(self, digest: str) -> model.MediaRef | None:
        """The record of an original file ``digest`` names (None for a derived one)."""
        refs = (r for s in self.selects for r in s.media if r.hash == digest)
        return next(refs, None)


def presented(reader: Reader, title: str, show: Showing) -> Presented:
    """The page's content for ``show`` in the production called ``title``."""
    role = reader_find(reader, Role, show.role_id)
    out = []
    for candidate in selects(reader, show):
        talent = reader_find(reader, Talent, candidate.talent_id)
        files = {**(talent.media if talent else {}), **candidate.media}
        out.append(
            Select(
                candidate=candidate.id,
                talent=_talent_name(reader, candidate.talent_id),
                stage=candidate.stage,
                era=candidate.era,
                playing_age_min=talent.playing_age_min if talent else None,
                playing_age_max=talent.playing_age_max if talent else None,
                union=talent.union if talent else "",
                height_cm=talent.height_cm if talent else None,
                languages=list(talent.languages) if talent else [],
                skills=list(talent.skills) if talent else [],
                media=sorted(files.values(), key=lambda r: (r.kind, r.added_at, r.hash)),
                viewer_ratings={k: v for k, v in candidate.ratings.items() if is_viewer_key(k)},
            )
        )
    return Presented(
        production=title,
        role=role_name(reader, show.role_id),
        description=role.description if role else "",
        era=show.era,
        stage=show.stage,
        selects=out,
    )
