"""Writing report and baseline files so that no reader ever sees half a file and
no two writers lose each other's work: a temporary file in the same directory
replaces the target with ``os.replace``, under a ``filelock.FileLock`` held
for the whole read-modify-write (its lock file kept out of the report's
directory: :func:`lock_path`)."""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Callable, Iterator

LOCK_TIMEOUT = 60.0  # seconds to wait for another writer before giving up


def unwritable(path: str) -> str | None:
    """Why ``path`` cannot be written, or None: the nearest directory on its way
    that exists must take a new file (checked by making one), so that a session
    learns at its start, not after its last test, that its report is lost."""
    directory = os.path.dirname(os.path.abspath(path))
    while not os.path.isdir(directory):
        if os.path.exists(directory):
            return f"{directory} is not a directory"
        directory = os.path.dirname(directory)
    try:
        with tempfile.TemporaryFile(dir=directory):
            pass
    except OSError as exc:
        return f"cannot create a file in {directory}: {exc.strerror or exc}"
    return None


def lock_path(path: str) -> str:
    """Where ``path``'s lock file is: not beside it (a report's directory gets nothing
    but the report), but in this user's lock directory under the temporary directory,
    named after the report's real path.  It is never deleted: removing a lock file
    that another writer has opened and waits on would let two writers in at once."""
    real = os.path.realpath(path)
    digest = hashlib.sha256(real.encode("utf-8", "surrogateescape")).hexdigest()[:20]
    user = os.getuid() if hasattr(os, "getuid") else "user"
    return os.path.join(tempfile.gettempdir(), f"pytest-concurrency-locks-{user}",
                        f"{os.path.basename(real)}.{digest}.lock")


@contextlib.contextmanager
def locked(path: str) -> Iterator[None]:
    """Hold ``path``'s lock file (:func:`lock_path`); an OSError at once where
    the lock file cannot even be created (filelock would retry until its
    timeout, taking that for another writer holding it)."""
    lock = lock_path(path)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    os.makedirs(os.path.dirname(lock), mode=0o700, exist_ok=True)
    os.close(os.open(lock, os.O_RDWR | os.O_CREAT, 0o600))
    import filelock  # here: a session that writes no file does not pay for its import

    with filelock.FileLock(lock, timeout=LOCK_TIMEOUT):
        yield


def replace(path: str, text: str) -> None:
    """Write ``text`` to ``path`` atomically (the caller holds the lock)."""
    path = os.path.abspath(path)
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=f".{os.path.basename(path)}.",
                               suffix=".tmp")
    try:
        os.fchmod(fd, _mode(path))  # mkstemp's 0600 would make reports private
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _mode(path: str) -> int:
    """The file's current mode, or what the umask gives a new file."""
    try:
        return os.stat(path).st_mode & 0o777
    except FileNotFoundError:
        umask = os.umask(0o022)
        os.umask(umask)
        return 0o666 & ~umask


def write(path: str, text: str) -> None:
    """Replace ``path`` with ``text``, atomically and under its lock."""
    with locked(path):
        replace(path, text)


def update(path: str, change: Callable[[str | None], str]) -> None:
    """Read ``path`` (None if missing), and write ``change(text)`` back, all under
    its lock, so concurrent updaters serialize instead of losing entries."""
    with locked(path):
        try:
            with open(path, encoding="utf-8") as f:
                old = f.read()
        except FileNotFoundError:
            old = None
        replace(path, change(old))
