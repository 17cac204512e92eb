"""A long-running server keeps its productions' read copies fresh.

Every update a server merges (a peer's edit, a dashboard action) moves its production's
log past the stored read copy (castroom.core.read_copy), and the next ``castroom check``
on that workspace would load the CRDT (issue 14: 2.9 s at 50,000 talents, against 0.7 s
from a copy). The server knows what each of its rows changed, so once a production has
been quiet for ``quiet`` seconds it patches the copy with the entities changed
(:meth:`StoredProduction.patch_read_copy`: a few buckets of the copy, about 15 ms at
50,000 talents; the first patch of a copy made whole splits it, once). Only when every
row logged after the copy's position is the server's own: a row another process wrote
meanwhile leaves the copy stale, never wrong. Nothing is patched while a large update
merges off the loop or a worker thread writes, nor mid-burst: a busy room's peers never
wait for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable

from castroom.core.workspace import Workspace

from .compaction import running

log = logging.getLogger("castroom.sync.read_copies")


async def patch_in_background(
    workspace: Workspace, quiet: float, busy: Callable[[str], bool]
) -> None:
    """Run until cancelled: patch the read copy of each open production whose last row
    of ours is ``quiet`` seconds old, unless ``busy(production id)``. A patch refused
    (another process wrote) is tried again only once more rows or commits came in."""
    tried: dict[str, tuple[float, int]] = {}
    while True:
        await asyncio.sleep(quiet / 2)
        now = time.monotonic()
        for production in workspace.opened():
            assert production.id is not None
            if not production.copy_behind or now - production.own_at < quiet:
                continue
            if busy(production.id):
                continue
            state = (production.own_at, workspace.store.data_version())
            if tried.get(production.id) == state:
                continue
            try:
                patched = production.patch_read_copy()
            except Exception:  # a plugin or the disk: the next quiet moment tries again
                log.exception("patching the read copy of production %s failed", production.id)
                tried[production.id] = state
                continue
            if not patched:
                tried[production.id] = state
                log.debug("read copy of production %s not patched", production.id)


@contextlib.asynccontextmanager
async def fresh_read_copies(
    workspace: Workspace, quiet: float, busy: Callable[[str], bool]
) -> AsyncIterator[None]:
    """Patch read copies in the background while the block runs (``quiet`` <= 0: only
    when the server stops, as any process does on closing its workspace)."""
    if quiet <= 0:
        yield
        return
    async with running(patch_in_background(workspace, quiet, busy)):
        yield
