"""The parent's side of process and hybrid mode: start the child processes,
watch them, reap them, and make one outcome of what they sent.

The parent waits on the children's pipes *and* their process sentinels, so a
child that dies is noticed at once and reported with its signal or exit
status, the iteration it was in and the tail of its stderr (where faulthandler
writes).  Children's stdout and stderr go to files that become sections of the
test report.  What runs inside a child is ``child.py``; what both sides share
is ``crossing.py``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import itertools
import multiprocessing
import os
import pickle
import threading
import time
import warnings
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection, wait
from typing import Any, cast

# Imported with the runner, outside any measured run, not when a late run is
# killed (watchdog.kill_tree): an import then can take seconds on a busy machine
# under a free-threaded 3.13.5 (its class creations spin on a lock: CPython
# gh-135871); a parent with psutil loaded forks no slower (200 forks, with and without).
import psutil  # noqa: F401
import pytest

from .. import cleanup, originals, outcomes, shipping, texts, watchdog
from .. import progress as progress_
from ..spec import RunSpec
from .child import LEAK_WARNING, child_main
from .crossing import DUMP_SIGNAL, ChildJob, Payload, Shared
from .request import RunOutcome, RunRequest, seed_of
from .workers import RECHECK, Progress

STDERR_TAIL_LINES = 40  # of a crashed child's stderr, in its failure report
TIMEOUT_TAIL_LINES = 400  # of a stuck child's stderr (its stack dump)
CRASH_GRACE = 2.0  # seconds the other children get to finish after one crashed
DUMP_GRACE = 0.5  # seconds for a child to write its stack dump before it is killed


@dataclasses.dataclass
class _Child:
    index: int
    process: multiprocessing.process.BaseProcess
    conn: Connection
    workers: range
    job: ChildJob
    # what it sent: values, failures, its peak RSS (bytes, None if not known)
    result: tuple[dict[int, list[Any]], list[outcomes.Failure], int | None] | None = None
    stderr_shown: int = 0  # lines of its stderr a failure report already shows
    dump_from: int = 0  # where in its stderr the stack dump of its timeout starts

    @property
    def pid(self) -> int:
        pid = self.process.pid
        assert pid is not None, "the child is started before anyone asks for its pid"
        return pid


def _start(ctx: multiprocessing.context.BaseContext, jobs: Sequence[ChildJob],
           children: list[_Child]) -> None:
    """Start a child for each job, appending it to ``children`` as soon as it runs
    (an interruption meanwhile must find every child started so far)."""
    if ctx.get_start_method() == "fork":
        watchdog.before_fork()
    # Objects frozen at fork time are never scanned by the children's garbage
    # collector, so children do not copy every page of the parent's heap.
    gc.freeze()
    with contextlib.ExitStack() as stack, warnings.catch_warnings(), originals.restored(), \
            cleanup.forking_own_children():
        stack.callback(gc.unfreeze)
        # Python 3.12+ warns when forking a process that has threads (pytest-xdist's
        # execnet thread, pytest-timeout's timer...).  The child only runs the test
        # body and our code, never touching locks those threads hold, so the
        # warning is not actionable here; see README "Fork safety".
        warnings.filterwarnings("ignore", message=r".*use of fork\(\) may lead to deadlocks",
                                category=DeprecationWarning)
        for job in jobs:
            reader, writer = ctx.Pipe(duplex=False)
            # every concrete context has Process; typeshed's BaseContext does not say so
            process = ctx.Process(target=child_main,  # type: ignore[attr-defined]
                                  args=(job, writer),
                                  name=f"concurrency-process-{job.process_index}")
            first = job.process_index * job.threads
            child = _Child(job.process_index, process, reader,
                           range(first, first + job.threads), job)
            children.append(child)
            process.start()
            # the child leads its own group: said here too, so that no kill of the
            # group can come before the child has run as far as saying it
            with contextlib.suppress(OSError):
                os.setpgid(process.pid, process.pid)
            cleanup.watch_group(process.pid)
            writer.close()


def _tail(path: str, lines: int = STDERR_TAIL_LINES, offset: int = 0) -> str:
    """The last lines of a child's stderr (from ``offset``), pytest's own frames
    folded away, within texts.TAIL_BYTES: only that much of the file is read,
    and a first line says how much came before."""
    try:
        text, before = texts.read_tail(path, texts.TAIL_BYTES, offset)
    except OSError:
        return ""
    return texts.tail(outcomes.trim_dump(text.rstrip()), texts.TAIL_BYTES, lines,
                      before=before)


def _iteration(child: _Child, progress: Progress) -> int | None:
    seen = [progress.iterations[w] for w in child.workers]
    return max(seen) if max(seen) >= 0 else None


def _name_threads(dump: str, child: _Child, progress: Progress) -> str:
    """Label faulthandler's 'Thread 0x7f...' headers with the worker they belong to."""
    for worker in child.workers:
        ident = progress.idents[worker]
        if ident:
            dump = dump.replace(f"hread 0x{ident:016x}",
                                f"hread 0x{ident:016x} (worker {worker})")
    return dump


def _receive(child: _Child) -> bool:
    try:
        if child.conn.poll():
            child.result = pickle.loads(child.conn.recv_bytes())
            return True
    except (EOFError, OSError):
        pass
    return False


def _crash_failure(spec: RunSpec, child: _Child, progress: Progress,
                   elapsed: float) -> outcomes.Failure:
    tail = _name_threads(_tail(child.job.stderr_path), child, progress)
    child.stderr_shown = STDERR_TAIL_LINES
    details = f"stderr of pid {child.pid} (last {STDERR_TAIL_LINES} lines):\n{tail}" \
        if tail else f"pid {child.pid} wrote nothing to stderr"
    who = outcomes.describe_workers(child.workers)
    if spec.mode == "hybrid":
        who = f"process {child.index} ({who})"
    exitcode = child.process.exitcode
    assert exitcode is not None, "a crashed child was joined"
    return outcomes.crash(list(child.workers), spec.mode, child.pid,
                          _iteration(child, progress), exitcode, elapsed, details, who=who)


def _dump_stacks(children: Sequence[_Child]) -> None:
    """Ask each live child to write all its threads' stacks to its stderr file."""
    alive = [c for c in children if c.process.is_alive()]
    for child in alive:
        try:
            os.kill(child.pid, DUMP_SIGNAL)
        except ProcessLookupError:
            pass
    if alive:
        time.sleep(DUMP_GRACE)


def _watch(children: Sequence[_Child]) -> progress_.Verdict:
    """Are children past their deadline stuck or making progress?  Their CPU time
    (with their descendants') between two stack dumps a second apart, whether
    the stacks changed, and whether their threads kept waking up between the
    dumps (a loop of short sleeps uses no CPU and shows the same stack in both).
    The first dump is asked for at once: it shows where they were when the watch
    began (each child's ``dump_from`` is left at its start).  CPU time is read
    after it was written and before the second is asked for: writing a dump
    costs a stuck child a clock tick now and then, which is not progress."""
    sizes = [_size(c.job.stderr_path) for c in children]
    start = time.monotonic()
    _dump_stacks(children)
    first = [_read_from(c.job.stderr_path, size) for c, size in zip(children, sizes,
                                                                    strict=True)]
    for child, size in zip(children, sizes, strict=True):
        child.dump_from = size
    # from /proc by system calls: psutil's buffered reads took seconds on a
    # free-threaded build while the children kept the CPUs busy (3.13t)
    pids = [pid for child in children for pid in (child.pid, *progress_.descendants(child.pid))]

    def cpu() -> dict[int, float]:
        return {pid: seconds for pid in pids
                if (seconds := progress_.process_cpu(pid)) is not None}

    before = cpu()
    # at least half a look, however long the parent took to get here; the dump's
    # signal woke a thread of each child once before it
    wakeups = progress_.waking(
        pids, max(progress_.LOOK / 2, start + progress_.LOOK - time.monotonic()))
    after = cpu()
    used = sum(max(0.0, after[pid] - before[pid]) for pid in before.keys() & after.keys())
    sizes = [_size(c.job.stderr_path) for c in children]
    _dump_stacks(children)
    second = [_read_from(c.job.stderr_path, size) for c, size in zip(children, sizes,
                                                                     strict=True)]
    changed = sum(a != b for a, b in zip(first, second, strict=True))
    moved = used > progress_.CPU_EPSILON or changed > 0
    return progress_.Verdict(progressing=moved or wakeups > 0,
                             cpu=used, distinct=len(children) + changed,
                             seconds=time.monotonic() - start,
                             wakeups=0 if moved else wakeups)


def _size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def _read_from(path: str, offset: int) -> str:
    """What a child wrote to ``path`` past ``offset``, thread ids aside (they do
    not change between two dumps of the same stacks)."""
    try:  # read while the children run: with system calls, see texts.read_tail
        text, _ = texts.read_tail(path, texts.TAIL_BYTES, offset)
    except OSError:
        return ""
    return "\n".join(line for line in text.splitlines()
                     if not line.startswith(("Thread 0x", "Current thread 0x")))


def _timeout_failure(spec: RunSpec, stuck: Sequence[_Child], progress: Progress,
                     verdict: progress_.Verdict | None = None,
                     elapsed: float | None = None) -> outcomes.Failure:
    parts = []
    for child in stuck:
        dump = _name_threads(_tail(child.job.stderr_path, lines=TIMEOUT_TAIL_LINES,
                                   offset=child.dump_from), child, progress)
        child.stderr_shown = TIMEOUT_TAIL_LINES
        if not child.process.is_alive():
            dump = ("it exited while it was watched, past the timeout cap; its stacks "
                    f"when the watch began:\n{dump}")
        parts.append(
            f"--- process {child.index} (pid {child.pid}, "
            f"{outcomes.describe_workers(child.workers)}) ---\n{dump}"
        )
    workers = [w for c in stuck for w in c.workers]
    pid = stuck[0].pid if len(stuck) == 1 else os.getpid()
    return outcomes.timeout(workers, spec.mode, pid, spec.timeout, "\n\n".join(parts),
                            verdict, elapsed)


def _wait(spec: RunSpec, children: Sequence[_Child], progress: Progress,
          barriers: Sequence[threading.Barrier], start: float) -> list[outcomes.Failure]:
    """Wait for results and exits; returns crash/timeout failures.  Past the
    timeout, children still making progress may go on until the timeout cap.

    Children still running at the cap are given up there: the watch that
    follows only says how they were doing, and one that exits while it is
    watched still ran past its cap (how long a watch takes is the machine's
    doing: the parent gets little of a CPU its children keep busy)."""
    failures = []
    deadline = start + spec.timeout
    cap = start + spec.timeout_cap
    crashed = False
    verdict = None
    given_up: list[_Child] = []
    running = {c.process.sentinel: c for c in children}
    readers = {c.conn: c for c in children}

    def exited(child: _Child) -> None:
        nonlocal crashed, deadline
        child.process.join()
        readers.pop(child.conn, None)
        if child.result is None and not _receive(child):
            failures.append(_crash_failure(spec, child, progress, time.monotonic() - start))
            for barrier in barriers:
                barrier.abort()
            crashed = True
            deadline = min(deadline, time.monotonic() + CRASH_GRACE)

    while running:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            late = [c for c in running.values() if c.process.is_alive()]
            if late and not crashed:
                at_cap = time.monotonic() >= cap
                verdict = _watch(late)
                if verdict.progressing and time.monotonic() < cap:
                    deadline = min(cap, time.monotonic() + RECHECK)
                    continue
                if at_cap and not all(c.process.is_alive() for c in late):
                    # finishing is progress, whatever a watch that began too late saw
                    verdict = dataclasses.replace(verdict, progressing=True)
                else:
                    late = [c for c in late if c.process.is_alive()]
            if late:
                given_up = late
                break
            for sentinel in list(running):  # every one has exited since
                exited(running.pop(sentinel))
            break
        for ready in wait(list(readers) + list(running), timeout=remaining):
            if ready in readers:
                _receive(readers.pop(ready))
                continue
            # a sentinel (an int), or a pipe whose child's exit was handled earlier
            # in this round, so that it left readers
            child = running.pop(ready, None) if isinstance(ready, int) else None
            if child is not None:
                exited(child)
    if given_up:
        alive = [c for c in given_up if c.process.is_alive()]
        if not failures:
            for child in alive:  # the report shows this last dump, not the watching ones
                child.dump_from = _size(child.job.stderr_path)
            _dump_stacks(alive)
            elapsed = time.monotonic() - start if alive else spec.timeout_cap
            failures.append(_timeout_failure(spec, given_up, progress, verdict, elapsed))
        _kill(alive)
    for child in running.values():  # exited but not yet seen to: what it sent counts
        if child.result is None and not child.process.is_alive():
            _receive(child)
    return failures


def _warn_of_leaks(failures: list[outcomes.Failure]) -> None:
    """leaks="warn": the threads children left running are one warning (the
    first child's, with how many others left some), not failures."""
    left = [f for f in failures if f.kind == LEAK_WARNING]
    if not left:
        return
    failures[:] = [f for f in failures if f.kind != LEAK_WARNING]
    more = f"\n\n(and {len(left) - 1} other process(es) of the run)" if len(left) > 1 else ""
    warnings.warn(pytest.PytestWarning(left[0].text + more), stacklevel=1)


def _kill(children: Sequence[_Child]) -> None:
    """Kill ``children``, their process groups and descendants; reap all but the
    children themselves, whom multiprocessing joins (and gets their status)."""
    pids = [c.process.pid for c in children if c.process.pid is not None]
    watchdog.kill_tree(pids, groups=True, keep=frozenset(pids))


def run_children(request: RunRequest, processes: int, threads: int) -> RunOutcome:
    """Run ``processes`` children with ``threads`` workers each."""
    spec = request.spec
    ctx = multiprocessing.get_context(spec.start_method)
    n = processes * threads
    # None only beside actors, which explore mode alone runs; whatever the target,
    # calling it is the body, and what that raises is the workers' failure
    target = cast("Callable[..., Any]", request.target)
    args, kwargs = request.args, dict(request.kwargs)
    payload: Payload | bytes
    modules: dict[str, str]
    settings: dict[str, Any]
    if spec.start_method == "fork":
        payload, modules, settings = (target, args, kwargs), {}, {}
    else:
        payload = shipping.pack(target, args, kwargs, spec.start_method, request.arg_kind)
        modules = shipping.rewritten_modules()
        settings = shipping.config_snapshot(request.config)
    shared = Shared.take(ctx, spec.start_method, n)
    progress, stop, barriers = shared.progress, shared.stop, shared.barriers
    prefix = os.path.join(cleanup.scratch_dir(), f"{next(_runs)}-")
    cleanup.guardian()
    seed = seed_of(spec)
    jobs = [
        ChildJob(
            process_index=p, threads=threads, workers=n,
            parent_pid=None if spec.start_method == "forkserver" else os.getpid(),
            mode=spec.mode, iterations=spec.iterations, timeout=spec.timeout,
            tb_style=request.tb_style, settings=settings,
            stdout_path=f"{prefix}{p}.out", stderr_path=f"{prefix}{p}.err",
            iteration_barrier=barriers[0], user_barrier=barriers[1], progress=progress,
            stop=stop, payload=payload, modules=modules, jitter=seed,
            timeout_cap=spec.timeout_cap,
            calls=request.calls if spec.start_method == "fork" else None,
            leaks=spec.leaks,
        )
        for p in range(processes)
    ]
    start = time.monotonic()
    children: list[_Child] = []
    clean = False  # nothing failed: the shared objects can serve the next run
    try:
        _start(ctx, jobs, children)
        failures = _wait(spec, children, progress, barriers, start)
        wall = time.monotonic() - start
        values: dict[int, list[Any]] = {i: [] for i in range(n)}
        reported: list[outcomes.Failure] = []
        peaks = []
        for child in children:
            if child.result is not None:
                child_values, child_failures, peak = child.result
                values.update(child_values)
                reported.extend(child_failures)
                if peak is not None:
                    peaks.append(peak)
        _warn_of_leaks(reported)
        outputs = _outputs(children)
        clean = not failures and not reported
    except BaseException:
        # interrupted (Ctrl-C, SIGTERM) or broken: nothing the run started outlives it,
        # the descendants of children that already exited included
        _kill(children)
        raise
    finally:
        children = [c for c in children if c.process.pid is not None]  # started
        if children:
            _kill([c for c in children if c.process.is_alive()])
            for child in children:
                child.process.join(timeout=5)
                child.conn.close()
            # a group that still has members (a grandchild the leak check will find)
            # stays registered until it has none
            cleanup.settle()
        if clean and all(child.process.exitcode == 0 for child in children):
            shared.give_back()
        for job in jobs:
            for path in (job.stdout_path, job.stderr_path):
                with contextlib.suppress(OSError):
                    os.unlink(path)
    return RunOutcome(values, reported + failures, outputs, wall, seed,
                      child_peaks=tuple(peaks))


_runs = itertools.count()




def _outputs(children: Sequence[_Child]) -> list[tuple[str, str]]:
    sections = []
    for child in children:
        label = f"process {child.index} (pid {child.pid}, " \
                f"{outcomes.describe_workers(child.workers)})"
        for stream, path in (("stdout", child.job.stdout_path),
                             ("stderr", child.job.stderr_path)):
            try:
                if not os.path.getsize(path):
                    continue
                text, before = texts.read_tail(path, texts.OUTPUT_BYTES)
            except OSError:
                continue
            if stream == "stderr":
                text = outcomes.trim_dump(text)
                if not before and len(text.splitlines()) <= child.stderr_shown:
                    continue  # all of it is in the failure report already
            if text:
                sections.append((f"{label} {stream}",
                                 texts.tail(text, texts.OUTPUT_BYTES, texts.OUTPUT_LINES,
                                            before=before)))
    return sections
