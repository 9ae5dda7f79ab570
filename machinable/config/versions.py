"""The version algebra (DESIGN.md §3).

A version is ``None``, a mapping, ``'~name'`` (a named version), ``'_mixin_'`` (a mixin's configuration), any
other string (parsed as a YAML mapping), a tuple of these (merged left to right) or, at the outermost level
only, a list of these (one configuration per element).

Nested tuples are flattened before merging. Deep merge alone is not associative once a key changes between a
scalar and a mapping, but a left-to-right fold over the flattened elements is, so ``((a, b), c)``,
``(a, (b, c))`` and ``(a, b, c)`` always agree; it is also why versions carried by ``a`` are visible to ``c``.

``'~name'`` is looked up first among the versions *carried* by the elements merged so far (a version's own
``~sub`` keys), latest first, then among the component's versions: a carried ``~sub`` shadows the component's.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any

from machinable.config.errors import YamlSyntaxError
from machinable.config.loader import parse_mapping_string
from machinable.config.merge import deep_merge
from machinable.config.overrides import version_from_string
from machinable.config.strict import Declared, strict_merge
from machinable.errors import ConfigError, UnknownVersionError, did_you_mean

_VERSION_NAME = re.compile(r"~[^\s:{}\[\],]+")
_MIXIN_NAME = re.compile(r"_[^\s:{}\[\],]+_")

#: Version elements as the user writes them: ``None``, a mapping, a string, or a tuple of those.
Element = Any


def expand(version: Any) -> list[Element]:
    """Split a version into its elements: a list gives one per item, a string that sweeps in override spelling
    (``'lr=0.1,0.01'``) one per value, anything else gives itself."""
    items = version if isinstance(version, list) else [version]
    elements: list[Element] = []
    for item in items:
        if isinstance(item, list):
            raise ConfigError(
                f"a list inside a list in version {version!r}: only the outermost list makes several "
                "configurations; use a tuple to merge versions"
            )
        swept = _overrides(item) if isinstance(item, str) else None
        elements.extend(swept if isinstance(swept, list) else [item])
    return elements


def flatten(element: Element) -> list[Element]:
    """The elements of ``element`` in merge order, nested tuples (and strings in override spelling) flattened."""
    if isinstance(element, str):
        spelled = _overrides(element)
        if isinstance(spelled, list):
            raise ConfigError(
                f"version {element!r} sweeps (several values) inside a merge; sweep at the outermost level, "
                "or give one value"
            )
        return [element] if spelled is None else flatten(spelled)
    if not isinstance(element, tuple):
        return [element]
    flat: list[Element] = []
    for item in element:
        if isinstance(item, list):
            raise ConfigError(
                f"a list inside a tuple in version {element!r}: a tuple merges its elements into one "
                "configuration, a list makes several; put the list outermost, e.g. [(a, b), (a, c)]"
            )
        flat.extend(flatten(item))
    return flat


@lru_cache(maxsize=1024)
def _overrides(text: str) -> Any:
    """The version a string in override spelling stands for (``'~alexnet-lr=0.1'``), or None for other strings.
    Cached like YAML strings; the elements are never mutated."""
    return version_from_string(text)


def apply(
    defaults: Mapping[str, Any],
    element: Element,
    *,
    component: str,
    versions: Mapping[str, Any],
    mixin: Callable[[str], Mapping[str, Any]],
) -> tuple[Mapping[str, Any], tuple[str, ...]]:
    """Merge one version element over ``defaults``.

    ``versions`` are the component's ``~name`` versions; ``mixin(name)`` returns a mixin's configuration (or
    raises). Returns the merged configuration (still holding ``~`` keys and references; it may share
    sub-mappings with its inputs, so it must not be mutated) and the applied version/mixin names in order.
    """
    config: Mapping[str, Any] = defaults
    carried: dict[str, Any] = {}
    applied: list[str] = []
    for item in flatten(element):
        diff = _diff(item, carried, versions, mixin, component, applied)
        if not diff:
            continue
        # What the user writes is strict; what the component declares (named versions, mixins, @parametrize
        # values) is free to add keys (config/strict.py).
        strict = _is_strict(item)
        if any(_carries(key, value, strict) for key, value in diff.items()):
            own = {}
            for key, value in diff.items():
                if _carries(key, value, strict):
                    carried[key] = value
                else:
                    own[key] = value
            diff = own
        config = strict_merge(config, diff, component) if strict else deep_merge(config, diff)
    return config, tuple(applied)


def _is_strict(item: Element) -> bool:
    if isinstance(item, Mapping):
        return not isinstance(item, Declared)
    return (
        isinstance(item, str)
        and not _VERSION_NAME.fullmatch(item.strip())
        and not _MIXIN_NAME.fullmatch(item.strip())
    )


def _carries(key: Any, value: Any, strict: bool) -> bool:
    """A ``~name`` key carries a version for later elements; in a strict element only with a mapping value
    (``'~key': None`` removes the key ``key`` there)."""
    return isinstance(key, str) and key[:1] == "~" and (not strict or isinstance(value, Mapping))


def _diff(
    item: Element,
    carried: Mapping[str, Any],
    versions: Mapping[str, Any],
    mixin: Callable[[str], Mapping[str, Any]],
    component: str,
    applied: list[str],
) -> Mapping[str, Any] | None:
    if item is None:
        return None
    if isinstance(item, Mapping):
        return item
    if not isinstance(item, str):
        raise ConfigError(
            f"version {item!r} of component '{component}' has type {type(item).__name__}; expected None, a "
            "dict, '~name', '_mixin_', a YAML string, a tuple (merge) or a list (several trials)"
        )
    name = item.strip()  # ' ~mnist' from a formatted string means '~mnist'
    if _VERSION_NAME.fullmatch(name):
        found = _named_version(name, carried, versions, component)
        applied.append(name)
        return found
    if _MIXIN_NAME.fullmatch(name):
        found = mixin(name[1:-1])
        applied.append(name)
        return found
    return _version_string(item, carried, versions, component)


def _named_version(
    name: str, carried: Mapping[str, Any], versions: Mapping[str, Any], component: str
) -> Mapping[str, Any] | None:
    """The changes of version ``'~name'``: a carried version shadows the component's (module docstring)."""
    if name in carried:
        found = carried[name]
    elif name in versions:
        found = versions[name]
    else:
        available = list(dict.fromkeys([*carried, *versions]))
        listed = ", ".join(available) if available else "none"
        raise UnknownVersionError(
            f"component '{component}' has no version '{name}'{did_you_mean(name, available)}; "
            f"available versions: {listed}"
        )
    if found is not None and not isinstance(found, Mapping):
        raise ConfigError(
            f"version '{name}' of component '{component}' is {found!r}, not a mapping of changes"
        )
    return found


def _version_string(
    item: str, carried: Mapping[str, Any], versions: Mapping[str, Any], component: str
) -> Mapping[str, Any]:
    """A version written as a YAML mapping string (``'learning_rate: 0.1'``)."""
    try:
        parsed = _parse(item)
    except YamlSyntaxError as exc:
        message = (
            f"version string {item!r} of component '{component}' is not valid YAML (line {exc.line}, column "
            f"{exc.column}: {exc.problem}); write a mapping such as 'learning_rate: 0.1' or "
            "'{data: {name: mnist}}'"
        )
        raise YamlSyntaxError(message, exc.path, exc.line, exc.column, exc.problem) from None
    if not isinstance(parsed, Mapping):
        # A bare 'mnist' is most likely the version '~mnist' without its tilde.
        hint = ""
        if f"~{item}" in carried or f"~{item}" in versions:
            hint = f" (did you mean '~{item}'?)"
        raise ConfigError(
            f"version string {item!r} of component '{component}' is not a YAML mapping{hint}; write "
            "'key: value', '~name' for a named version or '_mixin_' for a mixin"
        )
    return parsed


@lru_cache(maxsize=1024)
def _parse(text: str) -> Any:
    # Cached: the same YAML string is typically resolved for every repeat and trial. Results are never mutated
    # (deep_merge copies, the final pass copies).
    return parse_mapping_string(text)
