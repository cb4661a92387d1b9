"""Per-worker test state behaves as in a plain run: what real suites rely on
(fixtures that save and restore process state, TestCase instances, context
variables, pytest-asyncio fixtures, capture) under --concurrency-apply."""

import logging
import unittest

import pytest

from pytest_concurrency import loglevels, percall, testcase

APPLY = ("--concurrency-apply=thread", "--concurrency-workers=3", "--concurrency-iterations=2")


def test_per_worker_fixtures_are_torn_down_last_set_up_first(pytester, run):
    pytester.makepyfile(test_chdir="""
        import os
        import pytest

        START = os.getcwd()

        @pytest.fixture
        def in_tmp(tmp_path):  # saves and restores process state, as many suites do
            old = os.getcwd()
            os.chdir(tmp_path)
            yield
            os.chdir(old)

        def test_in_tmp(in_tmp):
            pass

        def test_after():
            assert os.getcwd() == START
    """)
    run(*APPLY).assert_outcomes(passed=2)


def test_unwind_takes_finished_sets_from_the_end():
    order = [(0, 0), (1, 0), (2, 0)]
    assert percall.unwind(order, {(0, 0)}) == []
    assert percall.unwind(order, {(0, 0), (2, 0)}) == [(2, 0)]
    assert percall.unwind(order, {(0, 0), (1, 0)}) == [(1, 0), (0, 0)]
    assert order == []


def test_every_call_of_a_testcase_method_gets_its_own_instance(pytester, run):
    pytester.makepyfile(test_case="""
        import unittest

        class Test(unittest.TestCase):
            def setUp(self):
                self.calls = []

            def tearDown(self):
                assert self.calls == ["called"]

            def test_counts(self):
                self.calls.append("called")
                assert self.calls == ["called"]
    """)
    run(*APPLY).assert_outcomes(passed=1)


def test_a_fresh_testcase_raises_what_its_run_raised():
    class Case(unittest.TestCase):
        def test_fails(self):
            self.assertEqual(1, 2)

        @unittest.skip("not today")
        def test_skipped(self):
            pass

        def test_passes(self):
            pass

    testcase.FreshTestCase(Case, "test_passes")()
    with pytest.raises(AssertionError, match="1 != 2"):
        testcase.FreshTestCase(Case, "test_fails")()
    with pytest.raises(unittest.SkipTest, match="not today"):
        testcase.FreshTestCase(Case, "test_skipped")()


def test_a_plain_test_may_request_an_async_fixture(pytester, run):
    pytester.makepyfile(test_async_fixture="""
        import pytest_asyncio

        @pytest_asyncio.fixture
        async def value():
            yield 1

        def test_plain(value):
            assert value == 1
    """)
    run(*APPLY).assert_outcomes(passed=1)


CONTEXT = """
import contextvars
import pytest

REQUEST = contextvars.ContextVar("request", default=None)

@pytest.fixture(autouse=True)
def clean():  # structlog's suite clears its context variables so
    REQUEST.set(None)

@pytest.fixture
def request_id(worker):
    REQUEST.set(worker.index)
    return worker.index

def test_sees_its_fixture(request_id):
    assert REQUEST.get() == request_id
    REQUEST.set("left behind")

def test_starts_clean():
    assert REQUEST.get() is None
    REQUEST.set("left behind")
"""


def test_each_call_runs_in_the_context_its_fixtures_were_set_up_in(pytester, run):
    pytester.makepyfile(test_context=CONTEXT)
    run(*APPLY).assert_outcomes(passed=2)


def test_in_context_runs_every_call_in_a_copy_of_the_captured_context():
    import contextvars

    var = contextvars.ContextVar("var", default="unset")
    token = var.set("fixture")
    try:
        body = percall.InContext(lambda: (var.get(), var.set("body"))[0], None)
    finally:
        var.reset(token)
    assert body() == "fixture"
    assert body() == "fixture"  # the first call's change is not seen
    assert var.get() == "unset"  # nor the caller's


def test_capsys_of_a_worker_sees_the_bytes_it_writes_to_the_binary_stream(pytester, run):
    pytester.makepyfile(test_bytes="""
        import sys

        def test_bytes(capsys, worker):
            assert sys.stdout.buffer is sys.stdout.buffer
            sys.stdout.buffer.write(f"bytes {worker.index}\\n".encode())
            sys.stdout.buffer.flush()
            assert capsys.readouterr().out == f"bytes {worker.index}\\n"
    """)
    run(*APPLY).assert_outcomes(passed=1)


HELPERS = """
import asyncio
import logging

def test_helper_thread(capsys, caplog, worker):
    async def main():  # asyncio's executor threads run with the task's context
        await asyncio.to_thread(print, f"helper of {worker.index}")
        await asyncio.to_thread(logging.getLogger("app").warning, f"{worker.index}")

    asyncio.run(main())
    assert capsys.readouterr().out == f"helper of {worker.index}\\n"
    assert caplog.messages == [f"{worker.index}"]
"""


@pytest.mark.parametrize("mode", ["thread", "process"])
def test_capture_sees_the_helper_threads_a_call_starts(pytester, run, mode):
    pytester.makepyfile(test_helpers=HELPERS)
    run(f"--concurrency-apply={mode}", "--concurrency-workers=3").assert_outcomes(passed=1)


def test_capture_sees_the_helper_threads_of_a_pytest_asyncio_test(pytester, run):
    pytester.makepyfile(test_asyncio_helpers="""
        import asyncio
        import pytest

        @pytest.mark.asyncio
        async def test_helper_thread(capsys, worker):
            await asyncio.to_thread(print, f"helper of {worker.index}")
            assert capsys.readouterr().out == f"helper of {worker.index}\\n"
    """)
    run(*APPLY).assert_outcomes(passed=1)


LEAK_CHECKS = """
import threading
import pytest

@pytest.fixture(autouse=True)
def check_thread_leaks():  # zict's, in essence: no thread may appear during a test
    before = set(threading.enumerate())
    yield
    assert set(threading.enumerate()) <= before

@pytest.fixture(scope="module", autouse=True)
def check_module_thread_leaks():
    before = set(threading.enumerate())
    yield
    assert set(threading.enumerate()) <= before

def test_first():
    pass

@pytest.mark.concurrency(workers=6)
def test_more_workers_than_the_others():
    pass
"""


@pytest.mark.parametrize("apply", [(), ("--concurrency-apply=thread",)])
def test_a_suites_thread_leak_check_never_sees_the_worker_pool(pytester, run, apply):
    """The worker threads are started before any fixture of the session, for as
    many workers as its largest thread-mode item has."""
    pytester.makepyfile(test_leaks=LEAK_CHECKS)
    result = run(*apply)
    result.assert_outcomes(passed=2)


CAPLOG_LEVELS = """
import logging

def test_at_level(caplog, worker, barrier):
    log = logging.getLogger("x")
    if worker.index == 0:
        with caplog.at_level(logging.INFO):  # first in: it found WARNING, and puts it back
            barrier.wait()
            barrier.wait()  # every other worker is inside a block of its own
            log.info("one message")
        barrier.wait()  # worker 0 has left its block
        barrier.wait()
    else:
        barrier.wait()
        with caplog.at_level(logging.INFO):
            barrier.wait()
            barrier.wait()
            barrier.wait()  # worker 0 has left its block: logs with its own level still
            log.info("one message")
    assert [r.getMessage() for r in caplog.records] == ["one message"]
    log.info("not captured")  # out of the block: the logger's own level again
    assert caplog.messages == ["one message"]

def test_set_level(caplog, worker, barrier):
    caplog.set_level(logging.INFO if worker.index == 0 else logging.ERROR, logger="y")
    barrier.wait()  # every worker has set its own
    logging.getLogger("y.z").info("info")
    logging.getLogger("y").error("error")
    assert caplog.messages == (["info", "error"] if worker.index == 0 else ["error"])

def test_after():
    assert not logging.getLogger("x").isEnabledFor(logging.INFO)
    assert not logging.getLogger("y").isEnabledFor(logging.INFO)
"""


@pytest.mark.parametrize("mode", ["thread", "hybrid"])
def test_caplog_levels_are_per_worker(pytester, run, mode):
    """One worker's caplog.at_level or set_level never suppresses another's records:
    worker 0 leaves its at_level block, and puts back the level it found, while the
    others are still inside theirs."""
    pytester.makepyfile(test_levels=CAPLOG_LEVELS)
    result = run(f"--concurrency-apply={mode}", "--concurrency-workers=4",
                 "--concurrency-iterations=2")
    result.assert_outcomes(passed=3)
    result = run(f"--concurrency-apply={mode}", "--concurrency-workers=4",
                 "-o", "log_level=WARNING")  # the caplog handler's own level is WARNING
    result.assert_outcomes(passed=3)


def test_caplog_under_explore_sees_its_own_schedule_only(pytester, run):
    pytester.makepyfile(test_explored="""
        import logging

        def test_logs(caplog):
            with caplog.at_level(logging.INFO):
                logging.getLogger("x").info("one message")
            assert caplog.messages == ["one message"]
    """)
    run("--concurrency-apply=explore", "--concurrency-schedules=5").assert_outcomes(passed=1)


def test_call_levels_are_logging_with_the_calls_levels_in_place():
    levels = loglevels.CallLevels()
    handler = logging.Handler(logging.WARNING)
    parent, child = logging.getLogger("h1.levels"), logging.getLogger("h1.levels.child")
    own = logging.getLogger("h1.levels.own")
    own.setLevel(logging.ERROR)
    original = logging.Logger.isEnabledFor
    try:
        levels.set((0, 0), "INFO", "h1.levels", handler)
        assert logging.Logger.isEnabledFor is not original  # consulted while calls set levels
        assert handler.level == logging.NOTSET and handler.filters
        mine = levels.calls[(0, 0)]
        assert levels.enabled(child, logging.INFO, mine)  # the call's level of its parent
        assert not levels.enabled(own, logging.WARNING, mine)  # its own level comes first
        assert not levels.enabled(parent, logging.DEBUG, mine)
        record = logging.LogRecord("h1.levels", logging.INFO, __file__, 1, "m", (), None)
        setattr(record, loglevels.STAMP, (0, 0))
        assert levels.takes(record, logging.WARNING)  # the call's handler level
        setattr(record, loglevels.STAMP, (1, 0))
        assert not levels.takes(record, logging.WARNING)  # another call's: the handler's
        logging.disable(logging.INFO)
        try:  # as pytest's caplog does, the call's level lifts logging.disable()
            levels.set((0, 0), logging.INFO, "h1.levels", handler)
            assert levels.enabled(child, logging.INFO, levels.calls[(0, 0)])
            assert not levels.enabled(child, logging.INFO, loglevels._Call())
        finally:
            logging.disable(logging.NOTSET)
        with pytest.raises(ValueError, match="Unknown level: 'LOUD'"):
            levels.set((0, 0), "LOUD", None, handler)
    finally:
        levels.close()
        own.setLevel(logging.NOTSET)
    assert logging.Logger.isEnabledFor is original
    assert handler.level == logging.WARNING and not handler.filters
