"""The end of the process when threads the plugin gave up on are still running.

A thread cannot be killed.  When a run is given up (stuck past its timeout, or
stopped at its cap) its worker threads are abandoned, and so are the threads
it had started that still run, as the leak check abandons the threads a test
left running: the report shows them, and the session goes on.  At interpreter
exit, though, Python joins every non-daemon thread, and ``concurrent.futures``
joins its executors' threads (``threading._register_atexit``) before that: one
stuck thread, and the process never ends.

So when the session has abandoned a thread of the test's that is still alive
at exit, the process ends without waiting for it: a hook that runs first among
those ``threading`` calls before it joins threads (registered at the end of
the session, after ``concurrent.futures``' own) says which threads it does not
wait for, runs the ``atexit`` handlers a normal exit would run (coverage's data,
logging's flush) and ends the process with the session's exit status.  An
exit with nothing abandoned still alive is an ordinary one.
"""

from __future__ import annotations

import atexit
import os
import sys
import threading
import weakref
from collections.abc import Iterable

_ABANDONED: weakref.WeakSet[threading.Thread] = weakref.WeakSet()
_state = {"status": 0, "registered": False}


def abandon(threads: Iterable[threading.Thread]) -> None:
    """``threads`` were given up on (reported stuck, or left running by a test):
    the process will not wait for them at exit."""
    _ABANDONED.update(threads)


def abandoned(thread: threading.Thread) -> bool:
    return thread in _ABANDONED


def session_finished(status: int) -> None:
    """A session ended with ``status``: what the process exits with if it has to
    end without waiting (the last session's: an outer one ends after those its
    tests ran); from now on, abandoned threads are not waited for at exit."""
    _state["status"] = status
    if _ABANDONED and not _state["registered"]:
        register = getattr(threading, "_register_atexit", None)  # CPython 3.9+
        if register is not None:
            try:
                register(_end_without_waiting)
            except RuntimeError:  # the interpreter is shutting down already
                return
            _state["registered"] = True


def waited_for() -> list[threading.Thread]:
    """The abandoned threads an exit may wait for: those still alive, the plugin's
    own workers aside (nothing joins them).  A daemon thread counts too: the
    threads a worker starts are daemons like it, and ``concurrent.futures``
    joins its own whatever they are."""
    from .watchdog import PLUGIN_PREFIXES

    return [thread for thread in list(_ABANDONED)
            if thread.is_alive() and not thread.name.startswith(PLUGIN_PREFIXES)]


def _end_without_waiting() -> None:
    stuck = waited_for()
    if not stuck:
        return  # an ordinary exit
    names = ", ".join(sorted(repr(thread.name) for thread in stuck))
    try:
        sys.stderr.write(f"pytest-concurrency: the process ends without waiting for "
                         f"{len(stuck)} thread{'s' if len(stuck) != 1 else ''} that tests "
                         f"left running ({names}); their reports show where they were\n")
        atexit._run_exitfuncs()
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:  # noqa: BLE001, S110 - a closed stream: nothing to flush
                pass
        os._exit(_state["status"])
