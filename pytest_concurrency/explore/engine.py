"""``explore()``: run actors under many schedules until one fails."""

from __future__ import annotations

import dataclasses
import functools
import inspect
import os
import re
import sys
import time
import traceback
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, NotRequired, TypedDict

from .. import standins, texts
from . import _orig
from . import token as _token
from .blind import BlindSpots
from .instrument import GRANULARITIES, USE_MONITORING, CodeTable, UserCode, own_file
from .lockorder import POLICIES, LockOrder, describe
from .primitives import Patcher
from .report import describe_deadlock, name_of, render_interleaving
from .scheduler import Actor, Schedule, Step, TraceFunction, Worker
from .strategies import PCT, STRATEGIES, Replay, Strategy, make
from .token import TokenData
from .tracing import Monitoring, PointTable, make_settrace

if TYPE_CHECKING:
    from .observer import Observer

if TYPE_CHECKING:
    from .aio import AioEngine
    from .aioschedule import AsyncSchedule


class ReplayDiverged(Exception):
    """Replaying a token did not follow the recorded schedule."""


@dataclasses.dataclass
class Finding:
    """The first failing schedule of an explore(): what failed, how, and its token."""

    kind: str  # "exception" | "deadlock" | "assertion" | "spin" | "timeout"
    worker: int | None  # the worker that raised; None for a deadlock or a failed check
    exception: BaseException | None
    traceback: str
    schedule: int
    token: str
    strategy: str
    seed: int
    granularity: str
    message: str
    interleaving: str
    steps: list[Step]
    report: str = ""
    # the workers the failure is about: the one that raised or spun, those deadlocked
    # or still running; none for a failed check (the whole schedule's outcome)
    involved: tuple[int, ...] = ()
    # Why the token cannot be trusted to replay it, when its schedule, run again at
    # once, did not fail the same way (then no replay command is printed); "" if it can.
    unreplayable: str = ""

    def __str__(self) -> str:
        return self.report


class ExploreStats(TypedDict):
    """What an explore() measured."""

    steps_total: int  # scheduling steps over all schedules
    steps_max: int  # the most in one schedule
    detaches: int  # steps whose worker did not come back in time
    abandoned_threads: int  # worker threads still running after their schedule
    elapsed: float  # seconds
    step_timeout: float  # seconds, as adapted to this machine
    false_detaches: int  # detaches that were the machine being slow
    python: str  # "3.12"
    switch_points: str  # "sys.monitoring", "sys.settrace", or DPOR's "rewritten code"
    pct_k: NotRequired[int]  # PCT's k at the end (pct only)
    timers: NotRequired[int]  # times virtual time had to pass (a timed wait or sleep)
    left_running: NotRequired[int]  # threads the actors started, still running at the end
    redundant: NotRequired[int]  # dpor: runs stopped for repeating an explored interleaving
    virtual_time: NotRequired[float]  # asyncio: the most virtual seconds a schedule took
    time_advances: NotRequired[int]  # asyncio: times the clock jumped to the next timer
    uncontrolled: NotRequired[list[str]]  # asyncio: what the schedules did not control


@dataclasses.dataclass
class ExploreResult:
    """What explore() did: the failure it found, if any, and how much it explored."""

    failure: Finding | None
    schedules_run: int
    exhausted: bool  # the strategy ran out of schedules to try (dfs, dpor), no failure
    stats: ExploreStats
    # Every interleaving was explored (dpor, exhausted, nothing uncontrolled happened).
    complete: bool = False
    # Why the search is not complete, when it is not: "bound reached", ...
    incomplete: str | None = None
    distinct: int = 0  # interleavings run to their end (dpor: one per class)
    warnings: list[str] = dataclasses.field(default_factory=list)  # lock_order="warn"
    # Steps whose effects the access observer could not see (see blind.py).
    blind: BlindSpots = dataclasses.field(default_factory=BlindSpots)
    out_of_time: bool = False  # the time limit ended the search
    cut: str | None = None  # ... stopping a schedule in which these were still running
    strategy: str = ""  # the strategy and seed that ran (a replay token's own)
    seed: int = 0

    @property
    def verified(self) -> bool:
        """Whether this search proves the body correct for these workers: no failure,
        and every interleaving explored with nothing unseen or uncontrolled."""
        return self.failure is None and self.complete and self.incomplete is None


@dataclasses.dataclass
class Coverage:
    """What a search saw of the interleavings: everything a claim of "complete"
    rests on.  Each field but ``strategy`` is a way for it not to be complete."""

    strategy: str  # only an exhausted "dpor" search can be complete
    exhausted: bool = False  # the strategy ran out of schedules to try
    replayed: bool = False  # one schedule, from a token
    out_of_time: bool = False  # the time limit ended the search
    detaches: int = 0  # steps whose worker blocked outside the scheduler
    timers: int = 0  # times virtual time passed for a timed wait or sleep
    left_running: int = 0  # threads the actors started, still running at the end
    abandoned: int = 0  # worker threads that did not stop with their schedule
    nondeterministic: bool = False  # the same choices led somewhere else
    blind: BlindSpots = dataclasses.field(default_factory=BlindSpots)  # steps not seen
    bound: int = 2  # dfs: its preemption bound (not a way to be incomplete by itself)
    # asyncio: what ran outside the schedule ("a thread outside the schedule, at f.py:3")
    uncontrolled: tuple[str, ...] = ()


def incomplete(coverage: Coverage) -> str | None:
    """Why the search did not see every interleaving, every reason joined; None only
    when it did (an exhausted DPOR search, with nothing unseen or uncontrolled)."""
    c = coverage
    if c.replayed:
        return "one schedule replayed from a token"
    reasons = []
    if c.out_of_time:
        reasons.append("time limit")
    if c.strategy == "dfs":
        reasons.append(f"bounded by {c.bound} preemptions" if c.exhausted else "bound reached")
    elif c.strategy != "dpor":
        reasons.append("sampled")
    elif not c.exhausted and not c.out_of_time:
        reasons.append("bound reached")
    if c.detaches:
        reasons.append(f"a worker blocked outside the scheduler {_times(c.detaches)}")
    if c.timers:
        reasons.append(f"virtual time passed for a timed wait or sleep {_times(c.timers)}")
    if c.left_running or c.abandoned:
        reasons.append("threads were left running at the end")
    if c.nondeterministic:
        reasons.append("the body did not run the same way twice under the same schedule")
    if c.blind:
        reasons.append(f"could not see {c.blind.describe()}")
    reasons.extend(c.uncontrolled)
    if not reasons and not (c.strategy == "dpor" and c.exhausted):
        reasons.append("not exhausted")  # unreachable today: a claim needs a reason to hold
    return "; ".join(reasons) or None


class Passed:
    """A schedule that ran to its end without failing, as ``observe`` sees it: its
    index, its steps, and (called, or ``token()``) its replay token."""

    def __init__(self, schedule: Schedule | AsyncSchedule, index: int, strategy: str, seed: int,
                 granularity: str, actors: int, exploration: int = 0) -> None:
        self.index = index
        self.steps: list[Step] = schedule.trace
        self.workers = len(schedule.workers)
        self._token = functools.partial(_token.encode, strategy, seed, index, granularity,
                                        actors, schedule.choices, exploration)

    def token(self) -> str:
        return self._token()

    __call__ = token

    def interleaving(self, limit: int = 20) -> str:
        """The schedule's last ``limit`` rows as a table, one column per worker."""
        return render_interleaving(self.steps, self.workers, limit=limit)


def _source_dir(obj: object) -> str | None:
    """The directory of the file that defines ``obj`` (a function, partial or method)."""
    function: Any = getattr(obj, "func", obj)  # a functools.partial's function
    function = getattr(function, "__func__", function)  # a bound method's function
    code = getattr(function, "__code__", None)
    if code is not None:
        return os.path.dirname(os.path.abspath(code.co_filename))
    try:
        return os.path.dirname(os.path.abspath(inspect.getfile(function)))
    except TypeError:
        return None


def _format_exc(exc: BaseException) -> str:
    """``exc``'s traceback without this package's frames, bounded (see texts.py);
    an exception too big to format whole as its stand-in (see standins.py)."""
    shown = standins.bounded(exc)
    exception = traceback.TracebackException(type(shown), shown, shown.__traceback__)
    exception.stack = traceback.StackSummary.from_list(
        [entry for entry in exception.stack if not own_file(entry.filename)])
    return texts.middle("".join(exception.format()))


class Engine:
    """Configuration and instrumentation shared by the schedules of one explore()."""

    def __init__(self, setup: Callable[[], Any], actors: Iterable[Actor], granularity: str,
                 roots: tuple[str, ...], instrument: tuple[str, ...], step_timeout: float,
                 hang_timeout: float, precise: bool = False, lock_order: str = "ignore",
                 deadline: float | None = None) -> None:
        self.setup = setup
        self.actors = list(actors)
        self.is_user = UserCode(roots, instrument)
        # DPOR's schedules are precise: each switch point says what it touches. Its
        # switch points are the hooks of the instrumented code, rewritten for it.
        self.precise = precise
        self.lock_order = LockOrder() if lock_order != "ignore" else None
        self.table: PointTable = CodeTable(granularity)
        self.observer: Observer | None = None
        if precise:
            from .observer import Observer

            self.observer = Observer(self.is_user, [setup, *self.actors])
        self.step_timeout = step_timeout
        self.patience = max(1.0, 20 * step_timeout)
        self.hang_timeout = hang_timeout
        self.join_timeout = 2.0
        self.deadline = deadline  # _orig.monotonic() time by which the search ends
        self.false_detaches = 0
        self._patcher = Patcher()
        self.settrace: TraceFunction | None = None  # set on 3.11, where it gives the points
        self._monitor: Monitoring | None = None  # set on 3.12+

    def false_detach(self) -> None:
        """A detached worker came back at once: the step timeout is too short here."""
        self.false_detaches += 1
        self.step_timeout = min(self.step_timeout * 2, 0.5)

    def patch(self) -> None:
        if self.observer is not None:
            self.observer.begin()
        self._patcher.patch()

    def unpatch(self) -> None:
        self._patcher.unpatch()
        if self.observer is not None:
            self.observer.end()

    def name_of(self, obj: object, schedule: Schedule) -> str:
        """A primitive's variable name (``self.lock``), for the lock-order report."""
        return name_of(obj, schedule)

    def describe_deadlock(self, schedule: Schedule, live: list[Worker]) -> str:
        """The deadlock text of ``schedule``, whose ``live`` workers cannot go on."""
        return describe_deadlock(schedule, live)

    def start(self) -> None:
        if self.observer is not None:
            self.observer.start()
            self.settrace = self.observer.settrace
        elif USE_MONITORING:
            self._monitor = Monitoring(self.is_user, self.table)
            self._monitor.start()
        else:
            self.settrace = make_settrace(self.is_user, self.table)

    def stop(self) -> None:
        if self._monitor is not None:
            self._monitor.stop()
        if self.observer is not None:
            self.observer.stop()

    def schedule(self, strategy: Strategy) -> Schedule:
        return Schedule(self, strategy)

    def add_stats(self, stats: ExploreStats) -> None:
        """Nothing beyond what explore() counts (an AioEngine adds virtual time)."""


def _strategy(name: str, seed: int, preemption_bound: int, depth: int) -> Strategy:
    """The strategy object called ``name``, seeded (DPOR's module is loaded by the
    first exploration that asks for it)."""
    if name == "dpor":
        from .dpor import DPOR

        return DPOR(seed)
    return make(name, seed, preemption_bound=preemption_bound, depth=depth)


def explore(setup: Callable[[], Any], actors: Iterable[Actor],
            check: Callable[[Any, list[Any]], object] | None = None, *,
            schedules: int = 200, strategy: str = "pct", seed: int = 0,
            granularity: str = "access", instrument: str | Iterable[str] = (),
            roots: Iterable[str] | None = None, replay: str | None = None,
            step_timeout: float = 0.02, hang_timeout: float = 5.0, preemption_bound: int = 2,
            depth: int = 3, report_steps: int = 20, lock_order: str = "fail",
            observe: Callable[[Any, list[Any], Passed], object] | None = None,
            time_limit: float | None = None, exploration: int = 0) -> ExploreResult:
    """Run ``actors`` (one per worker thread; coroutine functions: one asyncio task
    each, on one event loop, see ``aio``) on ``setup()`` state under up to
    ``schedules`` seeded interleavings; stop at the first failing one.

    ``check(state, returns)``, if given, is called after every schedule in which
    no worker raised; an exception or failed assertion in it is a finding.
    ``observe(state, returns, passed)``, if given, is called after every schedule
    that did not fail, with a :class:`Passed` (``passed()`` is its replay token).
    ``lock_order``: what a lock-order inversion seen across the schedules is - a
    failure ("fail"), a warning in the result ("warn"), or nothing ("ignore").
    ``time_limit``: seconds for the whole search; when they run out, the schedule
    running is stopped (at its workers' next switch points) and not counted, and
    the result says so (``out_of_time``); if no schedule had finished, that is a
    failure of kind "timeout".

    Returns an :class:`ExploreResult`; raises :class:`ReplayDiverged` when ``replay``
    (a token from a previous failure) cannot be followed.
    """
    actors = list(actors)
    if not actors:
        raise ValueError("explore: at least one actor is needed")
    if granularity not in GRANULARITIES:
        raise ValueError(f"granularity must be one of {GRANULARITIES}, got {granularity!r}")
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy must be one of {STRATEGIES}, got {strategy!r}")
    if lock_order not in POLICIES:
        raise ValueError(f"lock_order must be one of {POLICIES}, got {lock_order!r}")
    if strategy == "dpor" and granularity != "access":
        raise ValueError(f"strategy='dpor' works on accesses: granularity must be 'access', "
                         f"got {granularity!r}")
    if isinstance(instrument, str):
        instrument = (instrument,)
    from .aio import are_tasks  # asyncio tasks rather than threads

    tasks = are_tasks(actors)
    recorded: TokenData | None = None
    if replay is not None:
        recorded = _token.decode(replay)
        if recorded["workers"] != len(actors):
            raise ReplayDiverged(f"replay token is for {recorded['workers']} workers, "
                                 f"this run has {len(actors)}")
        strategy, seed = recorded["strategy"], recorded["seed"]
        granularity = recorded["granularity"]
    if tasks:
        granularity = "await"  # a task switches only where it awaits
    if strategy == "dpor" and not tasks:
        from .selftest import problem

        why = problem()
        if why is not None:
            raise ValueError(f"strategy='dpor' cannot verify here: {why}")
    if roots is None:
        roots = {path for path in map(_source_dir, [setup, check, *actors]) if path}
    deadline = _orig.monotonic() + time_limit if time_limit is not None else None
    engine: Engine | AioEngine
    if tasks:
        from .aio import AioEngine

        engine = AioEngine(setup, actors, tuple(roots), tuple(instrument), step_timeout,
                           hang_timeout, lock_order=lock_order, deadline=deadline)
    else:
        engine = Engine(setup, actors, granularity, tuple(roots), tuple(instrument),
                        step_timeout, hang_timeout, precise=strategy == "dpor",
                        lock_order=lock_order, deadline=deadline)
    # Lock-order inversions, with the schedule after which each was seen: a failure
    # at the end (when no schedule found a real deadlock or other failure), or warnings.
    inversions: list[tuple[int, list[Any]]] = []
    replaying: Replay | None = None
    chooser: Strategy  # the strategy object; ``strategy`` is its name
    indices: Sequence[int]
    if recorded is not None:
        chooser = replaying = Replay(recorded["choices"])
        indices = [recorded["index"]]
    else:
        chooser = _strategy(strategy, seed, preemption_bound, depth)
        indices = range(schedules)
    steps_total = steps_max = detaches = abandoned_threads = timers = left_running = 0
    distinct = 0
    blind = BlindSpots()
    started = time.perf_counter()
    failure, run = None, 0
    cut: str | None = None  # the time limit stopped a schedule: who was still running
    out_of_time = False
    engine.start()
    try:
        for index in indices:
            if deadline is not None and _orig.monotonic() >= deadline:
                out_of_time = True
                break
            chooser.begin(index, len(actors))
            schedule = engine.schedule(chooser)
            schedule.run()
            if schedule.cut is not None:  # stopped in the middle: not an explored one
                out_of_time, cut = True, schedule.cut
                steps_total += schedule.steps
                abandoned_threads += len(schedule.abandoned)
                if not run:
                    failure = _timed_out(schedule, index, strategy, seed, granularity,
                                         time_limit or 0.0, report_steps)
                break
            run += 1
            chooser.end(schedule.steps)
            steps_total += schedule.steps
            steps_max = max(steps_max, schedule.steps)
            detaches += schedule.detaches
            abandoned_threads += len(schedule.abandoned)
            timers += schedule.timers
            left_running += schedule.left_running
            blind.merge(schedule.blind)
            if schedule.pruned:
                if chooser.exhausted:
                    break
                continue  # DPOR stopped it: not an interleaving of its own, nothing to check
            distinct += 1
            if schedule.divergence:
                raise ReplayDiverged(_diverged_text(schedule.divergence, recorded))
            if replaying is not None and replaying.pos < len(replaying.events) and \
                    not (schedule.error_worker or schedule.deadlock or schedule.spin):
                raise ReplayDiverged(
                    f"replay diverged at step {schedule.steps}: the run finished but the "
                    f"recording has {len(replaying.events) - replaying.pos} more steps")
            failure = _evaluate(schedule, check, index, strategy, seed, granularity,
                                report_steps, exploration)
            if failure is not None and replaying is None and failure.token:
                failure.unreplayable = _replays(engine, schedule, failure, check, index,
                                                len(actors))
            if engine.lock_order is not None:
                inversions.extend((index, cycle) for cycle in engine.lock_order.inversions())
            if failure is None and observe is not None:
                observe(schedule.state, [worker.ret for worker in schedule.workers],
                        Passed(schedule, index, strategy, seed, granularity, len(actors),
                               exploration))
            if failure is not None or chooser.exhausted:
                break
    finally:
        engine.stop()
    observer = getattr(engine, "observer", None)  # DPOR of threads: what it could not see
    if observer is not None:
        blind.merge(observer.blind)
    stats: ExploreStats = {
        "steps_total": steps_total, "steps_max": steps_max, "detaches": detaches,
        "abandoned_threads": abandoned_threads, "elapsed": time.perf_counter() - started,
        "step_timeout": engine.step_timeout, "false_detaches": engine.false_detaches,
        "python": f"{sys.version_info[0]}.{sys.version_info[1]}",
        "switch_points": "rewritten code" if getattr(engine, "observer", None) else
        "sys.monitoring" if USE_MONITORING else "sys.settrace",
    }
    warnings = [describe(cycle) for _index, cycle in inversions] if lock_order == "warn" \
        else []
    if failure is None and inversions and lock_order == "fail":
        failure = _inversion(inversions[0][1], inversions[0][0], strategy, seed, granularity)
    if isinstance(chooser, PCT):
        stats["pct_k"] = chooser.k
    stats["timers"], stats["left_running"] = timers, left_running
    engine.add_stats(stats)
    redundant = getattr(chooser, "redundant", None)
    if redundant is not None:
        stats["redundant"] = redundant
    exhausted = bool(chooser.exhausted and failure is None)
    coverage = Coverage(
        strategy=chooser.name, exhausted=exhausted, replayed=replaying is not None,
        out_of_time=out_of_time,
        detaches=stats["detaches"], timers=timers, left_running=left_running,
        abandoned=abandoned_threads,
        nondeterministic=bool(getattr(chooser, "nondeterministic", False)), blind=blind,
        bound=getattr(chooser, "bound", 2), uncontrolled=tuple(stats.get("uncontrolled", ())))
    why = "stopped at the first failure" if failure is not None else incomplete(coverage)
    return ExploreResult(failure, run, exhausted, stats, complete=why is None,
                         incomplete=why, distinct=distinct, warnings=warnings, blind=blind,
                         out_of_time=out_of_time, cut=cut, strategy=strategy, seed=seed)


def _inversion(cycle: list[Any], index: int, strategy: str, seed: int,
               granularity: str) -> Finding:
    """The finding of a lock-order inversion: a deadlock no schedule hit (yet), so
    with no replay token - the report shows both orders with their sites."""
    text = describe(cycle)
    message = text.splitlines()[0]
    report = (f"explore found a potential deadlock (seen by schedule {index}; no schedule "
              f"deadlocked)\n{text}")
    return Finding("deadlock", None, None, "", index, "", strategy, seed, granularity,
                   message, "", [], report)


def _times(count: int) -> str:
    return "once" if count == 1 else f"{count} times"


def _diverged_text(text: str, recorded: TokenData | None) -> str:
    """``text``, saying so when the token was recorded on another Python version."""
    here = f"{sys.version_info[0]}.{sys.version_info[1]}"
    if recorded is not None and recorded["python"] != here:
        text += f" (token recorded on Python {recorded['python']}, this is {here})"
    return text


_FOUND = {"exception": "an exception", "assertion": "an assertion", "deadlock": "a deadlock",
          "spin": "a worker that never finishes"}


def _timed_out(schedule: Schedule | AsyncSchedule, index: int, strategy: str, seed: int,
               granularity: str, limit: float, report_steps: int) -> Finding:
    """The finding of a search whose time ran out before any schedule finished."""
    message = (f"explore's time limit ({limit:g} s) ran out in schedule {index}, before any "
               f"schedule finished")
    table = render_interleaving(schedule.trace, len(schedule.workers), limit=report_steps)
    report = "\n".join([f"{message}:", schedule.cut or "", "", "interleaving so far:", table])
    return Finding("timeout", None, None, "", index, "", strategy, seed, granularity,
                   message, table, list(schedule.trace), report)  # no worker failed


REPLAYED_KINDS = ("exception", "assertion", "deadlock")  # quick to run again (not a spin)


def _replays(engine: Engine | AioEngine, schedule: Schedule | AsyncSchedule, failure: Finding,
             check: Callable[[Any, list[Any]], object] | None, index: int,
             actors: int) -> str:
    """Run the failing schedule again at once, by its choices, as its token would: ""
    when it fails the same way; otherwise why its token cannot be trusted to."""
    if failure.kind not in REPLAYED_KINDS or schedule.detaches or schedule.abandoned or \
            failure.kind == "deadlock" and not failure.message.startswith("deadlock"):
        return ""  # a hang, or a worker blocked outside: slow to run again, and not ours
    again = Replay(list(schedule.choices))
    again.begin(index, actors)
    rerun = engine.schedule(again)
    rerun.run()
    first, second_trace = schedule.trace, rerun.trace
    pairs = zip(first, second_trace, strict=False)  # a shorter one differs where it ends
    differ = next((k for k, (a, b) in enumerate(pairs) if a != b),
                  None if len(first) == len(second_trace) else min(len(first), len(second_trace)))
    if rerun.divergence or differ is not None or again.pos < len(again.events) and \
            not (rerun.error_worker or rerun.deadlock or rerun.spin):
        step = (second_trace or first)[min(differ or 0, len(second_trace or first) - 1)] \
            if (second_trace or first) else None
        where = f", at {os.path.basename(step[1])}:{step[2]}" if step else ""
        return ("the body is not deterministic: its schedule, run again at once by its "
                f"choices, went another way{where}")
    second = _evaluate(rerun, check, index, failure.strategy, failure.seed,
                       failure.granularity, 0)
    if second is None or second.kind != failure.kind or \
            type(second.exception) is not type(failure.exception):
        return ("its schedule, run again at once by its choices, did not fail the same way: "
                "the body is not deterministic, or it uses state that earlier schedules "
                "changed (a module-level list or cache, an asyncio primitive made at import)")
    return ""


def _is_assertion(exc: BaseException) -> bool:
    """AssertionError, or pytest.fail()'s exception (recognised without importing pytest)."""
    if isinstance(exc, AssertionError):
        return True
    mro = type(exc).__mro__
    return mro[0].__name__ == "Failed" and any(
        c.__name__ == "OutcomeException" and c.__module__.startswith("_pytest") for c in mro)


def _evaluate(schedule: Schedule | AsyncSchedule, check: Callable[[Any, list[Any]], object] | None,
              index: int, strategy: str, seed: int, granularity: str,
              report_steps: int, exploration: int = 0) -> Finding | None:
    """The finding of a schedule that ran: a worker's exception, a deadlock, a failed
    ``check``; None if it passed."""
    failed = schedule.error_worker
    kind: str | None = None
    exc: BaseException | None = None
    worker: int | None = None
    involved: tuple[int, ...] = ()
    tb = ""
    if failed is not None:
        exc = failed.error
        assert exc is not None  # error_worker is only ever a worker that raised
        worker, tb = failed.index, _format_exc(exc)
        kind = "assertion" if _is_assertion(exc) else "exception"
        message = texts.one_line(f"worker {failed.index} raised {standins.summary(exc)}")
    elif schedule.deadlock:
        kind, message = "deadlock", schedule.deadlock
        involved = schedule.unfinished()
    elif schedule.spin:
        kind, message = "spin", schedule.spin
        spinner = re.match(r"(?:worker|task) (\d+) ", schedule.spin)  # "worker 1 still running"
        worker = int(spinner.group(1)) if spinner else None
    elif check is not None:
        returns = [each.ret for each in schedule.workers]
        try:
            check(schedule.state, returns)
        except BaseException as error:  # noqa: BLE001 - a failing check is a finding
            if not isinstance(error, Exception) and not _is_assertion(error):
                raise  # KeyboardInterrupt, SystemExit, pytest.skip ...
            kind = "assertion" if _is_assertion(error) else "exception"
            exc, tb = error, _format_exc(error)
            message = texts.one_line(f"check failed: {standins.summary(error)}")
    if kind is None:
        return None
    token = _token.encode(strategy, seed, index, granularity, len(schedule.engine.actors),
                          schedule.choices, exploration)
    table = render_interleaving(schedule.trace, len(schedule.workers), limit=report_steps,
                                titles=getattr(schedule, "titles", None))
    report = "\n".join([
        f"explore found {_FOUND[kind]} in schedule {index} "
        f"(strategy={strategy}, seed={seed}, granularity={granularity}, "
        f"{len(schedule.workers)} workers, {schedule.steps} steps)",
        message, "", "interleaving:", table, "",
        *([tb.rstrip(), ""] if tb else []),
        f"replay token: {token}",
    ])
    return Finding(kind, worker, exc, tb, index, token, strategy, seed, granularity, message,
                   table, list(schedule.trace), report,
                   involved=(worker,) if worker is not None else involved)
