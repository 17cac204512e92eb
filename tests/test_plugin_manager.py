"""The plugin manager: loading, isolation of failures, collection hooks, events."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import click
import pytest

from castroom.core import hookspecs
from castroom.core.cli import build_cli
from castroom.core.errors import CastroomError
from castroom.core.findings import Finding
from castroom.core.hookspecs import hookimpl
from castroom.core.model import Talent
from castroom.core.plugins import BUILTIN_LISTENERS, DEFAULT_PLUGINS, make_plugins
from castroom.core.registry import Exporter, Importer, ImportResult
from castroom.core.view import ProductionView
from castroom.core.workspace import Workspace

HOOKS = sorted(name for name in dir(hookspecs) if name.startswith("castroom_"))


def test_every_builtin_plugin_loads_without_failures() -> None:
    plugins = make_plugins(entry_points=False)
    assert plugins.failures == []
    names = {info.name for info in plugins.list()}
    assert names == set(DEFAULT_PLUGINS)
    for info in plugins.list():
        assert info.builtin and info.version


def test_builtin_hookimpls_are_trylast() -> None:
    """Defaults yield to third-party plugins: every built-in hook implementation is trylast."""
    plugins = make_plugins(entry_points=False)
    for name in HOOKS:
        for impl in getattr(plugins.pm.hook, name).get_hookimpls():
            if impl.plugin_name in DEFAULT_PLUGINS:
                assert impl.trylast, f"built-in {impl.plugin_name}.{name} must be trylast"


def test_each_workspace_gets_its_own_plugin_manager(tmp_path: Path) -> None:
    with Workspace.open(tmp_path / "a") as a, Workspace.open(tmp_path / "b") as b:
        assert a.plugins is a.plugins
        assert a.plugins.pm is not b.plugins.pm


def _module(name: str, **attrs: object) -> types.ModuleType:
    module = types.ModuleType(name)
    for key, value in attrs.items():
        setattr(module, key, value)
    return module


def test_broken_builtin_is_reported_by_name_and_the_rest_carry_on(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "castroom_broken_test", None)  # import fails
    plugins = make_plugins(
        builtins={"broken": "castroom_broken_test", "continuity": DEFAULT_PLUGINS["continuity"]},
        entry_points=False,
    )
    assert [f.plugin for f in plugins.failures] == ["broken"]
    assert "import" in str(plugins.failures[0])
    assert {p.name for p in plugins.list()} == {"continuity"}


def _install_entry_point(root: Path, dist: str, name: str, module: str, code: str) -> None:
    """A real installed distribution (dist-info with entry_points.txt) on sys.path."""
    info = root / f"{dist}-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[castroom]\n{name} = {module}\n")
    (root / f"{module}.py").write_text(code)


def test_entry_point_named_like_a_builtin_is_reported(tmp_path: Path, monkeypatch) -> None:
    code = (
        "from castroom.core.hookspecs import hookimpl\n"
        "@hookimpl\ndef castroom_check(view):\n    return []\n"
    )
    _install_entry_point(tmp_path, "castroom_shadow", "csv_io", "castroom_shadow_mod", code)
    monkeypatch.syspath_prepend(str(tmp_path))
    plugins = make_plugins(builtins={"csv_io": DEFAULT_PLUGINS["csv_io"]}, disabled=set())
    [failure] = plugins.failures
    assert (failure.plugin, failure.hook) == ("csv_io", "load")
    assert "castroom_shadow_mod" in failure.error and "castroom_shadow 1.0" in failure.error
    assert "a built-in plugin is already called 'csv_io'" in failure.error
    # The built-in is the one loaded.
    assert plugins.pm.get_plugin("csv_io").__name__ == DEFAULT_PLUGINS["csv_io"]


def test_misspelled_hook_is_refused_and_the_rest_carry_on() -> None:
    @hookimpl
    def castroom_chek(view):  # a typo for castroom_check
        return []

    typo = _module("typo_plugin", castroom_chek=castroom_chek)
    plugins = make_plugins(builtins={}, entry_points=False, extra=[typo])
    assert len(plugins.failures) == 1
    assert plugins.failures[0].plugin == "typo_plugin"
    assert "castroom_chek" in plugins.failures[0].error
    assert not plugins.pm.has_plugin("typo_plugin")


@pytest.mark.parametrize("marker", ["wrapper", "hookwrapper"])
def test_hook_wrappers_are_refused_at_registration(marker: str, workspace: Workspace) -> None:
    """The façade calls implementations one by one; a wrapper would be run as a plain
    hook (its generator taken for findings), so it is refused by name instead."""

    @hookimpl(**{marker: True})
    def castroom_check(view):
        outcome = yield
        return outcome

    wrapping = _module("wrapping", castroom_check=castroom_check)
    good = _module(
        "good",
        castroom_check=hookimpl(
            lambda view: [Finding(code="ok", severity="info", message="still here")]
        ),
    )
    plugins = make_plugins(builtins={}, entry_points=False, extra=[wrapping, good])
    assert [(f.plugin, f.hook) for f in plugins.failures] == [("wrapping", "register")]
    assert "hook wrappers are not supported" in plugins.failures[0].error
    assert "castroom_check" in plugins.failures[0].error
    assert not plugins.pm.has_plugin("wrapping")
    findings = plugins.check(ProductionView(workspace.create_production("W").doc))
    assert [f.code for f in findings] == ["ok"]
    assert len(plugins.failures) == 1  # nothing misreported when checks run


def test_plugin_raising_in_check_is_reported_while_others_run(workspace: Workspace) -> None:
    @hookimpl
    def castroom_check(view):
        raise RuntimeError("boom")

    good_finding = Finding(code="hello", severity="info", message="all fine")
    bad = _module("bad_plugin", castroom_check=castroom_check)
    good = _module("good_plugin", castroom_check=hookimpl(lambda view: [good_finding]))
    plugins = make_plugins(builtins={}, entry_points=False, extra=[bad, good])
    production = workspace.create_production("Checks")
    findings = plugins.check(ProductionView(production.doc))
    assert [f.code for f in findings] == ["hello"]
    assert findings[0].plugin == "good_plugin"
    assert [(f.plugin, f.hook) for f in plugins.failures] == [("bad_plugin", "castroom_check")]
    assert "RuntimeError: boom" in plugins.failures[0].error


def test_check_rejects_non_findings(workspace: Workspace) -> None:
    odd = _module("odd_plugin", castroom_check=hookimpl(lambda view: ["not a finding"]))
    plugins = make_plugins(builtins={}, entry_points=False, extra=[odd])
    assert plugins.check(ProductionView(workspace.create_production("X").doc)) == []
    assert "not Finding" in plugins.failures[0].error


def _importer(name: str) -> Importer:
    return Importer(name=name, description="test", run=lambda source, view, options: ImportResult())


def test_duplicate_importer_names_are_rejected_at_start_up() -> None:
    """make_plugins itself reports the clash (before any command asks for importers): the
    plugin loaded first keeps the name, the later one is a failure naming both."""
    one = _module(
        "one", castroom_register_importers=hookimpl(lambda register: register(_importer("dup")))
    )
    two = _module(
        "two",
        castroom_register_importers=hookimpl(
            lambda register: [register(_importer("dup")), register(_importer("two-only"))]
        ),
    )
    plugins = make_plugins(builtins={}, entry_points=False, extra=[one, two])
    assert [(f.plugin, f.hook) for f in plugins.failures] == [
        ("two", "castroom_register_importers")
    ]
    assert (
        "importer 'dup' registered twice: by plugin 'one' and by plugin 'two'"
        in plugins.failures[0].error
    )
    importers = plugins.importers()
    assert importers["dup"].plugin == "one"
    assert importers["two-only"].plugin == "two"  # its other importers still count


def test_a_third_party_importer_cannot_shadow_a_builtin_one() -> None:
    """Built-ins load first, so `castroom import csv` keeps meaning the built-in."""
    rogue = _module(
        "rogue", castroom_register_importers=hookimpl(lambda register: register(_importer("csv")))
    )
    plugins = make_plugins(
        builtins={"csv_io": DEFAULT_PLUGINS["csv_io"]}, entry_points=False, extra=[rogue]
    )
    assert plugins.importers()["csv"].plugin == "csv_io"
    assert [f.plugin for f in plugins.failures] == ["rogue"]
    assert "by plugin 'csv_io' and by plugin 'rogue'" in plugins.failures[0].error


def test_duplicate_exporter_names_are_rejected_and_bad_names_refused() -> None:
    def exporter(name: str) -> Exporter:
        return Exporter(name=name, description="x", run=lambda view, options: "")

    one = _module(
        "one", castroom_register_exporters=hookimpl(lambda register: register(exporter("same")))
    )
    two = _module(
        "two", castroom_register_exporters=hookimpl(lambda register: register(exporter("same")))
    )
    plugins = make_plugins(builtins={}, entry_points=False, extra=[one, two])
    assert [f.plugin for f in plugins.failures] == ["two"]
    assert "exporter 'same' registered twice" in plugins.failures[0].error
    assert plugins.exporters()["same"].plugin == "one"
    with pytest.raises(CastroomError, match="must be lowercase"):
        exporter("Bad Name")
    # A plugin whose registration itself fails (a bad name) is reported at start-up too.
    bad = _module(
        "bad", castroom_register_exporters=hookimpl(lambda register: register(exporter("Bad")))
    )
    plugins = make_plugins(builtins={}, entry_points=False, extra=[bad])
    assert plugins.exporters() == {}
    assert [f.plugin for f in plugins.failures] == ["bad"]
    assert "must be lowercase" in plugins.failures[0].error


def test_registered_importers_are_stamped_with_their_plugin() -> None:
    mine = _module(
        "mine",
        castroom_register_importers=hookimpl(lambda register: register(_importer("mine-csv"))),
    )
    plugins = make_plugins(builtins={}, entry_points=False, extra=[mine])
    assert plugins.importers()["mine-csv"].plugin == "mine"


def test_a_command_cannot_replace_another() -> None:
    def register(cli: click.Group) -> None:
        @cli.command(name="list")
        def hijack() -> None:
            """Shadow the core list command."""

    rogue = _module("rogue", castroom_register_commands=hookimpl(register))
    plugins = make_plugins(builtins={}, entry_points=False, extra=[rogue])
    with pytest.raises(CastroomError, match="plugin 'rogue' adds command 'list'"):
        build_cli(plugins)


def test_a_plugins_exporter_and_command_run_through_the_cli(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from castroom.core.cli import Context, pass_ctx

    @hookimpl
    def castroom_register_exporters(register):
        register(
            Exporter(
                name="names",
                description="talent names, one a line",
                run=lambda view, options: "".join(
                    f"{t.name}\n" for t in sorted(view.talents.values(), key=lambda t: t.name)
                ),
            )
        )

    @hookimpl
    def castroom_register_commands(cli):
        @cli.command(name="talent-count")
        @pass_ctx
        def talent_count(obj: Context) -> None:
            """How many talents."""
            click.echo(f"{len(obj.view().talents)} talents")

    plugin = _module(
        "names_plugin",
        castroom_register_exporters=castroom_register_exporters,
        castroom_register_commands=castroom_register_commands,
    )
    plugins = make_plugins(entry_points=False, extra=[plugin])
    assert plugins.failures == []
    root = build_cli(plugins)

    def run(*args: str) -> str:
        result = CliRunner().invoke(root, ["--workspace", str(tmp_path / "ws"), *args], obj=plugins)
        assert result.exit_code == 0, result.output
        return result.output

    run("init", "--production", "Names")
    run("add", "talent", "name=Bo")
    run("add", "talent", "name=Ada")
    assert run("export", "names") == "Ada\nBo\n"
    assert run("talent-count") == "2 talents\n"


def test_plugin_commands_do_not_leak_between_managers() -> None:
    def register(cli: click.Group) -> None:
        @cli.command(name="hello-there")
        def hello() -> None:
            """Say hello."""
            click.echo("hello")

    extra = _module("greeter", castroom_register_commands=hookimpl(register))
    with_it = build_cli(make_plugins(builtins={}, entry_points=False, extra=[extra]))
    without = build_cli(make_plugins(builtins={}, entry_points=False))
    assert "hello-there" in with_it.commands
    assert "hello-there" not in without.commands


def test_disable_env_blocks_named_plugins(monkeypatch) -> None:
    monkeypatch.setenv("CASTROOM_DISABLE_PLUGINS", "continuity, demo")
    plugins = make_plugins(entry_points=False)
    names = {p.name for p in plugins.list()}
    assert "continuity" not in names and "demo" not in names
    assert "budget" in names
    assert plugins.failures == []


def test_disabling_a_plugin_that_does_not_exist_is_reported(monkeypatch) -> None:
    monkeypatch.setenv("CASTROOM_DISABLE_PLUGINS", "continuity,contiunity")
    plugins = make_plugins(entry_points=False)
    assert "continuity" not in {p.name for p in plugins.list()}
    [failure] = plugins.failures
    assert (failure.plugin, failure.hook) == ("contiunity", "disable")
    assert "names no installed plugin 'contiunity'" in failure.error


def test_a_misspelled_disable_is_one_clear_line_in_castroom_plugins(tmp_path: Path) -> None:
    """The console script says it at start; `castroom plugins` does not say it again (it
    said "plugin 'nosuch' failed in disable: ..." twice)."""
    import os
    import subprocess

    env = {**os.environ, "CASTROOM_DISABLE_PLUGINS": "nosuch"}
    done = subprocess.run(
        [str(Path(sys.executable).with_name("castroom")), "-w", str(tmp_path / "ws"), "plugins"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines() == [
        "Warning: CASTROOM_DISABLE_PLUGINS names no installed plugin 'nosuch', so it disables"
        " nothing (`castroom plugins` lists them)"
    ]
    assert "integrity" in done.stdout


def test_castroom_changed_hears_local_and_merged_changes(tmp_path: Path) -> None:
    heard: list[tuple[str, set[str]]] = []

    @hookimpl
    def castroom_changed(view, changes, origin):
        heard.append((origin, {collection for collection, _ in changes}))

    listener = _module("listener", castroom_changed=castroom_changed)
    alex = Workspace.open(tmp_path / "alex")
    alex._plugins = make_plugins(builtins={}, entry_points=False, extra=[listener])
    production = alex.create_production("Events")
    talent = production.doc.add(Talent, name="Ada Stone")
    assert ("local", {"talents"}) in heard

    heard.clear()
    sam = Workspace.open(tmp_path / "sam")
    sam_production, _ = sam.adopt(production.id, production.doc.encode_update(), origin="bundle")
    sam_production.doc.update(Talent, talent.id, {"rate": 1000})
    production.apply_update(
        sam_production.doc.encode_update(production.doc.state_vector()), origin="sync"
    )
    assert heard == [("sync", {"talents"})]
    alex.close()
    sam.close()


def test_builtin_listeners_are_the_builtins_implementing_castroom_changed() -> None:
    plugins = make_plugins(entry_points=False, disabled=set())
    implementing = {i.plugin_name for i in plugins.pm.hook.castroom_changed.get_hookimpls()}
    assert implementing == set(BUILTIN_LISTENERS)


def test_a_change_imports_no_plugin_when_none_listens(tmp_path: Path) -> None:
    with Workspace.open(tmp_path / "alex") as alex, Workspace.open(tmp_path / "sam") as sam:
        alex._plugins = make_plugins(entry_points=False, disabled=set())
        production = alex.create_production("Quiet")
        talent = production.doc.add(Talent, name="Ada Stone")
        sam_production, _ = sam.adopt(
            production.id, production.doc.encode_update(), origin="bundle"
        )
        before = production.doc.state_vector()
        sam_production.doc.update(Talent, talent.id, {"rate": 1000})
        production.apply_update(sam_production.doc.encode_update(before), origin="sync")
        assert production.doc.get(Talent, talent.id).rate == 1000
        assert not alex.plugins.loaded
        assert not alex.plugins.hears_changes()
        # A plugin that does listen is still heard, and a block of it is honoured.
        listener = _module("listener", castroom_changed=hookimpl(lambda view, changes, origin: 1))
        assert make_plugins(entry_points=False, extra=[listener]).hears_changes()
        other = make_plugins(builtins={"mine": "mine.plugin"}, entry_points=False)
        assert other.hears_changes() and not other.loaded


def test_a_raising_change_listener_never_breaks_the_write(tmp_path: Path) -> None:
    noisy = _module("noisy", castroom_changed=hookimpl(lambda view, changes, origin: 1 / 0))
    with Workspace.open(tmp_path / "ws") as ws:
        ws._plugins = make_plugins(builtins={}, entry_points=False, extra=[noisy])
        production = ws.create_production("Robust")
        talent = production.doc.add(Talent, name="Bo")
        assert production.doc.get(Talent, talent.id).name == "Bo"
        assert any(
            f.plugin == "noisy" and "ZeroDivisionError" in f.error for f in ws.plugins.failures
        )


def test_a_merged_production_change_is_reported_with_its_field(tmp_path: Path) -> None:
    heard: list[tuple[str, dict]] = []
    listener = _module(
        "listener",
        castroom_changed=hookimpl(lambda view, changes, origin: heard.append((origin, changes))),
    )
    with Workspace.open(tmp_path / "a") as alex, Workspace.open(tmp_path / "b") as sam:
        alex._plugins = make_plugins(builtins={}, entry_points=False, extra=[listener])
        production = alex.create_production("Cap", budget_cap=5)
        sam_production, created = sam.adopt(
            production.id, production.doc.encode_update(), origin="bundle"
        )
        assert created == {("production", production.id): {"*"}}
        before = production.doc.state_vector()
        sam_production.doc.update_production({"budget_cap": 10})
        heard.clear()
        changes = production.apply_update(sam_production.doc.encode_update(before), origin="sync")
        assert changes == {("production", production.id): {"budget_cap"}}
        assert heard == [("sync", changes)]
        assert production.doc.production.budget_cap == 10


def test_check_is_a_core_command_with_continuity_disabled(monkeypatch, cli) -> None:
    """`check` is core: turning continuity off keeps it (integrity and budget still run)."""
    monkeypatch.setenv("CASTROOM_DISABLE_PLUGINS", "continuity")
    assert cli("init", "--production", "Show").exit_code == 0
    result = cli("check", "--json")
    assert result.exit_code == 0, result.output
    assert '"findings": []' in result.output
