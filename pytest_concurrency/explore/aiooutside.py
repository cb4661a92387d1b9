"""What reaches an async schedule from threads it does not control.

A callback scheduled with ``call_soon_threadsafe`` (from a thread the test
started, or by ``run_coroutine_threadsafe``) and the result of a
``run_in_executor`` / ``to_thread`` job arrive here, on whatever thread made
them, and the schedule takes them in between two of its steps.  When nothing
can run, the schedule asks whether anything may still arrive (a job not done,
a thread started since the schedule began) and waits for it, up to a bound.

A thread started while the schedule runs may touch what the tasks touch
without calling the loop at all: :meth:`Outside.watch` notes every thread
started meanwhile (``threading.setprofile``, public since Python 2), with the
first user function it runs, so that the verdict can say what it did not
control.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextvars
import sys
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

from .aioloop import Entry, Site

OWN_PREFIX = "explore-worker-"  # the names of explore's own threads
CALLS_LOOKED_AT = 10_000  # in a new thread, before giving up on finding user code in it


class Outside:
    """The inbox of one schedule, filled by other threads (see the module docstring)."""

    def __init__(self, executor: concurrent.futures.Executor) -> None:
        self._executor = executor
        self._hook: Any = None  # threading's profile hook before watch()
        self._inbox: collections.deque[Entry] = collections.deque()
        self._changed = threading.Condition(threading.Lock())  # guards _inbox, _jobs
        self._jobs: set[concurrent.futures.Future[Any]] = set()
        self._before: set[int] = set()  # the threads alive when the schedule started

    def start(self) -> None:
        """The schedule starts: the threads alive now are none of its business."""
        self._before = {thread.ident or 0 for thread in threading.enumerate()}

    def __bool__(self) -> bool:
        return bool(self._inbox)

    def post(self, entry: Entry) -> None:
        """A callback for the loop, from any thread."""
        with self._changed:
            self._inbox.append(entry)
            self._changed.notify_all()

    def take(self) -> list[Entry]:
        """What arrived since the last take, in the order it arrived."""
        with self._changed:
            entries = list(self._inbox)
            self._inbox.clear()
        return entries

    def offload(self, job: concurrent.futures.Future[Any], result: asyncio.Future[Any],
                loop: asyncio.AbstractEventLoop, patience: float) -> None:
        """``job`` (an executor's) completes ``result`` on the loop, through the inbox.
        Waits up to ``patience`` seconds for it to arrive, so that a job that finishes
        in that time comes back at the same point of every schedule."""
        arrived = threading.Event()

        def settle() -> None:
            if result.cancelled():
                return
            if job.cancelled():
                result.cancel()
            elif job.exception() is not None:
                result.set_exception(job.exception())  # type: ignore[arg-type]
            else:
                result.set_result(job.result())

        def done(_job: concurrent.futures.Future[Any]) -> None:
            with self._changed:
                self._jobs.discard(job)
                self._inbox.append(Entry(asyncio.Handle(settle, (), loop, None), settle, (),
                                         contextvars.copy_context(), None))
                self._changed.notify_all()
            arrived.set()

        with self._changed:
            self._jobs.add(job)
        job.add_done_callback(done)
        arrived.wait(patience)

    def wait(self, timeout: float) -> bool | None:
        """Nothing can run on the loop: True when something arrived (perhaps already),
        None when nothing can arrive any more, False when nothing did in ``timeout``."""
        with self._changed:
            if self._inbox:
                return True
            if not self._jobs and not self._foreign_threads():
                return None
            self._changed.wait(timeout)
            return bool(self._inbox)

    def watch(self, is_user: Callable[[str], bool],
              started: Callable[[Site | None], None]) -> None:
        """Until :meth:`unwatch`, every thread started (but explore's own) calls
        ``started`` once, with the first user function it runs (None: none in its
        first calls)."""
        def profile(frame: FrameType, event: str, arg: object) -> None:
            if threading.current_thread().name.startswith(OWN_PREFIX):
                sys.setprofile(None)
                return
            if event != "call":
                return
            code = frame.f_code
            calls = getattr(local, "calls", 0) + 1
            local.calls = calls
            if is_user(code.co_filename):
                sys.setprofile(None)
                started((code.co_filename, code.co_firstlineno, code.co_name))
            elif calls >= CALLS_LOOKED_AT:
                sys.setprofile(None)
                started(None)

        local = threading.local()
        self._hook = threading.getprofile()
        threading.setprofile(profile)

    def unwatch(self) -> None:
        threading.setprofile(self._hook)

    def _foreign_threads(self) -> bool:
        """Whether a thread started since the schedule began (not an executor's, whose
        jobs are counted) is alive: it may still call back."""
        executor = {thread.ident for thread in getattr(self._executor, "threads", ())}
        return any(thread.is_alive() and thread.ident not in self._before and
                   thread.ident not in executor for thread in threading.enumerate())
