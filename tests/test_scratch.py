"""The session's scratch directory (children's output files): owned through a
lock, not a pid, so that no other session removes it while it lives (another
PID namespace included), and made again when something removes it."""

import glob
import os
import shutil
import subprocess
import sys
import time

import psutil
import pytest

from pytest_concurrency import scratch

OWNER = """
import sys
from pytest_concurrency import scratch
print(scratch.make(sys.argv[1]), flush=True)
sys.stdin.read()
"""


def dead_pid() -> int:
    proc = psutil.Popen(["true"])
    proc.wait()
    return proc.pid


def test_a_live_sessions_directory_is_kept_whatever_pid_its_name_holds(tmp_path):
    """As a sweeper in another PID namespace sees it: the pid in the name means
    nothing there.  The lock the owner holds keeps the directory; once the
    owner is gone, the next sweep removes it."""
    owner = subprocess.Popen([sys.executable, "-c", OWNER, str(tmp_path)],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        made = owner.stdout.readline().strip()
        assert os.path.basename(made).startswith(f"{scratch.PREFIX}{owner.pid}-")
        foreign = tmp_path / f"{scratch.PREFIX}{dead_pid()}-elsewhere"
        os.rename(made, foreign)
        assert scratch.sweep(str(tmp_path)) == []
        assert foreign.is_dir()
    finally:
        owner.communicate("")
    assert scratch.sweep(str(tmp_path)) == [str(foreign)]


def test_sweep_removes_a_directory_once_its_lock_is_free(tmp_path):
    """Made and left by a session that is gone: nobody holds its lock (the pid in
    its name may well be alive: reused, or another namespace's)."""
    dead_owner = subprocess.Popen([sys.executable, "-c", OWNER, str(tmp_path)],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    dead = dead_owner.stdout.readline().strip()
    dead_owner.communicate("")
    renamed = tmp_path / f"{scratch.PREFIX}{os.getpid()}-reused"
    os.rename(dead, renamed)
    being_made = tmp_path / ".pytest-concurrency-new-x"  # a session making its own
    being_made.mkdir()
    assert scratch.sweep(str(tmp_path)) == [str(renamed)]
    assert being_made.exists()


DELETES = """
import glob, os, shutil
import pytest

@pytest.mark.concurrency(modes=["process"], workers=2)
def test_before(worker):
    pass

def test_deletes_the_scratch_directory():
    found = glob.glob(f"/dev/shm/pytest-concurrency-{os.getpid()}-*")
    assert found
    for path in found:
        shutil.rmtree(path)

@pytest.mark.concurrency(modes=["process", "hybrid"], workers=2)
def test_after(worker):
    print("ran", worker.index)
"""


@pytest.mark.skipif(not os.path.isdir("/dev/shm"), reason="the directory is in /dev/shm")
def test_a_removed_scratch_directory_is_made_again(pytester):
    pytester.makepyfile(test_deletes=DELETES)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-s")
    result.assert_outcomes(passed=4)
    result.stdout.no_fnmatch_line("*before its first iteration*")


WAITS = """
import os, time
import pytest

@pytest.mark.concurrency(modes=["process"], workers=1)
def test_first():
    open(os.environ["STARTED"], "w").close()
    deadline = time.monotonic() + 60
    while not os.path.exists(os.environ["GO"]) and time.monotonic() < deadline:
        time.sleep(0.05)

@pytest.mark.concurrency(modes=["process"], workers=2)
def test_after(worker):
    pass
"""

OTHER = """
import pytest

@pytest.mark.concurrency(modes=["process"], workers=1)
def test_other():
    pass
"""


def _unshare_works() -> bool:
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        return False
    done = subprocess.run(["unshare", "--pid", "--fork", "--mount-proc", "true"],
                          capture_output=True)
    return done.returncode == 0


@pytest.mark.skipif(not os.path.isdir("/dev/shm") or not _unshare_works(),
                    reason="needs root and unshare(1) for a second PID namespace")
def test_a_session_in_another_pid_namespace_leaves_a_live_directory(pytester, tmp_path,
                                                                    monkeypatch):
    """Two sessions sharing /dev/shm, the second in a PID namespace of its own (as
    in another container): its sweep must not remove the first one's directory,
    whose owner's pid it cannot see."""
    started, go = tmp_path / "started", tmp_path / "go"
    monkeypatch.setenv("STARTED", str(started))
    monkeypatch.setenv("GO", str(go))
    first_dir = pytester.mkdir("first")
    (first_dir / "test_first.py").write_text(WAITS)
    second_dir = pytester.mkdir("second")
    (second_dir / "test_second.py").write_text(OTHER)
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q"]
    first = subprocess.Popen(command, cwd=first_dir, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        while not started.exists():
            assert first.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        mine = glob.glob(f"/dev/shm/{scratch.PREFIX}{first.pid}-*")
        assert mine
        second = subprocess.run(["unshare", "--pid", "--fork", "--mount-proc", *command],
                                cwd=second_dir, capture_output=True, text=True, timeout=120)
        assert "1 passed" in second.stdout, second.stdout + second.stderr
        assert all(os.path.isdir(path) for path in mine)
    finally:
        go.touch()
        out, _ = first.communicate(timeout=120)
    assert "2 passed" in out, out
