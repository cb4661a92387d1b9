"""One execution model per module, each with ``run(request) -> RunOutcome``;
:func:`run` calls the one the request's spec asks for.

``thread.py``, ``process.py``, ``hybrid.py`` and ``explore.py`` are the models;
``workers.py`` (threads running a body) is the machinery they share; process
and hybrid mode run children through ``parent.py`` (the parent's side: start,
watch, reap), ``child.py`` (what runs inside a child) and ``crossing.py`` (what
crosses between the two); ``request.py`` holds the
request and the outcome.  A runner module is imported only when a run needs it.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from .request import (
    Actors,
    Calls,
    ExploreOptions,
    RunError,
    RunOutcome,
    RunRequest,
    SetupFailed,
    seed_of,
)

__all__ = ["Actors", "Calls", "ExploreOptions", "RunError", "RunOutcome", "RunRequest",
           "SetupFailed", "run", "runner", "seed_of", "warm"]


MODES = ("thread", "process", "hybrid", "explore")


def runner(mode: str) -> ModuleType:
    """The module of ``mode``'s execution model, imported on first use (by
    :func:`run`; a caller that measures a run imports it first, so that the
    first run's CPU time is not the import's)."""
    if mode not in MODES:
        raise NotImplementedError(f"{mode} mode is not available in this version")
    return importlib.import_module(f"{__name__}.{mode}")


def run(request: RunRequest) -> RunOutcome:
    """Run ``request`` under the execution model of its spec's mode."""
    outcome: RunOutcome = runner(request.spec.mode).run(request)
    return outcome


def warm(threads: int) -> None:
    """Have ``threads`` idle worker threads for thread mode in this process now,
    rather than started by the run that needs them (``workers.Pool.warm``)."""
    from .workers import POOL

    POOL.warm(threads)
