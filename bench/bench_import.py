"""Benchmark: a CSV import of 10,000 talents (target <= 3 s).

Figures:

- import: ``castroom import csv`` as the CLI runs it, into a real workspace (SQLite file):
  read and map the CSV, validate every row, write all in one transaction, durably;
- re-import: the same file again (every row matched by its source id, nothing changes);
- baseline: the same 10,000 talents written straight into pycrdt maps (one transaction,
  no CSV, no validation, no storage): the floor of any import into a Yjs document.
"""

from __future__ import annotations

import csv
import random
import tempfile
import time
from pathlib import Path

from pycrdt import Doc, Map, Text

from castroom.core.importing import apply_import
from castroom.core.model import Talent, new_id
from castroom.core.view import ProductionView
from castroom.core.workspace import Workspace
from castroom.plugins.csv_io import read_csv

COUNT = 10_000
TARGET_SECONDS = 3.0
RUNS = 3
HEADER = ["Ref", "Name", "Agent", "Union", "Age Min", "Age Max", "Height", "Languages", "Fee"]
MAPPING = [
    "Ref=external_id",
    "Age Min=playing_age_min",
    "Age Max=playing_age_max",
    "Height=height_cm",
    "Fee=rate",
]


def rows(count: int = COUNT, seed: int = 7) -> list[list[str]]:
    rng = random.Random(seed)
    out = []
    for i in range(count):
        low = rng.randint(8, 70)
        out.append(
            [
                f"ext-{i}",
                f"Talent {i} {rng.choice(['Stone', 'Li', 'Marsh', 'Okafor'])}",
                rng.choice(["Blue Agency", "North Talent", ""]),
                rng.choice(["SAG-AFTRA", "Equity", ""]),
                str(low),
                str(low + rng.randint(0, 12)),
                str(rng.randint(120, 200)),
                rng.choice(["English", "English; French", "Spanish; English"]),
                f"{rng.randint(200, 5000)}.00",
            ]
        )
    return out


def write_file(path: Path, data: list[list[str]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        writer.writerows(data)


def import_once(workspace: Workspace, path: Path) -> tuple[float, str]:
    start = time.perf_counter()
    production = workspace.production()
    result = read_csv(
        str(path),
        ProductionView(production.doc),
        {"kind": "talent", "map": MAPPING, "source": "office"},
    )
    counts = apply_import(production.doc, result)
    return (
        time.perf_counter() - start,
        f"{counts.created} created, {counts.updated} updated, {counts.unchanged} unchanged",
    )


def baseline(data: list[list[str]]) -> float:
    """The same talents written straight into pycrdt maps, one transaction."""
    start = time.perf_counter()
    doc: Doc = Doc()
    talents = doc.get("talents", type=Map)
    with doc.transaction():
        for row in data:
            entity_id = new_id()
            talents[entity_id] = Map(
                {
                    "id": entity_id,
                    "name": row[1],
                    "agent": row[2],
                    "union": row[3],
                    "playing_age_min": int(row[4]),
                    "playing_age_max": int(row[5]),
                    "height_cm": int(row[6]),
                    "languages": row[7].split("; "),
                    "rate": int(row[8].replace(".", "")),
                    "external_ids": {"office": row[0]},
                    "notes": Text(""),
                }
            )
    doc.get_update()
    return time.perf_counter() - start


def one_run(data: list[list[str]]) -> tuple[float, str, float, str]:
    """A fresh workspace: import the file, then import it again."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "talents.csv"
        write_file(path, data)
        with Workspace.open(Path(tmp) / "ws", member="bench") as workspace:
            workspace.create_production("Bench")
        with Workspace.open(Path(tmp) / "ws", member="bench") as workspace:
            first, first_counts = import_once(workspace, path)
        with Workspace.open(Path(tmp) / "ws", member="bench") as workspace:
            again, again_counts = import_once(workspace, path)
            assert len(workspace.production().doc.all(Talent)) == COUNT
    return first, first_counts, again, again_counts


def main() -> None:
    data = rows()
    runs = [one_run(data) for _ in range(RUNS)]
    first, first_counts, _, _ = min(runs, key=lambda r: r[0])
    _, _, again, again_counts = min(runs, key=lambda r: r[2])
    raw = min(baseline(data) for _ in range(RUNS))
    verdict = "ok" if first <= TARGET_SECONDS else "OVER TARGET"
    print(
        f"CSV import of {COUNT:,} talents (best of {RUNS}): {first:.2f} s ({first_counts}); "
        f"target <= {TARGET_SECONDS:.0f} s: {verdict}"
    )
    print(f"  re-import of the same file: {again:.2f} s ({again_counts})")
    print(
        f"  raw pycrdt baseline (same talents into maps): {raw:.2f} s; "
        f"import / baseline = {first / raw:.1f}x"
    )


if __name__ == "__main__":
    main()
