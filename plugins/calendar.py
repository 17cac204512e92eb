"""Built-in plugin: an iCalendar (.ics) file of auditions and shoot days.

``castroom export ics [--only auditions|shoot_days] -o cast.ics``. Each event's UID is
``<entity id>@castroom`` so a calendar app that re-imports the file updates its events
instead of adding copies. Auditions are timed events (``minutes`` long) in the
production's ``time_zone`` (an IANA name, with its VTIMEZONE); without one a time is
floating, i.e. local wherever the calendar is read. Shoot days are all-day events with
the call time, location and scenes in the description.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from castroom.core.api import Audition, Candidate, CastroomError, Exporter, ProductionView, hookimpl

if TYPE_CHECKING:
    from icalendar import Event

PRODID = "-//castroom//castroom calendar//EN"


def _zoned(when: dt.datetime, zone: str) -> dt.datetime:
    """A naive time in the production's time zone (``Europe/Dublin``), so every member's
    calendar shows the same hour; without one it stays floating (local wherever read)."""
    if not zone or when.tzinfo is not None:
        return when
    from zoneinfo import ZoneInfo

    return when.replace(tzinfo=ZoneInfo(zone))


def _audition_event(view: ProductionView, audition: Audition, stamp: dt.datetime) -> Event:
    from icalendar import Event

    role_ids = [audition.role_id] if audition.role_id else list(audition.role_ids)
    roles = [view.roles[r].name for r in role_ids if r in view.roles]
    label = "Chemistry read" if audition.chemistry else "Audition"
    event = Event()
    event.add("uid", f"{audition.id}@castroom")
    event.add("dtstamp", stamp)
    starts = _zoned(audition.starts_at, view.production.time_zone)
    event.add("dtstart", starts)
    event.add("dtend", starts + dt.timedelta(minutes=audition.minutes))
    event.add("summary", f"{label}: {', '.join(roles) or 'unknown role'}")
    if audition.place or audition.link:
        event.add("location", audition.place or audition.link)
    if audition.link:
        event.add("url", audition.link)
    candidates = {c.id: c for c in view.candidates}
    names = []
    for cand_id in audition.candidate_ids:
        cand: Candidate | None = candidates.get(cand_id)
        talent = view.talents.get(cand.talent_id) if cand else None
        names.append(talent.name if talent else cand_id)
    lines = [f"Candidates: {', '.join(names)}"] if names else []
    if audition.notes:
        lines.append(audition.notes)
    if lines:
        event.add("description", "\n".join(lines))
    event.add("categories", ["audition"])
    return event


def _shoot_day_event(view: ProductionView, day: Any, stamp: dt.datetime) -> Event:
    from icalendar import Event

    scenes = view.scenes_by_shoot_day.get(day.id, [])
    event = Event()
    event.add("uid", f"{day.id}@castroom")
    event.add("dtstamp", stamp)
    event.add("dtstart", day.date)
    event.add("dtend", day.date + dt.timedelta(days=1))
    number = f" {day.day_number}" if day.day_number else ""
    event.add("summary", f"Shoot day{number}" + (f": {day.location}" if day.location else ""))
    if day.location:
        event.add("location", day.location)
    lines = [f"Call: {day.call_time}"]
    for scene in scenes:
        cast = [view.roles[r].name for r in scene.characters if r in view.roles]
        who = f" ({', '.join(cast)})" if cast else ""
        lines.append(f"Sc. {scene.number} {scene.heading}{who}")
    if day.notes:
        lines.append(day.notes)
    event.add("description", "\n".join(lines))
    event.add("categories", ["shoot day"])
    return event


def write_ics(view: ProductionView, options: dict[str, Any]) -> bytes:
    """The production's auditions and shoot days as one VCALENDAR."""
    from icalendar import Calendar  # imported when used: keeps `castroom` quick to start

    only = options.get("only")
    if only not in (None, "auditions", "shoot_days", "shoot-days"):
        raise CastroomError(f"--only expects auditions or shoot_days, got {only!r}")
    stamp = dt.datetime.now(dt.UTC).replace(microsecond=0)
    cal = Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("x-wr-calname", view.production.title)
    if only in (None, "auditions"):
        for audition in sorted(view.all(Audition), key=lambda a: (str(a.starts_at), a.id)):
            cal.add_component(_audition_event(view, audition, stamp))
    if only in (None, "shoot_days", "shoot-days"):
        for day in sorted(view.shoot_days.values(), key=lambda d: (d.date, d.id)):
            cal.add_component(_shoot_day_event(view, day, stamp))
    if view.production.time_zone:
        cal.add("x-wr-timezone", view.production.time_zone)
        cal.add_missing_timezones()  # a VTIMEZONE for each TZID used
    return cal.to_ical()


@hookimpl(trylast=True)
def castroom_register_exporters(register: Any) -> None:
    register(
        Exporter(
            name="ics",
            description="auditions and shoot days as an iCalendar file "
            "(--only auditions|shoot_days)",
            run=write_ics,
            suffix=".ics",
        )
    )
