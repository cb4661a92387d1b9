"""With pytest-timeout, -W error, coverage: nothing breaks, nothing is left running."""


import psutil
import pytest
from pid_records import records, still_running

RECORD_PIDS = """
import os, time
import pytest

def record():
    # complete or absent (pid_records.records)
    path = os.path.join(os.environ["PIDS"], str(os.getpid()))
    tmp = f"{path}.{__import__('threading').get_ident()}.tmp"  # workers share a pid
    with open(tmp, "w") as f:
        f.write("%f" % __import__("psutil").Process().create_time())
    os.replace(tmp, path)
"""


@pytest.fixture
def pid_dir(tmp_path, monkeypatch):
    path = tmp_path / "pids"
    path.mkdir()
    monkeypatch.setenv("PIDS", str(path))
    return path


@pytest.mark.parametrize("method", ["signal", "thread"])
def test_pytest_timeout_firing_leaves_no_children(pytester, pid_dir, method):
    pytest.importorskip("pytest_timeout")
    pytester.makepyfile(RECORD_PIDS + """
@pytest.mark.concurrency(modes=["process", "hybrid"], workers=2, timeout=60)
def test_sleeps(worker):
    record()
    time.sleep(60)

def test_next():
    pass
""")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--timeout=2",
                                           f"--timeout-method={method}", timeout=60)
    assert "Timeout" in result.stdout.str() + result.stderr.str()
    if method == "signal":  # the session goes on; with "thread" pytest-timeout ends it
        result.assert_outcomes(failed=2, passed=1)
    assert len(records(pid_dir)) == (4 if method == "signal" else 2)
    # children die with their parent (process group kill, or the parent-death signal)
    deadline = psutil.time.monotonic() + 10
    while still_running(pid_dir) and psutil.time.monotonic() < deadline:
        psutil.time.sleep(0.1)
    assert still_running(pid_dir) == []


def test_fork_warning_is_not_an_error_under_W_error(pytester):
    pytester.makepyfile("""
import threading
import pytest

RUNNING = threading.Event()
threading.Thread(target=RUNNING.wait, daemon=True).start()  # a process with threads

@pytest.mark.concurrency(modes=["process", "hybrid"], workers=2)
def test_forks_anyway(worker):
    assert worker.count == 2

def test_stop():
    RUNNING.set()
""")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-W", "error")
    result.assert_outcomes(passed=3)


def test_code_run_in_forked_children_is_covered(pytester):
    pytest.importorskip("pytest_cov")
    pytester.makepyfile(
        mod="""
def only_in_children():
    return 42

def never_called():
    return 0
""",
        test_cov="""
import pytest
import mod

@pytest.mark.concurrency(modes=["process", "hybrid"], workers=2)
def test_children():
    assert mod.only_in_children() == 42
""",
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--cov=mod",
                                           "--cov-report=term-missing")
    result.assert_outcomes(passed=2)
    # only never_called's body (line 5) is missing: line 2 ran in the children only
    result.stdout.fnmatch_lines(["mod.py * 4 * 1 * 75% * 5"])
