"""explore for asyncio: the actors as tasks on one event loop, every await a choice.

:func:`are_tasks` tells ``explore()`` that its actors are coroutine functions;
:class:`AioEngine` then stands in for ``engine.Engine``: it makes each schedule
an :class:`~.aioschedule.AsyncSchedule` and runs it on a thread of its own
(:class:`LoopThread`), watched for a step that never gives the loop back.
Nothing is traced: the switch points are the awaits that suspend, so this
runs the same on every CPython (free-threaded included) and needs no frame
reading, for DPOR too.
"""

from __future__ import annotations

import contextlib
import inspect
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from .. import originals
from . import _orig
from .aioloop import DaemonExecutor, Driver, ExploreLoop
from .aioschedule import Abort, AsyncSchedule
from .instrument import UserCode
from .lockorder import LockOrder
from .strategies import Strategy

POLL = 0.25  # seconds between two looks at a running schedule


_PROBLEM: list[str | None] = []  # problem()'s answer, once found


def problem() -> str | None:
    """Why explore cannot run asyncio tasks on this interpreter, if it cannot: its loop
    must tell a task's steps from other callbacks (a task schedules its steps as
    callables whose ``__self__`` is the task) and become the running loop."""
    if _PROBLEM:
        return _PROBLEM[0]
    import asyncio

    from .aioloop import Entry, ExploreLoop

    class Probe:
        now = 0.0

        def __init__(self) -> None:
            self.entries: list[Entry] = []

        def add(self, entry: Entry) -> None:
            self.entries.append(entry)

        def callback_error(self, entry: object, context: object) -> None:
            pass

    why = None
    if not callable(getattr(asyncio.events, "_set_running_loop", None)):
        why = "asyncio.events._set_running_loop is gone"
    else:
        probe = Probe()
        loop = ExploreLoop(probe, DaemonExecutor())  # type: ignore[arg-type]
        coroutine = asyncio.sleep(0)
        task = loop.create_task(coroutine)
        if not probe.entries or getattr(probe.entries[0].callback, "__self__", None) is not task:
            why = "an asyncio task's steps cannot be told from other callbacks"
        coroutine.close()
        loop.close()
    _PROBLEM.append(why)
    return why


def are_tasks(actors: Sequence[Callable[..., Any]]) -> bool:
    """Whether the actors are coroutine functions (run as tasks on one loop) rather
    than plain functions (run as threads); ValueError for a mix of the two."""
    kinds = [inspect.iscoroutinefunction(actor) for actor in actors]
    if any(kinds) and not all(kinds):
        plain = [index for index, kind in enumerate(kinds) if not kind]
        raise ValueError(
            "explore runs either threads or asyncio tasks: the actors must all be coroutine "
            f"functions (async def) or all plain functions, but actor {plain[0]} is not a "
            f"coroutine function and actor {kinds.index(True)} is (a lambda that returns a "
            "coroutine is not one: use an async def, or functools.partial of one)")
    tasks = bool(kinds) and all(kinds)
    why = problem() if tasks else None
    if why is not None:
        raise ValueError(f"explore cannot run asyncio tasks on this Python: {why}")
    return tasks


class LoopThread:
    """A daemon thread that runs one schedule at a time for the exploring thread."""

    def __init__(self) -> None:
        self._job: Callable[[], None] | None = None
        self._go = _orig.allocate_lock()
        self._go.acquire()
        self._done = _orig.allocate_lock()
        self._done.acquire()
        self.thread = threading.Thread(target=self._main, name="explore-worker-loop",
                                       daemon=True)
        originals.start(self.thread)  # the real start, whatever a test put in its place

    def _main(self) -> None:
        try:
            while True:
                self._go.acquire()
                job = self._job
                if job is None:
                    return
                try:
                    job()
                except Abort:
                    pass  # stopped where it ran (a step that never gave the loop back)
                finally:
                    self._done.release()
        except Abort:
            pass  # stopped just after its job ended: the engine makes a new thread

    def run(self, job: Callable[[], None], stuck: Callable[[], bool],
            abort: Callable[[], None]) -> bool:
        """Run ``job`` on the thread and wait; False when ``stuck()`` said to give up
        on it and the thread could not be stopped (it is then left to itself).
        Interrupted (Ctrl-C), ``abort()`` stops the job at its next step."""
        self._job = job
        self._go.release()
        try:
            while not self._done.acquire(True, POLL):
                if stuck():
                    return self.stop()
        except BaseException:
            abort()
            self._done.acquire(True, 1.0)
            raise
        return True

    def stop(self) -> bool:
        """Stop the job where it runs: :class:`Abort` raised in the thread at its next
        bytecode (a step spinning in Python code ends there); True if the job ended
        within a second (a thread stuck in a C call cannot be stopped so)."""
        interrupt(self.thread.ident)
        return self._done.acquire(True, STOP_WAIT)

    def release(self) -> None:
        """Let the thread end once its job does (a job it could not be stopped in)."""
        self._job = None
        with contextlib.suppress(RuntimeError):  # released already
            self._go.release()

    def close(self) -> None:
        self.release()
        self.thread.join(1.0)


STOP_WAIT = 1.0  # seconds a step that is stopped has to end

# The process's explore loop while no exploration uses it.  A program has one loop for
# its run, and asyncio's primitives (Lock, Event, Queue, Semaphore...) bind to the loop
# they are first used on: one made at import, or by a fixture wider than a test, outlives
# a schedule and a test, and must find the same loop in the next (a loop per schedule
# made it fail with "is bound to a different event loop").
_FREE: list[ExploreLoop] = []
_FREE_LOCK = _orig.allocate_lock()


def _take_loop(driver: Driver, executor: DaemonExecutor) -> ExploreLoop:
    """The process's explore loop, attached to ``driver``; a new one when another
    exploration uses it now (or dropped it: a step it could not stop may still call it)."""
    with _FREE_LOCK:
        loop = _FREE.pop() if _FREE else None
    if loop is None:
        return ExploreLoop(driver, executor)
    loop.attach(driver, executor)
    return loop


def _give_back(loop: ExploreLoop) -> None:
    with _FREE_LOCK:
        if not _FREE:
            _FREE.append(loop)


def interrupt(ident: int | None) -> None:
    """Raise :class:`Abort` in thread ``ident`` at its next bytecode."""
    if ident is None:
        return
    import ctypes

    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(ident), ctypes.py_object(Abort))


class AioEngine:
    """What the schedules of one asyncio explore() share (``engine.Engine``'s part)."""

    def __init__(self, setup: Callable[[], Any], actors: Iterable[Callable[..., Any]],
                 roots: tuple[str, ...], instrument: tuple[str, ...], step_timeout: float,
                 hang_timeout: float, lock_order: str = "ignore",
                 deadline: float | None = None) -> None:
        self.setup = setup
        self.actors = list(actors)
        self.is_user = UserCode(roots, instrument)
        self.precise = False
        self.lock_order = LockOrder() if lock_order != "ignore" else None
        self.step_timeout = step_timeout
        self.patience = max(1.0, 20 * step_timeout)
        self.hang_timeout = hang_timeout
        self.deadline = deadline  # _orig.monotonic() time by which the search ends
        self.false_detaches = 0
        self.executor = DaemonExecutor()
        self._thread: LoopThread | None = None
        self._loop: ExploreLoop | None = None  # the schedules' loop (see event_loop())
        # over every schedule: for the stats and the verdict
        self.virtual_time = 0.0
        self.time_advances = 0
        self.uncontrolled: list[str] = []

    def start(self) -> None:
        """Threads are made on first use."""

    def stop(self) -> None:
        if self._thread is not None:
            self._thread.close()
            self._thread = None
        if self._loop is not None:
            _give_back(self._loop)
            self._loop = None

    def schedule(self, strategy: Strategy) -> AsyncSchedule:
        return AsyncSchedule(self, strategy)

    def event_loop(self, driver: Driver) -> ExploreLoop:
        """The loop for the schedule ``driver`` runs: the same object for every schedule
        of every exploration in this process (see :func:`_take_loop`), made new for it
        (see ``ExploreLoop.attach``)."""
        if self._loop is None:
            self._loop = _take_loop(driver, self.executor)
        else:
            self._loop.attach(driver, self.executor)
        return self._loop

    def run_on_loop_thread(self, schedule: AsyncSchedule, job: Callable[[], None]) -> None:
        """Run ``job`` (the schedule's loop) on the loop thread and wait for it."""
        if self._thread is None:
            self._thread = LoopThread()
        thread = self._thread

        def stuck() -> bool:
            return schedule.hung(thread.thread.native_id) is not None

        def abort() -> None:
            schedule.aborting = True
            self._thread = None  # it may still be in a step: the next run gets a new one
            self._loop = None  # and so does the loop that step may still call

        try:
            if not thread.run(job, stuck, abort):
                schedule.abandoned.append(thread.thread)
                self._thread = None  # left to finish its step, if it ever does, and end
                self._loop = None  # that step may still call the loop: not the next one's
                thread.release()
            elif schedule.stopped:  # stopped in a step: it may still hold an Abort for
                self._thread = None  # its next bytecode; the next schedule gets a new one
                thread.close()
        finally:
            self._record(schedule)

    def _record(self, schedule: AsyncSchedule) -> None:
        self.virtual_time = max(self.virtual_time, schedule.clock)
        self.time_advances += schedule.time_advances
        for text in schedule.uncontrolled:
            if text not in self.uncontrolled:
                self.uncontrolled.append(text)

    def add_stats(self, stats: Any) -> None:
        """What the schedules measured, into explore()'s stats."""
        stats["switch_points"] = "asyncio awaits"
        stats["virtual_time"] = self.virtual_time
        stats["time_advances"] = self.time_advances
        if self.uncontrolled:
            stats["uncontrolled"] = list(self.uncontrolled)
