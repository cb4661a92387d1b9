"""pytest's private names the plugin needs and pytest does not export, in one place.

Everything else uses pytest's public API (``pytest.ExceptionInfo``,
``pytest.fail.Exception``, ``pytest.Item.stash``...).  Each name here says what
it is used for; all were checked with pytest 8.2, 8.3, 8.4, 9.0 and 9.2, the
oldest pytest the plugin supports and the newest at the time of writing (tox
runs the suite on 8.2 and on the newest).
"""

from __future__ import annotations

import ast
import contextlib
import dataclasses
import functools
from collections.abc import Callable, Collection, Iterator
from typing import Any

import pytest

# A test report's longrepr for a WorkerFailures group: pytest's own TerminalRepr
# protocol, with a ReprFileLocation as ``reprcrash`` for the short summary and JUnit.
# The types of a traceback filter given to ExceptionInfo.getrepr() (in workers).
from _pytest._code.code import ReprFileLocation, TerminalRepr, Traceback, TracebackEntry

# Formats ExceptionInfo.getrepr() to text in workers, as pytest would show it.
from _pytest._io import TerminalWriter

# What capsys.readouterr() returns; a worker's own capsys returns the same.
from _pytest.capture import CaptureResult

# Concurrent unittest.TestCase methods are TestCaseFunction items with a mode.
from _pytest.unittest import TestCaseFunction

__all__ = ["CaptureResult", "FixtureSet", "ReprFileLocation", "TerminalRepr",
           "TerminalWriter", "TestCaseFunction", "Traceback", "TracebackEntry", "argnames",
           "assertrepr_compare", "detach_fixtures", "failed_fixture", "fill_fixtures",
           "fresh_funcargs", "instance_of", "without_function_fixtures",
           "ini_names", "install_reprcompare", "rewrite_asserts", "rewritten_by_pytest",
           "teardown_fixtures", "write_raw"]


def write_raw(writer: TerminalWriter, text: str) -> None:
    """Write ``text`` to the terminal as it is, flushed, without pytest counting it
    into the current line's width (the progress display writes backspaces):
    ``TerminalWriter.write_raw`` from pytest 8.3, its file before (checked with
    8.2 and 9.2)."""
    raw = getattr(writer, "write_raw", None)
    if raw is not None:
        raw(text, flush=True)
        return
    writer._file.write(text)
    writer._file.flush()


def argnames(item: pytest.Function) -> tuple[str, ...]:
    """The names of the test function's own arguments (the fixtures it gets)."""
    return tuple(item._fixtureinfo.argnames)


def fresh_funcargs(item: pytest.Function) -> dict[str, Any]:
    """Tear down the item's function-scoped fixtures and set them up again; the
    test function's arguments, fresh.  explore mode runs a whole-body test once
    per schedule, each on fresh fixtures, the way pytest-rerunfailures re-runs a
    test's setup."""
    request = item._request
    defs = request._fixture_defs
    fresh = [name for name, fixturedef in defs.items() if fixturedef.scope == "function"]
    for name in reversed(fresh):
        # finish() is typed for a SubRequest but reads only the request's node (pytest 8
        # also hands the request to pytest_fixture_post_finalizer): the item's own serves
        defs[name].finish(request)  # type: ignore[arg-type]
    for name in fresh:
        del defs[name]
        item.funcargs.pop(name, None)
    request._fillfixtures()
    return {name: item.funcargs[name] for name in argnames(item)}


@dataclasses.dataclass
class FixtureSet:
    """One instance of a test's function-scoped fixtures, detached from pytest's
    cache: its values, and the teardown of each fixture in setup order.  Per-worker
    fixtures keep one per call of the body alive at the same time, which pytest's
    one-instance-per-fixture cache cannot."""

    values: dict[str, Any]
    teardowns: list[tuple[str, list[Callable[[], object]]]]
    failed: str | None = None  # the fixture whose setup raised, if one did


def fill_fixtures(item: pytest.Function) -> None:
    """Set up every fixture the item requests that is not set up (pytest's own
    setup of a test, which caches what it makes)."""
    __tracebackhide__ = True
    item._request._fillfixtures()


def detach_fixtures(item: pytest.Function, keep: Collection[str] = ()) -> FixtureSet:
    """Take the item's function-scoped fixture instances (all but ``keep``) out of
    pytest's cache: the next :func:`fill_fixtures` makes new ones, and these are
    torn down only by :func:`teardown_fixtures`.

    Internals used (pytest 8.2 to 9.2): ``request._fixture_defs`` (name ->
    FixtureDef of what is set up), ``FixtureDef.cached_result`` ((value, key,
    exception)) and ``FixtureDef._finalizers`` (the fixture's teardown, and a
    ``partial(finish)`` of every fixture that depends on it)."""
    request = item._request
    defs = request._fixture_defs
    taken = {name: fixturedef for name, fixturedef in defs.items()
             if fixturedef.scope == "function" and name not in keep}
    finishes = {id(fixturedef) for fixturedef in taken.values()}

    def own(finalizer: Callable[[], object]) -> bool:
        """Not the finish() of a fixture being detached (its own teardown comes
        with it, in order)."""
        func = getattr(finalizer, "func", None) if isinstance(finalizer, functools.partial) \
            else None
        return not (getattr(func, "__name__", "") == "finish"
                    and id(getattr(func, "__self__", None)) in finishes)

    for fixturedef in defs.values():  # wider-scoped ones too: what they depend on
        fixturedef._finalizers[:] = [fin for fin in fixturedef._finalizers if own(fin)]
    detached = FixtureSet({}, [])
    for name, fixturedef in taken.items():
        cached = fixturedef.cached_result
        if cached is not None and cached[2] is None:
            detached.values[name] = cached[0]
        elif cached is not None:
            detached.failed = detached.failed or name
        detached.teardowns.append((name, list(fixturedef._finalizers)))
        fixturedef.cached_result = None
        fixturedef._finalizers.clear()
        del defs[name]
        item.funcargs.pop(name, None)
    return detached


@contextlib.contextmanager
def without_function_fixtures(item: pytest.Function) -> Iterator[None]:
    """While in the block, the item asks for none of its function-scoped fixtures
    (its setup makes only the wider-scoped ones).  ``item.fixturenames`` is the
    fixture closure pytest shares between the items of one test function, so it
    is put back as it was, whatever the setup appended to it."""
    names = item.fixturenames
    original = list(names)
    defs = item._fixtureinfo.name2fixturedefs
    names[:] = [name for name in names
                if not (defs.get(name) and defs[name][-1].scope == "function")]
    try:
        yield
    finally:
        names[:] = original


@contextlib.contextmanager
def instance_of(item: pytest.Function, instance: object) -> Iterator[None]:
    """While in the block, ``instance`` is the item's instance of its class: what
    ``request.instance`` gives, so the fixtures set up in the block (the class's
    own, ``setup_method``'s) are bound to it, as pytest binds them to the
    instance it makes per test.  ``Function.instance`` reads ``_instance``
    (pytest 8.2 to 9.2), made once by ``_getinstance()``."""
    saved = item.instance
    item._instance = instance
    try:
        yield
    finally:
        item._instance = saved


def failed_fixture(item: pytest.Function) -> str | None:
    """The function-scoped fixture of the item whose setup just raised (pytest
    caches the exception on its FixtureDef), or None."""
    for name, fixturedefs in item._fixtureinfo.name2fixturedefs.items():
        for fixturedef in fixturedefs:
            cached = fixturedef.cached_result
            if fixturedef.scope == "function" and cached is not None and cached[2] is not None:
                return name
    return None


def teardown_fixtures(fixtures: FixtureSet,
                      item: pytest.Item | None = None) -> list[tuple[str, BaseException]]:
    """Tear a detached set down, last set up first; what each fixture raised.
    ``tmp_path``'s teardown reads (and deletes) the item's phase results, which
    pytest stores once per item: each set's teardown gets them."""
    if item is not None:
        from _pytest.tmpdir import tmppath_result_key

        item.stash.setdefault(tmppath_result_key, {})
    errors = []
    for name, finalizers in reversed(fixtures.teardowns):
        for finalizer in reversed(finalizers):
            try:
                finalizer()
            except BaseException as exc:  # noqa: BLE001 - every fixture is torn down
                errors.append((name, exc))
    fixtures.teardowns.clear()
    return errors


def rewritten_by_pytest(module: object) -> bool:
    """Whether pytest imported ``module`` with its asserts rewritten."""
    from _pytest.assertion.rewrite import AssertionRewritingHook

    return isinstance(getattr(module, "__loader__", None), AssertionRewritingHook)


def rewrite_asserts(tree: ast.Module, source: bytes, path: str) -> None:
    """Rewrite the asserts of a module's AST in place, as pytest's import hook does."""
    from _pytest.assertion.rewrite import rewrite_asserts as rewrite

    rewrite(tree, source, path)


def assertrepr_compare(config: Any, op: str, left: object, right: object) -> list[str] | None:
    """pytest's explanation of a failed ``left op right`` comparison."""
    from _pytest.assertion import pytest_assertrepr_compare

    return pytest_assertrepr_compare(config=config, op=op, left=left, right=right)


def install_reprcompare(explain: Callable[[str, object, object], str | None]) -> None:
    """Make rewritten asserts in this process explain comparisons with ``explain``
    (pytest sets the same hook for the duration of a test)."""
    from _pytest.assertion import util

    util._reprcompare = explain


def ini_names(config: pytest.Config) -> list[str]:
    """The names of every registered ini value."""
    return list(getattr(config._parser, "_inidict", {}))
