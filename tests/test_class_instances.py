"""Plain test classes under per-worker fixtures: every call of the body (each
worker, each iteration) runs on an instance of its own, with its own
``setup_method``/``teardown_method`` and the class's own fixtures bound to it,
as pytest makes one instance per test.  With shared fixtures the workers share
pytest's one instance, and a failure says so when the test kept state on it."""

import pytest

from pytest_concurrency import instances

# The shape of CPython's queue tests (Lib/test/test_queue.py), as a pytest class:
# a trigger thread and a running sum kept on ``self``, set up by setup_method.
QUEUE_SUITE = """
import queue
import pytest
import threading

class TestQueue:
    def setup_method(self):
        self.cum = 0
        self.cumlock = threading.Lock()
        self.q = queue.Queue()

    def teardown_method(self):
        assert self.q.empty()

    def worker(self):
        while True:
            x = self.q.get()
            if x < 0:
                self.q.task_done()
                return
            with self.cumlock:
                self.cum += x
            self.q.task_done()

    def test_queue_join(self, barrier):
        threads = [threading.Thread(target=self.worker) for _ in range(2)]
        for thread in threads:
            thread.start()
        barrier.wait()  # every worker's consumers are running before anyone puts
        for i in range(100):
            self.q.put(i)
        self.q.join()
        assert self.cum == sum(range(100))
        for _ in threads:
            self.q.put(-1)
        self.q.join()
        for thread in threads:
            thread.join()

    def _trigger(self, fn, args):
        self.started.set()
        fn(*args)

    def do_blocking_test(self, block_func, block_args, trigger_func, trigger_args):
        self.started = threading.Event()
        self.trigger = threading.Thread(target=self._trigger, args=(trigger_func, trigger_args))
        self.trigger.start()
        try:
            self.result = block_func(*block_args)
            assert self.started.is_set()
            return self.result
        finally:
            self.trigger.join()

    def test_blocking_get(self, worker, barrier):
        barrier.wait()
        assert self.do_blocking_test(self.q.get, (), self.q.put, (worker.index,)) == worker.index


class TestOwnIndex:
    \"\"\"A class-level autouse fixture keeps the worker on self.\"\"\"

    @pytest.fixture(autouse=True)
    def _remember(self, worker):
        self.idx = worker.index

    def test_sees_its_own_worker(self, worker, barrier):
        barrier.wait()  # every call's fixture has run before anyone looks
        assert self.idx == worker.index
"""


@pytest.mark.parametrize("mode", ["thread", "process", "hybrid"])
def test_a_queue_style_suite_passes_under_apply(pytester, run, mode):
    pytester.makepyfile(test_queue_style=QUEUE_SUITE)
    result = run(f"--concurrency-apply={mode}", "--concurrency-workers=4",
                 "--concurrency-iterations=2")
    result.assert_outcomes(passed=3)


COUNTED = """
import threading
import pytest

CALLS = []  # the instance of every setup_method (kept: no id is reused)
LOCK = threading.Lock()

class TestCounted:
    def setup_method(self, method):
        self.setups = getattr(self, "setups", 0) + 1
        with LOCK:
            CALLS.append(self)

    def teardown_method(self, method):
        self.setups -= 1

    def test_once_per_call(self, worker, barrier):
        barrier.wait()
        assert self.setups == 1
        self.mine = worker.index
        barrier.wait()
        assert self.mine == worker.index

def test_every_call_set_its_instance_up_once():
    assert len(CALLS) == EXPECTED
    assert len({id(instance) for instance in CALLS}) == DISTINCT
"""


def test_setup_method_runs_once_per_call_on_its_own_instance(pytester, run):
    pytester.makepyfile(test_counted=COUNTED.replace("EXPECTED", "4 * 2")
                        .replace("DISTINCT", "len(CALLS)"))
    result = run("--concurrency-apply=thread", "--concurrency-workers=4",
                 "--concurrency-iterations=2")
    result.assert_outcomes(passed=2)


def test_shared_fixtures_keep_one_instance(pytester, run):
    """With shared fixtures pytest's one instance serves every worker, its
    setup_method run once (today's behaviour, what a marked test asks for)."""
    pytester.makepyfile(test_counted=COUNTED.replace("EXPECTED", "1").replace("DISTINCT", "1")
                        .replace("assert self.mine == worker.index", "pass"))
    result = run("--concurrency-apply=thread", "--concurrency-workers=4",
                 "--concurrency-fixtures=shared")
    result.assert_outcomes(passed=2)


def test_a_test_without_fixtures_gets_an_instance_per_call(pytester, run):
    pytester.makepyfile(test_plain="""
        class TestPlain:
            def test_keeps_a_list(self, barrier):
                self.items = []
                barrier.wait()
                self.items.append(1)
                barrier.wait()
                assert self.items == [1]
    """)
    result = run("--concurrency-apply=thread", "--concurrency-workers=4",
                 "--concurrency-iterations=2")
    result.assert_outcomes(passed=1)
    result = run("--concurrency-apply=explore", "--concurrency-schedules=5")
    result.assert_outcomes(passed=1)


def test_an_async_method_gets_its_own_instance(pytester, run):
    pytester.makepyfile(test_async_class="""
        import asyncio
        import pytest

        class TestAsync:
            @pytest.fixture(autouse=True)
            def _remember(self, worker):
                self.idx = worker.index

            async def test_plain_async(self, worker, barrier):
                barrier.wait()
                await asyncio.sleep(0)
                assert self.idx == worker.index

            @pytest.mark.asyncio
            async def test_pytest_asyncio(self, worker, barrier):
                barrier.wait()
                await asyncio.sleep(0)
                assert self.idx == worker.index
    """)
    result = run("--concurrency-apply=thread", "--concurrency-workers=4")
    result.assert_outcomes(passed=2)


SHARED_FAILURE = """
import pytest

class TestShared:
    @pytest.mark.concurrency(workers=4)
    def test_keeps_a_total(self, barrier):
        self.total = 0
        barrier.wait()
        self.total += 1
        barrier.wait()
        assert self.total == 1

    @pytest.mark.concurrency(workers=4)
    def test_keeps_nothing(self, worker):
        assert worker.index == 0
"""


def test_a_failure_on_a_shared_instance_says_so_when_it_kept_state(pytester, run):
    pytester.makepyfile(test_shared=SHARED_FAILURE)
    result = run()
    result.assert_outcomes(failed=2)
    out = result.stdout.str()
    kept = out.split("test_keeps_a_total[thread] _")[1].split("test_keeps_nothing[thread] _")[0]
    assert ("note: every worker ran on one instance of TestShared (fixtures='shared'), and "
            "the test keeps state on it (self.total): what one worker stores there, the "
            "others see.") in " ".join(kept.split())
    nothing = out.split("test_keeps_nothing[thread] _")[1]
    assert "note: every worker ran on one instance" not in nothing


def test_a_shared_testcase_instance_is_named_too(pytester, run):
    pytester.makepyfile(test_case="""
        import unittest
        import pytest

        class TestShared(unittest.TestCase):
            @pytest.mark.concurrency(workers=4)
            def test_keeps_a_total(self):
                self.total = getattr(self, "total", 0) + 1
                self.assertEqual(self.total, 1)
    """)
    result = run()
    result.assert_outcomes(failed=1)
    assert "on one instance of TestShared (fixtures='shared'), and the test keeps state " \
        "on it (self.total)" in " ".join(result.stdout.str().split())


# ---------------------------------------------------------------- units


class Case:
    def method(self, value):
        return self, value


def test_method_function_finds_the_function_through_wrappers():
    case = Case()

    def wrapper():
        pass

    wrapper.__wrapped__ = case.method
    assert instances.method_function(case.method, case) is Case.method
    assert instances.method_function(wrapper, case) is Case.method
    assert instances.method_function(Case().method, case) is None  # another instance's
    assert instances.method_function(wrapper.__call__, case) is None  # no method of it


def test_own_instance_calls_on_the_given_instance_or_a_new_one():
    own = instances.OwnInstance(Case.method, Case)
    given = Case()
    assert own(1, **{instances.INSTANCE: given}) == (given, 1)
    first, _ = own(2)
    second, _ = own(3)
    assert isinstance(first, Case) and first is not second and first is not given


def test_kept_state_is_what_a_new_instance_lacks():
    case = Case()
    assert instances.kept_state(case) == []
    assert instances.shared_note(case) is None
    case.total, case.trigger = 1, None
    assert instances.kept_state(case) == ["total", "trigger"]
    assert "(self.total, self.trigger)" in instances.shared_note(case)
