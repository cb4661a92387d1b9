"""Past its timeout a run is watched: one still making progress (CPU time rising,
stacks changing) is never called a hang, and may go on to the timeout cap; one
stuck (no CPU, the same stack, blocked) fails as a hang after a second of watching."""

import builtins
import contextlib
import io
import linecache
import os
import re
import signal
import subprocess
import sys
import threading
import time
import tokenize
import traceback
import uuid
import weakref

import psutil
import pytest

from pytest_concurrency import ending, progress
from pytest_concurrency.spec import TIMEOUT_CAP_FACTOR

BODIES = """
import os
import threading
import time
import pytest

LOCK = threading.Lock()

def busy(seconds):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        sum(range(1000))

@pytest.mark.concurrency(modes=["MODE"], workers=2, timeout=1)
def test_busy_past_its_timeout():
    busy(4)

@pytest.mark.concurrency(modes=["MODE"], workers=2, timeout=1)
def test_self_deadlock(worker):
    if worker.index == 0:
        LOCK.acquire()
        LOCK.acquire()  # never returns
"""


def durations(result) -> dict[str, float]:
    found = [re.fullmatch(r"([\d.]+)s call +\S+::(\S+)", line.strip())
             for line in result.stdout.lines]
    return {m[2]: float(m[1]) for m in found if m}


@pytest.mark.parametrize("mode", ["thread", "process"])
def test_busy_is_too_slow_not_a_hang_and_a_deadlock_is_stuck(pytester, mode):
    pytester.makepyfile(test_bodies=BODIES.replace("MODE", mode))
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--durations=0",
                                           timeout=60)
    result.assert_outcomes(failed=2)
    out = result.stdout.str()
    busy = out.split("test_busy_past_its_timeout[")[1].split("test_self_deadlock[")[0]
    assert "still running after" in busy and "making progress (CPU +" in busy
    assert ": stuck (" not in busy and "timed out after" not in busy
    result.stdout.fnmatch_lines(["*timed out after 1s: stuck (no CPU used and the same stacks*"])
    # stopped at its timeout, long before a cap would have let it go on (not "within
    # timeout + 3 s": a busy machine can stretch the watching and the kill)
    took = durations(result)
    assert took[f"test_self_deadlock[{mode}]"] < 1 * TIMEOUT_CAP_FACTOR


def test_a_run_still_making_progress_goes_on_to_the_cap(pytester):
    """Under --concurrency-apply the cap is 10x the timeout: a slow test finishes."""
    pytester.makepyfile("""
        import time

        def test_slow_but_working():
            end = time.monotonic() + 2.5
            while time.monotonic() < end:
                sum(range(1000))
    """)
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--concurrency-apply=thread", "--concurrency-workers=2",
        "--concurrency-timeout=1", timeout=60)
    result.assert_outcomes(passed=1)
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--concurrency-apply=thread", "--concurrency-workers=2",
        "--concurrency-timeout=1", "--concurrency-timeout-cap=off", timeout=60)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*still running after *s, making progress*"])


def test_bad_timeout_cap_is_a_usage_error(pytester):
    pytester.makepyfile("def test_x(): pass")
    result = pytester.runpytest("--concurrency-timeout-cap=soon")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--concurrency-timeout-cap='soon': expected 'off', seconds, "
                                 "or a multiple of the timeout such as '10x'*"])


# ---------------------------------------------------------------- threads the test starts

SLEEPER = """
import threading
import time

def works():
    for _ in range(80):  # 4 s of short sleeps: no CPU, the same stack, awake 20 times a second
        time.sleep(0.05)

def test_joins_a_working_thread():
    thread = threading.Thread(target=works)
    thread.start()
    thread.join()
"""


@pytest.mark.parametrize("mode", ["thread", "process", "hybrid"])
def test_a_thread_the_test_started_that_keeps_working_is_progress(pytester, run, mode):
    """The workers wait in join(); the thread they joined makes the progress."""
    pytester.makepyfile(test_sleeper=SLEEPER)
    apply = (f"--concurrency-apply={mode}", "--concurrency-workers=2",
             "--concurrency-timeout=1")
    result = run(*apply, "--concurrency-timeout-cap=off")
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    assert "timed out after" not in out and ": stuck (" not in out
    result.stdout.fnmatch_lines(["*still running after *s, making progress (CPU +*, "
                                 "* wake-ups in the last *"])
    if mode == "thread":  # where they ran: the threads it started, besides the workers
        result.stdout.fnmatch_lines(["--- Thread-* (works) (started during the run, "
                                     "still running) ---"])
    run(*apply).assert_outcomes(passed=1)  # under --concurrency-apply it may finish


def test_a_thread_that_keeps_waking_up_makes_progress_one_that_waits_does_not():
    stop, blocked = threading.Event(), threading.Event()

    def sleeps():
        while not stop.is_set():
            time.sleep(0.02)

    sleeper = threading.Thread(target=sleeps)
    waiter = threading.Thread(target=blocked.wait)
    sleeper.start()
    waiter.start()
    try:
        verdict = progress.watch([sleeper])
        assert verdict.progressing and verdict.wakeups > 0 and verdict.cpu < 0.5
        assert " wake-ups in the last " in verdict.describe()
        assert not progress.watch([waiter]).progressing
        assert progress.watch([waiter, sleeper]).progressing
    finally:
        stop.set()
        blocked.set()
        sleeper.join()
        waiter.join()


def test_one_wake_up_is_not_progress():
    """A signal wakes a blocked thread once; progress is waking up again and again."""
    blocked = threading.Event()
    waiter = threading.Thread(target=blocked.wait)
    previous = signal.signal(signal.SIGUSR1, lambda signum, frame: None)
    waiter.start()
    try:
        kicked = threading.Timer(0.5, signal.pthread_kill, (waiter.ident, signal.SIGUSR1))
        kicked.start()
        verdict = progress.watch([waiter])
        kicked.join()
        assert not verdict.progressing
    finally:
        blocked.set()
        waiter.join()
        signal.signal(signal.SIGUSR1, previous)


def test_the_threads_of_a_process_that_keep_waking_up_are_seen():
    ready = "import sys, time\nprint('ready', flush=True)\n"
    sleeping = subprocess.Popen([sys.executable, "-c", ready + "while True: time.sleep(0.02)"],
                                stdout=subprocess.PIPE, text=True)
    blocked = subprocess.Popen([sys.executable, "-c", ready + "sys.stdin.read()"],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        for proc in (sleeping, blocked):  # in their loop, or about to block for good
            assert proc.stdout.readline() == "ready\n"
        assert progress.waking([sleeping.pid], 1.0) > 0
        assert progress.waking([blocked.pid], 1.0) == 0
        assert progress.waking([12345678], 0.1) == 0  # no such process: nothing to see
    finally:
        for proc in (sleeping, blocked):
            proc.kill()
            proc.communicate()


# ---------------------------------------------------------------- the session ends

STUCK_EXECUTOR = """
import concurrent.futures
import threading

EVENT = threading.Event()

def test_waits_for_ever():
    concurrent.futures.ThreadPoolExecutor(1).submit(EVENT.wait).result()

def test_after():
    pass
"""
LEAKING_EXECUTOR = """

def test_leaves_it_waiting():  # a leak: reported at teardown, and never joined either
    concurrent.futures.ThreadPoolExecutor(1).submit(EVENT.wait)
"""


@pytest.mark.parametrize("mode", ["thread", "process"])
def test_a_session_whose_test_left_an_executor_thread_stuck_ends(pytester, mode):
    """concurrent.futures joins its threads at exit: one stuck for ever would keep
    the process from ending after its summary.  (In process mode the children
    that held them are killed.)"""
    pytester.makepyfile(test_stuck=STUCK_EXECUTOR + (LEAKING_EXECUTOR if mode == "thread"
                                                     else ""))
    mark = f"h1-stuck-{uuid.uuid4()}"
    session = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", f"--concurrency-apply={mode}",
         "--concurrency-workers=2", "--concurrency-timeout=3"],
        cwd=pytester.path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "SESSION_MARK": mark})
    try:
        out, _ = session.communicate(timeout=120)  # it ends at all: it does in seconds
    except subprocess.TimeoutExpired:
        session.kill()
        out, _ = session.communicate()
        pytest.fail(f"the session did not end:\n{out}")
    assert session.returncode == pytest.ExitCode.TESTS_FAILED, out
    # the hang is reported once (the threads it showed are no leak), the leak once
    summary = "1 failed, 2 passed, 1 error" if mode == "thread" else "1 failed, 1 passed"
    assert re.search(rf"^=+ {summary} in [\d.]+s =+$", out, re.MULTILINE), out
    assert "timed out after 3s: stuck (" in out
    if mode == "thread":
        assert "ERROR test_stuck.py::test_leaves_it_waiting[thread]" in out
    left = []
    for proc in psutil.process_iter():
        with contextlib.suppress(psutil.Error):
            if proc.environ().get("SESSION_MARK") == mark:
                left.append((proc.pid, proc.cmdline()))
    assert left == []


def test_the_exit_waits_for_no_thread_the_session_gave_up_on(monkeypatch):
    monkeypatch.setattr(ending, "_ABANDONED", weakref.WeakSet())
    release = threading.Event()
    ended = threading.Thread(target=lambda: None)
    worker = threading.Thread(target=release.wait, name="concurrency-worker-7", daemon=True)
    started = threading.Thread(target=release.wait, daemon=True)  # a worker's: a daemon too
    for thread in (ended, worker, started):
        thread.start()
    ended.join()
    try:
        assert ending.waited_for() == []
        ending.abandon([ended, worker, started])
        assert ending.abandoned(started) and not ending.abandoned(threading.current_thread())
        assert ending.waited_for() == [started]  # alive, and the test's (the pool's is not)
    finally:
        release.set()
        worker.join()
        started.join()


def test_a_stacks_source_lines_are_read_without_open(tmp_path, monkeypatch):
    """The stacks of a report (a hang's, a leak's, explore's) read their source with
    system calls: open(), which linecache uses, took a fifth of a second a file on a
    busy free-threaded build.  The lines are the ones traceback gives, a coding
    cookie included."""
    source = tmp_path / "latin_module_for_stacks.py"
    source.write_bytes(b"# -*- coding: latin-1 -*-\n\n"
                       b"def here(lock):\n    lock.acquire()  # caf\xe9\n")
    namespace: dict = {}
    exec(compile(source.read_bytes(), str(source), "exec"), namespace)
    lock = threading.Lock()
    lock.acquire()
    waiting = threading.Thread(target=namespace["here"], args=(lock,))
    waiting.start()
    try:  # its stack does not change once it is in here(): acquire() is not Python
        while not (frame := sys._current_frames().get(waiting.ident)) or \
                frame.f_code.co_name != "here":
            time.sleep(0.001)
        linecache.clearcache()

        def no_open(*args, **kwargs):
            raise AssertionError("read with open()")

        with monkeypatch.context() as patched:
            patched.setattr(tokenize, "open", no_open)  # linecache's way to read a file
            patched.setattr(builtins, "open", no_open)
            patched.setattr(io, "open", no_open)
            stack = [(entry.filename, entry.lineno, entry.line)
                     for entry in progress.extract_stack(frame)]
            line = progress.source_line(str(source), 3)
            gone = progress.source_line(str(tmp_path / "gone.py"), 1)
        linecache.clearcache()
        expected = [(entry.filename, entry.lineno, entry.line)
                    for entry in traceback.extract_stack(frame)]
    finally:
        lock.release()
        waiting.join()
    assert stack == expected
    assert stack[-1] == (str(source), 4, "lock.acquire()  # caf\xe9")
    assert (line, gone) == ("def here(lock):", "")
