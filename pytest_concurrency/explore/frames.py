"""What the instruction a worker is parked at works on: its frame's value stack.

DPOR needs to know, at a switch point, *which* objects the next instruction
reads or writes (``s.value`` of this ``s``, ``d[k]`` of this ``d``).  Those
objects are on the frame's evaluation stack, which Python does not expose.
CPython 3.11-3.13 keep that stack in the interpreter frame right after the fast
locals (``localsplus``), and at a given instruction its depth is fixed: the
compiler's own stack-effect arithmetic, replayed here over the instructions
(:func:`depths`).  So the objects are read from memory at
``localsplus[nlocalsplus + depth - k]`` - only ever below the depth the stack
really has there, where every slot holds a live reference.

:func:`problem` checks the layout on the running interpreter before anything is
read (and says why DPOR cannot run where it does not hold: another version, a
free-threaded or debug build).
"""

from __future__ import annotations

import ctypes
import dis
import opcode
import sys
import sysconfig
from types import CellType, CodeType, FrameType

_PTR = ctypes.sizeof(ctypes.c_void_p)
# Offsets in the interpreter frame (_PyInterpreterFrame) of 64-bit CPython 3.11-3.13.
_CODE = 32 if sys.version_info < (3, 12) else 0  # f_code (f_executable on 3.13)
_FRAME_OBJ = 40 if sys.version_info < (3, 12) else 48  # frame_obj
_LOCALSPLUS = 72  # localsplus[]: fast locals, cells, free variables, then the stack
_F_FRAME = 24  # PyFrameObject.f_frame, after PyObject_HEAD and f_back

_UNCONDITIONAL = {"JUMP_FORWARD", "JUMP_BACKWARD", "JUMP_BACKWARD_NO_INTERRUPT", "JUMP",
                  "JUMP_NO_INTERRUPT", "JUMP_ABSOLUTE"}
_TERMINAL = {"RETURN_VALUE", "RETURN_CONST", "RAISE_VARARGS", "RERAISE"}
_JUMPS = set(getattr(dis, "hasjump", ())) | set(dis.hasjrel) | set(dis.hasjabs)

NULL = object()  # what a NULL stack slot reads as (the "no self" half of a call)


class DepthError(Exception):
    """The stack depth of some instruction could not be worked out consistently."""


def _interpreter_frame(frame: FrameType) -> int:
    address = ctypes.c_void_p.from_address(id(frame) + _F_FRAME).value
    if not address:
        raise DepthError("frame without an interpreter frame")
    return address


def _slot(base: int, index: int) -> object:
    pointer = ctypes.c_void_p.from_address(base + _LOCALSPLUS + index * _PTR).value
    if not pointer:
        return NULL
    return ctypes.cast(pointer, ctypes.py_object).value


def nlocalsplus(code: CodeType) -> int:
    """How many slots the fast locals, cells and free variables take."""
    varnames = code.co_varnames
    return (len(varnames) + sum(1 for name in code.co_cellvars if name not in varnames)
            + len(code.co_freevars))


def depths(code: CodeType) -> dict[int, int]:
    """{offset: stack depth before the instruction at offset} for every reachable
    instruction of ``code``; DepthError if two paths disagree."""
    instructions = list(dis.get_instructions(code))
    position = {instruction.offset: n for n, instruction in enumerate(instructions)}
    out: dict[int, int] = {}
    work = [(0, 0)]
    for entry in dis.Bytecode(code).exception_entries:  # type: ignore[attr-defined]
        work.append((entry.target, entry.depth + (1 if entry.lasti else 0) + 1))
    while work:
        offset, depth = work.pop()
        while True:
            n = position.get(offset)
            if n is None:
                raise DepthError(f"{code.co_name}: no instruction at offset {offset}")
            seen = out.get(offset)
            if seen is not None:
                if seen != depth:
                    raise DepthError(f"{code.co_name}: depth {seen} or {depth} at {offset}")
                break
            out[offset] = depth
            instruction = instructions[n]
            arg = instruction.arg if instruction.opcode >= opcode.HAVE_ARGUMENT else None
            name = instruction.opname
            if instruction.opcode in _JUMPS:
                target = getattr(instruction, "jump_target", None)
                if target is None:
                    target = instruction.argval
                work.append((target, depth + dis.stack_effect(instruction.opcode, arg,
                                                              jump=True)))
                if name in _UNCONDITIONAL:
                    break
            if name in _TERMINAL:
                break
            effect = dis.stack_effect(instruction.opcode, arg, jump=False)
            if name == "PRECALL":  # 3.11: CALL pops what the compiler books on PRECALL
                effect = 0
            elif name == "CALL" and sys.version_info < (3, 12):
                effect += dis.stack_effect(dis.opmap["PRECALL"], arg)
            elif name == "RETURN_GENERATOR":
                effect = max(effect, 1)  # resumed, the generator has the sent value on top
            depth += effect
            if depth < 0:
                raise DepthError(f"{code.co_name}: negative stack depth after {offset}")
            if n + 1 >= len(instructions):
                break
            offset = instructions[n + 1].offset
    return out


class Stack:
    """Reads the value stack of frames of one code object at its switch points."""

    __slots__ = ("base", "depths")

    def __init__(self, code: CodeType) -> None:
        self.base = nlocalsplus(code)
        self.depths = depths(code)

    def top(self, frame: FrameType, offset: int, count: int) -> list[object]:
        """The top ``count`` values before the instruction at ``offset`` runs,
        deepest first (the last one is the top of the stack)."""
        depth = self.depths[offset]
        if count > depth:
            raise DepthError(f"{count} values wanted, the stack holds {depth}")
        base = _interpreter_frame(frame)
        first = self.base + depth - count
        return [_slot(base, first + k) for k in range(count)]

    def cell(self, frame: FrameType, index: int) -> CellType | None:
        """The cell in fast-locals slot ``index`` (a closure variable), if it is one."""
        if index >= self.base:
            return None
        value = _slot(_interpreter_frame(frame), index)
        return value if isinstance(value, CellType) else None


def _layout_holds(first: object, second: object) -> bool:
    """Inside a running frame: do its code, frame object and first local sit where
    this module reads them?"""
    frame = sys._getframe()
    try:
        base = _interpreter_frame(frame)
    except DepthError:
        return False
    code = ctypes.c_void_p.from_address(base + _CODE).value
    owner = ctypes.c_void_p.from_address(base + _FRAME_OBJ).value
    return code == id(frame.f_code) and owner == id(frame) and _slot(base, 0) is first


def problem() -> str | None:
    """Why frames cannot be read on this interpreter; None when they can."""
    version = f"{sys.version_info[0]}.{sys.version_info[1]}"
    if sys.implementation.name != "cpython" or not (3, 11) <= sys.version_info < (3, 14):
        return f"it reads CPython 3.11-3.13 frames, this is {sys.implementation.name} {version}"
    if _PTR != 8:
        return "it reads 64-bit CPython frames"
    if sysconfig.get_config_var("Py_GIL_DISABLED") or hasattr(sys, "gettotalrefcount"):
        return f"it does not read the frames of a free-threaded or debug build ({version})"
    ok = _layout_holds(object(), None)
    if not ok:
        return f"the frame layout of this Python {version} build is not the expected one"
    return None
