"""Call sheets as crews use them: each actor called from their first scene of the day
less their makeup/wardrobe lead time, as HTML and as a PDF read back with PDFium;
the production's time zone in the .ics."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pypdfium2 as pdfium
import pytest
from icalendar import Calendar

from castroom.core.document import CastDocument
from castroom.core.errors import ValidationFailed
from castroom.core.model import Audition, Candidate, Role, Scene, ShootDay, Talent
from castroom.core.view import ProductionView
from castroom.plugins import callsheet
from castroom.plugins.calendar import write_ics
from castroom.plugins.reports import write_callsheet


def pdf_text(data: bytes) -> str:
    """A PDF's text, line by line, as PDFium reads it."""
    document = pdfium.PdfDocument(data)
    try:
        pages = [document[i].get_textpage().get_text_range() for i in range(len(document))]
    finally:
        document.close()
    return "\n".join(" ".join(line.split()) for page in pages for line in page.splitlines())


def production() -> CastDocument:
    """A 10-hour day at 5 pages a day: a page takes two hours. Mary (the production's
    hour of makeup) is in scenes 1 and 3; Tommy's prosthetic takes 90 minutes, scene 2;
    Okafor is not cast yet, scene 3."""
    doc = CastDocument.create("Harbour Lights")
    mary = doc.add(Role, name="Mary")
    tommy = doc.add(Role, name="Tommy", lead_minutes=90)
    okafor = doc.add(Role, name="Dr. Okafor")
    ada = doc.add(Talent, name="Ada Stone", agent="North")
    bo = doc.add(Talent, name="Bo Li", contact="bo@example.org")
    doc.add(Candidate, talent_id=ada.id, role_id=mary.id, stage="booked")
    doc.add(Candidate, talent_id=bo.id, role_id=tommy.id, stage="booked")
    day = doc.add(ShootDay, date="2027-03-01", day_number=1, call_time="07:00", location="Pier")
    ids = []
    for number, pages, chars in [
        ("1", 1.0, [mary.id]),
        ("2", 0.5, [tommy.id]),
        ("3", 0.25, [mary.id, okafor.id]),
    ]:
        scene = doc.add(
            Scene,
            number=number,
            heading=f"EXT. PIER - DAY {number}",
            pages=pages,
            characters=chars,
            shoot_day_id=day.id,
        )
        ids.append(scene.id)
    doc.update(ShootDay, day.id, {"scene_ids": ids})
    return doc


EXPECTED = [
    # talent, role, call, on set, scenes
    ("Ada Stone", "Mary", "06:00", "07:00", "1, 3"),
    ("Bo Li", "Tommy", "07:30", "09:00", "2"),  # scene 1 takes 2 h; 90 min of prosthetic
    ("NOT CAST", "Dr. Okafor", "09:00", "10:00", "3"),
]


def test_each_actor_is_called_from_their_first_scene_less_their_lead_time() -> None:
    view = ProductionView(production())
    sheet = callsheet.build(view, next(iter(view.shoot_days.values())), 1)
    assert [s.starts for s in sheet.scenes] == ["07:00", "09:00", "10:00"]
    got = [tuple(callsheet.cast_cells(c)[:5]) for c in sheet.cast]
    assert got == EXPECTED
    html = write_callsheet(view, {"day": "1"})
    assert isinstance(html, str)
    for talent, role, call, on_set, scenes in EXPECTED:
        assert (
            f"<td>{talent}</td><td>{role}</td><td>{call}</td><td>{on_set}</td><td>{scenes}</td>"
            in html
        )


def test_the_pdf_call_sheet_says_what_the_html_one_does(cli, tmp_path: Path) -> None:
    doc = production()
    pdf = write_callsheet(ProductionView(doc), {"day": "1", "format": "pdf"})
    assert isinstance(pdf, bytes) and pdf.startswith(b"%PDF-")
    text = pdf_text(pdf)
    assert "Call sheet: Harbour Lights, day 1, 2027-03-01" in text
    for talent, role, call, on_set, _ in EXPECTED:
        assert f"{talent} {role} {call} {on_set}" in text, text
    assert "bo@example.org" in text and "EXT. PIER - DAY 2" in text
    # The same bytes for the same sheet (no time stamp inside).
    assert write_callsheet(ProductionView(doc), {"day": "1", "format": "pdf"}) == pdf
    with pytest.raises(Exception, match="--format expects html or pdf"):
        write_callsheet(ProductionView(doc), {"format": "docx"})


def test_cli_writes_a_pdf_call_sheet(cli, tmp_path: Path) -> None:
    cli("init", "--production", "Harbour Lights")
    assert cli("production", "set", "lead_minutes=45").exit_code == 0
    cli("add", "role", "name=Mary")
    cli("add", "talent", "name=Ada Stone")
    cli("add", "candidate", "talent_id=Ada Stone", "role_id=Mary", "stage=booked")
    cli("add", "shoot_day", "date=2027-03-01", "call_time=08:00")
    cli("add", "scene", "number=1", 'characters=["Mary"]', "shoot_day_id=2027-03-01", "pages=1")
    out = tmp_path / "day1.pdf"
    done = cli("export", "callsheet", "--day", "1", "--format", "pdf", "-o", str(out))
    assert done.exit_code == 0, done.output
    text = pdf_text(out.read_bytes())
    assert "Ada Stone Mary 07:15 08:00" in text


def test_ics_times_carry_the_production_time_zone() -> None:
    doc = production()
    role = next(r for r in doc.all(Role) if r.name == "Mary")
    doc.add(Audition, role_id=role.id, starts_at=dt.datetime(2027, 2, 10, 14, 0), minutes=45)
    floating = Calendar.from_ical(write_ics(ProductionView(doc), {"only": "auditions"}))
    (event,) = floating.walk("VEVENT")
    assert event.decoded("dtstart").tzinfo is None and not floating.walk("VTIMEZONE")
    doc.update_production({"time_zone": "Europe/Dublin"})
    raw = write_ics(ProductionView(doc), {"only": "auditions"})
    assert b"DTSTART;TZID=Europe/Dublin:20270210T140000" in raw
    zoned = Calendar.from_ical(raw)
    assert [tz["TZID"] for tz in zoned.walk("VTIMEZONE")] == ["Europe/Dublin"]
    start = zoned.walk("VEVENT")[0].decoded("dtstart")
    assert start.utcoffset() == dt.timedelta(0) and start.hour == 14  # GMT in February


def test_a_time_zone_that_is_not_a_name_is_one_error_and_changes_nothing(cli) -> None:
    cli("init", "--production", "Harbour Lights")
    before = json.loads(cli("production", "show", "--json").stdout)
    failed = cli("production", "set", "time_zone=Mars/Olympus")
    assert failed.exit_code == 1
    assert "'Mars/Olympus' is not a time zone name like Europe/Dublin" in failed.stderr
    assert json.loads(cli("production", "show", "--json").stdout) == before
    doc = CastDocument.create("X")
    with pytest.raises(ValidationFailed, match="time_zone"):
        doc.update_production({"time_zone": "../../etc/passwd"})
