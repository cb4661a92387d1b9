"""Give live functions their rewritten code for the length of an exploration.

A module's functions were compiled when it was imported; ``rewrite`` compiles
its source again with hooks.  The two compilations have the same tree of code
objects (functions, lambdas, classes, comprehensions in the same places), so a
live function's code - found by equality in a fresh compilation of the
original - has a twin at the same place in the rewritten tree.  ``Swap.start``
finds every live function of the instrumented files (``gc``) and sets its
``__code__`` to the twin; ``Swap.stop`` sets them back, and those the rewritten
code made meanwhile (closures, lambdas) too.

A test module is compiled by pytest after rewriting its ``assert`` statements
(the module's loader is pytest's ``AssertionRewritingHook``): the original is
compiled the same way, so that the code objects compare equal and pytest's
assertion messages stay.  A file whose code cannot be matched (changed since
it was imported, compiled by another import hook) keeps its code: calls into it
are calls into code explore cannot see.

Compilations are cached per file (its path, size and modification time), the
hook-bound code per module namespace.
"""

from __future__ import annotations

import ast
import gc
import os
import sys
import sysconfig
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from types import CodeType, FunctionType, ModuleType
from typing import Any

from . import hooks
from .rewrite import (
    CELL_PREFIX,
    GLOBALS,
    GLOBALS_PROXY,
    HOOKS,
    RewriteError,
    code_tree,
    compile_rewritten,
    fill,
)
from .scopes import CellKey, ScopeError

PLAIN, PYTEST = "plain", "pytest"  # how the module was compiled at import


@dataclass
class Compiled:
    """One file compiled twice: as imported, and rewritten (with placeholders)."""

    originals: dict[CodeType, int]  # code object -> its (first) place in the tree
    codes: list[CodeType]  # the original code objects, by place
    rewritten: CodeType
    cells: list[CellKey]
    builtin_names: frozenset[str]


@dataclass
class Bound:
    """A file's rewritten code for one module namespace: placeholder-free."""

    namespace: dict[str, Any]
    twins: list[CodeType]  # by place in the tree


_COMPILED: dict[tuple[str, int, int, str], Compiled | str] = {}  # (path, size, mtime, how)
_BOUND: dict[tuple[int, int], Bound] = {}  # (id(Compiled), id(namespace))


def _variant(namespace: dict[str, Any]) -> tuple[str, Any]:
    """How the module of ``namespace`` was compiled: by pytest's assertion
    rewriting (with its config) or plainly."""
    loader = namespace.get("__loader__")
    if type(loader).__name__ == "AssertionRewritingHook":
        return PYTEST, getattr(loader, "config", None)
    return PLAIN, None


def compiled(filename: str, how: str, config: Any = None) -> Compiled | str:
    """The file's two compilations, or why it cannot be rewritten."""
    try:
        stat = os.stat(filename)
    except OSError as exc:
        return f"no source ({exc.strerror})"
    key = (filename, stat.st_size, stat.st_mtime_ns, how)
    found = _COMPILED.get(key)
    if found is None:
        found = _COMPILED[key] = _compile(filename, how, config)
    return found


def _compile(filename: str, how: str, config: Any) -> Compiled | str:
    try:
        with open(filename, "rb") as handle:
            source = handle.read()
        text = source.decode("utf-8") if b"coding" not in source[:200] else None
        if text is None:
            import tokenize
            with open(filename, "rb") as handle:
                encoding = tokenize.detect_encoding(handle.readline)[0]
            text = source.decode(encoding)
        original_tree = ast.parse(source, filename)
        rewritten_tree = ast.parse(source, filename)
        if how == PYTEST:
            from _pytest.assertion.rewrite import rewrite_asserts

            rewrite_asserts(original_tree, source, filename, config)
            rewrite_asserts(rewritten_tree, source, filename, config)
        original = compile(original_tree, filename, "exec", dont_inherit=True)
        rewritten, cells, builtin_names = compile_rewritten(rewritten_tree, text, filename)
    except (OSError, SyntaxError, ValueError, UnicodeDecodeError, RewriteError,
            ScopeError) as exc:
        return f"{type(exc).__name__}: {exc}"
    originals = code_tree(original)
    twins = code_tree(rewritten)
    if len(originals) != len(twins) or any(
            (a.co_name, a.co_firstlineno) != (b.co_name, b.co_firstlineno)
            for a, b in zip(originals, twins, strict=True)):
        return "the rewritten code does not line up with the original"
    places: dict[CodeType, int] = {}
    for place, code in enumerate(originals):
        places.setdefault(code, place)
    return Compiled(places, originals, rewritten, cells, builtin_names)


def bound(found: Compiled, namespace: dict[str, Any]) -> Bound:
    """``found``'s rewritten code with the hooks, ``namespace`` and closure keys in
    place of its placeholders."""
    key = (id(found), id(namespace))
    done = _BOUND.get(key)
    if done is not None and done.namespace is namespace:
        return done
    proxy = hooks.GlobalsProxy(namespace)
    values: dict[str, object] = {HOOKS: hooks, GLOBALS: namespace, GLOBALS_PROXY: proxy}
    for index, cell in enumerate(found.cells):
        values[f"{CELL_PREFIX}{index}"] = cell
    twins = code_tree(fill(found.rewritten, values.__getitem__))
    done = _BOUND[key] = Bound(namespace, twins)
    hooks.STATE.builtin_names[id(namespace)] = found.builtin_names
    return done


@dataclass
class Swap:
    """The functions of one exploration whose code is swapped (see the module
    docstring); ``is_user(filename)`` says which files are instrumented."""

    is_user: Callable[[str], bool]
    swapped: list[tuple[FunctionType, CodeType]] = field(default_factory=list)
    twins: dict[int, CodeType] = field(default_factory=dict)  # id(twin) -> original
    keep: list[CodeType] = field(default_factory=list)  # keeps the twins' ids unique
    failed: dict[str, str] = field(default_factory=dict)  # file -> why not rewritten
    roots: list[object] = field(default_factory=list)  # what the walk for functions starts at
    _places: dict[tuple[int, int], Bound] = field(default_factory=dict)

    def seen(self, code: CodeType) -> bool:
        """Whether ``code`` is rewritten code of this exploration."""
        return id(code) in self.twins

    def start(self, roots: Iterable[object] = ()) -> None:
        """Swap every live function of the instrumented files (``roots``: objects
        the exploration starts from, its actors)."""
        self.roots = list(roots)
        functions = live_functions(self.is_user, self.roots)
        try:
            for function in functions:
                self.swap(function)
        except BaseException:
            self.stop()
            raise

    def swap(self, function: FunctionType) -> bool:
        """Give ``function`` its rewritten code; False if it has none."""
        code = function.__code__
        if id(code) in self.twins:
            return True
        twin = self.twin(function)
        if twin is None:
            return False
        function.__code__ = twin
        self.swapped.append((function, code))
        return True

    def twin(self, function: FunctionType) -> CodeType | None:
        code = function.__code__
        namespace = function.__globals__
        if not self.is_user(code.co_filename):
            return None
        how, config = _variant(namespace)
        for variant in (how, PLAIN) if how != PLAIN else (PLAIN,):
            found = compiled(code.co_filename, variant, config)
            if isinstance(found, str):
                self.failed.setdefault(code.co_filename, found)
                continue
            place = found.originals.get(code)
            if place is None:
                continue
            twins = self._bind(found, namespace)
            twin = twins.twins[place]
            if len(twin.co_freevars) != len(function.__closure__ or ()):
                return None
            return twin
        self.failed.setdefault(code.co_filename, "its code is not the one in the file")
        return None

    def _bind(self, found: Compiled, namespace: dict[str, Any]) -> Bound:
        done = bound(found, namespace)
        key = (id(found), id(namespace))
        if key not in self._places:
            self._places[key] = done
            for code, twin in zip(found.codes, done.twins, strict=True):
                self.twins[id(twin)] = code
                self.keep.append(twin)
        return done

    def stop(self) -> None:
        """Every function back to its original code, those made by rewritten code
        during the exploration too."""
        for function, code in reversed(self.swapped):
            function.__code__ = code
        self.swapped.clear()
        if self.twins:
            for function in live_functions(self.is_user, self.roots, self.twins):
                original = self.twins.get(id(function.__code__))
                if original is not None:
                    function.__code__ = original

    def swap_class(self, kind: type) -> None:
        """Rewrite the methods of a user class (met after the start: one made by a
        module imported during the exploration)."""
        for value in vars(kind).values():
            for function in _functions_of(value):
                if self.is_user(function.__code__.co_filename):
                    self.swap(function)


FREE_THREADED = bool(sysconfig.get_config_var("Py_GIL_DISABLED"))
WALK_LIMIT = 500_000  # objects the walk for live functions visits at most


def live_functions(is_user: Callable[[str], bool], roots: Iterable[object],
                   twins: dict[int, CodeType] | None = None) -> list[FunctionType]:
    """The live functions whose code is in an instrumented file (or, given
    ``twins``, is one of them): every one gc knows.  On a free-threaded build
    gc.get_objects() misses objects once a thread has ended (3.13), so there they
    are found by a walk from the instrumented modules and ``roots``."""
    def wanted(function: FunctionType) -> bool:
        code = function.__code__
        return id(code) in twins if twins is not None else is_user(code.co_filename)

    if not FREE_THREADED:
        return [obj for obj in gc.get_objects() if type(obj) is FunctionType and wanted(obj)]
    start: list[object] = list(roots)
    for module in list(sys.modules.values()):
        filename = getattr(module, "__file__", None)
        if isinstance(filename, str) and is_user(filename):
            start.append(vars(module))
    found: list[FunctionType] = []
    seen: set[int] = set()
    work = start
    while work and len(seen) < WALK_LIMIT:
        obj = work.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        kind = type(obj)
        if kind is FunctionType:
            if wanted(obj):  # type: ignore[arg-type]
                found.append(obj)  # type: ignore[arg-type]
        elif kind is ModuleType or kind in _LEAVES:
            continue
        elif isinstance(obj, type) and not is_user(_class_file(obj)):
            continue
        work.extend(gc.get_referents(obj))
    return found


_LEAVES = (str, bytes, int, float, complex, bool, type(None), CodeType, bytearray, range)


def _class_file(kind: type) -> str:
    module = sys.modules.get(kind.__module__)
    filename = getattr(module, "__file__", None)
    return filename if isinstance(filename, str) else ""


def _functions_of(value: object) -> list[FunctionType]:
    """The functions a class attribute holds: itself, a static or class method's,
    a property's getter, setter and deleter."""
    if type(value) is FunctionType:
        return [value]
    if isinstance(value, (staticmethod, classmethod)):
        return _functions_of(value.__func__)
    if isinstance(value, property):
        return [f for f in (value.fget, value.fset, value.fdel) if type(f) is FunctionType]
    return []

