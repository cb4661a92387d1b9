"""Switch points in user code: sys.monitoring on 3.12+, sys.settrace on 3.11.

pct, random and dfs switch at lines or instructions found by these events.
DPOR's switch points are the hooks of rewritten code (``hooks``); for it this
module only watches (:class:`Guard`) for Python code that runs in a worker
where no hook expected any: code explore did not rewrite, reached from C.
"""

from __future__ import annotations

import os
import sys
import sysconfig
from collections.abc import Callable
from types import CodeType, FrameType
from typing import Any, Protocol

from . import _orig
from .instrument import SwitchPoints, own_file
from .scheduler import _CURRENT, Arrival, TraceFunction, Worker


class PointTable(Protocol):
    """Where the switch points of a code object are (instrument.CodeTable)."""

    @property
    def granularity(self) -> str: ...

    def points(self, code: CodeType) -> SwitchPoints: ...

TOOL_NAME = "pytest-concurrency-explore"


def make_settrace(is_user: Callable[[str], bool], table: PointTable) -> TraceFunction:
    """A global trace function for worker threads (3.11)."""
    line_mode = table.granularity == "line"
    get_ident = _orig.get_ident

    def global_trace(frame: FrameType, event: str, arg: Any) -> TraceFunction | None:
        code = frame.f_code
        if not is_user(code.co_filename):
            return None
        worker = _CURRENT.get(get_ident())
        if worker is None:
            return None
        point, filename, funcname = worker.schedule.point, code.co_filename, code.co_name
        if line_mode:
            def line_trace(frame: FrameType, event: str, arg: Any) -> TraceFunction:
                if event == "line":
                    point(worker, filename, frame.f_lineno, funcname)
                return line_trace
            return line_trace
        points = table.points(code)
        frame.f_trace_lines = False
        frame.f_trace_opcodes = True
        def opcode_trace(frame: FrameType, event: str, arg: Any) -> TraceFunction:
            if event == "opcode":
                hit = points.get(frame.f_lasti)
                if hit is not None:
                    point(worker, filename, hit[0], funcname, hit[1])
            return opcode_trace
        return opcode_trace

    return global_trace


class Monitoring:
    """Own sys.monitoring tool (3.12+): PY_START finds user code, local events give points."""

    def __init__(self, is_user: Callable[[str], bool], table: PointTable) -> None:
        self.is_user, self.table = is_user, table
        self.tool: int | None = None  # our tool id, while started
        self.codes: set[CodeType] = set()  # user code objects given local events

    def start(self) -> None:
        if sys.version_info < (3, 12):
            raise RuntimeError("explore: sys.monitoring needs Python 3.12 or later")
        monitoring = sys.monitoring
        for tool in (4, 3, 5, 2, 1, 0):
            if monitoring.get_tool(tool) is None:
                monitoring.use_tool_id(tool, TOOL_NAME)
                self.tool = tool
                break
        else:
            raise RuntimeError("explore: every sys.monitoring tool id is in use")
        events = monitoring.events
        local = events.LINE if self.table.granularity == "line" else events.INSTRUCTION
        on_start = self._make_on_start(tool, local, monitoring.set_local_events,
                                       monitoring.DISABLE)
        monitoring.register_callback(tool, events.PY_START, on_start)
        on_instruction = self._make_on_instruction(monitoring.DISABLE)
        monitoring.register_callback(tool, events.INSTRUCTION, on_instruction)
        monitoring.register_callback(tool, events.LINE, self._make_on_line())
        monitoring.restart_events()
        monitoring.set_events(tool, events.PY_START)

    def stop(self) -> None:
        if self.tool is None:
            return
        if sys.version_info < (3, 12):  # not reached: only start() sets the tool
            return
        monitoring = sys.monitoring
        monitoring.set_events(self.tool, 0)
        for code in self.codes:
            monitoring.set_local_events(self.tool, code, 0)
        events = monitoring.events
        for event in (events.PY_START, events.INSTRUCTION, events.LINE):
            monitoring.register_callback(self.tool, event, None)
        monitoring.free_tool_id(self.tool)
        self.tool = None
        self.codes.clear()

    def _make_on_start(self, tool: int, local_events: int,
                       set_local_events: Callable[[int, CodeType, int], None],
                       disable: object) -> Callable[[CodeType, int], object]:
        """PY_START: turn on ``local_events`` in each user code object, once."""
        is_user, codes = self.is_user, self.codes

        def on_start(code: CodeType, offset: int) -> object:
            if code not in codes and is_user(code.co_filename):
                codes.add(code)
                set_local_events(tool, code, local_events)
            return disable
        return on_start

    def _make_on_instruction(self, disable: object) -> Callable[[CodeType, int], object]:
        """INSTRUCTION: a switch point at every instruction of the code table (each
        with its arrival made once per code object, not once per step)."""
        points, get_ident = self.table.points, _orig.get_ident
        arrivals: dict[CodeType, dict[int, Arrival]] = {}

        def arrivals_of(code: CodeType) -> dict[int, Arrival]:
            found = arrivals[code] = {
                offset: ("point", (code.co_filename, line, code.co_name, what))
                for offset, (line, what) in points(code).items()}
            return found

        def on_instruction(code: CodeType, offset: int) -> object:
            table = arrivals.get(code)
            arrival = (table if table is not None else arrivals_of(code)).get(offset)
            if arrival is None:
                return disable
            worker = _CURRENT.get(get_ident())
            if worker is not None:
                worker.schedule._switch(worker, arrival)
            return None
        return on_instruction

    def _make_on_line(self) -> Callable[[CodeType, int], object]:
        """LINE: a switch point at every line."""
        get_ident = _orig.get_ident

        def on_line(code: CodeType, line: int) -> None:
            worker = _CURRENT.get(get_ident())
            if worker is not None:
                worker.schedule.point(worker, code.co_filename, line, code.co_name)
        return on_line


GUARD_NAME = "pytest-concurrency-dpor-guard"


class Guard:
    """DPOR's watch for Python code that runs in a worker where no hook expected
    it (``expected(code)`` is false and no call into unseen code is open): code
    explore did not rewrite - a generator made before the exploration, a
    function compiled by an import during it, a library's dunder run from C -
    whose accesses went unseen.  Each one is a blind spot of the schedule.

    3.12+: sys.monitoring's PY_START and PY_RESUME, turned off per code object
    once it is known to be expected.  3.11: a global trace function (``settrace``)
    that asks for no line or opcode events."""

    def __init__(self, expected: Callable[[CodeType], bool]) -> None:
        self.expected = expected
        self.tool: int | None = None
        self.settrace: TraceFunction | None = None
        self._ok: set[int] = set()  # ids of code objects that are expected
        self._keep: list[CodeType] = []

    def start(self) -> None:
        if sys.version_info < (3, 12):
            self.settrace = self._make_settrace()
            return
        monitoring = sys.monitoring
        for tool in (5, 4, 3, 2, 1, 0):
            if monitoring.get_tool(tool) is None:
                monitoring.use_tool_id(tool, GUARD_NAME)
                self.tool = tool
                break
        else:
            raise RuntimeError("explore: every sys.monitoring tool id is in use")
        events = monitoring.events
        callback = self._make_callback(monitoring.DISABLE)
        monitoring.register_callback(tool, events.PY_START, callback)
        monitoring.register_callback(tool, events.PY_RESUME, callback)
        monitoring.restart_events()
        monitoring.set_events(tool, events.PY_START | events.PY_RESUME)

    def stop(self) -> None:
        self.settrace = None
        if self.tool is None or sys.version_info < (3, 12):
            return
        monitoring = sys.monitoring
        monitoring.set_events(self.tool, 0)
        events = monitoring.events
        monitoring.register_callback(self.tool, events.PY_START, None)
        monitoring.register_callback(self.tool, events.PY_RESUME, None)
        monitoring.free_tool_id(self.tool)
        self.tool = None

    def _check(self, code: CodeType, frame: FrameType | None) -> bool:
        """Whether ``code`` (starting in ``frame``) may run here; records the blind
        spot if not.  True when it may run anywhere, any time."""
        if id(code) in self._ok:
            return True
        if self.expected(code) or own_file(code.co_filename):
            self._ok.add(id(code))
            self._keep.append(code)
            return True
        worker = _CURRENT.get(_orig.get_ident())
        if worker is None or worker.deciding or worker.opaque and worker.opaque[-1][2]:
            return False
        caller = frame.f_back if frame is not None else None
        if caller is not None and own_file(caller.f_code.co_filename) and \
                _helper(code.co_filename):
            return False  # a dataclass's __init__ or a stdlib helper explore's code runs
        _unexpected(worker, code)
        return False

    def _make_callback(self, disable: object) -> Callable[[CodeType, int], object]:
        ok, check, getframe = self._ok, self._check, sys._getframe

        def on_start(code: CodeType, offset: int) -> object:
            if id(code) in ok or check(code, getframe(1)):
                return disable
            return None
        return on_start

    def _make_settrace(self) -> TraceFunction:
        ok, check = self._ok, self._check

        def guard_trace(frame: FrameType, event: str, arg: Any) -> None:
            code = frame.f_code
            if id(code) not in ok:
                check(code, frame)
        return guard_trace


def _unexpected(worker: Worker, code: CodeType) -> None:
    name = getattr(code, "co_qualname", code.co_name)
    worker.schedule.unseen(f"{name}, Python code explore did not rewrite, run from C code",
                           (code.co_filename, code.co_firstlineno))


_STDLIB = os.path.realpath(sysconfig.get_paths()["stdlib"]) + os.sep


def _helper(filename: str) -> bool:
    """Generated code (a dataclass's methods) or the standard library's: what
    explore's own code may call in a worker."""
    return filename.startswith("<") or os.path.realpath(filename).startswith(_STDLIB)
