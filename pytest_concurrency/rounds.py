"""Checking a ``concurrency_budget``: paired rounds, estimates, verdicts.

A budgeted whole-body test runs in rounds.  Each round times the same work
done serially (the body called ``workers × iterations`` times in the pytest
process, when a speedup or efficiency limit needs it) and then concurrently,
so both see the same machine load.  Medians with distribution-free intervals
over the rounds are checked against the limits; while a verdict is
inconclusive and rounds remain, more rounds are run.

Every run starts on fresh function-scoped fixtures, as a plain test would.
Every round also measures how much of a CPU one thread gets (a 10 ms spin):
on a machine so busy that a thread gets less than ``BUSY`` of a CPU, a
wall-clock limit that fails says more about the machine than about the code,
so it warns instead (as under pytest-xdist), unless ``--concurrency-strict``.
"""

from __future__ import annotations

import dataclasses
import os
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import pytest

from . import budget, compat, context, metrics, spec
from .report import compare
from .running import execute, request_for
from .stats import Estimate

if TYPE_CHECKING:
    from .metrics import Measurement
    from .runners import Calls

ROUNDS = 5  # paired rounds per batch
MAX_ROUNDS = 15
WALL_CLOCK = ("wall", "throughput", "speedup", "efficiency", "regression")
BUSY = 0.8  # a thread getting less of a CPU than this: the machine is busy


@dataclasses.dataclass
class Samples:
    serial: list[float] = dataclasses.field(default_factory=list)
    concurrent: list[Measurement] = dataclasses.field(default_factory=list)
    availability: list[float] = dataclasses.field(default_factory=list)


def _serial_time(run_spec: spec.RunSpec, target: Callable[..., Any],
                 kwargs: Mapping[str, Any], calls: Calls | None = None) -> float:
    """Seconds for the same work as one concurrent run, done in this thread: the
    body once per worker and iteration, each call seeing that worker's
    ``worker`` fixture values, and a ``barrier`` of one party (nobody else is
    there to wait for).  With per-worker fixtures each call gets its own, set up
    and torn down outside the timing."""
    run = context.RunContext(threading.Barrier(1))
    threads = max(1, run_spec.threads)
    spent = 0.0
    try:
        for index in range(run_spec.workers):
            for iteration in range(run_spec.iterations):
                info = context.WorkerInfo(
                    index=index, count=run_spec.workers, mode=run_spec.mode,
                    process_index=index // threads, thread_index=index % threads,
                    iteration=iteration, pid=os.getpid())
                call_kwargs = calls.setup(info) if calls is not None else kwargs
                context.enter(info, run)
                start = time.perf_counter()
                try:
                    target(**call_kwargs)
                finally:
                    spent += time.perf_counter() - start
                    context.leave()
                    if calls is not None:
                        calls.teardown(info)
    finally:
        context.leave()
    return spent


def estimates(samples: Samples, run_spec: spec.RunSpec,
              baseline: dict[str, Any] | None = None) -> dict[str, Estimate]:
    """What the rounds measured, per budget key.  ``baseline`` (a report's wall
    metric from an earlier run) adds ``regression``: the slowdown against it."""
    runs = samples.concurrent
    measured = {
        "wall": Estimate.of([m.wall for m in runs]),
        "cpu": Estimate.of([m.cpu for m in runs]),
        "throughput": Estimate.of([m.throughput for m in runs]),
    }
    peaks = [m.peak_rss for m in runs if m.peak_rss is not None]
    if len(peaks) == len(runs):  # sampled in every round
        measured["memory"] = Estimate.of(peaks)
    if baseline and baseline.get("value"):
        wall = measured["wall"]
        median, low, high = compare.regression(baseline, wall.median, wall.low, wall.high)
        measured["regression"] = dataclasses.replace(wall, median=median, low=low, high=high)
    if samples.availability:
        measured["availability"] = Estimate.of(samples.availability)
    if samples.serial:
        speedup = Estimate.of_ratios(samples.serial, [m.wall for m in runs])
        measured["speedup"] = speedup
        parallel = min(run_spec.workers, spec.usable_cpus())
        measured["efficiency"] = dataclasses.replace(
            speedup, median=speedup.median / parallel, low=speedup.low / parallel,
            high=speedup.high / parallel)
    return measured


def under_xdist() -> bool:
    return int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1") or 1) > 1


def run(run_spec: spec.RunSpec, item: pytest.Function, target: Callable[..., Any],
        kwargs: Mapping[str, Any], limits: Sequence[budget.Limit], strict: bool,
        record: Callable[[dict[str, Estimate], list[budget.Verdict]], None],
        baseline: dict[str, Any] | None = None, calls: Calls | None = None) -> None:
    """Run the budgeted body in paired rounds and enforce ``limits``.

    ``record(estimates, verdicts)`` gets what was measured, also when a limit is then
    violated: the test fails, and warns (or, with ``strict``, fails) when a
    verdict stays inconclusive.
    """
    __tracebackhide__ = True
    keys = {limit.key for limit in limits}
    serial = bool(keys & {"speedup", "efficiency"})
    samples = Samples()
    runs = 0

    def fresh() -> Mapping[str, Any]:
        """The body's fixtures, set up afresh for every run after the first (with
        per-worker fixtures, every call gets its own anyway)."""
        nonlocal runs
        runs += 1
        return kwargs if runs == 1 or calls is not None else compat.fresh_funcargs(item)

    while True:
        for _ in range(ROUNDS):
            samples.availability.append(metrics.cpu_availability())
            if serial:
                samples.serial.append(_serial_time(run_spec, target, fresh(), calls))
            request = request_for(run_spec, item, target, (), fresh(), arg_kind="fixture",
                                  calls=calls)
            outcome = execute(request, item, memory="memory" in keys)
            assert outcome.measurement is not None  # execute() measures every run
            samples.concurrent.append(outcome.measurement)
        measured = estimates(samples, run_spec, baseline)
        verdicts = budget.check(limits, measured)
        if len(samples.concurrent) >= MAX_ROUNDS or \
                not any(v.status == "inconclusive" for v in verdicts):
            break
    record(measured, verdicts)
    _enforce(verdicts, strict, measured["availability"].median)


def _enforce(verdicts: Iterable[budget.Verdict], strict: bool,
             availability: float = 1.0) -> None:
    __tracebackhide__ = True
    failed, doubtful = [], []
    for verdict in verdicts:
        if verdict.status == "fail":
            if strict or verdict.limit.key not in WALL_CLOCK:
                failed.append(verdict.message)
            elif under_xdist():
                doubtful.append(verdict.message + " (wall-clock limits are not enforced "
                                "under pytest-xdist with several workers without "
                                "--concurrency-strict)")
            elif availability < BUSY:
                doubtful.append(verdict.message + f" (not enforced: the machine was busy, a "
                                f"thread got {availability:.0%} of a CPU during the rounds; "
                                "--concurrency-strict enforces it)")
            else:
                failed.append(verdict.message)
        elif verdict.status == "inconclusive":
            (failed if strict else doubtful).append(verdict.message)
    for message in doubtful:  # also when another limit fails the test
        warnings.warn(pytest.PytestWarning(f"concurrency budget: {message}"), stacklevel=2)
    if failed:
        pytest.fail("concurrency budget exceeded:\n" + "\n".join(failed), pytrace=False)
