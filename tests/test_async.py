"""Async tests in every mode: each worker runs the coroutine on an event loop of its
own (pytest-asyncio in strict and auto mode, any loop scope; anyio; a plain
marked ``async def``); where a test's async fixtures are bound to a loop the
workers cannot share, it runs serially and says so: never a hang, never "event
loop is already running"."""

import json

import pytest

pytest_asyncio = pytest.importorskip("pytest_asyncio")
pytest.importorskip("anyio")

# pytest-asyncio before 1.0 (the one that runs on pytest 8.2) claims every async fixture
# in auto mode, anyio's too: such a fixture then runs on each worker's own asyncio loop
CLAIMS_ANYIO_FIXTURES = int(pytest_asyncio.__version__.split(".")[0]) < 1

ASYNCIO = """
import asyncio
import threading
import pytest, pytest_asyncio

LOOPS = set()

@pytest_asyncio.fixture
async def queue():
    q = asyncio.Queue()
    await q.put(1)
    yield q
    assert q.empty()  # the test took its item: this instance was used

@pytest.mark.asyncio
async def test_function_loop(queue):
    LOOPS.add(asyncio.get_running_loop())  # the loop itself: ids of closed loops are reused
    assert await queue.get() == 1

@pytest.mark.asyncio(loop_scope="session")
async def test_session_loop_without_fixtures():
    await asyncio.sleep(0.001)

@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def session_event():
    return asyncio.Event()

@pytest.mark.asyncio(loop_scope="session")
async def test_session_fixture(session_event):
    assert not session_event.is_set()

def test_workers_had_loops_of_their_own(request):
    if request.config.getoption("concurrency_apply") == "thread":
        assert len(LOOPS) >= 4
"""

ANYIO = """
import anyio
import pytest

pytestmark = pytest.mark.anyio

@pytest.fixture
def anyio_backend():
    return "asyncio"

async def test_anyio_plain():
    await anyio.sleep(0.001)

@pytest.fixture
async def stream():
    send, receive = anyio.create_memory_object_stream(1)
    yield send, receive

async def test_anyio_fixture(stream):
    send, receive = stream
    await send.send(1)
    assert await receive.receive() == 1
"""

SERIAL = {
    "test_session_fixture": "async fixture 'session_event' runs on a session-scoped event loop "
                            "that the workers cannot share",
    "test_anyio_fixture": "async fixture 'stream' runs on anyio's test runner, one event loop "
                          "the workers cannot share",
}


@pytest.mark.parametrize("asyncio_mode", ["strict", "auto"])
@pytest.mark.parametrize("mode", ["thread", "process"])
def test_async_suites_pass_under_apply(pytester, mode, asyncio_mode):
    pytester.makepyfile(test_aio=ASYNCIO, test_any=ANYIO)
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", f"--concurrency-apply={mode}", "--concurrency-workers=4",
        "-o", f"asyncio_mode={asyncio_mode}", "--concurrency-report=r.json", timeout=120)
    result.assert_outcomes(passed=6)
    assert "already running" not in result.stdout.str()
    for entry in json.loads((pytester.path / "r.json").read_text())["tests"]:
        name = entry["nodeid"].split("::")[1].split("[")[0]
        expected = ("serial", SERIAL[name]) if name in SERIAL else ("passed", None)
        if name == "test_anyio_fixture" and asyncio_mode == "auto" and CLAIMS_ANYIO_FIXTURES:
            expected = ("passed", None)
        assert (entry["outcome"], entry["serial"]) == expected, entry["nodeid"]


def test_the_filelock_shaped_suite_no_longer_hangs(pytester):
    """A session-scoped loop for every test, as filelock's suite configures it: the
    workers each run on their own loop, and the session ends."""
    pytester.makeini("[pytest]\nasyncio_mode = auto\n"
                     "asyncio_default_fixture_loop_scope = session\n"
                     "asyncio_default_test_loop_scope = session\n")
    pytester.makepyfile("""
        import asyncio

        async def test_one():
            await asyncio.sleep(0.01)

        async def test_two():
            await asyncio.sleep(0.01)
    """)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider",
                                           "--concurrency-apply=thread", timeout=60)
    result.assert_outcomes(passed=2)


def test_a_marked_async_whole_body_test_gets_worker_and_an_awaitable_barrier(pytester):
    pytester.makepyfile("""
        import asyncio
        import pytest

        ARRIVED = []

        @pytest.mark.concurrency(modes=["thread", "process"], workers=3)
        async def test_meets(worker, barrier):
            await asyncio.sleep(0.001 * worker.index)
            ARRIVED.append(worker.index)
            await barrier.wait_async()
            if worker.mode == "thread":
                assert sorted(ARRIVED) == [0, 1, 2]
    """)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
