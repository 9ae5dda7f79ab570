"""``self.record``: a row of named values that ``save()`` appends to the trial's records.

User columns are never touched; the columns machinable adds (``_time``, ``_iteration``, ...) start with ``_``
and a user may not set them. A value JSON cannot hold is stored as its text, with a warning once per key.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, final

from machinable.errors import UsageError
from machinable.storage import encoding
from machinable.storage.encoding import dumps

if TYPE_CHECKING:
    from collections.abc import Callable

    from machinable.storage.writer import RecordWriter

# Columns machinable adds that differ on every run by nature (comparisons and tables leave them out).
TIMESTAMP_COLUMNS = frozenset({"_time"})
# Columns machinable writes into every row (``save()``): a user column of that name would be overwritten.
RESERVED_COLUMNS = frozenset({"_time", "_iteration"})


def _check_column(key: Any) -> None:
    if key in RESERVED_COLUMNS:
        raise UsageError(
            f"record column '{key}' is reserved: machinable writes it into every saved row; "
            f"name your column differently (e.g. '{str(key).lstrip('_')}')"
        )


# Values that JSON stores as they are: a row of only these is its own stored form (no need to parse it back).
_PLAIN_TYPES = frozenset({str, int, float, bool, type(None)})


def _plain(row: dict[str, Any]) -> bool:
    return set(map(type, row.values())) <= _PLAIN_TYPES and set(map(type, row)) == _STR


_STR = {str}


@final
class Record:
    """The current row (a small dict-like) plus every saved row in :attr:`rows`.

    ``observer``, if given, is called with each saved row as stored (the live progress of a running trial).
    """

    __slots__ = ("writer", "rows", "_row", "observer", "_as_text")

    def __init__(
        self,
        writer: RecordWriter | None = None,
        observer: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self.writer = writer
        self.rows: list[dict[str, Any]] = []
        self._row: dict[str, Any] = {}
        self.observer = observer
        self._as_text: set[str] = set()  # keys already warned about (stored as text)

    def __setitem__(self, key: str, value: Any) -> None:
        _check_column(key)
        self._row[key] = value

    def __getitem__(self, key: str) -> Any:
        return self._row[key]

    def __delitem__(self, key: str) -> None:
        del self._row[key]

    def __contains__(self, key: object) -> bool:
        return key in self._row

    def __iter__(self) -> Iterator[str]:
        return iter(self._row)

    def __len__(self) -> int:
        return len(self._row)

    def get(self, key: str, default: Any = None) -> Any:
        return self._row.get(key, default)

    def update(self, values: Mapping[str, Any] | None = None, /, **kwargs: Any) -> None:
        for key in (*(values or ()), *kwargs):
            _check_column(key)
        if values:
            self._row.update(values)
        if kwargs:
            self._row.update(kwargs)

    @property
    def current(self) -> dict[str, Any]:
        """The row being filled (not yet saved)."""
        return self._row

    def save(self, **fields: Any) -> dict[str, Any] | None:
        """End the row: add ``_time`` and the given ``_``-prefixed fields, write it, start a new row.

        Returns the saved row as stored (JSON values), or None when the row was empty (nothing is written).
        """
        if not self._row:
            return None
        for key in fields:
            if not key.startswith("_"):
                raise UsageError(
                    f"record.save() takes only machinable's '_'-prefixed fields, not '{key}'; "
                    f"set your columns with record['{key}'] = value"
                )
        row = {**self._row, "_time": time.time(), **fields}
        before = encoding.as_text_count()
        line = self.writer.write(row) if self.writer is not None else dumps(row)
        user, self._row = self._row, {}  # only after a successful write: a failed one keeps the row
        # The row as stored (numpy values as numbers, paths as text, ...): results in memory then agree with
        # results read back, and mutating a saved value afterwards changes neither.
        saved: dict[str, Any] = row if _plain(row) else json.loads(line)
        self.rows.append(saved)
        if self.observer is not None:
            self.observer(saved)
        if encoding.as_text_count() != before:
            # Last: a warning turned into an error must not leave a written row out of ``rows``.
            encoding.warn_as_text(user, self._as_text, "record column")
        return saved

    def __repr__(self) -> str:
        return f"Record(current={self._row!r}, saved={len(self.rows)})"
