"""Pausing Python's cyclic garbage collector around work that makes millions of objects.

Decoding and judging a 50,000-talent production makes millions of objects, none of them
in a reference cycle, and every full collection walks all of them: at that size a third
of ``castroom check`` was the collector (issue 14). Inside :func:`paused` it does not run;
objects are still freed as usual when nothing refers to them. For bounded work only
(one decode, one command's judgement), never around a server's or a watcher's loop.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

#: Set by :func:`ends_with_command`: this process ends when its command does.
_ending = False


def ends_with_command() -> None:
    """Say that this process ends when its command does (the console script): what a
    command paused with ``command=True`` made is then never walked again (see
    :func:`paused`)."""
    global _ending
    _ending = True


@contextmanager
def paused(*, command: bool = False) -> Iterator[None]:
    """No cyclic collection inside (nests; the collector runs again after the outermost).

    ``command``: around a bounded command's whole run. The first collection after a
    pause walks every object the pause let live (0.3 s after a 50,000-talent check), so
    in a process that ends with its command those are frozen instead (``gc.freeze``:
    still freed when unreferenced, never walked again)."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            if command and _ending:
                gc.freeze()
            gc.enable()


#: Container allocations between two collections of the youngest generation in a
#: long-running server (Python's default: 700).
SERVER_THRESHOLD = 10_000


def settle_server() -> None:
    """For a long-running server, once it has started: what start-up made (imports, the
    workspace, plugins) is frozen, so no full collection walks it again, and the youngest
    generation is collected every SERVER_THRESHOLD allocations instead of 700: most of a
    live edit's objects are freed by reference counting before the collector would look,
    and fewer survive into the older generations. Cycles are still collected."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(SERVER_THRESHOLD, *gc.get_threshold()[1:])
