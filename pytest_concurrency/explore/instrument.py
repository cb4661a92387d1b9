"""Which code is user code, and where its switch points are."""

from __future__ import annotations

import dis
import functools
import importlib.util
import os
import sys
import sysconfig
from collections.abc import Iterable
from types import CodeType

from ..standins import summary as _summary

_ACCESS_NAMES = (
    "LOAD_ATTR", "STORE_ATTR", "DELETE_ATTR", "LOAD_METHOD", "LOAD_SUPER_ATTR",
    "BINARY_SUBSCR", "STORE_SUBSCR", "DELETE_SUBSCR", "BINARY_SLICE", "STORE_SLICE",
    "LOAD_GLOBAL", "STORE_GLOBAL", "DELETE_GLOBAL", "LOAD_NAME", "STORE_NAME",
    "DELETE_NAME", "LOAD_DEREF", "STORE_DEREF", "DELETE_DEREF", "LOAD_CLASSDEREF",
    "LOAD_FROM_DICT_OR_DEREF", "LOAD_FROM_DICT_OR_GLOBALS", "CONTAINS_OP", "FOR_ITER",
)
ACCESS_OPS = frozenset(dis.opmap[n] for n in _ACCESS_NAMES if n in dis.opmap)
GRANULARITIES = ("access", "opcode", "line")
USE_MONITORING = sys.version_info >= (3, 12)

_OWN_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Of one code object: {offset: (lineno, what)} of its switch points.
SwitchPoints = dict[int, tuple[int, str | None]]


def _system_dirs() -> tuple[str, ...]:
    """The standard library's and the installed packages' directories."""
    return _system_dirs_of(tuple(sys.path))


@functools.lru_cache(maxsize=8)  # an exploration starts without a lookup per path
def _system_dirs_of(search_path: tuple[str, ...]) -> tuple[str, ...]:
    dirs = set()
    for key in ("stdlib", "platstdlib", "purelib", "platlib"):
        path = sysconfig.get_paths().get(key)
        if path:
            dirs.add(os.path.realpath(path))
    for path in search_path:
        if "site-packages" in path or "dist-packages" in path:
            dirs.add(os.path.realpath(path))
    return tuple(sorted(dirs))


def package_dirs(names: Iterable[str]) -> tuple[str, ...]:
    """Directories (or single files) of the named packages / modules."""
    out: list[str] = []
    for name in names:
        try:
            spec = importlib.util.find_spec(name)
        except Exception as exc:  # noqa: BLE001 - importing its parent package raised
            raise ValueError(f"instrument: cannot find package {name!r}: "
                             f"{_summary(exc)}") from None
        if spec is None:
            raise ValueError(f"instrument: no importable package named {name!r}")
        if spec.submodule_search_locations:
            out.extend(os.path.realpath(p) for p in spec.submodule_search_locations)
        elif spec.origin:
            out.append(os.path.realpath(spec.origin))
    return tuple(out)


def _under(path: str, prefixes: Iterable[str]) -> bool:
    return any(path == prefix or path.startswith(prefix + os.sep) for prefix in prefixes)


_realpath = functools.lru_cache(maxsize=8192)(os.path.realpath)  # a file: one lookup


class UserCode:
    """Decides per file whether its code gets switch points."""

    def __init__(self, roots: Iterable[str], instrument: Iterable[str] = ()) -> None:
        self.roots = tuple(os.path.realpath(root) for root in roots)
        self.extra = package_dirs(instrument)
        self.system = _system_dirs()
        self._cache: dict[str, bool] = {}  # filename -> is user code

    def __call__(self, filename: str) -> bool:
        hit = self._cache.get(filename)
        if hit is None:
            hit = self._cache[filename] = self._decide(filename)
        return hit

    def _decide(self, filename: str) -> bool:
        if not filename or filename.startswith("<"):
            return False
        path = _realpath(filename)
        if self.extra and _under(path, self.extra):
            return True
        if _under(path, (_OWN_DIR,)) or _under(path, self.system):
            return False
        return _under(path, self.roots)


def own_file(filename: str) -> bool:
    """Whether ``filename`` is part of this package."""
    return filename.startswith(_OWN_DIR)


def access_text(instruction: dis.Instruction) -> str:
    """What an access instruction does, for the interleaving table: 'writes .value'."""
    name = instruction.opname
    verb = "writes" if name.startswith("STORE") else \
        "deletes" if name.startswith("DELETE") else "reads"
    if "SUBSCR" in name or "SLICE" in name:
        return f"{verb} [...]"
    if name == "FOR_ITER":
        return "next item"
    if name == "CONTAINS_OP":
        return "tests 'in'"
    if "ATTR" in name or name == "LOAD_METHOD":
        return f"{verb} .{instruction.argval}" if isinstance(instruction.argval, str) else verb
    return f"{verb} {instruction.argval}" if isinstance(instruction.argval, str) else verb


class CodeTable:
    """Per code object: {offset: (lineno, what)} of the instructions that are switch
    points; ``what`` says what an access does (None at other granularities)."""

    def __init__(self, granularity: str) -> None:
        if granularity not in GRANULARITIES:
            raise ValueError(f"granularity must be one of {GRANULARITIES}, got {granularity!r}")
        self.granularity = granularity
        self._points: dict[CodeType, SwitchPoints] = {}

    def points(self, code: CodeType) -> SwitchPoints:
        points = self._points.get(code)
        if points is None:
            points = self._points[code] = self._compute(code)
        return points

    def _compute(self, code: CodeType) -> SwitchPoints:
        points: SwitchPoints = {}
        line = code.co_firstlineno
        for instruction in dis.get_instructions(code):
            if instruction.positions is not None and instruction.positions.lineno is not None:
                line = instruction.positions.lineno
            if instruction.opname in ("CACHE", "RESUME", "EXTENDED_ARG"):
                continue
            if self.granularity == "access" and instruction.opcode in ACCESS_OPS:
                points[instruction.offset] = (line, access_text(instruction))
            elif self.granularity == "opcode":
                points[instruction.offset] = (line, None)
        return points
