"""The castroom hook specifications: the one contract between the core and plugins.

Every hook is named ``castroom_*``, has typed arguments and a docstring saying what it
receives, what it returns and whether the first answer wins (``firstresult``). A plugin
implements any subset with ``@hookimpl``; the core calls hooks only through the typed
façade in :mod:`castroom.core.plugins`, which isolates a failing plugin so the rest carry on.

Plugins never write a document directly: hooks receive a read-only
:class:`~castroom.core.view.ProductionView` and return data, which the core validates
and writes in one transaction (so no plugin can leave a document half-changed).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    import click

    from .contracts import BudgetReport, ContingencyPlan, SchedulePlan, ScheduleRequest
    from .document import Changes
    from .findings import Finding
    from .registry import Exporter, Importer
    from .view import ProductionView

hookspec = pluggy.HookspecMarker("castroom")
hookimpl = pluggy.HookimplMarker("castroom")


@hookspec
def castroom_check(view: ProductionView) -> Iterable[Finding] | None:
    """Judge a production and return findings (continuity, budget, anything).

    Args:
        view: read-only access to the production's entities and common indexes.

    Returns:
        The findings this plugin makes (an empty list or None when all is well). Every
        plugin's findings are collected (not firstresult); the core stamps each with the
        plugin's name. A plugin that raises is reported as a failure and skipped.
    """


@hookspec
def castroom_register_importers(register: Callable[[Importer], None]) -> None:
    """Offer importers: call ``register(Importer(...))`` once per importer.

    Args:
        register: validates and records an :class:`~castroom.core.registry.Importer`.
            Called when the plugin manager is built: a name already taken by a plugin
            loaded earlier (built-ins load first) is refused and reported as this
            plugin's failure, naming both; the first plugin keeps the name.

    Returns:
        Nothing (not firstresult); every plugin may register any number.
    """


@hookspec
def castroom_register_exporters(register: Callable[[Exporter], None]) -> None:
    """Offer exporters: call ``register(Exporter(...))`` once per exporter.

    Args:
        register: validates and records an :class:`~castroom.core.registry.Exporter`;
            a duplicate name is refused at start-up exactly as for importers.

    Returns:
        Nothing (not firstresult).
    """


@hookspec
def castroom_register_commands(cli: click.Group) -> None:
    """Add subcommands to the ``castroom`` command line.

    Called on this plugin alone when one of its commands runs: a plugin declares its
    commands' names and one-line help beforehand (``castroom.commands`` entry points,
    see :mod:`castroom.core.command_index`), so ``castroom --help`` does not import it;
    an undeclared plugin is called when the whole command list is needed.

    Args:
        cli: a click group; add commands with ``@cli.command()``. A command whose name
            is already taken is rejected with an error naming both.

    Returns:
        Nothing (not firstresult).
    """


@hookspec
def castroom_changed(view: ProductionView, changes: Changes, origin: str) -> None:
    """React after a production changed, locally or by merging a peer's update.

    Args:
        view: the production as it is after the change (read-only).
        changes: ``(collection, entity id) -> field names`` that changed; ``"*"`` marks a
            newly created entity, ``"?"`` an entity whose changed fields a large merged
            update did not itemise (re-read the entity).
        origin: ``"local"`` for this process's writes, otherwise where the update came
            from (``"storage"`` for another process on this workspace, ``"sync"``,
            ``"bundle"``, ``"folder"``).

    Returns:
        Nothing (not firstresult). Must not block: it runs after every transaction.
    """


@hookspec(firstresult=True)
def castroom_rank_replacements(
    view: ProductionView, talent_id: str, role_id: str | None
) -> ContingencyPlan | None:
    """Rank replacements for a booked talent who dropped out.

    Args:
        view: the production (read-only).
        talent_id: the talent who dropped out.
        role_id: limit to one of their roles, or None for every role they are booked in.

    Returns:
        A :class:`~castroom.core.contracts.ContingencyPlan` (affected scenes and shoot
        days, ranked replacements each with reasons), or plain data of its shape, or None
        to let the next plugin answer. firstresult: the first non-None answer wins, so a
        plugin overrides the built-in ranking (which is ``trylast``). The answer is
        validated against the contract; one that does not fit is reported as this
        plugin's failure and the next plugin answers.
    """


@hookspec(firstresult=True)
def castroom_cost_report(view: ProductionView) -> BudgetReport | None:
    """Compute the production's cast cost (the budget) from its deals and schedule.

    Args:
        view: the production (read-only).

    Returns:
        A :class:`~castroom.core.contracts.BudgetReport` (cost per deal, per actor and
        per role, the total, the cap and what remains; money in integer minor units), or
        plain data of its shape, or None to let the next plugin answer. firstresult: the
        first non-None answer wins, so a plugin can apply its own rules (a union's scale,
        another country's fringes) over the built-in report (which is ``trylast``). The
        answer is validated against the contract; one that does not fit is reported as
        this plugin's failure and the next plugin answers.
    """


@hookspec(firstresult=True)
def castroom_propose_schedule(
    view: ProductionView, request: ScheduleRequest
) -> SchedulePlan | None:
    """Propose the board: which scenes on which shoot day, in which order, at what cast cost.

    Args:
        view: the production (read-only).
        request: a :class:`~castroom.core.contracts.ScheduleRequest`: the time limit in
            seconds, the shoot day ids locked as they are, and whether to repair (move
            as few scenes as possible) instead of optimising freely.

    Returns:
        A :class:`~castroom.core.contracts.SchedulePlan` (days with their scenes, the
        cost before and after per actor and in total, a proven lower bound, whether it
        is optimal; money in minor units) or plain data of its shape, or None to let the
        next plugin answer. firstresult: a studio's own rules win over the built-in
        scheduler (which is ``trylast``). ``castroom schedule --apply`` writes the plan.
    """
