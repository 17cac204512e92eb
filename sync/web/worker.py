"""The dashboard's heavy work, in a worker process beside the server: every plugin's
findings and the budget, ranked replacements, applying one, imports and exports.

Each of these reads (or writes) the whole production and can take seconds on a large
one: on the server's event loop they stalled every room. pycrdt holds the GIL while it
works, so a thread would stall them too. The worker opens the same workspace as a second
process, as a CLI command beside a running server does (the design's "several processes
may use one workspace at once"): it merges what is committed before each job, and what
it writes the server merges in turn (:meth:`StoredProduction.refresh`) and relays to its
peers. What is committed is what the server holds: the server relays and answers only
after its commits.

The rules are core's application layer, called exactly as the CLI calls them; this
module only carries their answers back as ``(status, JSON-ready body)``, an error being
``{"error": ...}`` in the CLI's words (nothing written). The functions run in the worker
(:class:`Worker` submits them); they keep the worker's open workspaces between jobs, so
a production is decoded once, then brought up to date.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import re
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any, TypeVar

import msgspec

from castroom.core import edits
from castroom.core.contracts import ContingencyPlan
from castroom.core.errors import CastroomError, NotFound
from castroom.core.findings import Finding
from castroom.core.importing import ImportFailed, apply_preview, format_errors, preview_import
from castroom.core.model import Talent
from castroom.core.plugins import Plugins, make_plugins
from castroom.core.replacing import applied_choice, choose, plan_choice
from castroom.core.view import ProductionView
from castroom.core.workspace import StoredProduction, Workspace

T = TypeVar("T")
Answer = tuple[int, Any]

#: How many of a plan's edits a response lists (then "... and N more").
SHOWN_EDITS = 200


class Findings(msgspec.Struct, kw_only=True):
    """What the Findings view shows: every plugin's findings at one moment."""

    production_id: str
    checked_at: float
    findings: list[Finding]
    failures: list[str]


class Judgement(msgspec.Struct, kw_only=True, frozen=True):
    """The findings and the budget of one production at one log position, encoded as
    the API sends them (``budget`` is ``null`` when no plugin prices the cast)."""

    findings: bytes
    budget: bytes


class ReplacementRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """``POST /api/{id}/replacement``: who drops out, and which ranked replacement (a
    talent or candidate id from ``GET /api/{id}/replacements``) takes over."""

    talent: str
    replacement: str
    role: str | None = None
    dry_run: bool = False
    #: The ``plan_id`` of the plan the page showed: refused (409) if the plan is now another.
    expect: str | None = None


class Upload(msgspec.Struct, kw_only=True, frozen=True):
    """``POST /api/{id}/import/{importer}``: the uploaded file and what to do with it."""

    importer: str
    filename: str
    body: bytes
    options: dict[str, Any]
    dry_run: bool
    expect: str | None


# -- in the worker process ---------------------------------------------------------------

_workspaces: dict[str, Workspace] = {}
_plugins: list[Plugins] = []


def _open(workspace: str, production_id: str) -> StoredProduction:
    """The production as committed now (opened once per worker, then brought up to date)."""
    opened = _workspaces.get(workspace)
    if opened is None:
        opened = _workspaces[workspace] = Workspace.open(Path(workspace), create=False)
    production = opened.production(production_id)
    production.refresh()
    return production


def plugins() -> Plugins:
    if not _plugins:
        _plugins.append(make_plugins())
    return _plugins[0]


def warm_up() -> int:
    """Load what every job needs (run once when the worker starts)."""
    plugins().importers()
    return os.getpid()


def judge(workspace: str, production_id: str) -> Judgement:
    """Every plugin's findings and the cost report, as ``castroom check --json`` and
    ``castroom budget --json`` give them."""
    production = _open(workspace, production_id)
    found = plugins()
    before = len(found.failures)
    view = ProductionView(production.doc, origin_of=production.origin_of)
    checked = found.check(view)
    failures = [str(f) for f in found.failures[before:] if f.hook == "castroom_check"]
    findings = Findings(
        production_id=production_id, checked_at=time.time(), findings=checked, failures=failures
    )
    report = ProductionView(production.doc, plugins=found).cost_report()
    return Judgement(findings=msgspec.json.encode(findings), budget=msgspec.json.encode(report))


def rank(view: ProductionView, talent: str, role: str | None) -> ContingencyPlan:
    """The plugins' ranked replacements for ``talent`` (ids), or NotFound."""
    if view.find(Talent, talent) is None:
        raise NotFound(f"no talent {talent!r}")
    plan = plugins().rank_replacements(view, talent, role)
    if plan is None:
        raise NotFound("no plugin ranks replacements")
    return plan


def replacements(workspace: str, production_id: str, talent: str, role: str | None) -> Answer:
    """Ranked replacements, as ``castroom replace --json``."""
    production = _open(workspace, production_id)
    try:
        plan = rank(ProductionView(production.doc, plugins=plugins()), talent, role)
    except CastroomError as exc:
        return error(exc)
    return 200, msgspec.to_builtins(plan)


def replacement(workspace: str, production_id: str, member: str, ask: ReplacementRequest) -> Answer:
    """Plan (and unless ``dry_run``, apply) a ranked replacement, as ``castroom replace
    --apply`` does."""
    production = _open(workspace, production_id)
    view = ProductionView(production.doc, plugins=plugins())
    try:
        ranking = rank(view, ask.talent, ask.role)
        role_plan, chosen = choose(ranking, ask.replacement)
        plan, choice = plan_choice(view, ranking, role_plan, chosen)
        shown = {
            "reason": plan.reason,
            "plan": _shown(view, plan),
            "plan_id": edits.fingerprint(plan),
        }
        if ask.dry_run:
            return 200, {
                "dry_run": True,
                **shown,
                "role_id": role_plan.role_id,
                "replacement": msgspec.to_builtins(chosen),
            }
        _still(plan, ask.expect)
        with production.writing_as(member):
            applied = edits.apply(production.doc, plan)
    except CastroomError as exc:
        return error(exc)
    done = applied_choice(ProductionView(production.doc), role_plan, chosen, choice, applied)
    return 200, {"dry_run": False, **shown, **msgspec.to_builtins(done.summary())}


def import_upload(workspace: str, production_id: str, member: str, upload: Upload) -> Answer:
    """Read the uploaded file with the importer, check it (:func:`preview_import`) and,
    unless ``dry_run``, write it (``apply_preview``): the ``import_into`` the CLI runs."""
    production = _open(workspace, production_id)
    importer = plugins().importers()[upload.importer]
    with tempfile.TemporaryDirectory(prefix="castroom-upload-") as folder:
        source = Path(folder) / upload.filename
        source.write_bytes(upload.body)
        try:
            doc = production.doc
            checked = preview_import(doc, importer, str(source), upload.options)
            plan, counts, result = checked.plan, checked.counts, checked.result
            shown = _shown(ProductionView(doc), plan)
            if not upload.dry_run:
                _still(plan, upload.expect)
                # Checked just now, with nothing else writing in this process: as checked.
                with production.writing_as(member):
                    apply_preview(doc, checked)
        except CastroomError as exc:
            # The file is named as it was uploaded; the worker's folder stays its own.
            return error(exc, hide=folder + os.sep)
    return 200, {
        "dry_run": upload.dry_run,
        "importer": importer.name,
        "filename": upload.filename,
        "created": counts.created,
        "updated": counts.updated,
        "unchanged": counts.unchanged,
        "warnings": result.warnings,
        "report": result.report,
        "plan": shown,
        "plan_id": edits.fingerprint(plan),
    }


class Exported(msgspec.Struct, kw_only=True, frozen=True):
    """An exporter's file: its bytes and the name it downloads as."""

    data: bytes
    filename: str


def export(workspace: str, production_id: str, exporter: str, options: dict[str, Any]) -> Answer:
    """The exporter's file (an :class:`Exported`), as ``castroom export`` writes it."""
    production = _open(workspace, production_id)
    chosen = plugins().exporters()[exporter]
    try:
        data = chosen.export(ProductionView(production.doc), options)
    except CastroomError as exc:
        return error(exc)
    name = f"{_slug(production.title())}-{chosen.name}{chosen.file_suffix(options)}"
    return 200, Exported(data=data, filename=name)


def _slug(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", title.casefold()).strip("-")[:60] or "production"


class PlanChanged(CastroomError):
    """The plan to apply is not the one the page showed."""


def _still(plan: edits.Plan, expected: str | None) -> None:
    """Refuse (409) to apply ``plan`` if the page showed another (``expected``: its id)."""
    if expected and edits.fingerprint(plan) != expected:
        raise PlanChanged(
            "the production changed since this plan was shown: nothing was applied; "
            "look at the plan again"
        )


def _shown(view: ProductionView, plan: edits.Plan) -> list[str]:
    """The plan for people: its first :data:`SHOWN_EDITS` edits, then how many more."""
    lines = edits.describe(view, edits.Plan(edits=plan.edits[:SHOWN_EDITS]))
    more = len(plan.edits) - SHOWN_EDITS
    return [*lines, f"... and {more} more"] if more > 0 else lines


def error(exc: CastroomError, *, hide: str = "") -> Answer:
    """One refusal: 404 for what does not exist, 409 for a plan that changed, 400 for the
    rest; an import's bad rows are listed too. ``hide``: a path prefix left out."""
    plain = (lambda text: text.replace(hide, "")) if hide else str
    body: dict[str, Any] = {"error": plain(str(exc))}
    if isinstance(exc, ImportFailed):
        body["errors"] = [plain(line) for line in format_errors(exc.errors)]
    status = 404 if isinstance(exc, NotFound) else 409 if isinstance(exc, PlanChanged) else 400
    return status, body


# -- in the server -------------------------------------------------------------------------


class WorkerFailed(CastroomError):
    """The worker process stopped part way (it is started again for the next job)."""


class Worker:
    """One worker process for a server's dashboard, started on first use (and warmed
    up at once), started again if it dies; jobs run one after another."""

    def __init__(self) -> None:
        self._pool: ProcessPoolExecutor | None = None

    def start(self) -> None:
        if self._pool is None:
            # spawn, not fork: the server's process has threads (and an event loop).
            self._pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
            self._pool.submit(warm_up)

    async def run(self, job: Callable[..., T], *args: Any) -> T:
        """``job(*args)`` in the worker process, awaited without holding the loop."""
        self.start()
        assert self._pool is not None
        pool = self._pool
        try:
            return await asyncio.get_running_loop().run_in_executor(pool, job, *args)
        except BrokenProcessPool:
            if self._pool is pool:
                self._pool = None
                pool.shutdown(wait=False, cancel_futures=True)
            raise WorkerFailed(
                "the dashboard's worker process stopped; nothing of this was written"
                " unless the history shows it: try again"
            ) from None

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
