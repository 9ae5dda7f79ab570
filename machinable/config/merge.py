"""Deep merge: the one way configurations are combined (DESIGN.md §3).

Mappings merge key by key, recursively; anything else, lists included, is replaced by the later value.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Return ``override`` merged over ``base`` as a new dict; neither argument is changed.

    Sub-mappings that only one side has are shared with the inputs, not copied: resolution merges on every call,
    so copying is left to the single final pass that builds the caller's configuration.
    """
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping):
            current = merged.get(key)
            if isinstance(current, Mapping):
                merged[key] = deep_merge(current, value)
                continue
        merged[key] = value
    return merged


def plain_copy(value: Any) -> Any:
    """Copy nested mappings and lists into plain ``dict`` / ``list``; other (immutable) values are shared."""
    if isinstance(value, Mapping):
        return {key: plain_copy(item) for key, item in value.items()}
    if isinstance(value, list):
        return [plain_copy(item) for item in value]
    return value
