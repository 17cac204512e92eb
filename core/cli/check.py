"""``check``: every plugin's findings (a core command: it stays when any plugin is off)."""

from __future__ import annotations

import sys

import click

from .. import collector, model
from ..commands import emit_json
from ..findings import EntityRef, Finding
from ..labels import label, short_ids
from ..view import ProductionView
from .context import Context, pass_ctx
from .root import cli


@cli.command(name="check")
@click.option("--json", "as_json", is_flag=True, help="Findings and failures as JSON.")
@pass_ctx
def check_cmd(obj: Context, as_json: bool) -> None:
    """Run every plugin's checks; exit 1 when any finding is an error or a check failed."""
    with collector.paused(command=True):  # bounded: one production judged, and its report
        view = obj.view()
        before = len(obj.plugins.failures)
        found = obj.plugins.check(view)
        failures = [f for f in obj.plugins.failures[before:] if f.hook == "castroom_check"]
        errors = sum(1 for f in found if f.severity == "error")
        if as_json:
            emit_json(
                {
                    "findings": found,
                    "failures": [
                        {"plugin": f.plugin, "hook": f.hook, "error": f.error} for f in failures
                    ],
                    "counts": {
                        sev: sum(1 for f in found if f.severity == sev)
                        for sev in ("error", "warning", "info")
                    },
                }
            )
        else:
            _print_findings(found, view, complete=not failures)
    # A check that failed is not a clean bill: its findings are missing (a poisoned
    # document once made integrity fail while check said "No findings." and exited 0).
    for failure in failures:
        click.echo(f"Error: {failure} (its findings are missing)", err=True)
    if errors or failures:
        sys.exit(1)


def _print_findings(found: list[Finding], view: ProductionView, *, complete: bool = True) -> None:
    """One block per finding: severity, plugin and code, message, entities (by what
    people call them, else a short id), fix."""
    shorts: dict[str, dict[str, str]] = {}

    def called(ref: EntityRef) -> str:
        cls = model.KINDS.get(ref.kind)
        name = ref.label or (
            label(view, cls, view.raw(cls, ref.id) or {}, default="") if cls else ""
        )
        if name or cls is None:
            return f"{ref.kind} {name or ref.id}"
        short = shorts.setdefault(
            ref.kind, short_ids(i.id for i in view.all(cls, include_deleted=True))
        )
        return f"{ref.kind} {short.get(ref.id, ref.id)}"

    if not found:
        click.echo("No findings." if complete else "No findings from the checks that ran.")
        return
    colours = {"error": "red", "warning": "yellow", "info": "cyan"}
    for f in found:
        head = click.style(f"{f.severity.upper():<7}", fg=colours[f.severity], bold=True)
        click.echo(f"{head} {f.plugin}/{f.code}: {f.message}")
        if f.entities:
            shown = ", ".join(called(e) for e in f.entities[:8])
            more = f" (+{len(f.entities) - 8} more)" if len(f.entities) > 8 else ""
            click.echo(f"        entities: {shown}{more}")
        if f.fix:
            click.echo(f"        fix: {f.fix}")
    counts = {
        sev: sum(1 for f in found if f.severity == sev) for sev in ("error", "warning", "info")
    }
    click.echo(", ".join(f"{n} {sev}{'' if n == 1 else 's'}" for sev, n in counts.items() if n))
