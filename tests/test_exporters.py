"""Exporters: iCalendar, day-out-of-days, call sheet (and the export command itself)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from pathlib import Path

import pytest
from icalendar import Calendar

from castroom.core.document import CastDocument
from castroom.core.errors import CastroomError, NotFound
from castroom.core.model import (
    Audition,
    Candidate,
    Look,
    Role,
    Scene,
    ShootDay,
    Talent,
)
from castroom.core.view import ProductionView
from castroom.core.workspace import Workspace
from castroom.plugins.calendar import write_ics
from castroom.plugins.reports import LEGEND, pick_day, write_callsheet, write_dood

D = dt.date(2026, 3, 2)


def build(doc: CastDocument) -> dict[str, str]:
    """A small production: Mary works days 1, 2 and 4; Tommy day 3 only; Okafor uncast."""
    mary = doc.add(Role, name="Mary <Marsh>")
    tommy = doc.add(Role, name="Tommy")
    okafor = doc.add(Role, name="Dr. Okafor")
    ada = doc.add(Talent, name="Ada & Stone", agent="Blue <b>Agency</b>")
    bo = doc.add(Talent, name="Bo Li")
    doc.add(Candidate, talent_id=ada.id, role_id=mary.id, stage="booked")
    cand = doc.add(Candidate, talent_id=bo.id, role_id=tommy.id, stage="booked")
    days = [
        doc.add(
            ShootDay,
            date=D + dt.timedelta(days=i),
            day_number=i + 1,
            location="Harbour",
            call_time="06:30",
        )
        for i in range(4)
    ]
    scenes = {}
    cast = {1: [mary.id], 2: [mary.id, okafor.id], 3: [tommy.id], 4: [mary.id]}
    for n, chars in cast.items():
        looks = {mary.id: Look(hair="wet <curls>", wardrobe="oilskin")} if mary.id in chars else {}
        scenes[n] = doc.add(
            Scene,
            number=str(n),
            heading=f"EXT. HARBOUR WALL - DAY {n}",
            story_day=n,
            characters=chars,
            shoot_day_id=days[n - 1].id,
            looks=looks,
        )
    doc.add(
        Audition,
        role_id=mary.id,
        starts_at=dt.datetime(2026, 2, 10, 14, 0),
        minutes=45,
        place="Studio 2",
        candidate_ids=[cand.id],
    )
    return {"mary": mary.id, "ada": ada.id, "bo": bo.id, "day1": days[0].id}


@pytest.fixture
def view() -> ProductionView:
    doc = CastDocument.create("Harbour <Lights>")
    build(doc)
    return ProductionView(doc)


def test_ics_has_auditions_and_shoot_days(view: ProductionView) -> None:
    cal = Calendar.from_ical(write_ics(view, {}))
    events = list(cal.walk("VEVENT"))
    assert len(events) == 5
    audition = next(e for e in events if "Audition" in str(e["SUMMARY"]))
    assert str(audition["SUMMARY"]) == "Audition: Mary <Marsh>"
    assert audition.decoded("DTSTART") == dt.datetime(2026, 2, 10, 14, 0)
    assert audition.decoded("DTEND") == dt.datetime(2026, 2, 10, 14, 45)
    assert "Bo Li" in str(audition["DESCRIPTION"]) and str(audition["LOCATION"]) == "Studio 2"
    days = sorted(
        (e for e in events if "Shoot day" in str(e["SUMMARY"])), key=lambda e: e.decoded("DTSTART")
    )
    assert days[0].decoded("DTSTART") == D and days[0].decoded("DTEND") == D + dt.timedelta(days=1)
    assert "Call: 06:30" in str(days[0]["DESCRIPTION"])
    assert all(str(e["UID"]).endswith("@castroom") for e in events)
    only = Calendar.from_ical(write_ics(view, {"only": "auditions"}))
    assert len(list(only.walk("VEVENT"))) == 1
    with pytest.raises(CastroomError):
        write_ics(view, {"only": "lunch"})


def test_dood_grid_codes(view: ProductionView) -> None:
    rows = list(csv.reader(io.StringIO(write_dood(view, {}))))
    header, body = rows[0], {r[0]: r for r in rows[1:]}
    assert header[:3] == ["talent", "roles", "D1 2026-03-02"]
    # Mary: work 1, 2, hold 3, work-finish 4. Tommy: one day on day 3.
    assert body["Ada & Stone"][2:6] == ["SW", "W", "H", "WF"]
    assert body["Ada & Stone"][6:9] == ["3", "1", "4"]
    assert body["Bo Li"][2:6] == ["", "", "SWF", ""]
    html = write_dood(view, {"format": "html"})
    assert "Ada &amp; Stone" in html and '<td class="c-SW">SW</td>' in html
    with pytest.raises(CastroomError):
        write_dood(view, {"format": "pdf"})
    # Days 2 to 4 are two days apart: with drops allowed after more than one day, Ada is
    # dropped and picked up instead of held.
    dropped = list(csv.reader(io.StringIO(write_dood(view, {"drop_after": "1"}))))
    assert next(r for r in dropped if r[0] == "Ada & Stone")[2:6] == ["SW", "WD", "", "PWF"]
    with pytest.raises(CastroomError):
        write_dood(view, {"drop_after": "soon"})


def test_callsheet_is_escaped_html(view: ProductionView) -> None:
    html = write_callsheet(view, {"day": "2"})
    assert html.startswith("<!doctype html>")
    assert "Harbour &lt;Lights&gt;" in html and "<Lights>" not in html
    assert "Ada &amp; Stone" in html and "Mary &lt;Marsh&gt;" in html
    assert "Blue &lt;b&gt;Agency&lt;/b&gt;" in html and "<b>Agency</b>" not in html
    assert "hair: wet &lt;curls&gt;" in html
    assert 'class="uncast"' in html and "NOT CAST" in html  # Dr. Okafor has nobody
    assert "Bo Li" not in html  # Tommy is not in day 2's scene
    assert write_callsheet(view, {"day": "2026-03-02"}).count("EXT. HARBOUR WALL - DAY 1") == 1


def test_pick_day(view: ProductionView) -> None:
    assert pick_day(view, "2026-03-04").day_number == 3
    assert pick_day(view, "4").date == D + dt.timedelta(days=3)
    with pytest.raises(NotFound):
        pick_day(view, "2027-01-01")
    with pytest.raises(NotFound):
        pick_day(view, "9")
    with pytest.raises(NotFound):
        pick_day(view, "tuesday")


def test_export_command_writes_files(cli, tmp_path: Path) -> None:
    cli("init", "--production", "Harbour Lights")
    with Workspace.open(cli.path) as ws:
        build(ws.production().doc)
    out = tmp_path / "sheet.html"
    result = cli("export", "callsheet", "--day", "1", "--output", str(out))
    assert result.exit_code == 0, result.output
    assert "Call sheet" in out.read_text()
    ics = cli("export", "ics")
    assert ics.exit_code == 0 and ics.stdout.startswith("BEGIN:VCALENDAR")
    dood = cli("export", "dood")
    assert dood.exit_code == 0 and "SW" in dood.stdout
    talents = cli("export", "csv", "--kind", "talents")
    assert talents.stdout.splitlines()[0].startswith("id,deleted,name")
    missing = cli("export", "pdf")
    assert missing.exit_code == 1 and "no exporter 'pdf'" in missing.stderr
    bad_day = cli("export", "callsheet", "--day", "99", "--output", str(tmp_path / "x.html"))
    assert bad_day.exit_code == 1 and not (tmp_path / "x.html").exists()


def test_export_to_a_path_that_cannot_be_written_is_one_error_line(cli, tmp_path: Path) -> None:
    cli("init", "--production", "Harbour Lights")
    with Workspace.open(cli.path) as ws:
        build(ws.production().doc)
    a_file = tmp_path / "plain-file"
    a_file.write_text("not a folder")
    for target in (tmp_path / "nonexistent" / "dir" / "x.html", a_file / "x.html"):
        result = cli("export", "callsheet", "--day", "1", "--output", str(target))
        assert result.exit_code == 1, result.output
        [line] = result.stderr.splitlines()
        assert line.startswith("Error: cannot write the export to ") and str(target) in line
        assert "Traceback" not in result.output
    assert not list(tmp_path.glob("**/.x.html.tmp")) and a_file.read_text() == "not a folder"


def test_callsheet_names_the_uncast_era_and_lists_each_scene_once() -> None:
    doc = CastDocument.create("Harbour Years")
    nora = doc.add(Role, name="Nora Quill", eras=[{"name": "1962"}, {"name": "1994"}])
    clerk = doc.add(Role, name="Ferry Clerk")
    harbourmaster = doc.add(Role, name="Harbourmaster")
    tom = doc.add(Talent, name="Tom Quill")
    for role in (clerk, harbourmaster):  # one actor, two parts in one scene
        doc.add(Candidate, talent_id=tom.id, role_id=role.id, stage="booked")
    scene = doc.add(Scene, number="3", era="1962", characters=[nora.id, clerk.id, harbourmaster.id])
    doc.add(ShootDay, date=D, day_number=1, scene_ids=[scene.id])
    html = write_callsheet(ProductionView(doc), {"day": "1"})
    assert "<td>NOT CAST</td><td>Nora Quill (1962)</td>" in html
    assert "Ferry Clerk, Harbourmaster" in html and "Ferry Clerk (1962)" not in html
    tom_row = next(row for row in html.split("<tr") if "Tom Quill" in row)
    assert "<td>3</td>" in tom_row and "3, 3" not in tom_row


def test_dood_html_classes_come_only_from_known_codes() -> None:
    doc = CastDocument.create("Harbour Years")
    clerk = doc.add(Role, name="Ferry Clerk")
    harbourmaster = doc.add(Role, name="Harbourmaster")
    tom = doc.add(Talent, name="Tom Quill")
    for role in (clerk, harbourmaster):
        doc.add(Candidate, talent_id=tom.id, role_id=role.id, stage="booked")
    scene = doc.add(Scene, number="3", characters=[clerk.id, harbourmaster.id])
    doc.add(ShootDay, date=D, day_number=1, scene_ids=[scene.id])
    doc.add(ShootDay, date=D + dt.timedelta(days=1), day_number=2)
    html = write_dood(ProductionView(doc), {"format": "html"})
    classes = set(re.findall(r'class="([^"]*)"', html))
    assert classes <= {f"c-{code}" for code in LEGEND} | {"c-off"}, classes
    assert '<td class="c-SWF">SWF</td>' in html and '<td class="c-off"></td>' in html
    assert "<td>Tom Quill</td>" in html
    assert re.search(r"<td>(Ferry Clerk; Harbourmaster|Harbourmaster; Ferry Clerk)</td>", html)


def test_import_and_export_help_list_each_one_with_its_options(cli) -> None:
    """The importer- and exporter-specific options live in each one's description; the
    help lists every registered one (a third-party one too) with that description."""
    from castroom.core.plugins import make_plugins

    plugins = make_plugins()
    exported = cli("export", "--help")
    assert exported.exit_code == 0
    text = " ".join(exported.output.split())  # undo the help's line wrapping
    assert "Exporters (NAME) and their options:" in text
    for name, exporter in plugins.exporters().items():
        assert " ".join(f"{name} {exporter.description}".split()) in text
    assert "--day DATE|N" in text and "--format csv|html" in text and "--fields" in text
    imported = cli("import", "--help")
    assert imported.exit_code == 0
    text = " ".join(imported.output.split())
    assert "Importers (NAME) and their options:" in text
    for name, importer in plugins.importers().items():
        assert " ".join(f"{name} {importer.description}".split()) in text
    assert "--kind" in text and "--map" in text
