"""thread mode: what a user sees through pytest."""

import sys
import threading

from pytest_concurrency import originals, runners, spec
from pytest_concurrency.context import current_worker
from pytest_concurrency.runners import workers


def test_three_workers_failing_three_ways_give_three_failures(pytester):
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.concurrency(modes=["thread"], workers=3)
        def test_three(worker):
            if worker.index == 0:
                raise ValueError("boom")
            if worker.index == 1:
                assert worker.index + 2 == 4
            {}["missing"]
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "*3 of 3 workers failed in thread mode (3 distinct failures*",
        "*failure 1 of 3: worker 0 (thread mode, pid *) in iteration 0*",
        "ValueError: boom",
        "*failure 2 of 3: worker 1 (thread mode, pid *) in iteration 0*",
        "E*assert (1 + 2) == 4",
        "*failure 3 of 3: worker 2 (thread mode, pid *) in iteration 0*",
        "E*KeyError: 'missing'",
    ])


def test_identical_failures_are_folded_with_a_count(pytester, monkeypatch):
    monkeypatch.setenv("CI", "1")  # pytest then prints the short summary's messages whole
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.concurrency(modes=["thread"], workers=64)
        def test_same(worker):
            raise RuntimeError("same for everyone")
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "*64 of 64 workers failed in thread mode (1 distinct failure*",
        "*failure 1 of 1: 64 times: workers 0-63 (thread mode, pid *) in iteration 0*",
    ])
    assert result.stdout.str().count("RuntimeError: same for everyone") <= 3
    # the short summary holds the headline, not the whole report again
    result.stdout.fnmatch_lines(["FAILED *::test_same[[]thread[]] - 64 of 64 workers failed in "
                                 "thread mode (1 distinct failure; start jitter seed *)"])


def test_same_failure_with_different_values_folds_and_lists_the_values(pytester):
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.concurrency(modes=["thread"], workers=4)
        def test_values(worker):
            assert worker.index == 99
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "*4 of 4 workers failed in thread mode (1 distinct failure*",
        "*failure 1 of 1: 4 times: workers 0-3 (thread mode, pid *) in iteration 0*",
        "E*assert 0 == 99*",
        "the same failure with 3 other messages:",
        "  worker 1 (thread mode, pid *) in iteration 0: AssertionError: assert 1 == 99*",
        "  worker 2 *assert 2 == 99*",
        "  worker 3 *assert 3 == 99*",
    ])


def test_every_worker_runs_every_iteration_behind_a_barrier(pytester):
    pytester.makepyfile(
        """
        import threading
        import pytest

        SEEN = []
        NAMES = set()

        @pytest.mark.concurrency(modes=["thread"], workers=4, iterations=5)
        def test_body(worker, barrier):
            SEEN.append((worker.index, worker.iteration))
            NAMES.add(threading.current_thread().name)
            barrier.wait()

        def test_check():
            assert sorted(SEEN) == [(w, i) for w in range(4) for i in range(5)]
            assert NAMES == {f"concurrency-worker-{i}" for i in range(4)}
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)


def test_skip_in_a_worker_skips_the_item(pytester):
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.concurrency(modes=["thread"], workers=2)
        def test_skipper(worker):
            pytest.skip("needs a GPU")
        """
    )
    result = pytester.runpytest("-rs", "-p", "no:cacheprovider")
    result.assert_outcomes(skipped=1)
    # where the test skipped, not where the plugin passed the skip on
    result.stdout.fnmatch_lines(["SKIPPED [[]1[]] test_skip_in_a_worker_skips_the_item.py:5: "
                                 "needs a GPU"])


def test_fail_in_a_worker_fails_the_item_with_its_message(pytester):
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.concurrency(modes=["thread"], workers=2)
        def test_failer(worker):
            if worker.index == 1:
                pytest.fail("worker one gave up")
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*worker 1 (thread mode*", "*worker one gave up*"])


def test_a_failure_stops_later_iterations(pytester):
    pytester.makepyfile(
        """
        import pytest

        RUNS = []

        @pytest.mark.concurrency(modes=["thread"], workers=2, iterations=100)
        def test_body(worker):
            RUNS.append(worker.iteration)
            if worker.index == 0 and worker.iteration == 3:
                raise ValueError("third")

        def test_count():
            # both workers ran iterations 0..3 and stopped after the same barrier
            assert sorted(RUNS) == sorted(list(range(4)) * 2)
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1, passed=1)
    result.stdout.fnmatch_lines(["*worker 0 (thread mode, pid *) in iteration 3*"])


def test_system_exit_and_keyboard_interrupt_in_a_worker_do_not_end_the_session(pytester):
    pytester.makepyfile(
        """
        import sys
        import pytest

        @pytest.mark.concurrency(modes=["thread"], workers=2)
        def test_exit(worker):
            if worker.index == 0:
                sys.exit(2)
            raise KeyboardInterrupt

        def test_next():
            pass
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1, passed=1)
    result.stdout.fnmatch_lines_random(["*SystemExit: 2*", "*KeyboardInterrupt*"])


def test_switch_interval_is_lowered_during_the_run_and_restored():
    before = sys.getswitchinterval()
    (s,) = spec.resolve({"workers": 2}, spec.Settings())
    outcome = runners.run(runners.RunRequest(s, sys.getswitchinterval))
    assert outcome.values == {0: [workers.SWITCH_INTERVAL], 1: [workers.SWITCH_INTERVAL]}
    assert sys.getswitchinterval() == before


def test_thread_that_cannot_start_aborts_the_barrier(monkeypatch):
    started = []
    real_start = originals.start

    def start(thread):
        if len(started) == 2:
            raise RuntimeError("can't start new thread")
        started.append(thread)
        real_start(thread)

    # the pool starts its threads with the Thread.start saved at import (a test's
    # replacement of Thread.start does not reach it): the failure is injected there
    monkeypatch.setattr(originals, "start", start)
    monkeypatch.setattr(workers, "POOL", workers.Pool())  # no idle threads to reuse
    (s,) = spec.resolve({"workers": 4, "timeout": 30}, spec.Settings())
    outcome = runners.run(runners.RunRequest(s, lambda: current_worker().index))
    monkeypatch.undo()
    assert [f.summary for f in outcome.failures] == ["RuntimeError: can't start new thread"]
    assert outcome.failures[0].workers == (2,)
    assert outcome.wall < 30  # the two started threads were not left waiting to the timeout


def test_a_run_returns_with_its_threads_back_in_the_pool(monkeypatch):
    """The caller waits once for all the workers' tasks to return, and only once
    their threads are idle in the pool again: the next run reuses them instead of
    starting new ones."""
    pool = workers.Pool()
    monkeypatch.setattr(workers, "POOL", pool)
    (s,) = spec.resolve({"workers": 4, "timeout": 30}, spec.Settings())
    idents = []
    for _ in range(3):
        outcome = runners.run(runners.RunRequest(s, threading.get_ident))
        assert not outcome.failures
        assert len(pool._free) == 4  # every thread is back before run() returns
        idents.append({v for values in outcome.values.values() for v in values})
    assert idents[0] == idents[1] == idents[2] and len(idents[0]) == 4


def test_a_warm_pool_has_its_threads_before_the_run_that_uses_them(monkeypatch):
    pool = workers.Pool()
    monkeypatch.setattr(workers, "POOL", pool)
    runners.warm(3)
    started = {slot.thread for slot in pool._free}
    assert len(started) == 3 and all(t.is_alive() for t in started)
    runners.warm(2)  # enough already: nothing started
    assert {slot.thread for slot in pool._free} == started
    (s,) = spec.resolve({"workers": 3, "timeout": 30}, spec.Settings())
    before = set(threading.enumerate())
    outcome = runners.run(runners.RunRequest(s, threading.get_ident))
    assert set(threading.enumerate()) == before  # the run started no thread
    assert {v for values in outcome.values.values() for v in values} == \
        {t.ident for t in started}


def test_returned_is_set_by_the_last_task_only():
    returned = workers._Returned(2)
    assert not returned.all.is_set()
    returned.one()
    assert not returned.all.is_set()
    returned.one()
    assert returned.all.is_set()
    assert workers._Returned(0).all.is_set()


def test_timeout_reports_stuck_threads_with_their_stacks(pytester):
    pytester.makepyfile(
        """
        import threading
        import pytest

        NEVER = threading.Event()

        @pytest.mark.concurrency(modes=["thread"], workers=2, timeout=0.5)
        def test_hang(worker):
            if worker.index == 1:
                NEVER.wait()

        def test_next():
            NEVER.set()
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1, passed=1)
    result.stdout.fnmatch_lines([
        "*timed out after 0.5s*",
        "*concurrency-worker-1 (still running, abandoned)*",
        "*NEVER.wait()*",
    ])


def test_start_jitter_is_seeded_and_bounded():
    delays = [workers.jitter_ns(7, worker, iteration)
              for worker in range(4) for iteration in range(50)]
    assert delays == [workers.jitter_ns(7, w, i) for w in range(4) for i in range(50)]
    assert all(0 <= d < workers.JITTER_NS for d in delays)
    assert len(set(delays)) > 150  # differs per worker and per iteration
    assert delays != [workers.jitter_ns(8, w, i) for w in range(4) for i in range(50)]


def test_failure_names_the_jitter_seed_to_repeat_it(pytester):
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.concurrency(modes=["thread", "process"], workers=2)
        def test_fails(worker):
            assert worker.index == 0
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider", "--concurrency-seed=4242")
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines([
        "1 of 2 workers failed in thread mode (1 distinct failure; start jitter seed 4242)",
        "1 of 2 workers failed in process mode (1 distinct failure; start jitter seed 4242)",
    ])


def test_threads_a_run_started_are_listed_in_the_order_they_were_made():
    """'Thread-2' before 'Thread-10', whatever order they began to run in: a hang
    report lists the same threads in the same order on every run."""
    names = ["Thread-10 (download)", "Thread-2 (download)", "pool_1", "pool_0", "Thread-9"]
    threads = [threading.Thread(name=name) for name in names]
    assert [t.name for t in sorted(threads, key=workers._by_name)] == [
        "Thread-2 (download)", "Thread-9", "Thread-10 (download)", "pool_0", "pool_1"]
