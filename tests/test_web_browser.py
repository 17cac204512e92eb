"""The dashboard in real Chromium (Debian's ``chromium``, driven by playwright) against
the real ``castroom serve``, with the real CLI editing the same workspace beside it."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from chromium_launch import CHROMIUM
from sync_helpers import PATIENCE, copy_workspace
from web_helpers import (
    VIEWS,
    Page,
    Server,
    castroom,
    chromium,
    cli_json,
    make_demo,
    wait_for,
)

from castroom.core.workspace import Workspace
from castroom.sync.auth import TokenStore

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="Debian's chromium is not installed (.ci/run installs it)"
)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as launched:
        yield launched


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_demo(tmp_path_factory.mktemp("demo") / "demo")


@pytest.fixture
def room(demo: Path, tmp_path: Path) -> Iterator[Server]:
    """The demo production served from a copy of its casting director's workspace."""
    server = Server(copy_workspace(demo, tmp_path / "alex"), tmp_path / "serve.log")
    yield server
    server.stop()


@pytest.fixture
def pages(browser: Any) -> Iterator[list[Page]]:
    opened: list[Page] = []
    yield opened
    for page in opened:
        page.close()


def new_page(browser: Any, pages: list[Page], **kwargs: Any) -> Page:
    page = Page(browser, **kwargs)
    pages.append(page)
    return page


#: What Chromium's console says of a request the server refused (an expected refusal).
REFUSED = "Failed to load resource: the server responded with a status of {} ({})"


def production_id(room: Server) -> str:
    [production] = cli_json(room.workspace, "production", "list")
    return production["id"]


def card_to_move(room: Server) -> tuple[str, str, str]:
    """(candidate id, its role id, its talent's name): a submitted candidate."""
    talents = {t["id"]: t["name"] for t in cli_json(room.workspace, "list", "talents")}
    for candidate in cli_json(room.workspace, "list", "candidates"):
        if candidate["stage"] == "submitted" and candidate["era"] is None:
            return candidate["id"], candidate["role_id"], talents[candidate["talent_id"]]
    raise AssertionError("the demo has no submitted candidate")


def stage_in_cli(room: Server, candidate: str) -> str:
    return cli_json(room.workspace, "show", "candidate", candidate)["stage"]


def column_of(page: Any, candidate: str) -> str | None:
    return page.evaluate(
        """id => document.querySelector(`[data-candidate="${id}"]`)
                ?.closest(".column")?.dataset.stage ?? null""",
        candidate,
    )


def signed_in(page: Page, room: Server, link: str | None = None) -> Any:
    opened = page.open(link or room.link)
    opened.wait_for_selector('[data-testid="status"]:text("online")')
    return opened


def at_view(
    browser: Any, pages: list[Page], room: Server, view: str, link: str | None = None
) -> tuple[Page, Any, str]:
    """A new page signed in (with ``link``, else the room's), on ``view``: (the page,
    its playwright page, the production id)."""
    pid = production_id(room)
    page = new_page(browser, pages)
    opened = signed_in(page, room, link)
    opened.goto(f"{room.url}/#/{pid}/{view}")
    return page, opened, pid


def test_every_view_loads_the_demo_with_no_console_errors(
    browser: Any, room: Server, pages: list[Page]
) -> None:
    page = new_page(browser, pages)
    opened = signed_in(page, room)
    pid = production_id(room)
    for view, selector in VIEWS.items():
        opened.goto(f"{room.url}/#/{pid}/{view}")
        opened.wait_for_selector(selector)
        assert opened.locator(f'nav.tabs a[aria-current="page"][href$="/{view}"]').count() == 1
    opened.goto(f"{room.url}/#/{pid}/schedule")
    opened.click("text=Day out of days")
    opened.wait_for_selector("table.dood td.code-SW, table.dood td.code-SWF")
    opened.goto(f"{room.url}/#/{pid}/dropout")
    opened.select_option('select[aria-label="booked talent"]', index=1)
    opened.wait_for_selector(".replacement .reasons")
    assert page.errors == []
    # Everything the page loaded came from the server itself (no CDN, nothing else).
    assert page.requests and all(url.startswith(room.url + "/") for url in page.requests)
    # The sign-in secret does not stay in the address bar.
    assert "token=" not in opened.url


def test_two_pages_and_the_cli_converge(browser: Any, room: Server, pages: list[Page]) -> None:
    candidate, role, _ = card_to_move(room)
    pid = production_id(room)
    board = f"{room.url}/#/{pid}/board?role={role}"
    one, two = new_page(browser, pages), new_page(browser, pages)
    for page in (one, two):
        signed_in(page, room).goto(board)
        page.page.wait_for_selector(f'[data-candidate="{candidate}"]')
    one.page.drag_and_drop(f'[data-candidate="{candidate}"]', '.column[data-stage="shortlisted"]')
    wait_for(lambda: column_of(one.page, candidate) == "shortlisted", what="the moved card")
    wait_for(lambda: column_of(two.page, candidate) == "shortlisted", what="the other page")
    wait_for(lambda: stage_in_cli(room, candidate) == "shortlisted", what="castroom show")
    # And the CLI's edit reaches both pages.
    done = castroom(room.workspace, "set", "candidate", candidate, "stage=callback")
    assert done.returncode == 0, done.stderr
    for page in (one, two):
        wait_for(lambda p=page: column_of(p.page, candidate) == "callback", what="the CLI edit")
    # Rating as the signed-in member merges on its own key.
    one.page.click(f'[data-candidate="{candidate}"] button[aria-label="rate 4"]')
    ratings = wait_for(
        lambda: cli_json(room.workspace, "show", "candidate", candidate)["ratings"].get(
            room.member
        ),
        what="the rating in the CLI",
    )
    assert ratings == 4
    assert one.errors == [] and two.errors == []


def test_offline_edit_survives_a_reload_and_syncs_when_the_server_returns(
    browser: Any, room: Server, pages: list[Page]
) -> None:
    candidate, role, _ = card_to_move(room)
    pid = production_id(room)
    page = new_page(browser, pages)
    opened = signed_in(page, room)
    opened.goto(f"{room.url}/#/{pid}/board?role={role}")
    opened.wait_for_selector(f'[data-candidate="{candidate}"]')
    # The service worker holds the app shell before the server goes away.
    opened.wait_for_function("navigator.serviceWorker.controller !== null")
    assert room.stop() == 0
    opened.wait_for_selector('[data-testid="status"]:text("offline")')
    opened.drag_and_drop(f'[data-candidate="{candidate}"]', '.column[data-stage="audition"]')
    wait_for(lambda: column_of(opened, candidate) == "audition", what="the moved card")
    opened.reload()
    opened.wait_for_selector(f'[data-candidate="{candidate}"]')
    assert column_of(opened, candidate) == "audition"
    assert stage_in_cli(room, candidate) == "submitted"  # only the page has it so far
    # The findings it last saw, marked with their time.
    opened.goto(f"{room.url}/#/{pid}/findings")
    opened.wait_for_selector('[data-testid="findings-when"]:text("Offline: as of")')
    assert opened.locator(".finding").count() > 0
    room.start()
    opened.wait_for_selector('[data-testid="status"]:text("online")')
    wait_for(lambda: stage_in_cli(room, candidate) == "audition", what="the CLI to see it")


def test_a_read_only_token_cannot_change_anything(
    browser: Any, room: Server, pages: list[Page]
) -> None:
    candidate, role, name = card_to_move(room)
    pid = production_id(room)
    with Workspace.open(room.workspace, create=False) as ws:
        _, token = TokenStore(ws.store).create("read", name="Viewer")
    page = new_page(browser, pages)
    opened = signed_in(page, room, f"{room.url}/?token={token}")
    opened.goto(f"{room.url}/#/{pid}/board?role={role}")
    card = opened.wait_for_selector(f'[data-candidate="{candidate}"]')
    assert opened.locator(".badge-ro").inner_text() == "read-only"
    assert card.get_attribute("draggable") == "false"
    assert opened.locator(f'[data-candidate="{candidate}"] button.star').first.is_disabled()
    opened.drag_and_drop(f'[data-candidate="{candidate}"]', '.column[data-stage="offer"]')
    assert column_of(opened, candidate) == "submitted"
    refused = opened.evaluate(
        """id => { try { castroom.store.edit("candidate", id, {stage: "offer"}); return null }
                   catch (e) { return e.message } }""",
        candidate,
    )
    assert refused == "this token is read-only"
    # Even a write forced into the page's document is dropped by the server.
    opened.evaluate(
        """id => castroom.doc.getMap("candidates").get(id).set("stage", "offer")""", candidate
    )
    # Round trip: once a later CLI edit has reached the page, the forced one had its chance.
    castroom(room.workspace, "set", "candidate", candidate, "source=checked")
    wait_for(
        lambda: (
            opened.evaluate(
                """id => castroom.doc.getMap("candidates").get(id).get("source")""", candidate
            )
            == "checked"
        ),
        what="the CLI edit to reach the page",
    )
    assert stage_in_cli(room, candidate) == "submitted"
    talent_form = f"{room.url}/#/{pid}/talent"
    opened.goto(talent_form)
    opened.fill('input[aria-label="search talent"]', name)
    opened.click(".talent-row")
    assert opened.locator('form.talent-form input[name="rate"]').is_disabled()
    assert opened.locator("text=Add talent").count() == 0


@pytest.mark.parametrize("which", ["wrong", "revoked"])
def test_a_bad_or_revoked_token_gets_the_sign_in_page(
    browser: Any, room: Server, pages: list[Page], which: str
) -> None:
    token = "crt_nothere_nosecret"
    if which == "revoked":
        with Workspace.open(room.workspace, create=False) as ws:
            info, token = TokenStore(ws.store).create("write", name="Gone")
            TokenStore(ws.store).revoke(info.id)
    page = new_page(browser, pages)
    opened = page.open(f"{room.url}/?token={token}")
    message = opened.wait_for_selector(".signin-message").inner_text()
    assert message.startswith("This sign-in link does not work: invalid, expired or revoked token.")
    assert opened.locator(".card").count() == 0
    assert opened.locator(".signin input[type=password]").count() == 1


def test_a_cli_change_that_makes_a_finding_shows_in_the_open_page(
    browser: Any, room: Server, pages: list[Page]
) -> None:
    pid = production_id(room)
    page = new_page(browser, pages)
    opened = signed_in(page, room)
    opened.goto(f"{room.url}/#/{pid}/findings")
    opened.wait_for_selector('[data-testid="findings-when"]:text("Live")')
    assert opened.locator('.finding:has-text("Lighthouse Keeper")').count() == 0
    role = cli_json(room.workspace, "add", "role", "name=Lighthouse Keeper")["id"]
    done = castroom(room.workspace, "add", "scene", "number=900", f"characters={role}")
    assert done.returncode == 0, done.stderr
    # Pushed to the page as it changes (how fast is bench_web's to measure, not a test's).
    finding = opened.wait_for_selector(
        '.finding[data-code="uncast-character"]:has-text("Lighthouse Keeper")'
    )
    # It links to the entities involved.
    opened.click('.finding[data-code="uncast-character"] a.entity:has-text("Lighthouse Keeper")')
    opened.wait_for_selector('.role-detail h2:text("Lighthouse Keeper")')
    assert finding is not None and page.errors == []


@pytest.mark.parametrize(
    ("fields", "assignments"),
    [
        ({"rate": "-5"}, ["rate=-5"]),
        ({"playing_age_min": "90"}, ["playing_age_min=90"]),
        ({"playing_age_min": "-1"}, ["playing_age_min=-1"]),
        ({"name": ""}, ["name="]),
        ({"rate": "abc"}, ["rate=abc"]),
        ({"rate": "12.3456"}, ["rate=12.3456"]),
    ],
)
def test_a_broken_field_rule_is_refused_in_the_page_with_the_clis_words(
    browser: Any,
    room: Server,
    pages: list[Page],
    fields: dict[str, str],
    assignments: list[str],
) -> None:
    pid = production_id(room)
    talent = next(t for t in cli_json(room.workspace, "list", "talents") if t["playing_age_max"])
    before = cli_json(room.workspace, "show", "talent", talent["id"])
    page = new_page(browser, pages)
    opened = signed_in(page, room)
    opened.goto(f"{room.url}/#/{pid}/talent?id={talent['id']}")
    form = opened.wait_for_selector("form.talent-form")
    for name, value in fields.items():
        opened.fill(f'form.talent-form input[name="{name}"]', value)
    opened.click("form.talent-form button[type=submit]")
    shown = opened.wait_for_selector('[data-testid="form-error"]').inner_text()
    cli = castroom(room.workspace, "set", "talent", talent["id"], *assignments)
    assert cli.returncode == 1
    assert shown == cli.stderr.strip().removeprefix("Error: ")
    assert form is not None
    assert cli_json(room.workspace, "show", "talent", talent["id"]) == before
    assert (
        opened.evaluate("id => castroom.store.get('talent', id).rate", talent["id"])
        == before["rate"]
    )


def test_presence_shows_who_else_is_in_the_room_and_where(
    browser: Any, room: Server, pages: list[Page]
) -> None:
    pid = production_id(room)
    with Workspace.open(room.workspace, create=False) as ws:
        _, sam = TokenStore(ws.store).create("write", name="Sam Chen")
    alex, other = new_page(browser, pages), new_page(browser, pages)
    signed_in(alex, room).goto(f"{room.url}/#/{pid}/presence")
    signed_in(other, room, f"{room.url}/?token={sam}").goto(f"{room.url}/#/{pid}/schedule")
    alex.page.wait_for_selector(
        '.people-list li[data-member="Sam Chen"]:has-text("looking at schedule")'
    )
    other.page.goto(f"{room.url}/#/{pid}/talent")
    alex.page.wait_for_selector(
        '.people-list li[data-member="Sam Chen"]:has-text("looking at talent")'
    )
    other.close()
    pages.remove(other)
    alex.page.wait_for_selector('.people-list li[data-member="Sam Chen"]', state="detached")
    assert alex.errors == []


def test_budget_is_live_and_history_names_the_member(
    browser: Any, room: Server, pages: list[Page]
) -> None:
    pid = production_id(room)
    page = new_page(browser, pages)
    opened = signed_in(page, room)
    opened.goto(f"{room.url}/#/{pid}/budget")
    total = opened.wait_for_selector('[data-testid="budget-total"]').inner_text()
    deal = next(d for d in cli_json(room.workspace, "list", "deals") if d["status"] != "cancelled")
    done = castroom(room.workspace, "set", "deal", deal["id"], f"rate={deal['rate'] * 3}")
    assert done.returncode == 0, done.stderr
    wait_for(
        lambda: opened.inner_text('[data-testid="budget-total"]') != total, what="the new total"
    )
    budget = cli_json(room.workspace, "budget")
    assert opened.inner_text('[data-testid="budget-total"]').endswith(
        f"{budget['total'] // 100:,}.{budget['total'] % 100:02d}"
    )
    # An edit made in the page shows in the history under the signed-in member.
    candidate, role, name = card_to_move(room)
    opened.goto(f"{room.url}/#/{pid}/board?role={role}")
    opened.drag_and_drop(f'[data-candidate="{candidate}"]', '.column[data-stage="offer"]')
    wait_for(lambda: stage_in_cli(room, candidate) == "offer", what="the move in the CLI")
    opened.goto(f"{room.url}/#/{pid}/history")
    row = opened.wait_for_selector(f'.history-row:has-text("{name} for")')
    assert room.member in row.inner_text()
    # The values, old -> new, in the CLI's words (`castroom history`), row for row.
    assert row.query_selector_all(".change")[0].inner_text() == "stage: submitted → offer"
    rows = cli_json(room.workspace, "history", "--limit", "5")
    assert any(r["member"] == room.member and "stage" in r["fields"] for r in rows), rows
    shown = opened.eval_on_selector_all(
        ".history-row",
        "rows => rows.slice(0, 5).map(r => [...r.querySelectorAll('.change')]"
        ".map(c => c.innerText))",
    )
    assert shown == [r["changes"] for r in rows]
    # The CLI's rate change shows its money both ways, as the CLI prints it.
    [rate] = [r["changes"] for r in rows if r["entity_id"] == deal["id"]]
    assert rate[0].startswith("rate: ") and " → " in rate[0], rate
    assert opened.locator(f'.history-row .change:text-is("{rate[0]}")').count() == 1


def test_talent_search_ignores_case_and_accents_and_a_new_talent_reaches_the_cli(
    browser: Any, room: Server, pages: list[Page]
) -> None:
    pid = production_id(room)
    page = new_page(browser, pages)
    opened = signed_in(page, room)
    opened.goto(f"{room.url}/#/{pid}/talent")
    opened.wait_for_selector(".talent-row")
    everyone = opened.inner_text('[data-testid="talent-count"]')
    opened.click("text=Add talent")
    opened.fill('form.talent-form input[name="name"]', "Zoë Ní Bhriain")
    opened.fill('form.talent-form input[name="rate"]', "1,250.50")
    opened.fill('form.talent-form input[name="languages"]', "ga, en")
    opened.click("form.talent-form button[type=submit]")
    added = wait_for(
        lambda: [
            t for t in cli_json(room.workspace, "list", "talents") if t["name"] == "Zoë Ní Bhriain"
        ],
        what="the new talent in the CLI",
    )
    assert added[0]["rate"] == 125050 and added[0]["languages"] == ["ga", "en"]
    opened.fill('input[aria-label="search talent"]', "ZOE NI")
    opened.wait_for_selector('[data-testid="talent-count"]:text-matches("^1 of")')
    assert opened.inner_text(".talent-row .name") == "Zoë Ní Bhriain"
    opened.fill('input[aria-label="search talent"]', "")
    opened.fill('input[aria-label="language"]', "GA")
    speakers = sum(1 for t in cli_json(room.workspace, "list", "talents") if "ga" in t["languages"])
    opened.wait_for_selector(f'[data-testid="talent-count"]:text-matches("^{speakers} of")')
    assert everyone != opened.inner_text('[data-testid="talent-count"]')
    assert page.errors == []


def test_backups_reorder_and_a_strip_moves_to_another_day(
    browser: Any, room: Server, pages: list[Page]
) -> None:
    pid = production_id(room)
    role = next(r for r in cli_json(room.workspace, "list", "roles") if len(r["backups"]) >= 2)
    first, second = role["backups"][:2]
    page = new_page(browser, pages)
    opened = signed_in(page, room)
    opened.goto(f"{room.url}/#/{pid}/roles?id={role['id']}")
    opened.click(f'.backups li[data-backup="{first}"] button[aria-label="move down"]')
    wait_for(
        lambda: (
            cli_json(room.workspace, "show", "role", role["id"])["backups"][:2] == [second, first]
        ),
        what="the new backup order in the CLI",
    )
    days = sorted(cli_json(room.workspace, "list", "shoot_days"), key=lambda d: d["date"])
    scene = days[0]["scene_ids"][0]
    opened.goto(f"{room.url}/#/{pid}/schedule")
    target = days[1]["scene_ids"][0]
    opened.drag_and_drop(f'.strip[data-scene="{scene}"]', f'.strip[data-scene="{target}"]')
    moved = wait_for(
        lambda: cli_json(room.workspace, "show", "scene", scene)["shoot_day_id"] == days[1]["id"],
        what="the scene on its new day",
    )
    assert moved
    after = {d["id"]: d["scene_ids"] for d in cli_json(room.workspace, "list", "shoot_days")}
    assert scene not in after[days[0]["id"]]
    assert after[days[1]["id"]][:2] == [scene, target]
    assert page.errors == []


def test_backups_reorder_by_drag_as_well_as_by_button(
    browser: Any, room: Server, pages: list[Page]
) -> None:
    pid = production_id(room)
    role = next(r for r in cli_json(room.workspace, "list", "roles") if len(r["backups"]) >= 2)
    order = list(role["backups"])
    page = new_page(browser, pages)
    opened = signed_in(page, room)
    opened.goto(f"{room.url}/#/{pid}/roles?id={role['id']}")
    last, first = order[-1], order[0]
    grip = {b: f'.backups li[data-backup="{b}"]' for b in order}
    # The list first: at load 6+ drawing it took longer than a drag's own wait.
    opened.wait_for_selector(grip[last])
    opened.drag_and_drop(grip[last], grip[first])
    # The dragged backup takes the place of the one it is dropped on.
    expected = [last, *order[:-1]]
    wait_for(
        lambda: cli_json(room.workspace, "show", "role", role["id"])["backups"] == expected,
        what="the dragged order in the CLI",
    )
    shown = opened.eval_on_selector_all(".backups li", "items => items.map(i => i.dataset.backup)")
    assert shown == expected
    # Dragged down: the new first onto the one after it.
    opened.drag_and_drop(grip[last], grip[first])
    expected = [first, last, *order[1:-1]]
    wait_for(
        lambda: cli_json(room.workspace, "show", "role", role["id"])["backups"] == expected,
        what="the second drag in the CLI",
    )
    assert page.errors == []


def test_a_replacement_is_shown_then_applied_from_the_page_as_the_cli_would(
    browser: Any, room: Server, pages: list[Page]
) -> None:
    page, opened, _ = at_view(browser, pages, room, "dropout")
    opened.select_option('select[aria-label="booked talent"]', index=1)
    talent = opened.eval_on_selector('select[aria-label="booked talent"]', "s => s.value")
    first = opened.wait_for_selector(".replacement")
    replacement, choice = first.get_attribute("data-talent"), first.get_attribute("data-choice")
    role = opened.get_attribute(".role-plan", "data-role")
    before = {
        c["id"]
        for c in cli_json(room.workspace, "list", "candidates")
        if (c["talent_id"], c["role_id"], c["stage"]) == (talent, role, "booked")
    }
    first.query_selector("button.choose").click()
    opened.wait_for_selector(".plan-shown li")
    # Someone cancels the talent's deals meanwhile: the plan shown is no longer the plan,
    # so nothing is applied.
    deals = [
        d
        for d in cli_json(room.workspace, "list", "deals")
        if (d["talent_id"], d["role_id"]) == (talent, role) and d["status"] != "cancelled"
    ]
    assert deals, "the demo's booked talent has a deal for the role"
    for deal in deals:
        done = castroom(room.workspace, "set", "deal", deal["id"], "status=cancelled")
        assert done.returncode == 0, done.stderr
    opened.click('.plan-shown button:text("Apply")')
    stale = opened.wait_for_selector('[data-testid="dropout-error"]').inner_text()
    assert stale.startswith("the production changed since this plan was shown")
    # A peer's change makes the page rank again: the refusal stays until the user acts
    # (it used to vanish when the new ranking came back after the refusal).
    renamed = castroom(room.workspace, "set", "talent", replacement, "name=Renamed Stand-in")
    assert renamed.returncode == 0, renamed.stderr
    opened.wait_for_selector('.replacement strong:text("Renamed Stand-in")')
    assert opened.inner_text('[data-testid="dropout-error"]') == stale
    assert {stage_in_cli(room, c) for c in before} == {"booked"}
    # Shown again: the CLI's dry run, line for line; then applied.
    cli_plan = castroom(
        room.workspace, "replace", talent, "--role", role, "--apply", choice, "--dry-run"
    )
    assert cli_plan.returncode == 0, cli_plan.stderr
    opened.click(f'.replacement[data-choice="{choice}"] button.choose')
    opened.wait_for_selector(".plan-shown li")
    lines = opened.eval_on_selector_all(".plan-lines li", "ls => ls.map(l => l.textContent)")
    assert lines == cli_plan.stdout.strip().splitlines()
    assert not any(line.startswith("change deal") for line in lines)
    opened.click('.plan-shown button:text("Apply")')
    opened.wait_for_selector('[data-testid="replacement-applied"]')
    # The CLI sees the new booking and the old one dropped.
    after = cli_json(room.workspace, "list", "candidates")
    booked = [
        c
        for c in after
        if (c["talent_id"], c["role_id"], c["stage"]) == (replacement, role, "booked")
    ]
    assert booked
    assert "dropped" in {c["stage"] for c in after if c["id"] in before}
    [latest] = cli_json(room.workspace, "history", "--limit", "1")
    assert latest["member"] == room.member
    # The one refusal (the stale plan) is the only thing the console reports.
    assert page.errors == [f"console: {REFUSED.format(409, 'Conflict')}"]


def test_a_read_only_page_offers_no_replacement_and_no_import(
    browser: Any, room: Server, pages: list[Page]
) -> None:
    with Workspace.open(room.workspace, create=False) as ws:
        _, token = TokenStore(ws.store).create("read", name="Viewer")
    page, opened, pid = at_view(browser, pages, room, "dropout", f"{room.url}/?token={token}")
    opened.select_option('select[aria-label="booked talent"]', index=1)
    opened.wait_for_selector(".replacement .reasons")
    assert opened.locator("button.choose").count() == 0
    opened.goto(f"{room.url}/#/{pid}/files")
    opened.wait_for_selector('.exports li[data-exporter="ics"]')
    assert opened.locator(".import-form").count() == 0
    assert "read-only" in opened.inner_text(".panel")
    assert page.errors == []


def test_an_upload_is_planned_then_imported_and_an_export_downloads(
    browser: Any, room: Server, pages: list[Page]
) -> None:
    pid = production_id(room)
    sheets = Path(__file__).parent / "data" / "sheets"
    before = {t["name"] for t in cli_json(room.workspace, "list", "talents")}
    page = new_page(browser, pages)
    opened = signed_in(page, room)
    opened.goto(f"{room.url}/#/{pid}/files")
    opened.wait_for_selector(".import-form")
    opened.select_option('.import-form select[name="importer"]', "csv")
    # A malformed file first: one error, nothing changed.
    opened.set_input_files('.import-form input[type="file"]', str(sheets / "unclosed_quote.csv"))
    opened.click('.import-form button[type="submit"]')
    error = opened.wait_for_selector('[data-testid="import-error"]').inner_text()
    assert error.startswith("unclosed_quote.csv: line 3: a quote opened in this row is never")
    assert {t["name"] for t in cli_json(room.workspace, "list", "talents")} == before
    opened.set_input_files('.import-form input[type="file"]', str(sheets / "office_talent.csv"))
    opened.fill('.import-form textarea[name="map"]', "Office ID=external_id")
    opened.fill('.import-form input[name="source"]', "office")
    opened.click('.import-form button[type="submit"]')
    plan = opened.wait_for_selector('[data-testid="import-plan"]')
    assert "3 to create, 0 to update, 0 unchanged" in plan.inner_text()
    assert {t["name"] for t in cli_json(room.workspace, "list", "talents")} == before  # shown only
    opened.click('[data-testid="import-plan"] button:text("Import")')
    opened.wait_for_selector('[data-testid="import-done"]:has-text("3 created")')
    names = {t["name"] for t in cli_json(room.workspace, "list", "talents")}
    assert names - before == {"Aoife Ní Bhriain", "José Álvarez", "Zoë Müller"}
    # The new talents reach the page over sync, like any other change.
    opened.goto(f"{room.url}/#/{pid}/talent")
    opened.fill('input[aria-label="search talent"]', "aoife")
    opened.wait_for_selector('.talent-row:has-text("Aoife Ní Bhriain")')
    # A download is the file the CLI exports.
    opened.goto(f"{room.url}/#/{pid}/files")
    with opened.expect_download() as info:
        opened.click('.exports li[data-exporter="csv"] button')
    download = info.value
    assert download.suggested_filename.endswith("-csv.csv")
    exported = castroom(room.workspace, "export", "csv", "--kind", "talent")
    assert Path(download.path()).read_text() == exported.stdout
    # The one refusal (the malformed file) is the only thing the console reports.
    assert page.errors == [f"console: {REFUSED.format(400, 'Bad Request')}"]


@pytest.fixture(scope="module")
def crowd(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A workspace of 5,000 talents, one role of which has 600 submitted candidates."""
    from castroom.core.model import Candidate, Role, Talent, new_id
    from castroom.core.sample import SampleSize, build_sample

    root = tmp_path_factory.mktemp("crowd") / "ws"
    with Workspace.open(root, member="Alex") as ws:
        production = ws.create_production("Crowd", kind="series", currency="EUR")
        build_sample(production.doc, SampleSize(talents=5_000))
        role = production.doc.all(Role)[0]
        taken = {c.talent_id for c in production.doc.all(Candidate) if c.role_id == role.id}
        free = [t.id for t in production.doc.all(Talent) if t.id not in taken][:600]
        extra = [Candidate(id=new_id(), talent_id=t, role_id=role.id) for t in free]
        with production.doc.transaction():
            production.doc.put_many(extra)
    return root


def rows_shown(page: Any, within: str) -> list[tuple[int, str]]:
    """(offset in px, text) of each row ``within`` has in the DOM."""
    return page.evaluate(
        """sel => [...document.querySelectorAll(`${sel} .vrow`)].map(
               r => [parseInt(r.style.top), r.innerText])""",
        within,
    )


def test_a_5000_talent_list_and_a_600_card_column_render_only_what_is_in_view(
    browser: Any, crowd: Path, tmp_path: Path, pages: list[Page]
) -> None:
    server = Server(copy_workspace(crowd, tmp_path / "ws"), tmp_path / "serve.log")
    try:
        page, opened, pid = at_view(browser, pages, server, "talent")
        opened.wait_for_selector('[data-testid="talent-count"]:text("5000 of 5000")')
        talents = '[aria-label="talents"]'
        first = rows_shown(opened, talents)
        assert 5 < len(first) <= 40, len(first)
        assert max(top for top, _ in first) < 40 * 44
        # The keyboard scrolls the list to its end, and the last rows are drawn then.
        opened.focus(talents)
        opened.keyboard.press("End")
        wait_for(lambda: max(t for t, _ in rows_shown(opened, talents)) == 4_999 * 44, what="end")
        last = rows_shown(opened, talents)
        assert len(last) <= 40 and not {n for _, n in first} & {n for _, n in last}
        # Search still finds a talent among all 5,000, not only the rows drawn.
        [(_, name)] = [r for r in last if r[0] == 4_999 * 44]
        opened.fill('input[aria-label="search talent"]', name.splitlines()[0])
        opened.wait_for_selector(f'{talents} .vrow .name:text-is("{name.splitlines()[0]}")')

        role = cli_json(server.workspace, "list", "roles")
        submitted = '.column[data-stage="submitted"]'
        for r in role:
            opened.goto(f"{server.url}/#/{pid}/board?role={r['id']}")
            opened.wait_for_selector(".card")
            if int(opened.inner_text(f"{submitted} .count")) >= 600:
                break
        else:
            raise AssertionError("no role shows its 600 submitted candidates")
        cards = rows_shown(opened, submitted)
        assert 3 < len(cards) <= 30, len(cards)
        opened.eval_on_selector(f"{submitted} .vlist", "el => { el.scrollTop = el.scrollHeight }")
        wait_for(lambda: min(t for t, _ in rows_shown(opened, submitted)) > 500 * 70, what="scroll")
        # A card drawn after scrolling still drags to another stage.
        moved = opened.eval_on_selector(
            f"{submitted} .vlist",
            "el => el.querySelector('.vrow:last-child .card').dataset.candidate",
        )
        opened.drag_and_drop(f'[data-candidate="{moved}"]', '.column[data-stage="audition"]')
        wait_for(lambda: column_of(opened, moved) == "audition", what="the moved card")
        wait_for(lambda: stage_in_cli(server, moved) == "audition", what="castroom show")
        assert page.errors == []
    finally:
        server.stop()


def stored_updates(page: Any, name: str) -> list[list[Any]]:
    """The updates the page's IndexedDB copy ``name`` holds: [bytes, SHA-256 hex] each."""
    return page.evaluate(
        """name => new Promise((done, failed) => {
            const opening = indexedDB.open(name);
            opening.onerror = failed;
            opening.onsuccess = () => {
                const all = opening.result.transaction("updates").objectStore("updates").getAll();
                all.onsuccess = async () => {
                    opening.result.close();
                    const hex = (b) => [...new Uint8Array(b)]
                        .map((x) => x.toString(16).padStart(2, "0")).join("");
                    done(await Promise.all(all.result.map(async (u) =>
                        [u.length, hex(await crypto.subtle.digest("SHA-256", u))])));
                };
            };
        })""",
        name,
    )


def stored_in_browser(page: Any, name: str) -> int:
    """Bytes of updates the page's IndexedDB copy ``name`` holds."""
    return sum(size for size, _ in stored_updates(page, name))


def test_a_reload_opens_its_own_copy_first_and_sends_none_of_it_back(
    browser: Any, crowd: Path, tmp_path: Path, pages: list[Page]
) -> None:
    """The page connects once its IndexedDB copy is loaded. Loaded after, the copy went
    out as one update of the whole production: 4.5 MB the server already held, merged
    again, the production refusing newcomers (503) meanwhile."""
    server = Server(copy_workspace(crowd, tmp_path / "ws"), tmp_path / "serve.log")
    try:
        page = new_page(browser, pages)
        opened = signed_in(page, server)
        opened.wait_for_selector(".card")
        pid = production_id(server)
        size = len(server_state(server, pid))

        def copied() -> bool:  # stored as the step 2 came, a little apart from a pull's
            return stored_in_browser(opened, f"castroom:{pid}") > size * 0.9

        wait_for(copied, what="the page's copy in IndexedDB")
        sent: list[int] = []
        opened.on("websocket", lambda ws: ws.on("framesent", lambda f: sent.append(len(f))))
        opened.reload()
        opened.wait_for_selector('[data-testid="status"]:text("online")')
        opened.wait_for_selector(".card")
        assert sent, "the reloaded page sent nothing"
        assert max(sent) < 64 * 1024 < size, (max(sent), size)
        assert page.errors == []
    finally:
        server.stop()
    # A 503 refusal is logged as "...: 503 production ... is merging" (a bare "503" also
    # matches a log line's milliseconds).
    assert ": 503 " not in server.log.read_text()


def server_state(server: Server, pid: str) -> bytes:
    """The production's whole state, as the server sends a new peer."""
    import httpx

    pulled = httpx.post(
        f"{server.url}/sync/{pid}/pull",
        params={"token": server.token},
        content=b"\0",
        timeout=PATIENCE,
    )
    assert pulled.status_code == 200, pulled.text
    return pulled.content


def test_a_fresh_page_keeps_the_first_sync_as_it_came(
    browser: Any, room: Server, pages: list[Page]
) -> None:
    """The server's step 2 is applied with the update listeners off and its own bytes
    kept in IndexedDB: Yjs does not encode the whole production again for them (on a
    large production, about a fifth of the first sync's script time). With them on,
    y-indexeddb keeps Yjs's own encoding instead, whose bytes differ, and the copy is
    not the server's."""
    page = new_page(browser, pages)
    opened = signed_in(page, room)
    opened.wait_for_selector(".card")
    pid = production_id(room)
    state = server_state(room, pid)
    name = f"castroom:{pid}"
    wait_for(lambda: stored_in_browser(opened, name) >= len(state), what="the page's copy")
    kept = stored_updates(opened, name)
    assert [len(state), hashlib.sha256(state).hexdigest()] in kept
    # Once: no second, re-encoded copy beside it (y-indexeddb's first record is the
    # empty document it opened with).
    assert sum(size for size, _ in kept) < len(state) + 64
    # The listeners are back: an edit after the first sync is kept, and reaches the server.
    candidate, _, _ = card_to_move(room)
    opened.evaluate("id => castroom.store.edit('candidate', id, {stage: 'callback'})", candidate)
    wait_for(lambda: stage_in_cli(room, candidate) == "callback", what="the CLI to see it")
    wait_for(lambda: len(stored_updates(opened, name)) > len(kept), what="the edit kept")
    assert page.errors == []


def test_attached_headshots_show_on_cards_and_offline_and_reels_play_by_range(
    browser: Any, room: Server, pages: list[Page], tmp_path: Path
) -> None:
    from media_helpers import jpeg, video

    candidate, role, name = card_to_move(room)
    [talent] = [t for t in cli_json(room.workspace, "list", "talents") if t["name"] == name]
    for made in (jpeg(tmp_path / "face.jpg", seed=4), video(tmp_path / "reel.mp4", seconds=1.0)):
        done = castroom(room.workspace, "attach", "talent", talent["id"], str(made))
        assert done.returncode == 0, done.stderr
    page, opened, pid = at_view(browser, pages, room, f"board?role={role}")
    card = f'[data-candidate="{candidate}"] img.thumb[src^="/media/"]'
    opened.wait_for_selector(card)
    loaded = f"(img => img?.complete && img.naturalWidth > 0)(document.querySelector('{card}'))"
    opened.wait_for_function(loaded)

    opened.goto(f"{room.url}/#/{pid}/talent?id={talent['id']}")
    reel = '.media-item[data-kind="reel"] video'
    opened.wait_for_selector(reel)
    assert opened.locator('.media-item[data-kind="headshot"] img').count() == 1
    status = opened.evaluate(
        """sel => fetch(document.querySelector(sel).src, {headers: {Range: "bytes=0-99"}})
                 .then(async r => [r.status, (await r.arrayBuffer()).byteLength])""",
        reel,
    )
    assert status == [206, 100]

    # Offline: the thumbnail the card showed comes from the service worker's cache.
    opened.wait_for_function("navigator.serviceWorker.controller !== null")
    assert page.errors == []
    assert room.stop() == 0
    opened.goto(f"{room.url}/#/{pid}/board?role={role}")
    opened.reload()
    opened.wait_for_selector(card)
    opened.wait_for_function(loaded)
    # Only the server's absence is reported (sockets and streams cut), nothing broke.
    assert [e for e in page.errors if "net::ERR_" not in e] == []


def _kept(opened: Any, digest: str) -> bool:
    """Whether the service worker holds the file (in any of its caches): it plays offline."""
    return opened.evaluate("h => caches.match('/media/' + h).then(r => !!r)", digest)


def test_the_shortlists_reels_are_kept_and_play_offline(
    browser: Any, room: Server, pages: list[Page], tmp_path: Path
) -> None:
    import hashlib

    from media_helpers import video

    talents = {t["id"]: t for t in cli_json(room.workspace, "list", "talents")}
    candidates = cli_json(room.workspace, "list", "candidates")
    shortlist = {"shortlisted", "audition", "callback", "chemistry_read", "offer"}
    on_list = {c["talent_id"] for c in candidates if c["stage"] in shortlist}
    talent = next(c["talent_id"] for c in candidates if c["stage"] == "shortlisted")
    outside = next(t for t in talents if t not in on_list)
    reels = {}
    for who, seconds in ((talent, 1.0), (outside, 1.5)):
        made = video(tmp_path / f"{who}.webm", seconds=seconds, codec="libvpx")
        done = castroom(room.workspace, "attach", "talent", who, str(made))
        assert done.returncode == 0, done.stderr
        reels[who] = (made.read_bytes(), hashlib.sha256(made.read_bytes()).hexdigest())
    data, kept = reels[talent]
    passed_over = reels[outside][1]

    page, opened, pid = at_view(browser, pages, room, "board")
    opened.wait_for_function("navigator.serviceWorker.controller !== null")
    wait_for(lambda: _kept(opened, kept), what="the shortlisted talent's reel in the cache")
    assert not _kept(opened, passed_over)  # a reel of nobody on the shortlist is not kept

    assert room.stop() == 0
    opened.goto(f"{room.url}/#/{pid}/talent?id={talent}")
    opened.reload()
    reel = f'.media-item[data-hash="{kept}"] video'
    opened.wait_for_selector(reel)
    head = opened.evaluate(
        """sel => fetch(document.querySelector(sel).src, {headers: {Range: "bytes=10-49"}})
                 .then(async r => [r.status, r.headers.get("Content-Range"),
                                   Array.from(new Uint8Array(await r.arrayBuffer()))])""",
        reel,
    )
    assert head == [206, f"bytes 10-49/{len(data)}", list(data[10:50])]
    # The video element itself plays it from the cache, with the server gone.
    played = opened.evaluate(
        """sel => new Promise(done => {
             const v = document.querySelector(sel);
             v.muted = true;
             v.addEventListener("timeupdate", () => v.currentTime > 0 && done(v.currentTime),
                                {once: false});
             v.addEventListener("error", () => done("error " + (v.error && v.error.code)));
             v.play().catch(e => done(String(e)));
           })""",
        reel,
    )
    assert isinstance(played, float) and played > 0, played
    assert talents[talent]["name"] in opened.inner_text(".view")
    assert [e for e in page.errors if "net::ERR_" not in e] == []


def _kept_of(opened: Any, pid: str) -> set[str]:
    """The hashes in the production's cache of kept videos."""
    return set(
        opened.evaluate(
            """pid => caches.open('castroom-kept-1:' + pid).then(c => c.keys())
                 .then(keys => keys.map(k => new URL(k.url).pathname.slice(7)))""",
            pid,
        )
    )


def test_a_kept_reel_is_dropped_once_its_candidate_leaves_the_shortlist(
    browser: Any, room: Server, pages: list[Page], tmp_path: Path
) -> None:
    import hashlib

    from media_helpers import jpeg, video

    on_list = {"shortlisted", "audition", "callback", "chemistry_read", "offer"}
    candidates = cli_json(room.workspace, "list", "candidates")
    listed_talents = [c["talent_id"] for c in candidates if c["stage"] in on_list]
    # One candidate leaves; its talent is on the shortlist through it alone.
    leaving = next(
        c
        for c in candidates
        if c["stage"] == "shortlisted"
        and c["era"] is None  # its card is on the role's board
        and listed_talents.count(c["talent_id"]) == 1
    )
    staying = next(
        c for c in candidates if c["stage"] in on_list and c["talent_id"] != leaving["talent_id"]
    )
    outside = next(
        t["id"]
        for t in cli_json(room.workspace, "list", "talents")
        if t["id"] not in listed_talents
    )
    reels = {}
    for who, seconds in ((leaving["talent_id"], 1.0), (staying["talent_id"], 1.5), (outside, 0.5)):
        made = video(tmp_path / f"{who}.webm", seconds=seconds, codec="libvpx")
        done = castroom(room.workspace, "attach", "talent", who, str(made))
        assert done.returncode == 0, done.stderr
        reels[who] = hashlib.sha256(made.read_bytes()).hexdigest()
    face = jpeg(tmp_path / "face.jpg", seed=41)
    done = castroom(room.workspace, "attach", "talent", leaving["talent_id"], str(face))
    assert done.returncode == 0, done.stderr
    [thumb] = [
        m["media"]["thumbnail"]
        for m in cli_json(room.workspace, "media", "list", "talent", leaving["talent_id"])
        if m["media"]["kind"] == "headshot"
    ]
    gone, kept, loose = reels[leaving["talent_id"]], reels[staying["talent_id"]], reels[outside]

    page, opened, pid = at_view(browser, pages, room, f"board?role={leaving['role_id']}")
    opened.wait_for_function("navigator.serviceWorker.controller !== null")
    wait_for(lambda: _kept_of(opened, pid) == {gone, kept}, what="the shortlist's two reels kept")
    opened.reload()  # the card's picture, now through the service worker
    opened.wait_for_selector(f'img.thumb[src^="/media/{thumb}"]', state="attached")
    wait_for(lambda: _kept(opened, thumb), what="the card's headshot in the cache")
    # A reel kept among the pictures, as the build before per-production caches did:
    # nothing could drop it there.
    status = opened.evaluate(
        """async h => {
             const src = document.querySelector('img.thumb[src^="/media/"]').src;
             const token = new URL(src).searchParams.get('token');
             const r = await fetch(`/media/${h}?token=${encodeURIComponent(token)}`);
             await (await caches.open('castroom-media-1')).put('/media/' + h, r.clone());
             return r.status;
           }""",
        loose,
    )
    assert status == 200 and _kept(opened, loose)

    # The candidate leaves the shortlist (the CLI, beside the page): that reel goes, and
    # the stray one; the other shortlisted reel and the pictures stay.
    done = castroom(room.workspace, "set", "candidate", leaving["id"], "stage=declined")
    assert done.returncode == 0, done.stderr
    wait_for(lambda: _kept_of(opened, pid) == {kept}, what="the declined candidate's reel dropped")
    wait_for(lambda: not _kept(opened, loose), what="the stray reel dropped")
    assert not _kept(opened, gone)
    assert _kept(opened, kept) and _kept(opened, thumb)
    # Back on the shortlist: kept again.
    done = castroom(room.workspace, "set", "candidate", leaving["id"], "stage=callback")
    assert done.returncode == 0, done.stderr
    wait_for(lambda: _kept_of(opened, pid) == {gone, kept}, what="the reel kept again")
    assert [e for e in page.errors if "net::ERR_" not in e] == []
