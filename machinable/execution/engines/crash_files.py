"""The files in which ``process``-engine workers leave the Python traceback of a fatal signal (``faulthandler``).

A worker dies of a segfault without a word to its controller: what ``faulthandler`` wrote into this file is how
the controller learns where it died. The controller removes a worker's file when the worker has ended and the
worker removes its own when it ends without dying of a signal; neither happens when both are killed at once
(``kill -9`` of their process group, the out-of-memory killer). The name carries the controller's pid so that
the next process-engine run on this host can tell such files (their controller is gone) from those of a
controller that still runs, and remove only the former.

An unlinked file or a pipe would leave nothing on disk at all, but ``faulthandler`` writes to a file descriptor,
and handing one to a spawned worker (``start_method='spawn'``) differs between platforms (Windows passes handles,
not descriptors); a pipe also blocks a dying worker once its buffer is full. A named file works with every start
method and platform, so it stays, and what a kill leaves of it is cleaned up.
"""

from __future__ import annotations

import contextlib
import os
import re

PREFIX = "machinable-worker-"
SUFFIX = ".crash"
# The random part is tempfile's (letters, digits, underscore); names without a pid (machinable before the pid
# was part of the name) or with anything else are not ours to judge and are left alone.
_OURS = re.compile(re.escape(PREFIX) + r"(\d+)-[a-z0-9_]+" + re.escape(SUFFIX))
# faulthandler lists the most recent call first: the trial's frames, then machinable's (the runner, the worker)
_PACKAGE_FRAME = '  File "' + os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep


def create() -> str:
    """A new, empty crash file of this process's worker."""
    import tempfile

    fd, path = tempfile.mkstemp(prefix=f"{PREFIX}{os.getpid()}-", suffix=SUFFIX)
    os.close(fd)
    return path


def remove(path: str) -> None:
    if path:
        with contextlib.suppress(OSError):
            os.remove(path)


def remove_orphans(directory: str | None = None) -> list[str]:
    """Remove the crash files of controllers of this host that no longer run; returns their paths.

    A file whose controller runs (or whose pid cannot be probed) is kept: its worker may still be writing to it.
    """
    import tempfile

    from machinable.storage.liveness import pid_gone

    directory = directory or tempfile.gettempdir()
    removed = []
    try:
        names = [n for n in os.listdir(directory) if n.startswith(PREFIX) and n.endswith(SUFFIX)]
    except OSError:
        return removed
    owners: dict[int, bool] = {}
    for name in names:
        match = _OURS.fullmatch(name)
        if match is None:
            continue
        pid = int(match.group(1))
        if pid not in owners:
            owners[pid] = pid_gone(pid)
        if owners[pid]:
            path = os.path.join(directory, name)
            remove(path)
            removed.append(path)
    return removed


def fatal_traceback(path: str) -> str:
    """What faulthandler wrote when the worker died of a fatal signal: the trial's frames, ours left out."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            lines = f.read().strip().splitlines()
    except OSError:
        return ""
    kept: list[str] = []
    for line in lines:
        if line.startswith(_PACKAGE_FRAME) or line.startswith("Extension modules"):
            break
        if line.strip():
            kept.append(line)
    if len(kept) > 60:
        kept = [*kept[:30], "  ...", *kept[-29:]]
    return "".join(f"\n{line}" for line in kept)
