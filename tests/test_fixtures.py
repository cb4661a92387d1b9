"""The concurrency fixture: run(), run_actors() and Outcomes; worker and barrier."""

import pytest

from pytest_concurrency import Outcomes, current_worker


def test_run_actors_tallies_outcomes_and_expect_passes(pytester):
    pytester.makepyfile(
        """
        import threading
        import pytest

        class Counter:
            def __init__(self):
                self.value = 0
                self.lock = threading.Lock()

            def increment(self):
                with self.lock:
                    self.value += 1

        @pytest.mark.concurrency(modes=["thread", "hybrid"], workers=2)
        def test_counter(concurrency):
            outcomes = concurrency.run_actors(
                Counter.increment, Counter.increment,
                setup=Counter, arbiter=lambda c: c.value, rounds=50)
            assert sum(outcomes.values()) == 50
            outcomes.expect(2)
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=1)
    # hybrid with 2 actors: one thread in each of two processes, so the parent's
    # state is never incremented: the tally says so.
    result.stdout.fnmatch_lines([
        "*test_counter?hybrid?*",
        "E*50 of 50 rounds had outcomes other than 2:",
        "E*outcome*count*share*verdict",
        "E*0 *50 *100.0% *UNEXPECTED",
    ])


def test_without_arbiter_the_outcome_is_the_tuple_of_actor_results(pytester):
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.concurrency(modes=["thread", "process"])
        def test_tuple(concurrency):
            outcomes = concurrency.run_actors(lambda: "a", lambda: "b", rounds=3) \\
                if concurrency.mode == "thread" else \\
                concurrency.run_actors(str.upper, str.lower, setup=lambda: "Xy", rounds=3)
            assert set(outcomes) <= {("a", "b"), ("XY", "xy")}
            outcomes.forbid(("b", "a"))
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)


def test_forbid_fails_with_the_tally():
    outcomes = Outcomes({(1, 1): 7, (1, 2): 3})
    outcomes.forbid((0, 0))
    with pytest.raises(AssertionError) as info:
        outcomes.forbid((1, 1))
    text = str(info.value)
    assert "7 of 10 rounds had a forbidden outcome" in text
    rows = [line.split("  ") for line in text.splitlines()[3:]]
    assert [[c.strip() for c in row if c.strip()] for row in rows] == [
        ["(1, 1)", "7", "70.0%", "FORBIDDEN"], ["(1, 2)", "3", "30.0%", "ok"]]


def test_expect_lists_every_outcome_most_frequent_first():
    outcomes = Outcomes({2: 990, 1: 10})
    with pytest.raises(AssertionError) as info:
        outcomes.expect(2)
    lines = str(info.value).splitlines()
    assert lines[0] == "10 of 1000 rounds had outcomes other than 2:"
    assert lines[3].split() == ["2", "990", "99.0%", "ok"]
    assert lines[4].split() == ["1", "10", "1.0%", "UNEXPECTED"]


def test_run_actors_rejects_bad_arguments(pytester):
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.concurrency(modes=["thread"])
        def test_bad(concurrency):
            with pytest.raises(TypeError, match="at least one actor"):
                concurrency.run_actors()
            with pytest.raises(TypeError, match="rounds=0"):
                concurrency.run_actors(print, rounds=0)
        """
    )
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)


def test_worker_fixture_and_current_worker_agree(pytester):
    pytester.makepyfile(
        """
        import pytest
        from pytest_concurrency import current_worker, WorkerInfo

        @pytest.mark.concurrency(modes=["thread", "process", "hybrid"], workers=4,
                                 iterations=2)
        def test_same(worker):
            info = current_worker()
            assert isinstance(info, WorkerInfo)
            assert tuple(worker) == tuple(info)
            assert worker.mode in ("thread", "process", "hybrid")
            assert 0 <= worker.index < worker.count == 4
        """
    )
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=3)


def test_current_worker_outside_a_worker_says_so():
    with pytest.raises(RuntimeError, match="outside a concurrency worker"):
        current_worker()


def test_concurrency_fixture_without_marker_uses_thread_defaults(pytester):
    pytester.makepyfile(
        """
        def test_unmarked(concurrency):
            assert (concurrency.mode, concurrency.workers) == ("thread", 4)
            assert len(concurrency.run(lambda: 1)) == 4
        """
    )
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)


def test_results_and_failures_of_run_in_a_scenario(pytester):
    pytester.makepyfile(
        """
        import pytest
        from pytest_concurrency import current_worker

        def maybe_fail():
            if current_worker().index == 1:
                raise LookupError("worker one")
            return current_worker().index

        @pytest.mark.concurrency(modes=["thread"], workers=2)
        def test_scenario(concurrency):
            concurrency.run(maybe_fail)
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*worker 1 (thread mode*", "*LookupError: worker one*"])
