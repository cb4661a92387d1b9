"""process and hybrid modes: values, tracebacks, crashes, output, pickling."""

import pytest


def test_assert_in_a_child_shows_the_rewritten_comparison(pytester):
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.concurrency(modes=["process"], workers=2)
        def test_compare(worker):
            assert worker.index + 3 == 3
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "*1 of 2 workers failed in process mode (1 distinct failure*",
        "*failure 1 of 1: worker 1 (process mode, pid *) in iteration 0*",
        ">       assert worker.index + 3 == 3",
        "E*assert (1 + 3) == 3",
    ])


@pytest.mark.parametrize("method", ["spawn", "forkserver"])
def test_spawned_children_keep_assertion_detail(pytester, method):
    pytester.makepyfile(
        f"""
        import pytest

        @pytest.fixture
        def data():
            return [1, 2, 3]

        @pytest.mark.concurrency(modes=["process"], workers=2, start_method="{method}")
        def test_compare(data):
            assert data == [1, 2, 4]
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "*failure 1 of 1: 2 times: workers 0-1 (process mode, pids *) in iteration 0*",
        "E       assert [1, 2, 3] == [1, 2, 4]",
        "E*At index 2 diff: 3 != 4*",
    ])


def test_unpicklable_fixture_under_spawn_is_named(pytester):
    pytester.makepyfile(
        """
        import threading
        import pytest

        @pytest.fixture
        def guard():
            return threading.Lock()

        @pytest.mark.concurrency(modes=["process"], workers=2, start_method="spawn")
        def test_locked(guard):
            pass
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "*fixture 'guard' (_thread.lock) cannot be pickled for start_method='spawn': "
        "TypeError: cannot pickle '_thread.lock' object. Use start_method='fork'*",
    ])
    result.stdout.no_fnmatch_line("*During handling*")


def test_run_returns_values_from_every_process(pytester):
    pytester.makepyfile(
        """
        import os
        import pytest
        from pytest_concurrency import current_worker

        def who(base):
            w = current_worker()
            return (w.index, w.iteration, os.getpid(), base)

        @pytest.mark.concurrency(modes=["process"], workers=3, iterations=2)
        def test_values(concurrency):
            results = concurrency.run(who, 10)
            assert [(i, it, b) for i, it, _, b in results] == [
                (0, 0, 10), (0, 1, 10), (1, 0, 10), (1, 1, 10), (2, 0, 10), (2, 1, 10)]
            assert sorted(results.by_worker) == [0, 1, 2]
            pids = {pid for _, _, pid, _ in results}
            assert len(pids) == 3 and os.getpid() not in pids
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


def test_hybrid_covers_every_worker_index_once(pytester):
    pytester.makepyfile(
        """
        import os
        import pytest
        from pytest_concurrency import current_worker

        def where():
            w = current_worker()
            return (w.index, w.process_index, w.thread_index, w.pid, w.count)

        @pytest.mark.concurrency(modes=["hybrid"], processes=3, threads=2)
        def test_layout(concurrency):
            assert (concurrency.processes, concurrency.threads) == (3, 2)
            seen = list(concurrency.run(where))
            assert [s[0] for s in seen] == list(range(6))
            assert [(s[1], s[2]) for s in seen] == [(p, t) for p in range(3) for t in range(2)]
            pids = [s[3] for s in seen]
            assert pids[0] == pids[1] and pids[2] == pids[3] and len(set(pids)) == 3
            assert {s[4] for s in seen} == {6}
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


def test_barrier_fixture_works_across_processes(pytester):
    pytester.makepyfile(
        """
        import os, time
        import pytest

        @pytest.mark.concurrency(modes=["process", "hybrid"], workers=4, iterations=3)
        def test_meet(barrier, tmp_path, worker):
            (tmp_path / f"{worker.index}-{worker.iteration}").touch()
            barrier.wait(timeout=30)
            # nobody passes before everyone wrote this iteration's file
            assert len(list(tmp_path.glob(f"*-{worker.iteration}"))) == 4
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("import ctypes; ctypes.string_at(0)",
         "worker 1 (pid *) killed by SIGSEGV (signal 11) in iteration 2 after *s"),
        ("import os; os._exit(3)", "worker 1 (pid *) exited with status 3 in iteration 2 after *s"),
        ("import os, signal; os.kill(os.getpid(), signal.SIGKILL)",
         "*killed by SIGKILL (signal 9) in iteration 2 after*"),
    ],
)
def test_a_dead_child_is_reported_at_once(pytester, body, expected):
    pytester.makepyfile(
        f"""
        import pytest

        @pytest.mark.concurrency(modes=["process"], workers=2, iterations=5, timeout=60)
        def test_die(worker):
            if worker.index == 1 and worker.iteration == 2:
                {body}

        def test_next():
            pass
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1, passed=1)
    result.stdout.fnmatch_lines([expected])
    # noticed through the sentinel, not by waiting for the 60 s timeout
    assert result.duration < 60


def test_segfault_report_includes_faulthandler_output(pytester):
    pytester.makepyfile(
        """
        import ctypes
        import pytest

        def crash_here():
            ctypes.string_at(0)

        @pytest.mark.concurrency(modes=["process"], workers=1)
        def test_die():
            crash_here()
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "*killed by SIGSEGV*",
        "*Fatal Python error: Segmentation fault*",
        "*in crash_here*",
    ])


def test_children_output_is_attached_to_the_report(pytester):
    pytester.makepyfile(
        """
        import sys
        import pytest

        @pytest.mark.concurrency(modes=["process"], workers=2)
        def test_talk(worker):
            print(f"hello from {worker.index}")
            print(f"warning from {worker.index}", file=sys.stderr)
            assert False
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines_random([
        "*Captured process 0 (pid *, worker 0) stdout call*",
        "hello from 0",
        "*Captured process 1 (pid *, worker 1) stderr call*",
        "warning from 1",
    ])


def test_unpicklable_return_value_is_reported(pytester):
    pytester.makepyfile(
        """
        import threading
        import pytest

        @pytest.mark.concurrency(modes=["process"], workers=2)
        def test_values(concurrency):
            concurrency.run(threading.Lock)
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*a return value could not be sent to the parent*"])


def test_process_timeout_kills_children_and_dumps_their_stacks(pytester):
    pytester.makepyfile(
        """
        import time
        import pytest

        def spin_forever():
            while True:
                pass

        @pytest.mark.concurrency(modes=["process"], workers=2, timeout=1)
        def test_spin(worker):
            if worker.index == 0:
                spin_forever()

        def test_next():
            pass
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1, passed=1)
    result.stdout.fnmatch_lines([
        # spinning is progress, never called a hang: stopped as too slow at its timeout
        "still running after *s, making progress (CPU +*; stopped at the timeout cap*",
        "*process 0 (pid *, worker 0)*",
        "*in spin_forever*",
    ])
    assert result.duration < 20


LEFT_RUNNING = """
import concurrent.futures
import threading
import pytest

NEVER = threading.Event()

def wait_for_ever():
    NEVER.wait()

@pytest.mark.concurrency(modes=["MODE"], workers=2, timeout=10, leaks="POLICY")
def test_executor_never_shut_down():
    pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="left-open")
    pool.submit(wait_for_ever)
"""


@pytest.mark.parametrize(("mode", "policy"), [("process", "fail"), ("hybrid", "fail"),
                                              ("process", "warn"), ("process", "ignore")])
def test_a_thread_a_child_leaves_running_is_a_leak_not_a_hang(pytester, mode, policy):
    """An executor never shut down would keep the child from exiting (its exit
    joins the executor's threads): the child reports the thread, with its name
    and stack, as a leak under the item's policy, and exits."""
    pytester.makepyfile(LEFT_RUNNING.replace("MODE", mode).replace("POLICY", policy))
    result = pytester.runpytest("-p", "no:cacheprovider", "-W", "default")
    out = result.stdout.str()
    assert "did not finish" not in out and "timed out" not in out
    if policy == "ignore":
        result.assert_outcomes(passed=1)
        assert "left-open" not in out
        return
    result.assert_outcomes(**{"failed" if policy == "fail" else "passed": 1},
                           **({"warnings": 1} if policy == "warn" else {}))
    assert f"the test left 1 thread running 1s after it finished (leaks='{policy}')" in out
    assert "thread 'left-open_0'" in out
    assert "in wait_for_ever" in out and "NEVER.wait()" in out
