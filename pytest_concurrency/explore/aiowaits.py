"""What asyncio tasks wait for: the Lock that knows its holder, and the deadlock text.

While an async schedule runs, ``asyncio.Lock`` (and so a ``Condition``'s own
lock) is :class:`Lock`: asyncio's lock, which also notes which task holds it
and where it was taken, for the deadlock report ("held by worker 1 at
k.py:12") and the lock-order graph.  A lock made before the run (at import)
is asyncio's own and is reported without its holder.

What a stuck task waits for is read from its suspended coroutines: the user
line of its innermost user frame, and the primitive of the innermost asyncio
(or anyio) frame, the ``self`` of ``Lock.acquire``, ``Event.wait``,
``Queue.get``...  Those are public attributes of coroutine objects and frames
(``cr_await``, ``cr_frame``, ``f_locals``); only "awaits worker 2" reads a
task's private ``_fut_waiter``, where it has one.
"""

from __future__ import annotations

import asyncio
from types import FrameType
from typing import Any, Protocol

from .lockorder import LockKey, LockOrder
from .report import name_in, site_text

Site = tuple[str, int, str]
_REAL_LOCK = asyncio.Lock


class LaneView(Protocol):
    """What this module reads of a task's lane (``aioschedule.Lane``)."""

    @property
    def index(self) -> int: ...

    @property
    def task(self) -> asyncio.Task[Any] | None: ...

    @property
    def held(self) -> list[Any]: ...

    @property
    def origin(self) -> str: ...


class ScheduleView(Protocol):
    """What this module uses of the running schedule (``aioschedule.AsyncSchedule``)."""

    @property
    def state(self) -> Any: ...

    @property
    def lock_order(self) -> LockOrder | None: ...

    def is_user(self, filename: str) -> bool: ...

    def caller_site(self) -> Site | None: ...

    def lane_of(self, task: object) -> Any: ...

    def lock_key(self, site: Site) -> LockKey: ...

    def user_frames(self) -> list[FrameType]: ...


_ACTIVE: list[ScheduleView] = []  # the schedule running now (its setup included), if one is


def active() -> ScheduleView | None:
    """The async schedule that is running; None between them."""
    return _ACTIVE[-1] if _ACTIVE else None


def coroutine_frames(task: asyncio.Task[Any]) -> list[FrameType]:
    """The frames of a suspended task, outermost first (its coroutine, what that
    awaits, and so on down)."""
    frames: list[FrameType] = []
    awaitable: Any = task.get_coro()
    for _ in range(200):
        frame = getattr(awaitable, "cr_frame", None) or getattr(awaitable, "gi_frame", None) \
            or getattr(awaitable, "ag_frame", None)
        if frame is None:
            break
        frames.append(frame)
        awaitable = getattr(awaitable, "cr_await", None) or \
            getattr(awaitable, "gi_yieldfrom", None) or getattr(awaitable, "ag_await", None)
    return frames


class Lock(asyncio.Lock):
    """``asyncio.Lock`` that notes its holder (see the module docstring)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._explore_owner: LaneView | None = None
        self._explore_site: Site | None = None
        schedule = active()
        made = schedule.caller_site() if schedule is not None else None
        made = made or ("?", 0, "?")
        self._key = schedule.lock_key(made) if schedule is not None else (made[0], made[1], 0)

    async def acquire(self) -> bool:  # type: ignore[override]  # True, as asyncio's
        schedule = active()
        site = schedule.caller_site() if schedule is not None else None
        await super().acquire()
        if schedule is not None:
            _took(schedule, self, site or ("?", 0, "?"))
        return True

    def release(self) -> None:
        super().release()
        owner, self._explore_owner = self._explore_owner, None
        if owner is not None and self in owner.held:
            owner.held.remove(self)


def _took(schedule: ScheduleView, lock: Lock, site: Site) -> None:
    lane = schedule.lane_of(asyncio.current_task())
    if lane is None:
        return
    order = schedule.lock_order
    if order is not None and lane.held:
        locks = {held._key: held for held in lane.held}
        locks[lock._key] = lock
        frames = schedule.user_frames()

        def name(key: Any) -> str:
            return name_in(locks[key], schedule.state, frames)

        order.took(lane.index, lock._key, site,
                   [(held._key, held._explore_site or ("?", 0, "?")) for held in lane.held],
                   name)
    lock._explore_owner, lock._explore_site = lane, site
    lane.held.append(lock)


_TARGETS = ((asyncio, "Lock"), (asyncio.locks, "Lock"))


def patch(schedule: ScheduleView) -> None:
    """From now until :func:`unpatch`, ``schedule`` runs: asyncio's Lock is ours."""
    _ACTIVE.append(schedule)
    for module, name in _TARGETS:
        setattr(module, name, Lock)


def unpatch(schedule: ScheduleView) -> None:
    for module, name in _TARGETS:
        setattr(module, name, _REAL_LOCK)
    _ACTIVE.remove(schedule)


# ---- what a stuck task waits for ---------------------------------------------------------

_TEXT = {
    "lock": "waits for {name}",
    "notify": "waits on {name} for a notify that nobody will send",
    "event": "waits for {name} to be set, which nobody will do",
    "semaphore": "waits for {name}, which nobody will release",
    "item": "waits in get() for an item on {name} that nobody will put",
    "space": "waits in put() for space on {name} that nobody will make",
    "tasks": "waits in join() on {name} for task_done() calls that nobody will make",
    "barrier": "waits at {name} for parties that will never arrive",
    "receive": "waits to receive from {name}, to which nobody will send",
    "send": "waits to send on {name}, from which nobody will receive",
    "taskgroup": "waits for the tasks of its task group to finish",
    "future": "awaits a future that nothing will complete",
}
_BY_NAME = {"Lock": "lock", "Condition": "notify", "Event": "event", "Semaphore": "semaphore",
            "BoundedSemaphore": "semaphore", "CapacityLimiter": "semaphore",
            "Barrier": "barrier", "TaskGroup": "taskgroup",
            "MemoryObjectReceiveStream": "receive", "MemoryObjectSendStream": "send"}
_QUEUE = {"get": "item", "put": "space", "join": "tasks"}


def _primitive(frame: FrameType) -> tuple[str, object] | None:
    """What the library frame ``frame`` waits on: (kind, the primitive), if known."""
    code = frame.f_code
    if not code.co_argcount or code.co_varnames[0] != "self":
        return None
    owner = frame.f_locals.get("self")
    if isinstance(owner, asyncio.Queue):
        kind = _QUEUE.get(code.co_name)
        return (kind, owner) if kind else None
    for klass in type(owner).__mro__:
        kind = _BY_NAME.get(klass.__name__)
        if kind is not None and klass.__module__.split(".")[0] in ("asyncio", "anyio"):
            return kind, owner
    return None


def _waits(schedule: ScheduleView, lane: LaneView) -> tuple[str, object, Site | None]:
    """What ``lane``'s task waits for: (kind, the object, the user line)."""
    task = lane.task
    assert task is not None
    site, found = None, None
    for frame in coroutine_frames(task):
        if schedule.is_user(frame.f_code.co_filename):
            site = (frame.f_code.co_filename, frame.f_lineno, frame.f_code.co_name)
        else:
            found = _primitive(frame) or found
    if found is not None:
        return found[0], found[1], site
    waiter = getattr(task, "_fut_waiter", None)
    other = schedule.lane_of(waiter)
    if other is not None:
        return "join", other, site
    return "future", waiter, site


def describe_deadlock(schedule: ScheduleView, waiting: list[LaneView]) -> str:
    """Every task that cannot go on, what it holds and waits for, the cycle first."""
    frames = schedule.user_frames()
    lines = []
    edges: dict[int, LaneView] = {}  # lane -> the lane it waits for
    for lane in waiting:
        kind, resource, site = _waits(schedule, lane)
        held = [f"{name_in(lock, schedule.state, frames)} ({site_text(lock._explore_site)})"
                for lock in lane.held]
        holds = f"holds {', '.join(held)} and " if held else ""
        if kind == "join":
            text = f"awaits {resource}, which never finishes"
            edges[lane.index] = resource  # type: ignore[assignment]  # a lane
        else:
            name = name_in(resource, schedule.state, frames) if resource is not None else "?"
            text = _TEXT.get(kind, "waits for {name}").format(name=name)
        tail = ""
        owner = getattr(resource, "_explore_owner", None)
        if kind == "lock" and owner is not None:
            tail = ", held by " + ("itself (not reentrant)" if owner is lane else str(owner))
            edges[lane.index] = owner
        who = f"{lane}" + (f" ({lane.origin})" if lane.origin else "")
        lines.append(f"{who} {holds}{text} ({site_text(site)}){tail}")
    head = "deadlock: every unfinished task is waiting, and no timer or thread will wake one"
    cycle = _cycle(edges, waiting)
    if cycle:
        head += "; wait-for cycle " + " -> ".join(str(lane) for lane in cycle)
    return head + "\n  " + "\n  ".join(lines)


def _cycle(edges: dict[int, LaneView], waiting: list[LaneView]) -> list[LaneView] | None:
    for start in waiting:
        seen: list[LaneView] = []
        lane: LaneView | None = start
        while lane is not None and lane not in seen:
            seen.append(lane)
            lane = edges.get(lane.index)
        if lane is not None:
            return seen[seen.index(lane):] + [lane]
    return None

