"""Where each name of a module lives: a local, a global, or a closure cell.

The rewriting (``rewrite``) turns the accesses that other threads can see into
hook calls, and which those are depends on the name: a function's own local is
private to its frame, a global is a key of the module's namespace, and a
closure variable is a cell that the defining function and every function
nested in it share.  Python's own analysis says which is which: ``symtable``,
the compiler's first pass.  This module lays its tables beside the syntax tree
(one table per function, lambda, class and, before 3.12, comprehension) and
answers per name.

A closure variable is keyed by the scope that defines it (its file, the first
line and name of that scope, and the variable's name): the defining function
and its nested functions reach one cell under one key.  Two calls of the
defining function make two cells with one key, so they look like one variable:
conservative (more orders explored), never blind.
"""

from __future__ import annotations

import ast
import symtable
from collections.abc import Iterator

LOCAL, GLOBAL, CELL = "local", "global", "cell"
SCOPE_NODES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef, ast.ListComp,
               ast.SetComp, ast.DictComp, ast.GeneratorExp)
# Tables that stand between a scope and its parent in 3.12+ (type parameters,
# annotation scopes): looked through, never matched to a node of their own.
_LOOK_THROUGH = ("annotation", "type parameters", "TypeVar bound", "type alias",
                 "type variable")
_TABLE_NAMES = {ast.Lambda: "lambda", ast.ListComp: "listcomp", ast.SetComp: "setcomp",
                ast.DictComp: "dictcomp", ast.GeneratorExp: "genexpr"}


class ScopeError(Exception):
    """The symbol tables could not be laid beside the syntax tree."""


class CellKey:
    """The one object that stands for a closure variable wherever it is used."""

    __slots__ = ("filename", "line", "scope", "name")

    def __init__(self, filename: str, line: int, scope: str, name: str) -> None:
        self.filename, self.line, self.scope, self.name = filename, line, scope, name

    def __repr__(self) -> str:
        return f"<closure variable {self.name} of {self.scope}>"


_KEYS: dict[tuple[str, int, str, str], CellKey] = {}


def cell_key(filename: str, line: int, scope: str, name: str) -> CellKey:
    """The CellKey of ``name`` defined in the scope ``scope`` at ``line`` of ``filename``:
    the same object every time (the module's files are rewritten once each)."""
    key = (filename, line, scope, name)
    found = _KEYS.get(key)
    if found is None:
        found = _KEYS[key] = CellKey(filename, line, scope, name)
    return found


def _node_name(node: ast.AST) -> str:
    name = _TABLE_NAMES.get(type(node))
    return name if name is not None else node.name  # type: ignore[attr-defined]


def _children(table: symtable.SymbolTable) -> Iterator[symtable.SymbolTable]:
    """The scopes directly inside ``table``, looking through 3.12's annotation and
    type parameter scopes."""
    for child in table.get_children():
        if child.get_type() in _LOOK_THROUGH:
            yield from _children(child)
        else:
            yield child


class Scope:
    """One scope's table, its parent, and the names that are its cells."""

    __slots__ = ("table", "parent", "cells", "rebound", "kind", "symbols", "filename")

    def __init__(self, table: symtable.SymbolTable, parent: Scope | None,
                 filename: str) -> None:
        self.table, self.parent, self.filename = table, parent, filename
        self.kind = table.get_type()  # "module", "function", "class"
        self.cells: set[str] = set()  # locals that a nested scope reads or writes
        self.rebound: set[str] = set()  # of those, the ones a nested scope assigns
        self.symbols = {symbol.get_name(): symbol for symbol in table.get_symbols()}

    @property
    def is_function(self) -> bool:
        return self.kind == "function"

    def where(self, name: str) -> tuple[str, CellKey | None]:
        """(LOCAL | GLOBAL | CELL, the cell's key) for ``name`` used in this scope."""
        symbol = self.symbols.get(name)
        if symbol is None:
            return (GLOBAL, None) if self.kind != "function" else (LOCAL, None)
        if symbol.is_free():
            owner = self._owner(name)
            if owner is None:
                return GLOBAL, None
            if owner.stable(name):
                return LOCAL, None
            return CELL, owner.key(name)
        if symbol.is_global() or symbol.is_declared_global():
            return GLOBAL, None
        if self.kind == "class" and not symbol.is_assigned():
            return GLOBAL, None
        if name in self.cells and not self.stable(name):
            return CELL, self.key(name)
        if self.kind == "module":
            return GLOBAL, None
        return LOCAL, None

    def stable(self, name: str) -> bool:
        """Whether closure variable ``name`` of this scope is a parameter bound when
        the call starts and never assigned again: reading it is reading a constant."""
        symbol = self.symbols.get(name)
        return symbol is not None and symbol.is_parameter() and not symbol.is_assigned() \
            and name not in self.rebound

    def key(self, name: str) -> CellKey:
        return cell_key(self.filename, self.table.get_lineno(), self.table.get_name(), name)

    def _owner(self, name: str) -> Scope | None:
        """The enclosing function scope that defines ``name`` (class scopes do not
        give their names to nested functions)."""
        scope = self.parent
        while scope is not None:
            if scope.kind == "function":
                symbol = scope.symbols.get(name)
                if symbol is not None and not symbol.is_free() and \
                        not symbol.is_global() and not symbol.is_declared_global() and \
                        (symbol.is_local() or symbol.is_assigned() or symbol.is_parameter()):
                    return scope
            scope = scope.parent
        return None


class Scopes:
    """The scopes of one module's syntax tree: ``of(node)`` for the scope a
    function, lambda, class or comprehension node opens (None for a
    comprehension that 3.12+ inlines into its parent)."""

    def __init__(self, tree: ast.Module, source: str, filename: str) -> None:
        self.filename = filename
        try:
            top = symtable.symtable(source, filename, "exec")
        except SyntaxError as exc:  # compiled before, so not expected
            raise ScopeError(f"symtable: {exc}") from None
        self.module = Scope(top, None, filename)
        self._of: dict[int, Scope] = {}
        self._match(tree, self.module)
        for scope in self._all():
            for name, symbol in scope.symbols.items():
                if symbol.is_free():
                    owner = scope._owner(name)
                    if owner is not None:
                        owner.cells.add(name)
                        if symbol.is_assigned() or symbol.is_nonlocal():
                            owner.rebound.add(name)

    def of(self, node: ast.AST) -> Scope | None:
        return self._of.get(id(node))

    def _all(self) -> Iterator[Scope]:
        yield self.module
        yield from self._of.values()

    def _match(self, root: ast.AST, scope: Scope) -> None:
        """Give each scope node in ``parts`` (the nodes that belong to ``scope``)
        the child table of ``scope`` with its name and line, in order."""
        groups: dict[tuple[str, int], list[symtable.SymbolTable]] = {}
        for child in _children(scope.table):
            groups.setdefault((child.get_name(), child.get_lineno()), []).append(child)
        self._place(inner_parts(root) if isinstance(root, SCOPE_NODES) else [root], scope,
                    groups)
        left = [key for key, tables in groups.items() if tables]
        if left:
            raise ScopeError(f"symbol tables without a node: {left[:3]}")

    def _place(self, parts: list[ast.AST], scope: Scope,
               groups: dict[tuple[str, int], list[symtable.SymbolTable]]) -> None:
        for node in _scope_nodes(parts):
            name, line = _node_name(node), node.lineno  # type: ignore[attr-defined]
            found = groups.get((name, line))
            if not found:
                if isinstance(node, (ast.ListComp, ast.SetComp, ast.DictComp)):
                    # Inlined (3.12+): its names are its parent's.
                    self._place(inner_parts(node), scope, groups)
                    continue
                raise ScopeError(f"no symbol table for {name} at line {line}")
            inner = Scope(found.pop(0), scope, self.filename)
            self._of[id(node)] = inner
            self._match(node, inner)


def outer_parts(node: ast.AST) -> list[ast.AST]:
    """The parts of a scope node that its enclosing scope evaluates: decorators,
    defaults, base classes, a comprehension's first iterable."""
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
        args = node.args
        parts: list[ast.AST] = [*args.defaults, *(d for d in args.kw_defaults if d)]
        if not isinstance(node, ast.Lambda):
            parts += node.decorator_list
        return parts
    if isinstance(node, ast.ClassDef):
        return [*node.decorator_list, *node.bases, *node.keywords]
    if isinstance(node, (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)):
        return [node.generators[0].iter]
    return []


def inner_parts(node: ast.AST) -> list[ast.AST]:
    """The parts of a scope node that run in its own scope."""
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return list(node.body)
    if isinstance(node, ast.Lambda):
        return [node.body]
    if isinstance(node, (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)):
        first = node.generators[0]
        parts: list[ast.AST] = [first.target, *first.ifs, *node.generators[1:]]
        if isinstance(node, ast.DictComp):
            return [node.key, node.value, *parts]
        return [node.elt, *parts]
    return []


def _scope_nodes(parts: list[ast.AST]) -> Iterator[ast.AST]:
    """The scope nodes in ``parts`` that are not inside another scope node (but
    in the parts another scope node leaves to its parent), in source order."""
    for part in parts:
        if isinstance(part, SCOPE_NODES):
            yield from _scope_nodes(outer_parts(part))
            yield part
        else:
            yield from _scope_nodes(list(ast.iter_child_nodes(part)))
