"""The plugin manager factory and the typed façade over ``pm.hook``.

One :class:`Plugins` per open workspace, made by :func:`make_plugins`; nothing happens at
import time and nothing is global, so tests and embedders decide what is loaded. Built-in
plugins (listed by module name, like datasette's and llm's DEFAULT_PLUGINS) load first,
then the ``castroom`` entry-point group, one at a time: a plugin that fails to import is
reported by name and the rest carry on. A hook implementation that raises is reported
(plugin, hook, error) and skipped.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.metadata
import os
import traceback
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from types import ModuleType
from typing import TYPE_CHECKING, Any, TypeVar

import msgspec
import pluggy

from . import hookspecs
from .contracts import (
    BudgetReport,
    ContingencyPlan,
    MalformedAnswer,
    SchedulePlan,
    validate_answer,
)
from .errors import CastroomError
from .findings import Finding, sort_findings
from .registry import Exporter, Importer

if TYPE_CHECKING:
    import click

    from .contracts import SchedulePlan, ScheduleRequest
    from .document import Changes
    from .view import ProductionView

T = TypeVar("T")
S = TypeVar("S", bound=msgspec.Struct)
_NO_VIEW = object()
ENTRY_POINT_GROUP = "castroom"
DISABLE_ENV = "CASTROOM_DISABLE_PLUGINS"

#: Built-in plugins, loaded exactly like third-party ones (their hooks are ``trylast``).
DEFAULT_PLUGINS: dict[str, str] = {
    "continuity": "castroom.plugins.continuity",
    "integrity": "castroom.plugins.integrity",
    "budget": "castroom.plugins.budget",
    "contingency": "castroom.plugins.contingency",
    "scheduler": "castroom.plugins.scheduler",
    "csv_io": "castroom.plugins.csv_io",
    "screenplay": "castroom.plugins.screenplay",
    "casting_site": "castroom.plugins.casting_site",
    "calendar": "castroom.plugins.calendar",
    "reports": "castroom.plugins.reports",
    "auditions": "castroom.plugins.auditions",
    "inbox": "castroom.plugins.inbox",
    "io_commands": "castroom.plugins.io_commands",
    "demo": "castroom.plugins.demo",
    "sync": "castroom.sync.commands",
}


@dataclass(frozen=True)
class PluginFailure:
    """A plugin that failed to load, or raised inside a hook."""

    plugin: str
    hook: str
    error: str

    def __str__(self) -> str:
        return f"plugin {self.plugin!r} failed in {self.hook}: {self.error}"

    def as_dict(self) -> dict[str, str]:
        """The stable ``--json`` shape (``check --json`` and ``plugins --json``)."""
        return {"plugin": self.plugin, "hook": self.hook, "error": self.error}


@dataclass
class PluginInfo:
    name: str
    version: str | None
    hooks: list[str]
    builtin: bool


@dataclass
class Plugins:
    """Typed façade over one pluggy PluginManager."""

    pm: pluggy.PluginManager
    failures: list[PluginFailure] = field(default_factory=list)
    builtin: set[str] = field(default_factory=set)
    versions: dict[str, str] = field(default_factory=dict)
    _importers: dict[str, Importer] | None = None
    _exporters: dict[str, Exporter] | None = None

    # -- calling hooks safely ----------------------------------------------------------------

    def _attach(self, kwargs: dict[str, Any]) -> None:
        # A hook's view answers view.cost_report() through these plugins (never a
        # built-in called directly), unless whoever made the view chose otherwise.
        view = kwargs.get("view")
        if view is not None and getattr(view, "plugins", _NO_VIEW) is None:
            view.plugins = self

    def _answers(self, hook_name: str, **kwargs: Any) -> Iterator[tuple[str, Any]]:
        """Each implementation's answer, lazily, in pluggy's order (tryfirst..trylast).

        Every implementation is called on its own, so a failure is recorded and contained
        instead of aborting the whole hook call."""
        self._attach(kwargs)
        hook = getattr(self.pm.hook, hook_name)
        for impl in reversed(hook.get_hookimpls()):  # pluggy lists them in reverse order
            args = {name: kwargs[name] for name in impl.argnames}
            try:
                result = impl.function(**args)
            except Exception as exc:
                self.failures.append(PluginFailure(impl.plugin_name, hook_name, _describe(exc)))
                continue
            yield impl.plugin_name, result

    def _call_each(self, hook_name: str, **kwargs: Any) -> list[tuple[str, Any]]:
        return list(self._answers(hook_name, **kwargs))

    def _first(self, hook_name: str, **kwargs: Any) -> Any:
        """firstresult: the first non-None answer; later implementations are not called."""
        return next((r for _, r in self._answers(hook_name, **kwargs) if r is not None), None)

    # -- the typed hooks -----------------------------------------------------------------------

    def check(self, view: ProductionView) -> list[Finding]:
        """Every plugin's findings, stamped with the plugin's name, most severe first."""
        import msgspec

        findings: list[Finding] = []
        for plugin, result in self._call_each("castroom_check", view=view):
            for finding in result or ():
                if not isinstance(finding, Finding):
                    self.failures.append(
                        PluginFailure(
                            plugin,
                            "castroom_check",
                            f"returned {type(finding).__name__}, not Finding",
                        )
                    )
                    continue
                findings.append(msgspec.structs.replace(finding, plugin=finding.plugin or plugin))
        return sort_findings(findings)

    def rank_replacements(
        self, view: ProductionView, talent_id: str, role_id: str | None
    ) -> ContingencyPlan | None:
        """The first plugin's valid ranking (the built-in is ``trylast``), or None."""
        return self._first_valid(
            "castroom_rank_replacements",
            ContingencyPlan,
            "replacement ranking",
            view=view,
            talent_id=talent_id,
            role_id=role_id,
        )

    def cost_report(self, view: ProductionView) -> BudgetReport | None:
        """The first plugin's valid cost report (the built-in budget is ``trylast``), or
        None."""
        return self._first_valid("castroom_cost_report", BudgetReport, "cost report", view=view)

    def _first_valid(self, hook_name: str, cls: type[S], what: str, **kwargs: Any) -> S | None:
        """firstresult, checked against the hook's contract: an answer that does not fit
        is reported as that plugin's failure (like a raise) and the next plugin answers."""
        for plugin, result in self._answers(hook_name, **kwargs):
            if result is None:
                continue
            try:
                return validate_answer(result, cls, what)
            except MalformedAnswer as exc:
                self.failures.append(PluginFailure(plugin, hook_name, str(exc)))
        return None

    def propose_schedule(
        self, view: ProductionView, request: ScheduleRequest
    ) -> SchedulePlan | None:
        """The first plugin's valid schedule (the built-in scheduler is ``trylast``), or
        None."""
        return self._first_valid(
            "castroom_propose_schedule", SchedulePlan, "schedule", view=view, request=request
        )

    def changed(self, view: ProductionView, changes: Changes, origin: str) -> None:
        if changes:
            self._call_each("castroom_changed", view=view, changes=changes, origin=origin)

    def register_commands(self, cli: click.Group) -> None:
        for impl in reversed(self.pm.hook.castroom_register_commands.get_hookimpls()):
            probe = _GuardedGroup(cli, impl.plugin_name)
            try:
                impl.function(cli=probe)
            except CastroomError:
                raise
            except Exception as exc:
                self.failures.append(
                    PluginFailure(impl.plugin_name, "castroom_register_commands", _describe(exc))
                )

    def importers(self) -> dict[str, Importer]:
        if self._importers is None:
            self.collect_registrations()
        assert self._importers is not None
        return self._importers

    def exporters(self) -> dict[str, Exporter]:
        if self._exporters is None:
            self.collect_registrations()
        assert self._exporters is not None
        return self._exporters

    def collect_registrations(self) -> None:
        """Ask every plugin for its importers and exporters (``make_plugins`` does this at
        start-up, so a clash is reported before any command runs, not on first use)."""
        self._importers = self._collect("castroom_register_importers", Importer)
        self._exporters = self._collect("castroom_register_exporters", Exporter)

    def _load_order(self, impls: Iterable[pluggy.HookImpl]) -> list[pluggy.HookImpl]:
        # Registration order (built-ins first, then entry points, then extras), so the
        # plugin loaded first keeps a contested name: installing a plugin never silently
        # changes what `castroom import csv` does.
        order = {name: n for n, (name, _) in enumerate(self.pm.list_name_plugin())}
        return sorted(impls, key=lambda impl: order.get(impl.plugin_name, len(order)))

    def _collect(self, hook_name: str, kind: type[Importer] | type[Exporter]) -> dict[str, Any]:
        found: dict[str, Any] = {}
        what = kind.__name__.lower()
        for impl in self._load_order(getattr(self.pm.hook, hook_name).get_hookimpls()):
            plugin = impl.plugin_name

            def register(item: Importer | Exporter, _plugin: str = plugin) -> None:
                if not isinstance(item, kind):
                    raise CastroomError(
                        f"plugin {_plugin!r} registered {type(item).__name__}, not {kind.__name__}"
                    )
                if item.name in found:
                    # Keep the first plugin's; the later one is reported, the rest carry on.
                    self.failures.append(
                        PluginFailure(
                            _plugin,
                            hook_name,
                            f"{what} {item.name!r} registered twice: by plugin"
                            f" {found[item.name].plugin!r} and by plugin {_plugin!r};"
                            f" keeping {found[item.name].plugin!r}'s",
                        )
                    )
                    return
                found[item.name] = dataclasses.replace(item, plugin=_plugin)

            try:
                impl.function(register=register)
            except Exception as exc:  # a bad Importer/Exporter, or a bug: report, carry on
                self.failures.append(PluginFailure(plugin, hook_name, _describe(exc)))
        return found

    # -- introspection -------------------------------------------------------------------------

    def list(self) -> list[PluginInfo]:
        out = []
        for name, plugin in self.pm.list_name_plugin():
            if plugin is None:
                continue
            hooks = sorted(
                h.name
                for h in self.pm.get_hookcallers(plugin) or []
                if h.name.startswith("castroom_")
            )
            out.append(PluginInfo(name, self.versions.get(name), hooks, name in self.builtin))
        return sorted(out, key=lambda p: (not p.builtin, p.name))


class _GuardedGroup:
    """Wraps the CLI group so a plugin cannot silently replace another's command."""

    def __init__(self, group: click.Group, plugin: str) -> None:
        self._group = group
        self._plugin = plugin

    def __getattr__(self, name: str) -> Any:
        return getattr(self._group, name)

    def _guard(self, name: str | None) -> None:
        if name and name in self._group.commands:
            raise CastroomError(
                f"plugin {self._plugin!r} adds command {name!r}, which already exists"
            )

    def add_command(self, cmd: Any, name: str | None = None) -> None:
        self._guard(name or cmd.name)
        self._group.add_command(cmd, name)

    def _adding(
        self, factory: Callable[..., Any], *args: Any, **kwargs: Any
    ) -> Callable[[Callable[..., Any]], Any]:
        def decorator(f: Callable[..., Any]) -> Any:
            cmd = factory(*args, **kwargs)(f)
            self.add_command(cmd)
            return cmd

        return decorator

    def command(self, *args: Any, **kwargs: Any) -> Callable[[Callable[..., Any]], Any]:
        import click

        return self._adding(click.command, *args, **kwargs)

    def group(self, *args: Any, **kwargs: Any) -> Callable[[Callable[..., Any]], Any]:
        import click

        return self._adding(click.group, *args, **kwargs)


def _describe(exc: BaseException) -> str:
    frame = traceback.extract_tb(exc.__traceback__)[-1:] if exc.__traceback__ else []
    where = f" ({frame[0].filename.rsplit('/', 1)[-1]}:{frame[0].lineno})" if frame else ""
    return f"{type(exc).__name__}: {exc}{where}"


def disabled_plugins() -> set[str]:
    raw = os.environ.get(DISABLE_ENV, "")
    return {name.strip() for name in raw.split(",") if name.strip()}


def make_plugins(
    *,
    builtins: dict[str, str] | None = None,
    entry_points: bool = True,
    extra: Iterable[ModuleType | object] = (),
    disabled: set[str] | None = None,
) -> Plugins:
    """A new plugin manager: built-ins, then entry points, then ``extra`` objects."""
    pm = pluggy.PluginManager("castroom")
    pm.add_hookspecs(hookspecs)
    plugins = Plugins(pm)
    blocked = disabled_plugins() if disabled is None else disabled
    for name in blocked:
        pm.set_blocked(name)
    offered: set[str] = set()  # every plugin name seen, to catch a misspelled block
    _load_builtins(plugins, DEFAULT_PLUGINS if builtins is None else builtins, blocked, offered)
    if entry_points:
        _load_entry_points(plugins, blocked, offered)
    for obj in extra:
        name = getattr(obj, "__name__", None) or type(obj).__name__
        offered.add(name)
        if name not in blocked:
            _register(plugins, obj, name)
    for name in sorted(blocked - offered):
        # Blocking a name no plugin has is usually a typo that leaves the plugin running.
        plugins.failures.append(
            PluginFailure(name, "disable", f"{DISABLE_ENV} names no installed plugin {name!r}")
        )
    plugins.collect_registrations()

    from . import __version__

    for name in plugins.builtin:
        plugins.versions.setdefault(name, __version__)
    return plugins


def _register(plugins: Plugins, plugin: Any, name: str) -> bool:
    """Register one plugin, refusing (and reporting) unknown hooks and hook wrappers."""
    pm = plugins.pm
    try:
        pm.register(plugin, name=name)
    except Exception as exc:
        plugins.failures.append(PluginFailure(name, "register", _describe(exc)))
        return False
    try:
        # A hook the specs do not know is almost always a misspelling: refuse it.
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        pm.unregister(name=name)
        plugins.failures.append(PluginFailure(name, "register", str(exc)))
        return False
    # The façade calls each implementation on its own (to contain failures), so a
    # wrapper would be called as a plain hook and misreported: refuse it plainly.
    wrappers = sorted(
        caller.name
        for caller in pm.get_hookcallers(plugin) or []
        for impl in caller.get_hookimpls()
        if impl.plugin is plugin and (impl.wrapper or impl.hookwrapper)
    )
    if wrappers:
        pm.unregister(name=name)
        plugins.failures.append(
            PluginFailure(
                name,
                "register",
                f"hook wrappers are not supported (wrapper=True/hookwrapper=True on"
                f" {', '.join(wrappers)}); implement the hook plainly",
            )
        )
        return False
    return True


def _load_builtins(
    plugins: Plugins, modules: dict[str, str], blocked: set[str], offered: set[str]
) -> None:
    for short, module_name in modules.items():
        offered.update((short, module_name))
        if short in blocked or module_name in blocked:
            continue
        try:
            module = importlib.import_module(module_name)
        except Exception as exc:
            plugins.failures.append(PluginFailure(short, "import", _describe(exc)))
            continue
        if _register(plugins, module, short):
            plugins.builtin.add(short)


def _load_entry_points(plugins: Plugins, blocked: set[str], offered: set[str]) -> None:
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        offered.add(ep.name)
        if ep.name in blocked:
            continue
        if plugins.pm.has_plugin(ep.name):
            # Say so: a plugin that silently never loads is a puzzle for its user.
            kind = "a built-in plugin" if ep.name in plugins.builtin else "another plugin"
            dist = f" (from {ep.dist.name} {ep.dist.version})" if ep.dist else ""
            plugins.failures.append(
                PluginFailure(
                    ep.name,
                    "load",
                    f"entry point {ep.name} = {ep.value}{dist} not loaded: {kind} is"
                    f" already called {ep.name!r}; rename the entry point",
                )
            )
            continue
        try:
            plugin = ep.load()
        except Exception as exc:
            plugins.failures.append(PluginFailure(ep.name, "load", _describe(exc)))
            continue
        if _register(plugins, plugin, ep.name) and ep.dist is not None:
            plugins.versions[ep.name] = ep.dist.version
