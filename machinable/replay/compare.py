"""Comparing two stored trials: records row by row (every scope) and stored values, exactly or within tolerances.

Shared by ``machinable reproduce`` (stored trial vs. its re-run) and ``--check-determinism`` (two runs of the
same trial). The result is the *first* difference, described precisely enough to find it: the record scope, row
index and column (with a path into nested values), or the stored object's name, and both values.

Semantics of equality: with ``rtol == atol == 0`` numbers compare exactly (``NaN`` equals ``NaN``: a NaN that
comes back is reproduced); otherwise two numbers are equal when ``math.isclose(a, b, rel_tol=rtol,
abs_tol=atol)``. Booleans are not numbers here. Lists and dicts compare element by element. The timestamp
column machinable adds to every row (``_time``) is ignored; ``_iteration`` and the user's columns are compared.
"""

from __future__ import annotations

import math
import pickle
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, final

from machinable.storage import TIMESTAMP_COLUMNS

if TYPE_CHECKING:
    from machinable.storage import StoredTrial


class _Missing:
    def __repr__(self) -> str:
        return "<missing>"


MISSING: Any = _Missing()


@final
@dataclass(frozen=True)
class Difference:
    """The first place where two trials' results differ.

    ``kind`` is ``'records'`` (``scope``, ``row``, ``column`` set; ``column`` None when a whole row is missing)
    or ``'store'`` (``name`` set). ``path`` points inside a nested value (``[2]['w']``); ``old`` and ``new`` are
    the differing values (``MISSING`` when one side has none).
    """

    kind: str
    old: Any
    new: Any
    scope: str | None = None
    row: int | None = None
    column: str | None = None
    name: str | None = None
    path: str = ""

    def where(self) -> str:
        if self.kind == "records":
            text = f"records '{self.scope}' row {self.row}"
            return text + (f", column '{self.column}'{self.path}" if self.column is not None else "")
        return f"stored object '{self.name}'{self.path}"

    def describe(self, old_label: str = "stored", new_label: str = "re-run") -> str:
        return f"{self.where()}: {old_label} {_short(self.old)}, {new_label} {_short(self.new)}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "scope": self.scope,
            "row": self.row,
            "column": self.column,
            "name": self.name,
            "path": self.path,
            "old": None if self.old is MISSING else _jsonable(self.old),
            "new": None if self.new is MISSING else _jsonable(self.new),
            "text": self.describe(),
        }

    def __str__(self) -> str:
        return self.describe()


def _short(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return repr(value)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def first_mismatch(
    old: Any, new: Any, rtol: float = 0.0, atol: float = 0.0, path: str = ""
) -> tuple[str, Any, Any] | None:
    """``(path, old_part, new_part)`` of the first place ``old`` and ``new`` differ, None when they match."""
    if _is_number(old) and _is_number(new):
        if isinstance(old, float) and isinstance(new, float) and math.isnan(old) and math.isnan(new):
            return None
        if rtol == 0.0 and atol == 0.0:
            return None if old == new else (path, old, new)
        return None if math.isclose(old, new, rel_tol=rtol, abs_tol=atol) else (path, old, new)
    if isinstance(old, list | tuple) and isinstance(new, list | tuple):
        for i, (a, b) in enumerate(zip(old, new, strict=False)):
            found = first_mismatch(a, b, rtol, atol, f"{path}[{i}]")
            if found is not None:
                return found
        if len(old) != len(new):
            i = min(len(old), len(new))
            return (
                f"{path}[{i}]",
                old[i] if i < len(old) else MISSING,
                new[i] if i < len(new) else MISSING,
            )
        return None
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        for key in _keys(old, new):
            found = first_mismatch(
                old.get(key, MISSING), new.get(key, MISSING), rtol, atol, f"{path}[{key!r}]"
            )
            if found is not None:
                return found
        return None
    if type(old) is not type(new) and not (_is_number(old) and _is_number(new)):
        return (path, old, new)
    try:
        equal = bool(old == new)
    except Exception:  # e.g. arrays whose == is elementwise: compare what they hold
        equal = _plain(old) == _plain(new)
    return None if equal else (path, old, new)


def _plain(value: Any) -> Any:
    tolist = getattr(value, "tolist", None)
    return tolist() if callable(tolist) else repr(value)


def values_equal(old: Any, new: Any, rtol: float = 0.0, atol: float = 0.0) -> bool:
    """``old`` and ``new`` are equal (within tolerances for floats, recursing into lists and dicts)."""
    return first_mismatch(old, new, rtol, atol) is None


def _keys(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[Any]:
    """Keys in the old value's order, then the new value's own (so a report follows the stored layout)."""
    return [*old, *(k for k in new if k not in old)]


def compare_rows(
    scope: str, old: list[dict[str, Any]], new: list[dict[str, Any]], rtol: float = 0.0, atol: float = 0.0
) -> Difference | None:
    """The first difference between two lists of record rows of ``scope`` (timestamp columns ignored)."""
    for index, (a, b) in enumerate(zip(old, new, strict=False)):
        for column in _keys(a, b):
            if column in TIMESTAMP_COLUMNS:
                continue
            found = first_mismatch(a.get(column, MISSING), b.get(column, MISSING), rtol, atol)
            if found is not None:
                path, x, y = found
                return Difference("records", x, y, scope=scope, row=index, column=column, path=path)
    if len(old) != len(new):
        index = min(len(old), len(new))
        a = _strip(old[index]) if index < len(old) else MISSING
        b = _strip(new[index]) if index < len(new) else MISSING
        return Difference("records", a, b, scope=scope, row=index)
    return None


def _strip(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k not in TIMESTAMP_COLUMNS}


def compare_records(
    old: StoredTrial, new: StoredTrial, rtol: float = 0.0, atol: float = 0.0
) -> Difference | None:
    """The first difference in the records of every scope (``default`` first, then by name)."""
    scopes = sorted(set(old.record_scopes()) | set(new.record_scopes()), key=lambda s: (s != "default", s))
    for scope in scopes:
        found = compare_rows(scope, old.records_of(scope), new.records_of(scope), rtol, atol)
        if found is not None:
            return found
    return None


def compare_store(
    old: StoredTrial, new: StoredTrial, rtol: float = 0.0, atol: float = 0.0
) -> Difference | None:
    """The first difference among stored values (``store.json`` keys and ``store/`` files), by name."""
    a, b = old.store, new.store
    for name in sorted(set(a) | set(b)):
        if name not in a or name not in b:
            x = _load(old, name) if name in a else MISSING
            y = _load(new, name) if name in b else MISSING
            return Difference("store", x, y, name=name)
        x, y = _load(old, name), _load(new, name)
        if isinstance(x, bytes) and isinstance(y, bytes) and name.lower().endswith(".pkl"):
            if x == y:
                continue  # identical pickles: no need to trust the objects' __eq__
            x, y = _unpickle(x), _unpickle(y)
        found = first_mismatch(_plain_array(x), _plain_array(y), rtol, atol)
        if found is not None:
            path, p, q = found
            return Difference("store", p, q, name=name, path=path)
    return None


def _load(trial: StoredTrial, name: str) -> Any:
    if name.lower().endswith(".pkl"):
        # Compared as bytes first, unpickled only when they differ: objects often have no useful __eq__.
        try:
            return trial._io.read_bytes(trial._io.join(trial.path, "store", name))
        except FileNotFoundError:
            pass
    return trial.store[name]


def _unpickle(data: bytes) -> Any:
    try:
        return pickle.loads(data)
    except Exception:  # an object whose class is gone: the bytes are all there is to compare
        return data


def _plain_array(value: Any) -> Any:
    # numpy arrays (.npy files) compare as nested lists, so tolerances and the difference's path work on them.
    if type(value).__module__ == "numpy" and hasattr(value, "tolist"):
        return value.tolist()
    return value


def compare_trials(
    old: StoredTrial, new: StoredTrial, rtol: float = 0.0, atol: float = 0.0
) -> Difference | None:
    """The first difference between two stored trials' records, then their stored values; None when equal."""
    return compare_records(old, new, rtol, atol) or compare_store(old, new, rtol, atol)


def check_tolerances(rtol: Any, atol: Any) -> tuple[float, float]:
    """Validated ``(rtol, atol)``: non-negative finite numbers."""
    from machinable.errors import UsageError

    checked = []
    for name, value in (("rtol", rtol), ("atol", atol)):
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
            or value < 0
        ):
            raise UsageError(f"{name} must be a non-negative number, not {value!r}")
        checked.append(float(value))
    return checked[0], checked[1]
