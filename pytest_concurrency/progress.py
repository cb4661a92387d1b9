"""Telling a stuck thread from a slow one: samples of its CPU time, its stack and
how often it ran.

A thread is *making progress* while it uses CPU time, while its stack changes,
or while it keeps waking up (it ran again in most of the moments it was
watched: a loop of short sleeps, a poll, I/O trickling in uses next to no CPU
and shows the same line whenever it is looked at).  It is *stuck* when none
of these happen: blocked on a lock, a wait, a select that will never return,
which the kernel does not run until it is woken.  Reading a thread's CPU time
and its runs costs a small read of ``/proc`` each; its stack comes from
``sys._current_frames()``.

Everything read on the way to a verdict or a report (``/proc``, a child's
stderr, the source lines of a stack) is read with system calls
(:func:`read_proc`), never with ``open()``: on a free-threaded build (3.13t)
making a buffered reader took a fifth of a second or more while the machine's
CPUs were busy, with the very workers being judged.
"""

from __future__ import annotations

import dataclasses
import io
import linecache
import os
import sys
import threading
import time
import tokenize
import traceback
from collections.abc import Sequence
from types import FrameType

CPU_EPSILON = 0.02  # seconds of CPU between two samples that count as no work
_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


WAKES = 2  # intervals of a look in which a thread ran again that count as progress


@dataclasses.dataclass(frozen=True)
class Sample:
    """One look at a thread: when, its CPU seconds so far, where it was, and how
    many times it has been run so far."""

    at: float
    cpu: float | None  # None where the OS does not tell
    stack: tuple[tuple[str, int | None], ...]  # (filename, lineno) of every frame, innermost last
    runs: int | None = None  # None where the OS does not tell


def read_proc(path: str, offset: int = 0) -> bytes:
    """A file (of ``/proc``, a child's stderr) from ``offset`` on, read with system
    calls.  Not ``open()``: on a free-threaded build (3.13t) making its buffered
    reader took a fifth of a second or more while the machine's CPUs were busy
    (with the very workers being judged), longer than the look it is part of."""
    fd = os.open(path, os.O_RDONLY)
    try:
        if offset:
            os.lseek(fd, offset, os.SEEK_SET)
        chunks = []
        while chunk := os.read(fd, 1 << 16):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def stat_fields(path: str) -> list[bytes]:
    """The fields of a ``/proc/.../stat`` file after the command name (state first)."""
    return read_proc(path).rpartition(b")")[2].split()


def extract_stack(frame: FrameType) -> traceback.StackSummary:
    """``traceback.extract_stack(frame)``, its source lines read without ``open()``
    (linecache's way): a report of two busy workers took two seconds on 3.13t,
    and its "still running after" was that much late."""
    frames = traceback.StackSummary.extract(traceback.walk_stack(frame), lookup_lines=False)
    frames.reverse()
    for filename in {entry.filename for entry in frames}:
        cache_source(filename)
    return frames


def source_line(filename: str, lineno: int) -> str:
    """Line ``lineno`` of ``filename``, stripped, as ``linecache.getline`` gives it."""
    cache_source(filename)
    return linecache.getline(filename, lineno).strip()


def cache_source(filename: str) -> None:
    """Put ``filename``'s lines in linecache, as ``linecache.updatecache`` would,
    unless they are there (nothing if it cannot be read: the line is then left
    out, as it would be)."""
    if len(linecache.cache.get(filename, ())) == 4:  # read already (not only lazily)
        return
    try:
        stat = os.stat(filename)
        data = read_proc(filename)
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
        lines = data.decode(encoding).splitlines(keepends=True)
    except (OSError, SyntaxError, UnicodeDecodeError, LookupError):
        return
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    linecache.cache[filename] = (stat.st_size, stat.st_mtime, lines, filename)


def _cpu(path: str) -> float | None:
    try:
        fields = stat_fields(path)
        return (int(fields[11]) + int(fields[12])) / _TICK  # utime, stime
    except (OSError, IndexError, ValueError):
        return None


def thread_cpu(native_id: int | None) -> float | None:
    """CPU seconds (user + system) used so far by thread ``native_id`` of this
    process, from ``/proc``; None where that cannot be read."""
    return None if native_id is None else _cpu(f"/proc/self/task/{native_id}/stat")


def process_cpu(pid: int) -> float | None:
    """CPU seconds (user + system) used so far by every thread of process ``pid``."""
    return _cpu(f"/proc/{pid}/stat")


def children(pid: int) -> list[int]:
    """The children of ``pid``, from ``/proc/<pid>/task/*/children``: one small
    read per thread, where psutil would scan every process on the machine."""
    found: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found  # gone meanwhile
    for task in tasks:
        try:
            found += map(int, read_proc(f"/proc/{pid}/task/{task}/children").split())
        except OSError:
            continue  # a thread that ended meanwhile
    return found


# whether this kernel tells a thread's children (CONFIG_PROC_CHILDREN)
PROC_CHILDREN = os.path.exists(f"/proc/self/task/{threading.get_native_id()}/children")


def descendants(pid: int) -> list[int]:
    """Every descendant of ``pid`` (from /proc; psutil where the kernel does not
    tell a thread's children)."""
    if not PROC_CHILDREN:
        import psutil

        try:
            return [proc.pid for proc in psutil.Process(pid).children(recursive=True)]
        except psutil.Error:
            return []
    found, todo = [], [pid]
    while todo:
        below = children(todo.pop())
        found += below
        todo += below
    return found


def task_runs(task: str) -> int | None:
    """How many times the kernel has run the thread whose ``/proc`` directory is
    ``task`` (each wake-up from a sleep or a wait, each time it got a CPU back):
    ``schedstat``'s count of time slices, else the context switches ``status``
    counts; None where neither can be read."""
    try:
        return int(read_proc(f"{task}/schedstat").split()[2])
    except (OSError, IndexError, ValueError):
        pass
    try:
        counts = [int(line.split()[1]) for line in read_proc(f"{task}/status").splitlines()
                  if line.startswith((b"voluntary_ctxt_switches",
                                      b"nonvoluntary_ctxt_switches"))]
    except (OSError, IndexError, ValueError):
        return None
    return sum(counts) if counts else None


def thread_runs(native_id: int | None) -> int | None:
    """How many times thread ``native_id`` of this process has been run so far."""
    return None if native_id is None else task_runs(f"/proc/self/task/{native_id}")


def process_runs(pid: int) -> dict[int, int]:
    """How many times each thread of process ``pid`` has been run so far, by
    thread id (empty if the process is gone)."""
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return {}
    found = {}
    for task in tasks:
        runs = task_runs(f"/proc/{pid}/task/{task}")
        if runs is not None:
            found[int(task)] = runs
    return found


def _woke(before: dict[int, int], after: dict[int, int]) -> int:
    """How many times the threads of ``before`` and ``after`` (thread id -> runs)
    were run in between: each one's increase, and a thread that appeared
    meanwhile counts once."""
    return sum(runs - before[tid] if tid in before else 1 for tid, runs in after.items()
               if runs > before.get(tid, -1))


def stack_of(ident: int | None) -> tuple[tuple[str, int | None], ...]:
    """Where thread ``ident`` is: (filename, lineno) per frame, outermost first."""
    frame = sys._current_frames().get(ident) if ident is not None else None
    out: list[tuple[str, int | None]] = []
    while frame is not None:
        out.append((frame.f_code.co_filename, frame.f_lineno))
        frame = frame.f_back
    return tuple(reversed(out))


def sample(thread: threading.Thread) -> Sample:
    return Sample(time.monotonic(), thread_cpu(thread.native_id), stack_of(thread.ident),
                  thread_runs(thread.native_id))


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

    progressing: bool  # some used CPU, changed their stack or kept waking up while watched
    cpu: float  # CPU seconds they used while watched
    distinct: int  # distinct stacks seen while watched
    seconds: float  # how long they were watched
    # times they were run while watched, where that alone showed progress (no CPU
    # used, the same stacks: a loop of short sleeps, a poll)
    wakeups: int = 0

    def describe(self) -> str:
        if self.progressing:
            woke = f", {self.wakeups} wake-up{'s' if self.wakeups != 1 else ''}" \
                if self.wakeups else ""
            return (f"making progress (CPU +{self.cpu:.2f} s, {self.distinct} distinct "
                    f"stack{'s' if self.distinct != 1 else ''}{woke} in the last "
                    f"{'second' if abs(self.seconds - 1) < 0.05 else f'{self.seconds:.1f} s'})")
        return (f"stuck (no CPU used and the same stacks for {self.seconds:.1f} s: "
                "blocked in a lock, a wait or a call that does not return)")


def _ran(before: Sample, after: Sample) -> int:
    if before.runs is None or after.runs is None:
        return 0
    return max(0, after.runs - before.runs)


def watch(threads: list[threading.Thread], seconds: float = LOOK,
          samples: int = SAMPLES) -> Verdict:
    """Watch ``threads`` for ``seconds``: are they making progress or stuck?  A
    thread progresses if it used CPU, changed its stack, or was run again in
    :data:`WAKES` or more of the ``samples`` intervals (once is what a signal
    does to a blocked thread)."""
    start = time.monotonic()
    first = [sample(t) for t in threads]
    seen = [{s.stack} for s in first]
    woken = [0] * len(threads)  # intervals in which each thread ran
    last = first
    for step in range(1, samples + 1):
        time.sleep(max(0.0, start + seconds * step / samples - time.monotonic()))
        now = [sample(t) for t in threads]
        for i, (stacks, before, after) in enumerate(zip(seen, last, now, strict=True)):
            stacks.add(after.stack)
            woken[i] += _ran(before, after) > 0
        last = now
    moved = [progressed(a, b) or len(stacks) > 1
             for a, b, stacks in zip(first, last, seen, strict=True)]
    waking = [not m and w >= WAKES for m, w in zip(moved, woken, strict=True)]
    return Verdict(
        progressing=any(moved) or any(waking),
        cpu=sum(cpu_used(a, b) for a, b in zip(first, last, strict=True)),
        distinct=sum(len(stacks) for stacks in seen), seconds=time.monotonic() - start,
        wakeups=0 if any(moved) else sum(_ran(a, b) for a, b, w in
                                         zip(first, last, waking, strict=True) if w))


def waking(pids: Sequence[int], seconds: float, samples: int = SAMPLES) -> int:
    """Watch the threads of the processes ``pids`` for ``seconds``: how many times
    they were run, if they were in :data:`WAKES` or more of the ``samples``
    intervals (0 otherwise: nothing woke them, or once, as a signal does)."""
    start = time.monotonic()
    last = [process_runs(pid) for pid in pids]
    intervals = total = 0
    for step in range(1, samples + 1):
        time.sleep(max(0.0, start + seconds * step / samples - time.monotonic()))
        now = [process_runs(pid) for pid in pids]
        ran = sum(_woke(a, b) for a, b in zip(last, now, strict=True))
        intervals += ran > 0
        total += ran
        last = now
    return total if intervals >= WAKES else 0
