"""Stored objects: ``self.store(name, value)`` in a component, ``trial.store[name]`` when reading back.

A name with a known extension becomes a file under ``store/``: ``.json``, ``.txt``, ``.pkl``, ``.pt`` / ``.pth``
(torch.save), ``.npz`` (a dict of numpy arrays) and ``.npy`` when numpy is importable; any other name becomes a key
of ``store.json``. torch and numpy are imported only for their own formats. A value the format cannot hold is a
StorageError naming the store key: an array or tensor is never turned into JSON lists. Files a library wrote into
the trial's local directory (storage/local_directory.py) are read back by their extension too, and as bytes when
machinable does not know it. Names are relative paths that must stay inside the trial's folder.
"""

from __future__ import annotations

import importlib
import io
import json
import pickle
import posixpath
import re
import zipfile
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from machinable.errors import StorageError
from machinable.storage.encoding import ArrayFound, dumps_stored, is_array
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


# Extensions stored as files, whatever is installed: the package a format needs is asked for when it is used.
_KINDS = {".json": "json", ".txt": "txt", ".pkl": "pkl", ".pt": "pt", ".pth": "pt", ".npz": "npz"}


def kind_of(name: str) -> str | None:
    """'json', 'txt', 'pkl', 'pt', 'npz' or 'npy' for names stored as files; None for keys of store.json."""
    ext = posixpath.splitext(name)[1].lower()
    kind = _KINDS.get(ext)
    if kind is None and ext == ".npy" and _numpy_available():
        return "npy"
    return kind


def _module(package: str, action: str, name: str) -> Any:
    """The module ``package`` (numpy, torch), imported only now; a one-line error when it is not installed."""
    try:
        return importlib.import_module(package)
    except ImportError as exc:
        raise MissingDependencyError(f"{action} '{name}' needs {package}: pip install {package}") from exc


def to_json(name: str, value: Any, *, pretty: bool = False) -> str:
    """``value`` as JSON for the store name ``name``; StorageError naming it (and where in the value) when it holds
    an array or tensor, which JSON would turn into nested lists."""
    try:
        return dumps_stored(value, pretty=pretty)
    except ArrayFound as found:
        raise StorageError(array_message(name, value, found.value)) from None


def array_message(name: str, value: Any, array: Any) -> str:
    """Why ``array`` (found in the JSON-stored ``value``) cannot be stored under ``name``, and which name can."""
    path = _path_to(value, array, set())
    where = "the value" if path == "" else f"value{path}" if path else "a value inside it"
    what = f"{type(array).__module__.split('.')[0]}.{type(array).__qualname__}"
    dtype = getattr(array, "dtype", None)
    stem = posixpath.splitext(name)[0] if kind_of(name) == "json" else name
    if what.startswith("torch."):
        fitting = f"'{stem}.pt' (torch.save)"
    elif path == "":
        fitting = f"'{stem}.npy' (one numpy array)"
    elif isinstance(value, Mapping) and all(map(is_array, value.values())):
        fitting = f"'{stem}.npz' (a dict of numpy arrays)"
    else:
        fitting = ""
    return (
        f"cannot store '{name}' as JSON: {where} is a {what} (shape {tuple(array.shape)}"
        f"{f', dtype {dtype}' if dtype is not None else ''}), which JSON would turn into nested lists that lose "
        f"its dtype; store it as {f'{fitting} or ' if fitting else ''}'{stem}.pkl' (any object)"
    )


def _path_to(value: Any, target: Any, seen: set[int]) -> str | None:
    """Where ``target`` is inside ``value``, as subscripts (``['fc']['weight']``; '' for ``value`` itself)."""
    if value is target:
        return ""
    if id(value) in seen:
        return None
    seen.add(id(value))
    if isinstance(value, Mapping):
        items: Any = value.items()
    elif isinstance(value, (list, tuple)):
        items = enumerate(value)
    else:
        return None
    for key, item in items:
        found = _path_to(item, target, seen)
        if found is not None:
            return f"[{key!r}]{found}"
    return None


def _stored_arrays(numpy: Any, name: str, value: Any) -> dict[str, Any]:
    if not isinstance(value, Mapping) or not all(isinstance(key, str) and key for key in value):
        raise StorageError(
            f"cannot store '{name}' as .npz: it takes a dict of names to arrays, not a "
            f"{type(value).__qualname__}; use a '.npy' name for one array"
        )
    return {key: _array(numpy, name, item, f"its entry {key!r}") for key, item in value.items()}


def _array(numpy: Any, name: str, value: Any, what: str = "the value") -> Any:
    try:
        array = numpy.asarray(value)
    except (ValueError, TypeError, RuntimeError) as exc:  # ragged lists, GPU tensors, tensors needing grad
        raise StorageError(f"cannot store '{name}': {what} is no numpy array ({exc})") from exc
    if array.dtype.hasobject:
        # allow_pickle=False keeps .npy/.npz files loadable without trusting them; objects belong in .pkl.
        raise StorageError(
            f"cannot store '{name}': {what} holds Python objects ({type(value).__qualname__}), not numbers; "
            f"use a '.pkl' name for arbitrary objects"
        )
    return array


def _savez(numpy: Any, arrays: Mapping[str, Any]) -> bytes:
    """numpy.savez's format (an uncompressed zip of one ``<name>.npy`` per array), written here because savez takes
    the names as keyword arguments, where 'file' and 'allow_pickle' could not be names."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
        for key, array in arrays.items():
            with archive.open(f"{key}.npy", "w", force_zip64=True) as member:
                numpy.lib.format.write_array(member, array, allow_pickle=False)
    return buffer.getvalue()


def _pickled(name: str, dump: Callable[[io.BytesIO], None], how: str) -> bytes:
    buffer = io.BytesIO()
    try:
        dump(buffer)
    except (pickle.PicklingError, TypeError, AttributeError) as exc:  # lambdas, open files, local classes
        raise StorageError(f"cannot store '{name}' with {how}: {exc}") from exc
    return buffer.getvalue()


def encode(kind: str, name: str, value: Any) -> bytes:
    if kind == "json":
        return to_json(name, value, pretty=True).encode("utf-8")
    if kind == "txt":
        return bytes(value) if isinstance(value, (bytes, bytearray)) else str(value).encode("utf-8")
    if kind == "pkl":
        return _pickled(name, lambda f: pickle.dump(value, f, protocol=pickle.HIGHEST_PROTOCOL), "pickle")
    if kind == "pt":
        torch = _module("torch", "storing", name)
        return _pickled(name, lambda f: torch.save(value, f), "torch.save")
    numpy = _module("numpy", "storing", name)
    if kind == "npz":
        return _savez(numpy, _stored_arrays(numpy, name, value))
    buffer = io.BytesIO()
    numpy.save(buffer, _array(numpy, name, value), allow_pickle=False)
    return buffer.getvalue()


def decode(kind: str, name: str, data: bytes) -> Any:
    try:
        if kind == "json":
            return json.loads(data)
        if kind == "txt":
            return data.decode("utf-8")
    except ValueError as exc:  # a file a library wrote into the local directory, not JSON or not UTF-8
        raise StorageError(f"cannot read '{name}' as .{kind}: {exc}") from exc
    if kind == "pkl":
        return pickle.loads(data)
    if kind == "pt":
        return _torch_load(name, data)
    numpy = _module("numpy", "reading", name)
    if kind == "npz":
        # Read whole: a lazy NpzFile would keep the data open behind the mapping.
        with numpy.load(io.BytesIO(data), allow_pickle=False) as npz:
            return {key: npz[key] for key in npz.files}
    return numpy.load(io.BytesIO(data), allow_pickle=False)


def _torch_load(name: str, data: bytes) -> Any:
    """torch.load with torch's own default of ``weights_only`` (True since torch 2.6: tensors, state_dicts and plain
    containers, never arbitrary code); onto the CPU, so a model trained on a GPU reads back anywhere."""
    torch = _module("torch", "reading", name)
    try:
        return torch.load(io.BytesIO(data), map_location="cpu")
    except pickle.UnpicklingError as exc:
        unsupported = re.search(r"Unsupported global: GLOBAL (\S+)", str(exc))
        held = f"a {unsupported.group(1)}" if unsupported else "objects"
        raise StorageError(
            f"cannot read '{name}' with torch.load(weights_only=True): it holds {held}, not only tensors and "
            f"plain containers; store a state_dict "
            f"(model.state_dict()) under a '.pt' name, or a '.pkl' name for arbitrary objects"
        ) from exc


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
        if kind is None:  # a file of a format machinable does not know (a library's): its bytes
            try:
                return self._read(f"{STORE_DIR}/{normal}")
            except FileNotFoundError:
                pass
        raise KeyError(f"nothing stored as '{name}' in {self._where or 'this trial'}; stored: {sorted(self)}")

    def __iter__(self) -> Iterator[str]:
        return iter(sorted({*self._json_keys(), *self._file_names()}))

    def __len__(self) -> int:
        return len({*self._json_keys(), *self._file_names()})

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name in set(self)

    def __repr__(self) -> str:
        return f"<store of {self._where}: {sorted(self)}>"
