"""What a concurrent item leaves running does not outlive the session, whatever
``leaks`` says, and what the plugin kills itself is never reported as left
behind."""

import os
import signal
import subprocess
import sys
import time

import psutil
import pytest
from pid_records import still_running

from pytest_concurrency import cleanup, guardian, watchdog

RECORD = """
import os, subprocess, threading
import psutil, pytest

def record(pid):
    with open(os.path.join(os.environ["PIDS"], str(pid)), "w") as f:
        f.write("%f" % psutil.Process(pid).create_time())

def sleeper():
    return subprocess.Popen(["sleep", "1000"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
"""


@pytest.fixture
def pid_dir(tmp_path, monkeypatch):
    path = tmp_path / "pids"
    path.mkdir()
    monkeypatch.setenv("PIDS", str(path))
    return path


def gone(pid_dir, seconds=15.0):
    deadline = time.monotonic() + seconds
    while still_running(pid_dir):
        if time.monotonic() > deadline:
            pytest.fail(f"still running after the session: {still_running(pid_dir)}")
        time.sleep(0.05)


IGNORED = RECORD + """
@pytest.mark.concurrency(modes=["thread", "process", "hybrid"], workers=2, leaks="ignore")
def test_leaves_a_process(worker):
    record(sleeper().pid)

def test_later_it_still_runs():
    assert len(os.listdir(os.environ["PIDS"])) == 6
    for name in os.listdir(os.environ["PIDS"]):
        assert psutil.Process(int(name)).status() != psutil.STATUS_ZOMBIE
"""


def test_what_leaks_ignore_lets_run_dies_with_the_session(pytester, pid_dir):
    """``leaks="ignore"`` lets what a test started run on (a later test may use it),
    until the session ends, not after."""
    pytester.makepyfile(test_ignored=IGNORED)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=4)
    assert len(os.listdir(pid_dir)) == 6
    gone(pid_dir)


# timeout=3: the body starts a program before it blocks, which on a busy free-threaded
# build took over a second; a worker still starting it at its timeout makes progress
TIMED_OUT = RECORD + """
@pytest.mark.concurrency(modes=["process", "hybrid"], workers=2, timeout=3)
def test_hangs(worker):
    record(sleeper().pid)
    threading.Event().wait()
"""


def test_a_timeout_kills_the_grandchildren_without_calling_them_leaks(pytester, pid_dir):
    pytester.makepyfile(test_timed_out=TIMED_OUT)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", timeout=120)
    result.assert_outcomes(failed=2)  # the timeouts, and no leak error at teardown
    out = result.stdout.str()
    assert out.count("timed out after 3s") == 2
    assert "left" not in out and "gone while being described" not in out
    assert len(os.listdir(pid_dir)) == 4
    gone(pid_dir, 5)


GRANDPARENT = """
import os, subprocess, sys, time
os.setpgid(0, 0)
child = subprocess.Popen(["sleep", "1000"])
print(child.pid, flush=True)
time.sleep(1000)
"""


def test_kill_tree_reaps_the_grandchildren_it_kills_and_leaves_the_childs_status():
    """Killed grandchildren re-parented to this process (its subreaper) are reaped,
    not left as zombies a leak check would find; the child's own exit status
    stays for whoever joins it."""
    child = subprocess.Popen([sys.executable, "-c", GRANDPARENT], stdout=subprocess.PIPE,
                             text=True)
    grandchild = int(child.stdout.readline())
    assert watchdog.become_subreaper()
    try:
        watchdog.kill_tree([child.pid], groups=True, keep=[child.pid])
        assert child.wait(timeout=5) == -9
        assert not psutil.pid_exists(grandchild) or \
            psutil.Process(grandchild).ppid() != os.getpid()
        assert [p for p in psutil.Process().children() if p.pid == grandchild] == []
    finally:
        watchdog.stop_being_subreaper()
        child.stdout.close()


CARRIER = "import os, time; os.environ; time.sleep(1000)"


def test_the_guardian_kills_what_carries_the_sessions_token(tmp_path):
    """A program started with the token in its environment (after its own
    session's, when a test started that session), and a forked copy of a
    process that holds the marker file, are found; anything else is not."""
    token = f"test-{os.getpid()}-{time.monotonic_ns()}"
    # started by a test of a session that a test of this session started
    env = dict(os.environ, **{guardian.TOKEN_VAR: f"{token},inner-{time.monotonic_ns()}"})
    carrier = subprocess.Popen([sys.executable, "-c", CARRIER], env=env)
    other = subprocess.Popen([sys.executable, "-c", CARRIER])
    marked = subprocess.Popen([sys.executable, "-c", (
        "import os, sys, time\n"
        f"fd = os.memfd_create({guardian.mark_name(token)!r}, os.MFD_CLOEXEC)\n"
        "if os.fork() == 0:\n"
        "    time.sleep(1000)\n"
        "time.sleep(1000)\n")], env=dict(os.environ))
    try:
        deadline = time.monotonic() + 10
        while len(psutil.Process(marked.pid).children()) < 1:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        forked = psutil.Process(marked.pid).children()[0]
        assert guardian.kill_carriers(token, {os.getpid()}) == 3
        assert carrier.wait(timeout=5) == -9 and marked.wait(timeout=5) == -9
        forked.wait(timeout=5)
        assert other.poll() is None
    finally:
        for proc in (carrier, other, marked):
            proc.kill()
            proc.wait()


def test_a_carrier_still_dying_at_the_next_scan_is_killed_and_counted_once(monkeypatch):
    """SIGKILLed, a process may still be there, with its environment, when the
    guardian scans again (on a busy machine: the test above counted 4 of 3)."""
    token = f"test-{os.getpid()}-{time.monotonic_ns()}"
    env = dict(os.environ, **{guardian.TOKEN_VAR: token})
    carrier = subprocess.Popen([sys.executable, "-c", CARRIER], env=env)
    sent = []  # the signal is noted, not sent: the carrier stays as a dying one would

    def note(pid_or_pidfd: int, signum: int) -> None:
        sent.append(signum)

    try:
        deadline = time.monotonic() + 10
        while guardian.TOKEN_VAR not in psutil.Process(carrier.pid).environ():
            assert time.monotonic() < deadline
            time.sleep(0.02)
        monkeypatch.setattr(guardian.signal, "pidfd_send_signal", note, raising=False)
        monkeypatch.setattr(guardian.os, "kill", note)
        assert guardian.kill_carriers(token, {os.getpid()}) == 1
        assert sent == [signal.SIGKILL]
    finally:
        monkeypatch.undo()
        carrier.kill()
        carrier.wait()


def test_nested_sessions_kill_only_their_own_leftovers(monkeypatch):
    """pytester runs sessions inside a session: each one's end kills what it
    registered, not its outer session's."""
    outer = subprocess.Popen(["sleep", "1000"])
    inner = subprocess.Popen(["sleep", "1000"])
    monkeypatch.setattr(cleanup, "_sessions", [])
    try:
        cleanup.begin()
        cleanup.leave(outer.pid, cleanup._started(outer.pid))
        cleanup.begin()
        cleanup.leave(inner.pid, cleanup._started(inner.pid))
        cleanup.finish()  # killed and reaped: its exit status is gone with it
        assert inner.poll() is not None and not psutil.pid_exists(inner.pid)
        assert outer.poll() is None
        cleanup.finish()
        assert outer.poll() is not None and not psutil.pid_exists(outer.pid)
    finally:
        for proc in (outer, inner):
            proc.kill()
            proc.wait()
