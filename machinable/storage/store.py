"""Stored objects: ``self.store(name, value)`` in a component, ``trial.store[name]`` when reading back.

A name with a known extension becomes a file under ``store/`` (``.json``, ``.txt``, ``.pkl``, and ``.npy`` when
numpy is importable); any other name becomes a key of ``store.json``. Names are relative paths that must stay
inside the trial's folder.
"""

from __future__ import annotations

import io
import json
import posixpath
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from machinable.errors import StorageError
from machinable.storage.encoding import dumpb
from machinable.storage.url import MissingDependencyError

STORE_JSON = "store.json"
STORE_DIR = "store"


def check_name(name: Any, what: str = "store name") -> str:
    """The normalized relative name, or StorageError when it is empty or would leave the trial's folder."""
    if not isinstance(name, str) or not name.strip():
        raise StorageError(f"{what} must be a non-empty string, not {name!r}")
    if "\x00" in name:
        raise StorageError(f"{what} {name!r} contains a NUL character")
    text = name.replace("\\", "/")
    if text.startswith("/") or (len(text) > 1 and text[1] == ":" and text[0].isalpha()):
        raise StorageError(f"{what} '{name}' is absolute; use a name relative to the trial's folder")
    normal = posixpath.normpath(text)
    if normal == ".." or normal.startswith("../") or normal == ".":
        raise StorageError(f"{what} '{name}' would resolve outside the trial's folder")
    return normal


def _numpy_available() -> bool:
    try:
        import numpy  # noqa: F401
    except ImportError:
        return False
    return True


def kind_of(name: str) -> str | None:
    """'json', 'txt', 'npy' or 'pkl' for names stored as files; None for keys of store.json."""
    ext = posixpath.splitext(name)[1].lower()
    if ext in (".json", ".txt", ".pkl"):
        return ext[1:]
    if ext == ".npy" and _numpy_available():
        return "npy"
    return None


def encode(kind: str, name: str, value: Any) -> bytes:
    if kind == "json":
        return dumpb(value, pretty=True)
    if kind == "txt":
        return bytes(value) if isinstance(value, (bytes, bytearray)) else str(value).encode("utf-8")
    if kind == "pkl":
        import pickle

        return pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    import numpy

    buffer = io.BytesIO()
    try:
        # allow_pickle=False keeps .npy files loadable without trusting them; objects belong in .pkl.
        numpy.save(buffer, numpy.asarray(value), allow_pickle=False)
    except ValueError as exc:
        raise StorageError(
            f"cannot store '{name}' as .npy ({exc}); use a '.pkl' name for arbitrary objects"
        ) from exc
    return buffer.getvalue()


def decode(kind: str, name: str, data: bytes) -> Any:
    if kind == "json":
        return json.loads(data)
    if kind == "txt":
        return data.decode("utf-8")
    if kind == "pkl":
        import pickle

        return pickle.loads(data)
    try:
        import numpy
    except ImportError as exc:
        raise MissingDependencyError(f"reading '{name}' needs numpy: pip install numpy") from exc
    return numpy.load(io.BytesIO(data), allow_pickle=False)


class StoreView(Mapping[str, Any]):
    """Read-only mapping over a stored trial's ``store.json`` keys and ``store/`` files (loaded on access)."""

    def __init__(
        self, read: Callable[[str], bytes], list_files: Callable[[], list[str]], *, where: str = ""
    ) -> None:
        self._read = read
        self._list_files = list_files
        self._where = where
        self._keys: dict[str, Any] | None = None
        self._files: list[str] | None = None

    def _json_keys(self) -> dict[str, Any]:
        if self._keys is None:
            try:
                self._keys = json.loads(self._read(STORE_JSON))
            except FileNotFoundError:
                self._keys = {}
            except ValueError as exc:
                raise StorageError(f"{self._where}/{STORE_JSON} is not valid JSON: {exc}") from exc
        return self._keys

    def _file_names(self) -> list[str]:
        if self._files is None:
            self._files = self._list_files()
        return self._files

    def __getitem__(self, name: str) -> Any:
        normal = check_name(name)
        kind = kind_of(normal)
        if kind is None and posixpath.splitext(normal)[1].lower() == ".npy":
            kind = "npy"  # written where numpy exists, read here: decode() explains what is missing
        if kind is not None:
            try:
                data = self._read(f"{STORE_DIR}/{normal}")
            except FileNotFoundError:
                pass
            else:
                return decode(kind, normal, data)
        keys = self._json_keys()
        if normal in keys:
            return keys[normal]
        raise KeyError(f"nothing stored as '{name}' in {self._where or 'this trial'}; stored: {sorted(self)}")

    def __iter__(self) -> Iterator[str]:
        return iter(sorted({*self._json_keys(), *self._file_names()}))

    def __len__(self) -> int:
        return len({*self._json_keys(), *self._file_names()})

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name in set(self)

    def __repr__(self) -> str:
        return f"<store of {self._where}: {sorted(self)}>"
