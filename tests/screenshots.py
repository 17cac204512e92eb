"""Render the dashboard's views on the demo production into docs/screenshots/ (``make
screenshots``): each view at 1280x800, and the casting board at 390x844 (a phone).

Uses what the browser tests use: ``castroom demo``, the real ``castroom serve`` and
Debian's chromium through playwright. A second member (Sam) has the room open, so the
presence view and the header show someone else."""

from __future__ import annotations

import tempfile
from pathlib import Path

from chromium_launch import launch
from playwright.sync_api import sync_playwright
from sync_helpers import make_token
from web_helpers import VIEWS, Page, Server, cli_json, make_demo

OUT = Path(__file__).resolve().parents[1] / "docs" / "screenshots"


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="castroom-shots-") as tmp:
        workspace = make_demo(Path(tmp) / "demo")
        server = Server(workspace, Path(tmp) / "serve.log")
        try:
            [production] = cli_json(workspace, "production", "list")
            pid = production["id"]
            sam = make_token(workspace, "write", name="Sam Chen (assistant director)")
            with sync_playwright() as playwright:
                browser = launch(playwright)
                other = Page(browser)
                other.open(f"{server.url}/?token={sam}").wait_for_selector(".card")
                other.page.goto(f"{server.url}/#/{pid}/schedule")
                shots = [(name, selector, None) for name, selector in VIEWS.items()]
                shots.append(("board-phone", ".card", {"width": 390, "height": 844}))
                for name, selector, viewport in shots:
                    page = Page(browser, viewport=viewport)
                    opened = page.open(server.link)
                    opened.wait_for_selector('[data-testid="status"]:text("online")')
                    view = name.split("-")[0]
                    opened.goto(f"{server.url}/#/{pid}/{view}")
                    opened.wait_for_selector(selector)
                    if view == "talent":
                        opened.click(".talent-row")
                        opened.wait_for_selector("form.talent-form")
                    if view == "dropout":
                        opened.select_option('select[aria-label="booked talent"]', index=1)
                        opened.click(".replacement button.choose")
                        opened.wait_for_selector(".plan-shown li")
                    if view == "presence":
                        opened.wait_for_selector(".people-list li:nth-child(2)")
                    opened.screenshot(path=str(OUT / f"{name}.png"))
                    assert page.errors == [], page.errors
                    page.close()
                    print(f"wrote {OUT / name}.png")
                other.close()
                browser.close()
        finally:
            server.stop()


if __name__ == "__main__":
    main()
