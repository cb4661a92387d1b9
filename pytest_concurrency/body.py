"""The body of a whole-body item: what each call of it runs, and on which
fixtures.

With per-worker fixtures (:func:`per_worker`) every call gets fixtures of its
own (:func:`prepare` sets up the first call of each worker at the item's
setup: percall.FixtureSets) and, for a method, an instance of the test's class
of its own; a coroutine body runs on an event loop of its own per worker (in
explore, as tasks of one loop); where the body need not be pickled, each call
runs in a copy of its fixtures' context (:func:`in_context`).  :func:`of`
puts that together for the item's call.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import pytest

from . import spec
from .unsafe import SERIAL

if TYPE_CHECKING:
    from .context import WorkerInfo
    from .percall import FixtureSets


@dataclasses.dataclass(frozen=True)
class Body:
    """What every call of an item's body runs, with what."""

    target: Callable[..., Any]
    kwargs: Mapping[str, Any]  # the fixtures (empty with per-worker ones: each call's own)
    own_instance: bool  # a method, called on an instance of each call's own


def of(item: pytest.Function, run_spec: spec.RunSpec, sets: FixtureSets | None) -> Body:
    """The body each worker of ``item`` calls under ``run_spec``; ``sets``: its
    per-worker fixtures, if it has them (:func:`prepare`)."""
    from . import compat, coroutines

    # with per-worker fixtures every call gets its own arguments from ``sets``
    kwargs = {} if sets is not None else \
        {name: item.funcargs[name] for name in compat.argnames(item)}
    target = item.obj
    own = _own_instance(item, run_spec, sets)
    if own is not None:  # a method of a plain class: each call on an instance of its own
        target = own
    if coroutines.is_coroutine(item.obj):  # explore: each worker a task of one loop
        target = coroutines.task_body(target, item.funcargs) \
            if run_spec.mode == "explore" else coroutines.body(target, item.funcargs)
    if in_context(run_spec):
        from .percall import InContext

        target = InContext(target, sets)
    return Body(target, kwargs, own is not None)


def _own_instance(item: pytest.Function, run_spec: spec.RunSpec,
                  sets: FixtureSets | None) -> Any:
    """The test method called on an instance of each call's own, where calls get
    fixtures of their own; None for a function, or with shared fixtures."""
    if sets is not None:
        return sets.own
    if not per_worker(item, run_spec):
        return None
    from . import instances

    return instances.own_instance(item)


def per_worker(item: pytest.Item, run_spec: spec.RunSpec) -> bool:
    """Whether the item's body gets per-worker fixtures: asked for, a whole-body
    pytest function (not a scenario test, not a unittest method) that runs
    concurrently, and, in process and hybrid mode, children that can set
    fixtures up (forked, with a copy of the session)."""
    from .testcase import ConcurrentTestCaseFunction

    return (run_spec.fixtures == "per-worker" and isinstance(item, pytest.Function)
            and not isinstance(item, ConcurrentTestCaseFunction)
            and "concurrency" not in item.fixturenames and SERIAL not in item.stash
            and (run_spec.mode in ("thread", "explore") or run_spec.start_method == "fork"))


def in_context(run_spec: spec.RunSpec) -> bool:
    """Whether each call of the body runs in a copy of its fixtures' context:
    wherever the body need not be pickled (explore runs the body as the user
    wrote it)."""
    return run_spec.mode == "thread" or \
        (run_spec.mode in ("process", "hybrid") and run_spec.start_method == "fork")


def first_calls(run_spec: spec.RunSpec) -> list[WorkerInfo]:
    """The first call of each worker of a thread or explore run."""
    from .context import WorkerInfo

    return [WorkerInfo(i, run_spec.workers, run_spec.mode, 0, i, 0, os.getpid())
            for i in range(run_spec.workers)]


def fresh_per_call(item: pytest.Function) -> bool:
    """Whether a call of the body would get something of its own: a function-scoped
    fixture (the mode's parameter aside, which is the same for every call), or
    ``request``, through which the body may ask for more.  Without, per-call
    setup would make nothing, and running it would cost every call (in process
    mode, every child) the fixture machinery for it."""
    from . import compat

    names = set(item.fixturenames)
    if "request" in names:
        return True
    if not names - {spec.SPEC_ARG}:
        return False  # no fixture at all (the common trivial test): nothing to look up
    with compat.without_function_fixtures(item):
        wider = set(item.fixturenames)
    return bool(names - wider - {spec.SPEC_ARG})


def prepare(item: pytest.Item, run_spec: spec.RunSpec) -> FixtureSets | None:
    """Take over the fixtures pytest set up for the item, and set up the first
    call of every other worker now: a fixture that cannot be set up is an error
    at setup, its own exception and traceback with a note naming it and the
    worker (not the plugin's frames that set it up).  None where a call would
    get nothing of its own."""
    __tracebackhide__ = True
    from .percall import FixtureSets, FixtureSetupError

    assert isinstance(item, pytest.Function)
    if not fresh_per_call(item):
        return None  # nothing a call would get of its own: every call gets the same
    sets = FixtureSets(item, run_spec.threads)
    if run_spec.mode in ("process", "hybrid"):
        sets.drop()  # the children set up every call's fixtures themselves
        return sets
    infos = first_calls(run_spec)
    sets.adopt(infos[0])
    try:
        for info in infos[1:]:
            sets.prepare(info)
    except BaseException as exc:
        sets.close()
        cause = exc.__cause__
        if isinstance(exc, FixtureSetupError) and isinstance(cause, Exception):
            cause.add_note(exc.where)
            raise cause from None
        raise
    return sets
