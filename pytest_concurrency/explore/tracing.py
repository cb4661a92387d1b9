"""Switch points in user code: sys.monitoring on 3.12+, sys.settrace on 3.11."""
import sys

from . import _orig
from .scheduler import _CURRENT

TOOL_NAME = "pytest-concurrency-explore"


def make_settrace(is_user, table):
    """A global trace function for worker threads (3.11)."""
    line_mode = table.granularity == "line"
    get_ident = _orig.get_ident

    def global_trace(frame, event, arg):
        code = frame.f_code
        if not is_user(code.co_filename):
            return None
        w = _CURRENT.get(get_ident())
        if w is None:
            return None
        point, fn, name = w.schedule.point, code.co_filename, code.co_name
        if line_mode:
            def local(frame, event, arg):
                if event == "line":
                    point(w, fn, frame.f_lineno, name)
                return local
            return local
        pts = table.points(code)
        frame.f_trace_lines = False
        frame.f_trace_opcodes = True

        def local(frame, event, arg):
            if event == "opcode":
                hit = pts.get(frame.f_lasti)
                if hit is not None:
                    point(w, fn, hit[0], name, hit[1])
            return local
        return local

    return global_trace


class Monitoring:
    """Own sys.monitoring tool: PY_START finds user code, local events give points."""

    def __init__(self, is_user, table):
        self.is_user, self.table = is_user, table
        self.tool = None
        self.codes = set()

    def start(self):
        mon = sys.monitoring
        for tool in (4, 3, 5, 2, 1, 0):
            if mon.get_tool(tool) is None:
                mon.use_tool_id(tool, TOOL_NAME)
                self.tool = tool
                break
        else:
            raise RuntimeError("explore: every sys.monitoring tool id is in use")
        ev = mon.events
        local = ev.LINE if self.table.granularity == "line" else ev.INSTRUCTION
        mon.register_callback(self.tool, ev.PY_START, self._make_on_start(local))
        mon.register_callback(self.tool, ev.INSTRUCTION, self._make_on_instruction())
        mon.register_callback(self.tool, ev.LINE, self._make_on_line())
        mon.restart_events()
        mon.set_events(self.tool, ev.PY_START)

    def stop(self):
        if self.tool is None:
            return
        mon = sys.monitoring
        mon.set_events(self.tool, 0)
        for code in self.codes:
            mon.set_local_events(self.tool, code, 0)
        for event in (mon.events.PY_START, mon.events.INSTRUCTION, mon.events.LINE):
            mon.register_callback(self.tool, event, None)
        mon.free_tool_id(self.tool)
        self.tool = None
        self.codes.clear()

    def _make_on_start(self, local):
        mon, is_user, codes = sys.monitoring, self.is_user, self.codes

        def on_start(code, offset):
            if code not in codes and is_user(code.co_filename):
                codes.add(code)
                mon.set_local_events(self.tool, code, local)
            return mon.DISABLE
        return on_start

    def _make_on_instruction(self):
        disable, points, get_ident = sys.monitoring.DISABLE, self.table.points, _orig.get_ident

        def on_instruction(code, offset):
            hit = points(code).get(offset)
            if hit is None:
                return disable
            w = _CURRENT.get(get_ident())
            if w is not None:
                w.schedule.point(w, code.co_filename, hit[0], code.co_name, hit[1])
            return None
        return on_instruction

    def _make_on_line(self):
        get_ident = _orig.get_ident

        def on_line(code, line):
            w = _CURRENT.get(get_ident())
            if w is not None:
                w.schedule.point(w, code.co_filename, line, code.co_name)
        return on_line
