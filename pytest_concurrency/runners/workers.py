"""Threads running a body: the machinery every mode that runs threads shares.

:func:`run_workers` is called by the thread runner in the pytest process and
by every child of the process and hybrid runners.  Workers run on threads of
a pool that lives as long as the process (named ``concurrency-worker-<i>``
while they run worker *i*), so a test pays for no thread start.  Every
iteration is aligned on a barrier; values and failures are recorded, and the
barriers are aborted as soon as a worker fails so nobody waits forever.

With per-call setup (``calls``: fresh fixtures for every call of the body),
the calling thread sets up each worker's arguments before every iteration and
tears them down after it, while the workers wait: pytest's fixture machinery
is never used from two threads at once, and setting up never delays one
worker against another inside the race.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import queue
import re
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping, MutableSequence, Sequence
from typing import Any, Protocol

from .. import context, originals, progress, watchdog
from ..context import RunContext, WorkerInfo
from ..watchdog import WORKER_PREFIX
from .request import Calls

SWITCH_INTERVAL = 1e-6  # pytest-run-parallel uses the same: switch as often as possible
JITTER_NS = 50_000  # each worker starts each iteration up to 50 µs after the barrier
_MASK = (1 << 64) - 1

Body = Callable[[Mapping[str, Any]], object]  # one call of the body, with its arguments
Raw = list[tuple[BaseException, WorkerInfo]]


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


# ---------------------------------------------------------------- the pool


class _Returned:
    """How many tasks of one run have returned, with their threads back in the
    pool: the caller waits for all of them with one wake-up (when the last one
    returns), not one per thread."""

    def __init__(self, count: int) -> None:
        self._lock = threading.Lock()
        self._left = count
        self.all = threading.Event()
        if count <= 0:
            self.all.set()

    def one(self) -> None:
        with self._lock:
            self._left -= 1
            last = self._left == 0
        if last:
            self.all.set()


class _Slot:
    """One pool thread: runs the tasks it is given, one at a time."""

    def __init__(self, pool: Pool) -> None:
        self.tasks: queue.SimpleQueue[tuple[Callable[[], None], _Returned] | None] = \
            queue.SimpleQueue()
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._serve, args=(pool,), daemon=True,
                                       name=f"{WORKER_PREFIX}idle")
        originals.start(self.thread)  # not a Thread.start a test replaced

    def _serve(self, pool: Pool) -> None:
        while True:
            given = self.tasks.get()
            if given is None:
                return
            task, returned = given
            try:
                task()
            finally:
                self.thread.name = f"{WORKER_PREFIX}idle"
                self.done.set()
                # Back in the pool before the run hears of it, so that the next
                # run finds this thread idle instead of starting another one.
                pool.release(self)
                returned.one()


class Pool:
    """Worker threads kept between runs.  A thread a run abandoned (stuck past
    its timeout) rejoins the pool only if its task ever returns."""

    def __init__(self) -> None:
        self._free: list[_Slot] = []
        self._lock = threading.Lock()

    def acquire(self, count: int) -> tuple[list[_Slot], BaseException | None]:
        """``count`` idle threads, starting what is missing; fewer, and why, when
        a thread could not be started ("can't start new thread")."""
        with self._lock:
            taken, self._free = self._free[:count], self._free[count:]
        while len(taken) < count:
            try:
                taken.append(_Slot(self))
            except BaseException as exc:  # noqa: BLE001 - the caller reports it
                for slot in taken:
                    self.release(slot)
                return taken, exc
        return taken, None

    def warm(self, count: int) -> None:
        """Have ``count`` idle threads ready, started now rather than by the run
        that needs them: a session starts them before any fixture is set up, so
        that a suite's own thread-leak check never sees them appear.  A thread
        that cannot be started now is left for the run to report."""
        with self._lock:
            missing = count - len(self._free)
        for _ in range(missing):
            try:
                slot = _Slot(self)
            except RuntimeError:  # "can't start new thread"
                return
            self.release(slot)

    def release(self, slot: _Slot) -> None:
        with self._lock:
            self._free.append(slot)

    def forget(self) -> None:
        """After fork: the parent's pool threads do not exist in the child."""
        self._free = []
        self._lock = threading.Lock()


POOL = Pool()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=POOL.forget)


# ---------------------------------------------------------------- one run

RECHECK = 5.0  # seconds between looks at a run that is past its deadline but progressing


@dataclasses.dataclass
class WorkersReport:
    values: dict[int, list[Any]]
    raw: Raw
    stuck: list[threading.Thread]  # threads still running when the run was given up
    verdict: progress.Verdict | None = None  # how those threads were doing then
    # threads started during the run (by its workers, the fixtures of their calls,
    # and threads these started) still running when it was given up
    started: list[threading.Thread] = dataclasses.field(default_factory=list)
    late: Late | None = None  # the run finished, but past its timeout cap


@dataclasses.dataclass(frozen=True)
class Late:
    """Workers still running when a watch began at the run's timeout cap, which
    finished while the watch went on: the run ran past its cap all the same (how
    long a watch takes is the machine's doing: on a free-threaded 3.13.5 with
    every core busy it took seconds).  Where they were when the watch began."""

    workers: list[int]
    stacks: str
    verdict: progress.Verdict


def _abort(*barriers: threading.Barrier) -> None:
    for barrier in barriers:
        barrier.abort()


class _Countdown:
    """The calls each worker has settled so far (made, or never to be made: a
    worker that left the run early has settled them all), for the caller to wait
    on without breaking anything when its wait times out (a barrier would
    break).  The caller is woken once, when what it waits for is reached, not
    at every call."""

    def __init__(self, workers: Iterable[int]) -> None:
        self._cond = threading.Condition()
        self.settled = dict.fromkeys(workers, 0)
        self._target: int | None = None  # what the caller waits for, while it does

    def _reached(self, target: int) -> bool:
        return min(self.settled.values(), default=target) >= target

    def arrive(self, worker: int, settled: int) -> None:
        """``worker`` has settled its first ``settled`` calls."""
        with self._cond:
            self.settled[worker] = settled
            if self._target is not None and self._reached(self._target):
                self._cond.notify_all()

    def reach(self, target: int, timeout: float | None) -> bool:
        """Wait until every worker has settled ``target`` calls."""
        with self._cond:
            self._target = target
            try:
                return self._cond.wait_for(lambda: self._reached(target), timeout)
            finally:
                self._target = None


@dataclasses.dataclass
class _Run:
    """What the workers of one run in this process share."""

    body: Body
    iterations: int
    iteration_barrier: threading.Barrier
    run: RunContext
    stop: Stop
    progress: Progress | None
    jitter: int | None
    values: dict[int, list[Any]]
    raw: Raw
    kwargs: dict[int, Mapping[str, Any]]  # each worker's arguments for this iteration
    # per-call setup only: set when an iteration's arguments are ready; calls settled
    ready: list[threading.Event] | None = None
    finished: _Countdown = dataclasses.field(default_factory=lambda: _Countdown(()))
    done: dict[int, int] = dataclasses.field(default_factory=dict)  # worker -> calls made
    # the threads alive when the run began, where a deadline is watched: any other
    # thread (the plugin's aside) was started by the run, and its progress is the run's
    before: frozenset[threading.Thread] = frozenset()
    aborted: bool = False
    left: bool = False  # a worker left the run early (a broken barrier, a stop)

    def abort(self) -> None:
        """Stop every worker wherever it waits."""
        self.aborted = True
        for event in self.ready or ():
            event.set()
        _abort(self.iteration_barrier, self.run.barrier)

    def leave(self, info: WorkerInfo) -> None:
        """``info``'s worker leaves the run: its calls from here on are settled."""
        self.left = True
        self.finished.arrive(info.index, self.iterations)


def _begin(state: _Run, info: WorkerInfo) -> None:
    context.enter(info, state.run)
    if state.progress is not None:
        state.progress.idents[info.index] = threading.get_ident()


def _enter_iteration(state: _Run, info: WorkerInfo, iteration: int) -> None:
    if iteration:
        context.set_iteration(iteration)
    if state.progress is not None:
        state.progress.iterations[info.index] = iteration


def _race(state: _Run, info: WorkerInfo, iteration: int) -> bool:
    """One call of the body by one worker, aligned with every other worker of the
    run on the iteration barrier.  False if the worker leaves the run instead
    (the run was stopped: a crash, a timeout, a failed setup, another worker's
    failure)."""
    try:
        state.iteration_barrier.wait()
    except threading.BrokenBarrierError:
        state.leave(info)
        return False
    if state.stop.decided.value:
        state.leave(info)
        return False
    if state.jitter is not None:
        _spin(jitter_ns(state.jitter, info.index, iteration))
    try:
        state.values[info.index].append(state.body(state.kwargs[info.index]))
    except BaseException as exc:  # noqa: BLE001 - every failure is reported
        state.raw.append((exc, context.current_worker()))
        state.stop.requested.value = 1
        state.run.barrier.abort()  # nobody may wait in the body for this worker
    state.done[info.index] = iteration + 1
    state.finished.arrive(info.index, iteration + 1)
    return True


def _work(state: _Run, info: WorkerInfo) -> None:
    """A worker on a pool thread: every iteration, once its arguments are ready."""
    _begin(state, info)
    try:
        for iteration in range(state.iterations):
            _enter_iteration(state, info, iteration)
            if state.ready is not None:
                state.ready[iteration].wait()  # this iteration's arguments are set up
                if state.aborted:
                    state.leave(info)
                    return
            if not _race(state, info, iteration):
                return
    finally:
        context.leave()


def _alone(state: _Run, info: WorkerInfo, calls: Calls | None) -> None:
    """The only worker of this process, run by the calling thread (no thread to
    start and hand over to; a child process of process mode runs its worker so).
    With per-call setup, that thread sets the arguments of each call up before
    the iteration's barrier and tears them down after the call, as
    :func:`_step` does for workers on pool threads."""
    _begin(state, info)
    try:
        for iteration in range(state.iterations):
            _enter_iteration(state, info, iteration)
            if calls is not None:
                if iteration and (state.stop.requested.value or state.aborted):
                    state.abort()  # the others leave where they wait for it
                    return
                if not _setup_calls(state, [info], calls, iteration):
                    state.abort()
                    return
            raced = _race(state, info, iteration)
            if calls is not None:
                _teardown_calls(state, [info], calls, iteration)
            if not raced:
                return
    finally:
        context.leave()


def run_workers(body: Body, infos: Sequence[WorkerInfo], iterations: int,
                iteration_barrier: threading.Barrier, run: RunContext, *,
                deadline: float | None = None, cap: float | None = None, stop: Stop,
                progress: Progress | None = None, jitter: int | None = None,
                kwargs: Mapping[str, Any] | None = None,
                calls: Calls | None = None) -> WorkersReport:
    """Run ``body(kwargs)`` in one pool thread per worker (in the caller's thread
    if there is only one and no deadline).

    ``iteration_barrier`` must have ``stop`` as its action; it and
    ``run.barrier`` may be shared with workers in other processes.  With a
    ``jitter`` seed each iteration starts after a seeded delay.  ``calls``
    sets up every call's own arguments instead of ``kwargs``.  Returns when
    every worker has finished, or at ``deadline`` (``time.monotonic()``
    based) with the unfinished threads, unless they are still making progress
    then: those may go on until ``cap``.
    """
    state = _Run(body, iterations, iteration_barrier, run, stop, progress, jitter,
                 values={info.index: [] for info in infos}, raw=[],
                 kwargs={info.index: kwargs or {} for info in infos},
                 ready=None if calls is None else [threading.Event()
                                                   for _ in range(iterations)],
                 finished=_Countdown(info.index for info in infos),
                 before=frozenset(threading.enumerate()) if deadline is not None
                 else frozenset())
    if len(infos) == 1 and deadline is None and calls is None:
        _alone(state, infos[0], None)
        return WorkersReport(state.values, state.raw, [])

    previous = sys.getswitchinterval()
    try:
        if len(infos) == 1 and deadline is None:
            sys.setswitchinterval(SWITCH_INTERVAL)
            _alone(state, infos[0], calls)
            return WorkersReport(state.values, state.raw, [])
        if calls is not None:
            # The first iteration's arguments are set up before the workers are
            # handed their task, so that they do not wait (and wake) for them.
            if not _setup_calls(state, infos, calls, 0):
                state.abort()  # workers of other processes wait on shared barriers
                return WorkersReport(state.values, state.raw, [])
            assert state.ready is not None
            state.ready[0].set()
        slots, error = POOL.acquire(len(infos))
        if error is not None:  # the first worker without a thread says why
            state.raw.append((error, infos[len(slots)]))
            state.abort()
            return WorkersReport(state.values, state.raw, [])
        returned = _Returned(len(slots))
        for position, (slot, info) in enumerate(zip(slots, infos, strict=True)):
            slot.done.clear()
            slot.thread.name = f"{WORKER_PREFIX}{info.index}"
            if position == len(slots) - 1:
                # Switch as often as possible once the bodies run: set before the
                # last worker gets its task (no worker passes the first barrier
                # without it), not before the first, so that handing the tasks out
                # does not switch to every worker it wakes.
                sys.setswitchinterval(SWITCH_INTERVAL)
            slot.tasks.put((functools.partial(_work, state, info), returned))
        if calls is not None:
            report = _step(state, infos, slots, calls, deadline, cap)
            if report is not None:
                return report
        return _finish(state, slots, returned, deadline, cap)
    except BaseException:  # e.g. Ctrl-C, or pytest-timeout firing in the main thread
        state.abort()
        raise
    finally:
        sys.setswitchinterval(previous)


def _step(state: _Run, infos: Sequence[WorkerInfo], slots: Sequence[_Slot], calls: Calls,
          deadline: float | None, cap: float | None) -> WorkersReport | None:
    """Per-call setup: before every iteration set up each worker's arguments (the
    first iteration's are ready before the workers start), let the workers go,
    wait for them, tear the arguments down.  A report if the run ended past its
    deadline (the arguments of stuck workers are left to the caller, who tears
    everything down after the run)."""
    assert state.ready is not None
    for iteration in range(state.iterations):
        if iteration:
            if state.stop.requested.value or state.aborted or state.left:
                state.abort()  # the workers leave where they wait for the next iteration
                return None
            if not _setup_calls(state, infos, calls, iteration):
                state.abort()
                return None
            state.ready[iteration].set()
        stuck, verdict, deadline, late = _until(
            functools.partial(state.finished.reach, iteration + 1),
            functools.partial(_busy, state, slots, infos, iteration),
            functools.partial(_started, state), deadline, cap)
        if stuck or late:
            state.abort()
            return WorkersReport(state.values, state.raw, stuck, verdict, _started(state),
                                 late)
        _teardown_calls(state, infos, calls, iteration)
    return None


def _busy(state: _Run, slots: Sequence[_Slot], infos: Sequence[WorkerInfo],
          iteration: int) -> list[threading.Thread]:
    """The threads of workers still in the body of ``iteration``."""
    return [slot.thread for slot, info in zip(slots, infos, strict=True)
            if state.done.get(info.index, 0) <= iteration and not slot.done.is_set()]


def _setup_calls(state: _Run, infos: Sequence[WorkerInfo], calls: Calls,
                 iteration: int) -> bool:
    """Set up every local worker's arguments for ``iteration``; False (and the
    failure recorded) if one could not be."""
    for position, info in enumerate(infos):
        at = info._replace(iteration=iteration)
        try:
            state.kwargs[info.index] = calls.setup(at)
        except BaseException as exc:  # noqa: BLE001 - reported as the worker's failure
            state.raw.append((exc, at))
            state.stop.requested.value = 1
            _teardown_calls(state, infos[:position], calls, iteration)
            return False
    return True


def _teardown_calls(state: _Run, infos: Sequence[WorkerInfo], calls: Calls,
                    iteration: int) -> None:
    for info in infos:
        at = info._replace(iteration=iteration)
        try:
            calls.teardown(at)
        except BaseException as exc:  # noqa: BLE001 - a teardown error is a failure too
            state.raw.append((exc, at))
            state.stop.requested.value = 1


def _finish(state: _Run, slots: Sequence[_Slot], returned: _Returned,
            deadline: float | None, cap: float | None) -> WorkersReport:
    """Wait for the workers to finish (their threads back in the pool), past the
    deadline only while they make progress, and never past ``cap``."""
    stuck, verdict, _, late = _until(
        returned.all.wait, lambda: [slot.thread for slot in slots if not slot.done.is_set()],
        functools.partial(_started, state), deadline, cap)
    if stuck:
        state.abort()
        return WorkersReport(state.values, state.raw, stuck, verdict, _started(state))
    return WorkersReport(state.values, state.raw, stuck, verdict, late=late)


def _started(state: _Run) -> list[threading.Thread]:
    """The threads started since the run began that are still running, the
    plugin's own aside (the run's own workers are watched as such), in the order
    of their names (see :func:`_by_name`)."""
    return sorted((thread for thread in threading.enumerate()
                   if thread not in state.before and not watchdog.is_plugin_thread(thread)),
                  key=_by_name)


def _by_name(thread: threading.Thread) -> list[int | str]:
    """'Thread-2 (download)' before 'Thread-10 (download)': threads made one after
    another are numbered so, while the order in which they began to run (that of
    threading.enumerate) is the machine's doing."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", thread.name)]


def _until(done: Callable[[float | None], bool], busy: Callable[[], list[threading.Thread]],
           started: Callable[[], list[threading.Thread]], deadline: float | None,
           cap: float | None,
           ) -> tuple[list[threading.Thread], progress.Verdict | None, float | None,
                      Late | None]:
    """Wait until ``done(timeout)``; past ``deadline`` go on waiting only while the
    ``busy`` threads make progress, or the threads ``started`` during the run do
    (a worker joining a thread that works is not stuck), until ``cap``.  Returns
    the busy threads given up (none if done), how they and the started ones were
    doing, the deadline to use next, and :class:`Late` when they finished while a
    watch that began at the cap went on (a run still running at its cap is given
    up there)."""
    while True:
        if done(_remaining(deadline)):
            return [], None, deadline, None
        threads = busy()
        if not threads:  # nothing running here: others (another process) are late
            if cap is not None and time.monotonic() >= cap:
                return [], None, deadline, None
        else:
            at_cap = cap is not None and time.monotonic() >= cap
            workers = [watchdog.worker_index(t) for t in threads]
            stacks = watchdog.thread_stacks(threads, "at the timeout cap") if at_cap else ""
            verdict = progress.watch(threads + started())
            if done(0):
                if not at_cap:
                    return [], None, deadline, None
                # finishing is progress, whatever a watch that began too late saw
                verdict = dataclasses.replace(verdict, progressing=True)
                return [], verdict, deadline, Late(workers, stacks, verdict)
            if not (verdict.progressing and cap is not None and time.monotonic() < cap):
                return threads, verdict, deadline, None
        deadline = time.monotonic() + RECHECK if cap is None else \
            min(cap, time.monotonic() + RECHECK)


def _remaining(deadline: float | None) -> float | None:
    return None if deadline is None else max(0.0, deadline - time.monotonic())


