"""Batched media fetches (``POST /media/fetch``): many blobs in one stream, each hashed
as it arrives and stored only when it matches; a stream cut off part way or a blob
altered on the way is refused, asked for again, and never stored. Against a real
``castroom serve``, and against a real loopback HTTP server that breaks its answers
on purpose (a peer castroom cannot trust)."""

from __future__ import annotations

import hashlib
import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from media_helpers import jpeg
from patience import PATIENCE

from castroom.core import media
from castroom.core.blobs import BlobStore
from castroom.core.errors import CastroomError
from castroom.core.model import Talent
from castroom.core.workspace import Workspace
from castroom.sync import media_client
from castroom.sync.auth import TokenStore
from castroom.sync.media_client import BatchStream, batch_stream
from castroom.sync.server import ServerThread


def stored_files(workspace: Path) -> list[Path]:
    """Every file under the workspace's media folder, temporary ones included."""
    root = workspace / "media"
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


@pytest.fixture
def laptop(tmp_path: Path) -> Iterator[tuple[Workspace, str, dict[str, bytes]]]:
    """A workspace whose production refers to three headshots (and their thumbnails)
    whose bytes it has lost: (workspace, production id, hash -> the right bytes)."""
    with Workspace.open(tmp_path / "laptop", member="ana") as workspace:
        production = workspace.create_production("Tides")
        for i in range(3):
            talent = production.doc.add(Talent, name=f"Talent {i}")
            media.attach(production, Talent, talent.id, jpeg(tmp_path / f"{i}.jpg", seed=i))
        right = {}
        for digest in list(workspace.blobs.hashes()):
            right[digest] = workspace.blobs.path(digest).read_bytes()
            workspace.blobs.delete(digest)
        assert len(right) == 6
        yield workspace, production.id, right


class BreakingServer:
    """A loopback HTTP server answering ``POST /media/fetch`` from the right bytes, but
    breaking each answer as ``script`` says, one entry per request ("cut": the stream
    stops half way, the connection closes; "alter": one byte of the last blob
    flipped; "stranger": a blob nobody asked for, second; then good answers)."""

    def __init__(self, tmp: Path, right: dict[str, bytes], script: list[str]) -> None:
        self.source = BlobStore(tmp / "source")
        for data in right.values():
            self.source.put_bytes(data)
        self.script = list(script)
        self.asked: list[list[str]] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                hashes = json.loads(body)["hashes"]
                outer.asked.append(hashes)
                how = outer.script.pop(0) if outer.script else "good"
                if how == "stranger":
                    hashes = [hashes[0], hashlib.sha256(b"stray").hexdigest(), *hashes[1:]]
                answer = b"".join(batch_stream(outer.source, hashes, set(hashes)))
                sent = answer
                if how == "cut":
                    sent = answer[: len(answer) // 2]
                elif how == "alter":
                    flipped = bytearray(answer)
                    flipped[-20] ^= 0xFF  # inside the last blob (then only "end\n")
                    sent = bytes(flipped)
                self.send_response(200)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(sent)
                if len(sent) < len(answer):
                    self.close_connection = True

        class Quiet(http.server.ThreadingHTTPServer):
            def handle_error(self, request: object, client_address: object) -> None:
                pass  # the client hanging up on a broken answer is the point

        self.server = Quiet(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> BreakingServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def fetch(workspace: Workspace, pid: str, url: str) -> media_client.MediaMoved:
    with httpx.Client(base_url=url, timeout=PATIENCE) as client:
        return media_client.exchange(client, workspace, [pid], mode="all", send=False)


def assert_only_verified_blobs(workspace: Workspace, right: dict[str, bytes]) -> set[str]:
    """Every stored blob is a right one under its own hash; no temporary file is left.
    Returns the stored hashes."""
    files = stored_files(workspace.path)
    assert not [f for f in files if f.parent.name == "tmp"]
    held = set(workspace.blobs.hashes())
    assert len(files) == len(held)
    for digest in held:
        assert workspace.blobs.path(digest).read_bytes() == right[digest]
    return held


@pytest.mark.parametrize("breakage", ["cut", "alter", "stranger"])
def test_a_broken_batch_keeps_only_verified_blobs_and_asks_again_for_the_rest(
    laptop, tmp_path: Path, breakage: str
) -> None:
    workspace, pid, right = laptop
    with BreakingServer(tmp_path, right, [breakage]) as server:
        moved = fetch(workspace, pid, server.url)
    assert moved.fetched == 6 and not moved.refused
    assert assert_only_verified_blobs(workspace, right) == set(right)
    first, again = server.asked
    assert len(first) == 6
    # Only what the broken answer did not deliver intact was asked for again.
    assert 0 < len(again) < 6 and set(again) <= set(first)


def test_a_stream_cut_every_time_is_refused_after_three_tries_and_never_stored(
    laptop, tmp_path: Path
) -> None:
    workspace, pid, right = laptop
    refused = pytest.raises(CastroomError, match=r"refused after retries .*cut off")
    with BreakingServer(tmp_path, right, ["cut"] * 3) as server, refused:
        fetch(workspace, pid, server.url)
    assert len(server.asked) == 3
    held = assert_only_verified_blobs(workspace, right)
    assert 0 < len(held) < 6  # what arrived whole before a cut is kept, checked


def test_a_blob_altered_every_time_is_refused_and_the_rest_stored(laptop, tmp_path) -> None:
    workspace, pid, right = laptop
    refused = pytest.raises(CastroomError, match=r"1 media files refused.*do not match")
    with BreakingServer(tmp_path, right, ["alter"] * 3) as server, refused:
        fetch(workspace, pid, server.url)
    assert len(assert_only_verified_blobs(workspace, right)) == 5


def test_the_batch_route_serves_only_what_the_token_reaches(tmp_path: Path) -> None:
    with Workspace.open(tmp_path / "server") as workspace:
        tides = workspace.create_production("Tides")
        other = workspace.create_production("Other")
        talent = tides.doc.add(Talent, name="Ada Stone")
        media.attach(tides, Talent, talent.id, jpeg(tmp_path / "a.jpg", seed=1))
        mine = set(workspace.blobs.hashes())
        stray = workspace.blobs.put_bytes(b"nobody refers to this").hash
        tokens = TokenStore(workspace.store)
        read = tokens.create("read")[1]
        elsewhere = tokens.create("read", production=other.id)[1]
        right = {h: workspace.blobs.path(h).read_bytes() for h in mine}
    unknown = hashlib.sha256(b"not here").hexdigest()
    asked = [*sorted(mine), stray, unknown]
    with ServerThread(tmp_path / "server") as server:

        def answer(token: str) -> list[tuple[str, bytes | None]]:
            response = httpx.post(
                f"{server.url}/media/fetch",
                json={"hashes": asked},
                headers={"Authorization": f"Bearer {token}"},
                timeout=PATIENCE,
            )
            assert response.status_code == 200, response.text
            stream = BatchStream([response.content])
            return [
                (h, None if size is None else b"".join(stream.body(size)))
                for h, size in stream.entries()
            ]

        assert answer(read) == [*sorted(right.items()), (stray, None), (unknown, None)]
        assert answer(elsewhere) == [(h, None) for h in asked]
        bad = httpx.post(
            f"{server.url}/media/fetch",
            json={"hashes": ["../etc"]},
            headers={"Authorization": f"Bearer {read}"},
            timeout=PATIENCE,
        )
        assert bad.status_code == 400 and "SHA-256" in bad.text
        assert (
            httpx.post(
                f"{server.url}/media/fetch", json={"hashes": asked}, timeout=PATIENCE
            ).status_code
            == 401
        )


def test_a_batched_upload_stores_what_checks_out_and_says_why_the_rest_did_not(
    tmp_path: Path,
) -> None:
    with Workspace.open(tmp_path / "server") as workspace:
        tides = workspace.create_production("Tides")
        for i in range(2):
            talent = tides.doc.add(Talent, name=f"Talent {i}")
            media.attach(tides, Talent, talent.id, jpeg(tmp_path / f"{i}.jpg", seed=40 + i))
        right = {h: workspace.blobs.path(h).read_bytes() for h in workspace.blobs.hashes()}
        for digest in right:
            workspace.blobs.delete(digest)
        write = TokenStore(workspace.store).create("write")[1]
    good, altered, *rest = sorted(right)
    stray = b"nobody refers to this"
    body = b"".join(
        [
            f"{good} {len(right[good])}\n".encode(),
            right[good],
            f"{altered} {len(right[altered])}\n".encode(),
            right[altered][:-1] + bytes([right[altered][-1] ^ 1]),
            f"{hashlib.sha256(stray).hexdigest()} {len(stray)}\n".encode(),
            stray,
            *[f"{h} {len(right[h])}\n".encode() + right[h] for h in rest],
            b"end\n",
        ]
    )
    auth = {"Authorization": f"Bearer {write}"}
    with ServerThread(tmp_path / "server") as server:
        answer = httpx.post(
            f"{server.url}/media/store", content=body, headers=auth, timeout=PATIENCE
        )
        assert answer.status_code == 200, answer.text
        result = answer.json()
        assert sorted(result["stored"]) == sorted([good, *rest])
        assert "do not match their hash" in result["refused"][altered]
        assert (
            "no production this token may write"
            in result["refused"][hashlib.sha256(stray).hexdigest()]
        )
        # A stream cut short stores nothing of the blob it cut, and says so.
        cut = f"{altered} {len(right[altered])}\n".encode() + right[altered][:100]
        broken = httpx.post(
            f"{server.url}/media/store", content=cut, headers=auth, timeout=PATIENCE
        )
        assert broken.status_code == 400 and "nothing of it stored" in broken.text
        assert (
            httpx.post(f"{server.url}/media/store", content=b"end\n", timeout=PATIENCE).status_code
            == 401
        )
    with Workspace.open(tmp_path / "server") as workspace:
        assert set(workspace.blobs.hashes()) == {good, *rest}
        for digest in workspace.blobs.hashes():
            assert workspace.blobs.path(digest).read_bytes() == right[digest]
        assert not list((workspace.blobs.root / "tmp").iterdir())
