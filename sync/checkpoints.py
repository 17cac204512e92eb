"""A server's write-ahead log goes back into its database file in a thread of its own.

SQLite copies the log back (a checkpoint) in whichever commit takes it past 1,000 pages,
and fsyncs the log and the database file as it does: on a server, that commit runs on
the event loop, and with other processes writing to the same disk an fsync can take
seconds, with every live peer waiting. So the server's connection never checkpoints
(:meth:`Store.defer_checkpoints`) and every ``every`` seconds in which the server wrote,
a :class:`Checkpointer` does, passively, in one worker thread (SQLite lets go of the GIL
while it works). A commit stays as durable as before: with ``synchronous=NORMAL`` it is
in the log when acknowledged, and survives any crash of the process; with ``FULL`` the
log is fsynced at each commit, on the loop, as that setting asks.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor

from castroom.core.storage import Checkpointer, Store

from .compaction import running

log = logging.getLogger("castroom.sync.checkpoints")


async def checkpoint_in_background(store: Store, every: float) -> None:
    """Run until cancelled: checkpoint after every ``every`` seconds in which ``store``
    wrote (one thread; a checkpoint under way finishes before its connection closes)."""
    loop = asyncio.get_running_loop()
    checkpointer = Checkpointer(store.path)
    thread = ThreadPoolExecutor(1, thread_name_prefix="castroom-checkpoint")
    written = store.rows_written()
    try:
        while True:
            await asyncio.sleep(every)
            now = store.rows_written()
            if now == written:
                continue
            written = now
            try:
                await loop.run_in_executor(thread, checkpointer.run)
            except Exception:  # a busy or full disk: the next round tries again
                log.exception("checkpointing %s failed", store.path)
    finally:
        thread.submit(checkpointer.close)
        thread.shutdown(wait=False)


@contextlib.asynccontextmanager
async def background_checkpoints(store: Store, every: float) -> AsyncIterator[None]:
    """Checkpoint off the loop while the block runs (``every`` <= 0: SQLite's own, in
    the commits)."""
    if every <= 0:
        yield
        return
    store.defer_checkpoints()
    async with running(checkpoint_in_background(store, every)):
        yield
