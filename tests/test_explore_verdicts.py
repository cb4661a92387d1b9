"""explore's word, through pytest: a rejected run_actors outcome is a failure of the
exploration, shown and replayable; the timeout bounds the exploration; a spinning
worker is not a deadlock and is stopped; every printed replay command replays."""

import json
import re
import sys

import pytest

from pytest_concurrency.explore.selftest import problem

needs_dpor = pytest.mark.skipif(problem() is not None, reason=f"dpor: {problem()}")

COUNTER = """
import pytest


class Counter:
    def __init__(self):
        self.value = 0

    def increment(self):
        self.value += 1


@pytest.mark.concurrency(modes=["explore"], workers=2, strategy="dpor")
def test_counter(concurrency):
    outcomes = concurrency.run_actors(
        Counter.increment, Counter.increment, setup=Counter, arbiter=lambda c: c.value)
    outcomes.expect(2)
"""


@needs_dpor
def test_a_rejected_outcome_fails_the_exploration_everywhere(pytester, run):
    pytester.makepyfile(test_counter=COUNTER)
    result = run("-v", "--concurrency-report=r.json", "--concurrency-report=r.html")
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    assert "verified" not in out
    result.stdout.fnmatch_lines([
        "E*2 of 4 rounds had outcomes other than 2:",
        "E*schedule * produced 1:",
        "E*step | worker 0 * | worker 1",
        "E*self.value += 1  ?reads .value*",
        "E*self.value += 1  ?writes .value?",
        "E*replay it with:",
        "E*pytest 'test_counter.py::test_counter?explore?' --concurrency-replay=x1.*",
        "*Captured explore call*",
        "every interleaving explored (4 distinct); the test rejected outcome 1 (2 of 4 "
        "schedules) (strategy=dpor, seed=*",
    ])
    (entry,) = json.loads((pytester.path / "r.json").read_text())["tests"]
    exploration, (failure,) = entry["exploration"], entry["failures"]
    assert exploration["complete"] is False and exploration["verdict"].startswith(
        "every interleaving explored (4 distinct); the test rejected outcome 1")
    assert exploration["interleaving"]["kind"] == "rejected outcome"
    steps = exploration["interleaving"]["steps"]
    assert {step["worker"] for step in steps} == {0, 1}
    assert {step["what"] for step in steps} >= {"reads .value", "writes .value"}
    assert failure["kind"] == "race" and failure["replay"].startswith("x1.")
    assert failure["replay_command"] == (
        f"pytest 'test_counter.py::test_counter[explore]' --concurrency-replay="
        f"{failure['replay']}")
    html = (pytester.path / "r.html").read_text()
    assert f"schedule {exploration['interleaving']['schedule']} of the exploration" in html

    show = pytester.run(sys.executable, "-m", "pytest_concurrency", "show", "r.json")
    assert f"replay: {failure['replay_command']}" in show.stdout.str()

    # The token replays that schedule: the same outcome, rejected again, with its seed.
    token = failure["replay"]
    seed = re.search(r"seed=(\d+)", exploration["verdict"]).group(1)
    again = run("test_counter.py::test_counter[explore]", f"--concurrency-replay={token}")
    again.assert_outcomes(failed=1)
    again.stdout.fnmatch_lines([
        "E*1 of 1 rounds had outcomes other than 2:",
        f"1 schedule explored; the test rejected outcome 1 (1 of 1 schedule) "
        f"(strategy=dpor, seed={seed}, *",
    ])


@needs_dpor
def test_with_capture_off_the_verdict_is_printed_once_it_is_final(pytester, run):
    pytester.makepyfile(test_counter=COUNTER)
    result = run("-s")
    result.assert_outcomes(failed=1)
    assert "verified" not in result.stdout.str()
    result.stdout.fnmatch_lines([
        "--- explore ---",
        "every interleaving explored (4 distinct); the test rejected outcome 1 *"])


def test_forbid_and_any_later_failure_are_never_verified(pytester, run):
    pytester.makepyfile(test_after="""
        import pytest

        def bump(box):
            box.append(len(box))

        @pytest.mark.concurrency(modes=["explore"], workers=2, strategy="dfs", seed=3)
        def test_forbidden(concurrency):
            outcomes = concurrency.run_actors(bump, bump, setup=list, arbiter=tuple)
            outcomes.forbid((0, 1))

        @pytest.mark.concurrency(modes=["explore"], workers=2, strategy="dfs", seed=3)
        def test_fails_later(concurrency):
            concurrency.run_actors(bump, bump, setup=list, arbiter=tuple)
            raise ValueError("checked afterwards")
    """)
    result = run("-v", "--concurrency-report=r.json")
    result.assert_outcomes(failed=2)
    entries = {e["nodeid"].split("::")[1]: e
               for e in json.loads((pytester.path / "r.json").read_text())["tests"]}
    forbidden, later = entries["test_forbidden[explore]"], entries["test_fails_later[explore]"]
    assert forbidden["failures"][0]["kind"] == "race"
    assert "the test rejected outcome (0, 1)" in forbidden["exploration"]["verdict"]
    assert later["failures"][0]["kind"] == "exception"
    assert later["exploration"]["complete"] is False
    assert "the test failed after it: ValueError: checked afterwards" in \
        later["exploration"]["verdict"]


def test_the_timeout_bounds_the_whole_exploration(pytester, run):
    pytester.makepyfile(test_time="""
        import pytest

        @pytest.mark.concurrency(modes=["explore"], workers=2, schedules=10**100,
                                 timeout=2)
        def test_many_schedules():
            pass

        def work():
            total = 0
            for step in range(10**9):  # one schedule: far longer than the timeout
                total += step

        @pytest.mark.concurrency(modes=["explore"], workers=2, timeout=2)
        def test_one_long_schedule():
            work()
    """)
    result = run("-v", "--concurrency-report=r.json", timeout=60)
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines([
        "*explore's time limit (2 s) ran out in schedule 0, before any schedule finished*",
        "*worker ? still running after * (at test_time.py:*, still reaching switch points: "
        "* steps in this schedule)",
    ])
    entries = {e["nodeid"].split("::")[1]: e
               for e in json.loads((pytester.path / "r.json").read_text())["tests"]}
    many = entries["test_many_schedules[explore]"]["exploration"]
    assert many["complete"] is False and "(time limit; sampled)" in many["verdict"]
    assert many["verdict"].startswith(f"no failure in {many['schedules']} schedules")
    long = entries["test_one_long_schedule[explore]"]
    assert long["failures"][0]["kind"] == "timeout"
    assert long["exploration"]["schedules"] == 0


def test_a_spinning_worker_is_called_what_it_is_and_stopped(pytester, run):
    pytester.makepyfile(test_spin="""
        import threading
        import pytest

        def spin():
            while True:
                pass

        @pytest.mark.concurrency(modes=["explore"], workers=2)
        def test_spin(worker):
            if worker.index == 1:
                spin()

        def test_nothing_of_ours_is_left_running():
            alive = [t.name for t in threading.enumerate() if t.name.startswith("explore")]
            assert alive == []
    """)
    result = run("-p", "no:randomly", timeout=90)
    result.assert_outcomes(passed=1, failed=1)
    assert "deadlock" not in result.stdout.str().partition("FAILURES")[2]
    result.stdout.fnmatch_lines([
        "*explore found a worker that never finishes in schedule 0*",
        "worker 1 still running after * (spinning at test_spin.py:[56], outside the "
        "scheduler's view: *",
    ])


REPRODUCIBLE = """
import time
import pytest


class IdGenerator:
    def __init__(self):
        self.next_id = 0
        self.issued = []

    def new_id(self):
        current = self.next_id
        time.sleep(0.001)
        self.next_id = current + 1
        self.issued.append(current)
        return current


@pytest.fixture
def ids():
    return IdGenerator()


@pytest.mark.concurrency(modes=["thread"], workers=4, iterations=5)
def test_ids_unique(ids):
    ids.new_id()
    assert len(set(ids.issued)) == len(ids.issued)
"""


def test_the_command_reproduce_prints_replays_in_a_fresh_process(pytester, run):
    pytester.makepyfile(test_ids=REPRODUCIBLE)
    result = run("--concurrency-reproduce")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["reproduced under explore (*", "replay it with:"])
    command = re.search(r"--concurrency-replay=(\S+)", result.stdout.str())
    again = run("test_ids.py::test_ids_unique[thread]", command.group(0))
    again.assert_outcomes(failed=1)
    assert "diverged" not in again.stdout.str()
    again.stdout.fnmatch_lines(["*AssertionError*", "1 schedule explored (strategy=*"])


STOPPING = """
import pytest


class Counter:
    def __init__(self):
        self.value = 0

    def increment(self):
        self.value += 1


@pytest.mark.concurrency(modes=["explore"], workers=2, strategy="dpor")
def test_checked_as_it_goes(concurrency):
    concurrency.run_actors(Counter.increment, Counter.increment, setup=Counter,
                           arbiter=lambda c: c.value, expect=[2])


@pytest.mark.concurrency(modes=["thread"], workers=2)
def test_checked_on_the_tally(concurrency):
    concurrency.run_actors(Counter.increment, Counter.increment, setup=Counter,
                           arbiter=lambda c: "seen", rounds=3, expect=["other"])


@pytest.mark.concurrency(modes=["explore"], workers=2, strategy="dpor")
def test_forbidden_as_it_goes(concurrency):
    outcomes = concurrency.run_actors(Counter.increment, Counter.increment, setup=Counter,
                                      arbiter=lambda c: c.value, forbid=[3])
    assert sorted(outcomes) == [1, 2]


@pytest.mark.concurrency(modes=["thread"], workers=2)
def test_not_a_collection(concurrency):
    concurrency.run_actors(Counter.increment, Counter.increment, setup=Counter, expect=2)
"""


@needs_dpor
def test_run_actors_expect_stops_the_search_at_the_first_rejected_outcome(pytester, run):
    pytester.makepyfile(test_stop=STOPPING)
    result = run("--concurrency-report=r.json")
    result.assert_outcomes(passed=1, failed=3)
    result.stdout.fnmatch_lines([
        "check failed: AssertionError: the outcome 1 is not one of the expected 2",
        "explore found an assertion in schedule * (strategy=dpor, *",
        "replay it with:",
        "*TypeError: run_actors(expect=2): expected a list, tuple or set of outcomes, "
        "e.g. expect=[[]2[]]",
    ])
    entries = {e["nodeid"].split("::")[1]: e
               for e in json.loads((pytester.path / "r.json").read_text())["tests"]}
    stopped = entries["test_checked_as_it_goes[explore]"]
    assert stopped["failures"][0]["kind"] == "race" and stopped["failures"][0]["replay"]
    assert stopped["exploration"]["schedules"] < 4  # it stopped: all 4 were not needed
    assert stopped["exploration"]["complete"] is False
    tally = entries["test_checked_on_the_tally[thread]"]["failures"][0]["message"]
    assert tally.startswith("3 of 3 rounds had outcomes other than 'other'")


@needs_dpor
def test_a_teardown_that_fails_after_a_verified_search_unsays_it(pytester, run):
    pytester.makepyfile(test_leak="""
        import threading
        import pytest

        STOP = threading.Event()

        class Box:
            def __init__(self):
                self.lock = threading.Lock()
                self.value = 0

            def bump(self):
                with self.lock:
                    self.value += 1

        @pytest.mark.concurrency(modes=["explore"], workers=2, strategy="dpor")
        def test_leaves_a_thread(concurrency):
            concurrency.run_actors(Box.bump, Box.bump, setup=Box, arbiter=lambda b: b.value,
                                   expect=[2])
            threading.Thread(target=STOP.wait, daemon=True).start()  # left running

        def test_stop():
            STOP.set()
    """)
    result = run("-v", "-p", "no:randomly", "--concurrency-report=r.json")
    result.assert_outcomes(passed=2, errors=1)
    (entry,) = [e for e in json.loads((pytester.path / "r.json").read_text())["tests"]
                if "explore" in e["nodeid"]]
    assert entry["exploration"]["complete"] is False
    assert "the test failed after it" in entry["exploration"]["verdict"]
    assert "explore: every interleaving explored (" in result.stdout.str()


def test_a_sync_facade_over_asyncio_run_finishes_in_explore(pytester):
    """asyncio.run() in a worker: its loop waits for its timers on the schedule's
    virtual clock (which its time() reads), not in real time, and finishes."""
    pytester.makepyfile(test_facade="""
        import asyncio
        import pytest

        async def fetch(x):
            await asyncio.sleep(30)  # a slow round trip: no real time in explore
            return x * 2

        def fetch_sync(x):
            return asyncio.run(fetch(x))

        @pytest.mark.concurrency(modes=["explore"], workers=2, schedules=5, timeout=60)
        def test_facade(worker):
            assert fetch_sync(worker.index) == worker.index * 2

        @pytest.mark.concurrency(modes=["explore"], workers=1, schedules=3, timeout=60)
        def test_waits_for_nothing(worker):
            async def forever():
                await asyncio.get_running_loop().create_future()

            asyncio.run(forever())
    """)
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines([
        "*explore found a deadlock in schedule 0*",
        "*worker 0 waits in its event loop (asyncio.run) for a callback that nobody will "
        "make (test_facade.py:*"])
    assert "spinning" not in result.stdout.str()


def test_run_actors_usage_errors_are_one_sentence_without_plugin_frames(pytester):
    pytester.makepyfile(test_usage="""
        import pytest

        class Box:
            def __init__(self):
                self.items = []

        def a(box):
            box.items.append("a")

        def b(box):
            box.items.append("b")

        @pytest.mark.concurrency(modes=["thread", "explore"], workers=2)
        def test_list_outcome(concurrency):
            concurrency.run_actors(a, b, setup=Box, arbiter=lambda box: box.items)

        @pytest.mark.concurrency(modes=["thread", "explore"], workers=2)
        def test_setup_fails(concurrency):
            concurrency.run_actors(a, b, setup=lambda: 1 / 0)

        @pytest.mark.concurrency(modes=["thread", "explore"], workers=2)
        def test_expect_a_string(concurrency):
            concurrency.run_actors(a, b, setup=Box, expect="ab")

        @pytest.mark.concurrency(modes=["thread", "explore"], workers=2)
        def test_not_callable(concurrency):
            concurrency.run_actors(a, 2, setup=Box)
    """)
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(failed=8)
    out = result.stdout.str()
    assert out.count("the arbiter returned a list, which cannot be tallied: return a tuple") == 2
    assert out.count("ZeroDivisionError: division by zero") == 2
    assert out.count("run_actors(expect='ab'): expected a list, tuple or set of outcomes") == 2
    assert out.count("run_actors(): actor 1 is 2, not a function") == 2
    assert "pytest_concurrency" not in out.replace("plugins: concurrency", "")


TWO_EXPLORATIONS = """
import threading
import pytest


class Counter:
    def __init__(self):
        self.value = 0
        self.lock = threading.Lock()

    def increment(self):
        self.value += 1

    def increment_locked(self):
        with self.lock:
            self.value += 1


@pytest.mark.concurrency(modes=["explore"], workers=2, strategy="random", seed=0)
def test_two_explorations(concurrency):
    concurrency.run_actors(Counter.increment_locked, Counter.increment_locked, setup=Counter,
                           arbiter=lambda c: c.value, expect=[2])
    concurrency.run_actors(Counter.increment, Counter.increment, setup=Counter,
                           arbiter=lambda c: c.value, expect=[2])
"""


def test_the_replay_command_of_a_test_s_second_exploration_replays_that_one(pytester):
    from pytest_concurrency.explore import decode_token

    pytester.makepyfile(test_two=TWO_EXPLORATIONS)
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    token = re.search(r"--concurrency-replay=(\S+)", out).group(1)
    assert decode_token(token)["exploration"] == 1
    again = pytester.runpytest("-p", "no:cacheprovider", "test_two.py::test_two_explorations",
                               f"--concurrency-replay={token}")
    again.assert_outcomes(failed=1)
    again.stdout.fnmatch_lines(["*the outcome 1 is not one of the expected 2*"])
    assert "diverged" not in again.stdout.str()


def test_a_failure_whose_schedule_does_not_run_the_same_way_twice_prints_no_command(pytester):
    pytester.makepyfile(test_flip="""
        import itertools
        import threading
        import pytest

        RUNS = itertools.count()  # the body reads state no schedule resets

        class Box:
            def __init__(self):
                self.value = next(RUNS) * 0  # three calls a schedule: the parity flips
                self.lock = threading.Lock()

        def add(box):
            if next(RUNS) % 2:
                with box.lock:  # every other run takes another path
                    box.value += 1
            else:
                box.value += 1
            assert box.value < 2 or box.value == 2

        def check(box):
            return box.value

        @pytest.mark.concurrency(modes=["explore"], workers=2, strategy="random", seed=0)
        def test_flip(concurrency):
            concurrency.run_actors(add, add, setup=Box, arbiter=check, expect=[2])
    """)
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    result.stdout.fnmatch_lines(["*no replay command: the body is not deterministic: its "
                                 "schedule, run again at once by its choices, went another "
                                 "way, at test_flip.py:*"])
    assert "replay it with" not in out and "--concurrency-replay" not in out
