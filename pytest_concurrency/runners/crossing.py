"""What crosses the boundary between the parent and its child processes in
process and hybrid mode: the job a child is given (pickled for spawn and
forkserver), the objects both sides share while a run goes on (where each
worker is, the stop flags, the two barriers) and the signal the parent sends
for a stack dump.

The parent's side is ``parent.py`` (start, watch, reap); the child's is
``child.py`` (what runs inside one child).
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
import signal
import threading
from collections.abc import Callable
from typing import Any, TypeAlias

from .request import Calls
from .workers import Progress, Stop

# What a child runs: (target, args, kwargs); pickled for spawn/forkserver.
Payload: TypeAlias = tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]]

DUMP_SIGNAL = signal.SIGUSR1  # the parent asks a child for every thread's stack


@dataclasses.dataclass
class ChildJob:
    """Everything one child needs; pickled for spawn/forkserver."""

    process_index: int
    parent_pid: int | None  # None: started by a forkserver, not by the parent
    threads: int
    workers: int
    mode: str
    iterations: int
    timeout: float
    tb_style: str
    settings: dict[str, Any]  # pytest ini values and options, for assertion explanations
    stdout_path: str
    stderr_path: str
    iteration_barrier: threading.Barrier
    user_barrier: threading.Barrier
    progress: Progress  # shared arrays: iteration and thread ident per worker
    stop: Stop  # shared flag: a worker failed, stop after the next iteration
    payload: Payload | bytes  # (target, args, kwargs), or bytes of it for spawn/forkserver
    modules: dict[str, str]  # modules to import with asserts rewritten (spawn/forkserver)
    jitter: int  # start-jitter seed
    timeout_cap: float = 0.0  # a child still making progress may go on until then
    calls: Calls | None = None  # per-worker fixtures, set up in the child (fork only)
    leaks: str = "fail"  # the item's policy for the threads its body leaves running



@dataclasses.dataclass
class Shared:
    """What the workers of a run share across its processes: where each one is,
    the stop flags and the two barriers.  Making them costs more than a
    millisecond (eight named semaphores, four shared-memory blocks) before the
    first child can be forked, so a run that ended cleanly (every child exited
    0, nothing failed, nothing left waiting or broken) gives them back for the
    next run of as many workers, which finds them as new."""

    owner: int  # the process that made them: a child's copies are not its own
    key: tuple[str, int]  # (start method, workers)
    progress: Progress
    stop: Stop
    barriers: tuple[threading.Barrier, threading.Barrier]

    @classmethod
    def take(cls, ctx: multiprocessing.context.BaseContext, method: str, n: int) -> Shared:
        spare = _SPARE.pop((method, n), None)
        if spare is not None and spare.owner == os.getpid():
            for i in range(n):
                spare.progress.iterations[i] = -1
                spare.progress.idents[i] = 0
            spare.stop.requested.value = spare.stop.decided.value = 0
            return spare
        stop = Stop(ctx.RawValue("b", 0), ctx.RawValue("b", 0))
        return cls(os.getpid(), (method, n),
                   Progress(ctx.RawArray("q", [-1] * n), ctx.RawArray("Q", n)), stop,
                   (ReleasingBarrier(ctx, n, action=stop), ctx.Barrier(n)))

    def give_back(self) -> None:
        if self.owner == os.getpid() and not self.stop.requested.value and all(
                not barrier.broken and barrier.n_waiting == 0 for barrier in self.barriers):
            _SPARE[self.key] = self


class ReleasingBarrier(threading.Barrier):
    """The iteration barrier across processes: ``wait``, ``abort``, ``broken``,
    ``n_waiting`` and the ``action`` of :class:`threading.Barrier`, for threads
    of any process.

    ``multiprocessing``'s barrier is threading's on a shared condition: whoever
    arrives last wakes each waiter in turn and waits until that one has woken
    (and they then take the condition's lock one by one, twice), a chain of
    context switches between processes on the critical path of every
    iteration.  Here the last to arrive runs the action, opens the gate of its
    generation for the others and goes on without waiting for them.  Two gates,
    used by alternate generations: a worker that is released and arrives at the
    next generation at once waits at the other gate, so it cannot take a token
    meant for a slower worker still leaving the previous one (no worker gets two
    generations ahead: the next needs every worker, that one too).  Broken for
    good by :meth:`abort` or a failing action; runs that end so are not reused.
    """

    def __init__(self, ctx: multiprocessing.context.BaseContext, parties: int,
                 action: Callable[[], object] | None = None) -> None:
        # threading.Barrier.__init__ is not called: its state lives in shared memory
        self._parties = parties
        self._action = action
        self._lock = ctx.Lock()
        self._gates = (ctx.Semaphore(0), ctx.Semaphore(0))
        self._shared = ctx.RawArray("q", 3)  # arrived, generation, broken

    def wait(self, timeout: float | None = None) -> int:
        shared = self._shared
        with self._lock:
            if shared[2]:
                raise threading.BrokenBarrierError
            index, generation = shared[0], shared[1]
            if index + 1 < self._parties:
                shared[0] = index + 1
            else:
                if self._action is not None:
                    try:
                        self._action()
                    except BaseException:
                        self._break()
                        raise
                shared[0] = 0
                shared[1] = generation + 1
                gate = self._gates[generation % 2]
                for _ in range(index):
                    gate.release()
                return index
        if not self._gates[generation % 2].acquire(timeout=timeout):
            self.abort()  # as threading's: a wait that times out breaks the barrier
            raise threading.BrokenBarrierError
        if shared[1] == generation:  # woken by abort(), not released
            raise threading.BrokenBarrierError
        return index

    def _break(self) -> None:
        """Under the lock: break the barrier and wake everyone waiting at it."""
        shared = self._shared
        if not shared[2]:
            shared[2] = 1
            gate = self._gates[shared[1] % 2]
            for _ in range(shared[0]):
                gate.release()

    def abort(self) -> None:
        with self._lock:
            self._break()

    def reset(self) -> None:
        raise NotImplementedError("a broken iteration barrier is not reused")

    @property
    def parties(self) -> int:
        return self._parties

    @property
    def n_waiting(self) -> int:
        return 0 if self._shared[2] else int(self._shared[0])

    @property
    def broken(self) -> bool:
        return bool(self._shared[2])


_SPARE: dict[tuple[str, int], Shared] = {}  # one set per (start method, workers)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_SPARE.clear)  # the parent's, not a child's
