"""Setting up, running, tearing down and reporting concurrent items.

These hooks, and the report collector, are registered only once a session has
something concurrent to run (:func:`use_item_hooks`, :func:`use_collector`):
a suite of ordinary tests pays next to nothing for the plugin.  Everything
that runs, watches or reports concurrent work is imported here on first use.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import TYPE_CHECKING

import pytest

from . import spec, unsafe
from .body import fresh_per_call as _fresh_per_call  # noqa: F401 - tests reach it here
from .report.settings import BASELINE, COLLECTOR, REPORTS
from .spec import INVALID, spec_of, tb_style

if TYPE_CHECKING:
    from .percall import FixtureSets

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
        from . import body

        per_worker = run_spec is not None and body.per_worker(item, run_spec)
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
            with context.preparing(body.first_calls(run_spec)[0]):
                result = yield
        else:
            result = yield  # pytest sets the item's fixtures up
        if per_worker and run_spec is not None:
            sets = body.prepare(item, run_spec)
            if sets is not None:
                item.stash[SETS] = sets
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
        if run_spec is None or "concurrency" in pyfuncitem.fixturenames \
                or SERIAL in pyfuncitem.stash:
            return None  # not concurrent, a scenario test (it drives the workers), or serial
        from . import body, instances, outcomes, reproduce, rounds, running

        sets = pyfuncitem.stash.get(SETS, None)
        try:
            call = body.of(pyfuncitem, run_spec, sets)
            if rounds.measure(pyfuncitem, run_spec, call, sets):  # a budget, or a baseline
                return True
            run_spec, target = reproduce.replaying(pyfuncitem, run_spec, call.target,
                                                   sets is not None)
            try:
                running.call(pyfuncitem, run_spec, target, call.kwargs, sets)
            except outcomes.WorkerFailures as failures:
                if not call.own_instance:
                    instances.note_shared(failures, pyfuncitem.instance)
                reproduce.after_failure(pyfuncitem, run_spec, target, failures,
                                        sets is not None)
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
