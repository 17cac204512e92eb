"""Helpers for the dashboard's tests in real Chromium: Debian's browser driven by
Python playwright (never ``playwright install``), the real ``castroom serve`` in a
subprocess, and the real CLI beside it. Every wait is for a condition, with a bound."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from chromium_launch import launch
from sync_helpers import PATIENCE, stop_process

EXE = str(Path(sys.executable).with_name("castroom"))
#: Each view of the dashboard, and what shows once it has loaded on the demo production.
VIEWS = {
    "board": ".card",
    "talent": ".talent-row",
    "roles": ".role-detail",
    "schedule": ".strip",
    "budget": ".budget-table tr[data-subtotal]",
    "findings": ".finding",
    "dropout": 'select[aria-label="booked talent"]',
    "presence": ".people-list li",
    "history": ".history-row",
    "files": '.exports li[data-exporter="ics"]',
}


@contextmanager
def chromium() -> Iterator[Any]:
    """Debian's Chromium, launched by playwright (never ``playwright install``)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = launch(playwright)
        yield launched
        launched.close()


def castroom(
    workspace: Path, *args: str, timeout: float = PATIENCE
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [EXE, "--workspace", str(workspace), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "COLUMNS": "200"},
    )


def cli_json(workspace: Path, *args: str) -> Any:
    done = castroom(workspace, *args, "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def wait_for(condition: Callable[[], Any], timeout: float = PATIENCE, what: str = "") -> Any:
    """Poll ``condition`` until it returns something truthy; fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what or condition}")
        time.sleep(0.05)


def make_demo(root: Path) -> Path:
    """``castroom demo`` run for real; its casting director's workspace."""
    done = subprocess.run(
        [EXE, "demo", "--dir", str(root)], capture_output=True, text=True, timeout=2 * PATIENCE
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return root / "alex"


class Server:
    """``castroom serve`` in a subprocess; its sign-in link read from what it prints.
    ``stop()`` then ``start()`` brings it back on the same port (the page's origin)."""

    def __init__(self, workspace: Path, log: Path) -> None:
        self.workspace = workspace
        self.log = log
        self.port = 0
        self.proc: subprocess.Popen[str] | None = None
        self.start()

    def start(self) -> None:
        self.handle = self.log.open("a")
        mark = len(self.log.read_text()) if self.log.exists() else 0
        self.proc = subprocess.Popen(
            [EXE, "--workspace", str(self.workspace), "serve", "--port", str(self.port)],
            stdout=self.handle,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        pattern = re.compile(
            r"Open the dashboard as (.+): (http://127\.0\.0\.1:(\d+))/\?token=(\S+)"
        )

        def started() -> re.Match[str] | None:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited:\n{self.log.read_text()}")
            return pattern.search(self.log.read_text()[mark:])

        match = wait_for(started, what="castroom serve to print its sign-in link")
        self.member, self.url, port, self.token = match.groups()
        self.port = int(port)
        self.link = f"{self.url}/?token={self.token}"

    def stop(self) -> int:
        assert self.proc is not None
        code = stop_process(self.proc)
        self.handle.close()
        return code


class Page:
    """A browser page (its own context: its own IndexedDB, like another person's
    browser) that records console errors and every URL it requests."""

    def __init__(self, browser: Any, viewport: dict[str, int] | None = None) -> None:
        self.context = browser.new_context(viewport=viewport or {"width": 1280, "height": 800})
        # Every playwright wait (a selector, a function, a navigation) is bounded by this.
        self.context.set_default_timeout(PATIENCE * 1000)
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.requests: list[str] = []
        self.page.on(
            "console", lambda m: m.type == "error" and self.errors.append(f"console: {m.text}")
        )
        self.page.on("pageerror", lambda e: self.errors.append(f"page: {e}"))
        self.page.on("request", lambda r: self.requests.append(r.url))

    def open(self, url: str) -> Any:
        self.page.goto(url)
        return self.page

    def close(self) -> None:
        self.context.close()
