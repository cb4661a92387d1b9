"""Nothing left behind by a session, however it ends.

* **Ctrl-C and SIGTERM** stop the session once (:func:`catch_signals`): the
  running item is interrupted, what it started is killed on the way out,
  teardown and the reports run.  A signal that comes while the session is
  already stopping is noted on stderr and changes nothing: it can cost neither
  the reports nor a clean exit.  SIGKILL ends the session at once.
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
import threading
from collections.abc import Callable, Iterator
from types import FrameType

from . import guardian as guardian_
from . import scratch

# ---------------------------------------------------------------- Ctrl-C and SIGTERM


class SessionTerminated(KeyboardInterrupt):
    """SIGTERM, turned into pytest's clean stop for an interrupted session."""


_Handler = Callable[[int, FrameType | None], object] | int | signal.Handlers | None
_previous: dict[int, _Handler] = {}  # what each signal did before catch_signals()
_catches = 0  # sessions (pytester runs one inside another) that asked for catch_signals()
_stopping: str | None = None  # why the session is stopping, once it is
_stderr = -1  # the session's stderr as it was when it caught the signals, not a capture


def catch_signals() -> None:
    """Make SIGTERM stop the session like Ctrl-C, and a second signal harmless
    (only where nobody else handles them, and only from the main thread)."""
    global _catches, _stopping, _stderr
    if threading.current_thread() is not threading.main_thread():
        return
    _catches += 1
    if _catches > 1:
        return
    _stopping = None
    with contextlib.suppress(OSError):  # pytest captures fd 2 while a test runs
        _stderr = os.dup(2)
        os.set_inheritable(_stderr, False)
    for signum, default in ((signal.SIGINT, signal.default_int_handler),
                            (signal.SIGTERM, signal.SIG_DFL)):
        if signal.getsignal(signum) is default:
            _previous[signum] = signal.signal(signum, _on_signal)


def release_signals() -> None:
    """Put back what the signals did before :func:`catch_signals`."""
    global _catches
    if threading.current_thread() is not threading.main_thread() or _catches == 0:
        return
    _catches -= 1
    if _catches:
        return
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
    global _stopping
    name = signal.Signals(signum).name
    if _stopping is None:
        _stopping = name
        if signum == signal.SIGTERM:
            raise SessionTerminated("SIGTERM: the session was asked to stop")
        raise KeyboardInterrupt
    note = (f"\npytest-concurrency: {name} while the session stops ({_stopping}): it "
            "finishes its teardown and writes its reports (SIGKILL ends it at once, and "
            "what it started with it)\n")
    with contextlib.suppress(OSError):
        os.write(_stderr if _stderr >= 0 else 2, note.encode())


def stopping() -> str | None:
    """Why the session is stopping (``SIGINT``, ``SIGTERM``, ``KeyboardInterrupt``,
    ``pytest.exit``), or None."""
    return _stopping


def interrupted(why: str) -> None:
    """The session is stopping for ``why`` (pytest caught the interruption): a
    later signal only gets noted."""
    global _stopping
    if _stopping is None:
        _stopping = why


def went_on() -> None:
    """An item finished: an interruption during it, if any, was caught by the
    test and the session went on; the next signal stops it again."""
    global _stopping
    _stopping = None


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
