"""Reading stored executions back: ``ml.Storage(url)``, shared by users, reproduce, resume and show.

Everything is loaded lazily and only by known file names, so opening an execution with thousands of trials
costs one listing of its folder, and a trial's records are read when first asked for.
"""

from __future__ import annotations

import json
import os
import time
import warnings
from collections.abc import Iterator
from functools import cached_property
from typing import Any, final

from machinable.errors import StorageError
from machinable.storage import store as _store
from machinable.storage.backend import Backend
from machinable.storage.layout import (
    CODE_DIFF,
    CODE_ZIP,
    EXECUTION_JSON,
    LOG_TXT,
    OUTPUT_LOG,
    PROVENANCE_JSON,
    STATUS_JSON,
    TRIAL_JSON,
    start_status,
)
from machinable.storage.liveness import process_gone
from machinable.storage.streams import RECORDS_DIR, parse_jsonl, record_scopes, records_file
from machinable.storage.url import MissingDependencyError, StorageLocation, open_storage

DEFAULT_STALE_AFTER = 30.0


def _read_bytes(io: Backend, path: str) -> bytes | None:
    try:
        return io.read_bytes(path)
    except FileNotFoundError:
        return None


def _read_json(io: Backend, path: str) -> dict[str, Any]:
    data = _read_bytes(io, path)
    if not data:  # absent, or created by a writer killed before it wrote (Backend.create_bytes): not written
        return {}
    try:
        value = json.loads(data)
    except ValueError as exc:
        raise StorageError(f"{path} is not valid JSON ({exc}); the file is damaged") from exc
    if not isinstance(value, dict):
        raise StorageError(f"{path} does not hold a JSON object")
    return value


def _read_text(io: Backend, path: str) -> str:
    return (_read_bytes(io, path) or b"").decode("utf-8", "replace")


def list_folder(io: Backend, path: str) -> list[tuple[str, bool]]:
    """``io.listdir(path)``, empty when there is no such folder (yet)."""
    try:
        return io.listdir(path)
    except (FileNotFoundError, NotADirectoryError):
        return []


def _is_folder_name(name: Any) -> bool:
    """A name that can only mean a folder directly inside the storage root (never '..', never hidden)."""
    return (
        isinstance(name, str)
        and bool(name)
        and not name.startswith(".")
        and not any(c in name for c in "/\\\x00")
    )


@final
class StoredTrial:
    """One stored trial; every attribute is read from storage on first access."""

    def __init__(self, execution: StoredExecution, uid: str) -> None:
        self.execution = execution
        self.uid = uid
        self._io = execution._io
        self.path = self._io.join(execution.path, uid)

    def _file(self, rel: str) -> str:
        return self._io.join(self.path, rel)

    @cached_property
    def info(self) -> dict[str, Any]:
        """The content of trial.json."""
        return _read_json(self._io, self._file(TRIAL_JSON))

    @property
    def node_id(self) -> str | None:
        return self.info.get("node_id")

    @property
    def component(self) -> str | None:
        return self.info.get("component")

    @property
    def config(self) -> dict[str, Any]:
        return self.info.get("config") or {}

    @property
    def versions(self) -> list[Any]:
        return self.info.get("versions") or []

    @property
    def seed(self) -> int | None:
        return self.info.get("seed")

    @property
    def flags(self) -> dict[str, Any]:
        return self.info.get("flags") or {}

    @property
    def status_info(self) -> dict[str, Any]:
        """The content of status.json, read again on every access (a running trial changes it); before its
        first heartbeat, a running trial has only the ``start`` status in trial.json."""
        return _read_json(self._io, self._file(STATUS_JSON)) or start_status(
            _read_json(self._io, self._file(TRIAL_JSON))
        )

    @property
    def status(self) -> str | None:
        """The outcome ('running', 'passed', 'failed', 'crashed', ...); a running trial whose heartbeat is stale
        or whose process is gone reads as 'crashed'."""
        return self.execution.storage._outcome(self.status_info)

    @property
    def error(self) -> str | None:
        return self.status_info.get("error")

    @property
    def started(self) -> float | None:
        return self.status_info.get("started")

    @property
    def finished(self) -> float | None:
        return self.status_info.get("finished")

    def record_scopes(self) -> list[str]:
        return record_scopes(self._io, self.path, list_folder(self._io, self._file(RECORDS_DIR)))

    def records_of(self, scope: str) -> list[dict[str, Any]]:
        path = self._file(records_file(scope))
        data = _read_bytes(self._io, path)
        return [] if data is None else parse_jsonl(data, path)

    @property
    def records(self) -> list[dict[str, Any]]:
        """Rows of the default scope."""
        return self.records_of("default")

    def records_frame(self, scope: str = "default") -> Any:
        """The rows of ``scope`` as a pandas DataFrame."""
        try:
            import pandas
        except ImportError as exc:
            raise MissingDependencyError("records_frame() needs pandas: pip install pandas") from exc
        return pandas.DataFrame(self.records_of(scope))

    @cached_property
    def store(self) -> _store.StoreView:
        """Read-only mapping of stored objects: ``trial.store['model.json']``."""

        def read(rel: str) -> bytes:
            return self._io.read_bytes(self._file(rel))

        def list_files() -> list[str]:
            try:
                return self._io.files_under(self._file(_store.STORE_DIR))
            except FileNotFoundError:
                return []

        return _store.StoreView(read, list_files, where=self.path)

    @property
    def log(self) -> str:
        return _read_text(self._io, self._file(LOG_TXT))

    @property
    def output(self) -> str:
        return _read_text(self._io, self._file(OUTPUT_LOG))

    def files(self) -> list[str]:
        """Relative paths of every file in the trial's folder."""
        try:
            return self._io.files_under(self.path)
        except FileNotFoundError:
            return []

    def __repr__(self) -> str:
        return f"<StoredTrial {self.node_id or self.uid} {self.status}>"


@final
class StoredExecution:
    """One stored execution: its ``execution.json``, code backup and trials, in ``.folder`` (``<id>-2`` ...)."""

    def __init__(self, storage: Storage, folder: str, info: dict[str, Any] | None = None) -> None:
        self.storage = storage
        self.folder = folder
        self._io = storage._io
        self.path = self._io.join(storage.location.root, folder)
        if info is not None:
            self.info = info

    @property
    def id(self) -> str:
        """The execution id; the folder is ``<id>-2`` ... when the same id was stored before."""
        return self.info.get("id") or self.folder

    @cached_property
    def info(self) -> dict[str, Any]:
        """The content of execution.json."""
        return _read_json(self._io, self._io.join(self.path, EXECUTION_JSON))

    @property
    def seed(self) -> int | None:
        seed = self.info.get("seed")
        if seed is None:
            from machinable import ids
            from machinable.errors import SeedError

            try:
                return ids.decode(self.id)
            except SeedError:
                return None  # a folder name that is not an execution id has no seed
        return seed

    @property
    def name(self) -> str | None:
        return self.info.get("name")

    @property
    def started(self) -> float | None:
        return self.info.get("started")

    @property
    def finished(self) -> float | None:
        return self.info.get("finished")

    @cached_property
    def trials(self) -> list[StoredTrial]:
        """Trials in plan order (``execution.json``'s ``trials`` list), others after them by uid."""
        self._io.refresh()
        # '.'-folders are an engine's own (the slurm engine's batches), never a trial's
        present = {name for name, is_dir in list_folder(self._io, self.path) if is_dir and name[:1] != "."}
        planned = [uid for uid in self.info.get("trials") or [] if isinstance(uid, str) and uid in present]
        rest = sorted(present.difference(planned))
        return [StoredTrial(self, uid) for uid in [*planned, *rest]]

    def trial(self, key: str) -> StoredTrial:
        """The trial with this uid or node id."""
        if "trials" not in self.__dict__ and isinstance(key, str) and key and "/" not in key:
            # A uid is a folder name: no listing needed (results look their trial up one by one).
            folder = self._io.join(self.path, key)
            if self._io.isfile(self._io.join(folder, TRIAL_JSON)) or self._io.isfile(
                self._io.join(folder, STATUS_JSON)
            ):
                return StoredTrial(self, key)
        for trial in self.trials:
            if trial.uid == key:
                return trial
        for trial in self.trials:
            if trial.node_id == key:
                return trial
        known = [t.node_id or t.uid for t in self.trials[:10]]
        raise StorageError(
            f"execution {self.id} has no trial '{key}'; its trials: {', '.join(known) or 'none'}"
        )

    def trial_at(self, uid: str) -> StoredTrial:
        """The trial with folder ``uid``, whether or not it exists yet (its attributes read as empty)."""
        return StoredTrial(self, uid)

    def results(self) -> list[dict[str, Any]]:
        """Every planned trial's index line (status, configuration, metric summary), read through the index
        (see :mod:`machinable.storage.index`); the answer the trial folders would give, without opening them."""
        from machinable.storage.index import read_index

        return read_index(self)

    def to_records(
        self, k: str | None = None, status: Any = None, histories: bool = False
    ) -> list[dict[str, Any]]:
        """One flat dict per trial (per record row with ``histories=True``); see storage/frames.py."""
        from machinable.storage.frames import execution_records

        return execution_records(self, k=k, status=status, histories=histories)

    def to_pandas(self, k: str | None = None, status: Any = None, histories: bool = False) -> Any:
        """:meth:`to_records` as a pandas DataFrame (``pip install "machinable[pandas]"``)."""
        from machinable.storage.frames import data_frame

        return data_frame(self.to_records(k, status, histories))

    def code_zip(self) -> bytes | None:
        """The code backup's bytes, None when the execution has none."""
        return _read_bytes(self._io, self._io.join(self.path, CODE_ZIP))

    @property
    def provenance(self) -> dict[str, Any]:
        """provenance.json: what the execution ran with (git, Python, packages, platform, ...); {} without."""
        return _read_json(self._io, self._io.join(self.path, PROVENANCE_JSON))

    @property
    def code_diff(self) -> bytes | None:
        """code.diff: the uncommitted changes of the project's git tree when it ran; None when it had none."""
        return _read_bytes(self._io, self._io.join(self.path, CODE_DIFF))

    def code_zip_names(self) -> list[str]:
        """Relative paths archived in ``code.zip`` ([] without a backup)."""
        import io
        import zipfile

        data = self.code_zip()
        if data is None:
            return []
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return archive.namelist()

    def __iter__(self) -> Iterator[StoredTrial]:
        return iter(self.trials)

    def __len__(self) -> int:
        return len(self.trials)

    def __repr__(self) -> str:
        shown = [self.id, *([f"(folder {self.folder})"] if self.folder != self.id else []), self.name or ""]
        return f"<StoredExecution {' '.join(filter(None, shown))} trials={len(self.trials)}>"


@final
class Storage:
    """Read access to a storage: ``Storage('~/observations').executions()``, ``.get('OY1p1o')``.

    ``stale_after``: seconds without a heartbeat after which a running trial reads as crashed (at least 3x
    the heartbeat interval a writer recorded).
    """

    def __init__(self, target: Any = None, *, stale_after: float = DEFAULT_STALE_AFTER) -> None:
        self.location: StorageLocation = open_storage(target)
        self.stale_after = stale_after
        self._io = self.location.backend()

    @property
    def url(self) -> str:
        return self.location.url

    def _outcome(self, status: dict[str, Any]) -> str | None:
        outcome = status.get("outcome")
        if outcome != "running":
            return outcome
        stamps = [s for s in (status.get("heartbeat"), status.get("started")) if isinstance(s, (int, float))]
        if stamps:
            limit = max(self.stale_after, 3 * float(status.get("heartbeat_interval") or 0))
            if time.time() - max(stamps) > limit:
                return "crashed"
        if process_gone(status):
            return "crashed"
        return outcome

    def execution_ids(self) -> list[str]:
        """Folder names in the storage that hold an execution (unordered)."""
        self._io.refresh()
        entries = list_folder(self._io, self.location.root)
        return [name for name, is_dir in entries if is_dir and not name.startswith(".")]

    def executions(self) -> list[StoredExecution]:
        """Every stored execution, newest first (by start time)."""
        found = []
        for execution_id in self.execution_ids():
            path = self._io.join(self.location.root, execution_id, EXECUTION_JSON)
            try:
                info = _read_json(self._io, path)
            except StorageError as exc:
                warnings.warn(f"skipping execution {execution_id}: {exc}", stacklevel=2)
                continue
            if info:
                found.append(StoredExecution(self, execution_id, info))
        found.sort(key=lambda e: (e.started or 0.0, e.folder), reverse=True)
        return found

    def get(self, execution_id: str) -> StoredExecution:
        """The execution with this id (the latest, if the same id was stored again: folders ``<id>-2`` ...) or
        with this folder name; StorageError naming a few existing ids when there is none."""
        if _is_folder_name(execution_id):
            self._io.refresh()
            folder = self._latest_folder(execution_id)
            path = self._io.join(self.location.root, folder)
            # execution.json is read when first needed: it lists every trial and may be large. A folder without
            # it is a re-run's scratch execution (reproduce writes trials only).
            if self._io.isfile(self._io.join(path, EXECUTION_JSON)) or self._io.isdir(path):
                return StoredExecution(self, folder)
        raise StorageError(f"no execution {execution_id!r} in storage {self.url}{self._known_hint()}")

    def _known_hint(self) -> str:
        # Folder names, not ids: an id stored twice would be listed twice, and `get` takes both.
        known = [e.folder for e in self.executions()[:5]]
        if known:
            return f"; recent executions: {', '.join(known)}"
        if self.location.is_memory:
            return (
                "; it holds no executions (memory storage lives in the process that wrote it: pass the "
                "storage the execution was run with, e.g. its `.storage` URL or a path)"
            )
        if self.location.is_local and not os.path.isdir(self.location.root):
            return "; the folder does not exist"
        return "; it holds no executions"

    def _latest_folder(self, execution_id: str) -> str:
        if "-" in execution_id or not self._io.isdir(self._io.join(self.location.root, f"{execution_id}-2")):
            return execution_id
        reruns = [
            int(suffix)
            for name in self.execution_ids()
            if name.startswith(f"{execution_id}-") and (suffix := name[len(execution_id) + 1 :]).isdigit()
        ]
        return f"{execution_id}-{max(reruns)}"

    def to_records(
        self, k: str | None = None, status: Any = None, histories: bool = False
    ) -> list[dict[str, Any]]:
        """The rows of every stored execution, newest first (see :meth:`StoredExecution.to_records`)."""
        from machinable.storage.frames import gc_paused

        with gc_paused():
            return [row for stored in self.executions() for row in stored.to_records(k, status, histories)]

    def to_pandas(self, k: str | None = None, status: Any = None, histories: bool = False) -> Any:
        """:meth:`to_records` as a pandas DataFrame (``pip install "machinable[pandas]"``)."""
        from machinable.storage.frames import data_frame

        return data_frame(self.to_records(k, status, histories))

    def __iter__(self) -> Iterator[StoredExecution]:
        return iter(self.executions())

    def __repr__(self) -> str:
        return f"Storage({self.url!r})"
