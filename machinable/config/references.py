"""The final pass over a merged configuration: references, includes, config methods, ``~`` keys.

One walk builds the caller's configuration as fresh plain dicts and lists (so nobody can reach the project's
cached defaults through it), drops ``~`` keys, and replaces whole-string values:

- ``$self.key.path``: from the component's merged configuration, i.e. after versions are applied;
- ``$.key.path``: from the top level of ``machinable.yaml``;
- ``$/path.yaml``: the content of that file (see :mod:`machinable.config.includes`);
- ``name(args)``: the result of the config method ``config_name`` (see :mod:`machinable.config.methods`),
  computed after the walk, so that a method sees every reference resolved.

A reference's target is resolved the same way (references may chain); a loop is an error. Strings that merely
contain ``$self.x`` somewhere are left alone.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from machinable.config.errors import ConfigReferenceError
from machinable.config.includes import is_include
from machinable.config.methods import MethodCall, call_method, looks_like_call, parse_call
from machinable.config.view import ConfigView
from machinable.errors import did_you_mean

_REFERENCE = re.compile(r"\$(self)?\.([^\s.]+(?:\.[^\s.]+)*)")


class Finalizer:
    """Turns one merged configuration of one component into the caller's plain dict."""

    __slots__ = ("component", "config", "top", "include", "target", "calls")

    def __init__(
        self,
        component: str,
        config: Mapping[str, Any],
        *,
        top: Mapping[str, Any],
        include: Callable[[str, str], Any],
        target: Callable[[], Any],
    ) -> None:
        self.component = component
        self.config = config
        self.top = top
        self.include = include
        self.target = target  # only called when a config method needs the component object
        self.calls: list[tuple[tuple, MethodCall]] = []

    def run(self) -> dict[str, Any]:
        result = self._walk(self.config, (), ())
        if self.calls:
            self._call_methods(result)
        return result

    def _walk(self, value: Any, path: tuple, chain: tuple[str, ...]) -> Any:
        if isinstance(value, Mapping):
            out = {}
            for key, item in value.items():
                if type(key) is str and key[:1] == "~":
                    continue
                out[key] = self._walk(item, path + (key,), chain)
            return out
        if isinstance(value, list):
            return [self._walk(item, path + (index,), chain) for index, item in enumerate(value)]
        if type(value) is str and value:
            if value[0] == "$":
                return self._replace(value, path, chain)
            if looks_like_call(value):
                call = parse_call(value, self._where(path))
                if call is not None:
                    self.calls.append((path, call))
        return value

    def _replace(self, value: str, path: tuple, chain: tuple[str, ...]) -> Any:
        if is_include(value):
            return self._walk(self.include(value, self._where(path)), path, chain)
        match = _REFERENCE.fullmatch(value)
        if match is None:
            return value
        if value in chain:
            loop = " -> ".join([*chain, value])
            raise ConfigReferenceError(f"{self._where(path)}: reference loop {loop}")
        source = self.config if match.group(1) else self.top
        target = self._lookup(source, match.group(2).split("."), value, path)
        return self._walk(target, path, chain + (value,))

    def _lookup(self, source: Any, segments: list[str], reference: str, path: tuple) -> Any:
        current = source
        for depth, segment in enumerate(segments):
            if isinstance(current, Mapping):
                if segment in current:
                    current = current[segment]
                    continue
                if segment.lstrip("-").isdigit() and int(segment) in current:
                    current = current[int(segment)]
                    continue
                keys = [str(key) for key in current if not (type(key) is str and key[:1] == "~")]
                hint = did_you_mean(segment, keys)
                listed = ", ".join(keys) or "none"
            elif isinstance(current, list) and segment.lstrip("-").isdigit():
                index = int(segment)
                if -len(current) <= index < len(current):
                    current = current[index]
                    continue
                hint, listed = "", f"indices 0..{len(current) - 1}"
            else:
                hint, listed = "", f"nothing (it is {type(current).__name__} {current!r})"
            if depth:
                parent = "'" + ".".join(segments[:depth]) + "'"
            else:
                parent = "the configuration" if reference[1] == "s" else "the top level of machinable.yaml"
            raise ConfigReferenceError(
                f"{self._where(path)}: reference '{reference}' points to a missing key: {parent} has no "
                f"'{segment}'{hint}; it has {listed}"
            )
        return current

    def _call_methods(self, result: dict[str, Any]) -> None:
        target = self.target()
        view = ConfigView(result)
        for path, call in self.calls:
            value = call_method(target, call, view, self._where(path))
            container: Any = result
            for key in path[:-1]:
                container = container[key]
            container[path[-1]] = value

    def _where(self, path: tuple) -> str:
        key = ".".join(str(part) for part in path) or "<root>"
        return f"component '{self.component}', key '{key}'"
