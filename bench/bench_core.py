"""Core benchmarks: durable edits, bulk import, opening a big production, API overhead.

Each figure is printed next to a raw-pycrdt baseline measured in the same run (the same
work done directly on pycrdt maps, with no validation, cache or typed API) and the ratio.
Targets (issue 2): durable edit median <= 2 ms; bulk import >= 20,000 entity-field
writes/s; open 5,000 talents, 300 roles, 1,500 scenes and 100,000 edits of history after
compaction in <= 0.5 s with peak memory <= 300 MB; in-memory edit overhead <= 2x.
"""

from __future__ import annotations

import json
import os
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pycrdt import Doc, Map, Text

from castroom.core import model
from castroom.core.document import CastDocument, plain_defaults
from castroom.core.workspace import Workspace

TALENTS, ROLES, SCENES, EDITS = 5_000, 300, 1_500, 100_000


def _line(
    label: str, value: str, baseline: str, ratio: float, target: str, ok: bool | None
) -> None:
    """One figure beside its raw baseline; ``ok`` None: a figure with no target."""
    verdict = "" if ok is None else f"   target {target} [{'ok' if ok else 'MISSED'}]"
    print(
        f"  {label:<34} {value:>14}   raw pycrdt {baseline:>14}   ratio {ratio:5.2f}x{verdict}",
        flush=True,
    )


def talents(n: int, rng: random.Random) -> list[model.Talent]:
    return [
        model.Talent(
            id=f"T{i:06d}",
            name=f"Talent {i}",
            agent=f"Agency {i % 37}",
            union="SAG-AFTRA" if i % 3 else "",
            playing_age_min=20 + i % 40,
            playing_age_max=30 + i % 40,
            height_cm=150 + i % 50,
            hair=rng.choice(["black", "brown", "red", "blond"]),
            languages=["en"] + (["fr"] if i % 4 == 0 else []),
            rate=50_000 + 100 * (i % 500),
            notes=f"Seen in showcase {i % 11}.",
        )
        for i in range(n)
    ]


def roles(n: int) -> list[model.Role]:
    return [
        model.Role(
            id=f"R{i:05d}",
            name=f"Role {i}",
            kind="supporting",
            age_min=20,
            age_max=60,
            rate_cap=200_000,
            backups=[f"T{(i * 7 + k) % TALENTS:06d}" for k in range(3)],
        )
        for i in range(n)
    ]


def scenes(n: int) -> list[model.Scene]:
    return [
        model.Scene(
            id=f"S{i:05d}",
            number=str(i + 1),
            heading=f"INT. ROOM {i % 40} - DAY",
            story_day=i // 10,
            characters=[f"R{(i + k) % ROLES:05d}" for k in range(3)],
            location=f"Stage {i % 5}",
            pages=1.5,
        )
        for i in range(n)
    ]


# -- 1. durable single-entity edit ---------------------------------------------------------


def bench_durable_edit(root: Path, n: int = 400) -> None:
    with Workspace.open(root / "edit") as ws:
        doc = ws.create_production("Edit bench").doc
        talent = doc.add(model.Talent, name="Ada Stone", rate=100)
        times = []
        for i in range(n):
            start = time.perf_counter()
            doc.update(model.Talent, talent.id, {"rate": 100 + i})
            times.append(time.perf_counter() - start)
    api = statistics.median(times) * 1000
    # Raw: the same field write on pycrdt, its update appended to SQLite (WAL) and committed.
    db = sqlite3.connect(root / "raw.db", isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("CREATE TABLE log (seq INTEGER PRIMARY KEY, data BLOB)")
    ydoc = Doc()
    cmap = ydoc.get("talents", type=Map)
    cmap["t"] = Map({"name": "Ada Stone", "rate": 100})
    updates: list[bytes] = []
    ydoc.observe(lambda event: updates.append(event.update))
    raw_times = []
    for i in range(n):
        start = time.perf_counter()
        with ydoc.transaction():
            cmap["t"]["rate"] = 100 + i
        db.execute("BEGIN IMMEDIATE")
        db.execute("INSERT INTO log (data) VALUES (?)", (updates.pop(),))
        db.execute("COMMIT")
        raw_times.append(time.perf_counter() - start)
    db.close()
    raw = statistics.median(raw_times) * 1000
    _line("durable edit (median)", f"{api:.3f} ms", f"{raw:.3f} ms", api / raw, "<= 2 ms", api <= 2)


# -- 2. bulk import ------------------------------------------------------------------------


def stored_fields(entity: model.Entity) -> dict[str, object]:
    """The fields ``put`` writes for a new entity: CRDT arrays and texts always, other
    fields only where they differ from their defaults (absent reads as the default)."""
    cls = type(entity)
    defaults = plain_defaults(cls)
    return {
        k: v
        for k, v in model.to_fields(entity).items()
        if k in cls.crdt_arrays or k in cls.crdt_texts or k not in defaults or defaults[k] != v
    }


def bench_bulk_import(root: Path, n: int = 5_000) -> None:
    batch = talents(n, random.Random(1))
    # Count the field writes that happen, not every field of the Struct: put() skips
    # fields left at their defaults, and the raw baseline writes the same fields.
    rows = [stored_fields(t) for t in batch]
    writes = sum(len(row) for row in rows)
    with Workspace.open(root / "bulk") as ws:
        doc = ws.create_production("Bulk bench").doc
        start = time.perf_counter()
        doc.put_many(batch)
        api = time.perf_counter() - start
    ydoc = Doc()
    cmap = ydoc.get("talents", type=Map)
    start = time.perf_counter()
    with ydoc.transaction():
        for row in rows:
            prelim = {k: (Text(v) if k == "notes" else v) for k, v in row.items()}
            cmap[row["id"]] = Map(prelim)
    update = ydoc.get_update()
    raw = time.perf_counter() - start
    assert update
    rate, raw_rate = writes / api, writes / raw
    _line(
        "bulk import (field writes/s)",
        f"{rate:,.0f}/s",
        f"{raw_rate:,.0f}/s",
        raw_rate / rate,
        ">= 20,000/s",
        rate >= 20_000,
    )
    print(
        f"  ({n:,} talents, {writes / n:.1f} stored fields each of"
        f" {len(model.Talent.__struct_fields__)}: {n / api:,.0f} entities/s through the API"
        f" incl. validation and the durable commit, {n / raw:,.0f}/s raw in memory)",
        flush=True,
    )


# -- 3. open a big production after compaction --------------------------------------------


def build_big(path: Path) -> str:
    """5,000 talents, 300 roles, 1,500 scenes, then 100,000 field edits, then compaction."""
    rng = random.Random(7)
    with Workspace.open(path) as ws:
        production = ws.create_production("Big production", kind="series")
        doc = production.doc
        doc.put_many(talents(TALENTS, rng))
        doc.put_many(roles(ROLES))
        doc.put_many(scenes(SCENES))
        done = 0
        while done < EDITS:
            with doc.transaction():  # 50 edits per durable update: 2,000 log entries
                for _ in range(50):
                    i = rng.randrange(TALENTS)
                    if done % 5 == 0:
                        doc.update(model.Scene, f"S{i % SCENES:05d}", {"location": f"Loc {done}"})
                    else:
                        doc.update(model.Talent, f"T{i:06d}", {"rate": 50_000 + done})
                    done += 1
        production.compact()
        assert production.id is not None
        return production.id


_OPEN_CHILD = r"""
import json, sys, time
start = time.perf_counter()
from castroom.core.workspace import Workspace
from castroom.core import model
imported = time.perf_counter()
ws = Workspace.open(sys.argv[1], create=False)
production = ws.production()
title = production.doc.production.title
opened = time.perf_counter()
count = len(production.doc.all(model.Talent))
listed = time.perf_counter()
rss = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM")) / 1024
print(json.dumps({"open": opened - imported, "all_talents": listed - opened, "count": count,
                  "peak_mb": rss, "import": imported - start, "usable": listed - start}))
"""

_RAW_CHILD = r"""
import json, sqlite3, sys, time
start = time.perf_counter()
from pycrdt import Doc, Map
imported = time.perf_counter()
db = sqlite3.connect(sys.argv[1])
blobs = [r[0] for r in db.execute("SELECT data FROM snapshots")]
blobs += [r[0] for r in db.execute("SELECT data FROM update_data ORDER BY seq")]
doc = Doc()
for blob in blobs:
    doc.apply_update(blob)
doc.get("production", type=Map)
opened = time.perf_counter()
count = len(json.loads(str(doc.get("talents", type=Map))))
listed = time.perf_counter()
rss = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM")) / 1024
print(json.dumps({"open": opened - imported, "peak_mb": rss, "usable": listed - start}))
"""


def _child(code: str, arg: str) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-c", code, arg], check=True, capture_output=True, text=True, timeout=300
    )
    return json.loads(out.stdout)


def bench_open(root: Path) -> None:
    path = root / "big"
    start = time.perf_counter()
    build_big(path)
    built = time.perf_counter() - start
    print(
        f"  (built {TALENTS:,} talents, {ROLES} roles, {SCENES:,} scenes, {EDITS:,} edits and"
        f" compacted in {built:.1f} s; database {os.path.getsize(path / 'castroom.db') / 1e6:.1f}"
        " MB)",
        flush=True,
    )
    best: dict[str, float] | None = None
    raw_best: dict[str, float] | None = None
    for _ in range(3):  # best of three: a shared machine is noisy
        run = _child(_OPEN_CHILD, str(path))
        raw = _child(_RAW_CHILD, str(path / "castroom.db"))
        best = run if best is None or run["open"] < best["open"] else best
        raw_best = raw if raw_best is None or raw["open"] < raw_best["open"] else raw_best
    assert best is not None and raw_best is not None
    _line(
        "open big production",
        f"{best['open']:.3f} s",
        f"{raw_best['open']:.3f} s",
        best["open"] / raw_best["open"],
        "<= 0.5 s",
        best["open"] <= 0.5,
    )
    _line(
        "  peak memory (RSS)",
        f"{best['peak_mb']:.0f} MB",
        f"{raw_best['peak_mb']:.0f} MB",
        best["peak_mb"] / raw_best["peak_mb"],
        "<= 300 MB",
        best["peak_mb"] <= 300,
    )
    print(
        f"  then list all {int(best['count']):,} talents (validated): {best['all_talents']:.3f} s",
        flush=True,
    )
    # What a user waits for in a fresh process, beside "open" (the store read and merge
    # only): interpreter already up, then imports + open + that first query.
    _line(
        "time to usable (import+open+query)",
        f"{best['usable']:.3f} s",
        f"{raw_best['usable']:.3f} s",
        best["usable"] / raw_best["usable"],
        "",
        None,
    )
    print(
        f"  (open = read snapshot+log and merge, after imports: {best['open']:.3f} s;"
        f" imports alone {best['import']:.3f} s; raw query = decode the talents map as JSON)",
        flush=True,
    )


# -- 4. in-memory edit overhead ------------------------------------------------------------


def bench_overhead(rounds: int = 15, per_round: int = 400) -> None:
    """Typed ``update()`` on a CastDocument vs the same field write on raw pycrdt (one
    transaction per edit, the update captured as storage/sync need it). Rounds alternate
    between the two and the medians are compared, so a busy machine skews both alike."""
    doc = CastDocument.create("Overhead bench")
    batch = talents(100, random.Random(3))
    ids = [t.id for t in batch]
    doc.put_many(batch)
    captured: list[bytes] = []
    doc.on_commit = lambda update, changes: captured.append(update)
    ydoc = Doc()
    cmap = ydoc.get("talents", type=Map)
    with ydoc.transaction():
        for t in ids:
            cmap[t] = Map({"name": t, "rate": 1})
    updates: list[bytes] = []
    ydoc.observe(lambda event: updates.append(event.update))
    api_times, raw_times = [], []
    value = 1_000
    for _ in range(rounds):
        start = time.perf_counter()
        for i in range(per_round):
            value += 1
            doc.update(model.Talent, ids[i % 100], {"rate": value})
        api_times.append((time.perf_counter() - start) / per_round)
        start = time.perf_counter()
        for i in range(per_round):
            value += 1
            with ydoc.transaction():
                cmap[ids[i % 100]]["rate"] = value
        raw_times.append((time.perf_counter() - start) / per_round)
        captured.clear()
        updates.clear()
    api, raw = statistics.median(api_times), statistics.median(raw_times)
    _line(
        "in-memory edit",
        f"{api * 1e6:.1f} us",
        f"{raw * 1e6:.1f} us",
        api / raw,
        "<= 2x",
        api / raw <= 2,
    )


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="castroom-bench-") as tmp:
        root = Path(tmp)
        bench_durable_edit(root)
        bench_bulk_import(root)
        bench_overhead()
        bench_open(root)


if __name__ == "__main__":
    main()
