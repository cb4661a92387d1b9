"""One execution model per module, each with ``run(request) -> RunOutcome``;
:func:`run` calls the one the request's spec asks for.

``thread.py``, ``process.py``, ``hybrid.py`` and ``explore.py`` are the models;
``workers.py`` (threads running a body) and ``children.py`` (child processes
running threads) are the machinery they share; ``request.py`` holds the
request and the outcome.  A runner module is imported only when a run needs it.
"""

from __future__ import annotations

from .request import Actors, Calls, ExploreOptions, RunError, RunOutcome, RunRequest, seed_of

__all__ = ["Actors", "Calls", "ExploreOptions", "RunError", "RunOutcome", "RunRequest", "run",
           "seed_of"]


def run(request: RunRequest) -> RunOutcome:
    """Run ``request`` under the execution model of its spec's mode."""
    mode = request.spec.mode
    if mode == "thread":
        from . import thread

        return thread.run(request)
    if mode == "process":
        from . import process

        return process.run(request)
    if mode == "hybrid":
        from . import hybrid

        return hybrid.run(request)
    if mode == "explore":
        from . import explore

        return explore.run(request)
    raise NotImplementedError(f"{mode} mode is not available in this version")
