"""The only module that writes the storage layout (DESIGN.md §5)::

    <root>/<EXECUTION_ID>/execution.json, code.zip, provenance.json, code.diff
    <root>/<EXECUTION_ID>/<TRIAL_UID>/trial.json, status.json, records.jsonl, records/<scope>.jsonl,
                                      log.txt, output.log, store.json, store/<files>

JSON files are rewritten whole (atomically on local disks); records, logs and output are appended line by line
and flushed, so a killed process leaves every complete row behind. Folders are created once, on first write,
and nothing is checked for existence on the hot path: per-trial overhead is what a 10,000-trial run pays.
"""

from __future__ import annotations

import io
import itertools
import json
import os
import threading
from collections.abc import Mapping
from typing import Any, final

from machinable.errors import StorageError
from machinable.storage import store as _store
from machinable.storage.backup import DEFAULT_MAX_FILE_SIZE, build_zip
from machinable.storage.encoding import as_text_count, dumpb, dumps, warn_as_text
from machinable.storage.heartbeat import DEFAULT_INTERVAL, HEARTBEAT
from machinable.storage.index import INDEX_JSONL
from machinable.storage.layout import (
    CODE_ZIP,
    EXECUTION_JSON,
    LOG_TXT,
    OUTPUT_LOG,
    STATUS_JSON,
    TRIAL_JSON,
    check_segment,
)
from machinable.storage.streams import LazyTextStream, RecordWriter
from machinable.storage.url import StorageLocation


@final
class ExecutionWriter:
    """Writes one execution's folder: ``execution.json``, ``code.zip`` and one folder per trial."""

    def __init__(self, location: StorageLocation, execution_id: str, folder: str | None = None) -> None:
        self.location = location
        self.execution_id = check_segment(execution_id, "execution id")
        self.folder = check_segment(folder or execution_id, "execution folder")
        self._io = location.backend()
        self.path = self._io.join(location.root, self.folder)
        self._ready = False
        self._info: dict[str, Any] | None = None
        self._encoded: dict[str, str] = {}  # top-level key -> its JSON value as last written
        self._index: Any = None

    @classmethod
    def claim(cls, location: StorageLocation, execution_id: str) -> ExecutionWriter:
        """A writer for a new folder of ``execution_id``: ``<id>``, or ``<id>-2``, ``<id>-3`` ... when the same
        execution id (the same seed) was stored before, so that re-runs never mix with earlier results."""
        io = location.backend()
        for n in itertools.count(1):
            folder = execution_id if n == 1 else f"{execution_id}-{n}"
            if io.claim(io.join(location.root, folder), EXECUTION_JSON):
                writer = cls(location, execution_id, folder)
                writer._ready = True
                return writer
        raise AssertionError("unreachable")  # itertools.count never ends

    def _prepare(self) -> None:
        if not self._ready:
            self._io.makedirs(self.path)
            self._ready = True

    def add_to_index(self, entry: Mapping[str, Any]) -> None:
        """Append a finished trial's line to ``index.jsonl`` (storage/index.py): one unbuffered write, so a killed
        controller loses at most that line, which the reader rebuilds from the trial's folder."""
        if self._index is None:
            self._prepare()
            self._index = self._io.open_append(self._io.join(self.path, INDEX_JSONL), buffered=False)
        self._index.write((dumps(entry) + "\n").encode("utf-8"))
        self._index.flush()

    def close_index(self) -> None:
        if self._index is not None:
            index, self._index = self._index, None
            index.close()

    def exists(self) -> bool:
        """Whether this execution was written before (an execution id, i.e. a seed, used again)."""
        return self._io.isfile(self._io.join(self.path, EXECUTION_JSON))

    def write_execution(self, info: Mapping[str, Any]) -> None:
        """Merge ``info`` into ``execution.json`` (called at start and again at finish); values are encoded
        when they are given, so mutating them afterwards does not change the file."""
        if self._info is None:
            self._info = self._read_info()
        self._info.update(info)
        for key in info:
            self._encoded.pop(key, None)
        self._prepare()
        self._io.write_bytes(self._io.join(self.path, EXECUTION_JSON), self._execution_json(), atomic=True)

    def _execution_json(self) -> bytes:
        """``dumpb(info, pretty=True)``, re-encoding only the keys that changed: the finishing update must not
        encode the whole plan (every trial's configuration) a second time."""
        info = self._info or {}
        if not info or not all(isinstance(key, str) for key in info):
            return dumpb(info, pretty=True)
        encoded = self._encoded
        for key, value in info.items():
            if key not in encoded:
                encoded[key] = dumps(value)
        body = ",\n".join(f" {dumps(key)}: {encoded[key]}" for key in info)
        return ("{\n" + body + "\n}\n").encode("utf-8")

    def _read_info(self) -> dict[str, Any]:
        try:
            data = self._io.read_bytes(self._io.join(self.path, EXECUTION_JSON))
        except FileNotFoundError:
            return {}
        try:
            info = json.loads(data)
        except ValueError:
            return {}
        return info if isinstance(info, dict) else {}

    def backup_code(
        self,
        project_root: str | os.PathLike[str] | None,
        *,
        max_file_size: int | None = DEFAULT_MAX_FILE_SIZE,
    ) -> list[str] | None:
        """Write ``code.zip`` of the project; returns the archived relative paths, None when backups are off."""
        if not self.location.code_backup or project_root is None:
            return None
        data, names = build_zip(project_root, max_file_size=max_file_size, exclude=self._inside(project_root))
        self._prepare()
        self._io.write_bytes(self._io.join(self.path, CODE_ZIP), data, atomic=True)
        return names

    def _inside(self, project_root: str | os.PathLike[str]) -> tuple[str, ...]:
        # Results kept inside the project ('./results') must not be archived with every later execution.
        if not self.location.is_local:
            return ()
        project = os.path.realpath(project_root)
        storage = os.path.realpath(self.location.root)
        if storage == project:
            # Results written straight into the project: leave out every execution folder.
            with os.scandir(project) as entries:
                found = [
                    e.name
                    for e in entries
                    if e.is_dir() and os.path.isfile(os.path.join(e.path, EXECUTION_JSON))
                ]
            return (self.folder, *found)
        if storage.startswith(project.rstrip(os.sep) + os.sep):
            return (os.path.relpath(storage, project).replace(os.sep, "/"),)
        return ()

    def create_file(self, name: str, data: bytes) -> bool:
        """Write the file ``name`` of the execution's folder (a plugin's: provenance.json) only if it does not
        exist yet, atomically; False when it does, so two processes never write the same name."""
        self._prepare()
        return self._io.create(self._io.join(self.path, check_segment(name, "file name")), data)

    def trial(self, uid: str) -> TrialWriter:
        return TrialWriter(self, uid)

    def import_trial(self, uid: str, files: Mapping[str, bytes]) -> TrialWriter:
        """Write a trial's files exported elsewhere (a worker process's memory storage) into this storage."""
        writer = TrialWriter(self, uid)
        writer.import_files(files)
        return writer

    def __repr__(self) -> str:
        return f"ExecutionWriter({self.location.url!r}, {self.folder!r})"


@final
class TrialWriter:
    """Writes one trial's folder. Thread-safe for status (the heartbeat thread writes it too)."""

    def __init__(self, execution: ExecutionWriter, uid: str) -> None:
        self.execution = execution
        self.uid = check_segment(uid, "trial uid")
        self._io = execution._io
        self.path = self._io.join(execution.path, uid)
        # Every file name inside the folder is a normalized relative path (constants, checked scopes and store
        # names): prefix + name is the backend's join, without its cost on the per-trial path.
        self._prefix = self._io.join(self.path, "")
        self._ready = False
        self._subdirs: set[str] = set()
        self._lock = threading.Lock()
        self._info: dict[str, Any] = {}
        self._status: dict[str, Any] = {}
        self._records: dict[str, RecordWriter] = {}
        self._streams: dict[str, LazyTextStream] = {}
        self._store_keys: dict[str, Any] | None = None
        self._as_text: set[str] = set()  # stored names already warned about (kept as their text)
        self._written: set[str] = set()
        self._last_beat = 0.0
        self._beating = False

    # -- internals -------------------------------------------------------------------------------------------

    def _prepare(self, rel: str) -> str:
        """Path of ``rel`` inside the trial folder, with its folders created (once per writer)."""
        if not self._ready:
            self.execution._prepare()
            self._io.makedirs(self.path)
            self._ready = True
        parent = rel.rpartition("/")[0]
        if parent and parent not in self._subdirs:
            self._io.makedirs(self._prefix + parent)
            self._subdirs.add(parent)
        self._written.add(rel)
        return self._prefix + rel

    def _write(self, rel: str, data: bytes) -> None:
        if rel in self._written:
            self._io.write_bytes(self._prepare(rel), data, atomic=True)
        else:  # the first write by this writer (a reused folder's old file is still replaced atomically)
            self._io.create_bytes(self._prepare(rel), data)

    def _open_append(self, rel: str, *, buffered: bool) -> Any:
        return self._io.open_append(self._prepare(rel), buffered=buffered)

    # -- json files ------------------------------------------------------------------------------------------

    def write_trial(self, info: Mapping[str, Any]) -> None:
        """Merge ``info`` (node id, component, module, config, versions, seed, flags, ...) into trial.json."""
        self._info.update(info)
        self._write(TRIAL_JSON, dumpb(self._info))

    def begin(self, info: Mapping[str, Any], **status: Any) -> None:
        """Write trial.json (``info``) with the trial's first status (outcome 'running', started, pid, host)
        under ``start``: one file on the per-trial path; status.json follows at the first heartbeat or the end,
        and readers take ``start`` while it does not exist."""
        with self._lock:
            self._status.update(status)
            self._last_beat = max(self._last_beat, status.get("started") or 0.0)
        self._info.update(info, start=dict(status))
        self._write(TRIAL_JSON, dumpb(self._info))

    def write_status(self, **fields: Any) -> None:
        """Merge ``fields`` (started, heartbeat, finished, outcome, error, pid, host) into status.json."""
        with self._lock:
            self._status.update(fields)
            for key in ("started", "heartbeat"):
                stamp = fields.get(key)
                if isinstance(stamp, (int, float)) and stamp > self._last_beat:
                    self._last_beat = stamp
            self._write(STATUS_JSON, dumpb(self._status))
        outcome = fields.get("outcome")
        if self._beating and outcome is not None and outcome != "running":
            self.stop_heartbeat()

    @property
    def status(self) -> dict[str, Any]:
        """A copy of the status as last written."""
        with self._lock:
            return dict(self._status)

    # -- heartbeat -------------------------------------------------------------------------------------------

    def start_heartbeat(self) -> None:
        """Let the process's heartbeat thread mark this trial alive until it finishes."""
        interval = HEARTBEAT.interval
        if interval != DEFAULT_INTERVAL:
            # Readers must know a slower beat is not a dead trial.
            with self._lock:
                self._status["heartbeat_interval"] = interval
                if self._status:
                    self._write(STATUS_JSON, dumpb(self._status))
        self._beating = True
        HEARTBEAT.register(self)

    def stop_heartbeat(self) -> None:
        self._beating = False
        HEARTBEAT.unregister(self)

    def _beat(self, now: float, interval: float) -> None:
        if not self._beating or now - self._last_beat < interval / 2:
            return
        with self._lock:
            if not self._beating or self._status.get("outcome", "running") != "running":
                return
            self._status["heartbeat"] = now
            self._last_beat = now
            self._write(STATUS_JSON, dumpb(self._status))

    # -- streams ---------------------------------------------------------------------------------------------

    def record_writer(self, scope: str = "default") -> RecordWriter:
        writer = self._records.get(scope)
        if writer is None:
            writer = self._records[scope] = RecordWriter(self, check_segment(scope, "record scope"))
        return writer

    def _stream(self, rel: str) -> LazyTextStream:
        stream = self._streams.get(rel)
        if stream is None or stream.closed:
            stream = self._streams[rel] = LazyTextStream(self, rel)
        return stream

    def log_stream(self) -> io.TextIOBase:
        """Text stream of ``log.txt`` (created on the first write)."""
        return self._stream(LOG_TXT)

    def output_stream(self) -> io.TextIOBase:
        """Text stream of ``output.log``: captured stdout and stderr (created on the first write)."""
        return self._stream(OUTPUT_LOG)

    # -- stored objects --------------------------------------------------------------------------------------

    def store(self, name: str, value: Any, overwrite: bool = False) -> str:
        """Store ``value`` as a file under ``store/`` (known extension) or a key of ``store.json``.

        Returns where it went (``store/<name>`` or the key). Raises StorageError for an existing name without
        ``overwrite=True`` and for a name that would leave the trial's folder.
        """
        normal = _store.check_name(name)
        kind = _store.kind_of(normal)
        if kind is not None:
            rel = f"{_store.STORE_DIR}/{normal}"
            self._check_real_parent(rel, name, "store name")
            if not overwrite and (rel in self._written or self._io.isfile(self._io.join(self.path, rel))):
                raise self._exists(name)
            before = as_text_count()
            self._write(rel, _store.encode(kind, normal, value))
            if as_text_count() != before:
                warn_as_text({normal: value}, self._as_text, "stored value")
            return rel
        keys = self._load_store_keys()
        if normal in keys and not overwrite:
            raise self._exists(name)
        # Converted now, so a value the component mutates later is stored as it was.
        before = as_text_count()
        keys[normal] = json.loads(_store.to_json(normal, value))
        if as_text_count() != before:
            warn_as_text({normal: value}, self._as_text, "stored value")
        self._write(_store.STORE_JSON, dumpb(keys, pretty=True))
        return normal

    def _check_real_parent(self, rel: str, name: str, what: str) -> None:
        """StorageError when ``rel``'s folder is, through a symlink planted in the trial's folder (``store/ln ->
        /tmp/out``), somewhere else on the local disk. Only writes into subfolders pay (store files, imported
        files), never record rows; names are already checked lexically, and object stores have no links."""
        if not self.execution.location.is_local:
            return
        folder = os.path.realpath(self.path)
        parent = os.path.realpath(os.path.dirname(self._prefix + rel))
        if parent != folder and not parent.startswith(os.path.join(folder, "")):
            raise StorageError(
                f"{what} '{name}' would resolve outside the trial's folder (a link to {parent})"
            )

    def _exists(self, name: str) -> StorageError:
        return StorageError(
            f"'{name}' is already stored in trial {self.uid}; pass overwrite=True to replace it"
        )

    def _load_store_keys(self) -> dict[str, Any]:
        if self._store_keys is None:
            try:
                data = self._io.read_bytes(self._io.join(self.path, _store.STORE_JSON))
            except FileNotFoundError:
                self._store_keys = {}
            else:
                try:
                    self._store_keys = dict(json.loads(data))
                except (ValueError, TypeError) as exc:
                    raise StorageError(
                        f"{self.path}/{_store.STORE_JSON} is not a JSON object: {exc}"
                    ) from exc
        return self._store_keys

    # -- life cycle and shipping -----------------------------------------------------------------------------

    def flush(self) -> None:
        for writer in self._records.values():
            writer.flush()
        for stream in self._streams.values():
            if not stream.closed:
                stream.flush()

    def close(self) -> None:
        """Stop the heartbeat and close every open file (writing again reopens them)."""
        if self._beating:
            self.stop_heartbeat()
        for writer in self._records.values():
            writer.close()
        for stream in self._streams.values():
            stream.close()

    def captured(self) -> tuple[str, str]:
        """What the trial printed (``output.log``) and logged (``log.txt``) so far; '' for what is missing."""
        self.flush()
        texts = []
        for rel in (OUTPUT_LOG, LOG_TXT):
            try:
                texts.append(self._io.read_bytes(self._prefix + rel).decode("utf-8", "replace"))
            except (FileNotFoundError, OSError):
                texts.append("")
        return texts[0], texts[1]

    def export(self, *, remove: bool = False) -> dict[str, bytes]:
        """Every file of the trial folder (relative path -> content), e.g. to ship a worker's memory storage
        to the controller; ``remove=True`` deletes them afterwards (frees a long-lived worker's memory)."""
        self.flush()
        if self.execution.location.is_memory:
            names = sorted(self._written)
        else:
            try:
                names = self._io.files_under(self.path)
            except FileNotFoundError:
                names = []
        files = {}
        for rel in names:
            try:
                files[rel] = self._io.read_bytes(self._io.join(self.path, rel))
            except FileNotFoundError:
                continue
        if remove:
            self.close()
            for rel in files:
                self._io.remove(self._io.join(self.path, rel))
            self._written.clear()
        return files

    def import_files(self, files: Mapping[str, bytes]) -> None:
        """Write files exported by :meth:`export` (possibly in another process) into this trial's folder."""
        for rel, data in files.items():
            normal = _store.check_name(rel, "trial file name")
            if "/" in normal:
                self._check_real_parent(normal, rel, "trial file name")
            self._write(normal, bytes(data))
            if normal in (STATUS_JSON, TRIAL_JSON):
                try:
                    loaded = json.loads(data)
                except ValueError:
                    continue
                if isinstance(loaded, dict):
                    (self._status if normal == STATUS_JSON else self._info).update(loaded)
            elif normal == _store.STORE_JSON:
                self._store_keys = None

    def __repr__(self) -> str:
        return f"TrialWriter({self.path!r})"
