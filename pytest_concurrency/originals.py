"""``os.fork`` and ``threading.Thread.start`` as they were when the plugin was
imported, for the plugin's own use.

A test may replace either (with ``monkeypatch``, or by hand and wrongly, for
good): the plugin still starts its worker threads and forks its children with
the real ones, so the patch neither breaks the run nor lives on in a pool
thread or a child the next item gets.  A child forked while a test's patch is
in place gets the patch back before the body runs: the body sees the world the
test made, as it would in a plain run.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from typing import Any

_START = threading.Thread.start
# (owner, attribute, the original): what restored() puts back while the plugin forks
_SAVED: tuple[tuple[Any, str, Any], ...] = (
    (threading.Thread, "start", threading.Thread.start),
) + (((os, "fork", os.fork),) if hasattr(os, "fork") else ())

# what a test had put in place of an original while the plugin forked (owner,
# attribute, the test's value): a forked child puts it back (reapply())
_REPLACED: list[tuple[Any, str, Any]] = []
_MISSING = object()  # a test deleted the attribute


def start(thread: threading.Thread) -> None:
    """``thread.start()`` by the real ``Thread.start``."""
    _START(thread)


@contextlib.contextmanager
def restored() -> Iterator[None]:
    """While the plugin starts its children: the originals in place of whatever a
    test put there; the test's values back afterwards (in a forked child too,
    by :func:`reapply`)."""
    replaced = [(owner, name, value) for owner, name, original in _SAVED
                if (value := getattr(owner, name, _MISSING)) is not original]
    if not replaced:
        yield
        return
    _REPLACED[:] = replaced
    originals = {(id(owner), name): original for owner, name, original in _SAVED}
    try:
        for owner, name, _value in replaced:
            setattr(owner, name, originals[id(owner), name])
        yield
    finally:
        _put_back(replaced)
        _REPLACED.clear()


def reapply() -> None:
    """In a child forked inside :func:`restored`: the test's values again."""
    _put_back(_REPLACED)
    _REPLACED.clear()


def _put_back(replaced: list[tuple[Any, str, Any]]) -> None:
    for owner, name, value in replaced:
        if value is _MISSING:
            delattr(owner, name)
        else:
            setattr(owner, name, value)
