"""pytest's private names the plugin needs and pytest does not export, in one place.

Everything else uses pytest's public API (``pytest.ExceptionInfo``,
``pytest.fail.Exception``, ``pytest.Item.stash``...).  Each name here says what
it is used for; all were checked with pytest 8.2, 8.3, 8.4, 9.0 and 9.2, the
oldest pytest the plugin supports and the newest at the time of writing (tox
runs the suite on 8.2 and on the newest).
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from typing import Any

import pytest

# A test report's longrepr for a WorkerFailures group: pytest's own TerminalRepr
# protocol, with a ReprFileLocation as ``reprcrash`` for the short summary and JUnit.
# The types of a traceback filter given to ExceptionInfo.getrepr() (in workers).
from _pytest._code.code import ReprFileLocation, TerminalRepr, Traceback, TracebackEntry

# Formats ExceptionInfo.getrepr() to text in workers, as pytest would show it.
from _pytest._io import TerminalWriter

# Concurrent unittest.TestCase methods are TestCaseFunction items with a mode.
from _pytest.unittest import TestCaseFunction

__all__ = ["ReprFileLocation", "TerminalRepr", "TerminalWriter", "TestCaseFunction",
           "Traceback", "TracebackEntry", "argnames", "assertrepr_compare", "fresh_funcargs",
           "ini_names", "install_reprcompare", "rewrite_asserts", "rewritten_by_pytest"]


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
