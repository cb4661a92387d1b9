"""The calls that rewritten code makes before each access (see ``rewrite``).

Each hook receives the objects of one access about to happen in the user's
frame, asks ``accesses`` what it touches (an ``Outcome``), makes that the
event of the worker's next step and lets the scheduler switch there, then
gives back the value the access needs (the object, the key, the callee's
arguments...) so that the access itself runs in the user's frame.  A few hooks
perform the operation themselves (``getitem``, ``binop``, ``inplace``...):
those whose operands cannot be evaluated again; the frame they add is marked
``__tracebackhide__`` and dropped from explore's tracebacks.

Outside a worker of a DPOR schedule every hook only gives the value back: the
rewritten code behaves as the original.  An access made by a thread that
explore does not control while a schedule runs is a blind spot.

One step, one event: ``step(worker, outcome, site)`` is the only way an access
becomes a step (asyncio tasks as workers can take the events from there).
"""

from __future__ import annotations

import builtins
import operator
import sys
import sysconfig
from collections.abc import Callable
from types import FrameType
from typing import Any, cast

from . import _orig
from .accesses import (
    ALL,
    EVERYTHING_EVENT,
    NO_OPERAND,
    OPAQUE,
    Calls,
    Event,
    Outcome,
    data,
    deep_reads,
)
from .scheduler import _ACTIVE, _CURRENT, Worker, user_site

FREE_THREADED = bool(sysconfig.get_config_var("Py_GIL_DISABLED"))
# 3.11: the guard is a trace function (tracing.Guard), paused in explore's own code.
_PAUSE_TRACE = sys.version_info < (3, 12)
_gettrace, _settrace = sys.gettrace, sys.settrace

Site = tuple[str, tuple[str, int, str, "str | None"]]  # ("point", (file, line, function, what))

_get = _CURRENT.get
_ident = _orig.get_ident
_getframe = sys._getframe
_builtin_iter = builtins.iter
_builtin_next = builtins.next
_BUILTINS_NS = vars(builtins)
make_slice = slice


class State:
    """What the hooks need from the exploration that rewrote the code."""

    calls: Calls = cast("Calls", None)  # what calls, operators, descriptors do (while
    # an exploration runs: hooks find a worker only then)
    controller: int | None = None  # the thread that runs the schedules (setup, check)
    # Per module namespace (by id): the builtin names its code reads without a hook.
    builtin_names: dict[int, frozenset[str]] = {}  # noqa: RUF012 - one per process
    # C iterations run in this schedule: (schedule, index in DPOR's trace, what they
    # read, site), on a free-threaded build only (see bulk_races).
    bulk: list[tuple[Any, int, frozenset[int], Site]] = []  # noqa: RUF012


STATE = State()
_STASHES: dict[int, list[tuple[FrameType, Any]]] = {}  # thread -> values waiting in frames


def reset() -> None:
    """Between schedules: forget the values of calls that never finished."""
    _STASHES.clear()


# ---- the one way an access becomes a step -------------------------------------------------------

def step(worker: Worker, outcome: Outcome, site: Site, depth: int = 2) -> None:
    """``worker`` is about to make the access described by ``outcome``: record what
    it could not see, carry the events of the calls it is inside, and switch.
    ``depth``: how many frames up the user's frame is."""
    trace = _gettrace() if _PAUSE_TRACE else None
    if trace is not None:
        _settrace(None)  # explore's own code: the guard's trace function is off (3.11)
    try:
        _step(worker, outcome, site, depth + 1)
    finally:
        if trace is not None:
            _settrace(trace)


def _see(worker: Worker, site: Site, depth: int, function: Callable[..., Outcome],
         *args: Any) -> None:
    """``step`` with the outcome ``function(*args)`` (conservative if it fails),
    worked out as explore's own code: the guard expects no Python code of the
    user's meanwhile (and on 3.11 its trace function is off)."""
    trace = _gettrace() if _PAUSE_TRACE else None
    if trace is not None:
        _settrace(None)
    try:
        deciding, worker.deciding = worker.deciding, True
        try:
            outcome = function(*args)
        except Exception:  # noqa: BLE001 - a wrong answer would be worse than a conservative one
            outcome = OPAQUE
        finally:
            worker.deciding = deciding
        _step(worker, outcome, site, depth + 1)
    finally:
        if trace is not None:
            _settrace(trace)


def _step(worker: Worker, outcome: Outcome, site: Site, depth: int) -> None:
    if worker.deciding:
        return  # inside the scheduler's decision (a strategy in traced code)
    event = outcome.event
    if outcome.blind is not None:
        worker.schedule.unseen(outcome.blind, (site[1][0], site[1][1]))
    opened = worker.opaque
    frame = None
    if opened:
        frame = _getframe(depth)
        event = _carried(opened, frame, event)
    if event or outcome.guard is not None:
        worker.event, worker.guard = event, outcome.guard
        worker.schedule._switch(worker, site)  # type: ignore[arg-type]
        if outcome.bulk and FREE_THREADED:
            _bulk(worker, outcome.event, site)
    if outcome.open is not None:
        opened.append((frame or _getframe(depth), outcome.open, outcome.expects))


def _bulk(worker: Worker, event: Event, site: Site) -> None:
    """On a free-threaded build: the step about to run is a C function iterating
    containers; remember it (its place in DPOR's trace) for ``bulk_races``."""
    numbers = frozenset(number for number, part, writes in event
                        if part is ALL and not writes and number >= 0)
    trace = getattr(worker.schedule.strategy, "trace", None)
    if numbers and isinstance(trace, list) and trace and trace[-1][0] == worker.index:
        STATE.bulk.append((worker.schedule, len(trace) - 1, numbers, site))


def bulk_races(dependent: Callable[[Event, Event], bool]) -> list[tuple[str, int]]:
    """The sites of the C iterations of the schedules just run that another worker's
    write could have happened in the middle of: it was not ordered before or after
    them by anything but the iteration itself (a lock, an event...).  Under the GIL
    the iteration is one step; on a free-threaded build it is not (PEP 703)."""
    found: list[tuple[str, int]] = []
    by_schedule: dict[int, list[tuple[Any, int, frozenset[int], Site]]] = {}
    for record in STATE.bulk:
        by_schedule.setdefault(id(record[0]), []).append(record)
    STATE.bulk = []
    for records in by_schedule.values():
        strategy = records[0][0].strategy
        trace, origin = strategy.trace, getattr(strategy, "origin", {})
        stamps, befores = _clocks(trace, origin, dependent)
        for _schedule, index, numbers, site in records:
            reader = trace[index][0]
            for other, step in enumerate(trace):
                if step[0] == reader or not any(
                        writes and (number in numbers or number < 0)
                        for number, _part, writes in step[1]):
                    continue
                first, second = (index, other) if index < other else (other, index)
                owner = trace[first][0]
                if stamps[first].get(owner, 0) > befores[second].get(owner, 0):
                    found.append((site[1][0], site[1][1]))
                    break
    return found


def _clocks(trace: list[Any], origin: dict[int, int],
            dependent: Callable[[Event, Event], bool]
            ) -> tuple[list[dict[int, int]], list[dict[int, int]]]:
    """Each step's vector clock (the steps it depends on, transitively) and its
    worker's clock just before it."""
    stamps: list[dict[int, int]] = []
    befores: list[dict[int, int]] = []
    clocks: dict[int, dict[int, int]] = {}
    for position, step in enumerate(trace):
        worker, event = step[0], step[1]
        before = clocks.get(worker)
        if before is None:
            start = origin.get(worker)
            before = dict(stamps[start]) if start is not None and start < position else {}
        stamp = dict(before)
        stamp[worker] = before.get(worker, 0) + 1
        for earlier in range(position):
            if dependent(trace[earlier][1], event):
                for key, value in stamps[earlier].items():
                    if value > stamp.get(key, 0):
                        stamp[key] = value
        stamps.append(stamp)
        befores.append(before)
        clocks[worker] = stamp
    return stamps, befores


def _carried(opened: list[tuple[FrameType, Event, bool]], frame: FrameType,
             event: Event) -> Event:
    """``event`` plus the events of the calls still running below ``frame`` (a
    callback's steps carry the C code around it); calls whose frame is ``frame``
    itself, or gone from the stack, have returned."""
    while opened:
        caller = opened[-1][0]
        if caller is not frame:
            back = frame.f_back
            while back is not None and back is not caller:
                back = back.f_back
            if back is not None:
                return event + tuple(access for _frame, carried, _expects in opened
                                     for access in carried)
        opened.pop()
    return event


def _outsider() -> Worker | None:
    """A hook ran in a thread that is no worker of a DPOR schedule: while a schedule
    runs, one explore does not control (not the one running the schedules) is a
    blind spot.  (Hooks find their worker with ``_get(_ident()) or _outsider()``.)"""
    if _ACTIVE and _ident() != STATE.controller and STATE.calls is not None:
        _foreign()
    return None


def _foreign() -> None:
    site = user_site(3)
    _ACTIVE[-1].unseen("code run by a thread explore does not control", (site[0], site[1]))


def _describe(function: Callable[..., Outcome], *args: Any) -> Outcome:
    """``function(*args)``, conservative if it fails; meanwhile the worker is in
    explore's own code (its guard expects no Python code of the user's, and on 3.11
    the guard's trace function is off: it would see every call explore makes)."""
    worker = _get(_ident())
    if worker is None:
        try:
            return function(*args)
        except Exception:  # noqa: BLE001 - a wrong answer would be worse than a conservative one
            return OPAQUE
    deciding, worker.deciding = worker.deciding, True
    trace = _gettrace() if _PAUSE_TRACE else None
    if trace is not None:
        _settrace(None)
    try:
        return function(*args)
    except Exception:  # noqa: BLE001 - a wrong answer would be worse than a conservative one
        return OPAQUE
    finally:
        worker.deciding = deciding
        if trace is not None:
            _settrace(trace)


# ---- the stash: values evaluated in a frame, waiting for the rest of an access ------------------

def push(value: Any) -> Any:
    """Keep ``value`` (a callee, a container) for the hook that completes its access."""
    ident = _ident()
    stash = _STASHES.get(ident)
    if stash is None:
        stash = _STASHES[ident] = []
    stash.append((_getframe(1), value))
    return value


def _pop(frame: FrameType) -> Any:
    """The last value ``frame`` pushed (values pushed by calls that raised before
    completing, in this frame or deeper ones, are passed over)."""
    stash = _STASHES[_ident()]
    if stash[-1][0] is frame:
        return stash.pop()[1]
    for index in range(len(stash) - 2, -1, -1):
        if stash[index][0] is frame:
            return stash.pop(index)[1]
    raise RuntimeError("pytest-concurrency: a rewritten access lost its operand")


def peek() -> Any:
    """The value pushed before the last one by the calling frame (``c`` of
    ``c[k] += v``)."""
    frame = _getframe(1)
    stash = _STASHES[_ident()]
    found = 0
    for index in range(len(stash) - 1, -1, -1):
        if stash[index][0] is frame:
            found += 1
            if found == 2:
                return stash[index][1]
    raise RuntimeError("pytest-concurrency: a rewritten access lost its operand")


# ---- attributes ---------------------------------------------------------------------------------

def attr_r(obj: Any, name: str, site: Site) -> Any:
    worker = _get(_ident()) or _outsider()
    if worker is not None:
        _see(worker, site, 2, STATE.calls.attribute, obj, name, "r", worker.schedule.objects)
    return obj


def attr_w(obj: Any, name: str, site: Site) -> Any:
    worker = _get(_ident()) or _outsider()
    if worker is not None:
        _module_write(worker, obj, name, site)
        _see(worker, site, 2, STATE.calls.attribute, obj, name, "w", worker.schedule.objects)
    return obj


def attr_d(obj: Any, name: str, site: Site) -> Any:
    worker = _get(_ident()) or _outsider()
    if worker is not None:
        _module_write(worker, obj, name, site)
        _see(worker, site, 2, STATE.calls.attribute, obj, name, "d", worker.schedule.objects)
    return obj


def attr_pop_w(name: str, site: Site) -> Any:
    obj = _pop(_getframe(1))
    worker = _get(_ident()) or _outsider()
    if worker is not None:
        _module_write(worker, obj, name, site)
        _see(worker, site, 2, STATE.calls.attribute, obj, name, "w", worker.schedule.objects)
    return obj


def _module_write(worker: Worker, obj: Any, name: str, site: Site) -> None:
    """A write to a module attribute that rewritten code reads without a hook (a
    builtin's name) cannot be ordered against those reads."""
    namespace = getattr(obj, "__dict__", None) if type(obj).__name__ == "module" else None
    if namespace is not None:
        _builtin_rebound(worker, namespace, name, site)


def _builtin_rebound(worker: Worker, namespace: dict[str, Any], name: str, site: Site) -> None:
    if namespace is _BUILTINS_NS or name in STATE.builtin_names.get(id(namespace), ()):
        worker.schedule.unseen(f"the builtin name {name!r} rebound while code reads it",
                               (site[1][0], site[1][1]))


# ---- subscripts ---------------------------------------------------------------------------------

def item_r2(container: Any, key: Any, site: Site, is_slice: bool) -> Any:
    worker = _get(_ident()) or _outsider()
    if worker is not None:
        _see(worker, site, 2, STATE.calls.subscript, container, key, "r",
                               worker.schedule.objects, is_slice)
    return container


def item_w2(container: Any, key: Any, site: Site, is_slice: bool) -> Any:
    worker = _get(_ident()) or _outsider()
    if worker is not None:
        _dict_write(worker, container, key, site)
        _see(worker, site, 2, STATE.calls.subscript, container, key, "w",
                               worker.schedule.objects, is_slice)
    return container


def item_d2(container: Any, key: Any, site: Site, is_slice: bool) -> Any:
    worker = _get(_ident()) or _outsider()
    if worker is not None:
        _dict_write(worker, container, key, site)
        _see(worker, site, 2, STATE.calls.subscript, container, key, "d",
                               worker.schedule.objects, is_slice)
    return container


def item_w(key: Any, site: Site) -> Any:
    container = _pop(_getframe(1))
    worker = _get(_ident()) or _outsider()
    if worker is not None:
        _dict_write(worker, container, key, site)
        _see(worker, site, 2, STATE.calls.subscript, container, key, "w",
                               worker.schedule.objects)
    return key


def item_d(key: Any, site: Site) -> Any:
    container = _pop(_getframe(1))
    worker = _get(_ident()) or _outsider()
    if worker is not None:
        _dict_write(worker, container, key, site)
        _see(worker, site, 2, STATE.calls.subscript, container, key, "d",
                               worker.schedule.objects)
    return key


def getitem(container: Any, key: Any, site: Site) -> Any:
    __tracebackhide__ = True
    worker = _get(_ident()) or _outsider()
    if worker is not None:
        _see(worker, site, 2, STATE.calls.subscript, container, key, "r",
                               worker.schedule.objects)
    return container[key]


def item_keep(container: Any, key: Any, site: Site) -> Any:
    """``c[k]`` of ``c[k] op= v``: read it, and keep c and k for the write."""
    __tracebackhide__ = True
    worker = _get(_ident()) or _outsider()
    if worker is not None:
        _see(worker, site, 2, STATE.calls.subscript, container, key, "r",
                               worker.schedule.objects,
                               type(key) is slice)
    value = container[key]
    frame = _getframe(1)
    ident = _ident()
    stash = _STASHES.get(ident)
    if stash is None:
        stash = _STASHES[ident] = []
    stash.append((frame, container))
    stash.append((frame, key))
    return value


def item_pop_w(site: Site) -> Any:
    frame = _getframe(1)
    key = _pop(frame)
    container = _pop(frame)
    worker = _get(_ident()) or _outsider()
    if worker is not None:
        _dict_write(worker, container, key, site)
        _see(worker, site, 2, STATE.calls.subscript, container, key, "w",
                               worker.schedule.objects, type(key) is slice)
    return key


def _dict_write(worker: Worker, container: Any, key: Any, site: Site) -> None:
    if type(container) is dict and type(key) is str:
        _builtin_rebound(worker, container, key, site)


# ---- globals and closure variables --------------------------------------------------------------

def gread(namespace: dict[str, Any], name: str, site: Site) -> None:
    worker = _get(_ident()) or _outsider()
    if worker is not None:
        objects = worker.schedule.objects
        event: Event = ((objects(namespace), name, False),)
        if name not in namespace:
            event += ((objects(_BUILTINS_NS), name, False),)
        step(worker, Outcome(event), site)


def gwrite(namespace: dict[str, Any], name: str, value: Any, site: Site) -> Any:
    _gwrite(namespace, name, site, 3)
    return value


def gbind(namespace: dict[str, Any], name: str, site: Site) -> None:
    _gwrite(namespace, name, site, 3)


def _gwrite(namespace: dict[str, Any], name: str, site: Site, depth: int) -> None:
    worker = _get(_ident()) or _outsider()
    if worker is not None:
        _builtin_rebound(worker, namespace, name, site)
        step(worker, Outcome(((worker.schedule.objects(namespace), name, True),)), site,
             depth)


class GlobalsProxy:
    """A store target for a module's globals: ``proxy[name, site] = value`` is the
    store ``name = value`` with its hook (any target position takes it)."""

    __slots__ = ("namespace",)

    def __init__(self, namespace: dict[str, Any]) -> None:
        self.namespace = namespace

    def __setitem__(self, key: tuple[str, Any], value: Any) -> None:
        name, site = key
        _gwrite(self.namespace, name, ("point", site), 3)
        self.namespace[name] = value

    def __delitem__(self, key: tuple[str, Any]) -> None:
        __tracebackhide__ = True
        name, site = key
        _gwrite(self.namespace, name, ("point", site), 3)
        try:
            del self.namespace[name]
        except KeyError:
            raise NameError(f"name {name!r} is not defined") from None


def cread(key: object, site: Site) -> None:
    worker = _get(_ident()) or _outsider()
    if worker is not None:
        step(worker, Outcome(((worker.schedule.objects(key), ALL, False),)), site)


def cwrite(key: object, value: Any, site: Site) -> Any:
    _cwrite(key, site)
    return value


def cbind(key: object, site: Site) -> None:
    _cwrite(key, site)


def cdelete(key: object, site: Site) -> None:
    _cwrite(key, site)


def _cwrite(key: object, site: Site) -> None:
    worker = _get(_ident()) or _outsider()
    if worker is not None:
        step(worker, Outcome(((worker.schedule.objects(key), ALL, True),)), site, 3)


# ---- calls --------------------------------------------------------------------------------------

def callp(function: Any, site: Site, args: tuple[Any, ...], kwargs: dict[str, Any] | None
          ) -> Any:
    """A call whose arguments are locals or constants: described with them, and
    made (with them evaluated again) from the user's frame."""
    worker = _get(_ident()) or _outsider()
    if worker is not None:
        _see(worker, site, 2, STATE.calls.callable_outcome, function, args,
                               worker.schedule.objects, kwargs)
    return function


def call(site: Site, *args: Any) -> tuple[Any, ...]:
    """The arguments of the call whose callee waits in the stash: described, then
    given back to be spread into the call in the user's frame."""
    function = _pop(_getframe(1))
    worker = _get(_ident()) or _outsider()
    if worker is not None:
        _see(worker, site, 2, STATE.calls.callable_outcome, function, args,
                               worker.schedule.objects)
    return args


def pos(*args: Any) -> tuple[Any, ...]:
    """The positional arguments of a call with keywords (``call_kw`` completes it)."""
    ident = _ident()
    stash = _STASHES.get(ident)
    if stash is None:
        stash = _STASHES[ident] = []
    stash.append((_getframe(1), args))
    return args


def call_kw(site: Site, names: tuple[str | None, ...], *values: Any) -> dict[str, Any]:
    """The keyword arguments (``None``: a ``**mapping``) of the call whose callee
    and positional arguments wait in the stash."""
    frame = _getframe(1)
    args = _pop(frame)
    function = _pop(frame)
    kwargs: dict[str, Any] = {}
    for name, value in zip(names, values, strict=True):
        if name is not None:
            pairs: Any = ((name, value),)
        else:
            keys = value.keys()
            pairs = ((key, value[key]) for key in keys)
        for key, item in pairs:
            if key in kwargs:
                raise TypeError(f"{_function_str(function)} got multiple values for "
                                f"keyword argument {key!r}")
            kwargs[key] = item
    worker = _get(_ident()) or _outsider()
    if worker is not None:
        _see(worker, site, 2, STATE.calls.callable_outcome, function, args,
                               worker.schedule.objects, kwargs)
    return kwargs


def _function_str(function: Any) -> str:
    """How CPython names a callee in a call's TypeError: ``module.qualname()``."""
    name = getattr(function, "__qualname__", None)
    if not isinstance(name, str):
        return f"{type(function).__name__} object"
    module = getattr(function, "__module__", None)
    return f"{module}.{name}()" if isinstance(module, str) and module != "builtins" \
        else f"{name}()"


# ---- iteration ----------------------------------------------------------------------------------

def iter(iterable: Any, site: Site, unpacks: bool) -> Any:  # noqa: A001 - the hook's name
    """``for ... in iterable``: the iterator, announcing each item it reads."""
    iterator = _builtin_iter(iterable)
    worker = _get(_ident()) or _outsider()
    if worker is None:
        return iterator
    outcome = _describe(STATE.calls.next_item, iterator, worker.schedule.objects)
    if not outcome.event and outcome.blind is None and outcome.open is None and not unpacks:
        return iterator  # a generator or iterator of rewritten code: it says for itself
    return Iterator(iterator, site, unpacks)


class Iterator:
    """An iterator whose every ``next`` is a step that reads what it iterates
    over (and, when the loop unpacks each item, a step that reads the item)."""

    __slots__ = ("iterator", "site", "unpacks")

    def __init__(self, iterator: Any, site: Site, unpacks: bool) -> None:
        self.iterator, self.site, self.unpacks = iterator, site, unpacks

    def __iter__(self) -> Iterator:
        return self

    def __next__(self) -> Any:
        worker = _get(_ident())
        if worker is not None:
            _see(worker, self.site, 2, STATE.calls.next_item, self.iterator,
                                   worker.schedule.objects)
        item = _builtin_next(self.iterator)
        if self.unpacks and worker is not None and data(item):
            _see(worker, self.site, 2, STATE.calls.operation, "unpack", item, _NONE,
                                   worker.schedule.objects)
        return item


def aiter(iterable: Any, site: Site, unpacks: bool) -> Any:
    """``async for ... in iterable``."""
    iterator = iterable.__aiter__()
    worker = _get(_ident()) or _outsider()
    if worker is None:
        return iterator
    outcome = _describe(STATE.calls.next_item, iterator, worker.schedule.objects)
    if not outcome.event and outcome.blind is None and outcome.open is None:
        return iterator
    return AsyncIterator(iterator, site)


class AsyncIterator:
    """``Iterator`` for ``async for``."""

    __slots__ = ("iterator", "site")

    def __init__(self, iterator: Any, site: Site) -> None:
        self.iterator, self.site = iterator, site

    def __aiter__(self) -> AsyncIterator:
        return self

    async def __anext__(self) -> Any:
        worker = _get(_ident())
        if worker is not None:
            _see(worker, self.site, 2, STATE.calls.next_item, self.iterator,
                                   worker.schedule.objects)
        return await self.iterator.__anext__()


# ---- with ---------------------------------------------------------------------------------------

def with_(manager: Any, site: Site) -> Any:
    """``with manager``: itself when entering and leaving it are rewritten code or
    explore's own; else a wrapper whose entry and exit are steps."""
    worker = _get(_ident()) or _outsider()
    if worker is None:
        return manager
    outcome = _describe_enter(manager, worker, "__enter__")
    if outcome is None:
        return manager
    return Managed(manager, site, outcome)


def _describe_enter(manager: Any, worker: Worker, which: str) -> Outcome | None:
    deciding, worker.deciding = worker.deciding, True
    try:
        return STATE.calls.enter_exit(manager, worker.schedule.objects, which)
    except Exception:  # noqa: BLE001 - a wrong answer would be worse than a conservative one
        return OPAQUE
    finally:
        worker.deciding = deciding


class Managed:
    """A context manager explore cannot see into: entering and leaving it are
    steps (a real lock's acquire waits for it to be free; its release is one)."""

    __slots__ = ("manager", "site", "entering")

    def __init__(self, manager: Any, site: Site, entering: Outcome) -> None:
        self.manager, self.site, self.entering = manager, site, entering

    def __enter__(self) -> Any:
        worker = _get(_ident())
        if worker is not None:
            step(worker, self.entering, self.site)
        return type(self.manager).__enter__(self.manager)

    def __exit__(self, *exc: Any) -> Any:
        worker = _get(_ident())
        if worker is not None:
            outcome = _describe_enter(self.manager, worker, "__exit__")
            if outcome is not None:
                where, line, function, _what = self.site[1]
                step(worker, outcome, ("point", (where, line, function, "exits with")))
        return type(self.manager).__exit__(self.manager, *exc)


def awith(manager: Any, site: Site) -> Any:
    """``async with manager``."""
    worker = _get(_ident()) or _outsider()
    if worker is None:
        return manager
    if STATE.calls.enter_exit(manager, worker.schedule.objects, "__aenter__") is None:
        return manager
    return AsyncManaged(manager, site)


class AsyncManaged:
    """``Managed`` for ``async with``: entering and leaving are opaque steps."""

    __slots__ = ("manager", "site")

    def __init__(self, manager: Any, site: Site) -> None:
        self.manager, self.site = manager, site

    async def __aenter__(self) -> Any:
        worker = _get(_ident())
        if worker is not None:
            step(worker, OPAQUE, self.site)
        return await type(self.manager).__aenter__(self.manager)

    async def __aexit__(self, *exc: Any) -> Any:
        worker = _get(_ident())
        if worker is not None:
            step(worker, OPAQUE, self.site)
        return await type(self.manager).__aexit__(self.manager, *exc)


# ---- operators ----------------------------------------------------------------------------------

_NONE = NO_OPERAND  # no right operand: a unary operation, a truth test...


def _operate(op: str, left: Any, right: Any, site: Site, inplace: bool = False) -> None:
    worker = _get(_ident()) or _outsider()
    if worker is not None:
        _see(worker, site, 3, STATE.calls.operation, op, left, right, worker.schedule.objects,
                               inplace)


def binl(left: Any, right: Any, op: str, site: Site) -> Any:
    _operate(op, left, right, site)
    return left


def binr(left: Any, right: Any, op: str, site: Site) -> Any:
    _operate(op, left, right, site)
    return right


def binop(left: Any, right: Any, op: str, site: Site) -> Any:
    __tracebackhide__ = True
    _operate(op, left, right, site)
    return _BINARY[op](left, right)


def inplace(current: Any, value: Any, op: str, site: Site) -> Any:
    """``current op= value``: the in-place operation (it writes a mutable left side)."""
    __tracebackhide__ = True
    _operate(op, current, value, site, inplace=True)
    return _INPLACE[op](current, value)


def cmpl(left: Any, right: Any, op: str, site: Site) -> Any:
    _operate(op, left, right, site)
    return left


def cmpr(left: Any, right: Any, op: str, site: Site) -> Any:
    _operate(op, left, right, site)
    return right


def compare(left: Any, right: Any, op: str, site: Site) -> Any:
    __tracebackhide__ = True
    _operate(op, left, right, site)
    return _COMPARE[op](left, right)


def cmp_shift(right: Any, op: str, site: Site) -> Any:
    """One link of a comparison chain: compare with the left side waiting in the
    stash, and wait there as the next link's left side."""
    frame = _getframe(1)
    left = _pop(frame)
    _operate(op, left, right, site)
    ident = _ident()
    _STASHES.setdefault(ident, []).append((frame, right))
    return right


def cmp_pop(right: Any, op: str, site: Site) -> Any:
    left = _pop(_getframe(1))
    _operate(op, left, right, site)
    return right


def unary(value: Any, op: str, site: Site) -> Any:
    _operate(op, value, _NONE, site)
    return value


def truth(value: Any, site: Site) -> Any:
    _operate("truth", value, _NONE, site)
    return value


def star(value: Any, site: Site) -> Any:
    """``*value`` or ``**value``: reads what it spreads."""
    _operate("unpack", value, _NONE, site)
    return value


def unpack(value: Any, site: Site) -> Any:
    if type(value) is not tuple:
        _operate("unpack", value, _NONE, site)
    return value


def fmt(value: Any, site: Site) -> Any:
    _operate("format", value, _NONE, site)
    return value


def deep(value: Any, site: Site) -> Any:
    """A ``match`` subject: its patterns may read anything inside it."""
    worker = _get(_ident()) or _outsider()
    if worker is not None:
        step(worker, Outcome(deep_reads([value], worker.schedule.objects, namespaces=True)),
             site)
    return value


_BINARY: dict[str, Callable[[Any, Any], Any]] = {
    name: getattr(operator, name) for name in (
        "add", "sub", "mul", "matmul", "truediv", "floordiv", "mod", "pow", "lshift",
        "rshift", "or_", "xor", "and_")}
_INPLACE: dict[str, Callable[[Any, Any], Any]] = {
    name: getattr(operator, "i" + name.rstrip("_")) for name in _BINARY}
_COMPARE: dict[str, Callable[[Any, Any], Any]] = {
    "eq": operator.eq, "ne": operator.ne, "lt": operator.lt, "le": operator.le,
    "gt": operator.gt, "ge": operator.ge,
    "contains": lambda item, container: item in container,
    "not_contains": lambda item, container: item not in container}


# ---- the rest -----------------------------------------------------------------------------------

def imports(namespace: dict[str, Any], spec: tuple[int, str, tuple[str, ...]], site: Site
            ) -> None:
    """An import statement: it reads ``sys.modules`` (and the names it takes from a
    module); a module not imported yet runs its code, unseen."""
    worker = _get(_ident()) or _outsider()
    if worker is None:
        return
    level, module, names = spec
    objects = worker.schedule.objects
    modules = sys.modules
    event: list[tuple[int, object, bool]] = []
    if module or level:
        package = namespace.get("__package__") or ""
        if level:
            base = package.rsplit(".", level - 1)[0] if level > 1 else package
            module = f"{base}.{module}" if module else base
        wanted = [module]
        found = modules.get(module)
        for name in names:
            if found is not None and name != "*" and name not in vars(found):
                wanted.append(f"{module}.{name}")
            elif found is not None:
                event.append((objects(found), name if name != "*" else ALL, False))
    else:
        wanted = names  # type: ignore[assignment]
    for name in wanted:
        parts = name.split(".")
        for end in range(1, len(parts) + 1):
            prefix = ".".join(parts[:end])
            event.append((objects(modules), prefix, False))
            if prefix not in modules:
                worker.schedule.unseen(f"an import of {prefix}, which runs its code",
                                       (site[1][0], site[1][1]))
                step(worker, Outcome(EVERYTHING_EVENT), site)
                return
    step(worker, Outcome(tuple(event)), site)


def unseen(what: str, site: Site) -> None:
    """A construct the rewriting cannot describe: the verdict says so."""
    worker = _get(_ident()) or _outsider()
    if worker is not None:
        worker.schedule.unseen(what, (site[1][0], site[1][1]))
        step(worker, Outcome(EVERYTHING_EVENT), site)


