"""The crash repros of issue 7 (tests/data/*.yupd, made by tests/data/make_hostile.py),
fed to every intake of a real castroom in a subprocess: a SIGSEGV (exit -11 / 139) fails
the test instead of killing pytest. Each must be refused with one line naming the limit
it breaks, and leave the production (memory, log, what a reload shows) as it was.

Before the bounded walk (castroom.core.yupdate.walk_update), 50,000 nested Any arrays
killed any process that decoded them (SIGSEGV), and 60,000 nested Y.Maps were merged,
stored and relayed, after which every read of the talents crashed."""

from __future__ import annotations

import base64
import hashlib
import http.server
import json
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import msgspec
import pytest
from patience import PATIENCE
from sync_helpers import make_token
from test_server import recv_frames
from test_sync_cli import Served
from websockets.sync.client import connect

from castroom.core import model
from castroom.core.bundle import BUNDLE_MAGIC, FORMAT_VERSION, Bundle, BundleEntry, _seal
from castroom.core.workspace import Workspace
from castroom.sync import protocol as p
from castroom.sync.folder import FOLDER_NAME

pytestmark = pytest.mark.slow

DATA = Path(__file__).parent / "data"
EXE = str(Path(sys.executable).with_name("castroom"))
#: Each regression file and the words its refusal must hold.
HOSTILE = {
    "deep_any_50k.yupd": "a value nested deeper than 32 levels",
    "nested_maps_60k.yupd": "Y types nested deeper than 32 levels",
    "nested_maps_2k.yupd": "Y types nested deeper than 32 levels",
}


def seed(path: Path) -> str:
    with Workspace.open(path, member="casting") as ws:
        production = ws.create_production("Harbour Lights")
        production.doc.add(model.Talent, name="Ada Stone")
        assert production.id
        return production.id


def state(path: Path, pid: str) -> tuple[str, int]:
    """What a fresh process loads, and the number of log rows (read in a subprocess, so
    that a poisoned store would crash it, not pytest)."""
    code = (
        "import json, sys\n"
        "from castroom.core.workspace import Workspace\n"
        "with Workspace.open(sys.argv[1], create=False) as ws:\n"
        "    doc = ws.production(sys.argv[2]).doc\n"
        "    rows = ws.store.db.execute('SELECT COUNT(*) FROM updates').fetchone()[0]\n"
        "    print(json.dumps([json.dumps(doc.to_data(), sort_keys=True, default=str), rows]))\n"
    )
    data, rows = json.loads(python(code, str(path), pid))
    return data, rows


def python(code: str, *args: str) -> str:
    """What ``code`` prints, run in a fresh interpreter (a crash fails the test there)."""
    done = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=PATIENCE
    )
    assert done.returncode == 0, (done.returncode, done.stderr[-2000:])
    return done.stdout


def castroom(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([EXE, *args], capture_output=True, text=True, timeout=120)


def test_the_api_refuses_each_repro_and_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "ws"
    pid = seed(path)
    before = state(path, pid)
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from castroom.core.errors import UpdateLimit\n"
        "from castroom.core.model import Talent\n"
        "from castroom.core.workspace import Workspace\n"
        "with Workspace.open(sys.argv[1]) as ws:\n"
        "    production = ws.production(sys.argv[2])\n"
        "    for name in sys.argv[3:]:\n"
        "        data = Path(name).read_bytes()\n"
        "        try:\n"
        "            production.apply_update(data, origin='sync', device='evil')\n"
        "        except UpdateLimit as exc:\n"
        "            print(exc)\n"
        "        production.doc.all(Talent)\n"
    )
    files = [str(DATA / name) for name in HOSTILE]
    done = subprocess.run(
        [sys.executable, "-c", code, str(path), pid, *files],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, (done.returncode, done.stderr[-2000:])
    lines = done.stdout.splitlines()
    assert len(lines) == len(HOSTILE)
    for line, needle in zip(lines, HOSTILE.values(), strict=True):
        assert line.startswith("update beyond castroom's limits: ") and needle in line
    assert state(path, pid) == before


def test_folder_sync_refuses_planted_files_on_every_run(tmp_path: Path) -> None:
    path, share = tmp_path / "ws", tmp_path / "share"
    share.mkdir()
    pid = seed(path)
    assert castroom("--workspace", str(path), "sync", str(share)).returncode == 0
    before = state(path, pid)
    planted = share / FOLDER_NAME / pid / "evil-device"
    planted.mkdir(parents=True)
    for seq, name in enumerate(HOSTILE, start=1):
        data = (DATA / name).read_bytes()
        digest = hashlib.blake2b(data, digest_size=16).hexdigest()  # as the folder names it
        (planted / f"{seq:08d}-{digest}.yupd").write_bytes(data)
    done = castroom("--workspace", str(path), "sync", str(share))
    assert done.returncode >= 0, done.stderr[-2000:]
    said = done.stdout + done.stderr
    for needle in set(HOSTILE.values()):
        assert needle in said, said
    # The files stay in the share: later runs pass over them (said once), never crash.
    again = castroom("--workspace", str(path), "sync", str(share))
    assert again.returncode == 0, again.stderr[-2000:]
    assert state(path, pid) == before


def test_bundle_apply_refuses_each_repro(tmp_path: Path) -> None:
    path = tmp_path / "ws"
    pid = seed(path)
    before = state(path, pid)
    for name, needle in HOSTILE.items():
        entry = BundleEntry(id=pid, title="Harbour Lights", update=(DATA / name).read_bytes())
        bundle = Bundle(
            version=FORMAT_VERSION, created=0.0, member="evil", device="evil", productions=[entry]
        )
        file = tmp_path / f"{name}.castroom"
        file.write_bytes(_seal(BUNDLE_MAGIC, msgspec.msgpack.encode(bundle)))
        done = castroom("--workspace", str(path), "bundle", "apply", str(file))
        assert done.returncode == 1, (done.returncode, done.stderr[-2000:])
        assert needle in done.stderr and "Traceback" not in done.stderr, done.stderr
    assert state(path, pid) == before


def test_the_server_survives_every_repro_from_read_and_write_peers(tmp_path: Path) -> None:
    path = tmp_path / "server"
    pid = seed(path)
    write, read = make_token(path, "write"), make_token(path, "read")
    before = state(path, pid)
    server = Served(path, tmp_path / "serve.log")
    try:
        ws_url = server.url.replace("http", "ws", 1) + f"/sync/{pid}"
        for name, needle in HOSTILE.items():
            data = (DATA / name).read_bytes()
            pushed = httpx.post(
                f"{server.url}/sync/{pid}/push",
                headers={"Authorization": f"Bearer {write}"},
                content=data,
                timeout=PATIENCE,
            )
            assert pushed.status_code == 400 and needle in pushed.text, pushed.text
            # A read-only peer's step 2 and update are dropped unparsed.
            with connect(
                f"{ws_url}?token={read}", proxy=None, open_timeout=PATIENCE, max_size=None
            ) as conn:
                conn.send(p.step2_frame(data))
                conn.send(p.update_frame(data))
                is_auth = lambda m: m.type is p.MessageType.AUTH  # noqa: E731
                told = [m for m in recv_frames(conn, 5, until=is_auth) if is_auth(m)]
                assert told and b"read-only" in told[0].payload
            # A writer's update is refused: the socket is closed with the reason.
            with connect(
                f"{ws_url}?token={write}", proxy=None, open_timeout=PATIENCE, max_size=None
            ) as conn:
                conn.send(p.update_frame(data))
                with pytest.raises(Exception) as closed:  # websockets' ConnectionClosed
                    recv_frames(conn, 5)
                assert needle in str(getattr(closed.value, "rcvd", None) or closed.value)
            assert server.proc.poll() is None, server.log.read_text()[-2000:]
            assert httpx.get(f"{server.url}/health", timeout=PATIENCE).status_code == 200
    finally:
        code = server.stop()
    assert code in (0, -15), server.log.read_text()[-2000:]
    assert state(path, pid) == before


def test_a_production_poisoned_by_an_older_castroom_opens_again(tmp_path: Path) -> None:
    """What an older castroom merged and stored (60,000 nested maps in the log) is moved
    out of the log into the quarantine on the first load, said once: the production
    opens, lists and checks again, holding exactly what it held before the poison, later
    commands say nothing, and `castroom quarantine` lists and exports the bytes."""
    path = tmp_path / "ws"
    pid = seed(path)
    good, _ = state(path, pid)
    poison = (DATA / "nested_maps_60k.yupd").read_bytes()
    with Workspace.open(path) as ws:  # stored as the older version did: no walk
        seq = ws.store.append(pid, poison, member="evil", device="evil", origin="sync")
    first = castroom("--workspace", str(path), "list", "talents")
    assert first.returncode == 0, (first.returncode, first.stderr[-2000:])
    assert first.stderr.strip() == (
        "Warning: 1 stored update(s) of production Harbour Lights do not load (update beyond"
        " castroom's limits: Y types nested deeper than 32 levels): 1 moved out of its log"
        " into the quarantine, kept and never loaded again (`castroom quarantine` lists and"
        " exports them); the production opens with everything else"
    )
    assert "Ada Stone" in first.stdout
    for command in (["check"], ["list", "talents"], ["compact"]):
        done = castroom("--workspace", str(path), *command)
        assert done.returncode == 0 and done.stderr == "", (done.returncode, done.stderr)
    assert state(path, pid)[0] == good
    listed = castroom(
        "--workspace", str(path), "quarantine", "--json", "--export", str(tmp_path / "out")
    )
    assert listed.returncode == 0, listed.stderr
    (row,) = json.loads(listed.stdout)
    assert (row["entry"], row["member"], row["device"], row["bytes"]) == (
        seq,
        "evil",
        "evil",
        len(poison),
    )
    assert "Y types nested deeper than 32 levels" in row["reason"]
    assert Path(row["file"]).read_bytes() == poison
    assert Path(row["file"]).stat().st_mode & 0o077 == 0


class _HostileServer:
    """A stand-in for `castroom serve` that answers every pull with ``poison``."""

    def __init__(self, pid: str, poison: bytes) -> None:
        listing = json.dumps(
            {"scope": "write", "productions": [{"id": pid, "title": "Harbour Lights"}]}
        ).encode()

        class Handler(http.server.BaseHTTPRequestHandler):
            def _send(self, body: bytes, headers: dict[str, str]) -> None:
                self.send_response(200)
                for name, value in {**headers, "Content-Length": str(len(body))}.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                self._send(listing, {"Content-Type": "application/json"})

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                state = base64.b64encode(b"\x00").decode()
                self._send(poison, {p.STATE_VECTOR_HEADER: state})

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def test_the_sync_client_refuses_a_hostile_servers_answer(tmp_path: Path) -> None:
    path = tmp_path / "ws"
    pid = seed(path)
    before = state(path, pid)
    for name, needle in HOSTILE.items():
        server = _HostileServer(pid, (DATA / name).read_bytes())
        try:
            done = castroom("--workspace", str(path), "sync", server.url, "--token", "x")
        finally:
            server.close()
        assert done.returncode == 1, (done.returncode, done.stderr[-2000:])
        assert needle in done.stderr and "Traceback" not in done.stderr, done.stderr
    assert state(path, pid) == before
