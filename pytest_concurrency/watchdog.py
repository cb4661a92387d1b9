"""Timeouts: stack dumps of stuck workers and killing process trees."""

from __future__ import annotations

import contextlib
import ctypes
import math
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Collection, Iterable, Iterator, Sequence
from types import FrameType
from typing import TYPE_CHECKING

from . import originals, progress

if TYPE_CHECKING:
    import psutil

WORKER_PREFIX = "concurrency-worker-"
PLUGIN_PREFIXES = (WORKER_PREFIX, "explore-worker-")  # names of the plugin's worker threads


def is_plugin_thread(thread: threading.Thread) -> bool:
    """Whether ``thread`` is the plugin's: a pool worker (idle, running a worker,
    or abandoned), an explore worker, or the teardown guard."""
    return thread.name.startswith(PLUGIN_PREFIXES) or thread.name == GUARD_THREAD


def worker_index(thread: threading.Thread) -> int:
    """The worker a pool thread is running (-1 for any other thread)."""
    suffix = thread.name[len(WORKER_PREFIX):] if thread.name.startswith(WORKER_PREFIX) else ""
    return int(suffix) if suffix.isdigit() else -1


_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


_BOOTSTRAP = ("_bootstrap", "_bootstrap_inner", "run")  # threading.Thread's, above its target


def _user_frames(frame: FrameType) -> traceback.StackSummary:
    """The stack below the worker loop: thread bootstrap and plugin frames dropped."""
    frames = progress.extract_stack(frame)
    for i in range(len(frames) - 1, -1, -1):
        if frames[i].filename.startswith(_PACKAGE_DIR):
            return traceback.StackSummary.from_list(frames[i + 1:])
    start = 0
    while start < len(frames) and frames[start].filename == threading.__file__ \
            and frames[start].name in _BOOTSTRAP:
        start += 1
    return traceback.StackSummary.from_list(frames[start:])


ABANDONED = "still running, abandoned"  # how thread_stacks labels a worker's thread


def thread_stacks(threads: Iterable[threading.Thread], label: str = ABANDONED) -> str:
    """The current stack of each thread, headed by its worker name (as it was
    named before its stack was read: a worker that finishes meanwhile is renamed)
    and ``label`` (other threads: started during the run, still running)."""
    named = [(thread, thread.name) for thread in threads]
    frames = sys._current_frames()
    parts = []
    for thread, name in named:
        frame = frames.get(thread.ident) if thread.ident is not None else None
        if frame is None:
            continue
        stack = "".join(traceback.format_list(_user_frames(frame))).rstrip()
        what = label if name.startswith(WORKER_PREFIX) \
            else "started during the run, still running"
        parts.append(f"--- {name} ({what}) ---\n{stack}")
    return "\n\n".join(parts)


def kill_tree(pids: Sequence[int], timeout: float = 5.0, groups: bool = False,
              keep: Collection[int] = ()) -> None:
    """SIGKILL the given processes and all their descendants, and wait until they
    are gone, reaping those that are (or become, as orphans) this process's
    children, but for ``keep``: pids whose exit status their owner collects
    (multiprocessing's children, which it joins).

    Descendants are collected before anything is killed, so none is
    re-parented out of reach in between.  With ``groups``, each pid also
    leads a process group (our children call ``setpgid``): the whole group is
    killed too, catching descendants that were already orphaned, and the
    members of those groups that were re-parented to this process are reaped.
    """
    if not pids:
        return
    import psutil  # loaded when there is something to kill, not by every session

    procs = []
    for pid in pids:
        # descendants from /proc: psutil's scan opens a file per process, which on a
        # free-threaded 3.13.5 took seconds while the CPUs were busy
        for each in [*progress.descendants(pid), pid]:
            with contextlib.suppress(psutil.NoSuchProcess):
                procs.append(psutil.Process(each))
    if groups:
        for pid in pids:
            with contextlib.suppress(OSError):
                os.killpg(pid, signal.SIGKILL)
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            proc.kill()
    killed = {proc.pid for proc in procs}
    deadline = time.monotonic() + timeout
    while True:
        procs = [p for p in procs if not _ended(p, p.pid not in keep, killed)]
        if groups:
            reap_groups(pids, keep)
        if not procs or time.monotonic() > deadline:
            return
        time.sleep(0.002)


def _ended(proc: psutil.Process, reap: bool, killed: Collection[int]) -> bool:
    """Whether ``proc`` has ended: reaped now (``reap``), waitable (a child of ours
    someone else reaps), no longer there, or a zombie someone else will reap
    (not one whose parent was ``killed`` with it: that one becomes ours, as its
    subreaper, or init's)."""
    import psutil

    try:
        if reap:
            if os.waitpid(proc.pid, os.WNOHANG)[0]:
                return True
        elif os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None:
            return True
    except ChildProcessError:
        pass  # not our child: gone once it is no longer there
    except (AttributeError, OSError):  # no waitid
        pass
    try:
        return not proc.is_running() or (
            proc.status() == psutil.STATUS_ZOMBIE and proc.ppid() not in (os.getpid(), *killed))
    except psutil.Error:
        return True


def reap_groups(groups: Collection[int], keep: Collection[int] = ()) -> int:
    """Reap this process's children in the process groups ``groups`` that have
    exited (killed grandchildren re-parented to us, its subreaper), but for
    ``keep``; returns how many of its children are still in them."""
    if not groups:
        return 0
    left = 0
    for pid in progress.children(os.getpid()):
        if pid in keep:
            continue
        try:
            if os.getpgid(pid) in groups and not os.waitpid(pid, os.WNOHANG)[0]:
                left += 1
        except OSError:
            continue
    return left


def kill_groups(groups: Collection[int], timeout: float = 5.0) -> None:
    """SIGKILL every process in the process groups ``groups`` (whose leaders may be
    long gone) and reap those that are this process's children."""
    for pgid in groups:
        with contextlib.suppress(OSError):
            os.killpg(pgid, signal.SIGKILL)
    deadline = time.monotonic() + timeout
    while reap_groups(groups) and time.monotonic() < deadline:
        time.sleep(0.002)


_PR_SET_PDEATHSIG = 1
_PR_SET_CHILD_SUBREAPER = 36


_LIBC: list[ctypes.CDLL | None] = []  # loaded once (a child forked later inherits it)


def _libc() -> ctypes.CDLL | None:
    """The C library (Linux), loaded on first use: every concurrent test asks for
    it twice, and loading it costs more than the prctl() it is for."""
    if not _LIBC:
        libc = None
        if sys.platform.startswith("linux"):
            try:
                libc = ctypes.CDLL(None, use_errno=True)
            except OSError:  # pragma: no cover
                libc = None
        _LIBC.append(libc)
    return _LIBC[0]


def before_fork() -> None:
    """In the parent, before forking children: load what :func:`die_with_parent`
    needs (the C library and its ``prctl``, which ctypes looks up on first use and
    then keeps), so that each child inherits them instead of looking them up."""
    libc = _libc()
    if libc is not None:
        libc.prctl  # noqa: B018 - looked up (and cached by ctypes) for the children


def die_with_parent(parent_pid: int | None) -> None:
    """In a child: be killed if the parent dies (say, pytest-timeout's os._exit).

    ``parent_pid`` is the pid the parent had, to catch a parent that died
    before this took effect; None when the parent is not the one who started
    the run (a forkserver).
    """
    libc = _libc()
    if libc is not None:
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if parent_pid is not None and os.getppid() != parent_pid:
        os.write(2, b"pytest-concurrency: the parent process died; exiting\n")
        os._exit(1)


def become_subreaper() -> bool:
    """Make this process the reaper of orphaned descendants (Linux), until
    :func:`stop_being_subreaper`: a grandchild whose parent (one of our children)
    exits is re-parented to us instead of init, so the leak check still finds
    and kills it.  Whether it took effect."""
    libc = _libc()
    return libc is not None and libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0


def stop_being_subreaper() -> None:
    libc = _libc()
    if libc is not None:
        libc.prctl(_PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)


# ---------------------------------------------------------------- stuck main thread

INTERRUPT_SIGNAL = signal.SIGUSR2
GUARD_THREAD = "concurrency-teardown-guard"
LOOK_AGAIN = 1.0  # seconds between two looks at a main thread past its deadline


class _MainThreadGuard:
    """One daemon thread that watches the main thread while it is armed: past
    the deadline it looks twice, :data:`LOOK_AGAIN` apart, and interrupts the
    main thread (a signal whose handler raises) only when it made no progress
    (no CPU, the same stack), or when it is still going at the cap."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        # (token, deadline, cap, seconds, what) while armed
        self._armed: tuple[int, float, float, float, str] | None = None
        self._token = 0
        self.fired: str | None = None  # the failure message, once interrupted
        self._thread: threading.Thread | None = None
        # when the watching thread looks next on its own (inf: only when notified)
        self._wakes_at = math.inf

    def arm(self, seconds: float, cap: float, what: str) -> None:
        with self._cond:
            self._token += 1
            now = time.monotonic()
            self._armed = (self._token, now + seconds, now + cap, seconds, what)
            self.fired = None
            self._start()
            if now + seconds < self._wakes_at:
                # Woken only when it would look too late: a guard armed for every
                # teardown does not wake the thread (and switch to it) every time;
                # at its next look it finds the newest deadline and waits for that.
                self._cond.notify()

    def start(self) -> None:
        """Start the watching thread now, if it is not running (it waits unarmed)."""
        with self._cond:
            self._start()

    def _start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._watch, daemon=True, name=GUARD_THREAD)
            originals.start(self._thread)  # not a Thread.start a test replaced

    def disarm(self) -> str | None:
        with self._cond:
            self._armed = None
            fired, self.fired = self.fired, None
            return fired

    def _watch(self) -> None:
        main = threading.main_thread()
        with self._cond:
            while True:
                armed = self._armed
                if armed is None:
                    self._wakes_at = math.inf
                    self._cond.wait()
                    continue
                token, deadline, cap, seconds, what = armed
                if time.monotonic() < deadline:
                    self._wakes_at = deadline
                    self._cond.wait(deadline - time.monotonic())
                    continue
                first = progress.sample(main)
                self._wakes_at = time.monotonic() + LOOK_AGAIN
                self._cond.wait(LOOK_AGAIN)
                if self._armed is None or self._armed[0] != token:
                    continue
                second = progress.sample(main)
                if progress.progressed(first, second) and time.monotonic() < cap:
                    continue  # slow, not stuck: look again after LOOK_AGAIN
                self.fired = _stuck_message(what, seconds, first, second, main)
                self._armed = None
                assert main.ident is not None  # the main thread is running
                signal.pthread_kill(main.ident, INTERRUPT_SIGNAL)


_guard = _MainThreadGuard()


def _interrupt(signum: int, frame: FrameType | None) -> None:
    message = _guard.fired
    if message is not None:
        import pytest

        raise pytest.fail.Exception(message, pytrace=False)


def start_guard() -> None:
    """Start the thread :func:`main_thread_guard` uses now, before the first test,
    rather than in the first teardown (where a suite's own thread-leak check
    would see it appear)."""
    if threading.current_thread() is threading.main_thread():
        _guard.start()


@contextlib.contextmanager
def main_thread_guard(seconds: float, cap: float, what: str) -> Iterator[None]:
    """Interrupt the main thread if ``what`` (a teardown, say) is still stuck
    after ``seconds``: the block raises pytest's failure with where it was stuck
    and what it waited for.  A block that is still making progress goes on, up
    to ``cap`` seconds.  A no-op outside the main thread or without signals."""
    if threading.current_thread() is not threading.main_thread() \
            or not hasattr(signal, "pthread_kill"):
        yield
        return
    previous = signal.signal(INTERRUPT_SIGNAL, _interrupt)
    _guard.arm(seconds, max(cap, seconds), what)
    try:
        yield
    finally:
        _guard.disarm()
        signal.signal(INTERRUPT_SIGNAL, previous)


def _stuck_message(what: str, seconds: float, first: progress.Sample,
                   second: progress.Sample, main: threading.Thread) -> str:
    frame = sys._current_frames().get(main.ident) if main.ident is not None else None
    stack = "?"
    if frame is not None:
        from .outcomes import is_harness

        frames = [f for f in progress.extract_stack(frame) if not is_harness(f.filename)]
        stack = "".join(traceback.format_list(frames)).rstrip()
    lines = [f"{what} did not finish within {seconds:g}s and made no progress for "
             f"{second.at - first.at:.1f}s (CPU +{progress.cpu_used(first, second):.2f}s, "
             "the same stack); it was interrupted so that the session can go on. "
             "It was stuck here:", stack]
    pending = _pending_tasks(frame)
    if pending:
        lines += ["", "tasks still pending on the event loop it was waiting for (left "
                  "behind by the test's workers?):", *pending]
    workers = [t for t in threading.enumerate() if t.name.startswith(WORKER_PREFIX)]
    if workers:
        lines += ["", "worker threads still running:", thread_stacks(workers)]
    return "\n".join(lines)


def _pending_tasks(frame: FrameType | None, limit: int = 10) -> list[str]:
    """The unfinished tasks of an asyncio event loop found running in ``frame``'s
    stack, each with where it is suspended."""
    asyncio = sys.modules.get("asyncio")
    loop = None
    while frame is not None and asyncio is not None and loop is None:
        candidate = frame.f_locals.get("self")
        if isinstance(candidate, asyncio.AbstractEventLoop):
            loop = candidate
        frame = frame.f_back
    if loop is None or asyncio is None:  # a loop is found only where asyncio is loaded
        return []
    try:
        tasks = [t for t in asyncio.all_tasks(loop) if not t.done()]
    except RuntimeError:
        return []
    lines = []
    for task in tasks[:limit]:
        where = task.get_stack(limit=1)
        at = f" at {where[0].f_code.co_filename}:{where[0].f_lineno}" if where else ""
        lines.append(f"  {task.get_name()}: {task.get_coro()!r}{at}")
    if len(tasks) > limit:
        lines.append(f"  ... and {len(tasks) - limit} more")
    return lines
