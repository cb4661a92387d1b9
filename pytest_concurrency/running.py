"""Running a body under a RunSpec inside pytest: the glue every test style shares.

:func:`run_target` runs a function in every worker (whole-body tests,
``concurrency.run()``); :func:`execute` turns what a runner hands back into
pytest's terms: report sections for children's output, and the test's
outcome (pass, skip, xfail, or one grouped failure).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

import pytest

from . import metrics, outcomes, runners, shipping
from .report import entry
from .runners import explore as explore_runner
from .spec import SETTINGS, RunSpec, tb_style


def execute(spec: RunSpec, node, start: Callable[[], runners.RunOutcome],
            memory: bool = False) -> runners.RunOutcome:
    """Call ``start()`` (a runner) and measure it; attach its output; raise the
    test's outcome.  ``memory`` samples the process tree's peak memory too."""
    __tracebackhide__ = True
    try:
        with metrics.Meter(memory=memory) as meter:
            outcome = start()
    except (shipping.ShippingError, explore_runner.ExploreError) as exc:
        problem = str(exc)
    else:
        problem = None
    if problem:
        pytest.fail(problem, pytrace=False)
    outcome.measurement = meter.result(sum(map(len, outcome.values.values())))
    entry.add_run(node, outcome.measurement)
    show_live = node.config.getoption("capture", "fd") == "no"
    for title, text in outcome.outputs:
        if show_live:
            sys.stdout.write(f"--- {title} ---\n{text}\n")
        else:
            node.add_report_section("call", title, text)
    outcomes.raise_for(outcome.failures, spec.mode, spec.workers, outcome.seed)
    return outcome


def run_target(spec: RunSpec, node, target, args=(), kwargs=None, arg_kind: str = "argument",
               refresh=None, memory: bool = False) -> runners.RunOutcome:
    """Every worker calls ``target(*args, **kwargs)``; see :func:`runners.run`.

    ``refresh`` (explore mode) returns fresh ``kwargs`` for every schedule.
    """
    __tracebackhide__ = True
    return execute(spec, node, lambda: runners.run(
        spec, target, args, kwargs, tb_style=tb_style(node.config), arg_kind=arg_kind,
        config=node.config, refresh=refresh, **explore_options(node, target)), memory)


def fresh_funcargs(item) -> dict:
    """Tear down the item's function-scoped fixtures and set them up again.

    explore mode runs a whole-body test once per schedule, each on fresh
    fixtures, as pytest-rerunfailures re-runs a test's setup.
    """
    request = item._request
    defs = request._fixture_defs
    fresh = [name for name, fixturedef in defs.items() if fixturedef.scope == "function"]
    for name in reversed(fresh):
        defs[name].finish(request)
    for name in fresh:
        del defs[name]
        item.funcargs.pop(name, None)
    request._fillfixtures()
    return {name: item.funcargs[name] for name in item._fixtureinfo.argnames}


def explore_options(node, target) -> dict:
    """What explore mode needs from pytest: the replay token, user code, the node id."""
    roots = {str(node.config.rootpath)}
    code = getattr(getattr(target, "__func__", target), "__code__", None)
    if code is not None:
        roots.add(os.path.dirname(os.path.abspath(code.co_filename)))
    path = getattr(node, "path", None)
    if path is not None:
        roots.add(str(path.parent))
    return {"replay": node.config.stash[SETTINGS].replay, "roots": tuple(sorted(roots)),
            "nodeid": node.nodeid}
