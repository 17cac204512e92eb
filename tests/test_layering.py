"""Layering rules that a reviewer would otherwise have to remember: core's storage module
is the only one that speaks SQL; sync/ and plugins/ reach the database only through
``Store`` and ``Workspace`` methods."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
#: SQL text: a statement keyword followed by the clause that makes it a statement.
SQL_RE = re.compile(
    r"\b(SELECT\b.*\bFROM|INSERT\b.*\bINTO|UPDATE\b.*\bSET|DELETE\s+FROM|CREATE\s+TABLE"
    r"|ALTER\s+TABLE|PRAGMA)\b",
    re.DOTALL,
)
DB_CALLS = {"execute", "executemany", "executescript", "cursor"}


def sql_uses(source: str) -> list[str]:
    """What in ``source`` speaks SQL: sqlite3 imports, DB-API calls, SQL text."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [f"import {a.name}" for a in node.names if a.name.split(".")[0] == "sqlite3"]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "sqlite3":
            found.append(f"from {node.module} import ...")
        elif isinstance(node, ast.Attribute) and node.attr in DB_CALLS | {"db"}:
            found.append(f"line {node.lineno}: .{node.attr}")
        elif (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and SQL_RE.search(node.value)
        ):
            found.append(f"line {node.lineno}: SQL text {node.value[:40]!r}")
    return found


def modules(*folders: str) -> list[Path]:
    return sorted(p for folder in folders for p in (ROOT / folder).rglob("*.py"))


@pytest.mark.parametrize("path", modules("sync", "plugins"), ids=lambda p: str(p.relative_to(ROOT)))
def test_sync_and_plugins_run_no_sql(path: Path) -> None:
    uses = sql_uses(path.read_text())
    assert not uses, f"{path.relative_to(ROOT)} speaks SQL (use a Store method): {uses}"


@pytest.mark.parametrize(
    "source",
    [
        "import sqlite3",
        "from sqlite3 import connect",
        "store.db.execute('x')",
        "rows = conn.execute(q)",
        "Q = 'SELECT id FROM sync_tokens'",
        "Q = '''UPDATE updates\n SET data = NULL'''",
    ],
)
def test_the_sql_detector_sees_each_way_in(source: str) -> None:
    assert sql_uses(source)


def test_the_sql_detector_ignores_prose() -> None:
    assert not sql_uses('"""Select a role from the list, then update its name."""')
