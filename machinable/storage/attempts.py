"""A trial's earlier attempts: before a resumed trial runs again, its files move to ``attempts/<n>/``.

The new attempt starts from an empty folder (records never mix), and nothing recorded before is lost.
"""

from __future__ import annotations

import posixpath
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from machinable.storage.writer import ExecutionWriter

ATTEMPTS_DIR = "attempts"


def archive_attempt(writer: ExecutionWriter, uid: str) -> int:
    """Move the files of trial ``uid``'s previous attempt to ``attempts/<n>/``; returns how many were moved.

    The files are copied before they are removed, so a resume that is itself killed loses nothing either. Temp
    files of atomic writes that a killed process never finished are deleted (they hold no result); those of a
    live process are left alone.
    """
    io = writer._io
    folder = io.join(writer.path, uid)
    for rel in io.stale_temp_files(folder):
        if not rel.startswith(ATTEMPTS_DIR + "/"):
            io.remove(io.join(folder, rel))
    try:
        files = [f for f in io.files_under(folder) if not f.startswith(ATTEMPTS_DIR + "/")]
    except FileNotFoundError:
        return 0
    if not files:
        return 0
    try:
        earlier = io.listdir(io.join(folder, ATTEMPTS_DIR))
    except (FileNotFoundError, NotADirectoryError):
        earlier = []
    attempt = 1 + sum(1 for name, is_dir in earlier if is_dir and name.isdigit())
    target = io.join(folder, ATTEMPTS_DIR, str(attempt))
    for rel in files:
        parent = posixpath.dirname(rel)
        io.makedirs(io.join(target, parent) if parent else target)
        io.write_bytes(io.join(target, rel), io.read_bytes(io.join(folder, rel)), atomic=True)
    for rel in files:
        io.remove(io.join(folder, rel))
    return len(files)
