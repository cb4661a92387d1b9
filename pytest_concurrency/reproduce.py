"""``--concurrency-reproduce``: a thread-mode failure found again under explore.

Free-running threads find a race by luck, and the next run may not.  When a
whole-body test fails in thread mode, its body is run again under explore's
deterministic scheduler (fresh fixtures for every schedule, as explore mode
gives them), a few strategies in turn, within :data:`SCHEDULES` schedules each
and :data:`SECONDS` in all.  A schedule that raises the same exception type at
the same line is the failure reproduced: its replay token runs it again on the
same item, in explore mode (``--concurrency-replay``).  Otherwise the report
says it was not reproduced and what was tried.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterable, Mapping
from types import TracebackType
from typing import Any

import pytest

from .options import replay_command
from .outcomes import Failure, WorkerFailures
from .spec import RunSpec

SCHEDULES = 200  # per strategy
SECONDS = 10.0  # for every attempt together
ATTEMPTS = (("pct", 0), ("random", 0), ("pct", 1))  # (strategy, seed), in this order
SECTION = "reproduce"  # the report section's title

Signature = tuple[str, str, int]  # exception type's name, file, line it was raised at


class _OutOfTime(Exception):
    """Raised from the progress callback: the attempts' time is up."""


def signature(exc: BaseException | None) -> Signature | None:
    """The exception's type and where it was raised (its traceback's last frame)."""
    if exc is None:
        return None
    last: TracebackType | None = exc.__traceback__
    while last is not None and last.tb_next is not None:
        last = last.tb_next
    if last is None:
        return None
    return (type(exc).__qualname__, last.tb_frame.f_code.co_filename, last.tb_lineno)


def wanted(failures: WorkerFailures) -> set[Signature]:
    """The signatures of a thread-mode run's exceptions (crashes and timeouts have none)."""
    found = {signature(group.first.exc) for group in failures.groups
             if group.first.kind == "exception"}
    return {each for each in found if each is not None}


def _where(sig: Signature) -> str:
    name, filename, line = sig
    return f"{name} at {filename.rsplit('/', 1)[-1]}:{line}"


def explore_spec_of(spec: RunSpec, strategy: str | None = None,
                    seed: int | None = None) -> RunSpec:
    """The thread-mode ``spec`` as explore runs it to reproduce a failure - and as a
    token it printed is replayed on the thread item: the same workers, one iteration
    each (a token's choices are for exactly these), no lock-order check."""
    return dataclasses.replace(spec, mode="explore", strategy=strategy or spec.strategy,
                               seed=seed if seed is not None else spec.seed,
                               schedules=SCHEDULES, lock_order="ignore", iterations=1)


def attempt(spec: RunSpec, targets: set[Signature],
            run: Callable[[RunSpec, Callable[[int, int, int], None]], Failure | None],
            nodeid: str, attempts: Iterable[tuple[str, int]] = ATTEMPTS,
            seconds: float = SECONDS) -> str:
    """Try to reproduce ``targets`` under explore; the text for the report.

    ``run(explore_spec, progress)`` explores once and returns the failure it found
    (None if none); ``progress`` raises when the time is up."""
    deadline = time.monotonic() + seconds
    tried: list[str] = []
    others: list[str] = []

    def progress(done: int, allowed: int, distinct: int) -> None:
        if time.monotonic() > deadline:
            raise _OutOfTime()

    for strategy, seed in attempts:
        if tried and time.monotonic() > deadline:
            break
        # the time left bounds the exploration too: a long schedule is stopped in it
        explore_spec = dataclasses.replace(explore_spec_of(spec, strategy, seed),
                                           timeout=max(0.1, deadline - time.monotonic()))
        try:
            failure = run(explore_spec, progress)
            if failure is not None and failure.kind == "timeout" and \
                    time.monotonic() > deadline:
                raise _OutOfTime()
        except _OutOfTime:
            tried.append(f"{strategy} seed {seed} (stopped at {seconds:g} s)")
            break
        tried.append(f"{strategy} seed {seed}")
        if failure is None:
            continue
        found = signature(failure.exc)
        if found in targets and failure.replay:
            return (f"reproduced under explore ({strategy}, seed {seed}): {_where(found)}, "
                    f"the same as in thread mode.\nreplay it with:\n  "
                    f"{replay_command(nodeid, failure.replay)}")
        others.append(failure.summary if found is None else _where(found))
    text = (f"not reproduced under explore: tried {', '.join(tried)}, at most {SCHEDULES} "
            f"schedules each, {seconds:g} s in all, looking for "
            f"{' or '.join(sorted(map(_where, targets)))}")
    if others:
        text += f"; found other failures instead: {'; '.join(others)}"
    return text


def explore_once(node: pytest.Item, target: Callable[..., Any], funcargs: Mapping[str, Any],
                 fresh: Callable[[], Mapping[str, Any]] | None,
                 ) -> Callable[[RunSpec, Callable[[int, int, int], None]], Failure | None]:
    """``run`` for :func:`attempt`: the item's body under explore, its failure if any."""
    from . import runners
    from .running import explore_roots

    def run(spec: RunSpec, progress: Callable[[int, int, int], None]) -> Failure | None:
        options = runners.ExploreOptions(replay=None, roots=explore_roots(node, target),
                                         nodeid=node.nodeid, fresh_kwargs=fresh,
                                         progress=progress)
        request = runners.RunRequest(spec, target, (), dict(funcargs), "fixture",
                                     "long", node.config, options)
        outcome = runners.run(request)
        return outcome.failures[0] if outcome.failures else None

    return run



def replaying(item: pytest.Function, run_spec: RunSpec, target: Callable[..., Any],
              per_worker: bool) -> tuple[RunSpec, Callable[..., Any]]:
    """A thread-mode item given a token that ``--concurrency-reproduce`` printed
    for it (``--concurrency-replay``): explore runs it as it ran when it printed
    the token (a coroutine as tasks of one loop).  Anything else runs as it is."""
    from . import coroutines
    from .spec import SETTINGS

    if run_spec.mode != "thread" or per_worker or not item.config.stash[SETTINGS].replay:
        return run_spec, target
    if coroutines.is_coroutine(item.obj):
        target = coroutines.task_body(item.obj, item.funcargs)
    return explore_spec_of(run_spec), target


def after_failure(item: pytest.Function, run_spec: RunSpec, target: Callable[..., Any],
                  failures: WorkerFailures, per_worker: bool) -> None:
    """With ``--concurrency-reproduce``, after a thread-mode failure: look for it
    under explore, on fresh fixtures, and say in the report whether it was found
    (and how to replay it)."""
    from . import compat, coroutines, options

    if run_spec.mode != "thread" or not options.flag(item.config, "reproduce"):
        return
    targets = wanted(failures)
    if not targets:
        text = "not tried under explore: the failure is not an exception raised by the body"
    elif per_worker:
        text = ("not tried under explore: it runs tests with shared fixtures (fresh for "
                "every schedule); run again with --concurrency-fixtures=shared")
    else:
        def fresh() -> dict[str, Any]:
            return dict(compat.fresh_funcargs(item))

        try:
            if coroutines.is_coroutine(item.obj):  # explore runs the workers as tasks
                target = coroutines.task_body(item.obj, item.funcargs)
        except pytest.skip.Exception as exc:  # anyio's trio backend
            text = f"not tried under explore: {exc.msg}"
        else:
            run = explore_once(item, target, fresh(), fresh)
            text = attempt(run_spec, targets, run, item.nodeid)
    item.add_report_section("call", SECTION, text)
