"""Live load: many Yjs peers editing at once, against several servers in the same run.

The peers are spread over several Node load-generator processes
(tests/interop/loadgen.mjs; at most BENCH_LIVE_PEERS_PER_GEN peers each, default 25, and
at most BENCH_LIVE_MAX_GENS processes, default 4) driven in step from here, so that 100
peers really make 5 edits a second each. Every process times on the machine's one clock
(epoch milliseconds), so an edit's edit-to-all-peers latency is the time until the
slowest peer of its production, in whichever process, has it. Each peer makes RATE small
edits a second for SECONDS (field edits, Y.Text edits, or both alternating):

- N peers on one production, N = 20, 50, 100;
- 50 productions x 4 peers.

Servers, each a fresh real process on 127.0.0.1 for each run: ``castroom serve``
(y-websocket at /sync; and again with the peers on its /hocuspocus endpoint, "castroom
/hp"), the stock Node relay ``@y/websocket-server`` 0.1.1, a stock Hocuspocus 4.7.0
instance and, where ``redis-server`` is installed, two Hocuspocus instances behind one
Redis (``@hocuspocus/extension-redis``) with the peers spread over both (CPU and RSS are
then both instances' sum). The servers take turns within each case (interleaved; with
several rounds the order rotates, and the medians are printed).

Printed per row: server CPU (its own processes, during the timed phase, % of one core),
RSS, p50/p99 latency, failed connections, undelivered edits, the rate the generators
achieved (edits a second per peer; a row whose generators fell behind the plan by more
than 5 % is flagged, as it measured a lighter load than asked) and the busiest
generator's CPU and tick lateness. Then castroom's ratios. Targets: issue 10, castroom
within 2x the Node relay's CPU at every N, p99 <= 100 ms at N = 50, no failures; issue
14, castroom's CPU and p99 within 1.2x of Hocuspocus's. ``main()`` exits 1 when one is
missed.

Parameters (environment): BENCH_LIVE_SECONDS (default 10; the issues' figure is 20),
BENCH_LIVE_KIND ``mixed`` (default: a peer's edits alternate between setting a talent's
agent and appending to its notes, a Y.Text), ``field`` or ``text``; BENCH_LIVE_CASES,
e.g. ``20,50`` or ``50x4``, to run only some; BENCH_LIVE_ROUNDS (default 1);
BENCH_LIVE_SERVERS, e.g. ``castroom,relay``, to run only some (castroom, castroom-hp,
relay, hocuspocus, cluster); BENCH_LIVE_BEFORE, the path of another checkout's
``castroom`` executable (its venv's), measured in the same run as "castroom before", or
several as ``LABEL=PATH,LABEL=PATH`` (rows "castroom LABEL");
BENCH_LIVE_WINDOW, seconds: castroom serve again with that ``[server] flush_window``;
BENCH_LIVE_VARIANTS, castroom serve again with other ``[server]`` settings, e.g.
``no-watch:loop_watch=false;no-ckpt:checkpoint_every=0`` (rows "castroom no-watch", ...;
BENCH_LIVE_SERVERS names them by label).
"""

from __future__ import annotations

import json
import math
import os
import queue
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

NODE_DIR = Path(__file__).resolve().parent.parent / "tests" / "interop"
RATE = 5
SECONDS = float(os.environ.get("BENCH_LIVE_SECONDS", "10"))
KIND = os.environ.get("BENCH_LIVE_KIND", "mixed")
ROUNDS = int(os.environ.get("BENCH_LIVE_ROUNDS", "1"))
PEERS_PER_GEN = int(os.environ.get("BENCH_LIVE_PEERS_PER_GEN", "25"))
MAX_GENS = int(os.environ.get("BENCH_LIVE_MAX_GENS", "4"))
BEFORE = os.environ.get("BENCH_LIVE_BEFORE", "")
WINDOW = os.environ.get("BENCH_LIVE_WINDOW", "")
VARIANTS = os.environ.get("BENCH_LIVE_VARIANTS", "")
CASES = [(1, 20), (1, 50), (1, 100), (50, 4)]  # (productions, peers per production)
CLK_TCK = os.sysconf("SC_CLK_TCK")
#: A row whose generators made fewer edits a second than this share of RATE is flagged.
HELD = 0.95
#: Seconds each phase of a run may take before it counts as failed.
PHASE_TIMEOUT = 90.0


@dataclass
class Result:
    server: str
    cpu: float  # percent of one core, during the timed phase
    rss_mb: float
    p50: float | None
    p99: float | None
    failed: int
    edits: int
    undelivered: int
    rate: float  # edits a second per peer, as achieved
    gen_cpu: float  # the busiest generator process, % of one core
    gen_lag: float  # the generators' worst p99 tick lateness (ms)
    #: castroom only: its event loop's stalls during the timed phase (GET /stats).
    stalls: list[dict[str, Any]] = field(default_factory=list)


def _cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime


def _cpu(pids: tuple[int, ...]) -> float:
    return sum(_cpu_seconds(pid) for pid in pids)


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class _Process:
    """A server process, stopped by its PID; ``ready`` parses its first useful line."""

    pids: tuple[int, ...]

    def __init__(self, args: list[str], cwd: Path | None, ready: re.Pattern[str]) -> None:
        self.proc = subprocess.Popen(
            args, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
        )
        assert self.proc.stdout is not None
        deadline = time.monotonic() + 30
        for line in self.proc.stdout:
            found = ready.search(line)
            if found:
                self.port = int(found.group(1))
                break
            if time.monotonic() > deadline:
                break
        else:
            raise RuntimeError(f"{args[0]} did not start")
        # Keep draining its output so it never blocks on a full pipe.
        threading.Thread(target=self.proc.stdout.read, daemon=True).start()
        self.pids = (self.proc.pid,)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)


#: Run by the castroom under test's own Python (this checkout's, or BENCH_LIVE_BEFORE's),
#: so a workspace is always made by the code that serves it.
_SETUP = """
import json, sys
from pathlib import Path
from castroom.core.workspace import CONFIG_NAME, Workspace
from castroom.sync.auth import TokenStore
path, count, extra = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
with Workspace.open(path, member="bench") as ws:
    ids = [str(ws.create_production(f"Load {i}").id) for i in range(count)]
    _, token = TokenStore(ws.store).create("write", name="bench")
# Every load peer uses this one token: lift the per-token cap of live peers (32 by
# default) as a studio would for a shared load-test token.
with (path / CONFIG_NAME).open("a", encoding="utf-8") as config:
    config.write("\\n[server]\\nmax_peers_per_token = 1000\\nmax_peers = 1000\\n" + extra)
print(json.dumps({"ids": ids, "token": token}))
"""


@dataclass
class _Served:
    """A server started for one run, and how the peers reach it."""

    server: Any  # _Process or _Cluster
    protocol: str
    url: str
    rooms: list[str]
    token: str = ""
    #: castroom's GET /stats (its event loop's stalls), else "".
    stats: str = ""


def _castroom(
    folder: Path, productions: int, endpoint: str, castroom: Path, config: str = ""
) -> _Served:
    python = castroom.with_name("python")
    path = folder / "workspace"
    made = subprocess.run(
        [str(python), "-c", _SETUP, str(path), str(productions), config],
        capture_output=True,
        text=True,
        check=True,
    )
    setup = json.loads(made.stdout.strip().splitlines()[-1])
    server = _Process(
        [str(castroom), "--workspace", str(path), "serve", "--port", "0"],
        None,
        re.compile(r"at http://127\.0\.0\.1:(\d+)"),
    )
    protocol = "hocuspocus" if endpoint == "hocuspocus" else "y-websocket"
    url = f"ws://127.0.0.1:{server.port}/{endpoint}"
    stats = f"http://127.0.0.1:{server.port}/stats"
    return _Served(server, protocol, url, setup["ids"], setup["token"], stats)


def _node(script: str, *extra: str) -> _Process:
    return _Process(
        ["node", script, "--port", "0", "--lifetime", "3600000", *extra],
        NODE_DIR,
        re.compile(r'"port":\s*(\d+)'),
    )


def _rooms(productions: int) -> list[str]:
    return [f"load-{i}" for i in range(productions)]


def _relay(folder: Path, productions: int) -> _Served:
    relay = _node("relay.mjs")
    return _Served(relay, "y-websocket", f"ws://127.0.0.1:{relay.port}/sync", _rooms(productions))


def _hocuspocus(folder: Path, productions: int) -> _Served:
    hocus = _node("hocuspocus.mjs")
    return _Served(hocus, "hocuspocus", f"ws://127.0.0.1:{hocus.port}", _rooms(productions))


class _Cluster:
    """Two Hocuspocus instances behind one throwaway redis-server (no persistence)."""

    def __init__(self, folder: Path) -> None:
        port = _free_port()
        self.redis_proc = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(folder),
                "--daemonize",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        _wait_port(port)
        self.instances = [
            _node("hocuspocus.mjs", "--redis-port", str(port), "--name", name)
            for name in ("one", "two")
        ]
        self.pids = tuple(i.proc.pid for i in self.instances)
        self.url = ",".join(f"ws://127.0.0.1:{i.port}" for i in self.instances)

    def stop(self) -> None:
        for instance in self.instances:
            instance.stop()
        self.redis_proc.terminate()
        self.redis_proc.wait(timeout=10)


def _cluster(folder: Path, productions: int) -> _Served:
    cluster = _Cluster(folder)
    return _Served(cluster, "hocuspocus", cluster.url, _rooms(productions))


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_port(port: int, timeout: float = 10) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("redis-server did not start")


# -- the load generators -------------------------------------------------------------------


def _plan(rooms: list[str], peers: int) -> list[tuple[list[str], int, int]]:
    """How the peers are spread over generator processes: (rooms, peers per room in this
    process, first peer number). A large room is split over processes; small rooms are
    grouped whole."""
    total = len(rooms) * peers
    gens = max(1, min(MAX_GENS, math.ceil(total / PEERS_PER_GEN)))
    if len(rooms) == 1:
        sizes = [peers // gens + (1 if i < peers % gens else 0) for i in range(gens)]
        starts = [sum(sizes[:i]) for i in range(gens)]
        return [(rooms, size, start) for size, start in zip(sizes, starts, strict=True) if size]
    groups = [rooms[i::gens] for i in range(gens)]
    return [(group, peers, 0) for group in groups if group]


class _Generator:
    """One loadgen.mjs process: commands on stdin, JSON events on stdout (a thread reads
    them into a queue, so every wait here is bounded)."""

    def __init__(self, served: _Served, rooms: list[str], peers: int, first: int, phase: float):
        args = ["node", "loadgen.mjs", "--protocol", served.protocol, "--url", served.url]
        args += ["--rooms", ",".join(rooms), "--peers", str(peers), "--first", str(first)]
        args += ["--rate", str(RATE), "--seconds", str(SECONDS), "--kind", KIND]
        args += ["--phase", f"{phase:.3f}"]
        if served.token:
            args += ["--token", served.token]
        self.proc = subprocess.Popen(
            args,
            cwd=NODE_DIR,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=open(os.environ.get("BENCH_LIVE_GEN_LOG", os.devnull), "a"),  # noqa: SIM115
            text=True,
        )
        self.events: queue.Queue[dict[str, Any] | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            try:
                self.events.put(json.loads(line))
            except ValueError:
                continue
        self.events.put(None)

    def tell(self, **command: Any) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(command) + "\n")
        self.proc.stdin.flush()

    def expect(self, key: str, value: str | None = None) -> dict[str, Any]:
        deadline = time.monotonic() + PHASE_TIMEOUT
        while True:
            try:
                item = self.events.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                raise RuntimeError(f"load generator: no {value or key} in time") from None
            if item is None:
                code = self.proc.wait(timeout=10)
                raise RuntimeError(f"load generator exited ({code}) before {value or key}")
            if key in item and (value is None or item[key] == value):
                return item

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)


def _percentile(values: list[float], share: float) -> float | None:
    """Nearest rank."""
    if not values:
        return None
    return values[max(0, math.ceil(len(values) * share) - 1)]


def _join(summaries: list[dict[str, Any]], live: dict[str, int]) -> tuple[list[float], int]:
    """Per edit made anywhere: its latency once every other live peer of its room (in any
    process) has it. Returns (latencies, undelivered)."""
    got: dict[str, list[float]] = {}
    for summary in summaries:
        for key, (count, at) in summary["got"].items():
            entry = got.setdefault(key, [0, 0.0])
            entry[0] += count
            entry[1] = max(entry[1], at)
    latencies, undelivered = [], 0
    for summary in summaries:
        for sender, times in summary["made"].items():
            room = sender.split("/", 1)[0]
            want = live.get(room, 0) - 1
            for seq, made in enumerate(times, start=1):
                if want <= 0:
                    latencies.append(0.0)
                    continue
                count, at = got.get(f"{sender}:{seq}", (0, 0.0))
                if count >= want:
                    latencies.append(max(0.0, at - made))
                else:
                    undelivered += 1
    latencies.sort()
    return latencies, undelivered


def _load(served: _Served, peers: int) -> Result:
    """One run: the generators connect, sync, edit in step for SECONDS, drain."""
    plan = _plan(served.rooms, peers)
    gens = [
        _Generator(served, rooms, count, first, phase=i / len(plan))
        for i, (rooms, count, first) in enumerate(plan)
    ]
    server_pids = served.server.pids
    try:
        live: dict[str, int] = {}
        for gen in gens:
            for room, count in gen.expect("event", "synced")["live"].items():
                live[room] = live.get(room, 0) + count
        for gen in gens:
            gen.tell(cmd="await", talents=live)
        for gen in gens:
            gen.expect("event", "ready")
        time.sleep(0.5)
        start_in = 0.3
        gen_pids = tuple(g.proc.pid for g in gens)
        gen_start = {pid: _cpu_seconds(pid) for pid in gen_pids}
        cpu_start = _cpu(server_pids)
        wall_start = time.monotonic() + start_in
        timed_from = time.time() + start_in
        for gen in gens:
            gen.tell(cmd="go", at=timed_from * 1000)
        ends = [gen.expect("event", "end") for gen in gens]
        wall = max(0.001, time.monotonic() - wall_start)
        stalls = _stalls(served, timed_from, time.time())
        cpu = 100 * (_cpu(server_pids) - cpu_start) / wall
        gen_cpu = max(100 * (_cpu_seconds(p) - gen_start[p]) / wall for p in gen_pids)
        rss = sum(_rss_mb(pid) for pid in server_pids)
        seqs: dict[str, dict[str, int]] = {}
        for end in ends:
            for room, last in end["seqs"].items():
                seqs.setdefault(room, {}).update(last)
        for gen in gens:
            gen.tell(cmd="drain", seqs=seqs)
        summaries = [gen.expect("summary")["summary"] for gen in gens]
    finally:
        for gen in gens:
            gen.stop()
    latencies, undelivered = _join(summaries, live)
    edits = sum(s["edits"] for s in summaries)
    elapsed = max(max(e["elapsed"] for e in ends) / 1000, SECONDS)
    live_peers = sum(s["live"] for s in summaries)
    return Result(
        server="",
        cpu=cpu,
        rss_mb=rss,
        p50=_percentile(latencies, 0.50),
        p99=_percentile(latencies, 0.99),
        failed=sum(s["failed"] for s in summaries) + sum(s["peers"] - s["live"] for s in summaries),
        edits=edits,
        undelivered=undelivered,
        rate=edits / (live_peers * elapsed) if live_peers else 0.0,
        gen_cpu=gen_cpu,
        gen_lag=max(e["lag_p99"] for e in ends),
        stalls=stalls,
    )


def _stalls(served: _Served, since: float, until: float) -> list[dict[str, Any]]:
    """castroom's event-loop stalls that began in [since, until] (GET /stats)."""
    if not served.stats:
        return []
    import httpx

    try:
        answer = httpx.get(
            served.stats, headers={"Authorization": f"Bearer {served.token}"}, timeout=30
        )
        if answer.status_code == 404:  # a castroom from before GET /stats
            return [{"error": "this castroom has no GET /stats"}]
        answer.raise_for_status()
        stalls: list[dict[str, Any]] = answer.json()["loop"]["stalls"]
    except (httpx.HTTPError, KeyError, ValueError) as exc:
        return [{"error": f"GET /stats: {type(exc).__name__} {exc}".splitlines()[0]}]
    return [s for s in stalls if since <= s["at"] <= until]


# -- the run ----------------------------------------------------------------------------------


@dataclass
class _Kind:
    name: str
    start: Callable[[Path, int], _Served]
    results: list[Result] = field(default_factory=list)


def _variants(here: Path) -> list[_Kind]:
    """castroom serve with other ``[server]`` settings (BENCH_LIVE_VARIANTS)."""
    kinds = []
    for item in filter(None, (v.strip() for v in VARIANTS.split(";"))):
        label, _, settings = item.partition(":")
        config = "".join(
            f"{k.strip()} = {v.strip()}\n"
            for k, _, v in (pair.partition("=") for pair in settings.split(","))
        )
        kinds.append(_Kind(f"castroom {label}", _starter(here, config)))
    return kinds


def _starter(castroom: Path, config: str = "") -> Callable[[Path, int], _Served]:
    """Starts that castroom serve, with those extra ``[server]`` settings."""
    return lambda folder, productions: _castroom(folder, productions, "sync", castroom, config)


def _befores() -> list[tuple[str, Path]]:
    """BENCH_LIVE_BEFORE: ``PATH`` ("castroom before") or ``LABEL=PATH,...`` ("castroom
    LABEL" each), other checkouts' castroom executables."""
    found = []
    for item in filter(None, (i.strip() for i in BEFORE.split(","))):
        label, _, path = item.rpartition("=")
        found.append((f"castroom {label or 'before'}", Path(path)))
    return found


def _servers() -> list[_Kind]:
    here = Path(sys.executable).with_name("castroom")
    kinds = [
        _Kind("castroom serve", lambda d, n: _castroom(d, n, "sync", here)),
        *_variants(here),
        _Kind("castroom /hp", lambda d, n: _castroom(d, n, "hocuspocus", here)),
    ]
    if WINDOW:
        window = f"flush_window = {float(WINDOW)}\n"
        kinds.insert(
            1,
            _Kind(
                f"castroom {float(WINDOW) * 1000:g}ms",
                lambda d, n: _castroom(d, n, "sync", here, window),
            ),
        )
    for at, (label, path) in enumerate(_befores(), start=1):
        kinds.insert(at, _Kind(label, _starter(path)))
    kinds += [_Kind("node relay", _relay), _Kind("hocuspocus", _hocuspocus)]
    if shutil.which("redis-server"):
        kinds.append(_Kind("hocuspocus x2", _cluster))
    wanted = os.environ.get("BENCH_LIVE_SERVERS")
    if wanted:
        names = {
            "castroom": "castroom serve",
            "castroom-hp": "castroom /hp",
            "before": "castroom before",
            "window": f"castroom {float(WINDOW or 0) * 1000:g}ms",
            "relay": "node relay",
            "hocuspocus": "hocuspocus",
            "cluster": "hocuspocus x2",
            **{k.name.removeprefix("castroom "): k.name for k in _variants(here)},
            **{label.removeprefix("castroom "): label for label, _ in _befores()},
        }
        picked = {names.get(w.strip(), w.strip()) for w in wanted.split(",")}
        # The ratios need their baselines.
        picked |= {"castroom serve", "node relay", "hocuspocus"}
        kinds = [k for k in kinds if k.name in picked]
    return kinds


def _run_once(kind: _Kind, productions: int, peers: int) -> Result:
    with tempfile.TemporaryDirectory(prefix="castroom-bench-live-") as tmp:
        served = kind.start(Path(tmp), productions)
        try:
            result = _load(served, peers)
        except RuntimeError as exc:
            print(f"    {kind.name}: {exc}", flush=True)
            total = productions * peers
            result = Result("", 0.0, 0.0, None, None, total, 0, 0, 0.0, 0.0, 0.0)
        finally:
            served.server.stop()
    result.server = kind.name
    return result


def _median(results: list[Result]) -> Result:
    """The median of each figure over the rounds (the worst count of failures)."""
    if len(results) == 1:
        return results[0]

    def mid(values: list[float | None]) -> float | None:
        known = [v for v in values if v is not None]
        return statistics.median(known) if known else None

    return Result(
        server=results[0].server,
        cpu=statistics.median(r.cpu for r in results),
        rss_mb=statistics.median(r.rss_mb for r in results),
        p50=mid([r.p50 for r in results]),
        p99=mid([r.p99 for r in results]),
        failed=max(r.failed for r in results),
        edits=int(statistics.median(r.edits for r in results)),
        undelivered=max(r.undelivered for r in results),
        rate=min(r.rate for r in results),
        gen_cpu=max(r.gen_cpu for r in results),
        gen_lag=max(r.gen_lag for r in results),
        stalls=[s for r in results for s in r.stalls],
    )


def _run_case(productions: int, peers: int) -> list[Result]:
    kinds = _servers()
    for round_ in range(ROUNDS):
        # Interleaved: every server takes its turn in each round, in a rotating order.
        order = kinds[round_ % len(kinds) :] + kinds[: round_ % len(kinds)]
        for kind in order:
            kind.results.append(_run_once(kind, productions, peers))
    return [_median(kind.results) for kind in kinds]


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f} ms" if value >= 10 else f"{value:.1f} ms"


def _ratio(a: float | None, b: float | None) -> float:
    if a is None or not b:
        return float("inf")
    return a / b


def _print(productions: int, peers: int, results: list[Result]) -> bool:
    label = f"{peers} peers" if productions == 1 else f"{productions} productions x {peers} peers"
    rounds = f", median of {ROUNDS} rounds" if ROUNDS > 1 else ""
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(
        f"  {label}, {RATE} {KIND} edits/s each for {SECONDS:g} s{rounds}"
        f" (load average after: {load})",
        flush=True,
    )
    for r in results:
        behind = "" if r.rate >= HELD * RATE else "  GENERATORS FELL BEHIND"
        print(
            f"    {r.server:<15} CPU {r.cpu:5.1f}%  RSS {r.rss_mb:5.0f} MB"
            f"  p50 {_ms(r.p50):>8}  p99 {_ms(r.p99):>8}  failed {r.failed}"
            f"  undelivered {r.undelivered}/{r.edits}  rate {r.rate:.2f}/s"
            f"  (gen CPU {r.gen_cpu:.0f}%, lag p99 {r.gen_lag:.0f} ms){behind}",
            flush=True,
        )
        if r.server.startswith("castroom"):
            print(f"      {_describe_stalls(r.stalls)}", flush=True)
    by_name = {r.server: r for r in results}
    ours, relay, hocus = by_name["castroom serve"], by_name["node relay"], by_name["hocuspocus"]
    marks = {True: "ok", False: "MISSED"}
    cpu_relay = _ratio(ours.cpu, relay.cpu)
    ok_cpu = cpu_relay <= 2.0
    ok_fail = ours.failed == 0 and ours.undelivered == 0
    at_50 = productions == 1 and peers == 50
    ok_p99 = not at_50 or (ours.p99 is not None and ours.p99 <= 100)
    held = all(r.rate >= HELD * RATE for r in results)
    print(
        f"    castroom / node relay: CPU {cpu_relay:.2f}x (<= 2x) [{marks[ok_cpu]}],"
        f" p99 {_ratio(ours.p99, relay.p99):.2f}x; failures [{marks[ok_fail]}]"
        + (f"; p99 <= 100 ms [{marks[ok_p99]}]" if at_50 else ""),
        flush=True,
    )
    ok_hocus = True
    for name in ("castroom serve", "castroom /hp"):
        if name not in by_name:
            continue
        mine = by_name[name]
        cpu, p99 = _ratio(mine.cpu, hocus.cpu), _ratio(mine.p99, hocus.p99)
        ok = cpu <= 1.2 and p99 <= 1.2
        ok_hocus &= ok
        print(
            f"    {name} / hocuspocus: CPU {cpu:.2f}x, p99 {p99:.2f}x (<= 1.2x) [{marks[ok]}]",
            flush=True,
        )
    for label, _ in _befores():
        before = by_name[label]
        print(
            f"    castroom serve / {label}: CPU {_ratio(ours.cpu, before.cpu):.2f}x,"
            f" p99 {_ratio(ours.p99, before.p99):.2f}x",
            flush=True,
        )
    if not held:
        print("    (a row's generators fell behind: that row measured a lighter load)")
    return ok_cpu and ok_fail and ok_p99 and ok_hocus


def _describe_stalls(stalls: list[dict[str, Any]]) -> str:
    """The worst event-loop stall of a castroom row, and why (sync/loop_watch.py)."""
    if stalls and "error" in stalls[0]:
        return f"loop: no figures ({stalls[0]['error']})"
    if not stalls:
        return "loop: no stall over 100 ms while timed"
    worst = max(stalls, key=lambda s: s["wall_ms"])
    blocked = max(0.0, worst["wall_ms"] - worst["cpu_ms"] - worst["waiting_ms"])
    where = f" in {worst['where']}" if worst["where"] else ""
    return (
        f"loop: {len(stalls)} stall(s) over 100 ms while timed; the worst {worst['wall_ms']:.0f} ms"
        f" (its CPU {worst['cpu_ms']:.0f} ms, waiting for a CPU {worst['waiting_ms']:.0f} ms,"
        f" blocked {blocked:.0f} ms){where}"
    )


def _cases() -> list[tuple[int, int]]:
    wanted = os.environ.get("BENCH_LIVE_CASES")
    if not wanted:
        return CASES
    picked = []
    for item in wanted.split(","):
        productions, _, peers = item.strip().partition("x")
        picked.append((int(productions), int(peers)) if peers else (1, int(productions)))
    return picked


def _durable_cost(synchronous: str, batch: int, updates: int = 400) -> float:
    """Wall microseconds per peer update stored by a real SQLite store, ``batch`` updates
    per commit (the server commits once per event-loop turn)."""
    from castroom.core.storage import Store

    with tempfile.TemporaryDirectory(prefix="castroom-bench-durable-") as tmp:
        store = Store(Path(tmp) / "castroom.db", synchronous=synchronous)
        changes = {("talents", "t"): {"agent"}}
        started = time.perf_counter()
        for first in range(0, updates, batch):
            with store.batch():
                for n in range(first, first + batch):
                    data = b"\x01" * 40 + str(n).encode()
                    store.append("p", data, member="m", device="d", origin="sync", changes=changes)
        elapsed = time.perf_counter() - started
        store.close()
    return elapsed / updates * 1e6


def _print_durable() -> None:
    """What "durable before acknowledged" costs: a commit per update against one commit
    per turn, with synchronous=NORMAL (survives a crash of the process; the default) and
    FULL (an fsync per commit: survives power loss)."""
    for mode in ("NORMAL", "FULL"):
        # The best of three: the machine may be shared, and this is about the disk.
        one, ten, fifty = (min(_durable_cost(mode, b) for _ in range(3)) for b in (1, 10, 50))
        print(
            f"  durable ({mode}): {one:.0f} us per update committed alone,"
            f" {ten:.0f} us in turns of 10, {fifty:.0f} us in turns of 50",
            flush=True,
        )


def main() -> None:
    _print_durable()
    if shutil.which("node") is None or not (NODE_DIR / "node_modules" / "@hocuspocus").is_dir():
        print(
            "  skipped: needs node and tests/interop/node_modules (make tests/interop/node_modules)"
        )
        return
    all_ok = True
    for productions, peers in _cases():
        all_ok &= _print(productions, peers, _run_case(productions, peers))
    if not all_ok:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
