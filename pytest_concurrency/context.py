"""Who is the calling worker: a thread-local set by the runners (a context variable
for the asyncio tasks explore runs on one thread)."""

from __future__ import annotations

import contextlib
import contextvars
import threading
from collections.abc import Awaitable, Iterator
from typing import Any, NamedTuple


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
    ``multiprocessing`` one across processes, a cooperative one under explore, an
    ``asyncio.Barrier`` for explore's tasks, which ``barrier.wait_async()`` awaits)."""

    barrier: threading.Barrier


_local = threading.local()
# The worker an explore task is, in its own context (the tasks share one thread).
_TASK: contextvars.ContextVar[tuple[WorkerInfo, RunContext] | None] = \
    contextvars.ContextVar("concurrency_task", default=None)


def current_worker() -> WorkerInfo:
    """The WorkerInfo of the calling worker; RuntimeError outside a worker."""
    info = worker_or_none()
    if info is None:
        raise RuntimeError(
            "current_worker() was called outside a concurrency worker; it only has a "
            "value inside a body run by @pytest.mark.concurrency or concurrency.run()"
        )
    return info


def worker_or_none() -> WorkerInfo | None:
    """The calling worker's WorkerInfo, or None outside a worker (never raises)."""
    info = getattr(_local, "info", None)
    if info is None:
        task = _TASK.get()
        if task is not None:
            return task[0]
    return info


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
        task = _TASK.get()
        run = task[1] if task is not None else None
    if run is None:
        raise RuntimeError(
            "the concurrency barrier can only be used inside a concurrency worker"
        )
    return run


def enter(info: WorkerInfo, run: RunContext) -> None:
    _local.info = info
    _local.run = run


def enter_task(info: WorkerInfo, run: RunContext) -> None:
    """The calling asyncio task is worker ``info`` (for the rest of its context)."""
    _TASK.set((info, run))


def set_iteration(iteration: int) -> None:
    if getattr(_local, "info", None) is None:
        task = _TASK.get()
        if task is not None:
            _TASK.set((task[0]._replace(iteration=iteration), task[1]))
            return
    _local.info = _local.info._replace(iteration=iteration)


def leave() -> None:
    _local.info = None
    _local.run = None


CallKey = tuple[int, int]  # (worker index, iteration)

# The call a thread works for when it is no worker: a helper thread the body
# started with a copy of its context (asyncio.to_thread, run_in_executor with
# copy_context().run), whose output and log records are that call's.
CALL: contextvars.ContextVar[CallKey | None] = contextvars.ContextVar(
    "concurrency_call", default=None)


def call_key() -> CallKey | None:
    """The call the current thread works for: a worker's own, or the one whose
    context a helper thread runs in."""
    info = worker_or_none()
    return CALL.get() if info is None else (info.index, info.iteration)


async def in_call(awaitable: Awaitable[Any]) -> Any:
    """Await ``awaitable`` in whatever context the task runs in (pytest-asyncio's
    runner keeps its own, where its async fixtures live), marked as the calling
    call's: the threads it starts with a copy of that context capture for it."""
    CALL.set(call_key())  # run by the task, on the worker's thread
    return await awaitable
