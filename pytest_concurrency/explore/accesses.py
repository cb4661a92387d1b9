"""What a step touches, as DPOR sees it.

A worker parked at a switch point is about to run one instruction, and then
only instructions that touch nothing shared until its next switch point.  That
instruction's *event* is the objects it reads and writes: ``(object, what of
it, writes)`` - an attribute name, a dict or set key, or :data:`ALL` of it.
Two events are dependent when they touch the same part of one object and one of
them writes; DPOR explores one order of every pair of dependent events and
takes every independent pair as commuting.

The rule for what cannot be seen into: a call into code that is not instrumented
(a C function, a library's Python function) writes every mutable object it is
given - its receiver and its arguments - unless it is known to only read them
(``len``, ``dict.get``, ``sorted``...).  Code that is instrumented gets its own
switch points, so calling it touches nothing by itself.  Objects reachable only
through the arguments are not seen (``instrument=`` puts a library's code under
the scheduler).  Every operation on explore's primitives is an event on the
primitive (see ``primitives``); locks made before the run (real ``_thread``
locks) are seen through the calls that take and release them.
"""

from __future__ import annotations

import _thread
import builtins
import collections
import dis
import gc
import sys
import types
from collections.abc import Callable, Sequence
from types import CodeType, FrameType
from typing import Any

from . import _orig
from .blind import BlindSpots, Where
from .frames import NULL, Stack
from .instrument import own_file

ALL: Any = type("ALL", (), {"__repr__": lambda self: "ALL"})()  # the whole object
Access = tuple[int, object, bool]  # (object number, attribute name / key / ALL, writes)
Event = tuple[Access, ...]
NOTHING: Event = ()
Guard = Callable[[], bool]  # true while the step can run without blocking
# The object number of a step that could not be described: it conflicts with every
# step that touches anything (``dependent``), so DPOR tries it in every order.
EVERYTHING = -1


def releasing() -> bool:
    """The guard of a step that releases what other steps' guards wait for (a lock's
    release, a thread's end): it can always run, and no step guarded on the same
    object could have run in its place (DPOR never reverses the two)."""
    return True


Described = tuple[Event, "Guard | None"]
Describer = Callable[[FrameType, "Objects"], Described]

_LOCK = type(_orig.allocate_lock())
_RLOCK: type = getattr(_thread, "RLock", _LOCK)
_IMMUTABLE = (int, float, complex, str, bytes, bool, type(None), range, type(Ellipsis),
              tuple, frozenset, types.FunctionType, types.BuiltinFunctionType, type,
              types.ModuleType, types.MethodType, CodeType, types.CellType)
_KEY_TYPES = (str, int, bytes, bool, float, type(None))
_MUTABLE_CONTAINERS = (list, dict, set, bytearray, collections.deque)
_BUILTIN_METHODS = (types.BuiltinMethodType, types.MethodWrapperType)
_DESCRIPTORS = (types.MethodDescriptorType, types.WrapperDescriptorType,
                types.ClassMethodDescriptorType)
_NO_ACCESS_BUILTINS = frozenset({
    "id", "type", "isinstance", "issubclass", "callable", "iter", "super", "locals",
    "globals", "chr", "ord", "abs", "round", "divmod", "pow", "bin", "oct", "hex", "hash"})
_OPAQUE_BUILTINS = frozenset({"exec", "eval", "compile", "__import__", "open", "input",
                              "breakpoint", "__build_class__"})
# Methods of builtin containers that only read their receiver; the rest write it.
_READERS = frozenset({
    "get", "keys", "values", "items", "copy", "count", "index", "__contains__",
    "__getitem__", "__len__", "__iter__", "__reversed__", "__repr__", "__str__", "__eq__",
    "__ne__", "__lt__", "__le__", "__gt__", "__ge__", "__hash__", "__sizeof__", "__format__",
    "__bool__", "issubset", "issuperset", "isdisjoint", "union", "intersection",
    "difference", "symmetric_difference", "__or__", "__and__", "__sub__", "__xor__",
    "__reduce__", "__reduce_ex__", "__copy__", "__deepcopy__", "__getstate__", "startswith",
    "endswith", "find", "rfind", "hex", "decode", "tobytes", "tolist", "locked", "_is_owned",
    "__getattribute__", "__dir__", "__class_getitem__"})
# Methods of dicts and sets whose first argument is the one key they touch.
_KEYED = frozenset({"get", "__contains__", "__getitem__", "setdefault", "pop", "__setitem__",
                    "__delitem__", "add", "discard", "remove"})
_ACQUIRES = frozenset({"acquire", "acquire_lock", "__enter__"})
_RELEASES = frozenset({"release", "release_lock", "__exit__"})
_INPLACE = frozenset(index for index, (name, _sign) in
                     enumerate(getattr(dis, "_nb_ops", ())) if "INPLACE" in name)
_TRUTH_TESTS = frozenset({
    "POP_JUMP_IF_TRUE", "POP_JUMP_IF_FALSE", "POP_JUMP_FORWARD_IF_TRUE",
    "POP_JUMP_FORWARD_IF_FALSE", "POP_JUMP_BACKWARD_IF_TRUE", "POP_JUMP_BACKWARD_IF_FALSE",
    "JUMP_IF_TRUE_OR_POP", "JUMP_IF_FALSE_OR_POP", "UNARY_NOT", "TO_BOOL"})
NEW_CALLS = sys.version_info >= (3, 13)  # CALL's stack: callable, self-or-NULL (else the reverse)


class Objects:
    """Numbers the objects of one schedule in the order they are first described.

    Schedules that replay the same prefix describe the same objects in the same
    order, so the numbers mean the same object across them.  The objects are kept
    alive until the schedule ends, so no number is ever reused by a new object.
    A module is numbered as its namespace (``mod.x`` is the global ``x``).
    """

    __slots__ = ("_numbers", "_alive", "blind")

    def __init__(self, blind: BlindSpots | None = None) -> None:
        self._numbers: dict[int, int] = {}
        self._alive: list[object] = []
        self.blind = blind if blind is not None else BlindSpots()  # the schedule's

    def unseen(self, what: str, where: Where) -> None:
        """A step whose effects could not be seen (``what``, at ``where``): the
        search that ran it is not complete (see ``blind``)."""
        self.blind.add(what, where)

    def __call__(self, obj: object) -> int:
        if type(obj) is types.ModuleType:
            obj = obj.__dict__
        number = self._numbers.get(id(obj))
        if number is None:
            number = self._numbers[id(obj)] = len(self._alive)
            self._alive.append(obj)
        return number


def dependent(first: Event, second: Event) -> bool:
    """Whether the order of two events can matter: they touch the same part of one
    object and at least one of them writes, or one of them is a step that could not
    be described (:data:`EVERYTHING`) and the other touches anything."""
    for number, part, writes in first:
        if number == EVERYTHING:
            return bool(second)
        for other, other_part, other_writes in second:
            if other == EVERYTHING or number == other and (writes or other_writes) and \
                    (part is ALL or other_part is ALL or part == other_part):
                return True
    return False


def _data(obj: object) -> bool:
    """Whether ``obj`` has state a worker could change (not a number, string...)."""
    return not isinstance(obj, _IMMUTABLE)


def _key(key: object) -> object:
    """The part of a dict or set that ``key`` names: itself if it is a plain value."""
    if isinstance(key, _KEY_TYPES):
        return key
    if type(key) is tuple and all(isinstance(item, _KEY_TYPES) for item in key):
        return key
    return ALL


def _reads(values: Sequence[object], objects: Objects) -> list[Access]:
    return [(objects(value), ALL, False) for value in values if _data(value)]


def _writes(values: Sequence[object], objects: Objects) -> list[Access]:
    return [(objects(value), ALL, True) for value in values if _data(value)]


def _attribute(owner: object, name: str, writes: bool, objects: Objects) -> list[Access]:
    """``owner.name``: the attribute, and, read through an instance, the class
    attribute it falls back to (which ``Class.name = ...`` writes)."""
    out: list[Access] = [(objects(owner), name, writes)]
    if writes or isinstance(owner, (type, types.ModuleType)):
        return out
    try:
        namespace = object.__getattribute__(owner, "__dict__")
    except AttributeError:
        namespace = None
    if namespace is None or name not in namespace:
        for klass in type(owner).__mro__:
            if name in klass.__dict__:
                out.append((objects(klass), name, False))
                break
    return out


def _python_code(function: object) -> CodeType | None:
    code = getattr(function, "__code__", None)
    return code if isinstance(code, CodeType) else None


class Calls:
    """What calling something does, by what it is (see the module docstring)."""

    def __init__(self, is_user: Callable[[str], bool]) -> None:
        self.is_user = is_user

    def seen(self, code: CodeType) -> bool:
        """Whether code runs with its own switch points (or is explore's own)."""
        return own_file(code.co_filename) or self.is_user(code.co_filename)

    def describe(self, function: object, args: list[object], objects: Objects) -> Described:
        if isinstance(function, types.MethodType):
            args = [function.__self__, *args]
            function = function.__func__
        if isinstance(function, types.FunctionType):
            if self.seen(function.__code__):
                return NOTHING, None
            return tuple(_writes(args, objects)), None
        if isinstance(function, _BUILTIN_METHODS):
            receiver = function.__self__
            if isinstance(receiver, types.ModuleType) or receiver is None:
                return self._module_function(function, receiver, args, objects)
            return self._method(receiver, function.__name__, args, objects)
        if isinstance(function, _DESCRIPTORS) and args:
            return self._method(args[0], function.__name__, args[1:], objects)
        if isinstance(function, type):
            return self._construct(function, args, objects), None
        partial_function = getattr(function, "func", None)
        if type(function).__name__ == "partial" and partial_function is not None:
            return self.describe(partial_function,
                                 [*getattr(function, "args", ()), *args], objects)
        call = next((kind.__dict__["__call__"] for kind in type(function).__mro__
                     if "__call__" in kind.__dict__), None)
        code = _python_code(call)
        if code is not None and self.seen(code):
            return NOTHING, None
        return tuple(_writes([function, *args], objects)), None

    def _module_function(self, function: Any, module: object, args: list[object],
                         objects: Objects) -> Described:
        if module is not builtins:  # heapq.heappush, operator.setitem...: writes
            return tuple(_writes(args, objects)), None
        name = function.__name__
        if name in _NO_ACCESS_BUILTINS:
            return NOTHING, None
        if name in ("getattr", "hasattr") and len(args) >= 2 and isinstance(args[1], str):
            return tuple(_attribute(args[0], args[1], False, objects)), None
        if name in ("setattr", "delattr") and len(args) >= 2 and isinstance(args[1], str):
            return ((objects(args[0]), args[1], True),), None
        if name == "next" and args:
            return tuple(iteration(args[0], objects, self)), None
        if name == "print":
            return ((objects(sys.stdout), ALL, True),), None
        if name in _OPAQUE_BUILTINS:
            return tuple(_writes(args, objects)), None
        return tuple(_reads(args, objects)), None  # len, sorted, sum, repr, vars...

    def _method(self, receiver: object, name: str, args: list[object],
                objects: Objects) -> Described:
        kind = type(receiver)
        if kind is _LOCK or kind is _RLOCK:
            return _real_lock(receiver, name, args, objects)
        if isinstance(receiver, _IMMUTABLE):  # "sep".join(parts) reads the parts
            return tuple(_reads(args, objects)), None
        writes = name not in _READERS
        part = ALL
        if name in _KEYED and args and isinstance(receiver, (dict, set, frozenset)):
            part = _key(args[0])
        if name == "get" and isinstance(receiver, collections.defaultdict):
            part = ALL
        return ((objects(receiver), part, writes), *_reads(args, objects)), None

    def _construct(self, kind: type, args: list[object], objects: Objects) -> Event:
        if kind.__module__ == "builtins":
            return tuple(_reads(args, objects))  # list(x), dict(x), ValueError(x)...
        c_part = False
        for method, default in ((getattr(kind, "__init__", None), object.__init__),
                                (getattr(kind, "__new__", None), object.__new__)):
            code = _python_code(method)
            if code is not None and not self.seen(code):
                return tuple(_writes(args, objects))  # a library's constructor
            if code is None and method is not default:
                c_part = True
        # Seen Python code has its own switch points; a C base class (class D(dict))
        # reads what it is given.
        return tuple(_reads(args, objects)) if c_part else NOTHING


def _real_lock(lock: Any, name: str, args: list[object], objects: Objects) -> Described:
    """A lock made before the run (``threading.Lock()`` at import): taking it is
    guarded like explore's own Lock, so no worker ever blocks on it for real."""
    event: Event = ((objects(lock), ALL, True),)
    if name in _RELEASES:
        return event, releasing
    blocking = not args or (len(args) == 1 and args[0] is True)
    if name not in _ACQUIRES or not blocking:
        return event, None  # a try-lock or a timed acquire: it never blocks for ever
    if type(lock) is _LOCK:
        return event, lambda: not lock.locked()
    me = _orig.get_ident()
    return event, lambda: _rlock_free_for(lock, me)


def _rlock_free_for(lock: object, ident: int) -> bool:
    """Whether thread ``ident`` could take the C RLock ``lock`` now (its repr is the
    only way to see the owner from another thread)."""
    text = repr(lock)
    owner = text.partition("owner=")[2].partition(" ")[0]
    count = text.partition("count=")[2].partition(" ")[0]
    return count == "0" or owner == str(ident)


def iteration(iterator: object, objects: Objects, calls: Calls, depth: int = 0) -> list[Access]:
    """``next(iterator)``: it advances the iterator and reads what it iterates over
    (found through the references a builtin iterator holds)."""
    kind = type(iterator)
    step = getattr(kind, "__next__", None)
    code = _python_code(step)
    if code is not None:  # an iterator class in Python
        return [] if calls.seen(code) else [(objects(iterator), ALL, True)]
    frame = getattr(iterator, "gi_frame", None) or getattr(iterator, "cr_frame", None)
    if frame is not None and calls.seen(frame.f_code):
        return []  # a generator of code with its own switch points
    out: list[Access] = [(objects(iterator), ALL, True)]
    if depth >= 3:
        return out
    for referent in gc.get_referents(iterator):
        if isinstance(referent, _MUTABLE_CONTAINERS):
            out.append((objects(referent), ALL, False))
        elif type(referent) is tuple:  # zip's iterators, map's arguments
            for item in referent:
                if hasattr(item, "__next__"):
                    out.extend(iteration(item, objects, calls, depth + 1))
                elif isinstance(item, _MUTABLE_CONTAINERS):
                    out.append((objects(item), ALL, False))
        elif hasattr(referent, "__next__") and _data(referent):
            out.extend(iteration(referent, objects, calls, depth + 1))
    return out


def describe(describer: Describer, frame: FrameType, objects: Objects) -> Described:
    """``describer``'s answer for ``frame``; an instruction it cannot describe (an
    object that raises on a look at its class, say) touches everything."""
    try:
        return describer(frame, objects)
    except Exception:  # noqa: BLE001 - a wrong answer would be worse than a conservative one
        return _everything(frame, objects)


class Table:
    """Per code object: DPOR's switch points and, for each, how to describe it.

    ``points(code)`` has the shape of ``instrument.CodeTable.points`` (the
    tracers read it); ``describers(code)`` maps the same offsets to functions
    of the frame that return the event of the instruction about to run.
    """

    granularity = "access"

    def __init__(self, is_user: Callable[[str], bool]) -> None:
        self.calls = Calls(is_user)
        self._points: dict[CodeType, dict[int, tuple[int, str | None]]] = {}
        self._describers: dict[CodeType, dict[int, Describer]] = {}

    def points(self, code: CodeType) -> dict[int, tuple[int, str | None]]:
        points = self._points.get(code)
        if points is None:
            self._build(code)
            points = self._points[code]
        return points

    def describers(self, code: CodeType) -> dict[int, Describer]:
        found = self._describers.get(code)
        if found is None:
            self._build(code)
            found = self._describers[code]
        return found

    def _build(self, code: CodeType) -> None:
        from .frames import DepthError
        from .instrument import access_text

        points: dict[int, tuple[int, str | None]] = {}
        describers: dict[int, Describer] = {}
        try:
            stack = Stack(code)
        except DepthError:
            stack = None
        line = code.co_firstlineno
        for instruction in dis.get_instructions(code):
            if instruction.positions is not None and instruction.positions.lineno is not None:
                line = instruction.positions.lineno
            describer = _describer(instruction, stack, self.calls)
            if describer is None:
                continue
            if stack is None or instruction.offset not in stack.depths:
                describer = _everything  # not understood (or unreachable): touches all
            what = access_text(instruction) if instruction.opname in _ACCESS_TEXT else \
                _VERBS.get(instruction.opname, None)
            points[instruction.offset] = (line, what)
            describers[instruction.offset] = describer
        self._points[code], self._describers[code] = points, describers


EVERYTHING_EVENT: Event = ((EVERYTHING, ALL, True),)


def _everything(frame: FrameType, objects: Objects) -> Described:
    """An instruction whose operands could not be read: it conflicts with every
    step that touches anything (see ``dependent``)."""
    return EVERYTHING_EVENT, None


_ACCESS_TEXT = frozenset({
    "LOAD_ATTR", "STORE_ATTR", "DELETE_ATTR", "LOAD_METHOD", "LOAD_SUPER_ATTR",
    "BINARY_SUBSCR", "STORE_SUBSCR", "DELETE_SUBSCR", "BINARY_SLICE", "STORE_SLICE",
    "LOAD_GLOBAL", "STORE_GLOBAL", "DELETE_GLOBAL", "LOAD_NAME", "STORE_NAME", "DELETE_NAME",
    "LOAD_DEREF", "STORE_DEREF", "DELETE_DEREF", "LOAD_CLASSDEREF", "LOAD_FROM_DICT_OR_DEREF",
    "CONTAINS_OP", "FOR_ITER"})
_VERBS = {"CALL": "calls", "CALL_KW": "calls", "CALL_FUNCTION_EX": "calls",
          "BEFORE_WITH": "enters with", "WITH_EXCEPT_START": "exits with",
          "BINARY_OP": "operates", "COMPARE_OP": "compares", "UNPACK_SEQUENCE": "unpacks",
          "UNPACK_EX": "unpacks"}


def _describer(instruction: dis.Instruction, stack: Stack | None,
               calls: Calls) -> Describer | None:
    """How to describe ``instruction`` at run time; None: it touches nothing shared."""
    name, offset, arg, argval = (instruction.opname, instruction.offset, instruction.arg,
                                 instruction.argval)
    if stack is None:
        stack = _NO_STACK
    top = stack.top

    if name in ("LOAD_ATTR", "LOAD_METHOD", "STORE_ATTR", "DELETE_ATTR"):
        writes = name != "LOAD_ATTR" and name != "LOAD_METHOD"

        def attribute(frame: FrameType, objects: Objects) -> Described:
            return tuple(_attribute(top(frame, offset, 1)[0], argval, writes, objects)), None
        return attribute
    if name == "LOAD_SUPER_ATTR":
        def super_attribute(frame: FrameType, objects: Objects) -> Described:
            return tuple(_attribute(top(frame, offset, 1)[0], argval, False, objects)), None
        return super_attribute
    if name in ("LOAD_GLOBAL", "STORE_GLOBAL", "DELETE_GLOBAL"):
        writes = name != "LOAD_GLOBAL"

        def global_name(frame: FrameType, objects: Objects) -> Described:
            return ((objects(frame.f_globals), argval, writes),), None
        return global_name
    if name in ("LOAD_NAME", "STORE_NAME", "DELETE_NAME"):
        writes = name != "LOAD_NAME"

        def plain_name(frame: FrameType, objects: Objects) -> Described:
            namespace = frame.f_locals
            out: list[Access] = [(objects(namespace), argval, writes)]
            if not writes and namespace is not frame.f_globals:
                out.append((objects(frame.f_globals), argval, False))
            return tuple(out), None
        return plain_name
    if name in ("LOAD_DEREF", "STORE_DEREF", "DELETE_DEREF", "LOAD_CLASSDEREF",
                "LOAD_FROM_DICT_OR_DEREF"):
        writes = name in ("STORE_DEREF", "DELETE_DEREF")
        index = arg if arg is not None else 0

        def closure(frame: FrameType, objects: Objects) -> Described:
            cell = stack.cell(frame, index)
            return (((objects(cell), "", writes),) if cell is not None else NOTHING), None
        return closure
    if name in ("BINARY_SUBSCR", "STORE_SUBSCR", "DELETE_SUBSCR"):
        writes = name != "BINARY_SUBSCR"

        def subscript(frame: FrameType, objects: Objects) -> Described:
            container, key = top(frame, offset, 2)
            return _subscript(container, key, writes, objects, calls), None
        return subscript
    if name in ("BINARY_SLICE", "STORE_SLICE"):
        count, writes = (3, False) if name == "BINARY_SLICE" else (3, True)

        def slice_(frame: FrameType, objects: Objects) -> Described:
            container = top(frame, offset, count)[0]
            return (((objects(container), ALL, writes),) if _data(container) else NOTHING), \
                None
        return slice_
    if name == "CONTAINS_OP":
        def contains(frame: FrameType, objects: Objects) -> Described:
            item, container = top(frame, offset, 2)
            if isinstance(container, (dict, set, frozenset)):
                return ((objects(container), _key(item), False),), None
            return _operands([container], False, ("__contains__", "__iter__"), objects,
                             calls), None
        return contains
    if name == "FOR_ITER":
        def next_item(frame: FrameType, objects: Objects) -> Described:
            return tuple(iteration(top(frame, offset, 1)[0], objects, calls)), None
        return next_item
    if name in ("CALL", "CALL_KW"):
        count = (arg or 0) + (1 if name == "CALL_KW" else 0)
        kw = name == "CALL_KW"

        def call(frame: FrameType, objects: Objects) -> Described:
            values = top(frame, offset, count + 2)
            if kw:
                values = values[:-1]
            first, second, args = values[0], values[1], values[2:]
            if NEW_CALLS:
                function = first
                if second is not NULL:
                    args = [second, *args]
            elif first is NULL:
                function = second
            else:
                function, args = first, [second, *args]
            return calls.describe(function, args, objects)
        return call
    if name == "CALL_FUNCTION_EX":
        has_kwargs = bool((arg or 0) & 1)

        def call_ex(frame: FrameType, objects: Objects) -> Described:
            extra = 1 if has_kwargs else 0
            values = top(frame, offset, 3 + extra)
            kwargs = values[-1] if has_kwargs else None
            positional = values[-1 - extra]
            function = values[0] if NEW_CALLS else values[1]
            if function is NULL:  # 3.11/3.12 put the NULL first, 3.13 after the callable
                function = values[1] if NEW_CALLS else values[0]
            args = list(positional) if isinstance(positional, (tuple, list)) else []
            if isinstance(kwargs, dict):
                args.extend(kwargs.values())
            return calls.describe(function, args, objects)
        return call_ex
    if name == "BEFORE_WITH":
        def enter(frame: FrameType, objects: Objects) -> Described:
            manager = top(frame, offset, 1)[0]
            method = getattr(type(manager), "__enter__", None)
            if method is None:
                return NOTHING, None
            return calls.describe(method, [manager], objects)
        return enter
    if name == "WITH_EXCEPT_START":
        def exit_(frame: FrameType, objects: Objects) -> Described:
            return calls.describe(top(frame, offset, 4)[0], [], objects)
        return exit_
    if name == "BINARY_OP":
        inplace = arg in _INPLACE

        def operator(frame: FrameType, objects: Objects) -> Described:
            left, right = top(frame, offset, 2)
            out = _operands([right], False, _OPERATORS, objects, calls)
            return _operands([left], inplace, _OPERATORS, objects, calls) + out, None
        return operator
    if name == "COMPARE_OP":
        def compare(frame: FrameType, objects: Objects) -> Described:
            return _operands(top(frame, offset, 2), False, _COMPARISONS, objects, calls), None
        return compare
    if name in ("UNPACK_SEQUENCE", "UNPACK_EX", "LIST_EXTEND", "SET_UPDATE", "DICT_UPDATE",
                "DICT_MERGE") or name in _TRUTH_TESTS:
        dunders = _TRUTH if name in _TRUTH_TESTS else _ITERATION

        def operand(frame: FrameType, objects: Objects) -> Described:
            return _operands(top(frame, offset, 1), False, dunders, objects, calls), None
        return operand
    if name in ("FORMAT_VALUE", "FORMAT_WITH_SPEC", "FORMAT_SIMPLE", "CONVERT_VALUE"):
        spec = name == "FORMAT_WITH_SPEC" or name == "FORMAT_VALUE" and bool((arg or 0) & 0x04)

        def formatted(frame: FrameType, objects: Objects) -> Described:
            values = top(frame, offset, 2 if spec else 1)
            return _operands(values[:1], False, _FORMATTING, objects, calls), None
        return formatted
    return None


def _subscript(container: object, key: object, writes: bool, objects: Objects,
               calls: Calls) -> Event:
    kind = type(container)
    method = getattr(kind, "__setitem__" if writes else "__getitem__", None)
    code = _python_code(method)
    if code is not None and calls.seen(code):
        return NOTHING  # its own switch points say what it does
    if isinstance(container, dict):
        part = _key(key)
        if not writes and isinstance(container, collections.defaultdict) or \
                not writes and getattr(kind, "__missing__", None) is not None:
            return ((objects(container), part, True),)  # a missing key is inserted
        return ((objects(container), part, writes),)
    if not _data(container):
        return NOTHING
    return ((objects(container), ALL, writes or code is not None),)


_OPERATORS = ("__add__", "__radd__", "__iadd__", "__sub__", "__rsub__", "__isub__",
              "__mul__", "__rmul__", "__imul__", "__or__", "__ror__", "__ior__", "__and__",
              "__rand__", "__iand__", "__truediv__", "__floordiv__", "__mod__", "__pow__",
              "__matmul__", "__lshift__", "__rshift__", "__xor__")
_COMPARISONS = ("__eq__", "__ne__", "__lt__", "__le__", "__gt__", "__ge__")
_TRUTH = ("__bool__", "__len__")
_ITERATION = ("__iter__", "__len__")
_FORMATTING = ("__format__", "__str__", "__repr__")


def _operands(values: Sequence[object], writes: bool, dunders: tuple[str, ...],
              objects: Objects, calls: Calls) -> Event:
    """An operator (one of ``dunders``) applied to ``values``: on a builtin object it
    reads (in place: writes) it; on a Python object it runs that class's operator -
    code with its own switch points, nothing at all (the default, identity), or a
    library's code, which counts as a write."""
    out: list[Access] = []
    for value in values:
        if not _data(value):
            continue
        if not isinstance(value, _MUTABLE_CONTAINERS) and _python_object(value):
            kind = type(value)
            for dunder in dunders:
                code = _python_code(getattr(kind, dunder, None))
                if code is not None and not calls.seen(code):
                    out.append((objects(value), ALL, True))
                    break
            continue
        out.append((objects(value), ALL, writes))
    return tuple(out)


def _python_object(value: object) -> bool:
    """Whether ``value`` is an instance of a class written in Python (it has an
    instance dict or slots), rather than a C type's."""
    if hasattr(value, "__dict__"):
        return True
    return any("__slots__" in klass.__dict__ for klass in type(value).__mro__)


class _NoStack:
    """Stands in for a Stack when a code object's depths are not known."""

    depths: dict[int, int] = {}

    def top(self, frame: FrameType, offset: int, count: int) -> list[object]:
        raise AssertionError("unreachable: such points use _everything")

    def cell(self, frame: FrameType, index: int) -> object:
        raise AssertionError("unreachable: such points use _everything")


_NO_STACK: Any = _NoStack()
