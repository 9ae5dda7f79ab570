"""JSON encoding for everything storage writes: configurations, status, records and stored values.

Values a component records are often numpy scalars or arrays, paths or datetimes; they are converted to their
natural JSON form instead of failing a long run at its first ``record.save()``. A stored value (``store.json``, a
``.json`` file) is kept whole instead: numpy scalars become numbers, but an array or tensor inside it is refused
(:func:`dumps_stored`), since nested lists would lose its dtype silently.
"""

from __future__ import annotations

import base64
import datetime
import enum
import json
import os
import threading
import warnings
from collections.abc import Collection, Mapping
from typing import Any

_encode = json.JSONEncoder(ensure_ascii=False, default=lambda o: to_jsonable(o)).encode


def to_jsonable(value: Any) -> Any:
    """Convert one value the json module does not know; json calls this again on what it returns."""
    # `tolist` covers numpy scalars and arrays and torch tensors without importing either.
    tolist = getattr(value, "tolist", None)
    if callable(tolist):
        if getattr(_refusing, "arrays", False) and is_array(value):
            raise ArrayFound(value)
        return tolist()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, (datetime.datetime, datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, datetime.timedelta):
        return value.total_seconds()
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, (set, frozenset)):
        try:
            return sorted(value)
        except TypeError:
            return list(value)
    if isinstance(value, (bytes, bytearray)):
        try:
            return bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            return {"base64": base64.b64encode(value).decode("ascii")}
    if hasattr(type(value), "__dataclass_fields__"):
        import dataclasses

        return dataclasses.asdict(value)
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, Collection) and not isinstance(value, str):
        return list(value)
    # Never lose a row over one exotic value: keep its text, and let the writer warn about it (as_text).
    global _as_text_count
    _as_text_count += 1
    lost = getattr(_lost, "types", None)
    if lost is not None:
        lost.append(type(value).__qualname__)
    return str(value)


# How many values were stored as their text so far: callers compare it around a write, so the hot path pays
# one integer comparison and only a write that lost something is examined (by as_text).
_as_text_count = 0
_lost = threading.local()


_refusing = threading.local()


class ArrayFound(Exception):
    """An array or tensor in a value encoded by :func:`dumps_stored` (not a TypeError: :func:`dumps` retries those)."""

    def __init__(self, value: Any) -> None:
        super().__init__(type(value).__qualname__)
        self.value = value


def is_array(value: Any) -> bool:
    """An array or tensor with at least one dimension (numpy, torch, pandas ...); numpy scalars and 0-d arrays or
    tensors have the shape ``()`` and are plain numbers to JSON."""
    shape = getattr(value, "shape", None)
    return isinstance(shape, tuple) and len(shape) > 0


def dumps_stored(value: Any, *, pretty: bool = False) -> str:
    """:func:`dumps` for a value kept with ``self.store``: ArrayFound for an array or tensor inside it, which JSON
    would turn into nested lists that lose its dtype (records keep converting them: a row holds numbers)."""
    _refusing.arrays = True
    try:
        return dumps(value, pretty=pretty)
    finally:
        _refusing.arrays = False


def as_text_count() -> int:
    return _as_text_count


class StoredAsTextWarning(UserWarning):
    """A recorded or stored value that JSON cannot hold was kept as its text (``str(value)``)."""


def warn_as_text(row: Mapping[str, Any], warned: set[str], what: str) -> None:
    """Warn once per key of ``row`` (``warned`` remembers them) whose value was stored as its text."""
    for key, value in row.items():
        if key in warned:
            continue
        types = as_text(value)
        if types:
            warned.add(key)
            stem = key[: -len(".json")] if key.endswith(".json") else key
            warnings.warn(
                f"{what} '{key}' holds a {', '.join(dict.fromkeys(types))} that JSON cannot hold; it was "
                f"stored as its text (repr). Convert it (e.g. to a number, list or dict), or store it "
                f"with a '.pkl' name: self.store('{stem}.pkl', value)",
                StoredAsTextWarning,
                stacklevel=4,
            )


def as_text(value: Any) -> list[str]:
    """The type names of the values inside ``value`` that :func:`dumps` stores as their text."""
    _lost.types = lost = []
    try:
        dumps(value)
    finally:
        _lost.types = None
    return lost


def _string_keys(value: Any) -> Any:
    """Rebuild containers with keys json accepts (it refuses tuples and other objects as keys)."""
    if isinstance(value, Mapping):
        return {
            k if isinstance(k, (str, int, float, bool)) or k is None else str(k): _string_keys(v)
            for k, v in value.items()
        }
    if isinstance(value, (list, tuple)):
        return [_string_keys(v) for v in value]
    return value


def dumps(value: Any, *, pretty: bool = False) -> str:
    """One JSON document on a single line, never failing on unusual values.

    ``pretty`` puts each top-level key on its own line: readable, and still the fast C encoder (json's own
    ``indent`` switches to a pure-Python encoder that needs 0.2 s for an execution.json of 3,000 trials).
    """
    try:
        return _dumps(value, pretty)
    except TypeError:
        return _dumps(_string_keys(value), pretty)


def _dumps(value: Any, pretty: bool) -> str:
    if pretty and isinstance(value, Mapping) and value:
        return "{\n" + ",\n".join(f" {_encode(str(k))}: {_encode(v)}" for k, v in value.items()) + "\n}\n"
    return _encode(value)


def dumpb(value: Any, *, pretty: bool = False) -> bytes:
    return dumps(value, pretty=pretty).encode("utf-8")
