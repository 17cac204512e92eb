"""Debian's Chromium as the dashboard's tests, screenshots and bench_web launch it:
playwright drives /usr/bin/chromium (never ``playwright install``), headless, quiet and
offline, so that nothing reaches beyond 127.0.0.1. Imports nothing of the tests' own, so
``bench/bench_web.py`` can use it too (``from tests.chromium_launch import ...``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

CHROMIUM = Path("/usr/bin/chromium")
#: Flags for a quiet, offline headless browser: nothing reaches beyond 127.0.0.1.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def launch(playwright: Any) -> Any:
    """A browser from a running ``sync_playwright()``: Debian's chromium, these flags."""
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
