"""The public plugin API: one module, nothing from the command line's modules, and the
built-in plugins import castroom's core only through it."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

from castroom.core import api

ROOT = Path(__file__).resolve().parents[1]


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
    # And the guide's table of the API names nothing the API does not hold.
    table = guide.split("## The public API", 1)[1].split("\n## ", 1)[0]
    rows = [line.split("|")[1] for line in table.splitlines() if line.startswith("| `")]
    assert {n for row in rows for n in re.findall(r"`(\w+)`", row)} == set(api.__all__)


def _plugin_imports(path: Path) -> set[str]:
    """The castroom.plugins modules ``path`` imports, absolutely or relatively."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not isinstance(node, ast.ImportFrom):
            continue
        module = node.module or ""
        if (node.level == 0 and module == "castroom.plugins") or (node.level == 1 and not module):
            found.update(a.name for a in node.names)
        elif node.level == 0 and module.startswith("castroom.plugins."):
            found.add(module.split(".")[2])
        elif node.level == 1:
            found.add(module.split(".")[0])
    return found


def test_built_in_plugins_import_no_other_plugin() -> None:
    """What two plugins share lives in core (the public API), not in one of them."""
    from castroom.core.plugins import DEFAULT_PLUGINS

    registered = {
        m.rsplit(".", 1)[1]: short
        for short, m in DEFAULT_PLUGINS.items()
        if m.startswith("castroom.plugins.")
    }
    found: dict[str, set[str]] = {}
    for path in sorted((ROOT / "plugins").glob("*.py")):
        me = registered.get(path.stem)
        others = {registered[m] for m in _plugin_imports(path) if m in registered} - {me}
        if me is not None and others:
            found[me] = others
    assert found == {}


def test_the_import_walk_sees_relative_and_absolute_imports(tmp_path: Path) -> None:
    source = tmp_path / "p.py"
    source.write_text(
        "from castroom.plugins import continuity\nfrom . import inbox\n"
        "from .budget import x\nfrom castroom.plugins.csv_io import y\n"
    )
    assert _plugin_imports(source) == {"continuity", "inbox", "budget", "csv_io"}
