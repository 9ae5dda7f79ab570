"""The append-only files of a trial folder: record rows (JSON Lines, written and read) and text streams (output,
log)."""

from __future__ import annotations

import io
import json
import threading
import warnings
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, final

from machinable.storage.encoding import dumps

if TYPE_CHECKING:
    from machinable.storage.backend import Backend
    from machinable.storage.writer import TrialWriter

RECORDS_DIR = "records"
DEFAULT_SCOPE = "default"
# The default scope's rows sit in the trial's folder itself: a folder of its own is a directory more to create
# for every trial (on a slow disk, a quarter of what a short trial costs); other scopes go to records/.
DEFAULT_RECORDS = "records.jsonl"


def records_file(scope: str) -> str:
    """Where the rows of record ``scope`` are, relative to the trial's folder."""
    return DEFAULT_RECORDS if scope == DEFAULT_SCOPE else f"{RECORDS_DIR}/{scope}.jsonl"


def record_scopes(io: Backend, trial: str, in_records_dir: list[tuple[str, bool]]) -> list[str]:
    """The record scopes of the trial folder ``trial``, given the entries of its ``records/`` folder."""
    scopes = {
        name[: -len(".jsonl")] for name, is_dir in in_records_dir if not is_dir and name.endswith(".jsonl")
    }
    if io.isfile(io.join(trial, DEFAULT_RECORDS)):
        scopes.add(DEFAULT_SCOPE)
    return sorted(scopes)


@final
class RecordWriter:
    """Appends rows to the scope's file (:func:`records_file`): one JSON line per row, flushed at once."""

    __slots__ = ("scope", "_trial", "_rel", "_handle")

    def __init__(self, trial: TrialWriter, scope: str) -> None:
        self.scope = scope
        self._trial = trial
        self._rel = records_file(scope)
        self._handle: Any = None

    def write(self, row: Mapping[str, Any]) -> str:
        """Append ``row``; returns its JSON text as written."""
        line = dumps(row)
        self._append((line + "\n").encode("utf-8"))
        return line

    def write_many(self, rows: Iterable[Mapping[str, Any]]) -> None:
        """Append ``rows`` in one write (a resumed trial's rows up to its checkpoint)."""
        data = "".join(dumps(row) + "\n" for row in rows).encode("utf-8")
        if data:
            self._append(data)

    def _append(self, data: bytes) -> None:
        handle = self._handle
        if handle is None:
            handle = self._handle = self._trial._open_append(self._rel, buffered=False)
        handle.write(data)
        handle.flush()

    def flush(self) -> None:
        if self._handle is not None:
            self._handle.flush()

    def close(self) -> None:
        if self._handle is not None:
            handle, self._handle = self._handle, None
            handle.close()


class LazyTextStream(io.TextIOBase):
    """A text stream that creates its file on the first write and flushes at every newline."""

    def __init__(self, trial: TrialWriter, rel: str) -> None:
        super().__init__()
        self._trial = trial
        self._rel = rel
        self._handle: Any = None
        self._lock = threading.Lock()

    @property
    def encoding(self) -> str:
        return "utf-8"

    @property
    def errors(self) -> str:
        return "replace"

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return False

    def write(self, text: str) -> int:
        if self.closed:
            raise ValueError("I/O operation on closed file")
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        if text:
            with self._lock:
                handle = self._handle
                if handle is None:
                    handle = self._handle = self._trial._open_append(self._rel, buffered=True)
                handle.write(text.encode("utf-8", "replace"))
                if "\n" in text:
                    handle.flush()
        return len(text)

    def flush(self) -> None:
        with self._lock:
            if self._handle is not None:
                self._handle.flush()

    def close(self) -> None:
        if not self.closed:
            with self._lock:
                handle, self._handle = self._handle, None
            if handle is not None:
                handle.close()
            super().close()


def parse_jsonl(data: bytes, where: str = "") -> list[dict[str, Any]]:
    """Rows of a JSON Lines file; a partial last line (a writer killed mid-row) is dropped."""
    lines = data.split(b"\n")
    rows = []
    last = len(lines) - 1
    for number, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except ValueError:
            if number != last:
                warnings.warn(f"{where}: line {number + 1} is not valid JSON and was skipped", stacklevel=3)
    return rows
