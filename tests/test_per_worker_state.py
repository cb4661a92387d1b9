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
