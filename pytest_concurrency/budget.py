"""``concurrency_budget`` limits: parsing them and checking measurements against them.

Values are kept in canonical units: seconds (``wall``, ``cpu``), bytes
(``memory``), body calls per second (``throughput``), plain ratios
(``speedup``; ``efficiency`` as a fraction, 0.8 for 80%) and the allowed
slowdown against a baseline as a fraction (``regression``, 0.1 for 10%).

Checking is noise-aware: a limit passes only when the whole confidence
interval of the measured median is on the right side of it, fails only when
the whole interval is on the wrong side, and is inconclusive otherwise.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import re
from collections.abc import Iterable, Mapping

from pytest_concurrency import parsing
from pytest_concurrency.stats import Estimate

KEYS = ("wall", "cpu", "memory", "speedup", "efficiency", "throughput", "regression")

_TIME_UNITS = {
    "": 1.0,
    "s": 1.0,
    "ms": 1e-3,
    "us": 1e-6,
    "\u00b5s": 1e-6,
    "\u03bcs": 1e-6,
    "min": 60.0,
}
_MEMORY_UNITS = {
    "": 1,
    "b": 1,
    "kb": 10**3,
    "mb": 10**6,
    "gb": 10**9,
    "tb": 10**12,
    "kib": 2**10,
    "mib": 2**20,
    "gib": 2**30,
    "tib": 2**40,
}
_RATE_UNITS = {"": 1.0, "/s": 1.0, "k/s": 1e3, "m/s": 1e6}
_FACTOR_UNITS = {"": 1.0, "x": 1.0, "\u00d7": 1.0}
_FRACTION_UNITS = {"": 1.0, "%": 0.01}


@dataclasses.dataclass(frozen=True)
class _Kind:
    units: Mapping[str, float]
    default_op: str
    expected: str
    allow_zero: bool = False
    bare_is_fraction: bool = False  # bare numbers above 1 are a likely '%' slip


_KINDS = {
    "wall": _Kind(_TIME_UNITS, "<=", "expected seconds like 0.25, '250ms', '1.5s' or '2min'"),
    "cpu": _Kind(_TIME_UNITS, "<=", "expected seconds like 0.25, '250ms', '1.5s' or '2min'"),
    "memory": _Kind(
        _MEMORY_UNITS, "<=", "expected bytes like 67108864, '64MiB', '500MB' or '2GiB'"
    ),
    "speedup": _Kind(_FACTOR_UNITS, ">=", "expected a factor like 1.5, '1.5x' or '>=1.5'"),
    "efficiency": _Kind(
        _FRACTION_UNITS,
        ">=",
        "expected a fraction like 0.8 or a percentage like '80%' or '>=80%'",
        bare_is_fraction=True,
    ),
    "throughput": _Kind(
        _RATE_UNITS, ">=", "expected body calls per second like 5000, '5000/s' or '>=5k/s'"
    ),
    "regression": _Kind(
        _FRACTION_UNITS,
        "<=",
        "expected an allowed slowdown like 0.1 or '10%'",
        allow_zero=True,
        bare_is_fraction=True,
    ),
}

_NUMBER = r"(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?"
_SPEC = re.compile(rf"\s*(?P<op><=|>=|<|>)?\s*(?P<number>{_NUMBER})\s*(?P<unit>[^\s\d.]*)\s*")


class BudgetError(ValueError):
    """A ``concurrency_budget`` argument that cannot be understood."""


@dataclasses.dataclass(frozen=True)
class Limit:
    """One limit: ``<key> <op> <value>``, value in canonical units."""

    key: str
    op: str
    value: float
    text: str  # what the user wrote

    @property
    def upper(self) -> bool:
        """Whether the measured value must stay below the limit."""
        return self.op in ("<=", "<")

    def __str__(self) -> str:
        return f"{self.key} {self.op} {format_value(self.key, self.value)}"


@dataclasses.dataclass(frozen=True)
class Verdict:
    """The outcome of checking one limit: pass, fail, inconclusive or unmeasured."""

    limit: Limit
    status: str
    measured: Estimate | None
    message: str


def _error(key: str, value: object, problem: str) -> BudgetError:
    return BudgetError(f"concurrency_budget: {key}={parsing.shown(value)}: {problem}")


def _parse_one(key: str, value: object) -> Limit:
    kind = _KINDS[key]
    if isinstance(value, str):
        match = _SPEC.fullmatch(value)
        if match is None:
            raise _error(key, value, kind.expected)
        scale = kind.units.get(match["unit"].lower())
        if scale is None:
            raise _error(key, value, kind.expected)
        op = match["op"] or kind.default_op
        given: object = match["number"]
        bare = not match["unit"]
        text = value
    else:
        op, given, scale, bare, text = kind.default_op, value, 1.0, True, parsing.shown(value)
    try:
        number = parsing.real(given, minimum=0, text=True)
    except parsing.NumberError as exc:
        problem = {"large": f"{exc}; ", "range": "must not be negative; "}.get(exc.reason, "")
        raise _error(key, value, problem + kind.expected) from None
    if not math.isfinite(number * scale):
        raise _error(key, value, f"is too large; {kind.expected}")
    if number == 0 and not kind.allow_zero:
        raise _error(key, value, f"must be positive; {kind.expected}")
    if bare and kind.bare_is_fraction and number > 1:
        raise _error(
            key,
            value,
            f"a bare number is a fraction (0.1 is 10%); write '{number:g}%' for a percentage",
        )
    return Limit(key, op, number * scale, text)


def parse(kwargs: Mapping[str, object]) -> tuple[Limit, ...]:
    """Validate and parse the keyword arguments of a ``concurrency_budget`` marker.

    Limits come back in the order of :data:`KEYS`.
    """
    for key in kwargs:
        if key not in _KINDS:
            close = difflib.get_close_matches(key, KEYS, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise BudgetError(
                f"concurrency_budget: unknown key {parsing.shown(key)}={parsing.shown(kwargs[key])}"
                f"{hint}; expected one "
                f"of " + ", ".join(KEYS)
            )
    return tuple(_parse_one(key, kwargs[key]) for key in KEYS if key in kwargs)


def _num(value: float) -> str:
    """Up to three significant digits, without an exponent for large values."""
    text = f"{value:.3g}"
    if "e" in text and abs(value) >= 1:
        return f"{value:.0f}"
    return text


def _scaled(value: float, units: tuple[tuple[float, str], ...]) -> str:
    """``value`` in the largest of ``units`` (ascending) it reaches after rounding."""
    scale, suffix = units[0]
    for candidate, candidate_suffix in units[1:]:
        if abs(value) >= candidate * 0.9995:
            scale, suffix = candidate, candidate_suffix
    return f"{_num(value / scale)}{suffix}"


_TIME_DISPLAY = ((1e-6, "\u00b5s"), (1e-3, "ms"), (1.0, "s"))
_MEMORY_DISPLAY = ((1, "B"), (2**10, "KiB"), (2**20, "MiB"), (2**30, "GiB"), (2**40, "TiB"))
_RATE_DISPLAY = ((1, "/s"), (1e3, "k/s"), (1e6, "M/s"))


def format_value(key: str, value: float) -> str:
    """``value`` of ``key`` (canonical units) with a readable unit: ``312ms``, ``64MiB``."""
    if key in ("wall", "cpu"):
        return "0s" if value == 0 else _scaled(value, _TIME_DISPLAY)
    if key == "memory":
        return _scaled(value, _MEMORY_DISPLAY)
    if key == "throughput":
        return _scaled(value, _RATE_DISPLAY)
    if key == "speedup":
        return f"{_num(value)}x"
    if key in ("efficiency", "regression"):
        return f"{_num(value * 100)}%"
    return _num(value)


def _status(limit: Limit, low: float, high: float) -> str:
    bound = limit.value
    if limit.op == "<=":
        ok, bad = high <= bound, low > bound
    elif limit.op == "<":
        ok, bad = high < bound, low >= bound
    elif limit.op == ">=":
        ok, bad = low >= bound, high < bound
    else:
        ok, bad = low > bound, high <= bound
    return "pass" if ok else "fail" if bad else "inconclusive"


def _percent(confidence: float) -> str:
    rounded = round(confidence * 100)
    if rounded == 100 and confidence < 1:
        return f"{confidence * 100:.1f}%"
    return f"{rounded}%"


def _describe(key: str, estimate: Estimate) -> str:
    def fmt(value: float) -> str:
        return format_value(key, value)

    if estimate.n == 1:
        return f"{fmt(estimate.median)} (1 round)"
    return (
        f"{fmt(estimate.median)} [{fmt(estimate.low)}, {fmt(estimate.high)}] "
        f"(median of {estimate.n} rounds, {_percent(estimate.confidence)} interval)"
    )


_OUTCOMES = {
    ("pass", True): "within budget",
    ("pass", False): "within budget",
    ("fail", True): "over budget",
    ("fail", False): "below the limit",
    ("inconclusive", True): "interval straddles the limit: inconclusive",
    ("inconclusive", False): "interval straddles the limit: inconclusive",
}


def check(limits: Iterable[Limit], measured: Mapping[str, Estimate]) -> list[Verdict]:
    """One verdict per limit, in order, from the estimates measured per key."""
    verdicts = []
    for limit in limits:
        estimate = measured.get(limit.key)
        if estimate is None:
            why = "no baseline to compare with" if limit.key == "regression" else "not measured"
            verdicts.append(Verdict(limit, "unmeasured", None, f"{limit}: {why}"))
            continue
        status = _status(limit, estimate.low, estimate.high)
        message = (
            f"{limit}: measured {_describe(limit.key, estimate)}: {_OUTCOMES[status, limit.upper]}"
        )
        verdicts.append(Verdict(limit, status, estimate, message))
    return verdicts
