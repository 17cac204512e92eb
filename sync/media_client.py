"""Media over HTTP, the client side: what a one-shot sync fetches and sends, and the
server routes it talks to (served by ``media_routes.py``).

Blobs move by their SHA-256 (:mod:`castroom.core.blobs`), beside the document, never in
it. What a peer may fetch or send is what the productions its token reaches refer to:

- ``GET|HEAD /media/{hash}`` (read scope): the blob, with HTTP range requests (a reel
  plays without downloading it whole). 404 when no production the token reaches refers
  to it, or this server lacks it.
- ``PUT /media/{hash}`` (write scope): the body is the blob, streamed to a temporary
  file, checked against its hash, its ``Content-Length`` and the recorded size, bounded
  by its kind's limit, and only then stored. A blob no production the token may write
  refers to is refused (403), so a token cannot fill the disk with strays.
- ``POST /media/fetch`` (read scope): body ``{"hashes": [...]}`` (at most 10,000);
  answers one stream of every asked blob, in the order asked: for each,
  ``<hash> <size>\n`` then its ``size`` bytes, or ``<hash> -\n`` when the server lacks
  it or no production the token reaches refers to it; then ``end\n``. One request for
  many small blobs (a thousand headshots and their thumbnails) instead of one each.
- ``POST /media/missing`` (write scope): body ``{"hashes": [...]}`` (at most 10,000);
  answers ``{"missing": [...]}``, the ones this server lacks, so a client sends only
  those.

The client side (:func:`exchange`) runs after a one-shot HTTP sync has merged the
documents: it fetches what the synced productions refer to and this workspace lacks
(``eager``: headshots, résumés, thumbnails and posters; ``all``: reels and self-tapes
too), and sends what the server lacks. Fetches go in batches (``/media/fetch``), a few
at once; each blob is hashed as it arrives and checked against its hash and recorded
size before it is kept, and a batch's blobs are made durable by one flush of the disk
(:meth:`BlobStore.commit_all`). A blob that does not match, or a stream cut off part
way, is refused, asked for again (three tries in all), and never stored.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx

from ..core import media
from ..core.blobs import CHUNK, BlobRefused, BlobStore, BlobWriter, check_hash
from ..core.errors import CastroomError, NotFound

if TYPE_CHECKING:
    from ..core.workspace import Workspace

#: Most hashes one ``POST /media/missing`` may ask about.
MAX_ASKED = 10_000
#: What ``--media`` may say: which referenced blobs a one-shot sync fetches.
MODES = ("none", "eager", "all")
#: Fetched eagerly: small, and what a card or a shortlist shows.
EAGER = frozenset({"headshot", "resume", "derived"})
#: Attempts per blob before a refused transfer is reported.
ATTEMPTS = 3
#: Batches fetched at once.
PARALLEL = 2
#: A batch ends at this many blobs, or at the blob that takes it past BATCH_BYTES.
BATCH_FILES = 500
BATCH_BYTES = 32 * 1024 * 1024
#: The longest header line of a ``/media/fetch`` stream (``<64 hex> <size>``).
_HEADER_MAX = 100
#: Blobs a server reads in one go when it writes a batch (larger ones go in chunks).
_GROUP = CHUNK


# -- the client's exchange ------------------------------------------------------------------


@dataclass
class MediaMoved:
    """What one exchange moved."""

    fetched: int = 0
    fetched_bytes: int = 0
    sent: int = 0
    sent_bytes: int = 0
    #: Referenced here and wanted, but the server does not have them either.
    absent: int = 0
    #: hash -> why, for transfers refused every time they were tried.
    refused: dict[str, str] = field(default_factory=dict)

    def describe(self) -> str | None:
        parts = []
        if self.fetched:
            parts.append(f"fetched {self.fetched} ({media.size_words(self.fetched_bytes)})")
        if self.sent:
            parts.append(f"sent {self.sent} ({media.size_words(self.sent_bytes)})")
        if self.absent:
            parts.append(f"{self.absent} on neither side yet")
        if self.refused:
            parts.append(f"{len(self.refused)} refused")
        return f"media: {', '.join(parts)}" if parts else None


def exchange(
    client: httpx.Client,
    workspace: Workspace,
    production_ids: list[str],
    *,
    mode: str = "eager",
    send: bool = True,
    also: frozenset[str] = frozenset(),
) -> MediaMoved:
    """Fetch what the productions refer to and this workspace lacks (per ``mode``, and
    the files in ``also`` whatever the mode) and, with ``send``, send the server what it
    lacks. Raises CastroomError naming the blobs refused every time (nothing of them
    stored); HTTP failures are the caller's."""
    if (mode == "none" and not also) or not production_ids:
        return MediaMoved()
    needs = media.RefCache().needs(workspace, production_ids)
    return transfer(client, workspace, needs, mode=mode, send=send, also=also)


def named(workspace: Workspace, production_ids: list[str], refs: list[str]) -> frozenset[str]:
    """The files ``refs`` name (``castroom sync --fetch``: a hash, a hash prefix or the
    name a file was attached under, as ``media show`` takes them) in the productions,
    with their thumbnails and posters. CastroomError for a name no production has, or
    one that names several files."""
    found: set[str] = set()
    for ref in refs:
        hits = []
        for pid in production_ids:
            production = workspace.production(pid)
            with contextlib.suppress(NotFound):
                hits += media.find(production.doc, workspace.blobs, ref)
        if not hits:
            raise CastroomError(f"--fetch {ref!r}: no attached file of the synced productions")
        for hit in hits:
            found.update(h for h in (hit.media.hash, hit.media.thumbnail, hit.media.poster) if h)
    return frozenset(found)


def transfer(
    client: httpx.Client,
    workspace: Workspace,
    needs: dict[str, media.BlobNeed],
    *,
    mode: str = "eager",
    send: bool = True,
    there: set[str] | None = None,
    also: frozenset[str] = frozenset(),
) -> MediaMoved:
    """:func:`exchange` once the referenced blobs are known. It touches only the blob
    store, the config and the network, never a document, so a live sync runs it in a
    worker thread. ``there``: hashes known to be on the server already (not asked
    about again), added to as this learns of more."""
    moved = MediaMoved()
    blobs = workspace.blobs
    wanted = [n for n in needs.values() if not blobs.has(n.hash) and wants(mode, n, also)]
    fetched = _fetch_all(client, workspace, wanted)
    moved.fetched = len(fetched.stored)
    moved.fetched_bytes = sum(fetched.stored.values())
    moved.absent = len(fetched.absent)
    moved.refused.update(fetched.refused)
    known = set() if there is None else there
    known.update(fetched.stored)
    if send:
        here = [n for n in needs.values() if n.hash not in known and blobs.has(n.hash)]
        _send(client, blobs, here, moved, known)
    if moved.refused:
        shown = "; ".join(f"{h[:12]}…: {why}" for h, why in list(moved.refused.items())[:3])
        raise CastroomError(f"{len(moved.refused)} media files refused after retries ({shown})")
    return moved


def wants(mode: str, need: media.BlobNeed, also: frozenset[str] = frozenset()) -> bool:
    """Whether a sync in ``mode`` fetches this file (``also``: asked for by name)."""
    if need.hash in also or mode == "all":
        return True
    return mode == "eager" and need.what in EAGER


@dataclass
class Fetched:
    """What fetching a set of blobs came to."""

    #: hash -> bytes stored (verified, durable, named).
    stored: dict[str, int] = field(default_factory=dict)
    #: The server lacks these (or no production the token reaches refers to them).
    absent: set[str] = field(default_factory=set)
    #: hash -> why, for blobs refused (or cut off) on the last try.
    refused: dict[str, str] = field(default_factory=dict)


def _fetch_all(client: httpx.Client, workspace: Workspace, wanted: list[media.BlobNeed]) -> Fetched:
    """Fetch every wanted blob in batches, a few at once; what is refused is asked for
    again, up to ATTEMPTS times in all."""
    result = Fetched()
    pending = wanted
    for _attempt in range(ATTEMPTS):
        if not pending:
            break
        with ThreadPoolExecutor(max_workers=PARALLEL) as pool:
            rounds = list(pool.map(lambda b: _fetch_batch(client, workspace, b), _batches(pending)))
        result.refused = {}
        for one in rounds:
            result.stored.update(one.stored)
            result.absent |= one.absent
            result.refused.update(one.refused)
        pending = [n for n in pending if n.hash in result.refused]
    return result


def _batches(needs: list[media.BlobNeed]) -> Iterator[list[media.BlobNeed]]:
    batch: list[media.BlobNeed] = []
    size = 0
    for need in needs:
        batch.append(need)
        size += need.size or 0
        if len(batch) >= BATCH_FILES or size >= BATCH_BYTES:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


class BatchBroken(CastroomError):
    """A ``/media/fetch`` stream that does not follow its format, or ends early."""


def _fetch_batch(
    client: httpx.Client, workspace: Workspace, needs: list[media.BlobNeed]
) -> Fetched:
    """One ``POST /media/fetch``: every blob verified as it arrives, the good ones made
    durable together and stored; what was refused or never arrived is in ``refused``."""
    result = Fetched()
    asked = {n.hash: n for n in needs}
    verified: list[BlobWriter] = []
    with contextlib.ExitStack() as writers:
        try:
            with client.stream("POST", "/media/fetch", json={"hashes": list(asked)}) as response:
                raise_for(response)
                stream = BatchStream(response.iter_bytes())  # as it arrives
                for digest, size in stream.entries():
                    need = asked.get(digest)
                    if need is None:
                        raise BatchBroken(f"the server sent {digest[:12]}…, which was not asked")
                    if size is None:
                        result.absent.add(digest)
                    elif (out := _receive(workspace, need, size, stream, result)) is not None:
                        writers.enter_context(out)
                        verified.append(out)
                    del asked[digest]
        except (BatchBroken, httpx.RemoteProtocolError, httpx.ReadError) as exc:
            for digest in asked:  # never arrived, or cut off on the way
                result.refused[digest] = f"the transfer was cut off ({exc})"
        for stored in workspace.blobs.commit_all(verified):
            result.stored[stored.hash] = stored.size
    return result


def _receive(
    workspace: Workspace, need: media.BlobNeed, size: int, stream: BatchStream, result: Fetched
) -> BlobWriter | None:
    """One blob of a batch into a writer, hashed on the way and checked (not yet
    durable); None, and the reason in ``result.refused``, when it is refused."""
    limit = media.size_limit(workspace.config, need.what)
    try:
        if need.size is not None and size != need.size:
            raise BlobRefused(f"{size:,} bytes sent, but the record says {need.size:,}: not stored")
        out = workspace.blobs.writer(expected=need.hash, expected_size=size, max_bytes=limit)
    except BlobRefused as exc:
        stream.skip(size)
        result.refused[need.hash] = str(exc)
        return None
    try:
        for piece in stream.body(size):
            out.write(piece)
        out.finish(durable=False)
    except BlobRefused as exc:
        result.refused[need.hash] = str(exc)
        return None
    except BaseException:
        out.abort()
        raise
    return out


class BatchStream:
    """Reads a ``/media/fetch`` answer from its chunks: the entries, each blob's body."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = iter(chunks)
        self._buffer = b""

    def _more(self) -> None:
        chunk = next(self._chunks, b"")
        if not chunk:
            raise BatchBroken("the stream ended before its last blob")
        self._buffer += chunk

    def entries(self) -> Iterator[tuple[str, int | None]]:
        """(hash, size, or None for one the server lacks) up to the ``end`` line; the
        caller reads each entry's body (:meth:`body` or :meth:`skip`) before the next."""
        while True:
            while b"\n" not in self._buffer[:_HEADER_MAX]:
                if len(self._buffer) >= _HEADER_MAX:
                    raise BatchBroken("a header line is too long")
                self._more()
            line, _, self._buffer = self._buffer.partition(b"\n")
            if line == b"end":
                return
            digest, _, size = line.decode("ascii", "replace").partition(" ")
            try:
                yield check_hash(digest), None if size == "-" else _size(size)
            except CastroomError as exc:
                raise BatchBroken(f"a malformed header: {exc}") from None

    def body(self, size: int) -> Iterator[bytes]:
        """The next ``size`` bytes, in pieces as they arrive."""
        left = size
        while left:
            if not self._buffer:
                self._more()
            piece, self._buffer = self._buffer[:left], self._buffer[left:]
            left -= len(piece)
            yield piece

    def skip(self, size: int) -> None:
        for _piece in self.body(size):
            pass


def _size(text: str) -> int:
    if not text.isdigit() or len(text) > 15:
        raise CastroomError(f"{text[:20]!r} is not a size")
    return int(text)


def batch_stream(blobs: BlobStore, hashes: list[str], allowed: set[str]) -> Iterator[bytes]:
    """The server's side of ``/media/fetch``: the stream of ``hashes`` (those in
    ``allowed`` that this store has), in pieces of about 1 MiB."""
    out = bytearray()
    for digest in hashes:
        src = None
        if digest in allowed:
            with contextlib.suppress(FileNotFoundError):
                src = open(blobs.path(digest), "rb")  # noqa: SIM115 (closed below)
        if src is None:
            out += f"{digest} -\n".encode()
            continue
        with src:
            out += f"{digest} {os.fstat(src.fileno()).st_size}\n".encode()
            while chunk := src.read(CHUNK):
                out += chunk
                if len(out) >= _GROUP:
                    yield bytes(out)
                    out.clear()
    out += b"end\n"
    yield bytes(out)


def _send(
    client: httpx.Client,
    blobs: BlobStore,
    here: list[media.BlobNeed],
    moved: MediaMoved,
    there: set[str],
) -> None:
    """Send what the server lacks, in batches (``POST /media/store``); the blobs it
    refused raise CastroomError with its reasons once every batch has been tried."""
    refused: dict[str, str] = {}
    for start in range(0, len(here), MAX_ASKED):
        asked = [n.hash for n in here[start : start + MAX_ASKED]]
        answer = client.post("/media/missing", json={"hashes": asked})
        raise_for(answer)
        missing = [check_hash(h) for h in answer.json()["missing"]]
        there.update(set(asked) - set(missing))
        sizes = {h: blobs.size(h) for h in missing}
        for batch in _batches([media.BlobNeed(hash=h, what="", size=sizes[h]) for h in missing]):
            hashes = [n.hash for n in batch]
            response = client.post(
                "/media/store",
                content=batch_stream(blobs, hashes, set(hashes)),
                headers={"Content-Type": "application/octet-stream"},
            )
            raise_for(response)
            result = response.json()
            for digest in result.get("stored", []):
                there.add(digest)
                moved.sent += 1
                moved.sent_bytes += sizes.get(digest, 0)
            refused.update(result.get("refused", {}))
    if refused:
        shown = "; ".join(f"{h[:12]}…: {why}" for h, why in list(refused.items())[:3])
        raise CastroomError(f"{len(refused)} media files refused by the server ({shown})")


def raise_for(response: httpx.Response) -> None:
    if response.status_code < 400:
        return
    response.read()
    try:
        detail: Any = response.json().get("error") or response.text
    except ValueError:
        detail = response.text.strip() or response.reason_phrase
    raise CastroomError(f"media: the server refused ({response.status_code}): {detail}")
