"""Serving a workspace with a sign-in link for the dashboard: what ``castroom serve``
and ``castroom demo --serve`` run in the foreground."""

from __future__ import annotations

import contextlib
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from castroom.core.workspace import Workspace

from ..auth import TokenStore


class _Stopped(Exception):
    """SIGTERM, after uvicorn's graceful shutdown."""


def _stop(signum: int, frame: object) -> None:
    raise _Stopped()


def sign_in_token(path: Path) -> tuple[str, str]:
    """(member, token): a fresh write token named for the workspace's member, so the
    page's ratings and the history say who; ``castroom token revoke`` ends it."""
    with Workspace.open(path, create=False) as workspace:
        member = workspace.identity.member
        _, token = TokenStore(workspace.store).create("write", name=member)
    return member, token


def serve_with_sign_in(
    path: Path,
    *,
    echo: Callable[[str], Any],
    open_browser: bool = False,
    **server: Any,
) -> None:
    """Run ``castroom.sync.server.serve`` until SIGINT/SIGTERM, printing where it listens,
    the productions, and the dashboard's sign-in link once it is listening (so a busy
    port leaves no token behind)."""
    from ..server import serve

    with Workspace.open(path, create=False) as workspace:
        productions = workspace.productions()

    def ready(url: str) -> None:
        member, token = sign_in_token(path)
        ws = url.replace("http", "ws", 1)
        echo(
            f"castroom serving {path} at {url} (WebSocket: {ws}/sync/PRODUCTION_ID,"
            f" Hocuspocus: {ws}/hocuspocus)"
        )
        for pid, title in productions:
            echo(f"  {pid}  {title}")
        link = f"{url}/?token={token}"
        echo(f"Open the dashboard as {member}: {link}")
        sys.stdout.flush()
        if open_browser:
            import webbrowser

            webbrowser.open(link)

    # uvicorn shuts down gracefully on SIGINT/SIGTERM, then re-raises the signal for the
    # previous handler: make that a normal stop (exit 0), not a kill.
    signal.signal(signal.SIGTERM, _stop)
    with contextlib.suppress(KeyboardInterrupt, _Stopped):
        serve(path, on_ready=ready, **server)
    echo("castroom server stopped")
