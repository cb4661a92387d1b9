"""explore mode through pytest: findings, replay commands, deadlocks, outcomes."""

import re

LOST_UPDATE = """
import threading
import pytest

class Counter:
    def __init__(self):
        self.value = 0

    def increment(self):
        self.value += 1

class SafeCounter(Counter):
    def __init__(self):
        super().__init__()
        self.lock = threading.Lock()

    def increment(self):
        with self.lock:
            self.value += 1

@pytest.fixture
def counter():
    return Counter()

CREATED = []

@pytest.fixture
def fresh(counter):
    CREATED.append(counter)
    return counter

@pytest.mark.concurrency(modes=["explore"], seed=3)
def test_whole_body(fresh, worker, barrier):
    fresh.increment()
    barrier.wait()
    assert fresh.value == 2, f"worker {worker.index} lost an update"

@pytest.mark.concurrency(modes=["explore"], seed=3, schedules=20)
def test_fixtures_are_fresh_for_every_schedule(counter):
    counter.increment()
    counter.increment()

def test_twenty_one_counters_were_made():
    # test_whole_body failed on its first failing schedule; the other made 20
    assert len(set(map(id, CREATED))) == len(CREATED)

@pytest.mark.concurrency(modes=["explore"], seed=1)
def test_actors(concurrency):
    outcomes = concurrency.run_actors(Counter.increment, Counter.increment,
                                      setup=Counter, arbiter=lambda c: c.value)
    outcomes.expect(2)

@pytest.mark.concurrency(modes=["explore"], seed=1)
def test_actors_fixed(concurrency):
    outcomes = concurrency.run_actors(SafeCounter.increment, SafeCounter.increment,
                                      setup=SafeCounter, arbiter=lambda c: c.value)
    outcomes.expect(2)
    assert outcomes.total() == 200
"""


def _token(text):
    found = re.findall(r"--concurrency-replay=(\S+)", text)
    assert found, text
    return found[0]


def test_whole_body_race_is_found_with_interleaving_and_replay_command(pytester):
    pytester.makepyfile(test_counter=LOST_UPDATE)
    result = pytester.runpytest("-p", "no:cacheprovider", "-k", "whole_body")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "*explore found an assertion in schedule * (strategy=pct, seed=3, "
        "granularity=access, 2 workers, * steps)*",
        "interleaving:",
        "step | worker 0 * | worker 1*",
        "*test_counter.py:* self.value += 1*",
        "replay it with:",
        "  pytest 'test_counter.py::test_whole_body?explore?' --concurrency-replay=x1.*",
    ])


def test_replay_reproduces_the_failure_ten_times_out_of_ten(pytester):
    pytester.makepyfile(test_counter=LOST_UPDATE)
    first = pytester.runpytest("-p", "no:cacheprovider", "-k", "whole_body")
    token = _token(first.stdout.str())
    schedule = re.search(r"explore found an assertion in schedule (\d+)", first.stdout.str())
    for _ in range(10):
        again = pytester.runpytest("-p", "no:cacheprovider",
                                   "test_counter.py::test_whole_body[explore]",
                                   f"--concurrency-replay={token}")
        again.assert_outcomes(failed=1)
        again.stdout.fnmatch_lines([
            f"*explore found an assertion in schedule {schedule.group(1)} *",
            "*lost an update*",
        ])


def test_replay_of_changed_code_says_it_diverged(pytester):
    pytester.makepyfile(test_counter=LOST_UPDATE)
    token = _token(pytester.runpytest("-p", "no:cacheprovider", "-k", "whole_body")
                   .stdout.str())
    pytester.makepyfile(test_counter=LOST_UPDATE.replace(
        "        self.value += 1\n\nclass Safe",
        "        self.calls = getattr(self, 'calls', 0) + 1\n"
        "        self.value += 1\n\nclass Safe"))
    result = pytester.runpytest("-p", "no:cacheprovider", "-k", "whole_body",
                                f"--concurrency-replay={token}")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*replay diverged*"])


def test_run_actors_tallies_schedules_and_offers_a_replay_per_outcome(pytester):
    pytester.makepyfile(test_counter=LOST_UPDATE)
    result = pytester.runpytest("-p", "no:cacheprovider", "-k", "actors", "-rP")
    result.assert_outcomes(failed=1, passed=1)
    result.stdout.fnmatch_lines([
        "E*of 200 rounds had outcomes other than 2:",
        "E*UNEXPECTED",
        "E*schedule * produced 1:",
        "E*step | worker 0 * | worker 1",
        "E*replay it with:",
        "E*pytest 'test_counter.py::test_actors?explore?' --concurrency-replay=x1.*",
        "*200 schedules explored; the test rejected outcome 1 (* of 200 schedules) "
        "(strategy=pct, seed=1, 2 workers, *",
    ])


def test_deadlock_is_reported_as_a_cycle_without_a_timeout(pytester):
    pytester.makepyfile(
        """
        import threading
        import pytest

        class Accounts:
            def __init__(self):
                self.ledger = threading.Lock()
                self.audit = threading.Lock()

        def transfer(accounts):
            with accounts.ledger:
                with accounts.audit:
                    pass

        def report(accounts):
            with accounts.audit:
                with accounts.ledger:
                    pass

        @pytest.mark.concurrency(modes=["explore"], seed=0, timeout=60)
        def test_abba(concurrency):
            concurrency.run_actors(transfer, report, setup=Accounts)
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        # the failure is the deadlocked workers', not the run's
        "2 of 2 workers failed in explore mode (1 distinct failure)",
        "*failure 1 of 1: workers 0-1 (explore mode*",
        "*explore found a deadlock in schedule *",
        "*worker ? holds * and waits for *",
        "*worker ? holds * and waits for *",
    ])
    assert result.duration < 60  # found without waiting for the exploration's timeout


def test_dfs_says_when_it_explored_everything(pytester):
    pytester.makepyfile(
        """
        import threading
        import pytest

        class Box:
            def __init__(self):
                self.lock = threading.Lock()
                self.items = []

            def put(self, item):
                with self.lock:
                    self.items.append(item)

        @pytest.mark.concurrency(modes=["explore"], strategy="dfs", schedules=100000)
        def test_box(concurrency):
            outcomes = concurrency.run_actors(lambda b: b.put(1), lambda b: b.put(2),
                                              setup=Box, arbiter=lambda b: len(b.items))
            outcomes.expect(2)
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider", "-rP")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines([
        "*schedules explored (strategy=dfs*all interleavings with <= 2 preemptions explored*"])
