"""Shared fixtures. Each test gets its own real workspace folder (real SQLite file)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from hypothesis import settings
from hypothesis_profiles import PROFILE
from patience import PATIENCE

from castroom.core.workspace import Workspace

settings.load_profile(PROFILE)

#: The Node peers' fixtures (``npm_packages``, used by ``sync_helpers.NODE_PEERS``).
pytest_plugins = ["sync_helpers"]


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test may touch the user's real workspace or depend on the caller's env."""
    for name in (
        "CASTROOM_WORKSPACE",
        "CASTROOM_PRODUCTION",
        "CASTROOM_TOKEN",
        "CASTROOM_DISABLE_PLUGINS",
        "CASTROOM_MEMBER",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CASTROOM_WORKSPACE", str(tmp_path / "default-workspace"))


@pytest.fixture
def workspace(tmp_path: Path) -> Iterator[Workspace]:
    ws = Workspace.open(tmp_path / "ws", member="tester")
    yield ws
    ws.close()


@pytest.fixture
def cli(tmp_path: Path):
    """Run castroom's CLI in-process against a workspace folder: cli("list", "talents")."""
    from castroom.core.cli import build_cli
    from castroom.core.plugins import make_plugins

    path = tmp_path / "cli-ws"

    def run(*args: str, workspace: Path | None = None) -> Result:
        plugins = make_plugins()
        root = build_cli(plugins)
        return CliRunner().invoke(
            root,
            ["--workspace", str(workspace or path), *args],
            obj=plugins,
            catch_exceptions=False,
        )

    run.path = path  # type: ignore[attr-defined]
    return run


def run_castroom(
    *args: str, env: dict[str, str] | None = None, timeout: float = PATIENCE, check: bool = False
) -> subprocess.CompletedProcess[str]:
    """Run the real `castroom` console script in a subprocess."""
    exe = Path(sys.executable).with_name("castroom")
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [str(exe), *args],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=timeout,
        check=check,
    )
