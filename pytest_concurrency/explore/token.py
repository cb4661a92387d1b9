"""Replay tokens: urlsafe base64 of zlib-compressed JSON, choices run-length encoded."""

from __future__ import annotations

import base64
import json
import re
import sys
import zlib
from collections.abc import Sequence
from typing import TypedDict

PREFIX = "x1."


class TokenData(TypedDict):
    """What a token records: enough to run its schedule again."""

    strategy: str
    seed: int
    index: int  # of the schedule
    python: str  # "3.12": switch points differ between versions
    granularity: str
    workers: int  # the actors (threads they start are not counted)
    choices: list[int]  # the schedule's choices (see Schedule.choices)
    exploration: int  # which exploration of its test (0: the first; a test may run several)


def _rle(values: Sequence[int]) -> str:
    """``[1, 1, 1, 0]`` -> ``"1*3.0"``."""
    runs: list[list[int]] = []  # [value, count]
    for value in values:
        if runs and runs[-1][0] == value:
            runs[-1][1] += 1
        else:
            runs.append([value, 1])
    return ".".join(f"{value}*{count}" if count > 1 else str(value) for value, count in runs)


MAX_CHOICES = 10_000_000  # in one token: a schedule of ten million steps
MAX_WORKERS = 10_000
_MAX_JSON = 64 * 1024 * 1024  # bytes a token may decompress to
_RUN = re.compile(r"(-?[0-9]{1,9})(?:\*([0-9]{1,12}))?", re.ASCII)
_PYTHON = re.compile(r"[0-9]{1,3}\.[0-9]{1,4}", re.ASCII)


class TokenError(ValueError):
    """A replay token that cannot be used; the message says why."""


def _unrle(text: str) -> list[int]:
    """``"1*3.0"`` -> ``[1, 1, 1, 0]``: worker indices (the actors', then threads
    or tasks they started; ``-(i + 1)``: worker i was detached), at most
    MAX_CHOICES of them.  An index no worker has makes the replay diverge."""
    values: list[int] = []
    for part in filter(None, text.split(".")):
        run = _RUN.fullmatch(part)
        if run is None:
            raise TokenError(f"choice {part[:20]!r} is not a worker index")
        value, count = int(run[1]), int(run[2] or 1)
        if len(values) + count > MAX_CHOICES:
            raise TokenError(f"more than {MAX_CHOICES:,} choices")
        values.extend([value] * count)
    return values


def encode(strategy: str, seed: int, index: int, granularity: str, workers: int,
           choices: Sequence[int], exploration: int = 0) -> str:
    """The replay token of schedule ``index`` that made ``choices``, in the
    ``exploration``-th exploration of its test."""
    data: dict[str, object] = {"s": strategy, "seed": seed, "i": index,
                               "py": f"{sys.version_info[0]}.{sys.version_info[1]}",
                               "g": granularity, "w": workers, "c": _rle(choices)}
    if exploration:
        data["x"] = exploration
    raw = zlib.compress(json.dumps(data, separators=(",", ":")).encode(), 9)
    return PREFIX + base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(token: str) -> TokenData:
    """Token -> dict(strategy, seed, index, python, granularity, workers, choices,
    exploration),
    every field of its type and range; TokenError (a ValueError) saying what is
    wrong with it otherwise."""
    if not isinstance(token, str) or not token.strip().startswith(PREFIX):
        raise TokenError(f"not an explore replay token (those start with {PREFIX!r})")
    body = token.strip()[len(PREFIX):]
    try:
        return _fields(_json(body))
    except TokenError as exc:
        raise TokenError(f"corrupt explore replay token ({exc})") from None


def _json(body: str) -> object:
    """The JSON in a token's body (after its prefix)."""
    try:
        inflate = zlib.decompressobj()
        raw = inflate.decompress(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)),
                                 _MAX_JSON)
    except (ValueError, zlib.error):
        raise TokenError("not base64 of compressed data") from None
    if inflate.unconsumed_tail:
        raise TokenError("it decompresses to more than a token can hold")
    try:
        return json.loads(raw)
    except RecursionError:
        raise TokenError("nested too deeply") from None
    except ValueError:  # not JSON, or an integer of thousands of digits
        raise TokenError("not JSON of a schedule") from None


def _fields(data: object) -> TokenData:
    """The token's fields, checked."""
    from .instrument import GRANULARITIES
    from .strategies import STRATEGIES

    if not isinstance(data, dict):
        raise TokenError("not a record of a schedule")
    missing = [key for key in ("s", "seed", "i", "py", "g", "w", "c") if key not in data]
    if missing:
        raise TokenError(f"no {missing[0]!r} field")

    def whole(key: str, what: str, minimum: int, maximum: int) -> int:
        value = data[key]
        if isinstance(value, bool) or not isinstance(value, int) or \
                not minimum <= value <= maximum:
            raise TokenError(f"{key!r} is {_shown(value)}, not {what}")
        return value

    def choice(key: str, what: str, choices: tuple[str, ...]) -> str:
        value = data[key]
        if value not in choices or not isinstance(value, str):
            raise TokenError(f"{key!r} is {_shown(value)}, not {what}")
        return value

    strategy = choice("s", "a strategy", STRATEGIES)
    # "await": the schedules of asyncio tasks, which switch only where they await
    granularity = choice("g", "a granularity", (*GRANULARITIES, "await"))
    seed = whole("seed", "a seed", 0, 2**64 - 1)
    index = whole("i", "a schedule number", 0, 2**63 - 1)
    workers = whole("w", "a number of workers", 1, MAX_WORKERS)
    python = data["py"]
    if not isinstance(python, str) or not _PYTHON.fullmatch(python):
        raise TokenError(f"'py' is {_shown(python)}, not a Python version")
    if not isinstance(data["c"], str):
        raise TokenError(f"'c' is {_shown(data['c'])}, not the schedule's choices")
    exploration = whole("x", "an exploration's number", 0, 2**31 - 1) if "x" in data else 0
    return {"strategy": strategy, "seed": seed, "index": index, "python": python,
            "granularity": granularity, "workers": workers,
            "choices": _unrle(data["c"]), "exploration": exploration}


def _shown(value: object) -> str:
    text = json.dumps(value) if value is None or isinstance(value, (str, int, float)) \
        else type(value).__name__
    return text if len(text) <= 40 else text[:37] + "..."
