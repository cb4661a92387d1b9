"""Who is the calling worker: a thread-local set by the runners."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import NamedTuple


class WorkerInfo(NamedTuple):
    """The calling worker of a concurrent run."""

    # index and count shadow tuple.index() and tuple.count(): public fields, kept so
    index: int  # type: ignore[assignment]  # 0 .. count-1, unique over all processes and threads
    count: int  # type: ignore[assignment]  # workers in the run
    mode: str
    process_index: int  # which child process (0 in thread/explore mode)
    thread_index: int  # which thread within its process
    iteration: int  # current iteration (or actor round) of this worker
    pid: int

    def __repr__(self) -> str:
        where = f"process {self.process_index} thread {self.thread_index}, " \
            if self.mode == "hybrid" else ""
        return (f"<worker {self.index} of {self.count}, {self.mode} mode, {where}"
                f"iteration {self.iteration}, pid {self.pid}>")


class RunContext(NamedTuple):
    """What every worker of one run shares: the user-visible barrier (a
    ``multiprocessing`` one across processes, a cooperative one under explore)."""

    barrier: threading.Barrier


_local = threading.local()


def current_worker() -> WorkerInfo:
    """The WorkerInfo of the calling worker; RuntimeError outside a worker."""
    info = getattr(_local, "info", None)
    if info is None:
        raise RuntimeError(
            "current_worker() was called outside a concurrency worker; it only has a "
            "value inside a body run by @pytest.mark.concurrency or concurrency.run()"
        )
    return info


def worker_or_none() -> WorkerInfo | None:
    """The calling worker's WorkerInfo, or None outside a worker (never raises)."""
    return getattr(_local, "info", None)


@contextlib.contextmanager
def preparing(info: WorkerInfo) -> Iterator[None]:
    """While a call's fixtures are set up or torn down (by the thread that runs
    the workers), ``current_worker()`` is the worker they are for."""
    saved = getattr(_local, "info", None), getattr(_local, "run", None)
    _local.info, _local.run = info, None
    try:
        yield
    finally:
        _local.info, _local.run = saved


def current_run() -> RunContext:
    run = getattr(_local, "run", None)
    if run is None:
        raise RuntimeError(
            "the concurrency barrier can only be used inside a concurrency worker"
        )
    return run


def enter(info: WorkerInfo, run: RunContext) -> None:
    _local.info = info
    _local.run = run


def set_iteration(iteration: int) -> None:
    _local.info = _local.info._replace(iteration=iteration)


def leave() -> None:
    _local.info = None
    _local.run = None
