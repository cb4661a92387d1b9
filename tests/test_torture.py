"""Torture suite: whatever the code under test does, the test fails with a message that
says what happened and where, the session goes on, and nothing is left running.

Every case records the pids of the processes it starts in $TORTURE_PIDS, so the suite can
check afterwards that none of them is still alive.
"""


import pytest
from pid_records import records, still_running

from pytest_concurrency.spec import TIMEOUT_CAP_FACTOR

TORTURE = '''
import ctypes
import multiprocessing
import os
import signal
import subprocess
import sys
import threading

import pytest

FORK = multiprocessing.get_context("fork")
LOCKS = {mode: (FORK.Lock(), FORK.Lock()) for mode in ("thread", "process", "hybrid")}
NEVER = threading.Event()


def record(pid):
    # complete or absent (pid_records.records): a worker can be killed while it
    # records itself, when psutil's import is slow
    path = os.path.join(os.environ["TORTURE_PIDS"], str(pid))
    tmp = f"{path}.{__import__('threading').get_ident()}.tmp"  # workers share a pid
    with open(tmp, "w") as f:
        f.write(str(psutil_create_time(pid)))
    os.replace(tmp, path)


def psutil_create_time(pid):
    import psutil

    return psutil.Process(pid).create_time()


@pytest.mark.concurrency(modes=["thread", "process", "hybrid"], workers=2, timeout=2)
def test_abba(worker, barrier):
    record(os.getpid())
    first, second = LOCKS[worker.mode]
    if worker.index == 1:
        first, second = second, first
    with first:
        barrier.wait()
        with second:
            pass


HYBRID_LOCKS = (threading.Lock(), threading.Lock())


@pytest.mark.concurrency(modes=["hybrid"], processes=1, threads=2, timeout=2)
def test_abba_hybrid_threads(worker, barrier):
    record(os.getpid())
    first, second = HYBRID_LOCKS if worker.index == 0 else HYBRID_LOCKS[::-1]
    with first:
        barrier.wait()
        with second:
            pass


def spin_forever():
    while True:
        pass


@pytest.mark.concurrency(modes=["process"], workers=2, timeout=1)
def test_spin(worker):
    record(os.getpid())
    if worker.index == 0:
        spin_forever()


@pytest.mark.concurrency(modes=["process"], workers=2, iterations=3)
def test_segfault(worker):
    record(os.getpid())
    if worker.index == 1 and worker.iteration == 1:
        ctypes.string_at(0)


@pytest.mark.concurrency(modes=["process"], workers=2)
def test_os_exit(worker):
    record(os.getpid())
    if worker.index == 0:
        os._exit(3)


@pytest.mark.concurrency(modes=["process"], workers=2)
def test_sigkill(worker):
    record(os.getpid())
    if worker.index == 0:
        os.kill(os.getpid(), signal.SIGKILL)


@pytest.mark.concurrency(modes=["process"], workers=2)
def test_sys_exit(worker):
    record(os.getpid())
    if worker.index == 0:
        sys.exit(2)
    raise KeyboardInterrupt


class Unpicklable(Exception):
    def __reduce__(self):
        raise TypeError("I do not travel")


@pytest.mark.concurrency(modes=["process"], workers=1)
def test_unpicklable_exception():
    record(os.getpid())
    raise Unpicklable("locked in the child")


@pytest.mark.concurrency(modes=["process"], workers=1)
def test_grandchild():
    record(os.getpid())
    grandchild = subprocess.Popen(["sleep", "1000"])
    record(grandchild.pid)


@pytest.mark.concurrency(modes=["thread"], workers=2)
def test_leaked_thread(worker):
    if worker.index == 0:
        threading.Thread(target=NEVER.wait, name="forgotten-poller", daemon=True).start()


@pytest.mark.concurrency(modes=["thread"], workers=2, timeout=1)
def test_never_returns(worker):
    if worker.index == 1:
        NEVER.wait()


def test_session_goes_on():
    pass
'''

EXPECTED_OUTCOMES = dict(passed=3, failed=11, errors=2)
ABBA_THREAD = [
    "*timed out after 2s*",
    "*concurrency-worker-0 (still running, abandoned)*",
    "*with second:*",
    "*concurrency-worker-1 (still running, abandoned)*",
    "*with second:*",
]
ABBA_PROCESSES = [
    "*timed out after 2s*",
    "*process 0 (pid *, worker 0)*",
    "*in test_abba*",
    "*process 1 (pid *, worker 1)*",
    "*in test_abba*",
]
# report section title -> lines expected in it, in this order
EXPECTED = {
    "test_abba[thread]": ABBA_THREAD,
    "test_abba[process]": ABBA_PROCESSES,
    "test_abba[hybrid]": ABBA_PROCESSES,
    "test_abba_hybrid_threads[hybrid]": [
        "*timed out after 2s*",
        "*process 0 (pid *, workers 0-1)*",
        "Thread 0x* (worker ?) (most recent call first):",
        "*in test_abba_hybrid_threads*",
        "Thread 0x* (worker ?) (most recent call first):",
        "*in test_abba_hybrid_threads*",
    ],
    "test_os_exit[process]": [
        "worker 0 (pid *) exited with status 3 in iteration 0 after *s"],
    "test_segfault[process]": [
        "worker 1 (pid *) killed by SIGSEGV (signal 11) in iteration 1 after *s",
        "*Fatal Python error: Segmentation fault*"],
    "test_sigkill[process]": [
        "worker 0 (pid *) killed by SIGKILL (signal 9) in iteration 0 after *s",
        "SIGKILL is also what the kernel's OOM killer*"],
    # spinning is progress (CPU rising), never called a hang: too slow at its timeout
    "test_spin[process]": ["still running after *s, making progress (CPU +*",
                           "*in spin_forever*"],
    "test_sys_exit[process]": ["*SystemExit: 2*", "*KeyboardInterrupt*"],
    "test_unpicklable_exception[process]": [
        "*Unpicklable: locked in the child*", "*raise Unpicklable*"],
    "test_never_returns[thread]": [
        "*timed out after 1s*", "*concurrency-worker-1 (still running, abandoned)*",
        "*NEVER.wait()*"],
    "ERROR at teardown of test_grandchild[process]": [
        "the test left 1 process running 1s after it finished (leaks='fail'):",
        "process * (sleep 1000), sleeping, parent *: killed"],
    "ERROR at teardown of test_leaked_thread[thread]": [
        "the test left 1 thread running 1s after it finished (leaks='fail'):",
        "daemon thread 'forgotten-poller'*"],
}


def _sections(out):
    """Report sections by their title line ('____ test_x[mode] ____')."""
    sections = {}
    title = None
    for line in out.splitlines():
        stripped = line.strip("_ ")
        if line.startswith("___") and stripped and not stripped.startswith("failure "):
            title = stripped
            sections[title] = []
        elif title is not None:
            sections[title].append(line)
    return sections


@pytest.fixture
def torture(pytester, monkeypatch, tmp_path):
    pid_dir = tmp_path / "pids"
    pid_dir.mkdir()
    monkeypatch.setenv("TORTURE_PIDS", str(pid_dir))
    pytester.makepyfile(test_torture_cases=TORTURE)
    return pid_dir


# case -> its own timeout: each must be stopped at it, long before a timeout cap would
# have let it go on (not "within timeout + 3 s": a busy machine stretches the kill)
BOUNDED = {"test_abba[thread]": 2, "test_abba[process]": 2, "test_abba[hybrid]": 2,
           "test_abba_hybrid_threads[hybrid]": 2, "test_spin[process]": 1,
           "test_never_returns[thread]": 1}


def _durations(out, phase="call"):
    """'1.23s call     test_torture_cases.py::test_x[mode]' lines of --durations."""
    found = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1] == phase and parts[0].endswith("s"):
            found[parts[2].split("::")[-1]] = float(parts[0][:-1])
    return found


def _check(result, pid_dir):
    result.assert_outcomes(**EXPECTED_OUTCOMES)
    out = result.stdout.str()
    durations = _durations(out)
    for case, timeout in BOUNDED.items():
        assert durations[case] < timeout * TIMEOUT_CAP_FACTOR, (case, durations[case])
    # no phase of any case went on unbounded: the longest timeout, capped
    longest = max(BOUNDED.values()) * TIMEOUT_CAP_FACTOR
    for phase in ("setup", "call", "teardown"):
        assert all(took < longest for took in _durations(out, phase).values()), phase
    sections = _sections(result.stdout.str())
    for title, lines in EXPECTED.items():
        assert title in sections, f"no report section {title!r}"
        pytest.LineMatcher(sections[title]).fnmatch_lines(lines)
    assert len(records(pid_dir)) >= 12
    assert still_running(pid_dir) == []


def test_torture_serial(pytester, torture):
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--durations=0",
                                           "--durations-min=0", timeout=120)
    _check(result, torture)


def test_torture_under_xdist(pytester, torture):
    pytest.importorskip("xdist")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-n", "2",
                                           "--durations=0", "--durations-min=0", timeout=120)
    _check(result, torture)
