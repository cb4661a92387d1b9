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
