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
- ``POST /media/missing`` (write scope): body ``{"hashes": [...]}`` (at most 10,000);
  answers ``{"missing": [...]}``, the ones this server lacks, so a client sends only
  those.

The client side (:func:`exchange`) runs after a one-shot HTTP sync has merged the
documents: it fetches what the synced productions refer to and this workspace lacks
(``eager``: headshots, résumés, thumbnails and posters; ``all``: reels and self-tapes
too), and sends what the server lacks. A transfer that does not match its hash or size
is refused, retried, and never stored.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx

from ..core import media
from ..core.blobs import CHUNK, BlobRefused, BlobStore
from ..core.errors import CastroomError

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
#: Blobs fetched at once.
PARALLEL = 4


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
) -> MediaMoved:
    """Fetch what the productions refer to and this workspace lacks (per ``mode``) and,
    with ``send``, send the server what it lacks. Raises CastroomError naming the blobs
    refused every time (nothing of them stored); HTTP failures are the caller's."""
    moved = MediaMoved()
    if mode == "none" or not production_ids:
        return moved
    needs = media.RefCache().needs(workspace, production_ids)
    blobs = workspace.blobs
    wanted = [
        n for n in needs.values() if not blobs.has(n.hash) and (mode == "all" or n.what in EAGER)
    ]
    # A few transfers at once: each blob's fsync would otherwise wait alone.
    with ThreadPoolExecutor(max_workers=PARALLEL) as pool:
        outcomes = list(pool.map(lambda n: _fetch_one(client, workspace, n), wanted))
    for need, (size, why) in zip(wanted, outcomes, strict=True):
        if why is not None:
            moved.refused[need.hash] = why
        elif size is None:
            moved.absent += 1
        else:
            moved.fetched += 1
            moved.fetched_bytes += size
    if send:
        _send(client, blobs, [n for n in needs.values() if blobs.has(n.hash)], moved)
    if moved.refused:
        shown = "; ".join(f"{h[:12]}…: {why}" for h, why in list(moved.refused.items())[:3])
        raise CastroomError(f"{len(moved.refused)} media files refused after retries ({shown})")
    return moved


def _fetch_one(
    client: httpx.Client, workspace: Workspace, need: media.BlobNeed
) -> tuple[int | None, str | None]:
    """(bytes stored, None); (None, None) when the server lacks it too; (None, why)
    when every attempt was refused (nothing stored)."""
    limit = media.size_limit(workspace.config, need.what)
    why = None
    for _attempt in range(ATTEMPTS):
        with client.stream("GET", f"/media/{need.hash}") as response:
            if response.status_code == 404:
                return None, None
            _raise_for(response)
            try:
                with workspace.blobs.writer(
                    expected=need.hash, expected_size=need.size, max_bytes=limit
                ) as out:
                    for chunk in response.iter_bytes(CHUNK):
                        out.write(chunk)
                    return out.commit().size, None
            except BlobRefused as exc:
                why = str(exc)
    return None, why


def _send(
    client: httpx.Client, blobs: BlobStore, here: list[media.BlobNeed], moved: MediaMoved
) -> None:
    for start in range(0, len(here), MAX_ASKED):
        asked = [n.hash for n in here[start : start + MAX_ASKED]]
        answer = client.post("/media/missing", json={"hashes": asked})
        _raise_for(answer)
        for digest in answer.json()["missing"]:
            size = blobs.size(digest)
            response = client.put(
                f"/media/{digest}",
                content=_chunks(blobs, digest),
                headers={"Content-Length": str(size)},
            )
            _raise_for(response)
            moved.sent += 1
            moved.sent_bytes += size


def _chunks(blobs: BlobStore, digest: str) -> Iterator[bytes]:
    with blobs.open(digest) as src:
        while chunk := src.read(CHUNK):
            yield chunk


def _raise_for(response: httpx.Response) -> None:
    if response.status_code < 400:
        return
    response.read()
    try:
        detail: Any = response.json().get("error") or response.text
    except ValueError:
        detail = response.text.strip() or response.reason_phrase
    raise CastroomError(f"media: the server refused ({response.status_code}): {detail}")
