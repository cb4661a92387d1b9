"""Free-threaded CPython (3.13t, 3.14t): whether this build can run without the
GIL, whether it really does, and which import brought the GIL back.

A free-threaded build sets ``Py_GIL_DISABLED``; it turns the GIL back on when it
imports an extension module that has not declared it can run without it (no
``Py_mod_gil`` slot), and warns (a RuntimeWarning naming the module).  From then
on threads run one at a time again, and a thread-mode measurement says nothing
about free-threading: the reports say so, as pytest-run-parallel does.

The module is named whatever becomes of the warning (``-W error`` raises it,
``-W ignore::RuntimeWarning`` drops it): every extension module is created by
``_imp.create_dynamic``, and the watcher wraps it to see whether the GIL was off
before and on after.  The warning is watched too, for whatever loads extension
modules another way.
"""

from __future__ import annotations

import _imp
import os
import re
import sys
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypedDict

import pytest

if TYPE_CHECKING:
    from .report.records import GilEvent


def _free_threaded() -> bool:
    """Whether this is a free-threaded build: its ABI flags carry a ``t`` (PEP 703),
    read without loading the build's whole configuration (sysconfig, a few ms at
    every pytest start), which is asked only where there are no ABI flags."""
    abiflags = getattr(sys, "abiflags", None)
    if abiflags is not None:
        return "t" in abiflags
    import sysconfig  # pragma: no cover - Windows

    return bool(sysconfig.get_config_var("Py_GIL_DISABLED"))  # pragma: no cover


FREE_THREADED = _free_threaded()
_REENABLED = re.compile(r"The global interpreter lock \(GIL\) has been enabled to load "
                        r"module '(?P<module>[^']*)'")
EVENTS = pytest.StashKey[list["GilEvent"]]()  # imports that re-enabled the GIL
WATCHER = "concurrency-gil"


def enabled() -> bool:
    """Whether the GIL is on now (always, on a build that has one)."""
    is_enabled = getattr(sys, "_is_gil_enabled", None)
    return bool(is_enabled()) if is_enabled is not None else True


def reenabled_by(message: str) -> str | None:
    """The module named by CPython's warning that it re-enabled the GIL, or None."""
    match = _REENABLED.search(message)
    return match["module"] if match else None


class GilState(TypedDict):
    """What the reports record of the GIL (the fields of a report's ``run``)."""

    gil_disabled_build: bool
    gil_enabled: bool
    gil_reenabled_by: list[GilEvent]


def state(config: pytest.Config | None = None) -> GilState:
    """What the reports record: the build, the GIL now, and what re-enabled it."""
    events = config.stash.get(EVENTS, []) if config is not None else []
    return {"gil_disabled_build": FREE_THREADED, "gil_enabled": enabled(),
            "gil_reenabled_by": list(events)}


def header() -> str | None:
    """The terminal header line on a free-threaded build (None on any other)."""
    if not FREE_THREADED:
        return None
    now = "enabled (an import turned it back on)" if enabled() else "disabled"
    return f"concurrency: free-threaded CPython (Py_GIL_DISABLED); the GIL is {now}"


class Watcher:
    """Records the imports that re-enable the GIL, in any phase: seen around
    ``_imp.create_dynamic`` (installed by :meth:`install`) or in their warning."""

    def __init__(self, config: pytest.Config) -> None:
        self.events = config.stash[EVENTS] = []
        self.phase = "config"
        self._original: Callable[..., Any] | None = None  # _imp's, while wrapped
        self._wrapper: Callable[..., Any] | None = None

    def _record(self, module: str, during: str) -> None:
        if all(event["module"] != module for event in self.events):
            self.events.append({"module": module, "during": during})

    def install(self) -> None:
        original = self._original = _imp.create_dynamic

        def create_dynamic(spec: Any, *args: Any) -> Any:
            before = enabled()
            try:
                return original(spec, *args)
            finally:  # also when -W error made the warning an exception
                if not before and enabled():
                    self._record(getattr(spec, "name", "?"), self._during())

        self._wrapper = create_dynamic
        _imp.create_dynamic = create_dynamic

    def _during(self) -> str:
        """The test running now (its id, as pytest puts it in the environment for
        the phase it is in), else the session's phase."""
        current = os.environ.get("PYTEST_CURRENT_TEST", "")
        return current.rpartition(" (")[0] or self.phase

    def pytest_collection(self) -> None:
        self.phase = "collect"

    def pytest_runtestloop(self) -> None:
        self.phase = "runtest"

    def pytest_warning_recorded(self, warning_message: warnings.WarningMessage, when: str,
                                nodeid: str, location: tuple[str, int, str] | None) -> None:
        module = reenabled_by(str(warning_message.message))
        if module:
            self._record(module, nodeid or when)

    def pytest_unconfigure(self) -> None:
        if self._original is not None and _imp.create_dynamic is self._wrapper:
            _imp.create_dynamic = self._original


def watch(config: pytest.Config) -> None:
    """On a free-threaded build, watch for imports that re-enable the GIL."""
    if FREE_THREADED and not config.pluginmanager.has_plugin(WATCHER):
        watcher = Watcher(config)
        if not enabled():  # once on, nothing can turn it on again
            watcher.install()
        config.pluginmanager.register(watcher, WATCHER)


def describe(events: list[GilEvent]) -> str:
    """One sentence for the terminal and the report files."""
    shown = ", ".join(f"importing {e['module']!r} (during {e['during']})" for e in events[:3])
    more = f" and {len(events) - 3} more" if len(events) > 3 else ""
    return (f"the GIL was re-enabled at run time by {shown}{more}: threads ran one at a "
            "time from then on, and thread-mode results say nothing about free-threading")
