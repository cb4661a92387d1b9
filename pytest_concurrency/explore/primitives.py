"""Cooperative threading/queue/time replacements, patched in while a schedule runs.

Inside a worker every operation is a switch point and blocking parks the worker in the
scheduler; in any other thread they behave like the real thing (blocking by polling).
"""
import collections
import itertools
import queue as _queue
import threading as _threading

from . import _orig
from .scheduler import Wait, current_worker

_serial = itertools.count(1)


def _poll(pred, timeout):
    end = None if timeout is None or timeout < 0 else _orig.monotonic() + timeout
    while not pred():
        if end is not None and _orig.monotonic() >= end:
            return False
        _orig.sleep(0.0005)
    return True


def _wait(w, pred, resource, what, timeout=None):
    """Wait until ``pred()``; False if ``timeout`` (virtual seconds in workers) passed."""
    if pred():
        return True
    if timeout is not None and timeout <= 0:
        return False
    if w is None:
        return _poll(pred, timeout)
    sch = w.schedule
    deadline = None if timeout is None else sch.now() + timeout
    while not pred():
        if not sch.block(w, Wait(pred, resource, what, deadline)):
            return pred()
    return True


def _op(what):
    w = current_worker()
    if w is not None:
        w.schedule.op_point(w, what)
    return w


def _timeout_arg(blocking, timeout):
    if not blocking:
        return 0
    return None if timeout is None or timeout < 0 else timeout


class Lock:
    """A lock whose waits are visible to the scheduler."""

    def __init__(self):
        self._real = _orig.allocate_lock()
        self._owner = None
        self._site = None
        self._serial = next(_serial)

    def _free(self):
        return not self._real.locked()

    def acquire(self, blocking=True, timeout=-1):
        w = current_worker()
        if w is None:
            return self._real.acquire(blocking, timeout)
        site = w.schedule.op_point(w, "acquire")
        limit = _timeout_arg(blocking, timeout)
        while not self._real.acquire(False):
            if not _wait(w, self._free, self, "lock", limit):
                return False
        self._owner, self._site = w, site
        w.held.append(self)
        return True

    def release(self):
        self._real.release()
        owner, self._owner = self._owner, None
        if owner is not None and self in owner.held:
            owner.held.remove(self)

    def locked(self):
        return self._real.locked()

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()

    def _is_owned(self):
        return self._real.locked()

    def _release_save(self):
        self.release()

    def _acquire_restore(self, _saved):
        self.acquire()

    def __repr__(self):
        return f"<explore Lock #{self._serial} {'locked' if self.locked() else 'unlocked'}>"


class RLock:
    """Reentrant lock built on :class:`Lock`."""

    def __init__(self):
        self._lock = Lock()
        self._lock._outer = self
        self._owner_ident = None
        self._count = 0
        self._serial = self._lock._serial

    def acquire(self, blocking=True, timeout=-1):
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

    def release(self):
        if self._owner_ident != _orig.get_ident():
            raise RuntimeError("cannot release un-acquired lock")
        self._count -= 1
        if not self._count:
            self._owner_ident = None
            self._lock.release()

    def __exit__(self, *exc):
        self.release()

    def _is_owned(self):
        return self._owner_ident == _orig.get_ident()

    def _release_save(self):
        saved = (self._count, self._owner_ident)
        self._count, self._owner_ident = 0, None
        self._lock.release()
        return saved

    def _acquire_restore(self, saved):
        self._lock.acquire()
        self._count, self._owner_ident = saved

    def locked(self):
        return self._lock.locked()

    def __repr__(self):
        return f"<explore RLock #{self._serial} count={self._count}>"


class Condition:
    """Condition variable; a waiter parks until notified (no spurious wakeups)."""

    def __init__(self, lock=None):
        self._lock = RLock() if lock is None else lock
        self.acquire = self._lock.acquire
        self.release = self._lock.release
        self._waiters = []
        self._serial = next(_serial)

    def __enter__(self):
        return self._lock.__enter__()

    def __exit__(self, *exc):
        return self._lock.__exit__(*exc)

    def _is_owned(self):
        if hasattr(self._lock, "_is_owned"):
            return self._lock._is_owned()
        if self._lock.acquire(False):
            self._lock.release()
            return False
        return True

    def _release_save(self):
        if hasattr(self._lock, "_release_save"):
            return self._lock._release_save()
        self._lock.release()
        return None

    def _acquire_restore(self, saved):
        if hasattr(self._lock, "_acquire_restore"):
            self._lock._acquire_restore(saved)
        else:
            self._lock.acquire()

    def wait(self, timeout=None):
        if not self._is_owned():
            raise RuntimeError("cannot wait on un-acquired lock")
        w = current_worker()
        rec = [False]
        self._waiters.append(rec)
        saved = self._release_save()
        try:
            _wait(w, lambda: rec[0], self, "notify", timeout)
            return rec[0]
        finally:
            if not rec[0] and rec in self._waiters:
                self._waiters.remove(rec)
            self._acquire_restore(saved)

    def wait_for(self, predicate, timeout=None):
        result = predicate()
        while not result:
            if not self.wait(timeout):
                return predicate()
            result = predicate()
        return result

    def notify(self, n=1):
        if not self._is_owned():
            raise RuntimeError("cannot notify on un-acquired lock")
        _op("notify")
        woken, self._waiters[:n] = self._waiters[:n], []
        for rec in woken:
            rec[0] = True

    def notify_all(self):
        self.notify(len(self._waiters))

    notifyAll = notify_all


class Semaphore:
    def __init__(self, value=1):
        if value < 0:
            raise ValueError("semaphore initial value must be >= 0")
        self._value = value
        self._serial = next(_serial)

    def _positive(self):
        return self._value > 0

    def acquire(self, blocking=True, timeout=None):
        w = _op("acquire")
        if not _wait(w, self._positive, self, "semaphore", _timeout_arg(blocking, timeout)):
            return False
        self._value -= 1
        return True

    __enter__ = acquire

    def release(self, n=1):
        if n < 1:
            raise ValueError("n must be one or more")
        self._value += n

    def __exit__(self, *exc):
        self.release()


class BoundedSemaphore(Semaphore):
    def __init__(self, value=1):
        super().__init__(value)
        self._initial = value

    def release(self, n=1):
        if self._value + n > self._initial:
            raise ValueError("Semaphore released too many times")
        super().release(n)


class Event:
    def __init__(self):
        self._flag = False
        self._serial = next(_serial)

    def _is_set(self):
        return self._flag

    def is_set(self):
        _op("is_set")
        return self._flag

    isSet = is_set

    def set(self):
        _op("set")
        self._flag = True

    def clear(self):
        _op("clear")
        self._flag = False

    def wait(self, timeout=None):
        w = _op("wait")
        return _wait(w, self._is_set, self, "event", timeout)


class Barrier:
    def __init__(self, parties, action=None, timeout=None):
        if parties < 1:
            raise ValueError("parties must be >= 1")
        self._parties, self._action, self._timeout = parties, action, timeout
        self._count = 0
        self._gen = 0
        self._broken = False
        self._serial = next(_serial)

    def wait(self, timeout=None):
        w = _op("wait")
        if self._broken:
            raise _threading.BrokenBarrierError
        index, gen = self._count, self._gen
        self._count += 1
        if self._count == self._parties:
            if self._action is not None:
                self._action()
            self._count, self._gen = 0, self._gen + 1
            return index
        limit = self._timeout if timeout is None else timeout
        ok = _wait(w, lambda: self._gen != gen or self._broken, self, "barrier", limit)
        if not ok:
            self._broken = True
        if self._gen == gen:
            raise _threading.BrokenBarrierError
        return index

    def reset(self):
        self._count, self._gen, self._broken = 0, self._gen + 1, False

    def abort(self):
        self._broken = True

    parties = property(lambda self: self._parties)
    n_waiting = property(lambda self: self._count)
    broken = property(lambda self: self._broken)


class Queue:
    """FIFO queue whose blocking get/put park in the scheduler."""

    def __init__(self, maxsize=0):
        self.maxsize = maxsize
        self._items = collections.deque()
        self._unfinished = 0
        self._serial = next(_serial)

    __class_getitem__ = classmethod(lambda cls, item: cls)

    def _take(self):
        return self._items.popleft()

    def _has_item(self):
        return bool(self._items)

    def _has_space(self):
        return self.maxsize <= 0 or len(self._items) < self.maxsize

    def qsize(self):
        _op("qsize")
        return len(self._items)

    def empty(self):
        _op("empty")
        return not self._items

    def full(self):
        _op("full")
        return 0 < self.maxsize <= len(self._items)

    def put(self, item, block=True, timeout=None):
        w = _op("put")
        if not _wait(w, self._has_space, self, "space", _timeout_arg(block, timeout)):
            raise _queue.Full
        self._items.append(item)
        self._unfinished += 1

    def get(self, block=True, timeout=None):
        w = _op("get")
        if not _wait(w, self._has_item, self, "item", _timeout_arg(block, timeout)):
            raise _queue.Empty
        return self._take()

    def put_nowait(self, item):
        return self.put(item, False)

    def get_nowait(self):
        return self.get(False)

    def task_done(self):
        if self._unfinished <= 0:
            raise ValueError("task_done() called too many times")
        self._unfinished -= 1

    def join(self):
        w = _op("join")
        _wait(w, lambda: self._unfinished == 0, self, "tasks")


class LifoQueue(Queue):
    def _take(self):
        return self._items.pop()


class SimpleQueue(Queue):
    def __init__(self):
        super().__init__(0)

    def put(self, item, block=True, timeout=None):
        super().put(item)


def sleep(secs):
    w = current_worker()
    if w is None:
        return _orig.sleep(secs)
    if secs < 0:
        raise ValueError("sleep length must be non-negative")
    sch = w.schedule
    if secs == 0:
        sch.op_point(w, "sleep(0)")
        return None
    sch.block(w, Wait(lambda: False, None, "sleep", sch.now() + secs))
    return None


def monotonic():
    w = current_worker()
    return _orig.monotonic() if w is None else w.schedule.mono0 + w.schedule.clock


def perf_counter():
    w = current_worker()
    return _orig.perf_counter() if w is None else w.schedule.mono0 + w.schedule.clock


def wall_time():
    w = current_worker()
    return _orig.wall_time() if w is None else w.schedule.wall0 + w.schedule.clock


class Thread(_orig.Thread):
    """threading.Thread: started inside a worker, the thread joins the schedule.

    Its ``run()`` becomes one more worker, interleaved like the others;
    ``join()`` and ``is_alive()`` follow that worker.  Started anywhere else
    it is an ordinary thread.
    """

    _explore_worker = None

    def start(self):
        w = _op("start")
        if w is None:
            return super().start()
        self._explore_worker = w.schedule.spawn(self.run)
        return None

    def _done(self):
        return self._explore_worker.status == "done"

    def join(self, timeout=None):
        if self._explore_worker is None:
            return super().join(timeout)
        w = _op("join")
        _wait(w, self._done, self, "join", timeout)
        return None

    def is_alive(self):
        if self._explore_worker is None:
            return super().is_alive()
        return not self._done()

    @property
    def ident(self):
        if self._explore_worker is None:
            return super().ident
        return self._explore_worker.ident


REPLACEMENTS = {
    "Thread": Thread, "Lock": Lock, "RLock": RLock, "Condition": Condition, "Semaphore": Semaphore,
    "BoundedSemaphore": BoundedSemaphore, "Event": Event, "Barrier": Barrier,
    "Queue": Queue, "SimpleQueue": SimpleQueue, "LifoQueue": LifoQueue,
    "sleep": sleep, "monotonic": monotonic, "time": wall_time, "perf_counter": perf_counter,
}


class Patcher:
    """Swap the module attributes in and out; restores what it found."""

    def __init__(self):
        self._saved = None

    def patch(self):
        self._saved = {}
        for mod, names in _orig.PATCH_TARGETS.items():
            for name in names:
                self._saved[(mod, name)] = getattr(mod, name)
                setattr(mod, name, REPLACEMENTS[name])

    def unpatch(self):
        if self._saved:
            for (mod, name), value in self._saved.items():
                setattr(mod, name, value)
        self._saved = None
