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

``castroom serve`` answers the latest stalls at ``GET /stats`` and logs a warning for
any stall over ``warn_after`` seconds; bench_live prints the worst one of each run.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
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


def _waiting_clock() -> float:
    """Seconds this thread has spent runnable but not running (0 where unknown)."""
    try:
        with open("/proc/thread-self/schedstat", "rb") as stat:
            return int(stat.read().split()[1]) / 1e9
    except (OSError, ValueError, IndexError):
        return 0.0


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
        self._due = 0.0  # monotonic time the next tick is due
        self._thread_id: int | None = None
        self._samples: collections.Counter[str] = collections.Counter()
        self._stop = threading.Event()

    def report(self) -> LoopReport:
        return LoopReport(ticks=self.ticks, longest=self.longest, stalls=list(self.stalls))

    @contextlib.asynccontextmanager
    async def watching(self) -> AsyncIterator[LoopWatch]:
        """Tick (and sample) while the block runs."""
        self._thread_id = threading.get_ident()
        self._due = time.monotonic() + self.tick
        self._stop.clear()
        sampler = threading.Thread(target=self._sample, name="castroom-loop-watch", daemon=True)
        sampler.start()
        ticking = asyncio.create_task(self._run())
        try:
            yield self
        finally:
            ticking.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ticking
            self._stop.set()
            sampler.join(timeout=1)

    async def _run(self) -> None:
        cpu, waiting = time.thread_time(), _waiting_clock()
        while True:
            await asyncio.sleep(max(0.0, self._due - time.monotonic()))
            now = time.monotonic()
            now_cpu, now_waiting = time.thread_time(), _waiting_clock()
            late = now - self._due
            if late > self.threshold:
                self._stalled(late + self.tick, now_cpu - cpu, now_waiting - waiting)
            self._samples.clear()
            self.ticks += 1
            self._due = now + self.tick
            cpu, waiting = now_cpu, now_waiting

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
        """In its own thread: while a tick is overdue, note where the loop thread is."""
        period = max(self.tick, self.threshold / 4)
        while not self._stop.wait(period):
            if time.monotonic() - self._due < self.threshold / 2:
                continue
            frame = sys._current_frames().get(self._thread_id or 0)
            if frame is not None:
                self._samples[_where(frame)] += 1
