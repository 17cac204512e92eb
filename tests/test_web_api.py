"""The dashboard's JSON API for writes and files, over HTTP against a real uvicorn server
(``ServerThread``): applying a replacement, importing an uploaded file, downloading an
export. Each answer is checked against what the CLI does with the same input, and every
refusal against the stored production, which must be exactly as it was."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from patience import PATIENCE
from sync_helpers import copy_workspace, make_token
from test_contingency import build

from castroom.core.cli import build_cli
from castroom.core.plugins import make_plugins
from castroom.core.workspace import Workspace
from castroom.sync.server import ServerThread
from castroom.sync.web.actions import MAX_UPLOAD, upload_name
from castroom.sync.web.worker import SHOWN_EDITS

DATA = Path(__file__).parent / "data"


class Room:
    def __init__(self, server: ServerThread, path: Path, ids: dict[str, str]) -> None:
        self.server, self.path, self.ids = server, path, ids
        self.pid = ids["production"]
        self.token = make_token(path, "write", name="Sam Chen")
        self.read_token = make_token(path, "read", name="Viewer")

    def url(self, tail: str) -> str:
        return f"{self.server.url}/api/{self.pid}/{tail}"

    def post(self, tail: str, token: str | None = None, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token or self.token}"}
        return httpx.post(self.url(tail), headers=headers, timeout=PATIENCE, **kwargs)

    def get(self, tail: str, token: str | None = None, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token or self.token}"}
        return httpx.get(self.url(tail), headers=headers, timeout=PATIENCE, **kwargs)

    def upload(self, importer: str, file: Path | bytes, name: str = "", **params: Any):
        body = file.read_bytes() if isinstance(file, Path) else file
        filename = name or (file.name if isinstance(file, Path) else "upload.csv")
        return self.post(
            f"import/{importer}", content=body, params={"filename": filename, **params}
        )

    def cli(self, *args: str, path: Path | None = None) -> Any:
        return cli(path or self.path, *args)

    def stored(self) -> bytes:
        """The production as stored (its full update): what "nothing changed" compares."""
        with Workspace.open(self.path, create=False) as ws:
            return ws.production(self.pid).doc.encode_update()

    def log_length(self) -> int:
        with Workspace.open(self.path, create=False) as ws:
            return len(ws.production(self.pid).history(limit=100_000))


def cli(path: Path, *args: str) -> Any:
    plugins = make_plugins(entry_points=False)
    done = CliRunner().invoke(
        build_cli(plugins), ["--workspace", str(path), *args], obj=plugins, catch_exceptions=False
    )
    assert done.exit_code == 0, done.output
    return json.loads(done.stdout) if "--json" in args else done.stdout


@pytest.fixture
def room(tmp_path: Path) -> Iterator[Room]:
    path = tmp_path / "ws"
    ids = build(path)
    with ServerThread(path) as server:
        yield Room(server, path, ids)


def _summary(applied: dict[str, Any]) -> dict[str, Any]:
    """What a replacement did, without the ids and dates that differ between two runs."""
    deal = applied["deal"]
    return {
        "booked": (applied["booked"]["talent_id"], applied["booked"]["stage"]),
        "dropped": applied["dropped"],
        "role_id": applied["role_id"],
        "replacement": applied["replacement"]["talent_id"],
        "cancelled": [(d["talent_id"], d["status"]) for d in applied["cancelled_deals"]],
        "deal": deal and (deal["talent_id"], deal["rate"], deal["status"]),
        "drafted": applied["drafted"],
    }


# -- replacing a talent who drops out --------------------------------------------------------


def test_a_replacement_is_shown_then_applied_as_replace_apply_does(room: Room, tmp_path) -> None:
    ids = room.ids
    twin = tmp_path / "twin"
    copy_workspace(room.path, twin)
    ask = {"talent": ids["Ada"], "replacement": ids["Cal"]}
    before = room.stored()
    shown = room.post("replacement", json={**ask, "dry_run": True})
    assert shown.status_code == 200, shown.text
    plan = shown.json()
    assert plan["dry_run"] is True and plan["replacement"]["name"] == "Cal"
    assert plan["reason"] == "Ada dropped out of Mara, replaced by Cal"
    # The same plan the CLI's dry run shows.
    assert (
        plan["plan"][0] == room.cli("replace", "Ada", "--apply", "Cal", "--dry-run").split("\n")[0]
    )
    assert room.stored() == before  # shown, not written
    done = room.post("replacement", json=ask)
    assert done.status_code == 200, done.text
    applied = done.json()
    by_cli = cli(twin, "replace", "Ada", "--apply", "Cal", "--json")
    assert _summary(applied) == _summary(by_cli)
    # The CLI sees it: Cal booked, Ada dropped, her deal cancelled, Cal's drafted.
    assert room.cli("show", "candidate", applied["booked"]["id"], "--json")["stage"] == "booked"
    assert room.cli("show", "candidate", ids["c_Ada"], "--json")["stage"] == "dropped"
    deals = {d["talent_id"]: d["status"] for d in room.cli("list", "deals", "--json")}
    assert deals == {ids["Ada"]: "cancelled", ids["Cal"]: "draft"}
    assert ids["Cal"] not in room.cli("show", "role", ids["mara"], "--json")["backups"]
    # One change in the history, under the token's member.
    [latest] = room.cli("history", "--limit", "1", "--json")
    assert latest["member"] == "Sam Chen"
    # Applied twice: Ada is no longer booked, so there is nothing to replace.
    again = room.post("replacement", json=ask)
    assert again.status_code == 404 and "not among the ranked replacements" in again.json()["error"]


def test_what_is_applied_is_the_plan_that_was_shown(room: Room) -> None:
    ask = {"talent": room.ids["Ada"], "replacement": room.ids["Cal"]}
    shown = room.post("replacement", json={**ask, "dry_run": True}).json()
    assert (
        shown["plan_id"]
        == room.post("replacement", json={**ask, "dry_run": True}).json()["plan_id"]
    )  # planned twice (fresh ids for what it creates): the same plan
    # Someone cancels Ada's deal meanwhile: the plan would no longer cancel it.
    [deal] = room.cli("list", "deals", "--json")
    room.cli("set", "deal", deal["id"], "status=cancelled")
    before = room.stored()
    stale = room.post("replacement", json={**ask, "expect": shown["plan_id"]})
    assert stale.status_code == 409, stale.text
    assert stale.json()["error"].startswith("the production changed since this plan was shown")
    assert room.stored() == before
    fresh = room.post("replacement", json={**ask, "dry_run": True}).json()
    assert fresh["plan_id"] != shown["plan_id"] and len(fresh["plan"]) < len(shown["plan"])
    done = room.post("replacement", json={**ask, "expect": fresh["plan_id"]})
    assert done.status_code == 200 and done.json()["plan_id"] == fresh["plan_id"]


def test_a_read_only_or_wrong_token_cannot_apply_a_replacement(room: Room) -> None:
    ask = {"talent": room.ids["Ada"], "replacement": room.ids["Cal"]}
    before = room.stored()
    refused = room.post("replacement", token=room.read_token, json=ask)
    assert refused.status_code == 403 and refused.json() == {"error": "this token is read-only"}
    dry = room.post("replacement", token=room.read_token, json={**ask, "dry_run": True})
    assert dry.status_code == 403
    wrong = room.post("replacement", token="crt_nothere_nosecret", json=ask)
    assert wrong.status_code == 401
    assert room.stored() == before


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        (b"{not json", 400, "bad request: JSON is malformed"),
        (b'{"talent": "x"}', 400, "bad request: Object missing required field `replacement`"),
        (b'{"talent": 1, "replacement": "y"}', 400, "Expected `str`, got `int` - at `$.talent`"),
        (b'{"talent": "T", "replacement": "nobody"}', 404, "no talent 'T'"),
        (b"[]", 400, "bad request: Expected `object`, got `array`"),
    ],
)
def test_a_bad_replacement_request_is_one_error_and_changes_nothing(
    room: Room, body: bytes, status: int, error: str
) -> None:
    before = room.stored()
    refused = room.post("replacement", content=body)
    assert refused.status_code == status, refused.text
    assert error in refused.json()["error"]
    assert room.stored() == before


def test_a_replacement_not_in_the_ranking_is_refused(room: Room) -> None:
    before = room.stored()
    gone = room.post("replacement", json={"talent": room.ids["Ada"], "replacement": "Gus"})
    assert gone.status_code == 404
    assert gone.json() == {"error": "'Gus' is not among the ranked replacements"}
    assert room.stored() == before


# -- imports ---------------------------------------------------------------------------------

OFFICE = {"kind": "talent", "map": "Office ID=external_id", "source": "office"}


def _names(room: Room) -> list[str]:
    return sorted(t["name"] for t in room.cli("list", "talents", "--json"))


@pytest.mark.parametrize("sheet", ["office_talent.csv", "office_talent.xlsx"])
def test_an_uploaded_sheet_is_planned_then_imported_as_the_cli_imports_it(
    room: Room, tmp_path: Path, sheet: str
) -> None:
    importer = "xlsx" if sheet.endswith(".xlsx") else "csv"
    twin = tmp_path / "twin"
    copy_workspace(room.path, twin)
    before, talents = room.stored(), _names(room)
    planned = room.upload(importer, DATA / "sheets" / sheet, dry_run="1", **OFFICE)
    assert planned.status_code == 200, planned.text
    plan = planned.json()
    assert (plan["dry_run"], plan["created"], plan["updated"], plan["unchanged"]) == (
        True,
        3,
        0,
        0,
    )
    assert plan["plan"][0].startswith("create talent Aoife Ní Bhriain")
    assert room.stored() == before
    done = room.upload(importer, DATA / "sheets" / sheet, **OFFICE)
    assert done.status_code == 200, done.text
    flags = [a for k, v in OFFICE.items() for a in (f"--{k}", v)]
    by_cli = cli(twin, "import", importer, str(DATA / "sheets" / sheet), *flags, "--json")
    got = done.json()
    assert {k: got[k] for k in by_cli} == by_cli
    assert _names(room) == sorted([*talents, "Aoife Ní Bhriain", "José Álvarez", "Zoë Müller"])
    [latest] = room.cli("history", "--limit", "1", "--json")
    assert latest["member"] == "Sam Chen"
    # Uploaded again: nothing new.
    again = room.upload(importer, DATA / "sheets" / sheet, **OFFICE).json()
    assert (again["created"], again["updated"], again["unchanged"]) == (0, 0, 3)


def test_an_import_applies_only_the_plan_that_was_shown(room: Room) -> None:
    sheet = DATA / "sheets" / "office_talent.csv"
    shown = room.upload("csv", sheet, dry_run="1", **OFFICE).json()
    # The same sheet imported from the CLI meanwhile: the plan would now change nothing.
    flags = [a for k, v in OFFICE.items() for a in (f"--{k}", v)]
    room.cli("import", "csv", str(sheet), *flags)
    before = room.stored()
    stale = room.upload("csv", sheet, expect=shown["plan_id"], **OFFICE)
    assert stale.status_code == 409 and room.stored() == before
    fresh = room.upload("csv", sheet, dry_run="1", **OFFICE).json()
    assert (fresh["created"], fresh["unchanged"]) == (0, 3)
    assert room.upload("csv", sheet, expect=fresh["plan_id"], **OFFICE).status_code == 200


def test_a_long_plan_is_shown_in_part_and_applied_whole(room: Room) -> None:
    sheet = "name,rate\n" + "".join(f"Extra {n},{100 + n}\n" for n in range(250))
    talents = len(_names(room))
    planned = room.upload("csv", sheet.encode(), kind="talent", dry_run="1").json()
    assert len(planned["plan"]) == SHOWN_EDITS + 1 and planned["created"] == 250
    assert planned["plan"][-1] == f"... and {250 - SHOWN_EDITS} more"
    done = room.upload("csv", sheet.encode(), kind="talent", expect=planned["plan_id"]).json()
    assert done["created"] == 250 and len(_names(room)) == talents + 250


@pytest.mark.parametrize("script", ["night_ferry.fountain", "night_ferry.fdx", "night_ferry.pdf"])
def test_an_uploaded_script_is_planned_then_imported(room: Room, script: str) -> None:
    planned = room.upload("script", DATA / "scripts" / script, dry_run="1")
    assert planned.status_code == 200, planned.text
    plan = planned.json()
    scenes = sum(1 for line in plan["plan"] if line.startswith("create scene"))
    assert scenes > 0 and plan["created"] >= scenes
    # Roles and scenes made up fresh ids on each reading: still the plan that was shown.
    done = room.upload("script", DATA / "scripts" / script, expect=plan["plan_id"]).json()
    assert done["created"] == plan["created"] and done["report"] == plan["report"]
    numbers = {s["number"] for s in room.cli("list", "scenes", "--json")}
    assert len(numbers) == 3 + scenes


@pytest.mark.parametrize(
    ("importer", "file", "error"),
    [
        ("csv", DATA / "sheets" / "unclosed_quote.csv", "a quote opened in this row is never"),
        ("xlsx", DATA / "sheets" / "truncated.xlsx", "is not an Excel workbook (.xlsx)"),
        ("script", DATA / "scripts" / "truncated.pdf", "not a readable PDF"),
        ("script", DATA / "scripts" / "scanned.pdf", "the PDF has no text"),
        ("csv", b"\x00\x01\x02binary\xff\xfe" * 50, "upload.csv is not a CSV file"),
    ],
    ids=["unclosed-quote", "truncated-xlsx", "truncated-pdf", "scanned-pdf", "binary-csv"],
)
def test_a_malformed_upload_is_one_error_and_changes_nothing(
    room: Room, importer: str, file: Path | bytes, error: str
) -> None:
    before, log = room.stored(), room.log_length()
    options = {"kind": "talent"} if importer in ("csv", "xlsx") else {}
    for dry_run in ({"dry_run": "1"}, {}):
        refused = room.upload(importer, file, **options, **dry_run)
        assert refused.status_code == 400, refused.text
        message = refused.json()["error"]
        assert error in message and "\n" not in message
        assert "castroom-upload-" not in message  # the server's temporary folder stays its own
    assert room.stored() == before and room.log_length() == log


def test_uploads_are_bounded_and_need_a_write_token(room: Room) -> None:
    before = room.stored()
    big = room.upload("csv", b"name\n" + b"x" * (MAX_UPLOAD + 1), kind="talent")
    assert big.status_code == 413 and "limit" in big.json()["error"]
    sheet = DATA / "sheets" / "office_talent.csv"
    read_only = room.post(
        "import/csv", token=room.read_token, content=sheet.read_bytes(), params={"kind": "talent"}
    )
    assert read_only.status_code == 403
    site = room.upload("site", sheet)
    assert site.status_code == 400 and "reads a URL, not a file" in site.json()["error"]
    unknown = room.upload("nope", sheet)
    assert unknown.status_code == 404 and "installed: csv, script, xlsx" in unknown.json()["error"]
    assert room.stored() == before


def test_formats_lists_the_importers_that_take_files_and_the_exporters(room: Room) -> None:
    formats = room.get("formats", token=room.read_token).json()
    assert [i["name"] for i in formats["importers"]] == ["csv", "script", "xlsx"]
    assert [e["name"] for e in formats["exporters"]] == ["callsheet", "csv", "dood", "ics"]
    assert formats["max_upload"] == MAX_UPLOAD


@pytest.mark.parametrize(
    ("raw", "safe"),
    [
        ("agency.csv", "agency.csv"),
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\me\\draft 3.pdf", "draft 3.pdf"),
        ("..", "upload"),
        ("", "upload"),
        ("a;b|c.fdx", "a_b_c.fdx"),
        (".hidden.csv", "hidden.csv"),
    ],
)
def test_an_uploads_name_is_one_plain_file_name(raw: str, safe: str) -> None:
    assert upload_name(raw) == safe


# -- exports ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("exporter", "params", "media", "suffix"),
    [
        ("csv", {"kind": "talent"}, "text/csv; charset=utf-8", ".csv"),
        ("ics", {}, "text/calendar; charset=utf-8", ".ics"),
        ("callsheet", {"day": "1"}, "text/html; charset=utf-8", ".html"),
        ("callsheet", {"day": "1", "format": "pdf"}, "application/pdf", ".pdf"),
        ("dood", {}, "text/csv; charset=utf-8", ".csv"),
    ],
)
def test_an_export_downloads_what_the_cli_writes(
    room: Room, tmp_path: Path, exporter: str, params: dict[str, str], media: str, suffix: str
) -> None:
    got = room.get(f"export/{exporter}", token=room.read_token, params=params)
    assert got.status_code == 200, got.text
    assert got.headers["content-type"] == media
    assert got.headers["content-disposition"] == (
        f'attachment; filename="backup-plan-{exporter}{suffix}"'
    )
    target = tmp_path / f"out{suffix}"
    flags = [a for k, v in params.items() for a in (f"--{k}", v)]
    cli(room.path, "export", exporter, *flags, "--output", str(target))
    if suffix == ".pdf":  # a PDF records when it was made
        assert got.content.startswith(b"%PDF") and target.read_bytes().startswith(b"%PDF")
    elif exporter == "ics":  # DTSTAMP is the moment of export
        assert _undated(got.text) == _undated(target.read_text())
    else:
        assert got.content == target.read_bytes()


def _undated(ics: str) -> list[str]:
    return [line for line in ics.splitlines() if not line.startswith("DTSTAMP")]


def test_a_bad_export_is_one_error(room: Room) -> None:
    unknown = room.get("export/nope")
    assert unknown.status_code == 404 and "installed: callsheet, csv, dood, ics" in unknown.text
    bad = room.get("export/csv", params={"kind": "nonsense"})
    assert bad.status_code == 400 and "nonsense" in bad.json()["error"]
    other = room.get("export/csv", token="crt_nothere_nosecret", params={"kind": "talent"})
    assert other.status_code == 401
