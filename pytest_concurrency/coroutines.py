"""Coroutine test bodies: each worker runs the test on an event loop of its own.

A plain ``async def`` test and a pytest-asyncio one run on a fresh
``asyncio.Runner`` per call, or, with per-worker fixtures under pytest-asyncio,
on the runner its own fixtures were set up on (pytest-asyncio's
function-scoped ``_function_scoped_runner``, set up afresh for every call).
An anyio test runs with ``anyio.run`` on the backend its ``anyio_backend``
fixture names.  pytest-asyncio and anyio are never imported here unless the
test uses them.

In explore mode the workers are tasks on one event loop of explore's own
(:func:`task_body`): the coroutine function itself is what each runs, and
anyio code runs on it as on any asyncio loop.  trio is out of scope.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping
from typing import Any

from . import context

RUNNER = "_function_scoped_runner"  # pytest-asyncio's fixture: a function-scoped Runner


def is_coroutine(function: Callable[..., Any]) -> bool:
    """Whether ``function`` (unwrapped from whatever plugin wrapped it) is a coroutine
    function."""
    return inspect.iscoroutinefunction(inspect.unwrap(function))


def body(function: Callable[..., Any], funcargs: Mapping[str, Any]) -> Callable[..., Any]:
    """A synchronous body that runs the coroutine test ``function`` (possibly wrapped
    by pytest-asyncio) on the calling worker's own event loop.  ``funcargs`` are the
    test's fixture values, which tell an anyio test's backend."""
    coroutine = inspect.unwrap(function)
    backend = funcargs.get("anyio_backend")
    if backend is not None:
        name, options = (backend, {}) if isinstance(backend, str) else backend
        return functools.partial(_run_anyio, coroutine, name, dict(options))
    return functools.partial(_run_asyncio, coroutine)


def task_body(function: Callable[..., Any],
              funcargs: Mapping[str, Any]) -> Callable[..., Any]:
    """The coroutine function that explore runs as each worker's task (whatever
    plugin wrapped it); pytest.skip for anyio's trio backend, which explore does
    not run."""
    backend = funcargs.get("anyio_backend")
    name = backend if isinstance(backend, str) or backend is None else backend[0]
    if name not in (None, "asyncio"):
        import pytest

        pytest.skip(f"explore runs asyncio tasks; anyio's {name!r} backend is not explored "
                    "(trio is out of scope: run it in thread mode)")
    return functools.partial(_without_runner, inspect.unwrap(function))


async def _without_runner(coroutine: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    kwargs.pop(RUNNER, None)  # the task runs on explore's loop, not pytest-asyncio's
    return await coroutine(*args, **kwargs)


def awaited(value: Any) -> Any:
    """``value``, or, when it is a coroutine (a worker called an ``async def``, or a
    lambda that returns a coroutine), what it returns, run to its end on an event
    loop of the calling worker's own: ``concurrency.run(async_fn)`` and coroutine
    actors in thread, process and hybrid mode, as explore runs them as tasks."""
    if not inspect.iscoroutine(value):
        return value
    import asyncio

    with asyncio.Runner() as runner:
        return runner.run(value)


def _run_asyncio(coroutine: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    import asyncio

    runner = kwargs.pop(RUNNER, None)
    if isinstance(runner, asyncio.Runner):  # per-worker: where its fixtures live
        # in the runner's context (what its async fixtures set), told whose call it is
        return runner.run(context.in_call(coroutine(*args, **kwargs)))
    with asyncio.Runner() as own:
        return own.run(coroutine(*args, **kwargs))


def _run_anyio(coroutine: Callable[..., Any], backend: str, options: dict[str, Any],
               *args: Any, **kwargs: Any) -> Any:
    import anyio

    kwargs.pop(RUNNER, None)
    return anyio.run(functools.partial(coroutine, *args, **kwargs), backend=backend,
                     backend_options=options)
