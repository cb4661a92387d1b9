"""Setting up, running, tearing down and reporting concurrent items.

These hooks, and the report collector, are registered only once a session has
something concurrent to run (:func:`use_item_hooks`, :func:`use_collector`):
a suite of ordinary tests pays next to nothing for the plugin.  Everything
that runs, watches or reports concurrent work is imported here on first use.
"""

from __future__ import annotations

import os
from collections.abc import Generator
from typing import TYPE_CHECKING, Any

import pytest

from . import options, spec, unsafe
from .report.settings import BASELINE, COLLECTOR, MACHINE, REPORTS
from .spec import INVALID, spec_of, tb_style

if TYPE_CHECKING:
    from .budget import Limit, Verdict
    from .context import WorkerInfo
    from .percall import FixtureSets
    from .report.records import Metric
    from .stats import Estimate

ITEM_HOOKS = "concurrency-items"
SERIAL = unsafe.SERIAL  # why an item runs once, serially (decided at collection)
SETS: pytest.StashKey[FixtureSets] = pytest.StashKey()  # per-worker fixtures while it runs


def use_item_hooks(config: pytest.Config) -> None:
    """Register the hooks that run concurrent items (once): only sessions that
    have some pay for them on every test."""
    if not config.pluginmanager.has_plugin(ITEM_HOOKS):
        config.pluginmanager.register(ConcurrentItems(), ITEM_HOOKS)
    use_collector(config)


def use_collector(config: pytest.Config) -> None:
    """Register the report collector (once); from then on SIGTERM stops the
    session cleanly, like Ctrl-C, and a second signal cannot cost the reports,
    so that nothing is left running and the reports are written."""
    if not config.pluginmanager.has_plugin(COLLECTOR):
        from . import cleanup
        from .report import baseline, collector

        cleanup.catch_signals()
        stored = config.stash.get(BASELINE, None) or baseline.empty()
        config.pluginmanager.register(
            collector.Collector(config, config.stash[REPORTS], stored), COLLECTOR)


def release(config: pytest.Config) -> None:
    """At the end of the session: SIGINT and SIGTERM back to what they were."""
    if config.pluginmanager.has_plugin(COLLECTOR):
        from . import cleanup

        cleanup.release_signals()


class ConcurrentItems:
    """Setting up, running, tearing down and reporting concurrent items."""

    def __init__(self) -> None:
        from . import cleanup

        cleanup.begin()  # what this session's items leave is killed at its end
        self.running: pytest.Item | None = None  # set up and not yet checked for leaks

    @pytest.hookimpl(wrapper=True, trylast=True)
    def pytest_sessionfinish(self) -> Generator[None, None, None]:
        """After the session's last teardown (pytest tears down what an interrupted
        session left set up): kill what its items left, however it ended."""
        try:
            return (yield)
        finally:
            from . import cleanup, leaks

            if self.running is not None:  # interrupted: what it started dies now
                leaks.abandon(self.running)
                self.running = None
            cleanup.finish()

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtestloop(self, session: pytest.Session) -> None:
        """Start the thread-mode worker pool before the first test, so before any
        fixture of any scope is set up: the threads are there when a suite's
        thread-leak check (an autouse fixture, a plugin's hook) takes its first
        look, and never seen to appear during a test.  So is the thread that
        guards teardowns."""
        if session.config.option.collectonly:
            return  # nothing runs
        from . import watchdog

        watchdog.start_guard()
        _warm_pool(max((run_spec.workers for item in session.items
                        if (run_spec := spec_of(item)) is not None
                        and run_spec.mode == "thread" and SERIAL not in item.stash),
                       default=0))

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> Generator[None, object, object]:
        __tracebackhide__ = True
        invalid = item.config.stash.get(INVALID, None)
        problem = None
        if invalid:
            assert item.parent is not None  # the test's module or class
            problem = invalid.get((item.parent.nodeid, getattr(item, "originalname", "")))
        if problem:  # after the other plugins' setup, which their teardown relies on
            result = yield
            pytest.fail(f"@pytest.mark.concurrency on {item.name}: {problem}", pytrace=False)
        run_spec = spec_of(item)
        if run_spec is not None:
            from . import leaks
            from .report import entry

            if run_spec.mode == "thread" and SERIAL not in item.stash:
                _warm_pool(run_spec.workers)  # threads a timeout abandoned are replaced now
            entry.start(item, run_spec, item.stash.get(SERIAL, None),
                        applied=item.get_closest_marker("concurrency") is None)
            leaks.watch(item, run_spec.leaks)
            self.running = item
        per_worker = run_spec is not None and _per_worker(item, run_spec)
        if per_worker and run_spec is not None and run_spec.mode in ("process", "hybrid"):
            # The children set up every call's fixtures: the parent sets up only the
            # wider-scoped ones, so that no instance is made that no call uses.
            from . import compat

            assert isinstance(item, pytest.Function)
            with compat.without_function_fixtures(item):
                result = yield
        elif per_worker and run_spec is not None:
            from . import context

            # pytest's own setup makes the fixtures of worker 0's first call
            with context.preparing(_infos(run_spec)[0]):
                result = yield
        else:
            result = yield  # pytest sets the item's fixtures up
        if per_worker and run_spec is not None:
            _prepare_fixture_sets(item, run_spec)
        return result

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_teardown(self, item: pytest.Item,
                                nextitem: pytest.Item | None) -> Generator[None, object, object]:
        from . import leaks, watchdog

        # What workers leave behind (tasks on an event loop they shared, a held
        # lock, a thread a finalizer joins) must not hang the session: a teardown
        # stuck past the timeout is interrupted and fails, saying where it was.
        run_spec = spec_of(item)
        seconds = (run_spec or item.config.stash[spec.SETTINGS]).timeout
        try:
            with watchdog.main_thread_guard(seconds, seconds * spec.TIMEOUT_CAP_FACTOR,
                                            f"the teardown of {item.nodeid}"):
                result = yield
        except BaseException:  # Ctrl-C, SIGTERM: what the item started dies with it
            leaks.abandon(item)
            self.running = None
            raise
        failure = leaks.check(item)
        self.running = None
        if failure:
            from .report import entry

            entry.leak(item, failure)
            pytest.fail(failure, pytrace=False)
        return result

    @pytest.hookimpl(tryfirst=True)
    def pytest_pyfunc_call(self, pyfuncitem: pytest.Function) -> bool | None:
        run_spec = spec_of(pyfuncitem)
        if run_spec is None or "concurrency" in pyfuncitem.fixturenames:
            return None  # not concurrent, or a scenario test that drives the workers itself
        if SERIAL in pyfuncitem.stash:
            return None  # pytest (and its async plugins) run it once, as usual
        from . import compat, coroutines, outcomes, rounds
        from .report import entry
        from .running import execute, request_for

        sets = pyfuncitem.stash.get(SETS, None)
        # with per-worker fixtures every call gets its own arguments from ``sets``
        funcargs = {} if sets is not None else \
            {name: pyfuncitem.funcargs[name] for name in compat.argnames(pyfuncitem)}
        target = pyfuncitem.obj
        own = _own_instance(pyfuncitem, run_spec, sets)
        if own is not None:  # a method of a plain class: each call on an instance of its own
            target = own
        if coroutines.is_coroutine(pyfuncitem.obj):  # explore: each worker a task of one loop
            target = coroutines.task_body(target, pyfuncitem.funcargs) \
                if run_spec.mode == "explore" else coroutines.body(target, pyfuncitem.funcargs)
        if _in_context(run_spec):
            from .percall import InContext

            target = InContext(target, sets)
        try:
            limits, stored = _limits(pyfuncitem, run_spec)
            saving = pyfuncitem.config.stash[REPORTS].save_baseline is not None
            if (limits or saving) and run_spec.mode != "explore":  # tracing is no benchmark
                def record(measured: dict[str, Estimate], verdicts: list[Verdict]) -> None:
                    entry.add_estimates(pyfuncitem, measured, verdicts)

                rounds.run(run_spec, pyfuncitem, target, funcargs, limits,
                           run_spec.strict, record, baseline=stored, calls=sets)
                return True
            if run_spec.mode == "thread" and sets is None and \
                    pyfuncitem.config.stash[spec.SETTINGS].replay:
                # a token --concurrency-reproduce printed for this item: explore runs it
                # as it ran when it printed the token
                from .reproduce import explore_spec_of

                run_spec = explore_spec_of(run_spec)
                if coroutines.is_coroutine(pyfuncitem.obj):  # as tasks of one loop
                    target = coroutines.task_body(pyfuncitem.obj, pyfuncitem.funcargs)
            fresh = (lambda: compat.fresh_funcargs(pyfuncitem)) \
                if run_spec.mode == "explore" and sets is None else None
            try:
                execute(request_for(run_spec, pyfuncitem, target, (), funcargs,
                                    arg_kind="fixture", fresh_kwargs=fresh, calls=sets),
                        pyfuncitem)
            except outcomes.WorkerFailures as failures:
                if own is None:
                    _note_shared_instance(failures, pyfuncitem.instance)
                if run_spec.mode == "thread" and options.flag(pyfuncitem.config, "reproduce"):
                    _reproduce(pyfuncitem, run_spec, target, failures, sets is not None)
                raise
            return True
        finally:
            if sets is not None:
                del pyfuncitem.stash[SETS]
                sets.close()

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(
            self, item: pytest.Item, call: pytest.CallInfo[None],
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        report = yield
        from .report import entry

        if entry.DATA in item.stash:  # a concurrent item
            data = entry.for_report(item, report, call.excinfo)
            setattr(report, entry.REPORT_ATTR, data)
            if data is not None and call.when == "call" and item.config.stash[REPORTS].junit:
                item.user_properties.extend(entry.properties(data))  # junitxml reads teardown's
        if call.excinfo is None:
            return report
        from . import outcomes

        if isinstance(call.excinfo.value, outcomes.WorkerFailures):
            style = tb_style(item.config)
            if style not in ("no", "native"):
                report.longrepr = outcomes.longrepr(call.excinfo.value, style, item.location)
        return report


def _warm_pool(workers: int) -> None:
    """Have ``workers`` idle worker threads in the pool (none started if there are)."""
    if workers > 0:
        from . import runners

        runners.warm(workers)


def _reproduce(item: pytest.Function, run_spec: spec.RunSpec, target: Any,
               failures: BaseException, per_worker: bool) -> None:
    """--concurrency-reproduce: look for the thread-mode failure under explore, on
    fresh fixtures, and say in the report whether it was found (and how to replay it)."""
    from . import compat, coroutines, outcomes, reproduce

    assert isinstance(failures, outcomes.WorkerFailures)
    targets = reproduce.wanted(failures)
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
            run = reproduce.explore_once(item, target, fresh(), fresh)
            text = reproduce.attempt(run_spec, targets, run, item.nodeid)
    item.add_report_section("call", reproduce.SECTION, text)


def _own_instance(item: pytest.Function, run_spec: spec.RunSpec,
                  sets: FixtureSets | None) -> Any:
    """The test method called on an instance of each call's own, where calls get
    fixtures of their own; None for a function, or with shared fixtures."""
    if sets is not None:
        return sets.own
    if not _per_worker(item, run_spec):
        return None
    from . import instances

    return instances.own_instance(item)


def _note_shared_instance(failures: BaseException, instance: object) -> None:
    """A failed run whose workers shared the instance of the test's class, which
    the test keeps state on: the report says so."""
    if instance is None:
        return
    from . import instances

    note = instances.shared_note(instance)
    if note is not None:
        failures.add_note(note)


def _per_worker(item: pytest.Item, run_spec: spec.RunSpec) -> bool:
    """Whether the item's body gets per-worker fixtures: asked for, a whole-body
    pytest function (not a scenario test, not a unittest method) that runs
    concurrently, and, in process and hybrid mode, children that can set
    fixtures up (forked, with a copy of the session)."""
    from .testcase import ConcurrentTestCaseFunction

    return (run_spec.fixtures == "per-worker" and isinstance(item, pytest.Function)
            and not isinstance(item, ConcurrentTestCaseFunction)
            and "concurrency" not in item.fixturenames and SERIAL not in item.stash
            and (run_spec.mode in ("thread", "explore") or run_spec.start_method == "fork"))


def _in_context(run_spec: spec.RunSpec) -> bool:
    """Whether each call of the body runs in a copy of its fixtures' context:
    wherever the body need not be pickled (explore runs the body as the user
    wrote it)."""
    return run_spec.mode == "thread" or \
        (run_spec.mode in ("process", "hybrid") and run_spec.start_method == "fork")


def _infos(run_spec: spec.RunSpec) -> list[WorkerInfo]:
    """The first call of each worker of a thread or explore run."""
    from .context import WorkerInfo

    return [WorkerInfo(i, run_spec.workers, run_spec.mode, 0, i, 0, os.getpid())
            for i in range(run_spec.workers)]


def _fresh_per_call(item: pytest.Function) -> bool:
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


def _prepare_fixture_sets(item: pytest.Item, run_spec: spec.RunSpec) -> None:
    """Take over the fixtures pytest set up for the item, and set up the first
    call of every other worker now: a fixture that cannot be set up is an error
    at setup, its own exception and traceback with a note naming it and the
    worker (not the plugin's frames that set it up)."""
    __tracebackhide__ = True
    from .percall import FixtureSets, FixtureSetupError

    assert isinstance(item, pytest.Function)
    if not _fresh_per_call(item):
        return  # nothing a call would get of its own: every call gets the same
    sets = item.stash[SETS] = FixtureSets(item, run_spec.threads)
    if run_spec.mode in ("process", "hybrid"):
        sets.drop()  # the children set up every call's fixtures themselves
        return
    infos = _infos(run_spec)
    sets.adopt(infos[0])
    try:
        for info in infos[1:]:
            sets.prepare(info)
    except BaseException as exc:
        del item.stash[SETS]
        sets.close()
        cause = exc.__cause__
        if isinstance(exc, FixtureSetupError) and isinstance(cause, Exception):
            cause.add_note(exc.where)
            raise cause from None
        raise


def _limits(item: pytest.Item,
            run_spec: spec.RunSpec) -> tuple[tuple[Limit, ...], Metric | None]:
    """The item's budget, with ``--concurrency-compare-fail`` as a regression limit
    when the baseline has this test; and its baseline wall time, if any."""
    reports = item.config.stash[REPORTS]
    if reports.baseline is None:
        return run_spec.budget, None
    from . import budget
    from .report import baseline, entry

    metrics = baseline.lookup(item.config.stash[BASELINE], item.config.stash[MACHINE], {
        "test": entry.base_id(item.nodeid), "mode": run_spec.mode, "layout": run_spec.layout})
    stored = metrics.get("wall") if metrics else None
    limits = run_spec.budget
    if stored and reports.compare_fail is not None \
            and not any(limit.key == "regression" for limit in limits):
        limits += budget.parse({"regression": reports.compare_fail})
    return limits, stored
