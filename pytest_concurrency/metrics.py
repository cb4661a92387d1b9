"""What one concurrent run cost: wall time, CPU time, peak memory, body calls.

Measuring stays off the hot path: wall and CPU time are read once before and
once after the run (the process's CPU time covers all its threads, and
``RUSAGE_CHILDREN`` every child reaped during the run); peak memory is
sampled by one background
thread, and only when asked for, since a sample of the process tree costs
more than a short run.
"""

from __future__ import annotations

import _thread
import dataclasses
import resource
import time

from . import cleanup

SAMPLE_INTERVAL = 0.02  # seconds between two samples of the process tree's memory
_sleep = time.sleep  # explore mode patches time.sleep during its runs


@dataclasses.dataclass(frozen=True)
class Measurement:
    """One run: ``wall`` and ``cpu`` in seconds, ``peak_rss`` in bytes (or None)."""

    wall: float
    cpu: float
    calls: int  # body calls that completed
    peak_rss: int | None = None

    @property
    def throughput(self) -> float:
        """Body calls per second of wall time."""
        return self.calls / self.wall if self.wall > 0 else 0.0


def tree_rss() -> int:
    """Resident memory of this process and all its descendants, in bytes."""
    import psutil  # loaded by the first memory measurement, not by every session

    me = psutil.Process()
    total = me.memory_info().rss
    guardian = cleanup.guardian_pid()
    for child in me.children(recursive=True):
        if child.pid == guardian:
            continue  # the session's, not the test's
        try:
            total += child.memory_info().rss
        except psutil.Error:
            pass
    return total


class _Sampler:
    """One daemon thread that records the peak of :func:`tree_rss` while active.

    Idle, it blocks on a lock the measuring thread holds; started, it samples
    every SAMPLE_INTERVAL seconds.
    """

    def __init__(self) -> None:
        self._gate = _thread.allocate_lock()
        self._gate.acquire()
        self.peak = 0
        self._started = False

    def _loop(self) -> None:
        import psutil

        while True:
            with self._gate:
                pass
            try:
                self.peak = max(self.peak, tree_rss())
            except psutil.Error:
                pass
            _sleep(SAMPLE_INTERVAL)

    def start(self) -> None:
        self.peak = tree_rss()
        if not self._started:
            self._started = True
            _thread.start_new_thread(self._loop, ())
        self._gate.release()

    def stop(self) -> int:
        self._gate.acquire()
        return max(self.peak, tree_rss())


_sampler = _Sampler()


def sampler_running() -> bool:
    return _sampler._started


AVAILABILITY_PROBE = 0.01  # seconds of spinning to see how much of a CPU a thread gets


def cpu_availability(seconds: float = AVAILABILITY_PROBE) -> float:
    """The share of one CPU a thread of this process gets right now (1.0 on an
    idle machine, about 0.5 when two busy programs share a core with it): a
    short spin, CPU time over wall time.  What a busy machine cannot fake."""
    cpu0, wall0 = time.thread_time(), time.perf_counter()
    end = wall0 + seconds
    while time.perf_counter() < end:
        pass
    wall = time.perf_counter() - wall0
    return min(1.0, (time.thread_time() - cpu0) / wall) if wall > 0 else 1.0


def _cpu_now() -> float:
    """CPU seconds of this process (all threads) and of its reaped children."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


class Meter:
    """Measure the run inside ``with Meter(memory=...) as meter:``; then ``meter.result()``."""

    def __init__(self, memory: bool = False) -> None:
        self.memory = memory
        self.peak_rss: int | None = None

    def __enter__(self) -> Meter:
        if self.memory:
            _sampler.start()
        self._cpu = _cpu_now()
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self._start
        self.cpu = _cpu_now() - self._cpu
        if self.memory:
            self.peak_rss = _sampler.stop()

    def result(self, calls: int) -> Measurement:
        return Measurement(self.wall, self.cpu, calls, self.peak_rss)
