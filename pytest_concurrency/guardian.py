"""The guardian: what kills a session's processes when the session dies
suddenly (SIGKILL, a crash, ``os._exit``), when it cannot do it itself.

A small process (``python -I -S guardian.py PID TOKEN``), started with the
session's first concurrent item in a session of its own, reads from a pipe what
the session would have to kill:

``+PGID`` / ``-PGID``
    a process group one of the session's children leads; it stays registered
    while the group has members, so a grandchild that outlived the child that
    started it is still covered;
``pPID START``
    one process a test left running (``leaks="ignore"``), with its start time,
    so that a later process given the same pid is never taken for it;
``dPATH``
    the session's scratch directory;
``.``
    the session ended and killed what it had to itself.

When the pipe closes without ``.``, the session died: the guardian kills every
group and process it was given, and every process that carries the session's
token (Linux, from ``/proc``): in its environment (``PYTEST_CONCURRENCY_GUARD``,
which the session sets while a concurrent item runs, so that every program the
item starts inherits it: a thread-mode test's own children, a grandchild that
left its process group or was re-parented to init), or as the name of a file it
holds open (a copy of the session a test forked, whose environment is the
session's own).  Then it removes the scratch directory.

It waits for the pipe to close, not for lines to read: a line written to the
pipe does not wake it (and take a CPU from the session, twice per child
process); it reads what came every :data:`DRAIN_EVERY` seconds and, when the
session is gone, the rest: all it acts on is the last state.

Run as a script this module is the guardian itself, so it imports nothing
beyond the standard library at the top.
"""

from __future__ import annotations

import os
import select
import shutil
import signal
import subprocess
import sys

TOKEN_VAR = "PYTEST_CONCURRENCY_GUARD"
MARK_PREFIX = "pytest-concurrency-guard-"  # the name of the file a forked process carries
DRAIN_EVERY = 0.5  # seconds between two reads of the pipe
SCRATCH_PREFIX = "pytest-concurrency-"  # scratch.PREFIX: it removes nothing else
# a session helper that ends by itself when the session is gone, and must: it
# unlinks the named semaphores the session's spawned children left
_SPARED = (b"from multiprocessing.resource_tracker import main",)
SHELL = "/bin/sh"
_LAUNCH = 'exec 3<&0; exec "$@" <&3 3<&- >/dev/null 2>&1 & echo $!'
KILL_PASSES = 5  # environment scans: a process may start another while one runs


# ---------------------------------------------------------------- the session's end


class Guardian:
    """The session's end of the guardian process.

    The guardian is no child of the session: started by a shell that exits at
    once, it is re-parented to init.  A child would make every leak check of a
    thread-mode test walk the threads' child lists (the session would never be
    without children); this costs one shell, once per session."""

    def __init__(self, token: str) -> None:
        self.owner = os.getpid()
        command = [sys.executable, "-I", "-S", os.path.abspath(__file__), str(self.owner), token]
        reader, self.fd = os.pipe()
        os.set_inheritable(self.fd, False)
        try:
            if os.path.exists(SHELL):
                # the pipe, the shell's stdin, becomes the guardian's (a command
                # run in the background would get /dev/null); $! is its pid
                launcher = subprocess.Popen(
                    [SHELL, "-c", _LAUNCH, "sh", *command],
                    stdin=reader, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                    start_new_session=True, close_fds=True)
                out, _ = launcher.communicate()
                self.pid = int(out or 0)
                self.process: subprocess.Popen[bytes] | None = None
            else:  # a child, then
                self.process = subprocess.Popen(
                    command, stdin=reader, stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL, start_new_session=True, close_fds=True)
                self.pid = self.process.pid
        except BaseException:
            os.close(self.fd)
            raise
        finally:
            os.close(reader)
        import atexit

        atexit.register(self.close)

    def close(self, clean: bool = False) -> None:
        """At the session's end: the guardian sees its pipe close and acts (if
        the session did not say it ended ``clean``), removes the scratch
        directory and exits."""
        if os.getpid() != self.owner or self.fd < 0:
            return  # a forked child exiting: the session is not over
        if clean:
            self._send(".\n")
        os.close(self.fd)
        self.fd = -1
        if self.process is not None:
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass

    def _send(self, line: str) -> None:
        try:
            os.write(self.fd, line.encode())
        except OSError:  # the guardian is gone: nothing to tell it
            pass

    def watch(self, pgid: int) -> None:
        """``pgid`` leads a process group to kill if the session dies."""
        self._send(f"+{pgid}\n")

    def forget(self, pgid: int) -> None:
        """``pgid``'s group has no member left."""
        self._send(f"-{pgid}\n")

    def leftover(self, pid: int, start: int) -> None:
        """``pid`` (started at ``start``, clock ticks since boot) to kill if the session dies."""
        self._send(f"p{pid} {start}\n")

    def scratch(self, path: str) -> None:
        """The scratch directory to remove when the session is gone."""
        self._send(f"d{path}\n")


_guardian: Guardian | None = None


def guardian(token: str) -> Guardian | None:
    """This session's guardian, started on first use (None where it cannot be)."""
    global _guardian
    if _guardian is None or _guardian.owner != os.getpid():
        try:
            _guardian = Guardian(token)
        except OSError:
            _guardian = None
    return _guardian


def running() -> Guardian | None:
    """The guardian, if this process started one (it starts none)."""
    return _guardian if _guardian is not None and _guardian.owner == os.getpid() else None


def in_child() -> None:
    """In a forked child: close the guardian's pipe, which only the session may hold
    open (the guardian acts when the last writer is gone)."""
    if _guardian is not None and _guardian.fd >= 0:
        try:
            os.close(_guardian.fd)
        except OSError:
            pass


def forget_guardian() -> None:
    """After a clean close: the next session in this process starts its own."""
    global _guardian
    _guardian = None


if hasattr(os, "register_at_fork"):  # whoever forks: a test's own os.fork() too
    os.register_at_fork(after_in_child=in_child)


# ---------------------------------------------------------------- the guardian


def start_time(pid: int) -> int | None:
    """When ``pid`` started, in clock ticks since boot (Linux), or None."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return int(f.read().rpartition(b")")[2].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def mark_name(token: str) -> str:
    """The name of the (empty, in-memory) file a process forked while a concurrent
    item runs holds open (and what it forks in turn inherits)."""
    return f"{MARK_PREFIX}{token}"


def _marked(pid: int, mark: str) -> bool:
    """Whether ``pid`` holds the session's marker file open."""
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return False
    for fd in fds:
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}").startswith(mark):
                return True
        except OSError:
            continue
    return False


def _kill(pid: int, wanted: bytes | None = None, started: int | None = None,
          mark: str | None = None) -> bool:
    """SIGKILL ``pid`` if its environment holds ``wanted`` or it holds the marker
    file ``mark`` open (and it is not spared), or it started at ``started``;
    through a pidfd where there is one, so that the process looked at is the
    one killed.  Whether it was."""
    pidfd = None
    if hasattr(os, "pidfd_open") and hasattr(signal, "pidfd_send_signal"):
        try:
            pidfd = os.pidfd_open(pid)
        except ProcessLookupError:
            return False
        except OSError:  # a kernel without pidfds: by pid
            pidfd = None
    try:
        if wanted is not None:
            try:
                with open(f"/proc/{pid}/environ", "rb") as f:
                    carries = _carries(f.read(), wanted)
                if not carries and not (mark and _marked(pid, mark)):
                    return False
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    cmdline = f.read().replace(b"\0", b" ")
            except OSError:
                return False
            if any(spared in cmdline for spared in _SPARED):
                return False
        if started is not None and start_time(pid) != started:
            return False
        try:
            if pidfd is not None:
                signal.pidfd_send_signal(pidfd, signal.SIGKILL)
            else:
                os.kill(pid, signal.SIGKILL)
        except OSError:
            return False
        return True
    finally:
        if pidfd is not None:
            os.close(pidfd)


def _carries(environ: bytes, token: bytes) -> bool:
    """Whether an environment (``/proc/<pid>/environ``) carries ``token``: the
    variable lists the tokens of every session, outermost first, a program was
    started under (a session that a test of another session started)."""
    prefix = f"{TOKEN_VAR}=".encode()
    for entry in environ.split(b"\0"):
        if entry.startswith(prefix):
            return token in entry[len(prefix):].split(b",")
    return False


def kill_carriers(token: str, spare: set[int]) -> int:
    """Kill every process whose environment carries ``token``, or which holds the
    marker file named after it (Linux: /proc), until a scan finds none; returns
    how many were killed.  A process killed by an earlier scan is not killed or
    counted again: SIGKILLed, it may still be dying at the next scan, with its
    environment and its files (a busy machine's test counted 4 of 3, once 7)."""
    wanted = token.encode()
    mark = f"/memfd:{mark_name(token)}"
    killed: set[tuple[int, int]] = set()  # pid and start time: a process, not a reused pid
    for _ in range(KILL_PASSES):
        try:
            pids = [int(name) for name in os.listdir("/proc") if name.isdigit()]
        except OSError:
            break
        found = 0
        for pid in pids:
            if pid in spare:
                continue
            started = start_time(pid)
            if started is None or (pid, started) in killed:
                continue  # gone, or dying
            if _kill(pid, wanted, started, mark):
                killed.add((pid, started))
                found += 1
        if not found:
            break
    return len(killed)


def _guard(owner: int, token: str) -> None:
    """The guardian's main loop: until the pipe closes, keep what it is told;
    then, unless the session ended cleanly, kill it all."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    groups: set[int] = set()
    processes: dict[int, int] = {}
    scratch = ""
    clean = False
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
            kind, rest = line[:1], line[1:]
            if kind == b"+":
                groups.add(int(rest))
            elif kind == b"-":
                groups.discard(int(rest))
            elif kind == b"p":
                pid_text, start_text = rest.split()
                processes[int(pid_text)] = int(start_text)
            elif kind == b"d":
                scratch = os.fsdecode(rest)
            elif kind == b".":
                clean = True
    if not clean:
        for pgid in groups:
            try:
                os.killpg(pgid, signal.SIGKILL)
            except OSError:
                pass
        for pid, start in processes.items():
            _kill(pid, started=start)
        kill_carriers(token, {os.getpid(), owner})
    if os.path.basename(scratch).startswith(SCRATCH_PREFIX):
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    _guard(int(sys.argv[1]), sys.argv[2])
