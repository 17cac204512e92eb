"""The application layer: resolve, labels, edits as plan-then-apply, and what a plugin
can reach. The CLI and the importers are driven through their real front ends."""

from __future__ import annotations

import gc
import inspect
import json
import sqlite3
import types
from pathlib import Path
from typing import Any

import msgspec
import pytest

from castroom.core import edits, model
from castroom.core.crdt import CrdtDocument
from castroom.core.document import CastDocument
from castroom.core.errors import CastroomError, NotFound
from castroom.core.labels import label
from castroom.core.resolve import fold, resolve_id
from castroom.core.storage import Store
from castroom.core.view import ProductionView
from castroom.core.workspace import StoredProduction, Workspace

# -- resolve -----------------------------------------------------------------------------------


@pytest.fixture
def doc() -> CastDocument:
    return CastDocument.create("Tides", kind="series")


def test_fold_ignores_case_accents_and_spacing() -> None:
    assert fold("  ZOË   Saldaña ") == fold("zoe saldana") == "zoe saldana"


def test_a_name_typed_without_accents_finds_the_entity(doc: CastDocument) -> None:
    zoe = doc.add(model.Talent, name="Zoë Brontë")
    assert resolve_id(doc, model.Talent, "zoe bronte") == zoe.id
    assert resolve_id(doc, model.Talent, "ZOË BRONTË") == zoe.id


def test_a_candidate_is_found_as_talent_for_role_and_era(doc: CastDocument) -> None:
    nora = doc.add(model.Role, name="Nora", eras=[{"name": "1962"}, {"name": "1985"}])
    ada = doc.add(model.Talent, name="Ada Stone")
    young = doc.add(model.Candidate, talent_id=ada.id, role_id=nora.id, era="1962")
    old = doc.add(model.Candidate, talent_id=ada.id, role_id=nora.id, era="1985")
    assert resolve_id(doc, model.Candidate, "Ada Stone for Nora (1962)") == young.id
    assert resolve_id(doc, model.Candidate, "ada stone for nora (1985)") == old.id
    assert label(doc, young) == "Ada Stone for Nora (1962)"  # what people call it resolves
    with pytest.raises(CastroomError, match="matches 2 candidates"):
        resolve_id(doc, model.Candidate, "Ada Stone for Nora")  # either era
    with pytest.raises(NotFound):
        resolve_id(doc, model.Candidate, "Ada Stone for Nora (2001)")


def test_a_candidate_is_found_by_its_talent_when_that_names_one(doc: CastDocument) -> None:
    nora = doc.add(model.Role, name="Nora")
    mara = doc.add(model.Role, name="Mara")
    ada = doc.add(model.Talent, name="Ada Stone")
    first = doc.add(model.Candidate, talent_id=ada.id, role_id=nora.id)
    assert resolve_id(doc, model.Candidate, "ada stone") == first.id
    second = doc.add(model.Candidate, talent_id=ada.id, role_id=mara.id)
    with pytest.raises(CastroomError) as refused:
        resolve_id(doc, model.Candidate, "Ada Stone")
    message = str(refused.value)
    assert "'Ada Stone' matches 2 candidates" in message
    assert "Ada Stone for Nora" in message and "Ada Stone for Mara" in message
    assert 'use the id or "TALENT for ROLE (ERA)"' in message
    assert first.id not in message  # short ids for people
    doc.delete(model.Candidate, second.id)  # live candidates first
    assert resolve_id(doc, model.Candidate, "Ada Stone") == first.id


def test_set_takes_a_candidate_by_its_talent(cli) -> None:
    assert cli("init", "--production", "Tides").exit_code == 0
    cli("add", "role", "name=Nora")
    cli("add", "talent", "name=Ada Stone")
    cli("add", "candidate", "talent_id=Ada Stone", "role_id=Nora")
    done = cli("set", "candidate", "Ada Stone", "stage=audition")
    assert done.exit_code == 0, done.output
    assert done.stdout.startswith("Updated candidate Ada Stone for Nora")
    shown = json.loads(cli("show", "candidate", "Ada Stone", "--json").stdout)
    assert shown["stage"] == "audition"


def test_a_shoot_day_by_its_date_or_number(doc: CastDocument) -> None:
    day = doc.add(model.ShootDay, date="2026-04-02", day_number=2)
    for ref in ("2026-04-02", "2", "day 2", "Day 2"):
        assert resolve_id(doc, model.ShootDay, ref) == day.id


def test_the_cli_resolves_like_the_layer(cli) -> None:
    """`show` takes what people type: accents folded, a candidate by its label."""
    assert cli("init", "--production", "Tides").exit_code == 0
    cli("add", "role", 'eras=[{"name": "1962"}]', "name=Nora")
    cli("add", "talent", "name=Zoë Brontë")
    cli("add", "candidate", "talent_id=zoe bronte", "role_id=nora", "era=1962")
    shown = cli("show", "candidate", "Zoe Bronte for Nora (1962)", "--json")
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.stdout)["era"] == "1962"


# -- plan, then apply --------------------------------------------------------------------------


def test_a_plan_is_data_shown_and_applied_in_one_transaction(tmp_path: Path) -> None:
    with Workspace.open(tmp_path / "ws") as ws:
        production = ws.create_production("Tides")
        doc = production.doc
        ada = edits.create(doc, model.Talent, {"name": "Ada Stone", "rate": 150000})
        nora = edits.create(doc, model.Role, {"name": "Nora"})
        plan = edits.Plan(edits=[ada, nora], reason="casting")
        # A deal for the talent and role the same plan creates: checked against the plan.
        deal = edits.Edit(
            op="create",
            kind="deal",
            id=model.new_id(),
            fields={"talent_id": ada.id, "role_id": nora.id, "rate": 150000, "unit": "day"},
            reason="offer",
        )
        plan = plan + edits.Plan(edits=[deal])
        assert msgspec.convert(json.loads(json.dumps(_builtins(plan))), edits.Plan) == plan
        assert edits.describe(doc, plan) == [
            "create talent Ada Stone",
            "create role Nora",
            "create deal Ada Stone / Nora (offer)",
        ]
        before = _log_rows(ws.path)
        applied = edits.apply(doc, plan)
        assert (applied.created, _log_rows(ws.path)) == (3, before + 1)  # one update
        assert applied.entity(model.Deal, deal.id).role_id == nora.id


def test_a_plan_names_the_entities_a_change_refers_to(tmp_path: Path) -> None:
    with Workspace.open(tmp_path / "ws") as ws:
        doc = ws.create_production("Tides").doc
        ada = doc.add(model.Talent, name="Ada Stone")
        cal = doc.add(model.Talent, name="Cal Reyes")
        nora = doc.add(model.Role, name="Nora")
        pick = doc.add(model.Candidate, talent_id=cal.id, role_id=nora.id)
        plan = edits.Plan(
            edits=[
                edits.change(doc, model.Role, nora.id, {"backups": [pick.id, ada.id]}),
                edits.change(doc, model.Role, nora.id, {"backups": []}),
                edits.change(doc, model.Candidate, pick.id, {"era": None, "stage": "offer"}),
            ]
        )
        assert edits.describe(doc, plan) == [
            "change role Nora: backups Cal Reyes for Nora, Ada Stone",
            "change role Nora: backups none",
            "change candidate Cal Reyes for Nora: era None, stage offer",
        ]


def test_a_refused_edit_writes_nothing_of_its_plan(tmp_path: Path) -> None:
    with Workspace.open(tmp_path / "ws") as ws:
        production = ws.create_production("Tides")
        doc = production.doc
        before, rows = doc.to_data(), _log_rows(ws.path)
        good = edits.create(doc, model.Talent, {"name": "Ada Stone"})
        bad = edits.Edit(
            op="create",
            kind="candidate",
            id=model.new_id(),
            fields={"talent_id": good.id, "role_id": "no-such-role"},
        )
        with pytest.raises(CastroomError, match=r"candidate\.role_id: no role matching"):
            edits.apply(doc, edits.Plan(edits=[good, bad]))
        assert doc.to_data() == before and _log_rows(ws.path) == rows


def test_a_plan_built_earlier_is_checked_again_when_applied(doc: CastDocument) -> None:
    nora = doc.add(model.Role, name="Nora")
    ada = doc.add(model.Talent, name="Ada")
    edit = edits.create(doc, model.Candidate, {"talent_id": ada.id, "role_id": nora.id})
    doc.add(model.Candidate, talent_id=ada.id, role_id=nora.id)  # someone was quicker
    with pytest.raises(CastroomError, match="Ada is already a candidate for Nora"):
        edits.apply(doc, edit)


def _builtins(value: Any) -> Any:
    return msgspec.to_builtins(value)


def _log_rows(path: Path) -> int:
    with sqlite3.connect(path / "castroom.db") as db:
        return db.execute("SELECT COUNT(*) FROM updates").fetchone()[0]


# -- one rule, one message: the CLI and an importer --------------------------------------------


def _setup(cli, tmp_path: Path) -> None:
    assert cli("init", "--production", "Tides").exit_code == 0
    cli("add", "role", "name=Nora", 'eras=[{"name": "1962"}]')
    cli("add", "talent", "name=Ada Stone")
    cli("add", "talent", "name=Gone Girl")
    cli("delete", "talent", "Gone Girl")
    cli("add", "member", "name=Rosa")


REFUSED = {
    "era-not-the-roles": {"talent_id": "Ada Stone", "role_id": "Nora", "era": "1999"},
    "unknown-talent": {"talent_id": "Nobody", "role_id": "Nora", "era": "1962"},
    "deleted-talent": {"talent_id": "Gone Girl", "role_id": "Nora", "era": "1962"},
    "unknown-role": {"talent_id": "Ada Stone", "role_id": "Mara", "era": "1962"},
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_the_cli_and_an_importer_refuse_the_same_write_with_the_same_words(
    cli, tmp_path: Path, case: str
) -> None:
    _setup(cli, tmp_path)
    fields = REFUSED[case]
    by_cli = cli("add", "candidate", *(f"{k}={v}" for k, v in fields.items()))
    assert by_cli.exit_code == 1
    [line] = by_cli.stderr.strip().splitlines()
    assert line.startswith("Error: ")
    message = line.removeprefix("Error: ")
    sheet = tmp_path / "candidates.csv"
    sheet.write_text(",".join(fields) + "\n" + ",".join(fields.values()) + "\n")
    by_import = cli("import", "csv", str(sheet), "--kind", "candidate")
    assert by_import.exit_code == 1
    assert message in by_import.stderr, (message, by_import.stderr)
    listed = json.loads(cli("list", "candidates", "--json").stdout)
    assert listed == []  # neither wrote anything


def test_restore_refuses_a_second_live_candidate_as_an_import_does(cli, tmp_path: Path) -> None:
    """`restore` goes through the plan's checks: bringing back a candidate that a live one
    for the same talent, role and era replaced is refused (it used to make two), with the
    words `add` gets for that candidate; `delete` writes one update."""
    _setup(cli, tmp_path)
    first = json.loads(
        cli("add", "candidate", "talent_id=Ada Stone", "role_id=Nora", "--json").stdout
    )
    rows = _log_rows(cli.path)
    assert "Deleted candidate Ada Stone for Nora" in cli("delete", "candidate", first["id"]).stdout
    assert _log_rows(cli.path) == rows + 1
    cli("add", "candidate", "talent_id=Ada Stone", "role_id=Nora", "stage=audition")
    before, rows = cli("list", "candidates", "--all", "--json").stdout, _log_rows(cli.path)
    by_cli = cli("restore", "candidate", first["id"])
    assert by_cli.exit_code == 1
    [line] = by_cli.stderr.strip().splitlines()
    message = line.removeprefix("Error: ")
    assert message.startswith("Ada Stone is already a candidate for Nora: candidate ")
    by_add = cli("add", "candidate", "talent_id=Ada Stone", "role_id=Nora")
    assert (by_add.exit_code, by_add.stderr.strip()) == (1, line)
    assert cli("list", "candidates", "--all", "--json").stdout == before
    assert _log_rows(cli.path) == rows


def test_deleting_through_a_plan_says_what_it_will_do(doc: CastDocument) -> None:
    ada = doc.add(model.Talent, name="Ada Stone")
    plan = edits.deletion(doc, model.Talent, ada.id)
    assert edits.describe(doc, plan) == ["delete talent Ada Stone"]
    edits.apply(doc, plan)
    again = edits.deletion(doc, model.Talent, ada.id)
    assert (again.edits, again.reason) == ([], "talent Ada Stone is already deleted")
    back = edits.deletion(doc, model.Talent, ada.id, back=True)
    assert edits.describe(doc, back) == ["restore talent Ada Stone"]
    edits.apply(doc, back)
    assert edits.deletion(doc, model.Talent, ada.id, back=True).reason == (
        "talent Ada Stone is not deleted"
    )


# -- a plugin cannot reach a writable document -------------------------------------------------

WRITABLE = (CrdtDocument, StoredProduction, Workspace, Store)


def _reachable(root: object, limit: int = 200_000) -> list[str]:
    """Paths from ``root`` to anything writable, by what Python code holding ``root`` can
    follow: attributes (``__dict__`` and slots, private ones too), items of containers,
    closures, bound methods' ``__self__``, properties and methods' results are not
    followed (they are code, run by the core). Classes and modules are not entered (a
    plugin may import anything; that is not something it was handed)."""
    seen: set[int] = set()
    found: list[str] = []
    stack: list[tuple[object, str]] = [(root, "view")]
    while stack and len(seen) < limit:
        obj, path = stack.pop()
        if id(obj) in seen or isinstance(obj, type | types.ModuleType):
            continue
        seen.add(id(obj))
        if isinstance(obj, WRITABLE):
            found.append(path)
            continue
        stack.extend(_children(obj, path))
    return found


def _children(obj: object, path: str) -> list[tuple[object, str]]:
    out: list[tuple[object, str]] = []
    if isinstance(obj, dict):
        out += [(v, f"{path}[{k!r}]") for k, v in obj.items()]
        out += [(k, f"{path}.key") for k in obj]
    elif isinstance(obj, list | tuple | set | frozenset):
        out += [(v, f"{path}[{i}]") for i, v in enumerate(obj)]
    if isinstance(obj, types.MethodType):
        out.append((obj.__self__, f"{path}.__self__"))
    if isinstance(obj, types.FunctionType):
        for cell in obj.__closure__ or ():
            try:
                out.append((cell.cell_contents, f"{path}.<closure>"))
            except ValueError:
                continue
        out += [(d, f"{path}.<default>") for d in obj.__defaults__ or ()]
    if isinstance(obj, types.FunctionType | types.BuiltinFunctionType):
        return out
    for name, value in getattr(obj, "__dict__", {}).items():
        out.append((value, f"{path}.{name}"))
    for cls in type(obj).__mro__:
        for name in getattr(cls, "__slots__", ()):
            if name != "__weakref__" and hasattr(obj, name):
                out.append((getattr(obj, name), f"{path}.{name}"))
    return out


def test_the_view_a_hook_gets_reaches_no_writable_document(tmp_path: Path) -> None:
    from castroom.core.hookspecs import hookimpl
    from castroom.core.plugins import make_plugins

    handed: list[Any] = []

    class Snoop:
        __name__ = "snoop"

        @hookimpl
        def castroom_check(self, view: ProductionView) -> list[Any]:
            handed.append(view)
            view.cost_report()  # fills the view's caches, as real checks do
            _ = view.talents, view.booked, view.scene_cast
            return []

    with Workspace.open(tmp_path / "ws") as ws:
        production = ws.create_production("Tides")
        production.doc.add(model.Talent, name="Ada")
        plugins = make_plugins(extra=[Snoop()], entry_points=False)
        production.workspace._plugins = plugins
        plugins.check(ProductionView(production.doc, origin_of=production.origin_of))
        [view] = handed
        assert _reachable(view) == []
        assert not [n for n in dir(view) if "doc" in n.lower() and not n.startswith("__")]


def test_a_plugin_command_reaches_no_writable_document(tmp_path: Path) -> None:
    import click
    from click.testing import CliRunner

    from castroom.core.api import CommandContext, hookimpl, pass_command
    from castroom.core.cli import build_cli
    from castroom.core.plugins import make_plugins

    handed: list[Any] = []

    class Snoop:
        __name__ = "snoop"

        @hookimpl
        def castroom_register_commands(self, cli: click.Group) -> None:
            @cli.command(name="snoop")
            @pass_command
            def snoop(obj: CommandContext) -> None:
                ctx = click.get_current_context()
                handed.extend([obj, obj.view(), ctx, ctx.find_root()])

    plugins = make_plugins(extra=[Snoop()], entry_points=False)
    root = build_cli(plugins)
    args = ["--workspace", str(tmp_path / "ws")]
    runner = CliRunner()
    assert runner.invoke(root, [*args, "init", "--production", "Tides"], obj=plugins).exit_code == 0
    result = runner.invoke(root, [*args, "snoop"], obj=plugins, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    for thing in handed:
        assert _reachable(thing) == [], type(thing)
    gc.collect()


def test_the_walk_finds_a_document_when_one_is_reachable(doc: CastDocument) -> None:
    """The check above can fail: a holder of a document is found, by attribute or closure."""

    class Holder:
        def __init__(self) -> None:
            self.inner = {"doc": doc}

    assert _reachable(Holder()) == ["view.inner['doc']"]
    assert _reachable(lambda: doc) == ["view.<closure>"]
    assert inspect.isclass(ProductionView)
