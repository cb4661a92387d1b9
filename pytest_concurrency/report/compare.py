"""Comparing a measurement with an earlier one: the rules the baseline, the
``--concurrency-compare-fail`` option and the ``compare`` command share.

A change counts only when the current interval lies wholly beyond the
threshold: for a lower-is-better metric (wall time), "regressed" means even
the interval's low end is more than ``threshold`` above the baseline's median;
"improved" means even its high end is below the baseline divided by
``1 + threshold``.  Anything in between is "unchanged"; no baseline is "new".
"""

from __future__ import annotations

import dataclasses
import math
import re
from typing import TYPE_CHECKING, TypedDict

from .. import parsing

if TYPE_CHECKING:
    from .records import BaselineVerdict, Metric

DEFAULT_THRESHOLD = 0.10
MODES = ("thread", "process", "hybrid")  # compared; explore's tracing is no benchmark
STATS = ("median",)  # every stored value is a median
_RULE = re.compile(
    r"\s*(?:(?P<stat>[a-z]+)\s*:)?\s*(?P<number>[0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*(?P<pct>%?)\s*",
    re.ASCII)


class CompareError(ValueError):
    """A comparison threshold that cannot be understood."""


@dataclasses.dataclass(frozen=True)
class Rule:
    """``median:10%``: fail when the median got worse by more than 10%."""

    stat: str
    threshold: float  # a fraction: 0.1 for 10%

    def __str__(self) -> str:
        return f"{self.stat}:{self.threshold * 100:g}%"


def parse_rule(text: str, what: str = "--concurrency-compare-fail") -> Rule:
    """``'median:10%'``, ``'10%'`` or ``'0.1'`` -> Rule('median', 0.1)."""
    match = _RULE.fullmatch(str(text))
    if match is None:
        raise CompareError(f"{what}={parsing.shown(text)}: expected a threshold like "
                           "'median:10%', '10%' or '0.1'")
    stat = match["stat"] or "median"
    if stat not in STATS:
        raise CompareError(f"{what}={parsing.shown(text)}: {parsing.shown(stat)} is not a "
                           "statistic it can compare "
                           f"(use {', '.join(STATS)}; every stored value is a median)")
    try:
        value = parsing.real(match["number"], text=True)
    except parsing.NumberError as exc:  # digits beyond a float's range
        raise CompareError(f"{what}={parsing.shown(text)}: the threshold {exc}") from None
    threshold = value / 100 if match["pct"] else value
    if threshold <= 0:
        raise CompareError(f"{what}={parsing.shown(text)}: the threshold must be above 0")
    return Rule(stat, threshold)


class Measured(TypedDict):
    """What identifies a measurement: the fields of a report entry that ``key`` reads."""

    test: str
    mode: str
    layout: str


def key(entry: Measured) -> str:
    """What identifies the same measurement across runs: test, mode and layout."""
    return f"{entry['test']}|{entry['mode']}|{entry['layout']}"


def judge(old: Metric | None, new: Metric | None, threshold: float,
          metric: str = "wall") -> BaselineVerdict:
    """The baseline verdict of metric ``new`` (a document metric) against ``old``.
    A ratio too large for a float (a baseline of 1e-320 s) is no number the
    report can hold: the verdict stands, its ratio is None."""
    verdict: BaselineVerdict = {"status": "new", "metric": metric, "ratio": None,
                                "baseline": None, "threshold": threshold}
    if old is None or new is None or not old.get("value"):
        return verdict
    base = old["value"]
    ratio, low, high = (_ratio(new[field], base) for field in ("value", "low", "high"))
    if new.get("better", "lower") == "higher":  # express as "how much worse": > 1 is worse
        low, high = _ratio(1, high), _ratio(1, low)
    if low > 1 + threshold:
        status = "regressed"
    elif high < 1 / (1 + threshold):
        status = "improved"
    else:
        status = "unchanged"
    verdict["status"] = status
    verdict["ratio"] = ratio if math.isfinite(ratio) else None
    verdict["baseline"] = base
    return verdict


def _ratio(a: float, b: float) -> float:
    """``a / b``, infinite (with the sign of ``a``) where that overflows or ``b`` is 0."""
    try:
        return a / b if b else math.copysign(math.inf, a) if a else 1.0
    except OverflowError:
        return math.copysign(math.inf, a) * math.copysign(1.0, b)


def regression(old: Metric, new_value: float, new_low: float,
               new_high: float) -> tuple[float, float, float]:
    """Slowdown of a lower-is-better metric as fractions (median, low, high):
    0.25 means 25% slower than ``old``'s median."""
    base = old["value"]
    return new_value / base - 1, new_low / base - 1, new_high / base - 1
