"""metrics.py: wall, CPU, calls and peak memory of a run, and Results carrying them."""

import time

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


def test_peak_memory_is_sampled_while_the_run_holds_it():
    with metrics.Meter(memory=True) as before:
        pass
    with metrics.Meter(memory=True) as meter:
        block = bytearray(64 * 1024 * 1024)
        block[::4096] = b"x" * len(block[::4096])  # touch every page
        time.sleep(3 * metrics.SAMPLE_INTERVAL)
        del block
    assert meter.peak_rss >= before.peak_rss + 48 * 1024 * 1024


def test_results_carry_the_measurement(pytester):
    pytester.makepyfile(
        """
        import time
        import pytest

        @pytest.mark.concurrency(modes=["thread", "process"], workers=4, iterations=2)
        def test_numbers(concurrency):
            results = concurrency.run(time.sleep, 0.05)
            assert len(results) == 8
            assert results.wall >= 0.1          # two iterations of 50 ms
            assert results.cpu < results.wall   # sleeping, not computing
            assert results.throughput == 8 / results.wall
            assert results.measurement.calls == 8
        """
    )
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=2)
