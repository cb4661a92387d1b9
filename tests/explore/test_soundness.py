"""The soundness corpus (benchmarks/soundness/corpus.py): programs that share state
in ways explore must not miss.  DPOR never calls a buggy one verified, random
exploration finds each bug (the corpus really is buggy), and every fixed twin is
verified - in at most 10 schedules with two workers, 800 with three - unless it
does what explore cannot see (I/O, an untraced library, weak references), when its
verdict says so."""
import os
import sys

import pytest

from pytest_concurrency.explore import explore
from pytest_concurrency.explore.selftest import problem

BENCHMARKS = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), "benchmarks")
sys.path.insert(0, BENCHMARKS)
sys.path.insert(0, os.path.join(BENCHMARKS, "soundness"))

import corpus as C  # noqa: E402

pytestmark = pytest.mark.skipif(problem() is not None, reason=f"dpor: {problem()}")

BUGGY = [name for name, kernel in C.PROGRAMS.items() if C.applies(kernel)]
FINDABLE = [name for name in BUGGY if C.findable(C.PROGRAMS[name])]
LIMIT = {2: 10, 3: 800}
# No step of these programs blocks for real: a slow machine must not look like one that
# blocked (a detached worker makes a search incomplete).
PATIENT = {"step_timeout": 0.5}


@pytest.mark.parametrize("name", BUGGY)
def test_dpor_never_calls_a_buggy_program_verified(name):
    kernel = C.PROGRAMS[name]
    result = explore(kernel.setup, kernel.actors, kernel.check, strategy="dpor",
                     schedules=3000, **PATIENT)
    assert result.failure is not None or not result.verified, result.incomplete
    if result.failure is None:
        assert result.incomplete


@pytest.mark.parametrize("name", FINDABLE)
def test_random_exploration_finds_each_bug(name):
    kernel = C.PROGRAMS[name]
    result = explore(kernel.setup, kernel.actors, kernel.check, strategy="random", seed=0,
                     schedules=300, instrument=kernel.instrument)
    assert result.failure is not None


@pytest.mark.parametrize("name", list(C.PROGRAMS))
def test_each_fixed_twin_is_verified_or_says_what_it_could_not_see(name):
    twin = C.PROGRAMS[name].twin
    result = explore(twin.setup, twin.actors, twin.check, strategy="dpor", schedules=3000,
                     **PATIENT)
    assert result.failure is None, result.failure and result.failure.message
    if twin.expect == "verified":
        assert result.verified, result.incomplete
        assert result.schedules_run <= LIMIT[len(twin.actors)]
    else:
        assert not result.verified
        assert "could not see" in result.incomplete


INSTRUMENTED = [name for name, kernel in C.PROGRAMS.items() if kernel.instrument]


@pytest.mark.parametrize("name", INSTRUMENTED)
def test_a_library_named_in_instrument_is_rewritten_its_bug_found_its_fix_verified(name):
    kernel = C.PROGRAMS[name]
    found = explore(kernel.setup, kernel.actors, kernel.check, strategy="dpor",
                    schedules=3000, instrument=kernel.instrument, **PATIENT)
    assert found.failure is not None and found.failure.schedule < 3
    twin = kernel.twin
    fixed = explore(twin.setup, twin.actors, twin.check, strategy="dpor", schedules=3000,
                    instrument=kernel.instrument, **PATIENT)
    assert fixed.verified, fixed.incomplete
    assert fixed.schedules_run <= LIMIT[len(twin.actors)]


def test_the_corpus_covers_each_kind_of_sharing_with_two_and_three_workers():
    categories = {kernel.category for kernel in C.PROGRAMS.values()}
    assert categories >= {"aliases", "C code with state", "environment", "I/O",
                          "untraced library", "code without source", "nondeterminism",
                          "weak references", "free-threaded C iteration"}
    assert {len(kernel.actors) for kernel in C.PROGRAMS.values()} == {2, 3}
