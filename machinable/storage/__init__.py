"""Storage: fsspec URLs, the on-disk layout (one writer), records, stored objects, code backup, read-back.

``open_storage`` turns a target into a :class:`StorageLocation`; :class:`ExecutionWriter` and
:class:`TrialWriter` write the layout of DESIGN.md §5 and nothing else writes there; :class:`Storage` reads it
back. See docs/storage.md.
"""

from __future__ import annotations

from machinable.storage.heartbeat import get_interval as get_heartbeat_interval
from machinable.storage.heartbeat import set_interval as set_heartbeat_interval
from machinable.storage.reader import Storage, StoredExecution, StoredTrial
from machinable.storage.records import Record
from machinable.storage.url import MissingDependencyError, StorageLocation, open_storage
from machinable.storage.writer import ExecutionWriter, RecordWriter, TrialWriter

__all__ = [
    "ExecutionWriter",
    "MissingDependencyError",
    "Record",
    "RecordWriter",
    "Storage",
    "StorageLocation",
    "StoredExecution",
    "StoredTrial",
    "TrialWriter",
    "get_heartbeat_interval",
    "open_storage",
    "set_heartbeat_interval",
]
