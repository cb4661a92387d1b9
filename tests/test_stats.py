"""stats.py: medians and their distribution-free confidence intervals."""

import math

import pytest

from pytest_concurrency.stats import Estimate, median, ratio


def test_median_of_odd_and_even_counts_ignores_order():
    assert median([3.0, 1.0, 2.0]) == 2.0
    assert median([4.0, 1.0, 3.0, 2.0]) == 2.5
    assert median([7]) == 7.0


def test_median_of_nothing_is_an_error():
    with pytest.raises(ValueError):
        median([])


def test_five_samples_cannot_reach_95_percent_so_min_and_max_are_used():
    est = Estimate.of([0.412, 0.398, 0.430, 0.405, 0.420])
    assert (est.median, est.low, est.high, est.n) == (0.412, 0.398, 0.430, 5)
    assert est.confidence == 1 - 2 * 0.5**5 == 0.9375


def test_one_sample_is_its_own_interval_with_no_confidence():
    est = Estimate.of([1.5])
    assert (est.median, est.low, est.high, est.n, est.confidence) == (1.5, 1.5, 1.5, 1, 0.0)


@pytest.mark.parametrize(
    ("n", "low_rank", "coverage"),
    [
        (6, 1, 1 - 2 / 64),  # the smallest n reaching 95% with (min, max)
        (10, 2, 1 - 2 * 11 / 1024),  # textbook: ranks 2 and 9
        (20, 6, 0.9586105346679688),  # textbook: ranks 6 and 15
    ],
)
def test_interval_uses_the_narrowest_order_statistics_reaching_the_confidence(
    n, low_rank, coverage
):
    values = [float(i) for i in range(1, n + 1)]
    est = Estimate.of(values[::-1])  # input order must not matter
    assert est.low == low_rank
    assert est.high == n + 1 - low_rank
    assert est.confidence == pytest.approx(coverage)
    assert est.confidence >= 0.95


def test_lower_confidence_gives_a_narrower_interval():
    values = [float(i) for i in range(1, 21)]
    wide, narrow = Estimate.of(values, 0.99), Estimate.of(values, 0.5)
    assert wide.low < narrow.low <= narrow.median <= narrow.high < wide.high
    assert wide.confidence >= 0.99 and 0.5 <= narrow.confidence < wide.confidence


def test_outlier_moves_neither_median_nor_interval_much():
    calm = [1.0, 1.01, 0.99, 1.02, 0.98, 1.0, 1.01, 0.99, 1.0, 1.0]
    est = Estimate.of(calm[:-1] + [50.0])
    assert est.median == pytest.approx(1.0, abs=0.01)
    assert est.high <= 1.02


@pytest.mark.parametrize("bad", [[], [1.0, math.nan]])
def test_estimate_rejects_empty_or_nan_samples(bad):
    with pytest.raises(ValueError):
        Estimate.of(bad)


@pytest.mark.parametrize("confidence", [0, 1, 1.5, -0.1])
def test_estimate_rejects_a_confidence_outside_0_1(confidence):
    with pytest.raises(ValueError):
        Estimate.of([1.0, 2.0], confidence)


def test_str_is_short_and_unit_free():
    assert str(Estimate.of([0.412, 0.398, 0.430, 0.405, 0.420])) == "0.412 [0.398, 0.430]"
    assert str(Estimate.of([1.9, 1.85, 2.0])) == "1.90 [1.85, 2.00]"
    assert str(Estimate.of([1234.4])) == "1234 [1234, 1234]"


def test_of_ratios_pairs_the_ith_samples():
    serial = [2.0, 4.0, 2.2, 3.9, 2.1]  # a machine drifting between rounds
    concurrent = [1.0, 2.0, 1.1, 1.95, 1.05]
    est = Estimate.of_ratios(serial, concurrent)
    assert est.median == est.low == est.high == 2.0  # pairing cancels the drift
    assert est.n == 5
    unpaired = ratio(Estimate.of(serial), Estimate.of(concurrent))
    assert unpaired.low < 1.1 and unpaired.high > 3.9  # much wider


def test_of_ratios_rejects_unpaired_or_zero_denominators():
    with pytest.raises(ValueError):
        Estimate.of_ratios([1.0, 2.0], [1.0])
    with pytest.raises(ValueError):
        Estimate.of_ratios([1.0, 2.0], [1.0, 0.0])


def test_ratio_of_unpaired_estimates_is_conservative():
    a = Estimate(6.0, 5.0, 8.0, 5, 0.95)
    b = Estimate(2.0, 1.0, 4.0, 7, 0.96)
    r = ratio(a, b)
    assert (r.median, r.low, r.high, r.n) == (3.0, 1.25, 8.0, 5)
    assert r.confidence == pytest.approx(0.91)
    with pytest.raises(ValueError):
        ratio(a, Estimate(1.0, 0.0, 2.0, 5, 0.9))
