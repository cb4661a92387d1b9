"""Logging levels of one call: what a worker's ``caplog.at_level`` and
``caplog.set_level`` set, seen by that call's records only.

pytest's ``caplog`` sets the level of a shared logger (and of its handler):
two workers doing so at once undo each other, and one that leaves its
``at_level`` block restores a level under the feet of another still inside
its own, whose records are then never made (the GIL makes it rare; a
free-threaded build does not).  Here a call's levels are kept by call, and
consulted for the records that call makes:

- whether a logger is enabled for a level: ``Logger.isEnabledFor`` is wrapped
  while calls have levels of their own; for a call that set some it answers
  as logging would with the call's levels in place of the loggers' (the
  nearest logger with a level of the call's, or a level of its own, decides;
  ``logging.disable`` is lifted as pytest's ``caplog`` lifts it);
- whether the ``caplog`` handler takes a record: the handler's level is
  lowered while calls have levels of their own, and a filter applies the level
  of the call that made the record (the handler's own for any other record).

Nothing else changes: another worker's records, and the loggers' own levels,
are what they were.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import threading
from collections.abc import Callable, Iterator

from . import context
from .context import CallKey

STAMP = "_concurrency_call"  # LogRecord attribute: the call that logged it


@dataclasses.dataclass
class _Call:
    """The levels one call set: by logger, of the handler, of ``logging.disable``."""

    loggers: dict[logging.Logger, int] = dataclasses.field(default_factory=dict)
    handler: int | None = None
    disable: int | None = None


def level_number(level: int | str) -> int:
    """A level as logging takes it (a name or a number), as a number; ValueError
    naming an unknown one, as ``Logger.setLevel`` raises."""
    if isinstance(level, int):
        return level
    known = logging.getLevelNamesMapping()
    if level not in known:
        raise ValueError(f"Unknown level: {level!r}")
    return known[level]


class CallLevels:
    """The levels the calls of one run set through their ``caplog``."""

    def __init__(self) -> None:
        self.calls: dict[CallKey, _Call] = {}
        self._lock = threading.Lock()
        self._handlers: dict[logging.Handler, tuple[int, logging.Filter]] = {}
        self._installed = False

    # -- what a call's caplog does

    def set(self, key: CallKey, level: int | str, logger: str | None,
            handler: logging.Handler) -> _Call:
        """Set ``key``'s level of ``logger`` (the root logger if None) and of the
        caplog ``handler``; returns what the call had before, for :meth:`put_back`."""
        number = level_number(level)
        logger_obj = logging.getLogger(logger)
        self._install(handler)
        mine = self.calls.setdefault(key, _Call())
        before = dataclasses.replace(mine, loggers=dict(mine.loggers))
        mine.loggers[logger_obj] = number
        mine.handler = number
        if logger_obj.manager.disable >= number:  # as caplog's _force_enable_logging
            mine.disable = max(number - 10, logging.NOTSET)
        return before

    def put_back(self, key: CallKey, before: _Call) -> None:
        self.calls[key] = before

    def forget(self, key: CallKey) -> None:
        """``key``'s call is over: its levels are gone."""
        self.calls.pop(key, None)

    def close(self) -> None:
        """The run is over: logging as it was."""
        with self._lock:
            self.calls.clear()
            for handler, (level, filter_) in self._handlers.items():
                handler.removeFilter(filter_)
                if handler.level == logging.NOTSET:
                    handler.setLevel(level)
            self._handlers.clear()
            if self._installed:
                _ACTIVE.remove(self)
                if not _ACTIVE:
                    logging.Logger.isEnabledFor = _ORIGINAL  # type: ignore[method-assign,assignment]
                self._installed = False

    # -- what logging asks

    def enabled(self, logger: logging.Logger, level: int, mine: _Call) -> bool:
        """``Logger.isEnabledFor`` with the levels of the call ``mine`` in place."""
        if logger.disabled:
            return False
        disable = logger.manager.disable if mine.disable is None \
            else min(logger.manager.disable, mine.disable)
        if disable >= level:
            return False
        node: logging.Logger | None = logger
        while node is not None:
            own = mine.loggers.get(node)
            if own is not None:
                return level >= own
            if node.level:
                return level >= node.level
            node = node.parent
        return level >= logging.NOTSET

    def takes(self, record: logging.LogRecord, base: int) -> bool:
        """Whether the caplog handler (of level ``base``) takes ``record``."""
        mine = self.calls.get(getattr(record, STAMP, None))  # type: ignore[arg-type]
        threshold = mine.handler if mine is not None and mine.handler is not None else base
        return record.levelno >= threshold

    # -- helpers

    def _install(self, handler: logging.Handler) -> None:
        with self._lock:
            if not self._installed:
                if not _ACTIVE:
                    logging.Logger.isEnabledFor = _is_enabled_for  # type: ignore[method-assign]
                _ACTIVE.append(self)
                self._installed = True
            if handler not in self._handlers:
                base = handler.level
                filter_ = _HandlerFilter(self, base)
                self._handlers[handler] = (base, filter_)
                handler.addFilter(filter_)
                handler.setLevel(logging.NOTSET)  # the filter applies each call's level


class _HandlerFilter(logging.Filter):
    def __init__(self, levels: CallLevels, base: int) -> None:
        super().__init__()
        self.levels = levels
        self.base = base

    def filter(self, record: logging.LogRecord) -> bool:
        return self.levels.takes(record, self.base)


@contextlib.contextmanager
def at_level(levels: CallLevels, key: CallKey, level: int | str, logger: str | None,
             handler: logging.Handler) -> Iterator[None]:
    """``caplog.at_level`` for the call ``key``."""
    before = levels.set(key, level, logger, handler)
    try:
        yield
    finally:
        levels.put_back(key, before)


_ACTIVE: list[CallLevels] = []  # the runs whose calls set levels (one, but for nesting)
_ORIGINAL: Callable[[logging.Logger, int], bool] = logging.Logger.isEnabledFor


def _is_enabled_for(self: logging.Logger, level: int) -> bool:
    key = context.call_key()
    if key is not None:
        for levels in reversed(_ACTIVE):
            mine = levels.calls.get(key)
            if mine is not None:
                return levels.enabled(self, level, mine)
    return _ORIGINAL(self, level)
