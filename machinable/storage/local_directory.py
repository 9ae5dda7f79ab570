"""A trial's local working folder for files that libraries write themselves: ``self.local_directory()``.

On a local disk it is the trial's ``store/`` folder itself: what a library writes there is in storage at once, and
``trial.store`` lists it with what ``self.store`` kept. On every other storage (memory, S3 ...) no local path
exists, so it is a temporary local folder: its new and changed files are copied into the trial's ``store/``
whenever a checkpoint is saved and when the trial ends, whatever its outcome (the protocol closes it), files
deleted from it since the last copy are deleted there too, and the folder is removed at the end. Copying uses the
same staging as checkpoints (:func:`put_files`), streamed on fsspec storage.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import weakref
from collections.abc import Iterable
from typing import TYPE_CHECKING

from machinable.storage.store import STORE_DIR, check_name

if TYPE_CHECKING:
    from machinable.storage.writer import TrialWriter


def local_files(folder: str) -> list[str]:
    """The files below the local ``folder``, relative to it, '/'-separated."""
    out = []
    for parent, _dirs, files in os.walk(folder):
        rel = os.path.relpath(parent, folder)
        for name in files:
            out.append(name if rel == "." else f"{rel.replace(os.sep, '/')}/{name}")
    return sorted(out)


def put_files(tw: TrialWriter, local: str, rel: str, names: Iterable[str]) -> None:
    """Copy the files ``names`` of the local folder ``local`` into the folder ``rel`` of the trial's storage."""
    for name in names:
        tw._io.put_file(os.path.join(local, *name.split("/")), tw._prepare(f"{rel}/{name}"))


class LocalDirectory:
    """The local directory of one running trial (created on first use)."""

    def __init__(self, tw: TrialWriter) -> None:
        self.tw = tw
        self.temporary = not tw._io.is_local
        self.root: str | None = None
        self._copied: dict[str, tuple[int, int]] = {}  # file -> (size, mtime) when it was last copied

    def path(self, sub: str = "") -> str:
        """The folder (``sub``: a folder inside it, created), as an absolute local path."""
        normal = check_name(sub, "local directory") if sub else ""
        if self.root is None:
            if self.temporary:
                self.root = tempfile.mkdtemp(prefix=f"machinable-local-{self.tw.uid}-")
            else:
                self.tw._check_real_parent(f"{STORE_DIR}/.", sub or STORE_DIR, "local directory")
                self.root = os.path.abspath(self.tw._prefix + STORE_DIR)
                os.makedirs(self.root, exist_ok=True)
        if not normal:
            return self.root
        if not self.temporary:
            self.tw._check_real_parent(f"{STORE_DIR}/{normal}/.", sub, "local directory")
        folder = os.path.join(self.root, *normal.split("/"))
        os.makedirs(folder, exist_ok=True)
        return folder

    def sync(self) -> None:
        """Copy the temporary folder's new and changed files into the trial's ``store/`` and delete there the files
        deleted here since the last copy (a no-op on a local disk, where the folder is the storage)."""
        if self.root is None or not self.temporary:
            return
        now = {}
        for name in local_files(self.root):
            try:
                stat = os.stat(os.path.join(self.root, *name.split("/")))
            except FileNotFoundError:  # deleted by the library meanwhile
                continue
            now[name] = (stat.st_size, stat.st_mtime_ns)
        changed = [name for name, seen in now.items() if self._copied.get(name) != seen]
        put_files(self.tw, self.root, STORE_DIR, changed)
        for name in self._copied.keys() - now.keys():
            rel = f"{STORE_DIR}/{name}"
            try:
                self.tw._io.remove(self.tw._prefix + rel)
            except FileNotFoundError:
                pass
            self.tw._written.discard(rel)  # not shipped with a memory trial's files, not 'already stored'
        self._copied = now

    def close(self) -> None:
        """Copy a last time and remove the temporary folder."""
        try:
            self.sync()
        finally:
            if self.temporary and self.root is not None:
                shutil.rmtree(self.root, ignore_errors=True)
            self.root = None


# The local directory of each running trial, by its writer: the component's method, the functions' fixture, the
# checkpoints and the protocol's end of the trial all reach it from the trial's writer.
_OPEN: weakref.WeakKeyDictionary[TrialWriter, LocalDirectory] = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()


def local_directory(tw: TrialWriter, sub: str = "") -> str:
    """The local directory of the trial written by ``tw`` (``sub``: a folder inside it, created)."""
    with _LOCK:
        folder = _OPEN.get(tw)
        if folder is None:
            folder = _OPEN[tw] = LocalDirectory(tw)
    return folder.path(sub)


def sync_local_directory(tw: TrialWriter) -> None:
    """A checkpoint is saved: the trial's local directory, if it has one, is copied into storage."""
    folder = _OPEN.get(tw)
    if folder is not None:
        folder.sync()


def close_local_directory(tw: TrialWriter) -> None:
    """The trial ended: its local directory, if it has one, is copied into storage a last time and removed."""
    with _LOCK:
        folder = _OPEN.pop(tw, None)
    if folder is not None:
        folder.close()
