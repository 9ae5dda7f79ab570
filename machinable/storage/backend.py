"""The few file operations storage needs, for three kinds of filesystem.

The public API speaks fsspec URLs, but per-trial overhead matters (DESIGN.md §7): on local disks plain ``os``
calls are several times faster than fsspec's layers, and fsspec's memory filesystem is a dict of ``MemoryFile``
objects that we can fill directly. Every other protocol goes through the fsspec filesystem as is.

JSON files are replaced atomically where the filesystem allows it (local disks: a temp file in the same
folder, then ``os.replace``); object stores replace whole objects anyway.
"""

from __future__ import annotations

import os
import posixpath
import threading
from typing import Any, Protocol

# Object stores have no directories: creating them costs round trips (or even creates buckets).
_NO_DIRECTORIES = {"s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "adl", "oci", "r2", "tos", "oss"}


class Appender(Protocol):
    def write(self, data: bytes) -> Any: ...
    def flush(self) -> None: ...
    def close(self) -> None: ...


class Backend:
    """Interface; paths are absolute paths of the backend (local paths or fsspec paths without protocol)."""

    is_local = False

    def join(self, *parts: str) -> str:
        return posixpath.join(*parts)

    def write_bytes(self, path: str, data: bytes, *, atomic: bool = False) -> None:
        raise NotImplementedError

    def create_bytes(self, path: str, data: bytes) -> None:
        """Write a file that should not exist yet: readers find it absent, empty or whole, never half-written (a
        writer killed between creating and writing leaves it empty); an existing file is replaced atomically."""
        self.write_bytes(path, data, atomic=True)

    def open_append(self, path: str, *, buffered: bool = False) -> Appender:
        raise NotImplementedError

    def read_bytes(self, path: str) -> bytes:
        raise NotImplementedError

    def isfile(self, path: str) -> bool:
        raise NotImplementedError

    def isdir(self, path: str) -> bool:
        raise NotImplementedError

    def makedirs(self, path: str) -> None:
        """Make sure ``path`` can hold files (a no-op where directories are implied)."""

    def claim(self, path: str, marker: str) -> bool:
        """Take the folder ``path`` for a new execution; False when another execution has it.

        ``marker`` is the file that shows a folder is taken where folders are only implied (object stores).
        """
        if self.isdir(path) or self.isfile(f"{path}/{marker}"):
            return False
        self.makedirs(path)
        return True

    def create(self, path: str, data: bytes) -> bool:
        """Write the file ``path`` only if it does not exist, atomically; False when it does (claims)."""
        raise NotImplementedError

    def listdir(self, path: str) -> list[tuple[str, bool]]:
        """(name, is_directory) of the entries of ``path``; FileNotFoundError when it does not exist."""
        raise NotImplementedError

    def files_under(self, path: str) -> list[str]:
        """Paths of all files below ``path``, relative to it, '/'-separated."""
        raise NotImplementedError

    def remove(self, path: str) -> None:
        raise NotImplementedError

    def stale_temp_files(self, path: str) -> list[str]:
        """Temp files below ``path`` of atomic writes whose process is gone (they never finished), relative to
        it; none where writes need no temp file."""
        return []

    def put_file(self, local: str, path: str) -> None:
        """Copy the local file ``local`` to ``path`` (a checkpoint's files, staged in a local folder)."""
        with open(local, "rb") as f:
            self.write_bytes(path, f.read())

    def get_file(self, path: str, local: str) -> None:
        """Copy ``path`` to the local file ``local`` (a checkpoint's files, for ``on_restore``)."""
        with open(local, "wb") as f:
            f.write(self.read_bytes(path))

    def refresh(self) -> None:
        """Forget cached listings before reading back (s3fs caches them)."""

    def check_writable(self, root: str) -> None:
        """Raise (OSError, or the filesystem's own error) unless files can be written below ``root``: a probe
        file is created and removed, which also proves that credentials, the bucket and the server work."""
        probe = self.join(root, probe_name())
        self.makedirs(root)
        self.write_bytes(probe, b"")
        self.remove(probe)


def probe_name() -> str:
    return f".machinable-probe-{os.getpid()}-{threading.get_ident()}"


class _MemoryAppender:
    """Appends to a MemoryFile that is already in the store, so readers see every row at once."""

    __slots__ = ("_file",)

    def __init__(self, file: Any) -> None:
        self._file = file

    def write(self, data: bytes) -> int:
        f = self._file
        # Someone may have opened the same MemoryFile for reading and moved its position.
        f.seek(0, 2)
        return f.write(data)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass


_MEMORY_CLAIMS = threading.Lock()


class MemoryBackend(Backend):
    """fsspec's memory filesystem, filled directly (its ``open`` walks every parent folder per call)."""

    def __init__(self, fs: Any) -> None:
        from fsspec.implementations.memory import MemoryFile

        self.fs = fs
        self.store = fs.store
        self._file = MemoryFile

    def write_bytes(self, path: str, data: bytes, *, atomic: bool = False) -> None:
        # Swapping the dict entry is atomic for readers.
        self.store[path] = self._file(self.fs, path, data)

    def open_append(self, path: str, *, buffered: bool = False) -> Appender:
        f = self.store.get(path)
        if f is None:
            f = self.store[path] = self._file(self.fs, path, None)
        return _MemoryAppender(f)

    def read_bytes(self, path: str) -> bytes:
        try:
            return self.store[path].getvalue()
        except KeyError:
            raise FileNotFoundError(path) from None

    def isfile(self, path: str) -> bool:
        return path in self.store

    def isdir(self, path: str) -> bool:
        return self.fs.isdir(path)

    def claim(self, path: str, marker: str) -> bool:
        # Folders are only implied here, so the check and the marker ('{}': no information yet) happen under
        # one lock: two threads executing with the same seed must not share a folder.
        with _MEMORY_CLAIMS:
            if not super().claim(path, marker):
                return False
            self.write_bytes(f"{path}/{marker}", b"{}")
        return True

    def create(self, path: str, data: bytes) -> bool:
        with _MEMORY_CLAIMS:
            if path in self.store:
                return False
            self.write_bytes(path, data)
        return True

    def listdir(self, path: str) -> list[tuple[str, bool]]:
        return [
            (posixpath.basename(e["name"]), e["type"] == "directory") for e in self.fs.ls(path, detail=True)
        ]

    def files_under(self, path: str) -> list[str]:
        prefix = path.rstrip("/") + "/"
        return sorted(p[len(prefix) :] for p in tuple(self.store) if p.startswith(prefix))

    def remove(self, path: str) -> None:
        self.store.pop(path, None)

    def check_writable(self, root: str) -> None:
        """Memory is always writable."""


class _FsspecAppender:
    """An fsspec file opened for appending; object stores show its content when it is closed."""

    def __init__(self, fs: Any, path: str) -> None:
        try:
            self._file = fs.open(path, "ab")
        except (NotImplementedError, ValueError):
            self._file = fs.open(path, "wb")

    def write(self, data: bytes) -> int:
        return self._file.write(data)

    def flush(self) -> None:
        self._file.flush()

    def close(self) -> None:
        self._file.close()


class FsspecBackend(Backend):
    def __init__(self, fs: Any, protocol: str) -> None:
        self.fs = fs
        self._dirs = protocol not in _NO_DIRECTORIES

    def write_bytes(self, path: str, data: bytes, *, atomic: bool = False) -> None:
        self.fs.pipe_file(path, data)

    def open_append(self, path: str, *, buffered: bool = False) -> Appender:
        return _FsspecAppender(self.fs, path)

    def read_bytes(self, path: str) -> bytes:
        return self.fs.cat_file(path)

    def isfile(self, path: str) -> bool:
        return self.fs.isfile(path)

    def isdir(self, path: str) -> bool:
        return self.fs.isdir(path)

    def makedirs(self, path: str) -> None:
        if self._dirs:
            self.fs.makedirs(path, exist_ok=True)

    def claim(self, path: str, marker: str) -> bool:
        if not super().claim(path, marker):
            return False
        # An exclusive create of the marker ('{}': no information yet) settles a race between two executions
        # with the same id where the store supports it (S3's If-None-Match; fsspec checks then writes elsewhere).
        try:
            self.fs.pipe_file(f"{path}/{marker}", b"{}", mode="create")
        except FileExistsError:
            return False
        except Exception:  # noqa: BLE001 - no exclusive writes here (or an old botocore): claim as before
            self.fs.pipe_file(f"{path}/{marker}", b"{}")
        return True

    def create(self, path: str, data: bytes) -> bool:
        # A conditional put (S3's If-None-Match, fsspec's mode="create"); where the store has none, check and
        # then write, which narrows a race to the time between the two calls.
        try:
            self.fs.pipe_file(path, data, mode="create")
        except FileExistsError:
            return False
        except Exception:  # noqa: BLE001 - no exclusive writes here
            if self.fs.exists(path):
                return False
            self.fs.pipe_file(path, data)
        return True

    def listdir(self, path: str) -> list[tuple[str, bool]]:
        entries = self.fs.ls(path, detail=True)
        base = path.rstrip("/")
        out = []
        for e in entries:
            name = e["name"].rstrip("/")
            if name == base:  # some filesystems list the folder itself
                continue
            out.append((posixpath.basename(name), e["type"] == "directory"))
        return out

    def files_under(self, path: str) -> list[str]:
        base = self.fs._strip_protocol(path).rstrip("/") + "/"
        return sorted(p[len(base) :] for p in self.fs.find(path) if p.startswith(base))

    def remove(self, path: str) -> None:
        self.fs.rm_file(path)

    def put_file(self, local: str, path: str) -> None:
        self.fs.put_file(local, path)  # streamed: a checkpoint may be larger than memory

    def get_file(self, path: str, local: str) -> None:
        self.fs.get_file(path, local)

    def refresh(self) -> None:
        self.fs.invalidate_cache()
