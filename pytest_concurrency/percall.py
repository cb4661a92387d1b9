"""Per-worker fixtures: every call of the body (each worker, each iteration) gets
its own instance of every function-scoped fixture the test requests, as in a
plain run; wider scopes (class, module, session) stay shared, since that is
where the state under test lives.

Where the setups run: pytest's fixture machinery is not thread-safe, so each
call's fixtures are set up by the thread that runs the workers (the pytest
process's main thread; in process and hybrid mode the child's), one call at a
time, *before* the iteration's barrier, and torn down after every worker has
finished the iteration.  No fixture runs while the workers race, so setting up
never changes the timing of the race under test.

Two fixtures are process-global by nature and are routed per worker instead of
set up again: ``caplog`` (every record is stamped with the call that logged it,
each worker's ``caplog`` sees only its own, and the levels it sets apply to its
own records: see loglevels.py) and, where a process runs
several workers, ``capsys`` (writes to ``sys.stdout``/``sys.stderr`` from a
worker go to that worker's buffer, read by its own ``readouterr()``).
"""

from __future__ import annotations

import contextlib
import contextvars
import io
import logging
import sys
from collections.abc import Callable, Iterator, Mapping
from typing import Any, BinaryIO, TextIO, cast

import pytest

from . import compat, context, coroutines, instances, loglevels, standins
from .context import CallKey, WorkerInfo

_STAMP = loglevels.STAMP  # LogRecord attribute: the call that logged it


class FixtureSetupError(Exception):
    """A fixture could not be set up for one call of the body; ``where`` says which
    fixture, for which worker and iteration."""

    def __init__(self, where: str, exc: BaseException) -> None:
        super().__init__(f"{where}: {standins.summary(exc)}")
        self.where = where


class FixtureTeardownError(Exception):
    """A fixture's teardown failed after one call of the body."""


# ---------------------------------------------------------------- caplog


class _Stamping:
    """A LogRecord factory that stamps each record with the worker call that made it."""

    def __init__(self, previous: Callable[..., logging.LogRecord]) -> None:
        self.previous = previous

    def __call__(self, *args: Any, **kwargs: Any) -> logging.LogRecord:
        record = self.previous(*args, **kwargs)
        setattr(record, _STAMP, context.call_key())
        return record


class WorkerCaplog:
    """The ``caplog`` of one call: pytest's ``caplog``, seeing only the records
    that call logged, and setting levels for that call's records only."""

    def __init__(self, caplog: pytest.LogCaptureFixture, key: CallKey,
                 levels: loglevels.CallLevels) -> None:
        self._caplog = caplog
        self._key = key
        self._levels = levels

    def set_level(self, level: int | str, logger: str | None = None) -> None:
        """Capture this call's records of ``logger`` (the root logger if None)
        from ``level`` on, until the call ends; another worker's level is its own."""
        self._levels.set(self._key, level, logger, self._caplog.handler)

    def at_level(self, level: int | str,
                 logger: str | None = None) -> contextlib.AbstractContextManager[None]:
        """``set_level`` for the ``with`` block only: this call's levels are put back
        after it, whatever the other workers' blocks do meanwhile."""
        return loglevels.at_level(self._levels, self._key, level, logger,
                                  self._caplog.handler)

    def _mine(self, records: list[logging.LogRecord]) -> list[logging.LogRecord]:
        # under the handler's lock, which its emit and forget_records hold: on a
        # free-threaded build a list read while another worker's clear() rewrites
        # it in place was seen without this worker's record (1 worker of 4)
        with self._caplog.handler.lock or contextlib.nullcontext():
            return [r for r in records if getattr(r, _STAMP, None) == self._key]

    @property
    def handler(self) -> Any:  # pytest's LogCaptureHandler
        return self._caplog.handler

    @property
    def records(self) -> list[logging.LogRecord]:
        return self._mine(self._caplog.records)

    def get_records(self, when: str) -> list[logging.LogRecord]:
        return self._mine(self._caplog.get_records(when))  # type: ignore[arg-type,unused-ignore]

    @property
    def text(self) -> str:
        handler = self._caplog.handler
        return "".join(handler.format(record) + "\n" for record in self.records)

    @property
    def record_tuples(self) -> list[tuple[str, int, str]]:
        return [(r.name, r.levelno, r.getMessage()) for r in self.records]

    @property
    def messages(self) -> list[str]:
        return [r.getMessage() for r in self.records]

    def clear(self) -> None:
        """Forget this call's records (the other workers' stay)."""
        forget_records(self._caplog, self._key)

    def __getattr__(self, name: str) -> Any:  # filtering, handler...
        return getattr(self._caplog, name)


def forget_records(caplog: pytest.LogCaptureFixture, key: CallKey) -> None:
    """Take the records of the call ``key`` out of ``caplog``'s handler."""
    handler = caplog.handler
    with handler.lock or contextlib.nullcontext():
        handler.records[:] = [r for r in handler.records if getattr(r, _STAMP, None) != key]


# ---------------------------------------------------------------- capsys


class _Routed:
    """``sys.stdout`` or ``sys.stderr`` while workers capture: a worker's writes go
    to its own buffer, anything else's to the stream underneath."""

    def __init__(self, underlying: TextIO, buffers: dict[CallKey, io.StringIO]) -> None:
        self._underlying = underlying
        self._buffers = buffers
        self._bytes: _RoutedBytes | None = None

    def write(self, text: str) -> int:
        key = context.call_key()
        buffer = self._buffers.get(key) if key is not None else None
        return (buffer if buffer is not None else self._underlying).write(text)

    def writelines(self, lines: Iterator[str]) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        self._underlying.flush()

    @property
    def buffer(self) -> _RoutedBytes:
        """The binary stream underneath, routed the same way (``capsys`` sees the
        bytes a call writes to ``sys.stdout.buffer``, as pytest's does)."""
        if self._bytes is None:  # one, as a stream has (``sys.stdout.buffer is ...``)
            self._bytes = _RoutedBytes(self._underlying.buffer, self._buffers,
                                       getattr(self._underlying, "encoding", None) or "utf-8")
        return self._bytes

    def __getattr__(self, name: str) -> Any:  # encoding, isatty, fileno...
        return getattr(self._underlying, name)


class _RoutedBytes:
    """``sys.stdout.buffer`` while workers capture: a worker's bytes are decoded
    into its own buffer, anything else's go to the binary stream underneath."""

    def __init__(self, underlying: BinaryIO, buffers: dict[CallKey, io.StringIO],
                 encoding: str) -> None:
        self._underlying = underlying
        self._buffers = buffers
        self._encoding = encoding

    def write(self, data: bytes) -> int:
        key = context.call_key()
        buffer = self._buffers.get(key) if key is not None else None
        if buffer is None:
            return self._underlying.write(data)
        buffer.write(bytes(data).decode(self._encoding, "replace"))
        return len(data)

    def flush(self) -> None:
        self._underlying.flush()

    def __getattr__(self, name: str) -> Any:  # fileno, isatty...
        return getattr(self._underlying, name)


class _Router:
    """Routes writes of workers to ``sys.stdout`` and ``sys.stderr`` per call."""

    def __init__(self) -> None:
        self.out: dict[CallKey, io.StringIO] = {}
        self.err: dict[CallKey, io.StringIO] = {}
        self._saved: tuple[TextIO, TextIO] | None = None

    def install(self) -> None:
        if self._saved is None:
            self._saved = (sys.stdout, sys.stderr)
            # a TextIO in all but name: it writes, flushes and delegates the rest
            sys.stdout = cast(TextIO, _Routed(sys.stdout, self.out))
            sys.stderr = cast(TextIO, _Routed(sys.stderr, self.err))

    def uninstall(self) -> None:
        if self._saved is not None:
            if isinstance(sys.stdout, _Routed):
                sys.stdout = self._saved[0]
            if isinstance(sys.stderr, _Routed):
                sys.stderr = self._saved[1]
            self._saved = None

    def open(self, key: CallKey) -> None:
        self.out[key], self.err[key] = io.StringIO(), io.StringIO()

    def take(self, key: CallKey) -> tuple[str, str]:
        """What the call wrote since it last read, and forget it."""
        out, err = self.out[key], self.err[key]
        text = out.getvalue(), err.getvalue()
        for buffer in (out, err):
            buffer.seek(0)
            buffer.truncate()
        return text

    def close(self, key: CallKey) -> None:
        """The call is over: what it wrote and did not read goes to the stream
        underneath (pytest's capture shows it with the test's report)."""
        out, err = self.take(key) if key in self.out else ("", "")
        self.out.pop(key, None)
        self.err.pop(key, None)
        if self._saved is not None:
            if out:
                self._saved[0].write(out)
            if err:
                self._saved[1].write(err)


class WorkerCapsys:
    """The ``capsys`` of one call: ``readouterr()`` returns what that call wrote."""

    def __init__(self, router: _Router, key: CallKey) -> None:
        self._router = router
        self._key = key

    def readouterr(self) -> compat.CaptureResult[str]:
        return compat.CaptureResult(*self._router.take(self._key))

    @contextlib.contextmanager
    def disabled(self) -> Iterator[None]:
        """Write through to the terminal inside the block, as pytest's does."""
        out, err = self._router.out.pop(self._key), self._router.err.pop(self._key)
        try:
            yield
        finally:
            self._router.out[self._key], self._router.err[self._key] = out, err


# ---------------------------------------------------------------- fixture sets


class FixtureSets:
    """Fresh function-scoped fixtures for every call of one test item's body.

    ``threads_per_process`` above 1 routes ``capsys`` per worker; ``caplog`` is
    always routed.  Implements ``runners.Calls``: ``setup(info)`` gives the
    keyword arguments of one call, ``teardown(info)`` tears them down.
    """

    ROUTED = ("caplog", "capsys")

    def __init__(self, item: pytest.Function, threads_per_process: int) -> None:
        self.item = item
        self.argnames = compat.argnames(item)
        fixtures = set(item.fixturenames)
        self.keep = {name for name in self.ROUTED if name in fixtures
                     and (name == "caplog" or threads_per_process > 1)}
        self.live: dict[CallKey, compat.FixtureSet] = {}
        self.ready: dict[CallKey, compat.FixtureSet] = {}  # set up ahead of their call
        self.order: list[CallKey] = []  # the sets still up, in the order they were set up
        self.contexts: dict[CallKey, contextvars.Context] = {}  # where each set was made
        self.finished: set[CallKey] = set()  # calls over whose sets wait for later ones
        self.router = _Router() if "capsys" in self.keep else None
        # a coroutine test's body runs on pytest-asyncio's runner of its call; a
        # plain function gets only the arguments it takes
        self.coroutine = coroutines.is_coroutine(item.obj)
        # a method of a plain test class: every call runs on an instance of its
        # own, the one its fixtures were set up on
        self.own = instances.own_instance(item)
        self.instances: dict[CallKey, object] = {}
        self._factory: Callable[..., logging.LogRecord] | None = None
        self.levels = loglevels.CallLevels()  # what each call's caplog set
        if "caplog" in self.keep:
            self._factory = logging.getLogRecordFactory()
            logging.setLogRecordFactory(_Stamping(self._factory))

    # -- the set pytest made at setup

    def adopt(self, info: WorkerInfo) -> None:
        """Keep the fixtures pytest set up for the item as ``info``'s (its first call)."""
        key = (info.index, info.iteration)
        self.ready[key] = compat.detach_fixtures(self.item, self.keep)
        self.contexts[key] = contextvars.copy_context()
        if self.own is not None:
            self.instances[key] = self.item.instance
        self.order.append(key)

    def drop(self) -> None:
        """Tear down the fixtures pytest set up for the item: every call makes its
        own (process mode, where the children set them up).  What the children
        would each make lazily, for all of them, is made now: pytest's base
        temporary directory (made by one child, it is emptied by the next)."""
        factory = self.item.funcargs.get("tmp_path_factory")
        if isinstance(factory, pytest.TempPathFactory):
            factory.getbasetemp()
        self._raise_teardown(compat.teardown_fixtures(
            compat.detach_fixtures(self.item, self.keep), self.item), None)

    def prepare(self, info: WorkerInfo) -> None:
        """Set up ``info``'s fixtures now, ahead of its call (in pytest's setup
        phase, so that a failing fixture is an error at setup)."""
        key = (info.index, info.iteration)
        if key not in self.ready:
            self.ready[key] = self._make(info)
            self.order.append(key)

    # -- runners.Calls

    def setup(self, info: WorkerInfo) -> Mapping[str, Any]:
        key = (info.index, info.iteration)
        fixtures = self.ready.pop(key, None)
        if fixtures is None:
            fixtures = self._make(info)
            self.order.append(key)
        self.live[key] = fixtures
        kwargs = {name: fixtures.values[name] if name in fixtures.values
                  else self.item.funcargs[name] for name in self.argnames}
        if "caplog" in self.keep and "caplog" in kwargs:
            caplog = self.item.funcargs["caplog"]
            assert isinstance(caplog, pytest.LogCaptureFixture)
            kwargs["caplog"] = WorkerCaplog(caplog, key, self.levels)
        if self.coroutine and coroutines.RUNNER in fixtures.values:  # its own event loop
            kwargs[coroutines.RUNNER] = fixtures.values[coroutines.RUNNER]
        if self.own is not None:  # the instance its fixtures were set up on
            kwargs[instances.INSTANCE] = self.instances[key]
        if self.router is not None and "capsys" in kwargs:
            self.router.install()
            self.router.open(key)
            kwargs["capsys"] = WorkerCapsys(self.router, key)
        return kwargs

    def teardown(self, info: WorkerInfo) -> None:
        """``info``'s call is over.  Sets are torn down last set up first, as
        pytest tears down nested fixtures (one that saves and restores process
        state, ``os.chdir`` or ``mock.patch``, restores what the set before it
        made): a set waits until every set made after it is torn down."""
        key = (info.index, info.iteration)
        if self.router is not None:
            self.router.close(key)
        if key not in self.live:
            return
        self.finished.add(key)
        first: tuple[list[tuple[str, BaseException]], WorkerInfo] | None = None
        for done in unwind(self.order, self.finished):
            self.finished.discard(done)
            self.contexts.pop(done, None)
            self.instances.pop(done, None)
            self.levels.forget(done)
            caplog = self.item.funcargs.get("caplog")
            if isinstance(caplog, pytest.LogCaptureFixture):  # its records go with its call
                forget_records(caplog, done)  # (explore's next schedule reuses its key)
            at = info._replace(index=done[0], iteration=done[1])
            with context.preparing(at):
                errors = compat.teardown_fixtures(self.live.pop(done), self.item)
            if errors and first is None:
                first = errors, at
        if first is not None:
            self._raise_teardown(*first)

    def close(self) -> None:
        """After the run: tear down whatever is still set up (calls the run never
        reached, or left behind when it stopped), last set up first, and put
        back what was routed."""
        errors = []
        for key in reversed(self.order):
            fixtures = self.live.pop(key, None) or self.ready.pop(key)
            errors += compat.teardown_fixtures(fixtures, self.item)
        self.order.clear()
        self.finished.clear()
        self.contexts.clear()
        self.instances.clear()
        if self.router is not None:
            for key in list(self.router.out):
                self.router.close(key)
            self.router.uninstall()
        self.levels.close()
        if self._factory is not None:
            logging.setLogRecordFactory(self._factory)
            self._factory = None
        self._raise_teardown(errors, None)

    # -- helpers

    def _make(self, info: WorkerInfo) -> compat.FixtureSet:
        __tracebackhide__ = True
        key = (info.index, info.iteration)
        # pytest's Class.newinstance(): the class called without arguments
        instance = self.own.cls() if self.own is not None else None
        bound = compat.instance_of(self.item, instance) if self.own is not None \
            else contextlib.nullcontext()
        try:
            with context.preparing(info), bound:
                compat.fill_fixtures(self.item)
        except BaseException as exc:
            name = compat.failed_fixture(self.item)
            compat.teardown_fixtures(compat.detach_fixtures(self.item, self.keep), self.item)
            what = f"fixture {name!r}" if name else "a fixture"
            raise FixtureSetupError(
                f"{what} failed to set up for worker {info.index} in iteration "
                f"{info.iteration}", exc) from exc
        self.contexts[key] = contextvars.copy_context()
        if self.own is not None:
            self.instances[key] = instance
        return compat.detach_fixtures(self.item, self.keep)

    @staticmethod
    def _raise_teardown(errors: list[tuple[str, BaseException]],
                        info: WorkerInfo | None) -> None:
        if not errors:
            return
        name, exc = errors[0]
        whose = f" after worker {info.index}'s call in iteration {info.iteration}" \
            if info is not None else ""
        raise FixtureTeardownError(
            f"fixture {name!r} failed to tear down{whose}: "
            f"{standins.summary(exc)}") from exc


class InContext:
    """The body, every call of it run in a copy of the context (context
    variables) its fixtures were set up in: what fixtures set is visible to it,
    and nothing a call sets leaks into the next call on the same pooled worker
    thread, as each test of a plain run starts from the session's context;
    threads the body starts with a copy of its context capture for its call.
    With per-worker fixtures that is the context of the call's own set, else
    the one the item's fixtures were set up in (the caller's now)."""

    def __init__(self, body: Callable[..., Any], sets: FixtureSets | None) -> None:
        self.body = body
        self.sets = sets
        self.captured = contextvars.copy_context()

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        __tracebackhide__ = True
        return self.context().run(self._call, context.call_key(), args, kwargs)

    def _call(self, key: CallKey | None, args: tuple[Any, ...],
              kwargs: dict[str, Any]) -> Any:
        __tracebackhide__ = True
        context.CALL.set(key)  # for the threads the body starts with its context
        return self.body(*args, **kwargs)

    def context(self) -> contextvars.Context:
        """A copy of the context the calling worker's call runs in."""
        key = context.call_key()
        made = None if self.sets is None or key is None else self.sets.contexts.get(key)
        return (self.captured if made is None else made).copy()


def unwind(order: list[CallKey], finished: set[CallKey]) -> list[CallKey]:
    """Take from the end of ``order`` (the sets up, in setup order) every set
    whose call is ``finished``, up to the first that is not: the sets to tear
    down now, in the order to tear them down."""
    taken = []
    while order and order[-1] in finished:
        taken.append(order.pop())
    return taken
