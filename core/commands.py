"""What a plugin's command is handed: a :class:`CommandContext`, never the document.

A plugin adds commands with ``castroom_register_commands`` and decorates each with
:func:`pass_command`: the command then receives a :class:`CommandContext`, through which
it reads the production (:meth:`~CommandContext.view`, read-only) and changes it only by
applying a :class:`~castroom.core.edits.Plan` (:meth:`~CommandContext.apply`), checked by
the same rules as every other write and applied in one transaction.

The command line's own context (workspace, stored production) is registered here by the
CLI and kept in module-private tables, not on anything a plugin is handed: neither the
CommandContext nor click's context objects hold a reference to it.
"""

from __future__ import annotations

import functools
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import click

if TYPE_CHECKING:
    from rich.console import Console

    from .edits import Applied, Edit, Plan
    from .importing import ImportCounts
    from .plugins import Plugins
    from .registry import Importer, ImportResult
    from .view import ProductionView
    from .workspace import StoredProduction

F = TypeVar("F", bound=Callable[..., Any])


class Host(Protocol):
    """The CLI's context, as this module uses it (:class:`castroom.core.cli.Context`)."""

    plugins: Plugins

    @property
    def console(self) -> Console: ...  # read-only: the CLI makes its consoles on first use

    @property
    def err(self) -> Console: ...

    def production(self) -> StoredProduction: ...

    def view(self) -> ProductionView: ...


#: click root context -> the CLI's context for that invocation.
_HOSTS: weakref.WeakKeyDictionary[click.Context, Host] = weakref.WeakKeyDictionary()
#: CommandContext -> the host it stands for.
_BEHIND: weakref.WeakKeyDictionary[CommandContext, Host] = weakref.WeakKeyDictionary()


def register_host(ctx: click.Context, host: Host) -> None:
    """The CLI's root callback: ``host`` serves every command of this invocation."""
    _HOSTS[ctx.find_root()] = host


def host_of(ctx: click.Context | None) -> Host | None:
    """The host registered for ``ctx``'s invocation, if any (core front ends only)."""
    return _HOSTS.get(ctx.find_root()) if ctx is not None else None


class CommandContext:
    """A plugin command's access to castroom: read, plan, apply; nothing writable.

    ``plugins``: the plugin façade (other plugins' answers, importers, exporters);
    ``console`` and ``err``: rich consoles for stdout and stderr."""

    __slots__ = ("__weakref__", "console", "err", "plugins")

    def __init__(self, host: Host) -> None:
        _BEHIND[self] = host
        self.plugins = host.plugins
        self.console = host.console
        self.err = host.err

    def view(self) -> ProductionView:
        """The current production, read-only (typed queries and common indexes)."""
        return _BEHIND[self].view()

    def apply(self, plan: Plan | Edit) -> Applied:
        """Check ``plan`` against the production as it is now and write it in one
        transaction; a refused edit raises and nothing is written."""
        from . import edits

        return edits.apply(_BEHIND[self].production().doc, plan)

    def preview(self, plan: Plan | Edit) -> ProductionView:
        """What the production would be with ``plan`` applied: a read-only view of a
        scratch copy (the production itself is not touched). Raises like :meth:`apply`
        when an edit is refused."""
        from . import edits
        from .document import CastDocument
        from .view import ProductionView

        host = _BEHIND[self]
        scratch = CastDocument()
        scratch.apply_update(host.production().doc.encode_update(), origin="preview")
        edits.apply(scratch, plan)
        return ProductionView(scratch, plugins=host.plugins)

    def run_import(
        self, importer: Importer, source: str, options: dict[str, Any]
    ) -> tuple[ImportResult, ImportCounts]:
        """Run an importer against the production and apply what it read as one checked
        plan (:func:`castroom.core.importing.import_into`): all of it, or nothing."""
        from .importing import import_into

        return import_into(_BEHIND[self].production().doc, importer, source, options)

    def describe(self, plan: Plan) -> list[str]:
        """``plan`` for people, one line per edit (for a dry run)."""
        from . import edits

        return edits.describe(self.view(), plan)


def emit_json(data: Any) -> None:
    """Print ``data`` (Structs, lists, dicts) as the stable, indented ``--json`` output.

    msgspec encodes and indents it: the text of ``json.dumps(..., indent=2,
    ensure_ascii=False)`` but for exponents (``1e16``, not ``1e+16``), at a tenth of
    the time (50,000 talents: 0.1 s instead of 1.2 s; issue 14)."""
    import msgspec

    click.echo(msgspec.json.format(msgspec.json.encode(data), indent=2).decode())


def pass_command(f: F) -> F:
    """Decorate a plugin's click command: it receives a :class:`CommandContext` first."""

    @functools.wraps(f)
    def command(*args: Any, **kwargs: Any) -> Any:
        host = host_of(click.get_current_context(silent=True))
        if host is None:
            raise click.UsageError("castroom plugin commands run under the castroom CLI")
        return f(CommandContext(host), *args, **kwargs)

    return command  # type: ignore[return-value]
