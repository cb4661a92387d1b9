"""The package's layering, read from its imports (top-level and inside functions):
no import cycles; runners reached only through ``runners.run(request)``; reports
that read results and never import a runner; annotated functions throughout."""

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "pytest_concurrency"
RUNNERS = {f"pytest_concurrency.runners.{name}"
           for name in ("thread", "process", "hybrid", "explore")}


def module_name(path: pathlib.Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: pathlib.Path, name: str) -> set[str]:
    """The package modules ``path`` (module ``name``) imports, anywhere in it."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[:len(anchor) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return {m for m in found if m.startswith("pytest_concurrency")}


def graph(directory: pathlib.Path = PACKAGE) -> dict[str, set[str]]:
    paths = {module_name(p): p for p in sorted(directory.rglob("*.py"))}
    known = set(paths) | {module_name(p) for p in PACKAGE.rglob("*.py")}
    edges = {}
    for name, path in paths.items():
        edges[name] = {m for m in imports(path, name) if m in known and m != name}
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in edges.get(node, ()):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def test_the_package_has_no_import_cycles():
    edges = graph()
    # a package's __init__ importing its own submodules is how packages work, not a cycle
    for name in edges:
        edges[name] = {m for m in edges[name] if not name.startswith(m + ".")
                       or not (PACKAGE.parent / m.replace(".", "/") / "__init__.py").exists()}
    assert cycles(edges) == []


def test_runner_modules_are_reached_only_through_run_request():
    edges = graph()
    tests = graph(ROOT / "tests")
    importers = {name: sorted(runner for runner in RUNNERS if runner in deps)
                 for name, deps in {**edges, **tests}.items()}
    offenders = {name: found for name, found in importers.items()
                 if found and name != "pytest_concurrency.runners"}
    assert offenders == {}


def test_reports_never_import_a_runner():
    edges = graph()
    for name, deps in edges.items():
        if name.startswith("pytest_concurrency.report"):
            assert not {d for d in deps if d.startswith("pytest_concurrency.runners")}, name


def test_public_runner_interface():
    from pytest_concurrency import runners

    assert set(runners.__all__) >= {"RunRequest", "RunOutcome", "run"}
    request = runners.RunRequest.__dataclass_params__
    assert request.frozen


@pytest.mark.parametrize("minimum", [0.95])
def test_functions_are_annotated(minimum):
    """At least 95% of the package's functions say what they return or take."""
    total, annotated, missing = 0, 0, []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                total += 1
                args = [a for a in node.args.args + node.args.kwonlyargs
                        if a.arg not in ("self", "cls")]
                if node.returns is not None or any(a.annotation is not None for a in args):
                    annotated += 1
                else:
                    missing.append(f"{module_name(path)}.{node.name}")
    assert annotated / total >= minimum, (f"{annotated}/{total} annotated; first missing: "
                                          f"{missing[:20]}")
