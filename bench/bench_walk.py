"""The bounded walk every update gets before Yrs (castroom.core.yupdate.walk_update).

Printed with baselines measured in the same run, as ratios:

- the full state of the benchmark production (bench_core: 5,000 talents, 300 roles,
  1,500 scenes; one update, as a first sync or a bundle sends it): the walk in <= 1.5x
  castroom's own merge of the same bytes into an empty document (so a big intake costs
  at most 2.5x what it did without the walk); raw pycrdt's merge (Yrs into a bare Doc) is
  printed too: the walk is Python, several times slower than Yrs;
- a refusal costs less than reading the bytes: the issue's 1M-entry update (22 MB), sent
  by a peer as an incremental update, is refused from its header, in <= 1 ms.

``main()`` exits with status 1 when a target is missed.
"""

from __future__ import annotations

import random
import sys

from pycrdt import Doc

from castroom.core import crdt, model
from castroom.core.document import CastDocument
from castroom.core.errors import UpdateLimit
from castroom.core.yupdate import MAX_INCREMENTAL_STRUCTS, walk_update
from castroom.sync.protocol import write_var_uint

from .bench_core import ROLES, SCENES, TALENTS, roles, scenes, talents
from .bench_script import best


def _line(label: str, value: str, baseline: str, ratio: float, target: str, ok: bool) -> None:
    mark = "ok" if ok else "MISSED"
    print(
        f"  {label:<34} {value:>10}   {baseline:>32}   ratio {ratio:6.2f}x"
        f"   target {target} [{mark}]",
        flush=True,
    )


def _production() -> bytes:
    doc = CastDocument.create("Walk bench", production_id="P")
    rng = random.Random(7)
    doc.put_many(talents(TALENTS, rng))
    doc.put_many(roles(ROLES))
    doc.put_many(scenes(SCENES))
    assert doc.ids(model.Talent)
    return doc.encode_update()


def _many_entries(count: int) -> bytes:
    """count talents in one update (the issue's 1M-entry attack), 22 bytes each."""
    out = bytearray(b"\x01")
    out += write_var_uint(count) + b"\x01\x00"
    for i in range(count):
        key = f"T{i:07d}".encode()
        out += b"\x28\x01\x07talents" + bytes([len(key)]) + key + b"\x01\x77\x01x"
    return bytes(out + b"\x00")


def _merge_without_walk(update: bytes) -> None:
    """castroom's merge of ``update`` into an empty document as it was before the walk."""
    guard = crdt.guard_update
    crdt.guard_update = lambda _update, **_limits: None  # type: ignore[assignment,return-value]
    try:
        CastDocument().apply_update(update)
    finally:
        crdt.guard_update = guard


def main() -> None:
    update = _production()
    walk = best(lambda: walk_update(update))
    merge = best(lambda: _merge_without_walk(update))
    raw = best(lambda: Doc().apply_update(update))
    ok_full = walk <= 1.5 * merge
    _line(
        f"walk, full state ({len(update) / 1e6:.1f} MB)",
        f"{walk * 1000:.0f} ms",
        f"castroom merge {merge * 1000:.0f} ms",
        walk / merge,
        "<= 1.5x",
        ok_full,
    )
    _line(
        "  (the same walk)",
        f"{walk * 1000:.0f} ms",
        f"raw pycrdt merge {raw * 1000:.0f} ms",
        walk / raw,
        "none",
        True,
    )
    hostile = _many_entries(1_000_000)

    def refuse() -> None:
        try:
            walk_update(hostile, max_structs=MAX_INCREMENTAL_STRUCTS)  # a peer's update
        except UpdateLimit:
            return
        raise AssertionError("the 1M-entry update was not refused")

    refusal = best(refuse)
    raw_big = best(lambda: Doc().apply_update(hostile), runs=1)
    ok_refusal = refusal <= 0.001
    _line(
        f"refusal, 1M entries ({len(hostile) / 1e6:.0f} MB)",
        f"{refusal * 1000:.2f} ms",
        f"raw pycrdt merge {raw_big * 1000:.0f} ms",
        refusal / raw_big,
        "<= 1 ms",
        ok_refusal,
    )
    if not (ok_full and ok_refusal):
        sys.exit(1)


if __name__ == "__main__":
    main()
