"""Local disks through plain ``os`` calls: the backend on the per-trial path of most users, so every system call
it makes per trial is counted (DESIGN.md §7)."""

from __future__ import annotations

import errno
import os
import posixpath
import re
import threading

from machinable.storage.backend import Appender, Backend, probe_name
from machinable.storage.liveness import pid_gone


def _tmp_name(path: str) -> str:
    # Unique per process and thread, so concurrent writers never share a temp file.
    return f"{path}.{os.getpid()}-{threading.get_ident()}.tmp"


# What _tmp_name makes: '<name>.<pid>-<thread>.tmp'.
_TEMP_NAME = re.compile(r".+\.(\d+)-\d+\.tmp")


_CREATE = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
_CREATE_NEW = _CREATE | os.O_EXCL


def _write_file(path: str, data: bytes, flags: int = _CREATE) -> None:
    """``open(path, 'wb').write(data)`` in three system calls: a file object's own stat, tty and seek probes
    (and its buffer) are a third of what writing a small JSON file costs, three times per trial."""
    fd = os.open(path, flags, 0o666)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)


_APPEND = os.O_WRONLY | os.O_CREAT | os.O_APPEND | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)


class _FileAppender:
    """Each write() is one append system call, so a killed process loses at most a partial line; a plain
    descriptor, because a file object's open costs a stat and a seek more (once per trial)."""

    __slots__ = ("_fd",)

    def __init__(self, fd: int) -> None:
        self._fd = fd

    def write(self, data: bytes) -> int:
        view = memoryview(data)
        while view:
            view = view[os.write(self._fd, view) :]
        return len(data)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        if self._fd >= 0:
            fd, self._fd = self._fd, -1
            os.close(fd)

    def __del__(self) -> None:
        self.close()


class LocalBackend(Backend):
    is_local = True

    def join(self, *parts: str) -> str:
        return os.path.join(*parts)

    def write_bytes(self, path: str, data: bytes, *, atomic: bool = False) -> None:
        if atomic:
            tmp = _tmp_name(path)
            try:
                _write_file(tmp, data)
                os.replace(tmp, path)
            except BaseException:
                # A full disk or a Ctrl-C must not leave temp files behind.
                try:
                    os.remove(tmp)
                except OSError:
                    pass
                raise
        else:
            _write_file(path, data)

    def create_bytes(self, path: str, data: bytes) -> None:
        # A small file written by one write() is whole or (killed right after the open) empty: no temp file and
        # rename, which are two of the few file-system operations a trial costs.
        try:
            _write_file(path, data, _CREATE_NEW)
        except FileExistsError:
            self.write_bytes(path, data, atomic=True)
        except BaseException:
            try:
                os.remove(path)
            except OSError:
                pass
            raise

    def open_append(self, path: str, *, buffered: bool = False) -> Appender:
        if buffered:
            return open(path, "ab")
        return _FileAppender(os.open(path, _APPEND, 0o666))

    def read_bytes(self, path: str) -> bytes:
        with open(path, "rb") as f:
            return f.read()

    def isfile(self, path: str) -> bool:
        return os.path.isfile(path)

    def isdir(self, path: str) -> bool:
        return os.path.isdir(path)

    def makedirs(self, path: str) -> None:
        try:
            os.mkdir(path)
        except FileExistsError:
            pass
        except FileNotFoundError:
            os.makedirs(path, exist_ok=True)

    def claim(self, path: str, marker: str) -> bool:
        # mkdir is atomic: of two processes taking the same folder at once, exactly one succeeds.
        os.makedirs(os.path.dirname(path), exist_ok=True)
        try:
            os.mkdir(path)
        except FileExistsError:
            return False
        return True

    def create(self, path: str, data: bytes) -> bool:
        # The content goes to a temp file first and is linked into place: link fails if the name exists, and
        # readers never see a claim half written. O_EXCL where hard links are not supported.
        tmp = _tmp_name(path)
        _write_file(tmp, data)
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
        except OSError:
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            except FileExistsError:
                return False
            with os.fdopen(fd, "wb") as f:
                f.write(data)
        finally:
            os.remove(tmp)
        return True

    def listdir(self, path: str) -> list[tuple[str, bool]]:
        with os.scandir(path) as entries:
            return [(e.name, e.is_dir()) for e in entries]

    def files_under(self, path: str) -> list[str]:
        out = []
        for folder, _dirs, files in os.walk(path):
            rel = os.path.relpath(folder, path)
            for name in files:
                if not name.endswith(".tmp"):
                    out.append(name if rel == "." else posixpath.join(rel.replace(os.sep, "/"), name))
        return sorted(out)

    def stale_temp_files(self, path: str) -> list[str]:
        # A temp file of a live process may still be renamed into place: only those of ended processes go.
        out = []
        for folder, _dirs, files in os.walk(path):
            rel = os.path.relpath(folder, path)
            for name in files:
                match = _TEMP_NAME.fullmatch(name)
                if match is not None and pid_gone(int(match.group(1))):
                    out.append(name if rel == "." else posixpath.join(rel.replace(os.sep, "/"), name))
        return sorted(out)

    def remove(self, path: str) -> None:
        os.remove(path)

    def check_writable(self, root: str) -> None:
        # The messages name the path to fix: os.makedirs would report a file further up as 'File exists' on root.
        existing = root
        while not os.path.exists(existing) and os.path.dirname(existing) != existing:
            existing = os.path.dirname(existing)
        if not os.path.isdir(existing):
            raise NotADirectoryError(errno.ENOTDIR, f"'{existing}' is a file, not a folder")
        try:
            os.makedirs(root, exist_ok=True)
        except OSError as exc:
            raise OSError(exc.errno, f"cannot create the folder '{root}' ({exc.strerror})") from exc
        probe = os.path.join(root, probe_name())
        try:
            os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        except OSError as exc:
            raise OSError(exc.errno, f"cannot create files in '{root}' ({exc.strerror})") from exc
        os.remove(probe)
