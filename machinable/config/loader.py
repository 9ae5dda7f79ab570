"""Safe YAML loading that keeps line numbers for error messages.

Only ``safe_load`` semantics are ever used (no Python object tags). Besides the data, :func:`load_file` returns
the 1-based line of every mapping key and sequence item, keyed by its path from the top, so later errors can say
``machinable.yaml:7`` instead of a bare key name.

Two departures from PyYAML's defaults, both because configurations are written by hand:

- ``1e-3`` and ``1.5e3`` are floats (YAML 1.1 wants ``1.0e-3``; PyYAML reads the others as strings, a classic
  learning-rate bug);
- a key written twice in one mapping is an error (PyYAML silently keeps the last one, so a second
  ``components:`` section or a repeated ``~version`` would drop the first without a word).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from machinable.config.errors import YamlSyntaxError
from machinable.errors import ConfigError

# libyaml is ~10x faster; the pure-Python loader is identical in behaviour.
_SafeLoader: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_SafeLoader):  # type: ignore[misc,valid-type]
    """The safe loader, plus floats in exponent notation without a dot or without an exponent sign."""

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        # PyYAML lets Python's own errors out of a few scalars ('2001-02-30', '!!int abc'); give them a line.
        try:
            return super().construct_object(node, deep)
        except (ValueError, TypeError, OverflowError) as exc:
            raise yaml.constructor.ConstructorError(
                None, None, f"cannot read the value '{getattr(node, 'value', '')}' ({exc})", node.start_mark
            ) from None


_FLOAT_TAG = "tag:yaml.org,2002:float"
_STR_TAG = "tag:yaml.org,2002:str"
# Appended after PyYAML's own float resolver, so this only decides what that one leaves to strings.
_Loader.add_implicit_resolver(
    _FLOAT_TAG,
    re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9][0-9_]*)[eE][-+]?[0-9]+$"),
    list("-+0123456789."),
)

# YAML 1.1's base-60 numbers are gone in YAML 1.2 and surprise everyone (``time: 4:00:00`` read as 14400): such
# scalars are strings here, PyYAML's int and float resolvers without their sexagesimal forms.
_INT_TAG = "tag:yaml.org,2002:int"
_SEXAGESIMAL = re.compile(r"^[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?$")
for _first, _resolvers in list(_Loader.yaml_implicit_resolvers.items()):
    _Loader.yaml_implicit_resolvers[_first] = [
        (tag, re.compile(f"(?!{_SEXAGESIMAL.pattern})(?:{regexp.pattern})", regexp.flags))
        if tag in (_INT_TAG, _FLOAT_TAG)
        else (tag, regexp)
        for tag, regexp in _resolvers
    ]

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
        with open(name, "rb") as stream:
            data = stream.read()
    except OSError as exc:
        raise ConfigError(f"cannot read {name}: {exc.strerror or exc}") from exc
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        problem = f"byte 0x{data[exc.start]:02x} is not UTF-8 text; save the file as UTF-8"
        raise YamlSyntaxError(f"{name}:{line}:{column}: {problem}", name, line, column, problem) from None
    return load_text(text, name)


def load_text(text: str, name: str = "<string>") -> LoadedYaml:
    """Parse YAML text (``name`` is only used in messages)."""
    loader = _Loader(text)
    lines: dict[Path, int] = {}
    try:
        node = loader.get_single_node()
        if node is None:
            return LoadedYaml(name, None, lines)
        # Lines (and duplicate keys) come from the nodes as written: construction merges '<<' keys into them.
        _collect_lines(node, (), lines, name, set())
        _AliasCount(name).size(node, node)
        data = loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        raise _syntax_error(exc, name) from None
    except yaml.YAMLError as exc:
        raise YamlSyntaxError(f"{name}: invalid YAML: {exc}", name) from None
    except RecursionError:
        problem = "nested too deeply (brackets or indentation thousands of levels deep)"
        raise YamlSyntaxError(f"{name}: invalid YAML: {problem}", name, problem=problem) from None
    finally:
        loader.dispose()
    return LoadedYaml(name, data, lines)


def parse_mapping_string(text: str, name: str = "version string") -> Any:
    """Parse a version given as a YAML string; the caller checks that it is a mapping."""
    return load_text(text, name).data


def reads_as_string(text: str) -> bool:
    """True when ``text``, written as a plain YAML scalar, would be read back as this string (not ``true``,
    ``null``, ``1e-5``, ``''`` ...)."""
    if (
        text[:1] in _INDICATORS
        or ": " in text
        or " #" in text
        or text[-1:] == ":"
        or text[:2] in ("- ", "? ")
    ):
        return False  # a flow collection, an alias, a tag, a quoted string, a comment, a mapping ...
    candidates = _Loader.yaml_implicit_resolvers.get(text[:1], [])
    return not any(regexp.match(text) for _, regexp in candidates)


_INDICATORS = frozenset("[]{},&*!|>'\"%@`#")


def _syntax_error(exc: yaml.MarkedYAMLError, name: str) -> YamlSyntaxError:
    mark = exc.problem_mark or exc.context_mark
    line = mark.line + 1 if mark is not None else None
    column = mark.column + 1 if mark is not None else None
    problem = exc.problem or "invalid YAML"
    if exc.context:
        # Where an unclosed bracket or quote began is usually the line to fix; the problem mark is where the
        # parser gave up, often the end of the file.
        start = exc.context_mark
        began = (
            f" that starts at {start.line + 1}:{start.column + 1}"
            if start is not None and start != mark
            else ""
        )
        problem = f"{problem} ({exc.context}{began})"
    where = f"{name}:{line}:{column}" if line is not None else name
    return YamlSyntaxError(f"{where}: invalid YAML: {problem}", name, line, column, problem)


def _collect_lines(node: yaml.Node, path: Path, lines: dict[Path, int], name: str, seen: set[int]) -> None:
    if id(node) in seen:
        return  # an alias: walked once, at its anchor (walking it again is exponential, or endless if recursive)
    seen.add(id(node))
    if isinstance(node, yaml.MappingNode):
        first: dict[Any, int] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = _scalar_key(key_node)
            line = key_node.start_mark.line + 1
            if key in first:
                raise _duplicate(key, key_node, first[key], name)
            first[key] = lines[path + (key,)] = line
            _collect_lines(value_node, path + (key,), lines, name, seen)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            lines[path + (index,)] = item.start_mark.line + 1
            _collect_lines(item, path + (index,), lines, name, seen)


# Nodes that aliases may add to a document: far above any written configuration, far below a 'billion laughs'
# (a few lines of nested aliases that expand into billions of nodes when the configuration is copied).
ALIAS_LIMIT = 100_000


class _AliasCount:
    """Counts the nodes that aliases repeat, and refuses an alias inside its own anchor (an endless value)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.sizes: dict[int, int] = {}  # id(node) -> nodes it stands for, once counted
        self.open: set[int] = set()  # nodes being counted: meeting one of them again is a cycle
        self.added = 0

    def size(self, node: yaml.Node, parent: yaml.Node) -> int:
        key = id(node)
        known = self.sizes.get(key)
        if known is not None:  # an alias of a node counted before: every use repeats all of it
            self.added += known
            if self.added > ALIAS_LIMIT:
                raise self._error(parent, f"aliases repeat more than {ALIAS_LIMIT:,} values; write them out")
            return known
        if key in self.open:
            raise self._error(parent, "an alias inside its own anchor makes an endless value")
        self.open.add(key)
        children = node.value if isinstance(node, yaml.SequenceNode) else ()
        if isinstance(node, yaml.MappingNode):
            children = [child for pair in node.value for child in pair]
        total = 1 + sum(self.size(child, node) for child in children)
        self.open.discard(key)
        self.sizes[key] = total
        return total

    def _error(self, node: yaml.Node, problem: str) -> YamlSyntaxError:
        line, column = node.start_mark.line + 1, node.start_mark.column + 1
        return YamlSyntaxError(f"{self.name}:{line}:{column}: {problem}", self.name, line, column, problem)


def _duplicate(key: Any, node: yaml.Node, first: int, name: str) -> YamlSyntaxError:
    line, column = node.start_mark.line + 1, node.start_mark.column + 1
    problem = (
        f"key '{key}' is written twice in one mapping (first on line {first}); YAML would keep only the last "
        "one: remove or merge the two"
    )
    return YamlSyntaxError(f"{name}:{line}:{column}: {problem}", name, line, column, problem)


def _scalar_key(node: yaml.ScalarNode) -> Any:
    # Keys are nearly always strings; resolve the few others (ints, bools) like the constructor did.
    if node.tag == _STR_TAG:
        return node.value
    try:
        return yaml.load(node.value, Loader=_Loader)
    except yaml.YAMLError:
        return node.value
