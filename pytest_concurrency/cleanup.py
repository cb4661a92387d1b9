"""Nothing left behind by a session, however it ends.

* **Ctrl-C and SIGTERM** stop the session once (:func:`catch_signals`): the
  running item is interrupted, its children are killed on the way out,
  teardown and the reports run.  A signal that comes while the session is
  already stopping is noted on stderr and changes nothing: it can cost neither
  the reports nor a clean exit.  SIGKILL ends the session at once.
* **SIGKILL** (or any death) of the session is covered by a *guardian*: a
  small process started with the first child process, in a session of its
  own, that reads the pids of the running children's process groups from a
  pipe.  When the pipe closes (the session died, however) it kills every
  group still registered, the children's descendants with them, and removes
  the session's scratch directory.
* A session's **scratch directory** (children's stdout/stderr, in
  ``/dev/shm`` where there is one) is named after its pid; each new session
  sweeps the directories of sessions whose pid is gone.

Run as a script (``python -I -S cleanup.py PID DIR``) this module is the
guardian itself, so it imports nothing beyond the standard library at the top.
"""

from __future__ import annotations

import contextlib
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from types import FrameType

PREFIX = "pytest-concurrency-"
_NAME = re.compile(re.escape(PREFIX) + r"(\d+)-")
LEGACY_AGE = 24 * 3600.0  # seconds: scratch directories named without a pid, swept when older


# ---------------------------------------------------------------- Ctrl-C and SIGTERM


class SessionTerminated(KeyboardInterrupt):
    """SIGTERM, turned into pytest's clean stop for an interrupted session."""


_Handler = Callable[[int, FrameType | None], object] | int | signal.Handlers | None
_previous: dict[int, _Handler] = {}  # what each signal did before catch_signals()
_catches = 0  # sessions (pytester runs one inside another) that asked for catch_signals()
_stopping: str | None = None  # why the session is stopping, once it is


def catch_signals() -> None:
    """Make SIGTERM stop the session like Ctrl-C, and a second signal harmless
    (only where nobody else handles them, and only from the main thread)."""
    global _catches, _stopping
    if threading.current_thread() is not threading.main_thread():
        return
    _catches += 1
    if _catches > 1:
        return
    _stopping = None
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


def _on_signal(signum: int, frame: FrameType | None) -> None:
    __tracebackhide__ = True  # pytest shows where the session was, not this
    global _stopping
    name = signal.Signals(signum).name
    if _stopping is None:
        _stopping = name
        if signum == signal.SIGTERM:
            raise SessionTerminated("SIGTERM: the session was asked to stop")
        raise KeyboardInterrupt
    with contextlib.suppress(OSError):
        os.write(2, f"\npytest-concurrency: {name} while the session stops ({_stopping}): "
                    "it finishes its teardown and writes its reports (SIGKILL ends it at "
                    "once, and what it started with it)\n".encode())


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
    global _catches
    went_on()
    if _catches:
        _catches = 0
        for signum, previous in _previous.items():
            with contextlib.suppress(ValueError):  # not the child's main thread
                if previous is not None and signal.getsignal(signum) is _on_signal:
                    signal.signal(signum, previous)
        _previous.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_in_child)


# ---------------------------------------------------------------- scratch directory


_scratch: str | None = None


def scratch_dir() -> str:
    """This session's scratch directory, made on first use (in shared memory
    where there is some: files on a disk cost milliseconds per run, more than
    forking the children).  Sweeps the directories of dead sessions first."""
    scratch = _scratch
    if scratch is None or os.getpid() != _owner:
        parent = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) \
            else tempfile.gettempdir()
        sweep(parent)
        scratch = tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-", dir=parent)
        _set_scratch(scratch)
    return scratch


_owner = -1


def _set_scratch(path: str) -> None:
    global _scratch, _owner
    _scratch, _owner = path, os.getpid()
    import atexit

    atexit.register(_remove_scratch, path, _owner)


def _remove_scratch(path: str, owner: int) -> None:
    if os.getpid() == owner:  # not in a forked child that exits normally
        shutil.rmtree(path, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True


def sweep(parent: str, now: float | None = None) -> list[str]:
    """Remove the scratch directories in ``parent`` of sessions that are gone
    (and ours only); returns what was removed."""
    removed: list[str] = []
    now = time.time() if now is None else now
    try:
        names = os.listdir(parent)
    except OSError:
        return removed
    for name in names:
        if not name.startswith(PREFIX):
            continue
        path = os.path.join(parent, name)
        try:
            info = os.lstat(path)
        except OSError:
            continue
        if info.st_uid != os.getuid() or not os.path.isdir(path) or os.path.islink(path):
            continue
        match = _NAME.match(name)
        if match:
            gone = not _alive(int(match[1]))
        else:  # written by an older version, without its pid
            gone = now - info.st_mtime > LEGACY_AGE
        if gone:
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


# ---------------------------------------------------------------- guardian


class Guardian:
    """The parent's end of the guardian process: register and forget groups."""

    def __init__(self) -> None:
        self.owner = os.getpid()
        self.process = subprocess.Popen(
            [sys.executable, "-I", "-S", os.path.abspath(__file__), str(self.owner),
             scratch_dir()],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True, close_fds=True)
        assert self.process.stdin is not None  # stdin=PIPE
        self.fd = self.process.stdin.fileno()
        import atexit

        atexit.register(self.close)

    def close(self) -> None:
        """At the session's end: the guardian sees its pipe close, finds nothing
        left to kill (everything was cleaned up), removes the scratch directory
        and exits."""
        if os.getpid() != self.owner or self.process.stdin is None:
            return  # a forked child exiting: the session is not over
        self.process.stdin.close()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass

    @property
    def pid(self) -> int:
        return self.process.pid

    def _send(self, line: str) -> None:
        try:
            os.write(self.fd, line.encode())
        except OSError:  # the guardian is gone: nothing to tell it
            pass

    def watch(self, pid: int) -> None:
        """``pid`` leads a process group to kill if the session dies."""
        self._send(f"+{pid}\n")

    def forget(self, pid: int) -> None:
        """``pid``'s group was cleaned up by the session itself."""
        self._send(f"-{pid}\n")


_guardian: Guardian | None = None


def guardian() -> Guardian | None:
    """This session's guardian, started on first use (None where it cannot be)."""
    global _guardian
    if _guardian is None or _guardian.owner != os.getpid():
        try:
            _guardian = Guardian()
        except OSError:
            _guardian = None
    return _guardian


def guardian_pid() -> int | None:
    """The guardian's pid if one was started: it is no leak."""
    return _guardian.pid if _guardian is not None and _guardian.owner == os.getpid() else None


def in_child() -> None:
    """In a forked child: close the guardian's pipe, which only the session may hold
    open (the guardian acts when the last writer is gone)."""
    if _guardian is not None:
        try:
            os.close(_guardian.fd)
        except OSError:
            pass


DRAIN_EVERY = 0.5  # seconds between two reads of the guardian's pipe


def _guard(scratch: str) -> None:
    """The guardian's main loop: until the pipe closes, keep the registered pids;
    then kill their groups and remove ``scratch``.

    It waits for the pipe to close, not for lines to read: a line written to the
    pipe does not wake it (and take a CPU from the session, twice per child
    process), it reads what came every :data:`DRAIN_EVERY` seconds and, when the
    session is gone, the rest: all it acts on is the last state."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    groups: set[int] = set()
    buffered = b""
    os.set_blocking(0, False)
    poller = select.poll()
    poller.register(0, 0)  # no events asked for: hang-up (and errors) only
    closed = False
    while not closed:
        hangup = bool(poller.poll(DRAIN_EVERY * 1000))
        while True:  # what the pipe holds now
            try:
                chunk = os.read(0, 65536)
            except BlockingIOError:
                break
            except OSError:
                closed = True
                break
            if not chunk:
                closed = True
                break
            buffered += chunk
        closed = closed or hangup
        *lines, buffered = buffered.split(b"\n")
        for line in lines:
            if line[:1] == b"+":
                groups.add(int(line[1:]))
            elif line[:1] == b"-":
                groups.discard(int(line[1:]))
    for pid in groups:
        for kill in (os.killpg, os.kill):
            try:
                kill(pid, signal.SIGKILL)
            except OSError:
                pass
    if scratch.startswith(os.path.join(os.path.dirname(scratch), PREFIX)):
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    _guard(sys.argv[2])  # argv[1], the session's pid, names it in ps
