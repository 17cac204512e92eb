"""The dashboard's routes on the sync server: the app shell, the model's JSON Schema and a
small JSON API for what only the server can do (findings, pushed as they change; and in
:mod:`.actions`, applying a replacement, imports and exports).

Mounted by :func:`castroom.sync.server.create_app` through :func:`routes`; every API
route asks the server's own token check (:meth:`SyncServer.authorize`), so the page has
exactly the scopes its token gives, and the Yjs data itself moves over ``/sync/{id}``
like any other peer's. The app shell, its assets and the schema need no token: they hold
no production data, and the service worker must be able to cache them for offline use.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import msgspec
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from castroom.core.history import history_rows

from .actions import Actions
from .assets import FILES, asset
from .schema import model_schema
from .worker import Judgement, Worker, judge, replacements

if TYPE_CHECKING:
    from castroom.core.plugins import Plugins
    from castroom.core.workspace import StoredProduction

    from ..auth import TokenInfo
    from ..server import SyncServer

#: How often a findings stream looks for changes (seconds), and how long it lets a burst
#: of edits settle before re-running the checks (so a drag is one run, not ten).
FINDINGS_POLL = 0.1
FINDINGS_SETTLE = 0.15
#: A comment line keeps the stream (and any proxy) from timing out while nothing changes.
KEEPALIVE = 15.0
#: How often a stream re-checks its token, so a revocation ends it (seconds).
TOKEN_RECHECK = 1.0


class Dashboard:
    """The dashboard's state on one server: its worker process (:mod:`.worker`, where
    the findings, the budget, rankings and imports are worked out, off the event loop),
    and a change counter per production so the findings are worked out again only after
    a change."""

    def __init__(self, server: SyncServer) -> None:
        self.server = server
        self.worker = Worker()
        server.on_close.append(self.worker.close)
        self._plugins: Plugins | None = None
        self._changes: dict[str, int] = {}
        self._watched: set[str] = set()
        #: The latest judgement of each production, and the change count it is for.
        self._judged: dict[str, tuple[int, Judgement]] = {}
        #: A judgement being worked out, per production: callers meanwhile share it.
        self._judging: dict[str, tuple[int, asyncio.Future[Judgement]]] = {}

    @property
    def plugins(self) -> Plugins:
        """This process's plugins: the importers' and exporters' lists, and exports."""
        if self._plugins is None:
            from castroom.core.plugins import make_plugins

            self._plugins = make_plugins()
        return self._plugins

    @property
    def workspace_path(self) -> str:
        return str(self.server.workspace_path)

    # -- app shell ---------------------------------------------------------------------------

    async def shell(self, request: Request) -> Response:
        # Every path the page routes to (hash routes) is the one shell.
        return self._file("index.html")

    async def static(self, request: Request) -> Response:
        return self._file(request.url.path.lstrip("/"))

    def _file(self, name: str) -> Response:
        headers = {"Cache-Control": "no-cache"}
        if name == "sw.js":
            headers["Service-Worker-Allowed"] = "/"
        return Response(asset(name), media_type=FILES[name], headers=headers)

    async def schema(self, request: Request) -> Response:
        return JSONResponse(model_schema(), headers={"Cache-Control": "no-cache"})

    # -- API ---------------------------------------------------------------------------------

    async def session(self, request: Request) -> Response:
        """Who the token speaks for and what it may do: the page's first question."""
        info = self.server.authorize(request, None, write=False)
        assert self.server.workspace is not None
        self.worker.start()  # its first job is a moment away: let it load meanwhile
        productions = [
            {"id": pid, "title": title}
            for pid, title in self.server.workspace.productions(include_deleted=False)
            if info.may_read(pid)
        ]
        return JSONResponse(
            {
                "scope": info.scope,
                "token_id": info.id,
                "member": self.member_of(info),
                "productions": productions,
            }
        )

    async def production_for(self, request: Request) -> StoredProduction:
        """The production in the request's path, if the token may read it."""
        production_id = request.path_params["production_id"]
        self.server.authorize(request, production_id, write=False)
        production = await self.server.opened(production_id)
        self._watch(production)
        return production

    def member_of(self, info: TokenInfo) -> str:
        """The member a token speaks for: its name, else the workspace's member."""
        assert self.server.workspace is not None
        return info.name or self.server.workspace.identity.member

    def _watch(self, production: StoredProduction) -> None:
        """Count this production's changes (local, other processes', peers')."""
        assert production.id is not None
        if production.id in self._watched:
            return
        self._watched.add(production.id)
        pid = production.id

        def changed(update: bytes, origin: str, changes: object) -> None:
            # A page's answer to our step 1 carries the whole delete set and changes
            # nothing: no reason to judge the production again.
            if changes:
                self._changes[pid] = self._changes.get(pid, 0) + 1

        production.update_listeners.append(changed)

    async def judgement(self, production: StoredProduction) -> Judgement:
        """The findings and the budget, worked out again (in the worker) only if the
        production changed since."""
        assert production.id is not None
        pid = production.id
        if pid not in self.server.merging:
            production.refresh()  # another process's commits count as changes too
        version = self._changes.get(pid, 0)
        judged = self._judged.get(pid)
        if judged is not None and judged[0] == version:
            return judged[1]
        judging = self._judging.get(pid)
        if judging is None or judging[0] != version:
            future = asyncio.ensure_future(self.worker.run(judge, self.workspace_path, pid))
            judging = self._judging[pid] = (version, future)
            future.add_done_callback(lambda _: self._judged_done(pid, judging))
        # Shielded: a page that leaves does not cancel the job the others wait for.
        result = await asyncio.shield(judging[1])
        # Worked out from what was committed when it started: at least this version.
        if self._judged.get(pid, (-1,))[0] < version:
            self._judged[pid] = (version, result)
        return result

    def _judged_done(self, pid: str, judging: tuple[int, asyncio.Future[Judgement]]) -> None:
        if self._judging.get(pid) is judging:
            del self._judging[pid]

    def _refusal(self, request: Request, production_id: str) -> str | None:
        from ..server import Refused

        try:
            self.server.authorize(request, production_id, write=False)
        except Refused as refusal:
            return refusal.message
        return None

    async def budget(self, request: Request) -> Response:
        production = await self.production_for(request)
        return Response((await self.judgement(production)).budget, media_type=_JSON)

    async def history(self, request: Request) -> Response:
        """Who changed what, newest first, as ``castroom history --json``."""
        production = await self.production_for(request)
        limit = _bounded_int(request.query_params.get("limit"), default=100, most=1000)
        return JSONResponse(msgspec.to_builtins(history_rows(production, limit=limit)))

    async def replacements(self, request: Request) -> Response:
        """Ranked replacements for a booked talent, as ``castroom replace --json``."""
        production = await self.production_for(request)
        talent = request.query_params.get("talent", "")
        role = request.query_params.get("role") or None
        status, body = await self.worker.run(
            replacements, self.workspace_path, str(production.id), talent, role
        )
        return JSONResponse(body, status_code=status)

    async def findings(self, request: Request) -> Response:
        production = await self.production_for(request)
        return Response((await self.judgement(production)).findings, media_type=_JSON)

    async def live(self, request: Request) -> Response:
        """Server-sent events: the findings and the budget now, then again after every
        change."""
        production = await self.production_for(request)
        return StreamingResponse(
            self._stream(request, production),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    async def _stream(self, request: Request, production: StoredProduction) -> AsyncIterator[str]:
        assert production.id is not None
        pid = production.id
        sent = -1
        quiet_since = checked_token = time.monotonic()
        while True:
            await self.server.until_merged(pid)  # its document is not ours meanwhile
            with contextlib.suppress(Exception):  # storage busy: look again next round
                production.refresh()
            if time.monotonic() - checked_token > TOKEN_RECHECK:
                checked_token = time.monotonic()
                refusal = self._refusal(request, pid)
                if refusal:
                    yield _event("denied", msgspec.json.encode({"error": refusal}))
                    return
            version = self._changes.get(pid, 0)
            if version != sent:
                # Let a burst settle, then check once.
                await asyncio.sleep(FINDINGS_SETTLE if sent >= 0 else 0)
                if self._changes.get(pid, 0) != version and sent >= 0:
                    continue
                judged = await self.judgement(production)
                sent = version
                quiet_since = time.monotonic()
                yield _event("findings", judged.findings)
                yield _event("budget", judged.budget)
            elif time.monotonic() - quiet_since > KEEPALIVE:
                quiet_since = time.monotonic()
                yield ": keep-alive\n\n"
            if await request.is_disconnected():
                return
            await asyncio.sleep(FINDINGS_POLL)


_JSON = "application/json"


def _bounded_int(raw: str | None, *, default: int, most: int) -> int:
    return max(1, min(int(raw), most)) if raw and raw.isdigit() else default


def _event(name: str, data: bytes) -> str:
    # msgspec's JSON is one line: one data line.
    return f"event: {name}\ndata: {data.decode()}\n\n"


def routes(server: SyncServer) -> list[BaseRoute]:
    """The dashboard's routes, for the server's route list."""
    dashboard = Dashboard(server)
    actions = Actions(dashboard)
    return [
        Route("/", dashboard.shell, methods=["GET"]),
        *(Route(f"/{name}", dashboard.static, methods=["GET"]) for name in FILES),
        Route("/schema.json", dashboard.schema, methods=["GET"]),
        Route("/api/session", dashboard.session, methods=["GET"]),
        Route("/api/{production_id}/findings", dashboard.findings, methods=["GET"]),
        Route("/api/{production_id}/live", dashboard.live, methods=["GET"]),
        Route("/api/{production_id}/budget", dashboard.budget, methods=["GET"]),
        Route("/api/{production_id}/history", dashboard.history, methods=["GET"]),
        Route("/api/{production_id}/replacements", dashboard.replacements, methods=["GET"]),
        Route("/api/{production_id}/replacement", actions.replacement, methods=["POST"]),
        Route("/api/{production_id}/formats", actions.formats, methods=["GET"]),
        Route("/api/{production_id}/import/{importer}", actions.import_file, methods=["POST"]),
        Route("/api/{production_id}/export/{exporter}", actions.export_file, methods=["GET"]),
    ]
