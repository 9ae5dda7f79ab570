"""The shape of the package: stages import each other in one direction, nothing imports in a cycle, and
modules and functions stay small enough to read.

Which stage may import which is written as import-linter contracts in pyproject.toml ([tool.importlinter]);
docs/architecture.md maps the packages.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections import deque
from collections.abc import Iterator
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "machinable"
MAX_MODULE_LINES = 450
MAX_FUNCTION_LINES = 60
# `python -m importlinter.cli` exits 0 without checking anything (the module has no __main__ block), so the
# console script's entry point is called directly: this works with or without the script on PATH.
LINT_IMPORTS = "from importlinter.cli import lint_imports_command; lint_imports_command()"

Graph = dict[str, set[str]]


@cache
def modules() -> dict[str, Path]:
    """Every module of the package by dotted name; a package is its ``__init__.py``."""
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def is_type_checking(test: ast.expr) -> bool:
    """``if TYPE_CHECKING:`` (or ``typing.TYPE_CHECKING``): its body never runs, so its imports are no edge."""
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def runtime_imports(node: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import statement that can run, at any depth: one inside a function runs when it is called and
    closes a cycle just as well, only later and harder to debug."""
    if isinstance(node, ast.Import | ast.ImportFrom):
        yield node
    elif isinstance(node, ast.If) and is_type_checking(node.test):
        for statement in node.orelse:
            yield from runtime_imports(statement)
    else:
        for child in ast.iter_child_nodes(node):
            yield from runtime_imports(child)


def absolute(statement: ast.ImportFrom, importer: str) -> str:
    """The module a ``from`` import reads from, relative imports resolved against the importer's package."""
    if not statement.level:
        return statement.module or ""
    is_package = modules()[importer].name == "__init__.py"
    base = importer.split(".")
    base = base[: len(base) - statement.level + (1 if is_package else 0)]
    return ".".join([*base, statement.module] if statement.module else base)


def imported_modules(statement: ast.Import | ast.ImportFrom, importer: str, known: set[str]) -> set[str]:
    """The package's modules a statement imports: ``from pkg import sub`` names the submodule when ``sub`` is
    one and ``pkg`` otherwise; a submodule's parent packages are not counted (their ``__init__`` runs, but
    importing them is not what the code depends on)."""
    if isinstance(statement, ast.Import):
        return {alias.name for alias in statement.names} & known
    source = absolute(statement, importer)
    found = set()
    for alias in statement.names:
        name = f"{source}.{alias.name}"
        found.add(name if name in known else source)
    return found & known


def import_graph(sources: dict[str, str]) -> Graph:
    """Module -> the modules it imports at run time, from the source text of every module."""
    known = set(sources)
    graph: Graph = {}
    for name, text in sources.items():
        edges = set()
        for statement in runtime_imports(ast.parse(text)):
            edges |= imported_modules(statement, name, known)
        graph[name] = edges - {name}
    return graph


def strongly_connected(graph: Graph) -> list[list[str]]:
    """Tarjan's strongly connected components, iterative (a long import chain must not hit the recursion
    limit); a component of more than one module is a set of modules that import each other in a cycle."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph.get(start, ()))))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, edges = work[-1]
            for target in edges:
                if target not in index:
                    index[target] = low[target] = len(index)
                    stack.append(target)
                    on_stack.add(target)
                    work.append((target, iter(sorted(graph.get(target, ())))))
                    break
                if target in on_stack:
                    low[node] = min(low[node], index[target])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while not component or component[-1] != node:
                        component.append(stack.pop())
                        on_stack.discard(component[-1])
                    components.append(sorted(component))
    return components


def shortest_cycle(graph: Graph, start: str, within: set[str]) -> list[str]:
    """The shortest way from ``start`` back to itself inside one component, found breadth first, so that a
    reported cycle is one a reader can follow import by import."""
    came_from: dict[str, str] = {}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        for target in sorted(graph[node] & within):
            if target == start:
                path = [node]
                while path[-1] != start:
                    path.append(came_from[path[-1]])
                return [*reversed(path), start]
            if target not in came_from:
                came_from[target] = node
                queue.append(target)
    raise AssertionError(f"{start} is in a component but on no cycle")


def find_cycles(graph: Graph) -> list[str]:
    """Every import cycle as ``a -> b -> a``: the shortest cycle through each module of each component, each
    cycle listed once, so that every module caught in a cycle shows up in the failure."""
    found = []
    for component in strongly_connected(graph):
        if len(component) == 1:
            continue  # a module on its own (import_graph leaves out self-imports)
        for module in component:
            cycle = shortest_cycle(graph, module, set(component))
            turn = cycle.index(min(cycle[:-1]))
            line = " -> ".join([*cycle[turn:-1], *cycle[:turn], cycle[turn]])
            if line not in found:
                found.append(line)
    return found


def test_the_import_contracts_in_pyproject_hold():
    result = subprocess.run(
        [sys.executable, "-c", LINT_IMPORTS, "--no-logo", "--no-cache"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "0 broken" in output, output  # contracts were actually checked


def test_no_modules_import_each_other_in_a_cycle():
    graph = import_graph({name: path.read_text() for name, path in modules().items()})
    cycles = find_cycles(graph)
    assert not cycles, "modules that import each other in a cycle:\n" + "\n".join(cycles)


def test_the_cycle_finder_reports_a_cycle():
    graph = {"a": {"b"}, "b": {"c", "d"}, "c": {"a"}, "d": set(), "e": {"a"}}
    assert find_cycles(graph) == ["a -> b -> c -> a"]


def test_imports_in_functions_count_and_type_checking_imports_do_not():
    source = (
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from machinable import cli\n"
        "def later():\n    from machinable.storage import Storage, writer\n"
    )
    others = dict.fromkeys(["machinable.cli", "machinable.storage", "machinable.storage.writer"], "")
    assert import_graph({"m": source, **others})["m"] == {"machinable.storage", "machinable.storage.writer"}


def test_no_module_is_longer_than_the_limit():
    long = [
        f"{path.relative_to(ROOT)} ({lines} lines)"
        for path in modules().values()
        if (lines := len(path.read_text().splitlines())) > MAX_MODULE_LINES
    ]
    assert not long, "longer than the limit:\n" + "\n".join(long)


def test_no_function_is_longer_than_the_limit():
    long = []
    for path in modules().values():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({lines} lines)")
    assert not long, "longer than the limit:\n" + "\n".join(long)
