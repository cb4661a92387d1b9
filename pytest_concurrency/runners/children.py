"""Child processes running threads of workers: what process mode (one worker per
child) and hybrid mode (T per child) share.

Each child runs its workers through :func:`workers.run_workers` and sends one
message back over its own pipe.  The parent waits on the pipes *and* the
process sentinels, so a child that dies is noticed at once and reported with
its signal or exit status, the iteration it was in and the tail of its
stderr (where faulthandler writes).  Children's stdout and stderr go to
files that become sections of the test report.
"""

from __future__ import annotations

import contextlib
import dataclasses
import faulthandler
import gc
import itertools
import multiprocessing
import os
import pickle
import signal
import sys
import threading
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from multiprocessing.connection import Connection, wait
from multiprocessing.reduction import ForkingPickler
from typing import Any, TextIO, TypeAlias, cast

from .. import childcov, cleanup, outcomes, shipping, watchdog
from .. import progress as progress_
from ..context import RunContext, WorkerInfo
from ..spec import RunSpec
from .request import Calls, RunOutcome, RunRequest, seed_of
from .workers import RECHECK, Progress, Stop, run_workers

# What a child runs: (target, args, kwargs); pickled for spawn/forkserver.
Payload: TypeAlias = tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]]

STDERR_TAIL_LINES = 40  # of a crashed child's stderr, in its failure report
TIMEOUT_TAIL_LINES = 400  # of a stuck child's stderr (its stack dump)
CRASH_GRACE = 2.0  # seconds the other children get to finish after one crashed
DUMP_GRACE = 0.5  # seconds for a child to write its stack dump before it is killed
DUMP_SIGNAL = signal.SIGUSR1
BACKSTOP = 30.0  # seconds past the timeout after which a child gives up by itself
BACKSTOP_SIGNAL = signal.SIGALRM


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


# ---------------------------------------------------------------- child


def _redirect(stdout_path: str, stderr_path: str) -> TextIO:
    sys.stdout.flush()
    sys.stderr.flush()
    for fd, path in ((1, stdout_path), (2, stderr_path)):
        target = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(target, fd)
        os.close(target)
    sys.stdout = open(1, "w", buffering=1, closefd=False, errors="backslashreplace")
    sys.stderr = open(2, "w", buffering=1, closefd=False, errors="backslashreplace")
    return sys.stderr


def child_main(job: ChildJob, conn: Connection) -> None:
    """Entry point of every child process."""
    os.setpgid(0, 0)  # lead a process group: a timeout kills our descendants with us
    cleanup.in_child()
    err = _redirect(job.stdout_path, job.stderr_path)
    watchdog.die_with_parent(job.parent_pid)
    faulthandler.enable(file=err, all_threads=True)
    faulthandler.register(DUMP_SIGNAL, file=err, all_threads=True, chain=False)
    _arm_backstop(max(job.timeout, job.timeout_cap) + BACKSTOP, err)
    if isinstance(job.payload, bytes):
        shipping.install_rewriting(job.modules, job.settings)
        target, args, kwargs = shipping.unpack(job.payload)
        cov = None
    else:
        target, args, kwargs = job.payload
        cov = childcov.start()
    pid = os.getpid()
    first = job.process_index * job.threads
    infos = [
        WorkerInfo(first + t, job.workers, job.mode, job.process_index, t, 0, pid)
        for t in range(job.threads)
    ]

    def body(call_kwargs: Mapping[str, Any]) -> object:
        return target(*args, **call_kwargs)

    report = run_workers(body, infos, job.iterations, job.iteration_barrier,
                         RunContext(job.user_barrier), progress=job.progress, stop=job.stop,
                         jitter=job.jitter, kwargs=kwargs, calls=job.calls)
    failures = outcomes.make_portable(outcomes.describe(report.raw, job.tb_style))
    try:
        conn.send_bytes(_dumps((report.values, failures)))
    except Exception as exc:  # noqa: BLE001 - a return value that cannot be pickled
        failures.append(_unpicklable_values(report.values, exc, infos[0]))
        conn.send_bytes(_dumps(({i: [] for i in report.values}, failures)))
    conn.close()
    childcov.save(cov)
    sys.stdout.flush()
    sys.stderr.flush()


def _dumps(message: object) -> bytes:
    """``message`` pickled for the parent: by pickle itself, and by
    multiprocessing's pickler (its reducers for sockets, connections...) only
    when that cannot; both load with ``pickle.loads``.  ``Connection.send``
    would make a multiprocessing pickler, copying copyreg's dispatch table,
    in every child after its body ran: on the path every run waits for."""
    try:
        return pickle.dumps(message, pickle.HIGHEST_PROTOCOL)
    except Exception:  # noqa: BLE001 - what only multiprocessing's reducers can pickle
        return bytes(ForkingPickler.dumps(message))


def _arm_backstop(seconds: float, err: TextIO) -> None:
    """Backstop if the parent is stuck: after ``seconds``, dump every thread's
    stack to ``err`` and die, even if this process is stuck in C code.

    A kernel timer (SIGALRM from ``setitimer``) whose signal faulthandler
    catches, dumps the stacks in its C handler and then raises again with the
    default action, which ends the process: no thread to start in every child,
    as ``faulthandler.dump_traceback_later`` would (a thread's start-up is most
    of a trivial child's own time).  It stays armed until the child exits, so
    sending the results is covered too.  A body that takes SIGALRM for itself
    (``signal.alarm``, its own handler) replaces it, as in a plain run; off the
    main thread, where no handler can be set, the dump thread is used."""
    try:
        signal.signal(BACKSTOP_SIGNAL, signal.SIG_DFL)  # e.g. pytest-timeout's, inherited
    except ValueError:
        faulthandler.dump_traceback_later(seconds, exit=True, file=err)
        return
    faulthandler.register(BACKSTOP_SIGNAL, file=err, all_threads=True, chain=True)
    signal.setitimer(signal.ITIMER_REAL, seconds)


def _unpicklable_values(values: dict[int, list[Any]], exc: Exception,
                        info: WorkerInfo) -> outcomes.Failure:
    return outcomes.Failure(
        kind="exception", workers=tuple(values), mode=info.mode, pid=info.pid,
        iteration=None,
        summary=f"a return value could not be sent to the parent: "
                f"{type(exc).__name__}: {exc}",
        text="Return picklable values from the body in process and hybrid mode.",
        key=("unpicklable-return", type(exc).__name__),
    )


# ---------------------------------------------------------------- parent


@dataclasses.dataclass
class _Child:
    index: int
    process: multiprocessing.process.BaseProcess
    conn: Connection
    workers: range
    job: ChildJob
    result: tuple[dict[int, list[Any]], list[outcomes.Failure]] | None = None
    stderr_shown: int = 0  # lines of its stderr a failure report already shows
    dump_from: int = 0  # where in its stderr the stack dump of its timeout starts

    @property
    def pid(self) -> int:
        pid = self.process.pid
        assert pid is not None, "the child is started before anyone asks for its pid"
        return pid


def _start(ctx: multiprocessing.context.BaseContext, jobs: Sequence[ChildJob],
           guardian: cleanup.Guardian | None) -> list[_Child]:
    children = []
    if ctx.get_start_method() == "fork":
        watchdog.before_fork()
    # Objects frozen at fork time are never scanned by the children's garbage
    # collector, so children do not copy every page of the parent's heap.
    gc.freeze()
    with contextlib.ExitStack() as stack, warnings.catch_warnings():
        stack.callback(gc.unfreeze)
        # Python 3.12+ warns when forking a process that has threads (pytest-xdist's
        # execnet thread, pytest-timeout's timer...).  The child only runs the test
        # body and our code, never touching locks those threads hold, so the
        # warning is not actionable here; see README "Fork safety".
        warnings.filterwarnings("ignore", message=r".*use of fork\(\) may lead to deadlocks",
                                category=DeprecationWarning)
        for job in jobs:
            reader, writer = ctx.Pipe(duplex=False)
            # every concrete context has Process; typeshed's BaseContext does not say so
            process = ctx.Process(target=child_main,  # type: ignore[attr-defined]
                                  args=(job, writer),
                                  name=f"concurrency-process-{job.process_index}")
            first = job.process_index * job.threads
            child = _Child(job.process_index, process, reader,
                           range(first, first + job.threads), job)
            children.append(child)
            process.start()
            if guardian is not None:
                guardian.watch(process.pid)
            writer.close()
    return children


def _tail(path: str, lines: int = STDERR_TAIL_LINES, offset: int = 0) -> str:
    """The last lines of a child's stderr (from ``offset``), pytest's own frames
    folded away."""
    try:
        with open(path, errors="backslashreplace") as f:
            f.seek(offset)
            text = f.read()
    except OSError:
        return ""
    return "\n".join(outcomes.trim_dump(text.rstrip()).splitlines()[-lines:])


def _iteration(child: _Child, progress: Progress) -> int | None:
    seen = [progress.iterations[w] for w in child.workers]
    return max(seen) if max(seen) >= 0 else None


def _name_threads(dump: str, child: _Child, progress: Progress) -> str:
    """Label faulthandler's 'Thread 0x7f...' headers with the worker they belong to."""
    for worker in child.workers:
        ident = progress.idents[worker]
        if ident:
            dump = dump.replace(f"hread 0x{ident:016x}",
                                f"hread 0x{ident:016x} (worker {worker})")
    return dump


def _receive(child: _Child) -> bool:
    try:
        if child.conn.poll():
            child.result = pickle.loads(child.conn.recv_bytes())
            return True
    except (EOFError, OSError):
        pass
    return False


def _crash_failure(spec: RunSpec, child: _Child, progress: Progress,
                   elapsed: float) -> outcomes.Failure:
    tail = _name_threads(_tail(child.job.stderr_path), child, progress)
    child.stderr_shown = STDERR_TAIL_LINES
    details = f"stderr of pid {child.pid} (last {STDERR_TAIL_LINES} lines):\n{tail}" \
        if tail else f"pid {child.pid} wrote nothing to stderr"
    who = outcomes.describe_workers(child.workers)
    if spec.mode == "hybrid":
        who = f"process {child.index} ({who})"
    exitcode = child.process.exitcode
    assert exitcode is not None, "a crashed child was joined"
    return outcomes.crash(list(child.workers), spec.mode, child.pid,
                          _iteration(child, progress), exitcode, elapsed, details, who=who)


def _dump_stacks(children: Sequence[_Child]) -> None:
    """Ask each live child to write all its threads' stacks to its stderr file."""
    alive = [c for c in children if c.process.is_alive()]
    for child in alive:
        try:
            os.kill(child.pid, DUMP_SIGNAL)
        except ProcessLookupError:
            pass
    if alive:
        time.sleep(DUMP_GRACE)


def _watch(children: Sequence[_Child]) -> progress_.Verdict:
    """Are children past their deadline stuck or making progress?  Their CPU time
    (with their descendants') over a second, and two stack dumps a second apart."""
    # loaded when a run is late, not by every session: a smaller parent forks faster
    import psutil

    procs = []
    for child in children:
        with contextlib.suppress(psutil.Error):
            proc = psutil.Process(child.pid)
            procs += [proc, *proc.children(recursive=True)]

    def cpu() -> float:
        total = 0.0
        for proc in procs:
            with contextlib.suppress(psutil.Error):
                times = proc.cpu_times()
                total += times.user + times.system
        return total

    def dumps() -> list[str]:
        sizes = [_size(c.job.stderr_path) for c in children]
        _dump_stacks(children)
        return [_read_from(c.job.stderr_path, size) for c, size in zip(children, sizes,
                                                                      strict=True)]

    start, before = time.monotonic(), cpu()
    first = dumps()
    time.sleep(max(0.0, start + progress_.LOOK - time.monotonic()))
    second = dumps()
    used = max(0.0, cpu() - before)
    changed = sum(a != b for a, b in zip(first, second, strict=True))
    return progress_.Verdict(progressing=used > progress_.CPU_EPSILON or changed > 0,
                             cpu=used, distinct=len(children) + changed,
                             seconds=time.monotonic() - start)


def _size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def _read_from(path: str, offset: int) -> str:
    """What a child wrote to ``path`` past ``offset``, thread ids aside (they do
    not change between two dumps of the same stacks)."""
    try:
        with open(path, errors="backslashreplace") as f:
            f.seek(offset)
            return "\n".join(line for line in f.read().splitlines()
                             if not line.startswith(("Thread 0x", "Current thread 0x")))
    except OSError:
        return ""


def _timeout_failure(spec: RunSpec, stuck: Sequence[_Child], progress: Progress,
                     verdict: progress_.Verdict | None = None,
                     elapsed: float | None = None) -> outcomes.Failure:
    parts = []
    for child in stuck:
        dump = _name_threads(_tail(child.job.stderr_path, lines=TIMEOUT_TAIL_LINES,
                                   offset=child.dump_from), child, progress)
        child.stderr_shown = TIMEOUT_TAIL_LINES
        parts.append(
            f"--- process {child.index} (pid {child.pid}, "
            f"{outcomes.describe_workers(child.workers)}) ---\n{dump}"
        )
    workers = [w for c in stuck for w in c.workers]
    pid = stuck[0].pid if len(stuck) == 1 else os.getpid()
    return outcomes.timeout(workers, spec.mode, pid, spec.timeout, "\n\n".join(parts),
                            verdict, elapsed)


def _wait(spec: RunSpec, children: Sequence[_Child], progress: Progress,
          barriers: Sequence[threading.Barrier], start: float) -> list[outcomes.Failure]:
    """Wait for results and exits; returns crash/timeout failures.  Past the
    timeout, children still making progress may go on until the timeout cap."""
    failures = []
    deadline = start + spec.timeout
    cap = start + spec.timeout_cap
    crashed = False
    verdict = None
    running = {c.process.sentinel: c for c in children}
    readers = {c.conn: c for c in children}
    while running:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            late = [c for c in children if c.process.is_alive()]
            if crashed or not late:
                break
            verdict = _watch(late)
            if not verdict.progressing or time.monotonic() >= cap:
                break
            deadline = min(cap, time.monotonic() + RECHECK)
            continue
        for ready in wait(list(readers) + list(running), timeout=remaining):
            if ready in readers:
                _receive(readers.pop(ready))
                continue
            # a sentinel (an int), or a pipe whose child's exit was handled earlier
            # in this round, so that it left readers
            child = running.pop(ready, None) if isinstance(ready, int) else None
            if child is None:
                continue
            child.process.join()
            readers.pop(child.conn, None)
            if child.result is None and not _receive(child):
                failures.append(
                    _crash_failure(spec, child, progress, time.monotonic() - start)
                )
                for barrier in barriers:
                    barrier.abort()
                crashed = True
                deadline = min(deadline, time.monotonic() + CRASH_GRACE)
    stuck = [c for c in children if c.process.is_alive()]
    if stuck:
        if not failures:
            for child in stuck:  # the report shows this last dump, not the watching ones
                child.dump_from = _size(child.job.stderr_path)
            _dump_stacks(stuck)
            failures.append(_timeout_failure(spec, stuck, progress, verdict,
                                             time.monotonic() - start))
        watchdog.kill_tree([c.pid for c in stuck], groups=True)
    return failures


def run_children(request: RunRequest, processes: int, threads: int) -> RunOutcome:
    """Run ``processes`` children with ``threads`` workers each."""
    spec = request.spec
    ctx = multiprocessing.get_context(spec.start_method)
    n = processes * threads
    # None only beside actors, which explore mode alone runs; whatever the target,
    # calling it is the body, and what that raises is the workers' failure
    target = cast("Callable[..., Any]", request.target)
    args, kwargs = request.args, dict(request.kwargs)
    payload: Payload | bytes
    modules: dict[str, str]
    settings: dict[str, Any]
    if spec.start_method == "fork":
        payload, modules, settings = (target, args, kwargs), {}, {}
    else:
        payload = shipping.pack(target, args, kwargs, spec.start_method, request.arg_kind)
        modules = shipping.rewritten_modules()
        settings = shipping.config_snapshot(request.config)
    shared = _Shared.take(ctx, spec.start_method, n)
    progress, stop, barriers = shared.progress, shared.stop, shared.barriers
    prefix = os.path.join(cleanup.scratch_dir(), f"{next(_runs)}-")
    guardian = cleanup.guardian()
    seed = seed_of(spec)
    jobs = [
        ChildJob(
            process_index=p, threads=threads, workers=n,
            parent_pid=None if spec.start_method == "forkserver" else os.getpid(),
            mode=spec.mode, iterations=spec.iterations, timeout=spec.timeout,
            tb_style=request.tb_style, settings=settings,
            stdout_path=f"{prefix}{p}.out", stderr_path=f"{prefix}{p}.err",
            iteration_barrier=barriers[0], user_barrier=barriers[1], progress=progress,
            stop=stop, payload=payload, modules=modules, jitter=seed,
            timeout_cap=spec.timeout_cap,
            calls=request.calls if spec.start_method == "fork" else None,
        )
        for p in range(processes)
    ]
    start = time.monotonic()
    children: list[_Child] = []
    clean = False  # nothing failed: the shared objects can serve the next run
    try:
        children = _start(ctx, jobs, guardian)
        failures = _wait(spec, children, progress, barriers, start)
        wall = time.monotonic() - start
        values: dict[int, list[Any]] = {i: [] for i in range(n)}
        reported: list[outcomes.Failure] = []
        for child in children:
            if child.result is not None:
                child_values, child_failures = child.result
                values.update(child_values)
                reported.extend(child_failures)
        outputs = _outputs(children)
        clean = not failures and not reported
    finally:
        if children:
            watchdog.kill_tree([c.pid for c in children if c.process.is_alive()],
                               groups=True)
            for child in children:
                child.process.join(timeout=5)
                child.conn.close()
                if guardian is not None and child.process.exitcode is not None:
                    guardian.forget(child.pid)
        if clean and all(child.process.exitcode == 0 for child in children):
            shared.give_back()
        for job in jobs:
            for path in (job.stdout_path, job.stderr_path):
                with contextlib.suppress(OSError):
                    os.unlink(path)
    return RunOutcome(values, reported + failures, outputs, wall, seed)


_runs = itertools.count()


@dataclasses.dataclass
class _Shared:
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
    def take(cls, ctx: multiprocessing.context.BaseContext, method: str, n: int) -> _Shared:
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


_SPARE: dict[tuple[str, int], _Shared] = {}  # one set per (start method, workers)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_SPARE.clear)  # the parent's, not a child's


def _outputs(children: Sequence[_Child]) -> list[tuple[str, str]]:
    sections = []
    for child in children:
        label = f"process {child.index} (pid {child.pid}, " \
                f"{outcomes.describe_workers(child.workers)})"
        for stream, path in (("stdout", child.job.stdout_path),
                             ("stderr", child.job.stderr_path)):
            try:
                if not os.path.getsize(path):
                    continue
                with open(path, errors="backslashreplace") as f:
                    text = f.read()
            except OSError:
                continue
            if stream == "stderr":
                text = outcomes.trim_dump(text)
                if len(text.splitlines()) <= child.stderr_shown:
                    continue  # all of it is in the failure report already
            if text:
                sections.append((f"{label} {stream}", text))
    return sections
