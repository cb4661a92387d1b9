"""Past its timeout a run is watched: one still making progress (CPU time rising,
stacks changing) is never called a hang, and may go on to the timeout cap; one
stuck (no CPU, the same stack, blocked) fails as a hang within timeout + 3 s."""

import re

import pytest

BODIES = """
import os
import threading
import time
import pytest

LOCK = threading.Lock()

def busy(seconds):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        sum(range(1000))

@pytest.mark.concurrency(modes=["MODE"], workers=2, timeout=1)
def test_busy_past_its_timeout():
    busy(4)

@pytest.mark.concurrency(modes=["MODE"], workers=2, timeout=1)
def test_self_deadlock(worker):
    if worker.index == 0:
        LOCK.acquire()
        LOCK.acquire()  # never returns
"""


def durations(result) -> dict[str, float]:
    found = [re.fullmatch(r"([\d.]+)s call +\S+::(\S+)", line.strip())
             for line in result.stdout.lines]
    return {m[2]: float(m[1]) for m in found if m}


@pytest.mark.parametrize("mode", ["thread", "process"])
def test_busy_is_too_slow_not_a_hang_and_a_deadlock_is_stuck(pytester, mode):
    pytester.makepyfile(test_bodies=BODIES.replace("MODE", mode))
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--durations=0",
                                           timeout=60)
    result.assert_outcomes(failed=2)
    out = result.stdout.str()
    busy = out.split("test_busy_past_its_timeout[")[1].split("test_self_deadlock[")[0]
    assert "still running after" in busy and "making progress (CPU +" in busy
    assert ": stuck (" not in busy and "timed out after" not in busy
    result.stdout.fnmatch_lines(["*timed out after 1s: stuck (no CPU used and the same stacks*"])
    took = durations(result)
    assert took[f"test_self_deadlock[{mode}]"] < 1 + 3


def test_a_run_still_making_progress_goes_on_to_the_cap(pytester):
    """Under --concurrency-apply the cap is 10x the timeout: a slow test finishes."""
    pytester.makepyfile("""
        import time

        def test_slow_but_working():
            end = time.monotonic() + 2.5
            while time.monotonic() < end:
                sum(range(1000))
    """)
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--concurrency-apply=thread", "--concurrency-workers=2",
        "--concurrency-timeout=1", timeout=60)
    result.assert_outcomes(passed=1)
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--concurrency-apply=thread", "--concurrency-workers=2",
        "--concurrency-timeout=1", "--concurrency-timeout-cap=off", timeout=60)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*still running after *s, making progress*"])


def test_bad_timeout_cap_is_a_usage_error(pytester):
    pytester.makepyfile("def test_x(): pass")
    result = pytester.runpytest("--concurrency-timeout-cap=soon")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--concurrency-timeout-cap='soon': expected 'off', seconds, "
                                 "or a multiple of the timeout such as '10x'*"])
