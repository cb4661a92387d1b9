"""--concurrency-reproduce: a thread-mode failure found again under explore becomes a
replay command that fails the same way on the same item."""

import re

from pytest_concurrency import reproduce
from pytest_concurrency.spec import RunSpec

RACE = """
import pytest

class Counter:
    def __init__(self):
        self.value = 0

    def increment(self):
        seen = self.value
        self.value = seen + 1

@pytest.fixture
def counter():
    return Counter()

@pytest.mark.concurrency(modes=["thread"], workers=2, seed=1)
def test_increments(counter, barrier):
    counter.increment()
    barrier.wait()
    assert counter.value == 2, "an update was lost"
    {extra}
"""


def test_a_reproduced_failure_prints_a_replay_command_that_fails_again(pytester):
    # Free-running threads almost never lose this update: the thread run fails at the
    # assertion on purpose (on the plugin's pool threads only), explore must find the
    # real lost update at the same line.
    pytester.makepyfile(test_race=RACE.format(extra="").replace(
        'assert counter.value == 2, "an update was lost"',
        'assert counter.value == 2 and not on_pool(), "an update was lost"').replace(
        "import pytest", "import threading\nimport pytest\n\n"
        "def on_pool():\n"
        "    return threading.current_thread().name.startswith('concurrency-worker')\n", 1))
    result = pytester.runpytest("-p", "no:cacheprovider", "--concurrency-reproduce")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "*- Captured reproduce call -*",
        "reproduced under explore (pct, seed 0): AssertionError at test_race.py:*, "
        "the same as in thread mode.",
        "replay it with:",
        "  pytest 'test_race.py::test_increments?thread?' --concurrency-replay=x1.*",
    ])
    token = re.findall(r"--concurrency-replay=(\S+)", result.stdout.str())[0]
    again = pytester.runpytest("-p", "no:cacheprovider", "test_race.py::test_increments[thread]",
                               f"--concurrency-replay={token}")
    again.assert_outcomes(failed=1)
    again.stdout.fnmatch_lines(["*explore found an assertion in schedule *",
                                "*an update was lost*"])


def test_a_failure_explore_cannot_find_says_what_was_tried(pytester):
    pytester.makepyfile(test_race=RACE.format(extra="").replace(
        "    counter.increment()\n", "    counter.increment()\n"
        "    import threading\n"
        "    if threading.current_thread().name.startswith('concurrency-worker'):\n"
        "        raise ValueError('only on a pool thread')\n"))
    result = pytester.runpytest("-p", "no:cacheprovider", "--concurrency-reproduce")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "not reproduced under explore: tried pct seed 0, random seed 0, pct seed 1, at most "
        "200 schedules each, 10 s in all, looking for ValueError at test_race.py:*"])
    result.stdout.no_fnmatch_line("*--concurrency-replay=*")


def _failure(exc, token="x1.t"):
    return type("F", (), {"exc": exc, "replay": token, "summary": repr(exc), "kind": "race"})()


def _raised(exc):
    try:
        raise exc
    except Exception as caught:
        return caught


def test_attempt_stops_at_the_first_attempt_that_matches():
    target = _raised(KeyError("k"))
    calls = []

    def run(spec, progress):
        calls.append(spec.strategy)
        return None if len(calls) == 1 else _failure(target)

    text = reproduce.attempt(RunSpec("thread", 2), {reproduce.signature(target)}, run,
                             "t.py::t[thread]", attempts=[("pct", 0), ("random", 0),
                                                          ("pct", 1)])
    assert calls == ["pct", "random"]
    assert text.startswith("reproduced under explore (random, seed 0): KeyError at ")
    assert "--concurrency-replay=x1.t" in text


def test_each_attempt_explores_one_iteration_within_the_time_left():
    specs = []

    def run(spec, progress):
        specs.append(spec)
        return None

    reproduce.attempt(RunSpec("thread", 4, iterations=5, timeout=60.0), {("E", "t.py", 3)},
                      run, "t", seconds=10.0)
    assert [(s.mode, s.workers, s.iterations) for s in specs] == [("explore", 4, 1)] * 3
    assert all(0 < s.timeout <= 10.0 for s in specs)
    # the spec a printed token is replayed with, on the thread item
    replayed = reproduce.explore_spec_of(RunSpec("thread", 4, iterations=5))
    assert (replayed.mode, replayed.workers, replayed.iterations) == ("explore", 4, 1)


def test_attempt_gives_up_when_the_time_is_up():
    def run(spec, progress):
        progress(1, 200, 1)  # past the deadline already
        raise AssertionError("not reached")

    text = reproduce.attempt(RunSpec("thread", 2), {("KeyError", "t.py", 3)}, run, "t",
                             seconds=0.0)
    assert text.startswith("not reproduced under explore: tried pct seed 0 (stopped at 0 s)")
