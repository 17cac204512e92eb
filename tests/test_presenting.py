"""Presentations' scope rule (core/presenting.py) and `castroom present` (make, list,
end). The server side, the page and the browser are in test_present_server.py and
test_web_present.py."""

from __future__ import annotations

import datetime as dt
import json
import time

import pytest

from castroom.core import edits, model, presenting
from castroom.core.document import CastDocument
from castroom.core.errors import CastroomError, NotFound
from castroom.core.presenting import PresentationRefused, Showing, Vote
from castroom.sync.auth import TokenStore

TODAY = dt.date(2026, 12, 1)


@pytest.fixture
def doc() -> CastDocument:
    doc = CastDocument.create("Night Train")
    nora = doc.add(model.Role, name="Nora", eras=[{"name": "1962"}, {"name": "1985"}])
    sam = doc.add(model.Role, name="Sam")
    names = ["Ada Stone", "Bea Lund", "Cal Reyes", "Dee Moss", "Eve Hart", "Fay Orr"]
    talents = {n: doc.add(model.Talent, name=n) for n in names}
    rows = [
        ("Ada Stone", nora, "shortlisted", "1962"),
        ("Bea Lund", nora, "callback", "1962"),
        ("Cal Reyes", nora, "submitted", "1962"),  # not yet shortlisted
        ("Dee Moss", nora, "declined", "1962"),  # out
        ("Eve Hart", nora, "booked", "1985"),  # another era
        ("Fay Orr", sam, "shortlisted", None),  # another role
    ]
    for name, role, stage, era in rows:
        doc.add(model.Candidate, talent_id=talents[name].id, role_id=role.id, stage=stage, era=era)
    gone = doc.add(model.Talent, name="Gil Park")
    deleted = doc.add(model.Candidate, talent_id=gone.id, role_id=nora.id, stage="offer")
    doc.delete(model.Candidate, deleted.id)
    return doc


def _role(doc: CastDocument, name: str) -> model.Role:
    return next(r for r in doc.all(model.Role) if r.name == name)


def _candidate(doc: CastDocument, talent: str, role: str = "Nora") -> model.Candidate:
    talent_id = next(t.id for t in doc.all(model.Talent) if t.name == talent)
    role_id = _role(doc, role).id
    return next(
        c
        for c in doc.all(model.Candidate, include_deleted=True)
        if c.talent_id == talent_id and c.role_id == role_id
    )


def _names(doc: CastDocument, show: Showing) -> list[str]:
    return [doc.get(model.Talent, c.talent_id).name for c in presenting.selects(doc, show)]


def test_selects_are_the_roles_live_candidates_at_the_stage_or_later(doc: CastDocument) -> None:
    nora = _role(doc, "Nora").id
    assert _names(doc, presenting.showing(doc, nora)) == ["Eve Hart", "Bea Lund", "Ada Stone"]
    assert _names(doc, presenting.showing(doc, nora, stage="callback")) == ["Eve Hart", "Bea Lund"]
    assert _names(doc, presenting.showing(doc, nora, era="1962")) == ["Bea Lund", "Ada Stone"]
    submitted = presenting.showing(doc, nora, stage="submitted", era="1962")
    assert _names(doc, submitted) == ["Bea Lund", "Ada Stone", "Cal Reyes"]


def test_a_presentation_needs_a_live_role_a_known_era_and_a_pipeline_stage(
    doc: CastDocument,
) -> None:
    nora = _role(doc, "Nora").id
    with pytest.raises(NotFound, match="no role"):
        presenting.showing(doc, "01NOSUCHROLE")
    with pytest.raises(CastroomError, match="'2001' is not one of Nora's eras"):
        presenting.showing(doc, nora, era="2001")
    with pytest.raises(CastroomError, match="stage: a presentation starts at one of"):
        presenting.showing(doc, nora, stage="declined")


def test_a_vote_is_the_viewers_rating_and_a_dated_comment(doc: CastDocument) -> None:
    show = presenting.showing(doc, _role(doc, "Nora").id)
    ada = _candidate(doc, "Ada Stone")
    doc.update(model.Candidate, ada.id, {"ratings": {"Rosa": 3}, "notes": "Strong read."})
    vote = Vote(candidate=ada.id, rating=5, comment="  Perfect   for the  part ")
    plan = presenting.plan_vote(doc, show, "Pat Kim", vote, today=TODAY)
    edits.apply(doc, plan)
    after = doc.get(model.Candidate, ada.id)
    assert after.ratings == {"Rosa": 3, "Pat Kim (presentation)": 5}
    assert after.notes == "Strong read.\n2026-12-01 Pat Kim (presentation): Perfect for the part"
    assert after.stage == "shortlisted"
    # Voting again replaces the viewer's rating; a comment alone leaves it.
    edits.apply(doc, presenting.plan_vote(doc, show, "Pat Kim", Vote(candidate=ada.id, rating=2)))
    edits.apply(
        doc, presenting.plan_vote(doc, show, "Pat Kim", Vote(candidate=ada.id, comment="ok"))
    )
    assert doc.get(model.Candidate, ada.id).ratings["Pat Kim (presentation)"] == 2


def test_a_rating_kept_as_stored_needs_no_member_but_a_new_one_does(doc: CastDocument) -> None:
    # The dashboard rates under its token's name, which need not be a member's.
    ada = _candidate(doc, "Ada Stone")
    doc.update(model.Candidate, ada.id, {"ratings": {"rosa": 3}})
    kept = edits.change(
        doc, model.Candidate, ada.id, {"ratings": {"rosa": 3, "Pat (presentation)": 4}}
    )
    assert kept.fields["ratings"] == {"rosa": 3, "Pat (presentation)": 4}
    with pytest.raises(NotFound, match="no member matching 'rosa'"):
        edits.change(doc, model.Candidate, ada.id, {"ratings": {"rosa": 5}})
    with pytest.raises(NotFound, match="no member matching 'cal'"):
        edits.change(doc, model.Candidate, ada.id, {"ratings": {"rosa": 3, "cal": 2}})


def test_a_viewer_named_like_a_member_does_not_touch_the_members_rating(
    doc: CastDocument,
) -> None:
    show = presenting.showing(doc, _role(doc, "Nora").id)
    ada = _candidate(doc, "Ada Stone")
    doc.update(model.Candidate, ada.id, {"ratings": {"Rosa": 3}})
    edits.apply(doc, presenting.plan_vote(doc, show, "Rosa", Vote(candidate=ada.id, rating=1)))
    assert doc.get(model.Candidate, ada.id).ratings == {"Rosa": 3, "Rosa (presentation)": 1}


@pytest.mark.parametrize(
    ("talent", "role"),
    [
        ("Fay Orr", "Sam"),  # another role
        ("Cal Reyes", "Nora"),  # before the presentation's stage
        ("Dee Moss", "Nora"),  # declined
        ("Gil Park", "Nora"),  # deleted
        ("Eve Hart", "Nora"),  # another era than the presentation's
    ],
)
def test_a_vote_on_a_candidate_that_is_not_a_select_is_refused(
    doc: CastDocument, talent: str, role: str
) -> None:
    show = presenting.showing(doc, _role(doc, "Nora").id, era="1962")
    other = _candidate(doc, talent, role)
    before = doc.stored_fields(model.Candidate, other.id)
    with pytest.raises(PresentationRefused, match="not one of the selects of this presentation"):
        presenting.plan_vote(doc, show, "Pat", Vote(candidate=other.id, rating=4))
    assert doc.stored_fields(model.Candidate, other.id) == before


def _change(doc: CastDocument, candidate: model.Candidate, fields: dict) -> edits.Plan:
    return edits.Plan(edits=[edits.change(doc, model.Candidate, candidate.id, fields)])


def test_the_scope_rule_refuses_every_other_write(doc: CastDocument) -> None:
    show = presenting.showing(doc, _role(doc, "Nora").id)
    ada = _candidate(doc, "Ada Stone")
    doc.add(model.Member, name="Rosa")
    doc.update(model.Candidate, ada.id, {"ratings": {"Rosa": 3}, "notes": "Strong read."})
    key = presenting.viewer_key("Pat")
    check = presenting.check_scope
    with pytest.raises(PresentationRefused, match="it cannot change stage"):
        check(doc, show, key, _change(doc, ada, {"stage": "booked"}))
    with pytest.raises(PresentationRefused, match="it cannot change backup_rank, stage"):
        check(doc, show, key, _change(doc, ada, {"stage": "offer", "backup_rank": 1}))
    with pytest.raises(
        PresentationRefused, match=r"only their own rating \(Pat \(presentation\)\)"
    ):
        check(doc, show, key, _change(doc, ada, {"ratings": {"Rosa": 5}}))
    with pytest.raises(PresentationRefused, match="not Rosa's"):
        check(doc, show, key, _change(doc, ada, {"ratings": {key: 4}}))  # drops Rosa's
    with pytest.raises(PresentationRefused, match="never change what is there"):
        check(doc, show, key, _change(doc, ada, {"notes": "Weak read."}))
    talent = doc.get(model.Talent, ada.talent_id)
    renamed = edits.change(doc, model.Talent, talent.id, {"name": "Ada X"})
    with pytest.raises(PresentationRefused, match="it cannot change a talent"):
        check(doc, show, key, edits.Plan(edits=[renamed]))
    new = edits.create(
        doc, model.Candidate, {"talent_id": talent.id, "role_id": ada.role_id, "era": "1985"}
    )
    with pytest.raises(PresentationRefused, match="it cannot create a candidate"):
        check(doc, show, key, edits.Plan(edits=[new]))
    deleting = edits.delete(doc, model.Candidate, ada.id)
    with pytest.raises(PresentationRefused, match="it cannot delete a candidate"):
        check(doc, show, key, edits.Plan(edits=[deleting]))
    # What a vote writes passes: its own rating, appended notes.
    check(doc, show, key, _change(doc, ada, {"ratings": {"Rosa": 3, key: 4}}))
    check(doc, show, key, _change(doc, ada, {"notes": "Strong read.\nmore"}))


@pytest.mark.parametrize("name", ["", "   ", "x" * 61, "\x1b[31mPat", "Pat\x00"])
def test_a_viewer_gives_a_name(name: str) -> None:
    with pytest.raises(CastroomError, match="viewer: give your name"):
        presenting.viewer_key(name)


def test_a_viewers_name_is_tidied() -> None:
    assert presenting.viewer_key("  Pat \n  Kim ") == "Pat Kim (presentation)"


def test_a_vote_with_neither_rating_nor_comment_is_refused(doc: CastDocument) -> None:
    show = presenting.showing(doc, _role(doc, "Nora").id)
    ada = _candidate(doc, "Ada Stone")
    with pytest.raises(CastroomError, match="give a rating"):
        presenting.plan_vote(doc, show, "Pat", Vote(candidate=ada.id, comment="   "))


# -- the token that carries a presentation -----------------------------------------------------


def test_a_presentations_token_reads_no_production(workspace) -> None:
    production = workspace.create_production("Night Train")
    role = production.doc.add(model.Role, name="Nora")
    tokens = TokenStore(workspace.store)
    show = presenting.showing(production.doc, role.id)
    info, secret = tokens.create(
        "present", production=production.id, presentation=show, expires_in=60
    )
    assert tokens.verify(secret).presentation == show
    assert not info.may_read(production.id) and not info.may_write(production.id)
    with pytest.raises(CastroomError, match="opens its presentation page only"):
        tokens.authorize(secret, production.id, write=False)
    with pytest.raises(CastroomError, match="opens its presentation page only"):
        tokens.authorize(secret, None, write=False)
    with pytest.raises(CastroomError, match="shows one production's role"):
        tokens.create("present", production=production.id)
    with pytest.raises(CastroomError, match="shows one production's role"):
        tokens.create("read", production=production.id, presentation=show)


# -- castroom present -------------------------------------------------------------------------


def _setup(cli) -> None:
    assert cli("init", "--production", "Night Train").exit_code == 0
    for args in [
        ("role", "name=Nora"),
        ("role", "name=Sam"),
        ("talent", "name=Ada Stone"),
        ("candidate", "talent_id=Ada Stone", "role_id=Nora", "stage=shortlisted"),
    ]:
        result = cli("add", *args)
        assert result.exit_code == 0, result.output


def test_present_list_says_expired_for_a_link_past_its_expiry(cli) -> None:
    """presentations.md: `--list` shows each presentation as active, expired or ended."""
    from castroom.core.workspace import Workspace

    _setup(cli)
    with Workspace.open(cli.path, create=False) as ws:
        doc = ws.production().doc
        show = presenting.showing(doc, doc.resolve_id(model.Role, "Nora"))
        info, _ = TokenStore(ws.store).create(
            "present", production=ws.production().id, presentation=show, expires_in=-1
        )
    [row] = json.loads(cli("present", "--list", "--json").output)
    assert (row["id"], row["state"]) == (info.id, "expired")
    assert f"{info.id}  expired " in cli("present", "--list").output


def test_present_makes_lists_and_ends_a_link(cli) -> None:
    _setup(cli)
    made = cli("present", "Nora", "--expires", "2d", "--name", "producers")
    assert made.exit_code == 0, made.output
    lines = made.output.strip().splitlines()
    assert lines[0].startswith("Presentation ")
    assert "of Nora: candidates at shortlisted or later (1 select), until " in lines[0]
    assert lines[-1].startswith("http://127.0.0.1:8765/present?token=crt_")
    pid = lines[0].split()[1]
    rows = json.loads(cli("present", "--list", "--json").output)
    assert [(r["id"], r["state"], r["role"], r["stage"], r["name"]) for r in rows] == [
        (pid, "active", "Nora", "shortlisted", "producers")
    ]
    expires = dt.datetime.fromisoformat(rows[0]["expires"]).timestamp()
    assert abs(expires - (time.time() + 2 * 86400)) < 120
    assert f"{pid}  active " in cli("present", "--list").output
    ended = cli("present", "--revoke", pid[:6])
    assert ended.exit_code == 0 and f"Ended presentation {pid}" in ended.output
    assert "had already ended" in cli("present", "--revoke", pid).output
    assert json.loads(cli("present", "--list", "--json").output)[0]["state"] == "ended"
    # A presentation is a token of its own scope: listed with the others, never a reader.
    assert f"{pid}  present  revoked" in cli("token", "list").output


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("present", "Nobody"), "no role matching 'Nobody'"),
        (("present",), "name a ROLE, or give --list or --revoke ID"),
        (("present", "Nora", "--expires", "0d"), "would expire at once"),
        (("present", "--revoke", "ffffff"), "no presentation with id 'ffffff'"),
    ],
)
def test_present_refuses_with_one_line(cli, args: tuple[str, ...], words: str) -> None:
    _setup(cli)
    before = cli("token", "list").output
    result = cli(*args)
    assert result.exit_code == 1
    assert words in result.output
    assert cli("token", "list").output == before


def test_present_revoke_ends_only_presentations(cli) -> None:
    _setup(cli)
    made = cli("token", "create", "--scope", "read")
    token_id = made.output.split("token ")[1].split()[0]
    result = cli("present", "--revoke", token_id)
    assert result.exit_code == 1 and f"no presentation with id {token_id!r}" in result.output
    assert "revoked" not in cli("token", "list").output
