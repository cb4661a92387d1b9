"""hybrid mode: P child processes, each running T threads.

The layout is process mode's, with ``spec.threads`` workers per child run by
the thread machinery inside it.  Worker ``p * T + t`` is thread ``t`` of
process ``p``, so indices 0..P*T-1 are unique over the run.
"""

from __future__ import annotations

from .parent import run_children
from .request import RunOutcome, RunRequest


def run(request: RunRequest) -> RunOutcome:
    return run_children(request, processes=request.spec.processes,
                        threads=request.spec.threads)
