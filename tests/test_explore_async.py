"""explore mode for asyncio through pytest: an async whole-body test's workers and
coroutine actors are tasks on one event loop, switched at their awaits, on a
virtual clock; findings replay, deadlocks are named at once, fixed code is
verified, and pytest-asyncio's and anyio's markers keep working."""

import json
import os
import re
import shlex
import subprocess
import sys

import pytest

from pytest_concurrency.explore.selftest import problem

pytest.importorskip("pytest_asyncio")
pytest.importorskip("anyio")

CACHE = """
import asyncio
import pytest


class Cache:
    def __init__(self):
        self.values = {}
        self.fetches = 0
        self.lock = asyncio.Lock()

    async def fetch(self, key):
        await asyncio.sleep(0.1)  # the database
        self.fetches += 1
        return key.upper()

    async def get(self, key):
        if key not in self.values:
            self.values[key] = await self.fetch(key)
        return self.values[key]

    async def get_user(self):
        return await self.get("user")

    async def get_locked(self, key="user"):
        async with self.lock:
            if key not in self.values:
                self.values[key] = await self.fetch(key)
        return self.values[key]


@pytest.fixture
def cache():
    return Cache()


@pytest.mark.concurrency(modes=["explore"], seed=1)
async def test_fetched_once(cache, barrier):
    assert await cache.get("user") == "USER"
    await barrier.wait_async()
    assert cache.fetches == 1


@pytest.mark.concurrency(modes=["explore"], strategy="dpor")
async def test_fetched_once_locked(cache, barrier):
    assert await cache.get_locked("user") == "USER"
    await barrier.wait_async()
    assert cache.fetches == 1


@pytest.mark.concurrency(modes=["explore"], seed=2)
def test_actors(concurrency):
    outcomes = concurrency.run_actors(Cache.get_user, Cache.get_user, setup=Cache,
                                      arbiter=lambda c: c.fetches)
    outcomes.expect(1)


@pytest.mark.concurrency(modes=["explore"], strategy="dpor")
def test_actors_locked(concurrency):
    outcomes = concurrency.run_actors(Cache.get_locked, Cache.get_locked, setup=Cache,
                                      arbiter=lambda c: c.fetches)
    outcomes.expect(1)
"""


INI = "[pytest]\nasyncio_default_fixture_loop_scope = function\n"


def _command(text):
    found = re.findall(r"^\s*(pytest '[^']+' --concurrency-replay=\S+)$", text, re.M)
    assert found, text
    return found[0]


@pytest.fixture
def project(pytester):
    pytester.makeini(INI)
    pytester.makepyfile(test_cache=CACHE)
    return pytester


def test_an_async_race_is_found_with_its_interleaving_and_a_replay_command(project):
    result = project.runpytest("-p", "no:cacheprovider", "-k", "test_fetched_once and not "
                               "locked")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "*explore found an assertion in schedule * (strategy=pct, seed=1, granularity=await, "
        "2 workers, * steps)*",
        "interleaving:",
        "step | worker 0 * | worker 1*",
        "*test_cache.py:12  await asyncio.sleep(0.1)  # the database*",
        "replay it with:",
        "  pytest 'test_cache.py::test_fetched_once?explore?' --concurrency-replay=x1.*",
        "*1 schedule explored (strategy=pct, seed=1, 2 workers, Python *, asyncio awaits)",
    ])


def test_the_printed_replay_command_fails_again_as_printed_in_a_fresh_process(project):
    first = project.runpytest_subprocess("-p", "no:cacheprovider", "-k",
                                         "test_fetched_once and not locked")
    first.assert_outcomes(failed=1)
    command = _command(first.stdout.str())
    schedule = re.search(r"explore found an assertion in schedule (\d+)", first.stdout.str())
    argv = shlex.split(command)
    assert argv[0] == "pytest"
    again = subprocess.run([sys.executable, "-m", *argv, "-p", "no:cacheprovider"],
                           cwd=project.path, capture_output=True, text=True, timeout=120,
                           env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
    assert again.returncode == 1, again.stdout + again.stderr
    assert f"explore found an assertion in schedule {schedule.group(1)} " in again.stdout
    assert "assert 2 == 1" in again.stdout
    assert "1 failed" in again.stdout


def test_coroutine_actors_are_tasks_with_a_tally_and_a_replay_per_outcome(project):
    result = project.runpytest("-p", "no:cacheprovider", "-k", "test_actors", "-rP")
    result.assert_outcomes(failed=1, passed=1)
    result.stdout.fnmatch_lines([
        "E*of 200 rounds had outcomes other than 1:",
        "E*schedule * produced 2:",
        "E*replay it with:",
        "E*pytest 'test_cache.py::test_actors?explore?' --concurrency-replay=x1.*",
        # under asyncio's FIFO order the locked fetch has one interleaving only
        "*verified: * explored, no failure (complete, no preemption "
        "bound; strategy=dpor, * 2 workers, Python *, asyncio awaits)",
    ])


def test_the_locked_cache_is_verified_and_the_report_says_so(project):
    result = project.runpytest("-p", "no:cacheprovider", "-k", "locked",
                               "--concurrency-report=r.json")
    result.assert_outcomes(passed=2)
    tests = {entry["nodeid"]: entry for entry in
             json.loads((project.path / "r.json").read_text())["tests"]}
    body = tests["test_cache.py::test_fetched_once_locked[explore]"]["exploration"]
    assert body["complete"] is True
    assert body["verdict"].startswith("verified: ")
    assert body["virtual_time"] == pytest.approx(0.1)


def test_a_deadlock_between_asyncio_locks_is_named_at_once(pytester):
    pytester.makepyfile("""
        import asyncio
        import pytest

        class Accounts:
            def __init__(self):
                self.ledger = asyncio.Lock()
                self.audit = asyncio.Lock()

        async def transfer(accounts):
            async with accounts.ledger:
                await asyncio.sleep(0)
                async with accounts.audit:
                    pass

        async def report(accounts):
            async with accounts.audit:
                await asyncio.sleep(0)
                async with accounts.ledger:
                    pass

        @pytest.mark.concurrency(modes=["explore"], seed=0, timeout=600)
        def test_abba(concurrency):
            concurrency.run_actors(transfer, report, setup=Accounts)
    """)
    result = pytester.runpytest("-p", "no:cacheprovider", "--concurrency-report=r.json")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "*deadlock: every unfinished task is waiting, and no timer or thread will wake one; "
        "wait-for cycle worker ? -> worker ? -> worker ?",
        "*worker 0 holds accounts.ledger (*.py:10) and waits for accounts.audit (*.py:12), "
        "held by worker 1",
        "*worker 1 holds accounts.audit (*.py:16) and waits for accounts.ledger (*.py:18), "
        "held by worker 0",
    ])
    exploration = json.loads((pytester.path / "r.json").read_text())["tests"][0]["exploration"]
    assert exploration["schedules"] <= 3  # found by running, not by waiting for a timeout


def test_a_thirty_second_sleep_explores_on_the_virtual_clock(pytester):
    pytester.makepyfile("""
        import asyncio
        import pytest

        @pytest.mark.concurrency(modes=["explore"], schedules=40, seed=0)
        async def test_slow(worker):
            start = asyncio.get_running_loop().time()
            await asyncio.sleep(30)
            assert asyncio.get_running_loop().time() - start == 30
    """)
    result = pytester.runpytest("-p", "no:cacheprovider", "--concurrency-report=r.json")
    result.assert_outcomes(passed=1)
    exploration = json.loads((pytester.path / "r.json").read_text())["tests"][0]["exploration"]
    assert exploration["schedules"] == 40
    assert exploration["virtual_time"] == 30


def test_a_timeout_that_fires_in_one_order_and_not_in_another_is_explored(pytester):
    pytester.makepyfile("""
        import asyncio
        import pytest

        class Job:
            def __init__(self):
                self.done = asyncio.Event()

        async def waits(job):
            try:
                await asyncio.wait_for(job.done.wait(), timeout=5)
                return "in time"
            except TimeoutError:
                return "timed out"

        async def works(job):
            await asyncio.sleep(5)
            job.done.set()
            return "worked"

        @pytest.mark.concurrency(modes=["explore"], strategy="dpor")
        def test_deadline(concurrency):
            outcomes = concurrency.run_actors(waits, works, setup=Job)
            assert set(outcomes) == {("in time", "worked"), ("timed out", "worked")}
    """)
    result = pytester.runpytest("-p", "no:cacheprovider", "-rP")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*verified: all * distinct interleavings explored*"])


def test_a_thread_outside_the_schedule_is_never_verified_and_says_where(pytester):
    pytester.makepyfile("""
        import asyncio
        import time
        import pytest

        @pytest.mark.concurrency(modes=["explore"], strategy="dpor", schedules=20)
        async def test_offloaded(worker):
            await asyncio.to_thread(time.sleep, 0)
    """)
    result = pytester.runpytest("-p", "no:cacheprovider", "-rP")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines([
        "*no failure in * schedule*; not complete (a thread outside the schedule, at "
        "test_a_thread_outside_the_schedule_is_never_verified_and_says_where.py:7)*"])


def test_pytest_asyncio_and_anyio_markers_keep_working(pytester):
    pytester.makeini(INI)
    pytester.makepyfile("""
        import asyncio
        import anyio
        import pytest
        import pytest_asyncio

        @pytest_asyncio.fixture
        async def queue():
            q = asyncio.Queue()
            await q.put(1)
            yield q

        @pytest.mark.asyncio
        @pytest.mark.concurrency(modes=["explore"], schedules=20)
        async def test_asyncio_marker(worker):
            start = asyncio.get_running_loop().time()
            await asyncio.sleep(1)
            assert asyncio.get_running_loop().time() - start == 1

        @pytest.mark.asyncio
        @pytest.mark.concurrency(modes=["explore"], schedules=20)
        async def test_asyncio_fixture(queue):
            assert await queue.get() == 1

        @pytest.fixture(params=["asyncio", "trio"])
        def anyio_backend(request):
            return request.param

        class Counter:
            def __init__(self):
                self.value = 0
                self.lock = anyio.Lock()

            async def increment(self):
                async with self.lock:
                    value = self.value
                    await anyio.sleep(0)
                    self.value = value + 1

        @pytest.mark.anyio
        @pytest.mark.concurrency(modes=["explore"], schedules=30)
        async def test_anyio_body(worker):
            start = anyio.current_time()
            async with anyio.create_task_group() as group:
                group.start_soon(anyio.sleep, 1)
            with anyio.move_on_after(5):
                await anyio.Event().wait()
            assert anyio.current_time() - start == 6

        @pytest.mark.concurrency(modes=["explore"], strategy="dpor")
        def test_anyio_lock_verified(concurrency):
            concurrency.run_actors(Counter.increment, Counter.increment, setup=Counter,
                                   arbiter=lambda c: c.value).expect(2)
    """)
    result = pytester.runpytest("-p", "no:cacheprovider", "-v", "-rs",
                                "--concurrency-report=r.json")
    result.assert_outcomes(passed=4, skipped=1)
    result.stdout.fnmatch_lines([
        "*test_asyncio_fixture?explore?: serial: async fixture 'queue' runs on "
        "pytest-asyncio's event loop, and explore runs the test's tasks on an event loop of "
        "its own; not explored",
        "SKIPPED*explore runs asyncio tasks; anyio's 'trio' backend is not explored (trio is "
        "out of scope: run it in thread mode)",
    ])
    outcomes = {entry["nodeid"].split("::")[1]: entry for entry in
                json.loads((pytester.path / "r.json").read_text())["tests"]}
    assert outcomes["test_asyncio_marker[explore]"]["exploration"]["schedules"] == 20
    assert outcomes["test_anyio_body[explore-asyncio]"]["exploration"]["virtual_time"] == 6
    assert outcomes["test_anyio_lock_verified[explore]"]["exploration"]["complete"] is True


def test_an_async_fixture_on_its_own_loop_is_never_reported_as_explored(pytester):
    # explore runs the tasks on a loop of its own; the fixture's queue lives on
    # pytest-asyncio's: the test runs once, serially, and says so without -v
    pytester.makeini(INI)
    pytester.makepyfile(test_fixture="""
        import asyncio
        import pytest
        import pytest_asyncio

        @pytest_asyncio.fixture
        async def queue():
            q = asyncio.Queue()
            await q.put(1)
            yield q

        @pytest.mark.asyncio
        @pytest.mark.concurrency(modes=["explore"], schedules=20)
        async def test_asyncio_fixture(queue):
            assert await queue.get() == 1
    """)
    result = pytester.runpytest("-p", "no:cacheprovider", "--concurrency-report=r.json")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines([
        "*test_asyncio_fixture?explore? * serial *",
        "1 item ran serially, once, not concurrently: *one event loop",
        "  test_fixture.py::test_asyncio_fixture[explore]: serial: async fixture 'queue' runs "
        "on pytest-asyncio's event loop, and explore runs the test's tasks on an event loop "
        "of its own; not explored",
    ])
    result.stdout.no_fnmatch_line("*schedules explored*")
    (entry,) = json.loads((pytester.path / "r.json").read_text())["tests"]
    assert entry["outcome"] == "serial" and entry["exploration"] is None


def test_a_blocking_barrier_wait_in_an_async_test_is_refused_with_a_sentence(pytester):
    pytester.makepyfile("""
        import pytest

        @pytest.mark.concurrency(modes=["explore"], schedules=5)
        async def test_meets(barrier):
            barrier.wait()
    """)
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*explore runs this test's workers as asyncio tasks on one "
                                 "event loop: wait at the barrier with 'await "
                                 "barrier.wait_async()'*"])


def test_threads_and_tasks_as_actors_of_one_run_are_refused_with_a_sentence(pytester):
    pytester.makepyfile("""
        import pytest

        def plain(state):
            pass

        async def coroutine(state):
            pass

        @pytest.mark.concurrency(modes=["explore"])
        def test_mixed(concurrency):
            concurrency.run_actors(plain, coroutine, setup=dict)

        @pytest.mark.concurrency(modes=["explore"])
        def test_mixed_with_a_lambda(concurrency):
            concurrency.run_actors(lambda state: coroutine(state), plain, setup=dict)
    """)
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines([
        "*explore runs an exploration's workers either as threads or as asyncio tasks: "
        "actor 0 (plain) returned None, not a coroutine, while actor 1 (coroutine) is a "
        "coroutine*",
        "*explore runs an exploration's workers either as threads or as asyncio tasks: "
        "actor 1 (plain) returned None, not a coroutine, while actor 0 (*<lambda>) is a "
        "coroutine*"])
    assert "Traceback" not in result.stdout.str()
    assert "replay" not in result.stdout.str()


def test_coroutine_actors_in_thread_mode_run_each_on_its_own_loop(pytester):
    pytester.makepyfile("""
        import asyncio
        import threading
        import pytest

        async def where():
            await asyncio.sleep(0)
            return threading.current_thread() is not threading.main_thread()

        @pytest.mark.concurrency(modes=["thread"], workers=2)
        def test_actors(concurrency):
            concurrency.run_actors(where, where, rounds=3).expect((True, True))
    """)
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


def test_an_async_thread_mode_failure_is_reproduced_as_tasks_and_replayed(pytester):
    pytester.makepyfile(test_race="""
        import asyncio
        import pytest

        class Counter:
            def __init__(self):
                self.value = 0

            async def increment(self):
                seen = self.value
                # a round trip to the database: long enough that thread mode's two
                # workers both read before either writes on a busy machine too (10 ms
                # let one worker, started late on a loaded 3.13t, miss the race)
                await asyncio.sleep(0.3)
                self.value = seen + 1

        @pytest.fixture
        def counter():
            return Counter()

        @pytest.mark.concurrency(modes=["thread"], workers=2)
        async def test_increments(counter, barrier):
            await counter.increment()
            await barrier.wait_async()
            assert counter.value == 2, "an update was lost"
    """)
    result = pytester.runpytest("-p", "no:cacheprovider", "--concurrency-reproduce")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "*reproduced under explore (pct, seed 0): AssertionError at test_race.py:24, the same "
        "as in thread mode.",
        "replay it with:",
    ])
    token = _command(result.stdout.str()).split("=")[-1]
    again = pytester.runpytest("-p", "no:cacheprovider", "test_race.py::test_increments[thread]",
                               f"--concurrency-replay={token}")
    again.assert_outcomes(failed=1)
    again.stdout.fnmatch_lines(["*explore found an assertion in schedule 0 (strategy=pct, "
                                "seed=0, granularity=await, 2 workers, * steps)*"])


def test_a_lost_event_wake_up_and_tasks_in_a_task_group_are_explored(pytester):
    pytester.makepyfile(test_jobs="""
        import asyncio
        import pytest

        class Jobs:
            def __init__(self):
                self.pending = []
                self.ready = asyncio.Event()
                self.done = 0

            async def submit(self):
                await asyncio.sleep(0)  # receiving the job
                self.pending.append("build")
                self.ready.set()

            async def next(self):
                if not self.pending:
                    await asyncio.sleep(0)
                    self.ready.clear()
                    await self.ready.wait()
                return self.pending.pop()

            async def run_two(self):
                async def one():
                    done = self.done
                    await asyncio.sleep(0)
                    self.done = done + 1

                async with asyncio.TaskGroup() as group:
                    group.create_task(one())
                    group.create_task(one())

        @pytest.mark.concurrency(modes=["explore"], seed=0)
        def test_worker_gets_the_job(concurrency):
            concurrency.run_actors(Jobs.submit, Jobs.next, setup=Jobs)

        @pytest.mark.concurrency(modes=["explore"], seed=0)
        def test_both_counted(concurrency):
            concurrency.run_actors(Jobs.run_two, setup=Jobs, arbiter=lambda j: j.done).expect(2)
    """)
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines([
        "*deadlock: every unfinished task is waiting, and no timer or thread will wake one",
        "*worker 1 waits for self.ready to be set, which nobody will do (test_jobs.py:19)",
    ])
    result.stdout.fnmatch_lines(["E*of 200 rounds had outcomes other than 2:*"])


def test_a_bug_that_needs_the_second_actor_to_start_first_is_not_verified(pytester):
    """run_actors(a, b) stands for two independent clients: b may start first, and DPOR
    enumerates that order too (it said 'verified' when only a-first was explored)."""
    pytester.makepyfile(test_stock="""
        import asyncio
        import pytest

        class Stock:
            def __init__(self):
                self.items = asyncio.Queue()

            async def restock(self):
                await self.items.put("widget")

            async def buy(self):
                if self.items.empty():  # sold out: come back later
                    await asyncio.sleep(0)
                    return None
                return self.items.get_nowait()

            async def buy_waiting(self):
                return await self.items.get()  # waits for the restock

        @pytest.mark.concurrency(modes=["explore"], strategy="dpor")
        def test_bought(concurrency):
            concurrency.run_actors(Stock.restock, Stock.buy, setup=Stock,
                                   expect=[(None, "widget")])

        @pytest.mark.concurrency(modes=["explore"], strategy="dpor")
        def test_bought_waiting(concurrency):
            concurrency.run_actors(Stock.restock, Stock.buy_waiting, setup=Stock,
                                   expect=[(None, "widget")])
    """)
    result = pytester.runpytest("-p", "no:cacheprovider", "-v")
    result.assert_outcomes(failed=1, passed=1)
    result.stdout.fnmatch_lines(["*test_bought*FAILED*", "*verified:*complete*"])
    assert "test_bought[explore] PASSED" not in result.stdout.str()


MODULE_PRIMITIVES = """
import asyncio
import pytest

LOCK = asyncio.Lock()
READY = asyncio.Event()
JOBS = asyncio.Queue()
SLOTS = asyncio.Semaphore(1)
A, B = asyncio.Lock(), asyncio.Lock()
SCHEDULES = []


class Counter:
    def __init__(self):
        self.n = 0
        READY.clear()  # the module's state, reset by the setup as any state


async def producer(c):
    SCHEDULES.append(asyncio.get_running_loop())
    async with SLOTS:
        await asyncio.sleep(0)
    READY.set()
    async with LOCK:
        n = c.n
        await asyncio.sleep(0)
        c.n = n + 1
    await asyncio.sleep(0)
    await JOBS.put("job")


async def consumer(c):
    await READY.wait()
    async with SLOTS:
        await asyncio.sleep(0)
    async with LOCK:
        n = c.n
        await asyncio.sleep(0)
        c.n = n + 1
    return await JOBS.get()


async def unlocked(c):
    async with SLOTS:  # one slot, released before the write: no protection
        n = c.n
    await asyncio.sleep(0)
    c.n = n + 1


async def ab(c):
    async with A:
        await asyncio.sleep(0)
        async with B:
            pass


async def ba(c):
    async with B:
        await asyncio.sleep(0)
        async with A:
            pass


@pytest.mark.concurrency(modes=["explore"], strategy="dpor")
def test_abba(concurrency):
    concurrency.run_actors(ab, ba, setup=Counter)


def test_one_loop_per_exploration():
    assert len(SCHEDULES) > 30 and len(set(SCHEDULES)) == 1  # one for the whole run
"""
TESTS_PER_STRATEGY = """

@pytest.mark.concurrency(modes=["explore"], strategy="{0}", schedules=30, seed=0)
def test_module_primitives_{0}(concurrency):
    concurrency.run_actors(producer, consumer, setup=Counter, arbiter=lambda c: c.n,
                           expect=[2])


@pytest.mark.concurrency(modes=["explore"], strategy="{0}", schedules=30, seed=0)
def test_lost_update_{0}(concurrency):
    concurrency.run_actors(unlocked, unlocked, setup=Counter, arbiter=lambda c: c.n,
                           expect=[2])
"""


def test_module_level_asyncio_primitives_work_in_every_schedule_of_an_exploration(pytester):
    """A module-level asyncio.Lock, Event, Queue and Semaphore bind to the loop they
    are first used on; a program has one loop for its run, and so does an exploration:
    they work in every schedule, with every strategy, and bugs are still found."""
    strategies = ("pct", "random", "dfs", "dpor")
    # test_one_loop_per_exploration runs last: after the four explorations it counts
    head, tail = MODULE_PRIMITIVES.split("\n\ndef test_one_loop_per_exploration")
    pytester.makepyfile(test_module_state=head + "".join(
        TESTS_PER_STRATEGY.format(strategy) for strategy in strategies) +
        "\n\ndef test_one_loop_per_exploration" + tail)
    result = pytester.runpytest("-p", "no:cacheprovider", "-v")
    out = result.stdout.str()
    assert "bound to a different event loop" not in out
    for strategy in strategies:
        result.stdout.fnmatch_lines([f"*test_module_primitives_{strategy}?explore? PASSED*"])
        result.stdout.fnmatch_lines([f"*test_lost_update_{strategy}?explore? FAILED*"])
    result.stdout.fnmatch_lines(["*test_module_primitives_dpor?explore? * passed *",
                                 "*explore: verified: all * distinct interleavings*"])
    result.stdout.fnmatch_lines(["deadlock: every unfinished task is waiting*",
                                 "  worker 0 waits for B (test_module_state.py:*)",
                                 "  worker 1 waits for A (test_module_state.py:*)"])
    assert "the body is not deterministic" not in out  # the deadlock replays
    result.stdout.fnmatch_lines(
        ["  pytest 'test_module_state.py::test_abba[[]explore[]]' --concurrency-replay=*"])
    result.assert_outcomes(passed=5, failed=5)


LAMBDA_ACTORS = """
import asyncio
import pytest


class Account:
    def __init__(self):
        self.balance = 100

    async def withdraw(self, amount):
        seen = self.balance
        await asyncio.sleep(0)  # the database
        self.balance = seen - amount


@pytest.mark.concurrency(modes=["explore", "thread"], strategy="dpor")
def test_withdrawals(concurrency):
    concurrency.run_actors(lambda a: a.withdraw(30), lambda a: a.withdraw(30),
                           setup=Account, arbiter=lambda a: a.balance, forbid=[70])
"""


# a lambda is explored as a thread first (only its call shows it returns a coroutine):
# dpor for threads, which this test asks for, runs where its self-test passes
@pytest.mark.skipif(problem() is not None, reason=f"dpor: {problem()}")
def test_lambdas_that_return_coroutines_are_awaited_as_tasks(pytester):
    pytester.makepyfile(test_withdraw=LAMBDA_ACTORS)
    result = pytester.runpytest("-p", "no:cacheprovider", "-W", "error::RuntimeWarning",
                                "test_withdraw.py::test_withdrawals[explore]")
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    result.stdout.fnmatch_lines(["*the outcome 70 is forbidden*", "*granularity=await*",
                                 "*--concurrency-replay=*"])
    assert "verified:" not in out
    assert "never awaited" not in out + result.stderr.str()
    # the printed command replays the lost update, as tasks
    token = re.search(r"--concurrency-replay=(\S+)", out).group(1)
    again = pytester.runpytest("-p", "no:cacheprovider",
                               "test_withdraw.py::test_withdrawals[explore]",
                               f"--concurrency-replay={token}")
    again.assert_outcomes(failed=1)
    again.stdout.fnmatch_lines(["*the outcome 70 is forbidden*"])


def test_lambdas_that_return_coroutines_run_in_thread_mode_too(pytester):
    pytester.makepyfile(test_withdraw=LAMBDA_ACTORS)
    result = pytester.runpytest("-p", "no:cacheprovider", "-W", "error::RuntimeWarning",
                                "test_withdraw.py::test_withdrawals[thread]")
    result.assert_outcomes(passed=1)  # each on a loop of its own: the race is rarely hit
    assert "never awaited" not in result.stdout.str() + result.stderr.str()


def test_run_of_an_async_function_returns_its_values_in_every_mode(pytester):
    pytester.makepyfile("""
        import asyncio
        import pytest

        async def answer():
            await asyncio.sleep(0)
            return 42

        @pytest.mark.concurrency(modes=["thread", "process", "hybrid", "explore"],
                                 workers=2)
        def test_run(concurrency):
            assert list(concurrency.run(answer)) == [42, 42]
            assert list(concurrency.run(lambda: answer())) == [42, 42]
    """)
    result = pytester.runpytest("-p", "no:cacheprovider", "-W", "error::RuntimeWarning")
    result.assert_outcomes(passed=4)


def test_a_coroutine_that_never_gives_the_loop_back_is_bounded_by_the_timeout(pytester):
    pytester.makepyfile(test_spin="""
        import threading
        import pytest

        class Flag:
            go = False

        async def spins(flag):
            while not flag.go:
                pass

        async def returns(flag):
            return None

        # seed 0: the spinning actor starts first (either may), the other is never started
        @pytest.mark.concurrency(modes=["explore"], timeout=1, seed=0)
        def test_spins(concurrency):
            concurrency.run_actors(spins, returns, setup=Flag)

        def test_after():
            left = [t for t in threading.enumerate() if t.name == "explore-worker-loop"]
            for thread in left:  # stopped: it ends (at once, unless the machine is busy)
                thread.join(30)
            assert not [thread for thread in left if thread.is_alive()]
    """)
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1, passed=1)
    result.stdout.fnmatch_lines([
        "*explore's time limit (1 s) ran out in schedule 0, before any schedule finished:",
        "worker 0 still running after * s (blocking the loop at test_spin.py:8: *)",
        "worker 1 not started after * steps (ready to start)"])
    out = result.stdout.str()
    assert "deadlock" not in out
    result.stdout.fnmatch_lines(["the run failed in explore mode (1 distinct failure)"])


def test_skip_xfail_and_keyboard_interrupt_in_an_explored_body_as_in_thread_mode(pytester):
    pytester.makepyfile(test_bodies="""
        import asyncio
        import pytest

        @pytest.mark.concurrency(modes=["explore", "thread"], workers=2)
        def test_skip(worker):
            if worker.index == 1:
                pytest.skip("not on this platform")

        @pytest.mark.concurrency(modes=["explore", "thread"], workers=2)
        async def test_async_skip(worker):
            await asyncio.sleep(0)
            pytest.skip("not on this loop")

        @pytest.mark.concurrency(modes=["explore", "thread"], workers=2)
        def test_xfail(worker):
            pytest.xfail("known broken")

        @pytest.mark.concurrency(modes=["explore", "thread"], workers=2)
        async def test_async_interrupt(worker):
            await asyncio.sleep(0)
            raise KeyboardInterrupt

        def test_after():
            pass
    """)
    result = pytester.runpytest("-p", "no:cacheprovider", "-rsx")
    result.assert_outcomes(skipped=4, xfailed=2, failed=2, passed=1)
    result.stdout.fnmatch_lines(["SKIPPED * test_bodies.py:7: not on this platform",
                                 "SKIPPED * test_bodies.py:12: not on this loop"])
    result.stdout.fnmatch_lines(["*worker * raised KeyboardInterrupt*"])
