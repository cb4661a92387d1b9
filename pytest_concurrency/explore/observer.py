"""DPOR's view of what each step touches, for the length of one exploration.

Starting: the instrumented files' live functions get their rewritten code
(``codeswap``), the hooks learn what calls do (``accesses.Calls``), the guard
(``tracing.Guard``) and the audit hook (``audit``) watch for what the hooks
cannot see.  Between schedules: the process state a schedule may change and
explore can put back (the environment, the working directory, lru caches that
were empty) is put back, so every schedule starts alike.  Stopping: every
function gets its own code back, also when the exploration fails or is
interrupted.
"""

from __future__ import annotations

import os
import sys
import sysconfig
from collections.abc import Callable
from types import CodeType
from typing import Any

from . import _orig, audit, hooks
from .accesses import Calls
from .blind import BlindSpots
from .codeswap import Swap
from .tracing import Guard

# The interpreters DPOR's access observation is tested on (CI runs them all).
TESTED = ((3, 11), (3, 12), (3, 13))

# Standard library modules whose code may run from C in a worker (an ABC's
# isinstance check, an enum lookup, a codec) and touches nothing the user's code
# can see: the guard lets it run.
_QUIET_STDLIB = ("abc.py", "_collections_abc.py", "typing.py", "_weakrefset.py", "enum.py",
                 "copyreg.py", "codecs.py", "functools.py", "encodings", "reprlib.py",
                 "types.py", "operator.py", "keyword.py", "_py_abc.py")


def _quiet_stdlib() -> tuple[str, ...]:
    base = os.path.realpath(sysconfig.get_paths()["stdlib"])
    return tuple(os.path.join(base, name) for name in _QUIET_STDLIB)


_QUIET_PATHS = _quiet_stdlib()


def untested() -> str | None:
    """Why this interpreter is not one DPOR's verdicts are tested on; None if it is."""
    version = sys.version_info[:2]
    if sys.implementation.name != "cpython":
        return f"{sys.implementation.name}, which DPOR is not tested on"
    if version not in TESTED:
        return f"Python {version[0]}.{version[1]}, which DPOR is not tested on"
    return None


class Observer:
    """See the module docstring; ``is_user(filename)`` says which files are
    rewritten."""

    def __init__(self, is_user: Callable[[str], bool]) -> None:
        self.swap = Swap(is_user)
        self.calls = Calls(self.swap.seen, self.swap.swap)
        self.guard = Guard(self.expected)
        # What the observer could not see, outside any one schedule.
        self.blind = BlindSpots()
        self._environ: dict[str, str] | None = None
        self._cwd: str | None = None
        self._started = False

    @property
    def settrace(self) -> Any:
        """The guard's trace function for worker threads (3.11), or None."""
        return self.guard.settrace

    def expected(self, code: CodeType) -> bool:
        """Whether ``code`` may run in a worker without a hook having expected it."""
        if self.swap.seen(code):
            return True
        filename = code.co_filename
        return filename.startswith(_QUIET_PATHS)

    def start(self) -> None:
        self._started = True
        why = untested()
        if why is not None:
            self.blind.add(why, ("<interpreter>", 0))
        self._environ = dict(os.environ)
        try:
            self._cwd = os.getcwd()
        except OSError:
            self._cwd = None
        self.swap.start()
        hooks.STATE.calls = self.calls
        hooks.STATE.controller = _orig.get_ident()
        hooks.reset()
        audit.install()
        audit.SWITCH.on = True
        self.guard.start()

    def begin(self) -> None:
        """A schedule starts."""
        hooks.reset()

    def end(self) -> None:
        """A schedule ended: put back what it changed outside the program."""
        hooks.reset()
        if self._environ is not None and dict(os.environ) != self._environ:
            for name in set(os.environ) - set(self._environ):
                del os.environ[name]
            os.environ.update(self._environ)
        if self._cwd is not None:
            try:
                if os.getcwd() != self._cwd:
                    os.chdir(self._cwd)
            except OSError:
                pass
        for wrapper, first in self.calls.lru.values():
            if first == 0:
                wrapper.cache_clear()  # it was empty: every schedule starts it empty
            elif wrapper.cache_info().currsize != first:
                code = getattr(getattr(wrapper, "__wrapped__", None), "__code__", None)
                where = (code.co_filename, code.co_firstlineno) if code else ("?", 0)
                self.blind.add(f"the entries of the lru_cache of "
                               f"{getattr(wrapper, '__qualname__', '?')}, kept from one "
                               "schedule to the next", where)

    def stop(self) -> None:
        if not self._started:
            return
        self._started = False
        try:
            self.guard.stop()
        finally:
            audit.SWITCH.on = False
            hooks.STATE.calls = None
            hooks.STATE.controller = None
            hooks.reset()
            self.swap.stop()
