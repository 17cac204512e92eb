"""The ``castroom`` command line: click code only, one module per group of commands,
each calling the application layer (resolve, labels, edits, fields) for every rule.

Plugins add their commands through ``castroom_register_commands``; :func:`build_cli`
makes a fresh root group per plugin manager; the console script, :mod:`castroom.core.start`,
answers ``--version`` itself and hands everything else to :func:`main`.
"""

from __future__ import annotations

import sys

import click

from ..commands import emit_json
from ..errors import CastroomError
from ..plugins import Plugins, make_plugins
from . import (  # noqa: F401
    bundle,
    check,
    entities,
    history,
    media,
    plugin_list,
    production,
    schedule,
)
from .context import CastroomGroup, Context, pass_ctx
from .root import cli

__all__ = ["Context", "build_cli", "cli", "emit_json", "main", "pass_ctx"]


def build_cli(plugins: Plugins) -> click.Group:
    """A fresh root command: the core commands plus every plugin's.

    The module-level ``cli`` group only holds the core commands; each call makes a new
    group, so plugin commands never leak between plugin managers (tests, embedders).
    """
    root = CastroomGroup(
        name="castroom",
        callback=cli.callback,
        params=list(cli.params),
        help=cli.help,
        commands=dict(cli.commands),
    )
    plugins.register_commands(root)
    return root


def main(argv: list[str] | None = None) -> None:
    try:
        plugins = make_plugins()
        root = build_cli(plugins)
    except CastroomError as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(1)
    for failure in plugins.failures:
        click.echo(f"Warning: {failure}", err=True)
    root.main(args=argv, obj=plugins, prog_name="castroom")
