"""``plugins``: the installed plugins, their versions and hooks, and what failed."""

from __future__ import annotations

import click

from ..commands import emit_json
from .context import Context, pass_ctx
from .root import cli


@cli.command(name="plugins")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def plugins_cmd(obj: Context, as_json: bool) -> None:
    """The installed plugins, their versions and hooks."""
    infos = obj.plugins.list()
    if as_json:
        # Broken plugins are part of the answer: a script must not mistake "not loaded"
        # for "not installed".
        emit_json(
            {
                "plugins": [
                    {"name": p.name, "version": p.version, "hooks": p.hooks, "builtin": p.builtin}
                    for p in infos
                ],
                "failures": [f.as_dict() for f in obj.plugins.failures],
            }
        )
    else:
        from rich.table import Table

        table = Table(title="plugins")
        for column in ("name", "version", "built-in", "hooks"):
            table.add_column(column, overflow="fold")
        for info in infos:
            table.add_row(
                info.name, info.version or "", "yes" if info.builtin else "", ", ".join(info.hooks)
            )
        obj.console.print(table)
    # What failed to load is printed (once) as the command ends, by the root group.
