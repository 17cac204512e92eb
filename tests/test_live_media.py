"""Live syncs carry blobs: a ``castroom sync --live`` process (y-websocket and Hocuspocus
modes, against a real ``castroom serve``) fetches the headshots a peer's attach brings,
and sends the files attached on its own workspace by another process."""

from __future__ import annotations

import contextlib
import hashlib
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from media_helpers import jpeg
from sync_helpers import (
    NodeHocuspocus,
    NodeRelay,
    make_token,
    needs_node_peers,
    stop_process,
    wait_until,
)

from castroom.core.workspace import Workspace
from castroom.sync.live_media import media_base, touches_media
from castroom.sync.server import ServerThread
from tests.test_cli_core import ok
from tests.test_media_sync import blob_files

CASTROOM = Path(sys.executable).with_name("castroom")


class LiveProcess:
    """``castroom sync ... --live`` in its own process, its output collected (it lives
    past every wait of the test, which stops it)."""

    def __init__(self, workspace: Path, *args: str) -> None:
        self.proc = subprocess.Popen(
            [str(CASTROOM), "-w", str(workspace), "sync", *args, "--live", "--duration", "300"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)

    def said(self, text: str) -> bool:
        return any(text in line for line in self.lines)

    def output(self) -> str:
        return "".join(self.lines)

    def stop(self) -> None:
        stop_process(self.proc)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def listed(cli, workspace: Path) -> list[dict]:
    return json.loads(ok(cli("media", "list", "--json", workspace=workspace)))


@dataclass
class LiveRoom:
    """A real server, laptop A (synced by the CLI) and laptop B in a live process."""

    server: ServerThread
    server_path: Path
    a: Path
    b: Path
    token: str
    live: LiveProcess

    def sync_a(self, cli, *args: str) -> str:
        return ok(cli("sync", self.server.url, "--token", self.token, *args, workspace=self.a))


@contextlib.contextmanager
def live_room(tmp_path: Path, cli, mode: str = "y-websocket") -> Iterator[LiveRoom]:
    server_path, a, b = tmp_path / "server", tmp_path / "laptop-a", tmp_path / "laptop-b"
    with Workspace.open(server_path) as ws:
        pid = ws.create_production("Tides").id
    token = make_token(server_path, "write")
    with ServerThread(server_path) as server:
        ok(cli("sync", server.url, "--token", token, workspace=a))
        ok(cli("sync", server.url, "--token", token, workspace=b))
        if mode == "hocuspocus":
            url = server.ws_url.removesuffix("/sync") + "/hocuspocus"
            live = LiveProcess(b, url, "--protocol", "hocuspocus", "--token", token)
        elif mode == "token-in-ws-url":  # no --token: the URL's is the files' token too
            live = LiveProcess(b, f"{server.ws_url}?token={token}", "--production", str(pid))
        else:
            live = LiveProcess(b, server.url, "--token", token)
        try:
            assert wait_until(lambda: live.said("live: 1 production")), live.output()
            yield LiveRoom(server, server_path, a, b, token, live)
        finally:
            live.stop()


@pytest.mark.parametrize("mode", ["y-websocket", "hocuspocus", "token-in-ws-url"])
def test_a_live_session_fetches_new_headshots_and_sends_its_own(
    tmp_path: Path, cli, mode: str
) -> None:
    with live_room(tmp_path, cli, mode) as room:
        a, b, live = room.a, room.b, room.live
        # A attaches a headshot and syncs it once: the live B fetches it and its thumbnail.
        ok(cli("add", "talent", "name=Ada Stone", workspace=a))
        face = jpeg(tmp_path / "ada.jpg", seed=21)
        ok(cli("attach", "talent", "Ada Stone", str(face), workspace=a))
        room.sync_a(cli)
        [entry] = listed(cli, a)
        wanted = {entry["media"]["hash"], entry["media"]["thumbnail"]}
        assert entry["media"]["hash"] == hashlib.sha256(face.read_bytes()).hexdigest()
        assert wait_until(lambda: wanted <= blob_files(b)), live.output()
        # Another process attaches on B's workspace: the live session sends the file.
        ok(cli("add", "talent", "name=Ben Hale", workspace=b))
        own = jpeg(tmp_path / "ben.jpg", seed=22)
        ok(cli("attach", "talent", "Ben Hale", str(own), workspace=b))
        mine = {m["media"]["hash"] for m in listed(cli, b)} - {entry["media"]["hash"]}
        assert wait_until(lambda: mine <= blob_files(room.server_path)), live.output()
        assert wait_until(lambda: live.said("media: sent 2")), live.output()
    assert live.said("media: fetched 2"), live.output()
    # B holds exactly the right bytes under each name.
    for digest in blob_files(b):
        data = (b / "media" / digest[:2] / digest[2:]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == digest


def test_only_media_changes_wake_the_mover_and_urls_map_to_the_server() -> None:
    assert touches_media({("talents", "t1"): {"media"}})
    assert touches_media({("candidates", "c1"): {"deleted", "stage"}})
    assert touches_media({("talents", "t2"): {"*"}})  # new to this document
    assert not touches_media({("talents", "t1"): {"notes", "rate"}})
    assert not touches_media({("roles", "r1"): {"media"}})
    assert media_base("ws://127.0.0.1:8765/sync") == "http://127.0.0.1:8765"
    assert media_base("wss://cast.example/hocuspocus") == "https://cast.example"
    assert media_base("http://127.0.0.1:8765/") == "http://127.0.0.1:8765"


def test_a_round_that_cannot_reach_the_server_is_retried_until_it_can(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncio

    from castroom.core import media
    from castroom.core.model import Talent
    from castroom.sync import client, live_media

    monkeypatch.setattr(live_media, "MAX_FAILURES", 100)  # the bound is not what is tested
    server_path = tmp_path / "server"
    with Workspace.open(server_path) as ws:
        production = ws.create_production("Tides")
        talent = production.doc.add(Talent, name="Ada Stone")
        media.attach(production, Talent, talent.id, jpeg(tmp_path / "ada.jpg", seed=23))
        wanted = set(ws.blobs.hashes())
    token = make_token(server_path, "read")
    with ServerThread(server_path) as server, Workspace.open(tmp_path / "laptop") as laptop:
        client.sync_http(laptop, server.url, token=token, media="none")
        port, url = server.port, server.url
    lines: list[str] = []

    async def main() -> None:
        with Workspace.open(tmp_path / "laptop") as laptop:
            mover = live_media.LiveMedia(
                laptop,
                url,
                lambda: [production.id],
                token=token,
                headers={},
                verify=False,
                say=lines.append,
                timeout=5,
            )
            task = asyncio.create_task(mover.run())
            try:
                for _ in range(600):  # the server is down: rounds fail and back off
                    if any("retrying in" in line for line in lines):
                        break
                    await asyncio.sleep(0.05)
                with ServerThread(server_path, port=port):
                    # The line comes after the files: wait for it, or cancelling the
                    # round between the two loses it.
                    for _ in range(600):
                        if any(line.startswith("media: fetched") for line in lines):
                            break
                        await asyncio.sleep(0.05)
            finally:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)

    asyncio.run(main())
    assert any(line.startswith("media: cannot reach") for line in lines), lines
    assert any(line.startswith("media: fetched 2") for line in lines), lines
    assert wanted <= blob_files(tmp_path / "laptop")


def test_a_file_uploaded_after_its_record_still_reaches_the_live_session(
    tmp_path: Path, cli
) -> None:
    with live_room(tmp_path, cli) as room:
        ok(cli("add", "talent", "name=Ada Stone", workspace=room.a))
        face = jpeg(tmp_path / "a.jpg", seed=24)
        ok(cli("attach", "talent", "Ada Stone", str(face), workspace=room.a))
        # The record first, the file not yet: B finds it on neither side.
        room.sync_a(cli, "--media", "none")
        assert wait_until(lambda: room.live.said("on neither side yet")), room.live.output()
        [entry] = listed(cli, room.a)
        wanted = {entry["media"]["hash"], entry["media"]["thumbnail"]}
        # The upload follows, with no further change to the document: B asks again.
        room.sync_a(cli)
        assert wait_until(lambda: wanted <= blob_files(room.b)), room.live.output()


def _blob(workspace: Path, digest: str) -> Path:
    return workspace / "media" / digest[:2] / digest[2:]


def test_one_shot_websocket_and_hocuspocus_syncs_move_the_files_too(tmp_path: Path, cli) -> None:
    """`castroom sync ws://…` (y-websocket) and `--protocol hocuspocus`, one-shot, with a
    real `castroom serve`: A's files reach the server, B fetches the headshot and the
    thumbnails eagerly and the reel with --media all; an altered file is refused and
    never stored."""
    from media_helpers import video

    from tests.test_cli_core import fails

    server_path, a, b = tmp_path / "server", tmp_path / "laptop-a", tmp_path / "laptop-b"
    with Workspace.open(server_path) as ws:
        pid = ws.create_production("Tides").id
    token = make_token(server_path, "write")
    with ServerThread(server_path) as server:
        ws_url = server.ws_url
        hp_url = ws_url.removesuffix("/sync") + "/hocuspocus"
        sync = ["--production", pid, "--token", token]
        ok(cli("sync", ws_url, *sync, workspace=a))
        ok(cli("add", "talent", "name=Ada Stone", workspace=a))
        face = jpeg(tmp_path / "ada.jpg", seed=31)
        reel = video(tmp_path / "reel.mp4", seconds=1.0)
        ok(cli("attach", "talent", "Ada Stone", str(face), workspace=a))
        ok(cli("attach", "talent", "Ada Stone", str(reel), workspace=a))
        out = ok(cli("sync", ws_url, *sync, workspace=a))
        # The headshot and its thumbnail; the reel, its poster and the poster's thumbnail.
        assert "media: sent 5" in out, out
        sent = blob_files(a)
        assert len(sent) == 5 and sent <= blob_files(server_path)

        out = ok(cli("sync", hp_url, "--protocol", "hocuspocus", *sync, workspace=b))
        assert "media: fetched 4" in out, out
        reel_hash = hashlib.sha256(reel.read_bytes()).hexdigest()
        assert blob_files(b) == sent - {reel_hash}
        # A second one-shot has nothing left to move (eager), and says nothing of media.
        assert "media:" not in ok(cli("sync", ws_url, *sync, workspace=b))

        # The server's copy of the reel is altered: refused every time, never stored.
        stored = _blob(server_path, reel_hash)
        original = stored.read_bytes()
        stored.write_bytes(original[:-1] + bytes([original[-1] ^ 1]))
        failed = fails(cli("sync", ws_url, *sync, "--media", "all", workspace=b))
        assert "media files refused after retries" in failed, failed
        assert reel_hash not in blob_files(b)
        stored.write_bytes(original)
        # On demand: that one reel, by name, whatever --media says.
        hocuspocus = ["--protocol", "hocuspocus", *sync]
        out = ok(cli("sync", hp_url, *hocuspocus, "--fetch", "reel.mp4", workspace=b))
        assert "media: fetched 1" in out, out
    assert blob_files(b) == sent
    assert _blob(b, reel_hash).read_bytes() == reel.read_bytes()
    # B sees the headshot with the server gone.
    [face_entry] = [m for m in listed(cli, b) if m["media"]["kind"] == "headshot"]
    assert face_entry["present"]


@needs_node_peers
def test_a_plain_relay_moves_the_records_and_says_once_that_files_stay(tmp_path: Path, cli) -> None:
    """Through the stock Node relay and a stock Hocuspocus there is nowhere to put
    files: the documents sync, and one line (once per command) says the files did not
    move."""
    a, b = tmp_path / "laptop-a", tmp_path / "laptop-b"
    with Workspace.open(a) as ws:
        pid = ws.create_production("Tides").id
    ok(cli("add", "talent", "name=Ada Stone", workspace=a))
    ok(cli("add", "talent", "name=Ben Hale", workspace=a))
    for name, seed in (("Ada Stone", 32), ("Ben Hale", 33)):
        made = jpeg(tmp_path / f"{seed}.jpg", seed=seed)
        ok(cli("attach", "talent", name, str(made), workspace=a))
    said = "is not a castroom server, so it holds no files"
    with NodeRelay() as relay:
        url = f"{relay.url}/sync"
        for laptop in (a, b):
            out = ok(cli("sync", url, "--production", pid, workspace=laptop))
            assert out.count(said) == 1, out
    assert blob_files(b) == set()
    assert {m["label"] for m in listed(cli, b)} == {"Ada Stone", "Ben Hale"}
    assert not any(m["present"] for m in listed(cli, b))
    with NodeHocuspocus(0, "--keep", "1", "--token", "s3cret") as hocuspocus:
        hp = ["--protocol", "hocuspocus", "--token", "s3cret"]
        out = ok(cli("sync", hocuspocus.url, *hp, workspace=a))
        assert out.count(said) == 1, out
    # Nothing referenced: nothing said.
    with Workspace.open(tmp_path / "plain") as ws:
        plain = ws.create_production("No Files").id
    with NodeRelay() as relay:
        out = ok(
            cli("sync", f"{relay.url}/sync", "--production", plain, workspace=tmp_path / "plain")
        )
        assert "media" not in out, out


@pytest.mark.parametrize("where", ["url", "hocuspocus-url"])
def test_a_token_given_only_in_the_websocket_url_fetches_the_files_too(
    tmp_path: Path, cli, where: str
) -> None:
    """`castroom sync ws://HOST:PORT/sync?token=…` against a real, token-protected
    `castroom serve`: the token in the URL lets the socket in, and the file requests that
    follow the documents over HTTP carry it too (they were refused with 401)."""
    from tests.test_sync_cli import Served

    server_path, a, b = tmp_path / "server", tmp_path / "laptop-a", tmp_path / "laptop-b"
    with Workspace.open(server_path) as ws:
        pid = ws.create_production("Tides").id
    token = make_token(server_path, "write")
    served = Served(server_path, tmp_path / "serve.log")
    try:
        ws_url = served.url.replace("http://", "ws://") + "/sync"
        ok(cli("sync", ws_url, "--production", pid, "--token", token, workspace=a))
        ok(cli("add", "talent", "name=Ada Stone", workspace=a))
        ok(cli("attach", "talent", "Ada Stone", str(jpeg(tmp_path / "ada.jpg")), workspace=a))
        assert "media: sent 2" in ok(cli("sync", ws_url, "--token", token, workspace=a))
        if where == "url":
            out = ok(cli("sync", f"{ws_url}?token={token}", "--production", pid, workspace=b))
        else:
            hocuspocus = ws_url.removesuffix("/sync") + f"/hocuspocus?token={token}"
            out = ok(
                cli(
                    "sync", hocuspocus, "--protocol", "hocuspocus", "--production", pid, workspace=b
                )
            )
        assert "media: fetched 2" in out, out
        assert blob_files(b) == blob_files(a)
        assert token not in out  # not echoed with the address
    finally:
        served.stop()
