"""concurrency_budget through pytest: each kind passing and failing, inconclusive
verdicts, and the advisor's recommendation in the terminal summary."""

import pytest

from pytest_concurrency import advisor, gil, rounds, spec
from pytest_concurrency.report import document

pytestmark = pytest.mark.serial  # measures speedups: needs both cores to itself

BODIES = """
import itertools
import threading
import time
import pytest

from pytest_concurrency.stats import Estimate

def spin(n=3_000_000):
    total = 0
    for i in range(n):
        total += i
    return total

@pytest.mark.concurrency_budget(wall="10s", cpu="10s", memory="8GiB", throughput=">=10/s",
                                speedup=">=2", efficiency=">=40%")
@pytest.mark.concurrency(modes=["thread"], workers=4)
def test_every_kind_passes():
    time.sleep(0.02)

@pytest.mark.concurrency_budget(wall="1ms")
@pytest.mark.concurrency(modes=["thread"], workers=2)
def test_wall_fails():
    time.sleep(0.02)

@pytest.mark.concurrency_budget(cpu="1ms")
@pytest.mark.concurrency(modes=["thread"], workers=2)
def test_cpu_fails():
    spin(200_000)

@pytest.mark.concurrency_budget(memory="16MiB")
@pytest.mark.concurrency(modes=["process"], workers=2)
def test_memory_fails():
    block = bytearray(32 * 1024 * 1024)
    time.sleep(0.05)

@pytest.mark.concurrency_budget(throughput=">=100000/s")
@pytest.mark.concurrency(modes=["thread"], workers=2)
def test_throughput_fails():
    time.sleep(0.01)

@pytest.mark.concurrency_budget(speedup=">=3")
@pytest.mark.concurrency(modes=["thread"], workers=2)
def test_speedup_fails():
    time.sleep(0.02)

ONE_AT_A_TIME = threading.Lock()

# Waiting its turn: two workers take as long as one after another, on any machine. (A
# GIL-bound loop is no such body: on a busy machine two threads get twice a thread's
# share of the CPUs, and ran 2x faster than one.)
@pytest.mark.concurrency_budget(efficiency=">=99%")
@pytest.mark.concurrency(modes=["thread"], workers=2)
def test_efficiency_fails():
    with ONE_AT_A_TIME:
        time.sleep(0.02)

ROUND = itertools.count()

@pytest.mark.concurrency_budget(wall="30ms")
@pytest.mark.concurrency(modes=["thread"], workers=1)
def test_straddles_the_limit():
    # alternately well under and well over the limit: the interval straddles it
    time.sleep(0.005 if next(ROUND) % 2 else 0.06)
"""


def test_each_budget_kind_passes_and_fails_with_its_message(pytester):
    pytester.makepyfile(test_bodies=BODIES)
    # strict: on a busy machine failing wall-clock limits only warn without it
    result = pytester.runpytest("-p", "no:cacheprovider", "-k", "not straddles",
                                "--concurrency-strict")
    result.assert_outcomes(passed=1, failed=6)
    result.stdout.fnmatch_lines_random([
        "wall <= 1ms: measured *ms [[]*ms, *ms[]] (median of * rounds, *% interval): over budget",
        "cpu <= 1ms: measured *ms*over budget",
        "memory <= 16MiB: measured *MiB*over budget",
        "throughput >= 100k/s: measured */s*below the limit",
        "speedup >= 3x: measured *x*below the limit",
        "efficiency >= 99%: measured *%*below the limit",
    ])


def test_an_interval_straddling_the_limit_is_inconclusive_not_a_failure(pytester):
    pytester.makepyfile(test_bodies=BODIES)
    result = pytester.runpytest("-p", "no:cacheprovider", "-k", "straddles")
    result.assert_outcomes(passed=1, warnings=1)
    result.stdout.fnmatch_lines([
        "*concurrency budget: wall <= 30ms: measured * (median of 15 rounds*inconclusive*"])
    strict = pytester.runpytest("-p", "no:cacheprovider", "-k", "straddles",
                                "--concurrency-strict")
    strict.assert_outcomes(failed=1)
    strict.stdout.fnmatch_lines(["*wall <= 30ms: measured * (median of 15 rounds*inconclusive*"])


def test_the_advisor_recommends_processes_for_cpu_and_threads_for_io(pytester):
    pytester.makepyfile(
        """
        import time
        import pytest

        def spin(n=2_000_000):
            total = 0
            for i in range(n):
                total += i
            return total

        # Thread mode only: whether processes beat it depends on free cores, which a
        # shared test machine cannot promise (benchmarks/ measures that); CPU time
        # per wall time in thread mode tells CPU-bound work apart on any machine.
        @pytest.mark.concurrency_budget(speedup=">=0.1")
        @pytest.mark.concurrency(modes=["thread"], workers=2)
        def test_cpu_bound():
            spin()

        @pytest.mark.concurrency_budget(speedup=">=0.1")
        @pytest.mark.concurrency(modes=["thread", "process"], workers=8)
        def test_io_bound():
            time.sleep(0.05)
        """
    )
    # in a fresh process: forking the big test-running process would cost the children
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider",
                                           "--concurrency-report=r.json")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines([
        "*= concurrency advice =*",
        "*::test_io_bound: I/O-bound: threads reach *x with 8 workers*; use threads",
    ])
    if not gil.FREE_THREADED:
        result.stdout.fnmatch_lines([
            "*::test_cpu_bound: CPU-bound (CPU * s per 1.0 s of wall in thread mode): "
            "threads cannot run it in parallel under the GIL; try process mode"])
        return
    # Without the GIL (python3.13t) the two threads compute at once on two free cores.
    # Two threads on a busy machine get less of a CPU each than the one thread that
    # measured the machine, so computing can read as partly waiting there: then the
    # advice must be what the advisor makes of the measurement, as on any build.
    (cpu,) = [e for e in document.load(str(pytester.path / "r.json"))["tests"]
              if e["test"].endswith("::test_cpu_bound")]
    metrics = cpu["metrics"]
    if metrics["availability"]["value"] >= rounds.BUSY:
        result.stdout.fnmatch_lines([
            "*::test_cpu_bound: CPU-bound (CPU * s per 1.0 s of wall in thread mode): "
            "threads run it in parallel, the GIL is released or absent"])
    else:
        measured = advisor.ModeMeasurement(
            "thread", 2, metrics["wall"]["value"], metrics["cpu"]["value"], None,
            metrics["speedup"]["value"], metrics["availability"]["value"])
        assert cpu["advice"] == advisor.advise({"thread": measured}, spec.usable_cpus(),
                                               free_threaded=True)


def test_cpu_availability_is_a_share_of_one_cpu():
    from pytest_concurrency import metrics

    share = metrics.cpu_availability()
    assert 0.0 < share <= 1.0
