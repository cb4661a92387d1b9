"""Replay tokens: urlsafe base64 of zlib-compressed JSON, choices run-length encoded."""

from __future__ import annotations

import base64
import json
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


def _rle(values: Sequence[int]) -> str:
    """``[1, 1, 1, 0]`` -> ``"1*3.0"``."""
    runs: list[list[int]] = []  # [value, count]
    for value in values:
        if runs and runs[-1][0] == value:
            runs[-1][1] += 1
        else:
            runs.append([value, 1])
    return ".".join(f"{value}*{count}" if count > 1 else str(value) for value, count in runs)


def _unrle(text: str) -> list[int]:
    """``"1*3.0"`` -> ``[1, 1, 1, 0]``."""
    values: list[int] = []
    for part in filter(None, text.split(".")):
        value, _, count = part.partition("*")
        values.extend([int(value)] * (int(count) if count else 1))
    return values


def encode(strategy: str, seed: int, index: int, granularity: str, workers: int,
           choices: Sequence[int]) -> str:
    """The replay token of schedule ``index`` that made ``choices``."""
    data = {"s": strategy, "seed": seed, "i": index,
            "py": f"{sys.version_info[0]}.{sys.version_info[1]}",
            "g": granularity, "w": workers, "c": _rle(choices)}
    raw = zlib.compress(json.dumps(data, separators=(",", ":")).encode(), 9)
    return PREFIX + base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(token: str) -> TokenData:
    """Token -> dict(strategy, seed, index, python, granularity, workers, choices)."""
    if not isinstance(token, str) or not token.startswith(PREFIX):
        raise ValueError(f"not an explore replay token: {token!r}")
    body = token[len(PREFIX):].strip()
    try:
        raw = zlib.decompress(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
        data = json.loads(raw)
        return {"strategy": data["s"], "seed": data["seed"], "index": data["i"],
                "python": data["py"], "granularity": data["g"], "workers": data["w"],
                "choices": _unrle(data["c"])}
    except (ValueError, KeyError, zlib.error) as exc:
        raise ValueError(f"corrupt explore replay token ({exc})") from None
