"""The rewritten code behaves as the original: every construct the rewriting
touches computes the same values, raises the same exceptions at the same lines,
keeps the frames that frame-sensitive calls look at, and its code objects line
up with the original's (so the live functions' code can be swapped, and back)."""
import ast
import importlib.util
import json
import sys
import textwrap
import traceback
import types
import warnings

import pytest

from pytest_concurrency.explore import codeswap, hooks
from pytest_concurrency.explore.rewrite import Rewriter, code_tree, compile_rewritten
from pytest_concurrency.explore.selftest import problem

pytestmark = pytest.mark.skipif(problem() is not None, reason=f"dpor: {problem()}")

PROGRAM = '''
import functools
import warnings

COUNT = 0
TABLE = {"a": 1}


class Base:
    def greet(self):
        return "base"


class Child(Base):
    __secret = 7

    def __init__(self):
        self.items = [3, 1, 2]
        self.d = {"k": 1}
        self.n = 0

    def greet(self):
        return "child+" + super().greet()

    def secret(self):
        return self.__secret

    def attributes(self):
        self.n += 5
        self.n -= 1
        del self.d["k"]
        self.d["j"] = self.n
        return self.n, dict(self.d)

    def subscripts(self):
        items = self.items
        items[0] += 10
        items[1:2] = [7, 8]
        key = "x"
        self.d[key] = self.d.get(key, 0) + 1
        self.d[key.upper()] = len(items)
        return items[:], items[-1], self.d["X"], self.items[::2]


def globals_and_cells():
    global COUNT
    COUNT += 1
    COUNT = COUNT * 2
    total = 0
    def add(v):
        nonlocal total
        total += v
        return total
    add(3)
    add(4)
    values = [lambda: total for _ in range(2)]
    first, (second, COUNT) = 1, (2, COUNT + 1)
    return total, [f() for f in values], first, second, COUNT


def comprehensions(data):
    squares = [x * x for x in data if x % 2]
    pairs = {k: v for k, v in zip("ab", data)}
    nested = [(a, b) for a in data for b in data if a < b]
    flat = sorted({x for row in [[1, 2], [2, 3]] for x in row})
    gen = sum(x for x in data)
    return squares, pairs, nested, flat, gen


def calls(*args, **kwargs):
    def f(a, b=2, *rest, c=3, **more):
        return a, b, rest, c, sorted(more.items())
    opts = {"c": 9, "z": 1}
    return (f(1), f(*args), f(1, *args, c=4), f(**{"a": 5}), f(0, **opts, y=2),
            f(*[1, 2, 3], **kwargs), max(args or [0], key=lambda v: -v))


def duplicate_keyword():
    def f(**kw):
        return kw
    return f(a=1, **{"a": 2})


def comparisons(a, b, c):
    return (a < b < c, a == b, a != c, a in [a, b], b not in (a,), a is a, 1 < a <= 3,
            not a, -a, ~a, a if b else c, a and b or c)


def strings(name, value):
    return f"{name}={value!r:>6}", f"{value:.2f}", "%s-%d" % (name, int(value))


def walrus(data):
    if (n := len(data)) > 2:
        return n, [y for x in data if (y := x * 2) > 2], y
    return n


def with_and_for(items):
    out = []
    with open(__file__) as handle, warnings.catch_warnings():
        first = handle.readline()
    for i, (a, b) in enumerate(items):
        if i == 1:
            continue
        out.append(a + b)
    else:
        out.append("done")
    while out:
        if out.pop() == "done":
            break
    return first[:6], out


def exceptions(kind):
    try:
        if kind == "key":
            return {}["missing"]
        if kind == "attr":
            return object().missing
        if kind == "zero":
            return 1 / 0
        if kind == "name":
            return undefined_name
    except KeyError as error:
        return "caught", repr(error)
    finally:
        pass


def raises_at_line():
    data = {}
    value = 1
    return data["nope"] + value


def generators(n):
    def gen():
        total = 0
        for i in range(n):
            got = yield i
            total += got or 0
        yield from [total]
    g = gen()
    first = next(g)
    return first, g.send(5), list(g)


async def coroutine(values):
    async def double(v):
        return v * 2
    return [await double(v) for v in values]


def matching(point):
    match point:
        case {"x": 0, "y": y}:
            return "on y", y
        case [x, y, *rest]:
            return "seq", x, y, rest
        case Child(n=n):
            return "child", n
        case _:
            return "other"


def frames():
    import sys
    here = sys._getframe(0).f_code.co_name
    caller = sys._getframe(1).f_code.co_name
    names = sorted(name for name in locals() if not name.startswith("_pytest"))
    return here, caller, names


def warns():
    warnings.warn("careful", UserWarning, stacklevel=2)


def deletes():
    global COUNT
    x = 1
    holder = {"k": 1, "j": 2}
    del x, holder["k"]
    COUNT = 5
    del COUNT
    return "x" in locals(), holder, "COUNT" in globals()


def decorated():
    @functools.lru_cache(maxsize=None)
    def cached(v):
        return v + 1
    class Local:
        size = cached(1)
        def twice(self):
            return self.size * 2
    return cached(1), Local().twice(), Local.__qualname__


_Mangled__hidden = 0


class Mangled:
    def private_names(self):
        global __hidden
        __hidden = 5
        __hidden += 1
        __local = __hidden * 10
        def inner():
            nonlocal __local
            __local += 1
            return __local
        del __hidden
        return inner(), __local, "_Mangled__hidden" in globals()


def make_adder(n):
    def add(v):
        return v + n
    return add


def imports():
    import json
    from os import path as os_path
    from collections import OrderedDict
    return json.dumps([1]), os_path.sep, OrderedDict(a=1)
'''


@pytest.fixture
def program(tmp_path, monkeypatch):
    path = tmp_path / "rewritten_program.py"
    path.write_text(PROGRAM)
    spec = importlib.util.spec_from_file_location("rewritten_program", path)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "rewritten_program", module)
    spec.loader.exec_module(module)
    return module


def _outcome(function, *args):
    try:
        return ("value", function(*args))
    except Exception as error:  # noqa: BLE001 - the exception is the outcome
        return ("raised", type(error).__name__, str(error))


CASES = [
    ("globals_and_cells", ()), ("comprehensions", ([1, 2, 3],)),
    ("calls", (4, 5)), ("duplicate_keyword", ()), ("comparisons", (2, 3, 4)),
    ("comparisons", (0, 0, 1)), ("strings", ("n", 2.5)), ("walrus", ([1, 2, 3],)),
    ("walrus", ([1],)), ("with_and_for", ([(1, 2), (3, 4), (5, 6)],)),
    ("exceptions", ("key",)), ("exceptions", ("attr",)), ("exceptions", ("zero",)),
    ("exceptions", ("name",)), ("generators", (3,)), ("matching", ({"x": 0, "y": 2},)),
    ("matching", ([1, 2, 3, 4],)), ("deletes", ()), ("decorated", ()), ("imports", ()),
]


def _run_all(module):
    child = module.Child()
    results = [(name, _outcome(getattr(module, name), *args)) for name, args in CASES]
    results += [(f"Child.{method}", _outcome(getattr(child, method)))
                for method in ("greet", "secret", "attributes", "subscripts")]
    results.append(("matching child", _outcome(module.matching, child)))
    results.append(("Mangled.private_names", _outcome(module.Mangled().private_names)))
    import asyncio
    results.append(("coroutine", asyncio.run(module.coroutine([1, 2]))))
    module.COUNT = 0
    return results


def _swapped(module):
    swap = codeswap.Swap(lambda filename: filename == module.__file__)
    swap.start([module])
    return swap


def test_the_rewritten_program_computes_what_the_original_computes(program):
    original = _run_all(program)
    program.COUNT = 0
    swap = _swapped(program)
    try:
        assert swap.swapped, swap.failed
        assert swap.seen(program.calls.__code__)
        rewritten = _run_all(program)
    finally:
        swap.stop()
    assert rewritten == original
    assert not swap.seen(program.calls.__code__)  # every function has its own code back


def test_an_exception_is_raised_at_the_same_line_with_the_same_message(program):
    def failure():
        try:
            program.raises_at_line()
        except KeyError as error:
            frames = [entry for entry in traceback.extract_tb(error.__traceback__)
                      if entry.filename == program.__file__]
            return repr(error), [(entry.name, entry.lineno, entry.line) for entry in frames]
        raise AssertionError("no KeyError")

    original = failure()
    swap = _swapped(program)
    try:
        rewritten = failure()
    finally:
        swap.stop()
    assert rewritten == original


def test_frames_super_and_warnings_see_the_users_code(program):
    def observe():
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            program.warns()
        return program.frames(), [(w.filename, w.lineno) for w in caught]

    original = observe()
    swap = _swapped(program)
    try:
        rewritten = observe()
        assert program.Child().greet() == "child+base"
    finally:
        swap.stop()
    assert rewritten == original
    assert original[1][0][0] == __file__  # stacklevel=2 named this test's line


def test_functions_made_by_rewritten_code_get_their_own_code_back(program):
    swap = _swapped(program)
    try:
        program.kept = program.make_adder(1)  # made by rewritten code: rewritten too
        assert swap.seen(program.kept.__code__)
    finally:
        swap.stop()
    assert not swap.seen(program.kept.__code__)
    assert program.kept(2) == 3


def test_the_code_objects_of_a_rewritten_module_line_up_with_the_original():
    for module in (json.decoder, ast, traceback, textwrap):
        source = open(module.__file__).read()
        original = code_tree(compile(source, module.__file__, "exec", dont_inherit=True))
        rewritten, _cells, _names = compile_rewritten(ast.parse(source), source,
                                                      module.__file__)
        assert [(c.co_name, c.co_firstlineno) for c in code_tree(rewritten)] == \
            [(c.co_name, c.co_firstlineno) for c in original]


def test_a_closure_variable_has_one_key_in_the_function_that_defines_it_and_its_inner_ones():
    source = textwrap.dedent('''
        def outer():
            n = 0
            def inner():
                nonlocal n
                n += 1
            inner()
            return n
        ''')
    rewriter = Rewriter(ast.parse(source), source, "m.py")
    rewriter.rewrite()
    assert len(rewriter.cells) == 1 and rewriter.cells[0].name == "n"


def test_outside_a_worker_the_hooks_only_give_the_value_back():
    box = types.SimpleNamespace(value=3)
    assert hooks.attr_r(box, "value", ("point", ("f.py", 1, "f", None))) is box
    assert hooks.getitem({"k": 2}, "k", ("point", ("f.py", 1, "f", None))) == 2
    assert hooks.binop(2, 3, "add", ("point", ("f.py", 1, "f", None))) == 5

