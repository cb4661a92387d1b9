"""A verdict is a claim: "verified" only when the search was exhausted and nothing
unseen or uncontrolled happened; every other way a search can end says why."""
import dataclasses
import types

import pytest

from pytest_concurrency.explore import explore
from pytest_concurrency.explore.accesses import ALL, EVERYTHING_EVENT, Objects, dependent
from pytest_concurrency.explore.blind import BlindSpots
from pytest_concurrency.explore.engine import Coverage, ExploreResult, incomplete
from pytest_concurrency.explore.scheduler import unseen
from pytest_concurrency.explore.selftest import problem


def _blind():
    spots = BlindSpots()
    spots.add("os.environ", ("/x/test_env.py", 12))
    return spots


# Each way a search can fall short of every interleaving, as the value that says so.
# A field added to Coverage without a line here fails the test below.
SHORT = {
    "exhausted": False,
    "replayed": True,
    "out_of_time": True,
    "detaches": 1,
    "timers": 1,
    "left_running": 1,
    "abandoned": 1,
    "nondeterministic": True,
    "blind": _blind(),
    "uncontrolled": ("a thread outside the schedule, at test_x.py:3",),
}


def test_every_field_of_coverage_is_a_way_to_fall_short_but_the_strategy():
    names = {field.name for field in dataclasses.fields(Coverage)}
    assert names - {"strategy", "bound"} == set(SHORT)


def test_only_an_exhausted_dpor_search_with_nothing_unseen_is_complete():
    assert incomplete(Coverage("dpor", exhausted=True)) is None
    for strategy in ("pct", "random", "dfs", "replay"):
        assert incomplete(Coverage(strategy, exhausted=True)) is not None, strategy


@pytest.mark.parametrize("field", list(SHORT))
def test_no_way_to_fall_short_yields_verified(field):
    coverage = Coverage("dpor", **{"exhausted": True, field: SHORT[field]})
    why = incomplete(coverage)
    assert why is not None
    result = ExploreResult(None, 3, coverage.exhausted, {}, complete=why is None,
                           incomplete=why, distinct=3)
    assert not result.verified


def test_every_reason_is_named_together():
    why = incomplete(Coverage("dpor", exhausted=True, timers=2, blind=_blind()))
    assert why == ("virtual time passed for a timed wait or sleep 2 times; "
                   "could not see os.environ, at test_env.py:12")


def test_a_failure_is_never_verified():
    result = ExploreResult(object(), 1, True, {}, complete=True, incomplete=None)
    assert not result.verified


def test_blind_spots_are_named_once_each_the_first_few_with_a_count():
    spots = BlindSpots()
    for line in (1, 2, 1, 3, 4, 1):
        spots.add("a C call", ("/x/mod.py", line))
    assert len(spots) == 4
    assert spots.describe() == ("a C call, at mod.py:1; a C call, at mod.py:2; "
                                "a C call, at mod.py:3 (4 blind spots in all)")
    assert spots.items()[0] == ("a C call", "/x/mod.py", 1, 3)


def test_a_step_that_conflicts_with_everything_depends_on_any_access():
    objects = Objects()
    touch = ((objects(object()), "x", False),)
    assert dependent(EVERYTHING_EVENT, touch) and dependent(touch, EVERYTHING_EVENT)
    assert dependent(EVERYTHING_EVENT, EVERYTHING_EVENT)
    assert not dependent(EVERYTHING_EVENT, ()) and not dependent((), EVERYTHING_EVENT)
    assert dependent(((objects(1.5j), ALL, False), *EVERYTHING_EVENT), touch)


def test_objects_unseen_records_a_blind_spot_of_its_schedule():
    spots = BlindSpots()
    Objects(spots).unseen("os.getenv", ("/x/app.py", 7))
    assert spots.describe() == "os.getenv, at app.py:7"


# ---- through explore() ------------------------------------------------------------------

def _state():
    return types.SimpleNamespace(value=0)


def _reads_the_environment(s):
    unseen("the environment")  # what an observer says of os.environ
    s.value += 1


def _increments(s):
    s.value += 1


@pytest.mark.skipif(problem() is not None, reason=f"dpor: {problem()}")
def test_a_blind_spot_makes_an_exhausted_dpor_search_not_complete():
    result = explore(_state, [_reads_the_environment, _increments], strategy="dpor",
                     schedules=50)
    assert result.failure is None and result.exhausted
    assert not result.complete and not result.verified
    line = _reads_the_environment.__code__.co_firstlineno + 1
    assert result.incomplete == f"could not see the environment, at test_verdicts.py:{line}"


@pytest.mark.skipif(problem() is not None, reason=f"dpor: {problem()}")
def test_the_same_program_without_it_is_verified():
    result = explore(_state, [_increments, _increments], strategy="dpor", schedules=50)
    assert result.verified and result.incomplete is None


def test_a_replayed_schedule_is_never_complete():
    found = explore(_state, [_increments, _increments], seed=0, schedules=5,
                    observe=lambda state, returns, token: tokens.append(token()))
    assert found.failure is None
    again = explore(_state, [_increments, _increments], replay=tokens[0])
    assert again.incomplete == "one schedule replayed from a token" and not again.verified


tokens: list = []




# ---- the time limit ---------------------------------------------------------------------

def _forever(s):
    while True:
        s.value += 1  # a switch point at every step: stopped at the next one


def test_the_time_limit_ends_the_search_and_says_so():
    result = explore(_state, [_increments, _increments], seed=0, schedules=10**9,
                     time_limit=0.3)
    assert result.failure is None and result.out_of_time and not result.verified
    assert 0 < result.schedules_run < 10**9
    assert result.incomplete == "time limit; sampled"


def test_a_schedule_cut_by_the_time_limit_is_not_counted():
    result = explore(_state, [_forever, _increments], seed=0, schedules=5, time_limit=0.3)
    assert result.schedules_run == 0 and result.out_of_time
    assert result.failure.kind == "timeout"
    assert result.failure.message == ("explore's time limit (0.3 s) ran out in schedule 0, "
                                      "before any schedule finished")
    assert "worker 0 still running after" in result.cut
    assert result.stats["abandoned_threads"] == 0  # stopped at its next switch point
