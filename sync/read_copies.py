"""A long-running server (or live sync) keeps its productions' read copies fresh.

Every update a server merges (a peer's edit, a dashboard action) moves its production's
log past the stored read copy (castroom.core.read_copy), and the next ``castroom check``
on that workspace would load the CRDT (issue 14: 2.9 s at 50,000 talents, against 0.7 s
from a copy). The server knows what each of its rows changed, so once a production has
been quiet for ``quiet`` seconds it patches the copy with the entities changed
(:meth:`StoredProduction.patch_read_copy`: a few buckets of the copy, about 15 ms at
50,000 talents; the first patch of a copy made whole splits it, once). Only when every
row logged after the copy's position is the server's own, another process's own write
(a command's, the dashboard worker's: folded in from the log) or a peer's update whose
row is exact (Store.exact_rows): one merged while another process logged a row leaves
the copy stale, never wrong. Nothing is patched while a large update
merges off the loop or a worker thread writes, nor mid-burst: a busy room's peers never
wait for it. A live ``castroom sync`` (a server, a Hocuspocus server, a shared folder)
patches the same way, after each quiet second.

The first patch of a copy a read made (each collection whole) splits the collections it
changes into buckets first: at 50,000 talents that held the server's event loop 722 ms.
So a process with an event loop (a server, a live sync with a server) has a worker
process (a fresh interpreter, niced 10: :func:`split_apart`) split the whole copy in
place before it patches, and serves its peers meanwhile; a folder sync, with no loop,
splits as it patches.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from castroom.core.workspace import DB_NAME, Workspace

log = logging.getLogger("castroom.sync.read_copies")


#: Seconds a production stays quiet before a live process patches its read copy.
QUIET = 1.0
#: How much lower a worker process that splits a read copy runs than its server.
SPLIT_NICENESS = 10
#: The worker's exit status when it split nothing (the copy gone or changed meanwhile).
NOTHING_SPLIT = 3


class Patcher:
    """Patches the read copy of each production open in ``workspace`` whose last row
    (ours, or another process's we merged) is ``quiet`` seconds old, unless
    ``busy(production id)``, at each :meth:`round`. A patch refused (a peer's update
    merged while another process logged a row) is tried again only once more rows or
    commits came in."""

    def __init__(
        self, workspace: Workspace, quiet: float = QUIET, busy: Callable[[str], bool] | None = None
    ) -> None:
        self.workspace = workspace
        self.quiet = quiet
        self.busy = busy or (lambda _: False)
        self._tried: dict[str, tuple[float, int]] = {}

    def round(self, *, split_apart: bool = False) -> list[str]:
        """Patch what is due. ``split_apart``: a production whose copy must be split
        first is not patched: its id is returned, for :func:`split_apart` (then the
        next round patches it)."""
        now = time.monotonic()
        to_split = []
        for production in self.workspace.opened():
            assert production.id is not None
            if not production.copy_behind or now - production.own_at < self.quiet:
                continue
            if self.busy(production.id):
                continue
            state = (production.own_at, self.workspace.store.data_version())
            if self._tried.get(production.id) == state:
                continue
            try:
                if split_apart and production.copy_to_split():
                    to_split.append(production.id)
                elif not production.patch_read_copy():
                    self._tried[production.id] = state
                    log.debug("read copy of production %s not patched", production.id)
            except Exception:  # the disk, say: the next quiet moment tries again
                log.exception("patching the read copy of production %s failed", production.id)
        return to_split


async def patch_in_background(
    workspace: Workspace, quiet: float = QUIET, busy: Callable[[str], bool] | None = None
) -> None:
    """Run until cancelled: a :class:`Patcher`'s round twice every ``quiet`` seconds (a
    live ``castroom sync``, and the server, each on its event loop)."""
    patcher = Patcher(workspace, quiet, busy)
    failed: dict[str, int] = {}  # a split that failed: not tried again before a commit
    while True:
        await asyncio.sleep(quiet / 2)
        for production_id in patcher.round(split_apart=True):
            version = workspace.store.data_version()
            if failed.get(production_id) != version and not await split_apart(
                workspace.path, production_id
            ):
                failed[production_id] = version


async def split_apart(workspace: Path, production_id: str) -> bool:
    """Have a worker process split the production's stored read copy
    (castroom.core.read_copy.split_stored), niced: this process's loop keeps turning.
    Returns whether it split it."""
    worker = await asyncio.create_subprocess_exec(
        sys.executable, "-m", __name__, str(workspace / DB_NAME), production_id,
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        _, err = await worker.communicate()
    except BaseException:  # cancelled (the server stops): the worker stops too
        with contextlib.suppress(ProcessLookupError):
            worker.kill()
        await worker.wait()
        raise
    if worker.returncode == NOTHING_SPLIT:
        log.debug("the read copy of production %s was not split", production_id)
        return False
    if worker.returncode != 0:
        said = err.decode(errors="replace").strip().splitlines()
        log.warning(
            "splitting the read copy of production %s failed: %s",
            production_id, said[-1] if said else f"exit {worker.returncode}",
        )  # fmt: skip
        return False
    return True


def main(argv: list[str]) -> None:
    """The worker of :func:`split_apart`: ``DATABASE PRODUCTION``."""
    from castroom.core import read_copy
    from castroom.core.storage import Store

    os.nice(SPLIT_NICENESS)
    database, production_id = argv
    store = Store(Path(database))
    try:
        split = read_copy.split_stored(store, production_id)
    finally:
        store.close()
    if not split:  # replaced meanwhile, or unreadable: the next read keeps a new copy
        sys.exit(NOTHING_SPLIT)


@contextlib.asynccontextmanager
async def fresh_read_copies(
    workspace: Workspace, quiet: float = QUIET, busy: Callable[[str], bool] | None = None
) -> AsyncIterator[None]:
    """Patch read copies in the background while the block runs (``quiet`` <= 0: only
    when the server stops, as any process does on closing its workspace)."""
    if quiet <= 0:
        yield
        return
    from .compaction import running  # not for a folder sync's Patcher

    async with running(patch_in_background(workspace, quiet, busy)):
        yield


if __name__ == "__main__":
    main(sys.argv[1:])
