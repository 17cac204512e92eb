"""A long-running server (or live sync) keeps its productions' read copies fresh.

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
wait for it. A live ``castroom sync`` (a server, a Hocuspocus server, a shared folder)
patches the same way, after each quiet second.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable

from castroom.core.workspace import StoredProduction, Workspace

log = logging.getLogger("castroom.sync.read_copies")


#: Seconds a production stays quiet before a live process patches its read copy.
QUIET = 1.0


class Patcher:
    """Patches the read copy of each production open in ``workspace`` whose last row of
    ours is ``quiet`` seconds old, unless ``busy(production id)``, at each :meth:`round`.
    A patch refused (another process wrote) is tried again only once more rows or
    commits came in."""

    def __init__(
        self, workspace: Workspace, quiet: float = QUIET, busy: Callable[[str], bool] | None = None
    ) -> None:
        self.workspace = workspace
        self.quiet = quiet
        self.busy = busy or (lambda _: False)
        self._tried: dict[str, tuple[float, int]] = {}

    def round(self) -> None:
        now = time.monotonic()
        for production in self.workspace.opened():
            assert production.id is not None
            if not production.copy_behind or now - production.own_at < self.quiet:
                continue
            if self.busy(production.id):
                continue
            try:
                self._patch(production)
            except Exception:  # the disk, say: the next quiet moment tries again
                log.exception("patching the read copy of production %s failed", production.id)

    def _patch(self, production: StoredProduction) -> None:
        assert production.id is not None
        state = (production.own_at, self.workspace.store.data_version())
        if self._tried.get(production.id) != state and not production.patch_read_copy():
            self._tried[production.id] = state
            log.debug("read copy of production %s not patched", production.id)


async def patch_in_background(
    workspace: Workspace, quiet: float = QUIET, busy: Callable[[str], bool] | None = None
) -> None:
    """Run until cancelled: a :class:`Patcher`'s round twice every ``quiet`` seconds (a
    live ``castroom sync``, and the server, each on its event loop)."""
    patcher = Patcher(workspace, quiet, busy)
    while True:
        await asyncio.sleep(quiet / 2)
        patcher.round()


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
