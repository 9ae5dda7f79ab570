"""Safe YAML loading that keeps line numbers for error messages.

Only ``safe_load`` semantics are ever used (no Python object tags). Besides the data, :func:`load_file` returns
the 1-based line of every mapping key and sequence item, keyed by its path from the top, so later errors can say
``machinable.yaml:7`` instead of a bare key name.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import yaml

from machinable.config.errors import YamlSyntaxError
from machinable.errors import ConfigError

# libyaml is ~10x faster; the pure-Python loader is identical in behaviour.
_Loader: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

Path = tuple  # a key path: ('components', 0, 'optimization', 'data')


@dataclass(frozen=True)
class LoadedYaml:
    """A parsed YAML document and the lines where its keys were written."""

    path: str
    data: Any
    lines: dict[Path, int] = field(default_factory=dict)

    def line(self, path: Path) -> int | None:
        """The line of ``path`` or of its closest ancestor that has one."""
        while path:
            found = self.lines.get(path)
            if found is not None:
                return found
            path = path[:-1]
        return None

    def where(self, path: Path) -> str:
        """``file:line`` for messages (just ``file`` when the line is unknown)."""
        line = self.line(path)
        return f"{self.path}:{line}" if line else self.path


def load_file(path: str | os.PathLike[str]) -> LoadedYaml:
    """Parse a YAML file; a syntax error becomes a :class:`YamlSyntaxError` naming file, line and column."""
    name = os.fspath(path)
    try:
        with open(name, encoding="utf-8") as stream:
            text = stream.read()
    except OSError as exc:
        raise ConfigError(f"cannot read {name}: {exc.strerror or exc}") from exc
    return load_text(text, name)


def load_text(text: str, name: str = "<string>") -> LoadedYaml:
    """Parse YAML text (``name`` is only used in messages)."""
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        raise _syntax_error(exc, name) from None
    except yaml.YAMLError as exc:
        raise YamlSyntaxError(f"{name}: invalid YAML: {exc}", name) from None
    finally:
        loader.dispose()
    lines: dict[Path, int] = {}
    if node is not None:
        _collect_lines(node, (), lines)
    return LoadedYaml(name, data, lines)


def parse_mapping_string(text: str) -> Any:
    """Parse a version given as a YAML string; the caller checks that it is a mapping."""
    try:
        return yaml.load(text, Loader=_Loader)  # _Loader is a safe loader
    except yaml.MarkedYAMLError as exc:
        raise _syntax_error(exc, "version string") from None
    except yaml.YAMLError as exc:
        raise YamlSyntaxError(f"version string: invalid YAML: {exc}", "version string") from None


def _syntax_error(exc: yaml.MarkedYAMLError, name: str) -> YamlSyntaxError:
    mark = exc.problem_mark or exc.context_mark
    line = mark.line + 1 if mark is not None else None
    column = mark.column + 1 if mark is not None else None
    problem = exc.problem or "invalid YAML"
    if exc.context:
        problem = f"{problem} ({exc.context})"
    where = f"{name}:{line}:{column}" if line is not None else name
    return YamlSyntaxError(f"{where}: invalid YAML: {problem}", name, line, column)


def _collect_lines(node: yaml.Node, path: Path, lines: dict[Path, int]) -> None:
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                continue
            key = _scalar_key(key_node)
            lines[path + (key,)] = key_node.start_mark.line + 1
            _collect_lines(value_node, path + (key,), lines)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            lines[path + (index,)] = item.start_mark.line + 1
            _collect_lines(item, path + (index,), lines)


def _scalar_key(node: yaml.ScalarNode) -> Any:
    # Keys are nearly always strings; resolve the few others (ints, bools) like the constructor did.
    if node.tag == "tag:yaml.org,2002:str":
        return node.value
    try:
        return yaml.safe_load(node.value)
    except yaml.YAMLError:
        return node.value
