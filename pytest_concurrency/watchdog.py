"""Timeouts: stack dumps of stuck workers and killing process trees."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
import threading
import traceback
from collections.abc import Iterable, Sequence

import psutil

WORKER_PREFIX = "concurrency-worker-"


def worker_index(thread: threading.Thread) -> int:
    name = thread.name
    return int(name[len(WORKER_PREFIX):]) if name.startswith(WORKER_PREFIX) else -1


_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


def _user_frames(frame) -> traceback.StackSummary:
    """The stack below the worker loop: thread bootstrap and plugin frames dropped."""
    frames = traceback.extract_stack(frame)
    for i in range(len(frames) - 1, -1, -1):
        if frames[i].filename.startswith(_PACKAGE_DIR):
            return traceback.StackSummary.from_list(frames[i + 1:])
    return frames


def thread_stacks(threads: Iterable[threading.Thread]) -> str:
    """The current stack of each thread, headed by its worker name."""
    frames = sys._current_frames()
    parts = []
    for thread in threads:
        frame = frames.get(thread.ident)
        if frame is None:
            continue
        stack = "".join(traceback.format_list(_user_frames(frame))).rstrip()
        parts.append(f"--- {thread.name} (still running, abandoned) ---\n{stack}")
    return "\n\n".join(parts)


def kill_tree(pids: Sequence[int], timeout: float = 5.0, groups: bool = False) -> None:
    """SIGKILL the given processes and all their descendants, then reap them.

    Descendants are collected before anything is killed, so none is
    re-parented out of reach in between.  With ``groups``, each pid also
    leads a process group (our children call ``setpgid``): the whole group is
    killed too, catching descendants that were already orphaned.
    """
    if groups:
        for pid in pids:
            with contextlib.suppress(OSError):
                os.killpg(pid, signal.SIGKILL)
    procs = []
    for pid in pids:
        try:
            proc = psutil.Process(pid)
            procs.extend(proc.children(recursive=True))
            procs.append(proc)
        except psutil.NoSuchProcess:
            continue
    for proc in procs:
        try:
            proc.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(procs, timeout=timeout)


_PR_SET_PDEATHSIG = 1
_PR_SET_CHILD_SUBREAPER = 36


def _libc():
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True)
    except OSError:  # pragma: no cover
        return None


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


@contextlib.contextmanager
def subreaper():
    """Make this process the reaper of orphaned descendants while in the block.

    A grandchild whose parent (one of our children) exits is re-parented to
    us instead of init, so the leak check still finds and kills it.  Linux
    only; elsewhere a no-op.
    """
    libc = _libc()
    if libc is not None and libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        libc = None
    try:
        yield
    finally:
        if libc is not None:
            libc.prctl(_PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)
