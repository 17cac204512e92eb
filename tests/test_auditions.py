"""Audition slots planned around unavailability and other sessions, shown then applied;
and the clashes an audition can have, as findings."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from castroom.core.document import CastDocument
from castroom.core.errors import CastroomError
from castroom.core.model import Audition, Availability, Candidate, Pairing, Role, Talent
from castroom.core.view import ProductionView
from castroom.plugins import auditions

DAY = dt.date(2027, 3, 1)


def casting() -> tuple[CastDocument, dict[str, str]]:
    """Nora's shortlist: Ada (rated 5), Bo (4), Cy (3), Di (unrated, away that day). Bo
    is at a chemistry read 10:00-10:30; Studio 2 holds another role's audition 10:30-10:45."""
    doc = CastDocument.create("Harbour Lights")
    nora = doc.add(Role, name="Nora")
    tom = doc.add(Role, name="Tom")
    ids = {"nora": nora.id}
    for name, rating in [("Ada", 5), ("Bo", 4), ("Cy", 3), ("Di", None)]:
        talent = doc.add(Talent, name=name)
        ratings = {"casting": rating} if rating else {}
        cand = doc.add(
            Candidate, talent_id=talent.id, role_id=nora.id, stage="shortlisted", ratings=ratings
        )
        ids[name] = talent.id
        ids[f"{name}-cand"] = cand.id
    doc.add(Availability, talent_id=ids["Di"], start=DAY, end=DAY, kind="unavailable")
    eve = doc.add(Talent, name="Eve")
    tom_cand = doc.add(Candidate, talent_id=eve.id, role_id=tom.id, stage="chemistry_read")
    doc.add(
        Audition,
        role_ids=[nora.id, tom.id],
        chemistry=True,
        starts_at=dt.datetime(2027, 3, 1, 10, 0),
        minutes=30,
        place="Studio 1",
        pairings=[Pairing(candidate_ids=[ids["Bo-cand"], tom_cand.id])],
    )
    doc.add(
        Audition,
        role_id=tom.id,
        starts_at=dt.datetime(2027, 3, 1, 10, 30),
        minutes=15,
        place="Studio 2",
        candidate_ids=[tom_cand.id],
    )
    return doc, ids


def test_slots_avoid_unavailability_other_sessions_and_a_busy_room() -> None:
    doc, ids = casting()
    view = ProductionView(doc)
    request = auditions.request_from("2027-03-01", "10:00", 15, None, "Studio 2", "")
    proposal = auditions.plan(view, doc.get(Role, ids["nora"]), request)
    assert [(s.starts_at.strftime("%H:%M"), s.talent) for s in proposal.slots] == [
        ("10:00", "Ada"),  # best rated first
        ("10:15", "Cy"),  # Bo is at the chemistry read until 10:30 ...
        ("10:45", "Bo"),  # ... and Studio 2 is taken 10:30-10:45
    ]
    assert [(u.talent, u.reason) for u in proposal.unplaced] == [
        ("Di", "unavailable 2027-03-01..2027-03-01")
    ]
    short = auditions.request_from("2027-03-01", "10:00", 15, "10:30", "Studio 2", "")
    tight = auditions.plan(view, doc.get(Role, ids["nora"]), short)
    assert [u.reason for u in tight.unplaced] == [
        "no free slot before 10:30",
        "unavailable 2027-03-01..2027-03-01",
    ]


def test_cli_shows_the_plan_then_applies_it(cli) -> None:
    cli("init", "--production", "Harbour Lights")
    cli("add", "role", "name=Nora")
    for name in ("Ada", "Bo"):
        cli("add", "talent", f"name={name}")
        cli("add", "candidate", f"talent_id={name}", "role_id=Nora", "stage=shortlisted")
    args = ["audition", "plan", "Nora", "--on", "2027-03-01", "--from", "10:00", "--slot", "20"]
    shown = cli(*args, "--link", "https://meet.example/nora")
    assert shown.exit_code == 0, shown.output
    assert "10:00-10:20  Ada" in shown.stdout and "10:20-10:40  Bo" in shown.stdout
    assert "add --apply" in shown.stderr
    assert json.loads(cli("list", "auditions", "--json").stdout) == []  # nothing written
    done = cli(*args, "--link", "https://meet.example/nora", "--apply")
    assert done.exit_code == 0, done.output
    booked = json.loads(cli("list", "auditions", "--json").stdout)
    assert sorted((a["starts_at"][11:16], a["link"]) for a in booked) == [
        ("10:00", "https://meet.example/nora"),
        ("10:20", "https://meet.example/nora"),
    ]
    stages = {c["stage"] for c in json.loads(cli("list", "candidates", "--json").stdout)}
    assert stages == {"audition"}
    again = cli(*args, "--apply")  # no one is shortlisted now
    assert again.exit_code == 1 and "Nora has no shortlisted candidates" in again.stderr


@pytest.mark.parametrize(
    ("extra", "error"),
    [
        (["--place", "Studio", "--link", "https://x"], "give --place or --link, not both"),
        (["--until", "09:00"], "--until must be after --from"),
        (["--from", "ten"], "--from expects a time HH:MM, got 'ten'"),
        (["--on", "1 March"], "--on expects a date YYYY-MM-DD"),
    ],
)
def test_bad_plan_options_are_one_error_and_write_nothing(
    cli, extra: list[str], error: str
) -> None:
    cli("init", "--production", "Harbour Lights")
    cli("add", "role", "name=Nora")
    cli("add", "talent", "name=Ada")
    cli("add", "candidate", "talent_id=Ada", "role_id=Nora", "stage=shortlisted")
    base = {"--on": "2027-03-01", "--from": "10:00"}
    for flag, value in zip(extra[::2], extra[1::2], strict=True):
        base[flag] = value
    args = [x for pair in base.items() for x in pair]
    failed = cli("audition", "plan", "Nora", *args, "--apply")
    assert failed.exit_code != 0 and error in failed.stderr, failed.stderr
    assert json.loads(cli("list", "auditions", "--json").stdout) == []


def test_a_chemistry_clash_and_an_audition_on_a_day_away_are_findings() -> None:
    doc, ids = casting()
    # Bo's audition overlaps the chemistry read; Di is auditioned on her day away.
    doc.add(
        Audition,
        role_id=ids["nora"],
        starts_at=dt.datetime(2027, 3, 1, 10, 15),
        minutes=15,
        candidate_ids=[ids["Bo-cand"]],
    )
    doc.add(
        Audition,
        role_id=ids["nora"],
        starts_at=dt.datetime(2027, 3, 1, 12, 0),
        candidate_ids=[ids["Di-cand"]],
    )
    found = auditions.check(ProductionView(doc))
    got = sorted((f.code, f.message) for f in found)
    assert got == [
        (
            "audition.conflict",
            "Bo is due at the chemistry read for Nora, Tom at 2027-03-01 10:00 and the "
            "audition for Nora at 2027-03-01 10:15, which overlap",
        ),
        (
            "audition.unavailable",
            "Di is unavailable (2027-03-01..2027-03-01) on the day of the audition for Nora "
            "at 2027-03-01 12:00",
        ),
    ]


def test_check_reports_them_through_the_cli(cli) -> None:
    cli("init", "--production", "Harbour Lights")
    cli("add", "role", "name=Nora")
    cli("add", "talent", "name=Ada")
    cli("add", "candidate", "talent_id=Ada", "role_id=Nora")
    cli("add", "availability", "talent_id=Ada", "start=2027-03-01", "end=2027-03-02")
    cand = json.loads(cli("list", "candidates", "--json").stdout)[0]["id"]
    cli(
        "add", "audition", "role_id=Nora", "starts_at=2027-03-01T10:00", f'candidate_ids=["{cand}"]'
    )
    out = cli("check", "--json")
    report = json.loads(out.stdout)
    codes = [f["code"] for f in report["findings"]]
    assert "audition.unavailable" in codes and not report["failures"]


def test_no_shortlist_says_which_candidate_to_shortlist_and_how() -> None:
    """A candidate has no name to type: the refusal gives the ids that `set` takes."""
    doc = CastDocument.create("X")
    role = doc.add(Role, name="Nora")
    ada = doc.add(Talent, name="Ada Stone")
    cand = doc.add(Candidate, talent_id=ada.id, role_id=role.id, stage="submitted")
    request = auditions.request_from("2027-03-01", "10:00", 15, None, "", "")
    with pytest.raises(CastroomError) as refused:
        auditions.plan(ProductionView(doc), role, request)
    message = str(refused.value)
    assert "Ada Stone (submitted)" in message
    assert f"castroom set candidate {cand.id[:8]} stage=shortlisted" in message


def test_plan_needs_a_shortlist() -> None:
    doc = CastDocument.create("X")
    role = doc.add(Role, name="Nora")
    request = auditions.request_from("2027-03-01", "10:00", 15, None, "", "")
    with pytest.raises(CastroomError, match="Nora has no shortlisted candidates"):
        auditions.plan(ProductionView(doc), role, request)
