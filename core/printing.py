"""Printing a rich Table fast when it is long.

rich lays a table out at about half a millisecond a row: a 50,000-talent ``castroom
list talents`` spent 25 s there, and ``budget`` at that size two thirds of its time
(issue 14). Over :data:`LONG` rows, :func:`print_table` draws the table itself, in rich's
default box and layout, each column as wide as its widest line: the same lines rich
prints when nothing needs folding (a test holds it to that), without colours, and never
folded, so a long table of wide cells may be wider than the terminal.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

#: Tables with more rows than this are drawn here rather than by rich.
LONG = 200


def console(**options: Any) -> Console:
    """A rich Console that prints people's text as they wrote it. rich reads ``[...]``
    as markup and ``:name:`` as an emoji code by default, so a talent called "Bo [/]"
    made ``castroom list`` fail and "Ada :smile:" showed a face; neither is read here
    (and rich's emoji table, a tenth of its import, is never loaded)."""
    from rich.console import Console

    return Console(markup=False, emoji=False, **options)


def print_table(console: Console, table: Table, *, long: int = LONG) -> None:
    """Print ``table`` on ``console``: through rich, or (over ``long`` rows, in rich's
    default look) drawn here."""
    drawn = draw(table) if table.row_count > long and _plain_look(table) else None
    if drawn is None:
        console.print(table)
        return
    console.file.write(drawn)
    console.file.flush()


def _plain_look(table: Table) -> bool:
    """Whether ``table`` has rich's default look, the one :func:`draw` draws."""
    from rich import box

    return (
        table.box is box.HEAVY_HEAD
        and table.show_header
        and table.show_edge
        and not (table.show_lines or table.show_footer or table.expand or table.caption)
        and tuple(table.padding) == (0, 1, 0, 1)
        and all(isinstance(c, str) for column in table.columns for c in column.cells)
        and all(isinstance(column.header, str) for column in table.columns)
    )


def draw(table: Table) -> str | None:
    """``table`` as rich draws it with its default box when no cell has to fold; None
    when its title is wider than the table (rich wraps it: left to rich)."""
    from rich.cells import cell_len

    columns = table.columns
    cells = [[str(column.header), *map(str, column.cells)] for column in columns]
    lines = [[text.split("\n") for text in column] for column in cells]
    widths = [
        max(spec.min_width or 0, *(cell_len(part) for cell in column for part in cell))
        for spec, column in zip(columns, lines, strict=True)
    ]
    justify = [column.justify for column in columns]

    def fit(text: str, width: int, how: str) -> str:
        space = width - cell_len(text)
        if how == "right":
            return " " * space + text
        if how == "center":
            return " " * (space // 2) + text + " " * (space - space // 2)
        return text + " " * space

    def row(index: int, edge: str) -> list[str]:
        height = max(len(column[index]) for column in lines)
        # Cells sit at the top of their row; headers (index 0) at the bottom, as in rich.
        cells = [
            [""] * (height - len(c[index])) + c[index] if index == 0 else c[index] for c in lines
        ]
        out = []
        for n in range(height):
            parts = [
                fit(cell[n] if n < len(cell) else "", w, j)
                for cell, w, j in zip(cells, widths, justify, strict=True)
            ]
            out.append(edge + edge.join(f" {p} " for p in parts) + edge)
        return out

    def rule(left: str, fill: str, cross: str, right: str) -> str:
        return left + cross.join(fill * (w + 2) for w in widths) + right

    total = sum(widths) + 3 * len(widths) + 1
    out: list[str] = []
    if table.title:
        if cell_len(str(table.title)) > total:
            return None
        out.append(fit(str(table.title), total, "center"))
    out.append(rule("┏", "━", "┳", "┓"))
    out += row(0, "┃")
    out.append(rule("┡", "━", "╇", "┩"))
    for index in range(1, len(lines[0]) if lines else 1):
        out += row(index, "│")
    out.append(rule("└", "─", "┴", "┘"))
    return "\n".join(out) + "\n"
