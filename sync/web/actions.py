"""The dashboard's writes and files: applying a replacement, importing an uploaded file,
downloading an export. Thin front ends over core's application layer, the same code the
CLI runs (``castroom replace --apply``, ``castroom import``, ``castroom export``); all
three run in the dashboard's worker process (:mod:`.worker`), so a large one does not
hold up the other rooms:

- a replacement is planned by :func:`castroom.core.replacing.plan_choice` over the
  plugins' ranking and applied by :func:`castroom.core.edits.apply`;
- an upload is read by the importer the plugins registered, checked by
  :func:`castroom.core.importing.preview_import` and written by ``apply_preview``: the
  two halves of the ``import_into`` the CLI runs;
- an export is the registered exporter's bytes (:meth:`Exporter.export`).

Writes ask for a write token (a read-only one gets 403 and nothing runs), are recorded
in the history as the token's member, and are all or nothing: a refused plan or a
malformed file is one error (``{"error": ...}``) and leaves the production as it was.
``dry_run`` shows the plan and its ``plan_id`` and writes nothing; a request to apply
that sends ``expect`` (that id) is refused (409) if the plan is now another, so what is
applied is what was shown. Uploads are bounded (:data:`MAX_UPLOAD`).
"""

from __future__ import annotations

import mimetypes
import re
from typing import TYPE_CHECKING, Any

import msgspec
from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from castroom.core.errors import CastroomError

from . import worker

if TYPE_CHECKING:
    from castroom.core.registry import Exporter, Importer
    from castroom.core.workspace import StoredProduction

    from .app import Dashboard

#: The largest file the page may upload for an import (bytes): a long PDF script is a
#: few MB, a 10,000-talent CSV about 2 MB.
MAX_UPLOAD = 16 * 1024 * 1024
#: The largest JSON request body (a replacement request is a few ids).
MAX_REQUEST = 64 * 1024
#: Query parameters that are the request's own, not the importer's or exporter's options.
RESERVED = frozenset({"token", "member", "filename", "dry_run", "expect"})


class Actions:
    """The routes that write or move files, on one dashboard."""

    def __init__(self, dashboard: Dashboard) -> None:
        self.dashboard = dashboard
        self.server = dashboard.server

    async def _writable(self, request: Request) -> tuple[StoredProduction, str]:
        """The production a write token may change, and the member it writes as (a
        first open walks its snapshot in a worker thread: SyncServer.opened)."""
        production_id = request.path_params["production_id"]
        info = self.server.authorize(request, production_id, write=True)
        production = await self.server.opened(production_id)
        return production, self.dashboard.member_of(info)

    async def _in_worker(self, production: StoredProduction, job: Any, *args: Any) -> Response:
        """Run a job that may write in the worker process; once it has answered, what it
        wrote is merged here at once (and relayed to the peers), not at the next poll."""
        try:
            status, body = await self.dashboard.worker.run(
                job, self.dashboard.workspace_path, str(production.id), *args
            )
        except CastroomError as exc:
            return JSONResponse({"error": str(exc)}, status_code=503)
        if production.id not in self.server.merging:
            production.refresh()
        return JSONResponse(body, status_code=status)

    # -- replacing a talent who drops out ------------------------------------------------------

    async def replacement(self, request: Request) -> Response:
        production, member = await self._writable(request)
        ask = _decode(await self.server.read_body(request, limit=MAX_REQUEST))
        return await self._in_worker(production, worker.replacement, member, ask)

    # -- imports and exports -------------------------------------------------------------------

    async def formats(self, request: Request) -> Response:
        """The importers a file can be uploaded to and the exporters, for the page's menus."""
        await self.dashboard.production_for(request)
        plugins = self.dashboard.plugins
        return JSONResponse(
            {
                "importers": [
                    {"name": name, "description": i.description}
                    for name, i in sorted(plugins.importers().items())
                    if i.takes_files
                ],
                "exporters": [
                    {"name": name, "description": e.description, "suffix": e.suffix}
                    for name, e in sorted(plugins.exporters().items())
                ],
                "max_upload": MAX_UPLOAD,
            }
        )

    async def import_file(self, request: Request) -> Response:
        production, member = await self._writable(request)
        upload = worker.Upload(
            importer=self._importer(request.path_params["importer"]).name,
            filename=upload_name(request.query_params.get("filename", "")),
            options=query_options(request.query_params),
            dry_run=_flag(request.query_params.get("dry_run")),
            expect=request.query_params.get("expect"),
            body=await self.server.read_body(request, limit=MAX_UPLOAD),
        )
        return await self._in_worker(production, worker.import_upload, member, upload)

    def _importer(self, name: str) -> Importer:
        importers = self.dashboard.plugins.importers()
        importer = importers.get(name)
        if importer is None:
            known = ", ".join(sorted(n for n, i in importers.items() if i.takes_files)) or "none"
            raise _refused(404, f"no importer {name!r} for an uploaded file (installed: {known})")
        if not importer.takes_files:
            raise _refused(
                400, f"importer {name!r} reads a URL, not a file: castroom import {name} URL"
            )
        return importer

    async def export_file(self, request: Request) -> Response:
        production = await self.dashboard.production_for(request)
        exporter = self._exporter(request.path_params["exporter"])
        options = query_options(request.query_params)
        try:
            status, body = await self.dashboard.worker.run(
                worker.export, self.dashboard.workspace_path, str(production.id),
                exporter.name, options,
            )  # fmt: skip
        except CastroomError as exc:
            return JSONResponse({"error": str(exc)}, status_code=503)
        if not isinstance(body, worker.Exported):
            return JSONResponse(body, status_code=status)
        media = mimetypes.guess_type(body.filename)[0] or "application/octet-stream"
        if media.startswith("text/"):
            media += "; charset=utf-8"
        return Response(
            body.data,
            media_type=media,
            headers={
                "Content-Disposition": f'attachment; filename="{body.filename}"',
                "Cache-Control": "no-store",
            },
        )

    def _exporter(self, name: str) -> Exporter:
        exporters = self.dashboard.plugins.exporters()
        exporter = exporters.get(name)
        if exporter is None:
            known = ", ".join(sorted(exporters)) or "none"
            raise _refused(404, f"no exporter {name!r} (installed: {known})")
        return exporter


def query_options(params: QueryParams) -> dict[str, Any]:
    """An importer's or exporter's options from the query, as the CLI reads them after
    the command (``?kind=talent&map=Name=name&map=Rate=rate`` is ``--kind talent --map
    Name=name --map Rate=rate``): a repeated key is a list, an empty value a bare flag."""
    options: dict[str, Any] = {}
    for key in params:
        if key in RESERVED:
            continue
        values: list[Any] = [v if v != "" else True for v in params.getlist(key)]
        options[key.replace("-", "_")] = values[0] if len(values) == 1 else values
    return options


_UNSAFE = re.compile(r"[^\w.\- ]+")


def upload_name(raw: str) -> str:
    """The uploaded file's name, safe as one file in a folder of its own: its last path
    part, plain characters only; its suffix is kept (importers read formats by it)."""
    base = re.split(r"[\\/]", raw)[-1]
    name = _UNSAFE.sub("_", base).strip(" .")[-100:]
    return name or "upload"


def _flag(raw: str | None) -> bool:
    return raw is not None and raw.lower() not in ("0", "false", "no")


def _decode(body: bytes) -> worker.ReplacementRequest:
    try:
        return msgspec.json.decode(body, type=worker.ReplacementRequest)
    except msgspec.DecodeError as exc:
        raise _refused(400, f"bad request: {exc}") from None


def _refused(status: int, message: str) -> Exception:
    from ..server import Refused

    return Refused(status, message)
