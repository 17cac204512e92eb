"""A shoot day's call sheet: what it says (built once), as HTML or as a PDF (reportlab).

Each scene of the day starts when the scenes before it are done: the general call, then
each scene's shooting time (its ``pages`` over the production's pages per day, of a
``hours_per_day`` day; or the scene's own ``duration_days`` where the scheduler set one).
An actor is called their makeup and wardrobe lead time (the role's ``lead_minutes``, else
the production's) before their first scene of the day; the earliest of their roles wins.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import Any

from castroom.core.api import Production, ProductionView, Role, Scene, ShootDay, Talent

#: Pages a unit shoots in a day when the production says nothing else (the industry's
#: rule of thumb for a feature; the scheduler's pages_per_day overrides it).
PAGES_PER_DAY = 5.0


def scene_minutes(production: Production, scene: Scene) -> int:
    """How long a scene takes to shoot, in whole minutes (at least one)."""
    day_minutes = production.hours_per_day * 60
    days = getattr(scene, "duration_days", None)  # set by the scheduler, where it is
    if days is None:
        pages = scene.pages or (scene.eighths or 0) / 8
        days = pages / float(getattr(production, "pages_per_day", PAGES_PER_DAY))
    return max(1, round(days * day_minutes))


def _hhmm(minutes: int) -> str:
    """Minutes after midnight as ``HH:MM`` (a call before midnight reads ``-1 23:30``)."""
    days, rest = divmod(minutes, 24 * 60)
    text = f"{rest // 60:02d}:{rest % 60:02d}"
    return text if days == 0 else f"{text} ({'+' if days > 0 else ''}{days}d)"


def _minutes(hhmm: str) -> int:
    hours, mins = hhmm.split(":")
    return int(hours) * 60 + int(mins)


@dataclass
class SceneLine:
    scene: Scene
    starts: str  # HH:MM
    characters: list[str]


@dataclass
class CastLine:
    """One actor called (or a part no one is booked for yet)."""

    talent: Talent | None
    roles: list[str] = field(default_factory=list)
    scenes: list[str] = field(default_factory=list)
    looks: list[str] = field(default_factory=list)
    call: int = 0  # minutes after midnight
    on_set: int = 0  # their first scene's start
    lead: int = 0

    @property
    def name(self) -> str:
        return self.talent.name if self.talent else "NOT CAST"

    @property
    def contact(self) -> str:
        return (self.talent.agent or self.talent.contact) if self.talent else ""


@dataclass
class CallSheet:
    production: Production
    day: ShootDay
    number: int
    scenes: list[SceneLine]
    cast: list[CastLine]

    @property
    def title(self) -> str:
        return f"Call sheet: {self.production.title}, day {self.number}, {self.day.date}"


def _look(scene: Scene, role_id: str) -> str:
    look = scene.looks.get(role_id)
    if look is None:
        return ""
    parts = [f"{k}: {v}" for k in ("hair", "wardrobe", "makeup") if (v := getattr(look, k))]
    if look.age is not None:
        parts.append(f"age: {look.age}")
    if look.note:
        parts.append(f"note: {look.note}")
    return "; ".join(parts)


def _lead(production: Production, role: Role | None) -> int:
    if role is not None and role.lead_minutes is not None:
        return role.lead_minutes
    return production.lead_minutes


def build(view: ProductionView, day: ShootDay, number: int) -> CallSheet:
    """What the day's call sheet says: scenes in order with their start, and every
    actor's call from their first scene and their role's lead time."""
    production = view.production
    clock = _minutes(day.call_time)
    scene_lines: list[SceneLine] = []
    cast: dict[str, CastLine] = {}
    for scene in view.scenes_by_shoot_day.get(day.id, []):
        names = []
        for role_id in scene.characters:
            role = view.roles.get(role_id)
            talent = view.booked_talent(role_id, scene.era)
            names.append(role.name if role else role_id)
            # A role played by several actors over the years: say which era is called.
            era = scene.era if role is not None and role.eras and scene.era else None
            part = (role.name if role else role_id) + (f" ({era})" if era else "")
            key = talent.id if talent else f"uncast:{role_id}:{era or ''}"
            lead = _lead(production, role)
            entry = cast.get(key)
            if entry is None:
                entry = cast[key] = CastLine(talent=talent, on_set=clock, lead=lead)
                entry.call = clock - lead
            elif clock - lead < entry.call:  # a later part needing a longer lead
                entry.call, entry.lead = clock - lead, lead
            if part not in entry.roles:
                entry.roles.append(part)
            if scene.number not in entry.scenes:  # one actor in two parts of a scene
                entry.scenes.append(scene.number)
            look = _look(scene, role_id)
            if look:
                entry.looks.append(f"Sc. {scene.number}: {look}")
        scene_lines.append(SceneLine(scene=scene, starts=_hhmm(clock), characters=names))
        clock += scene_minutes(production, scene)
    ordered = sorted(cast.values(), key=lambda c: (c.call, c.name))
    return CallSheet(
        production=production, day=day, number=number, scenes=scene_lines, cast=ordered
    )


def scene_cells(line: SceneLine) -> list[str]:
    scene = line.scene
    story_day = "" if scene.story_day is None else str(scene.story_day)
    pages = f"{scene.pages:g}" if scene.pages else ""
    return [line.starts, scene.number, scene.heading, story_day, ", ".join(line.characters), pages]


SCENE_HEADER = ["Starts", "Sc.", "Heading", "Story day", "Characters", "Pages"]
CAST_HEADER = ["Talent", "Role", "Call", "On set", "Scenes", "Looks", "Agent / contact"]


def cast_cells(line: CastLine) -> list[str]:
    return [
        line.name,
        ", ".join(line.roles),
        _hhmm(line.call),
        _hhmm(line.on_set),
        ", ".join(line.scenes),
        "; ".join(line.looks),
        line.contact,
    ]


def info(sheet: CallSheet) -> list[tuple[str, str]]:
    day = sheet.day
    zone = sheet.production.time_zone
    return [
        ("Date", day.date.strftime("%A %d %B %Y")),
        ("Shoot day", str(sheet.number)),
        ("General call", day.call_time + (f" ({zone})" if zone else "")),
        ("Location", day.location or "-"),
    ]


# -- PDF ----------------------------------------------------------------------------------------


def to_pdf(sheet: CallSheet) -> bytes:
    """The call sheet as a one-or-more-page PDF (reportlab's platypus, landscape letter)."""
    from xml.sax.saxutils import escape  # here: it imports urllib.request, http, ssl

    from reportlab.lib import colors
    from reportlab.lib.pagesizes import landscape, letter
    from reportlab.lib.styles import getSampleStyleSheet
    from reportlab.lib.units import inch
    from reportlab.platypus import LongTable, Paragraph, SimpleDocTemplate, Spacer, TableStyle

    styles = getSampleStyleSheet()
    small = styles["BodyText"].clone("small", fontSize=8, leading=10)

    def para(text: str) -> Any:
        return Paragraph(escape(text), small)

    def table(header: list[str], rows: list[list[str]], widths: list[float]) -> Any:
        data = [[para(h) for h in header]] + [[para(c) for c in row] for row in rows]
        out = LongTable(data, colWidths=[w * inch for w in widths], repeatRows=1)
        out.setStyle(
            TableStyle(
                [
                    ("GRID", (0, 0), (-1, -1), 0.5, colors.grey),
                    ("BACKGROUND", (0, 0), (-1, 0), colors.lightgrey),
                    ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ]
            )
        )
        return out

    buffer = io.BytesIO()
    doc = SimpleDocTemplate(
        buffer,
        pagesize=landscape(letter),
        title=sheet.title,
        author="castroom",
        leftMargin=0.5 * inch,
        rightMargin=0.5 * inch,
        topMargin=0.5 * inch,
        bottomMargin=0.5 * inch,
        invariant=1,  # the same sheet gives the same bytes
    )
    story: list[Any] = [
        Paragraph(escape(sheet.production.title), styles["Title"]),
        Paragraph(escape(sheet.title), styles["Normal"]),
        Spacer(1, 6),
        table(["", ""], [[k, v] for k, v in info(sheet)], [1.5, 4]),
        Spacer(1, 10),
        Paragraph("Scenes", styles["Heading2"]),
        table(SCENE_HEADER, [scene_cells(s) for s in sheet.scenes], [0.6, 0.5, 3.6, 0.7, 3.6, 0.6]),
        Paragraph("Cast", styles["Heading2"]),
        table(
            CAST_HEADER,
            [cast_cells(c) for c in sheet.cast],
            [1.5, 1.6, 0.6, 0.6, 0.9, 3.2, 1.6],
        ),
    ]
    if sheet.day.notes:
        story += [Paragraph("Notes", styles["Heading2"]), para(sheet.day.notes)]
    doc.build(story)
    return buffer.getvalue()
