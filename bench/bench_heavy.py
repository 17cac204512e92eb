"""A heavy merge on a live server (`castroom serve` in a subprocess): one writer sends
production A an update of ENTRIES new entries (22 bytes each, as the hostile repro), and
while it merges, /health is asked every 20 ms and production B gets an edit pushed and
read back every 100 ms.

Printed, with the baseline (the same requests with nothing merging) measured in the same
run: the merge's wall time; the longest /health answer and B round trip during it, as a
ratio of the baseline; and the server's peak memory. Target: no /health answer and no
B round trip during the merge takes longer than 1 s (before: the merge ran on the event
loop, so the first answer came only when it was done). Past yupdate.MAX_MAP_KEYS (100,000
keys in one map) the update is refused instead: then the time to the refusal is printed.

``python -m bench heavy`` (ENTRIES from CASTROOM_BENCH_HEAVY, default 100,000, in as many
collections as CASTROOM_BENCH_HEAVY_MAPS says, default 1).
BENCH_HEAVY_BEFORE, the path of another checkout's ``castroom`` executable (its venv's),
is measured first in the same run, as "before" (the workspace made by this checkout).
``main()`` exits with status 1 when a target is missed (by this checkout).
"""

from __future__ import annotations

import contextlib
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
from pycrdt import Doc, Map, Text
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from castroom.core.model import COLLECTIONS
from castroom.core.workspace import Workspace
from castroom.core.yupdate import decode_state_vector, walk_update
from castroom.sync import protocol
from castroom.sync.auth import TokenStore

ENTRIES = int(os.environ.get("CASTROOM_BENCH_HEAVY", "100000"))
MAPS = int(os.environ.get("CASTROOM_BENCH_HEAVY_MAPS", "1"))
BEFORE = os.environ.get("BENCH_HEAVY_BEFORE", "")
TARGET_S = 1.0


def heavy_update(entries: int, maps: int = 1) -> bytes:
    """``entries`` keys in one update, taking turns over ``maps`` collections (their
    tables then grow in the same few structs)."""
    doc = Doc()
    names = ["talents", *(name for name in COLLECTIONS if name != "talents")][:maps]
    collections = [doc.get(name, type=Map) for name in names]
    with doc.transaction():
        for i in range(entries):
            collections[i % len(collections)][f"T{i:07d}"] = "x"
    return doc.get_update()


@contextlib.contextmanager
def serving(
    path: Path, log: Path, exe: str | None = None
) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """``castroom serve`` on the workspace ``path`` in a subprocess (``exe``: another
    checkout's; default this one's), with its URL once it listens; stopped afterwards."""
    exe = exe or str(Path(sys.executable).with_name("castroom"))
    with log.open("w") as out:
        server = subprocess.Popen(
            [exe, "--workspace", str(path), "serve", "--port", "0"],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    try:
        deadline = time.monotonic() + 60
        while not (found := re.search(r"at (http://127\.0\.0\.1:\d+)", log.read_text())):
            assert time.monotonic() < deadline and server.poll() is None, log.read_text()
            time.sleep(0.05)
        yield server, found.group(1)
    finally:
        server.terminate()
        try:
            server.wait(60)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(10)


def _peak_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    found = re.search(r"VmHWM:\s+(\d+) kB", status)
    return int(found.group(1)) / 1024 if found else float("nan")


class _Probe:
    """Times /health and a round trip through production B, over and over."""

    def __init__(self, url: str, pid: str, token: str) -> None:
        self.url, self.pid = url, pid
        self.headers = {"Authorization": f"Bearer {token}"}
        self.client = httpx.Client(timeout=600)
        self.n = 0

    def health(self) -> float:
        start = time.perf_counter()
        assert self.client.get(f"{self.url}/health").status_code == 200
        return time.perf_counter() - start

    def round_trip(self) -> float:
        self.n += 1
        peer = Doc()
        peer.get("notes", type=Text).insert(0, f"edit {self.n}")
        start = time.perf_counter()
        pushed = self.client.post(
            f"{self.url}/sync/{self.pid}/push", headers=self.headers, content=peer.get_update()
        )
        pulled = self.client.post(
            f"{self.url}/sync/{self.pid}/pull", headers=self.headers, content=b"\x00"
        )
        assert pushed.status_code == 200 and pulled.status_code == 200
        return time.perf_counter() - start


def _refusal(conn: ClientConnection) -> str | None:
    """Waits 50 ms for the socket to close; the close reason if it did."""
    try:
        while True:
            conn.recv(timeout=0.05)  # the server's own sync frames
    except TimeoutError:
        return None
    except ConnectionClosed as closed:
        return f"{closed.rcvd.code} {closed.rcvd.reason}" if closed.rcvd else "closed"


def _during(probe: _Probe, done: threading.Event) -> tuple[list[float], list[float]]:
    health: list[float] = []
    trips: list[float] = []
    next_trip = 0.0
    while not done.is_set():
        health.append(probe.health())
        if time.monotonic() >= next_trip:
            trips.append(probe.round_trip())
            next_trip = time.monotonic() + 0.1
        time.sleep(0.02)
    return health, trips


def run(entries: int, exe: str | None = None) -> bool:
    with tempfile.TemporaryDirectory(prefix="bench-heavy-") as folder:
        path = Path(folder) / "ws"
        with Workspace.open(path, member="bench") as ws:
            a = ws.create_production("A").id
            b = ws.create_production("B").id
            token = TokenStore(ws.store).create("write")[1]
        with serving(path, Path(folder) / "serve.log", exe) as (server, url):
            assert a and b
            probe = _Probe(url, b, token)
            base_health = statistics.median(probe.health() for _ in range(20))
            base_trip = statistics.median(probe.round_trip() for _ in range(10))
            update = heavy_update(entries, MAPS)
            wanted = walk_update(update).clocks
            done = threading.Event()
            result: dict[str, float] = {}
            refused: list[str] = []

            def merge() -> None:
                ws_url = url.replace("http", "ws", 1) + f"/sync/{a}?token={token}"
                try:
                    with connect(ws_url, proxy=None, max_size=None, open_timeout=600) as conn:
                        start = time.perf_counter()
                        conn.send(protocol.update_frame(update))
                        # GET state answers once the merge is done (it waits for it); asked
                        # before the server has read the 11 MB frame, it answers at once,
                        # so ask until the state holds the update, or the server refuses
                        # it (closing the socket, the limit in its reason).
                        while True:
                            if (reason := _refusal(conn)) is not None:
                                result["merge"] = time.perf_counter() - start
                                refused.append(reason)
                                return
                            state = httpx.get(
                                f"{url}/sync/{a}/state", headers=probe.headers, timeout=3600
                            )
                            held = decode_state_vector(state.content)
                            if all(held.get(c, 0) >= end for c, end in wanted.items()):
                                break
                        result["merge"] = time.perf_counter() - start
                        result["status"] = state.status_code
                finally:
                    done.set()

            merge_from = time.time()
            worker = threading.Thread(target=merge)
            worker.start()
            health, trips = _during(probe, done)
            worker.join()
            peak = _peak_mb(server.pid)
            stalls = [
                stall
                for stall in probe.client.get(f"{url}/stats", headers=probe.headers).json()["loop"][
                    "stalls"
                ]
                if stall["at"] >= merge_from
            ]
    worst_health, worst_trip = max(health), max(trips) if trips else float("nan")
    ok = worst_health <= TARGET_S and worst_trip <= TARGET_S
    done_as = f"refused ({refused[0]})" if refused else "merged"
    spread = f" over {MAPS} collections" if MAPS > 1 else ""
    print(
        f"  {entries:,}-entry update{spread} ({len(update):,} bytes) {done_as}"
        f" in {result['merge']:.1f} s"
    )
    print(
        f"  /health during it: longest {worst_health * 1000:.0f} ms, median"
        f" {statistics.median(health) * 1000:.0f} ms over {len(health)} asks"
        f" (baseline {base_health * 1000:.1f} ms; ratio {worst_health / base_health:.0f}x)"
    )
    print(
        f"  B edit round trip during it: longest {worst_trip * 1000:.0f} ms, median"
        f" {statistics.median(trips) * 1000:.0f} ms over {len(trips)}"
        f" (baseline {base_trip * 1000:.1f} ms; ratio {worst_trip / base_trip:.0f}x)"
    )
    print(f"  server peak memory {peak:.0f} MB")
    if stalls:  # the loop watch's (GET /stats): where the longest stall's time went
        worst = max(stalls, key=lambda stall: stall["wall_ms"])
        blocked = max(0.0, worst["wall_ms"] - worst["cpu_ms"] - worst["waiting_ms"])
        print(
            f"  event loop: {len(stalls)} stall(s) over 100 ms; the longest {worst['wall_ms']:.0f}"
            f" ms (on its CPU {worst['cpu_ms']:.0f} ms, waiting for a CPU"
            f" {worst['waiting_ms']:.0f} ms, blocked {blocked:.0f} ms) in {worst['where']}"
        )
    else:
        print("  event loop: no stall over 100 ms")
    print(f"  target: both <= {TARGET_S:g} s [{'ok' if ok else 'MISSED'}]", flush=True)
    return ok


def main() -> None:
    if BEFORE:
        print(f"  before ({BEFORE}):", flush=True)
        run(ENTRIES, BEFORE)
        print("  this checkout:", flush=True)
    if not run(ENTRIES):
        sys.exit(1)


if __name__ == "__main__":
    main()
