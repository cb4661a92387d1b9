"""What DPOR sees of a step: frames read from the value stack, accesses described
by what is called, and which events are dependent."""
import collections
import dis
import heapq
import json
import sys

import pytest

from pytest_concurrency.explore import accesses, frames
from pytest_concurrency.explore.accesses import ALL, Calls, Objects, dependent

pytestmark = pytest.mark.skipif(frames.problem() is not None,
                                reason=f"frames: {frames.problem()}")


@pytest.mark.parametrize("module", [json.decoder, collections, dis])
def test_static_stack_depths_never_exceed_the_code_objects_stack_size(module):
    codes = [value.__code__ for value in vars(module).values() if hasattr(value, "__code__")]
    assert codes
    for code in codes:
        assert max(frames.depths(code).values()) <= code.co_stacksize, code


def _at_instruction(function, offset, look):
    """Call ``function()`` and ``look(frame)`` just before its instruction at
    ``offset`` runs: as explore's tracer sees it (sys.monitoring on 3.12+, where
    settrace gives no opcode events to a code object's first run)."""
    code = function.__code__
    if sys.version_info >= (3, 12):
        monitoring, tool = sys.monitoring, 4
        monitoring.use_tool_id(tool, "test_accesses")
        monitoring.register_callback(tool, monitoring.events.INSTRUCTION, lambda c, at: (
            look(sys._getframe(1)) if at == offset else None))
        monitoring.set_local_events(tool, code, monitoring.events.INSTRUCTION)
        try:
            function()
        finally:
            monitoring.set_local_events(tool, code, 0)
            monitoring.free_tool_id(tool)
        return

    def tracer(frame, event, arg):
        if frame.f_code is code:
            frame.f_trace_opcodes = True
            if event == "opcode" and frame.f_lasti == offset:
                look(frame)
        return tracer

    sys.settrace(tracer)
    try:
        function()
    finally:
        sys.settrace(None)


def test_the_top_of_a_live_frames_stack_is_read_where_the_interpreter_put_it():
    marker, seen = object(), []

    def target():
        first = marker
        return [first, 7]  # BUILD_LIST finds marker and 7 on top of the stack

    stack = frames.Stack(target.__code__)
    build = next(i.offset for i in dis.get_instructions(target) if i.opname == "BUILD_LIST")

    def look(frame):
        seen.append(stack.top(frame, build, 2))

    _at_instruction(target, build, look)
    assert len(seen) == 1 and seen[0][0] is marker and seen[0][1] == 7


def test_a_method_call_on_a_shared_object_is_described_by_its_name_and_key():
    objects, calls = Objects(), Calls(lambda filename: False)
    shared = {"k": 1}
    reads, _ = calls.describe(shared.get, ["k"], objects)
    writes, _ = calls.describe(shared.__setitem__, ["k", 2], objects)
    other, _ = calls.describe(shared.__setitem__, ["j", 2], objects)
    assert reads == ((objects(shared), "k", False),)
    assert dependent(reads, writes) and not dependent(reads, other)


def test_a_call_it_cannot_see_into_writes_its_arguments():
    objects, calls = Objects(), Calls(lambda filename: False)
    items = [3, 1, 2]
    event, _ = calls.describe(heapq.heapify, [items], objects)  # C code it does not know
    assert event == ((objects(items), ALL, True),)


def test_a_call_into_traced_code_is_nothing_by_itself():
    objects, calls = Objects(), Calls(lambda filename: filename == __file__)

    def user(box):
        box.append(1)

    event, _ = calls.describe(user, [[]], objects)
    assert event == ()


def test_objects_keep_their_numbers_and_a_module_is_its_namespace():
    objects = Objects()
    first, second = object(), object()
    assert (objects(first), objects(second), objects(first)) == (0, 1, 0)
    assert objects(accesses) == objects(vars(accesses))
