"""Medians with distribution-free confidence intervals, for noisy timings.

Timings on a shared machine are skewed and have outliers, so we summarise a
few rounds by their median and bound it by two order statistics: with ``n``
samples sorted, ``[x(k), x(n+1-k)]`` covers the true median with probability
``1 - 2 * P(B <= k-1)`` where ``B ~ Binomial(n, 1/2)`` (the sign-test interval).
No assumption about the shape of the distribution is needed.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence


def median(values: Sequence[float]) -> float:
    """The median of ``values`` (the mean of the two middle ones for even counts)."""
    if not values:
        raise ValueError("median of no values")
    ordered = sorted(values)
    mid = len(ordered) // 2
    if len(ordered) % 2:
        return float(ordered[mid])
    return (ordered[mid - 1] + ordered[mid]) / 2


def _coverage(n: int, k: int) -> float:
    """Probability that ``[x(k), x(n+1-k)]`` (1-based ranks) covers the median."""
    below = sum(math.comb(n, i) for i in range(k)) / 2**n  # P(B <= k-1)
    return 1 - 2 * below


def _rank(n: int, confidence: float) -> tuple[int, float]:
    """The narrowest rank ``k`` reaching ``confidence``, and the coverage achieved.

    With too few samples no rank reaches it: then ``k`` is 1 (min, max) and the
    coverage is what those achieve.
    """
    k, achieved = 1, _coverage(n, 1)
    for candidate in range(2, (n + 1) // 2 + 1):
        coverage = _coverage(n, candidate)
        if coverage < confidence:
            break
        k, achieved = candidate, coverage
    return k, max(achieved, 0.0)


def _fmt(value: float) -> str:
    """Three significant digits, keeping trailing zeros: 0.430, 1.90, 12.0, 1234."""
    if value == 0 or not math.isfinite(value):
        return f"{value:g}"
    if abs(value) >= 999.5:
        return f"{value:.0f}"
    text = f"{value:#.3g}"
    if "e" in text:
        return f"{value:.3g}"
    return text.rstrip(".")


@dataclasses.dataclass(frozen=True)
class Estimate:
    """A median of ``n`` samples and an interval holding the true median with
    probability ``confidence`` (the confidence actually achieved, which is
    below the one asked for when there are too few samples)."""

    median: float
    low: float
    high: float
    n: int
    confidence: float

    @classmethod
    def of(cls, values: Sequence[float], confidence: float = 0.95) -> Estimate:
        """The median of ``values`` with its order-statistic interval."""
        if not 0 < confidence < 1:
            raise ValueError(f"confidence must be between 0 and 1, not {confidence!r}")
        ordered = sorted(float(v) for v in values)
        if not ordered:
            raise ValueError("an estimate needs at least one value")
        if any(math.isnan(v) for v in ordered):
            raise ValueError("cannot estimate from NaN values")
        n = len(ordered)
        k, achieved = _rank(n, confidence)
        return cls(median(ordered), ordered[k - 1], ordered[n - k], n, achieved)

    @classmethod
    def of_ratios(
        cls,
        numerators: Sequence[float],
        denominators: Sequence[float],
        confidence: float = 0.95,
    ) -> Estimate:
        """The estimate of ``numerators[i] / denominators[i]`` over paired rounds.

        Pairing (e.g. serial round i against concurrent round i, run back to
        back) cancels the slow drift of a shared machine that would widen an
        interval computed from two independent estimates.
        """
        if len(numerators) != len(denominators):
            raise ValueError(
                f"paired samples differ in length: {len(numerators)} and {len(denominators)}"
            )
        if any(d == 0 for d in denominators):
            raise ValueError("cannot take a ratio with a zero denominator")
        return cls.of([a / b for a, b in zip(numerators, denominators, strict=True)], confidence)

    def __str__(self) -> str:
        return f"{_fmt(self.median)} [{_fmt(self.low)}, {_fmt(self.high)}]"


def ratio(a: Estimate, b: Estimate) -> Estimate:
    """A conservative estimate of ``a / b`` from two unpaired estimates.

    For positive values the interval is ``[a.low / b.high, a.high / b.low]``; it covers the ratio of
    the medians whenever both intervals cover theirs, so its confidence is at
    least ``a.confidence + b.confidence - 1``.  Prefer
    :meth:`Estimate.of_ratios` when the samples are paired: it is narrower.
    """
    if b.low <= 0:
        raise ValueError(f"cannot divide by an estimate whose interval reaches {b.low!r}")
    return Estimate(
        a.median / b.median,
        min(a.low / b.high, a.low / b.low),  # the smaller divisor when a.low < 0
        max(a.high / b.low, a.high / b.high),
        min(a.n, b.n),
        max(0.0, a.confidence + b.confidence - 1),
    )
