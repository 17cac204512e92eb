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


@contextmanager
def paused() -> Iterator[None]:
    """No cyclic collection inside (nests; the collector runs again after the outermost)."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()
