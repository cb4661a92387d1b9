"""metrics.py: wall, CPU, calls and peak memory of a run, and Results carrying them."""

import json
import time

import pytest

from pytest_concurrency import metrics


def _burn(cpu_seconds):
    """Compute until this thread has used ``cpu_seconds`` of CPU, however long that
    takes on a busy machine."""
    end = time.thread_time() + cpu_seconds
    while time.thread_time() < end:
        pass


def test_cpu_bound_body_is_measured_with_the_cpu_it_used():
    with metrics.Meter() as meter:
        _burn(0.2)
    m = meter.result(calls=1)
    assert 0.2 <= m.cpu < 0.2 + 0.5  # what the body used, and little more
    assert m.wall >= m.cpu * 0.95  # one thread: no more CPU than wall time
    assert m.peak_rss is None  # not asked for


def test_sleeping_body_uses_almost_no_cpu():
    with metrics.Meter() as meter:
        time.sleep(0.2)
    m = meter.result(calls=4)
    assert m.wall >= 0.2
    assert m.cpu < 0.1
    assert m.throughput == 4 / m.wall


MB = 1_000_000


def _current_rss():
    import psutil

    return psutil.Process().memory_info().rss


def _allocate_for_an_instant(size):
    """Touch ``size`` bytes and give them back at once: a peak no 20 ms sample is
    there for, unless by luck.  Returns the resident memory while they were held
    (an allocator may reuse pages it kept, so that is the peak to expect)."""
    block = b"\x01" * size  # a filled buffer: every page is resident
    held = _current_rss()
    del block
    return held


# The kernel counts resident pages per CPU and adds them up now and then: two readings
# of the same memory (VmHWM, psutil's RSS) differ by a few hundred kB.
SLACK = 2 * MB


def test_the_kernel_keeps_this_process_peak_and_resets_it():
    held = _allocate_for_an_instant(64 * MB)
    assert metrics.peak_rss() >= held - SLACK
    assert metrics.reset_peak_rss(), "Linux lets a process reset its peak RSS"
    # now about the current RSS (which an allocator may keep above what it was before)
    assert metrics.peak_rss() <= _current_rss() + SLACK


def test_peak_memory_of_a_run_is_the_kernels_not_a_sample():
    with metrics.Meter(memory=True) as meter:
        held = _allocate_for_an_instant(64 * MB)
    m = meter.result(calls=1)
    assert m.peak_rss >= held - SLACK
    # each child's peak it sent counts on top of this process's own
    assert meter.result(calls=1, children=(300 * MB, 300 * MB)).peak_rss == \
        max(m.peak_rss, meter.own_rss + 600 * MB)


@pytest.mark.parametrize("mode", ["process", "hybrid", "thread"])
def test_an_instant_allocation_in_every_worker_fails_a_memory_budget_every_round(
        pytester, mode):
    """2 workers each allocate 300 MB for an instant: a 64 MiB budget fails, and every
    round saw both peaks (the smallest round's peak is above 600 MB; thread mode's
    workers share one process, whose peak sees at least one of them). Sampling the
    tree every 20 ms missed most of them (issue 18: a median of 51 MB on 3.13t)."""
    pytester.makepyfile(f"""
        import pytest

        @pytest.mark.concurrency_budget(memory="64MiB")
        @pytest.mark.concurrency(modes=["{mode}"], workers=2)
        def test_allocates():
            block = b"\\x01" * 300_000_000
            del block
    """)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider",
                                           "--concurrency-report=r.json")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*memory <= 64MiB: measured *over budget*"])
    (entry,) = json.loads((pytester.path / "r.json").read_text())["tests"]
    memory = entry["metrics"]["memory"]
    assert memory["rounds"] >= 5
    assert memory["low"] >= (300 * MB if mode == "thread" else 600 * MB), memory


def test_results_carry_the_measurement(pytester):
    pytester.makepyfile(
        """
        import time
        import pytest

        @pytest.mark.concurrency(modes=["thread", "process"], workers=4, iterations=2)
        def test_numbers(concurrency):
            results = concurrency.run(time.sleep, 0.2)
            assert len(results) == 8
            assert results.wall >= 0.4          # two iterations of 200 ms
            # sleeping, not computing: the four children's start and exit cost CPU
            # time, more of it the slower the machine, but not 400 ms of it
            assert results.cpu < results.wall
            assert results.throughput == 8 / results.wall
            assert results.measurement.calls == 8
        """
    )
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=2)


def test_the_runner_is_imported_before_the_run_is_measured(monkeypatch):
    """The first run of a session is measured without the import of its runner (tens of
    ms of CPU, which made a waiting body read as partly computing)."""
    import sys

    from pytest_concurrency import running

    seen = []

    class Meter:
        def __init__(self, memory=False, waits=False):
            seen.append("pytest_concurrency.runners.hybrid" in sys.modules)

        def __enter__(self):
            raise RuntimeError("measured")

        def __exit__(self, *exc):
            return False

    monkeypatch.setattr(metrics, "Meter", Meter)
    monkeypatch.delitem(sys.modules, "pytest_concurrency.runners.hybrid", raising=False)
    request = type("R", (), {"spec": type("S", (), {"mode": "hybrid"})()})()
    try:
        running.execute(request, node=None)
    except RuntimeError as exc:
        assert str(exc) == "measured"
    assert seen == [True]
