"""The session's scratch directory: where its child processes write their
stdout and stderr, in ``/dev/shm`` where there is one (files on a disk cost
milliseconds per run, more than forking the children).

**Ownership is a lock, not a pid.**  The directory holds a lock file the
session keeps an exclusive ``flock`` on for as long as it lives (its forked
children share it).  A session sweeping leftover directories removes one only
after taking that lock itself: a live session's directory is never removed,
whether its pid means anything to the sweeper or not (another PID namespace, a
container sharing ``/dev/shm``).  A new directory is made under a name no
sweeper looks at and renamed into place with its lock already held.  A
directory without the lock file, written by an older version, is removed by the
old rule: the pid in its name is gone (without a pid, after a day).

**What is missing is made again.**  A directory that disappears while the
session runs (a test removed it; a sweeper that does not honour the lock) is
made again, at the same path, the next time a run asks for it.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
import time

PREFIX = "pytest-concurrency-"
LOCK = "owner.lock"  # held (flock) by the owning session for its whole life
_NEW = f".{PREFIX}new-"  # a directory being made: no sweeper looks at it
_NAME = re.compile(re.escape(PREFIX) + r"(\d+)-")
LEGACY_AGE = 24 * 3600.0  # seconds: directories named without a pid, swept when older

try:
    import fcntl
except ImportError:  # pragma: no cover - not on POSIX: ownership by pid only
    fcntl = None  # type: ignore[assignment]

_path: str | None = None
_owner = -1  # the process that made _path: a forked child's copy is not its own
_lock_fd: int | None = None


def scratch_dir() -> str:
    """This session's scratch directory, made on first use (sweeping the
    directories of sessions that are gone first), and made again if it has
    disappeared since."""
    path = _path
    if path is None or os.getpid() != _owner:
        parent = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) \
            else tempfile.gettempdir()
        sweep(parent)
        path = make(parent)
        import atexit

        atexit.register(_remove, path, os.getpid())
    elif not os.path.exists(os.path.join(path, LOCK)):  # removed under us
        _make(os.path.dirname(path), path)
    return path


def owned_path() -> str | None:
    """This process's scratch directory, if it made one."""
    return _path if _owner == os.getpid() else None


def make(parent: str) -> str:
    """A new scratch directory in ``parent``, owned by this process from now on."""
    return _make(parent, None)


def _make(parent: str, path: str | None) -> str:
    """Make ``path`` (a new name when None) with its lock held, atomically: made
    under a name sweepers skip, locked, then renamed into place."""
    global _path, _owner, _lock_fd
    made = tempfile.mkdtemp(prefix=_NEW, dir=parent)
    fd = _lock(made)
    target = path or os.path.join(
        parent, f"{PREFIX}{os.getpid()}-{os.path.basename(made)[len(_NEW):]}")
    try:
        os.rename(made, target)
    except OSError:  # our own path, made again meanwhile (by a child that found it gone)
        os.close(fd)
        shutil.rmtree(made, ignore_errors=True)
        os.makedirs(target, exist_ok=True)
        fd = _lock(target)
    if _lock_fd is not None and _owner == os.getpid():
        with contextlib.suppress(OSError):
            os.close(_lock_fd)
    _path, _owner, _lock_fd = target, os.getpid(), fd
    return target


def _lock(directory: str) -> int:
    fd = os.open(os.path.join(directory, LOCK), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    if fcntl is not None:
        fcntl.flock(fd, fcntl.LOCK_EX)
    return fd


def _remove(path: str, owner: int) -> None:
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


def _owned(path: str) -> bool | None:
    """Whether a live session holds ``path``'s lock; None when it has no lock file."""
    try:
        fd = os.open(os.path.join(path, LOCK), os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
    except FileNotFoundError:
        return None
    except OSError:
        return True  # cannot tell: leave it
    try:
        if fcntl is None:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return True
        return False
    finally:
        os.close(fd)  # the lock goes with it: nobody wants a dead session's directory


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
        if not name.startswith((PREFIX, _NEW)):
            continue
        path = os.path.join(parent, name)
        try:
            info = os.lstat(path)
        except OSError:
            continue
        if info.st_uid != os.getuid() or not os.path.isdir(path) or os.path.islink(path):
            continue
        owned = _owned(path)
        if owned is not None:
            gone = not owned
        elif name.startswith(_NEW):  # a session died in the instant it made this one
            gone = now - info.st_mtime > LEGACY_AGE
        else:  # written by an older version: by its pid, or its age
            match = _NAME.match(name)
            gone = not _alive(int(match[1])) if match else now - info.st_mtime > LEGACY_AGE
        if gone:
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed
