"""A trial's checkpoints in storage: where they are, when one is complete, and their files in a local folder.

::

    <trial>/checkpoints/<n>/...               what the component's ``on_save(path)`` wrote into ``path``
    <trial>/checkpoints/<n>/checkpoint.json   written last: {"number", "time", "records": {scope: rows},
                                              "iteration"}
    <trial>/attempts/<a>/checkpoints/<n>/     an earlier attempt's (resume moves them with its other files)

A checkpoint whose ``checkpoint.json`` is missing or unreadable (its process was killed while saving, or
``on_save`` failed) is ignored. Numbers go on across attempts: a trial resumed from checkpoint 3 saves 4 next.

``on_save`` and ``on_restore`` get a local folder on every storage: on a local disk the checkpoint's own folder;
elsewhere (memory, S3 ...) a temporary folder whose files are copied into the trial's storage after ``on_save``
returns, or which is filled from it before ``on_restore`` runs, and removed afterwards.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from machinable.errors import StorageError
from machinable.storage.attempts import ATTEMPTS_DIR
from machinable.storage.encoding import dumpb
from machinable.storage.layout import check_segment
from machinable.storage.local_directory import local_files, put_files
from machinable.storage.streams import parse_jsonl, records_file

if TYPE_CHECKING:
    from machinable.storage.backend import Backend
    from machinable.storage.writer import ExecutionWriter, TrialWriter

CHECKPOINTS_DIR = "checkpoints"
CHECKPOINT_JSON = "checkpoint.json"


def checkpoint_folder(number: int) -> str:
    """Checkpoint ``number``'s folder, relative to its trial's folder."""
    return f"{CHECKPOINTS_DIR}/{number}"


def read_marker(io: Backend, folder: str) -> dict[str, Any] | None:
    """The ``checkpoint.json`` of the checkpoint in ``folder``; None when the checkpoint is not complete."""
    try:
        marker = json.loads(io.read_bytes(io.join(folder, CHECKPOINT_JSON)))
    except (OSError, ValueError):  # missing (FileNotFoundError is an OSError), empty or cut short
        return None
    if not isinstance(marker, dict) or not isinstance(marker.get("records"), dict):
        return None
    return marker


def latest_checkpoint(writer: ExecutionWriter, uid: str) -> str | None:
    """The newest complete checkpoint of trial ``uid``'s earlier attempts, relative to its folder
    (``attempts/2/checkpoints/5``): the newest attempt that left one wins, so a resumed attempt that died
    before its first checkpoint leaves the one it was resumed from as the latest. None when there is none."""
    io = writer._io
    folder = io.join(writer.path, uid)
    for attempt in _numbered(io, io.join(folder, ATTEMPTS_DIR)):
        base = f"{ATTEMPTS_DIR}/{attempt}/{CHECKPOINTS_DIR}"
        for number in _numbered(io, io.join(folder, base)):
            if read_marker(io, io.join(folder, base, str(number))) is not None:
                return f"{base}/{number}"
    return None


def _numbered(io: Backend, path: str) -> list[int]:
    """The numbers of the numbered folders in ``path``, highest first."""
    try:
        entries = io.listdir(path)
    except (FileNotFoundError, NotADirectoryError):
        return []
    return sorted((int(name) for name, is_dir in entries if is_dir and name.isdigit()), reverse=True)


@contextmanager
def staged(tw: TrialWriter, rel: str) -> Iterator[str]:
    """A local folder for the files of the new checkpoint ``rel`` (see the module docstring); on other storage
    than a local disk its files are copied into storage when the block ends without an error."""
    io = tw._io
    if io.is_local:
        path = tw._prefix + rel
        io.makedirs(path)
        yield path
        return
    local = tempfile.mkdtemp(prefix=f"machinable-checkpoint-{tw.uid}-")
    try:
        yield local
        put_files(tw, local, rel, local_files(local))
    finally:
        shutil.rmtree(local, ignore_errors=True)


def write_marker(tw: TrialWriter, rel: str, marker: Mapping[str, Any]) -> None:
    """Complete the checkpoint ``rel``: its marker is written last (whole or not at all)."""
    tw._write(f"{rel}/{CHECKPOINT_JSON}", dumpb(marker))


@contextmanager
def fetched(tw: TrialWriter, rel: str) -> Iterator[str]:
    """A local folder holding the files of the checkpoint ``rel`` (its own folder on a local disk; read it only)."""
    io = tw._io
    folder = tw._prefix + rel
    if io.is_local:
        yield folder
        return
    local = tempfile.mkdtemp(prefix=f"machinable-restore-{tw.uid}-")
    try:
        for name in io.files_under(folder):
            if name != CHECKPOINT_JSON:
                target = os.path.join(local, *name.split("/"))
                os.makedirs(os.path.dirname(target), exist_ok=True)
                io.get_file(io.join(folder, name), target)
        yield local
    finally:
        shutil.rmtree(local, ignore_errors=True)


def load_checkpoint(tw: TrialWriter, rel: str) -> tuple[dict[str, Any], dict[str, list[dict[str, Any]]]]:
    """The marker of the checkpoint ``rel`` and the record rows it kept, by scope; the rows are written into the
    trial's (empty) records first, so that the new attempt's records continue the checkpoint's: rows the earlier
    attempt wrote after it are dropped."""
    marker = read_marker(tw._io, tw._prefix + rel)
    if marker is None:
        raise StorageError(
            f"checkpoint {rel} of trial {tw.uid} is not complete (no readable {CHECKPOINT_JSON})"
        )
    attempt = rel.rpartition(f"/{CHECKPOINTS_DIR}/")[0]  # the records the counts refer to are that attempt's
    kept = {}
    for scope, count in marker["records"].items():
        check_segment(scope, "record scope")
        path = tw._prefix + f"{attempt}/{records_file(scope)}"
        try:
            rows = parse_jsonl(tw._io.read_bytes(path), path)[: int(count)]
        except FileNotFoundError:
            rows = []
        tw.record_writer(scope).write_many(rows)
        kept[scope] = rows
    return marker, kept


def next_attempt(writer: ExecutionWriter, uid: str) -> str | None:
    """Make room for another attempt of trial ``uid`` (its files move to ``attempts/<n>/``) and return the
    checkpoint it continues from (:func:`latest_checkpoint`), for a resume or a requeue."""
    from machinable.storage.attempts import archive_attempt

    archive_attempt(writer, uid)
    return latest_checkpoint(writer, uid)
