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
from patience import PATIENCE
from sync_helpers import make_token, wait_until

from castroom.core import model
from castroom.core.workspace import Workspace
from castroom.sync.loop_watch import LoopWatch, Stall
from castroom.sync.server import ServerOptions, ServerThread

HOLD = 0.3
#: How long a hold may wait for the sampler thread to look (a loaded machine may keep it
#: from running for a while).
SAMPLED_WITHIN = 20.0


def _until_sampled(watch: LoopWatch, idle: object) -> None:
    """Hold the loop for at least HOLD seconds and until the sampler has looked at it
    (bounded), spending the time as ``idle()`` does."""
    start = time.perf_counter()
    while time.perf_counter() - start < SAMPLED_WITHIN:
        idle()  # type: ignore[operator]
        if time.perf_counter() - start >= HOLD and watch._samples:
            return


def hold_the_loop_busy(watch: LoopWatch) -> None:
    """Keep the loop thread computing."""
    _until_sampled(watch, lambda: sum(range(1000)))


def hold_the_loop_asleep(watch: LoopWatch) -> None:
    """Keep the loop thread blocked in a system call."""
    _until_sampled(watch, lambda: time.sleep(0.02))


def _named(watch: LoopWatch, name: str) -> list[Stall]:
    return [s for s in watch.stalls if name in s.where]


async def _stall_of(hold: object) -> Stall:
    watch = LoopWatch(tick=0.01, threshold=0.05, warn_after=60)
    name = hold.__name__  # type: ignore[attr-defined]
    async with watch.watching():
        await asyncio.sleep(0.05)
        asyncio.get_running_loop().call_soon(hold, watch)  # type: ignore[arg-type]
        for _ in range(1000):  # bounded: 10 s after the hold
            await asyncio.sleep(0.01)
            if _named(watch, name):
                break
    (stall,) = _named(watch, name)
    return stall


def test_work_on_the_loop_is_a_stall_named_where_it_ran() -> None:
    stall = asyncio.run(_stall_of(hold_the_loop_busy))
    assert stall.wall_ms >= HOLD * 1000 * 0.9
    assert stall.cpu_ms > 0
    assert stall.at <= time.time() - HOLD
    assert stall.cpu_ms <= stall.wall_ms + 50


def test_a_blocking_call_on_the_loop_counts_as_blocked() -> None:
    stall = asyncio.run(_stall_of(hold_the_loop_asleep))
    assert stall.wall_ms >= HOLD * 1000 * 0.9
    # Asleep most of the time (the rest: the loop's own work, and waiting for a CPU on
    # a loaded machine after each sleep).
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
        assert httpx.get(stats, timeout=PATIENCE).status_code == 401
        assert (
            httpx.get(stats, headers={"Authorization": "Bearer nope"}, timeout=PATIENCE).status_code
            == 401
        )
        auth = {"Authorization": f"Bearer {token}"}
        before = httpx.get(stats, headers=auth, timeout=PATIENCE).json()
        assert before["rooms"] == 0 and before["peers"] == 0
        assert isinstance(before["loop"]["stalls"], list)  # a loaded machine may stall it
        assert server.app_state.loop is not None
        server.app_state.loop.call_soon_threadsafe(hold_the_loop_busy, server.app_state.loop_watch)

        def reported() -> list[dict[str, object]]:
            body = httpx.get(stats, headers=auth, timeout=PATIENCE).json()
            return [s for s in body["loop"]["stalls"] if "hold_the_loop_busy" in str(s["where"])]

        (stall,) = wait_until(reported, timeout=SAMPLED_WITHIN + PATIENCE)
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
            timeout=PATIENCE,
        )
        assert pushed.status_code == 200 and pushed.json()["changed"] == 1
        workspace = server.app_state.workspace
        assert workspace is not None
        assert not workspace.plugins.loaded
    with Workspace.open(path) as ws:
        assert ws.production(pid).doc.get(model.Talent, talent.id).rate == 1000


def test_a_turning_loop_wakes_the_sampler_only_when_a_beat_could_be_late() -> None:
    """The sampler sleeps until a beat is half a threshold overdue: with the loop turning,
    it wakes about once a (tick + threshold / 2), not every quarter threshold (it took
    the GIL from a busy loop 40 times a second)."""
    watch = LoopWatch(tick=0.02, threshold=0.2)

    async def turning() -> None:
        async with watch.watching():
            await asyncio.sleep(1.0)

    asyncio.run(turning())
    assert watch.ticks >= 10  # the loop ticked all along (a loaded machine ticks fewer)
    # Waking every quarter threshold would be 20 looks; once per 0.12 s is about 8.
    assert watch.looks <= 12, watch.looks
    assert not watch.stalls or all(s.wall_ms > 200 for s in watch.stalls)


def test_serve_beats_the_watch_from_its_poll_with_no_timer_of_its_own(tmp_path: Path) -> None:
    """castroom serve's watch adds no wake-up of the loop: its poll task beats it."""
    path = tmp_path / "server"
    Workspace.open(path, member="casting").close()
    token = make_token(path, "read")
    with ServerThread(path) as server:
        watch = server.app_state.loop_watch
        auth = {"Authorization": f"Bearer {token}"}
        first = httpx.get(f"{server.url}/stats", headers=auth, timeout=PATIENCE).json()["loop"][
            "ticks"
        ]
        wait_until(
            lambda: (
                httpx.get(f"{server.url}/stats", headers=auth, timeout=PATIENCE).json()["loop"][
                    "ticks"
                ]
                > first + 3
            ),
            timeout=30,
        )
        assert watch._handle is None
        assert watch.tick == server.app_state.options.poll_interval


def test_serve_can_run_unwatched(tmp_path: Path) -> None:
    """``[server] loop_watch = false``: no beats, no sampler thread; /stats still answers."""
    path = tmp_path / "server"
    Workspace.open(path, member="casting").close()
    token = make_token(path, "read")
    options = ServerOptions.from_config({"server": {"loop_watch": False}})
    with ServerThread(path, options=options) as server:
        auth = {"Authorization": f"Bearer {token}"}
        time.sleep(0.3)  # several polls: none of them beats an unwatched watch
        body = httpx.get(f"{server.url}/stats", headers=auth, timeout=PATIENCE).json()
        assert body["loop"]["ticks"] == 0
        watch = server.app_state.loop_watch
        assert watch.looks == 0 and watch._clocks is None  # no sampler, nothing read
