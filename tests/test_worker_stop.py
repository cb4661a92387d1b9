"""A run that stops early (a worker failed, a barrier was broken) stops in every
process at once: with per-call fixtures, the thread that sets them up does not
wait for a call that a worker which left the run will never make."""

import pytest

FAILS_LATE = """
import time
import pytest

@pytest.mark.concurrency(modes=[{mode!r}], {layout}, iterations=3,
                         fixtures="per-worker", timeout=60)
def test_one_fails_late(worker, tmp_path):
    if worker.index == 0:
        time.sleep(0.5)  # the others are at the next iteration's barrier by now
        raise ValueError("boom")
"""


@pytest.mark.parametrize(("mode", "layout"), [
    ("process", "workers=2"),
    ("hybrid", "processes=2, threads=2"),
    ("thread", "workers=3"),
])
def test_a_failure_stops_the_others_without_a_timeout(run, pytester, mode, layout):
    pytester.makepyfile(test_late=FAILS_LATE.format(mode=mode, layout=layout))
    result = run()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([f"*1 of * workers failed in {mode} mode*"])
    result.stdout.fnmatch_lines(["*ValueError: boom*"])
    result.stdout.no_fnmatch_line("*timed out*")
    # it did not wait the run's timeout out (that would also say "timed out"), however
    # long a busy machine makes the rest of the session
    assert result.duration < 60


CALLS = """
import pytest

made = []

@pytest.fixture
def fresh(worker):
    made.append((worker.index, worker.iteration))
    return (worker.index, worker.iteration)

@pytest.mark.concurrency(modes=[{mode!r}], {layout}, iterations=3, fixtures="per-worker")
def test_each_call_gets_its_own(worker, fresh):
    assert fresh == (worker.index, worker.iteration)
"""


@pytest.mark.parametrize(("mode", "layout"), [
    ("process", "workers=2"),  # one worker per child: run by the child's own thread
    ("hybrid", "processes=2, threads=2"),
    ("thread", "workers=3"),
])
def test_every_call_gets_fresh_fixtures(run, pytester, mode, layout):
    pytester.makepyfile(test_calls=CALLS.format(mode=mode, layout=layout))
    run().assert_outcomes(passed=1)
