"""Helpers shared by the sync tests: real Node Yjs peers, the stock Node relay, tokens,
bounded waits. Every process started here is bounded in time and killed by its owner."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import queue
import shutil
import signal
import socket
import sqlite3
import struct
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from patience import PATIENCE

from castroom.core.workspace import Workspace

F = TypeVar("F", bound=Callable[..., Any])

NODE_DIR = Path(__file__).parent / "interop"
NODE_PACKAGES = (
    "yjs",
    "y-websocket",
    "ws",
    "@y/websocket-server",
    "@hocuspocus/server",
    "@hocuspocus/provider",
    "@hocuspocus/extension-redis",
)


def node_missing_reason() -> str | None:
    """Why the Node interop peers cannot run here (Node itself is absent), or None.

    Only a missing Node skips the interop tests: where Node is installed, missing npm
    packages are a set-up error, reported by :func:`node_packages_problem`."""
    if shutil.which("node") is None:
        return "node is not installed (the Yjs interoperability tests need Node.js)"
    return None


def node_packages_problem() -> str | None:
    """Which npm packages the interop tests need are missing from tests/interop, or None."""
    missing = [p for p in NODE_PACKAGES if not (NODE_DIR / "node_modules" / p).is_dir()]
    if missing:
        return (
            f"node is installed but the npm packages {', '.join(missing)} are not in"
            " tests/interop/node_modules: run `make test` (it runs npm install there) or"
            " `cd tests/interop && npm install --no-audit --no-fund`"
        )
    return None


#: A test (or ``pytestmark``) that runs Node peers: skipped, with the reason, only where Node
#: is absent; where Node is installed, missing npm packages fail it (a broken set-up must
#: not pass as a skip). The fixture is registered for every test module by conftest.py.
NODE_PEERS = [
    pytest.mark.skipif(node_missing_reason() is not None, reason=str(node_missing_reason())),
    pytest.mark.usefixtures("npm_packages"),
]


def needs_node_peers(test: F) -> F:
    """:data:`NODE_PEERS` for one test."""
    for mark in NODE_PEERS:
        test = mark(test)
    return test


@pytest.fixture
def npm_packages() -> None:
    """Fails the test when tests/interop lacks an npm package the Node peers need."""
    problem = node_packages_problem()
    if problem:
        pytest.fail(problem, pytrace=False)


def wait_until(predicate: Callable[[], Any], timeout: float = PATIENCE, step: float = 0.05) -> Any:
    """Poll ``predicate`` until it returns something truthy or ``timeout`` passes; its
    last value (falsy when it timed out)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(step)


def raw_websocket(port: int, path: str) -> socket.socket:
    """A WebSocket opened by hand on 127.0.0.1 (``path`` with its query), so frames can be
    sent as bytes of our choosing: header first, cut short, malformed."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=PATIENCE)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        .encode()
    )  # fmt: skip
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(4096)
    assert head.startswith(b"HTTP/1.1 101"), head
    assert head.endswith(b"\r\n\r\n"), "the server sent frames before the handshake ended"
    return sock


def server_frames(sock: socket.socket, timeout: float) -> Iterator[tuple[int, bytes]]:
    """Each frame the server sends on a :func:`raw_websocket`, as (opcode, payload), until
    it closes the socket or ``timeout`` seconds have passed."""
    deadline = time.monotonic() + timeout
    data = b""
    while True:
        while len(data) >= 2:
            size, at = data[1] & 0x7F, 2
            if size == 126:
                size, at = struct.unpack("!H", data[2:4])[0], 4
            elif size == 127:
                size, at = struct.unpack("!Q", data[2:10])[0], 10
            if len(data) < at + size:
                break
            yield data[0] & 0x0F, data[at : at + size]
            data = data[at + size :]
        left = deadline - time.monotonic()
        if left <= 0:
            return
        sock.settimeout(left)
        try:
            chunk = sock.recv(65536)
        except (TimeoutError, ConnectionResetError):
            return
        if not chunk:
            return
        data += chunk


def close_code(sock: socket.socket, timeout: float) -> int | None:
    """The code of the first close frame the server sends within ``timeout`` (the frames
    before it, such as its step 1, are skipped), or None."""
    for opcode, payload in server_frames(sock, timeout):
        if opcode == 0x8:  # close
            return int(struct.unpack("!H", payload[:2])[0])
    return None


def ctrl_c_works() -> None:
    """``preexec_fn`` for a child the test stops with SIGINT, as Ctrl-C would. A child
    of a background job (``cmd &`` in a script, as CI may start the suite) inherits
    SIGINT ignored, and Python then never raises KeyboardInterrupt: the test would wait
    out its bound and kill it, never seeing the Ctrl-C path it means to exercise."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def stop_process(proc: subprocess.Popen[Any], sig: int = 15, *, timeout: float = PATIENCE) -> int:
    """Ask a child process to stop (SIGTERM by default), SIGKILL it if it has not gone
    within ``timeout``; its exit status."""
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=PATIENCE)
    return proc.returncode


def make_token(
    workspace_path: Path,
    scope: str = "write",
    production: str | None = None,
    name: str | None = None,
) -> str:
    from castroom.sync.auth import TokenStore

    with Workspace.open(workspace_path, create=False) as ws:
        _, token = TokenStore(ws.store).create(
            scope, production=production, name=name or f"test-{scope}"
        )
    return token


def copy_workspace(source: Path, target: Path) -> Path:
    """A copy of a workspace folder that may be open in this process (a ``ServerThread``,
    a ``Workspace``): its database through SQLite's backup API, everything else as files.

    Never ``shutil.copytree`` an open workspace: closing any descriptor of a file drops
    every POSIX lock this process holds on it, SQLite's included. The next process to open
    the database then believes it is alone: it truncates the shared-memory file that live
    connections here have mapped (SIGBUS on their next read) or, as it closes, deletes the
    -wal and -shm under them (their later commits are lost)."""
    from castroom.core.workspace import DB_NAME

    shutil.copytree(source, target, ignore=shutil.ignore_patterns(f"{DB_NAME}*"))
    database = source / DB_NAME
    if database.exists():
        with (
            contextlib.closing(sqlite3.connect(database)) as live,
            contextlib.closing(sqlite3.connect(target / DB_NAME)) as copy,
        ):
            live.backup(copy)
        (target / DB_NAME).chmod(0o600)
    return target


class _Lines:
    """A child process's stdout as JSON lines, read by a thread into a queue."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        self.lines: queue.Queue[dict[str, Any]] = queue.Queue()
        self.events: list[dict[str, Any]] = []
        self.raw: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.raw.append(line)
            try:
                item = json.loads(line)
            except ValueError:
                continue
            if "event" in item:
                self.events.append(item)
            self.lines.put(item)

    def next(self, predicate: Callable[[dict[str, Any]], bool], timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no matching line from node; got {''.join(self.raw)[-2000:]}")
            try:
                item = self.lines.get(timeout=left)
            except queue.Empty:
                continue
            if predicate(item):
                return item


class NodePeer:
    """A stock Yjs client (yjs + y-websocket WebsocketProvider, in Node) in one room, or
    with ``protocol="hocuspocus"`` a stock ``@hocuspocus/provider`` on one document."""

    def __init__(
        self,
        url: str,
        room: str,
        *,
        token: str | None = None,
        name: str = "node-yjs",
        protocol: str = "y-websocket",
        session_aware: bool = False,
    ) -> None:
        args = ["node", "yclient.mjs", "--url", url, "--room", room, "--name", name]
        args += ["--protocol", protocol, "--session", "1" if session_aware else "0"]
        if token:
            args += ["--token", token]
        args += ["--lifetime", "120000"]
        self.proc = subprocess.Popen(
            args,
            cwd=NODE_DIR,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.out = _Lines(self.proc)
        self._sent = 0

    def wait_synced(self, timeout: float = PATIENCE) -> None:
        if any(e.get("event") == "synced" for e in self.out.events):
            return
        self.out.next(lambda item: item.get("event") == "synced", timeout)

    def wait_event(self, event: str, timeout: float = PATIENCE) -> dict[str, Any]:
        """The first line announcing ``event`` (already seen, or still to come)."""
        for item in self.out.events:
            if item.get("event") == event:
                return item
        return self.out.next(lambda item: item.get("event") == event, timeout)

    def request(self, op: str, timeout: float = PATIENCE, **fields: Any) -> dict[str, Any]:
        """Ask the peer to do ``op``; its reply within ``timeout`` s. A ``wait`` op (for
        a field to hold a value) gives up in Node after the same time, with its words."""
        assert self.proc.stdin is not None
        number = self._sent
        self._sent += 1
        if op == "wait":
            fields.setdefault("timeout", int(timeout * 1000))
        self.proc.stdin.write(json.dumps({"op": op, **fields}) + "\n")
        self.proc.stdin.flush()
        reply = self.out.next(lambda item: item.get("reply") == number, timeout + 10)
        if not reply.get("ok"):
            raise AssertionError(f"node {op} failed: {reply.get('error')}")
        return reply

    def dump(self) -> dict[str, Any]:
        return self.request("dump")["data"]

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.request("close", timeout=5)
                self.proc.wait(timeout=5)
            except Exception:
                self.proc.kill()
                self.proc.wait(timeout=5)
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()

    def __enter__(self) -> NodePeer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


#: Seconds a Node relay or server may take to start and say its port.
NODE_START = PATIENCE


class NodeRelay:
    """The stock Yjs WebSocket relay (npm ``@y/websocket-server``) on 127.0.0.1."""

    script = "relay.mjs"

    def __init__(self, port: int = 0, *args: str) -> None:
        self.proc = subprocess.Popen(
            ["node", self.script, "--port", str(port), "--lifetime", "300000", *args],
            cwd=NODE_DIR,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.out = _Lines(self.proc)
        self.port = int(self.out.next(lambda item: "port" in item, NODE_START)["port"])
        self.url = f"ws://127.0.0.1:{self.port}"

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=5)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()

    def __enter__(self) -> NodeRelay:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class NodeHocuspocus(NodeRelay):
    """A stock Hocuspocus server (npm ``@hocuspocus/server``) on 127.0.0.1; arguments as
    tests/interop/hocuspocus.mjs takes them (``--token T``, ``--redis-port P``, ...)."""

    script = "hocuspocus.mjs"

    @property
    def pid(self) -> int:
        return self.proc.pid


def make_cert(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key, in ``folder`` (openssl)."""
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is not installed (needed to make a test certificate)")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
        timeout=PATIENCE,
    )
    return cert, key


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def redis_missing_reason() -> str | None:
    """Why the Redis scale-out tests cannot run (no ``redis-server``), or None. Where
    CASTROOM_REQUIRE_REDIS is set (``.ci/run`` sets it after installing the Debian
    package) a missing server is a set-up error, reported by the tests as a failure."""
    if shutil.which("redis-server") is None:
        return "redis-server is not installed (Debian: apt-get install redis-server)"
    return None


class RedisServer:
    """A throwaway ``redis-server`` on 127.0.0.1 (a free port, no persistence, its files
    in ``folder``), stopped by its PID."""

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        for _attempt in range(5):
            self.port = free_port()
            self.proc = subprocess.Popen(
                [
                    "redis-server",
                    "--port",
                    str(self.port),
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
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            if self._ready():
                return
            self.close()
        raise RuntimeError("redis-server did not start")

    def _ready(self, timeout: float = PATIENCE) -> bool:
        import socket

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.proc.poll() is None:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        return True
            except OSError:
                time.sleep(0.05)
        return False

    def close(self) -> None:
        stop_process(self.proc)
        if self.proc.stdout is not None:
            self.proc.stdout.close()

    def __enter__(self) -> RedisServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def drop_read_copies(workspace_path: Path) -> None:
    """Drop a workspace's read copies (derived data): the next read-only command loads
    the CRDT, as the first read of a production this workspace never read nor made."""
    with contextlib.closing(sqlite3.connect(workspace_path / "castroom.db")) as db, db:
        db.execute("DELETE FROM read_copies")
