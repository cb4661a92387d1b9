"""Telling a stuck thread from a slow one: samples of its CPU time and its stack.

A thread is *making progress* between two samples when it used CPU time or
its stack changed; it is *stuck* when neither happened (blocked on a lock, a
wait, a select that will never return).  Reading a thread's CPU time costs
one small read of ``/proc``; its stack comes from ``sys._current_frames()``.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import threading
import time

CPU_EPSILON = 0.02  # seconds of CPU between two samples that count as no work
_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


@dataclasses.dataclass(frozen=True)
class Sample:
    """One look at a thread: when, its CPU seconds so far, and where it was."""

    at: float
    cpu: float | None  # None where the OS does not tell
    stack: tuple[tuple[str, int | None], ...]  # (filename, lineno) of every frame, innermost last


def thread_cpu(native_id: int | None) -> float | None:
    """CPU seconds (user + system) used so far by thread ``native_id`` of this
    process, from ``/proc``; None where that cannot be read."""
    if native_id is None:
        return None
    try:
        with open(f"/proc/self/task/{native_id}/stat", "rb") as f:
            fields = f.read().rpartition(b")")[2].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / _TICK  # utime, stime after the comm


def stack_of(ident: int | None) -> tuple[tuple[str, int | None], ...]:
    """Where thread ``ident`` is: (filename, lineno) per frame, outermost first."""
    frame = sys._current_frames().get(ident) if ident is not None else None
    out: list[tuple[str, int | None]] = []
    while frame is not None:
        out.append((frame.f_code.co_filename, frame.f_lineno))
        frame = frame.f_back
    return tuple(reversed(out))


def sample(thread: threading.Thread) -> Sample:
    return Sample(time.monotonic(), thread_cpu(thread.native_id), stack_of(thread.ident))


def progressed(before: Sample, after: Sample) -> bool:
    """Whether the thread did anything between two samples."""
    if before.stack != after.stack:
        return True
    return before.cpu is not None and after.cpu is not None \
        and after.cpu - before.cpu > CPU_EPSILON


def cpu_used(before: Sample, after: Sample) -> float:
    if before.cpu is None or after.cpu is None:
        return 0.0
    return max(0.0, after.cpu - before.cpu)


LOOK = 1.0  # seconds a run past its deadline is watched before it is judged
SAMPLES = 5  # looks at each thread in that time


@dataclasses.dataclass(frozen=True)
class Verdict:
    """How the threads (or processes) of a run past its deadline are doing."""

    progressing: bool  # some used CPU or changed their stack while watched
    cpu: float  # CPU seconds they used while watched
    distinct: int  # distinct stacks seen while watched
    seconds: float  # how long they were watched

    def describe(self) -> str:
        if self.progressing:
            return (f"making progress (CPU +{self.cpu:.2f} s, {self.distinct} distinct "
                    f"stack{'s' if self.distinct != 1 else ''} in the last "
                    f"{'second' if abs(self.seconds - 1) < 0.05 else f'{self.seconds:.1f} s'})")
        return (f"stuck (no CPU used and the same stacks for {self.seconds:.1f} s: "
                "blocked in a lock, a wait or a call that does not return)")


def watch(threads: list[threading.Thread], seconds: float = LOOK,
          samples: int = SAMPLES) -> Verdict:
    """Watch ``threads`` for ``seconds``: are they making progress or stuck?"""
    start = time.monotonic()
    first = [sample(t) for t in threads]
    seen = [{s.stack} for s in first]
    last = first
    for step in range(1, samples + 1):
        time.sleep(max(0.0, start + seconds * step / samples - time.monotonic()))
        last = [sample(t) for t in threads]
        for stacks, now in zip(seen, last, strict=True):
            stacks.add(now.stack)
    return Verdict(
        progressing=any(progressed(a, b) or len(stacks) > 1
                        for a, b, stacks in zip(first, last, seen, strict=True)),
        cpu=sum(cpu_used(a, b) for a, b in zip(first, last, strict=True)),
        distinct=sum(len(stacks) for stacks in seen), seconds=time.monotonic() - start)
