"""The ``concurrency``, ``worker`` and ``barrier`` fixtures, and running a body."""

from __future__ import annotations

import dataclasses
import functools
import os
import sys
import threading

import pytest

from . import context, outcomes, runners, shipping
from .results import Outcomes, Results
from .runners import explore as explore_runner
from .spec import SETTINGS, RunSpec, resolve

SPEC_ARG = "_concurrency_spec"  # the parametrized argument holding each item's RunSpec


def spec_of(node) -> RunSpec | None:
    """The RunSpec of a concurrent test item (None for any other item)."""
    callspec = getattr(node, "callspec", None)
    if callspec is not None:
        return callspec.params.get(SPEC_ARG)
    return getattr(node, "concurrency_spec", None)  # a unittest method (testcase.py)


def tb_style(config) -> str:
    style = config.getoption("tbstyle", "auto")
    return "long" if style == "auto" else style


def execute(spec: RunSpec, node, target, args=(), kwargs=None,
            arg_kind: str = "argument", refresh=None) -> runners.RunOutcome:
    """Run ``target`` under ``spec``; attach children's output; raise on failure.

    ``refresh`` (explore mode) returns fresh ``kwargs`` for every schedule.
    """
    __tracebackhide__ = True
    try:
        outcome = runners.run(spec, target, args, kwargs, tb_style=tb_style(node.config),
                              arg_kind=arg_kind, config=node.config, refresh=refresh,
                              **explore_options(node, target))
    except (shipping.ShippingError, explore_runner.ExploreError) as exc:
        problem = str(exc)
    else:
        problem = None
    if problem:
        pytest.fail(problem, pytrace=False)
    show_live = node.config.getoption("capture", "fd") == "no"
    for title, text in outcome.outputs:
        if show_live:
            sys.stdout.write(f"--- {title} ---\n{text}")
        else:
            node.add_report_section("call", title, text)
    outcomes.raise_for(outcome.failures, spec.mode, spec.workers, outcome.seed)
    return outcome


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


def _call_actor(actors, state, stateless):
    actor = actors[context.current_worker().index]
    return actor() if stateless else actor(state)


def _actor_layout(spec: RunSpec, n: int) -> RunSpec:
    if spec.mode == "hybrid":
        threads = spec.threads if n % spec.threads == 0 else 1
        return dataclasses.replace(spec, workers=n, processes=n // threads,
                                   threads=threads, iterations=1)
    if spec.mode == "process":
        return dataclasses.replace(spec, workers=n, processes=n, threads=1, iterations=1)
    return dataclasses.replace(spec, workers=n, processes=1, threads=n, iterations=1)


class ConcurrencyRunner:
    """The runner for the current test's mode (the ``concurrency`` fixture)."""

    def __init__(self, spec: RunSpec, node):
        self.spec = spec
        self._node = node

    mode = property(lambda self: self.spec.mode)
    workers = property(lambda self: self.spec.workers)
    iterations = property(lambda self: self.spec.iterations)
    processes = property(lambda self: self.spec.processes)
    threads = property(lambda self: self.spec.threads)

    def __repr__(self) -> str:
        return (f"<concurrency {self.mode} workers={self.workers} "
                f"iterations={self.iterations}>")

    def run(self, target, *args, **kwargs) -> Results:
        """Every worker calls ``target(*args, **kwargs)`` ``iterations`` times."""
        __tracebackhide__ = True
        return self._run(self.spec, target, args, kwargs)

    def _run(self, spec, target, args, kwargs) -> Results:
        __tracebackhide__ = True
        outcome = execute(spec, self._node, target, args, kwargs)
        return Results(outcome.values, wall=outcome.wall, mode=spec.mode,
                       layout=spec.layout)

    def run_actors(self, *actors, setup=None, arbiter=None, rounds: int = 1) -> Outcomes:
        """jcstress-style: per round, fresh ``setup()`` state, actor i in worker i.

        Each round's outcome is ``arbiter(state)``, or without an arbiter the
        tuple of the actors' return values.
        """
        __tracebackhide__ = True
        if not actors:
            raise TypeError("run_actors() needs at least one actor")
        if isinstance(rounds, bool) or not isinstance(rounds, int) or rounds < 1:
            raise TypeError(f"rounds={rounds!r}: expected an integer >= 1")
        spec = _actor_layout(self.spec, len(actors))
        if spec.mode == "explore":
            return self._explore_actors(spec, actors, setup, arbiter)
        tally = Outcomes()
        for _ in range(rounds):
            state = setup() if setup is not None else None
            results = self._run(spec, _call_actor, (actors, state, setup is None), {})
            tally[arbiter(state) if arbiter is not None else tuple(results)] += 1
        return tally


    def _explore_actors(self, spec, actors, setup, arbiter) -> Outcomes:
        """explore: one round per schedule; each outcome keeps a replay command."""
        __tracebackhide__ = True
        tally = Outcomes()
        n = len(actors)

        def round_state():
            return _ActorRound(setup() if setup is not None else None,
                               context.RunContext(threading.Barrier(n)))

        def observe(state, returns, token):
            outcome = arbiter(state.user) if arbiter is not None else \
                tuple(r[0] if r else None for r in returns)
            tally[outcome] += 1
            if outcome not in tally.replays:
                tally.replays[outcome] = explore_runner.replay_command(
                    self._node.nodeid, token())

        roles = [functools.partial(_explore_role, i, n, actor, setup is None)
                 for i, actor in enumerate(actors)]
        options = explore_options(self._node, actors[0])
        try:
            result, seed = explore_runner.explore_run(spec, round_state, roles,
                                                   replay=options["replay"],
                                                   roots=options["roots"],
                                                   nodeid=options["nodeid"], observe=observe)
        except explore_runner.ExploreError as exc:
            problem = str(exc)
        else:
            problem = None
        if problem:
            pytest.fail(problem, pytrace=False)
        self._node.add_report_section("call", "explore",
                                      explore_runner.summary(result, spec, seed))
        if result.failure is not None:
            outcomes.raise_for([explore_runner.finding_failure(result.failure, spec,
                                                               self._node.nodeid)],
                               "explore", n)
        return tally


@dataclasses.dataclass
class _ActorRound:
    user: object  # what setup() returned
    run: context.RunContext


def _explore_role(index, count, actor, stateless, state: _ActorRound):
    context.enter(context.WorkerInfo(index, count, "explore", 0, index, 0, os.getpid()),
                  state.run)
    try:
        return [actor() if stateless else actor(state.user)]
    finally:
        context.leave()


class CurrentWorker:
    """The ``worker`` fixture: resolves to the calling worker's WorkerInfo."""

    def __getattr__(self, name):
        return getattr(context.current_worker(), name)

    def __iter__(self):
        return iter(context.current_worker())

    def __repr__(self) -> str:
        try:
            return repr(context.current_worker())
        except RuntimeError:
            return "<worker: not inside a concurrency worker>"

    def __reduce__(self):
        return (CurrentWorker, ())


class SharedBarrier:
    """The ``barrier`` fixture: the barrier of the calling worker's run.

    Works across threads and processes; ``wait()`` returns the arrival index
    like :class:`threading.Barrier`.
    """

    def wait(self, timeout: float | None = None) -> int:
        return context.current_run().barrier.wait(timeout)

    def abort(self) -> None:
        context.current_run().barrier.abort()

    def __getattr__(self, name):  # parties, n_waiting, broken
        return getattr(context.current_run().barrier, name)

    def __reduce__(self):
        return (SharedBarrier, ())


def _fixture_spec(request) -> RunSpec:
    spec = spec_of(request.node)
    if spec is None:  # requested by a test that is not marked: thread mode defaults
        spec = resolve({}, request.config.stash[SETTINGS])[0]
    return spec


@pytest.fixture
def concurrency(request) -> ConcurrencyRunner:
    """Drive the workers of the current mode: ``.run()`` and ``.run_actors()``."""
    return ConcurrencyRunner(_fixture_spec(request), request.node)


@pytest.fixture
def worker() -> CurrentWorker:
    """The calling worker's WorkerInfo (index, count, mode, pid, iteration...)."""
    return CurrentWorker()


@pytest.fixture
def barrier() -> SharedBarrier:
    """A barrier shared by all workers of the run, in every mode."""
    return SharedBarrier()
