"""Deterministic scheduler for ``explore`` mode: find, report and replay races."""
from .engine import ExploreResult, Finding, ReplayDiverged, explore
from .token import decode as decode_token

__all__ = ["explore", "ExploreResult", "Finding", "ReplayDiverged", "decode_token"]
