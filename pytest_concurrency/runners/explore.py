"""explore mode: the workers as threads under the deterministic scheduler.

Every schedule runs the body once in each of ``spec.workers`` threads (or, for
``run_actors``, actor i in worker i), one thread at a time, switching where
the scheduler decides (see ``explore/``).  A coroutine body (or coroutine
actors) runs as that many asyncio tasks on one event loop instead, switching
at the awaits.  The first failing schedule becomes the run's failure, with the
interleaving and a command that replays it.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import os
import threading
import time
import unittest
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

import pytest

from .. import context, coroutines, outcomes, texts
from ..context import RunContext, WorkerInfo
from ..options import replay_command
from ..report.document import all_interleavings
from ..results import FirstSchedule, rejects, untallied
from ..spec import RunSpec
from .request import Actors, ExploreOptions, RunError, RunOutcome, RunRequest, SetupFailed, seed_of

if TYPE_CHECKING:
    from ..explore.engine import ExploreResult, Finding, Passed
    from ..explore.scheduler import Step
    from ..report.records import Exploration
    from ..report.records import Step as StepRecord


class ExploreError(RunError):
    """The run could not be explored as asked (a bad token, an unknown package)."""


class _Round:
    """What the workers of one schedule share: the barrier, and the body's
    keyword arguments (whole-body) or the state ``setup()`` made (actors)."""

    def __init__(self, run: RunContext, data: Any) -> None:
        self.run = run
        self.data = data
        self.outcome: Any = _UNJUDGED  # run_actors: the round's outcome, once computed


_UNJUDGED = object()


class ReturnedCoroutine(Exception):
    """A worker run as a thread called its actor (or body) and got a coroutine back
    (a lambda that returns one): the exploration starts again with the workers as
    asyncio tasks, each awaiting what its call returns."""


class NotAwaitable(Exception):
    """A worker run as an asyncio task got something that cannot be awaited from its
    call, beside workers that are coroutines: threads and tasks cannot be mixed."""

    def __init__(self, index: int, value: object) -> None:
        super().__init__(index, value)
        self.index = index
        self.value = value


def _worker(index: int, count: int, iterations: int, call: Callable[[Any], Any],
            state: _Round) -> list[Any]:
    """One worker of one schedule: ``call(state.data)``, ``iterations`` times."""
    context.enter(WorkerInfo(index, count, "explore", 0, index, 0, os.getpid()), state.run)
    try:
        values = []
        for iteration in range(iterations):
            if iteration:
                context.set_iteration(iteration)
            value = call(state.data)
            if inspect.iscoroutine(value):  # nothing of it ran: run it as a task instead
                value.close()
                raise ReturnedCoroutine(index)
            values.append(value)
        return values
    finally:
        context.leave()


async def _task(index: int, count: int, iterations: int, call: Callable[[Any], Any],
                state: _Round) -> list[Any]:
    """One worker of one schedule as an asyncio task: ``await call(state.data)``,
    ``iterations`` times (``call`` an ``async def``, or a function returning an
    awaitable)."""
    context.enter_task(WorkerInfo(index, count, "explore", 0, index, 0, os.getpid()),
                       state.run)
    values = []
    for iteration in range(iterations):
        if iteration:
            context.set_iteration(iteration)
        value = call(state.data)
        if not inspect.isawaitable(value):
            raise NotAwaitable(index, value)
        values.append(await value)
    return values


def _mixed(exc: NotAwaitable, names: Sequence[str]) -> str:
    """The sentence for workers that are partly threads, partly tasks."""
    others = [index for index in range(len(names)) if index != exc.index]
    return (f"explore runs an exploration's workers either as threads or as asyncio "
            f"tasks: {names[exc.index]} returned {texts.short_repr(exc.value, 60)}, not a "
            f"coroutine, while {names[others[0]] if others else 'another'} is a coroutine "
            "(an async def, or a lambda that returns one); make them all async or all plain")


def _coroutine_returned(result: ExploreResult) -> bool:
    """The exploration of threads stopped because a worker's call returned a coroutine."""
    failure = result.failure
    return failure is not None and isinstance(failure.exception, ReturnedCoroutine)


def _not_awaitable(result: ExploreResult) -> NotAwaitable | None:
    failure = result.failure
    exc = failure.exception if failure is not None else None
    return exc if isinstance(exc, NotAwaitable) else None


def _barrier(parties: int, tasks: bool) -> threading.Barrier:
    """The ``barrier`` fixture's barrier: the scheduler's cooperative one for threads
    (made while its primitives are in place), asyncio's for tasks (which
    ``barrier.wait_async()`` awaits)."""
    if tasks:
        return cast("threading.Barrier", asyncio.Barrier(parties))
    return threading.Barrier(parties)


def _wrapping(worker: functools.partial[Any], user: Callable[..., Any]
              ) -> functools.partial[Any]:
    """``worker``, marked as running ``user``'s function (``inspect.unwrap`` finds it:
    the interleaving names it where a task's step ends in it)."""
    worker.__wrapped__ = user  # type: ignore[attr-defined]
    return worker


STEPS_SHOWN = 200  # of a failing schedule, in the reports' interleaving
OUTCOME_BYTES = 200  # of an outcome's repr, in the reports


def exploration(result: ExploreResult, spec: RunSpec, seed: int,
                outcomes: Mapping[str, int]) -> Exploration:
    """What an exploration found, as plain data for the reports (JSON, HTML, JUnit):
    strategy, seed, schedules explored of those allowed, whether the search was
    complete, the distinct outcomes, and the failing schedule's interleaving."""
    elapsed = result.stats.get("elapsed") or 0.0
    failure = result.failure
    data: Exploration = {
        "strategy": result.strategy or spec.strategy, "seed": seed, "workers": spec.workers,
        "schedules": result.schedules_run, "budget": spec.schedules,
        "complete": result.complete, "distinct": result.distinct,
        "incomplete": result.incomplete, "verdict": summary(result, spec, seed),
        "settings": settings(result, spec, seed),
        "outcomes": len(outcomes), "outcome_counts": dict(list(outcomes.items())[:20]),
        "schedules_per_second": result.schedules_run / elapsed if elapsed > 0 else None,
        "switch_points": result.stats.get("switch_points"),
        "python": result.stats.get("python"),
        "virtual_time": result.stats.get("virtual_time"), "interleaving": None,
    }
    if failure is not None:
        data["interleaving"] = {
            "schedule": failure.schedule, "kind": failure.kind, "worker": failure.worker,
            "message": failure.message, "total_steps": len(failure.steps),
            "steps": steps_data(failure.steps)}
    return data


def steps_data(steps: Sequence[Step]) -> list[StepRecord]:
    """The last :data:`STEPS_SHOWN` steps of a schedule, as the reports hold them."""
    return [{"worker": worker, "file": filename, "line": lineno, "function": func,
             "what": what, "source": _source(filename, lineno)}
            for worker, filename, lineno, func, what in steps[-STEPS_SHOWN:]]


def _source(filename: str, lineno: int) -> str:
    from ..progress import source_line  # read without open() (3.13t)

    return source_line(filename, lineno) if lineno else ""


def settings(result: ExploreResult, spec: RunSpec, seed: int) -> str:
    """How the exploration ran: ``strategy=dpor, seed=3, 2 workers, Python 3.12, ...``."""
    return (f"strategy={result.strategy or spec.strategy}, seed={seed}, {spec.workers} "
            f"workers, Python {result.stats.get('python')}, "
            f"{result.stats.get('switch_points')}")


def summary(result: ExploreResult, spec: RunSpec, seed: int) -> str:
    """One line on what was explored, for the report's 'explore' section: with DPOR,
    "verified: all 37 distinct interleavings explored, no failure (complete, no
    preemption bound)" or "no failure in 5000 schedules; not complete (bound reached)"."""
    run = result.schedules_run
    strategy = result.strategy or spec.strategy
    how = settings(result, spec, seed)
    if result.verified:
        return (f"verified: {all_interleavings(result.distinct)} explored, no failure "
                f"(complete, no preemption bound; {how})")
    if result.failure is None and (strategy == "dpor" or result.out_of_time):
        return (f"no failure in {run} schedule{'s' if run != 1 else ''}; not complete "
                f"({result.incomplete}); {how}")
    text = f"{run} schedule{'s' if run != 1 else ''} explored ({how})"
    if result.exhausted and strategy == "dfs":
        text += "; all interleavings with <= 2 preemptions explored"
    elif result.failure is None and result.stats.get("abandoned_threads"):
        text += f"; {result.stats['abandoned_threads']} worker thread(s) abandoned"
    return text


def _section(result: ExploreResult, spec: RunSpec, seed: int) -> str:
    """The report section of an exploration: its verdict, and who was still running
    in the schedule the time limit stopped."""
    text = summary(result, spec, seed)
    if result.cut is not None and result.failure is None:
        text += (f"\nthe time limit ({spec.timeout:g} s) stopped the schedule after the "
                 f"last of those, not counted:\n  " + result.cut.replace("\n", "\n  "))
    return text


def _explore(spec: RunSpec, options: ExploreOptions, setup: Callable[[], _Round],
             workers: Sequence[Callable[[_Round], Any]],
             observe: Callable[[_Round, list[Any], Passed], str],
             check: Callable[[_Round, list[Any]], None] | None = None,
             time_limit: float | None = None,
             ) -> tuple[ExploreResult, int, dict[str, int]]:
    """Explore ``workers`` under ``spec``; returns (result, seed, distinct outcomes
    with their counts) or raises ExploreError.  ``observe`` names each passing
    schedule's outcome; ``check``, if given, fails a schedule by raising."""
    # Imported here: the scheduler costs a pytest session nothing until explore runs.
    from ..explore import ReplayDiverged, explore

    seed = seed_of(spec)
    outcomes: dict[str, int] = {}
    done = 0

    def observed(state: _Round, returns: list[Any], passed: Passed) -> None:
        nonlocal done
        outcome = observe(state, returns, passed)
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
        done += 1
        if options.progress is not None:
            options.progress(done, spec.schedules, len(outcomes))

    try:
        result = explore(setup, workers, check, schedules=spec.schedules,
                         strategy=spec.strategy,
                         seed=seed, instrument=spec.instrument, roots=options.roots,
                         replay=_replay_of(options), observe=observed,
                         lock_order=spec.lock_order,
                         time_limit=spec.timeout if time_limit is None else time_limit,
                         exploration=options.exploration)
    except ReplayDiverged as exc:
        raise ExploreError(f"{exc}\nThe schedule did not run as recorded: the code, the "
                           "Python version or the test changed since the token was "
                           "recorded, or the body is not deterministic (it reads state that "
                           "earlier schedules or tests changed, the clock, random numbers, "
                           "the order of a set); run without --concurrency-replay to explore "
                           "afresh.") from None
    except ValueError as exc:  # a bad token or an uninstalled instrument= package
        raise ExploreError(str(exc)) from None
    for text in result.warnings:  # lock_order="warn"
        warnings.warn(pytest.PytestWarning(f"concurrency: {text}"), stacklevel=1)
    return result, result.seed, outcomes


def _replay_of(options: ExploreOptions) -> str | None:
    """The token to replay in this exploration: ``--concurrency-replay``'s, when it is
    of this exploration of the test (a test that explores several times explores the
    others as usual on the way to it)."""
    if options.replay is None:
        return None
    from ..explore import decode_token

    try:
        recorded = decode_token(options.replay)["exploration"]
    except ValueError:
        return options.replay  # explore() says what is wrong with it
    return options.replay if recorded == options.exploration else None


def _as_tasks(options: ExploreOptions, functions: Sequence[Callable[..., Any]]) -> bool:
    """Whether the workers start as asyncio tasks: some function is an ``async def``
    (a plain one must then return an awaitable), or the replay token is of tasks."""
    replay = _replay_of(options)
    if replay is not None:
        from ..explore import decode_token

        try:
            return decode_token(replay)["granularity"] == "await"
        except ValueError:
            pass  # explore() says what is wrong with it
    return any(coroutines.is_coroutine(function) for function in functions)


def _explore_either(spec: RunSpec, options: ExploreOptions, tasks: bool,
                    make: Callable[[bool], tuple[Callable[[], _Round],
                                                 list[Callable[[_Round], Any]]]],
                    observe: Callable[[_Round, list[Any], Passed], str],
                    check: Callable[[_Round, list[Any]], None] | None,
                    names: Sequence[str]) -> tuple[ExploreResult, int, dict[str, int]]:
    """Explore the workers ``make(tasks)`` gives, as threads or as tasks; threads whose
    calls return coroutines (lambdas returning one) are explored again as tasks."""
    begun = time.monotonic()
    setup, workers = make(tasks)
    result, seed, outcomes = _explore(spec, options, setup, workers, observe, check)
    if not tasks and _coroutine_returned(result):
        setup, workers = make(True)
        left = max(spec.timeout - (time.monotonic() - begun), 0.001)
        result, seed, outcomes = _explore(spec, options, setup, workers, observe, check, left)
    mixed = _not_awaitable(result)
    if mixed is not None:
        raise ExploreError(_mixed(mixed, names))
    return result, seed, outcomes


def finding_failure(finding: Finding, spec: RunSpec, nodeid: str) -> outcomes.Failure:
    """The run's Failure for the first failing schedule (a worker that called
    ``pytest.skip()`` or ``pytest.xfail()``: the item's skip or xfail, as in thread mode)."""
    exc = finding.exception
    if finding.worker is not None and isinstance(exc, _SKIPS):
        info = WorkerInfo(finding.worker, spec.workers, "explore", 0, finding.worker, 0,
                          os.getpid())
        return outcomes.describe([(exc, info)], "short")[0]
    kind = {"deadlock": "deadlock", "spin": "timeout", "timeout": "timeout"}.get(
        finding.kind, "race")
    workers = finding.involved  # none: the schedule's outcome failed, not a worker
    text = finding.report
    replay = finding.token or None  # a lock-order inversion has none: no one schedule shows it
    if replay and finding.unreplayable:
        text = text.replace(f"\nreplay token: {replay}", "")
        text += f"\n\nno replay command: {finding.unreplayable}"
        replay = None
    elif replay:
        text += f"\n\nreplay it with:\n  {replay_command(nodeid, replay)}"
    return outcomes.Failure(
        kind=kind, workers=workers, mode="explore", pid=os.getpid(),
        iteration=None, summary=finding.message, text=text,
        key=("explore", finding.kind, finding.schedule), exc=finding.exception,
        replay=replay,
    )


_SKIPS = (outcomes.Skipped, outcomes.XFailed, unittest.SkipTest)


def run(request: RunRequest) -> RunOutcome:
    """Explore the request's body (or actors) in ``spec.workers`` threads."""
    if request.actors is not None:
        return _run_actors(request, request.actors)
    spec, options = request.spec, request.explore or ExploreOptions()
    n = spec.workers
    # None only beside actors; whatever the target, calling it is the body
    target, args = cast("Callable[..., Any]", request.target), request.args
    kwargs = dict(request.kwargs)
    calls = request.calls
    infos = [WorkerInfo(i, n, "explore", 0, i, 0, os.getpid()) for i in range(n)]
    live: list[WorkerInfo] = []  # workers whose per-worker fixtures are set up

    def body(data: Mapping[Any, Any]) -> Any:
        if calls is not None:  # per-worker fixtures: this call's own
            me = context.current_worker()
            data = data[(me.index, me.iteration)]
        return target(*args, **data)

    schedules = iter(range(1 << 62))

    def teardown() -> None:
        while live and calls is not None:
            calls.teardown(live.pop())

    def make(tasks: bool) -> tuple[Callable[[], _Round], list[Callable[[_Round], Any]]]:
        """The setup and the workers of a run as asyncio tasks, or as threads."""
        def setup() -> _Round:
            first = not next(schedules)
            if calls is not None:  # every call of each schedule on fresh fixtures of its own
                teardown()
                data: dict[Any, Any] = {}
                for iteration in range(spec.iterations):  # set up before the schedule runs
                    for info in infos:
                        at = info._replace(iteration=iteration)
                        data[(info.index, iteration)] = calls.setup(at)
                        live.append(at)
            else:
                if not first and options.fresh_kwargs is not None:
                    kwargs.update(options.fresh_kwargs())
                data = dict(kwargs)
            return _Round(RunContext(_barrier(n, tasks)), data)

        worker = _task if tasks else _worker  # each worker an asyncio task of one loop
        return setup, [_wrapping(functools.partial(worker, i, n, spec.iterations, body),
                                 target) for i in range(n)]

    last: dict[str, Any] = {}

    def observe(state: _Round, returns: list[Any], passed: Passed) -> str:
        last["values"] = returns = returns[:n]  # the workers', not the threads/tasks they start
        return _outcome(returns)

    start = time.perf_counter()
    try:
        result, seed, outcomes = _explore_either(
            spec, options, _as_tasks(options, [target]), make, observe, None,
            [f"worker {index}" for index in range(n)])
    finally:
        teardown()
    wall = time.perf_counter() - start
    failures = [finding_failure(result.failure, spec, options.nodeid)] if result.failure \
        else []
    values = {i: list(v or []) for i, v in enumerate(last.get("values", [None] * n))}
    return RunOutcome(values, failures, [("explore", _section(result, spec, seed))], wall,
                      exploration=exploration(result, spec, seed, outcomes))


def _outcome(values: object) -> str:
    """A schedule's outcome as the reports name it: what the workers returned, by
    its repr on one line (a repr that raises named so), within 200 bytes."""
    return texts.short_repr(values, OUTCOME_BYTES)


def _run_actors(request: RunRequest, actors: Actors) -> RunOutcome:
    """``run_actors``: one round per schedule, each outcome tallied with the command
    that replays the first schedule that produced it (``tally.replays``)."""
    spec, options = request.spec, request.explore or ExploreOptions()
    n = len(actors.actors)
    tally = actors.tally
    tasks = _as_tasks(options, actors.actors)  # coroutine actors: tasks on one loop

    def outcome_of(state: _Round, returns: list[Any]) -> Any:
        if state.outcome is _UNJUDGED:
            state.outcome = actors.arbiter(state.data) if actors.arbiter is not None else \
                tuple(r[0] if r else None for r in returns[:n])  # not the tasks they start
        return state.outcome

    def check(state: _Round, returns: list[Any]) -> None:
        """The round's outcome (an arbiter that raises fails its schedule), and with
        run_actors(expect=, forbid=) whether it is rejected (which fails it too)."""
        why = rejects(outcome_of(state, returns), actors.expect, actors.forbid)
        if why is not None:
            raise AssertionError(why)

    def observe(state: _Round, returns: list[Any], passed: Passed) -> str:
        outcome = outcome_of(state, returns)
        why = untallied(outcome, actors.arbiter is not None)
        if why is not None:
            raise ExploreError(why)
        tally[outcome] += 1
        if outcome not in tally.replays:
            token = passed.token()
            command = tally.replays[outcome] = replay_command(options.nodeid, token)
            tally.first[outcome] = FirstSchedule(
                passed.index, token, command, passed.interleaving(), steps_data(passed.steps),
                len(passed.steps), passed.workers)
        return _outcome(outcome)

    stateless = actors.setup is None

    def call_of(actor: Callable[..., Any]) -> Callable[[Any], Any]:
        """What worker i calls with the round's state: actor i, given it unless stateless."""
        return (lambda _data: actor()) if stateless else actor

    def make(tasks: bool) -> tuple[Callable[[], _Round], list[Callable[[_Round], Any]]]:
        def setup() -> _Round:
            try:
                data = actors.setup() if actors.setup is not None else None
            except Exception as exc:  # noqa: BLE001 - the test's failure, as in thread mode
                raise SetupFailed(exc) from None
            return _Round(RunContext(_barrier(n, tasks)), data)

        worker = _task if tasks else _worker
        return setup, [_wrapping(functools.partial(worker, i, n, 1, call_of(actor)), actor)
                       for i, actor in enumerate(actors.actors)]

    start = time.perf_counter()
    names = [f"actor {i} ({getattr(actor, '__qualname__', None) or texts.short_repr(actor, 40)})"
             for i, actor in enumerate(actors.actors)]
    result, seed, outcomes = _explore_either(spec, options, tasks, make, observe, check,
                                             names)
    failures = [finding_failure(result.failure, spec, options.nodeid)] if result.failure \
        else []
    return RunOutcome({}, failures, [("explore", _section(result, spec, seed))],
                      time.perf_counter() - start,
                      exploration=exploration(result, spec, seed, outcomes))
