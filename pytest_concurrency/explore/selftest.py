"""Whether DPOR's access observation works on this interpreter: a small program,
rewritten and run, must make the hook calls it should and compute what the
original computes.  Run once per process, at the first DPOR exploration."""

from __future__ import annotations

import ast
import functools
import traceback
from typing import Any

from . import hooks
from .rewrite import CELL_PREFIX, GLOBALS, GLOBALS_PROXY, HOOKS, code_tree, compile_rewritten, fill

PROBE = '''
total = 0

def probe(box, items, key):
    global total
    box.value += 1
    items[key] = box.value
    total += len(items)
    seen = [x for x in items if items[x] > 0]
    def inner():
        nonlocal seen
        seen = seen + [key]
        return seen
    return inner(), sorted(items.items()), total, f"{box.value}"
'''


class _Box:
    value = 0


def _run(rewritten: bool, names: set[str]) -> tuple[Any, ...]:
    """The probe's results, run as compiled or rewritten (``names``: the hooks the
    rewritten code refers to)."""
    namespace: dict[str, Any] = {"__name__": "dpor_probe"}
    if not rewritten:
        exec(compile(PROBE, "<dpor-probe>", "exec", dont_inherit=True), namespace)  # noqa: S102
    else:
        code, cells, _names = compile_rewritten(ast.parse(PROBE), PROBE, "<dpor-probe>")
        values: dict[str, object] = {HOOKS: hooks, GLOBALS: namespace,
                                     GLOBALS_PROXY: hooks.GlobalsProxy(namespace)}
        values.update({f"{CELL_PREFIX}{n}": cell for n, cell in enumerate(cells)})
        filled = fill(code, values.__getitem__)
        for each in code_tree(filled):
            names.update(each.co_names)
        exec(filled, namespace)  # noqa: S102
    box = _Box()
    return namespace["probe"](box, {"a": 1}, "b"), box.value


@functools.cache
def problem() -> str | None:
    """Why DPOR cannot observe accesses here; None when it can."""
    try:
        names: set[str] = set()
        plain = _run(False, names)
        rewritten = _run(True, names)
    except Exception:  # noqa: BLE001 - any failure is the answer
        last = traceback.format_exc().strip().splitlines()[-1]
        return f"its rewritten code does not run on this interpreter ({last})"
    if plain != rewritten:
        return f"its rewritten code computes {rewritten!r}, the original {plain!r}"
    wanted = {"attr_r", "attr_pop_w", "inplace", "item_w2", "gread", "call", "iter",
              "cread", "cwrite", "fmt"}
    missing = wanted - names
    if missing:
        return f"its rewritten code does not call the hooks {sorted(missing)}"
    return None
