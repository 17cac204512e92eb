"""The server's ``/media`` routes: attached files by their SHA-256, with the same
tokens and scopes as ``/sync`` (the protocol: ``media_client.py``)."""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from functools import partial
from typing import TYPE_CHECKING, Any

import anyio
import anyio.from_thread
import anyio.to_thread
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from ..core import media
from ..core.blobs import CHUNK, BlobRefused, BlobStore, BlobWriter, check_hash
from ..core.errors import CastroomError
from ..core.media import media_config
from .media_client import MAX_ASKED, BatchBroken, BatchStream, batch_stream

if TYPE_CHECKING:
    from ..core.workspace import Workspace
    from .server import SyncServer


def _reachable(server: SyncServer, request: Request, *, write: bool) -> dict[str, media.BlobNeed]:
    info = server.authorize(request, None, write=write)
    workspace = server.workspace
    assert workspace is not None
    allowed = info.may_write if write else info.may_read
    pids = [pid for pid, _title in workspace.productions() if allowed(pid)]
    return server.media_refs.needs(workspace, pids)


def _hash_param(request: Request) -> str:
    from .server import Refused

    try:
        return check_hash(request.path_params["hash"])
    except CastroomError as exc:
        raise Refused(400, str(exc)) from None


async def get_blob(server: SyncServer, request: Request) -> Response:
    from .server import Refused

    digest = _hash_param(request)
    assert server.workspace is not None
    blobs = server.workspace.blobs
    if digest not in _reachable(server, request, write=False) or not blobs.has(digest):
        raise Refused(404, f"no media {digest[:12]}… here for this token")
    # FileResponse answers Range (206) and HEAD itself; the name never reaches a header.
    return FileResponse(
        blobs.path(digest),
        media_type="application/octet-stream",
        headers={"Cache-Control": "private, max-age=31536000, immutable"},
    )


class UploadBook:
    """What each token has uploaded to this server and is uploading now, for its quota
    (``[media] token_quota``). Reservations are thread-safe (a batch is checked in a
    worker thread); the stored counts are read and written on the event loop."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._used: dict[str, int] = {}
        self._pending: dict[str, int] = {}

    def load(self, workspace: Workspace, token_id: str) -> None:
        """On the loop, before a token's upload: what it has stored so far."""
        with self._lock:
            if token_id not in self._used:
                self._used[token_id] = media.uploaded(workspace, token_id)

    def reserve(self, quota: int | None, token_id: str, size: int) -> None:
        """Hold ``size`` bytes of the token's quota, or raise QuotaExceeded."""
        with self._lock:
            pending = self._pending.get(token_id, 0)
            media.check_quota(quota, self._used.get(token_id, 0) + pending, size)
            self._pending[token_id] = pending + size

    def settle(self, workspace: Workspace, token_id: str, reserved: int, stored: int) -> None:
        """On the loop: give back ``reserved`` bytes held, count ``stored`` new ones."""
        with self._lock:
            left = self._pending.get(token_id, 0) - reserved
            if left > 0:
                self._pending[token_id] = left
            else:
                self._pending.pop(token_id, None)
            self._used[token_id] = self._used.get(token_id, 0) + stored
        if stored:
            media.add_uploaded(workspace, token_id, stored)


def _admit(
    server: SyncServer, token_id: str, digest: str, need: media.BlobNeed | None, size: int
) -> int | None:
    """Whether the token may store ``size`` bytes as blob ``digest``: the kind's size
    limit to store it under, reserved against the token's quota (settle it with
    ``server.uploads``); None when the store has it already. Raises Refused. Safe in a
    worker thread (no document, no SQL)."""
    from .server import Refused

    if need is None:
        raise Refused(403, f"no production this token may write refers to {digest[:12]}…")
    workspace = server.workspace
    assert workspace is not None
    if need.size is not None and size != need.size:
        raise Refused(400, f"{size:,} bytes sent, but the record says {need.size:,}")
    limit = media.size_limit(workspace.config, need.what)
    if size > limit:
        raise Refused(413, f"{size:,} bytes is over the {need.what} limit of {limit:,} bytes")
    if workspace.blobs.has(digest):
        return None
    try:
        server.uploads.reserve(media_config(workspace.config).token_quota, token_id, size)
    except media.QuotaExceeded as exc:
        raise Refused(413, str(exc)) from None
    return limit


async def put_blob(server: SyncServer, request: Request) -> Response:
    from .server import Refused

    digest = _hash_param(request)
    token = server.authorize(request, None, write=True)
    need = _reachable(server, request, write=True).get(digest)
    declared = request.headers.get("content-length")
    if declared is None or not declared.isdigit():
        raise Refused(411, "send the blob with a Content-Length")
    size = int(declared)
    workspace = server.workspace
    assert workspace is not None
    server.uploads.load(workspace, token.id)
    limit = _admit(server, token.id, digest, need, size)
    if limit is None:
        return JSONResponse({"stored": False, "size": workspace.blobs.size(digest)})
    stored = None
    try:
        with workspace.blobs.writer(expected=digest, expected_size=size, max_bytes=limit) as out:
            async for chunk in server.body_chunks(request):
                out.write(chunk)
            stored = out.commit()
    except BlobRefused as exc:
        raise Refused(400, str(exc)) from None
    finally:
        new = stored.size if stored is not None and stored.new else 0
        server.uploads.settle(workspace, token.id, size, new)
    return JSONResponse({"stored": stored.new, "size": stored.size})


async def store_blobs(server: SyncServer, request: Request) -> Response:
    """Many blobs in one upload (the stream's format: ``media_client.py``), each checked
    as ``PUT`` checks it; answers which were stored and why any was refused."""
    from .server import Refused

    token = server.authorize(request, None, write=True)
    needs = _reachable(server, request, write=True)
    workspace = server.workspace
    assert workspace is not None
    blobs = workspace.blobs
    server.uploads.load(workspace, token.id)

    def admit(digest: str, size: int) -> int | None:
        return _admit(server, token.id, digest, needs.get(digest), size)

    def settle(reserved: int, stored: int) -> None:
        server.uploads.settle(workspace, token.id, reserved, stored)

    chunks = server.body_chunks(request)
    try:
        # Hashing and writing in a worker thread; the checks come back to the loop.
        answer = await anyio.to_thread.run_sync(
            _store_batch, blobs, _from_loop(chunks), admit, settle
        )
    except BatchBroken as exc:
        raise Refused(400, f"a malformed upload, nothing of it stored: {exc}") from None
    return JSONResponse(answer)


def _from_loop(chunks: AsyncIterator[bytes]) -> Iterator[bytes]:
    """An async body read from a worker thread, about 1 MiB a hop to the loop (a hop
    per network chunk costs more than the hashing)."""

    async def pull() -> bytes:
        got: list[bytes] = []
        size = 0
        with contextlib.suppress(StopAsyncIteration):
            while size < CHUNK:
                got.append(await anext(chunks))
                size += len(got[-1])
        return b"".join(got)

    while chunk := anyio.from_thread.run(pull):
        yield chunk


def _store_batch(
    blobs: BlobStore,
    chunks: Iterator[bytes],
    admit: Callable[[str, int], int | None],
    settle: Callable[[int, int], None],
) -> dict[str, Any]:
    """Store a batch's blobs (made durable together); what was refused, and why."""
    from .server import Refused

    stream = BatchStream(chunks)
    stored: list[str] = []
    refused: dict[str, str] = {}
    verified: list[BlobWriter] = []
    reserved = new = 0
    try:
        with contextlib.ExitStack() as writers:
            for digest, size in stream.entries():
                if size is None:
                    raise BatchBroken(f"{digest[:12]}… has no size")
                try:
                    limit = admit(digest, size)
                except Refused as exc:
                    refused[digest] = exc.message
                    stream.skip(size)
                    continue
                if limit is None:
                    stream.skip(size)  # here already
                    continue
                reserved += size
                out = writers.enter_context(
                    blobs.writer(expected=digest, expected_size=size, max_bytes=limit)
                )
                try:
                    for piece in stream.body(size):
                        out.write(piece)
                    out.finish(durable=False)
                except BlobRefused as exc:
                    refused[digest] = str(exc)
                    continue
                verified.append(out)
            for blob in blobs.commit_all(verified):
                stored.append(blob.hash)
                new += blob.size if blob.new else 0
    finally:
        anyio.from_thread.run_sync(settle, reserved, new)
    return {"stored": stored, "refused": refused}


async def _asked(server: SyncServer, request: Request) -> list[str]:
    """The hashes of a ``{"hashes": [...]}`` body (at most MAX_ASKED)."""
    from .server import Refused

    body = await server.read_body(request, limit=MAX_ASKED * 80)
    try:
        asked = json.loads(body)["hashes"]
        if not isinstance(asked, list) or len(asked) > MAX_ASKED:
            raise ValueError(f"hashes: a list of at most {MAX_ASKED:,}")
        return list(dict.fromkeys(check_hash(h) for h in asked))
    except (ValueError, KeyError, TypeError, CastroomError) as exc:
        raise Refused(400, f'expected {{"hashes": [SHA-256, ...]}}: {exc}') from None


async def missing_blobs(server: SyncServer, request: Request) -> Response:
    server.authorize(request, None, write=True)
    hashes = await _asked(server, request)
    assert server.workspace is not None
    blobs = server.workspace.blobs
    return JSONResponse({"missing": [h for h in hashes if not blobs.has(h)]})


async def fetch_blobs(server: SyncServer, request: Request) -> Response:
    """Many blobs in one answer (the stream's format: ``media_client.py``); each one
    this token may not read, or this server lacks, is marked absent."""
    allowed = set(_reachable(server, request, write=False))
    hashes = await _asked(server, request)
    assert server.workspace is not None
    # A plain iterator: starlette reads it in a worker thread, so files are read off the loop.
    return StreamingResponse(
        batch_stream(server.workspace.blobs, hashes, allowed),
        media_type="application/octet-stream",
    )


def media_routes(server: SyncServer) -> list[Route]:
    return [
        Route("/media/missing", partial(missing_blobs, server), methods=["POST"]),
        Route("/media/fetch", partial(fetch_blobs, server), methods=["POST"]),
        Route("/media/store", partial(store_blobs, server), methods=["POST"]),
        Route("/media/{hash}", partial(get_blob, server), methods=["GET", "HEAD"]),
        Route("/media/{hash}", partial(put_blob, server), methods=["PUT"]),
    ]
