"""The ``concurrency``, ``worker`` and ``barrier`` fixtures."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Collection, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import pytest

from .spec import SETTINGS, RunSpec, for_workers, resolve, spec_of

if TYPE_CHECKING:
    from .results import Outcomes, Results

# context and results are imported where they are used: every session loads this
# module (the plugin's fixtures live here), few run a concurrent test.


def _call_actor(actors: Sequence[Callable[..., Any]], state: Any, stateless: bool) -> Any:
    from . import context
    from .coroutines import awaited

    actor = actors[context.current_worker().index]
    # a coroutine actor (or a lambda returning a coroutine): on this worker's own loop
    return awaited(actor() if stateless else actor(state))


class ConcurrencyRunner:
    """The runner for the current test's mode (the ``concurrency`` fixture)."""

    def __init__(self, spec: RunSpec, node: pytest.Item) -> None:
        self.spec = spec
        self._node = node
        self._explorations = 0  # explorations run so far (explore mode), for their tokens

    def _exploration(self) -> int:
        """The number of the exploration about to run in this test (0, 1, ...)."""
        self._explorations += 1
        return self._explorations - 1

    mode = property(lambda self: self.spec.mode)
    workers = property(lambda self: self.spec.workers)
    iterations = property(lambda self: self.spec.iterations)
    processes = property(lambda self: self.spec.processes)
    threads = property(lambda self: self.spec.threads)

    def __repr__(self) -> str:
        return (f"<concurrency {self.mode} workers={self.workers} "
                f"iterations={self.iterations}>")

    def run(self, target: Callable[..., Any], *args: Any, **kwargs: Any) -> Results:
        """Every worker calls ``target(*args, **kwargs)`` ``iterations`` times."""
        __tracebackhide__ = True
        return self._run(self.spec, target, args, kwargs)

    def _run(self, spec: RunSpec, target: Callable[..., Any], args: tuple[Any, ...],
             kwargs: dict[str, Any]) -> Results:
        __tracebackhide__ = True
        from .results import Results
        from .running import execute, request_for

        exploration = self._exploration() if spec.mode == "explore" else 0
        outcome = execute(request_for(spec, self._node, target, args, kwargs,
                                      exploration=exploration), self._node)
        return Results(outcome.values, outcome.measurement, mode=spec.mode,
                       layout=spec.layout)

    def run_actors(self, *actors: Callable[..., Any], setup: Callable[[], Any] | None = None,
                   arbiter: Callable[[Any], Any] | None = None, rounds: int = 1,
                   expect: Collection[Any] | None = None,
                   forbid: Collection[Any] | None = None) -> Outcomes:
        """jcstress-style: per round, fresh ``setup()`` state, actor i in worker i.

        Each round's outcome is ``arbiter(state)``, or without an arbiter the
        tuple of the actors' return values.  ``expect`` (the acceptable outcomes)
        and ``forbid`` check every round as it ends: in explore mode the search
        stops at the first schedule whose outcome they reject, which fails as a
        race with its interleaving and replay command; elsewhere they are
        ``Outcomes.expect``/``forbid`` on the tally.
        """
        __tracebackhide__ = True
        if not actors:
            raise TypeError("run_actors() needs at least one actor")
        for index, actor in enumerate(actors):
            if not callable(actor):
                from .texts import short_repr

                raise TypeError(f"run_actors(): actor {index} is {short_repr(actor, 60)}, not "
                                "a function (each actor is called with the round's state)")
        for name, value in (("setup", setup), ("arbiter", arbiter)):
            if value is not None and not callable(value):
                from .texts import short_repr

                raise TypeError(f"run_actors({name}={short_repr(value, 60)}): expected a "
                                "function")
        if isinstance(rounds, bool) or not isinstance(rounds, int) or rounds < 1:
            raise TypeError(f"rounds={rounds!r}: expected an integer >= 1")
        from .results import Outcomes

        accepted, forbidden = _outcomes_arg("expect", expect), _outcomes_arg("forbid", forbid)
        spec = for_workers(self.spec, len(actors))
        if spec.mode == "explore":
            return self._explore_actors(spec, actors, setup, arbiter, accepted, forbidden)
        from .results import untallied

        tally = Outcomes()
        for _ in range(rounds):
            state = setup() if setup is not None else None
            results = self._run(spec, _call_actor, (actors, state, setup is None), {})
            outcome = arbiter(state) if arbiter is not None else tuple(results)
            why = untallied(outcome, arbiter is not None)
            if why is not None:
                raise TypeError(why)
            tally[outcome] += 1
        if accepted is not None:
            tally.expect(*accepted)
        if forbidden is not None:
            tally.forbid(*forbidden)
        return tally

    def _explore_actors(self, spec: RunSpec, actors: tuple[Callable[..., Any], ...],
                        setup: Callable[[], Any] | None,
                        arbiter: Callable[[Any], Any] | None,
                        expect: tuple[Any, ...] | None,
                        forbid: tuple[Any, ...] | None) -> Outcomes:
        """explore: one round per schedule; each outcome keeps a replay command."""
        __tracebackhide__ = True
        from .results import Outcomes
        from .runners import Actors, SetupFailed
        from .running import execute, request_for

        tally = Outcomes()
        try:
            execute(request_for(spec, self._node, actors=Actors(actors, setup, arbiter, tally,
                                                               expect, forbid),
                                exploration=self._exploration()),
                    self._node)
        except SetupFailed as failed:  # as in the other modes: setup()'s own traceback
            raise failed.user_error() from None
        return tally


def _outcomes_arg(name: str, value: Collection[Any] | None) -> tuple[Any, ...] | None:
    """``expect=``/``forbid=`` as a tuple of outcomes; a TypeError naming the argument
    for anything but a list, tuple or set of them."""
    __tracebackhide__ = True
    if value is None:
        return None
    if not isinstance(value, (list, tuple, set, frozenset)):
        from .texts import short_repr

        raise TypeError(f"run_actors({name}={short_repr(value)}): expected a list, tuple or "
                        f"set of outcomes, e.g. {name}=[{short_repr(value)}]")
    return tuple(value)


class CurrentWorker:
    """The ``worker`` fixture: resolves to the calling worker's WorkerInfo."""

    def __getattr__(self, name: str) -> Any:
        from .context import current_worker

        return getattr(current_worker(), name)

    def __iter__(self) -> Iterator[int | str]:
        from .context import current_worker

        return iter(current_worker())

    def __repr__(self) -> str:
        from .context import current_worker

        try:
            return repr(current_worker())
        except RuntimeError:
            return "<worker: not inside a concurrency worker>"

    def __reduce__(self) -> tuple[type[CurrentWorker], tuple[()]]:
        return (CurrentWorker, ())


class SharedBarrier:
    """The ``barrier`` fixture: the barrier of the calling worker's run.

    Works across threads and processes; ``wait()`` returns the arrival index
    like :class:`threading.Barrier`.
    """

    def wait(self, timeout: float | None = None) -> int:
        from .context import current_run

        barrier = current_run().barrier
        if inspect.iscoroutinefunction(barrier.wait):  # explore's tasks share one thread
            raise RuntimeError("explore runs this test's workers as asyncio tasks on one "
                               "event loop: wait at the barrier with "
                               "'await barrier.wait_async()'")
        return barrier.wait(timeout)

    async def wait_async(self, timeout: float | None = None) -> int:
        """``wait()`` for a coroutine: the worker's event loop is not blocked while
        it waits (the wait happens in a helper thread; in explore, where the workers
        are tasks of one loop, on an ``asyncio.Barrier``)."""
        import asyncio

        from .context import current_run

        barrier: Any = current_run().barrier
        if isinstance(barrier, asyncio.Barrier):  # explore's tasks: asyncio's barrier
            async with asyncio.timeout(timeout):
                return await barrier.wait()
        return await asyncio.get_running_loop().run_in_executor(None, barrier.wait, timeout)

    def abort(self) -> None:
        from .context import current_run

        current_run().barrier.abort()

    def __getattr__(self, name: str) -> Any:  # parties, n_waiting, broken
        from .context import current_run

        return getattr(current_run().barrier, name)

    def __reduce__(self) -> tuple[type[SharedBarrier], tuple[()]]:
        return (SharedBarrier, ())


def _fixture_spec(request: pytest.FixtureRequest) -> RunSpec:
    spec = spec_of(request.node)
    if spec is None:  # requested by a test that is not marked: thread mode defaults
        spec = resolve({}, request.config.stash[SETTINGS])[0]
    return spec


@pytest.fixture
def concurrency(request: pytest.FixtureRequest) -> ConcurrencyRunner:
    """Drive the workers of the current mode: ``.run()`` and ``.run_actors()``."""
    from .items import use_item_hooks

    use_item_hooks(request.config)  # an unmarked test may use it: its failures need them
    return ConcurrencyRunner(_fixture_spec(request), request.node)


@pytest.fixture
def worker() -> CurrentWorker:
    """The calling worker's WorkerInfo (index, count, mode, pid, iteration...)."""
    return CurrentWorker()


@pytest.fixture
def barrier() -> SharedBarrier:
    """A barrier shared by all workers of the run, in every mode."""
    return SharedBarrier()
