"""An asyncio event loop that runs nothing by itself: every callback is a decision.

``ExploreLoop`` implements :class:`asyncio.AbstractEventLoop` from its public
interface only.  ``call_soon``, ``call_at`` and ``call_soon_threadsafe`` hand
each callback, as an :class:`Entry`, to the loop's :class:`Driver` (the schedule
of an ``explore`` run), which decides when it runs; ``time()`` is the driver's
virtual clock (see ``aiotime``).  asyncio's tasks, futures, timeouts and primitives use nothing
else of a loop (they reach it through these methods, from Python or C), so
they run on it unchanged on every CPython the plugin supports.

What it relies on, beyond the methods above: ``asyncio.Handle`` and
``asyncio.TimerHandle`` made with their documented arguments (callback, args,
loop, context) and checked with ``cancelled()``; ``TimerHandle.cancel()``
calling back the loop's ``_timer_handle_cancelled`` when the loop has one
(ours does: the driver drops the timer at once); and
``asyncio.events._set_running_loop``, the hook uvloop and every other loop use
to become the thread's running loop.  Network I/O, subprocesses and signals
are not explored: those methods raise, saying so.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import dataclasses
import weakref
from collections.abc import Callable, Coroutine
from typing import Any, Protocol

from .. import originals

Site = tuple[str, int, str]


@dataclasses.dataclass(eq=False, slots=True)
class Entry:
    """One scheduled callback: what runs, in which context, and the handle its
    scheduler got back (to see whether it was cancelled)."""

    handle: asyncio.Handle
    callback: Callable[..., object]
    args: tuple[Any, ...]
    context: contextvars.Context
    when: float | None  # call_at's time; None for call_soon

    def cancelled(self) -> bool:
        return self.handle.cancelled()

    def run(self) -> None:
        """Run the callback in its context; what it raises is the caller's."""
        self.context.run(self.callback, *self.args)


class Driver(Protocol):
    """What decides when the loop's callbacks run (``aioschedule.AsyncSchedule``)."""

    now: float  # the loop's time(): virtual seconds, from the real monotonic() at its start

    def add(self, entry: Entry) -> None:
        """A callback was scheduled from the loop's own thread."""

    def external(self, entry: Entry) -> None:
        """A callback was scheduled through ``call_soon_threadsafe`` (any thread)."""

    def offload(self, job: concurrent.futures.Future[Any], result: asyncio.Future[Any],
                site: Site | None) -> None:
        """``run_in_executor`` submitted ``job``; ``result`` is what the task awaits."""

    def timer_cancelled(self, handle: asyncio.TimerHandle) -> None:
        """A timer's handle was cancelled before it fired."""

    def callback_error(self, entry: Entry | None, context: dict[str, Any]) -> None:
        """The loop's exception handler was called (``entry``: while running it)."""

    def caller_site(self) -> Site | None:
        """The user-code site that is calling into the loop now, if any."""


class DaemonExecutor(concurrent.futures.Executor):
    """The default executor of ``run_in_executor`` and ``to_thread``: a daemon thread
    per job, so that a job that never returns cannot keep the process alive."""

    def __init__(self) -> None:
        self.threads: list[Any] = []

    def submit(self, fn: Callable[..., Any], /, *args: Any,
               **kwargs: Any) -> concurrent.futures.Future[Any]:
        import threading

        future: concurrent.futures.Future[Any] = concurrent.futures.Future()

        def work() -> None:
            if not future.set_running_or_notify_cancel():
                return
            try:
                result = fn(*args, **kwargs)
            except BaseException as exc:  # noqa: BLE001 - handed to the awaiting task
                future.set_exception(exc)
            else:
                future.set_result(result)

        thread = threading.Thread(target=work, daemon=True, name="explore-worker-executor")
        self.threads = [each for each in self.threads if each.is_alive()]
        self.threads.append(thread)
        originals.start(thread)  # the real start, whatever a test put in its place
        return future


def _no_io(name: str) -> Callable[..., Any]:
    def method(self: ExploreLoop, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(
            f"loop.{name}(): explore's event loop runs tasks, timers and callbacks on a "
            "virtual clock, not network I/O, pipes, subprocesses or signals; replace the "
            "I/O with an in-memory fake to explore this code, or run it in thread mode")

    method.__name__ = name
    return method


class ExploreLoop(asyncio.AbstractEventLoop):
    """The event loop of an exploration (see the module docstring): one for all its
    schedules, as a program has one loop for its run, so that what binds to the loop
    at first use and outlives a schedule (a module-level ``asyncio.Lock``, ``Event``,
    ``Queue``) works in the next; :meth:`attach` makes it new for each schedule, and
    it is closed between them."""

    def __init__(self, driver: Driver, executor: concurrent.futures.Executor) -> None:
        self._exception_handler: Callable[[asyncio.AbstractEventLoop, dict[str, Any]],
                                          object] | None = None
        # the tasks of the schedules it served: one woken now is not the schedule's
        self.retired: weakref.WeakSet[asyncio.Task[Any]] = weakref.WeakSet()
        self.attach(driver, executor)

    def attach(self, driver: Driver, executor: concurrent.futures.Executor) -> None:
        """Serve ``driver``'s schedule, as a loop made for it would: open, not running,
        none of the settings an earlier schedule's code made (task factory, exception
        handler, debug, default executor)."""
        self._driver = driver
        self._default_executor = executor
        self._running = False
        self._closed = False
        self._debug = False
        self._task_factory: Any = None
        self._exception_handler = None
        self.running_entry: Entry | None = None  # the callback running now, if any
        self.slow_callback_duration = 0.1

    def __repr__(self) -> str:
        return f"<ExploreLoop running={self._running} closed={self._closed}>"

    # ---- running ------------------------------------------------------------------
    def start(self) -> None:
        """Become the calling thread's running loop (the driver runs the callbacks)."""
        asyncio.events._set_running_loop(self)
        self._running = True

    def finish(self) -> None:
        self._running = False
        asyncio.events._set_running_loop(None)

    def run_forever(self) -> None:
        raise RuntimeError("This event loop is already running" if self._running else
                           "explore's event loop runs only under its schedule")

    def run_until_complete(self, future: Any) -> Any:
        self.run_forever()

    def stop(self) -> None:
        """Nothing to stop: the schedule ends when its tasks do."""

    def is_running(self) -> bool:
        return self._running

    def is_closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        self._running = False
        self._closed = True

    async def shutdown_asyncgens(self) -> None:
        """Async generators are finalized as Python finalizes them."""

    async def shutdown_default_executor(self, timeout: float | None = None) -> None:
        """The executor belongs to the exploration, which shuts it down."""

    # ---- scheduling callbacks ----------------------------------------------------------
    def _check_closed(self) -> None:
        if self._closed:
            raise RuntimeError("Event loop is closed")

    def call_soon(self, callback: Callable[..., object], *args: Any,  # type: ignore[override]
                  context: contextvars.Context | None = None) -> asyncio.Handle:
        self._check_closed()
        if context is None:
            context = contextvars.copy_context()
        handle = asyncio.Handle(callback, args, self, context)
        self._driver.add(Entry(handle, callback, args, context, None))
        return handle

    def call_later(self, delay: float, callback: Callable[..., object], *args: Any,  # type: ignore[override]
                   context: contextvars.Context | None = None) -> asyncio.TimerHandle:
        if delay is None:
            raise TypeError("delay must not be None")
        return self.call_at(self.time() + delay, callback, *args, context=context)

    def call_at(self, when: float, callback: Callable[..., object], *args: Any,  # type: ignore[override]
                context: contextvars.Context | None = None) -> asyncio.TimerHandle:
        if when is None:
            raise TypeError("when cannot be None")
        self._check_closed()
        if context is None:
            context = contextvars.copy_context()
        handle = asyncio.TimerHandle(when, callback, args, self, context)
        self._driver.add(Entry(handle, callback, args, context, when))
        return handle

    def _timer_handle_cancelled(self, handle: asyncio.TimerHandle) -> None:
        self._driver.timer_cancelled(handle)

    def time(self) -> float:
        return self._driver.now

    def call_soon_threadsafe(self, callback: Callable[..., object], *args: Any,  # type: ignore[override]
                             context: contextvars.Context | None = None) -> asyncio.Handle:
        self._check_closed()
        if context is None:
            context = contextvars.copy_context()
        handle = asyncio.Handle(callback, args, self, context)
        self._driver.external(Entry(handle, callback, args, context, None))
        return handle

    # ---- futures and tasks -------------------------------------------------------------
    def create_future(self) -> asyncio.Future[Any]:
        return asyncio.Future(loop=self)

    def create_task(self, coro: Coroutine[Any, Any, Any] | Any, *, name: str | None = None,
                    context: contextvars.Context | None = None,
                    **kwargs: Any) -> asyncio.Task[Any]:
        self._check_closed()
        if self._task_factory is None:
            if context is not None:
                kwargs["context"] = context
            task: asyncio.Task[Any] = asyncio.Task(coro, loop=self, name=name, **kwargs)
        else:
            if context is not None:
                kwargs["context"] = context
            task = self._task_factory(self, coro, **kwargs)
            if name is not None:
                task.set_name(name)
        return task

    def set_task_factory(self, factory: Any) -> None:
        if factory is not None and not callable(factory):
            raise TypeError("task factory must be a callable or None")
        self._task_factory = factory

    def get_task_factory(self) -> Any:
        return self._task_factory

    # ---- threads -------------------------------------------------------------------------
    def run_in_executor(self, executor: concurrent.futures.Executor | None,  # type: ignore[override]
                        func: Callable[..., Any], *args: Any) -> asyncio.Future[Any]:
        self._check_closed()
        site = self._driver.caller_site()
        job = (executor or self._default_executor).submit(func, *args)
        result = self.create_future()
        self._driver.offload(job, result, site)
        return result

    def set_default_executor(self, executor: Any) -> None:
        if not isinstance(executor, concurrent.futures.ThreadPoolExecutor):
            raise TypeError("executor must be ThreadPoolExecutor")
        self._default_executor = executor

    # ---- errors and debug ------------------------------------------------------------
    def get_exception_handler(self) -> Any:
        return self._exception_handler

    def set_exception_handler(self, handler: Any) -> None:
        if handler is not None and not callable(handler):
            raise TypeError(f"A callable object or None is expected, got {handler!r}")
        self._exception_handler = handler

    def default_exception_handler(self, context: dict[str, Any]) -> None:
        self._driver.callback_error(self.running_entry, context)

    def call_exception_handler(self, context: dict[str, Any]) -> None:
        if self._exception_handler is None:
            self.default_exception_handler(context)
            return
        try:
            self._exception_handler(self, context)
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:  # noqa: BLE001 - as asyncio does: report, go on
            self.default_exception_handler({"message": "Unhandled error in exception handler",
                                            "exception": exc, "context": context})

    def get_debug(self) -> bool:
        return self._debug

    def set_debug(self, enabled: bool) -> None:
        self._debug = enabled

    # ---- what explore does not run -----------------------------------------------------
    getaddrinfo = _no_io("getaddrinfo")
    getnameinfo = _no_io("getnameinfo")
    create_connection = _no_io("create_connection")
    create_server = _no_io("create_server")
    sendfile = _no_io("sendfile")
    start_tls = _no_io("start_tls")
    create_unix_connection = _no_io("create_unix_connection")
    create_unix_server = _no_io("create_unix_server")
    connect_accepted_socket = _no_io("connect_accepted_socket")
    create_datagram_endpoint = _no_io("create_datagram_endpoint")
    connect_read_pipe = _no_io("connect_read_pipe")
    connect_write_pipe = _no_io("connect_write_pipe")
    subprocess_shell = _no_io("subprocess_shell")
    subprocess_exec = _no_io("subprocess_exec")
    add_reader = _no_io("add_reader")  # type: ignore[assignment]
    remove_reader = _no_io("remove_reader")
    add_writer = _no_io("add_writer")  # type: ignore[assignment]
    remove_writer = _no_io("remove_writer")
    sock_recv = _no_io("sock_recv")
    sock_recv_into = _no_io("sock_recv_into")
    sock_recvfrom = _no_io("sock_recvfrom")
    sock_recvfrom_into = _no_io("sock_recvfrom_into")
    sock_sendall = _no_io("sock_sendall")
    sock_sendto = _no_io("sock_sendto")
    sock_connect = _no_io("sock_connect")
    sock_accept = _no_io("sock_accept")
    sock_sendfile = _no_io("sock_sendfile")
    add_signal_handler = _no_io("add_signal_handler")  # type: ignore[assignment]
    remove_signal_handler = _no_io("remove_signal_handler")
