"""`castroom --help` and `--version` start without the libraries only some commands need
(issue 14: CLI start). Measured by bench/bench_start.py; this keeps the imports out."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from click.testing import CliRunner
from sync_helpers import drop_read_copies

from castroom.core.cli import build_cli
from castroom.core.plugins import make_plugins
from tests.conftest import run_castroom

#: Imported by the commands that print tables, serve, fetch from casting sites or parse
#: money; none of them by starting the command line.
NOT_AT_START = ("rich", "httpx", "uvicorn", "starlette", "iso4217", "watchdog")

PROBE = """
import json, sys
from castroom.core.cli import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in {names!r})))
"""


def loaded_at_start(*args: str) -> list[str]:
    """The NOT_AT_START modules in ``sys.modules`` after running ``castroom ARGS``."""
    out = subprocess.run(
        [sys.executable, "-c", PROBE.format(names=set(NOT_AT_START)), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return json.loads(out.stdout.splitlines()[-1])


@pytest.mark.parametrize("flag", ["--help", "--version"])
def test_starting_imports_no_heavy_library(flag: str) -> None:
    assert loaded_at_start(flag) == []


OURS = """
import json, sys
from castroom.core.start import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
print(json.dumps(sorted(m for m in sys.modules if m.startswith(
    ("pycrdt", "castroom.plugins.", "castroom.sync.", "castroom.core.cli.")))))
"""


def imported_by(*args: str, shows: str = "") -> list[str]:
    """pycrdt, plugin and command modules in ``sys.modules`` after ``castroom ARGS``
    (which must print ``shows``: the command really ran)."""
    out = subprocess.run(
        [sys.executable, "-c", OURS, *args], capture_output=True, text=True, timeout=120
    )
    *printed, modules = out.stdout.splitlines()
    assert shows in "\n".join(printed), out.stderr
    return json.loads(modules)


def test_help_imports_no_plugin_no_command_and_no_pycrdt() -> None:
    assert imported_by("--help", shows="watch-inbox") == [
        "castroom.core.cli.group",
        "castroom.core.cli.root",
    ]


def test_a_command_imports_its_own_module_and_no_plugin(tmp_path) -> None:
    ws = str(tmp_path / "ws")
    run_castroom("-w", ws, "init", "--production", "Start", check=True)
    run_castroom("-w", ws, "add", "talent", "name=Ada Stone", check=True)
    drop_read_copies(tmp_path / "ws")  # the CRDT loaded, as on a first read
    loaded = imported_by("-w", ws, "list", "talents", shows="Ada Stone")
    assert "castroom.core.cli.entities" in loaded and "pycrdt" in loaded
    assert not [m for m in loaded if m.startswith(("castroom.plugins.", "castroom.sync."))]
    assert "castroom.core.cli.schedule" not in loaded
    # A plugin's command imports that plugin, not the others (budget asks the cost
    # report hook, so it loads them all; `demo --help` does not).
    loaded = imported_by("demo", "--help", shows="Usage: castroom demo")
    assert "castroom.sync.demo" in loaded and "castroom.plugins.continuity" not in loaded


#: What a read-only command must not import once it reads a production's read copy:
#: the CRDT (and the asyncio/anyio pycrdt brings), the network and the server (issue 14).
NOT_ON_A_COPY = ("pycrdt", "asyncio", "anyio", "httpx", "starlette", "uvicorn")

COPY_PROBE = """
import atexit, json, sys
atexit.register(lambda: print(json.dumps(sorted(
    m for m in sys.modules if m.split(".")[0] in {names!r} or m == "castroom.core.crdt"))))
from castroom.core.start import main
main(sys.argv[1:])
"""


@pytest.fixture(scope="module")
def copied(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A small workspace whose production has a current read copy."""
    ws = str(tmp_path_factory.mktemp("copy") / "ws")
    run_castroom("-w", ws, "init", "--production", "Start", check=True)
    run_castroom("-w", ws, "add", "talent", "name=Ada Stone", "rate=1500", check=True)
    run_castroom("-w", ws, "add", "role", "name=Maggie Doyle", check=True)
    run_castroom("-w", ws, "add", "scene", "number=1", 'characters=["Maggie Doyle"]', check=True)
    run_castroom("-w", ws, "list", "talents", check=True)  # opens the CRDT, keeps a copy
    return ws


@pytest.mark.parametrize(
    ("args", "shows", "status"),
    [
        (("list", "talents"), "Ada Stone", 0),
        (("list", "roles", "--json"), "Maggie Doyle", 0),
        (("show", "talent", "Ada Stone"), "1,500", 0),
        (("show", "talent", "Ada Stone", "--json"), "1500", 0),
        (("check",), "Maggie Doyle has no booked actor", 0),
        (("invalid",), "No invalid entities.", 0),
    ],
)
def test_reading_a_read_copy_loads_no_crdt(
    copied: str, args: tuple[str, ...], shows: str, status: int
) -> None:
    # The console script's own entry point, in a fresh process, as a user runs it.
    out = subprocess.run(
        [sys.executable, "-c", COPY_PROBE.format(names=set(NOT_ON_A_COPY)), "-w", copied, *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    *printed, loaded = out.stdout.splitlines()
    assert out.returncode == status, out.stderr
    assert shows in "\n".join(printed), out.stdout + out.stderr
    assert json.loads(loaded) == []


#: What `castroom check` needs none of, though it loads every built-in plugin: the XML,
#: mail, HTML and HTTP modules some plugins use for imports and exports, iso4217's
#: tables (the production's currency is a common one) and the scheduler's search.
NOT_FOR_A_CHECK = ("xml", "email", "html", "http", "ssl", "iso4217")
CHECK_PROBE = """
import atexit, json, sys
atexit.register(lambda: print(json.dumps(sorted(
    m for m in sys.modules
    if m.split(".")[0] in {names!r}
    or m in ("urllib.request", "castroom.core.talent_scheduling")))))
from castroom.core.start import main
main(sys.argv[1:])
"""


@pytest.mark.parametrize("args", [("check",), ("check", "--json")])
def test_a_check_imports_only_what_checks_use(copied: str, args: tuple[str, ...]) -> None:
    out = subprocess.run(
        [sys.executable, "-c", CHECK_PROBE.format(names=set(NOT_FOR_A_CHECK)), "-w", copied, *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    *printed, loaded = out.stdout.splitlines()
    assert out.returncode == 0, out.stderr
    assert "Maggie Doyle has no booked actor" in "\n".join(printed), out.stdout + out.stderr
    assert json.loads(loaded) == []


def test_the_copy_probe_sees_the_crdt_when_there_is_no_copy(tmp_path) -> None:
    ws = str(tmp_path / "ws")
    run_castroom("-w", ws, "init", "--production", "Start", check=True)
    drop_read_copies(tmp_path / "ws")
    out = subprocess.run(
        [sys.executable, "-c", COPY_PROBE.format(names={"pycrdt"}), "-w", ws, "list", "roles"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert "pycrdt" in json.loads(out.stdout.splitlines()[-1])


def test_the_probe_sees_a_command_that_needs_rich(tmp_path) -> None:
    # The same probe on a command that prints a table does see rich: it can fail.
    assert "rich" in loaded_at_start("--workspace", str(tmp_path / "ws"), "plugins")


def test_version_is_answered_without_the_command_line() -> None:
    probe = (
        "import sys\nfrom castroom.core.start import main\nmain(['--version'])\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in {'pycrdt', 'click'}"
        " or m.startswith('castroom.core.cli') or m == 'importlib.metadata'))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True
    )
    line, loaded = out.stdout.splitlines()
    assert loaded == "[]"
    # The same line as click's --version on the full command line, and the console script's.
    full = CliRunner().invoke(build_cli(make_plugins()), ["--version"])
    assert full.exit_code == 0
    assert line == full.output.strip() == run_castroom("--version", check=True).stdout.strip()
    assert line.startswith("castroom, version ")


def test_the_version_shown_is_the_installed_one() -> None:
    # --version prints castroom.core.__version__ (importing importlib.metadata would
    # double its time): it must be the version pyproject.toml installed.
    from importlib.metadata import version

    from castroom.core import __version__

    assert __version__ == version("castroom")
