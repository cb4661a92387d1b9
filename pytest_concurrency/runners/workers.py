"""Threads running a body: the machinery every mode that runs threads shares.

:func:`run_workers` is called by the thread runner in the pytest process and
by every child of the process and hybrid runners.  It starts one named thread
per worker, aligns every iteration on a barrier, records values and failures,
and aborts the barriers as soon as a worker fails (or a thread cannot be
started) so nobody waits forever.
"""

from __future__ import annotations

import dataclasses
import sys
import threading
import time
from collections.abc import Callable, MutableSequence, Sequence
from typing import Any, Protocol

from .. import context
from ..context import RunContext, WorkerInfo

SWITCH_INTERVAL = 1e-6  # pytest-run-parallel uses the same: switch as often as possible
JITTER_NS = 50_000  # each worker starts each iteration up to 50 µs after the barrier
_MASK = (1 << 64) - 1


def jitter_ns(seed: int, index: int, iteration: int) -> int:
    """The start delay of a worker's iteration: a splitmix64 hash of its coordinates.

    Free-running threads all leave the barrier at once; delays drawn from the
    seed vary which thread gets ahead, differently on every iteration, and
    the same seed gives the same delays.
    """
    x = (seed * 0x9E3779B97F4A7C15 + index * 0xBF58476D1CE4E5B9
         + iteration * 0x94D049BB133111EB) & _MASK
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK
    return (x ^ (x >> 31)) % JITTER_NS


def _spin(ns: int) -> None:
    end = time.perf_counter_ns() + ns
    while time.perf_counter_ns() < end:
        pass


@dataclasses.dataclass
class WorkersReport:
    values: dict[int, list[Any]]
    raw: list[tuple[BaseException, WorkerInfo]]
    stuck: list[threading.Thread]  # threads still running at the deadline


def _abort(*barriers: threading.Barrier) -> None:
    for barrier in barriers:
        barrier.abort()


class Flag(Protocol):
    """An int flag: a plain box in one process, a shared ``multiprocessing``
    value across processes."""

    value: int


class _Box:
    value = 0


class Stop:
    """Lets every worker leave after the same iteration barrier once one failed.

    A failing worker sets ``requested``; the iteration barrier's action (run
    once, when every worker has arrived) copies it to ``decided``, which all
    read after the barrier.  Aborting the barrier instead would break it
    under workers that were released but not yet awake.  The process runner
    passes shared ``multiprocessing`` values for both.
    """

    def __init__(self, requested: Flag | None = None, decided: Flag | None = None) -> None:
        self.requested: Flag = _Box() if requested is None else requested
        self.decided: Flag = _Box() if decided is None else decided

    def __call__(self) -> None:
        self.decided.value = self.requested.value


class Progress:
    """Where each worker is, readable by the parent after a crash or a hang.

    ``iterations[i]`` is worker i's current iteration (-1 before the first);
    ``idents[i]`` its thread's ident, which names it in faulthandler dumps.
    The process runner passes shared ``multiprocessing`` arrays.
    """

    def __init__(self, iterations: MutableSequence[int], idents: MutableSequence[int]) -> None:
        self.iterations = iterations
        self.idents = idents


def _work(call: Callable[[], object], info: WorkerInfo, iterations: int,
          iteration_barrier: threading.Barrier, run: RunContext, values: list[Any],
          raw: list[tuple[BaseException, WorkerInfo]], progress: Progress | None, stop: Stop,
          jitter: int | None) -> None:
    context.enter(info, run)
    if progress is not None:
        progress.idents[info.index] = threading.get_ident()
    try:
        for iteration in range(iterations):
            if iteration:
                context.set_iteration(iteration)
            if progress is not None:
                progress.iterations[info.index] = iteration
            try:
                iteration_barrier.wait()
            except threading.BrokenBarrierError:
                return  # the run was stopped (a crash, a timeout, a thread not started)
            if stop.decided.value:
                return
            if jitter is not None:
                _spin(jitter_ns(jitter, info.index, iteration))
            try:
                values.append(call())
            except BaseException as exc:  # noqa: BLE001 - every failure is reported
                raw.append((exc, context.current_worker()))
                stop.requested.value = 1
                run.barrier.abort()  # nobody may wait in the body for this worker
    finally:
        context.leave()


def run_workers(call: Callable[[], object], infos: Sequence[WorkerInfo], iterations: int,
                iteration_barrier: threading.Barrier, run: RunContext, *,
                deadline: float | None = None, stop: Stop, progress: Progress | None = None,
                jitter: int | None = None) -> WorkersReport:
    """Run ``call`` in one thread per worker (in the caller's thread if only one).

    ``iteration_barrier`` must have ``stop`` as its action; it and
    ``run.barrier`` may be shared with workers in other processes.  With a
    ``jitter`` seed each iteration starts after a seeded delay.  Returns when
    every thread has finished, or at ``deadline`` (``time.monotonic()``
    based) with the unfinished threads.
    """
    values: dict[int, list[Any]] = {info.index: [] for info in infos}
    raw: list[tuple[BaseException, WorkerInfo]] = []
    if len(infos) == 1 and deadline is None:
        info = infos[0]
        _work(call, info, iterations, iteration_barrier, run, values[info.index], raw,
              progress, stop, jitter)
        return WorkersReport(values, raw, [])

    previous = sys.getswitchinterval()
    sys.setswitchinterval(SWITCH_INTERVAL)
    threads = []
    try:
        for info in infos:
            thread = threading.Thread(
                target=_work, name=f"concurrency-worker-{info.index}", daemon=True,
                args=(call, info, iterations, iteration_barrier, run, values[info.index],
                      raw, progress, stop, jitter),
            )
            try:
                thread.start()
            except BaseException as exc:  # e.g. "can't start new thread"
                raw.append((exc, info))
                _abort(iteration_barrier, run.barrier)
                break
            threads.append(thread)
        stuck = _join(threads, deadline)
        if stuck:
            _abort(iteration_barrier, run.barrier)
    except BaseException:  # e.g. Ctrl-C, or pytest-timeout firing in the main thread
        _abort(iteration_barrier, run.barrier)
        raise
    finally:
        sys.setswitchinterval(previous)
    return WorkersReport(values, raw, stuck)


def _join(threads: Sequence[threading.Thread],
          deadline: float | None) -> list[threading.Thread]:
    for thread in threads:
        if deadline is None:
            thread.join()
        else:
            thread.join(max(0.0, deadline - time.monotonic()))
    return [t for t in threads if t.is_alive()]
