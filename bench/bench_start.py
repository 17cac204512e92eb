"""Benchmark: how fast the ``castroom`` command starts (issue 14, CLI start).

Targets: ``castroom --help`` and ``castroom --version`` <= 100 ms, ``castroom list`` on a
small workspace <= 150 ms. Each command is run as the real console script, in a fresh
process, interleaved with ``python -c pass`` (the floor of any Python command) in the same
run, so a loaded machine slows both alike; medians are printed with the ratio to it, wall
time (what is judged) and, beside it, CPU time (user + system: on a loaded machine the
fairer figure, as the wall time there measures the others' work too).
The slowest imports of ``--help`` (``python -X importtime``) follow, to say where the rest
of the time goes.
"""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from castroom.core.model import Talent
from castroom.core.workspace import Workspace

RUNS = 15
#: (label, arguments after the console script, target in ms); None: the baseline.
TARGETS = {"--help": 100.0, "--version": 100.0, "list (small)": 150.0}


def _time(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall and CPU milliseconds of one fresh process running ``argv``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wall = (time.perf_counter() - start) * 1000
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return wall, cpu * 1000


def small_workspace(root: Path) -> Path:
    """A workspace with one production of 20 talents."""
    path = root / "ws"
    with Workspace.open(path, create=True, member="bench") as workspace:
        production = workspace.create_production("Bench")
        for i in range(20):
            production.doc.add(Talent, name=f"Talent {i}")
    return path


def commands(workspace: Path) -> dict[str, list[str]]:
    exe = str(Path(sys.executable).with_name("castroom"))
    return {
        "python -c pass": [sys.executable, "-c", "pass"],
        "--help": [exe, "--help"],
        "--version": [exe, "--version"],
        "list (small)": [exe, "--workspace", str(workspace), "list", "talents"],
    }


#: Where start-up time goes: the libraries and castroom modules worth watching.
WATCHED = ("pycrdt", "asyncio", "click", "msgspec", "pluggy", "importlib.metadata", "rich")


def watched_imports() -> list[tuple[float, str]]:
    """Cumulative import ms under ``castroom --help`` of WATCHED and each plugin module."""
    probe = "from castroom.core.cli import main\ntry: main(['--help'])\nexcept SystemExit: pass"
    out = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", probe],
        capture_output=True,
        text=True,
        check=True,
    ).stderr
    rows = []
    for line in out.splitlines():
        parts = line.removeprefix("import time:").split("|")
        if len(parts) != 3 or not parts[1].strip().isdigit():
            continue
        name = parts[2].strip()
        if name in WATCHED or name in ("castroom.core.cli", "castroom.core.crdt"):
            rows.append((int(parts[1]) / 1000, name))
    return sorted(rows, reverse=True)


def main() -> None:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    with tempfile.TemporaryDirectory() as tmp:
        runs = commands(small_workspace(Path(tmp)))
        for argv in runs.values():  # warm the bytecode and the file cache once
            _time(argv, env)
        times: dict[str, list[tuple[float, float]]] = {label: [] for label in runs}
        for _ in range(RUNS):
            for label, argv in runs.items():
                times[label].append(_time(argv, env))
    wall = {label: statistics.median(w for w, _ in runs) for label, runs in times.items()}
    cpu = {label: statistics.median(c for _, c in runs) for label, runs in times.items()}
    floor, cpu_floor = wall["python -c pass"], cpu["python -c pass"]
    print(
        f"CLI start, median of {RUNS} interleaved runs (fresh process each), load average"
        f" {os.getloadavg()[0]:.1f}: wall ms (CPU ms)"
    )
    print(f"  {'python -c pass':<16} {floor:7.1f} ({cpu_floor:6.1f})   (baseline, same run)")
    missed = []
    for label, target in TARGETS.items():
        value = wall[label]
        ok = value <= target
        if not ok:
            missed.append(label)
        print(
            f"  {label:<16} {value:7.1f} ({cpu[label]:6.1f})   ratio {value / floor:5.2f}x"
            f" ({cpu[label] / cpu_floor:5.2f}x) baseline"
            f"   target <= {target:.0f} ms [{'ok' if ok else 'MISSED'}]"
        )
    print("  imports under `castroom --help` (cumulative ms, one run; not loaded: absent):")
    for ms, name in watched_imports():
        print(f"    {ms:7.1f}  {name}")
    if missed:
        sys.exit(1)


if __name__ == "__main__":
    main()
