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

import gc
import os
import sys
import sysconfig
from collections.abc import Callable, Iterable
from types import CodeType
from typing import Any, cast

from . import _orig, audit, hooks
from .accesses import Calls, dependent
from .blind import BlindSpots
from .codeswap import Swap
from .tracing import Guard

GC_EVERY = 64  # schedules between two garbage collections, during an exploration
# The interpreters DPOR's access observation is tested on (CI runs them all).
TESTED = ((3, 11), (3, 12), (3, 13))

# Standard library modules whose code may run from C in a worker (an ABC's
# isinstance check, an enum lookup, a codec) and touches nothing the user's code
# can see: the guard lets it run.  threading.py is in the scheduler's hands: its
# primitives are explore's while a schedule runs.
_QUIET_STDLIB = ("abc", "_collections_abc", "typing", "_weakrefset", "enum", "copyreg",
                 "codecs", "functools", "encodings", "reprlib", "types", "operator",
                 "keyword", "_py_abc", "threading")


def _quiet_stdlib() -> tuple[str, ...]:
    """Where their code is: their files, or the names of frozen modules (3.11+)."""
    base = os.path.realpath(sysconfig.get_paths()["stdlib"])
    paths = [os.path.join(base, name) + ("" if name == "encodings" else ".py")
             for name in _QUIET_STDLIB]
    return (*paths, *(f"<frozen {name}>" for name in _QUIET_STDLIB))


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

    def __init__(self, is_user: Callable[[str], bool], roots: Iterable[object] = ()) -> None:
        self.swap = Swap(is_user)
        self.roots = list(roots)  # what the exploration starts from: actors, setup, check
        self.calls = Calls(self.swap.seen, self.swap.swap, self.swap.swap_class)
        self.guard = Guard(self.expected)
        # What the observer could not see, outside any one schedule.
        self.blind = BlindSpots()
        self._environ: dict[Any, Any] | None = None
        self._cwd: str | None = None
        self._started = False
        self._gc = False  # whether the garbage collector was enabled at the start
        self._schedules = 0

    @property
    def settrace(self) -> Any:
        """The guard's trace function for worker threads (3.11), or None."""
        return self.guard.settrace

    def expected(self, code: CodeType) -> bool:
        """Whether ``code`` may run in a worker without a hook having expected it."""
        if self.swap.seen(code):
            return True
        filename = code.co_filename
        if filename.startswith(_QUIET_PATHS):
            return True
        return filename.startswith("<") and _generated_quiet(code)

    def start(self) -> None:
        self._started = True
        why = untested()
        if why is not None:
            self.blind.add(why, ("", 0))
        self._environ = _environment()
        try:
            self._cwd = os.getcwd()
        except OSError:
            self._cwd = None
        # No garbage collection inside a schedule: a collection could run a finalizer
        # at any step (and pause a step past the scheduler's patience).
        self._gc = gc.isenabled()
        try:
            self.swap.start(self.roots)
            gc.disable()
            hooks.STATE.calls = self.calls
            hooks.STATE.controller = _orig.get_ident()
            hooks.reset()
            audit.install()
            audit.SWITCH.on = True
            self.guard.start()
        except BaseException:
            self.stop()  # nothing of a half-started observer stays (explore() cannot)
            raise

    def begin(self) -> None:
        """A schedule starts: from the process state the exploration started with
        (the environment, the working directory; the lru caches that were empty)."""
        hooks.reset()
        self._put_back()

    def end(self) -> None:
        """A schedule ended (its check still to run: what it changed stays)."""
        hooks.reset()
        self._schedules += 1
        if self._gc and self._schedules % GC_EVERY == 0:
            gc.collect()  # the cycles of the schedules since the last collection
        for where in hooks.bulk_races(dependent):
            self.blind.add("a C function iterating what another worker writes meanwhile "
                           "(one step under the GIL; not atomic on a free-threaded build)",
                           where)

    def _put_back(self) -> None:
        if self._environ is not None and _environment() != self._environ:
            _restore_environment(self._environ)
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
            hooks.STATE.calls = cast("Calls", None)
            hooks.STATE.controller = None
            hooks.reset()
            self.swap.stop()
            self._put_back()
            if self._gc:
                gc.enable()


def _environment() -> dict[Any, Any]:
    """A copy of the environment, cheap enough to compare after every schedule
    (os.environ's own dict of encoded names and values when it has one)."""
    data = getattr(os.environ, "_data", None)
    return dict(data) if isinstance(data, dict) else dict(os.environ)


def _restore_environment(saved: dict[Any, Any]) -> None:
    decode = getattr(os.environ, "decodekey", None)
    decode_value = getattr(os.environ, "decodevalue", None)
    if isinstance(getattr(os.environ, "_data", None), dict) and decode and decode_value:
        saved = {decode(key): decode_value(value) for key, value in saved.items()}
    for name in set(os.environ) - set(saved):
        del os.environ[name]
    for name, value in saved.items():
        if os.environ.get(name) != value:
            os.environ[name] = value


def _generated_quiet(code: CodeType) -> bool:
    """Code without a source file that touches nothing shared: a namedtuple's
    ``__new__`` (a lambda that builds the tuple) or a dataclass's ``__init__`` (it
    fills an instance no one else sees yet)."""
    name = getattr(code, "co_qualname", code.co_name)
    if code.co_name == "<lambda>" and set(code.co_names) <= {"_tuple_new"}:
        return True
    return name.startswith("__create_fn__.<locals>.__init__")
