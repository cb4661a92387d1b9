"""Deterministic scheduler for ``explore`` mode: find, report and replay races.

The engine is imported on first use (``explore.explore``...), so that reading
``explore.strategies.STRATEGIES`` costs a pytest session nothing.
"""

from __future__ import annotations

from typing import Any

__all__ = ["ExploreResult", "Finding", "ReplayDiverged", "decode_token", "explore"]


def __getattr__(name: str) -> Any:
    if name in ("ExploreResult", "Finding", "ReplayDiverged", "explore"):
        from . import engine

        return getattr(engine, name)
    if name == "decode_token":
        from .token import decode

        return decode
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
