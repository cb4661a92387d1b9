"""hybrid mode: P child processes, each running T threads.

The layout is the process runner's, with ``spec.threads`` workers per child
run by the thread runner's machinery inside it.  Worker ``p * T + t`` is
thread ``t`` of process ``p``, so indices 0..P*T-1 are unique over the run.
"""

from __future__ import annotations

from . import RunOutcome
from .process import run_processes


def run(spec, target, args, kwargs, tb_style: str, arg_kind: str, config=None) -> RunOutcome:
    return run_processes(spec, target, args, kwargs, tb_style, arg_kind, config,
                         processes=spec.processes, threads=spec.threads)
