"""Storage: fsspec URLs, the on-disk layout (one writer), records, stored objects, code backup, read-back.

``open_storage`` turns a target into a :class:`StorageLocation`; :class:`ExecutionWriter` and
:class:`TrialWriter` write the layout of DESIGN.md §5 and nothing else writes there; :class:`Storage` reads it
back. See docs/storage.md.
"""

from __future__ import annotations

from machinable.storage.attempts import ATTEMPTS_DIR, archive_attempt
from machinable.storage.frames import flatten, gc_paused
from machinable.storage.frames import select as select_entries
from machinable.storage.heartbeat import get_interval as get_heartbeat_interval
from machinable.storage.heartbeat import set_interval as set_heartbeat_interval
from machinable.storage.plan import NOT_STARTED, stored_specs, trial_states
from machinable.storage.reader import Storage, StoredExecution, StoredTrial
from machinable.storage.records import TIMESTAMP_COLUMNS, Record
from machinable.storage.url import MissingDependencyError, StorageLocation, open_storage
from machinable.storage.writer import ExecutionWriter, RecordWriter, TrialWriter

__all__ = [
    "ATTEMPTS_DIR",
    "NOT_STARTED",
    "TIMESTAMP_COLUMNS",
    "ExecutionWriter",
    "MissingDependencyError",
    "Record",
    "RecordWriter",
    "Storage",
    "StorageLocation",
    "StoredExecution",
    "StoredTrial",
    "TrialWriter",
    "archive_attempt",
    "flatten",
    "gc_paused",
    "get_heartbeat_interval",
    "open_storage",
    "select_entries",
    "set_heartbeat_interval",
    "stored_specs",
    "trial_states",
]
