"""Includes: a value ``$/relative/path.yaml`` is replaced by that file's content.

Paths are relative to the project root, also inside included files, and must stay inside it once symlinks are
resolved: configuration is stored with every trial, so an include could otherwise copy any readable file of the
machine (``$/../../etc/passwd``, ``$//etc/hostname``) into the results. Files are read once per project.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from machinable.config.errors import IncludeError
from machinable.config.loader import LoadedYaml, load_file

PREFIX = "$/"


def is_include(value: Any) -> bool:
    return type(value) is str and value.startswith(PREFIX)


class Includes:
    """Reads and caches included files of one project."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._real_root = root.resolve()
        self._cache: dict[Path, Any] = {}
        self._loading: list[Path] = []

    def expand(self, loaded: LoadedYaml) -> Any:
        """``loaded.data`` with every include replaced (recursively); errors name the including line."""
        return self._expand(loaded.data, loaded, ())

    def load(self, value: str, where: str) -> Any:
        """The content of the include ``value`` (``$/x.yaml``), its own includes expanded."""
        # An absolute path after the prefix ($//etc/hostname) replaces the root in the join: refused below too.
        path = (self._real_root / value[len(PREFIX) :]).resolve()
        if not path.is_relative_to(self._real_root):
            raise IncludeError(
                f"{where}: included file '{value}' lies outside the project root ({self._real_root}): "
                "includes are read from the project only"
            )
        if path in self._cache:
            return self._cache[path]
        if path in self._loading:
            chain = " -> ".join(os.path.relpath(p, self._real_root) for p in [*self._loading, path])
            raise IncludeError(f"{where}: include cycle: {chain}")
        if not path.is_file():
            raise IncludeError(f"{where}: included file '{value}' does not exist (looked for {path})")
        self._loading.append(path)
        try:
            content = self.expand(load_file(path))
        finally:
            self._loading.pop()
        self._cache[path] = content
        return content

    def _expand(self, value: Any, loaded: LoadedYaml, path: tuple) -> Any:
        if is_include(value):
            return self.load(value, loaded.where(path))
        if isinstance(value, Mapping):
            return {key: self._expand(item, loaded, path + (key,)) for key, item in value.items()}
        if isinstance(value, list):
            return [self._expand(item, loaded, path + (index,)) for index, item in enumerate(value)]
        return value
