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
    for need in needs.values():
        if blobs.has(need.hash) or (mode == "eager" and need.what not in EAGER):
            continue
        _fetch_one(client, workspace, need, moved)
    if send:
        _send(client, blobs, [n for n in needs.values() if blobs.has(n.hash)], moved)
    if moved.refused:
        shown = "; ".join(f"{h[:12]}…: {why}" for h, why in list(moved.refused.items())[:3])
        raise CastroomError(f"{len(moved.refused)} media files refused after retries ({shown})")
    return moved


def _fetch_one(
    client: httpx.Client, workspace: Workspace, need: media.BlobNeed, moved: MediaMoved
) -> None:
    limit = media.size_limit(workspace.config, need.what)
    for _attempt in range(ATTEMPTS):
        with client.stream("GET", f"/media/{need.hash}") as response:
            if response.status_code == 404:
                moved.absent += 1
                return
            _raise_for(response)
            try:
                with workspace.blobs.writer(
                    expected=need.hash, expected_size=need.size, max_bytes=limit
                ) as out:
                    for chunk in response.iter_bytes(CHUNK):
                        out.write(chunk)
                    stored = out.commit()
            except BlobRefused as exc:
                moved.refused[need.hash] = str(exc)
                continue
        moved.refused.pop(need.hash, None)
        moved.fetched += 1
        moved.fetched_bytes += stored.size
        return


def _send(
    client: httpx.Client, blobs: BlobStore, here: list[media.BlobNeed], moved: MediaMoved
) -> None:
    for start in range(0, len(here), MAX_ASKED):
        asked = [n.hash for n in here[start : start + MAX_ASKED]]
        answer = client.post("/media/missing", json={"hashes": asked})
        if answer.status_code == 403:  # a read-only token: nothing to send with it
            return
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
