"""The server's ``/present`` routes: a presentation's page, what it shows, its files and
its viewers' votes (``castroom present`` makes the link; core/presenting.py holds the
rule).

A presentation's token (scope ``present``) works here and nowhere else: every other
route's token check refuses it (:meth:`castroom.sync.auth.TokenStore.authorize`), so it
can neither read a production over ``/sync`` nor write one. Here it reads only
what :func:`castroom.core.presenting.presented` shows, and a vote is a plan built by
:func:`castroom.core.presenting.plan_vote` (the scope rule) and written by
:func:`castroom.core.edits.apply`, as the viewer, in the history too. A revoked or
expired presentation answers 410 with "this presentation has ended"; a token that is not
one of ours, 401 with one line saying the link is not valid.
"""

from __future__ import annotations

import datetime as dt
from functools import partial
from typing import TYPE_CHECKING, Any

import msgspec
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

from castroom.core import edits, presenting
from castroom.core.blobs import check_hash
from castroom.core.errors import CastroomError
from castroom.core.model import Candidate
from castroom.core.presenting import PresentationRefused, Showing, Vote

from .web.assets import asset

if TYPE_CHECKING:
    from castroom.core.workspace import StoredProduction

    from .auth import TokenInfo
    from .server import SyncServer

#: The largest vote request (a name, an id, a rating and a comment of 2,000 characters).
MAX_VOTE = 16 * 1024
#: What a vote request may hold; anything else is a write a presentation may not make.
VOTE_FIELDS = frozenset({"viewer", "candidate", "rating", "comment"})
NOT_VALID = (
    "this presentation link is not valid: open the whole link you were sent, or ask for a new one"
)


def _refused(status: int, message: str) -> Exception:
    from .server import Refused

    return Refused(status, message)


def _ended(info: TokenInfo) -> str | None:
    """Why a presentation has ended, or None while it runs."""
    if info.revoked is not None:
        return "this presentation has ended"
    if info.expired():
        assert info.expires is not None
        day = dt.datetime.fromtimestamp(info.expires, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
        return f"this presentation has ended (it expired on {day})"
    return None


async def _opened(
    server: SyncServer, request: Request
) -> tuple[TokenInfo, Showing, StoredProduction]:
    """The running presentation the request's token opens, or a refusal: 401 not one,
    410 ended. A first open walks a large stored snapshot in a worker thread first
    (SyncServer.opened), not on the event loop."""
    from .server import bearer_token

    assert server.tokens is not None
    info = server.tokens.genuine(bearer_token(request))
    if info is None or info.presentation is None or info.production is None:
        raise _refused(401, NOT_VALID)
    ended = _ended(info)
    assert server.workspace is not None
    if ended is None and server.workspace.is_deleted(info.production):
        ended = "this presentation has ended (its production was deleted)"
    if ended is not None:
        raise _refused(410, ended)
    production = await server.opened(info.production)
    production.refresh()
    return info, info.presentation, production


async def page(server: SyncServer, request: Request) -> Response:
    # The page holds no production data: what it shows comes from /present/api.
    return Response(
        asset("present.html"),
        media_type="text/html; charset=utf-8",
        headers={"Cache-Control": "no-cache", "Referrer-Policy": "no-referrer"},
    )


async def content(server: SyncServer, request: Request) -> Response:
    """What the presentation shows, for its page."""
    info, show, production = await _opened(server, request)
    shown = presenting.presented(production.doc, production.title(), show)
    body: dict[str, Any] = {
        "id": info.id,
        "expires": info.expires,
        "viewer_suffix": presenting.VIEWER_SUFFIX,
        **msgspec.to_builtins(shown),
    }
    return JSONResponse(body, headers={"Cache-Control": "no-store"})


def _vote(body: bytes) -> tuple[str, Vote]:
    """The viewer and their vote, or a refusal: 403 for a field no vote has (a stage, a
    role...), 400 for one that is malformed."""
    try:
        raw = msgspec.json.decode(body)
    except msgspec.DecodeError as exc:
        raise _refused(400, f"a vote is JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise _refused(400, "a vote is a JSON object: viewer, candidate, rating, comment")
    other = sorted(set(raw) - VOTE_FIELDS)
    if other:
        raise _refused(
            403,
            f"a presentation may only rate and comment: it cannot change {', '.join(other)}",
        )
    viewer = raw.pop("viewer", None)
    if not isinstance(viewer, str):
        raise _refused(400, "viewer: give your name")
    try:
        return viewer, msgspec.convert(raw, Vote)
    except msgspec.ValidationError as exc:
        raise _refused(400, f"vote: {exc}") from None


async def vote(server: SyncServer, request: Request) -> Response:
    """One viewer's vote: their rating, their comment, or both, on one select."""
    _info, show, production = await _opened(server, request)
    viewer, ballot = _vote(await server.read_body(request, limit=MAX_VOTE))
    try:
        plan = presenting.plan_vote(production.doc, show, viewer, ballot)
        key = presenting.viewer_key(viewer)
        with production.writing_as(key):
            edits.apply(production.doc, plan)
    except PresentationRefused as exc:
        raise _refused(403, str(exc)) from None
    except CastroomError as exc:
        raise _refused(400, str(exc)) from None
    candidate = production.doc.find(Candidate, ballot.candidate)
    assert candidate is not None
    return JSONResponse(
        {
            "candidate": ballot.candidate,
            "viewer": key,
            "rating": candidate.ratings.get(key),
            "commented": bool(ballot.comment.strip()),
        }
    )


async def media(server: SyncServer, request: Request) -> Response:
    """A select's file (or its thumbnail or poster): range requests answered."""
    try:
        digest = check_hash(request.path_params["hash"])
    except CastroomError as exc:
        raise _refused(400, str(exc)) from None
    _info, show, production = await _opened(server, request)
    shown = presenting.presented(production.doc, production.title(), show)
    assert server.workspace is not None
    blobs = server.workspace.blobs
    if digest not in shown.files() or not blobs.has(digest):
        raise _refused(404, f"no file {digest[:12]}… in this presentation")
    record = shown.file(digest)
    return FileResponse(
        blobs.path(digest),
        # Derived files are JPEGs (castroom.core.derivatives); originals as recorded.
        media_type=record.mime if record else "image/jpeg",
        headers={"Cache-Control": "private, no-cache"},
    )


def presentation_routes(server: SyncServer) -> list[Route]:
    return [
        Route("/present", partial(page, server), methods=["GET"]),
        Route("/present/api", partial(content, server), methods=["GET"]),
        Route("/present/api/vote", partial(vote, server), methods=["POST"]),
        Route("/present/media/{hash}", partial(media, server), methods=["GET", "HEAD"]),
    ]
