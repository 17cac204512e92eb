"""A long-running ``castroom serve`` compacts in the background, in a worker process,
while peers keep syncing (a real server process, a real peer over HTTP)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import httpx
import tomli_w
from patience import PATIENCE
from pycrdt import Doc, Map
from sync_helpers import make_token, wait_until

from castroom.core import model
from castroom.core.storage import Store
from castroom.core.workspace import DB_NAME, Workspace
from tests.test_sync_cli import Served


def _seed(path: Path) -> tuple[str, str]:
    with Workspace.open(path, member="casting") as ws:
        production = ws.create_production("Harbour Lights")
        ada = production.doc.add(model.Talent, name="Ada Stone").id
        assert production.id
    config = tomllib.loads((path / "config.toml").read_text())
    config["server"] = {"compact_every": 0.2, "compact_floor": 1}
    (path / "config.toml").write_text(tomli_w.dumps(config))
    return production.id, ada


def _snapshot(path: Path, production_id: str) -> int:
    """The bytes of the production's snapshot in the store (0: never compacted)."""
    store = Store(path / DB_NAME)
    try:
        return store.log_bytes(production_id)[0]
    finally:
        store.close()


def test_a_running_server_compacts_in_a_worker_while_peers_sync(tmp_path: Path) -> None:
    path = tmp_path / "server"
    production_id, ada = _seed(path)
    token = make_token(path)
    served = Served(path, tmp_path / "serve.log")
    try:
        http = httpx.Client(
            base_url=served.url, headers={"Authorization": f"Bearer {token}"}, timeout=PATIENCE
        )
        url = f"/sync/{production_id}"
        peer = Doc()
        sent: list[bytes] = []
        peer.observe(lambda event: sent.append(event.update))
        peer.apply_update(http.post(f"{url}/pull", content=peer.get_state()).content)

        def edit(rate: int) -> None:
            sent.clear()
            peer.get("talents", type=Map)[ada]["rate"] = rate
            http.post(f"{url}/push", content=sent[0]).raise_for_status()

        for rate in range(100_000, 100_040):
            edit(rate)
        # The server looks every 0.2 s: it may fold any prefix of the edits, even while
        # they arrive; what it folds must not change what peers and the history see.
        assert wait_until(lambda: _snapshot(path, production_id) > 0), served.log.read_text()
        done = wait_until(
            lambda: re.search(
                r"compacted production .*\(worker process (\d+)\)", served.log.read_text()
            )
        )
        assert done and int(done.group(1)) != served.proc.pid  # not in the server's process
        edit(250_000)  # the server goes on merging and serving after compacting
        fresh = Doc()
        fresh.apply_update(http.post(f"{url}/pull", content=fresh.get_state()).content)
        assert fresh.get("talents", type=Map)[ada]["rate"] == 250_000
        http.close()
    finally:
        served.stop()
    with Workspace.open(path) as ws:
        production = ws.production()
        assert production.doc.get(model.Talent, ada).rate == 250_000
        rates = [e.values[("talents", ada)]["rate"] for e in production.history(limit=100)[:41]]
    assert rates[0] == [100_039, 250_000] and rates[-1] == [None, 100_000]
