"""thread mode: N OS threads in the pytest process."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, cast

from .. import ending, outcomes, watchdog
from ..context import RunContext, WorkerInfo
from ..coroutines import awaited
from .request import RunOutcome, RunRequest, seed_of
from .workers import Stop, run_workers


def run(request: RunRequest) -> RunOutcome:
    spec = request.spec
    n = spec.workers
    pid = os.getpid()
    infos = [WorkerInfo(i, n, spec.mode, 0, i, 0, pid) for i in range(n)]
    # None only beside actors, which explore mode alone runs; whatever the target,
    # calling it is the body, and what that raises is the workers' failure
    target = cast("Callable[..., Any]", request.target)
    args = request.args

    def body(kwargs: Mapping[str, Any]) -> object:
        return awaited(target(*args, **kwargs))  # async def: on the worker's own loop

    stop = Stop()
    seed = seed_of(spec)
    start = time.perf_counter()
    begun = time.monotonic()
    report = run_workers(body, infos, spec.iterations, threading.Barrier(n, action=stop),
                         RunContext(threading.Barrier(n)), stop=stop,
                         deadline=begun + spec.timeout, cap=begun + spec.timeout_cap,
                         jitter=seed, kwargs=request.kwargs, calls=request.calls)
    wall = time.perf_counter() - start
    failures = outcomes.describe(report.raw, request.tb_style)
    if report.stuck:
        ending.abandon(report.stuck + report.started)  # the session ends without them
        failures.append(outcomes.timeout(
            [watchdog.worker_index(t) for t in report.stuck], spec.mode, pid, spec.timeout,
            watchdog.thread_stacks(report.stuck + report.started), report.verdict,
            time.monotonic() - begun))
    elif report.late is not None:  # finished, but past the cap: a timeout all the same
        failures.append(outcomes.timeout(
            report.late.workers, spec.mode, pid, spec.timeout,
            "they finished while they were watched, past the timeout cap; where they were "
            f"when the watch began:\n{report.late.stacks}", report.late.verdict,
            spec.timeout_cap))
    return RunOutcome(report.values, failures, [], wall, seed)
