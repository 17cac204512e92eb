"""A real third-party plugin, pip-installed during the tests, found through the ``castroom``
entry-point group: it shows up in ``castroom plugins``, its check runs in ``castroom check``,
its importer in ``castroom import`` and the inbox. A broken one is reported by name while
the rest carry on, and CASTROOM_DISABLE_PLUGINS blocks plugins by name.

The packages are installed with pip into a private ``--target`` folder (not into the test
venv), and only the subprocesses that should see them get it on their PYTHONPATH, so no
other test ever meets the example plugin.

The plugin-author guide's own examples (docs/plugins.md) are extracted and run here too.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import types
from pathlib import Path

import pytest
from click.testing import CliRunner
from patience import PATIENCE

from castroom.core.cli import build_cli
from castroom.core.model import ShootDay
from castroom.core.plugins import make_plugins
from castroom.core.workspace import Workspace

EXAMPLE = Path(__file__).parent / "plugin_example"
GUIDE = Path(__file__).parents[1] / "docs" / "plugins.md"

BROKEN_PYPROJECT = """[build-system]
requires = ["setuptools>=69"]
build-backend = "setuptools.build_meta"

[project]
name = "castroom-broken-example"
version = "0.0.1"

[project.entry-points.castroom]
broken = "castroom_broken_example.plugin"

[project.entry-points."castroom.commands"]
broken = "castroom_broken_example:COMMANDS"

[tool.setuptools]
packages = ["castroom_broken_example"]
"""


def pip_install(sources: list[Path], target: Path) -> None:
    """Build and install packages from source, offline, into ``target`` (one pip run)."""
    copies = []
    for source in sources:
        work = target.parent / f"src-{source.name}"
        shutil.copytree(source, work)  # building writes build/ and *.egg-info: not in tests/
        copies.append(str(work))
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-index",
            "--no-build-isolation",
            "--disable-pip-version-check",
            "--target",
            str(target),
            *copies,
        ],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr


@pytest.fixture(scope="module")
def site_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example plugin and a broken one, installed into a private site folder."""
    root = tmp_path_factory.mktemp("third-party")
    broken = root / "broken"
    (broken / "castroom_broken_example").mkdir(parents=True)
    (broken / "pyproject.toml").write_text(BROKEN_PYPROJECT)
    (broken / "castroom_broken_example" / "__init__.py").write_text(
        'COMMANDS = {"broken-thing": "Never runs: its plugin fails to import."}\n'
    )
    (broken / "castroom_broken_example" / "plugin.py").write_text(
        'raise RuntimeError("this plugin is broken on purpose")\n'
    )
    target = root / "site"
    pip_install([EXAMPLE, broken], target)
    return target


def castroom(site: Path | None, workspace: Path, *args: str, **env: str):
    full = {**os.environ, "CASTROOM_WORKSPACE": str(workspace), **env}
    full.pop("CASTROOM_DISABLE_PLUGINS", None) if "CASTROOM_DISABLE_PLUGINS" not in env else None
    if site is not None:
        full["PYTHONPATH"] = os.pathsep.join(filter(None, [str(site), full.get("PYTHONPATH")]))
    exe = Path(sys.executable).with_name("castroom")
    return subprocess.run(
        [str(exe), *args], capture_output=True, text=True, env=full, timeout=PATIENCE
    )


def plugin_names(result: subprocess.CompletedProcess[str]) -> dict[str, dict]:
    data = json.loads(result.stdout)
    return {p["name"]: p for p in data["plugins"]}


def test_plugins_json_includes_failures(site_dir, tmp_path) -> None:
    """Scripts see broken plugins too, not only people reading stderr."""
    data = json.loads(castroom(site_dir, tmp_path / "ws", "plugins", "--json").stdout)
    assert {p["name"] for p in data["plugins"]} >= {"example", "csv_io"}
    [failure] = [f for f in data["failures"] if f["plugin"] == "broken"]
    assert failure["hook"] == "load"
    assert "RuntimeError: this plugin is broken on purpose" in failure["error"]


def test_listed_with_version_and_hooks_and_broken_one_reported(site_dir, tmp_path) -> None:
    listed = castroom(site_dir, tmp_path / "ws", "plugins", "--json")
    assert listed.returncode == 0, listed.stderr
    plugins = plugin_names(listed)
    assert plugins["example"] == {
        "name": "example",
        "version": "0.3.1",
        "builtin": False,
        "hooks": ["castroom_check", "castroom_register_commands", "castroom_register_importers"],
    }
    assert "csv_io" in plugins and "broken" not in plugins  # the rest carry on
    assert (
        "plugin 'broken' failed in load: RuntimeError: this plugin is broken on purpose"
        in listed.stderr
    )
    # Without the private site folder, nothing third-party is there.
    assert "example" not in plugin_names(castroom(None, tmp_path / "ws", "plugins", "--json"))


PROBE = """
import json, sys
from castroom.core.start import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
print(json.dumps(sorted(m for m in sys.modules if m.startswith(("castroom_", "pycrdt")))))
"""


def loaded_modules(site: Path, workspace: Path, *args: str) -> tuple[str, list[str]]:
    """What ``castroom ARGS`` printed, and which plugin (and pycrdt) modules it imported."""
    env = {**os.environ, "CASTROOM_WORKSPACE": str(workspace), "PYTHONPATH": str(site)}
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=PATIENCE,
    )
    *printed, modules = done.stdout.splitlines()
    return "\n".join(printed), json.loads(modules)


def test_a_declared_command_is_listed_unimported_and_runs(site_dir, tmp_path) -> None:
    ws = tmp_path / "ws"
    helped, loaded = loaded_modules(site_dir, ws, "--help")
    # Listed with its declared help; neither plugin imported (nor pycrdt): only the
    # packages holding the declarations.
    assert re.search(r"\n  roster-refs +Each talent imported from a roster", helped)
    assert re.search(r"\n  broken-thing +Never runs: its plugin fails", helped)
    assert loaded == ["castroom_broken_example", "castroom_example"]
    assert castroom(site_dir, ws, "init", "--production", "Harbour Lights").returncode == 0
    roster = tmp_path / "cast.roster"
    roster.write_text("r2 | Bo Li | 20-25\nr1 | Ada Stone | 30-40\n")
    assert castroom(site_dir, ws, "import", "example", str(roster)).returncode == 0
    listed, loaded = loaded_modules(site_dir, ws, "roster-refs")
    assert listed == "r1  Ada Stone\nr2  Bo Li"
    assert "castroom_example.plugin" in loaded and "castroom_broken_example.plugin" not in loaded
    helped = castroom(site_dir, ws, "roster-refs", "--help")
    assert helped.returncode == 0 and "Usage: castroom roster-refs" in helped.stdout


def test_a_broken_plugin_fails_only_its_own_command(site_dir, tmp_path) -> None:
    ws = tmp_path / "ws"
    assert castroom(site_dir, ws, "init", "--production", "Harbour Lights").returncode == 0
    # Commands that ask no plugin anything do not import it, nor warn about it.
    for args in (["list", "talents"], ["--help"], ["production", "show"]):
        done = castroom(site_dir, ws, *args)
        assert done.returncode == 0 and "broken" not in done.stderr, (args, done.stderr)
    # Its own command: one clear error line, exit 1, nothing written.
    used = castroom(site_dir, ws, "broken-thing")
    assert used.returncode == 1
    assert used.stderr.splitlines() == [
        "Error: plugin 'broken' failed to load: RuntimeError: this plugin is broken on"
        " purpose (plugin.py:1)"
    ]
    # A command that calls every plugin (a write tells them what changed; the checks)
    # warns once that one could not load, and carries on.
    for args in (["add", "talent", "name=Ada", "agent=North"], ["check", "--json"]):
        done = castroom(site_dir, ws, *args)
        assert done.returncode == 0, done.stderr
        assert done.stderr.count("plugin 'broken' failed in load") == 1, done.stderr


def test_importer_and_check_work_end_to_end(site_dir, tmp_path) -> None:
    ws = tmp_path / "ws"
    assert castroom(site_dir, ws, "init", "--production", "Harbour Lights").returncode == 0
    roster = tmp_path / "cast.roster"
    roster.write_text("# ref | name | ages\nr1 | Ada Stone | 30-40\nr2 | Bo Li | 20-25\n")
    first = castroom(site_dir, ws, "import", "example", str(roster))
    assert first.returncode == 0, first.stderr
    assert "2 created" in first.stdout
    roster.write_text("r1 | Ada Stone-Marsh | 30-40\nr2 | Bo Li | 20-25\n")
    again = castroom(site_dir, ws, "import", "example", str(roster))
    assert "0 created, 1 updated, 1 unchanged" in again.stdout
    bad = tmp_path / "bad.roster"
    bad.write_text("r3 | Cy | 40-10\nnot a roster line\n")
    failed = castroom(site_dir, ws, "import", "example", str(bad))
    assert failed.returncode == 1
    assert "line 1:" in failed.stderr and "line 2: expected" in failed.stderr
    checked = castroom(site_dir, ws, "check", "--json")
    findings = json.loads(checked.stdout)["findings"]
    mine = [f for f in findings if f["plugin"] == "example"]
    assert sorted(f["message"] for f in mine) == [
        "Ada Stone-Marsh has no agent and no contact",
        "Bo Li has no agent and no contact",
    ]
    assert all(f["code"] == "example.no-agent" and f["severity"] == "warning" for f in mine)


def test_its_importer_claims_inbox_files(site_dir, tmp_path) -> None:
    ws = tmp_path / "ws"
    castroom(site_dir, ws, "init", "--production", "Harbour Lights")
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "new.roster").write_text("r9 | Dee Vance | 50-60\n")
    done = castroom(site_dir, ws, "watch-inbox", str(inbox), "--once")
    assert done.returncode == 0, done.stderr
    assert "new.roster: imported with example: 1 created" in done.stdout
    assert (inbox / "done" / "new.roster").exists()


def test_disable_env_blocks_named_plugins(site_dir, tmp_path) -> None:
    ws = tmp_path / "ws"
    castroom(site_dir, ws, "init", "--production", "Harbour Lights")
    off = {"CASTROOM_DISABLE_PLUGINS": "example, broken,csv_io"}
    listed = castroom(site_dir, ws, "plugins", "--json", **off)
    names = plugin_names(listed)
    assert "example" not in names and "csv_io" not in names and "screenplay" in names
    assert "broken" not in listed.stderr  # blocked before it is even loaded
    roster = tmp_path / "cast.roster"
    roster.write_text("r1 | Ada Stone | 30-40\n")
    refused = castroom(site_dir, ws, "import", "example", str(roster), **off)
    assert refused.returncode == 1 and "no importer 'example'" in refused.stderr
    assert "csv" not in refused.stderr.split("installed:")[1].split(",")[0]


# -- the guide's examples ------------------------------------------------------------------


def _module_from(name: str, *sources: str) -> types.ModuleType:
    """A module made by executing code blocks of the guide, as a plugin author would."""
    module = types.ModuleType(name)
    for source in sources:
        exec(compile(source, f"{GUIDE.name} ({name})", "exec"), module.__dict__)
    return module


def test_every_python_example_in_the_guide_runs(tmp_path, monkeypatch) -> None:
    blocks = re.findall(r"```python\n(.*?)```", GUIDE.read_text(encoding="utf-8"), re.S)

    def block(marker: str) -> str:
        [found] = [b for b in blocks if marker in b]
        return found

    markers = (
        "def castroom_check",
        "def castroom_register_importers",
        "def castroom_register_exporters",
        "def castroom_register_commands",
        "def test_",
        "def castroom_propose_schedule",
    )
    check, importer, exporter, command, testing, scheduler = (block(m) for m in markers)
    assert len(blocks) == len(markers), "a new example in the guide needs running here"

    # "Testing your plugin" imports castroom_mycheck: the check and the importer examples.
    monkeypatch.setitem(
        sys.modules, "castroom_mycheck", _module_from("castroom_mycheck", check, importer)
    )
    guide_tests = _module_from("guide_tests", testing)
    guide_tests.test_check_finds_unreachable_talent()
    guide_tests.test_import_twice_updates(tmp_path)

    # The exporter and the command, through the command line.
    plugins = make_plugins(
        entry_points=False,
        extra=[_module_from("agents_export", exporter), _module_from("agents_cmd", command)],
    )
    assert plugins.failures == []
    root = build_cli(plugins)

    def run(*args: str) -> str:
        result = CliRunner().invoke(root, ["--workspace", str(tmp_path / "ws"), *args], obj=plugins)
        assert result.exit_code == 0, result.output
        return result.output

    run("init", "--production", "Guide")
    run("add", "talent", "name=Ada", "agent=North Talent")
    run("add", "talent", "name=Bo", "agent=Blake & Co")
    run("add", "talent", "name=Cy")
    assert run("export", "agents") == "agent\nBlake & Co\nNorth Talent\n"
    assert run("agents") == "Blake & Co\nNorth Talent\n"
    assert run("agent-for", "Kim", "--dry-run") == "change talent Cy: agent Kim (no agent yet)\n"
    assert run("agent-for", "Kim") == "Changed 1 talents\n"
    assert run("agents") == "Blake & Co\nKim\nNorth Talent\n"

    # The scheduler: its one-day plan is what `castroom schedule --apply` writes.
    planner = make_plugins(entry_points=False, extra=[_module_from("one_day", scheduler)])
    assert planner.failures == []
    ws = ["--workspace", str(tmp_path / "ws2")]
    runner = CliRunner()
    for args in (
        ["init", "--production", "Plan"],
        ["production", "set", "start_date=2027-03-01"],
        ["add", "scene", "number=1"],
        ["add", "scene", "number=2"],
        ["schedule", "--apply"],
    ):
        result = runner.invoke(build_cli(planner), [*ws, *args], obj=planner)
        assert result.exit_code == 0, result.output
    with Workspace.open(tmp_path / "ws2") as w:
        [day] = w.production().doc.all(ShootDay)
    assert str(day.date) == "2027-03-01" and len(day.scene_ids) == 2
