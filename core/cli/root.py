"""The root ``castroom`` group and its global options (every command hangs off it)."""

from __future__ import annotations

import click

from .. import __version__
from .group import CastroomGroup


@click.group(cls=CastroomGroup)
@click.version_option(__version__, prog_name="castroom")
@click.option(
    "--workspace",
    "-w",
    envvar="CASTROOM_WORKSPACE",
    type=click.Path(file_okay=False),
    help="Workspace folder (default: your user data folder).",
)
@click.option(
    "--production",
    "-p",
    envvar="CASTROOM_PRODUCTION",
    help="Production id, id prefix or title (when the workspace holds several).",
)
@click.option("--member", envvar="CASTROOM_MEMBER", help="Who you are, for the history.")
@click.pass_context
def cli(
    ctx: click.Context, workspace: str | None, production: str | None, member: str | None
) -> None:
    """castroom: plan who plays what, keep every scene consistent, stay in budget."""
    # Imported here, not at the top: `castroom --help` never runs this callback.
    from ..commands import register_host
    from ..plugins import Plugins, make_plugins
    from .context import Context

    plugins = ctx.obj if isinstance(ctx.obj, Plugins) else make_plugins()
    # ctx.obj stays the plugin façade; the Context (workspace, stored production) is kept
    # where plugin commands cannot reach it (see castroom.core.commands).
    ctx.obj = plugins
    register_host(ctx, Context(plugins, workspace, production, member))
