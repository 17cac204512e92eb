"""Sync benchmarks: convergence over HTTP, and live fan-out over WebSocket.

Targets (issue 4), each printed with the raw pycrdt baseline measured in the same run:

- two peers with 10,000 divergent edits each converge over HTTP on loopback (a real
  ``castroom serve`` process, the real client ``sync_http``) in <= 3x the raw pycrdt
  exchange time + 50 ms, with bytes on the wire <= 1.2x the raw update size. The raw
  exchange is two pycrdt Docs holding the same content trading state vectors and missing
  updates in memory; castroom's time also covers HTTP, checking every byte before merging,
  and making both sides durable in SQLite.
- a live edit reaches 20 connected WebSocket peers in <= 100 ms at the 99th percentile:
  per edit, the time until the slowest of the 20 receivers has it; p99 over the edits.

``main()`` exits with status 1 when a target is missed.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from pycrdt import Doc, Map

from castroom.core import model
from castroom.core.workspace import Workspace
from castroom.sync import protocol
from castroom.sync.auth import TokenStore

EDITS = 10_000
TALENTS = 2_000
PEERS = 20
LIVE_EDITS = 100
RUNS = 5  # the first counts bytes through a proxy, the others are timed


def _line(label: str, value: str, baseline: str, ratio: float, target: str, ok: bool) -> None:
    mark = "ok" if ok else "MISSED"
    print(
        f"  {label:<34} {value:>14}   raw pycrdt {baseline:>14}   ratio {ratio:5.2f}x"
        f"   target {target} [{mark}]",
        flush=True,
    )


# -- a real server process ---------------------------------------------------------------------


class Served:
    """``castroom serve`` on a free loopback port, in its own process (its own GIL)."""

    def __init__(self, workspace: Path) -> None:
        exe = Path(sys.executable).with_name("castroom")
        self.proc = subprocess.Popen(
            [str(exe), "--workspace", str(workspace), "serve", "--port", "0"],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            start_new_session=True,
        )
        assert self.proc.stdout is not None
        deadline = time.monotonic() + 30
        line = ""
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            match = re.search(r"at (http://[0-9.]+:\d+)", line)
            if match:
                self.url = match.group(1)
                self.ws_url = self.url.replace("http", "ws", 1) + "/sync"
                return
            if not line and self.proc.poll() is not None:
                break
        self.close()
        raise RuntimeError(f"castroom serve did not start: {line!r}")

    def close(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)
        if self.proc.stdout:
            self.proc.stdout.close()

    def __enter__(self) -> Served:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class CountingProxy:
    """A loopback TCP proxy counting every byte in both directions (bytes on the wire:
    HTTP headers and all)."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.up = 0
        self.down = 0
        self.loop = asyncio.new_event_loop()
        ready = threading.Event()
        self.port = 0

        async def start() -> None:
            server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
            self.port = server.sockets[0].getsockname()[1]
            self.server = server
            ready.set()

        self.thread = threading.Thread(
            target=lambda: (self.loop.run_until_complete(start()), self.loop.run_forever()),
            daemon=True,
        )
        self.thread.start()
        ready.wait(10)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection(
            "127.0.0.1", self.target_port
        )

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter, up: bool) -> None:
            with contextlib.suppress(ConnectionError):
                while data := await src.read(65536):
                    if up:
                        self.up += len(data)
                    else:
                        self.down += len(data)
                    dst.write(data)
                    await dst.drain()
            with contextlib.suppress(Exception):
                dst.close()

        with contextlib.suppress(asyncio.CancelledError):  # closed by close(): not an error
            await asyncio.gather(
                pipe(reader, upstream_writer, True), pipe(upstream_reader, writer, False)
            )

    def close(self) -> None:
        async def stop() -> None:
            self.server.close()
            # Cancel the open connections and let them finish before the loop stops.
            tasks = [t for t in asyncio.all_tasks(self.loop) if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self.loop.stop()

        asyncio.run_coroutine_threadsafe(stop(), self.loop)
        self.thread.join(5)


# -- two peers with divergent edits ----------------------------------------------------------


def _edit(ws: Workspace, production_id: str, who: str, seed: int) -> None:
    """EDITS field edits on random talents, 100 per transaction (each a durable update)."""
    rng = random.Random(seed)
    doc = ws.production(production_id).doc
    ids = [f"T{i:05d}" for i in range(TALENTS)]
    fields = ["agent", "union", "hair", "eyes", "contact"]
    for start in range(0, EDITS, 100):
        with doc.transaction():
            for i in range(start, start + 100):
                doc.update(model.Talent, rng.choice(ids), {rng.choice(fields): f"{who} {i}"})


def prepare(root: Path) -> tuple[Path, Path, str, str, str]:
    """(server workspace, client workspace, production id, token for it, token for all),
    both workspaces holding a common base of TALENTS talents and then EDITS divergent
    edits each. The server also holds a small production used to warm it up."""
    server_path, client_path = root / "server", root / "client"
    with Workspace.open(server_path, member="server") as ws:
        production = ws.create_production("Bench")
        pid = production.id
        assert pid is not None
        production.doc.put_many(
            model.Talent(id=f"T{i:05d}", name=f"Talent {i}") for i in range(TALENTS)
        )
        base = production.doc.encode_update()
        ws.create_production("Warm-up").doc.add(model.Talent, name="Warm")
        tokens = TokenStore(ws.store)
        _, token = tokens.create("write", production=pid, name="bench")
        _, everything = tokens.create("write", name="warm-up")
    with Workspace.open(client_path, member="client") as ws:
        ws.adopt(pid, base, origin="bundle")
        _edit(ws, pid, "client", 2)
    with Workspace.open(server_path) as ws:
        _edit(ws, pid, "server", 1)
    return server_path, client_path, pid, token, everything


def warm_up(url: str, token: str, root: Path) -> None:
    """Another member syncs a small production first, as on a server that has been up a
    while: its code paths (and the plugins every merge notifies) are loaded."""
    from castroom.sync.client import sync_http

    with Workspace.open(root, member="early-bird") as ws:
        sync_http(ws, url, token=token, production="Warm-up")
        ws.production("Warm-up").doc.add(model.Talent, name="Early")
        sync_http(ws, url, token=token, production="Warm-up")


def raw_exchange(a_update: bytes, b_update: bytes) -> tuple[float, int, bytes]:
    """The same convergence with bare pycrdt, in memory: (seconds, update bytes, result)."""
    a, b = Doc(), Doc()
    a.apply_update(a_update)
    b.apply_update(b_update)
    started = time.perf_counter()
    sv_b = b.get_state()
    to_b = a.get_update(sv_b)
    b.apply_update(to_b)
    sv_a = a.get_state()
    to_a = b.get_update(sv_a)
    a.apply_update(to_a)
    elapsed = time.perf_counter() - started
    return elapsed, len(to_a) + len(to_b), a.get_update()


def bench_http(root: Path) -> bool:
    from castroom.sync.client import sync_http

    server_path, client_path, pid, token, everything = prepare(root / "prepared")
    with Workspace.open(server_path) as s, Workspace.open(client_path) as c:
        server_update = s.production(pid).doc.encode_update()
        client_update = c.production(pid).doc.encode_update()
    raws = [raw_exchange(server_update, client_update) for _ in range(7)]
    # Best of several runs on both sides: on a shared 2-core machine the minimum is the
    # figure least disturbed by other work (medians are printed alongside).
    raw_time = min(r[0] for r in raws)
    raw_median = statistics.median(r[0] for r in raws)
    raw_bytes = raws[0][1]

    times: list[float] = []
    wire: list[int] = []
    converged = True
    for run in range(RUNS):
        run_dir = root / f"run{run}"
        shutil.copytree(server_path, run_dir / "server")
        shutil.copytree(client_path, run_dir / "client")
        with (
            Served(run_dir / "server") as served,
            Workspace.open(run_dir / "client") as client,
        ):
            import httpx

            port = int(served.url.rsplit(":", 1)[1])
            # Both sides warm: the server has served a sync and has the production open,
            # the client has it open too (the raw baseline starts from loaded Docs).
            warm_up(served.url, everything, run_dir / "early-bird")
            httpx.get(
                f"{served.url}/sync/{pid}/state", headers={"Authorization": f"Bearer {token}"}
            ).raise_for_status()
            client.production(pid).doc.state_vector()
            if run == 0:  # bytes on the wire, through a counting proxy (not timed)
                proxy = CountingProxy(port)
                try:
                    sync_http(client, f"http://127.0.0.1:{proxy.port}", token=token)
                finally:
                    proxy.close()
                wire.append(proxy.up + proxy.down)
            else:
                started = time.perf_counter()
                sync_http(client, served.url, token=token)
                times.append(time.perf_counter() - started)
            local = client.production(pid).doc.to_data()
        with Workspace.open(run_dir / "server") as s:
            converged &= s.production(pid).doc.to_data() == local
    castroom_time = min(times)
    median_time = statistics.median(times)
    limit = 3 * raw_time + 0.050
    time_ok = castroom_time <= limit
    bytes_ok = wire[0] <= 1.2 * raw_bytes
    print(
        f"  {EDITS:,} divergent edits on each of two peers ({TALENTS:,} talents),"
        f" converged: {converged}; best of {len(times)} timed runs",
        flush=True,
    )
    _line(
        "HTTP convergence time (best)",
        f"{castroom_time * 1000:.1f} ms",
        f"{raw_time * 1000:.1f} ms",
        castroom_time / raw_time,
        f"<= 3x + 50 ms = {limit * 1000:.0f} ms",
        time_ok,
    )
    # The median, for judging how much the best owes to luck (the target is on the best).
    median_limit = 3 * raw_median + 0.050
    print(
        f"  {'HTTP convergence time (median)':<34} {median_time * 1000:>11.1f} ms"
        f"   raw pycrdt {raw_median * 1000:>11.1f} ms   ratio {median_time / raw_median:5.2f}x"
        f"   3x + 50 ms = {median_limit * 1000:.0f} ms"
        f" [{'within' if median_time <= median_limit else 'over'}]",
        flush=True,
    )
    _line(
        "bytes on the wire (all of HTTP)",
        f"{wire[0]:,} B",
        f"{raw_bytes:,} B",
        wire[0] / raw_bytes,
        "<= 1.2x",
        bytes_ok,
    )
    return time_ok and bytes_ok and converged


# -- live fan-out --------------------------------------------------------------------------


async def _fan_out(ws_url: str, pid: str, token: str) -> tuple[dict[int, list[float]], float]:
    """PEERS receivers and one writer on the production; the writer sends LIVE_EDITS
    updates; returns each edit's latencies (one per receiver that got it) and the raw
    pycrdt cost of applying one edit to PEERS in-memory Docs."""
    from websockets.asyncio.client import connect

    headers = {"Authorization": f"Bearer {token}"}
    url = f"{ws_url}/{pid}"
    mirror = Doc()
    sent: dict[int, float] = {}
    latencies: dict[int, list[float]] = {}  # edit -> one latency per receiver
    received = 0
    done = asyncio.Event()

    async def handshake(conn: object) -> bytes:
        await conn.send(protocol.step1_frame(b""))  # type: ignore[attr-defined]
        while True:
            message = protocol.decode_message(await conn.recv())  # type: ignore[attr-defined]
            if message.sync_type is protocol.SyncType.STEP2:
                return message.payload

    async def receiver(conn: object, ready: asyncio.Event) -> None:
        nonlocal received
        state = await handshake(conn)
        peer_doc = Doc()
        peer_doc.apply_update(state)
        talents = peer_doc.get("talents", type=Map)
        ready.set()
        while received < PEERS * LIVE_EDITS:
            frame = await conn.recv()  # type: ignore[attr-defined]
            now = time.perf_counter()
            message = protocol.decode_message(frame)
            if message.sync_type is not protocol.SyncType.UPDATE:
                continue
            peer_doc.apply_update(message.payload)  # a real peer merges what it gets
            entity = talents.get("T00000")
            number = int(str(entity.get("agent")).split()[-1]) if entity is not None else -1
            if number in sent:
                latencies.setdefault(number, []).append(now - sent[number])
                received += 1
            if received >= PEERS * LIVE_EDITS:
                done.set()

    async with contextlib.AsyncExitStack() as stack:
        conns = [
            await stack.enter_async_context(connect(url, additional_headers=headers))
            for _ in range(PEERS + 1)
        ]
        writer_conn, receivers = conns[0], conns[1:]
        mirror.apply_update(await handshake(writer_conn))
        readies = [asyncio.Event() for _ in receivers]
        tasks = [
            asyncio.create_task(receiver(c, r)) for c, r in zip(receivers, readies, strict=True)
        ]
        await asyncio.gather(*(r.wait() for r in readies))
        talents = mirror.get("talents", type=Map)
        # The raw baseline: the same edit delivered to PEERS pycrdt Docs in memory.
        copies = []
        for _ in range(PEERS):
            copy = Doc()
            copy.apply_update(mirror.get_update())
            copies.append(copy)
        costs = []
        for i in range(LIVE_EDITS):
            before = mirror.get_state()
            talents["T00000"]["agent"] = f"live {i}"
            update = mirror.get_update(before)
            sent[i] = time.perf_counter()
            await writer_conn.send(protocol.update_frame(update))
            started = time.perf_counter()
            for copy in copies:
                copy.apply_update(update)
            costs.append(time.perf_counter() - started)
            await asyncio.sleep(0.02)  # edits at typing pace, not a flood
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(done.wait(), 30)
        for task in tasks:
            task.cancel()
    return latencies, statistics.median(costs)


def bench_live(root: Path) -> bool:
    path = root / "live"
    with Workspace.open(path, member="live") as ws:
        production = ws.create_production("Live bench")
        production.doc.put_many(
            model.Talent(id=f"T{i:05d}", name=f"Talent {i}") for i in range(200)
        )
        pid = production.id
        assert pid is not None
        _, token = TokenStore(ws.store).create("write", name="bench")
    with Served(path) as served:
        latencies, raw_cost = asyncio.run(_fan_out(served.ws_url, pid, token))
    expected = PEERS * LIVE_EDITS
    delivered = sum(len(v) for v in latencies.values())
    if delivered < expected:
        print(f"  live fan-out: only {delivered} of {expected} deliveries arrived")
        return False
    # An edit has reached the 20 peers when the slowest of them has it: one figure per
    # edit, and the percentiles are over the edits (nearest rank).
    per_edit = sorted(max(v) for v in latencies.values())
    p50 = per_edit[math.ceil(len(per_edit) * 0.50) - 1]
    p99 = per_edit[math.ceil(len(per_edit) * 0.99) - 1]
    every = sorted(x for v in latencies.values() for x in v)
    ok = p99 <= 0.100
    print(
        f"  {LIVE_EDITS} live edits to {PEERS} WebSocket peers: {expected:,} deliveries;"
        f" per edit, until the last peer has it: p50 {p50 * 1000:.1f} ms,"
        f" p99 {p99 * 1000:.1f} ms, max {per_edit[-1] * 1000:.1f} ms"
        f" (single deliveries: p50 {every[len(every) // 2] * 1000:.1f} ms)",
        flush=True,
    )
    _line(
        "live edit to all 20 peers, p99",
        f"{p99 * 1000:.1f} ms",
        f"{raw_cost * 1000:.2f} ms",
        p99 / raw_cost,
        "<= 100 ms",
        ok,
    )
    return ok


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="castroom-bench-sync-") as tmp:
        root = Path(tmp)
        results = {"HTTP convergence": bench_http(root), "live fan-out": bench_live(root)}
    missed = [name for name, ok in results.items() if not ok]
    if missed:
        print(f"  target(s) missed: {', '.join(missed)}", flush=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
