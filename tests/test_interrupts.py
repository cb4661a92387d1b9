"""A session stopped from outside: Ctrl-C (SIGINT), SIGTERM or SIGKILL, sent to a
real pytest process while a concurrent item runs.  The item is recorded as
interrupted, never as passed, and nothing the session started is left: no worker
child, no grandchild, no scratch directory."""

import json
import os
import signal
import subprocess
import sys
import time

import psutil
import pytest
from pid_records import records, still_running

from pytest_concurrency import scratch

SLEEPER = """
import os, subprocess, time
import pytest

def record(pid):
    # complete or absent, never an empty file: psutil's import can take seconds
    # (a free-threaded 3.13.5 on a busy machine), and the session is interrupted
    # as soon as every record is there
    path = os.path.join(os.environ["PIDS"], str(pid))
    tmp = f"{{path}}.{{__import__('threading').get_ident()}}.tmp"  # workers share a pid
    with open(tmp, "w") as f:
        f.write("%f" % __import__("psutil").Process(pid).create_time())
    os.replace(tmp, path)

def started():
    record(os.getpid())

@pytest.mark.concurrency(modes=[{mode!r}], workers=2)
def test_sleeps(worker):
    started()
    if worker.mode != "thread":
        child = subprocess.Popen(["sleep", "34"])
        record(child.pid)
    time.sleep(30)
"""


DEFAULT_SIGINT = ("import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
                  "os.execv(sys.argv[1], sys.argv[1:])")


def wait_for(condition, seconds=30.0):
    """Poll ``condition`` until it is true; fail after ``seconds``."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting after {seconds}s")
        time.sleep(0.05)


@pytest.fixture
def pid_dir(tmp_path, monkeypatch):
    path = tmp_path / "pids"
    path.mkdir()
    monkeypatch.setenv("PIDS", str(path))
    return path


@pytest.fixture
def start(pytester):
    """Start pytest in a subprocess; whatever happens, it is gone afterwards."""
    sessions = []

    def start(*args, new_session=False):
        # As from a terminal: SIGINT does what it does by default.  (Under
        # pytest-xdist this process ignores SIGINT, and a child would inherit that.)
        command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args]
        session = subprocess.Popen(
            [sys.executable, "-c", DEFAULT_SIGINT, *command],
            cwd=pytester.path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            start_new_session=new_session)
        sessions.append(session)
        return session

    yield start
    for session in sessions:
        if session.poll() is None:
            session.kill()
            session.communicate()


def scratch_dirs(pid: int) -> list[str]:
    return [name for name in os.listdir("/dev/shm")
            if name.startswith(f"{scratch.PREFIX}{pid}-")]


def started(pid_dir, count):
    return lambda: len(records(pid_dir)) >= count


RECORDS = {"thread": 1, "process": 4, "hybrid": 4}  # pid files of a running SLEEPER


@pytest.mark.parametrize("mode", ["thread", "process", "hybrid"])
def test_an_interrupted_item_is_recorded_as_interrupted(pytester, pid_dir, start, mode):
    pytester.makepyfile(test_int=SLEEPER.format(mode=mode))
    session = start("--concurrency-report=r.json", "--concurrency-report=r.md",
                    "--concurrency-save-baseline", "--concurrency-baseline=base.json")
    wait_for(started(pid_dir, RECORDS[mode]))
    session.send_signal(signal.SIGINT)
    out, _ = session.communicate(timeout=60)
    assert session.returncode == pytest.ExitCode.INTERRUPTED, out
    report = json.loads((pytester.path / "r.json").read_text())
    (entry,) = report["tests"]
    assert entry["outcome"] == "interrupted"
    assert report["run"]["interrupted"] is True
    markdown = (pytester.path / "r.md").read_text()
    assert "1 interrupted" in markdown and "**The session was interrupted**" in markdown
    assert "Nothing regressed or failed" not in markdown
    assert f"test_int.py::test_sleeps[{mode}]  interrupted" in out
    saved = json.loads((pytester.path / "base.json").read_text())
    assert all(not entries for entries in saved["machines"].values())
    wait_for(lambda: not still_running(pid_dir), 10)


def test_under_xdist_ctrl_c_marks_the_running_items_interrupted(pytester, pid_dir, start):
    pytester.makepyfile(test_a=SLEEPER.format(mode="thread"),
                        test_b=SLEEPER.format(mode="process"))
    session = start("-n", "2", "--concurrency-report=r.json", new_session=True)
    wait_for(started(pid_dir, RECORDS["thread"] + RECORDS["process"]))
    os.killpg(session.pid, signal.SIGINT)  # Ctrl-C reaches the whole foreground group
    out, _ = session.communicate(timeout=60)
    report = json.loads((pytester.path / "r.json").read_text())
    assert sorted(e["outcome"] for e in report["tests"]) == ["interrupted"] * 2, out
    assert report["run"]["interrupted"] is True
    wait_for(lambda: not still_running(pid_dir), 10)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGKILL])
def test_killing_the_session_leaves_no_grandchild_and_no_scratch(pytester, pid_dir, start,
                                                                signum):
    pytester.makepyfile(test_kill=SLEEPER.format(mode="process"))
    session = start("--concurrency-report=r.json")
    wait_for(started(pid_dir, RECORDS["process"]))
    assert scratch_dirs(session.pid)
    session.send_signal(signum)
    out, _ = session.communicate(timeout=60)
    wait_for(lambda: not still_running(pid_dir), 15)
    wait_for(lambda: not scratch_dirs(session.pid), 15)
    if signum == signal.SIGTERM:  # a clean stop: the reports are written
        assert session.returncode == pytest.ExitCode.INTERRUPTED, out
        (entry,) = json.loads((pytester.path / "r.json").read_text())["tests"]
        assert entry["outcome"] == "interrupted"
        assert "SIGTERM: the session was asked to stop" in out


def test_a_later_session_sweeps_the_scratch_of_dead_sessions(pytester, tmp_path):
    dead = psutil.Popen(["true"])
    dead.wait()
    left = os.path.join("/dev/shm", f"{scratch.PREFIX}{dead.pid}-leftover")
    os.makedirs(left, exist_ok=True)
    mine = os.path.join("/dev/shm", f"{scratch.PREFIX}{os.getpid()}-alive")
    os.makedirs(mine, exist_ok=True)
    try:
        pytester.makepyfile("""
            import pytest
            @pytest.mark.concurrency(modes=["process"], workers=1)
            def test_runs():
                pass
        """)
        result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
        result.assert_outcomes(passed=1)
        assert not os.path.exists(left)
        assert os.path.exists(mine)  # this session is alive: its directory stays
    finally:
        for path in (left, mine):
            if os.path.isdir(path):
                os.rmdir(path)


def test_sweep_leaves_live_and_foreign_directories(tmp_path):
    alive = tmp_path / f"{scratch.PREFIX}{os.getpid()}-x"
    dead_proc = psutil.Popen(["true"])
    dead_proc.wait()
    dead = tmp_path / f"{scratch.PREFIX}{dead_proc.pid}-x"
    legacy_old = tmp_path / f"{scratch.PREFIX}abcdef"
    legacy_new = tmp_path / f"{scratch.PREFIX}ghijkl"
    other = tmp_path / "something-else-1-x"
    for path in (alive, dead, legacy_old, legacy_new, other):
        path.mkdir()
    os.utime(legacy_old, (0, 0))
    removed = scratch.sweep(str(tmp_path))
    assert sorted(removed) == sorted([str(dead), str(legacy_old)])
    assert alive.exists() and legacy_new.exists() and other.exists()


# ---------------------------------------------------------------- interruptions


@pytest.fixture
def marks(tmp_path, monkeypatch):
    path = tmp_path / "marks"
    path.mkdir()
    monkeypatch.setenv("MARKS", str(path))
    return path


def interrupted_report(pytester, session, signum, out):
    """What every report says of a session stopped by ``signum``: its one item
    interrupted, never passed."""
    if signum == signal.SIGKILL:
        return
    assert session.returncode == pytest.ExitCode.INTERRUPTED, out
    report = json.loads((pytester.path / "r.json").read_text())
    assert report["run"]["interrupted"] is True
    assert [e["outcome"] for e in report["tests"]] == ["interrupted"], out
    markdown = (pytester.path / "r.md").read_text()
    assert "1 interrupted" in markdown and "**The session was interrupted**" in markdown
    assert "interrupted" in out and "Traceback" not in out


SET_UP = """
import os, time
import pytest

@pytest.fixture
def slow_setup():
    open(os.path.join(os.environ["MARKS"], "setup"), "w").close()
    {how}

@pytest.mark.concurrency(modes=[{mode!r}], workers=2)
def test_never_set_up(slow_setup):
    pass
"""


@pytest.mark.parametrize(("mode", "signum"), [("thread", signal.SIGINT),
                                               ("process", signal.SIGTERM),
                                               ("thread", None)])
def test_an_item_interrupted_in_its_setup_is_reported_interrupted(pytester, marks, start, mode,
                                                                  signum):
    how = "raise KeyboardInterrupt" if signum is None else "time.sleep(60)"
    pytester.makepyfile(test_setup=SET_UP.format(mode=mode, how=how))
    session = start("--concurrency-report=r.json", "--concurrency-report=r.md")
    wait_for(lambda: (marks / "setup").exists())
    if signum is not None:
        session.send_signal(signum)
    out, _ = session.communicate(timeout=60)
    interrupted_report(pytester, session, signum, out)
    assert f"test_setup.py::test_never_set_up[{mode}]  interrupted" in out


TWO_SIGNALS = """
import os, time
import pytest

@pytest.fixture
def slow_teardown():
    yield
    time.sleep(1.5)  # the second signal comes while the session stops

@pytest.mark.concurrency(modes=[{mode!r}], workers=2)
def test_runs(slow_teardown):
    open(os.path.join(os.environ["MARKS"], "running"), "w").close()
    time.sleep(60)
"""


@pytest.mark.parametrize(("mode", "first", "second"), [
    ("process", signal.SIGINT, signal.SIGINT),
    ("process", signal.SIGINT, signal.SIGTERM),
    ("process", signal.SIGTERM, signal.SIGTERM),
    ("process", signal.SIGTERM, signal.SIGINT),
    ("thread", signal.SIGINT, signal.SIGTERM),
])
def test_a_second_signal_costs_neither_the_reports_nor_a_clean_exit(pytester, marks, start,
                                                                    mode, first, second):
    pytester.makepyfile(test_two=TWO_SIGNALS.format(mode=mode))
    session = start("--concurrency-report=r.json", "--concurrency-report=r.md")
    wait_for(lambda: (marks / "running").exists())
    session.send_signal(first)
    time.sleep(0.1)  # "within 0.2 s": the second signal is sent while the session stops
    session.send_signal(second)
    out, _ = session.communicate(timeout=60)
    interrupted_report(pytester, session, first, out)
    assert "concurrency report written to" in out


# ---------------------------------------------------------------- leftovers of an item


RECORD = """
import os, subprocess, time
import psutil, pytest

def record(pid):
    with open(os.path.join(os.environ["PIDS"], str(pid)), "w") as f:
        f.write("%f" % psutil.Process(pid).create_time())

def mark(name):
    open(os.path.join(os.environ["MARKS"], name), "w").close()

def sleeper(**kwargs):
    return subprocess.Popen(["sleep", "1000"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, **kwargs)
"""


SLOW_TEARDOWN = RECORD + """
@pytest.fixture
def slow_teardown():
    yield
    mark("teardown")
    time.sleep(60)

@pytest.mark.concurrency(modes=[{mode!r}], workers=2)
def test_starts_a_grandchild(slow_teardown):
    record(sleeper().pid)
"""


@pytest.mark.parametrize("mode", ["thread", "process"])
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL])
def test_a_process_outliving_its_worker_dies_with_the_session(pytester, pid_dir, marks, start,
                                                              mode, signum):
    """Stopped during a slow fixture teardown, after the worker that started it
    (a process-mode child) exited: the grandchild is killed, and the item,
    whose leak check never ran, is interrupted, not passed."""
    pytester.makepyfile(test_outlived=SLOW_TEARDOWN.format(mode=mode))
    session = start("--concurrency-report=r.json", "--concurrency-report=r.md",
                    "--concurrency-save-baseline", "--concurrency-baseline=base.json")
    wait_for(lambda: (marks / "teardown").exists())
    assert len(still_running(pid_dir)) == 2
    session.send_signal(signum)
    out, _ = session.communicate(timeout=60)
    interrupted_report(pytester, session, signum, out)
    if signum != signal.SIGKILL:  # its call passed, and it is no baseline's
        saved = json.loads((pytester.path / "base.json").read_text())
        assert all(not entries for entries in saved["machines"].values())
    wait_for(lambda: not still_running(pid_dir), 15)
    wait_for(lambda: not scratch_dirs(session.pid), 15)


IN_THE_GRACE_PERIOD = RECORD + """
import pytest_concurrency.leaks

pytest_concurrency.leaks.GRACE = 60  # the leak check waits as long for what is left

@pytest.fixture
def teardown_done():
    yield
    mark("teardown")

@pytest.mark.concurrency(modes=[{mode!r}], workers=2)
def test_starts_a_grandchild(teardown_done):
    record(sleeper().pid)
"""


@pytest.mark.parametrize("mode", ["thread", "process"])
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_stopped_in_the_leak_checks_grace_period(pytester, pid_dir, marks, start, mode, signum):
    pytester.makepyfile(test_grace=IN_THE_GRACE_PERIOD.format(mode=mode))
    session = start("--concurrency-report=r.json", "--concurrency-report=r.md")
    wait_for(lambda: (marks / "teardown").exists())
    session.send_signal(signum)
    out, _ = session.communicate(timeout=60)
    interrupted_report(pytester, session, signum, out)
    wait_for(lambda: not still_running(pid_dir), 15)


ESCAPES = RECORD + """
@pytest.mark.concurrency(modes=[{mode!r}], workers=1)
def test_starts_everything():
    record(sleeper().pid)                          # a child (thread mode: the session's)
    record(sleeper(start_new_session=True).pid)    # one that left its process group
    shell = subprocess.Popen(["sh", "-c", "sleep 1000 >/dev/null 2>&1 & echo $!"],
                             stdout=subprocess.PIPE, text=True)
    record(int(shell.communicate()[0]))            # an orphan, re-parented at once
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:                                   # a copy of this process, no exec
        devnull = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(devnull, fd)
        os.close(read)
        os.close(write)
        time.sleep(1000)
        os._exit(0)
    os.close(write)
    record(pid)
    mark("started")
    time.sleep(60)
"""


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.parametrize("mode", ["thread", "process"])
def test_sigkill_of_the_session_leaves_nothing_the_item_started(pytester, pid_dir, marks,
                                                                start, mode):
    """The guardian finds what the item started by the token its environment
    carries (programs) or the marker file it holds (forked copies), wherever it
    moved in the process tree."""
    pytester.makepyfile(test_escapes=ESCAPES.format(mode=mode))
    session = start("-W", "ignore::DeprecationWarning")
    wait_for(lambda: (marks / "started").exists())
    assert len(still_running(pid_dir)) == 4
    session.send_signal(signal.SIGKILL)
    session.communicate(timeout=60)
    wait_for(lambda: not still_running(pid_dir), 15)


# ---------------------------------------------------------------- a forced stop


HUNG_TEARDOWN = RECORD + """
import threading

@pytest.fixture
def hangs():
    yield
    mark("teardown")
    threading.Event().wait()  # for ever: only a forced stop ends the session

@pytest.mark.concurrency(modes=["process"], workers=2)
def test_process(hangs):
    record(sleeper().pid)  # a grandchild, in its worker's process group
    mark("running")
    time.sleep(60)

@pytest.mark.concurrency(modes=["thread"], workers=2, fixtures="per-worker")
def test_thread(hangs):
    record(sleeper().pid)  # a child of the session, carrying its token
    mark("running")
    time.sleep(60)

def test_plain(hangs):
    mark("running")
    time.sleep(60)
"""


@pytest.mark.parametrize("test", ["test_process", "test_thread", "test_plain"])
def test_a_signal_after_the_window_forces_the_stop_of_a_hung_teardown(
        pytester, pid_dir, marks, start, test):
    """Ctrl-C, then a teardown that never ends (an ordinary fixture's; a
    concurrent item's per-worker fixtures, torn down by the session): Ctrl-C
    again, once the first is more than the coalescing window old, ends the
    session with the reports written and what it started killed."""
    from pytest_concurrency import cleanup

    pytester.makepyfile(test_hung=HUNG_TEARDOWN)
    session = start(f"test_hung.py::{test}", "--concurrency-report=r.json")
    wait_for(lambda: (marks / "running").exists())
    session.send_signal(signal.SIGINT)
    wait_for(lambda: (marks / "teardown").exists())  # the first signal was handled before
    time.sleep(cleanup.COALESCE)  # not a wait for anything: the second comes after it
    session.send_signal(signal.SIGINT)
    out, _ = session.communicate(timeout=60)
    assert session.returncode == pytest.ExitCode.INTERRUPTED, out
    assert "SIGINT again while the session stopped (SIGINT): the stop was forced" in out
    assert f"the reports were written ({pytester.path / 'r.json'})" in out
    assert "Traceback" not in out
    report = json.loads((pytester.path / "r.json").read_text())
    assert report["run"]["interrupted"] is True
    if test != "test_plain":
        assert [e["outcome"] for e in report["tests"]] == ["interrupted"], out
    wait_for(lambda: not still_running(pid_dir), 15)
    wait_for(lambda: not scratch_dirs(session.pid), 15)


def test_what_a_forced_stop_says_of_the_reports(monkeypatch):
    from pytest_concurrency import cleanup

    monkeypatch.setattr(cleanup, "_writer", lambda frame: "the reports were written (r.json)")
    monkeypatch.setattr(cleanup, "_reports", "pending")
    assert cleanup._forced_reports(None) == "the reports were written (r.json)"
    monkeypatch.setattr(cleanup, "_reports", "writing")  # the signal interrupted them
    assert cleanup._forced_reports(None) == \
        "the reports were not written (they were being written)"
    monkeypatch.setattr(cleanup, "_reports", "written")
    assert cleanup._forced_reports(None) == "the reports had been written"

    def fails(frame):
        raise OSError("disk full")

    monkeypatch.setattr(cleanup, "_reports", "pending")
    monkeypatch.setattr(cleanup, "_writer", fails)
    assert cleanup._forced_reports(None) == "the reports were not written (OSError: disk full)"


def test_a_stop_forced_while_a_result_is_recorded_writes_nothing(pytester):
    """The collector's data may be half updated where the signal came."""
    import sys

    from pytest_concurrency.report import collector

    here = sys._getframe()
    assert not collector._recording(here)
    inside = []
    reports = collector.Collector.__new__(collector.Collector)
    reports.problems = []
    reports._attempt("record", lambda: inside.append(sys._getframe()))
    assert collector._recording(inside[0])
