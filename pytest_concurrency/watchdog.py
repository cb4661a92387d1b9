"""Timeouts: stack dumps of stuck workers and killing process trees."""

from __future__ import annotations

import sys
import threading
import traceback
from collections.abc import Iterable, Sequence

import psutil

WORKER_PREFIX = "concurrency-worker-"


def worker_index(thread: threading.Thread) -> int:
    name = thread.name
    return int(name[len(WORKER_PREFIX):]) if name.startswith(WORKER_PREFIX) else -1


def thread_stacks(threads: Iterable[threading.Thread]) -> str:
    """The current stack of each thread, headed by its worker name."""
    frames = sys._current_frames()
    parts = []
    for thread in threads:
        frame = frames.get(thread.ident)
        if frame is None:
            continue
        stack = "".join(traceback.format_stack(frame)).rstrip()
        parts.append(f"--- {thread.name} (still running, abandoned) ---\n{stack}")
    return "\n\n".join(parts)


def kill_tree(pids: Sequence[int], timeout: float = 5.0) -> None:
    """SIGKILL the given processes and all their descendants, then reap them.

    Descendants are collected before anything is killed, so grandchildren
    re-parented to init are not missed.
    """
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
