"""``ConfigView``: a configuration readable as ``config.data.name`` and ``config['data']['name']``.

It is a real ``dict`` (``json.dumps``, ``==`` with dicts and pickling keep working); nested dicts, also inside
lists, become views. A missing key raises :class:`~machinable.config.errors.ConfigKeyError`, which is a
``KeyError`` and an ``AttributeError`` too, and whose message lists the keys that exist.

Keys that collide with ``dict`` methods (``items``, ``keys``, ``get``, ...) are only reachable as items.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from machinable.config.errors import ConfigKeyError
from machinable.config.merge import plain_copy
from machinable.errors import did_you_mean


def _wrap(value: Any, path: str) -> Any:
    if type(value) is ConfigView:
        return value
    if isinstance(value, Mapping):
        return ConfigView(value, _path=path)
    if isinstance(value, list):
        return [_wrap(item, f"{path}[{index}]") for index, item in enumerate(value)]
    return value


class ConfigView(dict):
    """A dict with attribute access whose missing keys explain themselves."""

    __slots__ = ("_path",)

    def __init__(self, data: Mapping[str, Any] | None = None, *, _path: str = "") -> None:
        object.__setattr__(self, "_path", _path)
        prefix = f"{_path}." if _path else ""
        super().__init__(
            (key, _wrap(value, f"{prefix}{key}")) for key, value in (data.items() if data is not None else ())
        )

    def __missing__(self, key: Any) -> Any:
        raise self._missing(key)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            # Python's own protocol probes (copy, pickle, ...), not configuration keys.
            raise AttributeError(name)
        try:
            return dict.__getitem__(self, name)
        except KeyError:
            raise self._missing(name) from None

    def __setattr__(self, name: str, value: Any) -> None:
        self[name] = value

    def __delattr__(self, name: str) -> None:
        try:
            del self[name]
        except KeyError:
            raise self._missing(name) from None

    def __setitem__(self, key: Any, value: Any) -> None:
        prefix = f"{self._path}." if self._path else ""
        super().__setitem__(key, _wrap(value, f"{prefix}{key}"))

    def __reduce__(self) -> tuple[Any, ...]:
        return (ConfigView, (self.to_dict(),), {"_path": self._path})

    def __setstate__(self, state: dict[str, Any]) -> None:
        object.__setattr__(self, "_path", state.get("_path", ""))

    def __repr__(self) -> str:
        return f"ConfigView({dict.__repr__(self)})"

    def to_dict(self) -> dict[str, Any]:
        """The configuration as plain dicts and lists (a copy)."""
        return plain_copy(self)

    def _missing(self, key: Any) -> ConfigKeyError:
        full = f"{self._path}.{key}" if self._path else str(key)
        available = ", ".join(repr(k) for k in self) or "none"
        hint = did_you_mean(str(key), [str(k) for k in self])
        return ConfigKeyError(f"configuration has no key '{full}'{hint}; available keys: {available}", key)
