"""What a step touches, as DPOR sees it.

A worker parked at a switch point is about to make one access, and then only
accesses of its own frame until its next switch point.  That access's *event*
is the objects it reads and writes: ``(object, what of it, writes)`` - an
attribute name, a dict or set key, or :data:`ALL` of it.  Two events are
dependent when they touch the same part of one object and one of them writes;
DPOR explores one order of every pair of dependent events and takes every
independent pair as commuting.  The hooks (``hooks``) hand this module the real
objects of each access; this module says what the access touches.

One object, several names: a module is numbered as its namespace, an instance
as its ``__dict__`` (``o.n`` is ``vars(o)["n"]``), a class as its namespace, a
dict view or mapping proxy as its dict, a memoryview as what it views, a weak
proxy as its referent (:class:`Objects`).

The rule for what cannot be seen into (the ``Outcome`` of a call, an operator,
an attribute that runs a descriptor):
- code explore rewrote (or its own primitives) does its own accesses: the call
  touches nothing by itself;
- a C function or method of a builtin type runs as one step (atomic under the
  GIL; a builtin container locks each operation on a free-threaded build), read
  or write by what it is (``len`` reads, ``list.append`` writes, ``dict.get``
  reads one key...); C code explore does not know conflicts with every step;
- Python code explore did not rewrite (a library outside the test's roots, code
  without source) is not atomic and its accesses are not seen: the step
  conflicts with every step and the verdict says it could not see inside it,
  unless the call is one of a few library calls modelled here (``os.getenv``,
  ``logging``, ``contextlib``'s context managers...);
- while a call runs code that calls back into rewritten code (a ``sort`` key,
  ``lru_cache``'s function, ``cached_property``), each step of the callback
  also carries the call's own event (``Outcome.open``), because the C code's
  work after the callback happens in the callback's last step.
"""

from __future__ import annotations

import _thread
import builtins
import collections
import contextlib
import functools
import gc
import operator
import os
import sys
import types
import weakref
from collections.abc import Callable, Iterable, Sequence
from types import CodeType, FunctionType
from typing import Any

from . import _orig
from .blind import BlindSpots, Where
from .instrument import own_file

ALL: Any = type("ALL", (), {"__repr__": lambda self: "ALL"})()  # the whole object
Access = tuple[int, object, bool]  # (object number, attribute name / key / ALL, writes)
Event = tuple[Access, ...]
NOTHING: Event = ()
Guard = Callable[[], bool]  # true while the step can run without blocking
# The object number of a step that could not be described: it conflicts with every
# step that touches anything (``dependent``), so DPOR tries it in every order.
EVERYTHING = -1
EVERYTHING_EVENT: Event = ((EVERYTHING, ALL, True),)


def releasing() -> bool:
    """The guard of a step that releases what other steps' guards wait for (a lock's
    release, a thread's end): it can always run, and no step guarded on the same
    object could have run in its place (DPOR never reverses the two)."""
    return True


class Outcome:
    """What an access, call or operation touches.  (A plain class: a NamedTuple's
    constructor is generated code, which explore's own steps must not run.)"""

    __slots__ = ("event", "guard", "open", "blind", "bulk", "expects")

    def __init__(self, event: Event, guard: Guard | None = None, open: Event | None = None,
                 blind: str | None = None, bulk: bool = False,
                 expects: bool = False) -> None:
        self.event = event
        self.guard = guard
        # While the call runs and calls back into rewritten code, every step of the
        # callback also carries this event (None: nothing to carry).
        self.open = open
        # What explore could not see (the verdict names it; None: all was seen).
        self.blind = blind
        # Its reads of whole containers are a C function iterating them: one step
        # under the GIL, not atomic on a free-threaded build (see hooks.bulk_races).
        self.bulk = bulk
        # The Python code it runs without hooks was foreseen: modelled, explore's own,
        # or already a blind spot (the guard lets it run; see tracing.Guard).
        self.expects = expects or blind is not None

    def replace(self, **changes: Any) -> Outcome:
        fields = {name: getattr(self, name) for name in self.__slots__}
        fields.update(changes)
        return Outcome(**fields)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Outcome) and all(
            getattr(self, name) == getattr(other, name) for name in self.__slots__)

    def __hash__(self) -> int:
        return hash(self.event)

    def __repr__(self) -> str:
        return (f"Outcome({self.event!r}, guard={self.guard!r}, open={self.open!r}, "
                f"blind={self.blind!r})")


QUIET = Outcome(NOTHING)
# What the verdict says of a value that differs from run to run: no number of
# schedules covers the values it could have taken.
NONDETERMINISTIC = "{}, a value that differs from run to run"
_CLOCK_METHODS = frozenset({"now", "utcnow", "today"})
# Explore's own primitives (the standard library's code they inherit may run).
OWN = Outcome(NOTHING, None, NOTHING, expects=True)
OPAQUE = Outcome(EVERYTHING_EVENT, None, EVERYTHING_EVENT)


class _Pseudo:
    """An object that stands for state outside the program's objects."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


ENV = _Pseudo("os.environ")  # the process's environment, keyed by variable
CWD = _Pseudo("the working directory")
LOG = _Pseudo("logging")  # the logging system's handlers and records
STDOUT = _Pseudo("sys.stdout")

_LOCK = type(_orig.allocate_lock())
_RLOCK: type = getattr(_thread, "RLock", _LOCK)
_IMMUTABLE = (int, float, complex, str, bytes, bool, type(None), range, type(Ellipsis),
              type(NotImplemented), frozenset, types.FunctionType,
              types.BuiltinFunctionType, types.ModuleType, types.MethodType, CodeType,
              types.CellType, slice, type)
_KEY_TYPES = (str, int, bytes, bool, float, type(None))
_CONTAINERS = (list, dict, set, bytearray, collections.deque)  # builtin, mutable
_DEEP = (list, dict, set, frozenset, tuple, collections.deque)  # walked by deep reads
_VIEWS: tuple[type, ...] = (type({}.keys()), type({}.values()), type({}.items()))
_BUILTIN_METHODS = (types.BuiltinMethodType, types.MethodWrapperType)
_DESCRIPTORS = (types.MethodDescriptorType, types.WrapperDescriptorType,
                types.ClassMethodDescriptorType)
_LRU = type(functools.lru_cache(maxsize=None)(lambda: None))
_PARTIAL = functools.partial
_GENERATORS = (types.GeneratorType, types.CoroutineType, types.AsyncGeneratorType)
_LOCAL = _thread._local
_ENVIRON: type = type(os.environ)
_MISSING = object()
NO_OPERAND = _MISSING  # the right operand of a unary operation, a truth test...
_OBJECT_GETATTRIBUTE = object.__getattribute__
_TYPE_DICT: Any = type.__dict__["__dict__"]


# ---- numbering objects --------------------------------------------------------------------------

class Objects:
    """Numbers the objects of one schedule in the order they are first described.

    Schedules that replay the same prefix describe the same objects in the same
    order, so the numbers mean the same object across them; a number is never
    given twice.  An object is held by a weak reference where it can be (so its
    finalizer and weak references behave as without explore; when it dies its
    address is forgotten, and an object born there later gets a number of its
    own), else kept alive until the schedule ends.  Aliases share a number (see
    the module docstring).
    """

    __slots__ = ("_numbers", "_keep", "_weak", "_first", "_count", "blind")

    def __init__(self, blind: BlindSpots | None = None) -> None:
        self._numbers: dict[int, int] = {}  # address -> number
        self._keep: list[object] = []  # what cannot be held weakly: alive to the end
        self._weak: dict[int, tuple[Any, tuple[int, ...], object]] = {}  # see _hold
        self._first: dict[int, Any] = {}  # number -> its first object (or a weak ref)
        self._count = 0
        self.blind = blind if blind is not None else BlindSpots()  # the schedule's

    def unseen(self, what: str, where: Where) -> None:
        """A step whose effects could not be seen (``what``, at ``where``): the
        search that ran it is not complete (see ``blind``)."""
        self.blind.add(what, where)

    def __call__(self, obj: object) -> int:
        number = self._numbers.get(id(obj))
        return number if number is not None else self._new(obj)

    def _new(self, obj: object) -> int:
        root = alias_root(obj, self)
        if root is None:
            return EVERYTHING  # an alias of something it cannot name (a dead proxy...)
        namespace = None
        if root is not obj:
            number = self(root)
        else:
            namespace = instance_dict(obj)
            found = self._numbers.get(id(namespace)) if namespace is not None else None
            if found is not None:
                number, namespace = found, None
            else:
                number = self._count
                self._count += 1
                if namespace is not None:
                    self._numbers[id(namespace)] = number
        self._numbers[id(obj)] = number
        self._hold(number, obj, namespace)
        return number

    def _hold(self, number: int, obj: object, namespace: object) -> None:
        """Keep ``obj``'s address from being another object's while it is numbered:
        by a weak reference that forgets the address when it dies, or alive."""
        try:
            ref = weakref.ref(obj, self._gone)
        except TypeError:
            self._keep.append(obj)
            if namespace is not None:
                self._keep.append(namespace)
            self._first.setdefault(number, obj)
            return
        addresses = (id(obj),) if namespace is None else (id(obj), id(namespace))
        # The weak reference and the namespace (which dies with its object) are kept
        # here until the object dies (a weak reference hashes as its referent).
        self._weak[id(ref)] = (ref, addresses, namespace)
        self._first.setdefault(number, ref)

    def _gone(self, ref: Any) -> None:
        """An object held weakly died: its address (and its namespace's) may be an
        unrelated object's next."""
        _ref, addresses, _namespace = self._weak.pop(id(ref), (None, (), None))
        for address in addresses:
            self._numbers.pop(address, None)

    def known(self, address: int) -> object | None:
        """The live object at ``address`` that has a number, if there is one."""
        number = self._numbers.get(address)
        if number is None:
            return None
        held = self._first.get(number)
        return held() if type(held) is weakref.ref else held


def alias_root(obj: object, objects: Objects) -> object | None:
    """The object whose number ``obj`` shares (``obj`` itself when it is no alias);
    None when it aliases something that cannot be found."""
    kind = type(obj)
    if kind is types.ModuleType:
        return obj.__dict__
    if kind in _VIEWS or kind is types.MappingProxyType:
        referents = gc.get_referents(obj)
        return referents[0] if referents else obj
    if kind is memoryview:
        exporter = obj.obj  # type: ignore[attr-defined]
        return exporter if exporter is not None else obj
    if _is_ctypes(kind):
        return _ctypes_root(obj, objects)
    if kind is weakref.ProxyType or kind is weakref.CallableProxyType:
        try:
            return obj.__dict__  # forwarded: the referent's namespace
        except (AttributeError, ReferenceError):
            pass
        text = repr(obj)
        address = text.rpartition(" at 0x")[2].rstrip(">")
        try:
            return objects.known(int(address, 16))
        except ValueError:
            return None
    if kind.__name__ == "ndarray" and getattr(obj, "base", None) is not None:
        base = obj
        while getattr(base, "base", None) is not None:
            base = base.base  # type: ignore[attr-defined]
        return base
    return obj


def _is_ctypes(kind: type) -> bool:
    """Whether ``kind`` is a ctypes type (no ctypes object exists before ``_ctypes``
    is imported, and explore does not import it)."""
    module = sys.modules.get("_ctypes")
    return module is not None and issubclass(kind, module._SimpleCData.__base__)


def _ctypes_root(obj: Any, objects: Objects) -> object | None:
    """The object whose memory a ctypes object is: a field or element of a structure
    or array is its base's memory, an object made by ``from_buffer`` the exporter's.
    None for memory it cannot name (``from_address``, a pointer's ``contents``,
    ``cast``): such an object conflicts with every step."""
    import ctypes  # _ctypes is imported: so is (or cheaply can be) ctypes

    base = obj
    while base._b_base_ is not None:
        outer = base._b_base_
        start, end = ctypes.addressof(outer), ctypes.addressof(outer) + ctypes.sizeof(outer)
        if not start <= ctypes.addressof(base) < end:
            return None  # a pointer's contents: the memory it points to, not the pointer
        base = outer
    if base._b_needsfree_:
        return base  # memory of its own
    held = base._objects  # from_buffer keeps a memoryview of the exporter here
    if type(held) is dict:  # a structure's or array's: under the key ctypes gives it
        views = [value for value in held.values() if type(value) is memoryview]
        held = views[0] if len(views) == 1 else None
    if type(held) is memoryview:
        return alias_root(held, objects)  # the exporter
    return None


_DICT_DESCRIPTORS: dict[type, Any] = {}


def instance_dict(obj: object) -> dict[str, Any] | None:
    """``obj``'s namespace (``vars(obj)``) found without running its code: an
    instance's ``__dict__``, a class's namespace; None if it has none."""
    kind = type(obj)
    if isinstance(obj, type):
        proxy = _TYPE_DICT.__get__(obj)
        referents = gc.get_referents(proxy)
        return referents[0] if referents and type(referents[0]) is dict else None
    descriptor = _DICT_DESCRIPTORS.get(kind, _MISSING)
    if descriptor is _MISSING:
        descriptor = None
        for klass in kind.__mro__:
            found = klass.__dict__.get("__dict__")
            if found is not None:
                descriptor = found if type(found) is types.GetSetDescriptorType else None
                break
        _DICT_DESCRIPTORS[kind] = descriptor
    if descriptor is None:
        return None
    try:
        namespace = descriptor.__get__(obj)
    except Exception:  # noqa: BLE001 - an odd object has no namespace to alias
        return None
    return namespace if type(namespace) is dict else None


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


# ---- helpers ------------------------------------------------------------------------------------

def data(obj: object) -> bool:
    """Whether ``obj`` has state a worker could change (not a number, string...)."""
    if isinstance(obj, _IMMUTABLE):
        return False
    return not (type(obj) is tuple and not any(data(item) for item in obj))


def key_part(key: object) -> object:
    """The part of a dict or set that ``key`` names: itself if it is a plain value."""
    if isinstance(key, _KEY_TYPES):
        return key
    if type(key) is tuple and all(isinstance(item, _KEY_TYPES) for item in key):
        return key
    return ALL


def reads(values: Iterable[object], objects: Objects) -> list[Access]:
    return [(objects(value), ALL, False) for value in values if data(value)]


def writes(values: Iterable[object], objects: Objects) -> list[Access]:
    return [(objects(value), ALL, True) for value in values if data(value)]


DEEP_LIMIT = 500  # objects a deep read walks before it counts as reading everything


def deep_reads(values: Iterable[object], objects: Objects, namespaces: bool = False
               ) -> Event:
    """Reads of ``values`` and of every builtin container inside them (``==``,
    ``repr``, ``json.dumps`` read what they contain); with ``namespaces``, of the
    instances inside them too (a ``match`` reads their attributes).  Past
    DEEP_LIMIT objects it is a read of everything (EVERYTHING)."""
    out: list[Access] = []
    seen: set[int] = set()
    work = [value for value in values if data(value)]
    while work:
        value = work.pop()
        if id(value) in seen:
            continue
        seen.add(id(value))
        if len(seen) > DEEP_LIMIT:
            return EVERYTHING_EVENT
        kind = type(value)
        if isinstance(value, _DEEP) or kind in _VIEWS:
            if kind is not tuple and kind is not frozenset:
                out.append((objects(value), ALL, False))
            items: Iterable[object] = value.items() if isinstance(value, dict) \
                else gc.get_referents(value) if kind in _VIEWS else value  # type: ignore
            for item in items:
                if isinstance(item, tuple) and isinstance(value, dict):
                    work.extend(part for part in item if data(part))
                elif data(item):
                    work.append(item)
        elif namespaces and instance_dict(value) is not None:
            out.append((objects(value), ALL, False))
            work.extend(item for item in instance_dict(value).values()  # type: ignore
                        if data(item))
        elif kind is memoryview or kind is bytearray:
            out.append((objects(value), ALL, False))
    return tuple(out)


def lookup(kind: type, name: str) -> object:
    """``name`` as the class ``kind`` (its MRO) has it, without running any code;
    _MISSING if none has it."""
    for klass in kind.__mro__:
        found = klass.__dict__.get(name, _MISSING)
        if found is not _MISSING:
            return found
    return _MISSING


def python_code(function: object) -> CodeType | None:
    code = getattr(function, "__code__", None) if type(function) is FunctionType else None
    return code if isinstance(code, CodeType) else None


def qualified(function: Any) -> str:
    """``module.qualname`` of a function, for the verdict."""
    module = getattr(function, "__module__", None) or "?"
    name = getattr(function, "__qualname__", None) or getattr(function, "__name__", "?")
    return f"{module}.{name}"


# ---- what code is: seen, or not -----------------------------------------------------------------

class Calls:
    """What calling something, an operator or a descriptor does, by what it is (see
    the module docstring).  ``seen(code)``: whether code was rewritten (or is
    explore's own); ``swap(function)``: rewrite a user function not rewritten
    yet, if it can (True once it is)."""

    def __init__(self, seen: Callable[[CodeType], bool],
                 swap: Callable[[FunctionType], bool] | None = None,
                 swap_class: Callable[[type], None] | None = None) -> None:
        self._seen = seen
        self._swap = swap
        self._swap_class = swap_class
        self._met: set[int] = set()  # ids of the classes met (their methods rewritten)
        # lru_cache wrappers called, by id: (wrapper, its entries when first called)
        self.lru: dict[int, tuple[Any, int]] = {}

    def meet(self, kind: type) -> None:
        """A class met for the first time: rewrite its methods (and its bases') if
        they are user code (a class made after the exploration started)."""
        if id(kind) in self._met:
            return
        for klass in kind.__mro__:
            if id(klass) not in self._met:
                self._met.add(id(klass))
                if self._swap_class is not None and klass.__module__ != "builtins":
                    self._swap_class(klass)

    def seen(self, code: CodeType) -> bool:
        return self._seen(code) or own_file(code.co_filename)

    def function_seen(self, function: FunctionType) -> bool:
        """Whether calling ``function`` runs rewritten code (rewriting it now if it
        is user code that was not)."""
        code = function.__code__
        if self.seen(code):
            return True
        return self._swap is not None and self._swap(function)

    def callable_outcome(self, function: object, args: Sequence[object], objects: Objects,
                         kwargs: dict[str, object] | None = None) -> Outcome:
        """What ``function(*args, **kwargs)`` touches by itself."""
        values = list(args) if not kwargs else [*args, *kwargs.values()]
        try:
            return self._call(function, list(args), values, kwargs, objects, 0)
        except Exception:  # noqa: BLE001 - a wrong answer would be worse than a conservative one
            return OPAQUE

    def _call(self, function: Any, args: list[object], values: list[object],
              kwargs: dict[str, object] | None, objects: Objects, depth: int) -> Outcome:
        if depth > 4:
            return OPAQUE
        kind = type(function)
        if kind is types.MethodType:
            if _own_class(type(function.__self__)):
                return OWN  # explore's primitives: they make their own steps
            args = [function.__self__, *args]
            values = [function.__self__, *values]
            function, kind = function.__func__, type(function.__func__)
        if kind is FunctionType:
            if self.function_seen(function):
                return self._with_callbacks(QUIET, values, objects)
            return self.library(function, args, values, kwargs, objects)
        if kind is types.BuiltinFunctionType or kind is types.BuiltinMethodType:
            receiver = function.__self__
            if receiver is None or type(receiver) is types.ModuleType:
                return self._module_function(function, receiver, args, values, kwargs,
                                             objects)
            return self._method(receiver, function.__name__, args, values, objects)
        if kind is types.MethodWrapperType:
            return self._method(function.__self__, function.__name__, args, values, objects)
        if kind in _DESCRIPTORS and args:
            return self._method(args[0], function.__name__, args[1:], values, objects)
        if isinstance(function, type):
            return self._construct(function, args, values, kwargs, objects)
        if kind is _PARTIAL:
            inner = [*function.args, *args]
            merged = {**function.keywords, **(kwargs or {})}
            return self._call(function.func, inner, [*inner, *merged.values()], merged,
                              objects, depth + 1)
        if kind is _LRU:
            wrapped = getattr(function, "__wrapped__", None)
            if type(wrapped) is FunctionType:
                self.function_seen(wrapped)
            if id(function) not in self.lru:
                self.lru[id(function)] = (function, function.cache_info().currsize)
            event = ((objects(function), ALL, True), *reads(values, objects))
            return Outcome(event, None, event)
        if kind in _GETTERS:
            return _GETTERS[kind](self, function, args, objects)
        if kind is weakref.ref or isinstance(function, weakref.ref):
            return Outcome(EVERYTHING_EVENT, None, None, "a weak reference dereferenced")
        call = lookup(kind, "__call__")
        code = python_code(call)
        if code is not None:
            return self._call(call, [function, *args], [function, *values], kwargs,
                              objects, depth + 1)
        return Outcome(EVERYTHING_EVENT, None, EVERYTHING_EVENT)  # C callable of its own

    # ---- accesses, described by the module functions below ------------------------------------
    def attribute(self, owner: object, name: str, mode: str, objects: Objects) -> Outcome:
        """``owner.name`` read ("r"), written ("w") or deleted ("d")."""
        return _attribute(self, owner, name, mode, objects)

    def subscript(self, container: object, key: object, mode: str, objects: Objects,
                  is_slice: bool = False) -> Outcome:
        """``container[key]`` read ("r"), written ("w") or deleted ("d")."""
        return _subscript(self, container, key, mode, objects, is_slice)

    def next_item(self, iterator: object, objects: Objects, depth: int = 0) -> Outcome:
        """``next(iterator)``."""
        return _next_item(self, iterator, objects, depth)

    def operation(self, op: str, left: object, right: object, objects: Objects,
                  inplace: bool = False) -> Outcome:
        """``left op right`` (see _operation)."""
        return _operation(self, op, left, right, objects, inplace)

    def enter_exit(self, manager: object, objects: Objects, which: str) -> Outcome | None:
        """``with manager``: entering ("__enter__") or leaving ("__exit__")."""
        return _enter_exit(self, manager, objects, which)

    def _with_callbacks(self, outcome: Outcome, values: Sequence[object],
                        objects: Objects) -> Outcome:
        """``outcome`` of a call that may run the callables among ``values``: user
        functions are rewritten first; a library's makes the step unseen."""
        for value in values:
            function = value.__func__ if type(value) is types.MethodType else value
            if type(function) is FunctionType and not self.function_seen(function):
                return Outcome(EVERYTHING_EVENT, None, EVERYTHING_EVENT,
                               f"inside {qualified(function)}, called back from C code")
        return outcome

    def library(self, function: FunctionType, args: list[object], values: list[object],
                kwargs: dict[str, object] | None, objects: Objects) -> Outcome:
        """A call of Python code that was not rewritten."""
        model = LIBRARY.get((function.__module__, function.__qualname__))
        if model is None and (function.__module__ or "").startswith("pathlib") and \
                function.__qualname__ in _PURE_PATHS:
            model = _quiet
        code = function.__code__
        if model is None and code.co_filename.startswith("<") and args and \
                lookup(type(args[0]), "__dataclass_fields__") is not _MISSING:
            model = _DATACLASS.get(function.__name__)
        if model is not None:
            outcome = model(self, args, values, kwargs, objects)
            if outcome is not None:  # Python code runs: the guard must expect it
                return outcome.replace(open=NOTHING if outcome.open is None else outcome.open,
                                       expects=True)
        return Outcome(EVERYTHING_EVENT, None, EVERYTHING_EVENT, unseen_text(function))

    def _module_function(self, function: Any, module: object, args: list[object],
                         values: list[object], kwargs: dict[str, object] | None,
                         objects: Objects) -> Outcome:
        name = function.__name__
        if module is builtins or module is None:
            handler = _BUILTINS.get(name)
            if handler is not None:
                return handler(self, args, values, objects)
            return self._with_callbacks(Outcome(tuple(reads(values, objects))), values,
                                        objects)
        module_name = getattr(module, "__name__", "")
        model = C_FUNCTIONS.get((module_name, name))
        if model is not None:
            return model(self, args, values, kwargs, objects) or OPAQUE
        if module_name in ("posix", "nt"):  # the process's state, files: not seen
            return Outcome(EVERYTHING_EVENT, None, EVERYTHING_EVENT, f"os.{name}")
        if module_name in _PURE_MODULES:
            return self._with_callbacks(Outcome(deep_reads(values, objects)), values,
                                        objects)
        return self._with_callbacks(Outcome(EVERYTHING_EVENT, None, EVERYTHING_EVENT),
                                    values, objects)

    def _method(self, receiver: object, name: str, args: list[object], values: list[object],
                objects: Objects) -> Outcome:
        kind = type(receiver)
        if kind is _LOCK or kind is _RLOCK:
            return _real_lock(receiver, name, args, objects)
        if isinstance(receiver, _LOCAL):
            return QUIET  # a thread's own attributes
        if kind in _GENERATORS:  # send, throw, close, __next__: it runs the generator
            return self.next_item(receiver, objects)
        if kind is weakref.ref:
            return Outcome(EVERYTHING_EVENT, None, None, "a weak reference dereferenced")
        if isinstance(receiver, (str, bytes, int, float, complex, tuple, frozenset, range)):
            return self._with_callbacks(Outcome(tuple(reads(values, objects))), values,
                                        objects)
        writes_it = name not in _READERS
        part: object = ALL
        if name in _KEYED and args and isinstance(receiver, (dict, set, frozenset)):
            part = key_part(args[0])
            if name == "get" and isinstance(receiver, collections.defaultdict):
                part = ALL
        if receiver is getattr(sys.modules.get("random"), "_inst", None):
            return Outcome(((objects(receiver), ALL, True),), blind=NONDETERMINISTIC.format(
                "the random module's generator"))
        if isinstance(receiver, type) and name in _CLOCK_METHODS and \
                receiver.__module__ == "datetime":
            return Outcome(NOTHING, blind=NONDETERMINISTIC.format(
                f"the real clock ({receiver.__name__}.{name})"))
        if _standard_stream(receiver):
            return Outcome(((objects(STDOUT), ALL, True), *deep_reads(values, objects)))
        if isinstance(receiver, _IO_TYPES):
            return Outcome(EVERYTHING_EVENT, None, None, "file I/O")
        if _is_socket(receiver):
            return Outcome(EVERYTHING_EVENT, None, None, "a socket")
        own = (objects(receiver), part, writes_it)
        rest = deep_reads(values[1:] if values and values[0] is receiver else values,
                          objects) if name in _DEEP_METHODS else \
            tuple(reads(values[1:] if values and values[0] is receiver else values, objects))
        event = (own, *rest)
        outcome = Outcome(event, None, event if _calls_back(values) else None,
                          bulk=part is ALL and name not in _SINGLE)
        return self._with_callbacks(outcome, values, objects)

    def _construct(self, kind: type, args: list[object], values: list[object],
                   kwargs: dict[str, object] | None, objects: Objects) -> Outcome:
        if _own_class(kind):
            return OWN
        if kind is str:
            return self._with_callbacks(Outcome(deep_reads(values, objects), bulk=True),
                                        values, objects)
        if kind.__module__ == "builtins":
            if kind is super or issubclass(kind, BaseException):
                return QUIET
            return self._with_callbacks(Outcome(tuple(reads(values, objects)), bulk=True),
                                        values, objects)
        if kind.__module__ == "weakref" or issubclass(kind, (weakref.ref, weakref.finalize)):
            return Outcome(EVERYTHING_EVENT, None, None, "weak references")
        outcome = QUIET
        for name in ("__new__", "__init__"):
            method = lookup(kind, name)
            if method is object.__init__ or method is object.__new__ or method is _MISSING:
                continue
            if isinstance(method, staticmethod):
                method = method.__func__
            if type(method) is FunctionType:
                if self.function_seen(method):
                    continue
                if name == "__init__" and method.__code__.co_filename.startswith("<") and \
                        lookup(kind, "__dataclass_fields__") is not _MISSING:
                    found = (_dataclass_init(self, [kind], values, kwargs, objects) or
                             OPAQUE).replace(expects=True)
                else:
                    found = self.library(method, [_FRESH, *args], values, kwargs, objects)
                if found.blind is not None or found.event:
                    return found
            else:  # a C base class: reads what it is given
                outcome = Outcome(tuple(reads(values, objects)))
        return self._with_callbacks(outcome, values, objects)


_FRESH = object()  # the instance a constructor is making (no one else sees it yet)


def _own_class(kind: type) -> bool:
    """Whether ``kind`` is explore's own (a primitive: it makes its own steps)."""
    return kind.__module__.startswith("pytest_concurrency.")


def unseen_text(function: Any) -> str:
    """How the verdict names a call into code explore did not rewrite."""
    module = getattr(function, "__module__", None) or ""
    package = module.partition(".")[0]
    name = qualified(function)
    code = python_code(function)
    if code is not None and code.co_filename.startswith("<") and \
            not code.co_filename.startswith("<frozen "):
        return f"inside {name} (code without a source file)"
    if package:
        return f"inside {name} (not instrumented; instrument=[{package!r}] would)"
    return f"inside {name}"


def _calls_back(values: Iterable[object]) -> bool:
    """Whether a C call given ``values`` may run Python code while it works (a key
    function, an instance with Python ``__eq__`` or ``__hash__``, a generator)."""
    for value in values:
        kind = type(value)
        if kind is FunctionType or kind is types.MethodType or kind in _GENERATORS or \
                kind is _PARTIAL:
            return True
        if not isinstance(value, _IMMUTABLE) and kind.__module__ != "builtins":
            return True
    return False


def _real_lock(lock: Any, name: str, args: list[object], objects: Objects) -> Outcome:
    """A lock made before the run (``threading.Lock()`` at import): taking it is
    guarded like explore's own Lock, so no worker ever blocks on it for real."""
    event: Event = ((objects(lock), ALL, True),)
    if name in _RELEASES:
        return Outcome(event, releasing)
    blocking = not args or (len(args) == 1 and args[0] is True)
    if name not in _ACQUIRES or not blocking:
        return Outcome(event)  # a try-lock or a timed acquire: it never blocks for ever
    if type(lock) is _LOCK:
        return Outcome(event, lambda: not lock.locked())
    me = _orig.get_ident()
    return Outcome(event, lambda: _rlock_free_for(lock, me))


def _rlock_free_for(lock: object, ident: int) -> bool:
    """Whether thread ``ident`` could take the C RLock ``lock`` now (its repr is the
    only way to see the owner from another thread)."""
    text = repr(lock)
    owner = text.partition("owner=")[2].partition(" ")[0]
    count = text.partition("count=")[2].partition(" ")[0]
    return count == "0" or owner == str(ident)


_ACQUIRES = frozenset({"acquire", "acquire_lock", "__enter__"})
_RELEASES = frozenset({"release", "release_lock", "__exit__"})
# Methods of builtin containers that only read their receiver; the rest write it.
_READERS = frozenset({
    "get", "keys", "values", "items", "copy", "count", "index", "__contains__",
    "__getitem__", "__len__", "__iter__", "__reversed__", "__repr__", "__str__", "__eq__",
    "__ne__", "__lt__", "__le__", "__gt__", "__ge__", "__hash__", "__sizeof__", "__format__",
    "__bool__", "issubset", "issuperset", "isdisjoint", "union", "intersection",
    "difference", "symmetric_difference", "__or__", "__and__", "__sub__", "__xor__",
    "__reduce__", "__reduce_ex__", "__copy__", "__deepcopy__", "__getstate__", "startswith",
    "endswith", "find", "rfind", "hex", "decode", "tobytes", "tolist", "locked", "_is_owned",
    "__getattribute__", "__dir__", "__class_getitem__", "fromkeys", "maxlen"})
# Methods whose other arguments are read deeply (compared, copied by value).
_DEEP_METHODS = frozenset({"count", "index", "remove", "__contains__", "__eq__", "__ne__",
                           "__lt__", "__le__", "__gt__", "__ge__"})
# Methods of builtin containers that touch one element (or the size): atomic anywhere.
_SINGLE = frozenset({"append", "pop", "popitem", "__len__", "__getitem__", "__setitem__",
                     "__delitem__", "get", "setdefault", "add", "discard", "remove",
                     "appendleft", "popleft", "insert", "locked", "acquire", "release",
                     "__bool__", "__sizeof__", "__hash__"})
# Methods of dicts and sets whose first argument is the one key they touch.
_KEYED = frozenset({"get", "__contains__", "__getitem__", "setdefault", "pop", "__setitem__",
                    "__delitem__", "add", "discard", "remove"})


def _is_socket(obj: object) -> bool:
    """Whether ``obj`` is a socket (only once the socket module is imported can one be)."""
    module = sys.modules.get("_socket")
    kind = getattr(module, "socket", None)
    return isinstance(kind, type) and isinstance(obj, kind)


_IO_TYPES: tuple[type, ...] = tuple(
    kind for kind in (getattr(sys.modules.get("_io"), name, None)
                      for name in ("FileIO", "BufferedReader", "BufferedWriter",
                                   "BufferedRandom", "TextIOWrapper"))
    if isinstance(kind, type))


# ---- builtins -----------------------------------------------------------------------------------

Handler = Callable[["Calls", list[object], list[object], Objects], Outcome]


def _b_nothing(calls: Calls, args: list[object], values: list[object],
               objects: Objects) -> Outcome:
    return QUIET


def _b_attribute(calls: Calls, args: list[object], values: list[object],
                 objects: Objects) -> Outcome:
    if len(args) >= 2 and isinstance(args[1], str):
        return calls.attribute(args[0], args[1], "r", objects)
    return OPAQUE


def _b_setattr(calls: Calls, args: list[object], values: list[object],
               objects: Objects) -> Outcome:
    if len(args) >= 2 and isinstance(args[1], str):
        return calls.attribute(args[0], args[1], "w", objects)
    return OPAQUE


def _b_delattr(calls: Calls, args: list[object], values: list[object],
               objects: Objects) -> Outcome:
    if len(args) >= 2 and isinstance(args[1], str):
        return calls.attribute(args[0], args[1], "d", objects)
    return OPAQUE


def _b_next(calls: Calls, args: list[object], values: list[object],
            objects: Objects) -> Outcome:
    return calls.next_item(args[0], objects) if args else QUIET


def _b_deep(calls: Calls, args: list[object], values: list[object],
            objects: Objects) -> Outcome:
    return calls._with_callbacks(Outcome(deep_reads(values, objects), bulk=True), values,
                                 objects)


def _b_print(calls: Calls, args: list[object], values: list[object],
             objects: Objects) -> Outcome:
    streams = [value for value in values[len(args):] if hasattr(type(value), "write")]
    for stream in streams:
        if not _standard_stream(stream) and isinstance(stream, _IO_TYPES):
            return Outcome(EVERYTHING_EVENT, None, None, "file I/O (print to a file)")
    written = [objects(stream) for stream in streams if not _standard_stream(stream)] or \
        [objects(STDOUT)]
    return Outcome((*((number, ALL, True) for number in written),
                    *deep_reads(args, objects)), bulk=True)


def _standard_stream(stream: object) -> bool:
    return any(stream is getattr(sys, name, None)
               for name in ("stdout", "stderr", "__stdout__", "__stderr__"))


def _b_len(calls: Calls, args: list[object], values: list[object],
           objects: Objects) -> Outcome:
    return calls.operation("truth", args[0], _MISSING, objects) if args else QUIET


def _b_vars(calls: Calls, args: list[object], values: list[object],
            objects: Objects) -> Outcome:
    if args:
        objects(args[0])  # its namespace shares its number from now on
    return QUIET


def _b_opaque(calls: Calls, args: list[object], values: list[object],
              objects: Objects) -> Outcome:
    return Outcome(EVERYTHING_EVENT, None, EVERYTHING_EVENT,
                   "code run by exec, eval or compile")


def _b_open(calls: Calls, args: list[object], values: list[object],
            objects: Objects) -> Outcome:
    return Outcome(EVERYTHING_EVENT, None, None, "file I/O (open)")


def _b_iterating(calls: Calls, args: list[object], values: list[object],
                 objects: Objects) -> Outcome:
    """``sum``, ``list``, ``sorted``, ``any``...: they iterate their argument."""
    event: list[Access] = []
    for value in args[:1]:
        if hasattr(type(value), "__next__"):
            event += calls.next_item(value, objects).event
        elif type(value) in _VIEWS or isinstance(value, _DEEP):
            event += deep_reads([value], objects)
    event += reads(values[1:], objects)
    outcome = Outcome(tuple(event), None, tuple(event) if _calls_back(values) else None,
                      bulk=True)
    return calls._with_callbacks(outcome, values, objects)


_BUILTINS: dict[str, Handler] = {
    **dict.fromkeys(("id", "type", "isinstance", "issubclass", "callable", "iter", "super",
                     "locals", "globals", "chr", "ord", "abs", "round", "divmod", "pow",
                     "bin", "oct", "hex", "hash", "dir", "__build_class__"), _b_nothing),
    "getattr": _b_attribute, "hasattr": _b_attribute, "setattr": _b_setattr,
    "delattr": _b_delattr, "next": _b_next, "vars": _b_vars, "print": _b_print,
    **dict.fromkeys(("repr", "ascii", "format"), _b_deep),
    **dict.fromkeys(("exec", "eval", "compile", "__import__", "input", "breakpoint"),
                    _b_opaque),
    "open": _b_open,
    **dict.fromkeys(("sum", "min", "max", "sorted", "any", "all", "enumerate", "zip", "map",
                     "filter", "reversed"), _b_iterating),
    "len": _b_len,
}


# ---- what an attribute access does --------------------------------------------------------------

def _attribute(calls: Calls, owner: object, name: str, mode: str,
               objects: Objects) -> Outcome:
    """``owner.name`` read ("r"), written ("w") or deleted ("d")."""
    kind = type(owner)
    if kind is super:
        owner = owner.__self__  # type: ignore[attr-defined]
        if owner is None:
            return QUIET
        kind = type(owner)
    if isinstance(owner, _LOCAL):
        return QUIET  # each thread has its own
    calls.meet(owner if isinstance(owner, type) else kind)
    if kind is types.ModuleType or isinstance(owner, type):
        return _class_attribute(calls, owner, name, mode, objects)
    number = objects(owner)
    writing = mode != "r"
    plain = Outcome(((number, name, writing),))
    if kind is _ENVIRON or _own_class(kind):
        return plain
    custom = lookup(kind, "__getattribute__" if not writing else
                    "__setattr__" if mode == "w" else "__delattr__")
    if type(custom) is FunctionType or isinstance(custom, (staticmethod, classmethod)):
        # A __getattribute__ / __setattr__ in Python (one in C works on the object).
        outcome = _runs(calls, custom, owner, objects, plain)
        if outcome is not None:
            return outcome
    found = lookup(kind, name)
    if found is not _MISSING:
        descriptor = type(found)
        if isinstance(found, property):
            function = found.fget if mode == "r" else found.fset if mode == "w" else \
                found.fdel
            return _through(calls, function, owner, objects, plain)
        if descriptor is functools.cached_property and mode == "r":
            namespace = instance_dict(owner)
            attrname = getattr(found, "attrname", None) or name
            if namespace is not None and attrname in namespace:
                return plain
            function = found.func  # type: ignore[attr-defined]
            if type(function) is FunctionType:
                calls.function_seen(function)
            event = ((number, attrname, True),)
            return Outcome(event, None, event)
        if descriptor is types.GetSetDescriptorType and name not in _PYTHON_GETSETS and \
                found.__objclass__.__module__ != "builtins":  # type: ignore[attr-defined]
            # A C getter or setter of a library's type (a ctypes object's ``value``,
            # ``contents``, ``raw``): it may read or write any of the object's state.
            return Outcome(((number, ALL, writing),))
        if descriptor in (types.MemberDescriptorType, types.GetSetDescriptorType,
                          FunctionType, staticmethod, classmethod,
                          types.MethodDescriptorType, types.WrapperDescriptorType,
                          types.BuiltinFunctionType):
            return _with_class(plain, kind, name, mode, objects, owner)
        hook = lookup(descriptor, "__get__" if mode == "r" else
                      "__set__" if mode == "w" else "__delete__")
        if hook is not _MISSING:
            outcome = _runs(calls, hook, found, objects, plain)
            if outcome is not None:
                return outcome
    if mode == "r" and found is _MISSING:
        namespace = instance_dict(owner)
        if namespace is None or name not in namespace:
            fallback = lookup(kind, "__getattr__")
            if fallback is not _MISSING:
                outcome = _runs(calls, fallback, owner, objects, plain)
                if outcome is not None:
                    return outcome
    return _with_class(plain, kind, name, mode, objects, owner)


_PYTHON_GETSETS = frozenset(("__dict__", "__weakref__"))  # of every Python class


def _with_class(plain: Outcome, kind: type, name: str, mode: str, objects: Objects,
                owner: object) -> Outcome:
    """A read through an instance also reads the class attribute it falls back to
    (which ``Class.name = ...`` writes)."""
    if mode != "r":
        return plain
    namespace = instance_dict(owner)
    if namespace is not None and name in namespace:
        return plain
    for klass in kind.__mro__:
        if name in klass.__dict__:
            if klass.__module__ == "builtins":
                return plain
            return Outcome((*plain.event, (objects(klass), name, False)))
    return plain


def _class_attribute(calls: Calls, owner: object, name: str, mode: str,
                     objects: Objects) -> Outcome:
    """``Module.name`` or ``Class.name``: the namespace's key (and, read through a
    subclass, the base class's)."""
    writing = mode != "r"
    if type(owner) is types.ModuleType:
        return Outcome(((objects(owner), name, writing),))
    assert isinstance(owner, type)
    meta = type(owner)
    if meta is not type:
        custom = lookup(meta, "__getattribute__" if not writing else "__setattr__")
        if type(custom) is FunctionType:
            outcome = _runs(calls, custom, owner, objects, None)
            if outcome is not None:
                return outcome
    if writing:
        return Outcome(((objects(owner), name, True),))
    event: list[Access] = []
    for klass in owner.__mro__:
        if klass.__module__ != "builtins":
            event.append((objects(klass), name, False))
        if name in klass.__dict__:
            break
    return Outcome(tuple(event))


def _runs(calls: Calls, function: object, subject: object, objects: Objects,
          plain: Outcome | None) -> Outcome | None:
    """An access that runs ``function`` (a descriptor's ``__get__``, a custom
    ``__getattribute__``): None when that is code with its own hooks or C code
    of a builtin type (the plain access says it all)."""
    if isinstance(function, (staticmethod, classmethod)):
        function = function.__func__
    if type(function) is FunctionType:
        if calls.function_seen(function):
            return None
        found = calls.library(function, [subject], [subject], None, objects)
        if plain is not None and not found.blind:
            return found.replace(event=(*plain.event, *found.event))
        return found
    if type(function) in _DESCRIPTORS or type(function) in _BUILTIN_METHODS or \
            type(function) is types.BuiltinFunctionType:
        owner = getattr(function, "__objclass__", None)
        if owner is None or owner.__module__ == "builtins":
            return None
    return OPAQUE


def _through(calls: Calls, function: object, owner: object, objects: Objects,
             plain: Outcome) -> Outcome:
    """A property's getter, setter or deleter run on ``owner``."""
    if function is None:
        return plain
    if type(function) in _GETTERS:
        found = _GETTERS[type(function)](calls, function, [owner], objects)
        return found.replace(event=(*plain.event, *found.event))
    outcome = _runs(calls, function, owner, objects, plain)
    return plain if outcome is None else outcome


def _attrgetter(calls: Calls, getter: Any, args: list[object], objects: Objects) -> Outcome:
    """``operator.attrgetter("a.b")(obj)`` reads obj.a, then that's b."""
    if not args:
        return OPAQUE
    text = repr(getter)  # operator.attrgetter('a.b', 'c')
    names = [part.strip().strip("'\"") for part in
             text.partition("(")[2].rpartition(")")[0].split(",") if part.strip()]
    event: list[Access] = []
    for dotted in names:
        target = args[0]
        for name in dotted.split("."):
            found = calls.attribute(target, name, "r", objects)
            if found.blind or found.event == EVERYTHING_EVENT:
                return found
            event += found.event
            try:
                target = _OBJECT_GETATTRIBUTE(target, name) if not isinstance(
                    target, type) else getattr(target, name)
            except Exception:  # noqa: BLE001 - the real call raises it
                break
    return Outcome(tuple(event))


def _itemgetter(calls: Calls, getter: Any, args: list[object], objects: Objects) -> Outcome:
    """``operator.itemgetter(k)(obj)`` reads obj[k] (every key it names)."""
    if not args:
        return OPAQUE
    keys = getter.__reduce__()[1]
    event: list[Access] = []
    for key in keys:
        event += calls.subscript(args[0], key, "r", objects).event
    return Outcome(tuple(event))


def _methodcaller(calls: Calls, caller: Any, args: list[object], objects: Objects) -> Outcome:
    """``operator.methodcaller("m", *a)(obj)`` calls obj.m(*a)."""
    if not args:
        return OPAQUE
    reduced = caller.__reduce__()
    name, extra = reduced[1][0], list(reduced[1][1:])
    method = lookup(type(args[0]), name)
    if method is _MISSING:
        return OPAQUE
    return calls._call(method, [args[0], *extra], [args[0], *extra], None, objects, 1)


_GETTERS: dict[type, Callable[[Calls, Any, list[object], Objects], Outcome]] = {
    operator.attrgetter: _attrgetter, operator.itemgetter: _itemgetter,
    operator.methodcaller: _methodcaller}


# ---- subscripts, iteration, operators -----------------------------------------------------------

def _subscript(calls: Calls, container: object, key: object, mode: str,
               objects: Objects, is_slice: bool = False) -> Outcome:
    """``container[key]`` read, written or deleted."""
    kind = type(container)
    calls.meet(kind)
    writing = mode != "r"
    if kind is _ENVIRON:
        return Outcome(((objects(ENV), key_part(key), writing),), None, NOTHING,
                       expects=True)
    dunder = "__getitem__" if mode == "r" else "__setitem__" if mode == "w" else "__delitem__"
    method = lookup(kind, dunder)
    if type(method) is FunctionType:
        if calls.function_seen(method):
            return QUIET  # its own hooks say what it does
        return calls.library(method, [container, key], [container, key], None, objects)
    if isinstance(container, dict) and not is_slice:
        part = key_part(key)
        event: Event = ((objects(container), part, writing),)
        if mode == "r" and (part is ALL or key not in container):
            if isinstance(container, collections.defaultdict):
                event = ((objects(container), part, True),)
                return calls._with_callbacks(Outcome(event, None, event),
                                             [container.default_factory], objects)
            missing = lookup(kind, "__missing__")
            if type(missing) is FunctionType and not calls.function_seen(missing):
                found = calls.library(missing, [container, key], [container, key], None,
                                      objects)
                return Outcome((*event, *found.event), found.guard, found.open, found.blind)
        return Outcome(event, None, event if _calls_back([key]) else None)
    if not data(container):
        return QUIET
    if kind.__module__ != "builtins" and method is not _MISSING and \
            not isinstance(container, (*_CONTAINERS, memoryview, bytearray)):
        owner = getattr(method, "__objclass__", None)
        if owner is None or owner.__module__ != "builtins":
            return OPAQUE  # a C container of a library: its own state
    return Outcome(((objects(container), ALL, writing),))


def _next_item(calls: Calls, iterator: object, objects: Objects, depth: int = 0) -> Outcome:
    """``next(iterator)``: it advances the iterator and reads what it iterates over
    (found through the references a builtin iterator holds)."""
    kind = type(iterator)
    if kind in _GENERATORS:
        code = getattr(iterator, "gi_code", None) or getattr(iterator, "cr_code", None) or \
            getattr(iterator, "ag_code", None)
        if isinstance(code, CodeType) and calls.seen(code):
            return QUIET  # a generator of code with its own hooks
        name = code.co_qualname if isinstance(code, CodeType) and hasattr(
            code, "co_qualname") else "?"
        where = f" of {name} ({os.path.basename(code.co_filename)})" \
            if isinstance(code, CodeType) else ""
        return Outcome(EVERYTHING_EVENT, None, EVERYTHING_EVENT,
                       f"a generator{where} made before the exploration or by code "
                       "explore does not rewrite")
    step = lookup(kind, "__next__")
    if type(step) is FunctionType:
        if calls.function_seen(step):
            return QUIET
        return calls.library(step, [iterator], [iterator], None, objects)
    out: list[Access] = [(objects(iterator), ALL, True)]
    if depth >= 3:
        return Outcome(tuple(out))
    callback = False
    for referent in gc.get_referents(iterator):
        if isinstance(referent, _CONTAINERS) or type(referent) in _VIEWS:
            out.append((objects(referent), ALL, False))
        elif type(referent) is tuple:  # zip's iterators, map's arguments
            for item in referent:
                if hasattr(type(item), "__next__"):
                    out += calls.next_item(item, objects, depth + 1).event
                elif isinstance(item, _CONTAINERS):
                    out.append((objects(item), ALL, False))
        elif hasattr(type(referent), "__next__") and data(referent):
            out += calls.next_item(referent, objects, depth + 1).event
        elif type(referent) in (FunctionType, types.MethodType, _PARTIAL):
            callback = True
    event = tuple(out)
    if not callback:
        return Outcome(event)
    functions = [r for r in gc.get_referents(iterator)
                 if type(r) in (FunctionType, types.MethodType, _PARTIAL)]
    return calls._with_callbacks(Outcome(event, None, event), functions, objects)


_OPERATORS = {"add": ("__add__", "__radd__", "__iadd__"), "sub": ("__sub__", "__rsub__",
                                                                   "__isub__"),
              "mul": ("__mul__", "__rmul__", "__imul__"),
              "matmul": ("__matmul__", "__rmatmul__", "__imatmul__"),
              "truediv": ("__truediv__", "__rtruediv__", "__itruediv__"),
              "floordiv": ("__floordiv__", "__rfloordiv__", "__ifloordiv__"),
              "mod": ("__mod__", "__rmod__", "__imod__"), "pow": ("__pow__", "__rpow__",
                                                                  "__ipow__"),
              "lshift": ("__lshift__", "__rlshift__", "__ilshift__"),
              "rshift": ("__rshift__", "__rrshift__", "__irshift__"),
              "or_": ("__or__", "__ror__", "__ior__"), "xor": ("__xor__", "__rxor__", "__ixor__"),
              "and_": ("__and__", "__rand__", "__iand__"),
              "eq": ("__eq__", "__eq__", ""), "ne": ("__ne__", "__ne__", ""),
              "lt": ("__lt__", "__gt__", ""), "le": ("__le__", "__ge__", ""),
              "gt": ("__gt__", "__lt__", ""), "ge": ("__ge__", "__le__", ""),
              "neg": ("__neg__", "", ""), "pos": ("__pos__", "", ""),
              "invert": ("__invert__", "", ""), "truth": ("__bool__", "__len__", ""),
              "format": ("__format__", "__str__", "__repr__"),
              "unpack": ("__iter__", "__len__", "")}
_COMPARISONS = frozenset({"eq", "ne", "lt", "le", "gt", "ge"})


def _operation(calls: Calls, op: str, left: object, right: object, objects: Objects,
               inplace: bool = False) -> Outcome:
    """``left op right`` (right is _MISSING for a unary operation, a truth test,
    formatting or unpacking): on builtin objects it reads (in place: writes the
    left) them - their contents too for comparisons and formatting; on Python
    objects it runs their class's dunder, rewritten code or not."""
    if op in ("contains", "not_contains"):
        return _contains(calls, left, right, objects)
    if op == "is":
        return QUIET
    names = _OPERATORS.get(op, ("", "", ""))
    deep = op in _COMPARISONS or op == "format"
    event: list[Access] = []
    opened: Event | None = None
    for position, value in enumerate((left, right)):
        if value is _MISSING or not data(value):
            continue
        kind = type(value)
        calls.meet(kind)
        if op == "unpack" and kind in _GENERATORS:
            found = calls.next_item(value, objects)
            if found.blind:
                return found
            event += found.event
            continue
        if op == "format":
            dunders = list(names)
        elif position == 0 or op in ("truth", "unpack"):
            dunders = [names[2]] if inplace and names[2] else []
            dunders.append(names[0])
            if op == "truth":
                dunders.append(names[1])
        else:
            dunders = [names[1]]
        builtin = kind.__module__ == "builtins" or kind in _VIEWS
        for dunder in dunders:
            method = lookup(kind, dunder) if dunder and not builtin else _MISSING
            if method is _MISSING or method in _IDENTITY:
                continue
            if type(method) is FunctionType or isinstance(method, (staticmethod,
                                                                   classmethod)):
                outcome = _runs(calls, method, value, objects, None)
                if outcome is not None:
                    if outcome.blind:
                        return outcome
                    event += outcome.event
                    opened = outcome.open
                break
            owner = getattr(method, "__objclass__", None)
            if owner is None or owner.__module__ != "builtins":
                return OPAQUE  # a C operator of a library type: its own state
            builtin = True
            break
        if builtin:
            writing = inplace and position == 0 and isinstance(value, _CONTAINERS)
            if deep and not writing:
                event += deep_reads([value], objects)
            else:
                event.append((objects(value), ALL, writing))
    return Outcome(tuple(event), None, opened, bulk=op != "truth")


_IDENTITY = (object.__eq__, object.__ne__, object.__format__, object.__repr__, object.__str__,
             object.__hash__)


def _contains(calls: Calls, item: object, container: object, objects: Objects) -> Outcome:
    kind = type(container)
    if kind is _ENVIRON:
        return Outcome(((objects(ENV), key_part(item), False),), None, NOTHING,
                       expects=True)
    if isinstance(container, (dict, set, frozenset)) or kind in _VIEWS[:1]:
        method = lookup(kind, "__contains__")
        if type(method) is FunctionType:
            return QUIET if calls.function_seen(method) else \
                calls.library(method, [container, item], [container, item], None, objects)
        event: Event = ((objects(container), key_part(item), False),)
        return Outcome(event, None, event if _calls_back([item]) else None)
    if kind.__module__ == "builtins" or isinstance(container, _CONTAINERS) or \
            kind in _VIEWS:
        if not data(container):
            return Outcome(deep_reads([item], objects))
        event = deep_reads([container, item], objects)
        return Outcome(event, None, event if _calls_back([item]) else None, bulk=True)
    for dunder in ("__contains__", "__iter__", "__getitem__"):
        method = lookup(kind, dunder)
        if method is not _MISSING:
            outcome = _runs(calls, method, container, objects, None)
            return outcome if outcome is not None else QUIET
    return QUIET


def _enter_exit(calls: Calls, manager: object, objects: Objects, which: str) -> Outcome | None:
    """What ``with manager`` does on entry or exit; None when that is rewritten code
    or explore's own (it says for itself)."""
    kind = type(manager)
    method = lookup(kind, which)
    if type(method) is FunctionType:
        if calls.function_seen(method):
            return None
        return calls.library(method, [manager], [manager], None, objects)
    if kind is _LOCK or kind is _RLOCK:
        return _real_lock(manager, which, [], objects)
    if isinstance(manager, _IO_TYPES):
        return Outcome(EVERYTHING_EVENT, None, None, "file I/O")
    return Outcome(EVERYTHING_EVENT, None, EVERYTHING_EVENT)


# ---- library calls that are modelled ------------------------------------------------------------

Model = Callable[[Calls, list[object], list[object], "dict[str, object] | None", Objects],
                 "Outcome | None"]


def _pure(calls: Calls, args: list[object], values: list[object],
          kwargs: dict[str, object] | None, objects: Objects) -> Outcome | None:
    """A function of its arguments' values: it reads them (deeply), nothing else."""
    return calls._with_callbacks(Outcome(deep_reads(values, objects), bulk=True), values,
                                 objects)


def _pure_immutable(calls: Calls, args: list[object], values: list[object],
                    kwargs: dict[str, object] | None, objects: Objects) -> Outcome | None:
    """Pure, and atomic only on values nobody can change (else: not modelled)."""
    return QUIET if not any(data(value) for value in values) else None


def _getenv(calls: Calls, args: list[object], values: list[object],
            kwargs: dict[str, object] | None, objects: Objects) -> Outcome | None:
    key = args[0] if args else (kwargs or {}).get("key")
    return Outcome(((objects(ENV), key_part(key), False),))


def _environ(writing: bool, keyed: bool) -> Model:
    def model(calls: Calls, args: list[object], values: list[object],
              kwargs: dict[str, object] | None, objects: Objects) -> Outcome | None:
        if not args or type(args[0]) is not _ENVIRON:
            return None
        part = key_part(args[1]) if keyed and len(args) > 1 else ALL
        return Outcome(((objects(ENV), part, writing), *reads(values[1:], objects)))
    return model


def _logging(calls: Calls, args: list[object], values: list[object],
             kwargs: dict[str, object] | None, objects: Objects) -> Outcome | None:
    """A logging call: thread-safe (its handlers take their own locks), so one
    step that writes the log; its handlers may be rewritten code."""
    event = ((objects(LOG), ALL, True), *deep_reads(values[1:], objects))
    return Outcome(event, None, event)


def _generator_context(calls: Calls, args: list[object], values: list[object],
                       kwargs: dict[str, object] | None, objects: Objects) -> Outcome | None:
    """contextlib's generator-based context manager: it runs the user's generator."""
    generator = getattr(args[0], "gen", None) if args else None
    if generator is None or calls.next_item(generator, objects).blind:
        return None
    return Outcome(NOTHING, None, NOTHING)


def _quiet(calls: Calls, args: list[object], values: list[object],
           kwargs: dict[str, object] | None, objects: Objects) -> Outcome | None:
    return calls._with_callbacks(Outcome(NOTHING, None, NOTHING), values, objects)


def _random(calls: Calls, args: list[object], values: list[object],
            kwargs: dict[str, object] | None, objects: Objects) -> Outcome | None:
    """A method of random.Random: one step on the generator's state (and its
    sequence argument: shuffle writes it, choice and sample read it)."""
    if not args:
        return None
    event = ((objects(args[0]), ALL, True), *writes(values[1:2], objects))
    if args[0] is getattr(sys.modules.get("random"), "_inst", None):
        return Outcome(event, blind=NONDETERMINISTIC.format("the random module's generator"))
    return Outcome(event)  # a generator of the program's: as seeded, every schedule


def _dataclass_init(calls: Calls, args: list[object], values: list[object],
                    kwargs: dict[str, object] | None, objects: Objects) -> Outcome | None:
    """A dataclass's generated ``__init__``: it stores its arguments in the new
    instance (no one else sees it yet) and may run field factories and
    ``__post_init__`` (rewritten code)."""
    kind = args[0] if args and isinstance(args[0], type) else type(args[0]) if args else None
    post = getattr(kind, "__post_init__", None)
    return calls._with_callbacks(Outcome(NOTHING, None, NOTHING), [post, *values], objects)


LIBRARY: dict[tuple[str, str], Model] = {
    ("os", "getenv"): _getenv,
    **{("os", f"_Environ.{name}"): _environ(False, True) for name in ("__getitem__",)},
    **{("os", f"_Environ.{name}"): _environ(True, True) for name in ("__setitem__",
                                                                      "__delitem__")},
    **{("os", f"_Environ.{name}"): _environ(False, False) for name in ("__iter__", "__len__",
                                                                        "copy", "__repr__")},
    **{("collections.abc", f"Mapping.{name}"): _environ(False, True)
       for name in ("get", "__contains__")},
    **{("collections.abc", f"Mapping.{name}"): _environ(False, False)
       for name in ("keys", "items", "values", "__eq__")},
    **{("collections.abc", f"MutableMapping.{name}"): _environ(True, True)
       for name in ("pop", "setdefault")},
    **{("collections.abc", f"MutableMapping.{name}"): _environ(True, False)
       for name in ("update", "clear", "popitem")},
    **{("logging", f"Logger.{name}"): _logging
       for name in ("debug", "info", "warning", "warn", "error", "exception", "critical",
                    "fatal", "log")},
    **{("logging", name): _logging
       for name in ("debug", "info", "warning", "warn", "error", "exception", "critical",
                    "fatal", "log", "getLogger")},
    ("logging", "Logger.isEnabledFor"): _logging, ("logging", "Logger.getChild"): _logging,
    ("contextlib", "_GeneratorContextManager.__enter__"): _generator_context,
    ("contextlib", "_GeneratorContextManager.__exit__"): _generator_context,
    ("contextlib", "_GeneratorContextManager.__init__"): _quiet,
    ("contextlib", "_GeneratorContextManagerBase.__init__"): _quiet,
    ("contextlib", "contextmanager.<locals>.helper"): _quiet,
    ("contextlib", "suppress.__init__"): _quiet, ("contextlib", "suppress.__enter__"): _quiet,
    ("contextlib", "suppress.__exit__"): _quiet,
    ("contextlib", "nullcontext.__init__"): _quiet,
    ("contextlib", "nullcontext.__enter__"): _quiet,
    ("contextlib", "nullcontext.__exit__"): _quiet,
    ("collections", "Counter.__missing__"): _quiet,
    ("functools", "wraps"): _quiet, ("functools", "update_wrapper"): _quiet,
    ("typing", "cast"): _quiet, ("dataclasses", "fields"): _quiet,
    ("threading", "current_thread"): _quiet, ("threading", "main_thread"): _quiet,
    ("threading", "get_ident"): _quiet,
    ("dataclasses", "is_dataclass"): _quiet,
    **{("json", name): _pure for name in ("dumps", "loads")},
    **{("posixpath", name): _pure_immutable
       for name in ("join", "basename", "dirname", "split", "splitext", "normpath",
                    "normcase", "isabs", "commonprefix", "splitdrive")},
    **{("re", name): _pure_immutable
       for name in ("compile", "match", "search", "fullmatch", "sub", "subn", "split",
                    "findall", "escape", "_compile")},
    **{("copy", name): _pure for name in ("copy",)},
    ("copy", "deepcopy"): _pure_immutable,
    ("uuid", "uuid4"): lambda calls, args, values, kwargs, objects: Outcome(
        NOTHING, blind=NONDETERMINISTIC.format("uuid.uuid4")),
    ("uuid", "uuid1"): lambda calls, args, values, kwargs, objects: Outcome(
        NOTHING, blind=NONDETERMINISTIC.format("uuid.uuid1")),
    ("uuid", "UUID.hex"): _quiet, ("uuid", "UUID.__str__"): _quiet,
    ("uuid", "UUID.int"): _quiet, ("uuid", "UUID.__init__"): _quiet,
    **{("random", f"Random.{name}"): _random
       for name in ("randint", "randrange", "choice", "choices", "shuffle", "sample",
                    "uniform", "seed", "getrandbits", "gauss", "random", "_randbelow",
                    "_randbelow_with_getrandbits")},
}
# What pathlib's pure paths compute from their own (immutable) parts.
_PURE_PATHS = frozenset(
    f"{klass}.{name}" for klass in ("PurePath", "Path", "PurePosixPath", "PosixPath",
                                    "PurePathBase", "PathBase")
    for name in ("name", "suffix", "suffixes", "stem", "parent", "parents", "parts",
                 "__truediv__", "__rtruediv__", "__str__", "__fspath__", "__repr__",
                 "joinpath", "with_name", "with_suffix", "with_stem", "relative_to",
                 "is_relative_to", "as_posix", "__new__", "__init__", "__hash__", "__eq__",
                 "__lt__", "is_absolute", "drive", "root", "anchor", "match"))
# Methods a dataclass generates (in code without a source file), by name.
_DATACLASS: dict[str, Model] = {"__init__": _dataclass_init}

def _real_clock(name: str) -> Model:
    def model(calls: Calls, args: list[object], values: list[object],
              kwargs: dict[str, object] | None, objects: Objects) -> Outcome | None:
        return Outcome(NOTHING, blind=NONDETERMINISTIC.format(f"the real clock (time.{name})"))
    return model


C_FUNCTIONS: dict[tuple[str, str], Model] = {
    ("posix", "putenv"): lambda calls, args, values, kwargs, objects: Outcome(
        ((objects(ENV), key_part(args[0]) if args else ALL, True),)),
    ("posix", "unsetenv"): lambda calls, args, values, kwargs, objects: Outcome(
        ((objects(ENV), key_part(args[0]) if args else ALL, True),)),
    ("posix", "getcwd"): lambda calls, args, values, kwargs, objects: Outcome(
        ((objects(CWD), ALL, False),)),
    ("posix", "chdir"): lambda calls, args, values, kwargs, objects: Outcome(
        ((objects(CWD), ALL, True),)),
    **{("posix", name): lambda calls, args, values, kwargs, objects: QUIET
       for name in ("getpid", "getppid", "cpu_count", "fspath", "strerror",
                    "times", "getuid", "getgid", "geteuid", "getegid", "uname",
                    "get_terminal_size", "getloadavg", "sched_getaffinity", "cpu_count",
                    "get_blocking", "isatty", "getlogin", "device_encoding")},
    ("posix", "urandom"): lambda calls, args, values, kwargs, objects: Outcome(
        NOTHING, blind=NONDETERMINISTIC.format("os.urandom")),
    # time.time, monotonic and perf_counter are explore's virtual clock in a schedule.
    **{("time", name): lambda calls, args, values, kwargs, objects: QUIET
       for name in ("time", "monotonic", "perf_counter", "gmtime", "strftime")},
    **{("time", name): _real_clock(name)
       for name in ("time_ns", "monotonic_ns", "perf_counter_ns", "process_time",
                    "thread_time", "process_time_ns", "thread_time_ns", "localtime",
                    "ctime", "asctime")},
    ("_thread", "get_ident"): lambda calls, args, values, kwargs, objects: QUIET,
    ("gc", "collect"): lambda calls, args, values, kwargs, objects: Outcome(
        EVERYTHING_EVENT, None, None, "gc.collect (finalizers)"),
    **{("_heapq", name): lambda calls, args, values, kwargs, objects: Outcome(
        (*writes(values[:1], objects), *reads(values[1:], objects)))
       for name in ("heappush", "heappop", "heapify", "heapreplace", "heappushpop")},
    **{("_bisect", name): lambda calls, args, values, kwargs, objects: Outcome(
        (*writes(values[:1], objects), *reads(values[1:], objects)))
       for name in ("insort", "insort_left", "insort_right")},
    **{("_bisect", name): lambda calls, args, values, kwargs, objects: Outcome(
        tuple(reads(values, objects)))
       for name in ("bisect", "bisect_left", "bisect_right")},
}
_PURE_MODULES = frozenset({"math", "cmath", "_struct", "binascii", "zlib", "_json",
                           "_string", "_sre", "unicodedata", "_codecs", "_datetime",
                           "_decimal", "_functools", "_operator", "itertools", "_random",
                           "_statistics", "_bisect", "_hashlib", "_sha256", "_md5",
                           "_blake2", "_sha1", "_sha512", "_sha3", "array"})


def _operator_function(name: str) -> Model | None:
    """The model of ``operator.name(...)`` (the C functions of _operator)."""
    if name in ("getitem", "setitem", "delitem"):
        mode = {"getitem": "r", "setitem": "w", "delitem": "d"}[name]
        return lambda calls, args, values, kwargs, objects: \
            calls.subscript(args[0], args[1], mode, objects) if len(args) > 1 else OPAQUE
    if name in ("contains", "countOf", "indexOf"):
        return lambda calls, args, values, kwargs, objects: \
            _contains(calls, args[1], args[0], objects) if len(args) > 1 else OPAQUE
    if name.startswith("i") and name[1:] in _OPERATORS:
        return lambda calls, args, values, kwargs, objects: \
            _operation(calls, name[1:], args[0], args[1], objects, inplace=True) \
            if len(args) > 1 else OPAQUE
    if name in _OPERATORS:
        return lambda calls, args, values, kwargs, objects: \
            _operation(calls, name, args[0], args[1] if len(args) > 1 else _MISSING,
                       objects)
    if name in ("truth", "not_", "length_hint", "index", "is_", "is_not"):
        return lambda calls, args, values, kwargs, objects: Outcome(
            tuple(reads(values, objects)))
    return None


for _name in dir(operator):
    _model = _operator_function(_name)
    if _model is not None:
        C_FUNCTIONS[("_operator", _name)] = _model
        C_FUNCTIONS[("operator", _name)] = _model
del _name, _model

_ = contextlib  # contextlib is modelled by name above
