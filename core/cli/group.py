"""The root command group: domain errors become one line and exit 1, and commands are
known by name and help before the modules that hold them are imported.

A command declared lazily (:class:`Lazy`: core's own, or a plugin's declared one, see
:mod:`castroom.core.command_index`) is imported when it runs; ``--help`` lists its
declared help. Plugins that declare nothing are imported when the whole list is needed
(``--help``) or a name is unknown.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import click

from ..errors import CastroomError

#: The owner of castroom's own commands (a plugin may not be called this).
CORE = "castroom"


@dataclass(frozen=True)
class Lazy:
    """A command known by name and one-line help; ``load`` imports and returns it."""

    help: str
    owner: str
    load: Callable[[], click.Command]


def _owner(owner: str) -> str:
    return "castroom" if owner == CORE else f"plugin {owner!r}"


class CastroomGroup(click.Group):
    """Turns domain errors into one clear line and exit status 1; loads commands lazily."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy: dict[str, Lazy] = {}
        self._owners: dict[str, str] = {}
        #: Plugins whose commands are unknown until imported: name -> their commands.
        self.pending: dict[str, Callable[[], dict[str, click.Command]]] = {}
        #: Why a pending plugin's commands are missing (it failed to load, or clashed).
        self.broken: dict[str, str] = {}

    # -- adding ------------------------------------------------------------------------------

    def _claim(self, name: str, owner: str) -> None:
        taken = self._owners.get(name)
        if taken is not None:
            raise CastroomError(
                f"{_owner(owner)} adds command {name!r}, which {_owner(taken)} already adds"
            )
        self._owners[name] = owner

    def declare(self, name: str, entry: Lazy) -> None:
        self._claim(name, entry.owner)
        self.lazy[name] = entry

    def add_loaded(self, owner: str, commands: dict[str, click.Command]) -> None:
        for name, command in commands.items():
            self._claim(name, owner)
            self.add_command(command, name)

    # -- finding -----------------------------------------------------------------------------

    def _load(self, name: str) -> click.Command:
        entry = self.lazy.pop(name)
        command = entry.load()
        self.commands[name] = command
        return command

    def _load_pending(self) -> None:
        while self.pending:
            plugin, load = self.pending.popitem()
            try:
                self.add_loaded(plugin, load())
            except CastroomError as exc:
                self.broken[plugin] = str(exc)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.commands:
            return self.commands[cmd_name]
        if cmd_name in self.lazy:
            return self._load(cmd_name)
        if self.pending:
            self._load_pending()
            return self.commands.get(cmd_name)
        return None

    def list_commands(self, ctx: click.Context) -> list[str]:
        self._load_pending()
        return sorted({*self.commands, *self.lazy})

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        try:
            return super().resolve_command(ctx, args)
        except click.UsageError as exc:
            if not self.broken:
                raise
            # The command may be a broken plugin's: say why it is missing.
            why = "".join(f"\n({why})" for why in self.broken.values())
            raise click.UsageError(exc.format_message() + why, exc.ctx) from None

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """click's listing, with declared help for the commands not imported yet."""
        rows: list[tuple[str, str | click.Command]] = []
        for name in self.list_commands(ctx):
            command = self.commands.get(name)
            if command is None:
                rows.append((name, self.lazy[name].help))
            elif not command.hidden:
                rows.append((name, command))
        if rows:
            limit = formatter.width - 6 - max(len(name) for name, _ in rows)
            listed = [
                (name, click.Command(name, help=what).get_short_help_str(limit))
                if isinstance(what, str)
                else (name, what.get_short_help_str(limit))
                for name, what in rows
            ]
            with formatter.section("Commands"):
                formatter.write_dl(listed)
        for why in self.broken.values():
            click.echo(f"Warning: {why}", err=True)

    # -- running -----------------------------------------------------------------------------

    def invoke(self, ctx: click.Context) -> Any:
        from .context import context_of

        try:
            result = super().invoke(ctx)
            obj = context_of(ctx)
            if obj is not None and obj.notice:
                click.echo(obj.notice, err=True)
            return result
        except CastroomError as exc:
            click.echo(f"Error: {exc}", err=True)
            ctx.exit(1)
        finally:
            obj = context_of(ctx)
            if obj is not None:
                obj.close()
                obj.plugins_loaded()
