"""Scale-out for real: a Debian `redis-server` and two stock Hocuspocus instances
(`@hocuspocus/server` + `@hocuspocus/extension-redis` 4.7.0), castroom workspaces live on
different instances, a stock `@hocuspocus/provider`, one instance killed and restarted,
and a late joiner. The instances keep nothing durable (no database extension): the
castroom workspaces are the durable copies, and nothing is lost."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sync_helpers import (
    PATIENCE,
    NodeHocuspocus,
    NodePeer,
    RedisServer,
    free_port,
    node_missing_reason,
    node_packages_problem,
    redis_missing_reason,
    wait_until,
)

from castroom.core import model
from castroom.core.workspace import Workspace
from castroom.sync.hocuspocus_client import sync_hocuspocus

CASTROOM = Path(sys.executable).with_name("castroom")
_MISSING = node_missing_reason() or (
    None if os.environ.get("CASTROOM_REQUIRE_REDIS") else redis_missing_reason()
)
pytestmark = pytest.mark.skipif(_MISSING is not None, reason=str(_MISSING))


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[RedisServer]:
    problem = node_packages_problem() or redis_missing_reason()
    if problem:
        pytest.fail(problem, pytrace=False)
    with RedisServer(tmp_path / "redis") as server:
        yield server


def _live(path: Path, url: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            str(CASTROOM),
            "--workspace",
            str(path),
            "sync",
            url,
            "--protocol",
            "hocuspocus",
            "--live",
            "--duration",
            "300",
        ],
        stdout=subprocess.DEVNULL,  # nobody reads it while it runs
        stderr=subprocess.DEVNULL,
        text=True,
    )


def _stop(procs: list[subprocess.Popen[str]]) -> None:
    for proc in procs:
        proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout=PATIENCE)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def _names(path: Path, pid: str) -> set[str]:
    with Workspace.open(path) as ws:
        return {t.name for t in ws.production(pid).doc.all(model.Talent)}


def _add(path: Path, pid: str, name: str) -> None:
    with Workspace.open(path) as ws:
        ws.production(pid).doc.add(model.Talent, name=name)


def test_two_instances_behind_redis(redis: RedisServer, tmp_path: Path) -> None:
    a_path, b_path, c_path = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    with Workspace.open(a_path, member="ada") as ws:
        production = ws.create_production("Scale Out")
        production.doc.add(model.Talent, name="From A")
        pid = production.id
        assert pid is not None
    port_one = free_port()
    redis_args = ("--redis-port", str(redis.port))
    one = NodeHocuspocus(port_one, *redis_args, "--name", "one")
    two = NodeHocuspocus(0, *redis_args, "--name", "two")
    procs: list[subprocess.Popen[str]] = []
    try:
        procs.append(_live(a_path, one.url))
        with NodePeer(two.url, pid, name="web", protocol="hocuspocus") as web:
            # A (live on instance one) reaches a provider on instance two through Redis.
            web.wait_synced()
            assert wait_until(lambda: "From A" in _talents(web)), "A never reached two"
            # B, a new workspace, takes the production from instance two, then goes live.
            with Workspace.open(b_path, member="bo") as ws:
                sync_hocuspocus(ws, two.url, productions=[pid])
            assert _names(b_path, pid) == {"From A"}
            procs.append(_live(b_path, two.url))
            _add(b_path, pid, "From B")
            assert wait_until(lambda: "From B" in _names(a_path, pid)), "B never reached A"
            assert wait_until(lambda: "From B" in _talents(web))
            # Presence crosses instances: the provider on two sees A, who is on one.
            assert wait_until(lambda: "ada" in _present(web)), _present(web)

            # Instance one dies; A keeps editing offline, B edits through two meanwhile.
            os.kill(one.pid, signal.SIGKILL)
            one.proc.wait(timeout=PATIENCE)
            _add(a_path, pid, "A While Down")
            _add(b_path, pid, "B While Down")
            assert wait_until(lambda: "B While Down" in _talents(web))
            # One comes back on the same port; A reconnects by itself and both converge.
            one.close()
            one = NodeHocuspocus(port_one, *redis_args, "--name", "one")
            assert wait_until(lambda: "A While Down" in _names(b_path, pid)), "A lost"
            assert wait_until(lambda: "B While Down" in _names(a_path, pid)), "B lost"
            assert wait_until(lambda: "A While Down" in _talents(web))

        # A late joiner on the restarted instance gets everything.
        with Workspace.open(c_path) as ws:
            sync_hocuspocus(ws, one.url, productions=[pid])
        want = {"From A", "From B", "A While Down", "B While Down"}
        assert _names(c_path, pid) == want
        assert wait_until(lambda: _names(a_path, pid) == _names(b_path, pid) == want)
        with Workspace.open(a_path) as a, Workspace.open(b_path) as b, Workspace.open(c_path) as c:
            data = a.production(pid).doc.to_data()
            assert b.production(pid).doc.to_data() == data == c.production(pid).doc.to_data()
    finally:
        _stop(procs)
        one.close()
        two.close()


def _talents(peer: NodePeer) -> set[str]:
    return {t.get("name") for t in peer.dump()["talents"].values()}


def _present(peer: NodePeer) -> set[str]:
    return {str(p.get("user", {}).get("name")) for p in peer.request("peers")["peers"]}
