"""How long the server's event loop goes without turning, and why.

Every live peer waits while the loop is held, so one long callback shows up as every
peer's worst latency. :class:`LoopWatch` ticks on the loop every ``tick`` seconds; a
tick that comes more than ``threshold`` late is a stall, recorded with the loop thread's
own CPU time during it (work on the loop: a bug to fix), the time it spent waiting for a
CPU (Linux ``schedstat``: a machine too busy for the server) and, for the rest, blocked
(a system call such as an fsync, or the GIL held by another thread). While a tick is
overdue, a sampler thread notes where the loop thread is; the most frequent place is the
stall's ``where``. Native code that keeps the GIL (Yrs) delays the sample until it lets
go, so ``where`` is then the first Python line after it.

It must cost the server next to nothing. ``castroom serve`` beats it from the poll task
it runs anyway (:meth:`LoopWatch.beat`, every ``poll_interval``), so the watch adds no
wake-up of the loop; a beat reads the clocks in one ``pread`` of a ``schedstat`` kept
open; and the sampler thread sleeps until a beat is overdue by half the threshold
instead of waking 40 times a second to look (each look takes the GIL from a busy loop).
Its own 20 ms timer and the eager sampler cost an idle server 15 ms of CPU a second.

``castroom serve`` answers the latest stalls at ``GET /stats`` and logs a warning for
any stall over ``warn_after`` seconds; bench_live prints the worst one of each run.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import os
import sys
import threading
import time
from collections.abc import AsyncIterator
from types import FrameType

import msgspec

from .logsafe import printable_logger

log = printable_logger("castroom.sync.loop_watch")

#: Innermost frames named in a stall's ``where``.
WHERE_FRAMES = 4


class Stall(msgspec.Struct, kw_only=True, frozen=True):
    """One stretch of time the loop did not turn."""

    #: Epoch seconds when it began (the tick that should have come then).
    at: float
    #: How long it lasted, and how much of it the loop thread ran, waited for a CPU,
    #: or was blocked (the rest), in milliseconds.
    wall_ms: float
    cpu_ms: float
    waiting_ms: float
    where: str

    @property
    def blocked_ms(self) -> float:
        return max(0.0, self.wall_ms - self.cpu_ms - self.waiting_ms)

    def describe(self) -> str:
        where = f" in {self.where}" if self.where else ""
        return (
            f"{self.wall_ms:.0f} ms (on the loop's CPU {self.cpu_ms:.0f} ms, waiting for a"
            f" CPU {self.waiting_ms:.0f} ms, blocked {self.blocked_ms:.0f} ms){where}"
        )


class LoopReport(msgspec.Struct, kw_only=True, frozen=True):
    """What ``GET /stats`` says of the loop: the longest stall since the server started,
    and the latest ones, oldest first."""

    ticks: int
    longest: Stall | None
    stalls: list[Stall]


class _Clocks:
    """The calling thread's CPU time and time spent waiting for a CPU, in seconds
    (``/proc/thread-self/schedstat``: both, in one ``pread`` of a file kept open; where
    there is none, the CPU time alone and no waiting)."""

    def __init__(self) -> None:
        try:
            self._fd: int | None = os.open("/proc/thread-self/schedstat", os.O_RDONLY)
        except OSError:
            self._fd = None

    def read(self) -> tuple[float, float]:
        if self._fd is not None:
            try:
                ran, waited = os.pread(self._fd, 128, 0).split()[:2]
                return int(ran) / 1e9, int(waited) / 1e9
            except (OSError, ValueError):
                pass
        return time.thread_time(), 0.0

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _where(frame: FrameType | None) -> str:
    """The innermost frames, innermost first: ``file.py:LINE function <- ...`` (read off
    the frames: no source file is opened, nothing beyond them walked)."""
    named: list[str] = []
    while frame is not None and len(named) < WHERE_FRAMES:
        code = frame.f_code
        named.append(f"{code.co_filename.rsplit('/', 1)[-1]}:{frame.f_lineno} {code.co_name}")
        frame = frame.f_back
    return " <- ".join(named)


class LoopWatch:
    """Ticks on the running loop (:meth:`watching`), keeping the latest ``keep`` stalls."""

    def __init__(
        self,
        *,
        tick: float = 0.02,
        threshold: float = 0.1,
        warn_after: float = 0.5,
        keep: int = 64,
    ) -> None:
        self.tick = tick
        self.threshold = threshold
        self.warn_after = warn_after
        self.stalls: collections.deque[Stall] = collections.deque(maxlen=keep)
        self.longest: Stall | None = None
        self.ticks = 0
        #: How often the sampler thread has woken (each wake takes the GIL).
        self.looks = 0
        self._due = 0.0  # monotonic time the next tick is due
        self._thread_id: int | None = None
        self._samples: collections.Counter[str] = collections.Counter()
        self._stop = threading.Event()
        #: The loop thread's (CPU, waiting) clocks at the last tick that read them.
        self._last = (0.0, 0.0)
        self._handle: asyncio.TimerHandle | None = None
        self._clocks: _Clocks | None = None

    def report(self) -> LoopReport:
        return LoopReport(ticks=self.ticks, longest=self.longest, stalls=list(self.stalls))

    @contextlib.asynccontextmanager
    async def watching(
        self, *, enabled: bool = True, ticking: bool = True
    ) -> AsyncIterator[LoopWatch]:
        """Watch while the block runs (not at all unless ``enabled``). ``ticking``: a timer
        of its own calls :meth:`beat` every ``tick`` seconds; else the caller does, from a
        task it runs anyway (the server's poll), so the watch wakes the loop no more
        often than it did (on this machine each wake-up of an idle process costs about
        0.1 ms of CPU)."""
        if not enabled:
            yield self
            return
        loop = asyncio.get_running_loop()
        self._thread_id = threading.get_ident()
        self._stop.clear()
        self._clocks = _Clocks()  # opened on the loop's thread: its own schedstat
        self._last = self._clocks.read()
        self._due = time.monotonic() + self.tick
        handle = loop.call_later(self.tick, self._tick, loop) if ticking else None
        self._handle = handle
        sampler = threading.Thread(target=self._sample, name="castroom-loop-watch", daemon=True)
        sampler.start()
        try:
            yield self
        finally:
            if self._handle is not None:
                self._handle.cancel()
            self._stop.set()
            sampler.join(timeout=1)
            self._clocks.close()
            self._clocks = None

    def _tick(self, loop: asyncio.AbstractEventLoop) -> None:
        self.beat()
        self._handle = loop.call_at(loop.time() + self.tick, self._tick, loop)

    def beat(self) -> None:
        """On the loop, every ``tick`` seconds: a stall if this beat came late."""
        if self._clocks is None:
            return  # not watching
        now = time.monotonic()
        late = now - self._due
        cpu, waiting = self._last
        self._last = self._clocks.read()
        if late > self.threshold:
            self._stalled(late + self.tick, self._last[0] - cpu, self._last[1] - waiting)
        self._samples.clear()
        self.ticks += 1
        self._due = now + self.tick

    def _stalled(self, wall: float, cpu: float, waiting: float) -> None:
        top = self._samples.most_common(1)
        stall = Stall(
            at=time.time() - wall,
            wall_ms=round(wall * 1000, 1),
            cpu_ms=round(cpu * 1000, 1),
            waiting_ms=round(min(waiting, wall) * 1000, 1),
            where=top[0][0] if top else "",
        )
        self.stalls.append(stall)
        if self.longest is None or stall.wall_ms > self.longest.wall_ms:
            self.longest = stall
        if wall > self.warn_after:
            log.warning("the event loop did not turn for %s", stall.describe())

    def _sample(self) -> None:
        """In its own thread: while a beat is overdue, note where the loop thread is.
        Asleep until the beat due is half a threshold late (then every quarter of one):
        waking to look took the GIL from a busy loop 40 times a second."""
        period = max(self.tick, self.threshold / 4)
        wait = self.threshold / 2
        while not self._stop.wait(max(period, self._due + wait - time.monotonic())):
            self.looks += 1
            if time.monotonic() - self._due < wait:
                continue
            frame = sys._current_frames().get(self._thread_id or 0)
            if frame is not None:
                self._samples[_where(frame)] += 1
