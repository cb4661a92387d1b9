"""explore mode: the workers as threads under the deterministic scheduler.

Every schedule runs the body once in each of ``spec.workers`` threads, one
thread at a time, switching where the scheduler decides (see ``explore/``).
The first failing schedule becomes the run's failure, with the interleaving
and a command that replays it.
"""

from __future__ import annotations

import functools
import os
import random
import threading
import time

from .. import context, outcomes
from ..context import RunContext, WorkerInfo
from . import RunOutcome


class ExploreError(Exception):
    """The run could not be explored as asked (a bad token, an unknown package)."""


class _Round:
    """What the workers of one schedule share: the barrier, and the body's
    keyword arguments (whole-body) or the state ``setup()`` made (actors)."""

    def __init__(self, run: RunContext, data):
        self.run = run
        self.data = data


def _actor(index: int, count: int, iterations: int, target, args, state: _Round):
    """One worker of one schedule: the body, ``iterations`` times."""
    context.enter(WorkerInfo(index, count, "explore", 0, index, 0, os.getpid()), state.run)
    try:
        values = []
        for iteration in range(iterations):
            if iteration:
                context.set_iteration(iteration)
            values.append(target(*args, **state.data))
        return values
    finally:
        context.leave()


def replay_command(nodeid: str, token: str) -> str:
    return f"pytest '{nodeid}' --concurrency-replay={token}"


def summary(result, spec, seed: int) -> str:
    """One line on what was explored, for the report's 'explore' section."""
    text = (f"{result.schedules_run} schedule{'s' if result.schedules_run != 1 else ''} "
            f"explored (strategy={spec.strategy}, seed={seed}, {spec.workers} workers, "
            f"Python {result.stats.get('python')}, {result.stats.get('switch_points')})")
    if result.exhausted:
        text += "; all interleavings with <= 2 preemptions explored"
    elif result.failure is None and result.stats.get("abandoned_threads"):
        text += f"; {result.stats['abandoned_threads']} worker thread(s) abandoned"
    return text


def explore_run(spec, setup, actors, *, replay: str | None, roots, nodeid: str,
                observe=None):
    """Explore ``actors`` under ``spec``; returns (result, seed) or raises ExploreError."""
    # Imported here: the scheduler costs a pytest session nothing until explore runs.
    from ..explore import ReplayDiverged, explore

    seed = spec.seed if spec.seed is not None else random.SystemRandom().randrange(2**32)
    try:
        result = explore(setup, actors, schedules=spec.schedules, strategy=spec.strategy,
                         seed=seed, instrument=spec.instrument, roots=roots, replay=replay,
                         observe=observe)
    except ReplayDiverged as exc:
        raise ExploreError(f"{exc}\nThe code, the Python version or the test changed since "
                           f"the token was recorded; run without --concurrency-replay "
                           f"to explore afresh.") from None
    except ValueError as exc:  # a bad token or an uninstalled instrument= package
        raise ExploreError(str(exc)) from None
    return result, seed


def finding_failure(finding, spec, nodeid: str) -> outcomes.Failure:
    """The run's Failure for the first failing schedule."""
    kind = "deadlock" if finding.kind == "deadlock" else "race"
    workers = (finding.worker,) if finding.worker is not None else tuple(range(spec.workers))
    text = f"{finding.report}\n\nreplay it with:\n  {replay_command(nodeid, finding.token)}"
    return outcomes.Failure(
        kind=kind, workers=workers, mode="explore", pid=os.getpid(),
        iteration=None, summary=finding.message, text=text,
        key=("explore", finding.kind, finding.schedule), exc=finding.exception,
        replay=finding.token,
    )


def run(spec, target, args, kwargs, *, replay=None, roots=(), nodeid="",
        refresh=None) -> RunOutcome:
    """Explore ``target(*args, **kwargs)`` in ``spec.workers`` threads.

    ``refresh``, if given, returns fresh ``kwargs`` (the test's function-scoped
    fixtures set up again) for every schedule after the first.
    """
    n = spec.workers
    actors = [functools.partial(_actor, i, n, spec.iterations, target, args)
              for i in range(n)]
    schedules = iter(range(1 << 62))

    def setup():
        if next(schedules) and refresh is not None:
            kwargs.update(refresh())
        # Created while the scheduler's primitives are in place: a cooperative barrier.
        return _Round(RunContext(threading.Barrier(n)), dict(kwargs))

    start = time.perf_counter()
    last = {}

    def observe(state, returns, token):
        last["values"] = returns

    result, seed = explore_run(spec, setup, actors, replay=replay, roots=roots,
                               nodeid=nodeid, observe=observe)
    wall = time.perf_counter() - start
    failures = []
    if result.failure is not None:
        failures.append(finding_failure(result.failure, spec, nodeid))
    values = {i: list(v or []) for i, v in enumerate(last.get("values", [None] * n))}
    return RunOutcome(values, failures, [("explore", summary(result, spec, seed))], wall)


def _role(index: int, count: int, actor, stateless: bool, state: _Round):
    context.enter(WorkerInfo(index, count, "explore", 0, index, 0, os.getpid()), state.run)
    try:
        return [actor() if stateless else actor(state.data)]
    finally:
        context.leave()


def run_actors(spec, actors, setup, arbiter, tally, *, replay=None, roots=(),
               nodeid="") -> RunOutcome:
    """``run_actors`` in explore mode: one round per schedule, tallied in ``tally``.

    Each outcome in the tally keeps (in ``tally.replays``) the command that
    replays the first schedule that produced it.
    """
    n = len(actors)

    def setup_round():
        return _Round(RunContext(threading.Barrier(n)),
                      setup() if setup is not None else None)

    def observe(state, returns, token):
        outcome = arbiter(state.data) if arbiter is not None else \
            tuple(r[0] if r else None for r in returns)
        tally[outcome] += 1
        if outcome not in tally.replays:
            tally.replays[outcome] = replay_command(nodeid, token())

    roles = [functools.partial(_role, i, n, actor, setup is None)
             for i, actor in enumerate(actors)]
    start = time.perf_counter()
    result, seed = explore_run(spec, setup_round, roles, replay=replay, roots=roots,
                               nodeid=nodeid, observe=observe)
    failures = [finding_failure(result.failure, spec, nodeid)] if result.failure else []
    return RunOutcome({}, failures, [("explore", summary(result, spec, seed))],
                      time.perf_counter() - start)
