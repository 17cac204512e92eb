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
- ``SchedulePlan`` (``PlanDay``, ``TalentCost``) and ``ScheduleRequest``: the
  ``castroom_propose_schedule`` contract; :func:`propose` (the built-in scheduler) and
  :func:`scene_days`.
- Costing, exactly as ``castroom budget`` computes it: :func:`budget_report`,
  :func:`report_for`, :func:`deal_cost`, :func:`day_out_of_days` (``DayOutOfDays``,
  ``DoodRow``, ``DoodDay``), :func:`ordered_days`, :func:`schedule_codes`,
  :func:`drop_after_days`, ``BoardDay``, ``DealCost``.
- Plans: :class:`Plan`, :class:`Edit`, :class:`Applied` and the builders
  :func:`plan_create`, :func:`plan_change`, :func:`plan_delete`, :func:`plan_restore`
  (each checks its edit against a view as it builds it).
- Replacing a talent who drops out (:mod:`castroom.core.replacing`): :func:`choose` one
  of a ranking's replacements, :func:`plan_choice` (the plan that books them, with its
  ``Choice``), :func:`applied_choice` (``AppliedChoice``, what it changed), and the deal
  rules a ranking prices by: :func:`replacement_terms`, :func:`live_deals`,
  :func:`own_deal`.
- Commands: :func:`pass_command` and :class:`CommandContext` (read a view, apply a plan),
  :func:`emit_json` for ``--json`` output, :func:`plain_console` for a rich Console
  that prints people's text as written (no markup, no emoji codes), :func:`print_table`
  for a rich Table that may be long, and ``collector_paused`` around a command's
  bounded heavy reading.
- Casting rules, as the built-in checks and ranking judge: :func:`age_range` (a
  character's age in a scene), :func:`fits_age`, :func:`age_span`, :func:`conflicts`
  (what keeps a talent from a shoot day) and :func:`describe_block`.
- What people call things: :func:`label`, :func:`short_ids` (short unique id prefixes
  for people), :func:`resolve_id`, :func:`fold`, and for an
  importer :class:`Resolver` and :func:`resolve_references` (reference cells by name).
- Importing: :func:`plan_import` (an ``ImportResult`` as a checked plan),
  :class:`ImportCounts`, :class:`ImportFailed`, :func:`format_errors`.
- Money as people write it: :func:`parse_money`, :func:`parse_field`,
  :func:`money_fields`, :func:`plain_amount`, :func:`format_money`, ``MoneyError``.
- :class:`Plugins`: the plugin façade (``CommandContext.plugins``; other plugins'
  answers, importers and exporters).
- The entity Structs (``Talent``, ``Role``, ...) and ``model`` (kinds, references),
  and the errors a plugin may raise or catch.

Nothing here comes from the command line's modules, and nothing here hands a plugin a
writable document: plugins read views and return data or plans.
"""

from __future__ import annotations

from . import model
from .collector import paused as collector_paused
from .commands import CommandContext, emit_json, pass_command
from .contracts import (
    BudgetReport,
    ContingencyPlan,
    CostLine,
    DayRef,
    MalformedAnswer,
    PlanDay,
    Replacement,
    RolePlan,
    SceneRef,
    SchedulePlan,
    ScheduleRequest,
    Subtotal,
    TalentCost,
    validate_answer,
)
from .costing import (
    BoardDay,
    DayOutOfDays,
    DealCost,
    DoodDay,
    DoodRow,
    budget_report,
    day_out_of_days,
    deal_cost,
    drop_after_days,
    ordered_days,
    report_for,
    schedule_codes,
)
from .edits import Applied, Edit, Plan
from .edits import change as plan_change
from .edits import create as plan_create
from .edits import delete as plan_delete
from .edits import restore as plan_restore
from .errors import Ambiguous, CastroomError, NotFound, ValidationFailed
from .findings import EntityRef, Finding, Severity
from .fit import age_range, age_span, conflicts, describe_block, fits_age
from .hookspecs import hookimpl
from .importing import ImportCounts, ImportFailed, format_errors, plan_import
from .labels import label, short_ids
from .model import (
    Audition,
    Availability,
    Candidate,
    Deal,
    Entity,
    Era,
    Look,
    MediaRef,
    Member,
    Production,
    Role,
    Scene,
    ShootDay,
    Talent,
)
from .money import MoneyError, format_money, money_fields, parse_field, parse_money, plain_amount
from .plugins import Plugins
from .printing import console as plain_console
from .printing import print_table
from .registry import Exporter, Importer, ImportResult
from .replacing import (
    AppliedChoice,
    Choice,
    applied_choice,
    choose,
    live_deals,
    own_deal,
    plan_choice,
    replacement_terms,
)
from .resolve import Resolver, fold, resolve_id, resolve_references
from .scheduling import propose, scene_days
from .view import ProductionView

__all__ = [
    "Ambiguous",
    "Applied",
    "AppliedChoice",
    "Audition",
    "Availability",
    "BoardDay",
    "BudgetReport",
    "Candidate",
    "CastroomError",
    "Choice",
    "CommandContext",
    "ContingencyPlan",
    "CostLine",
    "DayOutOfDays",
    "DayRef",
    "Deal",
    "DealCost",
    "DoodDay",
    "DoodRow",
    "Edit",
    "Entity",
    "EntityRef",
    "Era",
    "Exporter",
    "Finding",
    "ImportCounts",
    "ImportFailed",
    "ImportResult",
    "Importer",
    "Look",
    "MalformedAnswer",
    "MediaRef",
    "Member",
    "MoneyError",
    "NotFound",
    "Plan",
    "PlanDay",
    "Plugins",
    "Production",
    "ProductionView",
    "Replacement",
    "Resolver",
    "Role",
    "RolePlan",
    "Scene",
    "SceneRef",
    "SchedulePlan",
    "ScheduleRequest",
    "Severity",
    "ShootDay",
    "Subtotal",
    "Talent",
    "TalentCost",
    "ValidationFailed",
    "age_range",
    "age_span",
    "applied_choice",
    "budget_report",
    "choose",
    "collector_paused",
    "conflicts",
    "day_out_of_days",
    "deal_cost",
    "describe_block",
    "drop_after_days",
    "emit_json",
    "fits_age",
    "fold",
    "format_errors",
    "format_money",
    "hookimpl",
    "label",
    "live_deals",
    "model",
    "money_fields",
    "ordered_days",
    "own_deal",
    "parse_field",
    "parse_money",
    "pass_command",
    "plain_amount",
    "plain_console",
    "plan_change",
    "plan_choice",
    "plan_create",
    "plan_delete",
    "plan_import",
    "plan_restore",
    "print_table",
    "propose",
    "replacement_terms",
    "report_for",
    "resolve_id",
    "resolve_references",
    "scene_days",
    "schedule_codes",
    "short_ids",
    "validate_answer",
]
