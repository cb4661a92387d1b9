"""One schedule: N worker threads of which exactly one runs at a time.

The controller (the thread that calls ``Schedule.run``) makes every decision; a worker
reaching a switch point posts an arrival and parks on its own baton lock until granted.
"""

from __future__ import annotations

import _thread
import dataclasses
import sys
import threading
import traceback
from collections.abc import Callable, Sequence
from types import FrameType
from typing import Any, Literal, Protocol

from . import _orig
from .instrument import own_file
from .strategies import Strategy

# A worker's status, as the controller sees it:
PARKED = "parked"  # at a switch point, waiting to be granted its next step
RUNNING = "running"  # granted a step (or starting); the controller waits for its next arrival
BLOCKED = "blocked"  # parked in a patched primitive until its Wait is ready
DETACHED = "detached"  # granted a step but not back in time: blocked outside the scheduler
DONE = "done"  # its actor returned or raised
CLOCK_TICK = 1e-6  # virtual seconds per scheduling step

Site = tuple[str, int, str]  # filename, lineno, funcname of a step in user code
Point = tuple[str, int, str, str | None]  # a site and what the step does there, if known
Step = tuple[int, str, int, str, str | None]  # one trace entry: worker index, then a Point
Actor = Callable[[Any], Any]  # called with the state setup() made; returns user data
# sys.settrace's trace function; ``arg`` depends on the event (a return value, an exc_info)
TraceFunction = Callable[[FrameType, str, Any], "TraceFunction | None"]

_CURRENT: dict[int, Worker] = {}  # thread ident -> Worker, for workers of the active schedule


class Abort(BaseException):
    """Raised inside a worker to unwind it when its schedule is stopped."""


def current_worker() -> Worker | None:
    """The worker the calling thread is, in the active schedule; None outside one."""
    return _CURRENT.get(_orig.get_ident())


class EngineView(Protocol):
    """What a schedule uses of the engine that runs it (``engine.Engine``; a Protocol,
    because engine.py imports this module)."""

    @property
    def actors(self) -> Sequence[Actor]: ...

    @property
    def settrace(self) -> TraceFunction | None: ...

    @property
    def step_timeout(self) -> float: ...

    @property
    def patience(self) -> float: ...

    @property
    def hang_timeout(self) -> float: ...

    @property
    def join_timeout(self) -> float: ...

    def is_user(self, filename: str) -> bool: ...

    def setup(self) -> Any: ...

    def patch(self) -> None: ...

    def unpatch(self) -> None: ...

    def false_detach(self) -> None: ...

    def describe_deadlock(self, schedule: Schedule, live: list[Worker]) -> str: ...


class HeldLock(Protocol):
    """What a worker holds: an explore ``primitives.Lock`` (a Protocol, because
    primitives.py imports this module)."""

    _site: Site | None  # where it was acquired


@dataclasses.dataclass(eq=False)
class Wait:
    """Why a worker is blocked on a patched primitive, and where."""

    ready: Callable[[], bool]  # true once the worker may go on
    resource: object  # the primitive waited on; None for sleep()
    what: str  # the kind of wait: "lock", "notify", "item", "sleep"... (see report.py)
    deadline: float | None  # virtual time at which the wait times out; None: never
    site: Site  # where in user code the worker waits


# The wait of a worker that is not BLOCKED.
NOT_WAITING = Wait(lambda: False, None, "", None, ("?", 0, "?"))

# What a worker posted last: it reached a switch point, it blocked, or its actor is done;
# ("none", None) until its thread first posts.
Arrival = (tuple[Literal["point"], Point] | tuple[Literal["block"], Wait]
           | tuple[Literal["done"], None] | tuple[Literal["none"], None])
NOT_ARRIVED: Arrival = ("none", None)


@dataclasses.dataclass(eq=False)
class Worker:
    """One thread of a schedule: an actor, or a thread an actor started."""

    schedule: Schedule
    index: int  # position in schedule.workers: the actors first, then the threads they start
    actor: Actor
    # Held by the controller; released to grant the worker one step.
    baton: _thread.LockType = dataclasses.field(init=False)
    # Set before the thread starts: a real Thread for an actor, a RawThread for a spawned one.
    thread: threading.Thread | RawThread = dataclasses.field(init=False)
    status: str = PARKED
    arrival: Arrival = NOT_ARRIVED
    wait: Wait = NOT_WAITING
    timed_out: bool = False  # its last block() ended at its deadline
    ret: Any = None  # what the actor returned
    error: BaseException | None = None  # what the actor raised, unless it was aborted
    held: list[HeldLock] = dataclasses.field(default_factory=list)  # Locks it holds now
    ident: int | None = None  # its thread's ident, once the thread runs

    def __post_init__(self) -> None:
        self.baton = _orig.allocate_lock()
        self.baton.acquire()

    def __repr__(self) -> str:
        return f"worker {self.index}"


def user_site(skip: int = 2) -> Site:
    """(filename, lineno, funcname) of the nearest frame outside this package."""
    frame: FrameType | None = sys._getframe(skip)
    schedule = None
    worker = current_worker()
    if worker is not None:
        schedule = worker.schedule
    first = None
    while frame is not None:
        filename = frame.f_code.co_filename
        if not own_file(filename):
            site = (filename, frame.f_lineno, frame.f_code.co_name)
            if first is None:
                first = site
            if schedule is None or schedule.is_user(filename):
                return site
        frame = frame.f_back
    return first or ("?", 0, "?")


class Schedule:
    """Runs the actors once under ``strategy``; fills trace, choices and findings."""

    def __init__(self, engine: EngineView, strategy: Strategy) -> None:
        self.engine = engine
        self.is_user = engine.is_user
        self.state: Any = None  # what engine.setup() made for this schedule
        self.strategy = strategy
        self.workers = [Worker(self, index, actor) for index, actor in enumerate(engine.actors)]
        self.trace: list[Step] = []
        # worker index, or -(index+1) for "did not come back in time"
        self.choices: list[int] = []
        self.steps = 0
        self.clock = 0.0
        self.current: Worker | None = None
        self.aborting = False
        self.error_worker: Worker | None = None
        self.deadlock: str | None = None
        self.divergence: str | None = None
        self.detaches = 0
        self.abandoned: list[Worker] = []
        self._inbox: list[Worker] = []
        self._signal = _orig.allocate_lock()
        self._signal.acquire()
        self._arrivals = 0
        self._detach_mark = -10
        self.mono0 = _orig.monotonic()
        self.wall0 = _orig.wall_time()

    # ---- worker side -------------------------------------------------------------
    def _post(self, worker: Worker, arrival: Arrival) -> None:
        worker.arrival = arrival
        self._inbox.append(worker)
        try:
            self._signal.release()
        except RuntimeError:
            pass

    def _arrive(self, worker: Worker, arrival: Arrival) -> None:
        if self.aborting:
            raise Abort()
        self._post(worker, arrival)
        worker.baton.acquire()
        if self.aborting:
            raise Abort()

    def point(self, worker: Worker, filename: str, lineno: int, funcname: str,
              what: str | None = None) -> None:
        """A switch point: let the scheduler decide who runs next."""
        self._arrive(worker, ("point", (filename, lineno, funcname, what)))

    def op_point(self, worker: Worker, what: str) -> Site:
        """A switch point at an operation on a primitive; returns its user site."""
        site = user_site(3)
        self._arrive(worker, ("point", site + (what,)))
        return site

    def block(self, worker: Worker, ready: Callable[[], bool], resource: object, what: str,
              deadline: float | None = None) -> bool:
        """Park until ``ready()`` (or the virtual ``deadline``); False on timeout."""
        wait = Wait(ready, resource, what, deadline, user_site(3))
        worker.timed_out = False
        self._arrive(worker, ("block", wait))
        return not worker.timed_out

    def now(self) -> float:
        return self.clock

    def spawn(self, run: Callable[[], object]) -> Worker:
        """A worker starts a thread: it becomes one more worker of this schedule.

        Returns once the new worker has posted its first arrival, so the
        controller sees it before it sees the spawning worker again.
        """
        worker = Worker(self, len(self.workers), lambda _state: run())
        worker.status = RUNNING
        self.workers.append(worker)
        # Not threading.Thread: it would wait for its start on a (patched) Event.
        thread = worker.thread = RawThread(self._bootstrap, worker)
        thread.start()
        while worker.arrival is NOT_ARRIVED and thread.is_alive():
            _orig.sleep(0)
        return worker

    def _bootstrap(self, worker: Worker) -> None:
        worker.ident = _orig.get_ident()
        _CURRENT[worker.ident] = worker
        engine = self.engine
        try:
            self._arrive(worker, ("point", ("<start>", 0, "<start>", "start")))
            if engine.settrace is not None:
                sys.settrace(engine.settrace)
            try:
                worker.ret = worker.actor(self.state)
            finally:
                if engine.settrace is not None:
                    sys.settrace(None)
        except Abort:
            pass
        except BaseException as exc:  # noqa: BLE001 - every worker failure is a finding
            if not self.aborting:
                worker.error = exc
        finally:
            _CURRENT.pop(worker.ident, None)
            self._post(worker, ("done", None))

    # ---- controller side ---------------------------------------------------------
    def _drain(self) -> None:
        while self._inbox:
            worker = self._inbox.pop(0)
            arrival = worker.arrival
            self._arrivals += 1
            if worker.status == DETACHED:
                if self._arrivals == self._detach_mark + 1 and self.current is not worker:
                    self.engine.false_detach()
            if arrival[0] == "point":
                worker.status = PARKED
            elif arrival[0] == "block":
                wait = arrival[1]
                worker.status = BLOCKED
                worker.wait = wait
                filename, lineno, funcname = wait.site
                self.trace.append((worker.index, filename, lineno, funcname,
                                   "blocks: " + wait.what))
            else:
                worker.status = DONE
                worker.wait = NOT_WAITING
                if worker.error is not None and self.error_worker is None and \
                        not self.aborting:
                    self.error_worker = worker
            if self.aborting and arrival[0] != "done":
                worker.baton.release()

    def _wait_arrival(self, timeout: float) -> bool:
        self._drain()
        got = self._signal.acquire(True, timeout)
        self._drain()
        return got

    def _wait_for(self, worker: Worker, timeout: float) -> bool:
        deadline = _orig.monotonic() + timeout
        while True:
            self._drain()
            if worker.status != RUNNING:
                return True
            remaining = deadline - _orig.monotonic()
            if remaining <= 0:
                return False
            self._signal.acquire(True, remaining)

    def _enabled(self) -> list[Worker]:
        out = []
        for worker in self.workers:
            if worker.status == PARKED:
                out.append(worker)
            elif worker.status == BLOCKED and worker.wait.ready():
                out.append(worker)
        return out

    def run(self) -> None:
        engine = self.engine
        for worker in self.workers:
            worker.thread = _orig.Thread(target=self._bootstrap, args=(worker,), daemon=True,
                                         name=f"explore-worker-{worker.index}")
        engine.patch()
        try:
            self.state = engine.setup()
            for worker in self.workers:
                worker.status = RUNNING
                worker.thread.start()
                if not self._wait_for(worker, engine.hang_timeout):
                    raise RuntimeError(f"explore: worker {worker.index} did not start")
            self._loop()
        finally:
            self._stop()
            engine.unpatch()

    def _loop(self) -> None:
        engine = self.engine
        while True:
            if self.error_worker is not None or self.divergence:
                return
            enabled = self._enabled()
            if all(worker.status == DONE for worker in self.workers[:len(engine.actors)]):
                return  # threads the actors started and left running are stopped
            if not enabled:
                live = [worker for worker in self.workers if worker.status != DONE]
                timed = [(worker, worker.wait.deadline) for worker in live
                         if worker.status == BLOCKED and worker.wait.deadline is not None]
                if timed:
                    first = min(deadline for _worker, deadline in timed)
                    self.clock = max(self.clock, first)
                    for worker, deadline in timed:
                        if deadline <= self.clock:
                            worker.timed_out = True
                            worker.wait.ready = _true
                    continue
                if any(worker.status == DETACHED for worker in live):
                    if not self._wait_arrival(engine.hang_timeout):
                        self.deadlock = engine.describe_deadlock(self, live)
                        return
                    continue
                self.deadlock = engine.describe_deadlock(self, live)
                return
            choice = self.strategy.choose(enabled, self.current, self.steps)
            if choice is None:  # replay: expected worker not runnable
                if any(worker.status == DETACHED for worker in self.workers) and \
                        self._wait_arrival(engine.patience):
                    self.strategy.retry()
                    continue
                self.divergence = self.strategy.divergence
                return
            self.steps += 1
            self.clock += CLOCK_TICK
            self.choices.append(choice.index)
            self._record_grant(choice)
            self.current = choice
            choice.status = RUNNING
            choice.wait = NOT_WAITING
            choice.baton.release()
            expect_detach = self.strategy.expects_detach()
            timeout = engine.step_timeout if expect_detach is not False else engine.patience
            if not self._wait_for(choice, timeout):
                choice.status = DETACHED
                self.detaches += 1
                self._detach_mark = self._arrivals
                self.choices.append(-(choice.index + 1))
                self.current = None
                if expect_detach is False:
                    self.divergence = (f"replay diverged at step {self.steps}: worker "
                                       f"{choice.index} did not reach a switch point")
                    return
            elif expect_detach:
                self.divergence = (f"replay diverged at step {self.steps}: expected worker "
                                   f"{choice.index} to block outside the scheduler, but it "
                                   f"reached a switch point")
                return

    def _record_grant(self, worker: Worker) -> None:
        """Trace the step ``worker`` is about to execute (steps are shown when they run)."""
        arrival = worker.arrival
        if arrival[0] == "point":
            if arrival[1][3] != "start":
                self.trace.append((worker.index,) + arrival[1])
        elif arrival[0] == "block":
            self.trace.append((worker.index,) + arrival[1].site + ("wakes",))

    def _stop(self) -> None:
        """Unwind every worker still inside the schedule and join all threads."""
        self.aborting = True
        for worker in self.workers:
            if worker.status in (PARKED, BLOCKED):
                worker.status = RUNNING
                worker.baton.release()
        deadline = _orig.monotonic() + self.engine.join_timeout
        for worker in self.workers:
            while worker.thread.is_alive() and _orig.monotonic() < deadline:
                self._wait_arrival(0.005)
                worker.thread.join(0.001)
        self._drain()
        self.abandoned = [worker for worker in self.workers if worker.thread.is_alive()]
        for worker in self.abandoned:
            if worker.ident is not None:
                _CURRENT.pop(worker.ident, None)

    def worker_stack(self, worker: Worker) -> str:
        """Formatted user frames of a live worker thread (for hang reports)."""
        frame = sys._current_frames().get(worker.ident) if worker.ident is not None else None
        if frame is None:
            return ""
        stack = [entry for entry in traceback.extract_stack(frame)
                 if not own_file(entry.filename)]
        return "".join(traceback.format_list(stack[-6:]))


def _true() -> bool:
    return True


class RawThread:
    """A thread started with ``_thread``, using only real primitives."""

    def __init__(self, target: Callable[..., object], *args: object) -> None:
        self._target, self._args = target, args
        self._running = _orig.allocate_lock()
        self._running.acquire()

    def start(self) -> None:
        def main() -> None:
            try:
                self._target(*self._args)
            finally:
                self._running.release()

        _orig.start_new_thread(main, ())

    def is_alive(self) -> bool:
        return self._running.locked()

    def join(self, timeout: float | None = None) -> None:
        if self._running.acquire(True, -1 if timeout is None else timeout):
            self._running.release()
