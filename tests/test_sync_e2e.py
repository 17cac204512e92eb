"""End to end: several workspaces in separate processes edit concurrently while syncing
through a server, through each other (one peer serves another) and through a shared
folder, with faults injected; everything converges and nothing is lost.

Topology of the big test::

    P1 --live WebSocket-- S1 (castroom serve, hub) --HTTP-- P2 --folder-- P3 <--HTTP-- P4
                                                                     (P3 also serves P4)
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis_profiles import examples
from sync_helpers import PATIENCE, make_token, wait_until

from castroom.core import model
from castroom.core.workspace import Workspace
from castroom.sync.client import sync_http
from castroom.sync.folder import FOLDER_NAME, sync_folder
from castroom.sync.server import ServerThread

CASTROOM = Path(sys.executable).with_name("castroom")

WORKER = r"""
import json, random, sys, time
from castroom.core import model
from castroom.core.errors import CastroomError
from castroom.core.workspace import Workspace
from castroom.sync.client import sync_http
from castroom.sync.folder import sync_folder

path, name, rounds, channels = sys.argv[1], sys.argv[2], int(sys.argv[3]), json.loads(sys.argv[4])
rng = random.Random(name)
ws = Workspace.open(path, member=name)
added, errors = [], []

def sync():
    if "http" in channels:
        try:
            sync_http(ws, channels["http"][0], token=channels["http"][1])
        except CastroomError as exc:   # the server may be restarting: try again next round
            errors.append(str(exc))
    if "folder" in channels:
        sync_folder(ws, channels["folder"], echo=lambda line: None)

deadline = time.monotonic() + 120
while not ws.productions() and time.monotonic() < deadline:
    sync()
    time.sleep(0.1)
pid = ws.productions()[0][0]
for i in range(rounds):
    doc = ws.production(pid).doc
    talent = doc.add(model.Talent, name=f"{name}-{i}")
    added.append(talent.id)
    doc.update(model.Talent, "SHARED", {"agent": f"{name}-{i}"})     # same field, everyone
    doc.edit_text(model.Talent, "SHARED", "notes", 0, 0, f"[{name}{i}]")  # merged text
    if channels:
        sync()
    time.sleep(rng.random() * 0.05)
print(json.dumps({"added": added, "errors": len(errors)}))
ws.close()
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Serve:
    """`castroom serve` in its own process on a fixed port (so it can be restarted)."""

    def __init__(self, workspace: Path, port: int) -> None:
        self.workspace = workspace
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Serve:
        self.proc = subprocess.Popen(
            [str(CASTROOM), "--workspace", str(self.workspace), "serve", "--port", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        assert wait_until(self.healthy), "castroom serve did not start"
        return self

    def healthy(self) -> bool:
        import httpx

        try:
            return httpx.get(self.url + "/health", timeout=PATIENCE).status_code == 200
        except httpx.HTTPError:
            return False

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=PATIENCE)
            except subprocess.TimeoutExpired:
                self.kill()


def worker(tmp: Path, path: Path, name: str, rounds: int, channels: dict[str, Any]):
    script = tmp / "worker.py"
    if not script.exists():
        script.write_text(WORKER)
    return subprocess.Popen(
        [sys.executable, str(script), str(path), name, str(rounds), json.dumps(channels)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def data(path: Path, pid: str) -> dict[str, Any]:
    with Workspace.open(path, create=False) as ws:
        return ws.production(pid).doc.to_data()


def names(path: Path, pid: str) -> set[str]:
    with Workspace.open(path, create=False) as ws:
        return {t.name for t in ws.production(pid).doc.all(model.Talent)}


def seed_hub(path: Path) -> str:
    with Workspace.open(path, member="hub") as ws:
        production = ws.create_production("End to End", kind="series")
        production.doc.add(model.Talent, id="SHARED", name="Shared Talent")
        assert production.id is not None
        return production.id


@pytest.mark.slow
def test_mixed_topology_concurrent_edits_with_faults_converge(tmp_path: Path) -> None:
    hub, p1, p2, p3, p4 = (tmp_path / n for n in ("hub", "p1", "p2", "p3", "p4"))
    folder = tmp_path / "shared-folder"
    folder.mkdir()
    pid = seed_hub(hub)
    Workspace.open(p3, member="p3").close()
    hub_token, p3_token = make_token(hub, "write"), make_token(p3, "write")
    s1 = Serve(hub, free_port()).start()
    s2 = Serve(p3, free_port()).start()  # P3 serves P4: peers syncing with each other
    live: subprocess.Popen[str] | None = None
    live_log = open(tmp_path / "live.log", "w")  # noqa: SIM115 - closed in finally
    workers: dict[str, subprocess.Popen[str]] = {}
    try:
        # P1 first takes the production, then stays live over WebSocket while it edits.
        with Workspace.open(p1, member="p1") as ws:
            sync_http(ws, s1.url, token=hub_token)
        live = subprocess.Popen(
            [
                str(CASTROOM),
                "--workspace",
                str(p1),
                "sync",
                s1.url,
                "--live",
                "--token",
                hub_token,
                "--duration",
                "240",
            ],
            stdout=live_log,  # a file: a pipe nobody reads could fill up and stall it
            stderr=subprocess.STDOUT,
            text=True,
        )
        rounds = 12
        workers["p1"] = worker(tmp_path, p1, "p1", rounds, {})
        workers["p2"] = worker(
            tmp_path, p2, "p2", rounds, {"http": [s1.url, hub_token], "folder": str(folder)}
        )
        workers["p3"] = worker(tmp_path, p3, "p3", rounds, {"folder": str(folder)})
        workers["p4"] = worker(tmp_path, p4, "p4", rounds, {"http": [s2.url, p3_token]})

        # Fault 1: the hub server dies (SIGKILL, mid-sync for whoever is talking to it)
        # and comes back on the same port; the live client reconnects by itself.
        time.sleep(1.0)
        s1.kill()
        time.sleep(0.5)
        s1.start()
        # Fault 2: one of P2's folder files is cut short (a bad copy on the shared drive).
        p2_files = wait_until(lambda: sorted((folder / FOLDER_NAME / pid).rglob("*.yupd")))
        assert p2_files
        victim = max(p2_files, key=lambda p: p.stat().st_size)
        with contextlib.suppress(FileNotFoundError):  # compacted away meanwhile: fine too
            victim.write_bytes(victim.read_bytes()[: victim.stat().st_size // 2])

        results = {}
        for name, proc in workers.items():
            out, err = proc.communicate(timeout=120)
            assert proc.returncode == 0, f"{name}: {err}"
            results[name] = json.loads(out.strip().splitlines()[-1])
        expected = {f"{n}-{i}" for n in workers for i in range(rounds)} | {"Shared Talent"}

        # Settle: a few plain rounds over every channel (P1's live link keeps running).
        def settle() -> None:
            with Workspace.open(p2) as ws:
                sync_folder(ws, folder, echo=lambda _line: None)
                sync_http(ws, s1.url, token=hub_token)
                sync_folder(ws, folder, echo=lambda _line: None)
            with Workspace.open(p3) as ws:
                sync_folder(ws, folder, echo=lambda _line: None)
            with Workspace.open(p4) as ws:
                sync_http(ws, s2.url, token=p3_token)

        for _ in range(3):
            settle()
        if not wait_until(lambda: names(p1, pid) == expected):
            raise AssertionError(
                f"P1 lacks {sorted(expected - names(p1, pid))};"
                f" live sync said: {(tmp_path / 'live.log').read_text()[-3000:]}"
            )
        settle()
        for path in (hub, p1, p2, p3, p4):
            assert names(path, pid) == expected, path.name
        reference = data(hub, pid)
        for path in (p1, p2, p3, p4):
            assert data(path, pid) == reference, f"{path.name} differs from the hub"
        # The text everyone typed into one notes field is all there, merged.
        notes = reference["talents"]["SHARED"]["notes"]
        for name in workers:
            for i in range(rounds):
                assert f"[{name}{i}]" in notes
    finally:
        for proc in workers.values():
            if proc.poll() is None:
                proc.kill()
                proc.communicate(timeout=10)
        if live is not None:
            live.terminate()
            try:
                live.wait(timeout=PATIENCE)
            except subprocess.TimeoutExpired:
                live.kill()
                live.wait(timeout=5)
        live_log.close()
        s1.stop()
        s2.stop()


def test_peer_killed_mid_sync_then_converges(tmp_path: Path) -> None:
    """A `castroom sync` process is SIGKILLed at different moments of a big sync; its
    workspace still opens, loses nothing it had, and the next sync completes."""
    hub, peer = tmp_path / "hub", tmp_path / "peer"
    pid = seed_hub(hub)
    token = make_token(hub, "write")
    with Workspace.open(hub) as ws:
        ws.production(pid).doc.put_many(
            model.Talent(id=f"H{i:05d}", name=f"Hub {i}", notes="n" * 200) for i in range(3000)
        )
    with ServerThread(hub) as server, Workspace.open(peer, member="peer") as ws:
        sync_http(ws, server.url, token=token)
        ws.production(pid).doc.put_many(
            model.Talent(id=f"P{i:05d}", name=f"Peer {i}", notes="p" * 200) for i in range(3000)
        )
        mine = ws.production(pid).doc.to_data()
        ws.close()
        script = tmp_path / "one_sync.py"
        script.write_text(
            "import sys\n"
            "from castroom.core.workspace import Workspace\n"
            "from castroom.sync.client import sync_http\n"
            "ws = Workspace.open(sys.argv[1])\n"
            "ws.production().doc.state_vector()\n"
            "print('go', flush=True)\n"
            "sync_http(ws, sys.argv[2], token=sys.argv[3])\n"
            "print('done', flush=True)\n"
        )
        finished = 0
        for delay in (0.02, 0.1, 0.25):
            proc = subprocess.Popen(
                [sys.executable, str(script), str(peer), server.url, token],
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
            )
            assert proc.stdout is not None
            assert proc.stdout.readline().strip() == "go"  # the sync starts now...
            time.sleep(delay)
            proc.kill()  # ...and the peer dies somewhere inside it
            out, _ = proc.communicate(timeout=10)
            finished += "done" in out
            with Workspace.open(peer) as again:  # opens, and holds at least what it had
                have = again.production(pid).doc.to_data()
                for key, entity in mine["talents"].items():
                    assert have["talents"][key] == entity
        assert finished < 3, "every sync finished before the kill: nothing was tested"
        with Workspace.open(peer) as again:
            sync_http(again, server.url, token=token)
        assert data(peer, pid) == data(hub, pid)
        assert len(data(hub, pid)["talents"]) == 6001


class CuttingProxy:
    """Forwards loopback TCP to a port, but cuts each connection after ``limit`` bytes
    going up (a link dropped mid-message)."""

    def __init__(self, target_port: int, limit: int) -> None:
        self.target_port = target_port
        self.limit = limit
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.port = self.listener.getsockname()[1]
        self.cuts = 0
        self.stopped = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.stopped:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        upstream = socket.create_connection(("127.0.0.1", self.target_port))
        sent = [0]

        def down() -> None:
            with contextlib.suppress(OSError):
                while data := upstream.recv(65536):
                    client.sendall(data)

        threading.Thread(target=down, daemon=True).start()
        with contextlib.suppress(OSError):
            while data := client.recv(65536):
                room = self.limit - sent[0]
                upstream.sendall(data[:room])
                sent[0] += min(len(data), room)
                if sent[0] >= self.limit:
                    self.cuts += 1
                    break
        for sock in (client, upstream):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def close(self) -> None:
        self.stopped = True
        self.listener.close()


def test_connection_cut_mid_message_changes_nothing_then_converges(tmp_path: Path) -> None:
    """HTTP pushes cut at many byte offsets: the server merges a whole update or nothing,
    the client reports a clear error and keeps its edits; a clean sync then converges."""
    from castroom.core.errors import CastroomError

    hub, peer = tmp_path / "hub", tmp_path / "peer"
    pid = seed_hub(hub)
    token = make_token(hub, "write")
    with ServerThread(hub) as server, Workspace.open(peer) as ws, Workspace.open(hub) as hub_ws:
        sync_http(ws, server.url, token=token)
        ws.production(pid).doc.put_many(
            model.Talent(id=f"P{i:04d}", name=f"Peer {i}") for i in range(300)
        )
        before_hub = hub_ws.production(pid).doc.to_data()
        mine = ws.production(pid).doc.to_data()
        for limit in (10, 200, 600, 2_000, 8_000, 15_000):
            proxy = CuttingProxy(server.port, limit)
            try:
                with pytest.raises(CastroomError) as refused:
                    sync_http(ws, f"http://127.0.0.1:{proxy.port}", token=token, timeout=5)
                assert "\n" not in str(refused.value)
                assert proxy.cuts >= 1
            finally:
                proxy.close()
            now = hub_ws.production(pid).doc.to_data()
            assert now in (before_hub, mine), "the server merged part of an update"
            assert ws.production(pid).doc.to_data() == mine  # nothing lost locally
        sync_http(ws, server.url, token=token)
        assert hub_ws.production(pid).doc.to_data() == ws.production(pid).doc.to_data() == mine


# -- property-based convergence ---------------------------------------------------------------

OPS = st.lists(
    st.tuples(
        st.integers(0, 2),  # which peer
        st.sampled_from(["add", "edit", "text", "delete", "sync"]),
        st.integers(0, 1_000),
    ),
    min_size=1,
    max_size=25,
)


@pytest.mark.slow
def test_convergence_property_folder_and_http(tmp_path: Path) -> None:  # noqa: C901 - a property test's scenario
    """Any interleaving of edits (adds, same-field edits, text, deletes) and partial
    syncs among three peers (peer 0 on the server, peer 1 on server and folder, peer 2
    on the folder only) converges, with every added entity everywhere, after a final
    round of syncs."""
    hub = tmp_path / "hub"
    pid = seed_hub(hub)
    token = make_token(hub, "write")
    counter = [0]
    quiet: Any = lambda _line: None  # noqa: E731

    with ServerThread(hub) as server:

        @settings(max_examples=examples(15), suppress_health_check=list(HealthCheck))
        @given(OPS)
        def run(ops: list[tuple[int, str, int]]) -> None:
            counter[0] += 1
            root = tmp_path / f"case{counter[0]}"
            folder = root / "folder"
            folder.mkdir(parents=True)
            peers = [Workspace.open(root / f"p{i}", member=f"p{i}") for i in range(3)]
            try:

                def sync(i: int) -> None:
                    if i in (0, 1):
                        sync_http(peers[i], server.url, token=token, production=pid)
                    if i in (1, 2):
                        sync_folder(peers[i], folder, echo=quiet)

                sync(0)
                sync(1)
                sync(2)
                added: set[str] = set()
                for i, op, n in ops:
                    doc = peers[i].production(pid).doc
                    if op == "add":
                        added.add(doc.add(model.Talent, name=f"c{counter[0]}-{i}-{n}").id)
                    elif op == "edit":
                        doc.update(model.Talent, "SHARED", {"agent": f"{i}-{n}"})
                    elif op == "text":
                        doc.edit_text(model.Talent, "SHARED", "notes", n % 5, n % 3, f"{i}.{n}")
                    elif op == "delete" and added:
                        victim = sorted(added)[n % len(added)]
                        if doc.find(model.Talent, victim, include_deleted=True):
                            doc.delete(model.Talent, victim)
                    elif op == "sync":
                        sync(i)
                for _ in range(2):
                    for i in (0, 1, 2, 1, 0):
                        sync(i)
                reference = peers[0].production(pid).doc.to_data()
                for peer in peers[1:]:
                    assert peer.production(pid).doc.to_data() == reference
                assert added <= set(reference["talents"])  # deleted is a flag: never lost
            finally:
                for peer in peers:
                    peer.close()
                shutil.rmtree(root, ignore_errors=True)

        run()
