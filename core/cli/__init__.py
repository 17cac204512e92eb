"""The ``castroom`` command line: click code only, one module per group of commands,
each calling the application layer (resolve, labels, edits, fields) for every rule.

:func:`build_cli` makes a fresh root group per plugin manager. Every command is known by
name and one-line help (core's in :data:`CORE_COMMANDS`, plugins' declared in
:mod:`castroom.core.command_index`) and imported only when it runs, so ``--help`` imports
neither pycrdt nor any plugin; the console script, :mod:`castroom.core.start`, answers
``--version`` itself and hands everything else to :func:`main`.
"""

from __future__ import annotations

import functools
import importlib
import sys
from typing import TYPE_CHECKING, Any

import click

from ..commands import emit_json
from ..errors import CastroomError
from ..plugins import Plugins, make_plugins
from .group import CORE, CastroomGroup, Lazy
from .root import cli

if TYPE_CHECKING:
    from ..command_index import DeclaredCommand
    from .context import Context, pass_ctx

__all__ = ["CORE_COMMANDS", "Context", "build_cli", "cli", "emit_json", "main", "pass_ctx"]

#: Core command -> (the module of castroom.core.cli that defines it, its one-line help,
#: the first sentence of its docstring; a test checks both against the command).
CORE_COMMANDS: dict[str, tuple[str, str]] = {
    "add": ("entities", 'Add an entity: castroom add talent name="Ada Stone" playing_age_min=30'),
    "bundle": (
        "bundle",
        "Move everything (or what a peer lacks) between offline machines as one file.",
    ),
    "check": (
        "check",
        "Run every plugin's checks; exit 1 when any finding is an error or a check failed.",
    ),
    "attach": (
        "media",
        'Attach FILE to a talent or a candidate: castroom attach talent "Ada Stone" ada.jpg',
    ),
    "compact": (
        "history",
        "Fold the update log into a snapshot (history of who/what/when is kept), and remove"
        " media files no live entity has used for the grace days (media.grace_days).",
    ),
    "delete": ("entities", "Delete an entity (soft: `castroom restore` brings it back)."),
    "history": ("history", "Who changed what, when, newest first: each field's old → new value."),
    "init": ("production", "Create a workspace (if needed) and a production in it."),
    "invalid": (
        "history",
        "Entities that break a model rule (e.g. edited on an older version elsewhere).",
    ),
    "list": ("entities", "List entities of a kind (singular or plural: talent, talents)."),
    "media": (
        "media",
        "Headshots, reels, résumés and self-tapes attached to talents and candidates.",
    ),
    "plugins": ("plugin_list", "The installed plugins, their versions and hooks."),
    "production": (
        "production",
        "Show or change the production itself, or list the workspace's productions.",
    ),
    "quarantine": (
        "history",
        "Stored updates that no longer load, moved out of the log (kept, never loaded).",
    ),
    "restore": (
        "entities",
        "Bring back a deleted entity (KIND REF), or with --from-history every entity a peer"
        " hard-deleted (from the attic the update log keeps, which compaction keeps).",
    ),
    "schedule": (
        "schedule",
        "Order the board (scenes on shoot days) for the least cast cost, as the budget"
        " computes it: exact where it can be, with a proven lower bound and the gap.",
    ),
    "set": ("entities", 'Change fields of an entity: castroom set talent "Ada Stone" rate=1500'),
    "show": ("entities", "Show one entity, by id, id prefix, or name."),
}


def __getattr__(name: str) -> Any:
    # Context and pass_ctx (for castroom's own front ends) import the workspace and
    # pycrdt: only when asked for, so `castroom --help` stays fast.
    if name in ("Context", "pass_ctx"):
        from . import context

        return getattr(context, name)
    raise AttributeError(name)


def core_command(module: str, name: str) -> click.Command:
    """Import the core module that defines command ``name`` and return the command."""
    importlib.import_module(f"{__name__}.{module}")
    return cli.commands[name]


def plugin_command(plugins: Plugins, declared: DeclaredCommand) -> click.Command:
    """Import the plugin that declared a command (that plugin alone) and return it."""
    command = plugins.commands_of(declared.plugin).get(declared.name)
    if command is None:
        raise CastroomError(
            f"plugin {declared.plugin!r} declares command {declared.name!r} but does not add it"
        )
    return command


def build_cli(plugins: Plugins) -> CastroomGroup:
    """A fresh root command: the core commands plus every plugin's, none imported yet.

    The module-level ``cli`` group holds the core commands once their modules are
    imported; each call makes a new group, so plugin commands never leak between plugin
    managers (tests, embedders). A command name taken twice is a CastroomError naming both.
    """
    root = CastroomGroup(
        name="castroom", callback=cli.callback, params=list(cli.params), help=cli.help
    )
    for name, (module, text) in CORE_COMMANDS.items():
        root.declare(name, Lazy(text, CORE, functools.partial(core_command, module, name)))
    for declared in plugins.declared_commands():
        load = functools.partial(plugin_command, plugins, declared)
        root.declare(declared.name, Lazy(declared.help, declared.plugin, load))
    for name in plugins.extras():  # objects handed in, already imported
        root.add_loaded(name, plugins.commands_of(name))
    for name in plugins.undeclared():
        root.pending[name] = functools.partial(plugins.commands_of, name)
    return root


def main(argv: list[str] | None = None) -> None:
    plugins = make_plugins()
    try:
        root = build_cli(plugins)
    except CastroomError as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(1)
    root.main(args=argv, obj=plugins, prog_name="castroom")
