"""The server's ``/media`` routes: attached files by their SHA-256, with the same
tokens and scopes as ``/sync`` (the protocol: ``media_client.py``)."""

from __future__ import annotations

import json
from functools import partial
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from ..core import media
from ..core.blobs import BlobRefused, check_hash
from ..core.errors import CastroomError
from .media_client import MAX_ASKED, batch_stream

if TYPE_CHECKING:
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


async def put_blob(server: SyncServer, request: Request) -> Response:
    from .server import Refused

    digest = _hash_param(request)
    token = server.authorize(request, None, write=True)
    need = _reachable(server, request, write=True).get(digest)
    if need is None:
        raise Refused(403, f"no production this token may write refers to {digest[:12]}…")
    declared = request.headers.get("content-length")
    if declared is None or not declared.isdigit():
        raise Refused(411, "send the blob with a Content-Length")
    size = int(declared)
    workspace = server.workspace
    assert workspace is not None
    if need.size is not None and size != need.size:
        raise Refused(400, f"{size:,} bytes sent, but the record says {need.size:,}")
    limit = media.size_limit(workspace.config, need.what)
    if size > limit:
        raise Refused(413, f"{size:,} bytes is over the {need.what} limit of {limit:,} bytes")
    if workspace.blobs.has(digest):
        return JSONResponse({"stored": False, "size": workspace.blobs.size(digest)})
    pending = server.media_uploading
    try:
        # Checked and reserved with no await between: two uploads at once by one token
        # cannot both pass on the same room.
        media.check_quota(workspace, token.id, size, pending.get(token.id, 0))
    except media.QuotaExceeded as exc:
        raise Refused(413, str(exc)) from None
    pending[token.id] = pending.get(token.id, 0) + size
    try:
        with workspace.blobs.writer(expected=digest, expected_size=size, max_bytes=limit) as out:
            async for chunk in server.body_chunks(request):
                out.write(chunk)
            stored = out.commit()
        if stored.new:
            media.add_uploaded(workspace, token.id, stored.size)
    except BlobRefused as exc:
        raise Refused(400, str(exc)) from None
    finally:
        pending[token.id] -= size
        if not pending[token.id]:
            del pending[token.id]
    return JSONResponse({"stored": stored.new, "size": stored.size})


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
        Route("/media/{hash}", partial(get_blob, server), methods=["GET", "HEAD"]),
        Route("/media/{hash}", partial(put_blob, server), methods=["PUT"]),
    ]
