"""What checks report: findings a person must see, never silently dropped."""

from __future__ import annotations

from typing import Literal

import msgspec

Severity = Literal["error", "warning", "info"]
SEVERITY_ORDER = {"error": 0, "warning": 1, "info": 2}


class EntityRef(msgspec.Struct, kw_only=True, frozen=True):
    kind: str
    id: str
    label: str = ""


class Finding(msgspec.Struct, kw_only=True, frozen=True):
    """One problem (or note) about a production, with a suggested fix."""

    code: str
    severity: Severity
    message: str
    entities: tuple[EntityRef, ...] = ()
    fix: str = ""
    plugin: str = ""


def sort_findings(findings: list[Finding]) -> list[Finding]:
    return sorted(findings, key=lambda f: (SEVERITY_ORDER[f.severity], f.plugin, f.code, f.message))
