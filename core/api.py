"""castroom's public plugin API: everything a plugin author imports, from one module.

    from castroom.core.api import Finding, ProductionView, hookimpl

    @hookimpl
    def castroom_check(view: ProductionView) -> list[Finding]:
        ...

What is here (documented in docs/plugins.md):

- ``hookimpl``: the marker for ``castroom_*`` hook implementations (see
  :mod:`castroom.core.hookspecs` for each hook's arguments and answer).
- :class:`ProductionView`: the read-only production every hook receives.
- :class:`Finding`, :class:`EntityRef`, ``Severity``: what checks return.
- :class:`Importer`, :class:`ImportResult`, :class:`Exporter`: what collection hooks
  register and importers return.
- The contracts of the firstresult hooks: :class:`BudgetReport` (``CostLine``,
  ``Subtotal``) and :class:`ContingencyPlan` (``RolePlan``, ``Replacement``,
  ``SceneRef``, ``DayRef``), and :func:`validate_answer`.
- Plans: :class:`Plan`, :class:`Edit`, :class:`Applied` and the builders
  :func:`plan_create`, :func:`plan_change`, :func:`plan_delete`, :func:`plan_restore`
  (each checks its edit against a view as it builds it).
- Commands: :func:`pass_command` and :class:`CommandContext` (read a view, apply a plan),
  :func:`emit_json` for ``--json`` output.
- What people call things: :func:`label`, :func:`resolve_id`, :func:`fold`.
- The entity Structs (``Talent``, ``Role``, ...) and ``model`` (kinds, references),
  ``format_money``, and the errors a plugin may raise or catch.

Nothing here comes from the command line's modules, and nothing here hands a plugin a
writable document: plugins read views and return data or plans.
"""

from __future__ import annotations

from . import model
from .commands import CommandContext, emit_json, pass_command
from .contracts import (
    BudgetReport,
    ContingencyPlan,
    CostLine,
    DayRef,
    MalformedAnswer,
    Replacement,
    RolePlan,
    SceneRef,
    Subtotal,
    validate_answer,
)
from .edits import Applied, Edit, EditRefused, Plan
from .edits import change as plan_change
from .edits import create as plan_create
from .edits import delete as plan_delete
from .edits import restore as plan_restore
from .errors import Ambiguous, CastroomError, NotFound, ValidationFailed
from .findings import EntityRef, Finding, Severity
from .hookspecs import hookimpl
from .labels import label
from .model import (
    Audition,
    Availability,
    Candidate,
    Deal,
    Entity,
    Era,
    Look,
    Member,
    Production,
    Role,
    Scene,
    ShootDay,
    Talent,
)
from .money import format_money
from .registry import Exporter, Importer, ImportResult
from .resolve import fold, resolve_id
from .view import ProductionView

__all__ = [
    "Ambiguous",
    "Applied",
    "Audition",
    "Availability",
    "BudgetReport",
    "Candidate",
    "CastroomError",
    "CommandContext",
    "ContingencyPlan",
    "CostLine",
    "DayRef",
    "Deal",
    "Edit",
    "EditRefused",
    "Entity",
    "EntityRef",
    "Era",
    "Exporter",
    "Finding",
    "ImportResult",
    "Importer",
    "Look",
    "MalformedAnswer",
    "Member",
    "NotFound",
    "Plan",
    "Production",
    "ProductionView",
    "Replacement",
    "Role",
    "RolePlan",
    "Scene",
    "SceneRef",
    "Severity",
    "ShootDay",
    "Subtotal",
    "Talent",
    "ValidationFailed",
    "emit_json",
    "fold",
    "format_money",
    "hookimpl",
    "label",
    "model",
    "pass_command",
    "plan_change",
    "plan_create",
    "plan_delete",
    "plan_restore",
    "resolve_id",
    "validate_answer",
]
