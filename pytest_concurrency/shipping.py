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
from collections.abc import Callable, Mapping, Sequence
from importlib.machinery import ModuleSpec
from types import ModuleType
from typing import TYPE_CHECKING, Any

from . import compat, standins, texts

if TYPE_CHECKING:
    import pytest


class ShippingError(Exception):
    """Something the workers need cannot be pickled; the message names it."""


def pack(target: Callable[..., Any], args: tuple[Any, ...], kwargs: Mapping[str, Any],
         start_method: str, arg_kind: str = "argument") -> bytes:
    """Pickle ``(target, args, kwargs)``, naming the culprit if that fails."""
    try:
        return pickle.dumps((target, args, dict(kwargs)))
    except Exception:  # noqa: BLE001 - find which part failed below
        pass
    parts = [("the target " + getattr(target, "__qualname__", texts.short_repr(target)),
              target)]
    parts += [(f"{arg_kind} {i}", value) for i, value in enumerate(args)]
    parts += [(f"{arg_kind} {name!r}", value) for name, value in kwargs.items()]
    for what, value in parts:
        try:
            pickle.dumps(value)
        except Exception as exc:  # noqa: BLE001
            raise ShippingError(
                f"{what} ({_type_name(value)}) cannot be pickled for "
                f"start_method={start_method!r}: {standins.summary(exc)}. "
                f"Use start_method='fork', or make it picklable (define it at "
                f"module level, or build it inside the test body)."
            ) from None
    raise ShippingError(f"the test body cannot be pickled for start_method={start_method!r}")


def _type_name(value: object) -> str:
    kind = type(value)
    return kind.__qualname__ if kind.__module__ == "builtins" else \
        f"{kind.__module__}.{kind.__qualname__}"


def unpack(data: bytes) -> tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]]:
    """The ``(target, args, kwargs)`` that :func:`pack` pickled."""
    return pickle.loads(data)


def rewritten_modules() -> dict[str, str]:
    """name -> file of every module pytest imported with asserts rewritten."""
    return {
        name: path
        for name, module in list(sys.modules.items())
        if compat.rewritten_by_pytest(module) and (path := getattr(module, "__file__", None))
    }


class _RewritingFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def __init__(self, modules: Mapping[str, str]) -> None:
        self.modules = dict(modules)

    def find_spec(self, fullname: str, path: Sequence[str] | None = None,
                  target: ModuleType | None = None) -> ModuleSpec | None:
        origin = self.modules.get(fullname)
        if origin is None:
            return None
        return importlib.util.spec_from_file_location(fullname, origin, loader=self)

    def is_package(self, fullname: str) -> bool:
        return self.modules[fullname].endswith("__init__.py")

    def create_module(self, spec: ModuleSpec) -> ModuleType | None:
        return None

    def exec_module(self, module: ModuleType) -> None:
        # the module of a spec of find_spec(), which always has its file as origin
        assert module.__spec__ is not None and module.__spec__.origin is not None
        path = module.__spec__.origin
        with open(path, "rb") as f:
            source = f.read()
        tree = ast.parse(source, filename=path)
        compat.rewrite_asserts(tree, source, path)
        exec(compile(tree, path, "exec", dont_inherit=True), module.__dict__)


def config_snapshot(config: pytest.Config | None) -> dict[str, Any]:
    """The picklable ini values and options of ``config`` (empty without one)."""
    if config is None:
        return {}
    ini: dict[str, Any] = {}
    options: dict[str, Any] = {}
    for name in compat.ini_names(config):
        try:
            value = config.getini(name)
            pickle.dumps(value)
        except Exception:  # noqa: BLE001 - skip what cannot travel
            continue
        ini[name] = value
    for name, value in vars(config.option).items():
        if isinstance(value, (str, int, float, bool, type(None))):
            options[name] = value
    return {"ini": ini, "options": options}


class _ChildConfig:
    """Stands in for pytest's Config in a spawned child.

    Answers what pytest's assertion comparison asks of a config from the
    parent's ini values and options; anything else raises, and the child
    falls back to the plain ``assert a == b`` explanation.
    """

    def __init__(self, settings: Mapping[str, Any]) -> None:
        self._ini = settings.get("ini", {})
        self.option = type("Options", (), dict(settings.get("options", {})))()

        class _Plugins:
            @staticmethod
            def has_plugin(_name: str) -> bool:
                return False  # no terminal reporter: plain, uncoloured text

        self.pluginmanager = _Plugins()

    def getini(self, name: str) -> Any:
        return self._ini[name]

    def getoption(self, name: str, default: Any = None, skip: bool = False) -> Any:
        return getattr(self.option, name, default)

    getvalue = getoption

    def get_verbosity(self, kind: str = "global") -> int:
        verbose = int(getattr(self.option, "verbose", 0) or 0)
        if kind != "global":
            level = self._ini.get(f"verbosity_{kind}", "auto")
            if level not in ("auto", "", None):
                return int(level)
        return verbose

    def get_terminal_writer(self) -> compat.TerminalWriter:
        return compat.TerminalWriter(io.StringIO())


def install_rewriting(modules: Mapping[str, str], settings: Mapping[str, Any]) -> None:
    """In a fresh child: rewrite asserts of ``modules`` and explain comparisons."""
    sys.meta_path.insert(0, _RewritingFinder(modules))
    config = _ChildConfig(settings)

    def reprcompare(op: str, left: object, right: object) -> str | None:
        try:
            lines = compat.assertrepr_compare(config, op, left, right)
        except Exception:  # noqa: BLE001 - fall back to the plain "assert a == b"
            return None
        if not lines:
            return None
        text = "\n~".join(line.replace("\n", "\\n") for line in lines)
        return text.replace("%", "%%")

    compat.install_reprcompare(reprcompare)
