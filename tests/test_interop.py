"""Interoperability with stock Yjs peers: npm `yjs` + `y-websocket` run by Node against
`castroom serve`, and the stock Node relay (`@y/websocket-server`) between castroom
workspaces. Skipped, with the reason, only where Node is absent; where Node is installed,
missing npm packages in tests/interop fail the tests (`make test` installs them)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sync_helpers import (
    NODE_PEERS,
    PATIENCE,
    NodePeer,
    NodeRelay,
    make_token,
    wait_until,
)

from castroom.core import model
from castroom.core.workspace import Workspace
from castroom.sync.client import sync_websocket
from castroom.sync.server import ServerThread

CASTROOM = Path(sys.executable).with_name("castroom")
pytestmark = NODE_PEERS


@pytest.fixture
def seeded(tmp_path: Path) -> Iterator[tuple[Path, str, str]]:
    """A workspace with one production and one talent: (path, production id, talent id)."""
    path = tmp_path / "server-ws"
    with Workspace.open(path, member="casting") as ws:
        production = ws.create_production("Interop Island", kind="series")
        talent = production.doc.add(model.Talent, name="Ada Quinn", rate=150_000)
        assert production.id is not None
        yield path, production.id, talent.id


def test_yjs_client_and_castroom_edit_one_production(seeded) -> None:
    path, pid, ada = seeded
    token = make_token(path, "write")
    with (
        ServerThread(path) as server,
        NodePeer(server.ws_url, pid, token=token) as peer,
        Workspace.open(path) as cli,  # another connection, as a CLI command would have
    ):
        peer.wait_synced()
        data = peer.dump()
        assert data["production"]["title"] == "Interop Island"
        assert data["talents"][ada]["name"] == "Ada Quinn"
        assert data["talents"][ada]["rate"] == 150_000

        # A Yjs edit shows in castroom, typed and valid, durable in the workspace.
        new_id = model.new_id()
        peer.request(
            "put",
            collection="talents",
            id=new_id,
            fields={"name": "From Yjs", "deleted": False, "rate": 90_000},
            texts={"notes": "typed in a browser"},
        )
        production = cli.production(pid)
        found = wait_until(lambda: production.doc.find(model.Talent, new_id))
        assert found is not None, "the Yjs edit never reached castroom"
        assert (found.name, found.rate, found.notes) == ("From Yjs", 90_000, "typed in a browser")
        peer.request("set", collection="production", id=pid, field="title", value="Renamed")
        assert wait_until(lambda: production.doc.production.title == "Renamed")

        # A castroom edit (from another process's connection) shows in the Yjs client.
        production.doc.update(model.Talent, ada, {"name": "Ada Q. Quinn"})
        peer.request("wait", collection="talents", id=ada, field="name", value="Ada Q. Quinn")

        # A Yjs edit that breaks a model rule merges (never dropped) and is reported.
        peer.request("set", collection="talents", id=new_id, field="height_cm", value=999)
        assert wait_until(lambda: production.invalid())
        (bad, _device), *_ = production.invalid()
        assert (bad.kind, bad.id, bad.field) == ("talent", new_id, "height_cm")
        assert ada in {t.id for t in production.doc.all(model.Talent)}  # queries still work

    # Everything the Yjs client wrote is durable: a fresh open sees it.
    with Workspace.open(path) as again:
        doc = again.production(pid).doc
        assert doc.production.title == "Renamed"
        assert doc.raw(model.Talent, new_id)["height_cm"] == 999  # type: ignore[index]


def test_two_yjs_clients_see_each_other_through_castroom(seeded) -> None:
    path, pid, ada = seeded
    token = make_token(path, "write")
    with (
        ServerThread(path) as server,
        NodePeer(server.ws_url, pid, token=token, name="alice") as alice,
        NodePeer(server.ws_url, pid, token=token, name="bob") as bob,
    ):
        alice.wait_synced()
        bob.wait_synced()
        alice.request("set", collection="talents", id=ada, field="union", value="Equity")
        bob.request("wait", collection="talents", id=ada, field="union", value="Equity")
        # Presence (awareness) is relayed: each sees the other.
        assert wait_until(
            lambda: {p["user"]["name"] for p in alice.request("peers")["peers"]} == {"bob"}
        )
        assert wait_until(
            lambda: {p["user"]["name"] for p in bob.request("peers")["peers"]} == {"alice"}
        )


def test_read_token_yjs_client_cannot_write(seeded) -> None:
    path, pid, ada = seeded
    token = make_token(path, "read")
    with (
        ServerThread(path) as server,
        NodePeer(server.ws_url, pid, token=token) as peer,
        Workspace.open(path) as cli,
    ):
        peer.wait_synced()
        assert peer.dump()["talents"][ada]["name"] == "Ada Quinn"  # reading works
        before = cli.production(pid).doc.to_data()
        peer.request("set", collection="talents", id=ada, field="name", value="Vandal")
        # Writes are dropped; meanwhile castroom's own edits still reach the reader.
        cli.production(pid).doc.update(model.Talent, ada, {"union": "SAG"})
        peer.request("wait", collection="talents", id=ada, field="union", value="SAG")
        after = cli.production(pid).doc.to_data()
        assert after["talents"][ada]["name"] == "Ada Quinn"
        before["talents"][ada]["union"] = "SAG"
        assert after == before


def test_castroom_serve_process_with_yjs_client_and_cli_edit(seeded, tmp_path: Path) -> None:
    """The real `castroom serve` command in its own process; the CLI edits meanwhile."""
    path, pid, ada = seeded
    token = make_token(path, "write")
    exe = CASTROOM
    port = _free_port()
    server = subprocess.Popen(
        [str(exe), "--workspace", str(path), "serve", "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        import httpx

        assert wait_until(lambda: _healthy(f"http://127.0.0.1:{port}/health")), (
            "castroom serve did not come up"
        )
        with NodePeer(f"ws://127.0.0.1:{port}/sync", pid, token=token) as peer:
            peer.wait_synced()
            edit = subprocess.run(
                [str(exe), "--workspace", str(path), "set", "talent", ada, "union=Equity"],
                capture_output=True,
                text=True,
                timeout=PATIENCE,
            )
            assert edit.returncode == 0, edit.stderr
            peer.request("wait", collection="talents", id=ada, field="union", value="Equity")
            peer.request("set", collection="talents", id=ada, field="agent", value="Yjs Agency")
            shown = wait_until(
                lambda: (
                    "Yjs Agency"
                    in subprocess.run(
                        [str(exe), "--workspace", str(path), "show", "talent", ada, "--json"],
                        capture_output=True,
                        text=True,
                        timeout=PATIENCE,
                    ).stdout
                ),
                step=0.3,
            )
            assert shown
        assert httpx.get(f"http://127.0.0.1:{port}/health", timeout=PATIENCE).status_code == 200
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=PATIENCE)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=5)
        for stream in (server.stdout, server.stderr):
            assert stream is not None
            stream.close()


def test_stock_node_relay_carries_yjs_peers() -> None:
    """The relay itself, with two stock clients (a baseline for the castroom-relay test)."""
    with (
        NodeRelay() as relay,
        NodePeer(relay.url + "/sync", "ROOM") as a,
        NodePeer(relay.url + "/sync", "ROOM") as b,
    ):
        a.wait_synced()
        b.wait_synced()
        a.request("put", collection="talents", id="T1", fields={"name": "Relayed"})
        b.request("wait", collection="talents", id="T1", field="name", value="Relayed")


def _castroom(*args: str, timeout: float = PATIENCE) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([str(CASTROOM), *args], capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"castroom {' '.join(args)}: {done.stderr}{done.stdout}"
    return done


def test_stock_relay_between_castroom_workspaces_one_shot(seeded, tmp_path: Path) -> None:
    """`castroom sync ws://...` through the stock Node relay: A publishes, an empty B
    adopts the production, both edit, and they converge, all through the relay."""
    a_path, pid, ada = seeded
    b_path = tmp_path / "b"
    with NodeRelay() as relay:
        url = f"{relay.url}/sync"
        _castroom("--workspace", str(a_path), "sync", url, "--production", pid)
        _castroom("--workspace", str(b_path), "sync", url, "--production", pid)
        with Workspace.open(b_path) as b:
            doc = b.production(pid).doc
            assert doc.get(model.Talent, ada).name == "Ada Quinn"
            new = doc.add(model.Talent, name="Added on B")
        with Workspace.open(a_path) as a:
            a.production(pid).doc.update(model.Talent, ada, {"union": "Equity"})
        # The same client code in-process (the CLI's start-up is most of a command's time).
        for path in (b_path, a_path, b_path):
            with Workspace.open(path) as ws:
                sync_websocket(ws, url, production=pid)
    with Workspace.open(a_path) as a, Workspace.open(b_path) as b:
        assert a.production(pid).doc.get(model.Talent, new.id).name == "Added on B"
        assert b.production(pid).doc.get(model.Talent, ada).union == "Equity"
        assert a.production(pid).doc.to_data() == b.production(pid).doc.to_data()


def test_stock_relay_between_castroom_workspaces_live(seeded, tmp_path: Path) -> None:
    """Two `castroom sync ws://... --live` processes on the stock relay carry CLI edits
    both ways while they run, with a stock Yjs client in the same room."""
    a_path, pid, ada = seeded
    b_path = tmp_path / "b"
    procs: list[subprocess.Popen[str]] = []
    with NodeRelay() as relay:
        url = f"{relay.url}/sync"
        for path in (a_path, b_path):
            with Workspace.open(path) as ws:
                sync_websocket(ws, url, production=pid)
        try:
            for path in (a_path, b_path):
                procs.append(
                    subprocess.Popen(
                        [
                            str(CASTROOM),
                            "--workspace",
                            str(path),
                            "sync",
                            url,
                            "--live",
                            "--production",
                            pid,
                            "--duration",
                            "60",
                        ],
                        stdout=subprocess.DEVNULL,  # nobody reads it while it runs
                        stderr=subprocess.DEVNULL,
                        text=True,
                    )
                )
            _castroom("--workspace", str(a_path), "set", "talent", ada, "union=Equity")
            with Workspace.open(b_path) as b:
                assert wait_until(
                    lambda: b.production(pid).doc.get(model.Talent, ada).union == "Equity"
                ), "A's edit never reached B through the relay"
            _castroom("--workspace", str(b_path), "set", "talent", ada, "agent=Relay Agency")
            with Workspace.open(a_path) as a:
                assert wait_until(
                    lambda: a.production(pid).doc.get(model.Talent, ada).agent == "Relay Agency"
                ), "B's edit never reached A through the relay"
            with NodePeer(url, pid) as peer:  # a plain Yjs client sees both edits
                peer.request(
                    "wait", collection="talents", id=ada, field="agent", value="Relay Agency"
                )
                assert peer.dump()["talents"][ada]["union"] == "Equity"
        finally:
            for proc in procs:
                proc.terminate()
            for proc in procs:
                try:
                    proc.communicate(timeout=PATIENCE)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.communicate(timeout=5)


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _healthy(url: str) -> bool:
    import httpx

    try:
        return httpx.get(url, timeout=PATIENCE).status_code == 200
    except httpx.HTTPError:
        return False
