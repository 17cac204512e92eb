"""Built-in plugin: the day-out-of-days report and the call sheet.

``castroom export dood [--format csv|html]``: the grid of booked actors x shoot days with
the usual codes (SW start work, W work, WF work finish, SWF, H hold, and drop/pickup
codes). The grid itself is computed by :func:`castroom.core.costing.day_out_of_days`,
the same one the budget is costed from, so the report and the cost always agree.

``castroom export callsheet --day DATE|N [--format html|pdf]``: one shoot day as a
self-contained HTML page, or a PDF (general call, location, scenes in shooting order
with their start times, the cast each called from their first scene less their makeup
and wardrobe lead time, with roles and looks; see callsheet.py). Every value from the
document is HTML-escaped.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from typing import Any

from castroom.core.api import (
    CastroomError,
    Exporter,
    NotFound,
    ProductionView,
    ShootDay,
    day_out_of_days,
    hookimpl,
)
from castroom.plugins import callsheet


def escape(text: str) -> str:
    """``text`` HTML-escaped (html is imported for a report only: its entity table is large,
    and every command that loads plugins imports this module)."""
    import html

    return html.escape(text)


LEGEND = {
    "SW": "start work",
    "W": "work",
    "WF": "work finish",
    "SWF": "start, work, finish (one day)",
    "H": "hold (paid, not working)",
    "WD": "work, then drop",
    "SWD": "start, work, then drop",
    "PW": "picked up, work",
    "PWF": "picked up, work, finish",
    "PWD": "picked up for a day, then dropped",
}


def dood(view: ProductionView, drop_after: int | None = None) -> Any:
    """The day-out-of-days grid (shared with the budget plugin)."""
    return day_out_of_days(view, drop_after=drop_after)


def write_dood(view: ProductionView, options: dict[str, Any]) -> str:
    """The day-out-of-days as CSV (default) or an HTML table. ``--drop-after N``: a gap of
    more than N calendar days between work days drops the actor (default: the budget's)."""
    fmt = str(options.get("format") or "csv").lower()
    raw = options.get("drop_after")
    if raw is not None and not str(raw).isdigit():
        raise CastroomError(f"--drop-after expects a whole number of days, got {raw!r}")
    grid = dood(view, None if raw is None else int(raw))
    header = (
        ["talent", "roles"]
        + [f"D{d.day_number} {d.date.isoformat()}" for d in grid.days]
        + ["work", "hold", "paid", "start", "finish"]
    )
    rows = [
        [
            r.talent,
            "; ".join(r.roles),
            *r.codes,
            str(r.work_days),
            str(r.hold_days),
            str(r.paid_days),
            r.start.isoformat() if r.start else "",
            r.finish.isoformat() if r.finish else "",
        ]
        for r in grid.rows
    ]
    if fmt == "csv":
        buffer = io.StringIO(newline="")
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
        return buffer.getvalue()
    if fmt != "html":
        raise CastroomError(f"--format expects csv or html, got {fmt!r}")
    title = f"Day out of days: {view.production.title}"
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    first, last = 2, 2 + len(grid.days)  # the day columns, between name/roles and totals
    body = "".join(
        "<tr>"
        + "".join(
            _cell(c) if first <= i < last else f"<td>{escape(c)}</td>" for i, c in enumerate(row)
        )
        + "</tr>"
        for row in rows
    )
    legend = "".join(f"<li><b>{escape(k)}</b> {escape(v)}</li>" for k, v in LEGEND.items())
    return _page(
        title,
        f"<h1>{escape(title)}</h1><table><thead><tr>{head}</tr></thead>"
        f"<tbody>{body}</tbody></table><ul class=legend>{legend}</ul>",
    )


def _cell(code: str) -> str:
    """A day's cell. Only a known code (or an empty day, ``c-off``) names a CSS class,
    never other text (``class="c-Tom Quill"`` would be two made-up classes)."""
    if code in LEGEND or code == "":
        return f'<td class="c-{code or "off"}">{escape(code)}</td>'
    return f"<td>{escape(code)}</td>"


# -- call sheet ---------------------------------------------------------------------------------


def pick_day(view: ProductionView, ref: str) -> ShootDay:
    """A shoot day by ISO date, day number (or position, 1-based), or id."""
    days = sorted(view.shoot_days.values(), key=lambda d: (d.date, d.day_number or 0, d.id))
    if not days:
        raise NotFound("this production has no shoot days")
    ref = ref.strip()
    try:
        date = dt.date.fromisoformat(ref)
    except ValueError:
        date = None
    if date is not None:
        found = [d for d in days if d.date == date]
        if len(found) > 1:
            raise CastroomError(f"{len(found)} shoot days on {ref}; use the day number or id")
        if found:
            return found[0]
        raise NotFound(f"no shoot day on {ref}")
    if ref.isdigit():
        number = int(ref)
        found = [d for d in days if d.day_number == number]
        if found:
            return found[0]
        if 1 <= number <= len(days):
            return days[number - 1]
        raise NotFound(f"no shoot day {number} (there are {len(days)})")
    if ref in view.shoot_days:
        return view.shoot_days[ref]
    raise NotFound(f"no shoot day matching {ref!r} (use a date, a day number or an id)")


def write_callsheet(view: ProductionView, options: dict[str, Any]) -> str | bytes:
    """One shoot day's call sheet as HTML, or a PDF with ``--format pdf`` (``--day
    DATE|N``, default the first day)."""
    fmt = str(options.get("format") or "html").lower()
    if fmt not in ("html", "pdf"):
        raise CastroomError(f"--format expects html or pdf, got {fmt!r}")
    day = pick_day(view, str(options.get("day") or "1"))
    number = day.day_number or 1 + sorted(
        view.shoot_days.values(), key=lambda d: (d.date, d.day_number or 0, d.id)
    ).index(day)
    sheet = callsheet.build(view, day, number)
    if fmt == "pdf":
        return callsheet.to_pdf(sheet)
    return callsheet_html(sheet)


def _rows(rows: list[list[str]], uncast: list[bool] | None = None) -> str:
    out = []
    for i, cells in enumerate(rows):
        cls = ' class="uncast"' if uncast and uncast[i] else ""
        out.append(f"<tr{cls}>" + "".join(f"<td>{escape(c)}</td>" for c in cells) + "</tr>")
    return "".join(out)


def _table(header: list[str], rows: str) -> str:
    heads = "".join(f"<th>{escape(h)}</th>" for h in header)
    return f"<table><thead><tr>{heads}</tr></thead><tbody>{rows}</tbody></table>"


def callsheet_html(sheet: callsheet.CallSheet) -> str:
    """The call sheet as a self-contained HTML page (every value escaped)."""
    scenes = _rows([callsheet.scene_cells(s) for s in sheet.scenes])
    cast = _rows(
        [callsheet.cast_cells(c) for c in sheet.cast], [c.talent is None for c in sheet.cast]
    )
    info = "".join(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in callsheet.info(sheet))
    notes = f"<h2>Notes</h2><p>{escape(sheet.day.notes)}</p>" if sheet.day.notes else ""
    body = (
        f"<h1>{escape(sheet.production.title)}</h1><p class=sub>{escape(sheet.title)}</p>"
        f"<dl>{info}</dl><h2>Scenes</h2>{_table(callsheet.SCENE_HEADER, scenes)}"
        f"<h2>Cast</h2>{_table(callsheet.CAST_HEADER, cast)}{notes}"
    )
    return _page(sheet.title, body)


def _page(title: str, body: str) -> str:
    style = (
        "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;margin:1em 0}"
        "td,th{border:1px solid #999;padding:.25em .5em;text-align:left}"
        "tr.uncast{background:#fdd}"
        "dl{display:grid;grid-template-columns:max-content auto;gap:.2em 1em}"
        "dt{font-weight:bold}.sub{color:#555}"
    )
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title><style>{style}</style></head>"
        f"<body>{body}</body></html>\n"
    )


@hookimpl(trylast=True)
def castroom_register_exporters(register: Any) -> None:
    register(
        Exporter(
            name="dood",
            description="the day-out-of-days grid (--format csv|html, --drop-after DAYS)",
            run=write_dood,
            suffix=".csv",
        )
    )
    register(
        Exporter(
            name="callsheet",
            description="a shoot day's call sheet, each actor called from their first scene "
            "less their makeup/wardrobe lead time (--day DATE|N, default the first; "
            "--format html|pdf)",
            run=write_callsheet,
            suffix=".html",
        )
    )
