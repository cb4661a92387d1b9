"""Switch points in user code: sys.monitoring on 3.12+, sys.settrace on 3.11."""

from __future__ import annotations

import sys
from collections.abc import Callable
from types import CodeType, FrameType
from typing import Any, Protocol

from . import _orig
from .accesses import Describer, describe
from .instrument import SwitchPoints
from .scheduler import _CURRENT, Arrival, TraceFunction

Describers = Callable[[CodeType], dict[int, Describer]]  # DPOR's: accesses.Table.describers


class PointTable(Protocol):
    """Where the switch points of a code object are (instrument.CodeTable, or
    accesses.Table for DPOR)."""

    @property
    def granularity(self) -> str: ...

    def points(self, code: CodeType) -> SwitchPoints: ...

TOOL_NAME = "pytest-concurrency-explore"


def make_settrace(is_user: Callable[[str], bool], table: PointTable,
                  describers: Describers | None = None) -> TraceFunction:
    """A global trace function for worker threads (3.11); with ``describers`` (DPOR),
    each switch point first describes what its instruction touches."""
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
        if describers is not None:
            described = describers(code)
            objects = worker.schedule.objects

            def precise_trace(frame: FrameType, event: str, arg: Any) -> TraceFunction:
                if event == "opcode":
                    offset = frame.f_lasti
                    hit = points.get(offset)
                    if hit is not None:
                        worker.event, worker.guard = describe(described[offset], frame,
                                                              objects)
                        point(worker, filename, hit[0], funcname, hit[1])
                return precise_trace
            return precise_trace

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

    def __init__(self, is_user: Callable[[str], bool], table: PointTable,
                 describers: Describers | None = None) -> None:
        self.is_user, self.table, self.describers = is_user, table, describers
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
        on_instruction = self._make_on_instruction(monitoring.DISABLE) \
            if self.describers is None else self._make_on_precise(monitoring.DISABLE)
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

    def _make_on_precise(self, disable: object) -> Callable[[CodeType, int], object]:
        """INSTRUCTION, for DPOR: as _make_on_instruction, each switch point first
        describing what its instruction touches (read from the frame)."""
        points, get_ident, getframe = self.table.points, _orig.get_ident, sys._getframe
        describers = self.describers
        assert describers is not None
        known: dict[CodeType, dict[int, tuple[Arrival, Describer]]] = {}

        def known_of(code: CodeType) -> dict[int, tuple[Arrival, Describer]]:
            described = describers(code)
            found = known[code] = {
                offset: (("point", (code.co_filename, line, code.co_name, what)),
                         described[offset])
                for offset, (line, what) in points(code).items()}
            return found

        def on_instruction(code: CodeType, offset: int) -> object:
            table = known.get(code)
            hit = (table if table is not None else known_of(code)).get(offset)
            if hit is None:
                return disable
            worker = _CURRENT.get(get_ident())
            if worker is not None:
                worker.event, worker.guard = describe(hit[1], getframe(1),
                                                      worker.schedule.objects)
                worker.schedule._switch(worker, hit[0])
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
