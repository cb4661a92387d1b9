"""Cooperative threading/queue/time replacements, patched in while a schedule runs.

Inside a worker every operation is a switch point and blocking parks the worker in the
scheduler; in any other thread they behave like the real thing (blocking by polling).
"""

from __future__ import annotations

import collections
import itertools
import queue as _queue
import threading as _threading
from collections.abc import Callable
from types import ModuleType, TracebackType
from typing import Any, Protocol, TypeVar

from .. import originals
from . import _orig
from .scheduler import DONE, Site, Worker, active_schedule, current_worker, user_site

T = TypeVar("T")

_serial = itertools.count(1)


def _poll(ready: Callable[[], bool], timeout: float | None) -> bool:
    """Outside a worker: poll ``ready()`` until it is true or ``timeout`` passed."""
    end = None if timeout is None or timeout < 0 else _orig.monotonic() + timeout
    while not ready():
        if end is not None and _orig.monotonic() >= end:
            return False
        _orig.sleep(0.0005)
    return True


def _wait(worker: Worker | None, ready: Callable[[], bool], resource: object, what: str,
          timeout: float | None = None) -> bool:
    """Wait until ``ready()``; False if ``timeout`` (virtual seconds in workers) passed."""
    if ready():
        return True
    if timeout is not None and timeout <= 0:
        return False
    if worker is None:
        return _poll(ready, timeout)
    schedule = worker.schedule
    deadline = None if timeout is None else schedule.now() + timeout
    while not ready():
        if not schedule.block(worker, ready, resource, what, deadline):
            return ready()
    return True


def _touch() -> None:
    """A primitive changed so that a waiting worker may go on: the scheduler's next
    decision looks again at who can run."""
    worker = current_worker()
    if worker is not None:
        worker.schedule.dirty = True


def _op(what: str, touches: tuple[object, ...] = (), writes: bool = True,
        guard: Callable[[], bool] | None = None) -> Worker | None:
    """A switch point for an operation, in a worker; returns the worker (None outside).
    For DPOR the operation touches the primitives ``touches`` (see op_point)."""
    worker = current_worker()
    if worker is not None:
        worker.schedule.op_point(worker, what, touches, writes, guard)
    return worker


def _sync(what: str, touches: tuple[object, ...], writes: bool = True,
          releases: bool = False) -> None:
    """An operation others observe that is a switch point only for DPOR (sync_point)."""
    worker = current_worker()
    if worker is not None:
        worker.schedule.sync_point(worker, what, touches, writes, releases)


def _timeout_arg(blocking: bool, timeout: float | None) -> float | None:
    """The timeout of a ``(blocking, timeout)`` call: 0 if not blocking, None for ever."""
    if not blocking:
        return 0
    return None if timeout is None or timeout < 0 else timeout


class Lock:
    """A lock whose waits are visible to the scheduler."""

    _outer: RLock  # set only on the Lock inside an RLock: the RLock, for report names

    def __init__(self) -> None:
        self._real = _orig.allocate_lock()
        self._owner: Worker | None = None  # the worker that holds it, if a worker does
        self._site: Site | None = None  # where that worker acquired it
        self._serial = next(_serial)
        schedule = active_schedule()
        made = user_site(2)
        self._key = schedule.lock_key(made) if schedule is not None else (made[0], made[1], 0)

    def _free(self) -> bool:
        return not self._real.locked()

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        worker = current_worker()
        if worker is None:
            return self._real.acquire(blocking, timeout)
        limit = _timeout_arg(blocking, timeout)
        site = worker.schedule.op_point(worker, "acquire", (self,),
                                        guard=self._free if limit is None else None)
        while not self._real.acquire(False):
            if not _wait(worker, self._free, self, "lock", limit):
                return False
        worker.schedule.took_lock(worker, self, site)
        self._owner, self._site = worker, site
        worker.held.append(self)
        return True

    def release(self) -> None:
        _sync("release", (self,), releases=True)
        self._real.release()
        owner, self._owner = self._owner, None
        if owner is not None and self in owner.held:
            owner.held.remove(self)
        _touch()

    def locked(self) -> bool:
        return self._real.locked()

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()

    def _is_owned(self) -> bool:
        return self._real.locked()

    def _release_save(self) -> None:
        self.release()

    def _acquire_restore(self, _saved: object) -> None:
        self.acquire()

    def __repr__(self) -> str:
        return f"<explore Lock #{self._serial} {'locked' if self.locked() else 'unlocked'}>"


class RLock:
    """Reentrant lock built on :class:`Lock`."""

    def __init__(self) -> None:
        self._lock = Lock()
        self._lock._outer = self
        self._owner_ident: int | None = None
        self._count = 0
        self._serial = self._lock._serial

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        me = _orig.get_ident()
        if self._owner_ident == me:
            _op("acquire")
            self._count += 1
            return True
        if not self._lock.acquire(blocking, timeout):
            return False
        self._owner_ident, self._count = me, 1
        return True

    __enter__ = acquire

    def release(self) -> None:
        if self._owner_ident != _orig.get_ident():
            raise RuntimeError("cannot release un-acquired lock")
        self._count -= 1
        if not self._count:
            self._owner_ident = None
            self._lock.release()

    def __exit__(self, *exc: object) -> None:
        self.release()

    def _is_owned(self) -> bool:
        return self._owner_ident == _orig.get_ident()

    def _release_save(self) -> tuple[int, int | None]:
        saved = (self._count, self._owner_ident)
        self._count, self._owner_ident = 0, None
        self._lock.release()
        return saved

    def _acquire_restore(self, saved: tuple[int, int | None]) -> None:
        self._lock.acquire()
        self._count, self._owner_ident = saved

    def locked(self) -> bool:
        return self._lock.locked()

    def __repr__(self) -> str:
        return f"<explore RLock #{self._serial} count={self._count}>"


class _ConditionLock(Protocol):
    """The lock a Condition is made with: ours, or a real one made before the run."""

    def acquire(self, blocking: bool = ..., timeout: float = ..., /) -> bool: ...

    def release(self) -> None: ...

    def __enter__(self) -> bool: ...

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None, /) -> None: ...


class Condition:
    """Condition variable; a waiter parks until notified (no spurious wakeups)."""

    def __init__(self, lock: _ConditionLock | None = None) -> None:
        self._lock: _ConditionLock = RLock() if lock is None else lock
        self.acquire = self._lock.acquire
        self.release = self._lock.release
        self._waiters: list[list[bool]] = []  # one [notified] box per waiting call
        self._serial = next(_serial)

    def __enter__(self) -> bool:
        return self._lock.__enter__()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        return self._lock.__exit__(exc_type, exc, traceback)

    def _is_owned(self) -> bool:
        if hasattr(self._lock, "_is_owned"):
            return self._lock._is_owned()
        if self._lock.acquire(False):
            self._lock.release()
            return False
        return True

    def _release_save(self) -> object:
        if hasattr(self._lock, "_release_save"):
            return self._lock._release_save()
        self._lock.release()
        return None

    def _acquire_restore(self, saved: object) -> None:
        if hasattr(self._lock, "_acquire_restore"):
            self._lock._acquire_restore(saved)
        else:
            self._lock.acquire()

    def wait(self, timeout: float | None = None) -> bool:
        if not self._is_owned():
            raise RuntimeError("cannot wait on un-acquired lock")
        worker = current_worker()
        _sync("wait", (self,))
        notified = [False]
        self._waiters.append(notified)
        saved = self._release_save()
        try:
            _wait(worker, lambda: notified[0], self, "notify", timeout)
            return notified[0]
        finally:
            if not notified[0]:  # timed out: forget this call's box, and only this one
                self._waiters = [box for box in self._waiters if box is not notified]
            self._acquire_restore(saved)

    def wait_for(self, predicate: Callable[[], T], timeout: float | None = None) -> T:
        result = predicate()
        while not result:
            if not self.wait(timeout):
                return predicate()
            result = predicate()
        return result

    def notify(self, n: int = 1) -> None:
        if not self._is_owned():
            raise RuntimeError("cannot notify on un-acquired lock")
        _op("notify", (self,))
        woken, self._waiters[:n] = self._waiters[:n], []
        for notified in woken:
            notified[0] = True

    def notify_all(self) -> None:
        self.notify(len(self._waiters))

    notifyAll = notify_all


class Semaphore:
    """A counting semaphore whose waits are visible to the scheduler."""

    def __init__(self, value: int = 1) -> None:
        if value < 0:
            raise ValueError("semaphore initial value must be >= 0")
        self._value = value
        self._serial = next(_serial)

    def _positive(self) -> bool:
        return self._value > 0

    def acquire(self, blocking: bool = True, timeout: float | None = None) -> bool:
        limit = _timeout_arg(blocking, timeout)
        worker = _op("acquire", (self,), guard=self._positive if limit is None else None)
        if not _wait(worker, self._positive, self, "semaphore", limit):
            return False
        self._value -= 1
        return True

    __enter__ = acquire

    def release(self, n: int = 1) -> None:
        if n < 1:
            raise ValueError("n must be one or more")
        _sync("release", (self,), releases=True)
        self._value += n
        _touch()

    def __exit__(self, *exc: object) -> None:
        self.release()


class BoundedSemaphore(Semaphore):
    """A semaphore that may not be released above its initial value."""

    def __init__(self, value: int = 1) -> None:
        super().__init__(value)
        self._initial = value

    def release(self, n: int = 1) -> None:
        if self._value + n > self._initial:
            raise ValueError("Semaphore released too many times")
        super().release(n)


class Event:
    """An event flag whose waits are visible to the scheduler."""

    def __init__(self) -> None:
        self._flag = False
        self._serial = next(_serial)

    def _is_set(self) -> bool:
        return self._flag

    def is_set(self) -> bool:
        _op("is_set", (self,), writes=False)
        return self._flag

    isSet = is_set

    def set(self) -> None:
        _op("set", (self,))
        self._flag = True

    def clear(self) -> None:
        _op("clear", (self,))
        self._flag = False

    def wait(self, timeout: float | None = None) -> bool:
        worker = _op("wait", (self,), writes=False)
        return _wait(worker, self._is_set, self, "event", timeout)


class Barrier:
    """A barrier for ``parties`` threads whose waits are visible to the scheduler."""

    def __init__(self, parties: int, action: Callable[[], object] | None = None,
                 timeout: float | None = None) -> None:
        if parties < 1:
            raise ValueError("parties must be >= 1")
        self._parties, self._action, self._timeout = parties, action, timeout
        self._count = 0
        self._generation = 0
        self._broken = False
        self._serial = next(_serial)

    def wait(self, timeout: float | None = None) -> int:
        worker = _op("wait", (self,))
        if self._broken:
            raise _threading.BrokenBarrierError
        index, generation = self._count, self._generation
        self._count += 1
        if self._count == self._parties:
            if self._action is not None:
                self._action()
            self._count, self._generation = 0, self._generation + 1
            return index
        limit = self._timeout if timeout is None else timeout
        passed = _wait(worker, lambda: self._generation != generation or self._broken, self,
                       "barrier", limit)
        if not passed:
            self._broken = True
        if self._generation == generation:
            raise _threading.BrokenBarrierError
        return index

    def reset(self) -> None:
        _sync("reset", (self,))
        self._count, self._generation, self._broken = 0, self._generation + 1, False
        _touch()

    def abort(self) -> None:
        _sync("abort", (self,))
        self._broken = True
        _touch()

    @property
    def parties(self) -> int:
        return self._parties

    @property
    def n_waiting(self) -> int:
        return self._count

    @property
    def broken(self) -> bool:
        return self._broken


class Queue:
    """FIFO queue whose blocking get/put park in the scheduler."""

    def __init__(self, maxsize: int = 0) -> None:
        self.maxsize = maxsize
        self._items: collections.deque[Any] = collections.deque()  # the user's items
        self._unfinished = 0
        self._serial = next(_serial)

    @classmethod
    def __class_getitem__(cls, item: object) -> type[Queue]:
        return cls

    def _take(self) -> Any:
        return self._items.popleft()

    def _has_item(self) -> bool:
        return bool(self._items)

    def _has_space(self) -> bool:
        return self.maxsize <= 0 or len(self._items) < self.maxsize

    def qsize(self) -> int:
        _op("qsize", (self,), writes=False)
        return len(self._items)

    def empty(self) -> bool:
        _op("empty", (self,), writes=False)
        return not self._items

    def full(self) -> bool:
        _op("full", (self,), writes=False)
        return 0 < self.maxsize <= len(self._items)

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        worker = _op("put", (self,))
        if not _wait(worker, self._has_space, self, "space", _timeout_arg(block, timeout)):
            raise _queue.Full
        self._items.append(item)
        self._unfinished += 1

    def get(self, block: bool = True, timeout: float | None = None) -> Any:
        worker = _op("get", (self,))
        if not _wait(worker, self._has_item, self, "item", _timeout_arg(block, timeout)):
            raise _queue.Empty
        return self._take()

    def put_nowait(self, item: Any) -> None:
        return self.put(item, False)

    def get_nowait(self) -> Any:
        return self.get(False)

    def task_done(self) -> None:
        if self._unfinished <= 0:
            raise ValueError("task_done() called too many times")
        _sync("task_done", (self,))
        self._unfinished -= 1
        _touch()

    def join(self) -> None:
        worker = _op("join", (self,))
        _wait(worker, lambda: self._unfinished == 0, self, "tasks")


class LifoQueue(Queue):
    """LIFO queue: get() takes the item put last."""

    def _take(self) -> Any:
        return self._items.pop()


class SimpleQueue(Queue):
    """Unbounded FIFO queue: put() never blocks."""

    def __init__(self) -> None:
        super().__init__(0)

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        super().put(item)


def _never() -> bool:
    return False


def sleep(secs: float) -> None:
    """In a worker: a switch point (0) or a block until virtual time has passed."""
    worker = current_worker()
    if worker is None:
        return _orig.sleep(secs)
    if secs < 0:
        raise ValueError("sleep length must be non-negative")
    schedule = worker.schedule
    if secs == 0:
        schedule.op_point(worker, "sleep(0)")
        return None
    schedule.block(worker, _never, None, "sleep", schedule.now() + secs)
    return None


def monotonic() -> float:
    """In a worker: the schedule's virtual clock, from the real monotonic() at its start."""
    worker = current_worker()
    return _orig.monotonic() if worker is None else \
        worker.schedule.mono0 + worker.schedule.clock


def perf_counter() -> float:
    """In a worker: the schedule's virtual clock, from the real monotonic() at its start."""
    worker = current_worker()
    return _orig.perf_counter() if worker is None else \
        worker.schedule.mono0 + worker.schedule.clock


def wall_time() -> float:
    """In a worker: the schedule's virtual clock, from the real time() at its start."""
    worker = current_worker()
    return _orig.wall_time() if worker is None else \
        worker.schedule.wall0 + worker.schedule.clock


class Thread(_orig.Thread):
    """threading.Thread: started inside a worker, the thread joins the schedule.

    Its ``run()`` becomes one more worker, interleaved like the others;
    ``join()`` and ``is_alive()`` follow that worker.  Started anywhere else
    it is an ordinary thread.
    """

    _explore_worker: Worker | None = None

    def start(self) -> None:
        worker = _op("start", (self,))
        if worker is None:
            return originals.start(self)  # the real start, whatever a test put there
        self._explore_worker = worker.schedule.spawn(self.run, self)
        return None

    def join(self, timeout: float | None = None) -> None:
        thread_worker = self._explore_worker
        if thread_worker is None:
            return super().join(timeout)
        def finished() -> bool:
            return thread_worker.status == DONE

        worker = _op("join", (self,), writes=False,
                     guard=finished if timeout is None else None)
        _wait(worker, finished, self, "join", timeout)
        return None

    def is_alive(self) -> bool:
        if self._explore_worker is None:
            return super().is_alive()
        _sync("is_alive", (self,), writes=False)
        return self._explore_worker.status != DONE

    @property
    def ident(self) -> int | None:
        if self._explore_worker is None:
            return super().ident
        return self._explore_worker.ident


def _selector_select(original: Callable[..., Any]) -> Callable[..., Any]:
    """A selector's ``select`` that, in a worker whose selector watches nothing but
    one file (an asyncio loop's self-pipe: a sync facade calling ``asyncio.run()``),
    waits on the schedule's virtual clock instead of the kernel's: for the loop's
    next timer, or until another thread writes to that file.  Without it the loop
    would read the virtual ``time.monotonic()`` while waiting in real time, and never
    finish.  A selector watching real I/O blocks as before (outside the scheduler)."""

    def select(self: Any, timeout: float | None = None) -> Any:
        worker = current_worker()
        if worker is None:
            return original(self, timeout)
        ready = original(self, 0)
        if ready or (timeout is not None and timeout <= 0) or len(self.get_map()) > 1:
            return ready if ready or (timeout is not None and timeout <= 0) else \
                original(self, timeout)
        schedule = worker.schedule
        deadline = None if timeout is None else schedule.now() + timeout
        schedule.block(worker, lambda: bool(original(self, 0)), self, "select", deadline,
                       polled=True)
        return original(self, 0)

    select.__wrapped__ = original  # type: ignore[attr-defined]
    return select


def _selector_classes() -> list[type]:
    import selectors

    classes = {value: None for value in vars(selectors).values()  # DefaultSelector is
               if isinstance(value, type) and value is not selectors.BaseSelector and  # an
               issubclass(value, selectors.BaseSelector) and "select" in vars(value)}  # alias
    return list(classes)


REPLACEMENTS: dict[str, object] = {
    "Thread": Thread, "Lock": Lock, "RLock": RLock, "Condition": Condition, "Semaphore": Semaphore,
    "BoundedSemaphore": BoundedSemaphore, "Event": Event, "Barrier": Barrier,
    "Queue": Queue, "SimpleQueue": SimpleQueue, "LifoQueue": LifoQueue,
    "sleep": sleep, "monotonic": monotonic, "time": wall_time, "perf_counter": perf_counter,
}


class Patcher:
    """Swap the module attributes in and out; restores what it found."""

    def __init__(self) -> None:
        self._saved: dict[tuple[ModuleType | type, str], object] | None = None

    def patch(self) -> None:
        self._saved = {}
        for module, names in _orig.PATCH_TARGETS.items():
            for name in names:
                self._saved[(module, name)] = getattr(module, name)
                setattr(module, name, REPLACEMENTS[name])
        for cls in _selector_classes():
            original = vars(cls)["select"]
            self._saved[(cls, "select")] = original
            cls.select = _selector_select(original)  # type: ignore[attr-defined]

    def unpatch(self) -> None:
        if self._saved:
            for (owner, name), value in self._saved.items():
                setattr(owner, name, value)
        self._saved = None
