"""A presentation's page in real Chromium (Debian's ``chromium``, driven by playwright)
against the real ``castroom serve``, with the real CLI making, reading and ending the
presentation beside it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from chromium_launch import CHROMIUM
from media_helpers import jpeg, video
from web_helpers import Page, Server, castroom, chromium, cli_json

from castroom.core import model, presenting
from castroom.core.workspace import Workspace
from castroom.sync.auth import TokenStore
from castroom.sync.presentation import NOT_VALID

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="Debian's chromium is not installed (.ci/run installs it)"
)

#: What Chromium's console says of a request the server refused on purpose.
REFUSED = "Failed to load resource: the server responded with a status of"


def run(workspace: Path, *args: str) -> str:
    done = castroom(workspace, *args)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Server]:
    workspace = tmp_path / "ws"
    run(workspace, "init", "--production", "Night Train")
    for args in [
        ("role", "name=Nora"),
        ("role", "name=Sam"),
        ("talent", "name=Ada Stone"),
        ("talent", "name=Bea Lund"),
        ("talent", "name=Fay Orr"),
        ("candidate", "talent_id=Ada Stone", "role_id=Nora", "stage=shortlisted"),
        ("candidate", "talent_id=Bea Lund", "role_id=Nora", "stage=audition"),
        ("candidate", "talent_id=Fay Orr", "role_id=Sam", "stage=shortlisted"),
    ]:
        run(workspace, "add", *args)
    run(workspace, "attach", "talent", "Ada Stone", str(jpeg(tmp_path / "ada.jpg")))
    # VP8 in WebM: a codec Debian's Chromium plays (it has no MPEG-4 decoder).
    reel = video(tmp_path / "ada.webm", seconds=1.0, codec="libvpx")
    run(workspace, "attach", "talent", "Ada Stone", str(reel), "--as", "reel")
    server = Server(workspace, tmp_path / "serve.log")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as launched:
        yield launched


@pytest.fixture
def page(browser: Any) -> Iterator[Page]:
    opened = Page(browser)
    yield opened
    opened.close()


def present(server: Server, *args: str) -> tuple[str, str]:
    """(the presentation's id, its link), made by the real CLI for the running server."""
    out = run(server.workspace, "present", "Nora", "--url", server.url, *args)
    return out.split()[1], out.strip().splitlines()[-1]


def opened_as(server: Server, page: Page, viewer: str = "Pat Kim") -> tuple[str, Any]:
    """A fresh presentation of Nora opened in ``page``, the viewer's name given:
    (its id, the playwright page)."""
    presentation, link = present(server)
    opened = page.open(link)
    opened.fill("#viewer", viewer)
    opened.click('form.name button[type="submit"]')
    return presentation, opened


def unexpected(page: Page) -> list[str]:
    return [e for e in page.errors if REFUSED not in e]


def star(opened: Any, candidate: str, n: int) -> Any:
    label = f"{n} star{'s' if n > 1 else ''}"
    return opened.locator(f'[data-candidate="{candidate}"] button[aria-label="{label}"]')


def candidate_of(server: Server, talent: str) -> dict[str, Any]:
    return cli_json(server.workspace, "show", "candidate", f"{talent} for Nora")


def test_a_viewer_sees_the_selects_votes_and_comments_and_the_room_sees_it(
    served: Server, page: Page
) -> None:
    _, opened = opened_as(served, page)
    opened.wait_for_selector(".select")
    assert opened.locator(".select h2").all_inner_texts() == ["Bea Lund", "Ada Stone"]
    assert "Fay Orr" not in opened.content()
    ada = candidate_of(served, "Ada Stone")["id"]
    face = f'[data-candidate="{ada}"] img.headshot'
    opened.wait_for_function(
        f"(img => img?.complete && img.naturalWidth > 0)(document.querySelector('{face}'))"
    )
    reel = f'[data-candidate="{ada}"] video'
    status = opened.evaluate(
        """sel => fetch(document.querySelector(sel).src, {headers: {Range: "bytes=0-99"}})
                 .then(async r => [r.status, (await r.arrayBuffer()).byteLength])""",
        reel,
    )
    assert status == [206, 100]
    # The reel plays in the page: its metadata loads through range requests.
    opened.wait_for_function(f"document.querySelector('{reel}').readyState >= 1")

    star(opened, ada, 4).click()
    opened.wait_for_selector(f'[data-candidate="{ada}"] [role="status"]:has-text("Vote saved")')
    opened.fill(f'[data-candidate="{ada}"] textarea', "Lovely stillness in the reel")
    opened.click(f'[data-candidate="{ada}"] button[type="submit"]')
    opened.wait_for_selector(f'[data-candidate="{ada}"] [role="status"]:has-text("Comment sent")')

    shown = candidate_of(served, "Ada Stone")
    assert shown["ratings"] == {"Pat Kim (presentation)": 4}
    assert shown["notes"].endswith("Pat Kim (presentation): Lovely stillness in the reel")
    history = cli_json(served.workspace, "history")
    assert {r["label"] for r in history if r["member"] == "Pat Kim (presentation)"} == {
        "Ada Stone for Nora"
    }

    # The name is asked once: a reload keeps it, and shows the vote.
    opened.reload()
    opened.wait_for_selector(".select")
    assert opened.locator("strong.viewer").inner_text() == "Pat Kim"
    assert star(opened, ada, 4).get_attribute("aria-pressed") == "true"
    assert unexpected(page) == []
    # Everything the page loaded came from the server that serves it.
    assert page.requests and all(url.startswith(served.url + "/") for url in page.requests)


def test_the_dashboard_card_shows_the_viewers_votes_apart(
    served: Server, page: Page, browser: Any
) -> None:
    _, opened = opened_as(served, page)
    ada = candidate_of(served, "Ada Stone")["id"]
    star(opened, ada, 5).click()
    opened.wait_for_selector(f'[data-candidate="{ada}"] [role="status"]')
    board = Page(browser)
    try:
        room = board.open(served.link)
        role = candidate_of(served, "Ada Stone")["role_id"]
        [production] = cli_json(served.workspace, "production", "list")
        room.goto(f"{served.url}/#/{production['id']}/board?role={role}")
        viewers = room.wait_for_selector(f'[data-candidate="{ada}"] .viewers')
        assert viewers.inner_text() == "presentation 5.0 (1)"
        assert viewers.get_attribute("title") == "Pat Kim: 5"
        assert room.locator(f'[data-candidate="{ada}"] .others').count() == 0  # no team votes
        # Two members rate her: the team's average, apart from the viewers' (dashboard.md).
        with Workspace.open(served.workspace, create=False, member="Sam") as ws:
            doc = ws.production().doc
            ratings = doc.get(model.Candidate, ada).ratings
            doc.update(model.Candidate, ada, {"ratings": {**ratings, "Sam": 3, "Rosa": 4}})
        team = room.wait_for_selector(f'[data-candidate="{ada}"] .others')
        assert team.inner_text() == "team 3.5 (2)"
        assert sorted((team.get_attribute("title") or "").split(", ")) == ["Rosa: 4", "Sam: 3"]
        assert viewers.inner_text() == "presentation 5.0 (1)"
        assert board.errors == []
    finally:
        board.close()


def test_a_revoked_presentation_ends_in_the_page_and_takes_no_vote(
    served: Server, page: Page
) -> None:
    presentation, opened = opened_as(served, page)
    ada = candidate_of(served, "Ada Stone")["id"]
    star(opened, ada, 2).wait_for()
    run(served.workspace, "present", "--revoke", presentation)
    star(opened, ada, 2).click()
    opened.wait_for_selector("h1:has-text('This presentation has ended')")
    assert candidate_of(served, "Ada Stone")["ratings"] == {}
    opened.reload()
    opened.wait_for_selector("h1:has-text('This presentation has ended')")
    assert opened.locator(".select").count() == 0
    assert unexpected(page) == []


def test_an_expired_link_has_ended_and_a_bad_one_says_so(served: Server, page: Page) -> None:
    with Workspace.open(served.workspace, create=False) as ws:
        production = ws.production()
        role = next(r for r in production.doc.all(model.Role) if r.name == "Nora")
        show = presenting.showing(production.doc, role.id)
        _, token = TokenStore(ws.store).create(
            "present", production=production.id, presentation=show, expires_in=0.001
        )
    opened = page.open(f"{served.url}/present?token={token}")
    ended = opened.wait_for_selector(".ended")
    assert "This presentation has ended" in ended.inner_text()
    assert "it expired on" in ended.inner_text()

    opened.goto(f"{served.url}/present?token=crt_000000000000_nothing")
    invalid = opened.wait_for_selector(".invalid")
    assert invalid.inner_text().splitlines()[-1] == NOT_VALID
    opened.goto(f"{served.url}/present")
    assert opened.wait_for_selector(".invalid").inner_text().splitlines()[-1] == NOT_VALID
    assert unexpected(page) == []
