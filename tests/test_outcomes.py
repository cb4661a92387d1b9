"""outcomes.py: folding, labels, crash classification, the exception group."""

import pickle
import signal

import pytest

from pytest_concurrency import outcomes
from pytest_concurrency.context import WorkerInfo


def info(index, iteration=0, mode="thread", pid=100):
    return WorkerInfo(index, 8, mode, 0, index, iteration, pid)


def raise_(exc):
    try:
        raise exc
    except BaseException as caught:
        return caught


def test_describe_workers_compresses_ranges():
    assert outcomes.describe_workers([3]) == "worker 3"
    assert outcomes.describe_workers([5, 0, 1, 2, 7, 8]) == "workers 0-2, 5, 7-8"


@pytest.mark.parametrize(
    ("code", "text"),
    [
        (-signal.SIGSEGV, "killed by SIGSEGV (signal 11)"),
        (3, "exited with status 3"),
        (-signal.SIGTERM, "killed by SIGTERM (signal 15)"),
    ],
)
def test_describe_exit(code, text):
    assert outcomes.describe_exit(code) == text


def test_sigkill_mentions_memory_limits():
    assert outcomes.describe_exit(-signal.SIGKILL) == "killed by SIGKILL (signal 9)"
    failure = outcomes.crash([0], "process", 42, 3, -signal.SIGKILL, 0.5, "stderr...")
    assert failure.summary == (
        "worker 0 (pid 42) killed by SIGKILL (signal 9) in iteration 3 after 0.50s")
    assert "OOM killer" in failure.text


def test_identical_failures_fold_and_distinct_ones_do_not():
    def fail(n):
        raise ValueError(f"bad {n}")

    raw = [(raise_(ValueError("same")), info(i)) for i in range(5)]
    raw.append((raise_(KeyError("other")), info(5)))
    failures = outcomes.describe(raw, "long")
    groups = outcomes.fold(failures)
    assert [g.count for g in groups] == [5, 1]
    with pytest.raises(outcomes.WorkerFailures) as caught:
        outcomes.raise_for(failures, "thread", 8)
    group = caught.value
    assert isinstance(group, ExceptionGroup)
    assert [type(e) for e in group.exceptions] == [ValueError, KeyError]
    assert group.exceptions[0].__notes__ == [
        "[5 times: workers 0-4 (thread mode, pid 100) in iteration 0]"]
    text = outcomes.render(group)
    assert text.startswith("6 of 8 workers failed in thread mode (2 distinct failures)")
    assert "failure 1 of 2: 5 times: workers 0-4" in text
    assert "failure 2 of 2: worker 5 (thread mode, pid 100) in iteration 0" in text


def test_broken_barrier_is_a_consequence_when_there_is_a_cause():
    import threading

    raw = [(raise_(threading.BrokenBarrierError()), info(0)),
           (raise_(OSError("disk full")), info(1))]
    with pytest.raises(outcomes.WorkerFailures) as caught:
        outcomes.raise_for(outcomes.describe(raw, "long"), "thread", 2)
    assert [type(e) for e in caught.value.exceptions] == [OSError]


def test_system_exit_becomes_a_worker_exit_not_a_session_exit():
    raw = [(raise_(SystemExit(2)), info(0))]
    with pytest.raises(outcomes.WorkerFailures) as caught:
        outcomes.raise_for(outcomes.describe(raw, "long"), "thread", 1)
    assert isinstance(caught.value.exceptions[0], outcomes.WorkerExit)


def test_portable_failures_drop_unpicklable_exceptions():
    class Unpicklable(Exception):
        def __reduce__(self):
            raise TypeError("no")

    raw = [(raise_(Unpicklable("x")), info(0, mode="process")),
           (raise_(ValueError("y")), info(1, mode="process"))]
    portable = outcomes.make_portable(outcomes.describe(raw, "long"))
    restored = pickle.loads(pickle.dumps(portable))
    assert restored[0].exc is None and restored[0].summary.endswith("Unpicklable: x")
    assert "raise exc" in restored[0].text  # the formatted traceback survived
    assert isinstance(restored[1].exc, ValueError)
    with pytest.raises(outcomes.WorkerFailures) as caught:
        outcomes.raise_for(restored, "process", 2)
    assert isinstance(caught.value.exceptions[0], outcomes.RemoteWorkerError)


def test_skip_alone_skips_but_a_failure_wins():
    skip = raise_(pytest.skip.Exception("later"))
    with pytest.raises(pytest.skip.Exception, match="later"):
        outcomes.raise_for(outcomes.describe([(skip, info(0))], "long"), "thread", 2)
    failures = outcomes.describe([(skip, info(0)), (raise_(ValueError()), info(1))], "long")
    with pytest.raises(outcomes.WorkerFailures):
        outcomes.raise_for(failures, "thread", 2)


def test_trim_dump_folds_pytest_frames():
    hidden = outcomes._HIDDEN_DIRS[1]
    text = "\n".join([
        "Fatal Python error: Segmentation fault",
        '  File "/home/u/test_x.py", line 3 in crash_here',
        f'  File "{hidden}/runner.py", line 1 in a',
        f'  File "{hidden}/main.py", line 2 in b',
    ])
    assert outcomes.trim_dump(text).splitlines() == [
        "Fatal Python error: Segmentation fault",
        '  File "/home/u/test_x.py", line 3 in crash_here',
        "  ... 2 frames of the test harness ...",
    ]
