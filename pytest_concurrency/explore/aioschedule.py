"""One schedule of asyncio tasks: every callback the loop is given is a decision.

The actors run as tasks on an :class:`~.aioloop.ExploreLoop`.  Every callback
the loop is handed becomes part of a *unit* the strategy chooses among: a task
(its steps: each runs the coroutine from one await that suspended it to the
next), or a callback of its own (a timer, a future's done-callback, a
``call_soon``) that runs once.

The orders explored are those asyncio itself can produce if awaited *time* took
longer (the model): the loop's ready callbacks form one FIFO queue, as
asyncio's; every wake-up the program causes (a future's result, ``Event.set``, a
``Lock`` release, a ``Queue`` put, a task ending, ``cancel()``, ``call_soon``
callbacks, done callbacks, the first step of a task the program starts) keeps its
place in it.  An entry that stands for time - a task resuming from
``asyncio.sleep(d)`` (``d >= 0``: ``sleep(0)`` included), a timer's callback, and
what a sleep's timer wakes - is *delayable*: the strategy may run later entries
before it, as if the sleep took longer, but never runs it earlier than its place.
The actors' first steps are delayable too: the actors stand for independent
clients, and the order the harness makes them in is not the program's, so any of
them may start first, and start late; once started, they follow the rules above.
So at every step the candidates are the queue's entries from its head up to and
including the first that may not be delayed; the entries passed over stay
delayable (up to :data:`FAIR_STREAK` times: then it runs, and the verdict says an
order was cut).

Time is virtual: it stands still while anything is ready and jumps to the
next timer when nothing is; the timers due at one instant join the queue in
deadline order and, being delayable, fire in the order the strategy picks.
When nothing is ready, no timer is left and no thread outside the schedule may
still call back, the tasks that have not finished are deadlocked, and the
schedule ends at once with what each waits for.

The schedule runs on a thread of its own (``aio.LoopThread``); the thread that
explores waits for it, and calls a task that keeps the loop for longer than the
hang timeout (a blocking call in a coroutine) a hang.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import dataclasses
import inspect
import math
import os
import sys
import threading
from collections.abc import Callable, Sequence
from types import FrameType
from typing import Any, Protocol

from .. import texts
from ..progress import CPU_EPSILON, thread_cpu
from . import _orig, aiotime, aiowaits
from .accesses import ALL, NOTHING, Event, Objects
from .aioloop import Entry, ExploreLoop, Site
from .aiooutside import Outside
from .aiowaits import coroutine_frames
from .blind import BlindSpots
from .instrument import UserCode
from .lockorder import LockKey, LockOrder
from .scheduler import cpu_text
from .strategies import Strategy


class EngineView(Protocol):
    """What a schedule uses of the engine that runs it (``aio.AioEngine``)."""

    @property
    def actors(self) -> Sequence[Callable[[Any], Any]]: ...

    @property
    def is_user(self) -> UserCode: ...

    @property
    def lock_order(self) -> LockOrder | None: ...

    @property
    def patience(self) -> float: ...

    @property
    def hang_timeout(self) -> float: ...

    @property
    def deadline(self) -> float | None: ...  # _orig.monotonic() time the search must end by

    @property
    def executor(self) -> concurrent.futures.Executor: ...

    def setup(self) -> Any: ...

    def event_loop(self, driver: AsyncSchedule) -> ExploreLoop: ...

    def run_on_loop_thread(self, schedule: AsyncSchedule, job: Callable[[], None]) -> None: ...


READY = "ready"  # a step (or the callback) is scheduled and may run now
WAITING = "waiting"  # a task awaiting a future; a timer not due yet
DONE = "done"  # dpor.DONE: a finished task, a callback that ran or was cancelled
Step = tuple[int, str, int, str, str | None]  # a trace row: lane, file, line, function, what

# Every step writes it unless what it touches is known: a task's step can run any
# code, so it depends on every other step; a step that touches only some of
# explore's objects reads it, so that it still depends on every such task step.
UNIVERSE = type("Universe", (), {"__repr__": lambda self: "<anything>"})()
FAIR_STREAK = 64  # times a delayable entry may be passed over before it must run
MAX_STEPS = 100_000  # a schedule that takes more is a livelock

# The callback an ``asyncio.sleep()`` timer runs: it completes one future and touches
# nothing else (a private name: without it, the timer depends on every step).
_SLEEP_DONE: object = getattr(asyncio.futures, "_set_result_unless_cancelled", None)


class Abort(BaseException):
    """Raised in the loop thread to stop a step that does not give the loop back."""


@dataclasses.dataclass(eq=False)
class Lane:
    """A task of the schedule as the reports show it: a worker (the actors first,
    then the tasks they start, in the order they were made)."""

    index: int  # the worker number: its column in the interleaving
    unit: Unit
    actor: bool  # one of the actors (its result and error are the schedule's)
    ret: Any = None  # the actor's result
    error: BaseException | None = None  # what the actor raised
    held: list[Any] = dataclasses.field(default_factory=list)  # asyncio Locks it holds
    origin: str = ""  # "started by worker 0 at k.py:12" for a task an actor started

    def __repr__(self) -> str:
        return f"{'worker' if self.actor else 'task'} {self.index}"

    @property
    def task(self) -> asyncio.Task[Any] | None:
        return self.unit.task


@dataclasses.dataclass(eq=False)
class Unit:
    """What the strategy picks: a task (one step per grant) or one callback."""

    index: int  # its number among the schedule's units (the replay token's choices)
    task: asyncio.Task[Any] | None  # None for a callback
    lane: int  # the lane that shows its steps
    parent: int | None  # the unit whose step made it (DPOR orders it after that step)
    status: str = WAITING
    queued: int = 0  # its entries in the ready queue
    timer: Entry | None = None  # a timer's entry, until it is due
    sleep: bool = False  # an asyncio.sleep() timer: what it wakes stands for time too
    when: float | None = None  # a timer's time
    effect: Event = ()  # what its next step touches (see :func:`step_event`)
    site: Site | None = None  # where a callback was scheduled, in user code
    what: str | None = None  # what its step is called in the interleaving (callbacks)
    guard: None = None  # dpor.View: a ready unit can always run

    @property
    def event(self) -> Event:
        """DPOR's view of its next step: what it touches, if it can run now."""
        return self.effect if self.status == READY else NOTHING

    def __repr__(self) -> str:
        return f"unit {self.index} ({'task' if self.task is not None else 'callback'})"


def step_event(objects: Objects, unit: Unit, entry: Entry) -> Event:
    """What ``unit``'s step running ``entry`` may touch, for DPOR.  Until steps are
    traced, a task's step touches anything; an ``asyncio.sleep`` timer touches only
    its future.  This is the one place a precise access set would come in."""
    universe = objects(UNIVERSE)
    if unit.task is None and entry.callback is _SLEEP_DONE and entry.args and \
            asyncio.isfuture(entry.args[0]):
        return ((objects(entry.args[0]), ALL, True), (universe, ALL, False))
    return ((universe, ALL, True),)


@dataclasses.dataclass(eq=False, slots=True)
class Queued:
    """An entry of the ready queue: a unit's callback, and whether the strategy may
    run later entries before it (it stands for time: see the module docstring)."""

    unit: Unit
    entry: Entry
    delayable: bool
    passed: int = 0  # times later entries ran before it
    start: bool = False  # an actor's first step (it may start late: see the docstring)


def _is_task(owner: object) -> bool:
    return asyncio.isfuture(owner) and callable(getattr(owner, "get_coro", None))


class AsyncSchedule:
    """Runs the actors once, as tasks, under ``strategy`` (see the module docstring).

    The attributes the engine reads are those of ``scheduler.Schedule``: ``state``,
    ``workers`` (here the tasks, as :class:`Lane`), ``trace``, ``choices``,
    ``steps``, ``error_worker``, ``deadlock``, ``divergence``, ``pruned`` and the
    counters.
    """

    def __init__(self, engine: EngineView, strategy: Strategy) -> None:
        self.engine = engine
        self.is_user = engine.is_user
        self.lock_order = engine.lock_order
        self.strategy = strategy
        self.state: Any = None
        self.units: list[Unit] = []
        self.workers: list[Lane] = []
        strategy.attach(self.units)
        self.objects = Objects()
        self.objects(UNIVERSE)
        self.trace: list[Step] = []
        self.choices: list[int] = []
        self.steps = 0
        # The loop's time() (and time.monotonic() on its thread, see aiotime.py): the
        # real monotonic() at the start, as a whole number of seconds (so that a
        # timer's time less it is exact), plus the virtual seconds that passed.
        self.origin = float(math.ceil(_orig.monotonic()))
        self.now = self.origin
        self.wall0 = _orig.wall_time()
        self.time_advances = 0  # times the clock moved on to the next timer
        self.current: Unit | None = None  # the unit whose step runs now
        self.last: Unit | None = None  # the unit that ran the last step
        self.error_worker: Lane | None = None
        self.deadlock: str | None = None
        self.divergence: str | None = None
        self.pruned = False
        self.finished = False
        self.spin: str | None = None  # scheduler.Schedule's: a worker that never finishes
        self.cut: str | None = None  # the time limit stopped the schedule: who was running
        self.blind = BlindSpots()  # nothing is unseen: task steps conflict with all
        # what scheduler.Schedule counts that a task schedule never does
        self.detaches = 0
        self.timers = 0  # virtual time passing is explored here, not a reason to doubt
        self.left_running = 0  # tasks still unfinished after being cancelled at the end
        self.abandoned: list[Any] = []  # the loop thread, if a step never gave it back
        self.uncontrolled: list[str] = []  # why the search cannot be complete, once each
        self.callback_errors: list[str] = []
        self.loop = engine.event_loop(self)
        self._tasks: dict[asyncio.Task[Any], Unit] = {}
        self._timers: dict[int, Unit] = {}  # id(TimerHandle) -> its unit
        self._live: list[Unit] = []  # units not done
        self._ready: list[Queued] = []  # the loop's ready queue, in FIFO order
        self._made: dict[tuple[str, int], int] = {}  # asyncio Locks made at each site
        self.outside = Outside(engine.executor)  # what other threads hand the loop
        self._actors = len(engine.actors)
        self._wrapped = False  # the leftover tasks were cancelled (the actors are done)
        self._replaying = strategy.name == "replay"
        self.step_started = 0.0  # real time the running step started (for the watchdog)
        self.aborting = False
        self.stopped = False  # the waiting thread gave up on a step (see hung())
        self._sampled: tuple[int, float | None] = (-1, None)  # (step, loop thread's CPU)
        self._stopped: set[int] = set()  # lanes stopped in a step that never ended
        self.started = _orig.monotonic()
        self.closing = False  # unfinished coroutines are being closed
        self._fatal: BaseException | None = None  # KeyboardInterrupt... from a task
        self._ident: int | None = None  # the loop thread

    @property
    def clock(self) -> float:
        """Virtual seconds since the schedule started."""
        return self.now - self.origin

    @property
    def loop_thread(self) -> int | None:
        """The ident of the thread that runs the loop (aiotime reads it)."""
        return self._ident

    @property
    def titles(self) -> list[str]:
        """The interleaving's column heads: the actors are workers, the tasks they
        started are tasks."""
        return [str(lane) for lane in self.workers]

    # ---- the engine's side (the exploring thread) ----------------------------------
    def run(self) -> None:
        """Make the state, run the schedule on the loop thread, and wait for it."""
        engine = self.engine
        contexts = [contextvars.copy_context() for _ in engine.actors]
        aiowaits.patch(self)
        aiotime.patch(self)
        try:
            self.state = engine.setup()
            engine.run_on_loop_thread(self, lambda: self._main(contexts))
        finally:
            aiotime.unpatch(self)
            aiowaits.unpatch(self)
        if self._fatal is not None:
            raise self._fatal

    def hung(self, native_id: int | None = None) -> str | None:
        """Called by the waiting thread: why the loop thread must be stopped, if it
        must (``native_id``: that thread's, for its CPU time).  A step that keeps the
        loop past the time limit ends the search there (``cut``); one that keeps it
        for longer than the hang timeout is a worker that never finishes when it
        uses CPU (``spin``), a hang when it is blocked (``deadlock``)."""
        current = self.current
        if (current is None and not self.closing) or self.deadlock is not None or \
                self.stopped:
            return None
        now = _orig.monotonic()
        step = self.steps
        if self._sampled[0] != step:  # the first look at this step: its CPU so far
            self._sampled = (step, thread_cpu(native_id))
        cpu = _cpu_since(self._sampled[1], native_id)
        deadline = self.engine.deadline
        # the schedule already ended for a reason (the time limit between two steps, too
        # many steps) and is closing: it is stopped if it must be, but keeps its reason
        said = self.cut is not None or self.spin is not None
        if deadline is not None and now >= deadline:
            current_lane = self.workers[current.lane] if current is not None and \
                current.task is not None else None
            if not said:
                self.cut = "\n".join([self._blocking(cpu)] + [
                    self.still_running(lane) for lane in self.workers
                    if lane.unit.status != DONE and lane is not current_lane])
        elif now - self.step_started < self.engine.hang_timeout:
            return None
        elif said:
            pass
        elif cpu is not None and cpu > CPU_EPSILON:
            self.spin = self._blocking(cpu)
        else:
            stack = self._thread_stack()
            text = (f"hang: {self._who()} has not given the event loop back for "
                    f"{self.engine.hang_timeout:g} s: a blocking call in a coroutine (a "
                    "threading lock, blocking I/O) stops every task")
            self.deadlock = text + (f":\n{stack}" if stack else "")
        self.aborting = self.finished = self.stopped = True
        return self.cut or self.spin or self.deadlock

    def _who(self) -> str:
        current = self.current
        lane = self.workers[current.lane] if current is not None and \
            current.lane < len(self.workers) else None
        return str(lane) if lane is not None and current is not None and \
            current.task is not None else "a callback" if current is not None else \
            "a task's finally block, run as its schedule ended,"

    def _blocking(self, cpu: float | None) -> str:
        """``worker 0 still running after 4.0 s (blocking the loop at k.py:7: ...)``."""
        site = self._loop_site()
        where = f"{os.path.basename(site[0])}:{site[1]}" if site else "?"
        elapsed = _orig.monotonic() - self.started
        how = (f"{cpu_text(cpu)} of CPU in one step that never gives the loop back"
               if cpu is not None and cpu > CPU_EPSILON else
               "in a call that does not return")
        return f"{self._who()} still running after {elapsed:.1f} s (blocking the loop at " \
            f"{where}: {how})"

    def _loop_site(self) -> Site | None:
        """The innermost user-code frame the loop thread runs now."""
        frame = sys._current_frames().get(self._ident) if self._ident is not None else None
        while frame is not None:
            code = frame.f_code
            if self.is_user(code.co_filename):
                return (code.co_filename, frame.f_lineno, code.co_name)
            frame = frame.f_back
        return None

    def _thread_stack(self) -> str:
        import traceback

        from ..progress import extract_stack  # its source read without open() (3.13t)

        frame = sys._current_frames().get(self._ident) if self._ident is not None else None
        if frame is None:
            return ""
        entries = [entry for entry in extract_stack(frame) if self.is_user(entry.filename)]
        return "".join(traceback.format_list(entries[-6:])).rstrip()

    # ---- the loop thread ---------------------------------------------------------------
    def _main(self, contexts: list[contextvars.Context]) -> None:
        self._ident = threading.get_ident()
        self.outside.start()
        self.outside.watch(self.is_user, self._thread_started)
        loop = self.loop
        loop.start()
        try:
            for index, actor in enumerate(self.engine.actors):
                loop.create_task(actor(self.state), context=contexts[index])
            self._drive()
        except Abort:
            pass  # stopped by the waiting thread (see hung())
        except BaseException as exc:  # noqa: BLE001 - KeyboardInterrupt: the explorer's
            self._fatal = exc
        finally:
            self.finished = True
            self._close()

    def _drive(self) -> None:
        while not self.aborting:
            if self.outside:
                self._drain()
            if self.error_worker is not None:
                return
            # every task done: the callbacks ready now still run (as at asyncio.run's
            # end), the clock no longer moves
            draining = self._actors_done() and self._wrap_up()
            enabled = self._enabled()
            if not enabled:
                if draining:
                    return
                if self._advance_time() or self._outside_news():
                    continue
                self._stuck()
                return
            choice = self.strategy.choose(enabled, self.last, self.steps)
            if choice is None:
                if self.strategy.pruned:
                    self.pruned = True
                else:
                    self.divergence = self.strategy.divergence or "replay diverged"
                return
            self._grant(choice)
            if self.stopped:
                return  # the waiting thread gave up on that step: hung() said why
            if self.steps >= MAX_STEPS:
                self._livelock()
                return
            deadline = self.engine.deadline
            if deadline is not None and _orig.monotonic() >= deadline:
                self._out_of_time()
                return

    def unfinished(self) -> tuple[int, ...]:
        """The actors' tasks that have not finished."""
        return tuple(lane.index for lane in self.workers[:self._actors]
                     if lane.unit.status != DONE or lane.index in self._stopped)

    def _actors_done(self) -> bool:
        return all(lane.unit.status == DONE for lane in self.workers[:self._actors])

    def _wrap_up(self) -> bool:
        """The actors are done: cancel the tasks they left running (as asyncio.run
        does), and explore their way out too; True when no task is left."""
        tasks = [unit for unit in self._live if unit.task is not None and
                 unit.status != DONE]
        if not tasks:
            return True
        if not self._wrapped:
            self._wrapped = True
            for unit in tasks:
                assert unit.task is not None
                unit.task.cancel()
        return False

    def _enabled(self) -> list[Unit]:
        """The candidates: the ready queue's units from its head up to and including
        the first entry that may not be delayed (cancelled entries dropped)."""
        out: list[Unit] = []
        ready = self._ready
        k = 0
        while k < len(ready):
            item = ready[k]
            if item.entry.cancelled():
                del ready[k]
                self._dequeued(item.unit)
                continue
            if item.unit not in out:
                out.append(item.unit)
            if not item.delayable:
                break
            k += 1
        self._live = [unit for unit in self._live if unit.status != DONE]
        return out

    def _dequeued(self, unit: Unit) -> None:
        """One of ``unit``'s entries left the queue (it runs, or was cancelled)."""
        unit.queued -= 1
        if unit.queued <= 0 and unit.status == READY:
            unit.status = WAITING if unit.task is not None else DONE

    def _take(self, unit: Unit) -> Entry:
        """Take ``unit``'s first entry off the queue; the entries ahead of it were
        passed over (delayed once more: one delayed too often may no longer be)."""
        ready = self._ready
        k = next(k for k, item in enumerate(ready) if item.unit is unit)
        for item in ready[:k]:
            item.passed += 1
            if item.passed >= FAIR_STREAK and item.delayable and not self._replaying:
                item.delayable = False
                task = item.unit.task
                if item.start:
                    self._uncontrolled(f"{self.workers[item.unit.lane]}'s start was delayed past "
                                       f"{FAIR_STREAK} steps of others and then made to run")
                    continue
                self._uncontrolled(f"a task's wake-up was delayed past {FAIR_STREAK} steps of "
                                   "others (a task polling with sleep(0)?) and then made to run",
                                   self.await_site(task) if task is not None else item.unit.site)
        item = ready.pop(k)
        self._dequeued(unit)
        return item.entry

    def _grant(self, unit: Unit) -> None:
        self.steps += 1
        self.choices.append(unit.index)
        entry = self._take(unit)
        if unit.task is None:
            unit.status = DONE
        self.current = self.last = unit
        loop = self.loop
        loop.running_entry = entry
        self.step_started = _orig.monotonic()
        try:
            entry.run()
        except (KeyboardInterrupt, SystemExit):
            if unit.task is None or not unit.task.done():
                raise  # not a task's own exception: the explorer's (Ctrl-C), or a callback's
            # a task that raised it is done with it: its worker failed, the search goes on
        except BaseException as exc:  # noqa: BLE001 - asyncio's loop reports and goes on
            loop.call_exception_handler({"message": f"Exception in callback {entry.callback!r}",
                                         "exception": exc, "handle": entry.handle})
        finally:
            self.current = None
            loop.running_entry = None
        if unit.task is not None:
            self._after_task_step(unit)
        elif unit.site is not None and unit.what is not None:
            self.trace.append((unit.lane, *unit.site, unit.what))

    def _after_task_step(self, unit: Unit) -> None:
        task = unit.task
        assert task is not None
        lane = self.workers[unit.lane]
        if task.done():
            unit.status = DONE
            error: BaseException | None = None
            try:
                result = task.result()
            except BaseException as exc:  # noqa: BLE001 - the actor's failure, if an actor
                error = exc
            actor = self.engine.actors[lane.index] if lane.actor else None
            end = _end_site(task, error, self.is_user, actor)
            if end is not None:
                self.trace.append((lane.index, *end, "returns" if error is None else
                                   "stopped" if isinstance(error, Abort) else
                                   f"raises {type(error).__name__}"))
            if isinstance(error, Abort):
                self._stopped.add(lane.index)
                return  # stopped where it spun: the schedule says so (spin, cut)
            if lane.actor:
                if error is not None:
                    lane.error = error
                    if self.error_worker is None:
                        self.error_worker = lane
                else:
                    lane.ret = result
            return
        if unit.queued:
            unit.status = READY
            what = "yields"
        else:
            unit.status = WAITING
            what = "waits"
        site = self.await_site(task)
        if site is not None:
            self.trace.append((lane.index, *site, what))

    def await_site(self, task: asyncio.Task[Any]) -> Site | None:
        """Where in user code a suspended task awaits."""
        site = None
        for frame in coroutine_frames(task):
            code = frame.f_code
            if self.is_user(code.co_filename):
                site = (code.co_filename, frame.f_lineno, code.co_name)
        return site

    def _advance_time(self) -> bool:
        """Nothing is ready: the clock moves on to the next timer; every timer due
        then joins the queue, in deadline order (delayable: their order at one
        instant is the strategy's)."""
        timers = [unit for unit in self._live if unit.timer is not None]
        if not timers:
            return False
        self.now = max(self.now, min(unit.when for unit in timers if unit.when is not None))
        self.time_advances += 1
        for unit in sorted(timers, key=lambda unit: (unit.when or 0.0, unit.index)):
            if unit.when is not None and unit.when <= self.now:
                self._due(unit)
        return True

    def _due(self, unit: Unit) -> None:
        """A timer's time has come: its callback joins the ready queue."""
        entry, unit.timer = unit.timer, None
        assert entry is not None
        self._enqueue(unit, entry, True)

    def _enqueue(self, unit: Unit, entry: Entry, delayable: bool, start: bool = False) -> None:
        self._ready.append(Queued(unit, entry, delayable, start=start))
        unit.queued += 1
        unit.status = READY

    # ---- from the loop (Driver) ------------------------------------------------------
    def add(self, entry: Entry) -> None:
        current = self.current
        # What stands for time passing may be delayed (see the module docstring): a
        # task rescheduling its own step (a bare yield: sleep(0)), and what an
        # asyncio.sleep() timer wakes; a timer's own callback is delayable when due.
        woken_by_time = current is not None and current.sleep
        owner: Any = getattr(entry.callback, "__self__", None)
        if entry.when is None and _is_task(owner) and owner.get_loop() is self.loop:
            if owner in self.loop.retired:
                self._uncontrolled("a task of an earlier schedule was woken in this one (by "
                                   "something that outlives a schedule, such as a module-level "
                                   "asyncio primitive it waited on); it was not run",
                                   self.caller_site())
                return
            unit = self._tasks.get(owner)
            # an actor's first step: the actors stand for independent clients, whose
            # start the harness's order of making them does not decide
            start = unit is None and len(self.workers) < self._actors
            unit = unit or self._new_task(owner)
            if unit.status != DONE:  # a step of the task (a method of a finished one, such
                # as its cancel() as a callback, runs alone)
                self._enqueue(unit, entry, woken_by_time or current is unit or start, start)
                return
        unit = Unit(len(self.units), None, current.lane if current is not None else 0,
                    current.index if current is not None else None, when=entry.when)
        unit.effect = step_event(self.objects, unit, entry)
        code = getattr(entry.callback, "__code__", None)
        if entry.when is not None:
            unit.site, unit.what = self.caller_site(), "timer fires"
            unit.sleep = entry.callback is _SLEEP_DONE
            self._timers[id(entry.handle)] = unit
        elif code is not None and self.is_user(code.co_filename):
            unit.site = (code.co_filename, code.co_firstlineno, code.co_name)
            unit.what = "callback"
        self.units.append(unit)
        self._live.append(unit)
        if entry.when is None:
            self._enqueue(unit, entry, woken_by_time)
        else:
            unit.timer = entry
            if entry.when <= self.now:  # due already: it joins the queue now
                self._due(unit)

    def _new_task(self, task: asyncio.Task[Any]) -> Unit:
        current = self.current
        lane = len(self.workers)
        unit = Unit(len(self.units), task, lane, current.index if current is not None else None)
        unit.effect = ((self.objects(UNIVERSE), ALL, True),)
        self._tasks[task] = unit
        self.units.append(unit)
        self._live.append(unit)
        origin = ""
        if lane >= self._actors:
            parent = self.workers[current.lane] if current is not None else None
            where = self.caller_site()
            origin = f"started by {parent or 'a callback'}" + \
                (f" at {os.path.basename(where[0])}:{where[1]}" if where else "")
        self.workers.append(Lane(lane, unit, lane < self._actors, origin=origin))
        return unit

    def timer_cancelled(self, handle: asyncio.TimerHandle) -> None:
        unit = self._timers.pop(id(handle), None)
        if unit is not None and unit.status != DONE:
            unit.status = DONE
            unit.timer = None
            if unit.queued:
                self._ready = [item for item in self._ready if item.unit is not unit]
                unit.queued = 0

    def external(self, entry: Entry) -> None:
        if threading.get_ident() != self._ident:
            self._uncontrolled("a thread outside the schedule called the loop",
                               self.caller_site())
        self.outside.post(entry)

    def offload(self, job: concurrent.futures.Future[Any], result: asyncio.Future[Any],
                site: Site | None) -> None:
        """``run_in_executor``: the job runs in a thread the schedule does not control;
        what it did comes back through the inbox, here if it is quick (see
        ``Outside.offload``).  Either way the search is not complete."""
        self._uncontrolled("a thread outside the schedule", site)
        self.outside.offload(job, result, self.loop,
                             min(self.engine.patience, self.engine.hang_timeout / 2))

    def _drain(self) -> None:
        current, self.current = self.current, None  # no step of the schedule made them
        try:
            for entry in self.outside.take():
                self.add(entry)
        finally:
            self.current = current

    def _outside_news(self) -> bool:
        """Nothing can run here: wait (up to the hang timeout) for a thread outside the
        schedule that may still call back; True if one did."""
        news = self.outside.wait(self.engine.hang_timeout)
        if news is not False:
            return bool(news)
        self.deadlock = ("hang: no task can run, and no thread outside the schedule called "
                         f"back within {self.engine.hang_timeout:g} s\n  " +
                         "\n  ".join(self.uncontrolled or ["(a thread the test started)"]))
        self.finished = True
        return False

    def callback_error(self, entry: Entry | None, context: dict[str, Any]) -> None:
        if self.finished or entry is None:
            return  # a task destroyed with its schedule, a future nobody read: not ours
        exc = context.get("exception")
        self.callback_errors.append(f"{texts.safe_str(context.get('message'))}: "
                                    f"{texts.short_repr(exc)}")

    def caller_site(self) -> Site | None:
        """The innermost user-code frame of the loop thread now."""
        frame: FrameType | None = sys._getframe(2)
        while frame is not None:
            code = frame.f_code
            if self.is_user(code.co_filename):
                return (code.co_filename, frame.f_lineno, code.co_name)
            frame = frame.f_back
        return None

    def _thread_started(self, site: Site | None) -> None:
        """A thread started while the schedule ran (``site``: its first user function)."""
        self._uncontrolled("a thread outside the schedule", site)

    def _uncontrolled(self, what: str, site: Site | None = None) -> None:
        text = what + (f", at {os.path.basename(site[0])}:{site[1]}" if site else "")
        if text not in self.uncontrolled:
            self.uncontrolled.append(text)

    # ---- the end -------------------------------------------------------------------
    def _stuck(self) -> None:
        """Nothing is ready, no timer is left, nobody outside will call back."""
        if self.deadlock is not None:
            return  # _outside_news said why
        waiting = [lane for lane in self.workers if lane.unit.status != DONE]
        if self._wrapped:  # said in the verdict (left_running counts threads)
            for lane in waiting:
                site = self.await_site(lane.unit.task) if lane.unit.task else None
                self._uncontrolled(f"{lane} was still waiting after the actors finished and "
                                   "it was cancelled", site)
            return
        self.deadlock = aiowaits.describe_deadlock(self, list(waiting))

    def _livelock(self) -> None:
        """The schedule took MAX_STEPS steps: its tasks never finish (a worker that
        never finishes, never a deadlock)."""
        self.spin = "\n".join(self.still_running(lane) for lane in self.workers
                               if lane.unit.status != DONE) or \
            f"the schedule took {MAX_STEPS} steps (callbacks that schedule callbacks)"

    def _out_of_time(self) -> None:
        """The time limit ran out while this schedule ran: stop it, saying who was
        still running, and where."""
        self.cut = "\n".join(self.still_running(lane) for lane in self.workers
                              if lane.unit.status != DONE) or "every worker had finished"

    def still_running(self, lane: Lane) -> str:
        """``worker 1 still running after 12 steps (waiting at test_x.py:7)``."""
        task = lane.unit.task
        site = self.await_site(task) if task is not None else None
        coroutine: Any = task.get_coro() if task is not None else None
        if site is None and inspect.iscoroutine(coroutine) and \
                inspect.getcoroutinestate(coroutine) == inspect.CORO_CREATED:
            return f"{lane} not started after {self.steps} steps (ready to start)"
        where = f"{os.path.basename(site[0])}:{site[1]}" if site else "?"
        state = "waiting" if lane.unit.status == WAITING else "ready"
        return f"{lane} still running after {self.steps} steps ({state} at {where})"

    def _close(self) -> None:
        """Close what is left: unfinished coroutines (their ``finally`` blocks run
        now), then the loop."""
        self.outside.unwatch()
        self.closing = True
        self.step_started = _orig.monotonic()
        retired = self.loop.retired
        for unit in self.units:
            task = unit.task
            if task is not None:
                retired.add(task)
            if task is not None and not task.done():
                try:
                    task.get_coro().close()
                except BaseException:  # noqa: BLE001 - a finally block that awaits again
                    pass
        self.loop.close()
        self.loop.finish()

    # ---- asyncio Locks (see aiowaits.Lock) ---------------------------------------------
    def lane_of(self, task: object) -> Lane | None:
        unit = self._tasks.get(task) if task is not None else None  # type: ignore[call-overload]
        return self.workers[unit.lane] if unit is not None else None

    def lock_key(self, site: Site) -> LockKey:
        where = (site[0], site[1])
        ordinal = self._made.get(where, 0)
        self._made[where] = ordinal + 1
        return (site[0], site[1], ordinal)

    def user_frames(self) -> list[FrameType]:
        """The user-code frames of every unfinished task (to name what they use)."""
        frames: list[FrameType] = []
        for lane in self.workers:
            task = lane.unit.task
            if task is not None and not task.done():
                frames.extend(frame for frame in reversed(coroutine_frames(task))
                              if self.is_user(frame.f_code.co_filename))
        return frames


def _cpu_since(before: float | None, native_id: int | None) -> float | None:
    now = thread_cpu(native_id)
    return None if before is None or now is None else now - before


def _end_site(task: asyncio.Task[Any], error: BaseException | None,
              is_user: Callable[[str], bool], actor: object = None) -> Site | None:
    """Where a finished task ended: the user line that raised, or its function (the
    actor's, for an actor: ``inspect.unwrap`` sees through explore's wrappers) if that
    is user code."""
    if error is not None:
        tb = error.__traceback__
        site = None
        while tb is not None:
            code = tb.tb_frame.f_code
            if is_user(code.co_filename):
                site = (code.co_filename, tb.tb_lineno, code.co_name)
            tb = tb.tb_next
        if site is not None:
            return site
    coroutine: Any = task.get_coro()
    body = getattr(coroutine, "cr_code", None)
    if (body is None or not is_user(body.co_filename)) and actor is not None:
        function: Any = inspect.unwrap(actor)  # type: ignore[arg-type]
        function = getattr(function, "func", function)  # a partial of the user's function
        body = getattr(getattr(function, "__func__", function), "__code__", None)
    if body is None or not is_user(body.co_filename):
        return None
    return (body.co_filename, body.co_firstlineno, body.co_name)
