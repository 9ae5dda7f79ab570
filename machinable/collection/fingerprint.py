"""A trial's code fingerprint: the project files its component's module imports, each with its content hash.

The files are found from the source, not from ``sys.modules``: a process that collected a project has imported
every component's module, so what is loaded says nothing about what one component uses. Each project file's
``import`` statements (anywhere in it: in functions too, which run when the trial calls them) name the modules
it imports; those inside the project root are followed, with the packages (``__init__.py``) they pass through.
Modules outside the project (the standard library, installed packages) are not part of it: their versions are
in the execution's provenance. YAML files are not either: what of them reaches a trial is its resolved
configuration, which is part of the trial's identity on its own.

Files are read and parsed once per interpreter and change (mtime and size), so fingerprinting 10,000 trials of a
few components costs a few closures.
"""

from __future__ import annotations

import ast
import hashlib
import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

_T = TypeVar("_T")


def _by_change(cache: dict[str, tuple[tuple[int, int], Any]], path: str, compute: Callable[[str], _T]) -> _T:
    """``compute(path)``, once per change of the file (its mtime and size): a file is read and parsed once per
    edit, not once per trial or collection."""
    stat = os.stat(path)
    key = (stat.st_mtime_ns, stat.st_size)
    cached = cache.get(path)
    if cached is not None and cached[0] == key:
        return cached[1]
    value = compute(path)
    cache[path] = (key, value)
    return value


_FILES: dict[str, tuple[tuple[int, int], Any]] = {}


def _read(path: str) -> tuple[str, tuple[tuple[str, int], ...]]:
    """(content hash, the modules its import statements name as (dotted name, relative level))."""
    return _by_change(_FILES, path, _read_file)


def _read_file(path: str) -> tuple[str, tuple[tuple[str, int], ...]]:
    with open(path, "rb") as handle:
        data = handle.read()
    digest = hashlib.sha1(data, usedforsecurity=False).hexdigest()[:16]
    try:
        tree = ast.parse(data, filename=path)
    except (SyntaxError, ValueError):  # the trial reports it; its bytes are still what it ran
        return digest, ()
    return digest, tuple(_imports(tree))


def _imports(tree: ast.AST) -> Iterable[tuple[str, int]]:
    """(dotted name, relative level) of every module an import statement may load."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, 0
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            yield base, node.level
            for alias in node.names:  # ``from pkg import mod`` loads the submodule pkg.mod when there is one
                if alias.name != "*":
                    yield (f"{base}.{alias.name}" if base else alias.name), node.level


class Fingerprints:
    """The fingerprints of modules of one project root, computed once per module name."""

    def __init__(self, root: str | os.PathLike[str], mode: str = "imported") -> None:
        self.root = os.path.realpath(root)
        self.mode = mode  # settings: code_identity: 'imported' (these), or 'executed' (measured in the trial)
        self._closures: dict[str, dict[str, str]] = {}

    @classmethod
    def of_project(cls, project: Any) -> Fingerprints:
        """For a collection of ``project`` (its ``settings: code_identity:``); files may change between two."""
        return cls(project.root, project.settings.get("code_identity") or "imported")

    def fields(self, module: str) -> dict[str, Any]:
        """A spec's ``code`` and ``code_identity``."""
        return {"code": self.of_module(module), "code_identity": self.mode}

    def of_module(self, module: str) -> dict[str, str]:
        """{path relative to the root: content hash} of ``module``'s file and every project file it imports."""
        found = self._closures.get(module)
        if found is None:
            found = self._closures[module] = self._closure(self._files_of(module))
        return found

    def _closure(self, start: list[str]) -> dict[str, str]:
        hashes: dict[str, str] = {}
        todo = list(start)
        while todo:
            path = todo.pop()
            rel = os.path.relpath(path, self.root).replace(os.sep, "/")
            if rel in hashes:
                continue
            try:
                digest, names = _read(path)
            except OSError:
                continue  # removed meanwhile: the trial's import fails and says so
            hashes[rel] = digest
            package = self._package_of(path)
            for name, level in names:
                todo.extend(self._files_of(_absolute(name, level, package)))
        return dict(sorted(hashes.items()))

    def _package_of(self, path: str) -> str:
        rel = Path(os.path.relpath(path, self.root))
        parts = list(rel.parent.parts) if rel.parent != Path(".") else []
        return ".".join(parts)

    def _files_of(self, module: str) -> list[str]:
        """The project files importing ``module`` executes: each package on the way, then the module."""
        if not module:
            return []
        files = []
        parts = module.split(".")
        for depth in range(1, len(parts) + 1):
            base = os.path.join(self.root, *parts[:depth])
            for candidate in (base + ".py", os.path.join(base, "__init__.py")):
                if os.path.isfile(candidate):
                    files.append(candidate)
                    break
        return files


def _absolute(name: str, level: int, package: str) -> str:
    if level == 0:
        return name
    parts = package.split(".") if package else []
    if level - 1 > len(parts):
        return ""  # beyond the project's top: not a project module
    base = parts[: len(parts) - (level - 1)]
    return ".".join([*base, name] if name else base)


def changed(code: Mapping[str, str], root: str | os.PathLike[str]) -> list[str]:
    """The entries of a stored fingerprint (files, or ``file::function`` of an executed one) whose content
    differs now or is gone, relative to ``root``."""
    now = current(code, root)
    return sorted(key for key, digest in code.items() if now.get(key) != digest)


def current(code: Mapping[str, str], root: str | os.PathLike[str]) -> dict[str, str]:
    """The hashes the entries of ``code`` have now (an entry that is gone is left out)."""
    out: dict[str, str] = {}
    for key in code:
        rel, sep, name = key.partition(SEP)
        path = os.path.join(root, rel)
        try:
            digest = _analysis(path)[1].get(name) if sep else _read(path)[0]
        except OSError:
            continue
        if digest is not None:
            out[key] = digest
    return out


# -- executed code (settings: code_identity: executed) ---------------------------------------------------------

SEP = (
    "::"  # 'helper.py::Model.forward': a function of a file; 'helper.py::<module>': its top-level statements
)
MODULE = "<module>"


def executed(lines: Mapping[str, Iterable[int]], root: str | os.PathLike[str]) -> dict[str, str]:
    """The fingerprint of what a trial executed: for every project file it ran code of (``lines``: absolute path
    -> executed line numbers, e.g. the first lines of the functions it called), each function containing such a
    line and the file's top-level statements, by the hash of their source. An edit to a function the trial never
    called leaves it unchanged."""
    root = os.path.realpath(root)
    code: dict[str, str] = {}
    for path, numbers in lines.items():
        real = os.path.realpath(path)
        if not real.startswith(os.path.join(root, "")):
            continue
        rel = os.path.relpath(real, root).replace(os.sep, "/")
        ran = set(numbers)
        spans, parts = _analysis(real)
        for name, (first, last) in spans.items():
            if any(first <= n <= last for n in ran):
                code[f"{rel}{SEP}{name}"] = parts[name]
        code[f"{rel}{SEP}{MODULE}"] = parts[MODULE]
    return dict(sorted(code.items()))


_ANALYSES: dict[str, tuple[tuple[int, int], Any]] = {}


def _analysis(path: str) -> tuple[dict[str, tuple[int, int]], dict[str, str]]:
    """(qualified function name -> (first line, last line); hashes of each function's source by that name and
    of the top-level statements, ``<module>``)."""
    return _by_change(_ANALYSES, path, _analyse)


def _analyse(path: str) -> tuple[dict[str, tuple[int, int]], dict[str, str]]:
    with open(path, "rb") as handle:
        source = handle.read().decode("utf-8", errors="replace")
    tree = ast.parse(source, filename=path)
    lines = source.splitlines()
    spans: dict[str, tuple[int, int]] = {}

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                name = f"{prefix}{child.name}"
                if not isinstance(child, ast.ClassDef):
                    # a decorated function's code starts at its first decorator
                    first = min([child.lineno, *(d.lineno for d in child.decorator_list)])
                    spans[name] = (first, child.end_lineno or child.lineno)
                visit(child, name + ".")

    visit(tree, "")
    hashes = {name: _hash("\n".join(lines[first - 1 : last])) for name, (first, last) in spans.items()}
    top = [
        node
        for node in tree.body
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
    ]
    hashes[MODULE] = _hash("\n".join("\n".join(lines[n.lineno - 1 : n.end_lineno or n.lineno]) for n in top))
    return spans, hashes


def _hash(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8"), usedforsecurity=False).hexdigest()[:16]
