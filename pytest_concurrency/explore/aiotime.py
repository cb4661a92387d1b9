"""The clock a task schedule's code reads: the schedule's virtual clock.

While an async schedule runs, ``time.monotonic``, ``time.perf_counter`` and
``time.time`` called on its loop thread read the schedule's virtual clock (from
the real values at the schedule's start, plus the virtual seconds that passed),
the loop's ``time()`` itself, so a TTL measured with
``time.monotonic()`` expires exactly when an ``asyncio.sleep`` of that length
ends.  ``time.sleep(s)`` there blocks the loop for ``s`` virtual seconds: the
clock moves on, and no task runs meanwhile, as on a real loop.  Any other thread
(an executor's, pytest's) reads the real clock.  Like the thread side's
(``primitives``), these are the ``time`` module's attributes: a function bound
at import (``from time import monotonic``) keeps the real one.
"""

from __future__ import annotations

import threading
import time
from typing import Protocol

from . import _orig

NAMES = ("monotonic", "perf_counter", "time", "sleep")


class Clock(Protocol):
    """What this module reads of the running schedule (``aioschedule.AsyncSchedule``)."""

    now: float  # the loop's time(): the real monotonic() at the start plus virtual seconds
    wall0: float  # the real time.time() at its start

    @property
    def clock(self) -> float: ...  # virtual seconds since the schedule started

    @property
    def loop_thread(self) -> int | None: ...  # the ident of the thread that runs its loop


_ACTIVE: list[Clock] = []


def _running() -> Clock | None:
    """The schedule whose loop thread is calling, if any."""
    if not _ACTIVE:
        return None
    schedule = _ACTIVE[-1]
    return schedule if schedule.loop_thread == threading.get_ident() else None


def monotonic() -> float:
    schedule = _running()
    return _orig.monotonic() if schedule is None else schedule.now


def perf_counter() -> float:
    schedule = _running()
    return _orig.perf_counter() if schedule is None else schedule.now


def wall_time() -> float:
    schedule = _running()
    return _orig.wall_time() if schedule is None else schedule.wall0 + schedule.clock


def sleep(secs: float) -> None:
    """On the loop thread: the loop is blocked for ``secs`` virtual seconds."""
    schedule = _running()
    if schedule is None:
        return _orig.sleep(secs)
    if secs < 0:
        raise ValueError("sleep length must be non-negative")
    schedule.now += float(secs)
    return None


_OURS = {"monotonic": monotonic, "perf_counter": perf_counter, "time": wall_time,
         "sleep": sleep}
_SAVED: list[dict[str, object]] = []


def patch(schedule: Clock) -> None:
    """From now until :func:`unpatch`, ``schedule``'s loop thread reads its clock."""
    _ACTIVE.append(schedule)
    if len(_ACTIVE) == 1:
        _SAVED.append({name: getattr(time, name) for name in NAMES})
        for name in NAMES:
            setattr(time, name, _OURS[name])


def unpatch(schedule: Clock) -> None:
    _ACTIVE.remove(schedule)
    if not _ACTIVE and _SAVED:
        for name, value in _SAVED.pop().items():
            setattr(time, name, value)
