"""One item per mode, selection, --concurrency-apply, and coexistence with other plugins."""

import pytest

MARKED = """
import pytest

@pytest.mark.concurrency(modes=["thread", "process", "hybrid"], workers=2)
def test_plain():
    pass

@pytest.mark.parametrize("n", [1, 2])
@pytest.mark.concurrency(modes=["thread", "process"], workers=2)
def test_param(n):
    assert n in (1, 2)

def test_unmarked():
    pass
"""


def test_one_item_per_mode_with_mode_first_in_the_id(pytester):
    pytester.makepyfile(MARKED)
    result = pytester.runpytest("--collect-only", "-q", "-p", "no:cacheprovider")
    result.stdout.fnmatch_lines([
        "*::test_plain?thread?",
        "*::test_plain?process?",
        "*::test_plain?hybrid?",
        "*::test_param?thread-1?",
        "*::test_param?thread-2?",
        "*::test_param?process-1?",
        "*::test_param?process-2?",
        "*::test_unmarked",
    ])


def test_k_selects_a_mode(pytester):
    pytester.makepyfile(MARKED)
    result = pytester.runpytest("-k", "process", "-v", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(["*test_plain?process? PASSED*"])
    result.stdout.no_fnmatch_line("*thread*PASSED*")


def test_apply_marks_every_unmarked_test(pytester):
    pytester.makepyfile(
        """
        import pytest
        from pytest_concurrency import current_worker

        SEEN = set()

        def test_unmarked():
            SEEN.add(current_worker().index)

        def test_saw_all_workers():
            # runs in thread mode too: check after the fact from the thread item
            pass

        @pytest.mark.concurrency(modes=["process"], workers=2)
        def test_marked_keeps_its_marker():
            pass
        """
    )
    result = pytester.runpytest("--concurrency-apply=thread,process", "-v",
                                "-p", "no:cacheprovider", "--concurrency-workers=3")
    result.assert_outcomes(passed=5)
    result.stdout.fnmatch_lines([
        "*test_unmarked?thread? PASSED*",
        "*test_unmarked?process? PASSED*",
        "*test_marked_keeps_its_marker?process? PASSED*",
    ])
    result.stdout.no_fnmatch_line("*test_marked_keeps_its_marker?thread?*")


def test_strict_markers_accepts_both_markers(pytester):
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.concurrency_budget(wall="1s")
        @pytest.mark.concurrency(modes=["thread"], workers=2)
        def test_x():
            pass
        """
    )
    result = pytester.runpytest("--strict-markers", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


def test_disabled_with_p_no_concurrency(pytester):
    pytester.makepyfile(
        """
        import pytest, threading

        @pytest.mark.concurrency(modes=["thread", "process"], workers=4)
        def test_x():
            print("THREAD", threading.current_thread().name)
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:concurrency", "-s", "-p",
                                           "no:cacheprovider")
    result.assert_outcomes(passed=1)  # one plain item, run once, in the main thread
    result.stdout.fnmatch_lines(["*THREAD MainThread*"])
    result.stdout.no_fnmatch_line("*concurrency-worker*")


def test_under_xdist(pytester):
    pytest.importorskip("xdist")
    pytester.makepyfile(
        """
        import os, pytest

        @pytest.mark.concurrency(modes=["thread", "process", "hybrid"], workers=2)
        def test_ok(worker):
            assert worker.count == 2

        @pytest.mark.concurrency(modes=["process"], workers=2)
        def test_fails(worker):
            assert worker.index == 0
        """
    )
    result = pytester.runpytest_subprocess("-n", "2", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=3, failed=1)
    result.stdout.fnmatch_lines([
        "*1 of 2 workers failed in process mode (1 distinct failure*",
        "*failure 1 of 1: worker 1 (process mode, pid *) in iteration 0*",
        "*assert 1 == 0*",
    ])


def test_under_pytest_timeout(pytester):
    pytest.importorskip("pytest_timeout")
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.concurrency(modes=["thread", "process"], workers=2, iterations=3)
        def test_ok(worker):
            pass
        """
    )
    result = pytester.runpytest_subprocess("--timeout=60", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)


def test_apply_reaches_unittest_methods(pytester):
    pytester.makepyfile(
        """
        import unittest
        from pytest_concurrency import current_worker

        class TestCase(unittest.TestCase):
            def setUp(self):
                self.calls = []

            def test_body(self):
                self.calls.append(current_worker().index)

            def test_only_worker_zero(self):
                self.assertEqual(current_worker().index, 0)

            def tearDown(self):
                print("SET UP ONCE, CALLED BY", sorted(self.calls))
        """
    )
    # shared fixtures: setUp once around the run (per-worker: tests/test_per_worker_state.py)
    result = pytester.runpytest("--concurrency-apply=thread,process", "-v", "-s",
                                "--concurrency-workers=3", "--concurrency-fixtures=shared",
                                "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2, failed=2)
    result.stdout.fnmatch_lines_random([
        "*TestCase::test_body?thread? *SET UP ONCE, CALLED BY ?0, 1, 2?*",
        "*TestCase::test_body?process? *",
        "FAILED *TestCase::test_only_worker_zero?process?*",
        "*2 of 3 workers failed in thread mode (1 distinct failure*",
        "*AssertionError: 1 != 0*",
    ])
    result.stdout.no_fnmatch_line("*unittest/case.py*")

