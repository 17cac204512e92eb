"""A long-running server compacts its productions in the background.

Every ``compact_every`` seconds the server looks at each open production; one whose log
after the snapshot outgrew the snapshot (and ``compact_floor`` bytes) is compacted by a
worker process on its own connection to the workspace's database
(:func:`castroom.core.storage.compact_file`), at a lower CPU priority than the server.
Not in the server's process: the fold holds the GIL for as long as it runs (pycrdt), so a
thread would stall every peer; and the fold runs outside SQLite's write lock, so peers'
writes wait only for the swap of the snapshot, then for at most one slice of deleting what
it made dead and giving pages back (Store.compact). The server's documents need nothing
from it: the snapshot holds what they hold.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
from collections.abc import AsyncIterator, Coroutine
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from castroom.core.storage import compact_file
from castroom.core.workspace import Workspace

log = logging.getLogger("castroom.sync.compaction")


def _behind_the_server() -> None:
    """In the worker: yield the CPU to the server (and its peers) when both want it."""
    with contextlib.suppress(OSError):
        os.nice(10)


async def compact_in_background(workspace: Workspace, every: float, floor: int) -> None:
    """Run until cancelled: compact each open production that needs it, in turn."""
    loop = asyncio.get_running_loop()
    # spawn, not fork: the server's process has threads (and an event loop) to not copy.
    worker = ProcessPoolExecutor(
        1, mp_context=multiprocessing.get_context("spawn"), initializer=_behind_the_server
    )
    try:
        while True:
            await asyncio.sleep(every)
            for production in workspace.opened():
                try:
                    # Whether it needs compacting is asked in the worker too: it sums the
                    # log (80 ms and more of a server's loop at 20,000 updates).
                    folded, size, pid = await loop.run_in_executor(
                        worker, compact_file, str(workspace.store.path), production.id, floor
                    )
                except Exception:  # e.g. the database busy: try again next round
                    log.exception("compacting production %s failed", production.id)
                    continue
                if not folded:
                    continue
                log.info(
                    "compacted production %s: %d updates into a snapshot of %d bytes"
                    " (worker process %d)",
                    production.id,
                    folded,
                    size,
                    pid,
                )
    finally:
        # Not waiting: a compaction under way commits whole or not at all.
        worker.shutdown(wait=False, cancel_futures=True)


@contextlib.asynccontextmanager
async def background_compaction(
    workspace: Workspace, every: float, floor: int
) -> AsyncIterator[None]:
    """Compact in the background while the block runs (``every`` <= 0: never)."""
    if every <= 0:
        yield
        return
    async with running(compact_in_background(workspace, every, floor)):
        yield


@contextlib.asynccontextmanager
async def running(work: Coroutine[Any, Any, None]) -> AsyncIterator[None]:
    """``work`` as a task while the block runs; cancelled (and awaited) after it."""
    task = asyncio.create_task(work)
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
