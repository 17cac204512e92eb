"""The server's merge-and-store path, per live update, replayed without sockets.

What ``castroom serve`` spends on each peer update besides the WebSocket: the walk, Yrs,
change tracking, the log row (``sync.protocol.merge_into`` inside ``Workspace.batch``,
as ``SyncServer.flush`` runs a turn). P productions (default 50) x K peers (4) each make
EDITS edits (20), alternating a talent's ``agent`` and an append to its ``notes`` (a
Y.Text), as bench_live's load generators do; the updates are made first, then merged
TURN (8) to a transaction, round-robin over the peers, and the CPU time of that part is
divided by the updates. Baseline, in the same run: the same updates applied to bare
pycrdt documents (Yrs alone, nothing stored). Printed: CPU per update, best of
BENCH_MERGE_REPS (3), and the ratio.

BENCH_MERGE_BEFORE, ``LABEL=PYTHON,...``: other checkouts' venv Python, each running this
same file in turn with this one (interleaved), so their figures are of the same run.
"""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

P = int(os.environ.get("BENCH_MERGE_P", "50"))
K = int(os.environ.get("BENCH_MERGE_K", "4"))
EDITS = int(os.environ.get("BENCH_MERGE_EDITS", "20"))
TURN = int(os.environ.get("BENCH_MERGE_TURN", "8"))
REPS = int(os.environ.get("BENCH_MERGE_REPS", "3"))
BEFORE = os.environ.get("BENCH_MERGE_BEFORE", "")


def _updates(prods: list[Any]) -> list[tuple[Any, str, bytes]]:
    """Every peer's updates, round-robin: (production, device, update)."""
    import pycrdt

    peers = []
    for prod in prods:
        state = prod.doc.encode_update()
        for k in range(K):
            doc = pycrdt.Doc()
            doc.apply_update(state)
            peers.append((prod, doc, f"dev-{str(prod.id)[-4:]}-{k}"))

    def made(doc: Any, edit: Any) -> bytes:
        # The transaction's own update, as a Yjs peer sends it (its deletions only): a
        # diff against the state before (get_update) carries every deletion the document
        # ever had, a delete set that grows with each overwritten field.
        sent: list[bytes] = []
        subscription = doc.observe(lambda event: sent.append(event.update))
        edit()
        doc.unobserve(subscription)
        return bytes(sent[-1])

    out = []
    for prod, doc, device in peers:
        talents = doc.get("talents", type=pycrdt.Map)

        def create(talents: Any = talents, device: str = device) -> None:
            talents[device] = pycrdt.Map({"agent": "", "notes": pycrdt.Text("")})

        out.append((prod, device, made(doc, create)))
    for seq in range(EDITS):
        for prod, doc, device in peers:
            fields = doc.get("talents", type=pycrdt.Map)[device]
            if seq % 2:

                def edit(fields: Any = fields, tag: str = f"|{device}:{seq}") -> None:
                    notes = fields["notes"]
                    notes.insert(len(notes), tag)
            else:

                def edit(fields: Any = fields, tag: str = f"{device}:{seq}") -> None:
                    fields["agent"] = tag

            out.append((prod, device, made(doc, edit)))
    return out


def _once(folder: Path) -> tuple[float, float]:
    """(castroom, bare pycrdt) CPU microseconds per update."""
    import pycrdt

    from castroom.core.workspace import Workspace
    from castroom.sync.protocol import merge_into

    path = folder / "workspace"
    with Workspace.open(path, member="bench") as ws:
        ids = [str(ws.create_production(f"Load {i}").id) for i in range(P)]
    with Workspace.open(path) as ws:
        prods = [ws.production(i) for i in ids]
        starts = {str(p.id): p.doc.encode_update() for p in prods}
        updates = _updates(prods)
        gc.collect()
        started = time.process_time()
        for first in range(0, len(updates), TURN):
            with ws.batch():
                for prod, device, update in updates[first : first + TURN]:
                    merge_into(prod, update, device=device)
        ours = time.process_time() - started
    bare = {}
    for pid, state in starts.items():
        bare[pid] = pycrdt.Doc()
        bare[pid].apply_update(state)
    started = time.process_time()
    for prod, _, update in updates:
        bare[str(prod.id)].apply_update(update)
    raw = time.process_time() - started
    return ours / len(updates) * 1e6, raw / len(updates) * 1e6


def measure() -> tuple[float, float]:
    """Best of REPS, each in a fresh workspace."""
    runs = []
    for _ in range(REPS):
        with tempfile.TemporaryDirectory(prefix="castroom-bench-merge-") as tmp:
            runs.append(_once(Path(tmp)))
    return min(r[0] for r in runs), min(r[1] for r in runs)


def _elsewhere(python: str) -> tuple[float, float]:
    done = subprocess.run(
        [python, str(Path(__file__).resolve()), "--json"],
        capture_output=True,
        text=True,
        check=True,
        cwd=tempfile.gettempdir(),  # its own castroom, not this checkout's
    )
    ours, raw = json.loads(done.stdout.strip().splitlines()[-1])
    return ours, raw


def main() -> None:
    befores = []
    for item in filter(None, (i.strip() for i in BEFORE.split(","))):
        label, _, python = item.rpartition("=")
        befores.append((label or "before", python))
    figures: dict[str, list[tuple[float, float]]] = {"castroom": []}
    for label, _ in befores:
        figures[label] = []
    for _ in range(2 if befores else 1):  # interleaved
        figures["castroom"].append(measure())
        for label, python in befores:
            figures[label].append(_elsewhere(python))
    print(
        f"  {P} productions x {K} peers, {EDITS} edits each, {TURN} updates a transaction"
        f" (load average after: {', '.join(f'{x:.2f}' for x in os.getloadavg())})",
        flush=True,
    )
    mine = min(f[0] for f in figures["castroom"])
    for label, runs in figures.items():
        ours, raw = min(r[0] for r in runs), min(r[1] for r in runs)
        print(
            f"    {label:<10} {ours:6.0f} us CPU per update; bare pycrdt {raw:5.1f} us"
            f" ({ours / raw:.0f}x)"
            + ("" if label == "castroom" else f"; castroom / {label}: {mine / ours:.2f}x"),
            flush=True,
        )


if __name__ == "__main__":
    if sys.argv[1:] == ["--json"]:
        print(json.dumps(measure()))
    else:
        main()
