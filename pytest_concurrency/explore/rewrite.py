"""Rewrite a module's functions so that each access others can see calls a hook first.

DPOR must know, before a step runs, what it reads and writes (``accesses``).
Rather than reading a running frame's value stack (private to one CPython), the
code explore instruments is recompiled from its source with each such access
preceded by a call into ``hooks`` that receives the real objects - as pytest
rewrites ``assert`` statements.  The hook describes the access, lets the
scheduler switch there (a switch point carrying the event of the access about
to happen), and gives the value back so that the access itself still runs in
the user's frame::

    s.value += 1      ->  hooks.attr_w(hooks.push(s), ...)... (see below)
    x = s.items[k]    ->  x = hooks.item_r2(hooks.attr_r(s, 'items', SITE).items, k, SITE)[k]
    f(a.b, c)         ->  hooks.push(f)(*hooks.call(SITE, hooks.attr_r(a, 'b', SITE).b, c))
    total             ->  (hooks.gread(GLOBALS, 'total', SITE) or total)

Evaluation order, the frame a call runs in (``super()``, ``sys._getframe``,
``warnings.warn(stacklevel=)``, logging's caller), exceptions and their line
numbers stay those of the original: a hook only runs between the evaluation
of the operands and the access, every new node carries the location of the
node it replaces, and a call's callee and arguments are evaluated in order,
then called from the user's frame (the callee waits in ``hooks.push``'s stash
while its arguments are evaluated).

Only code that runs in a function is rewritten (a module's and a class's
top-level code ran at import); the code objects of the result line up one for
one with those of the original (``matching``), so a live function's
``__code__`` can be swapped for its rewritten twin.  The hook module, the
module's namespace and closure keys are constants of the compiled code (put in
place of placeholder strings after compiling), not names a user could shadow.

What the hooks are given:
- attribute reads, writes, deletes: the object and the attribute name;
- subscripts: the container and the key (a slice: the container);
- globals (``LOAD_GLOBAL``, a module's names): the module's namespace and the
  name; stores to a global go through a proxy target (``GLOBALS_PROXY[...] = v``)
  so that they work in every target position;
- closure variables: their ``scopes.CellKey``;
- calls: the callee and the arguments; iteration: the iterable; truth tests,
  operators, comparisons, formatting, unpacking, ``with``: their operands.

A construct this module cannot express soundly (a global or closure variable
bound by ``import`` or ``except ... as``, a finalizer) gets a hook that makes
the verdict say it could not see it (``hooks.unseen``).
"""

from __future__ import annotations

import ast
import builtins
import itertools
from collections.abc import Callable, Sequence
from types import CodeType
from typing import Any, cast

from .scopes import CELL, GLOBAL, LOCAL, CellKey, Scope, Scopes

PREFIX = "\x00pytest-concurrency:"
HOOKS = PREFIX + "hooks"  # the hooks module
GLOBALS = PREFIX + "globals"  # the module's namespace
GLOBALS_PROXY = PREFIX + "globals-proxy"  # stores to a global: GLOBALS_PROXY[name, site] = v
CELL_PREFIX = PREFIX + "cell:"  # + the index of a CellKey

_BUILTINS = frozenset(vars(builtins))
# Builtins whose call touches nothing a step could race on (their arguments are
# not read as data); a call to one is not a switch point.
_QUIET_BUILTINS = frozenset({"isinstance", "issubclass", "type", "id", "callable", "range",
                             "super", "locals", "globals", "object", "chr", "ord", "abs",
                             "bool", "int", "float", "str", "bytes", "hash", "divmod",
                             "round", "pow", "bin", "oct", "hex", "iter", "NotImplementedError",
                             "ValueError", "TypeError", "KeyError", "RuntimeError",
                             "AssertionError", "IndexError", "AttributeError", "Exception",
                             "StopIteration", "slice", "staticmethod", "classmethod",
                             "property"})
_OP_NAMES = {ast.Add: "add", ast.Sub: "sub", ast.Mult: "mul", ast.MatMult: "matmul",
             ast.Div: "truediv", ast.FloorDiv: "floordiv", ast.Mod: "mod", ast.Pow: "pow",
             ast.LShift: "lshift", ast.RShift: "rshift", ast.BitOr: "or_",
             ast.BitXor: "xor", ast.BitAnd: "and_"}
_CMP_NAMES = {ast.Eq: "eq", ast.NotEq: "ne", ast.Lt: "lt", ast.LtE: "le", ast.Gt: "gt",
              ast.GtE: "ge", ast.In: "contains", ast.NotIn: "not_contains"}
_NO_ACCESS = Any  # a node that touches nothing shared needs no hook


class RewriteError(Exception):
    """The module could not be rewritten (its code is then treated as unseen)."""


def mangle(name: str, klass: str | None) -> str:
    """``name`` as the compiler spells it inside class ``klass`` (``__x`` ->
    ``_K__x``)."""
    if klass is None or not name.startswith("__") or name.endswith("__") or "." in name:
        return name
    stripped = klass.lstrip("_")
    return f"_{stripped}{name}" if stripped else name


class _Context:
    """Where the transformer is: the scope, whether its code runs after import
    (inside a function), the function and class names for sites."""

    __slots__ = ("scope", "active", "function", "klass")

    def __init__(self, scope: Scope, active: bool, function: str, klass: str | None) -> None:
        self.scope, self.active, self.function, self.klass = scope, active, function, klass


class Rewriter:
    """Turns one module's syntax tree into its hooked twin (see the module
    docstring); ``cells`` collects the closure keys its code refers to."""

    def __init__(self, tree: ast.Module, source: str, filename: str) -> None:
        self.tree, self.filename = tree, filename
        self.scopes = Scopes(tree, source, filename)
        self.cells: list[CellKey] = []
        self._cell_index: dict[int, int] = {}
        self._temps = itertools.count()
        module = self.scopes.module
        bound = {name for name, symbol in module.symbols.items()
                 if symbol.is_assigned() or symbol.is_imported()}
        bound |= _declared_global(tree)
        # Builtins read without a hook: names the module never binds (if something
        # binds one at run time, hooks.gwrite makes the verdict incomplete).
        self.builtin_names = frozenset(_BUILTINS - bound)
        self.ctx = _Context(module, False, "<module>", None)

    # ---- entry -----------------------------------------------------------------------------
    def rewrite(self) -> ast.Module:
        self.tree.body = self._body(self.tree.body)
        return ast.fix_missing_locations(self.tree)

    # ---- helpers ---------------------------------------------------------------------------
    def _site(self, node: ast.AST, what: str | None) -> ast.Constant:
        line = getattr(node, "lineno", 0)
        return _const(("point", (self.filename, line, self.ctx.function, what)))

    def _hook(self, name: str, args: Sequence[ast.expr], node: ast.AST) -> ast.Call:
        func = ast.Attribute(ast.Constant(HOOKS), name, ast.Load())
        return _located(ast.Call(func, list(args), []), node)

    def _cell(self, key: CellKey) -> ast.Constant:
        index = self._cell_index.get(id(key))
        if index is None:
            index = self._cell_index[id(key)] = len(self.cells)
            self.cells.append(key)
        return ast.Constant(f"{CELL_PREFIX}{index}")

    def _where(self, name: str) -> tuple[str, CellKey | None]:
        if name.startswith("@"):  # pytest's assertion temporaries and its helpers
            return LOCAL, None
        return self.ctx.scope.where(self._mangled(name))

    def _mangled(self, name: str) -> str:
        """``name`` as the compiler spells it here (``__x`` in a class: ``_C__x``)."""
        return mangle(name, self.ctx.klass)

    def _pure(self, node: ast.expr) -> bool:
        """Whether evaluating ``node`` twice is the same as once and touches
        nothing shared: a constant or a local of this scope."""
        if isinstance(node, ast.Constant):
            return True
        return isinstance(node, ast.Name) and self._where(node.id)[0] == LOCAL

    def _temp(self) -> str:
        return f"_pytest_concurrency_{next(self._temps)}"

    def _enter(self, scope: Scope | None, active: bool, function: str | None,
               klass: str | None = ...) -> _Context:  # type: ignore[assignment]
        saved = self.ctx
        self.ctx = _Context(scope or saved.scope, active,
                            function if function is not None else saved.function,
                            saved.klass if klass is ... else klass)
        return saved

    # ---- statements ------------------------------------------------------------------------
    def _body(self, body: list[ast.stmt]) -> list[ast.stmt]:
        out: list[ast.stmt] = []
        for statement in body:
            out.extend(self._stmt(statement))
        return out

    def _stmt(self, node: ast.stmt) -> list[ast.stmt]:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            return self._function(node)
        if isinstance(node, ast.ClassDef):
            return self._class(node)
        if not self.ctx.active:
            self._nested_only(node)
            return [node]
        method = getattr(self, "_s_" + type(node).__name__, None)
        if method is None:  # Pass, Break, Continue, Global, Nonlocal, TypeAlias...
            return [node]
        return cast("list[ast.stmt]", method(node))

    def _nested_only(self, node: ast.AST) -> None:
        """Inactive code (a module's or class's top level): only the scopes inside
        it are rewritten."""
        for field, value in ast.iter_fields(node):
            if isinstance(value, list):
                if value and isinstance(value[0], ast.stmt):
                    setattr(node, field, self._body(value))
                else:
                    setattr(node, field, [self._inactive(item) for item in value])
            elif isinstance(value, ast.AST):
                setattr(node, field, self._inactive(value))

    def _inactive(self, node: Any) -> Any:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            return node  # statements inside expressions do not exist; defs are stmts
        if isinstance(node, ast.Lambda):
            return self._lambda(node)
        if isinstance(node, (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)):
            return self._comprehension(node)
        if isinstance(node, ast.AST):
            self._nested_only(node)
        return node

    def _function(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> list[ast.stmt]:
        pre = self._binding_hook(node.name, node, node.decorator_list + node.args.defaults)
        node.decorator_list = [self._expr(d) for d in node.decorator_list]
        self._arguments(node.args)
        scope = self.scopes.of(node)
        # The class's name stays: the compiler mangles ``__x`` in every scope nested
        # in a class (a method's inner functions too), up to the next class.
        saved = self._enter(scope, True, node.name)
        try:
            body = self._body(node.body)
            if node.name == "__del__" and saved.scope.kind == "class":
                position = 1 if _docstring(node.body) else 0
                body.insert(position, _located(ast.Expr(self._hook("unseen", [
                    ast.Constant("a finalizer (__del__), which runs when the garbage "
                                 "collector decides"), self._site(node, None)], node)), node))
            node.body = body
        finally:
            self.ctx = saved
        return [*pre, node]

    def _arguments(self, args: ast.arguments) -> None:
        args.defaults = [self._expr(d) for d in args.defaults]
        args.kw_defaults = [self._expr(d) if d is not None else None for d in args.kw_defaults]

    def _class(self, node: ast.ClassDef) -> list[ast.stmt]:
        pre = self._binding_hook(node.name, node,
                                 node.decorator_list + node.bases +
                                 [k.value for k in node.keywords])
        node.decorator_list = [self._expr(d) for d in node.decorator_list]
        node.bases = [self._expr(b) for b in node.bases]
        for keyword in node.keywords:
            keyword.value = self._expr(keyword.value)
        saved = self._enter(self.scopes.of(node), self.ctx.active, None, node.name)
        try:
            node.body = self._body(node.body)
        finally:
            self.ctx = saved
        return [*pre, node]

    def _binding_hook(self, name: str, node: ast.stmt,
                      evaluated: list[ast.expr]) -> list[ast.stmt]:
        """A ``def`` or ``class`` inside a function that binds a global or a closure
        variable: a hook that announces the write before it."""
        if not self.ctx.active:
            return []
        where, key = self._where(name)
        if where == LOCAL:
            return []
        if any(not self._pure(e) for e in evaluated):
            return [_located(ast.Expr(self._hook("unseen", [
                ast.Constant(f"{name} bound by a decorated def or class"),
                self._site(node, None)], node)), node)]
        if where == GLOBAL:
            call = self._hook("gbind", [ast.Constant(GLOBALS), ast.Constant(self._mangled(name)),
                                        self._site(node, f"writes {name}")], node)
        else:
            assert key is not None
            call = self._hook("cbind", [self._cell(key), self._site(node, f"writes {name}")],
                              node)
        return [_located(ast.Expr(call), node)]

    def _s_Expr(self, node: ast.Expr) -> list[ast.stmt]:
        node.value = self._expr(node.value)
        return [node]

    def _s_Return(self, node: ast.Return) -> list[ast.stmt]:
        if node.value is not None:
            node.value = self._expr(node.value)
        return [node]

    def _s_Assign(self, node: ast.Assign) -> list[ast.stmt]:
        node.value = self._expr(node.value)
        if len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            wrapped = self._name_store_value(node.targets[0], node.value)
            if wrapped is not None:
                node.value = wrapped
                return [node]
        if any(isinstance(t, (ast.Tuple, ast.List)) for t in node.targets):
            node.value = self._hook("unpack", [node.value, self._site(node, "unpacks")], node)
        post: list[ast.stmt] = []
        node.targets = [self._target(t, post) for t in node.targets]
        return [node, *post]

    def _name_store_value(self, target: ast.Name, value: ast.expr) -> ast.expr | None:
        """A store to a global or closure variable of one name: its value wrapped in
        the hook that announces the write (None for a local)."""
        where, key = self._where(target.id)
        site = self._site(target, f"writes {target.id}")
        if where == GLOBAL:
            return self._hook("gwrite", [ast.Constant(GLOBALS),
                                         ast.Constant(self._mangled(target.id)),
                                         value, site], target)
        if where == CELL:
            assert key is not None
            return self._hook("cwrite", [self._cell(key), value, site], target)
        return None

    def _s_AnnAssign(self, node: ast.AnnAssign) -> list[ast.stmt]:
        if node.value is None:
            return [node]
        node.value = self._expr(node.value)
        if isinstance(node.target, ast.Name):
            wrapped = self._name_store_value(node.target, node.value)
            if wrapped is not None:
                node.value = wrapped
            return [node]
        post: list[ast.stmt] = []
        node.target = cast("ast.Attribute | ast.Subscript", self._target(node.target, post))
        return [node, *post]

    def _s_AugAssign(self, node: ast.AugAssign) -> list[ast.stmt]:
        """``t op= v``: read t, evaluate v, the in-place operation, write t - each
        access with its hook, t's object and key evaluated once (they wait in the
        stash between the read and the write)."""
        op = _OP_NAMES[type(node.op)]
        target = node.target
        value = self._expr(node.value)
        if isinstance(target, ast.Name):
            where, key = self._where(target.id)
            current = self._load_name(ast.Name(target.id, ast.Load()), target)
            result = self._hook("inplace", [current, value, ast.Constant(op),
                                            self._site(node, "operates")], node)
            wrapped = self._name_store_value(target, result)
            store = _located(ast.Assign([ast.Name(target.id, ast.Store())],
                                        wrapped if wrapped is not None else result), node)
            return [store]
        if isinstance(target, ast.Attribute):
            name = mangle(target.attr, self.ctx.klass)
            obj = self._hook("push", [self._expr(target.value)], target)
            read = ast.Attribute(self._hook("attr_r", [obj, ast.Constant(name), self._site(
                target, f"reads .{target.attr}")], target), target.attr, ast.Load())
            result = self._hook("inplace", [read, value, ast.Constant(op),
                                            self._site(node, "operates")], node)
            write = ast.Attribute(self._hook("attr_pop_w", [ast.Constant(name), self._site(
                target, f"writes .{target.attr}")], target), target.attr, ast.Store())
            return [_located(ast.Assign([write], result), node)]
        if isinstance(target, ast.Subscript):
            key_node = _slice_value(target.slice)
            keep = self._hook("item_keep", [self._expr(target.value), self._expr(key_node),
                                            self._site(target, "reads [...]")], target)
            result = self._hook("inplace", [keep, value, ast.Constant(op),
                                            self._site(node, "operates")], node)
            store = ast.Subscript(self._hook("peek", [], target),
                                  self._hook("item_pop_w", [self._site(target, "writes [...]")],
                                             target), ast.Store())
            return [_located(ast.Assign([store], result), node)]
        raise RewriteError(f"line {node.lineno}: augmented assignment to "
                           f"{type(target).__name__}")

    def _s_For(self, node: ast.For | ast.AsyncFor) -> list[ast.stmt]:
        name = "aiter" if isinstance(node, ast.AsyncFor) else "iter"
        unpacks = ast.Constant(isinstance(node.target, (ast.Tuple, ast.List)))
        node.iter = self._hook(name, [self._expr(node.iter), self._site(node, "next item"),
                                      unpacks], node)
        post: list[ast.stmt] = []
        node.target = self._target(node.target, post)
        node.body = post + self._body(node.body)
        node.orelse = self._body(node.orelse)
        return [node]

    _s_AsyncFor = _s_For

    def _s_While(self, node: ast.While) -> list[ast.stmt]:
        node.test = self._truth(node.test)
        node.body = self._body(node.body)
        node.orelse = self._body(node.orelse)
        return [node]

    def _s_If(self, node: ast.If) -> list[ast.stmt]:
        node.test = self._truth(node.test)
        node.body = self._body(node.body)
        node.orelse = self._body(node.orelse)
        return [node]

    def _s_With(self, node: ast.With | ast.AsyncWith) -> list[ast.stmt]:
        name = "awith" if isinstance(node, ast.AsyncWith) else "with_"
        post: list[ast.stmt] = []
        for item in node.items:
            item.context_expr = self._hook(name, [self._expr(item.context_expr),
                                                  self._site(item.context_expr, "enters with")],
                                           item.context_expr)
            if item.optional_vars is not None:
                item.optional_vars = self._target(item.optional_vars, post)
        node.body = post + self._body(node.body)
        return [node]

    _s_AsyncWith = _s_With

    def _s_Raise(self, node: ast.Raise) -> list[ast.stmt]:
        if node.exc is not None:
            node.exc = self._expr(node.exc)
        if node.cause is not None:
            node.cause = self._expr(node.cause)
        return [node]

    def _s_Try(self, node: ast.Try) -> list[ast.stmt]:
        node.body = self._body(node.body)
        for handler in node.handlers:
            if handler.type is not None:
                handler.type = self._expr(handler.type)
            handler.body = self._body(handler.body)
            if handler.name is not None and self._where(handler.name)[0] != LOCAL:
                handler.body.insert(0, _located(ast.Expr(self._hook("unseen", [
                    ast.Constant(f"{handler.name} bound by 'except ... as'"),
                    self._site(handler, None)], handler)), handler))
        node.orelse = self._body(node.orelse)
        node.finalbody = self._body(node.finalbody)
        return [node]

    _s_TryStar = _s_Try

    def _s_Assert(self, node: ast.Assert) -> list[ast.stmt]:
        node.test = self._truth(node.test)
        if node.msg is not None:
            node.msg = self._expr(node.msg)
        return [node]

    def _s_Delete(self, node: ast.Delete) -> list[ast.stmt]:
        out: list[ast.stmt] = []
        for target in node.targets:
            for simple in _flatten(target):
                out.extend(self._delete(simple))
        return out

    def _delete(self, target: ast.expr) -> list[ast.stmt]:
        if isinstance(target, ast.Name):
            where, key = self._where(target.id)
            if where == GLOBAL:
                site = self._site(target, f"deletes {target.id}").value
                proxy = ast.Subscript(ast.Constant(GLOBALS_PROXY),
                                      _const((self._mangled(target.id), site)), ast.Del())
                return [_located(ast.Delete([proxy]), target)]
            pre: list[ast.stmt] = []
            if where == CELL:
                assert key is not None
                pre = [_located(ast.Expr(self._hook("cdelete", [
                    self._cell(key), self._site(target, f"deletes {target.id}")], target)),
                    target)]
            return [*pre, _located(ast.Delete([target]), target)]
        if isinstance(target, ast.Attribute):
            name = mangle(target.attr, self.ctx.klass)
            target.value = self._hook("attr_d", [self._expr(target.value), ast.Constant(name),
                                                 self._site(target, f"deletes .{target.attr}")],
                                      target)
            return [_located(ast.Delete([target]), target)]
        if isinstance(target, ast.Subscript):
            self._subscript_target(target, "deletes [...]", "item_d", "item_d2")
            return [_located(ast.Delete([target]), target)]
        raise RewriteError(f"line {target.lineno}: del of {type(target).__name__}")

    def _s_Import(self, node: ast.Import | ast.ImportFrom) -> list[ast.stmt]:
        names = [alias.asname or alias.name.partition(".")[0] for alias in node.names]
        pre: list[ast.stmt] = []
        if any(self._where(name)[0] != LOCAL for name in names if name != "*"):
            pre.append(_located(ast.Expr(self._hook("unseen", [
                ast.Constant("a global or closure variable bound by import"),
                self._site(node, None)], node)), node))
        if isinstance(node, ast.ImportFrom):
            module = _const((node.level, node.module or "",
                             tuple(alias.name for alias in node.names)))
        else:
            module = _const((0, "", tuple(alias.name for alias in node.names)))
        pre.append(_located(ast.Expr(self._hook("imports", [
            ast.Constant(GLOBALS), module, self._site(node, "imports")], node)), node))
        return [*pre, node]

    _s_ImportFrom = _s_Import

    def _s_Match(self, node: ast.Match) -> list[ast.stmt]:
        node.subject = self._hook("deep", [self._expr(node.subject),
                                           self._site(node.subject, "matches")], node.subject)
        for case in node.cases:
            if case.guard is not None:
                case.guard = self._truth(case.guard)
            case.body = self._body(case.body)
            bound = [n for n in _pattern_names(case.pattern) if self._where(n)[0] != LOCAL]
            if bound:
                case.body.insert(0, _located(ast.Expr(self._hook("unseen", [
                    ast.Constant(f"{bound[0]} bound by a match pattern"),
                    self._site(case.pattern, None)], case.pattern)), case.pattern))
        return [node]

    # ---- targets ---------------------------------------------------------------------------
    def _target(self, node: ast.expr, post: list[ast.stmt]) -> ast.expr:
        """A store target with hooks before each shared store; a closure variable in
        a position only a name can take gets a temporary, stored after (``post``)."""
        if isinstance(node, ast.Name):
            where, key = self._where(node.id)
            if where == GLOBAL:
                site = self._site(node, f"writes {node.id}").value
                return _located(ast.Subscript(ast.Constant(GLOBALS_PROXY),
                                              _const((self._mangled(node.id), site)),
                                              ast.Store()), node)
            if where == CELL:
                assert key is not None
                temp = self._temp()
                value = self._hook("cwrite", [self._cell(key), ast.Name(temp, ast.Load()),
                                              self._site(node, f"writes {node.id}")], node)
                post.append(_located(ast.Assign([ast.Name(node.id, ast.Store())], value),
                                     node))
                return _located(ast.Name(temp, ast.Store()), node)
            return node
        if isinstance(node, (ast.Tuple, ast.List)):
            node.elts = [self._target(element, post) for element in node.elts]
            return node
        if isinstance(node, ast.Starred):
            node.value = self._target(node.value, post)
            return node
        if isinstance(node, ast.Attribute):
            name = mangle(node.attr, self.ctx.klass)
            node.value = self._hook("attr_w", [self._expr(node.value), ast.Constant(name),
                                               self._site(node, f"writes .{node.attr}")], node)
            return node
        if isinstance(node, ast.Subscript):
            self._subscript_target(node, "writes [...]", "item_w", "item_w2")
            return node
        raise RewriteError(f"line {node.lineno}: store to {type(node).__name__}")

    def _subscript_target(self, node: ast.Subscript, what: str, popping: str,
                          direct: str) -> None:
        """``c[k] = ...`` / ``del c[k]``: the hook sees c and k right before the store."""
        site = self._site(node, what)
        if isinstance(node.slice, ast.Slice):
            container = self._expr(node.value)
            node.slice = self._expr(node.slice)
            node.value = self._hook(direct, [container, ast.Constant(None), site,
                                             ast.Constant(True)], node)
            return
        if self._pure(node.slice):
            node.value = self._hook(direct, [self._expr(node.value), _copy(node.slice), site,
                                             ast.Constant(False)], node)
            return
        node.value = self._hook("push", [self._expr(node.value)], node)
        node.slice = self._hook(popping, [self._expr(node.slice), site], node)

    # ---- expressions -----------------------------------------------------------------------
    def _expr(self, node: Any) -> Any:
        if node is None:
            return None
        if isinstance(node, ast.Lambda):
            return self._lambda(node)
        if isinstance(node, (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)):
            return self._comprehension(node)
        if not self.ctx.active:
            self._nested_only(node)
            return node
        method = getattr(self, "_e_" + type(node).__name__, None)
        if method is None:
            for field, value in ast.iter_fields(node):
                if isinstance(value, list):
                    setattr(node, field, [self._expr(v) if isinstance(v, ast.expr) else v
                                          for v in value])
                elif isinstance(value, ast.expr):
                    setattr(node, field, self._expr(value))
            return node
        return method(node)

    def _lambda(self, node: ast.Lambda) -> ast.Lambda:
        self._arguments(node.args)
        saved = self._enter(self.scopes.of(node), True, "<lambda>")
        try:
            node.body = self._expr(node.body)
        finally:
            self.ctx = saved
        return node

    def _comprehension(self, node: ast.ListComp | ast.SetComp | ast.DictComp | ast.GeneratorExp
                       ) -> ast.expr:
        first = node.generators[0]
        active = self.ctx.active
        if active:
            first.iter = self._hook("iter", [self._expr(first.iter),
                                             self._site(first.iter, "next item"),
                                             ast.Constant(isinstance(first.target,
                                                                     (ast.Tuple, ast.List)))],
                                    first.iter)
        else:
            first.iter = self._expr(first.iter)
        scope = self.scopes.of(node)
        saved = self._enter(scope, active, None)
        try:
            generators: list[ast.comprehension] = []
            for number, generator in enumerate(node.generators):
                if number and active:
                    generator.iter = self._hook("iter", [
                        self._expr(generator.iter), self._site(generator.iter, "next item"),
                        ast.Constant(isinstance(generator.target, (ast.Tuple, ast.List)))],
                        generator.iter)
                elif number:
                    generator.iter = self._expr(generator.iter)
                post: list[ast.stmt] = []
                if active:
                    generator.target = self._target(generator.target, post)
                generator.ifs = [self._truth(i) if active else self._expr(i)
                                 for i in generator.ifs]
                generators.append(generator)
                for statement in post:  # a closure variable stored after its temporary:
                    assign = cast("ast.Assign", statement)  # "for x in [hook(temp)]"
                    generators.append(ast.comprehension(
                        assign.targets[0], _located(ast.List([assign.value], ast.Load()),
                                                    assign), [], 0))
                    generators[-1].ifs, generator.ifs = generator.ifs, []
            node.generators = generators
            if isinstance(node, ast.DictComp):
                node.key, node.value = self._expr(node.key), self._expr(node.value)
            else:
                node.elt = self._expr(node.elt)
        finally:
            self.ctx = saved
        return node

    def _load_name(self, node: ast.Name, at: ast.AST) -> ast.expr:
        where, key = self._where(node.id)
        if where == LOCAL:
            return _located(node, at)
        if where == GLOBAL:
            if node.id in self.builtin_names:
                return _located(node, at)
            hook = self._hook("gread", [ast.Constant(GLOBALS),
                                        ast.Constant(self._mangled(node.id)),
                                        self._site(at, f"reads {node.id}")], at)
        else:
            assert key is not None
            hook = self._hook("cread", [self._cell(key), self._site(at, f"reads {node.id}")], at)
        return _located(ast.BoolOp(ast.Or(), [hook, _located(node, at)]), at)

    def _e_Name(self, node: ast.Name) -> ast.expr:
        if not isinstance(node.ctx, ast.Load):
            return node
        return self._load_name(node, node)

    def _e_NamedExpr(self, node: ast.NamedExpr) -> ast.expr:
        node.value = self._expr(node.value)
        wrapped = self._name_store_value(node.target, node.value)
        if wrapped is not None:
            node.value = wrapped
        return node

    def _e_Attribute(self, node: ast.Attribute) -> ast.expr:
        name = mangle(node.attr, self.ctx.klass)
        node.value = self._hook("attr_r", [self._expr(node.value), ast.Constant(name),
                                           self._site(node, f"reads .{node.attr}")], node)
        return node

    def _e_Subscript(self, node: ast.Subscript) -> ast.expr:
        site = self._site(node, "reads [...]")
        if isinstance(node.slice, ast.Slice):
            container = self._expr(node.value)
            node.slice = self._expr(node.slice)
            node.value = self._hook("item_r2", [container, ast.Constant(None), site,
                                                ast.Constant(True)], node)
            return node
        if self._pure(node.slice):
            node.value = self._hook("item_r2", [self._expr(node.value), _copy(node.slice), site,
                                                ast.Constant(False)], node)
            return node
        return self._hook("getitem", [self._expr(node.value), self._expr(node.slice), site],
                          node)

    def _e_Call(self, node: ast.Call) -> ast.expr:
        func = node.func
        if isinstance(func, ast.Name) and func.id in _QUIET_BUILTINS and \
                func.id in self.builtin_names:
            node.args = [self._expr(a) for a in node.args]
            for keyword in node.keywords:
                keyword.value = self._expr(keyword.value)
            return node
        what = f"calls {_callee_name(func)}"
        site = self._site(node, what)
        args, keywords = node.args, node.keywords
        if all(self._pure(a) for a in args) and all(
                k.arg is not None and self._pure(k.value) for k in keywords):
            call_args = ast.Tuple([_copy(a) for a in args], ast.Load())
            call_kwargs: ast.expr = ast.Dict([ast.Constant(k.arg) for k in keywords],
                                             [_copy(k.value) for k in keywords]) \
                if keywords else ast.Constant(None)
            node.func = self._hook("callp", [self._expr(func), site, call_args, call_kwargs],
                                   node)
            return node
        callee = self._hook("push", [self._expr(func)], node)
        positional = [self._star(a) for a in args]
        if not keywords:
            node.func = callee
            node.args = [ast.Starred(self._hook("call", [site, *positional], node),
                                     ast.Load())]
            return node
        names = tuple(k.arg for k in keywords)
        values = [self._expr(k.value) if k.arg is not None else
                  self._hook("star", [self._expr(k.value), self._site(k.value, "reads")],
                             k.value) for k in keywords]
        node.func = callee
        node.args = [ast.Starred(self._hook("pos", positional, node), ast.Load())]
        node.keywords = [ast.keyword(None, self._hook("call_kw", [site, _const(names),
                                                                  *values], node))]
        return node

    def _star(self, node: ast.expr) -> ast.expr:
        if isinstance(node, ast.Starred):
            node.value = self._hook("star", [self._expr(node.value),
                                             self._site(node, "reads")], node)
            return node
        return cast("ast.expr", self._expr(node))

    def _e_Starred(self, node: ast.Starred) -> ast.expr:
        return self._star(node)

    def _e_Dict(self, node: ast.Dict) -> ast.expr:
        keys: list[ast.expr | None] = []
        values: list[ast.expr] = []
        for key, value in zip(node.keys, node.values, strict=True):
            if key is None:  # {**mapping}
                values.append(self._hook("star", [self._expr(value), self._site(value, "reads")],
                                         value))
            else:
                values.append(self._expr(value))
            keys.append(self._expr(key) if key is not None else None)
        node.keys, node.values = keys, values
        return node

    def _e_BinOp(self, node: ast.BinOp) -> ast.expr:
        op = _OP_NAMES[type(node.op)]
        return self._binary(node, node.left, node.right, op, "binl", "binr", "binop",
                            "operates")

    def _binary(self, node: ast.BinOp, left: ast.expr, right: ast.expr, op: str, lname: str,
                rname: str, through: str, what: str) -> ast.expr:
        if isinstance(left, ast.Constant) and isinstance(right, ast.Constant):
            return node
        site = self._site(node, what)
        if self._pure(right):
            node.left = self._hook(lname, [self._expr(left), _copy(right), ast.Constant(op),
                                           site], node)
            return node
        if self._pure(left):
            node.right = self._hook(rname, [_copy(left), self._expr(right), ast.Constant(op),
                                            site], node)
            return node
        return self._hook(through, [self._expr(left), self._expr(right), ast.Constant(op),
                                    site], node)

    def _e_UnaryOp(self, node: ast.UnaryOp) -> ast.expr:
        if isinstance(node.op, ast.Not):
            node.operand = self._truth(node.operand)
            return node
        if isinstance(node.operand, ast.Constant):
            return node
        op = {ast.USub: "neg", ast.UAdd: "pos", ast.Invert: "invert"}[type(node.op)]
        node.operand = self._hook("unary", [self._expr(node.operand), ast.Constant(op),
                                            self._site(node, "operates")], node)
        return node

    def _e_BoolOp(self, node: ast.BoolOp) -> ast.expr:
        values = [self._expr(v) for v in node.values]
        node.values = [self._hook("truth", [v, self._site(v, None)], v) for v in values[:-1]] \
            + values[-1:]
        return node

    def _e_IfExp(self, node: ast.IfExp) -> ast.expr:
        node.test = self._truth(node.test)
        node.body, node.orelse = self._expr(node.body), self._expr(node.orelse)
        return node

    def _e_Compare(self, node: ast.Compare) -> ast.expr:
        ops = [type(op) for op in node.ops]
        if len(ops) == 1:
            if ops[0] in (ast.Is, ast.IsNot):
                node.left = self._expr(node.left)
                node.comparators = [self._expr(node.comparators[0])]
                return node
            what = "tests 'in'" if ops[0] in (ast.In, ast.NotIn) else "compares"
            op = _CMP_NAMES[ops[0]]
            right = node.comparators[0]
            if isinstance(node.left, ast.Constant) and isinstance(right, ast.Constant):
                return node
            site = self._site(node, what)
            if self._pure(right):
                node.left = self._hook("cmpl", [self._expr(node.left), _copy(right),
                                                ast.Constant(op), site], node)
                return node
            if self._pure(node.left):
                node.comparators = [self._hook("cmpr", [_copy(node.left), self._expr(right),
                                                        ast.Constant(op), site], node)]
                return node
            return self._hook("compare", [self._expr(node.left), self._expr(right),
                                          ast.Constant(op), site], node)
        # A chain: each operand waits in the stash for the comparison it is the
        # left side of (a chain stopped early leaves one behind in its frame).
        node.left = self._hook("push", [self._expr(node.left)], node)
        comparators: list[ast.expr] = []
        for number, (op_type, right) in enumerate(zip(ops, node.comparators, strict=True)):
            last = number == len(ops) - 1
            name = "cmp_pop" if last else "cmp_shift"
            op = _CMP_NAMES.get(op_type, "is")
            comparators.append(self._hook(name, [self._expr(right), ast.Constant(op),
                                                 self._site(node, "compares")], node))
        node.comparators = comparators
        return node

    def _e_FormattedValue(self, node: ast.FormattedValue) -> ast.expr:
        node.value = self._hook("fmt", [self._expr(node.value), self._site(node, "formats")],
                                node)
        if node.format_spec is not None:
            node.format_spec = self._expr(node.format_spec)
        return node

    def _e_YieldFrom(self, node: ast.YieldFrom) -> ast.expr:
        node.value = self._hook("iter", [self._expr(node.value),
                                         self._site(node, "next item"), ast.Constant(False)],
                                node)
        return node

    def _truth(self, node: ast.expr) -> ast.expr:
        value = self._expr(node)
        if isinstance(value, ast.Constant):
            return value
        if isinstance(value, ast.Compare) or isinstance(value, ast.UnaryOp) and \
                isinstance(value.op, ast.Not):
            return value  # a bool (its operands had their hooks)
        if isinstance(value, ast.Call) and isinstance(value.func, ast.Name) and \
                value.func.id in ("isinstance", "issubclass", "callable", "hasattr"):
            return value
        return self._hook("truth", [value, self._site(node, None)], node)


def _const(value: object) -> ast.Constant:
    """A constant node for any value compile() takes (tuples of constants too)."""
    return ast.Constant(cast(Any, value))


def _located(new: Any, old: ast.AST) -> Any:
    """``new`` with ``old``'s location (and its children without one)."""
    ast.copy_location(new, old)
    for child in ast.walk(new):
        if isinstance(child, (ast.expr, ast.stmt)) and not hasattr(child, "lineno"):
            ast.copy_location(child, old)
    return new


def _copy(node: ast.expr) -> ast.expr:
    if isinstance(node, ast.Constant):
        return _located(ast.Constant(node.value), node)
    if isinstance(node, ast.Name):
        return _located(ast.Name(node.id, ast.Load()), node)
    raise RewriteError(f"line {node.lineno}: only a constant or a name is copied")


def _slice_value(node: ast.expr) -> ast.expr:
    """A subscript's index as a value (a ``Slice`` becomes ``slice(...)``)."""
    if isinstance(node, ast.Slice):
        parts = [part if part is not None else ast.Constant(None)
                 for part in (node.lower, node.upper, node.step)]
        call = ast.Call(ast.Attribute(ast.Constant(HOOKS), "make_slice", ast.Load()), parts, [])
        return _located(call, node)
    if isinstance(node, ast.Tuple) and any(isinstance(e, ast.Slice) for e in node.elts):
        return _located(ast.Tuple([_slice_value(e) for e in node.elts], ast.Load()), node)
    return node


def _flatten(target: ast.expr) -> list[ast.expr]:
    if isinstance(target, (ast.Tuple, ast.List)):
        return [simple for element in target.elts for simple in _flatten(element)]
    return [target]


def _callee_name(func: ast.expr) -> str:
    if isinstance(func, ast.Name):
        return f"{func.id}()"
    if isinstance(func, ast.Attribute):
        return f".{func.attr}()"
    return "()"


def _docstring(body: list[ast.stmt]) -> bool:
    return bool(body) and isinstance(body[0], ast.Expr) and \
        isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str)


def _declared_global(tree: ast.AST) -> set[str]:
    return {name for node in ast.walk(tree) if isinstance(node, ast.Global)
            for name in node.names}


def _pattern_names(pattern: ast.AST) -> list[str]:
    names = []
    for node in ast.walk(pattern):
        for field in ("name", "rest"):
            value = getattr(node, field, None)
            if isinstance(value, str) and isinstance(node, ast.pattern):
                names.append(value)
    return names


# ---- compiling and the code objects of the result ----------------------------------------------

def code_tree(code: CodeType) -> list[CodeType]:
    """``code`` and every code object nested in it, depth first, in constant order."""
    out = [code]
    for const in code.co_consts:
        if isinstance(const, CodeType):
            out.extend(code_tree(const))
    return out


def compile_rewritten(tree: ast.Module, source: str, filename: str
                      ) -> tuple[CodeType, list[CellKey], frozenset[str]]:
    """The module's rewritten code (with placeholders), the closure keys its
    placeholders stand for, and the builtin names it reads without a hook."""
    rewriter = Rewriter(tree, source, filename)
    try:
        rewritten = rewriter.rewrite()
        code = compile(rewritten, filename, "exec", dont_inherit=True)
    except (SyntaxError, ValueError, TypeError, RecursionError) as exc:
        raise RewriteError(f"{type(exc).__name__}: {exc}") from None
    return code, rewriter.cells, rewriter.builtin_names


def fill(code: CodeType, values: Callable[[str], object]) -> CodeType:
    """``code`` with each placeholder constant (and those of nested code) replaced
    by ``values(placeholder)``."""
    consts = []
    changed = False
    for const in code.co_consts:
        if isinstance(const, CodeType):
            new: object = fill(const, values)
        elif isinstance(const, str) and const.startswith(PREFIX):
            new = values(const)
        else:
            new = const
        changed = changed or new is not const
        consts.append(new)
    return code.replace(co_consts=tuple(consts)) if changed else code
