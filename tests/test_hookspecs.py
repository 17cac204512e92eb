"""The hook contract: every hook is documented and exercised by a test."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from castroom.core import hookspecs

TESTS = Path(__file__).parent
HOOKS = sorted(name for name in dir(hookspecs) if name.startswith("castroom_"))


def test_there_are_hooks() -> None:
    assert {"castroom_check", "castroom_register_importers", "castroom_changed"} <= set(HOOKS)


@pytest.mark.parametrize("name", HOOKS)
def test_every_hook_is_documented(name: str) -> None:
    function = getattr(hookspecs, name)
    doc = inspect.getdoc(function) or ""
    assert len(doc.splitlines()) >= 3, f"{name} needs a docstring"
    assert "Returns:" in doc, f"{name}'s docstring must state its return contract"
    params = [p for p in inspect.signature(function).parameters]
    if params:
        assert "Args:" in doc, f"{name}'s docstring must describe its arguments"
        for param in params:
            assert re.search(rf"\b{param}\b", doc), f"{name}: argument {param!r} undocumented"
    firstresult = function.castroom_spec.get("firstresult", False)  # type: ignore[attr-defined]
    if firstresult:
        assert "firstresult" in doc, f"{name} is firstresult and must say so"
    else:
        assert "not firstresult" in doc or "(not firstresult)" in doc, (
            f"{name} must say that every plugin's answer is collected (not firstresult)"
        )


@pytest.mark.parametrize("name", HOOKS)
def test_every_hook_has_a_test(name: str) -> None:
    """A hook counts as tested when a test module (not this one) implements or calls it."""
    users = [
        path.name
        for path in TESTS.rglob("test_*.py")
        if path.name != Path(__file__).name and name in path.read_text()
    ]
    assert users, f"no test module exercises hook {name}"
