"""The hook contract: every hook is documented and exercised by a test."""

from __future__ import annotations

import ast
import inspect
import re
import typing
from pathlib import Path

import pytest

from castroom.core import hookspecs

TESTS = Path(__file__).parent
GUIDE = TESTS.parent / "docs" / "plugins.md"
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


def _hookimpl_defs() -> dict[str, list[str]]:
    """Hook name -> where a test (or the example plugin the tests install) defines a
    ``def castroom_*`` decorated with ``@hookimpl`` / ``@hookimpl(...)``. Parsed, not
    grepped: a name in a string, a comment or a lambda does not count."""
    found: dict[str, list[str]] = {}
    files = [p for p in TESTS.rglob("*.py") if p.name != Path(__file__).name]
    for path in files:
        if not (path.name.startswith("test_") or "plugin_example" in path.parts):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for deco in node.decorator_list:
                target = deco.func if isinstance(deco, ast.Call) else deco
                name = (
                    target.attr if isinstance(target, ast.Attribute) else getattr(target, "id", "")
                )
                if name == "hookimpl":
                    found.setdefault(node.name, []).append(f"{path.name}:{node.lineno}")
    return found


IMPLEMENTED = _hookimpl_defs()


@pytest.mark.parametrize("name", HOOKS)
def test_every_hook_has_a_test(name: str) -> None:
    """A hook counts as tested when a test module (or the installed example plugin) has a
    real ``@hookimpl``-decorated ``def`` of it, not merely its name in the text."""
    assert IMPLEMENTED.get(name), f"no test implements hook {name} with a @hookimpl def"


def test_the_implementation_finder_is_not_fooled() -> None:
    assert "castroom_chek" in IMPLEMENTED  # the misspelling test's impl is found ...
    assert not set(IMPLEMENTED) - set(HOOKS) - {"castroom_chek"}  # ... and nothing stray


def _hint_namespace() -> dict[str, object]:
    """What hookspecs names under TYPE_CHECKING, so annotations can be resolved."""
    import click

    from castroom.core.contracts import (
        BudgetReport,
        ContingencyPlan,
        SchedulePlan,
        ScheduleRequest,
    )
    from castroom.core.document import Changes
    from castroom.core.findings import Finding
    from castroom.core.registry import Exporter, Importer
    from castroom.core.view import ProductionView

    return {
        **vars(hookspecs),
        "click": click,
        "BudgetReport": BudgetReport,
        "ContingencyPlan": ContingencyPlan,
        "Changes": Changes,
        "Finding": Finding,
        "Exporter": Exporter,
        "Importer": Importer,
        "ProductionView": ProductionView,
        "SchedulePlan": SchedulePlan,
        "ScheduleRequest": ScheduleRequest,
    }


@pytest.mark.parametrize("name", HOOKS)
def test_every_hook_is_fully_typed(name: str) -> None:
    """Every parameter and the return carry a type annotation that resolves."""
    function = getattr(hookspecs, name)
    signature = inspect.signature(function)
    for param in signature.parameters.values():
        assert param.annotation is not inspect.Parameter.empty, f"{name}: {param.name} untyped"
    assert signature.return_annotation is not inspect.Signature.empty, f"{name}: return untyped"
    hints = typing.get_type_hints(function, globalns=_hint_namespace())
    assert set(hints) == {*signature.parameters, "return"}


@pytest.mark.parametrize("name", HOOKS)
def test_every_hook_is_in_the_guides_table(name: str) -> None:
    assert f"| `{name}(" in GUIDE.read_text(encoding="utf-8"), f"docs/plugins.md lacks {name}"


@pytest.mark.parametrize("name", HOOKS)
def test_no_hook_answers_any(name: str) -> None:
    """The firstresult hooks are typed by core contracts (they returned ``Any`` while
    their result types lived in plugins/)."""
    hints = typing.get_type_hints(getattr(hookspecs, name), globalns=_hint_namespace())
    assert "Any" not in repr(hints["return"]), f"{name} returns {hints['return']!r}"
