"""Storage targets: one function turns a URL, path, dict or None into a :class:`StorageLocation`.

Accepted forms (docs/storage.md has examples of each):

* ``None`` or ``'memory://'``: non-persistent memory, a fresh folder per call so executions never mix;
  ``'memory://name'`` is shared by name within the process; ``'mem://'`` is an alias.
* a path (``'~/observations'``, ``'./results'``, ``'/abs'``), ``'file://path'`` or ``'osfs://path'``: local disk.
* ``'s3://bucket/prefix'`` and any other protocol fsspec knows (``gs://``, ``az://``, ``sftp://``, ...).
* a dict: ``{'url': ..., 'code_backup': bool, **fsspec_storage_options}``; the guide's spelling
  ``{'storage': 's3://bucket', 'code_backup': False}`` works too.

fsspec itself is imported only here, inside functions, so ``import machinable`` stays fast.
"""

from __future__ import annotations

import os
import posixpath
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, final

from machinable.errors import StorageError

if TYPE_CHECKING:
    from machinable.storage.backend import Backend

PROTOCOLS = (
    "a local path ('~/observations', './results'), file://, memory:// (alias mem://), osfs://, "
    "s3://bucket/prefix, gs://, az://, sftp://, or any other fsspec protocol"
)
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*)://(.*)$", re.DOTALL)
# 'C:\\x' and 'C:/x' are Windows paths; 's3:/bucket' is a URL missing a slash.
_ALMOST_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]+:/")
_USERINFO = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*://)[^/@]*@")
_ALIASES = {"mem": "memory", "osfs": "file", "local": "file"}
_NEED_BUCKET = {"s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "adl", "oci", "r2", "tos", "oss"}
_URL_KEYS = ("url", "storage")
# fsspec filesystems that can only read: stored executions can be read back from them, never written.
_READ_ONLY = {"http", "https", "github", "git", "tar", "libarchive", "reference", "jlab"}
_NO_CREDENTIALS = ("NoCredentialsError", "PartialCredentialsError")
_NO_CONNECTION = ("EndpointConnectionError", "ConnectTimeoutError", "ClientConnectorError", "ConnectionError")


class MissingDependencyError(StorageError, ImportError):
    """An optional package (s3fs, pandas, numpy, ...) that a storage feature needs is not installed."""


@final
class StorageLocation:
    """Where an execution's files go: an fsspec filesystem plus a root folder on it."""

    def __init__(
        self,
        protocol: str,
        root: str,
        *,
        code_backup: bool = True,
        storage_options: Mapping[str, Any] | None = None,
        target_url: str | None = None,
        fs: Any = None,
    ) -> None:
        self.protocol = protocol
        self.root = root
        self.code_backup = code_backup
        self.storage_options = dict(storage_options or {})
        self._target_url = target_url or self._default_url()
        self._fs = fs
        self._backend: Backend | None = None

    def _default_url(self) -> str:
        if self.protocol == "file":
            return self.root
        if self.protocol == "memory":
            return "memory://" + self.root.lstrip("/")
        return f"{self.protocol}://{self.root}"

    @property
    def url(self) -> str:
        """Printable URL: local paths as plain absolute paths, never credentials."""
        return printable_url(self._target_url)

    @property
    def is_memory(self) -> bool:
        return self.protocol == "memory"

    @property
    def is_local(self) -> bool:
        return self.protocol == "file"

    @property
    def fs(self) -> Any:
        """The fsspec filesystem (created on first use: local storage never needs fsspec otherwise)."""
        if self._fs is None:
            import fsspec

            self._fs = fsspec.filesystem(self.protocol, **self.storage_options)
        return self._fs

    @property
    def options(self) -> dict[str, Any]:
        """Plain, picklable dict that :func:`open_storage` turns back into this location (same root)."""
        return {"url": self._target_url, "code_backup": self.code_backup, **self.storage_options}

    def to_target(self) -> dict[str, Any]:
        """Like :attr:`options`: what to pass to ``open_storage`` in another process to reopen this root."""
        return self.options

    def backend(self) -> Backend:
        """The file operations writers and readers use (internal)."""
        if self._backend is None:
            from machinable.storage import backend, local_backend

            if self.is_local:
                self._backend = local_backend.LocalBackend()
            elif self.is_memory:
                self._backend = backend.MemoryBackend(self.fs)
            else:
                self._backend = backend.FsspecBackend(self.fs, self.protocol)
        return self._backend

    def check_writable(self) -> None:
        """Raise :class:`StorageError` (one line naming the problem) unless a new execution can be written here.

        Called once per execution before anything runs, so a wrong path, a missing bucket, missing credentials
        or a server that is down are reported up front instead of as a traceback from the first write. A probe
        file is created and removed (one round trip each on object stores); memory storage costs nothing.
        """
        if self.is_memory:
            return
        if self.protocol in _READ_ONLY:
            raise StorageError(
                f"storage '{self.url}' is read-only (fsspec's '{self.protocol}' filesystem cannot write): "
                "executions can be read from it, not written; use a path, s3://bucket/prefix or another "
                "writable URL"
            )
        if self.protocol in ("s3", "s3a"):
            _check_endpoint(self.storage_options)
        try:
            self.backend().check_writable(self.root)
        except Exception as exc:  # noqa: BLE001 - whatever the filesystem raises, nothing can be stored here
            raise StorageError(f"cannot write to storage '{self.url}': {self._explain(exc)}") from exc

    def _explain(self, exc: Exception) -> str:
        name = type(exc).__name__
        if self.is_local and isinstance(exc, OSError) and exc.strerror:
            return exc.strerror
        if name in _NO_CREDENTIALS:
            return (
                "no credentials found; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE), or "
                "give 'key' and 'secret' in the storage dict"
            )
        if name in _NO_CONNECTION:
            return f"cannot connect to the server ({exc}); is it running, and is the endpoint right?"
        if isinstance(exc, FileNotFoundError) and self.protocol in _NEED_BUCKET:
            return f"the bucket '{self.root.split('/', 1)[0]}' does not exist (create it first)"
        if isinstance(exc, PermissionError):
            return f"permission denied ({exc.strerror or exc}); check the credentials and the bucket's policy"
        if isinstance(exc, OSError) and exc.strerror:
            return exc.strerror
        return f"{name}: {exc}".replace("\n", " ")

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_fs"] = None
        state["_backend"] = None
        return state

    def __repr__(self) -> str:
        return f"StorageLocation({self.url!r}, code_backup={self.code_backup})"


def printable_url(url: str) -> str:
    """``url`` without the credentials it may carry (``user:password@``), for messages and records."""
    return _USERINFO.sub(r"\1", url)


def open_storage(target: Any = None, *, dev_mode: bool = False) -> StorageLocation:
    """Resolve a storage target (URL, path, dict, None or StorageLocation) into a :class:`StorageLocation`.

    ``dev_mode`` (``MACHINABLE_MODE=DEV``) ignores the target: fresh memory storage and no code backup.
    Raises :class:`~machinable.errors.StorageError` for a malformed URL or unknown protocol.
    """
    if dev_mode:
        return _memory("", code_backup=False, options={})
    if isinstance(target, StorageLocation):
        return target
    code_backup = True
    options: dict[str, Any] = {}
    url: Any = target
    if isinstance(target, Mapping):
        url, code_backup, options = _split_dict(target)
    if url is None:
        return _memory("", code_backup=code_backup, options=options)
    if isinstance(url, os.PathLike):
        return _local(os.fspath(url), code_backup=code_backup, options=options)
    if not isinstance(url, str):
        raise StorageError(f"storage must be a URL, a path or a dict, not {type(url).__name__} {url!r}")
    text = url.strip()
    if not text:
        raise StorageError(f"empty storage URL; use {PROTOCOLS}")
    if "::" in text:
        return _fsspec(text.split("::", 1)[0].split("://", 1)[0].lower(), text, code_backup, options)
    match = _SCHEME.match(text)
    if match is None:
        if _ALMOST_URL.match(text):
            raise StorageError(
                f"malformed storage URL '{text}': expected '<protocol>://...'; use {PROTOCOLS}"
            )
        return _local(text, code_backup=code_backup, options=options)
    protocol = _ALIASES.get(match.group(1).lower(), match.group(1).lower())
    rest = match.group(2)
    if protocol == "file":
        if not rest:
            raise StorageError(f"storage URL '{text}' names no folder (e.g. 'file:///home/me/results')")
        return _local(rest, code_backup=code_backup, options=options)
    if protocol == "memory":
        return _memory(rest, code_backup=code_backup, options=options)
    return _fsspec(protocol, f"{protocol}://{rest}", code_backup, options)


def _split_dict(target: Mapping[str, Any]) -> tuple[Any, bool, dict[str, Any]]:
    options = dict(target)
    urls = {key: options.pop(key) for key in _URL_KEYS if key in options}
    if len(urls) == 2 and urls["url"] != urls["storage"]:
        raise StorageError(
            f"storage dict has both 'url' ({urls['url']!r}) and 'storage' ({urls['storage']!r}); give one"
        )
    url = next(iter(urls.values()), None)
    code_backup = options.pop("code_backup", True)
    if not isinstance(code_backup, bool):
        raise StorageError(f"'code_backup' must be True or False, not {code_backup!r}")
    nested = options.pop("storage_options", None)
    if nested is not None:
        if not isinstance(nested, Mapping):
            raise StorageError(f"'storage_options' must be a dict, not {nested!r}")
        options = {**nested, **options}
    return url, code_backup, options


def _local(path: str, *, code_backup: bool, options: dict[str, Any]) -> StorageLocation:
    root = os.path.abspath(os.path.expanduser(path))
    return StorageLocation("file", root, code_backup=code_backup, storage_options=options)


def _memory(name: str, *, code_backup: bool, options: dict[str, Any]) -> StorageLocation:
    name = name.strip("/")
    if name:
        name = posixpath.normpath(name)
        if name == ".." or name.startswith("../"):
            raise StorageError(f"memory storage name '{name}' leaves the memory filesystem's root")
    else:
        # Unique per call: two executions on default storage never see each other.
        import uuid

        name = f"machinable-{uuid.uuid4().hex[:16]}"
    return StorageLocation("memory", "/" + name, code_backup=code_backup, storage_options=options)


def _fsspec(protocol: str, url: str, code_backup: bool, options: dict[str, Any]) -> StorageLocation:
    import fsspec
    from fsspec.registry import known_implementations, registry

    if protocol not in known_implementations and protocol not in registry:
        raise StorageError(
            f"unknown storage protocol '{protocol}' in '{printable_url(url)}'; use {PROTOCOLS}"
        )
    if protocol in _NEED_BUCKET and not url.split("://", 1)[1].strip("/"):
        raise StorageError(f"storage URL '{url}' names no bucket (e.g. '{protocol}://bucket/prefix')")
    if protocol in ("s3", "s3a"):
        options = _s3_defaults(options)
    try:
        fs, root = fsspec.core.url_to_fs(url, **options)
    except ImportError as exc:
        hint = known_implementations.get(protocol, {}).get("err") or str(exc)
        raise MissingDependencyError(
            f"storage URL '{protocol}://...' needs an extra package: {hint}"
        ) from exc
    except (ValueError, TypeError) as exc:
        raise StorageError(f"cannot open storage '{printable_url(url)}': {exc}") from exc
    return StorageLocation(
        protocol,
        root.rstrip("/") or root,
        code_backup=code_backup,
        storage_options=options,
        target_url=url.rstrip("/"),
        fs=fs,
    )


def _s3_defaults(options: dict[str, Any]) -> dict[str, Any]:
    # Older botocore releases ignore AWS_ENDPOINT_URL; pass it explicitly so S3-compatible servers
    # (MinIO, moto, R2) work from the environment alone, as the AWS tools do.
    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    if not endpoint or "endpoint_url" in options or "endpoint_url" in options.get("client_kwargs", {}):
        return options
    return {**options, "endpoint_url": endpoint}


def _check_endpoint(options: Mapping[str, Any]) -> None:
    """A closed port answers at once; left to botocore, its retries take ten seconds or more."""
    import socket
    from urllib.parse import urlsplit

    endpoint = options.get("endpoint_url") or (options.get("client_kwargs") or {}).get("endpoint_url")
    if not isinstance(endpoint, str):
        return  # AWS itself, found by botocore
    parts = urlsplit(endpoint)
    if not parts.hostname:
        raise StorageError(f"S3 endpoint '{endpoint}' is not a URL (e.g. 'http://localhost:9000')")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        socket.create_connection((parts.hostname, port), timeout=5).close()
    except OSError as exc:
        raise StorageError(
            f"cannot connect to the S3 endpoint {endpoint} ({exc.strerror or exc}); is the server running, "
            "and is AWS_ENDPOINT_URL (or 'endpoint_url') right?"
        ) from exc
