"""The child's side of process and hybrid mode: what runs inside one child
process.

A child leads its own process group, sends its output to the files the parent
named, runs its workers through :func:`workers.run_workers` and sends one
message back over its pipe: the values, the failures and its peak resident
memory.  faulthandler is set up so that a crash, the parent's stack-dump
signal or the backstop timer leave every thread's stack in its stderr file.
The parent's side is ``parent.py``.
"""

from __future__ import annotations

import faulthandler
import os
import pickle
import signal
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from multiprocessing.connection import Connection
from multiprocessing.reduction import ForkingPickler
from typing import Any, TextIO

from .. import childcov, cleanup, leaks, metrics, originals, outcomes, shipping, standins, watchdog
from ..context import RunContext, WorkerInfo
from ..coroutines import awaited
from .crossing import DUMP_SIGNAL, ChildJob
from .workers import run_workers

BACKSTOP = 30.0  # seconds past the timeout after which a child gives up by itself
BACKSTOP_SIGNAL = signal.SIGALRM
LEAK_WARNING = "leak-warning"  # a failure's kind: the parent warns with its text


def _redirect(stdout_path: str, stderr_path: str) -> TextIO:
    sys.stdout.flush()
    sys.stderr.flush()
    for fd, path in ((1, stdout_path), (2, stderr_path)):
        try:
            target = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        except FileNotFoundError:  # the scratch directory was removed meanwhile: again
            os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
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
    originals.reapply()  # a patch the test made, which the parent forked without
    try:
        err = _redirect(job.stdout_path, job.stderr_path)
    except OSError as exc:
        _cannot_start(conn, job, f"could not open its output file: {exc}")
        return
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
        return awaited(target(*args, **call_kwargs))  # async def: on the worker's own loop

    before = set(threading.enumerate())
    report = run_workers(body, infos, job.iterations, job.iteration_barrier,
                         RunContext(job.user_barrier), progress=job.progress, stop=job.stop,
                         jitter=job.jitter, kwargs=kwargs, calls=job.calls)
    failures = outcomes.make_portable(outcomes.describe(report.raw, job.tb_style))
    peak = metrics.peak_rss()  # the kernel's: no sample of the parent's can miss it
    left = _threads_left(job, before, infos, failures)
    try:
        conn.send_bytes(_dumps((report.values, failures, peak)))
    except Exception as exc:  # noqa: BLE001 - a return value that cannot be pickled
        failures.append(_unpicklable_values(report.values, exc, infos[0]))
        conn.send_bytes(_dumps(({i: [] for i in report.values}, failures, peak)))
    conn.close()
    childcov.save(cov)
    sys.stdout.flush()
    sys.stderr.flush()
    if left:  # they would keep the child from exiting (threading._shutdown joins them)
        os._exit(0)


def _threads_left(job: ChildJob, before: set[threading.Thread],
                  infos: Sequence[WorkerInfo], failures: list[outcomes.Failure]) -> bool:
    """Whether the body left threads running (an executor never shut down, a
    thread never joined) a grace period after the workers finished: under
    ``leaks="fail"`` their names and stacks are the child's failure, under
    ``"warn"`` a warning the parent gives; either way, and under ``"ignore"``,
    the child then exits without waiting for them, as a hang it is not."""
    grace = 0.0 if job.leaks == "ignore" else leaks.GRACE
    left = leaks.threads_left(before, time.monotonic() + grace)
    if not left or job.leaks == "ignore":
        return bool(left)
    text = leaks.describe(leaks.Leaks(left, 0, []), job.leaks)
    headline, _, stacks = text.partition("\n")
    failures.append(outcomes.Failure(
        kind="exception" if job.leaks == "fail" else LEAK_WARNING,
        workers=tuple(info.index for info in infos), mode=job.mode, pid=os.getpid(),
        iteration=None, summary=headline.rstrip(":"),
        text=text if job.leaks == "warn" else stacks.strip("\n"), key=("leak", len(left))))
    return True


def _cannot_start(conn: Connection, job: ChildJob, why: str) -> None:
    """Tell the parent why this child cannot run its workers, as their failure."""
    first = job.process_index * job.threads
    failure = outcomes.Failure(
        kind="exception", workers=tuple(range(first, first + job.threads)), mode=job.mode,
        pid=os.getpid(), iteration=None,
        summary=f"pytest-concurrency: process {job.process_index} {why}",
        text="The harness could not start this child's workers; the body did not run.",
        key=("cannot-start", why))
    conn.send_bytes(_dumps(({}, [failure], None)))  # values, failures, peak RSS
    conn.close()


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
        summary=f"a return value could not be sent to the parent: {standins.summary(exc)}",
        text="Return picklable values from the body in process and hybrid mode.",
        key=("unpicklable-return", type(exc).__name__),
    )
