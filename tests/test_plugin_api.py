"""The public plugin API: one module, nothing from the command line's modules, and the
built-in plugins import castroom's core only through it."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from castroom.core import api

ROOT = Path(__file__).resolve().parents[1]
#: Built-ins that reach further than the API, and why.
BEYOND_THE_API = {
    # `castroom demo` builds, syncs and bundles sample workspaces in a folder it makes
    # itself (never the user's production): it drives the core as a front end does.
    "demo.py",
    # The sample series the demo and the tests build: a document filled in memory.
    "sample.py",
}


def _core_imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.startswith("castroom.core"):
                found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("castroom.core"))
    return found


def test_built_in_plugins_import_the_core_only_through_the_api() -> None:
    reaching = {
        path.name: sorted(_core_imports(path) - {"castroom.core.api"})
        for path in sorted((ROOT / "plugins").glob("*.py"))
        if path.name not in BEYOND_THE_API
    }
    assert {name: found for name, found in reaching.items() if found} == {}


def test_the_api_holds_nothing_from_the_command_line() -> None:
    code = (
        "import sys, castroom.core.api\n"
        "print(sorted(m for m in sys.modules if m.startswith('castroom.core.cli')))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
    assert not any(
        m.startswith("castroom.core.cli") for m in _core_imports(ROOT / "core" / "api.py")
    )


def test_every_name_the_api_lists_is_there_and_documented() -> None:
    guide = (ROOT / "docs" / "plugins.md").read_text(encoding="utf-8")
    missing = [name for name in api.__all__ if not hasattr(api, name)]
    assert missing == []
    undocumented = [name for name in api.__all__ if f"`{name}`" not in guide]
    assert undocumented == []


#: Built-in plugins that import another registered plugin today (shared logic that
#: belongs in core, to move there): plugin -> the plugins it imports.
CROSS_PLUGIN: dict[str, set[str]] = {}


def test_built_in_plugins_import_no_other_plugin_but_those_listed() -> None:
    from castroom.core.plugins import DEFAULT_PLUGINS

    registered = {m.rsplit(".", 1)[1]: short for short, m in DEFAULT_PLUGINS.items()}
    found: dict[str, set[str]] = {}
    for path in sorted((ROOT / "plugins").glob("*.py")):
        if path.stem not in registered:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            modules: list[str] = []
            if isinstance(node, ast.ImportFrom) and node.module == "castroom.plugins":
                modules = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
                "castroom.plugins."
            ):
                modules = [str(node.module).rsplit(".", 1)[1]]
            others = {registered[m] for m in modules if m in registered} - {path.stem}
            if others:
                found.setdefault(registered[path.stem], set()).update(others)
    assert found == CROSS_PLUGIN
