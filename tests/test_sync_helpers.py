"""The test helpers' own promise, as the README states it: the Node peers' tests skip,
with the reason, only where Node is not installed; where it is and the npm packages are
missing, they fail and say what to run."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import sync_helpers
from sync_helpers import node_missing_reason, node_packages_problem


def test_the_node_tests_skip_only_where_node_is_missing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(shutil, "which", lambda _name: None)
    assert node_missing_reason() == (
        "node is not installed (the Yjs interoperability tests need Node.js)"
    )
    monkeypatch.setattr(shutil, "which", lambda name: f"/usr/bin/{name}")
    assert node_missing_reason() is None
    monkeypatch.setattr(sync_helpers, "NODE_DIR", tmp_path)  # no node_modules here
    problem = node_packages_problem()
    assert problem is not None and "`make test`" in problem
    assert all(package in problem for package in sync_helpers.NODE_PACKAGES)
