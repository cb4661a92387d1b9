"""Per-worker test state behaves as in a plain run: what real suites rely on
(fixtures that save and restore process state, TestCase instances, context
variables, pytest-asyncio fixtures, capture) under --concurrency-apply."""

import unittest

import pytest

from pytest_concurrency import percall, testcase

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
