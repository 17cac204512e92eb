"""Benchmark: attach 1,000 headshots (~200 KB JPEGs) into a real workspace.

Figures, each against a baseline measured in the same run:

- attach: :func:`castroom.core.media.attach` for each file, as ``castroom attach`` runs
  it (sniff, copy into the blob store while hashing, fsync, open with Pillow, make the
  thumbnail, one document transaction and update-log commit per file), against a raw
  copy of the same files (``shutil.copyfile``), plain and with an fsync per file;
- thumbnails per second: :func:`castroom.core.derivatives.probe` alone on the same files
  (decode, check, thumbnail, encode), against Pillow opening and fully decoding them;
- store overhead: the bytes the blob store holds (originals + thumbnails; and the disk
  blocks it takes) and the document's growth, over the raw bytes of the files;
- sync: a fresh peer's ``castroom sync http://… --media all`` from a real ``castroom
  serve`` on 127.0.0.1 (the document, then every blob in batches, each checked against
  its hash, a batch made durable by one file-system flush before its blobs are named),
  against a raw HTTP copy of the same files in the same run (the standard library's
  HTTP/1.1 file server, httpx fetching each over one connection, written and fsynced).
  Goal: castroom's throughput >= 0.7x the raw copy's. The same raw copy without any
  fsync is printed beside it, to show what the disk flushes cost;
- upload: that peer's ``castroom sync http://… --media all`` to a fresh server (the
  production pushed, then every blob sent in batches, ``POST /media/store``, each checked
  by the server against its hash and record), against a raw HTTP PUT of the same files
  to a standard-library server that writes and fsyncs each, over one connection.
"""

from __future__ import annotations

import io
import os
import random
import shutil
import tempfile
import time
from pathlib import Path

from castroom.core import media
from castroom.core.derivatives import probe
from castroom.core.model import Talent
from castroom.core.workspace import Workspace

COUNT = int(os.environ.get("BENCH_MEDIA_COUNT", "1000"))
TARGET_BYTES = 200_000
BASES = 20


def make_headshots(folder: Path, count: int = COUNT) -> list[Path]:
    """``count`` distinct JPEGs of about 200 KB: a few noisy portrait-sized bases, each
    copy marked with its own block of colour (so its thumbnail differs too) and EXIF."""
    from PIL import Image, ImageDraw

    rng = random.Random(11)
    bases = []
    for i in range(BASES):
        noise = Image.effect_noise((900, 1200), 40 + i).convert("RGB")
        tint = Image.new("RGB", noise.size, (rng.randrange(256), 120, rng.randrange(256)))
        bases.append(Image.blend(noise, tint, 0.5))
    quality = _quality_for(bases[0])
    paths = []
    for i in range(count):
        exif = Image.Exif()
        exif[0x010E] = f"headshot {i}"  # ImageDescription
        path = folder / f"headshot-{i:04d}.jpg"
        image = bases[i % BASES].copy()
        colour = (i * 7 % 256, i * 13 % 256, i * 29 % 256)
        ImageDraw.Draw(image).rectangle([0, 0, 200, 200], fill=colour)
        image.save(path, format="JPEG", quality=quality, exif=exif)
        paths.append(path)
    return paths


def _quality_for(image) -> int:
    """The JPEG quality that makes ``image`` closest to TARGET_BYTES."""
    best = (10**9, 85)
    for quality in range(30, 96, 5):
        out = io.BytesIO()
        image.save(out, format="JPEG", quality=quality)
        best = min(best, (abs(out.tell() - TARGET_BYTES), quality))
    return best[1]


def raw_copy(files: list[Path], dest: Path, *, fsync: bool) -> float:
    dest.mkdir()
    start = time.perf_counter()
    for path in files:
        target = dest / path.name
        shutil.copyfile(path, target)
        if fsync:
            with open(target, "rb+") as out:
                os.fsync(out.fileno())
    return time.perf_counter() - start


def attach_all(workspace: Workspace, ids: list[str], files: list[Path]) -> float:
    production = workspace.production()
    start = time.perf_counter()
    for entity_id, path in zip(ids, files, strict=True):
        media.attach(production, Talent, entity_id, path)
    return time.perf_counter() - start


def thumbnails(files: list[Path]) -> tuple[float, float]:
    """Seconds for probe() (with thumbnail) on every file, and for Pillow decoding each."""
    from PIL import Image

    start = time.perf_counter()
    for path in files:
        probe(path, "image/jpeg", shown=path.name, max_pixels=media.DEFAULT_MAX_PIXELS)
    derive = time.perf_counter() - start
    start = time.perf_counter()
    for path in files:
        with Image.open(path) as image:
            image.load()
    return derive, time.perf_counter() - start


def raw_http_copy(folder: Path, names: list[str], dest: Path, *, fsync: bool = True) -> float:
    """Fetch every file of ``folder`` over loopback HTTP/1.1, writing (and fsyncing)
    each."""
    import functools
    import http.server
    import threading

    import httpx

    class Handler(http.server.SimpleHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Handler, directory=str(folder))
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    dest.mkdir()
    try:
        start = time.perf_counter()
        with httpx.Client(base_url=f"http://127.0.0.1:{server.server_port}") as client:
            for name in names:
                with client.stream("GET", f"/{name}") as response, open(dest / name, "wb") as out:
                    for chunk in response.iter_bytes(1024 * 1024):
                        out.write(chunk)
                    out.flush()
                    if fsync:
                        os.fsync(out.fileno())
        return time.perf_counter() - start
    finally:
        server.shutdown()
        server.server_close()


def sync_to_fresh_peer(served: Path, peer: Path) -> tuple[float, int]:
    """(seconds, blobs fetched) for a fresh peer's one-shot sync of everything."""
    from castroom.sync import client
    from castroom.sync.auth import TokenStore
    from castroom.sync.server import ServerThread

    with Workspace.open(served) as workspace:
        token = TokenStore(workspace.store).create("read")[1]
    with ServerThread(served) as server, Workspace.open(peer, member="peer") as laptop:
        start = time.perf_counter()
        client.sync_http(laptop, server.url, token=token, media="all")
        elapsed = time.perf_counter() - start
        return elapsed, len(list(laptop.blobs.hashes()))


def raw_http_upload(files: list[Path], dest: Path) -> float:
    """PUT every file to a loopback HTTP/1.1 server that writes and fsyncs each."""
    import http.server
    import threading

    import httpx

    dest.mkdir()

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_PUT(self) -> None:
            left = int(self.headers["Content-Length"])
            with open(dest / Path(self.path).name, "wb") as out:
                while left:
                    chunk = self.rfile.read(min(left, 1024 * 1024))
                    if not chunk:
                        break
                    out.write(chunk)
                    left -= len(chunk)
                out.flush()
                os.fsync(out.fileno())
            self.send_response(201)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        start = time.perf_counter()
        with httpx.Client(base_url=f"http://127.0.0.1:{server.server_port}") as client:
            for path in files:
                with open(path, "rb") as body:
                    client.put(f"/{path.name}", content=body).raise_for_status()
        return time.perf_counter() - start
    finally:
        server.shutdown()
        server.server_close()


def upload_to_fresh_server(laptop_path: Path, served: Path) -> tuple[float, int]:
    """(seconds, blobs the server holds after) for a laptop's one-shot sync of
    everything to a fresh ``castroom serve`` (the production, then every blob)."""
    from castroom.sync import client
    from castroom.sync.auth import TokenStore
    from castroom.sync.server import ServerThread

    with Workspace.open(served, member="server") as workspace:
        token = TokenStore(workspace.store).create("write")[1]
    with ServerThread(served) as server, Workspace.open(laptop_path) as laptop:
        start = time.perf_counter()
        client.sync_http(laptop, server.url, token=token, media="all")
        elapsed = time.perf_counter() - start
    with Workspace.open(served) as workspace:
        return elapsed, len(list(workspace.blobs.hashes()))


def store_bytes(workspace: Workspace) -> tuple[int, int]:
    """(bytes, disk blocks in bytes) of every blob in the store."""
    size = blocks = 0
    for digest in workspace.blobs.hashes():
        stat = workspace.blobs.stat(digest)
        size += stat.st_size
        blocks += stat.st_blocks * 512
    return size, blocks


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bench-media-") as tmp:
        root = Path(tmp)
        (root / "in").mkdir()
        files = make_headshots(root / "in")
        raw = sum(p.stat().st_size for p in files)
        raw_blocks = sum(p.stat().st_blocks * 512 for p in files)
        plain = raw_copy(files, root / "copy", fsync=False)
        synced = raw_copy(files, root / "copy-fsync", fsync=True)
        with Workspace.open(root / "ws", member="bench") as workspace:
            doc = workspace.create_production("Bench").doc
            ids = [doc.add(Talent, name=f"Talent {i}").id for i in range(COUNT)]
        db = root / "ws" / "castroom.db"
        before = _stored(db)
        with Workspace.open(root / "ws", member="bench") as workspace:
            attached = attach_all(workspace, ids, files)
            stored, stored_blocks = store_bytes(workspace)
            assert len(list(workspace.blobs.hashes())) == 2 * COUNT
        grown = _stored(db) - before
        derive, decode = thumbnails(files)
        names = [p.name for p in files]
        raw_http = raw_http_copy(root / "copy", names, root / "http-copy")
        raw_unsynced = raw_http_copy(root / "copy", names, root / "http-nosync", fsync=False)
        synced_peer, fetched = sync_to_fresh_peer(root / "ws", root / "peer")
        assert fetched == 2 * COUNT, fetched
        raw_up = raw_http_upload(files, root / "http-upload")
        uploaded, held = upload_to_fresh_server(root / "peer", root / "up-server")
        assert held == 2 * COUNT, held

    mb = raw / 1e6
    print(f"attach {COUNT:,} headshots ({raw / COUNT / 1000:.0f} KB each, {mb:.0f} MB):")
    print(f"  attach: {attached:.2f} s ({mb / attached:.1f} MB/s, {COUNT / attached:.0f} files/s)")
    print(
        f"  raw copy: {plain:.2f} s ({mb / plain:.1f} MB/s); attach / raw copy = "
        f"{attached / plain:.1f}x the time"
    )
    print(
        f"  raw copy + fsync per file: {synced:.2f} s ({mb / synced:.1f} MB/s); "
        f"attach / raw copy with fsync = {attached / synced:.1f}x the time"
    )
    print(
        f"  thumbnails: {COUNT / derive:.0f} per second (probe + 320 px JPEG);"
        f" Pillow full decode alone: {COUNT / decode:.0f} per second;"
        f" thumbnail / decode = {derive / decode:.2f}x the time"
    )
    print(
        f"  store: {stored / 1e6:.1f} MB for {mb:.1f} MB of files = {stored / raw:.3f}x"
        f" (thumbnails {(stored - raw) / raw * 100:.1f} %); disk blocks"
        f" {stored_blocks / raw_blocks:.3f}x the raw files' blocks"
    )
    print(
        f"  document + log growth: {grown / 1000:.0f} KB ({grown / COUNT:.0f} bytes per"
        f" attachment, {grown / raw * 100:.2f} % of the raw bytes)"
    )

    moved = stored / 1e6
    print(
        f"  sync to a fresh peer over HTTP: {synced_peer:.2f} s for {fetched:,} files"
        f" ({moved:.0f} MB, {moved / synced_peer:.1f} MB/s); raw HTTP copy of the"
        f" {COUNT:,} files: {raw_http:.2f} s ({mb / raw_http:.1f} MB/s); throughput"
        f" castroom / raw = {(moved / synced_peer) / (mb / raw_http):.2f}x (goal >= 0.7x)"
    )
    print(
        f"  raw HTTP copy without fsync: {raw_unsynced:.2f} s ({mb / raw_unsynced:.1f} MB/s);"
        f" castroom / that = {(moved / synced_peer) / (mb / raw_unsynced):.2f}x"
    )
    print(
        f"  upload to a fresh server over HTTP: {uploaded:.2f} s for {held:,} files"
        f" ({moved:.0f} MB, {moved / uploaded:.1f} MB/s); raw HTTP PUT of the {COUNT:,}"
        f" files (written and fsynced): {raw_up:.2f} s ({mb / raw_up:.1f} MB/s);"
        f" throughput castroom / raw = {(moved / uploaded) / (mb / raw_up):.2f}x"
    )


def _stored(db: Path) -> int:
    """The database's bytes on disk, its write-ahead log included."""
    wal = db.with_name(db.name + "-wal")
    return db.stat().st_size + (wal.stat().st_size if wal.exists() else 0)


if __name__ == "__main__":
    main()
