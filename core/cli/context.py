"""What every command shares: the :class:`Context` (workspace, production, consoles),
the root group class that turns domain errors into one line and exit 1, and the small
output helpers (``--json``, showing a field's value)."""

from __future__ import annotations

import datetime as dt
import functools
import json
import shlex
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import click
import msgspec

from .. import model, printing
from ..commands import host_of
from ..errors import CastroomError, SkippedStoredUpdates
from ..money import format_money, money_fields
from ..plugins import Plugins
from ..reads import NewerSchemaWarning
from ..workspace import StoredProduction, Workspace

if TYPE_CHECKING:
    from rich.console import Console

    from ..view import ProductionView

F = TypeVar("F", bound=Callable[..., Any])


class Context:
    """What every command needs: where the workspace is, and a way to open it."""

    def __init__(
        self, plugins: Plugins, workspace: str | None, production: str | None, member: str | None
    ):
        self.plugins = plugins
        self.workspace_path = workspace
        self.production_ref = production
        self.member = member
        self._workspace: Workspace | None = None
        #: A warning printed once the command succeeded (see CastroomGroup.invoke).
        self.notice: str | None = None
        self._warned = False

    # rich is imported only by a command that prints through it (`--help` stays fast).
    @functools.cached_property
    def console(self) -> Console:
        return printing.console()

    @functools.cached_property
    def err(self) -> Console:
        return printing.console(stderr=True)

    def workspace(self, *, create: bool = False) -> Workspace:
        if self._workspace is None:
            self._workspace = Workspace.open(self.workspace_path, create=create, member=self.member)
            self._workspace._plugins = self.plugins
        return self._workspace

    def production(self, *, read_only: bool = False) -> StoredProduction:
        """The production the command works on. ``read_only``: the command only reads
        it, so its stored read copy may serve (see :meth:`Workspace.reading`)."""
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", NewerSchemaWarning)
            warnings.simplefilter("always", SkippedStoredUpdates)
            workspace = self.workspace()
            opener = workspace.reading if read_only else workspace.production
            production = opener(self.production_ref)
        if production.id is not None and production.workspace.is_deleted(production.id):
            # Reads work (said once the command succeeds, as it may be a mistake; a
            # refused write's error stays the only line); writes are refused by the store.
            title = production.title()
            self.notice = (
                f"Warning: production {title} is deleted (read-only until"
                f" `castroom production restore {shlex.quote(title or production.id)}`)"
            )
        if production.id is not None and production.doc.production_id is None:
            _say_if_cleared(production)
        for warning in caught:
            if issubclass(warning.category, NewerSchemaWarning | SkippedStoredUpdates):
                click.echo(f"Warning: {warning.message}", err=True)
            else:
                warnings.showwarning(
                    warning.message, warning.category, warning.filename, warning.lineno
                )
        return production

    def view(self) -> ProductionView:
        """A read-only view that knows the update log (so findings can name a device);
        of the read copy when one is current and the production is not open yet."""
        from ..view import ProductionView  # not for the commands that never make one

        production = self.production(read_only=True)
        return ProductionView(
            production.doc,
            origin_of=production.origin_of,
            hard_deleted=production.hard_deleted,
        )

    def close(self) -> None:
        if self._workspace is not None:
            self._workspace.close()

    def plugins_loaded(self) -> None:
        """Warn, once, of the plugins that failed to load, if this command loaded them
        (a command that asks no plugin anything does not import them, nor warn)."""
        if self.plugins.loaded and not self._warned:
            self._warned = True
            for failure in self.plugins.load_failures:
                click.echo(f"Warning: {failure}", err=True)


def context_of(ctx: click.Context | None) -> Context | None:
    """The CLI's context for this invocation (registered by the root callback; kept off
    click's context objects, which plugin commands can reach)."""
    host = host_of(ctx)
    return host if isinstance(host, Context) else None


def pass_ctx(f: F) -> F:
    """Core commands (and castroom's own front ends, such as sync) get the Context."""

    @functools.wraps(f)
    def command(*args: Any, **kwargs: Any) -> Any:
        obj = context_of(click.get_current_context())
        if obj is None:
            raise click.UsageError("no castroom context (run through castroom's CLI)")
        return f(obj, *args, **kwargs)

    return command  # type: ignore[return-value]


def currency_of(production: StoredProduction) -> str:
    """The currency to show money in (see :attr:`CastDocument.currency`)."""
    return production.doc.currency


#: The production is no entity kind (each is a document of its own): what does for it
#: what each entity command was asked to do.
PRODUCTION_INSTEAD = {
    "add": "a production is made with `castroom init --production TITLE`",
    "list": "productions are listed with `castroom production list`",
    "show": "the production is shown with `castroom production show`",
    "set": "the production is edited with `castroom production set field=value`",
    "delete": "a production is deleted with `castroom production delete [REF]`",
    "restore": "a production is restored with `castroom production restore [REF]`",
    "history": "the production's own history is `castroom history --entity PRODUCTION_ID`",
}


def kind_arg(value: str, command: str) -> type[model.Entity]:
    """The entity kind ``value`` names for ``command``; the production, which is not one,
    is refused naming the command that does it."""
    cls = model.kind_class(value)
    if cls is model.Production:
        raise CastroomError(PRODUCTION_INSTEAD[command])
    return cls


def display(cls: type[model.Entity], field: str, value: Any, currency: str) -> str:
    """A field's value of an entity of kind ``cls`` as people read it (money in major
    units with the currency's sign)."""
    if value is None:
        return ""
    if isinstance(value, int) and field in money_fields(cls):
        return format_money(value, currency)
    if isinstance(value, list | dict):
        return json.dumps(msgspec.to_builtins(value), ensure_ascii=False)
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    return str(value)


def _say_if_cleared(production: StoredProduction) -> None:
    """A production whose fields a peer cleared (a hard delete, which the schema forbids)
    fails every command that reads them with "no production yet": say, first, who did it
    and what brings them back."""
    for entry in production.hard_deleted():
        if entry.collection == "production":
            when = dt.datetime.fromtimestamp(entry.ts, dt.UTC).strftime("%Y-%m-%d %H:%M")
            click.echo(
                f"Warning: a peer cleared this production's fields (device {entry.device},"
                f" {when} UTC); `castroom restore --from-history` brings them back",
                err=True,
            )
            return
