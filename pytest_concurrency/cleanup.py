"""Nothing left behind by a session, however it ends.

* **Ctrl-C and SIGTERM** stop the session once (:func:`catch_signals`): the
  running item is interrupted, what it started is killed on the way out,
  teardown and the reports run.  Signals within :data:`COALESCE` seconds of
  the first are the same request (a terminal and a CI runner both signalling,
  a double Ctrl-C): they are noted on stderr and change nothing, so they can
  cost neither the reports nor a clean exit.  A signal after that *forces* the
  stop (:func:`end_forced`): a teardown that hangs is cut short, what the session
  started is killed, the reports are written if that is still safe, one line
  says so, and the session exits with status 2.  SIGKILL ends it at once.
* **What a concurrent item starts carries a token** in its environment
  (:data:`guardian.TOKEN_VAR`, set while the item runs): every program it
  starts inherits it, wherever it moves in the process tree.
* **Process groups** led by the children of a run stay registered while they
  have members (:func:`watch_group`, :func:`settle`): a grandchild that outlives
  the child which started it is still known.  Processes a test left running
  under ``leaks="ignore"`` are registered too (:func:`leave`).
* **At the session's end** (:func:`finish`), clean or interrupted, what is
  still registered is killed.
* **SIGKILL** (or any death) of the session is covered by the *guardian*
  (``guardian.py``), a small process started with the first concurrent item,
  which is told the same and kills it, and every process carrying the token,
  when the session is gone.
* The session's **scratch directory** is ``scratch.py``'s.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from types import FrameType
from typing import NoReturn

from . import guardian as guardian_
from . import scratch

# ---------------------------------------------------------------- Ctrl-C and SIGTERM


class SessionTerminated(KeyboardInterrupt):
    """SIGTERM, turned into pytest's clean stop for an interrupted session."""


COALESCE = 1.0  # seconds after the first stop in which a later signal is the same request
INTERRUPTED = 2  # the exit status of a stopped session (pytest.ExitCode.INTERRUPTED)


_Handler = Callable[[int, FrameType | None], object] | int | signal.Handlers | None
_previous: dict[int, _Handler] = {}  # what each signal did before catch_signals()
_catches = 0  # sessions (pytester runs one inside another) that asked for catch_signals()
_stopping: str | None = None  # why the session is stopping, once it is
_stopped_at = 0.0  # when it began to (time.monotonic())
_forced: str | None = None  # the signal that forced the stop, once one did
_forced_at = 0.0
_writer: Callable[[FrameType | None], str] | None = None  # writes the reports (forced stop)
_reports = "pending"  # the reports: "pending", "writing" or "written" (or none to write)
_stderr = -1  # the session's stderr as it was when it caught the signals, not a capture


def catch_signals() -> None:
    """Make SIGTERM stop the session like Ctrl-C, a second signal soon after
    harmless, and a later one force the stop (only where nobody else handles
    them, and only from the main thread)."""
    global _catches, _stderr, _reports
    if threading.current_thread() is not threading.main_thread():
        return
    _catches += 1
    if _catches > 1:
        return
    went_on()
    _reports = "pending"
    with contextlib.suppress(OSError):  # pytest captures fd 2 while a test runs
        _stderr = os.dup(2)
        os.set_inheritable(_stderr, False)
    for signum, default in ((signal.SIGINT, signal.default_int_handler),
                            (signal.SIGTERM, signal.SIG_DFL)):
        if signal.getsignal(signum) is default:
            _previous[signum] = signal.signal(signum, _on_signal)


def release_signals() -> None:
    """Put back what the signals did before :func:`catch_signals`."""
    global _catches, _writer
    if threading.current_thread() is not threading.main_thread() or _catches == 0:
        return
    _catches -= 1
    if _catches:
        return
    _writer = None
    for signum, previous in _previous.items():
        if signal.getsignal(signum) is _on_signal:
            signal.signal(signum, previous)
    _previous.clear()
    _close_stderr()


def _close_stderr() -> None:
    global _stderr
    if _stderr >= 0:
        with contextlib.suppress(OSError):
            os.close(_stderr)
        _stderr = -1


def _on_signal(signum: int, frame: FrameType | None) -> None:
    __tracebackhide__ = True  # pytest shows where the session was, not this
    global _forced, _forced_at
    name = signal.Signals(signum).name
    if _stopping is None:
        interrupted(name)
        if signum == signal.SIGTERM:
            raise SessionTerminated("SIGTERM: the session was asked to stop")
        raise KeyboardInterrupt
    now = time.monotonic()
    if _forced is None and now - _stopped_at < COALESCE:  # one request, sent twice
        echo(f"\npytest-concurrency: {name} while the session stops ({_stopping}): it "
             "finishes its teardown and writes its reports (a Ctrl-C or SIGTERM more than "
             f"{COALESCE:g}s after the first forces the stop)\n")
        return
    if _forced is not None:  # while the forced stop writes the reports (this interrupts it)
        if now - _forced_at < COALESCE:
            return  # the same request: the reports go on
        end_forced(name, "the reports were not written (they were being written)")
    _forced, _forced_at = name, now
    with contextlib.suppress(Exception):
        _kill_started()  # first: what hangs may be waiting for it, or hold what the reports need
    end_forced(name, _forced_reports(frame))


def _forced_reports(frame: FrameType | None) -> str:
    """Write the reports for a forced stop, from the signal handler (pytest runs
    every finalizer of a fixture, and the per-worker fixtures of each worker,
    whatever the one before raised: a KeyboardInterrupt would only move the
    hang to the next teardown).  What became of them, in words."""
    if _reports == "writing":  # starting again is not safe, and it may be what hangs
        return "the reports were not written (they were being written)"
    if _reports == "written":
        return "the reports had been written"
    if _writer is None:
        return "the reports were not written"
    try:
        with writing_reports():
            return _writer(frame)
    except BaseException as exc:  # noqa: BLE001 - the session ends all the same
        return f"the reports were not written ({type(exc).__name__}: {exc})"


def echo(text: str) -> None:
    """To the session's stderr as it was when it caught the signals (fd 2 may be
    a test's captured output by now), in one system call: safe in a handler."""
    with contextlib.suppress(OSError):
        os.write(_stderr if _stderr >= 0 else 2, text.encode())


def write_reports_with(writer: Callable[[FrameType | None], str]) -> None:
    """``writer`` writes the session's reports if a signal forces the stop, given
    the frame the signal interrupted (it says, in words, what it wrote, or why
    it could not).  The outermost session's (pytester nests them)."""
    global _writer
    if _catches <= 1:
        _writer = writer


@contextlib.contextmanager
def writing_reports() -> Iterator[None]:
    """While the collector writes the reports: a forcing signal then ends the
    session at once, saying they were not written (an outer session's state is
    what a nested one, pytester's, leaves)."""
    global _reports
    before = _reports
    _reports = "writing"
    try:
        yield
    finally:
        _reports = "written" if _catches <= 1 else before


def end_forced(signal_name: str, reports: str) -> NoReturn:
    """End a session whose stop ``signal_name`` forced: kill what it started, say
    so in one line with what became of the reports, and exit with status 2
    without waiting for anything (threads a teardown left, ``atexit`` handlers:
    any of them may be what hangs)."""
    with contextlib.suppress(Exception):
        _kill_started()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):  # a closed stream, a write it interrupted
            stream.flush()
    echo(f"\npytest-concurrency: {signal_name} again while the session stopped "
         f"({_stopping or 'interrupted'}): the stop was forced: its teardown was cut short, "
         f"what it started was killed, {reports}\n")
    os._exit(INTERRUPTED)


def _kill_started() -> None:
    """Kill what the session's concurrent items started, now, without waiting:
    the process groups its children led, what a test left running, and (the
    guardian, told the session is not ending cleanly) every process that
    carries the session's token."""
    for left in list(_sessions):
        for pgid in list(left.groups):
            with contextlib.suppress(OSError):
                os.killpg(pgid, signal.SIGKILL)
        for pid, start in list(left.processes.items()):
            if _started(pid) == start:
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
    running = guardian_.running()
    if running is not None:
        running.close()  # not clean: it kills what carries the token, and the scratch


def stopping() -> str | None:
    """Why the session is stopping (``SIGINT``, ``SIGTERM``, ``KeyboardInterrupt``,
    ``pytest.exit``), or None."""
    return _stopping


def interrupted(why: str) -> None:
    """The session is stopping for ``why`` (pytest caught the interruption): a
    later signal only gets noted."""
    global _stopping, _stopped_at
    if _stopping is None:
        _stopping, _stopped_at = why, time.monotonic()


def went_on() -> None:
    """An item finished: an interruption during it, if any, was caught by the
    test and the session went on; the next signal stops it again."""
    global _stopping, _forced
    _stopping = _forced = None


def _in_child() -> None:
    """After a fork: the signals do what they did before the session caught them
    (a test's own forked child, or a worker child, dies of SIGTERM as it would
    in a plain run)."""
    global _catches, _own_children
    went_on()
    _mark_the_fork()
    _own_children = False  # in a worker child: what it forks is marked
    _close_stderr()
    if _catches:
        _catches = 0
        for signum, previous in _previous.items():
            with contextlib.suppress(ValueError):  # not the child's main thread
                if previous is not None and signal.getsignal(signum) is _on_signal:
                    signal.signal(signum, previous)
        _previous.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_in_child)


# ---------------------------------------------------------------- what the session left


@dataclasses.dataclass
class _Left:
    """What one session must kill before it ends."""

    groups: set[int] = dataclasses.field(default_factory=set)  # process groups, maybe in use
    processes: dict[int, float] = dataclasses.field(default_factory=dict)  # pid -> start


start_time = guardian_.start_time  # when a pid started (Linux: clock ticks since boot)


def _started(pid: int) -> float | None:
    """When ``pid`` started: clock ticks (Linux), else psutil's create time, as
    leaks.py keys processes."""
    ticks = start_time(pid)
    if ticks is not None:
        return float(ticks)
    import psutil

    try:
        return psutil.Process(pid).create_time()
    except psutil.Error:
        return None


_sessions: list[_Left] = []  # one per session running concurrent items (pytester nests them)
_token = ""


def token() -> str:
    """This process's token: what the environment of everything its concurrent
    items start carries."""
    global _token
    if not _token or not _token.startswith(f"{os.getpid()}-"):
        _token = f"{os.getpid()}-{os.urandom(6).hex()}"
    return _token


def begin() -> None:
    """A session that runs concurrent items starts."""
    _sessions.append(_Left())


def _left() -> _Left:
    if not _sessions:
        begin()
    return _sessions[-1]


_running = False  # a concurrent item runs: what it starts carries the token
_own_children = False  # the runner forks its children: they are in groups of their own
_marked = False  # this process holds the marker file (a fork made during an item)


_inherited = os.environ.get(guardian_.TOKEN_VAR)  # a session around this one: its tokens


def item_starts() -> None:
    """A concurrent item starts: what it starts carries the token (a program in
    its environment, after the tokens of the sessions around this one; a copy
    of this process forked meanwhile as an open file, made in the child, so
    that only forks pay for it), and the guardian is there if the session dies."""
    global _running
    os.environ[guardian_.TOKEN_VAR] = f"{_inherited},{token()}" if _inherited else token()
    _running = True
    guardian()


def item_ends() -> None:
    global _running
    if _inherited:
        os.environ[guardian_.TOKEN_VAR] = _inherited
    else:
        os.environ.pop(guardian_.TOKEN_VAR, None)
    _running = False


@contextlib.contextmanager
def forking_own_children() -> Iterator[None]:
    """While the runner forks its children, which lead process groups the session
    kills: no marker file for them to make."""
    global _own_children
    _own_children = True
    try:
        yield
    finally:
        _own_children = False


def _mark_the_fork() -> None:
    """In a process just forked while a concurrent item runs: hold the marker
    file the guardian looks for (closed by exec: a program carries the token)."""
    global _marked
    if _running and not _own_children and not _marked and hasattr(os, "memfd_create"):
        with contextlib.suppress(OSError):  # the session's token (token() is per process)
            os.memfd_create(guardian_.mark_name(_token), os.MFD_CLOEXEC)
            _marked = True


def guardian() -> guardian_.Guardian | None:
    """This session's guardian, started on first use (None where it cannot be)."""
    running = guardian_.running()
    if running is not None:
        return running
    started = guardian_.guardian(token())
    path = scratch.owned_path()
    if started is not None and path is not None:
        started.scratch(path)
    return started


def guardian_pid() -> int | None:
    """The guardian's pid if one was started: it is no leak."""
    running = guardian_.running()
    return running.pid if running is not None else None


def in_child() -> None:
    guardian_.in_child()


def scratch_dir() -> str:
    """The session's scratch directory (the guardian removes it if the session dies)."""
    known = scratch.owned_path()
    path = scratch.scratch_dir()
    running = guardian_.running()
    if running is not None and path != known:
        running.scratch(path)
    return path


def watch_group(pgid: int) -> None:
    """``pgid`` leads a process group: killed if the session ends while it has members."""
    _left().groups.add(pgid)
    running = guardian_.running()
    if running is not None:
        running.watch(pgid)


def settle() -> None:
    """Forget the process groups that have no member left."""
    if not _sessions:
        return
    left = _sessions[-1]
    for pgid in list(left.groups):
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            left.groups.discard(pgid)
            running = guardian_.running()
            if running is not None:
                running.forget(pgid)
        except OSError:
            pass  # members of someone else's: still in use


def leave(pid: int, start: float) -> None:
    """A test left ``pid`` (started at ``start``) running: killed at the session's end."""
    _left().processes[pid] = start
    running = guardian_.running()
    if running is not None and start_time(pid) == start:  # the guardian reads /proc
        running.leftover(pid, int(start))


def finish() -> None:
    """At the end of a session: kill what it left (groups with members,
    processes left running), reap them and let the guardian go."""
    if not _sessions:
        return
    left = _sessions.pop()
    from . import watchdog

    watchdog.kill_groups(left.groups)
    watchdog.kill_tree([pid for pid, start in left.processes.items()
                        if _started(pid) == start])
    running = guardian_.running()
    if running is not None:
        for pgid in left.groups:
            running.forget(pgid)
        if not _sessions:
            running.close(clean=True)
            guardian_.forget_guardian()
