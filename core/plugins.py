"""The plugin manager factory and the typed façade over ``pm.hook``.

One :class:`Plugins` per open workspace, made by :func:`make_plugins`; nothing happens at
import time and nothing is global, so tests and embedders decide what is loaded. The
plugins load on first use (a hook call, the listing), not when the manager is made.
Built-in plugins (listed by module name, like datasette's and llm's DEFAULT_PLUGINS) load
first, then the ``castroom`` entry-point group, one at a time: a plugin that fails to
import is reported by name and the rest carry on. A hook implementation that raises is
reported (plugin, hook, error) and skipped. A plugin's commands are declared without
importing it (:mod:`castroom.core.command_index`); :meth:`Plugins.commands_of` imports
that plugin alone when one of them runs.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
import traceback
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Any, TypeVar

from .command_index import BUILTIN_COMMANDS, COMMANDS_GROUP, DeclaredCommand, read_declaration
from .entry_points import may_declare
from .errors import CastroomError

if TYPE_CHECKING:  # pluggy, msgspec and the contracts load with the first hook call
    import importlib.metadata

    import click
    import msgspec
    import pluggy

    from .contracts import BudgetReport, ContingencyPlan, SchedulePlan, ScheduleRequest
    from .document import Changes
    from .findings import Finding
    from .registry import Exporter, Importer
    from .view import ProductionView

T = TypeVar("T")
S = TypeVar("S", bound="msgspec.Struct")
_NO_VIEW = object()
ENTRY_POINT_GROUP = "castroom"
DISABLE_ENV = "CASTROOM_DISABLE_PLUGINS"

#: The built-in plugins implementing ``castroom_changed`` (a test checks it against their
#: modules): none, so with no other plugin a change imports nothing (Plugins.hears_changes).
BUILTIN_LISTENERS: frozenset[str] = frozenset()

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
    "demo": "castroom.sync.demo",
    "sync": "castroom.sync.commands",
}


@dataclass(frozen=True)
class PluginFailure:
    """A plugin that failed to load, or raised inside a hook."""

    plugin: str
    hook: str
    error: str

    def __str__(self) -> str:
        if self.hook == "disable":  # no plugin failed: the setting names none
            return self.error
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


@dataclass(frozen=True)
class _Sources:
    """Where one plugin manager's plugins come from (read when it loads)."""

    builtins: dict[str, str]
    entry_points: bool
    extra: tuple[object, ...]
    blocked: frozenset[str]


#: No distribution declares a castroom group (see :mod:`castroom.core.entry_points`).
_ENTRY_POINTS_NONE = object()


class Plugins:
    """Typed façade over one pluggy PluginManager, loaded on first use.

    Nothing is imported until a hook is called or the plugins are listed
    (:attr:`pm`, :attr:`failures`), so a command that asks no plugin anything (``list``,
    ``--help``) does not pay for importing them; :meth:`commands_of` imports one plugin
    alone for its command."""

    def __init__(self, sources: _Sources) -> None:
        self._sources = sources
        self._pm: pluggy.PluginManager | None = None
        self._failures: list[PluginFailure] = []
        self.builtin: set[str] = set()
        self.versions: dict[str, str] = {}
        self._importers: dict[str, Importer] | None = None
        self._exporters: dict[str, Exporter] | None = None
        self._all_eps: Any = None
        self._eps: dict[str, list[importlib.metadata.EntryPoint]] = {}
        self._declared: list[DeclaredCommand] | None = None
        #: Failures of loading (not of a hook call), for the CLI to show once.
        self.load_failures: list[PluginFailure] = []
        #: Whether any plugin implements castroom_changed (hears_changes), once known.
        self._hears: bool | None = None

    @property
    def pm(self) -> pluggy.PluginManager:
        if self._pm is None:
            self._pm = _load(self)
        return self._pm

    @property
    def failures(self) -> list[PluginFailure]:
        """Every failure so far: loading (which this triggers) and hook calls."""
        _ = self.pm
        return self._failures

    @property
    def loaded(self) -> bool:
        return self._pm is not None

    def entry_points(self, group: str) -> list[importlib.metadata.EntryPoint]:
        """This environment's entry points of ``group`` (read once per manager)."""
        if not self._sources.entry_points:
            return []
        if self._all_eps is None:  # one scan of the installed distributions, not one a group
            self._all_eps = _ENTRY_POINTS_NONE
            if may_declare((ENTRY_POINT_GROUP, COMMANDS_GROUP)):
                import importlib.metadata  # a quarter of `castroom --help`: only if needed

                self._all_eps = importlib.metadata.entry_points()
        if group not in self._eps:
            found = [] if self._all_eps is _ENTRY_POINTS_NONE else self._all_eps.select(group=group)
            self._eps[group] = list(found)
        return self._eps[group]

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

        from .findings import Finding, sort_findings

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
        from .contracts import ContingencyPlan

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
        from .contracts import BudgetReport

        return self._first_valid("castroom_cost_report", BudgetReport, "cost report", view=view)

    def _first_valid(self, hook_name: str, cls: type[S], what: str, **kwargs: Any) -> S | None:
        """firstresult, checked against the hook's contract: an answer that does not fit
        is reported as that plugin's failure (like a raise) and the next plugin answers."""
        from .contracts import MalformedAnswer, validate_answer

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
        from .contracts import SchedulePlan

        return self._first_valid(
            "castroom_propose_schedule", SchedulePlan, "schedule", view=view, request=request
        )

    def changed(self, view: ProductionView, changes: Changes, origin: str) -> None:
        if changes and self.hears_changes():
            self._call_each("castroom_changed", view=view, changes=changes, origin=origin)

    def hears_changes(self) -> bool:
        """Whether any plugin may implement ``castroom_changed``, known without importing
        the built-ins (:data:`BUILTIN_LISTENERS`): when none does, a change costs no view
        and no plugin import (a server's first live edit imported every plugin on its
        event loop, 0.3-0.6 s with every peer waiting)."""
        if self._hears is None:
            if self._pm is not None:
                self._hears = bool(self._pm.hook.castroom_changed.get_hookimpls())
                return self._hears
            sources = self._sources
            self._hears = bool(
                sources.extra
                or any(
                    name in BUILTIN_LISTENERS or module != DEFAULT_PLUGINS.get(name)
                    for name, module in sources.builtins.items()
                    if name not in sources.blocked and module not in sources.blocked
                )
                or self.entry_points(ENTRY_POINT_GROUP)
            )
        return self._hears

    # -- commands (see castroom.core.command_index) ---------------------------------------------

    def declared_commands(self) -> list[DeclaredCommand]:
        """The commands plugins declare, known without importing those plugins."""
        if self._declared is None:
            self._declared = self._read_declared()
        return self._declared

    def _read_declared(self) -> list[DeclaredCommand]:
        sources = self._sources
        found = [
            DeclaredCommand(command, text, plugin)
            for plugin, commands in BUILTIN_COMMANDS.items()
            if plugin not in sources.blocked
            and sources.builtins.get(plugin) == DEFAULT_PLUGINS.get(plugin)
            for command, text in commands.items()
        ]
        for plugin, ep in self._declarations().items():
            try:
                found.extend(read_declaration(plugin, ep.load()))
            except Exception as exc:
                self._failures.append(PluginFailure(plugin, "declare", _describe(exc)))
        return found

    def undeclared(self) -> list[str]:
        """Plugins that may add commands castroom cannot know without importing them."""
        sources = self._sources
        declared = {c.plugin for c in self.declared_commands()} | {
            name
            for name in BUILTIN_COMMANDS
            if sources.builtins.get(name) == DEFAULT_PLUGINS.get(name)
        }
        declared |= set(self._declarations())
        names = [*sources.builtins, *(ep.name for ep in self.entry_points(ENTRY_POINT_GROUP))]
        return [
            name
            for name in dict.fromkeys(names)
            if name not in declared and name not in sources.blocked
        ]

    def extras(self) -> list[str]:
        """The names of the ``extra`` plugin objects (already imported: added eagerly)."""
        return [n for n in map(plugin_name, self._sources.extra) if n not in self._sources.blocked]

    def _declarations(self) -> dict[str, importlib.metadata.EntryPoint]:
        # A declaration counts for an entry-point plugin of the same name that is not
        # shadowed by a built-in (that one is reported when the plugins load).
        plugins = {ep.name for ep in self.entry_points(ENTRY_POINT_GROUP)}
        return {
            ep.name: ep
            for ep in self.entry_points(COMMANDS_GROUP)
            if ep.name in plugins
            and ep.name not in self._sources.builtins
            and ep.name not in self._sources.blocked
        }

    def commands_of(self, name: str) -> dict[str, click.Command]:
        """The commands plugin ``name`` adds, importing that plugin alone if it is not
        loaded yet. A plugin that fails to import or to add them is one CastroomError."""
        import click

        try:
            plugin = self._plugin_object(name)
        except Exception as exc:
            raise CastroomError(f"plugin {name!r} failed to load: {_describe(exc)}") from exc
        pm = _manager()
        pm.register(plugin, name=name)
        group = click.Group()
        for impl in pm.hook.castroom_register_commands.get_hookimpls():
            try:
                impl.function(cli=_GuardedGroup(group, name))
            except CastroomError:
                raise
            except Exception as exc:
                raise CastroomError(
                    f"plugin {name!r} failed in castroom_register_commands: {_describe(exc)}"
                ) from exc
        return dict(group.commands)

    def _plugin_object(self, name: str) -> object:
        if self._pm is not None and (loaded := self._pm.get_plugin(name)) is not None:
            return loaded
        for obj in self._sources.extra:
            if plugin_name(obj) == name:
                return obj
        if name in self._sources.builtins:
            return importlib.import_module(self._sources.builtins[name])
        for ep in self.entry_points(ENTRY_POINT_GROUP):
            if ep.name == name:
                return ep.load()
        raise LookupError(f"no plugin is called {name!r}")

    def importers(self) -> dict[str, Importer]:
        if self._importers is None:
            _ = self.pm  # loading collects the registrations
        if self._importers is None:
            self.collect_registrations()
        assert self._importers is not None
        return self._importers

    def exporters(self) -> dict[str, Exporter]:
        if self._exporters is None:
            _ = self.pm  # loading collects the registrations
        if self._exporters is None:
            self.collect_registrations()
        assert self._exporters is not None
        return self._exporters

    def collect_registrations(self) -> None:
        """Ask every plugin for its importers and exporters (loading does this, so a
        clash is reported before any importer or exporter is used)."""
        from .registry import Exporter, Importer

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
    """A new plugin manager: built-ins, then entry points, then ``extra`` objects.

    Nothing is imported here: the plugins load on first use (see :class:`Plugins`)."""
    blocked = disabled_plugins() if disabled is None else disabled
    return Plugins(
        _Sources(
            builtins=dict(DEFAULT_PLUGINS if builtins is None else builtins),
            entry_points=entry_points,
            extra=tuple(extra),
            blocked=frozenset(blocked),
        )
    )


def plugin_name(obj: object) -> str:
    """The name an ``extra`` plugin object is registered under."""
    return getattr(obj, "__name__", None) or type(obj).__name__


def _manager() -> pluggy.PluginManager:
    """A plugin manager with castroom's hookspecs. pluggy and the hookspecs are imported
    here, when a hook is first needed: `castroom --help` and `list` need none."""
    import pluggy

    from . import hookspecs

    pm = pluggy.PluginManager("castroom")
    pm.add_hookspecs(hookspecs)
    return pm


def _load(plugins: Plugins) -> pluggy.PluginManager:
    """Import and register every plugin of ``plugins`` (once, on first use)."""
    sources = plugins._sources
    pm = _manager()
    plugins._pm = pm  # set first: the loaders below record failures through the façade
    for name in sources.blocked:
        pm.set_blocked(name)
    offered: set[str] = set()  # every plugin name seen, to catch a misspelled block
    _load_builtins(plugins, sources.builtins, set(sources.blocked), offered)
    _load_entry_points(plugins, set(sources.blocked), offered)
    for obj in sources.extra:
        name = plugin_name(obj)
        offered.add(name)
        if name not in sources.blocked:
            _register(plugins, obj, name)
    for name in sorted(sources.blocked - offered):
        # Blocking a name no plugin has is usually a typo that leaves the plugin running.
        plugins.failures.append(
            PluginFailure(
                name,
                "disable",
                f"{DISABLE_ENV} names no installed plugin {name!r}, so it disables nothing"
                " (`castroom plugins` lists them)",
            )
        )
    plugins.collect_registrations()
    plugins.load_failures = list(plugins.failures)

    from . import __version__

    for name in plugins.builtin:
        plugins.versions.setdefault(name, __version__)
    return pm


def _register(plugins: Plugins, plugin: Any, name: str) -> bool:
    """Register one plugin, refusing (and reporting) unknown hooks and hook wrappers."""
    pm = plugins.pm
    try:
        pm.register(plugin, name=name)
    except Exception as exc:
        plugins.failures.append(PluginFailure(name, "register", _describe(exc)))
        return False
    import pluggy

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
    for ep in plugins.entry_points(ENTRY_POINT_GROUP):
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
