"""The numbers users give (marker arguments, command-line and ini values, budget
limits, comparison thresholds), turned into ints and floats one way.

- A bool is not a number; ints are ``int``; reals any ``numbers.Real`` or
  ``Decimal``.  Text is read only where text is what users write (the command
  line, the ini file, budget strings), as ASCII digits with a sign, a decimal
  point and an exponent for reals; never ``nan``, a Unicode digit or an
  underscore.
- Integers are whole numbers from ``minimum`` to MAX_INT (the most that fits
  in 64 bits: seeds, as replay tokens hold them, and worker counts) or, for
  counts (iterations, schedules), without a maximum.
- Reals are finite: NaN, an infinity (unless ``infinite`` is allowed, for
  values that clamp, like a timeout), an int or text too large for a float
  are errors, never an OverflowError.

Problems are :class:`NumberError`, whose message says what was expected; the
caller names the argument (``workers=0: expected an integer >= 1``), showing
the value with :func:`shown` (a 5,000-digit number is not echoed whole).
"""

from __future__ import annotations

import math
import numbers
import re
import sys
from typing import SupportsFloat, cast

MAX_INT = 2**63 - 1
MAX_DIGITS = 4000  # of an integer written as text
SHOWN_BYTES = 60  # of a bad value, echoed in an error message

_INT_TEXT = re.compile(r"\s*[+-]?0*(?P<digits>[0-9]+)\s*", re.ASCII)
_REAL_TEXT = re.compile(r"\s*[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?\s*",
                        re.ASCII)
_INFINITE_TEXT = re.compile(r"\s*\+?inf(?:inity)?\s*", re.ASCII | re.IGNORECASE)


class NumberError(ValueError):
    """A value that is not the number wanted; the message says what was expected,
    ``reason`` why: "type" (not a number), "text" (text that is no number),
    "nan", "range" (beyond ``minimum``/``above``/``maximum``), "large" (too
    large for a float)."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


def shown(value: object) -> str:
    """``value``'s repr for an error message, on one line within SHOWN_BYTES."""
    from .texts import short_repr

    return short_repr(value, SHOWN_BYTES)


def _kind(value: object) -> str:
    return type(value).__name__


def _is_real(value: object) -> bool:
    """A real number: any ``numbers.Real``, or a ``Decimal`` (registered as a Number
    that is not Complex; decimal is not imported for it)."""
    return isinstance(value, numbers.Real) or (
        isinstance(value, numbers.Number) and not isinstance(value, numbers.Complex))


def integer(value: object, minimum: int = 0, maximum: int | None = MAX_INT,
            text: bool = False) -> int:
    """``value`` as an int from ``minimum`` to ``maximum`` (None: no maximum, for
    counts that never cross a process boundary); ``text``: a string of ASCII
    digits is read too, of at most MAX_DIGITS digits."""
    bound = f" >= {minimum}"
    if isinstance(value, str) and text:
        match = _INT_TEXT.fullmatch(value)
        if match is None:
            raise NumberError(f"expected an integer{bound}", "text")
        if len(match["digits"]) > MAX_DIGITS:  # int() refuses 4,300
            raise NumberError(f"must be an integer{bound}" if "-" in value else
                              f"has more than {MAX_DIGITS:,} digits" if maximum is None else
                              f"must be an integer <= {maximum}", "range")
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise NumberError(f"expected an integer{bound}, got {_kind(value)}", "type")
    if value < minimum:
        raise NumberError(f"must be an integer{bound}", "range")
    if maximum is not None and value > maximum:
        raise NumberError(f"must be an integer <= {maximum}", "range")
    return value


def real(value: object, *, above: float | None = None, minimum: float | None = None,
         infinite: bool = False, text: bool = False, what: str = "a number") -> float:
    """``value`` (an int, float, Fraction or Decimal; with ``text``, a string of
    a number) as a finite float, ``> above`` and ``>= minimum`` when given.
    ``infinite``: an infinity (or an int too large for a float) is allowed and
    comes back as ``math.inf``, for values that clamp.  ``what`` the value is,
    for the messages: ``expected a number of seconds > 0, got str``."""
    bound = f" > {above:g}" if above is not None else \
        f" >= {minimum:g}" if minimum is not None else ""
    if isinstance(value, str) and text:
        if infinite and _INFINITE_TEXT.fullmatch(value):
            return math.inf
        if not _REAL_TEXT.fullmatch(value):
            raise NumberError(f"expected {what}{bound}", "text")
        number = float(value)
    elif isinstance(value, bool) or not _is_real(value):
        raise NumberError(f"expected {what}{bound}, got {_kind(value)}", "type")
    else:
        real = cast("SupportsFloat", value)
        try:
            number = float(real)
        except OverflowError:  # an int or Fraction beyond a float's range
            number = math.inf if real > 0 else -math.inf  # type: ignore[operator]
        except (ValueError, ArithmeticError):  # a signalling Decimal NaN
            number = math.nan
    if math.isinf(number) and number > 0 and not infinite:
        raise NumberError(f"is too large (at most {sys.float_info.max:.3g})", "large")
    if math.isnan(number):
        raise NumberError(f"must be {what}{bound}", "nan")
    if (above is not None and not number > above) or \
            (minimum is not None and not number >= minimum) or number == -math.inf:
        raise NumberError(f"must be {what}{bound}", "range")
    return number
