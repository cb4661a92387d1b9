"""One schedule: N worker threads of which exactly one runs at a time.

The running worker decides at each of its switch points who runs next; it hands
the turn over (by releasing the chosen worker's baton) only when the schedule
switches.  The controller watches for workers that block outside the scheduler.
"""

from __future__ import annotations

import _thread
import dataclasses
import os
import sys
import threading
import traceback
from collections.abc import Callable, Sequence
from types import FrameType
from typing import Any, Literal, Protocol

from .. import originals
from ..progress import CPU_EPSILON, extract_stack, read_proc, stat_fields, thread_cpu
from . import _orig
from .accesses import ALL, EVERYTHING_EVENT, NOTHING, Event, Guard, Objects, releasing
from .blind import BlindSpots
from .instrument import own_file
from .lockorder import LockKey, LockOrder
from .strategies import Strategy

# A worker's status:
STARTING = "starting"  # its thread has not reached its first switch point yet
PARKED = "parked"  # at a switch point, waiting to be granted its next step
RUNNING = "running"  # holds the turn: runs until its next switch point
BLOCKED = "blocked"  # parked in a patched primitive until its Wait is ready
DETACHED = "detached"  # held the turn but did not come back: blocked outside the scheduler
DONE = "done"  # its actor returned or raised
CLOCK_TICK = 1e-6  # virtual seconds per scheduling step

Site = tuple[str, int, str]  # filename, lineno, funcname of a step in user code
Point = tuple[str, int, str, str | None]  # a site and what the step does there, if known
Step = tuple[int, str, int, str, str | None]  # one trace entry: worker index, then a Point
Actor = Callable[[Any], Any]  # called with the state setup() made; returns user data
# sys.settrace's trace function; ``arg`` depends on the event (a return value, an exc_info)
TraceFunction = Callable[[FrameType, str, Any], "TraceFunction | None"]

_CURRENT: dict[int, Worker] = {}  # thread ident -> Worker, for workers of the active schedule
_ACTIVE: list[Schedule] = []  # the schedule running now, if one is


class Abort(BaseException):
    """Raised inside a worker to unwind it when its schedule is stopped."""


def current_worker() -> Worker | None:
    """The worker the calling thread is, in the active schedule; None outside one."""
    return _CURRENT.get(_orig.get_ident())


def active_schedule() -> Schedule | None:
    """The schedule that is running (its setup included); None between schedules."""
    return _ACTIVE[-1] if _ACTIVE else None


def unseen(what: str, site: Site | tuple[str, int] | None = None) -> None:
    """Tell the running schedule that a step's effects could not be seen
    (:meth:`Schedule.unseen`); nothing outside a schedule."""
    worker = current_worker()
    schedule = worker.schedule if worker is not None else active_schedule()
    if schedule is not None:
        schedule.unseen(what, site if site is not None else user_site(2))


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

    @property
    def precise(self) -> bool: ...

    @property
    def lock_order(self) -> LockOrder | None: ...

    @property
    def deadline(self) -> float | None: ...  # _orig.monotonic() time the search must end by

    def is_user(self, filename: str) -> bool: ...

    def setup(self) -> Any: ...

    def patch(self) -> None: ...

    def unpatch(self) -> None: ...

    def false_detach(self) -> None: ...

    def describe_deadlock(self, schedule: Schedule, live: list[Worker]) -> str: ...

    def name_of(self, obj: object, schedule: Schedule) -> str: ...


class HeldLock(Protocol):
    """What a worker holds: an explore ``primitives.Lock`` (a Protocol, because
    primitives.py imports this module)."""

    _site: Site | None  # where it was acquired
    _key: LockKey  # where it was made (lockorder)


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
    # Held while the worker waits for the turn; released to give it the turn.
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
    native_id: int | None = None  # its thread's native id (for its CPU time)
    detached_at: int = -1  # the step count when it was last detached
    # When it was last detached: (_orig.monotonic(), its thread's CPU seconds)
    detached_since: tuple[float, float | None] = (0.0, None)
    # The last look at its thread while it was late to a switch point, if it slept
    # then: (the step count, the timeslices it had run); see Schedule._blocked
    look: tuple[int, int] | None = None
    late_cpu: tuple[int, float | None] = (-1, None)  # (step count, CPU seconds) when late
    # For DPOR (a precise schedule): what its next step touches, and when it can run
    # without blocking (None: whenever it is parked); the object that stands for the
    # thread (its Thread, for start and join); the worker that started it.
    event: Event = NOTHING
    guard: Guard | None = None
    marker: object = None
    parent: int | None = None
    # In the scheduler's own code (a decision runs on the worker's thread): a switch
    # point reached from there (a strategy defined in traced code) is not one.
    deciding: bool = False
    # For DPOR: calls into code explore does not see that are still running, each
    # with its caller's frame, the event its callbacks' steps carry, and whether the
    # Python code it runs was foreseen (hooks.py, tracing.Guard).
    opaque: list[tuple[FrameType, Event, bool]] = dataclasses.field(default_factory=list)

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
    """Runs the actors once under ``strategy``; fills trace, choices and findings.

    One worker holds the turn at a time.  At a switch point the running worker
    itself asks the strategy who goes next: if it is itself, it goes on at once
    (a function call, no thread hand-off); otherwise it hands the turn straight
    to the chosen worker and parks on its baton.  The controller (the thread that
    calls :meth:`run`) only watches: it takes the turn from a worker that has
    not reached a switch point within the step timeout (blocked outside the
    scheduler: *detached*), waits for detached workers when nobody else can run,
    and ends the schedule.
    """

    def __init__(self, engine: EngineView, strategy: Strategy) -> None:
        self.engine = engine
        self.is_user = engine.is_user
        self.state: Any = None  # what engine.setup() made for this schedule
        self.strategy = strategy
        self.workers = [Worker(self, index, actor) for index, actor in enumerate(engine.actors)]
        # A precise schedule (DPOR) describes every step's accesses, makes every
        # primitive operation that others can see a switch point, and ends each
        # worker with one (so joins order after it).
        self.precise = engine.precise
        # What the access observer could not see in this schedule (see blind.py).
        self.blind = BlindSpots()
        self.objects = Objects(self.blind)
        strategy.attach(self.workers)
        self.trace: list[Step] = []
        # worker index, or -(index+1) for "did not come back in time"
        self.choices: list[int] = []
        self.steps = 0
        self.clock = 0.0
        self.current: Worker | None = None  # the worker holding the turn
        self.last: Worker | None = None  # the worker that ran the last step
        self.aborting = False
        self.finished = False
        self.error_worker: Worker | None = None
        self.deadlock: str | None = None
        self._caught: tuple[int, ...] = ()  # the actors a deadlock caught
        # A worker never finishes: it runs outside the scheduler's view, using CPU.
        self.spin: str | None = None
        # The time limit stopped the schedule before it ended: who was still running.
        self.cut: str | None = None
        self.divergence: str | None = None
        self.detaches = 0
        self.timers = 0  # times virtual time had to pass (a timed wait or a sleep)
        self.pruned = False  # the strategy stopped it: it only repeated explored ones
        self.left_running = 0  # threads the actors started that were still running at the end
        self._made: dict[tuple[str, int], int] = {}  # locks made so far at each site
        self.abandoned: list[Worker] = []
        self.expect_detach: bool | None = None  # replay: the running step should detach
        self._replaying = strategy.name == "replay"
        # Who could run at the last full decision.  Between two switch points of the
        # running worker only it changes what others wait for, and only through the
        # primitives, which mark the set ``dirty``: until then it is still right.
        self._enabled_cache: list[Worker] = []
        self.dirty = True
        self.polling = 0  # workers blocked on a wait that no primitive operation ends
        self._open = False  # the controller made the first decision
        self._lock = _orig.allocate_lock()  # guards everything above, held briefly
        self._wake = _orig.allocate_lock()  # released to wake the controller
        self._wake.acquire()
        self.mono0 = _orig.monotonic()
        self.wall0 = _orig.wall_time()

    # ---- worker side -------------------------------------------------------------
    def unseen(self, what: str, site: Site | tuple[str, int] | None = None) -> None:
        """A step whose effects could not be seen: ``what`` (``"os.environ"``), at
        ``site`` (the caller's user site if None).  The search is then never
        complete, and its verdict names it."""
        where = site if site is not None else user_site(2)
        self.blind.add(what, (where[0], where[1]))

    def point(self, worker: Worker, filename: str, lineno: int, funcname: str,
              what: str | None = None) -> None:
        """A switch point: decide who runs next (usually: go on)."""
        self._switch(worker, ("point", (filename, lineno, funcname, what)))

    def op_point(self, worker: Worker, what: str, touches: tuple[object, ...] = (),
                 writes: bool = True, guard: Guard | None = None) -> Site:
        """A switch point at an operation on a primitive; returns its user site.  The
        operation follows: it may change who can run, so the next decision looks.
        For DPOR the operation ``touches`` those primitives (reading or writing
        them), and can run without blocking while ``guard()`` holds."""
        site = user_site(3)
        if self.precise:
            objects = self.objects
            worker.event = tuple((objects(each), ALL, writes) for each in touches)
            worker.guard = guard
        self._switch(worker, ("point", site + (what,)))
        self.dirty = True
        return site

    def sync_point(self, worker: Worker, what: str, touches: tuple[object, ...],
                   writes: bool = True, releases: bool = False) -> None:
        """An operation others can observe that is a switch point only for DPOR
        (a release, a finished thread): other strategies go on without a decision."""
        if self.precise:
            self.op_point(worker, what, touches, writes, releasing if releases else None)
        else:
            self.dirty = True

    def block(self, worker: Worker, ready: Callable[[], bool], resource: object, what: str,
              deadline: float | None = None, polled: bool = False) -> bool:
        """Park until ``ready()`` (or the virtual ``deadline``); False on timeout.
        ``polled``: ``ready()`` may turn true without a primitive's operation (a file
        another thread writes to), so every decision looks again while it waits."""
        wait = Wait(ready, resource, what, deadline, user_site(3))
        worker.timed_out = False
        if self.precise:  # waking up, it goes on with the primitive
            worker.event = ((self.objects(resource), ALL, True),) if resource is not None \
                else NOTHING
            if polled:  # what ends the wait is no access explore sees
                worker.event = EVERYTHING_EVENT
            worker.guard = None
        self.polling += polled
        try:
            self._switch(worker, ("block", wait))
        finally:
            self.polling -= polled
        return not worker.timed_out

    def _switch(self, worker: Worker, arrival: Arrival) -> None:
        """``worker`` reached a switch point (or blocked): if the turn is its own
        (or nobody's), decide; go on at once if chosen, else park until granted."""
        if worker.deciding:
            return
        worker.deciding = True
        try:
            granted = self._arrive(worker, arrival)
        finally:
            worker.deciding = False
        if granted:
            return  # its own turn again: go on
        worker.baton.acquire()
        if self.aborting:
            raise Abort()

    def _arrive(self, worker: Worker, arrival: Arrival) -> bool:
        """The decision part of :meth:`_switch`: True if ``worker`` goes on at once."""
        with self._lock:
            if self.aborting:
                raise Abort()
            returning = worker.status == DETACHED
            if returning or arrival[0] != "point":
                self.dirty = True
            worker.arrival = arrival
            if arrival[0] == "point":
                worker.status = PARKED
            elif arrival[0] == "block":
                wait = arrival[1]
                worker.status, worker.wait = BLOCKED, wait
                self.trace.append((worker.index, *wait.site, "blocks: " + wait.what))
            if returning and worker.detached_at == self.steps and self.current is None:
                self.engine.false_detach()  # back before anyone else ran: just slow
            if self.current is worker and not self.dirty and arrival[0] == "point" and \
                    not self._replaying and not self.polling:
                # The fast path: the same workers can run as at the last decision.
                choice = self.strategy.choose(self._enabled_cache, worker, self.steps)
                if choice is None:
                    self._no_choice()
                else:
                    self._grant(choice)
                    return choice is worker
            elif self._open and (self.current is worker or self.current is None):
                if self.current is worker and self.expect_detach:
                    self._diverge(f"replay diverged at step {self.steps}: expected worker "
                                  f"{worker.index} to block outside the scheduler, but it "
                                  "reached a switch point")
                else:
                    return self._decide() is worker
        return False

    def now(self) -> float:
        return self.clock

    def unfinished(self) -> tuple[int, ...]:
        """The actors' workers that have not finished; after a deadlock, those it
        caught (winding the schedule down finishes them)."""
        if self._caught:
            return self._caught
        return tuple(worker.index for worker in self.workers[:len(self.engine.actors)]
                     if worker.status != DONE)

    def _deadlocked(self, live: list[Worker]) -> None:
        self.deadlock = self.engine.describe_deadlock(self, live)
        self._caught = tuple(worker.index for worker in live
                             if worker.index < len(self.engine.actors))

    def lock_key(self, site: Site) -> LockKey:
        """The key of a lock made at ``site`` now: the site and how many locks were made
        there before in this schedule (the same in every schedule that runs alike)."""
        where = (site[0], site[1])
        ordinal = self._made.get(where, 0)
        self._made[where] = ordinal + 1
        return (site[0], site[1], ordinal)

    def took_lock(self, worker: Worker, lock: HeldLock, site: Site) -> None:
        """``worker`` took ``lock`` at ``site`` (before adding it to what it holds):
        the lock-order graph learns the order against every lock it holds."""
        order = self.engine.lock_order
        if order is None or not worker.held:
            return
        locks = {held._key: held for held in worker.held}
        locks[lock._key] = lock

        def name(key: LockKey) -> str:
            return self.engine.name_of(locks[key], self)

        order.took(worker.index, lock._key, site,
                   [(held._key, held._site or ("?", 0, "?")) for held in worker.held], name)

    def spawn(self, run: Callable[[], object], marker: object = None) -> Worker:
        """A worker starts a thread: it becomes one more worker of this schedule.

        Returns once the new worker has reached its first switch point (and
        parked there: the spawning worker holds the turn), so the next decision
        sees it.  ``marker`` stands for the thread (its Thread object).
        """
        worker = Worker(self, len(self.workers), lambda _state: run())
        worker.status = STARTING
        worker.marker = marker
        parent = current_worker()
        worker.parent = parent.index if parent is not None else None
        with self._lock:
            self.workers.append(worker)
            self.dirty = True
        # Not threading.Thread: it would wait for its start on a (patched) Event.
        thread = worker.thread = RawThread(self._bootstrap, worker)
        thread.start()
        while worker.arrival is NOT_ARRIVED and thread.is_alive():
            _orig.sleep(0)
        return worker

    def _bootstrap(self, worker: Worker) -> None:
        worker.ident = _orig.get_ident()
        worker.native_id = _thread.get_native_id()
        _CURRENT[worker.ident] = worker
        engine = self.engine
        try:
            self._switch(worker, ("point", ("<start>", 0, "<start>", "start")))
            if engine.settrace is not None:
                sys.settrace(engine.settrace)
            try:
                worker.ret = worker.actor(self.state)
            finally:
                if engine.settrace is not None:
                    sys.settrace(None)
            if self.precise and worker.marker is not None:
                # A started thread's end is a step its join is ordered after.
                worker.event = ((self.objects(worker.marker), ALL, True),)
                worker.guard = releasing
                self._switch(worker, ("point", ("<end>", 0, "<end>", "end")))
        except Abort:
            pass
        except BaseException as exc:  # noqa: BLE001 - every worker failure is a finding
            if not self.aborting:
                worker.error = exc
        finally:
            _CURRENT.pop(worker.ident, None)
            self._finish_worker(worker)

    def _finish_worker(self, worker: Worker) -> None:
        """``worker``'s actor returned or raised: hand the turn on, or end."""
        with self._lock:
            worker.status, worker.wait = DONE, NOT_WAITING
            worker.arrival = ("done", None)
            self.dirty = True
            if worker.error is not None and self.error_worker is None and not self.aborting:
                self.error_worker = worker
            if self._open and not self.aborting and \
                    (self.current is worker or self.current is None):
                self.current = None
                self._decide()
            elif self.aborting:
                self._signal()

    # ---- deciding (under the lock) ---------------------------------------------
    def _enabled(self) -> list[Worker]:
        out = []
        for worker in self.workers:
            status = worker.status
            if status == PARKED or (status == BLOCKED and worker.wait.ready()):
                out.append(worker)
        return out

    def _decide(self) -> Worker | None:
        """Give the turn to the worker the strategy picks, and return it; None when
        the schedule is over or nobody can run now (the controller then waits for
        detached workers)."""
        engine = self.engine
        while True:
            if self.error_worker is not None or self.divergence or self.finished or \
                    all(worker.status == DONE for worker in self.workers[:len(engine.actors)]):
                if self.error_worker is None and not self.divergence and not self.finished:
                    self.left_running = sum(1 for worker in self.workers[len(engine.actors):]
                                            if worker.status != DONE)
                self._end()  # threads the actors started and left running are stopped
                return None
            enabled = self._enabled_cache = self._enabled()
            self.dirty = False
            if not enabled:
                if self._advance_timers():
                    continue
                live = [worker for worker in self.workers if worker.status != DONE]
                if any(worker.status in (DETACHED, STARTING) for worker in live):
                    self.current = None
                    self._signal()  # the controller waits for them to come back
                    return None
                self._deadlocked(live)
                self._end()
                return None
            choice = self.strategy.choose(enabled, self.last, self.steps)
            if choice is None:
                self._no_choice()
                return None
            self._grant(choice)
            return choice

    def _no_choice(self) -> None:
        """The strategy chose nobody: it pruned the schedule (DPOR: the rest would
        repeat an explored interleaving), or, replaying, the expected worker cannot
        run (yet: it may be detached; otherwise the replay diverged)."""
        if self.strategy.pruned:
            self.pruned = True
            self._end()
        elif any(worker.status == DETACHED for worker in self.workers):
            self.current = None
            self._signal()
        else:
            self._diverge(self.strategy.divergence or "replay diverged")

    def _grant(self, worker: Worker) -> None:
        self.steps += 1
        self.clock += CLOCK_TICK
        self.choices.append(worker.index)
        arrival = worker.arrival  # trace the step it is about to execute
        if arrival[0] == "point":
            if arrival[1][3] not in ("start", "end"):
                self.trace.append((worker.index, *arrival[1]))
        elif arrival[0] == "block":
            self.trace.append((worker.index, *arrival[1].site, "wakes"))
        waiting = worker is not self.current and worker.status in (PARKED, BLOCKED)
        if worker.status == BLOCKED:
            self.dirty = True  # it leaves its wait: the set changes
        self.current = self.last = worker
        worker.status, worker.wait = RUNNING, NOT_WAITING
        if self._replaying:
            self.expect_detach = self.strategy.expects_detach()
        if waiting and worker.ident != _orig.get_ident():
            worker.baton.release()

    def _advance_timers(self) -> bool:
        """Nobody can run: let virtual time pass to the first timed wait's end."""
        timed = [worker for worker in self.workers
                 if worker.status == BLOCKED and worker.wait.deadline is not None]
        if not timed:
            return False
        first = min(worker.wait.deadline for worker in timed if worker.wait.deadline)
        self.clock = max(self.clock, first)
        self.timers += 1
        for worker in timed:
            deadline = worker.wait.deadline
            if deadline is not None and deadline <= self.clock:
                worker.timed_out = True
                worker.wait.ready = _true
        return True

    def _diverge(self, text: str) -> None:
        self.divergence = text
        self._end()

    def _end(self) -> None:
        self.finished = True
        self.current = None
        self._signal()

    def _signal(self) -> None:
        try:
            self._wake.release()
        except RuntimeError:
            pass  # already signalled

    # ---- controller side ---------------------------------------------------------
    def run(self) -> None:
        engine = self.engine
        for worker in self.workers:
            worker.status = STARTING
            worker.thread = _orig.Thread(target=self._bootstrap, args=(worker,), daemon=True,
                                         name=f"explore-worker-{worker.index}")
        engine.patch()
        _ACTIVE.append(self)
        try:
            self.state = engine.setup()
            for worker in self.workers:
                thread = worker.thread
                assert isinstance(thread, _orig.Thread)  # an actor's: a real Thread
                originals.start(thread)  # whatever a test put in Thread.start
                if not self._arrived(worker, engine.hang_timeout):
                    raise RuntimeError(f"explore: worker {worker.index} did not start")
            with self._lock:
                self._open = True
                self._decide()
            self._watch()
        finally:
            self._stop()
            _ACTIVE.remove(self)
            engine.unpatch()

    def _arrived(self, worker: Worker, timeout: float) -> bool:
        deadline = _orig.monotonic() + timeout
        while worker.arrival is NOT_ARRIVED and worker.status != DONE:
            if _orig.monotonic() > deadline:
                return False
            _orig.sleep(0.0001)
        return True

    def _watch(self) -> None:
        """Until the schedule ends: take the turn from a worker that does not reach
        a switch point in time, and give up on detached workers that never return."""
        engine = self.engine
        seen: tuple[Worker | None, int] = (None, -1)
        since = _orig.monotonic()
        while True:
            replaying = self.expect_detach is not None
            timeout = engine.step_timeout if not replaying or self.expect_detach else \
                engine.patience
            self._wake.acquire(True, timeout)
            with self._lock:
                if self.finished:
                    return
                now = _orig.monotonic()
                if engine.deadline is not None and now >= engine.deadline:
                    self._out_of_time()
                    return
                if (self.current, self.steps) != seen:
                    seen, since = (self.current, self.steps), now
                    continue
                if self.current is None:  # waiting for detached workers to come back
                    if now - since >= (engine.patience if replaying else engine.hang_timeout):
                        if self.strategy.divergence is not None or replaying:
                            self.strategy.retry()
                            if self._decide() is None and not self.finished and \
                                    now - since >= engine.hang_timeout:
                                self._hang()
                        else:
                            self._hang()
                    continue
                if now - since >= timeout and self.current.status == RUNNING:
                    worker = self.current
                    if self._blocked(worker) is not False:  # True; None: cannot tell
                        self._detach(worker)
                        seen, since = (self.current, self.steps), now
                    elif now - since >= engine.hang_timeout and self._spinning(worker):
                        self.spin = self.still_running(worker)
                        self._end()
                        return

    def _blocked(self, worker: Worker) -> bool | None:
        """Whether ``worker``, late to its next switch point, is blocked outside the
        scheduler: its thread asleep in the kernel (a lock, a sleep, I/O) at two
        looks a step timeout apart, without running in between.  A thread that is
        merely slow (the machine is busy: runnable, or running) is not: a verdict
        must not depend on the load.  None where /proc cannot tell (detach then)."""
        look = _thread_look(worker.native_id)
        if look is None:
            return None
        state, slices = look
        if self.steps != worker.late_cpu[0]:
            worker.late_cpu = (self.steps, thread_cpu(worker.native_id))
        if state not in ("S", "D"):
            worker.look = None
            return False
        previous, worker.look = worker.look, (self.steps, slices)
        return previous == worker.look

    def _spinning(self, worker: Worker) -> bool:
        """Whether ``worker`` used CPU since it was first late to this switch point."""
        step, before = worker.late_cpu
        now = thread_cpu(worker.native_id)
        return step == self.steps and before is not None and now is not None and \
            now - before > CPU_EPSILON

    def _detach(self, worker: Worker) -> None:
        """``worker`` did not come back in time: blocked outside the scheduler."""
        worker.status = DETACHED
        self.dirty = True
        worker.detached_at = self.steps
        worker.detached_since = (_orig.monotonic(), thread_cpu(worker.native_id))
        self.detaches += 1
        self.choices.append(-(worker.index + 1))
        self.current = None
        expected, self.expect_detach = self.expect_detach, None
        if expected is False:
            self._diverge(f"replay diverged at step {self.steps}: worker {worker.index} "
                          "did not reach a switch point")
            return
        self._decide()

    def _hang(self) -> None:
        """Nobody can run and the detached workers did not come back: a deadlock or
        a hang - unless a detached worker is still using CPU (a spin, or work outside
        the scheduler's view): that is a worker that never finishes, never a deadlock."""
        live = [worker for worker in self.workers if worker.status != DONE]
        running = [worker for worker in live
                   if worker.status == DETACHED and self._using_cpu(worker)]
        if running:
            self.spin = "\n".join(self.still_running(worker) for worker in running)
        else:
            self._deadlocked(live)
        self._end()

    def _out_of_time(self) -> None:
        """The time limit ran out while this schedule ran: stop it, saying who was
        still running, and where."""
        live = [worker for worker in self.workers if worker.status != DONE]
        self.cut = "\n".join(self.still_running(worker) for worker in live) or \
            "every worker had finished"
        self._end()

    def _using_cpu(self, worker: Worker) -> bool:
        """Whether a detached worker's thread used CPU since it was detached."""
        since = worker.detached_since[1]
        now = thread_cpu(worker.native_id)
        return since is not None and now is not None and now - since > CPU_EPSILON

    def still_running(self, worker: Worker) -> str:
        """``worker 1 still running after 5.0 s (spinning at test_x.py:7, ...)``: where
        it is, and whether it spins outside the scheduler's view (using CPU without
        reaching a switch point), is blocked there, or still reaches switch points."""
        elapsed = _orig.monotonic() - self.mono0
        head = f"worker {worker.index} still running after {elapsed:.1f} s"
        if worker.status == RUNNING and worker is self.current and \
                worker.late_cpu[0] == self.steps and worker.late_cpu[1] is not None:
            cpu = (thread_cpu(worker.native_id) or 0.0) - worker.late_cpu[1]
            where = _site_text(_innermost(worker, self.is_user))
            return (f"{head} (spinning at {where}, outside the scheduler's view: "
                    f"{cpu_text(cpu)} of CPU since its last switch point, a loop that "
                    f"touches nothing shared or a call that does not return)")
        if worker.status == DETACHED:
            where = _site_text(_innermost(worker, self.is_user))
            if self._using_cpu(worker):
                cpu = (thread_cpu(worker.native_id) or 0.0) - (worker.detached_since[1] or 0.0)
                return (f"{head} (spinning at {where}, outside the scheduler's view: "
                        f"{cpu_text(cpu)} of CPU since its last switch point, a loop that "
                        f"touches nothing shared or a call that does not return)")
            return f"{head} (blocked at {where}, outside the scheduler's view)"
        if worker.status == BLOCKED:
            return f"{head} (waiting at {_site_text(worker.wait.site)})"
        arrival = worker.arrival
        site = arrival[1] if arrival[0] == "point" else _innermost(worker, self.is_user)
        return (f"{head} (at {_site_text(site)}, still reaching switch points: "
                f"{self.steps} steps in this schedule)")

    def _stop(self) -> None:
        """Unwind every worker still inside the schedule and join all threads."""
        with self._lock:
            self.aborting = True
            self.finished = True
            for worker in self.workers:
                if worker.status in (PARKED, BLOCKED) and worker is not self.current:
                    worker.baton.release()
                    worker.status = RUNNING
            spinning = [worker for worker in self.workers
                        if worker.status == DETACHED and self._using_cpu(worker)]
        for worker in spinning:  # it would not come back: stopped where it runs bytecode
            _interrupt(worker)
        self._join(self.engine.join_timeout)
        for worker in self.workers:  # came out of a call into user code, or spins there
            if worker.thread.is_alive() and worker.status in (DETACHED, RUNNING):
                _interrupt(worker)
        self._join(0.2)
        self.abandoned = [worker for worker in self.workers if worker.thread.is_alive()]
        for worker in self.abandoned:
            if worker.ident is not None:
                _CURRENT.pop(worker.ident, None)

    def _join(self, seconds: float) -> None:
        deadline = _orig.monotonic() + seconds
        for worker in self.workers:
            while worker.thread.is_alive() and _orig.monotonic() < deadline:
                worker.thread.join(0.005)

    def worker_stack(self, worker: Worker) -> str:
        """Formatted user frames of a live worker thread (for hang reports)."""
        frame = sys._current_frames().get(worker.ident) if worker.ident is not None else None
        if frame is None:
            return ""
        stack = [entry for entry in extract_stack(frame)  # source read without open() (3.13t)
                 if not own_file(entry.filename)]
        return "".join(traceback.format_list(stack[-6:]))


def _true() -> bool:
    return True


def cpu_text(seconds: float) -> str:
    """CPU seconds as a claim can print them: never "0.0 s" for more than nothing."""
    return f"{seconds:.1f} s" if seconds >= 0.95 else f"{seconds:.2f} s"


def _thread_look(native_id: int | None) -> tuple[str, int] | None:
    """(its state letter, the timeslices it has run) of a thread of this process, from
    /proc; None where that cannot be read."""
    if native_id is None:
        return None
    try:
        state = stat_fields(f"/proc/self/task/{native_id}/stat")[0].decode()
        slices = int(read_proc(f"/proc/self/task/{native_id}/schedstat").split()[2])
    except (OSError, IndexError, ValueError):
        return None
    return state, slices


def _interrupt(worker: Worker) -> None:
    """Raise :class:`Abort` in ``worker``'s thread at its next bytecode: a worker
    outside the scheduler (spinning, or back from a blocking call) is stopped
    there, as a parked one is at its switch point."""
    if worker.ident is None or not worker.thread.is_alive():
        return
    import ctypes

    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(worker.ident),
                                               ctypes.py_object(Abort))


def _innermost(worker: Worker, is_user: Callable[[str], bool]) -> Site | None:
    """The innermost user-code frame of ``worker``'s thread, if it is running."""
    frame = sys._current_frames().get(worker.ident) if worker.ident is not None else None
    first = None
    while frame is not None:
        filename = frame.f_code.co_filename
        if not own_file(filename):
            site = (filename, frame.f_lineno, frame.f_code.co_name)
            if is_user(filename):
                return site
            first = first or site
        frame = frame.f_back
    return first


def _site_text(site: Site | Point | None) -> str:
    return f"{os.path.basename(site[0])}:{site[1]}" if site else "?"


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
