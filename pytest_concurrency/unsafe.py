"""Tests that cannot run concurrently in a mode, and why: they run once, serially,
and are reported as such ("serial: uses monkeypatch"), never as a concurrent pass.

Thread-unsafe test techniques change what the whole process shares: fixtures
such as ``monkeypatch``, ``capfd`` or ``recwarn``, and, read from the test's
source (and the functions it calls in its own module, two levels deep),
``unittest.mock.patch``, ``warnings.catch_warnings``, ``pytest.warns`` and
``pytest.deprecated_call``, and what replaces a process-wide setting or hook:
assigning ``sys.stdout``/``sys.stderr``/``sys.stdin``, ``sys.excepthook``,
``sys.unraisablehook``, ``threading.excepthook`` (also with ``setattr``),
setting or deleting ``os.environ[...]``, and calls such as ``os.chdir``,
``os.putenv``, ``os.environ.update``, ``signal.signal``,
``contextlib.redirect_stdout`` or ``sys.setrecursionlimit``.
``@pytest.mark.thread_unsafe(reason=...)`` (the marker of pytest-run-parallel)
says so explicitly.  Process mode isolates memory, so a test that is only
thread-unsafe runs normally there.

Async tests whose async fixtures are bound to an event loop that the workers
cannot share (pytest-asyncio fixtures on a class-, module- or session-scoped
loop; anyio's fixtures, which all run on its one test runner) also run
serially, in every mode.
"""

from __future__ import annotations

import ast
import functools
import inspect
import linecache
import textwrap
from collections.abc import Callable, Iterable
from typing import Any

import pytest

THREAD_LIKE = ("thread", "hybrid", "explore")  # modes whose workers share a process
SERIAL = pytest.StashKey[str]()  # why an item runs once, serially (set at collection)

# Fixtures whose effect is process-global: one worker's changes are every worker's.
# (capsys and caplog are routed per worker instead: see percall.py.)
UNSAFE_FIXTURES = ("capfd", "capfdbinary", "capsysbinary", "capteesys", "monkeypatch",
                   "recwarn", "mocker", "class_mocker", "module_mocker", "package_mocker",
                   "session_mocker")
# (module, name) of calls that patch, catch or set process-wide; "*" is any name.
UNSAFE_CALLS = frozenset({
    ("unittest.mock", "*"), ("mock", "*"), ("warnings", "catch_warnings"),
    ("pytest", "warns"), ("pytest", "deprecated_call"), ("_pytest.recwarn", "warns"),
    ("_pytest.recwarn", "deprecated_call"),
    # the working directory, the environment, the umask: every thread's
    ("os", "chdir"), ("os", "fchdir"), ("os", "putenv"), ("os", "unsetenv"), ("os", "umask"),
    ("os.environ", "update"), ("os.environ", "pop"), ("os.environ", "popitem"),
    ("os.environ", "setdefault"), ("os.environ", "clear"),
    # handlers, hooks and settings of the whole interpreter
    ("signal", "signal"), ("signal", "setitimer"), ("signal", "alarm"),
    ("contextlib", "redirect_stdout"), ("contextlib", "redirect_stderr"),
    ("sys", "setrecursionlimit"), ("sys", "setswitchinterval"),
    ("sys", "set_int_max_str_digits"), ("threading", "settrace"),
    ("threading", "setprofile"), ("threading", "settrace_all_threads"),
    ("threading", "setprofile_all_threads"), ("socket", "setdefaulttimeout"),
    ("locale", "setlocale"), ("logging", "disable"),
})
# (module, attribute) whose assignment replaces what every thread uses
UNSAFE_ATTRIBUTES = frozenset({
    ("sys", "stdout"), ("sys", "stderr"), ("sys", "stdin"), ("sys", "__stdout__"),
    ("sys", "__stderr__"), ("sys", "__stdin__"), ("sys", "excepthook"),
    ("sys", "unraisablehook"), ("sys", "displayhook"), ("sys", "breakpointhook"),
    ("threading", "excepthook"), ("os", "environ"),
})
UNSAFE_ITEMS = frozenset({("os", "environ")})  # (module, name) whose items every thread sees
_PATCHERS = ("patch", "patch.object", "patch.dict", "patch.multiple")
DEPTH = 2  # called functions of the test's module looked into


def serial_reason(item: pytest.Item, mode: str, detect: bool = True,
                  shared_fixtures: bool = False) -> str | None:
    """Why ``item`` must run serially in ``mode`` (None: it may run concurrently).
    ``shared_fixtures``: all workers get the same function-scoped fixtures."""
    if mode in THREAD_LIKE:
        marker = item.get_closest_marker("thread_unsafe")
        if marker is not None:
            reason = marker.kwargs.get("reason") or (marker.args[0] if marker.args else None)
            return f"marked thread_unsafe: {reason}" if reason else "marked thread_unsafe"
        if detect:
            found = unsafe_fixture(getattr(item, "fixturenames", ()))
            if found:
                return f"uses {found}"
            technique = unsafe_call(_function_of(item))
            if technique:
                return technique
    return shared_loop(item, shared_fixtures, explore=mode == "explore")


def _function_of(item: pytest.Item) -> Callable[..., Any] | None:
    """The test's function, without making a unittest TestCase for it."""
    method = getattr(item, "method_name", None)
    if method is not None and item.parent is not None:
        return getattr(getattr(item.parent, "obj", None), method, None)
    return getattr(item, "obj", None)


def unsafe_fixture(fixturenames: Iterable[str]) -> str | None:
    names = set(fixturenames)
    return next((name for name in UNSAFE_FIXTURES if name in names), None)


# ---------------------------------------------------------------- the test's source


def unsafe_call(function: Callable[..., Any] | None) -> str | None:
    """The first thread-unsafe technique ``function`` uses, as the reason says it
    ('uses unittest.mock.patch', 'assigns sys.stderr', 'sets os.environ[...]'),
    looking into the functions it calls from its own module."""
    if function is None:
        return None
    try:
        return _scan(inspect.unwrap(function), 0)
    except Exception:  # noqa: BLE001 - an unreadable source is no reason to run serially
        return None


@functools.lru_cache(maxsize=4096)
def _scan(function: Callable[..., Any], depth: int) -> str | None:
    tree: ast.AST | None = _definition(function)
    if tree is None:  # not found in its module's tree: its own source, parsed alone
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(function)))
        except (OSError, TypeError, SyntaxError, ValueError):
            return None
    names = _Names(getattr(function, "__globals__", {}))
    for node in ast.walk(tree):
        found = _assigned(node, names)
        if found:
            return found
        if isinstance(node, ast.Call):
            found = names.set_by_setattr(node) or _uses(names.unsafe(node.func))
            if found:
                return found
            if depth < DEPTH:
                callee = names.local_function(node.func, function)
                if callee is not None and callee is not function:
                    found = _scan(callee, depth + 1)
                    if found:
                        return found
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for decorator in node.decorator_list:  # @mock.patch(...) on the test
                target = decorator.func if isinstance(decorator, ast.Call) else decorator
                found = _uses(names.unsafe(target))
                if found:
                    return found
    return None


def _uses(technique: str | None) -> str | None:
    return f"uses {technique}" if technique else None


def _assigned(node: ast.AST, names: _Names) -> str | None:
    """What process-wide ``node`` assigns or deletes (``sys.stderr = ...``, ``del
    os.environ["X"]``), said as the reason: 'assigns sys.stderr'."""
    if isinstance(node, ast.Assign):
        targets = node.targets
    elif isinstance(node, (ast.AugAssign, ast.AnnAssign)):
        targets = [node.target] if node.value is not None else []
    elif isinstance(node, ast.Delete):
        targets = node.targets
    else:
        return None
    deleting = isinstance(node, ast.Delete)
    while targets:
        target = targets.pop()
        if isinstance(target, (ast.Tuple, ast.List)):
            targets.extend(target.elts)
        elif isinstance(target, ast.Starred):
            targets.append(target.value)
        elif isinstance(target, ast.Attribute):
            found = names.global_attribute(target)
            if found:
                return f"{'deletes' if deleting else 'assigns'} {found}"
        elif isinstance(target, ast.Subscript):
            found = names.global_items(target.value)
            if found:
                return f"{'deletes' if deleting else 'sets'} {found}[...]"
    return None


_Defs = dict[int, list[ast.FunctionDef | ast.AsyncFunctionDef]]


def _definition(function: Callable[..., Any]) -> ast.AST | None:
    """The ``def`` of ``function`` in its module's syntax tree, which is parsed once
    for all the tests of the module (``inspect.getsource`` would read and
    tokenize the file again for every test); None where it cannot be told
    which ``def`` it is."""
    code = getattr(function, "__code__", None)
    filename = getattr(code, "co_filename", None)
    if code is None or not isinstance(filename, str):
        return None
    linecache.checkcache(filename)
    lines = linecache.getlines(filename, getattr(function, "__globals__", None))
    if not lines:
        return None
    found = _defs(filename, "".join(lines)).get(code.co_firstlineno, [])
    return found[0] if len(found) == 1 and found[0].name == function.__name__ else None


@functools.lru_cache(maxsize=64)
def _defs(filename: str, source: str) -> _Defs:
    """Every ``def`` of a module by its first line (its first decorator's, as in
    ``co_firstlineno``)."""
    try:
        tree = ast.parse(source, filename)
    except (SyntaxError, ValueError):
        return {}
    defs: _Defs = {}
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            defs.setdefault(first, []).append(node)
    return defs


class _Names:
    """Resolves the names a function's source uses through its module's globals."""

    def __init__(self, namespace: dict[str, Any]) -> None:
        self.namespace = namespace

    def _dotted(self, node: ast.expr) -> list[str] | None:
        parts = []
        while isinstance(node, ast.Attribute):
            parts.append(node.attr)
            node = node.value
        if not isinstance(node, ast.Name):
            return None
        parts.append(node.id)
        return parts[::-1]

    def _resolve(self, node: ast.expr) -> tuple[str, list[str]] | None:
        """The module a dotted name starts from and the names after it:
        ``os.environ.update`` and, after ``from os import environ``,
        ``environ.update`` are both ('os', ['environ', 'update'])."""
        parts = self._dotted(node)
        if not parts:
            return None
        value = self.namespace.get(parts[0])
        if value is None:
            return None
        if inspect.ismodule(value):
            module, rest = value.__name__, parts[1:]
        else:
            module = getattr(value, "__module__", None) or ""
            rest = [getattr(value, "__name__", parts[0]), *parts[1:]]
        return (module, rest) if rest else None

    def global_attribute(self, node: ast.expr) -> str | None:
        """``sys.stderr`` if ``node`` is such a process-wide attribute."""
        resolved = self._resolve(node)
        if resolved is None or len(resolved[1]) != 1:
            return None
        module, (name,) = resolved
        return f"{module}.{name}" if (module, name) in UNSAFE_ATTRIBUTES else None

    def global_items(self, node: ast.expr) -> str | None:
        """``os.environ`` if ``node`` names a mapping every thread sees."""
        resolved = self._resolve(node)
        if resolved is None or len(resolved[1]) != 1:
            return None
        module, (name,) = resolved
        return f"{module}.{name}" if (module, name) in UNSAFE_ITEMS else None

    def set_by_setattr(self, call: ast.Call) -> str | None:
        """``setattr(sys, "stderr", ...)``: 'assigns sys.stderr'."""
        if not (isinstance(call.func, ast.Name) and call.func.id == "setattr"
                and self.namespace.get("setattr", setattr) is setattr
                and len(call.args) >= 2 and isinstance(call.args[1], ast.Constant)
                and isinstance(call.args[1].value, str)):
            return None
        found = self.global_attribute(ast.Attribute(call.args[0], call.args[1].value, ast.Load()))
        return f"assigns {found}" if found else None

    def unsafe(self, node: ast.expr) -> str | None:
        resolved = self._resolve(node)
        if resolved is None:
            return None
        module, rest = resolved
        for depth in range(len(rest)):  # unittest.mock + patch.object, or mock + patch
            prefix = ".".join([module, *rest[:depth]]) if depth else module
            name = rest[depth]
            if (prefix, name) in UNSAFE_CALLS or (prefix, "*") in UNSAFE_CALLS:
                shown = ".".join([prefix, *rest[depth:]])
                return shown if not shown.startswith("_pytest.recwarn") else \
                    "pytest." + rest[-1]
        return None

    def local_function(self, node: ast.expr,
                       caller: Callable[..., Any]) -> Callable[..., Any] | None:
        """A plain function of the caller's own module that ``node`` names."""
        if not isinstance(node, ast.Name):
            return None
        value = self.namespace.get(node.id)
        if inspect.isfunction(value) and value.__module__ == getattr(caller, "__module__", None):
            return value
        return None


# ---------------------------------------------------------------- event loops


def shared_loop(item: pytest.Item, shared_fixtures: bool = False,
                explore: bool = False) -> str | None:
    """Why the item's async fixtures tie all its workers to one event loop, if they
    do: pytest-asyncio fixtures on a loop wider than the function, any anyio
    async fixture (anyio runs them all on its one test runner), and any async
    fixture at all when the workers share their fixtures.  ``explore`` runs the
    workers as tasks of a loop of its own: any async fixture runs on another."""
    info = getattr(item, "_fixtureinfo", None)
    if info is None or not is_coroutine_test(item):
        return None
    config = item.config
    default = _ini(config, "asyncio_default_fixture_loop_scope")
    names = list(getattr(item, "fixturenames", ()))
    for name in names:
        for fixturedef in info.name2fixturedefs.get(name, ())[-1:]:
            # pytest-asyncio < 1 replaces an async fixture's function by a synchronous
            # wrapper (functools.wraps): the coroutine function is what it wraps
            func = inspect.unwrap(fixturedef.func)
            if not (inspect.iscoroutinefunction(func) or inspect.isasyncgenfunction(func)):
                continue
            if explore:
                runner = "anyio's test runner" if "anyio_backend" in names and \
                    not _asyncio_fixture(func) else "pytest-asyncio's event loop"
                return (f"async fixture {name!r} runs on {runner}, and explore runs the "
                        "test's tasks on an event loop of its own")
            if "anyio_backend" in names and not _asyncio_fixture(func):
                return (f"async fixture {name!r} runs on anyio's test runner, one event "
                        "loop the workers cannot share")
            if shared_fixtures:
                return (f"async fixture {name!r} is shared by all workers and bound to one "
                        "event loop (fixtures='per-worker' gives each worker its own)")
            scope = getattr(func, "_loop_scope", None) or \
                (fixturedef.scope if default in (None, "", "fixture-scope") else default)
            if scope != "function":
                return (f"async fixture {name!r} runs on a {scope}-scoped event loop "
                        "that the workers cannot share")
    return None


def _asyncio_fixture(func: Callable[..., Any]) -> bool:
    return bool(getattr(func, "_force_asyncio_fixture", False))


def _ini(config: pytest.Config, name: str) -> Any:
    try:
        return config.getini(name)
    except (ValueError, KeyError):
        return None


def is_coroutine_test(item: pytest.Item) -> bool:
    """Whether the item's test function is a coroutine function (whatever plugin
    wrapped it)."""
    function = getattr(item, "obj", None)
    return function is not None and inspect.iscoroutinefunction(inspect.unwrap(function))
