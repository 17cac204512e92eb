"""The dashboard's writes and files: applying a replacement, importing an uploaded file,
downloading an export. Thin front ends over core's application layer, the same code the
CLI runs (``castroom replace --apply``, ``castroom import``, ``castroom export``):

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
import os
import re
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec
from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from castroom.core import edits
from castroom.core.errors import CastroomError, NotFound
from castroom.core.importing import ImportFailed, apply_preview, format_errors, preview_import
from castroom.core.replacing import applied_choice, choose, plan_choice
from castroom.core.view import ProductionView

if TYPE_CHECKING:
    from castroom.core.registry import Exporter, Importer
    from castroom.core.workspace import StoredProduction

    from .app import Dashboard

#: The largest file the page may upload for an import (bytes): a long PDF script is a
#: few MB, a 10,000-talent CSV about 2 MB.
MAX_UPLOAD = 16 * 1024 * 1024
#: The largest JSON request body (a replacement request is a few ids).
MAX_REQUEST = 64 * 1024
#: How many of a plan's edits a response lists (then "... and N more").
SHOWN_EDITS = 200
#: Query parameters that are the request's own, not the importer's or exporter's options.
RESERVED = frozenset({"token", "member", "filename", "dry_run", "expect"})


class ReplacementRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """``POST /api/{id}/replacement``: who drops out, and which ranked replacement (a
    talent or candidate id from ``GET /api/{id}/replacements``) takes over."""

    talent: str
    replacement: str
    role: str | None = None
    dry_run: bool = False
    #: The ``plan_id`` of the plan the page showed: refused (409) if the plan is now another.
    expect: str | None = None


class Actions:
    """The routes that write or move files, on one dashboard."""

    def __init__(self, dashboard: Dashboard) -> None:
        self.dashboard = dashboard
        self.server = dashboard.server

    def _writable(self, request: Request) -> tuple[StoredProduction, str]:
        """The production a write token may change, and the member it writes as."""
        production_id = request.path_params["production_id"]
        info = self.server.authorize(request, production_id, write=True)
        production = self.server.production(production_id)
        production.refresh()
        return production, self.dashboard.member_of(info)

    # -- replacing a talent who drops out ------------------------------------------------------

    async def replacement(self, request: Request) -> Response:
        production, member = self._writable(request)
        ask = _decode(await self.server.read_body(request, limit=MAX_REQUEST))
        plugins = self.dashboard.plugins
        view = ProductionView(production.doc, plugins=plugins)
        try:
            ranking = self.dashboard.rank(view, ask.talent, ask.role)
            role_plan, chosen = choose(ranking, ask.replacement)
            plan, choice = plan_choice(view, ranking, role_plan, chosen)
            shown = _shown(view, plan)
            if ask.dry_run:
                return JSONResponse(
                    {
                        "dry_run": True,
                        "reason": plan.reason,
                        "plan": shown,
                        "plan_id": edits.fingerprint(plan),
                        "role_id": role_plan.role_id,
                        "replacement": msgspec.to_builtins(chosen),
                    }
                )
            _still(plan, ask.expect)
            with production.writing_as(member):
                applied = edits.apply(production.doc, plan)
        except CastroomError as exc:
            return _error(exc)
        done = applied_choice(ProductionView(production.doc), role_plan, chosen, choice, applied)
        return JSONResponse(
            {
                "dry_run": False,
                "reason": plan.reason,
                "plan": shown,
                "plan_id": edits.fingerprint(plan),
                **_plain(done.summary()),
            }
        )

    # -- imports and exports -------------------------------------------------------------------

    async def formats(self, request: Request) -> Response:
        """The importers a file can be uploaded to and the exporters, for the page's menus."""
        self.dashboard.production_for(request)
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
        production, member = self._writable(request)
        importer = self._importer(request.path_params["importer"])
        filename = upload_name(request.query_params.get("filename", ""))
        options = query_options(request.query_params)
        dry_run = _flag(request.query_params.get("dry_run"))
        body = await self.server.read_body(request, limit=MAX_UPLOAD)
        with tempfile.TemporaryDirectory(prefix="castroom-upload-") as folder:
            source = Path(folder) / filename
            source.write_bytes(body)
            try:
                doc = production.doc
                checked = preview_import(doc, importer, str(source), options)
                plan, counts, result = checked.plan, checked.counts, checked.result
                shown = _shown(ProductionView(doc), plan)
                if not dry_run:
                    _still(plan, request.query_params.get("expect"))
                    # Checked just now, with nothing awaited since: written as checked.
                    with production.writing_as(member):
                        apply_preview(doc, checked)
            except CastroomError as exc:
                # The file is named as it was uploaded; the server's folder stays its own.
                return _error(exc, hide=folder + os.sep)
        return JSONResponse(
            {
                "dry_run": dry_run,
                "importer": importer.name,
                "filename": filename,
                "created": counts.created,
                "updated": counts.updated,
                "unchanged": counts.unchanged,
                "warnings": result.warnings,
                "report": result.report,
                "plan": shown,
                "plan_id": edits.fingerprint(plan),
            }
        )

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
        production = self.dashboard.production_for(request)
        exporter = self._exporter(request.path_params["exporter"])
        options = query_options(request.query_params)
        try:
            data = exporter.export(ProductionView(production.doc), options)
        except CastroomError as exc:
            return _error(exc)
        name = f"{_slug(production.title())}-{exporter.name}{exporter.file_suffix(options)}"
        media = mimetypes.guess_type(name)[0] or "application/octet-stream"
        if media.startswith("text/"):
            media += "; charset=utf-8"
        return Response(
            data,
            media_type=media,
            headers={
                "Content-Disposition": f'attachment; filename="{name}"',
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


def _slug(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", title.casefold()).strip("-")[:60] or "production"


def _flag(raw: str | None) -> bool:
    return raw is not None and raw.lower() not in ("0", "false", "no")


class PlanChanged(CastroomError):
    """The plan to apply is not the one the page showed."""


def _still(plan: edits.Plan, expected: str | None) -> None:
    """Refuse (409) to apply ``plan`` if the page showed another (``expected``: its id)."""
    if expected and edits.fingerprint(plan) != expected:
        raise PlanChanged(
            "the production changed since this plan was shown: nothing was applied; "
            "look at the plan again"
        )


def _decode(body: bytes) -> ReplacementRequest:
    try:
        return msgspec.json.decode(body, type=ReplacementRequest)
    except msgspec.DecodeError as exc:
        raise _refused(400, f"bad request: {exc}") from None


def _shown(view: ProductionView, plan: edits.Plan) -> list[str]:
    """The plan for people: its first :data:`SHOWN_EDITS` edits, then how many more."""
    lines = edits.describe(view, edits.Plan(edits=plan.edits[:SHOWN_EDITS]))
    more = len(plan.edits) - SHOWN_EDITS
    return [*lines, f"... and {more} more"] if more > 0 else lines


def _plain(data: Any) -> Any:
    return msgspec.to_builtins(data)


def _refused(status: int, message: str) -> Exception:
    from ..server import Refused

    return Refused(status, message)


def _error(exc: CastroomError, *, hide: str = "") -> JSONResponse:
    """One refusal: 404 for what does not exist, 400 for the rest; an import's bad rows
    are listed too. ``hide``: a path prefix left out of the words."""
    plain = (lambda text: text.replace(hide, "")) if hide else str
    body: dict[str, Any] = {"error": plain(str(exc))}
    if isinstance(exc, ImportFailed):
        body["errors"] = [plain(line) for line in format_errors(exc.errors)]
    status = 404 if isinstance(exc, NotFound) else 409 if isinstance(exc, PlanChanged) else 400
    return JSONResponse(body, status_code=status)
