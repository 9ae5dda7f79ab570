"""The ``.machinable_cache/`` folder: small JSON values kept between runs (``--lf``, ``--ff``).

Shaped like pytest's cacheprovider: values live under ``<root>/.machinable_cache/v/<key>`` as JSON, the folder
explains itself with a README.md and hides itself from git with a ``.gitignore`` of ``*``. The cache is a
convenience: a file that cannot be read or written costs a warning, never the run.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any, final

__all__ = ["Cache", "CacheWarning", "CACHE_DIR"]

CACHE_DIR = ".machinable_cache"

README = """\
# machinable cache directory

This folder holds values that machinable keeps between runs, such as the trials that failed last time
(`--lf`, `--ff`). Do not commit it; delete it, or run machinable with `--cache-clear`, to start afresh.
"""

# The CACHEDIR.TAG standard (https://bford.info/cachedir/) lets backup tools skip the folder.
CACHEDIR_TAG = b"""\
Signature: 8a477f597d28d172789f06886806bc55
# This file is a cache directory tag created by machinable.
# For information about cache directory tags, see: https://bford.info/cachedir/
"""


class CacheWarning(UserWarning):
    """The cache could not be read or written; the run goes on without it."""


@final
class Cache:
    """JSON values under ``root / '.machinable_cache'``, addressed by slash-separated keys."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.folder = self.root / CACHE_DIR

    def _path(self, key: str) -> Path:
        # Keys come from plugins, not users; refusing '..' and absolute keys keeps every value in the folder.
        parts = key.split("/")
        if "\\" in key or any(part in ("", ".", "..") for part in parts):
            raise ValueError(f"invalid cache key {key!r}: use a relative path such as 'cache/lastfailed'")
        return self.folder.joinpath("v", *parts)

    def get(self, key: str, default: Any = None) -> Any:
        """The value stored under ``key``, or ``default`` when there is none or it cannot be read."""
        path = self._path(key)
        try:
            with path.open(encoding="utf-8") as file:
                return json.load(file)
        except FileNotFoundError:
            return default
        except (OSError, ValueError) as error:  # ValueError covers bad JSON and bad UTF-8
            warnings.warn(
                f"cache value {key!r} ignored: cannot read {path}: {error}", CacheWarning, stacklevel=2
            )
            return default

    def set(self, key: str, value: Any) -> None:
        """Store ``value`` (anything JSON can hold) under ``key``, replacing the file in one step."""
        path = self._path(key)
        # Serialise first: a value JSON cannot hold is a bug in the caller and must not leave a partial file.
        data = json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False)
        try:
            self._ensure_folder()
            path.parent.mkdir(parents=True, exist_ok=True)
            # Write beside the target so os.replace is a rename within one filesystem; readers then see
            # the old value or the new one, never half of it.
            handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
            try:
                with os.fdopen(handle, "w", encoding="utf-8") as file:
                    file.write(data)
                os.replace(temporary, path)
            except BaseException:
                Path(temporary).unlink(missing_ok=True)
                raise
        except OSError as error:
            warnings.warn(
                f"cache value {key!r} not saved: cannot write {path}: {error}", CacheWarning, stacklevel=2
            )

    def clear(self) -> None:
        """Remove the whole cache folder."""
        try:
            shutil.rmtree(self.folder)
        except FileNotFoundError:
            pass
        except OSError as error:
            warnings.warn(f"cannot clear the cache {self.folder}: {error}", CacheWarning, stacklevel=2)

    def _ensure_folder(self) -> None:
        if self.folder.is_dir():
            return
        # Build the folder under a temporary name and rename it into place, so that a concurrent run never
        # sees a cache folder without its .gitignore (and git never sees the folder's contents).
        self.root.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f"{CACHE_DIR}-", dir=self.root))
        try:
            (staging / "README.md").write_text(README, encoding="utf-8")
            (staging / ".gitignore").write_text(
                "# Created by machinable automatically.\n*\n", encoding="utf-8"
            )
            (staging / "CACHEDIR.TAG").write_bytes(CACHEDIR_TAG)
            try:
                staging.rename(self.folder)
            except OSError:
                # Another process created the folder first; theirs is as good as ours.
                if not self.folder.is_dir():
                    raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
