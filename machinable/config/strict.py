"""Strict versions: what the user writes may only change keys the component's configuration has.

A version written by the user (a dict or YAML string given to ``Task.component``, a command-line override, a
``NAME[...]`` target) is merged strictly: every key must exist at its level (``data.nmae`` is an error with a
suggestion), ``+key`` adds a key, ``~key`` (with a non-mapping value, e.g. ``None``) removes one, and each value
must be able to stand for its default's type (:func:`check_type`). Named ``~versions`` and mixins declared in
``machinable.yaml`` and ``@parametrize`` values (:class:`Declared`) are part of the component's declaration and
merge freely, as before.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from machinable.config.errors import ConfigTypeError, UnknownKeyError
from machinable.config.merge import deep_merge
from machinable.errors import did_you_mean

ADD, REMOVE = "+", "~"


class Declared(dict):  # type: ignore[type-arg]
    """A version element that belongs to the component's declaration (a ``@parametrize`` value): merged freely."""


def strict_merge(
    config: Mapping[str, Any], diff: Mapping[str, Any], component: str, path: str = ""
) -> dict[str, Any]:
    """``diff`` merged over ``config``, refusing unknown keys and values of the wrong type (module docstring)."""
    merged = dict(config)
    for key, value in diff.items():
        if not isinstance(key, str):
            merged[key] = value
            continue
        if key[:1] == ADD and len(key) > 1:
            name = key[1:]
            current = merged.get(name)
            mergeable = isinstance(current, Mapping) and isinstance(value, Mapping)
            merged[name] = deep_merge(current, value) if mergeable else value
        elif key[:1] == REMOVE and len(key) > 1:
            name = key[1:]
            if name not in merged:
                raise UnknownKeyError(
                    f"cannot remove configuration key '{path + name}' of component '{component}': there is no "
                    f"such key{did_you_mean(path + name, _names(merged, path))}"
                )
            del merged[name]
        elif key not in merged:
            raise UnknownKeyError(
                f"unknown configuration key '{path + key}' for component '{component}'"
                f"{did_you_mean(path + key, _names(merged, path))}; to add a new key, write '+{path + key}'"
            )
        elif isinstance(value, Mapping) and isinstance(merged[key], Mapping):
            merged[key] = strict_merge(merged[key], value, component, f"{path}{key}.")
        else:
            check_type(path + key, merged[key], value, component)
            merged[key] = value
    return merged


def _names(config: Mapping[str, Any], path: str) -> list[str]:
    """The keys of ``config`` as dotted paths (what a suggestion names)."""
    return [path + k for k in config if isinstance(k, str) and k[:1] != "~"]


_KINDS: tuple[tuple[type | tuple[type, ...], str], ...] = (
    (bool, "a bool (true or false)"),
    (int, "an int"),
    (float, "a float"),
    (str, "a string"),
    (list, "a list"),
    (Mapping, "a mapping"),
)


def check_type(path: str, default: Any, value: Any, component: str) -> None:
    """``value`` must be able to stand for ``default``: an int for a float is fine, ``null`` replaces anything, a
    ``null`` default takes anything, a mapping default takes only a mapping; references (``$self.x``) and config
    method calls (``double(2)``) on either side are checked when they resolve, not here."""
    if default is None or value is None or _expression(default) or _expression(value):
        return
    for kind, words in _KINDS:
        if isinstance(default, kind):
            if not _fits(kind, value):
                raise ConfigTypeError(
                    f"{path} expects {words} (default {_show(default)}), got {_show(value)} "
                    f"(component '{component}')"
                )
            return


def _fits(kind: Any, value: Any) -> bool:
    if kind is bool:
        return isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    return isinstance(value, kind)


def _expression(value: Any) -> bool:
    """A reference or a config method call, whose type is only known once it resolves."""
    return isinstance(value, str) and (value[:1] == "$" or (value[-1:] == ")" and "(" in value))


def _show(value: Any) -> str:
    if isinstance(value, str):
        return repr(value)
    import json

    try:
        return json.dumps(value, default=str)
    except (TypeError, ValueError):
        return repr(value)
