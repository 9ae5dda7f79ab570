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
from collections.abc import Iterable, Mapping
from pathlib import Path

# path -> ((mtime_ns, size), content hash, imported module names as (name, level, package))
_FILES: dict[str, tuple[tuple[int, int], str, tuple[tuple[str, int], ...]]] = {}


def _read(path: str) -> tuple[str, tuple[tuple[str, int], ...]]:
    stat = os.stat(path)
    key = (stat.st_mtime_ns, stat.st_size)
    cached = _FILES.get(path)
    if cached is not None and cached[0] == key:
        return cached[1], cached[2]
    with open(path, "rb") as handle:
        data = handle.read()
    digest = hashlib.sha1(data, usedforsecurity=False).hexdigest()[:16]
    try:
        tree = ast.parse(data, filename=path)
    except (SyntaxError, ValueError):  # the trial reports it; its bytes are still what it ran
        names: tuple[tuple[str, int], ...] = ()
    else:
        names = tuple(_imports(tree))
    _FILES[path] = (key, digest, names)
    return digest, names


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

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = os.path.realpath(root)
        self._closures: dict[str, dict[str, str]] = {}

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
    """The files of a stored fingerprint whose content differs now (or that are gone), relative to ``root``."""
    out = []
    for rel, digest in code.items():
        path = os.path.join(root, rel)
        try:
            now, _ = _read(path)
        except OSError:
            out.append(rel)
            continue
        if now != digest:
            out.append(rel)
    return out
