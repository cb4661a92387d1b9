"""Per-worker test state behaves as in a plain run: what real suites rely on
(fixtures that save and restore process state, TestCase instances, context
variables, pytest-asyncio fixtures, capture) under --concurrency-apply."""

from pytest_concurrency import percall

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
