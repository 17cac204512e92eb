"""Commands known before their modules are imported (core/command_index.py and the lazy
root group, core/cli/group.py): the declarations say what the commands really are, a
declared command runs, an undeclared plugin's commands are found, clashes name both."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from castroom.core.cli import CORE_COMMANDS, build_cli, cli
from castroom.core.command_index import BUILTIN_COMMANDS
from castroom.core.errors import CastroomError
from castroom.core.hookspecs import hookimpl
from castroom.core.plugins import DEFAULT_PLUGINS, make_plugins


def _short(command: click.Command) -> str:
    return command.get_short_help_str(limit=10_000)


def test_every_builtin_plugin_declares_exactly_the_commands_it_adds() -> None:
    assert set(BUILTIN_COMMANDS) == set(DEFAULT_PLUGINS)
    plugins = make_plugins(entry_points=False)
    for plugin, declared in BUILTIN_COMMANDS.items():
        real = plugins.commands_of(plugin)
        assert {name: _short(cmd) for name, cmd in real.items()} == declared, plugin


def test_core_commands_are_declared_with_their_module_and_help() -> None:
    modules = {module for module, _ in CORE_COMMANDS.values()}
    for module in modules:
        importlib.import_module(f"castroom.core.cli.{module}")
    assert set(cli.commands) == set(CORE_COMMANDS)
    for name, (module, text) in CORE_COMMANDS.items():
        command = cli.commands[name]
        assert command.callback is not None
        assert command.callback.__module__ == f"castroom.core.cli.{module}", name
        assert _short(command) == text, name


def test_help_lists_declared_commands_as_the_real_ones_would() -> None:
    plugins = make_plugins(entry_points=False)
    lazy = CliRunner().invoke(build_cli(plugins), ["--help"], obj=plugins)
    root = build_cli(plugins)
    for name in list(root.lazy):
        root.get_command(click.Context(root), name)  # import every command first
    assert not root.lazy
    eager = CliRunner().invoke(root, ["--help"], obj=plugins)
    assert lazy.exit_code == eager.exit_code == 0
    assert lazy.output == eager.output
    assert "  replace  " in lazy.output and "  list  " in lazy.output


def _write_module(root: Path, name: str, source: str) -> None:
    (root / f"{name}.py").write_text(source, encoding="utf-8")


GREETER = """
import click
from castroom.core.api import hookimpl

@hookimpl
def castroom_register_commands(cli):
    @cli.command(name="hello-there")
    def hello():
        '''Say hello.'''
        click.echo("hello")
"""


def test_an_undeclared_plugin_is_imported_for_the_list_and_its_command_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(tmp_path))
    _write_module(tmp_path, "castroom_test_greeter", GREETER)
    _write_module(tmp_path, "castroom_test_broken", "raise ImportError('no such library')\n")
    monkeypatch.delitem(sys.modules, "castroom_test_greeter", raising=False)
    builtins = {"greeter": "castroom_test_greeter", "broken": "castroom_test_broken"}
    plugins = make_plugins(builtins=builtins, entry_points=False)
    root = build_cli(plugins)
    assert "castroom_test_greeter" not in sys.modules  # nothing imported by building
    ran = CliRunner().invoke(root, ["hello-there"], obj=plugins)
    assert ran.exit_code == 0 and ran.output == "hello\n"
    helped = CliRunner().invoke(build_cli(plugins), ["--help"], obj=plugins)
    assert "hello-there  Say hello." in helped.output
    # A name no plugin has: the plugin that could not load is named with the error.
    missing = CliRunner().invoke(build_cli(plugins), ["goodbye"], obj=plugins)
    assert missing.exit_code == 2
    assert "No such command 'goodbye'." in missing.output
    assert "plugin 'broken' failed to load: ImportError: no such library" in missing.output


def test_a_plugin_command_may_not_take_a_declared_name() -> None:
    def register(cli: click.Group) -> None:
        @cli.command(name="budget")
        def mine() -> None:
            """Not the built-in budget."""

    import types

    rogue = types.ModuleType("rogue")
    rogue.castroom_register_commands = hookimpl(register)  # type: ignore[attr-defined]
    with pytest.raises(CastroomError) as caught:
        build_cli(make_plugins(entry_points=False, extra=[rogue]))
    assert str(caught.value) == (
        "plugin 'rogue' adds command 'budget', which plugin 'budget' already adds"
    )


def test_json_output_is_the_indented_json_of_its_data(capsys: pytest.CaptureFixture[str]) -> None:
    """emit_json (msgspec) prints what json.dumps(indent=2) would, for every kind."""
    import datetime as dt
    import json

    import msgspec

    from castroom.core.commands import emit_json
    from castroom.core.model import Availability, Scene, Talent

    data = [
        Talent(id="t1", name='Zoë "Z" O\'Hara\u2028', rate=150_000, languages=["fr", "en"]),
        Availability(id="a1", talent_id="t1", start=dt.date(2027, 3, 1), end=dt.date(2027, 3, 2)),
        Scene(id="s1", number="12A", characters=[], looks={}),
        {"nested": {"empty": [], "none": None, "half": 0.5, "ok": True}},
    ]
    emit_json(data)
    printed = capsys.readouterr().out
    assert printed == json.dumps(msgspec.to_builtins(data), indent=2, ensure_ascii=False) + "\n"
