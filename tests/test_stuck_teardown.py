"""What a test's workers leave behind never hangs the session in teardown: a
teardown stuck past the timeout is interrupted, fails with where it was stuck and
what it waited for, and the session goes on."""

import re

import pytest

from pytest_concurrency import watchdog
from pytest_concurrency.spec import TIMEOUT_CAP_FACTOR

pytest_asyncio = pytest.importorskip("pytest_asyncio")

# pytest-asyncio 1.x cancels a session loop's tasks at teardown and waits for them (the
# hang filelock's suite met); before 1.0 it closes the loop with them pending
WAITS_FOR_TASKS = int(pytest_asyncio.__version__.split(".")[0]) >= 1

LEFT_BEHIND = """
import asyncio, threading
import pytest, pytest_asyncio

@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def shared_loop():
    return asyncio.get_running_loop()

async def stubborn():
    while True:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            pass  # will not be cancelled

@pytest.mark.concurrency(modes=["thread"], workers=2)
def test_leaves_a_task(shared_loop, worker):
    if worker.index == 0:
        asyncio.run_coroutine_threadsafe(stubborn(), shared_loop)

@pytest.mark.asyncio(loop_scope="session")
async def test_next_on_the_loop():
    await asyncio.sleep(0)

LOCK = threading.Lock()

@pytest.fixture
def needs_the_lock():
    yield
    with LOCK:
        pass

@pytest.mark.concurrency(modes=["thread"], workers=2)
def test_keeps_a_lock(needs_the_lock, worker):
    if worker.index == 0:
        LOCK.acquire()

def test_session_goes_on():
    pass
"""


def test_a_stuck_teardown_fails_and_the_session_goes_on(pytester, run):
    """The session-scoped event loop of pytest-asyncio, which a worker left a task
    on that will not be cancelled, and a fixture waiting for a lock a worker kept."""
    pytester.makepyfile(test_left=LEFT_BEHIND)
    result = run("--concurrency-timeout=2", "--durations=0", timeout=60)
    result.assert_outcomes(passed=4, errors=2 if WAITS_FOR_TASKS else 1)
    result.stdout.fnmatch_lines([
        "*ERROR at teardown of test_keeps_a_lock[[]thread[]]*",
        "the teardown of test_left.py::test_keeps_a_lock[[]thread[]] did not finish within "
        "2s and made no progress for *s (CPU +0.0?s, the same stack); it was "
        "interrupted so that the session can go on. It was stuck here:",
        '  File "*test_left.py", line *, in needs_the_lock',
        "    with LOCK:",
    ])
    # it looked twice, a second apart (how long that took is the machine's business)
    watched = re.findall(r"made no progress for ([\d.]+)s", result.stdout.str())
    assert watched and all(float(s) >= watchdog.LOOK_AGAIN - 0.05 for s in watched), watched
    durations = [re.fullmatch(r"([\d.]+)s teardown +(\S+)", line.strip())
                 for line in result.stdout.lines]
    teardowns = {m[2]: float(m[1]) for m in durations if m}
    # interrupted as stuck, long before the cap a teardown still working may go on to
    bound = 2 * TIMEOUT_CAP_FACTOR
    assert teardowns["test_left.py::test_keeps_a_lock[thread]"] < bound
    if not WAITS_FOR_TASKS:
        return
    result.stdout.fnmatch_lines([
        "*ERROR at teardown of test_session_goes_on*",
        "the teardown of test_left.py::test_session_goes_on did not finish within 2s*",
        "*in _cancel_all_tasks*",
        "tasks still pending on the event loop it was waiting for*",
        "  Task-*: <coroutine object stubborn at *> at *test_left.py:*",
    ])
    assert teardowns["test_left.py::test_session_goes_on"] < bound
