"""Issue 7's attacks on a live server (`castroom serve` in a subprocess, a fresh workspace
for each attack): what each one costs the server now.

Printed per attack: how the server answered (HTTP status, or the code the socket was
closed with), whether it is still up, the longest /health answer while the attack ran
(asked every 20 ms, with its baseline measured before the attack on the same server), the
server's peak memory (VmHWM) before and after, and for the question floods the bytes sent
back. The attacks are the issue's repros: tests/data's files (an Any nested 50,000 deep,
60,000 nested Y.Maps), a 1M-entry update (22 MB), 20M nulls in one value (20 MB), a
presence flood from a read-only token, and twenty query-awareness frames beside a large
presence. Target: the server stays up through every attack and answers /health within 1 s.

``python -m bench hostile``. ``main()`` exits with status 1 when a target is missed.
"""

from __future__ import annotations

import logging
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from castroom.core.workspace import Workspace
from castroom.sync import protocol as p
from castroom.sync.auth import TokenStore

from .bench_heavy import _peak_mb, serving

DATA = Path(__file__).resolve().parent.parent / "tests" / "data"
sys.path.insert(0, str(DATA))
import make_hostile as hostile  # noqa: E402

TARGET_S = 1.0


class Target:
    """One fresh server and what an attack needs to reach it."""

    def __init__(self, url: str, pid: str, write: str, read: str) -> None:
        self.url, self.pid, self.write, self.read = url, pid, write, read

    def ws(self, token: str) -> ClientConnection:
        ws_url = self.url.replace("http", "ws", 1) + f"/sync/{self.pid}?token={token}"
        return connect(ws_url, proxy=None, max_size=None, open_timeout=60)

    def push(self, update: bytes) -> str:
        answer = httpx.post(
            f"{self.url}/sync/{self.pid}/push",
            headers={"Authorization": f"Bearer {self.write}"},
            content=update,
            timeout=600,
        )
        return f"HTTP {answer.status_code} {answer.text[:90]}"


def _closed(conn: ClientConnection, sent: list[int] | None = None) -> str:
    """Reads until the server closes the socket (or stays quiet 5 s); counts the bytes."""
    try:
        while True:
            frame = conn.recv(timeout=5)
            if sent is not None:
                sent.append(len(frame))
    except TimeoutError:
        return "still open"
    except ConnectionClosed as closed:
        if closed.rcvd is None:
            return "closed (aborted, no close frame)"
        return f"closed {closed.rcvd.code} {closed.rcvd.reason[:90]}"


def _frames(target: Target, token: str, frames: list[bytes]) -> str:
    with target.ws(token) as conn:
        for frame in frames:
            try:
                conn.send(frame)
            except ConnectionClosed:
                break
        return _closed(conn)


def deep_any(target: Target, data: bytes) -> str:
    read = _frames(target, target.read, [p.step2_frame(data), p.update_frame(data)])
    return f"read peer: {read}; write peer: {_frames(target, target.write, [p.update_frame(data)])}"


def pushed(target: Target, data: bytes) -> str:
    return target.push(data)


def written(target: Target, data: bytes) -> str:
    return _frames(target, target.write, [p.update_frame(data)])


def presence_flood(target: Target, _data: bytes) -> str:
    """Two thousand awareness frames of 8 KB states, each from a new client id."""
    frames = [
        p.awareness_frame(p.encode_awareness([p.AwarenessEntry(c, 1, {"x": "x" * 8000})]))
        for c in range(1, 2001)
    ]
    return _frames(target, target.read, frames)


def query_flood(target: Target, _data: bytes) -> str:
    """Twenty 1-byte query-awareness frames while another peer shows a 7 KB presence."""
    with target.ws(target.read) as present:
        present.send(
            p.awareness_frame(p.encode_awareness([p.AwarenessEntry(5, 1, {"x": "x" * 7000})]))
        )
        with target.ws(target.read) as asker:
            answered: list[int] = []
            for _ in range(20):
                asker.send(p.QUERY_AWARENESS_FRAME)
            _closed(asker, answered)
    return f"{sum(answered):,} bytes sent back in {len(answered)} frames (20 bytes asked)"


#: Each attack: what it sends (made before the attack is timed), and how.
ATTACKS: dict[str, tuple[Callable[[], bytes], Callable[[Target, bytes], str]]] = {
    "1. an Any nested 50,000 deep (80 KB)": (
        lambda: (DATA / "deep_any_50k.yupd").read_bytes(),
        deep_any,
    ),
    "2. 60,000 nested Y.Maps in a talent (944 KB)": (
        lambda: (DATA / "nested_maps_60k.yupd").read_bytes(),
        pushed,
    ),
    "5. a 1M-entry update (22 MB)": (lambda: hostile.many_entries(1_000_000), written),
    "5. 20M nulls in one value (20 MB)": (lambda: hostile.nulls(20_000_000), pushed),
    "5. 2,000 presence frames of 8 KB, read token": (bytes, presence_flood),
    "5. twenty query-awareness frames": (bytes, query_flood),
}


def _health(client: httpx.Client, url: str) -> float:
    start = time.perf_counter()
    assert client.get(f"{url}/health").status_code == 200
    return time.perf_counter() - start


def attack(name: str, make: Callable[[], bytes], run: Callable[[Target, bytes], str]) -> bool:
    data = make()
    with tempfile.TemporaryDirectory(prefix="bench-hostile-") as folder:
        path = Path(folder) / "ws"
        with Workspace.open(path, member="bench") as ws:
            pid = ws.create_production("Target").id
            tokens = TokenStore(ws.store)
            write, read = tokens.create("write")[1], tokens.create("read")[1]
        assert pid
        with (
            serving(path, Path(folder) / "serve.log") as (server, url),
            httpx.Client(timeout=600) as client,  # one connection: a new one costs 15 ms
        ):
            base = statistics.median(_health(client, url) for _ in range(10))
            peak_before = _peak_mb(server.pid)
            done = threading.Event()
            answers: list[float] = []

            def probe() -> None:
                while not done.is_set():
                    answers.append(_health(client, url))
                    time.sleep(0.02)

            prober = threading.Thread(target=probe)
            prober.start()
            start = time.perf_counter()
            try:
                outcome = run(Target(url, pid, write, read), data)
            finally:
                took = time.perf_counter() - start
                done.set()
                prober.join()
            up = server.poll() is None and _health(client, url) < TARGET_S
            peak = _peak_mb(server.pid)
    longest = max(answers, default=0.0)
    ok = up and longest <= TARGET_S
    print(f"  {name}: {outcome}")
    print(
        f"    in {took:.1f} s; server {'up' if up else 'DOWN'}; /health longest"
        f" {longest * 1000:.0f} ms over {len(answers)} asks (baseline {base * 1000:.1f} ms);"
        f" peak memory {peak_before:.0f} -> {peak:.0f} MB [{'ok' if ok else 'MISSED'}]",
        flush=True,
    )
    return ok


def main() -> None:
    # A socket the server aborts mid-send: websockets logs it as its own internal error.
    logging.getLogger("websockets").setLevel(logging.CRITICAL)
    results = [attack(name, make, run) for name, (make, run) in ATTACKS.items()]
    if not all(results):
        sys.exit(1)


if __name__ == "__main__":
    main()
