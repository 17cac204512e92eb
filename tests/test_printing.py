"""core/printing.py: a long rich Table is drawn without rich's layout, in the same lines
rich prints when nothing folds."""

from __future__ import annotations

import io

from hypothesis import given
from hypothesis import strategies as st
from rich import box
from rich.console import Console
from rich.table import Table

from castroom.core.printing import draw, print_table
from tests.conftest import run_castroom

CELLS = st.sampled_from(
    ["Ada", "Stone", "$1,500.00", "", "Nora Vale", "a\nb", "x" * 12, "é", "中文"]
)
COLUMN = st.tuples(
    st.sampled_from(["id", "name", "rate", "base\novertime\nfringe"]),
    st.sampled_from(["left", "right", "center"]),
    st.booleans(),
    st.sampled_from([None, 0, 5, 14]),
)


def _rich(table: Table) -> str:
    console = Console(file=io.StringIO(), width=400, highlight=False)
    console.print(table)
    return console.file.getvalue()  # type: ignore[attr-defined]


@given(
    st.sampled_from([None, "3 talents", "cast cost by deal"]),
    st.lists(COLUMN, min_size=1, max_size=5),
    st.lists(st.lists(CELLS, min_size=5, max_size=5), max_size=6),
)
def test_drawn_as_rich_draws_it(title: str | None, columns: list, rows: list) -> None:
    table = Table(title=title)
    for header, justify, no_wrap, min_width in columns:
        table.add_column(header, justify=justify, no_wrap=no_wrap, min_width=min_width)
    for row in rows:
        table.add_row(*row[: len(columns)])
    drawn = draw(table)
    if drawn is None:  # a title wider than the table: rich wraps it
        assert title is not None and len(title) > len(_rich(table).splitlines()[-1])
    else:
        assert drawn == _rich(table)


def _long(rows: int, **options: object) -> Table:
    table = Table(title=f"{rows} talents", **options)  # type: ignore[arg-type]
    table.add_column("id", no_wrap=True)
    table.add_column("rate", justify="right")
    for n in range(rows):
        table.add_row(f"01M8S{n:05d}", f"${n:,}.00")
    return table


def _printed(table: Table, width: int = 400) -> str:
    out = io.StringIO()
    print_table(Console(file=out, width=width, highlight=False), table, long=50)
    return out.getvalue()


def test_only_a_long_table_in_rich_default_look_is_drawn_here() -> None:
    assert _printed(_long(51)) == draw(_long(51)) == _rich(_long(51))
    # Short, or another look: rich draws it (here at a width that folds the short one).
    assert _printed(_long(50), width=12) == _rich_at(_long(50), 12)
    assert "+" in _printed(_long(51, box=box.ASCII))
    assert draw(_long(51)) is not None and "┏" in draw(_long(51))  # type: ignore[operator]


def _rich_at(table: Table, width: int) -> str:
    console = Console(file=io.StringIO(), width=width, highlight=False)
    console.print(table)
    return console.file.getvalue()  # type: ignore[attr-defined]


#: Names people may give that rich would read as markup or an emoji code.
ODD_NAMES = ["Bo [/]", "Ada [bold]Stone[/bold]", "Kit :smile:", "Ro [red]"]


def test_people_s_text_is_printed_as_written(tmp_path) -> None:
    # rich's default Console read "[/]" as markup (the listing failed) and ":smile:" as
    # an emoji; the CLI's consoles print every name as it is.
    from castroom.core.printing import console as plain_console

    out = io.StringIO()
    plain_console(file=out, width=200).print(*ODD_NAMES)
    assert out.getvalue().splitlines() == [" ".join(ODD_NAMES)]
    ws = str(tmp_path / "ws")
    run_castroom("-w", ws, "init", "--production", "Odd [/] names", check=True)
    for name in ODD_NAMES:
        run_castroom("-w", ws, "add", "talent", f"name={name}", check=True)
    listed = run_castroom("-w", ws, "list", "talents", env={"COLUMNS": "200"}, check=True)
    for name in ODD_NAMES:
        assert name in listed.stdout
    shown = run_castroom("-w", ws, "show", "talent", "Kit :smile:", check=True)
    assert "Kit :smile:" in shown.stdout
