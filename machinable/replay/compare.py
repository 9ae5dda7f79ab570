"""Comparing two stored trials: records row by row (every scope) and stored values, exactly or within tolerances.

Shared by ``machinable reproduce`` (stored trial vs. its re-run) and ``--check-determinism`` (two runs of the
same trial). The result is the *first* difference, described precisely enough to find it: the record scope, row
index and column (with a path into nested values), or the stored object's name, and both values.

Semantics of equality: numbers, numpy arrays and torch tensors as :mod:`machinable.replay.numeric` says (exact
by default, ``NaN`` equals ``NaN``, ``math.isclose`` with tolerances, element by element for arrays). Booleans
are not numbers here. Lists, tuples and dicts compare element by element, torch modules and optimizers by their
``state_dict()``, other objects with ``==`` (attribute by attribute when ``==`` is identity or cannot answer, as
for a class without ``__eq__`` or one holding arrays). The timestamp column machinable adds to every row
(``_time``) is ignored; ``_iteration`` and the user's columns are compared.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, final

from machinable.replay.numeric import (
    Mismatch,
    compare_arrays,
    is_number,
    is_numpy_or_torch,
    numbers_equal,
    show,
)
from machinable.storage import TIMESTAMP_COLUMNS
from machinable.storage.store import STORE_DIR, decode, kind_of

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
    or ``'store'`` (``name`` set). ``path`` points inside a nested value (``[2]['w']``, ``['fc.weight'][3, 17]``);
    ``old`` and ``new`` are the differing values (``MISSING`` when one side has none). For arrays and tensors,
    ``aspect`` is ``'shape'`` or ``'dtype'`` when those differ (``old``/``new`` then say them), and otherwise
    ``index`` is the first differing element and ``differing`` of ``size`` elements differ.
    """

    kind: str
    old: Any
    new: Any
    scope: str | None = None
    row: int | None = None
    column: str | None = None
    name: str | None = None
    path: str = ""
    aspect: str = ""
    index: tuple[int, ...] | None = None
    differing: int = 0
    size: int = 0

    @classmethod
    def of(cls, kind: str, found: Mismatch, **where: Any) -> Difference:
        return cls(
            kind,
            found.old,
            found.new,
            path=found.path,
            aspect=found.aspect,
            index=found.index,
            differing=found.differing,
            size=found.size,
            **where,
        )

    def where(self) -> str:
        if self.kind == "records":
            text = f"records '{self.scope}' row {self.row}"
            return text + (f", column '{self.column}'{self.path}" if self.column is not None else "")
        return f"stored object '{self.name}'{self.path}"

    def describe(self, old_label: str = "stored", new_label: str = "re-run") -> str:
        if self.aspect:  # the shapes or dtypes, as text
            old, new = f"{self.aspect} {self.old}", f"{self.aspect} {self.new}"
        else:
            old, new = _short(self.old), _short(self.new)
        text = f"{self.where()}: {old_label} {old}, {new_label} {new}"
        if self.size > 1:
            text += f" ({self.differing} of {self.size} elements differ)"
        return text

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
            "aspect": self.aspect or None,
            "index": list(self.index) if self.index is not None else None,
            "differing": self.differing if self.size else None,
            "size": self.size or None,
            "text": self.describe(),
        }

    def __str__(self) -> str:
        return self.describe()


def _short(value: Any, limit: int = 80) -> str:
    text = show(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if is_numpy_or_torch(value):
        return value.item() if value.ndim == 0 else show(value)
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return repr(value)


def first_mismatch(
    old: Any, new: Any, rtol: float = 0.0, atol: float = 0.0, path: str = ""
) -> Mismatch | None:
    """Where ``old`` and ``new`` first differ (a :class:`~machinable.replay.numeric.Mismatch`); None if equal."""
    return _Walk(rtol, atol).compare(old, new, path)


class _Walk:
    """One comparison of two values, recursing into containers; a pair of objects already being compared
    further up (a cycle) counts as equal there."""

    def __init__(self, rtol: float, atol: float) -> None:
        self.rtol, self.atol = rtol, atol
        self.active: set[tuple[int, int]] = set()

    def compare(self, old: Any, new: Any, path: str) -> Mismatch | None:
        if is_number(old) and is_number(new):
            return None if numbers_equal(old, new, self.rtol, self.atol) else Mismatch(path, old, new)
        if is_numpy_or_torch(old) and is_numpy_or_torch(new):
            return compare_arrays(old, new, self.rtol, self.atol, path, self.compare)
        pair = (id(old), id(new))
        if pair in self.active:
            return None
        self.active.add(pair)
        try:
            return self._nested(old, new, path)
        finally:
            self.active.discard(pair)

    def _nested(self, old: Any, new: Any, path: str) -> Mismatch | None:
        if isinstance(old, list | tuple) and isinstance(new, list | tuple):
            return self._sequences(old, new, path)
        if isinstance(old, Mapping) and isinstance(new, Mapping):
            for key in _keys(old, new):
                found = self.compare(old.get(key, MISSING), new.get(key, MISSING), f"{path}[{key!r}]")
                if found is not None:
                    return found
            return None
        if type(old) is not type(new):
            return Mismatch(path, old, new)
        state = _state_dict(old)
        if state is not None:
            return self.compare(state, new.state_dict(), f"{path}.state_dict()")
        return self._objects(old, new, path)

    def _sequences(self, old: Any, new: Any, path: str) -> Mismatch | None:
        for i, (a, b) in enumerate(zip(old, new, strict=False)):
            found = self.compare(a, b, f"{path}[{i}]")
            if found is not None:
                return found
        if len(old) != len(new):
            i = min(len(old), len(new))
            return Mismatch(
                f"{path}[{i}]", old[i] if i < len(old) else MISSING, new[i] if i < len(new) else MISSING
            )
        return None

    def _objects(self, old: Any, new: Any, path: str) -> Mismatch | None:
        """Two objects of one class: ``==``, or their attributes when ``==`` is identity (a class without
        ``__eq__``, unpickled twice) or cannot answer (a dataclass holding arrays)."""
        attributes = hasattr(old, "__dict__") and hasattr(new, "__dict__")
        if attributes and type(old).__eq__ is object.__eq__:
            return self._attributes(old, new, path)
        try:
            equal = bool(old == new)
        except Exception:  # e.g. an __eq__ that compares arrays inside: their == is elementwise
            if attributes:
                return self._attributes(old, new, path)
            equal = repr(old) == repr(new)
        return None if equal else Mismatch(path, old, new)

    def _attributes(self, old: Any, new: Any, path: str) -> Mismatch | None:
        a, b = vars(old), vars(new)
        for key in _keys(a, b):
            found = self.compare(a.get(key, MISSING), b.get(key, MISSING), f"{path}.{key}")
            if found is not None:
                return found
        return None


def _state_dict(value: Any) -> Any:
    """A torch module's or optimizer's state_dict (their == is identity; their state is what was trained)."""
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(value, torch.nn.Module | torch.optim.Optimizer):
        return value.state_dict()
    return None


def values_equal(old: Any, new: Any, rtol: float = 0.0, atol: float = 0.0) -> bool:
    """``old`` and ``new`` are equal (within tolerances for numbers, recursing into containers and arrays)."""
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
                return Difference.of("records", found, scope=scope, row=index, column=column)
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
    """The first difference among stored values (``store.json`` keys and ``store/`` files), by name. Files with
    the same bytes are equal without being loaded (a model's weights need not be unpickled to be the same)."""
    a, b = old.store, new.store
    for name in sorted(set(a) | set(b)):
        if name not in a or name not in b:
            x = _load(old, name, _file_bytes(old, name)) if name in a else MISSING
            y = _load(new, name, _file_bytes(new, name)) if name in b else MISSING
            return Difference("store", x, y, name=name)
        x, y = _file_bytes(old, name), _file_bytes(new, name)
        if x is not None and x == y:
            continue
        found = first_mismatch(_load(old, name, x), _load(new, name, y), rtol, atol)
        if found is not None:
            return Difference.of("store", found, name=name)
    return None


def _file_bytes(trial: StoredTrial, name: str) -> bytes | None:
    """The bytes of the stored file ``name``; None for a key of store.json."""
    try:
        return trial._io.read_bytes(trial._io.join(trial.path, STORE_DIR, name))
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        return None


def _load(trial: StoredTrial, name: str, data: bytes | None) -> Any:
    """The stored value ``name``, decoded from its file's bytes when they were read already (a model is not
    downloaded twice), else through ``trial.store``."""
    kind = kind_of(name)
    if data is None or kind is None:
        return trial.store[name]
    try:
        return decode(kind, name, data)
    except Exception:
        if kind == "pkl":
            return data  # an object whose class is gone: its bytes are all there is to compare
        raise


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
