"""``castroom demo``, the main job behind ``make demo`` (registered like a built-in plugin).

It lives beside sync, not among the plugins: it drives castroom as a front end does
(workspaces in a folder it makes, bundles, a sync server and client), where plugins only
read views and return data.

Builds the sample production in a workspace of its own, then shows what castroom is
for: two team members editing offline on their own machines, exchanging bundles, and
converging, followed by the checks, the budget and a drop-out with ranked replacements.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from castroom.core.errors import CastroomError
from castroom.core.hookspecs import hookimpl
from castroom.core.model import Candidate, Role, Scene, ShootDay, Talent
from castroom.core.money import format_money
from castroom.core.view import ProductionView
from castroom.core.workspace import Workspace

if TYPE_CHECKING:  # rich is imported when the demo runs, not when `castroom` starts
    from rich.console import Console


@hookimpl(trylast=True)
def castroom_register_commands(cli: click.Group) -> None:
    @cli.command()
    @click.option(
        "--dir",
        "root",
        default="demo-workspace",
        show_default=True,
        type=click.Path(file_okay=False),
        help="Where the demo's workspaces go: a new or empty folder, or one an earlier"
        " demo made (which is wiped first).",
    )
    @click.option(
        "--serve",
        "keep_serving",
        is_flag=True,
        help="Then serve Alex's workspace (and the dashboard) until interrupted.",
    )
    @click.option("--port", default=8765, show_default=True, help="With --serve (0 = any).")
    def demo(root: str, keep_serving: bool, port: int) -> None:
        """Build a sample series and walk through a day in the casting room."""
        from rich.console import Console

        run_demo(Path(root), Console())
        if keep_serving:
            from castroom.sync.web.signin import serve_with_sign_in

            serve_with_sign_in(Path(root) / "alex", echo=click.echo, port=port)


#: Left in the demo's folder: only a folder holding it (or an empty one) is ever wiped.
MARKER = ".castroom-demo"


def _fresh(root: Path) -> None:
    """Make ``root`` an empty folder for the demo. Never wipe a folder the demo did not
    make: ``--dir ~`` or ``--dir /`` must be refused, not emptied."""
    if root.exists() and not root.is_dir():
        raise CastroomError(f"{root} is a file; give --dir a folder")
    if root.is_dir() and any(root.iterdir()):
        if not (root / MARKER).is_file() and not _made_by_an_older_demo(root):
            raise CastroomError(
                f"{root} is not empty and was not made by `castroom demo`: nothing was"
                " touched; give --dir a new or empty folder"
            )
        shutil.rmtree(root)
    root.mkdir(parents=True, exist_ok=True)
    (root / MARKER).write_text("made by `castroom demo`; the next demo run wipes this folder\n")


#: What demos before the marker left (so `make demo` still reruns over their folder).
_OLD_DEMO_ENTRIES = {
    "alex",
    "sam",
    "priya",
    "alex.state",
    "sam.state",
    "alex-to-sam.bundle",
    "alex-to-sam-2.bundle",
    "sam-to-alex.bundle",
}


def _made_by_an_older_demo(root: Path) -> bool:
    names = {p.name for p in root.iterdir()}
    return {"alex", "sam"} <= names <= _OLD_DEMO_ENTRIES


def run_demo(root: Path, console: Console) -> dict[str, Any]:
    # Imported when the demo runs: loading the plugins (for `castroom check`) must not
    # load pycrdt, which these need and a read copy does not.
    from rich.panel import Panel
    from rich.table import Table

    from castroom.core import bundle
    from castroom.core.sample import build_sample

    _fresh(root)
    started = time.perf_counter()

    console.rule("[bold]castroom demo: The Harbour Years")
    alex = Workspace.open(root / "alex", member="Alex Moreno (casting director)")
    production = alex.create_production("The Harbour Years", kind="series", currency="EUR")
    counts = build_sample(production.doc)
    table = Table(title="Sample production built in Alex's workspace")
    table.add_column("kind")
    table.add_column("count", justify="right")
    for kind, count in counts.items():
        table.add_row(kind, str(count))
    console.print(table)

    # Sam joins offline: an empty workspace receives everything as one bundle file.
    sam = Workspace.open(root / "sam", member="Sam Chen (assistant director)")
    bundle.create(alex, root / "alex-to-sam.bundle")
    bundle.apply(sam, root / "alex-to-sam.bundle")
    sam_doc = sam.production().doc
    console.print(
        Panel.fit(
            "Sam's new workspace joined from a bundle file: "
            f"{len(sam_doc.all(Talent))} talents, {len(sam_doc.all(Scene))} scenes",
            title="offline join",
        )
    )

    # Both edit offline, the same entities in places.
    a_doc, s_doc = production.doc, sam.production().doc
    maggie = a_doc.resolve(Role, "Maggie Doyle")
    talent = a_doc.all(Talent)[0]
    day = sorted(a_doc.all(ShootDay), key=lambda d: d.date)[0]
    moved_scene = day.scene_ids[0]
    a_doc.update(Talent, talent.id, {"rate": (talent.rate or 0) + 25_000, "agent": "Blake & Co"})
    a_doc.update(Role, maggie.id, {"status": "cast"})
    if len(maggie.backups) > 1:
        a_doc.move_item(Role, maggie.id, "backups", len(maggie.backups) - 1, 0)
    s_doc.update(Talent, talent.id, {"notes": "Needs a dialect coach for 1962 scenes."})
    s_doc.update(
        ShootDay, day.id, {"scene_ids": [*day.scene_ids[1:], moved_scene], "call_time": "06:30"}
    )
    s_doc.edit_text(Role, maggie.id, "notes", 0, 0, "Wig fittings before day 1. ")
    edits = Table(title="Offline edits")
    edits.add_column("who")
    edits.add_column("changed")
    edits.add_row("Alex", f"{talent.name}: rate and agent; Maggie Doyle: status, backup order")
    edits.add_row(
        "Sam",
        f"{talent.name}: notes; day {day.day_number}: scene order, call time; Maggie Doyle: notes",
    )
    console.print(edits)

    # Exchange only what each side lacks, both ways.
    bundle.write_state(sam, root / "sam.state")
    bundle.create(alex, root / "alex-to-sam-2.bundle", for_state=root / "sam.state")
    bundle.write_state(alex, root / "alex.state")
    bundle.create(sam, root / "sam-to-alex.bundle", for_state=root / "alex.state")
    bundle.apply(sam, root / "alex-to-sam-2.bundle")
    bundle.apply(alex, root / "sam-to-alex.bundle")
    a_data, s_data = a_doc.to_data(), sam.production().doc.to_data()
    merged = a_doc.get(Talent, talent.id)
    converged = a_data == s_data
    console.print(
        Panel.fit(
            f"[bold]{'converged' if converged else 'DIVERGED'}[/bold]: "
            "both workspaces hold the same production.\n"
            f"{merged.name}: rate {_money(merged.rate, a_doc.production.currency)} (Alex),"
            f" agent {merged.agent!r} (Alex), "
            f"notes {merged.notes!r} (Sam)\n"
            f"Maggie Doyle notes: {a_doc.get(Role, maggie.id).notes!r}",
            title="after exchanging bundles",
        )
    )
    if not converged:
        raise click.ClickException("the two workspaces did not converge")

    view = ProductionView(a_doc)
    findings = alex.plugins.check(view)
    if findings:
        summary = Table(title=f"castroom check: {len(findings)} findings")
        for column in ("severity", "plugin", "code", "message"):
            summary.add_column(column, overflow="fold")
        for finding in findings[:12]:
            summary.add_row(finding.severity, finding.plugin, finding.code, finding.message)
        console.print(summary)
        if len(findings) > 12:
            console.print(f"... and {len(findings) - 12} more (`castroom check` lists them all)")

    report = alex.plugins.cost_report(view)
    if report is not None:
        _show_budget(console, report)

    booked = next(
        (c for c in a_doc.all(Candidate) if c.stage == "booked" and c.role_id == maggie.id), None
    )
    if booked is not None:
        plan = alex.plugins.rank_replacements(view, booked.talent_id, maggie.id)
        if plan is not None:
            _show_plan(console, plan)

    _demo_server(console, root, alex, production.id)

    for failure in alex.plugins.failures:
        console.print(f"[yellow]plugin warning:[/yellow] {failure}")
    elapsed = time.perf_counter() - started
    console.print(f"Workspaces in {root}/ (alex, sam). Try: castroom -w {root}/alex list roles")
    console.print(f"Demo finished in {elapsed:.1f} s.")
    # Printed whole (a console would fold a long path): the next step is a browser.
    click.echo(
        f"Open the casting room's dashboard: castroom -w {root}/alex serve --open"
        " (or run `castroom demo --serve`; it prints a sign-in link)"
    )
    alex.close()
    sam.close()
    return {"counts": counts, "converged": converged, "findings": len(findings)}


def _demo_server(console: Console, root: Path, alex: Workspace, production_id: str) -> None:
    """Serve Alex's workspace on loopback; a third member joins and edits over HTTP."""
    from rich.panel import Panel

    from castroom.sync.auth import TokenStore
    from castroom.sync.client import sync_http
    from castroom.sync.server import ServerThread

    _, token = TokenStore(alex.store).create("write", production=production_id, name="demo")
    priya = Workspace.open(root / "priya", member="Priya Nair (producer)")
    with ServerThread(alex.path) as server:
        console.print(
            f"castroom serve is running at {server.url} (a write token for this production)"
        )
        moved = sync_http(priya, server.url, token=token, echo=lambda line: None)
        console.print(f"Priya's empty workspace synced: {moved[0].describe()}")
        doc = priya.production(production_id).doc
        cap = doc.production.budget_cap or 0
        doc.update_production({"budget_cap": cap + 10_000_000})
        moved = sync_http(priya, server.url, token=token, echo=lambda line: None)
        console.print(f"Priya raised the cap and synced again: {moved[0].describe()}")
    seen = alex.production(production_id).doc.production
    console.print(
        Panel.fit(
            f"Alex's open workspace sees Priya's new cap without restarting: "
            f"{_money(seen.budget_cap, seen.currency)}",
            title="sync over HTTP on 127.0.0.1",
        )
    )
    priya.close()


def _money(minor: int | None, currency: str) -> str:
    return "-" if minor is None else format_money(minor, currency)


def _show_budget(console: Console, report: Any) -> None:
    from rich.table import Table

    table = Table(title="castroom budget: the five most expensive actors")
    table.add_column("talent")
    table.add_column("cost", justify="right")
    for line in sorted(report.by_talent, key=lambda s: -s.total)[:5]:
        table.add_row(line.name, _money(line.total, report.currency))
    console.print(table)
    status = "[red]over the cap[/red]" if report.over_cap else "within the cap"
    console.print(
        f"Cast cost {_money(report.total, report.currency)} against a cap of "
        f"{_money(report.cap, report.currency)}: {status}."
    )


def _show_plan(console: Console, plan: Any) -> None:
    from rich.markup import escape
    from rich.panel import Panel

    for role_plan in plan.roles[:1]:
        era = f" ({role_plan.era})" if role_plan.era else ""
        lines = [
            f"{plan.talent} drops out of {role_plan.role}{era}: "
            f"{len(role_plan.scenes)} scenes on {len(role_plan.shoot_days)} shoot days affected.",
            "",
        ]
        for item in role_plan.replacements[:5]:
            lines.append(escape(f"{item.rank}. {item.name} [{item.tier}, fit {item.score}]"))
            lines.append(escape("   " + "; ".join(item.reasons)))
        console.print(Panel("\n".join(lines), title="castroom replace: ranked replacements"))
