"""process mode: N child processes, one worker each."""

from __future__ import annotations

from .parent import run_children
from .request import RunOutcome, RunRequest


def run(request: RunRequest) -> RunOutcome:
    return run_children(request, processes=request.spec.workers, threads=1)
