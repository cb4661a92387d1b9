"""Sending a test body to spawn/forkserver children.

The target is pickled by reference (module + qualified name) and the fixture
values by value.  Test modules and conftests were imported by pytest with
their asserts rewritten; a fresh child would import the plain source and lose
``assert 3 == 4`` detail, so the child installs an import hook that rewrites
exactly the modules pytest rewrote in the parent before it unpickles anything.
"""

from __future__ import annotations

import ast
import importlib.abc
import importlib.util
import io
import pickle
import sys
from collections.abc import Mapping
from typing import Any


class ShippingError(Exception):
    """Something the workers need cannot be pickled; the message names it."""


def pack(target, args: tuple, kwargs: Mapping[str, Any], start_method: str,
         arg_kind: str = "argument") -> bytes:
    """Pickle ``(target, args, kwargs)``, naming the culprit if that fails."""
    try:
        return pickle.dumps((target, args, dict(kwargs)))
    except Exception:  # noqa: BLE001 - find which part failed below
        pass
    parts = [("the target " + getattr(target, "__qualname__", repr(target)), target)]
    parts += [(f"{arg_kind} {i}", value) for i, value in enumerate(args)]
    parts += [(f"{arg_kind} {name!r}", value) for name, value in kwargs.items()]
    for what, value in parts:
        try:
            pickle.dumps(value)
        except Exception as exc:  # noqa: BLE001
            raise ShippingError(
                f"{what} ({_type_name(value)}) cannot be pickled for "
                f"start_method={start_method!r}: {type(exc).__name__}: {exc}. "
                f"Use start_method='fork', or make it picklable (define it at "
                f"module level, or build it inside the test body)."
            ) from None
    raise ShippingError(f"the test body cannot be pickled for start_method={start_method!r}")


def _type_name(value) -> str:
    kind = type(value)
    return kind.__qualname__ if kind.__module__ == "builtins" else \
        f"{kind.__module__}.{kind.__qualname__}"


def unpack(data: bytes):
    return pickle.loads(data)


def rewritten_modules() -> dict[str, str]:
    """name -> file of every module pytest imported with asserts rewritten."""
    from _pytest.assertion.rewrite import AssertionRewritingHook

    return {
        name: module.__file__
        for name, module in list(sys.modules.items())
        if isinstance(getattr(module, "__loader__", None), AssertionRewritingHook)
        and getattr(module, "__file__", None)
    }


class _RewritingFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def __init__(self, modules: Mapping[str, str]):
        self.modules = dict(modules)

    def find_spec(self, fullname, path=None, target=None):
        origin = self.modules.get(fullname)
        if origin is None:
            return None
        return importlib.util.spec_from_file_location(fullname, origin, loader=self)

    def is_package(self, fullname) -> bool:
        return self.modules[fullname].endswith("__init__.py")

    def create_module(self, spec):
        return None

    def exec_module(self, module) -> None:
        from _pytest.assertion.rewrite import rewrite_asserts

        path = module.__spec__.origin
        with open(path, "rb") as f:
            source = f.read()
        tree = ast.parse(source, filename=path)
        rewrite_asserts(tree, source, path)
        exec(compile(tree, path, "exec", dont_inherit=True), module.__dict__)


class _StubConfig:
    """Just enough of pytest's Config for assertion comparison detail."""

    def __init__(self, verbosity: int):
        self.verbosity = verbosity

    def get_verbosity(self, _kind=None) -> int:
        return self.verbosity

    def get_terminal_writer(self):
        from _pytest._io import TerminalWriter

        return TerminalWriter(io.StringIO())


def install_rewriting(modules: Mapping[str, str], verbosity: int = 0) -> None:
    """In a fresh child: rewrite asserts of ``modules`` and explain comparisons."""
    sys.meta_path.insert(0, _RewritingFinder(modules))
    from _pytest.assertion import util

    config = _StubConfig(verbosity)

    def reprcompare(op, left, right):
        try:
            lines = util.assertrepr_compare(config, op, left, right)
        except Exception:  # noqa: BLE001 - fall back to the plain "assert a == b"
            return None
        if not lines:
            return None
        text = "\n~".join(line.replace("\n", "\\n") for line in lines)
        return text.replace("%", "%%")

    util._reprcompare = reprcompare
