"""What a worker does outside the program's memory: files, sockets, processes.

Explore runs every schedule from the same start; a file written, a socket
spoken to, a process started by one schedule is outside what it resets and
outside what it sees of the order of steps.  Python raises an audit event
(PEP 578) for each of these, wherever it happens - in rewritten code, a
library, C code.  While a DPOR exploration runs, each one that a worker raises
is a blind spot: the verdict says "not complete (file I/O (open 'data.txt'),
at test_x.py:12)".

An audit hook cannot be removed: it is added once, at the first DPOR
exploration, and does nothing (one test of a flag) outside explorations.
"""

from __future__ import annotations

import sys
from typing import Any

from . import _orig
from .scheduler import _CURRENT, user_site

_EVENTS = {
    "open": "file I/O", "os.remove": "the file system", "os.rename": "the file system",
    "os.rmdir": "the file system", "os.mkdir": "the file system",
    "os.truncate": "the file system", "os.utime": "the file system",
    "os.chmod": "the file system", "os.chown": "the file system",
    "os.link": "the file system", "os.symlink": "the file system",
    "os.listdir": "the file system", "os.scandir": "the file system",
    "os.chflags": "the file system", "shutil.copyfile": "the file system",
    "shutil.rmtree": "the file system", "shutil.move": "the file system",
    "subprocess.Popen": "a subprocess", "os.system": "a subprocess",
    "os.exec": "a subprocess", "os.spawn": "a subprocess", "os.posix_spawn": "a subprocess",
    "os.fork": "a subprocess", "os.forkpty": "a subprocess", "os.startfile": "a subprocess",
    "os.kill": "a signal", "os.killpg": "a signal", "signal.pthread_kill": "a signal",
    "import": "an import, which runs a module's code",
    "exec": "code run by exec", "compile": "code compiled at run time",
    "ctypes.dlopen": "ctypes", "ctypes.call_function": "ctypes",
    "ctypes.addressof": "ctypes", "ctypes.string_at": "ctypes",
    "sqlite3.connect": "a database", "mmap.__new__": "a memory map",
}
_PREFIXES = (("socket.", "a socket"), ("urllib.", "the network"), ("http.", "the network"),
             ("ftplib.", "the network"), ("smtplib.", "the network"),
             ("webbrowser.", "a subprocess"), ("winreg.", "the registry"))


class _Switch:
    on = False  # a DPOR exploration is running


SWITCH = _Switch()
_installed: list[bool] = []


def install() -> None:
    """Add the audit hook (once per process)."""
    if not _installed:
        sys.addaudithook(_audit)
        _installed.append(True)


def what_of(event: str, args: tuple[Any, ...]) -> str | None:
    """How the verdict names audit event ``event``; None for one that is no blind spot."""
    what = _EVENTS.get(event)
    if what is None:
        for prefix, text in _PREFIXES:
            if event.startswith(prefix):
                what = text
                break
    if what is None:
        return None
    if event == "open" and args:
        name = str(args[0]).rpartition("/")[2]
        return f"file I/O (open {name!r})"
    if event == "import" and args:
        return f"an import of {args[0]}, which runs its code"
    if what == "the file system":
        return f"the file system ({event})"
    return what


def _audit(event: str, args: tuple[Any, ...], switch: _Switch = SWITCH) -> None:
    # ``switch`` is bound here: the hook outlives this module's globals, which the
    # interpreter's shutdown sets to None while audit events still come.
    if not switch.on:
        return
    worker = _CURRENT.get(_orig.get_ident())
    if worker is None or worker.deciding:
        return
    what = what_of(event, args)
    if what is None:
        return
    worker.deciding = True  # nothing below is the user's
    try:
        site = user_site(2)
        worker.schedule.unseen(what, (site[0], site[1]))
    finally:
        worker.deciding = False
