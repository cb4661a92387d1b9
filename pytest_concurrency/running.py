"""Running a body under a RunSpec inside pytest: the glue every test style shares.

:func:`request_for` builds the one :class:`~runners.RunRequest` a run is made
from; :func:`execute` runs it, measured, and turns what the runner hands back
into pytest's terms: report sections for children's output, and the test's
outcome (pass, skip, xfail, or one grouped failure).
"""

from __future__ import annotations

import dataclasses
import os
import sys
from collections.abc import Callable, Mapping
from typing import Any

import pytest

from . import metrics, outcomes, runners, shipping
from .report import entry, terminal
from .spec import SETTINGS, RunSpec, tb_style


def request_for(spec: RunSpec, node: pytest.Item, target: Callable[..., Any] | None = None,
                args: tuple[Any, ...] = (), kwargs: Mapping[str, Any] | None = None, *,
                arg_kind: str = "argument",
                fresh_kwargs: Callable[[], Mapping[str, Any]] | None = None,
                actors: runners.Actors | None = None,
                calls: runners.Calls | None = None,
                exploration: int = 0) -> runners.RunRequest:
    """The request for running ``target(*args, **kwargs)`` in every worker (or, in
    explore mode, ``actors``) for the test item ``node``.  ``fresh_kwargs`` gives
    the body fresh keyword arguments for every explore schedule after the first;
    ``exploration`` says which exploration of the test this is."""
    explore = None
    if spec.mode == "explore":
        code_of = target if target is not None else actors.actors[0] if actors else None
        explore = runners.ExploreOptions(
            replay=node.config.stash[SETTINGS].replay, roots=explore_roots(node, code_of),
            nodeid=node.nodeid, fresh_kwargs=fresh_kwargs,
            progress=terminal.progress(node.config),  # None off a terminal
            exploration=exploration)
    return runners.RunRequest(spec, target, tuple(args), dict(kwargs or {}), arg_kind,
                              tb_style(node.config), node.config, explore, actors, calls)


def call(item: pytest.Function, run_spec: RunSpec, target: Callable[..., Any],
         kwargs: Mapping[str, Any], calls: runners.Calls | None = None) -> None:
    """Run a whole-body item's ``target`` once in every worker, on its fixtures
    ``kwargs`` (in explore, on fresh ones for every schedule after the first) or,
    with per-worker fixtures, on each call's own (``calls``)."""
    __tracebackhide__ = True
    from . import compat

    fresh = (lambda: compat.fresh_funcargs(item)) \
        if run_spec.mode == "explore" and calls is None else None
    execute(request_for(run_spec, item, target, (), kwargs, arg_kind="fixture",
                        fresh_kwargs=fresh, calls=calls), item)


def explore_roots(node: pytest.Item, target: object) -> tuple[str, ...]:
    """Directories of user code, whose steps explore interleaves."""
    roots = {str(node.config.rootpath)}
    code = getattr(getattr(target, "__func__", target), "__code__", None)
    if code is not None:
        roots.add(os.path.dirname(os.path.abspath(code.co_filename)))
    path = getattr(node, "path", None)
    if path is not None:
        roots.add(str(path.parent))
    return tuple(sorted(roots))


def execute(request: runners.RunRequest, node: pytest.Item, memory: bool = False,
            waits: bool = False) -> runners.RunOutcome:
    """Run ``request`` and measure it; attach its output; raise the test's outcome.
    ``memory`` measures the process tree's peak memory too (see metrics.py), ``waits``
    the time the threads waited for a CPU."""
    __tracebackhide__ = True
    problem: str | None = None
    runners.runner(request.spec.mode)  # its import is no part of the run's CPU time
    try:
        with metrics.Meter(memory=memory, waits=waits) as meter:
            outcome = runners.run(request)
    except (shipping.ShippingError, runners.RunError) as exc:
        problem = str(exc)
    if problem is not None:  # an empty message too: there is no outcome to go on with
        pytest.fail(problem, pytrace=False)
    measurement = meter.result(sum(map(len, outcome.values.values())), outcome.child_peaks)
    outcome = dataclasses.replace(outcome, measurement=measurement)
    entry.add_run(node, measurement)
    if outcome.exploration is not None:
        entry.add_exploration(node, outcome.exploration)
    show_live = node.config.getoption("capture", "fd") == "no"
    for title, text in outcome.outputs:
        if show_live and title == "explore":
            entry.show_verdict_later(node, text)  # the test may still fail after it
        elif show_live:
            sys.stdout.write(f"--- {title} ---\n{text}\n")
        else:
            node.add_report_section("call", title, text)
    outcomes.raise_for(outcome.failures, request.spec.mode, request.spec.workers,
                       outcome.seed)
    return outcome
