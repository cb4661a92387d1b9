"""Instances of a plain test class under concurrency.

pytest makes one instance of a test's class per test (``Function._getinstance``:
``Class.newinstance()``, the class called without arguments); its
``setup_method``/``teardown_method`` and the function-scoped fixtures defined
on the class run bound to that instance (``resolve_fixture_function`` binds
them to ``request.instance``, which is the item's).  With per-worker fixtures
every call of the body (each worker, each iteration) is a test of its own, so
it gets an instance of its own too: the one its fixtures were set up on (see
``percall.FixtureSets``), or, when the test has no function-scoped fixture at
all, a new one made for the call.  unittest ``TestCase`` methods get theirs in
``testcase.py``.

With shared fixtures the workers share the one instance pytest made, as they
share every fixture: when such a run fails and the test kept state on
``self``, the report says so.
"""

from __future__ import annotations

import inspect
import unittest
from collections.abc import Callable
from typing import Any

import pytest

INSTANCE = "_concurrency_instance"  # keyword argument: the instance of the call, if made


def method_function(obj: object, instance: object) -> Callable[..., Any] | None:
    """The function of the method ``obj`` is bound to ``instance``, looking through
    wrappers that say what they wrap (``__wrapped__``: pytest-asyncio's
    synchronizer, ``functools.wraps`` decorators); None if it is not one."""
    seen: set[int] = set()
    while obj is not None and id(obj) not in seen:
        seen.add(id(obj))
        if inspect.ismethod(obj):
            return obj.__func__ if obj.__self__ is instance else None
        obj = getattr(obj, "__wrapped__", None)
    return None


class OwnInstance:
    """The test method of a plain test class, called on an instance of the call's
    own: the one given as ``INSTANCE`` (its fixtures were set up on it), else a
    new one, made as pytest makes one (the class called without arguments).
    Calling it returns what the method returns (a coroutine for ``async def``)."""

    def __init__(self, function: Callable[..., Any], cls: type) -> None:
        self.function = function
        self.cls = cls  # picklable by reference, as the function is

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        __tracebackhide__ = True
        instance = kwargs.pop(INSTANCE, None)
        if instance is None:
            instance = self.cls()
        return self.function(instance, *args, **kwargs)

    def __repr__(self) -> str:
        return f"<{self.function.__qualname__} on an instance of each call's own>"


def own_instance(item: pytest.Function) -> OwnInstance | None:
    """The item's test method, called on an instance of each call's own; None when
    the item is no method of a plain test class (a function, a static method)
    or is wrapped in a way that hides which method it is."""
    instance = item.instance
    if instance is None or isinstance(instance, unittest.TestCase):
        return None
    function = method_function(item.obj, instance)
    if function is None:
        return None
    return OwnInstance(function, type(instance))


# unittest sets these on the instance it runs; they are no state the test keeps
_RUN_STATE = frozenset({"_outcome", "_subtest"})


def kept_state(instance: object) -> list[str]:
    """The attributes the test (its setup, fixtures or body) stored on ``instance``
    that a new instance of its class, made as pytest (or unittest) makes one,
    does not have."""
    try:
        if isinstance(instance, unittest.TestCase):
            name = instance._testMethodName
            # the concurrent run stands in for the method while it runs (testcase.py)
            made = {*vars(type(instance)(name)), name}
        else:
            made = set(vars(type(instance)()))
        return sorted(name for name in vars(instance)
                      if name not in made and name not in _RUN_STATE)
    except Exception:  # noqa: BLE001 - no __dict__, a class that cannot be made again:
        return []  # nothing to tell


def shared_note(instance: object, shown: int = 4) -> str | None:
    """The note a failed run with shared fixtures gets when its workers shared one
    instance of the test's class that the test keeps state on; None otherwise
    (nothing was kept on ``self``: sharing it cannot have mattered)."""
    names = kept_state(instance)
    if not names:
        return None
    listed = ", ".join(f"self.{name}" for name in names[:shown])
    if len(names) > shown:
        listed += f" and {len(names) - shown} more"
    return (f"note: every worker ran on one instance of {type(instance).__qualname__} "
            f"(fixtures='shared'), and the test keeps state on it ({listed}): what one "
            "worker stores there, the others see. With fixtures='per-worker' (the default "
            "under --concurrency-apply) every call gets an instance of its own, as pytest "
            "makes one per test.")


def note_shared(failures: BaseException, instance: object) -> None:
    """A failed run whose workers shared ``instance`` of the test's class (None for
    a function), which the test keeps state on: the report says so."""
    if instance is None:
        return
    note = shared_note(instance)
    if note is not None:
        failures.add_note(note)
