"""Presentations over HTTP against a real uvicorn server on 127.0.0.1 (``ServerThread``):
what the link shows and serves, votes landing as the viewer's ratings and notes (read
back with the real CLI), and every write the link may not make refused by the server,
with the stored production exactly as it was. The page itself is driven in Chromium by
test_web_present.py."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from media_helpers import jpeg, pdf, video
from patience import PATIENCE
from test_hocuspocus_serve import _frames
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from castroom.core import model, presenting
from castroom.core.workspace import Workspace
from castroom.sync import hocuspocus as hp
from castroom.sync.auth import TokenStore
from castroom.sync.presentation import NOT_VALID
from castroom.sync.server import ServerThread
from tests.test_cli_core import ok

#: How long a request may wait for the server's answer: httpx's default 5 s is too short
#: on a machine loaded by parallel suites (a refusal logged, its answer read too late).
WAIT = PATIENCE


class Room:
    """A production with two roles, a presentation of Nora and a server serving it."""

    def __init__(self, root: Path, cli: Any) -> None:
        self.cli, self.path = cli, cli.path
        ok(cli("init", "--production", "Night Train"))
        for args in [
            ("role", "name=Nora", "description=The lead, in her thirties"),
            ("role", "name=Sam"),
            ("talent", "name=Ada Stone", "playing_age_min=28", "playing_age_max=36"),
            ("talent", "name=Bea Lund"),
            ("talent", "name=Cal Reyes"),
            ("talent", "name=Fay Orr"),
            ("member", "name=Rosa"),
            ("candidate", "talent_id=Ada Stone", "role_id=Nora", "stage=shortlisted"),
            ("candidate", "talent_id=Bea Lund", "role_id=Nora", "stage=callback"),
            ("candidate", "talent_id=Cal Reyes", "role_id=Nora", "stage=submitted"),
            ("candidate", "talent_id=Fay Orr", "role_id=Sam", "stage=shortlisted"),
        ]:
            ok(cli("add", *args))
        ok(cli("set", "candidate", "Ada Stone for Nora", 'ratings={"Rosa": 3}'))
        ok(cli("attach", "talent", "Ada Stone", str(jpeg(root / "ada.jpg"))))
        ok(cli("attach", "talent", "Ada Stone", str(video(root / "ada-reel.mp4")), "--as", "reel"))
        ok(cli("attach", "talent", "Ada Stone", str(pdf(root / "ada-cv.pdf")), "--as", "resume"))
        ok(cli("attach", "talent", "Fay Orr", str(jpeg(root / "fay.jpg", seed=3))))
        made = ok(cli("present", "Nora"))
        self.presentation = made.split()[1]
        self.token = made.strip().splitlines()[-1].split("token=")[1]
        with Workspace.open(self.path, create=False) as ws:
            self.pid = ws.production().id
            _, self.write_token = TokenStore(ws.store).create("write", name="Rosa")

    def show(self, talent: str, role: str = "Nora") -> dict[str, Any]:
        return json.loads(ok(self.cli("show", "candidate", f"{talent} for {role}", "--json")))

    def stored(self) -> tuple[Any, ...]:
        """The update log's length and every entity's stored fields: what "nothing was
        written" compares (the encoded update's byte order differs from one open to the
        next)."""
        with Workspace.open(self.path, create=False) as ws:
            doc = ws.production(self.pid).doc
            seq = ws.store.db.execute("SELECT max(seq) FROM updates").fetchone()[0]
            entities = {
                (cls.entity_kind, i): doc.stored_fields(cls, i)
                for cls in model.KINDS.values()
                for i in doc.ids(cls)
            }
            return seq, entities

    def media(self, talent: str) -> list[dict[str, Any]]:
        listed = json.loads(ok(self.cli("media", "list", "talent", talent, "--json")))
        return [item["media"] for item in listed]


@pytest.fixture
def room(tmp_path: Path, cli: Any) -> Iterator[tuple[Room, ServerThread]]:
    made = Room(tmp_path, cli)
    with ServerThread(made.path) as server:
        yield made, server


def _get(server: ServerThread, path: str, token: str | None, **kw: Any) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    kw.setdefault("timeout", WAIT)
    return httpx.get(f"{server.url}{path}", headers={**headers, **kw.pop("headers", {})}, **kw)


def _vote(server: ServerThread, token: str, **ballot: Any) -> httpx.Response:
    return httpx.post(
        f"{server.url}/present/api/vote",
        headers={"Authorization": f"Bearer {token}"},
        content=json.dumps(ballot),
        timeout=WAIT,
    )


def _candidate_id(room: Room, talent: str, role: str = "Nora") -> str:
    return room.show(talent, role)["id"]


def test_the_link_shows_the_roles_selects_and_their_files(room) -> None:
    room, server = room
    page = _get(server, "/present", None)
    assert page.status_code == 200 and "/present.js" in page.text
    shown = _get(server, "/present/api", room.token).json()
    assert (shown["production"], shown["role"], shown["stage"]) == (
        "Night Train",
        "Nora",
        "shortlisted",
    )
    assert shown["description"] == "The lead, in her thirties"
    assert [s["talent"] for s in shown["selects"]] == ["Bea Lund", "Ada Stone"]
    ada = shown["selects"][1]
    assert (ada["playing_age_min"], ada["playing_age_max"]) == (28, 36)
    # The room's own ratings and notes stay in the room.
    assert ada["viewer_ratings"] == {} and "notes" not in ada and "ratings" not in ada
    kinds = {m["kind"]: m for m in ada["media"]}
    assert set(kinds) == {"headshot", "reel", "resume"}
    # The token rides in the query too (an <img> or <video> sends no header).
    thumb = httpx.get(
        f"{server.url}/present/media/{kinds['headshot']['thumbnail']}",
        params={"token": room.token},
        timeout=WAIT,
    )
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"
    assert thumb.content[:3] == b"\xff\xd8\xff"
    reel = _get(
        server,
        f"/present/media/{kinds['reel']['hash']}",
        room.token,
        headers={"Range": "bytes=0-99"},
    )
    assert reel.status_code == 206 and len(reel.content) == 100
    assert reel.headers["content-type"] == "video/mp4"
    resume = _get(server, f"/present/media/{kinds['resume']['hash']}", room.token)
    assert resume.status_code == 200 and resume.content.startswith(b"%PDF")


def test_the_link_serves_no_file_of_another_role(room) -> None:
    room, server = room
    fay = next(m for m in room.media("Fay Orr") if m["name"] == "fay.jpg")
    answer = _get(server, f"/present/media/{fay['hash']}", room.token)
    assert answer.status_code == 404
    assert answer.json() == {"error": f"no file {fay['hash'][:12]}… in this presentation"}
    # Nor through the workspace's own media route.
    assert _get(server, f"/media/{fay['hash']}", room.token).status_code == 403


def test_a_vote_and_a_comment_land_as_the_viewers_rating_and_note(room) -> None:
    room, server = room
    ada = _candidate_id(room, "Ada Stone")
    answer = _vote(server, room.token, viewer="Pat Kim", candidate=ada, rating=4)
    assert answer.status_code == 200, answer.text
    assert answer.json()["rating"] == 4
    said = _vote(server, room.token, viewer="Pat Kim", candidate=ada, comment="Perfect for it")
    assert said.status_code == 200, said.text
    shown = room.show("Ada Stone")
    assert shown["ratings"] == {"Rosa": 3, "Pat Kim (presentation)": 4}
    assert shown["notes"].endswith(" Pat Kim (presentation): Perfect for it")
    assert shown["stage"] == "shortlisted"
    history = json.loads(ok(room.cli("history", "--json")))
    mine = [row for row in history if row["member"] == "Pat Kim (presentation)"]
    assert [row["label"] for row in mine] == ["Ada Stone for Nora"] * 2
    assert any("ratings" in row["fields"] for row in mine)
    assert any("notes" in row["fields"] for row in mine)
    table = ok(room.cli("show", "candidate", "Ada Stone for Nora"))
    assert "Pat Kim (presentation)" in table and "Perfect for it" in table
    # The page sees its viewers' ratings again (a reload shows the vote).
    again = _get(server, "/present/api", room.token).json()
    assert again["selects"][1]["viewer_ratings"] == {"Pat Kim (presentation)": 4}


@pytest.mark.parametrize(
    ("ballot", "status", "words"),
    [
        ({"talent": "Fay Orr", "role": "Sam", "rating": 5}, 403, "is not one of the selects"),
        ({"talent": "Cal Reyes", "rating": 5}, 403, "is not one of the selects"),
        ({"talent": "Ada Stone", "stage": "booked"}, 403, "it cannot change stage"),
        (
            {"talent": "Ada Stone", "rating": 4, "ratings": {"Rosa": 1}},
            403,
            "cannot change ratings",
        ),
        ({"talent": "Ada Stone", "rating": 9}, 400, "vote: Expected `int` <= 5"),
        ({"talent": "Ada Stone"}, 400, "give a rating"),
        ({"talent": "Ada Stone", "rating": 4, "viewer": ""}, 400, "viewer: give your name"),
    ],
)
def test_a_write_the_presentation_may_not_make_is_refused(room, ballot, status, words) -> None:
    room, server = room
    ballot = dict(ballot)
    candidate = _candidate_id(room, ballot.pop("talent"), ballot.pop("role", "Nora"))
    before = room.stored()
    answer = _vote(server, room.token, **{"viewer": "Pat", "candidate": candidate, **ballot})
    assert answer.status_code == status, answer.text
    assert words in answer.json()["error"]
    assert room.stored() == before


def test_the_presentations_token_opens_nothing_else(room) -> None:
    room, server = room
    before = room.stored()
    board = f"/api/{room.pid}/replacement"
    answer = httpx.post(
        f"{server.url}{board}",
        headers={"Authorization": f"Bearer {room.token}"},
        content=b'{"talent": "x", "replacement": "y"}',
        timeout=WAIT,
    )
    assert answer.status_code == 403
    assert (
        answer.json()["error"]
        == "this is a presentation's link: it opens its presentation page only"
    )
    for path in [
        "/productions",
        f"/sync/{room.pid}/state",
        "/api/session",
        f"/api/{room.pid}/history",
    ]:
        assert _get(server, path, room.token).status_code == 403, path
    push = httpx.post(
        f"{server.url}/sync/{room.pid}/push",
        headers={"Authorization": f"Bearer {room.token}"},
        content=b"\x00\x00",
        timeout=WAIT,
    )
    assert push.status_code == 403
    url = f"{server.ws_url}/{room.pid}?token={room.token}"
    with pytest.raises(InvalidStatus) as refused:
        connect(url, proxy=None, open_timeout=PATIENCE)
    assert refused.value.response.status_code == 403
    # Hocuspocus asks the same token check, in its auth message.
    hocuspocus = server.ws_url.removesuffix("/sync") + "/hocuspocus"
    [answer] = asyncio.run(_frames(hocuspocus, [hp.token(room.pid, room.token)], until=1))
    assert answer.auth is hp.AuthType.PERMISSION_DENIED
    assert "opens its presentation page only" in answer.text
    assert room.stored() == before
    # A member's write token still opens all of it (the refusal is the scope, not the route).
    assert _get(server, "/api/session", room.write_token).status_code == 200


def test_a_revoked_presentation_says_it_has_ended_and_takes_no_vote(room) -> None:
    room, server = room
    ada = _candidate_id(room, "Ada Stone")
    assert _vote(server, room.token, viewer="Pat", candidate=ada, rating=5).status_code == 200
    ok(room.cli("present", "--revoke", room.presentation))
    before = room.stored()
    shown = _get(server, "/present/api", room.token)
    assert shown.status_code == 410
    assert shown.json() == {"error": "this presentation has ended"}
    refused = _vote(server, room.token, viewer="Pat", candidate=ada, rating=1)
    assert refused.status_code == 410 and refused.json()["error"] == "this presentation has ended"
    assert _get(server, f"/present/media/{'0' * 64}", room.token).status_code == 410
    assert room.stored() == before
    assert room.show("Ada Stone")["ratings"]["Pat (presentation)"] == 5  # what was voted stays


def test_an_expired_presentation_has_ended_too(room) -> None:
    room, server = room
    with Workspace.open(room.path, create=False) as ws:
        role = next(r for r in ws.production().doc.all(model.Role) if r.name == "Nora")
        show = presenting.showing(ws.production().doc, role.id)
        _, token = TokenStore(ws.store).create(
            "present", production=room.pid, presentation=show, expires_in=0.001
        )
    ada = _candidate_id(room, "Ada Stone")
    shown = _get(server, "/present/api", token)
    assert shown.status_code == 410
    assert shown.json()["error"].startswith("this presentation has ended (it expired on ")
    assert _vote(server, token, viewer="Pat", candidate=ada, rating=1).status_code == 410


@pytest.mark.parametrize("token", [None, "nonsense", "crt_000000000000_secret", "CORRUPT"])
def test_a_bad_link_gets_one_clear_message(room, token) -> None:
    room, server = room
    if token == "CORRUPT":  # a real presentation's id with another secret
        token = f"crt_{room.presentation}_not-its-secret"
    shown = _get(server, "/present/api", token)
    assert shown.status_code == 401
    assert shown.json() == {"error": NOT_VALID}


def test_a_members_token_is_no_presentation_link(room) -> None:
    room, server = room
    assert _get(server, "/present/api", room.write_token).json() == {"error": NOT_VALID}
