"""What one concurrent run cost: wall time, CPU time, peak memory, body calls.

Measuring stays off the hot path: wall and CPU time are read once before and
once after the run (the process's CPU time covers all its threads, and
``RUSAGE_CHILDREN`` every child reaped during the run).

Peak memory, measured only when asked for (a ``memory`` budget), is the
kernel's: each process's own high-water mark of resident memory (``VmHWM``),
which no peak escapes however short.  The pytest process's mark is reset to
its current RSS when the run starts (``/proc/self/clear_refs``), so it is the
run's; each child of process and hybrid mode sends its own with its results
(:func:`peak_rss`).  The run's peak is the sum of these peaks: an upper bound
of the tree's resident memory at any one moment (the processes may peak at
different moments, and RSS counts a page shared by forked processes once per
process).  One background thread also samples the tree every 20 ms: its
largest sum, a lower bound, covers what sends no peak (a child that crashed,
processes the body started) and, where the kernel gives no high-water mark,
the pytest process itself.

A process's ``ru_maxrss`` is not used: a child started by fork and exec
(spawn, and any ``subprocess``) inherits its parent's high-water mark in it.
"""

from __future__ import annotations

import _thread
import dataclasses
import os
import resource
import sys
import time
from collections.abc import Mapping, Sequence

from . import cleanup, progress

SAMPLE_INTERVAL = 0.02  # seconds between two samples of the process tree's memory
_sleep = time.sleep  # explore mode patches time.sleep during its runs


@dataclasses.dataclass(frozen=True)
class Measurement:
    """One run: ``wall`` and ``cpu`` in seconds, ``peak_rss`` in bytes (or None).

    ``child_cpu`` is the part of ``cpu`` spent in child processes; ``waited`` the
    seconds this process's threads spent ready to run, waiting for a CPU (None when
    not measured, or where the kernel does not tell).
    """

    wall: float
    cpu: float
    calls: int  # body calls that completed
    peak_rss: int | None = None
    child_cpu: float = 0.0
    waited: float | None = None

    @property
    def throughput(self) -> float:
        """Body calls per second of wall time."""
        return self.calls / self.wall if self.wall > 0 else 0.0


def peak_rss() -> int | None:
    """This process's high-water mark of resident memory, in bytes: ``VmHWM``
    from ``/proc/self/status``, else (no ``/proc``) ``ru_maxrss``; None if
    neither can be read."""
    try:
        status = progress.read_proc("/proc/self/status")
    except OSError:
        status = None
    if status is not None:
        for line in status.splitlines():
            if line.startswith(b"VmHWM:"):
                return int(line.split()[1]) * 1024  # kB
        return None
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return maxrss if sys.platform == "darwin" else maxrss * 1024  # bytes there, else KiB


def reset_peak_rss() -> bool:
    """Set this process's high-water mark to its current resident memory; False
    where the kernel does not let it be (then :func:`peak_rss` is the lifetime's)."""
    try:
        fd = os.open("/proc/self/clear_refs", os.O_WRONLY)
    except OSError:
        return False
    try:
        os.write(fd, b"5")  # "reset the peak resident set size", Linux 4.0+
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


def tree_rss() -> tuple[int, int]:
    """Resident memory of this process, and of it and all its descendants, in bytes."""
    import psutil  # loaded by the first memory measurement, not by every session

    me = psutil.Process()
    own = total = me.memory_info().rss
    guardian = cleanup.guardian_pid()
    for child in me.children(recursive=True):
        if child.pid == guardian:
            continue  # the session's, not the test's
        try:
            total += child.memory_info().rss
        except psutil.Error:
            pass
    return own, total


class _Sampler:
    """One daemon thread that records the peaks of :func:`tree_rss` while active.

    Idle, it blocks on a lock the measuring thread holds; started, it samples
    every SAMPLE_INTERVAL seconds.
    """

    def __init__(self) -> None:
        self._gate = _thread.allocate_lock()
        self._gate.acquire()
        self.own = self.peak = 0
        self._started = False

    def _sample(self) -> None:
        own, total = tree_rss()
        self.own, self.peak = max(self.own, own), max(self.peak, total)

    def _loop(self) -> None:
        import psutil

        while True:
            with self._gate:
                pass
            try:
                self._sample()
            except psutil.Error:
                pass
            _sleep(SAMPLE_INTERVAL)

    def start(self) -> None:
        self.own = self.peak = 0
        self._sample()
        if not self._started:
            self._started = True
            _thread.start_new_thread(self._loop, ())
        self._gate.release()

    def stop(self) -> tuple[int, int]:
        """The largest samples: of this process, and of the whole tree."""
        self._gate.acquire()
        self._sample()
        return self.own, self.peak


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


def _children_cpu() -> float:
    """CPU seconds of this process's reaped children."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return children.ru_utime + children.ru_stime


def run_queue_waits() -> dict[str, int] | None:
    """Nanoseconds each thread of this process has spent ready to run but waiting
    for a CPU (Linux's schedstat), by thread id; None where the kernel does not
    tell.  Time asleep or blocked is not in it: this is what a busy machine costs."""
    try:
        tids = os.listdir("/proc/self/task")
    except OSError:
        return None
    waits = {}
    for tid in tids:
        try:
            with open(f"/proc/self/task/{tid}/schedstat", "rb") as stats:
                waits[tid] = int(stats.read().split()[1])
        except (OSError, ValueError, IndexError):
            continue  # the thread ended meanwhile, or no schedstat here
    return waits or None


def waited_between(before: Mapping[str, int], after: Mapping[str, int]) -> float:
    """Seconds the threads waited for a CPU from ``before`` to ``after``
    (:func:`run_queue_waits`); a thread started meanwhile counts whole, a thread that
    ended is not seen."""
    total = 0
    for tid, now in after.items():
        then = before.get(tid, 0)
        total += now - then if now >= then else now  # a thread id used again
    return total / 1e9


class Meter:
    """Measure the run inside ``with Meter(memory=...) as meter:``; then
    ``meter.result(calls, children)`` with the peaks the children sent.

    ``waits`` measures the time this process's threads waited for a CPU too
    (a read of every thread's schedstat before and after: for budget rounds)."""

    def __init__(self, memory: bool = False, waits: bool = False) -> None:
        self.memory = memory
        self.waits = waits
        self.own_rss: int | None = None  # this process's peak during the run
        self.peak_rss: int | None = None  # the tree's largest sample
        self.waited: float | None = None

    def __enter__(self) -> Meter:
        if self.memory:
            self._reset = reset_peak_rss()
            _sampler.start()
        self._waits = run_queue_waits() if self.waits else None
        self._children = _children_cpu()
        self._cpu = time.process_time()
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self._start
        own = time.process_time() - self._cpu
        self.child_cpu = _children_cpu() - self._children
        self.cpu = own + self.child_cpu
        if self._waits is not None:
            after = run_queue_waits()
            if after is not None:
                self.waited = waited_between(self._waits, after)
        if self.memory:
            sampled_own, self.peak_rss = _sampler.stop()
            kernel = peak_rss() if self._reset else None
            self.own_rss = max(sampled_own, kernel or 0)

    def result(self, calls: int, children: Sequence[int] = ()) -> Measurement:
        """``children``: the peak RSS each child process sent with its results."""
        peak = self.peak_rss
        if peak is not None and self.own_rss is not None:
            peak = max(peak, self.own_rss + sum(children))
        return Measurement(self.wall, self.cpu, calls, peak, self.child_cpu, self.waited)
