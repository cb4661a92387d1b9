"""Threads and processes a concurrent test started and left running.

:func:`watch` before the test's setup, :func:`check` after its teardown:
whatever is new and still alive after a short grace period is a leak.
Leaked processes (zombies included) are killed after they are reported, so
nothing is left running; a thread cannot be killed, only reported.  In
between, this process is the subreaper of orphaned descendants, so that a
grandchild whose parent exited is still found.
"""

from __future__ import annotations

import _thread
import dataclasses
import os
import sys
import threading
import time
import traceback
import warnings
from collections.abc import Collection
from typing import TYPE_CHECKING

import pytest

from . import cleanup, ending, metrics, progress, texts, watchdog

if TYPE_CHECKING:
    import psutil  # imported when a test left processes behind: rarely, and not before

GRACE = 1.0  # seconds a thread or process gets to finish after the test


@dataclasses.dataclass
class Snapshot:
    threads: set[threading.Thread]
    thread_count: int
    sampler: bool  # metrics' memory sampler thread was running
    processes: set[tuple[int, float]]  # (pid, create time) of every descendant


@dataclasses.dataclass
class Leaks:
    threads: list[threading.Thread]
    hidden_threads: int  # started with _thread.start_new_thread: no Thread object
    processes: list[psutil.Process]

    def __bool__(self) -> bool:
        return bool(self.threads or self.hidden_threads or self.processes)


def _start_time(pid: int) -> float | None:
    """When ``pid`` started (clock ticks since boot): with the pid, it names a
    process that no later one with a reused pid can be mistaken for."""
    try:
        return float(progress.stat_fields(f"/proc/{pid}/stat")[19])
    except (OSError, IndexError, ValueError):
        return None


_PROC_CHILDREN = progress.PROC_CHILDREN
_WALL = 0x40000000  # Linux's __WALL: children of any kind (os does not export it)


def _childless() -> bool:
    """Whether this process has no child at all, running or not yet waited for: one
    system call (``waitid`` answers ECHILD), where walking /proc reads a file per
    thread.  Without children there are no descendants: an orphaned grandchild is
    re-parented to us only while we are its subreaper, and then it is our child.
    False whenever it cannot tell."""
    try:
        os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT | _WALL)
    except ChildProcessError:
        return True
    except (OSError, AttributeError, ValueError):  # no waitid, or a kernel without __WALL
        return False
    return False


def _descendant_keys() -> set[tuple[int, float]]:
    """(pid, start time) of every descendant of this process: none if it has no
    child; from /proc, walking the children of each; without it, psutil (which
    scans every process)."""
    if _childless():
        return set()
    if not _PROC_CHILDREN:
        return {k for k in map(_key, _descendants()) if k is not None}
    keys, todo = set(), [os.getpid()]
    guardian = cleanup.guardian_pid()  # starts no process: nothing below it to look at
    while todo:
        for child in progress.children(todo.pop()):
            start = _start_time(child)
            if start is not None:
                keys.add((child, start))
                if child != guardian:
                    todo.append(child)
    return keys


def _descendants() -> list[psutil.Process]:
    import psutil

    try:
        return psutil.Process().children(recursive=True)
    except psutil.Error:
        return []


def _key(proc: psutil.Process) -> tuple[int, float] | None:
    import psutil

    start = _start_time(proc.pid)
    if start is not None:
        return (proc.pid, start)
    try:
        return (proc.pid, proc.create_time())
    except psutil.Error:
        return None


def _session_helpers() -> set[int]:
    """multiprocessing's resource tracker and forkserver (started on first use of
    spawn/forkserver) and our guardian: meant to live as long as the session."""
    guardian = cleanup.guardian_pid()
    pids = {guardian} if guardian is not None else set()
    tracker = sys.modules.get("multiprocessing.resource_tracker")
    server = sys.modules.get("multiprocessing.forkserver")
    for owner, attr in ((getattr(tracker, "_resource_tracker", None), "_pid"),
                        (getattr(server, "_forkserver", None), "_forkserver_pid")):
        pid = getattr(owner, attr, None)
        if pid:
            pids.add(pid)
    return pids


def _status(proc: psutil.Process) -> str | None:
    import psutil

    try:
        return proc.status()
    except psutil.Error:
        return None


def snapshot() -> Snapshot:
    return Snapshot(
        threads=set(threading.enumerate()),
        thread_count=_thread._count(),
        sampler=metrics.sampler_running(),
        processes=_descendant_keys(),
    )


ABANDONED_PREFIXES = watchdog.PLUGIN_PREFIXES
OWN_THREADS = (watchdog.GUARD_THREAD,)  # the plugin's, for the whole session


def _is_ours(thread: threading.Thread) -> bool:
    # Worker threads still alive were abandoned by a timeout or an explore hang,
    # whose report showed them, and so were the threads a timed-out run had started.
    return thread.name.startswith(ABANDONED_PREFIXES) or ending.abandoned(thread)


def _is_plugins(thread: threading.Thread) -> bool:
    return thread.name in OWN_THREADS


def _still_there(pids: list[int], deadline: float) -> list[psutil.Process]:
    """The processes of ``pids`` that are zombies, or still running at ``deadline``."""
    import psutil

    new = []
    for pid in pids:
        try:
            new.append(psutil.Process(pid))
        except psutil.Error:
            pass  # gone already
    zombies = [p for p in new if _status(p) == psutil.STATUS_ZOMBIE]
    running = [p for p in new if p not in zombies]
    if running:
        _, running = psutil.wait_procs(running, timeout=max(0.0, deadline - time.monotonic()))
    return zombies + [p for p in running if _key(p) is not None]


def threads_left(before: Collection[threading.Thread],
                 deadline: float) -> list[threading.Thread]:
    """The threads (with a Thread object) not in ``before``, nor the plugin's,
    still alive at ``deadline`` (``time.monotonic()``), until which they are
    waited for."""
    threads = [t for t in threading.enumerate() if t not in before
               and not _is_ours(t) and not _is_plugins(t) and t.is_alive()]
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    return [t for t in threads if t.is_alive()]


def find(before: Snapshot, grace: float = GRACE) -> Leaks:
    """What is alive now and was not before, after waiting up to ``grace`` seconds."""
    deadline = time.monotonic() + grace
    threads = threads_left(before.threads, deadline)
    helpers = _session_helpers()
    appeared = [pid for pid, _start in _descendant_keys() - before.processes
                if pid not in helpers]
    processes = _still_there(appeared, deadline) if appeared else []
    hidden = _thread._count() - before.thread_count - len(threads)
    if metrics.sampler_running() and not before.sampler:
        hidden -= 1  # started during the test, for the whole session
    abandoned = sum(1 for t in threading.enumerate()
                    if t not in before.threads and (_is_ours(t) or _is_plugins(t)))
    return Leaks(threads, max(0, hidden - abandoned), processes)


def _describe_process(proc: psutil.Process) -> str:
    import psutil

    try:
        with proc.oneshot():
            status = proc.status()  # first: a zombie has no command line to read
            if status == psutil.STATUS_ZOMBIE:
                return f"process {proc.pid} ({proc.name()}), a zombie: exited, never waited for"
            cmd = " ".join(proc.cmdline()) or proc.name()
            return f"process {proc.pid} ({texts.one_line(cmd, texts.REPR_BYTES)}), {status}, " \
                f"parent {proc.ppid()}"
    except psutil.Error:
        return f"process {proc.pid} (gone while being described)"


def describe(leaks: Leaks, policy: str, grace: float = GRACE) -> str:
    parts = []
    if leaks.threads:
        parts.append(f"{len(leaks.threads)} thread{'s' if len(leaks.threads) > 1 else ''}")
    if leaks.hidden_threads:
        parts.append(f"{leaks.hidden_threads} thread(s) without a Thread object")
    if leaks.processes:
        n = len(leaks.processes)
        parts.append(f"{n} process{'es' if n > 1 else ''}")
    lines = [
        f"the test left {' and '.join(parts)} running {grace:g}s after it finished "
        f"(leaks={policy!r}):"
    ]
    frames = sys._current_frames()
    for thread in leaks.threads:
        kind = "daemon thread" if thread.daemon else "thread"
        lines.append(f"\n{kind} {texts.short_repr(thread.name)} (ident {thread.ident}):")
        frame = frames.get(thread.ident) if thread.ident is not None else None
        if frame is not None:
            # its source read without open(), slow on 3.13t while the CPUs are busy
            lines.append("".join(traceback.format_list(progress.extract_stack(frame))).rstrip())
    if leaks.hidden_threads:
        lines.append(f"\n{leaks.hidden_threads} thread(s) started with "
                     "_thread.start_new_thread are still running (no names or stacks)")
    if leaks.processes:
        lines.append("")
        lines += [f"{_describe_process(p)}: killed" for p in leaks.processes]
    return texts.middle("\n".join(lines))


def kill(leaks: Leaks) -> None:
    watchdog.kill_tree([p.pid for p in leaks.processes])


_WATCH = pytest.StashKey[tuple[Snapshot, str]]()  # (Snapshot, policy) of an item being watched


def watch(item: pytest.Item, policy: str) -> None:
    """Before ``item``'s setup: remember what runs now (processes only, with
    ``ignore``: what the item leaves is killed at the session's end)."""
    cleanup.item_starts()
    if policy == "ignore":
        before = Snapshot(set(), 0, False, _descendant_keys())
    else:
        before = snapshot()
    item.stash[_WATCH] = (before, policy)
    watchdog.become_subreaper()


def check(item: pytest.Item) -> str | None:
    """After ``item``'s teardown: kill and report what it left running.  Returns
    the failure message under ``leaks="fail"``; warns under ``"warn"``; under
    ``"ignore"`` leaves it running until the session's end."""
    watched = item.stash.get(_WATCH, None)
    if watched is None:
        return None
    before, policy = watched
    try:
        found = None if policy == "ignore" else find(before, GRACE)
        if found is None:
            _leave(before)
    except BaseException:  # Ctrl-C, SIGTERM in the grace period: no report, no leftovers
        abandon(item)
        raise
    _done(item)
    if not found:
        return None
    message = describe(found, policy, GRACE)
    kill(found)
    ending.abandon(found.threads)  # reported, and never waited for at exit
    cleanup.settle()
    if policy == "fail":
        return message
    warnings.warn(pytest.PytestWarning(message), stacklevel=1)
    return None


def abandon(item: pytest.Item) -> None:
    """``item`` was interrupted (Ctrl-C, SIGTERM): kill what it started, at once,
    without a report."""
    watched = item.stash.get(_WATCH, None)
    if watched is None:
        return
    try:
        helpers = _session_helpers()
        watchdog.kill_tree([pid for pid, _start in _descendant_keys() - watched[0].processes
                            if pid not in helpers])
    finally:
        _done(item)


def _done(item: pytest.Item) -> None:
    del item.stash[_WATCH]
    watchdog.stop_being_subreaper()
    cleanup.item_ends()
    cleanup.settle()


def _leave(before: Snapshot) -> None:
    """``leaks="ignore"``: what the item left running is killed at the session's end."""
    helpers = _session_helpers()
    for pid, start in _descendant_keys() - before.processes:
        if pid not in helpers:
            cleanup.leave(pid, start)
