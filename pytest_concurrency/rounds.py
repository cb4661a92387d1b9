"""Checking a ``concurrency_budget``: paired rounds, estimates, verdicts.

A budgeted whole-body test runs in rounds.  Each round times the same work
done serially (the body called ``workers × iterations`` times in the pytest
process, when a speedup or efficiency limit needs it) and then concurrently,
so both see the same machine load.  Medians with distribution-free intervals
over the rounds are checked against the limits; while a verdict is
inconclusive and rounds remain, more rounds are run.

Every run starts on fresh function-scoped fixtures, as a plain test would.
A busy machine makes a run wait for a CPU, and nothing else: a sleep, I/O or a
lock wait takes as long on a busy machine as on an idle one.  So every round
measures how long the run's threads waited for a CPU (Linux's schedstat), and
how much of a CPU one thread gets (a 10 ms spin) for what it cannot see: child
processes, other systems.  A wall-clock limit that fails is checked again with
that taken out of every round (:func:`unexplained`): if it still fails, the
code is over budget whatever the load; if not, the machine explains it, and it
warns instead, saying so with the numbers, unless ``--concurrency-strict``.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
import threading
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import pytest

from . import budget, compat, context, metrics, spec, stats
from .report import compare
from .running import execute, request_for
from .stats import Estimate

if TYPE_CHECKING:
    from .body import Body
    from .metrics import Measurement
    from .report.records import Metric
    from .runners import Calls

ROUNDS = 5  # paired rounds per batch
MAX_ROUNDS = 15
WALL_CLOCK = ("wall", "throughput", "speedup", "efficiency", "regression")
BUSY = 0.8  # a thread getting less of a CPU than this: the machine is busy (advice, wording)


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
              baseline: Metric | None = None) -> dict[str, Estimate]:
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


def unexplained(measurement: Measurement, share: float, cpus: int) -> Measurement:
    """``measurement`` with the wall time a busy machine explains taken out.

    What it explains is the time the run's threads waited for a CPU, where the
    kernel tells (``measurement.waited``, summed over the threads: at least what
    the waiting added to the run), and for CPU time spent where that cannot be
    seen (child processes; every thread elsewhere) what a CPU ``share`` makes of
    it: up to ``cpu / share`` seconds for ``cpu`` seconds of CPU time, as if
    every CPU second had been spent one after another.  Waiting for anything
    else (sleep, I/O, locks) stays.  No run is faster than its CPU time spread
    over every usable CPU, the floor.
    """
    if measurement.waited is None:
        unseen, seen = measurement.cpu, 0.0
    else:
        unseen, seen = measurement.child_cpu, measurement.waited
    stretch = unseen * (1 / share - 1) if share > 0 else math.inf
    floor = measurement.cpu / max(1, cpus)
    return dataclasses.replace(
        measurement, wall=max(measurement.wall - seen - stretch, floor, 1e-9))


def without_load(samples: Samples) -> Samples:
    """``samples`` with every round's wall time less what the machine's load
    explains (:func:`unexplained`), at the median share of a CPU a thread got over
    the rounds: one probe that caught a stall or a quiet moment moves nothing."""
    share = stats.median(samples.availability) if samples.availability else 1.0
    cpus = spec.usable_cpus()
    return dataclasses.replace(
        samples, concurrent=[unexplained(m, share, cpus) for m in samples.concurrent])


def measure(item: pytest.Function, run_spec: spec.RunSpec, body: Body,
            calls: Calls | None = None) -> bool:
    """Run a whole-body item in paired rounds if it has a budget, or a baseline is
    being saved or compared with (not in explore mode: tracing is no benchmark);
    whether it did.  What the rounds measured goes to the item's report entry."""
    __tracebackhide__ = True
    from .report import entry
    from .report.settings import REPORTS

    limits, stored = limits_of(item, run_spec)
    saving = item.config.stash[REPORTS].save_baseline is not None
    if not (limits or saving) or run_spec.mode == "explore":
        return False

    def record(measured: dict[str, Estimate], verdicts: list[budget.Verdict]) -> None:
        entry.add_estimates(item, measured, verdicts)

    run(run_spec, item, body.target, body.kwargs, limits, run_spec.strict, record,
        baseline=stored, calls=calls)
    return True


def limits_of(item: pytest.Item,
              run_spec: spec.RunSpec) -> tuple[tuple[budget.Limit, ...], Metric | None]:
    """The item's budget, with ``--concurrency-compare-fail`` as a regression limit
    when the baseline has this test; and its baseline wall time, if any."""
    from .report.settings import BASELINE, MACHINE, REPORTS

    reports = item.config.stash[REPORTS]
    if reports.baseline is None:
        return run_spec.budget, None
    from .report import baseline, entry

    metrics = baseline.lookup(item.config.stash[BASELINE], item.config.stash[MACHINE], {
        "test": entry.base_id(item.nodeid), "mode": run_spec.mode, "layout": run_spec.layout})
    stored = metrics.get("wall") if metrics else None
    limits = run_spec.budget
    if stored and reports.compare_fail is not None \
            and not any(limit.key == "regression" for limit in limits):
        limits += budget.parse({"regression": reports.compare_fail})
    return limits, stored


def run(run_spec: spec.RunSpec, item: pytest.Function, target: Callable[..., Any],
        kwargs: Mapping[str, Any], limits: Sequence[budget.Limit], strict: bool,
        record: Callable[[dict[str, Estimate], list[budget.Verdict]], None],
        baseline: Metric | None = None, calls: Calls | None = None) -> None:
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
            outcome = execute(request, item, memory="memory" in keys, waits=True)
            assert outcome.measurement is not None  # execute() measures every run
            samples.concurrent.append(outcome.measurement)
        measured = estimates(samples, run_spec, baseline)
        verdicts = budget.check(limits, measured)
        if len(samples.concurrent) >= MAX_ROUNDS or \
                not any(v.status == "inconclusive" for v in verdicts):
            break
    record(measured, verdicts)
    enforce(verdicts, samples, run_spec, strict, baseline)


def enforce(verdicts: Sequence[budget.Verdict], samples: Samples, run_spec: spec.RunSpec,
            strict: bool, baseline: Metric | None = None) -> None:
    """Fail the test for the ``verdicts`` on ``samples`` that fail it, and warn for the
    rest: a wall-clock limit fails only beyond what the machine's load explains
    (:func:`without_load`), unless ``strict``."""
    __tracebackhide__ = True
    load_free = budget.check([v.limit for v in verdicts],
                             estimates(without_load(samples), run_spec, baseline))
    failed, doubtful = [], []
    for verdict, unloaded in zip(verdicts, load_free, strict=True):
        if verdict.status == "fail":
            if strict or verdict.limit.key not in WALL_CLOCK:
                failed.append(verdict.message)
            elif unloaded.status == "fail":
                failed.append(judge_load(verdict, unloaded, samples))
            else:
                doubtful.append(excused(verdict, unloaded, samples))
        elif verdict.status == "inconclusive":
            (failed if strict else doubtful).append(verdict.message)
    for message in doubtful:  # also when another limit fails the test
        warnings.warn(pytest.PytestWarning(f"concurrency budget: {message}"), stacklevel=2)
    if failed:
        pytest.fail("concurrency budget exceeded:\n" + "\n".join(failed), pytrace=False)


def _describe(verdict: budget.Verdict) -> str:
    """The estimate of ``verdict``: ``3.1ms [2.9ms, 3.4ms]``."""
    assert verdict.measured is not None
    estimate = verdict.measured
    fmt = functools.partial(budget.format_value, verdict.limit.key)
    if estimate.n == 1:
        return fmt(estimate.median)
    return f"{fmt(estimate.median)} [{fmt(estimate.low)}, {fmt(estimate.high)}]"


NOTABLE = 0.05  # of a run's wall time: load explaining less on a machine not BUSY goes unsaid


def _load(samples: Samples) -> tuple[bool, str]:
    """Whether the load was worth a mention (a thread got less than ``BUSY`` of a
    CPU, or it explains ``NOTABLE`` of a run's wall time), and what it explains,
    in words."""
    share = stats.median(samples.availability) if samples.availability else 1.0
    runs = samples.concurrent
    unloaded = without_load(samples).concurrent
    explained = stats.median([(m.wall - w.wall) / m.wall
                              for m, w in zip(runs, unloaded, strict=True)])
    said = []
    waited = [m.waited for m in runs if m.waited is not None]
    if waited:
        said.append(f"the run's threads waited {budget.format_value('wall', stats.median(waited))}"
                    " for a CPU between them")
    unseen = stats.median([m.cpu if m.waited is None else m.child_cpu for m in runs])
    if unseen > 0 or not waited:
        factor = f"{1 / share:.2g}-fold" if share > 0 else "without bound"
        whose = "child processes'" if waited else "run's"
        said.append(f"a thread got {share:.0%} of a CPU, which stretches the {whose} "
                    f"CPU time ({budget.format_value('cpu', unseen)}) up to {factor}")
    notable = share < BUSY or explained >= NOTABLE
    return notable, " and ".join(said) + " (medians of the rounds)"


def judge_load(verdict: budget.Verdict, load_free: budget.Verdict, samples: Samples) -> str:
    """The message of a failing wall-clock ``verdict`` the load does not explain:
    ``load_free`` (the same limit checked on :func:`without_load`) fails too."""
    notable, story = _load(samples)
    if not notable:
        return verdict.message
    return (f"{verdict.message}, more than the busy machine explains: {story}; even with "
            f"all of that taken out: {verdict.limit.key} {_describe(load_free)} (waiting, as "
            "in sleep, I/O or a lock, is not slowed by load)")


def excused(verdict: budget.Verdict, load_free: budget.Verdict, samples: Samples) -> str:
    """The warning for a failing wall-clock ``verdict`` the machine's load explains."""
    return (f"{verdict.message} (not enforced: the machine was busy, {_load(samples)[1]}; "
            f"with all of that taken out, at best: {verdict.limit.key} "
            f"{_describe(load_free)}; --concurrency-strict enforces it)")
