"""The server's event-loop watch: a stretch of time the loop did not turn is recorded,
split into the loop's own CPU, waiting for a CPU and blocked, with where the loop was,
and `castroom serve` answers it at GET /stats (any token) and logs it."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

import httpx
import pytest
from sync_helpers import make_token, wait_until

from castroom.core import model
from castroom.core.workspace import Workspace
from castroom.sync.loop_watch import LoopWatch, Stall
from castroom.sync.server import ServerThread

HOLD = 0.3


def hold_the_loop_busy() -> None:
    """Keep the loop thread computing for HOLD seconds (of the clock)."""
    until = time.perf_counter() + HOLD
    while time.perf_counter() < until:
        pass


def hold_the_loop_asleep() -> None:
    time.sleep(HOLD)


async def _stall_of(hold: object) -> Stall:
    watch = LoopWatch(tick=0.01, threshold=0.05, warn_after=10)
    async with watch.watching():
        await asyncio.sleep(0.05)
        asyncio.get_running_loop().call_soon(hold)  # type: ignore[arg-type]
        for _ in range(500):  # bounded: 5 s
            await asyncio.sleep(0.01)
            if watch.stalls:
                break
    assert watch.stalls, "no stall recorded"
    assert watch.longest is not None
    return watch.longest


def test_work_on_the_loop_is_a_stall_named_where_it_ran() -> None:
    stall = asyncio.run(_stall_of(hold_the_loop_busy))
    assert stall.wall_ms >= HOLD * 1000 * 0.9
    assert "hold_the_loop_busy" in stall.where
    # Computing: nothing of it is blocked in a system call (a busy machine may make the
    # loop wait for a CPU instead of running, but never sleep).
    assert stall.blocked_ms < stall.wall_ms / 2
    assert stall.at <= time.time() - HOLD


def test_a_blocking_call_on_the_loop_counts_as_blocked() -> None:
    stall = asyncio.run(_stall_of(hold_the_loop_asleep))
    assert stall.wall_ms >= HOLD * 1000 * 0.9
    assert "hold_the_loop_asleep" in stall.where
    assert stall.blocked_ms > stall.cpu_ms
    assert "blocked" in stall.describe() and "hold_the_loop_asleep" in stall.describe()


def test_serve_answers_its_stalls_at_stats(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "server"
    Workspace.open(path, member="casting").close()
    token = make_token(path, "read")
    caplog.set_level(logging.WARNING, logger="castroom.sync.loop_watch")
    with ServerThread(path) as server:
        server.app_state.loop_watch.warn_after = 0.2
        stats = f"{server.url}/stats"
        assert httpx.get(stats).status_code == 401
        assert httpx.get(stats, headers={"Authorization": "Bearer nope"}).status_code == 401
        auth = {"Authorization": f"Bearer {token}"}
        before = httpx.get(stats, headers=auth).json()
        assert before["rooms"] == 0 and before["peers"] == 0
        assert before["loop"]["stalls"] == []
        assert server.app_state.loop is not None
        server.app_state.loop.call_soon_threadsafe(hold_the_loop_busy)

        def reported() -> list[dict[str, object]]:
            body = httpx.get(stats, headers=auth).json()
            return [s for s in body["loop"]["stalls"] if "hold_the_loop_busy" in str(s["where"])]

        (stall,) = wait_until(reported, timeout=10)
        assert float(stall["wall_ms"]) >= HOLD * 1000 * 0.9  # type: ignore[arg-type]
        assert set(stall) == {"at", "wall_ms", "cpu_ms", "waiting_ms", "where"}
    warned = [r.getMessage() for r in caplog.records if r.name == "castroom.sync.loop_watch"]
    assert any("did not turn" in m and "hold_the_loop_busy" in m for m in warned), warned


def test_a_servers_first_edit_imports_no_plugin_on_its_loop(tmp_path: Path) -> None:
    """No built-in plugin hears changes, so merging one imports none of them (it used to
    import every plugin on the loop at the first edit: 0.3-0.6 s, every peer waiting)."""
    path = tmp_path / "server"
    with Workspace.open(path, member="casting") as ws:
        production = ws.create_production("Quiet")
        talent = production.doc.add(model.Talent, name="Ada Stone")
        pid = str(production.id)
        with Workspace.open(tmp_path / "peer", member="peer") as peer:
            copy, _ = peer.adopt(pid, production.doc.encode_update(), origin="bundle")
            before = copy.doc.state_vector()
            copy.doc.update(model.Talent, talent.id, {"rate": 1000})
            update = copy.doc.encode_update(before)
    token = make_token(path, "write")
    with ServerThread(path) as server:
        pushed = httpx.post(
            f"{server.url}/sync/{pid}/push",
            content=update,
            headers={"Authorization": f"Bearer {token}"},
        )
        assert pushed.status_code == 200 and pushed.json()["changed"] == 1
        workspace = server.app_state.workspace
        assert workspace is not None
        assert not workspace.plugins.loaded
    with Workspace.open(path) as ws:
        assert ws.production(pid).doc.get(model.Talent, talent.id).rate == 1000
