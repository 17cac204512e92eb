"""Media between machines over HTTP, against a real server: attach on one laptop, sync,
and another laptop has the headshot and thumbnails (and, with --media all, the reel) even
with the server gone; range requests; token scopes; altered or mis-sized transfers
refused and nothing stored."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from media_helpers import jpeg, video
from patience import PATIENCE

from castroom.core.workspace import Workspace
from castroom.sync.auth import TokenStore
from castroom.sync.server import ServerThread
from tests.test_cli_core import fails, ok


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def blob_files(workspace: Path) -> set[str]:
    """The hashes of every blob a workspace holds (and any stray file, by its path)."""
    media = workspace / "media"
    if not media.exists():
        return set()
    return {p.parent.name + p.name for p in media.rglob("*") if p.is_file()}


class Room:
    """A server workspace with tokens, and two laptops that sync with it by the CLI."""

    def __init__(self, root: Path, cli) -> None:
        self.cli = cli
        self.server_path = root / "server"
        self.a, self.b = root / "laptop-a", root / "laptop-b"
        with Workspace.open(self.server_path) as ws:
            self.pid = ws.create_production("Tides").id
            self.other = ws.create_production("Other Show").id
            tokens = TokenStore(ws.store)
            self.write = tokens.create("write")[1]
            self.read = tokens.create("read")[1]
            self.only_other = tokens.create("read", production=self.other)[1]

    def sync(self, laptop: Path, url: str, *args: str, token: str | None = None):
        return self.cli("sync", url, "--token", token or self.write, *args, workspace=laptop)

    def listed(self, laptop: Path) -> list[dict]:
        return json.loads(
            ok(self.cli("--production", "Tides", "media", "list", "--json", workspace=laptop))
        )


@pytest.fixture
def room(tmp_path: Path, cli) -> Iterator[Room]:
    yield Room(tmp_path, cli)


@pytest.fixture
def server(room: Room) -> Iterator[ServerThread]:
    with ServerThread(room.server_path) as running:
        yield running


@pytest.fixture
def attached(room: Room, server: ServerThread, tmp_path: Path) -> dict[str, str]:
    """Laptop A adds Ada Stone with a headshot and a reel, and syncs them to the server."""
    ok(room.sync(room.a, server.url, "--production", "Tides"))
    ok(room.cli("add", "talent", "name=Ada Stone", workspace=room.a))
    face = jpeg(tmp_path / "ada.jpg", seed=3)
    reel = video(tmp_path / "reel.mp4", seconds=1.0)
    ok(room.cli("attach", "talent", "Ada Stone", str(face), workspace=room.a))
    ok(room.cli("attach", "talent", "Ada Stone", str(reel), workspace=room.a))
    out = ok(room.sync(room.a, server.url, "--production", "Tides"))
    # The headshot and its thumbnail; the reel, its poster and the thumbnail of that.
    assert "media: sent 5" in out
    return {"face": sha(face), "reel": sha(reel)}


def test_attach_on_a_then_b_has_headshot_and_thumbnails_offline(
    room: Room, server: ServerThread, attached: dict[str, str]
) -> None:
    assert {attached["face"], attached["reel"]} <= blob_files(room.server_path)
    out = ok(room.sync(room.b, server.url))
    assert "media: fetched" in out
    [face] = [m for m in room.listed(room.b) if m["media"]["kind"] == "headshot"]
    [reel] = [m for m in room.listed(room.b) if m["media"]["kind"] == "reel"]
    assert face["present"] and not reel["present"]  # reels wait for --media all
    here = blob_files(room.b)
    assert face["media"]["thumbnail"] in here and reel["media"]["poster"] in here
    assert attached["reel"] not in here

    server.stop()  # B is offline now: what it fetched is still there
    dest = room.b.parent / "thumb.jpg"
    ok(
        room.cli(
            "--production",
            "Tides",
            "media",
            "export",
            face["media"]["hash"],
            str(dest),
            "--part",
            "thumbnail",
            workspace=room.b,
        )
    )
    assert sha(dest) == face["media"]["thumbnail"]


def test_media_all_fetches_the_reel_and_a_second_sync_moves_nothing(
    room: Room, server: ServerThread, attached: dict[str, str]
) -> None:
    ok(room.sync(room.b, server.url, "--media", "none"))
    assert blob_files(room.b) == set()
    ok(room.sync(room.b, server.url, "--media", "all"))
    assert {attached["face"], attached["reel"]} <= blob_files(room.b)
    assert "media:" not in ok(room.sync(room.b, server.url, "--media", "all"))


def test_fetch_names_one_file_to_fetch_whatever_the_mode(
    room: Room, server: ServerThread, attached: dict[str, str]
) -> None:
    """`--fetch MEDIA`: one reel on demand, by name or hash prefix, with its poster and
    thumbnail; nothing else with --media none."""
    [reel] = [m for m in room.listed(room.a) if m["media"]["kind"] == "reel"]
    parts = {reel["media"]["hash"], reel["media"]["thumbnail"], reel["media"]["poster"]}
    out = ok(room.sync(room.b, server.url, "--media", "none", "--fetch", attached["reel"][:10]))
    assert "media: fetched 3" in out, out
    assert blob_files(room.b) == parts
    ok(room.sync(room.b, server.url))  # eager: the headshot and its thumbnail join them
    assert len(blob_files(room.b)) == 5
    c = room.a.parent / "laptop-c"
    out = ok(room.sync(c, server.url, "--fetch", "reel.mp4"))
    assert "media: fetched 5" in out, out
    fails(room.sync(c, server.url, "--fetch", "nobody.mov"), "--fetch 'nobody.mov'")
    fails(room.sync(c, server.url, "--live", "--fetch", "reel.mp4"), "one-shot")


def test_range_requests_and_token_scopes(
    room: Room, server: ServerThread, attached: dict[str, str]
) -> None:
    reel = attached["reel"]
    original = (room.server_path / "media" / reel[:2] / reel[2:]).read_bytes()
    url = f"{server.url}/media/{reel}"
    read = {"Authorization": f"Bearer {room.read}"}
    part = httpx.get(url, headers={**read, "Range": "bytes=100-199"}, timeout=PATIENCE)
    assert part.status_code == 206 and part.content == original[100:200]
    assert httpx.get(url, headers=read, timeout=PATIENCE).content == original
    assert (
        httpx.get(url, headers={"Authorization": "Bearer nope"}, timeout=PATIENCE).status_code
        == 401
    )
    assert httpx.get(url, timeout=PATIENCE).status_code == 401
    # A token for another production does not reach Tides's media.
    other = httpx.get(url, headers={"Authorization": f"Bearer {room.only_other}"}, timeout=PATIENCE)
    assert other.status_code == 404
    # Read-only tokens send nothing.
    put = httpx.put(url, content=original, headers=read, timeout=PATIENCE)
    assert put.status_code == 403
    assert (
        httpx.get(f"{server.url}/media/not-a-hash", headers=read, timeout=PATIENCE).status_code
        == 400
    )


def test_uploads_are_checked_and_a_refused_one_stores_nothing(
    room: Room, server: ServerThread, tmp_path: Path
) -> None:
    ok(room.sync(room.a, server.url, "--production", "Tides"))
    ok(room.cli("add", "talent", "name=Ada Stone", workspace=room.a))
    face = jpeg(tmp_path / "ada.jpg", seed=5)
    ok(room.cli("attach", "talent", "Ada Stone", str(face), workspace=room.a))
    ok(room.sync(room.a, server.url, "--production", "Tides", "--media", "none"))
    # The document reached the server; the blob did not.
    digest = sha(face)
    assert digest not in blob_files(room.server_path)
    before = blob_files(room.server_path)
    write = {"Authorization": f"Bearer {room.write}"}
    url = f"{server.url}/media/{digest}"
    data = face.read_bytes()
    altered = data[:-1] + bytes([data[-1] ^ 1])
    assert httpx.put(url, content=altered, headers=write, timeout=PATIENCE).status_code == 400
    assert (
        httpx.put(url, content=data[:-10], headers=write, timeout=PATIENCE).status_code == 400
    )  # mis-sized
    stray = hashlib.sha256(b"stray").hexdigest()
    assert (
        httpx.put(
            f"{server.url}/media/{stray}", content=b"stray", headers=write, timeout=PATIENCE
        ).status_code
        == 403
    )
    assert blob_files(room.server_path) == before
    missing = httpx.post(
        f"{server.url}/media/missing", json={"hashes": [digest]}, headers=write, timeout=PATIENCE
    )
    assert missing.json() == {"missing": [digest]}
    # The next sync sends it, once.
    assert "media: sent 2" in ok(room.sync(room.a, server.url, "--production", "Tides"))
    assert digest in blob_files(room.server_path)


def test_an_altered_blob_on_the_server_is_refused_retried_and_not_stored(
    room: Room, server: ServerThread, attached: dict[str, str]
) -> None:
    face = attached["face"]
    stored = room.server_path / "media" / face[:2] / face[2:]
    data = bytearray(stored.read_bytes())
    data[len(data) // 2] ^= 0xFF
    stored.write_bytes(bytes(data))
    result = room.sync(room.b, server.url)
    message = fails(result)
    assert "1 media files refused after retries" in message and "do not match" in message
    assert face not in blob_files(room.b)
    # The document itself synced; the thumbnails did too.
    [entry] = [m for m in room.listed(room.b) if m["media"]["kind"] == "headshot"]
    assert not entry["present"] and entry["media"]["thumbnail"] in blob_files(room.b)


# -- through a shared folder ----------------------------------------------------------------


def _share_blob(share: Path, digest: str) -> Path:
    return share / "castroom" / "_media" / digest[:2] / digest[2:]


def test_a_shared_folder_carries_every_attached_file(room: Room, tmp_path: Path, cli) -> None:
    share = tmp_path / "share"
    share.mkdir()
    ok(cli("init", "--production", "Tides", workspace=room.a))
    ok(cli("add", "talent", "name=Ada Stone", workspace=room.a))
    face = jpeg(tmp_path / "ada.jpg", seed=7)
    reel = video(tmp_path / "reel.mp4", seconds=1.0)
    ok(cli("attach", "talent", "Ada Stone", str(face), workspace=room.a))
    ok(cli("attach", "talent", "Ada Stone", str(reel), workspace=room.a))
    out = ok(cli("sync", str(share), workspace=room.a))
    assert "media: took 0 file(s), copied 5 file(s)" in out
    assert _share_blob(share, sha(reel)).read_bytes() == reel.read_bytes()

    # B takes everything, reels too (the folder is as near as the disk).
    out = ok(cli("sync", str(share), workspace=room.b))
    assert "media: took 5 file(s)" in out
    assert {sha(face), sha(reel)} <= blob_files(room.b)
    # A second pass on either side moves no media.
    assert "media:" not in ok(cli("sync", str(share), workspace=room.b))
    assert "media:" not in ok(cli("sync", str(share), workspace=room.a))


def test_a_damaged_or_planted_file_in_the_folder_is_never_stored(
    room: Room, tmp_path: Path, cli
) -> None:
    share = tmp_path / "share"
    share.mkdir()
    ok(cli("init", "--production", "Tides", workspace=room.a))
    ok(cli("add", "talent", "name=Ada Stone", workspace=room.a))
    face = jpeg(tmp_path / "ada.jpg", seed=8)
    ok(cli("attach", "talent", "Ada Stone", str(face), workspace=room.a))
    ok(cli("sync", str(share), workspace=room.a))
    shared = _share_blob(share, sha(face))
    data = bytearray(shared.read_bytes())
    data[100] ^= 0xFF
    shared.write_bytes(bytes(data))
    [entry] = json.loads(ok(cli("media", "list", "--json", workspace=room.a)))
    thumb = _share_blob(share, entry["media"]["thumbnail"])
    real = tmp_path / "elsewhere.jpg"
    real.write_bytes(thumb.read_bytes())
    thumb.unlink()
    thumb.symlink_to(real)  # right bytes, but a link: never followed

    result = cli("sync", str(share), workspace=room.b)
    assert result.exit_code == 0, result.output
    assert "do not match their hash" in result.output
    assert blob_files(room.b) == set()


# -- in bundles ---------------------------------------------------------------------------


def _attach_on_a(room: Room, cli, tmp_path: Path) -> dict:
    ok(cli("init", "--production", "Tides", workspace=room.a))
    ok(cli("add", "talent", "name=Ada Stone", workspace=room.a))
    ok(
        cli(
            "attach", "talent", "Ada Stone", str(jpeg(tmp_path / "a.jpg", seed=9)), workspace=room.a
        )
    )
    [entry] = json.loads(ok(cli("media", "list", "--json", workspace=room.a)))
    return entry["media"]


def test_bundles_carry_thumbnails_by_default_and_every_file_with_media_all(
    room: Room, tmp_path: Path, cli
) -> None:
    face = _attach_on_a(room, cli, tmp_path)
    thumbs, everything = tmp_path / "thumbs.castroom", tmp_path / "all.castroom"
    assert "Carrying 1 attached file(s)" in ok(
        cli("bundle", "create", str(thumbs), workspace=room.a)
    )
    ok(cli("bundle", "create", str(everything), "--media", "all", workspace=room.a))
    none = tmp_path / "none.castroom"
    assert "Carrying" not in ok(
        cli("bundle", "create", str(none), "--media", "none", workspace=room.a)
    )

    assert "Stored 1 attached file(s)" in ok(cli("bundle", "apply", str(thumbs), workspace=room.b))
    assert blob_files(room.b) == {face["thumbnail"]}
    ok(cli("bundle", "apply", str(everything), workspace=room.b))
    assert blob_files(room.b) == {face["thumbnail"], face["hash"]}


def test_a_bundle_with_a_damaged_file_merges_nothing(room: Room, tmp_path: Path, cli) -> None:
    import msgspec

    from castroom.core import bundle as bundles

    _attach_on_a(room, cli, tmp_path)
    path = tmp_path / "b.castroom"
    ok(cli("bundle", "create", str(path), "--media", "all", workspace=room.a))
    made = bundles.read(path)
    blob = made.media[0]
    blob.data = blob.data[:-1] + bytes([blob.data[-1] ^ 1])
    path.write_bytes(bundles._seal(bundles.BUNDLE_MAGIC, msgspec.msgpack.encode(made)))
    fails(cli("bundle", "apply", str(path), workspace=room.b), "damaged", "nothing was merged")
    assert blob_files(room.b) == set()
    with Workspace.open(room.b) as ws:
        assert ws.productions() == []


# -- the per-token upload quota -----------------------------------------------------------


def test_a_token_past_its_upload_quota_is_refused_with_one_error_and_nothing_stored(
    room: Room, tmp_path: Path
) -> None:
    config = room.server_path / "config.toml"
    config.write_text(config.read_text() + '\n[media]\ntoken_quota = "150 KB"\n')
    faces = [jpeg(tmp_path / f"{i}.jpg", seed=30 + i) for i in range(3)]
    sizes = [f.stat().st_size for f in faces]
    assert 50_000 < sizes[0] < 150_000 and sum(sizes) > 150_000, sizes
    with ServerThread(room.server_path) as server:
        ok(room.sync(room.a, server.url, "--production", "Tides"))
        for i, face in enumerate(faces):
            ok(room.cli("add", "talent", f"name=Talent {i}", workspace=room.a))
            ok(room.cli("attach", "talent", f"Talent {i}", str(face), workspace=room.a))
        ok(room.sync(room.a, server.url, "--production", "Tides", "--media", "none"))
        write = {"Authorization": f"Bearer {room.write}"}
        first = httpx.put(
            f"{server.url}/media/{sha(faces[0])}",
            content=faces[0].read_bytes(),
            headers=write,
            timeout=PATIENCE,
        )
        assert first.status_code == 200 and first.json()["stored"]
        before = blob_files(room.server_path)
        second = httpx.put(
            f"{server.url}/media/{sha(faces[1])}",
            content=faces[1].read_bytes(),
            headers=write,
            timeout=PATIENCE,
        )
        assert second.status_code == 413
        assert "this token's media quota of 150.0 KB would be exceeded" in second.json()["error"]
        assert blob_files(room.server_path) == before  # nothing stored
        # The CLI's sync says it in one line and fails; what fits was sent.
        message = fails(room.sync(room.a, server.url, "--production", "Tides"))
        assert "media files refused by the server" in message and "media quota" in message
        assert sha(faces[1]) not in blob_files(room.server_path)
        # Another token has its own quota; the same blob again costs nothing.
        with Workspace.open(room.server_path) as ws:
            other = TokenStore(ws.store).create("write")[1]
        again = httpx.put(
            f"{server.url}/media/{sha(faces[0])}",
            content=faces[0].read_bytes(),
            headers={"Authorization": f"Bearer {other}"},
            timeout=PATIENCE,
        )
        assert again.status_code == 200 and not again.json()["stored"]
        fresh = httpx.put(
            f"{server.url}/media/{sha(faces[1])}",
            content=faces[1].read_bytes(),
            headers={"Authorization": f"Bearer {other}"},
            timeout=PATIENCE,
        )
        assert fresh.status_code == 200 and fresh.json()["stored"]


def test_the_upload_quota_is_read_from_the_config() -> None:
    from castroom.core.errors import CastroomError
    from castroom.core.media import DEFAULT_TOKEN_QUOTA, media_config

    assert media_config({}).token_quota == DEFAULT_TOKEN_QUOTA == 20 * 10**9
    assert media_config({"media": {"token_quota": "none"}}).token_quota is None
    assert media_config({"media": {"token_quota": "5 MB"}}).token_quota == 5_000_000
    with pytest.raises(CastroomError, match=r"media\.token_quota"):
        media_config({"media": {"token_quota": "lots"}})
