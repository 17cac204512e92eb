"""Benchmark: large productions (issue 14): ``check``, ``budget`` and ``list talents
--json`` at 5,000 and 50,000 talents (bench_checks' production, every collection scaled
by 10), as people run them: the real console script in a fresh process, on a stored
workspace opened before (so its snapshot was walked once, as after any first open).

Each command runs three times per round: with no read copy stored (``cold``: the CRDT is
loaded, and a read copy is kept: the first read after a peer's or another process's
write), as the first read after a ``castroom set`` (``after set``: the write command
patched the read copy it opened at, core/read_copy.py ``patch``), and as any later read
of that version (``copy``), and as the first read after a write whose process was
killed before it closed (``after crash``: the copy is stale; the read loads the CRDT,
patches the copy with what the log says the dead writer changed, and reads it). The
write itself is timed too (``set``: it pays the patch).
Then each runs RUNS times more on the copy as a running ``castroom serve`` keeps it
(``after serve``): the server merged a peer's new talent (an HTTP push) and patched the
copy once quiet; the first patch splits the copy a read left whole, in a worker
process. The server's event-loop stalls from its first merge on are printed beside
(``serve's loop``: its longest one, and how much of it the loop's own CPU).

Target: each <= 1.5 s at 50,000 talents, and cost linear in the size: the exponent
``log(t50k / t5k) / log(10)`` is printed per command (1.0 = linear). The baseline, in the
same run: a fresh process that loads the same stored snapshot into a bare pycrdt Doc (the
floor of a command that loads the CRDT), and ``python -c pass`` (the floor of any
process); each command's CPU time is printed as a ratio to both. Medians of RUNS,
interleaved. Each process's CPU time (user + system) is what is judged, its wall time is
shown beside it: on a machine other work loads (2 cores, load 12), the wall time
measures the others.

``BENCH_LARGE_SCALES`` (default ``5k,50k``: thousands of talents, each a multiple of 5k)
and ``BENCH_LARGE_RUNS`` (default 3) make a shorter run; the exponent needs two scales.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import resource
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import tomli_w
from pycrdt import Doc, Map

from bench.bench_checks import PRODUCTION, build
from castroom.core import read_copy
from castroom.core.storage import Store
from castroom.core.workspace import Workspace

RUNS = int(os.environ.get("BENCH_LARGE_RUNS", "3"))
TARGET_S = 1.5
SCALES = {
    label: int(label.removesuffix("k")) // 5
    for label in os.environ.get("BENCH_LARGE_SCALES", "5k,50k").split(",")
}
#: The server's read_copy_quiet while it is timed (seconds).
SERVE_QUIET = 0.3
#: A stall of the server's loop this long or longer is printed.
STALL_MS = 100.0
#: Every process the bench runs: bytecode written, as an installed castroom has it.
ENV = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}
COMMANDS = {
    "check": ["check", "--json"],
    "budget": ["budget"],
    "list --json": ["list", "talents", "--json"],
}
DB = "castroom.db"
RAW_OPEN = """
import sqlite3, sys
from pycrdt import Doc
db = sqlite3.connect(sys.argv[1])
Doc().apply_update(db.execute("SELECT data FROM snapshots").fetchone()[0])
"""


def stored(root: Path, scale: int) -> Path:
    """A workspace holding bench_checks' production at ``scale``, compacted and opened."""
    path = root / f"ws-{scale}"
    with Workspace.open(path, create=True, member="bench") as workspace:
        production = workspace.create_production("Bench Saga", **PRODUCTION)
        build(scale=scale, into=production.doc)
        production.compact()
    with Workspace.open(path) as workspace:
        workspace.production()  # the first open walks the snapshot (once)
    return path


def _forget_copies(path: Path) -> None:
    """Drop the workspace's read copies: the next read is a first read after a write."""
    with sqlite3.connect(path / DB) as db:
        db.execute("DELETE FROM read_copies")


_WRITES = iter(range(100_000, 10**9))
#: A write command killed once it has committed, before it closes (a crash).
CRASH = """
import os, signal, sys
from castroom.core.model import Talent
from castroom.core.workspace import Workspace
ws = Workspace.open(sys.argv[1])
ws.production().doc.update(Talent, "T00002", {"rate": int(sys.argv[2])})
os.kill(os.getpid(), signal.SIGKILL)
"""


def _write(path: Path) -> list[str]:
    """A write command: a new rate for one talent (a new value each time)."""
    exe = str(Path(sys.executable).with_name("castroom"))
    return [exe, "-w", str(path), "set", "talent", "T00001", f"rate={next(_WRITES)}"]


def _seconds(
    argv: list[str],
    cold: Path | None = None,
    written: Path | None = None,
    crashed: Path | None = None,
) -> tuple[float, float]:
    """Wall and CPU seconds (user + system) of one fresh process running ``argv``
    (``cold``: with that workspace's read copies dropped first; ``written``: right
    after a write command on that workspace, not timed; ``crashed``: after a write
    killed before it closed)."""
    if cold is not None:
        _forget_copies(cold)
    if written is not None:
        subprocess.run(_write(written), capture_output=True, check=True, env=ENV)
    if crashed is not None:
        killed = [sys.executable, "-c", CRASH, str(crashed), str(next(_WRITES))]
        if subprocess.run(killed, capture_output=True, env=ENV).returncode != -signal.SIGKILL:
            raise SystemExit("the crashing write did not crash")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, check=False, env=ENV)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode not in (0, 1):  # check exits 1 when it finds errors
        raise SystemExit(f"{argv[2:]} failed: {done.stderr.decode()[-500:]}")
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return wall, cpu


def _production_id(path: Path) -> str:
    store = Store(path / DB)
    try:
        return store.productions()[0][0]
    finally:
        store.close()


def _copy_fresh(path: Path, production_id: str) -> bool:
    """Whether the stored read copy holds the production's current log position."""
    store = Store(path / DB)
    try:
        return read_copy.is_current(store, production_id)
    finally:
        store.close()


@contextlib.contextmanager
def _serving(path: Path, root: Path) -> Iterator[tuple[str, dict[str, str]]]:
    """``castroom serve`` on the workspace (read_copy_quiet SERVE_QUIET), with the read
    copy a read keeps (whole): its URL and a write token's header."""
    from castroom.sync.auth import TokenStore

    _forget_copies(path)
    exe = str(Path(sys.executable).with_name("castroom"))
    subprocess.run([exe, "-w", str(path), "list", "talents"], capture_output=True, check=True)
    with Workspace.open(path) as workspace:
        _, token = TokenStore(workspace.store).create("write", name="bench")
    config = path / "config.toml"
    before = config.read_text()
    config.write_text(before + tomli_w.dumps({"server": {"read_copy_quiet": SERVE_QUIET}}))
    log = root / f"serve-{path.name}.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [exe, "-w", str(path), "serve", "--port", "0"],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**ENV, "PYTHONUNBUFFERED": "1"},
        )
    try:
        deadline = time.monotonic() + 120
        while not (found := re.search(r"at (http://127\.0\.0\.1:\d+)", log.read_text())):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"castroom serve did not start: {log.read_text()[-500:]}")
            time.sleep(0.05)
        yield found.group(1), {"Authorization": f"Bearer {token}"}
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=120)
        config.write_text(before)


_PEERS = iter(range(10**9))


def _peer_edit(url: str, auth: dict[str, str], path: Path, production_id: str) -> float:
    """A peer's new talent pushed to the server, and the server's copy patched with it:
    when the push was answered (epoch seconds)."""
    peer = Doc()
    talent_id = f"P{next(_PEERS):05d}"
    peer.get("talents", type=Map)[talent_id] = Map(
        {"id": talent_id, "name": f"Peer {talent_id}", "deleted": False}
    )
    pushed = httpx.post(
        f"{url}/sync/{production_id}/push", headers=auth, content=peer.get_update(), timeout=300
    )
    pushed.raise_for_status()
    answered = time.time()
    deadline = time.monotonic() + 300
    while not _copy_fresh(path, production_id):
        if time.monotonic() > deadline:
            raise SystemExit("the server never patched the read copy")
        time.sleep(0.02)
    return answered


def _after_serve(
    path: Path, root: Path, times: dict[tuple[str, str], list[tuple[float, float]]], label: str
) -> str:
    """Time each command RUNS times on the copy a running server keeps (a peer's edit
    merged and patched in before each); what the server's loop did from its first merge."""
    exe = str(Path(sys.executable).with_name("castroom"))
    production_id = _production_id(path)
    with _serving(path, root) as (url, auth):
        since = None
        for _ in range(RUNS):
            for name, args in COMMANDS.items():
                merged = _peer_edit(url, auth, path, production_id)
                since = merged if since is None else since
                argv = [exe, "-w", str(path), *args]
                times.setdefault((label, f"{name} (after serve)"), []).append(_seconds(argv))
        loop = httpx.get(f"{url}/stats", headers=auth, timeout=60).json()["loop"]
    assert since is not None
    # From the first push's answer on: opening the production (the CRDT's load, on the
    # loop, a known limit) comes before it.
    stalls = [s for s in loop["stalls"] if s["at"] >= since and s["wall_ms"] >= STALL_MS]
    line = f"  serve's loop at {label}: {len(stalls)} stall(s) >= {STALL_MS:.0f} ms after it merged"
    if stalls:
        worst = max(stalls, key=lambda s: s["wall_ms"])
        line += (
            f"; longest {worst['wall_ms']:.0f} ms (on the loop's CPU {worst['cpu_ms']:.0f} ms,"
            f" waiting for a CPU {worst['waiting_ms']:.0f} ms) in {worst['where'] or '?'}"
        )
    return line


def main() -> None:
    exe = str(Path(sys.executable).with_name("castroom"))
    with tempfile.TemporaryDirectory() as tmp:
        sizes = " and ".join(f"{scale * 5},000" for scale in SCALES.values())
        print(f"bench_large: building {sizes} talents (about a minute) ...", flush=True)
        spaces = {label: stored(Path(tmp), scale) for label, scale in SCALES.items()}
        Run = tuple[
            list[str], Path | None, Path | None, Path | None
        ]  # argv, cold, written, crashed
        runs: dict[tuple[str, str], Run] = {}
        for label, path in spaces.items():
            runs[(label, "python -c pass")] = ([sys.executable, "-c", "pass"], None, None, None)
            raw = [sys.executable, "-c", RAW_OPEN, str(path / DB)]
            runs[(label, "raw pycrdt open")] = (raw, None, None, None)
            for name, args in COMMANDS.items():
                argv = [exe, "-w", str(path), *args]
                runs[(label, f"{name} (cold)")] = (argv, path, None, None)
                runs[(label, f"{name} (after set)")] = (argv, None, path, None)
                runs[(label, f"{name} (copy)")] = (argv, None, None, None)
                runs[(label, f"{name} (after crash)")] = (argv, None, None, path)
            runs[(label, "set (write)")] = (_write(path), None, None, None)  # a copy to patch
        times: dict[tuple[str, str], list[tuple[float, float]]] = {key: [] for key in runs}
        for _ in range(RUNS):
            for key, (argv, cold, written, crashed) in runs.items():
                if key[1] == "set (write)":
                    argv = _write(spaces[key[0]])
                times[key].append(_seconds(argv, cold, written, crashed))
        served = [_after_serve(path, Path(tmp), times, label) for label, path in spaces.items()]
    print(
        f"  machine load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores;"
        f" median of {RUNS} interleaved runs, fresh process each; CPU s (wall s)"
    )
    missed = []
    hows = ("cold", "after crash", "after set", "copy", "after serve")
    names = [f"{name} ({how})" for name in COMMANDS for how in hows]
    labels = list(SCALES)
    floor = _medians(times[(labels[-1], "raw pycrdt open")])[1]
    start = _medians(times[(labels[-1], "python -c pass")])[1]
    for name in ("python -c pass", "raw pycrdt open", "set (write)", *names):
        measured = [_medians(times[(label, name)]) for label in labels]
        small, large = measured[0], measured[-1]
        line = f"  {name:<26}" + "".join(
            f" {label} {cpu:5.2f} ({wall:5.2f})  "
            for label, (wall, cpu) in zip(labels, measured, strict=True)
        )
        if len(labels) > 1:
            ratio = max(large[1], 1e-6) / max(small[1], 1e-6)
            exponent = math.log(ratio) / math.log(SCALES[labels[-1]] / SCALES[labels[0]])
            line += f" exponent {exponent:4.2f}"
        if name not in ("python -c pass", "raw pycrdt open", "set (write)"):
            ok = large[1] <= TARGET_S or labels[-1] != "50k"
            missed += [] if ok else [name]
            verdict = "ok" if ok else "MISSED"
            line += (
                f"   {large[1] / floor:4.2f}x raw   {large[1] / start:5.1f}x pass"
                f"   target <= {TARGET_S} s [{verdict}]"
            )
        print(line)
    for line in served:
        print(line)
    if missed:
        sys.exit(1)


def _medians(runs: list[tuple[float, float]]) -> tuple[float, float]:
    """Median (wall, CPU) seconds."""
    return statistics.median(w for w, _ in runs), statistics.median(c for _, c in runs)


if __name__ == "__main__":
    main()
