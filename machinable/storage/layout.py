"""The names of the storage layout (DESIGN.md §5), shared by its writer and its readers."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from machinable.errors import StorageError

EXECUTION_JSON = "execution.json"
CODE_ZIP = "code.zip"
PROVENANCE_JSON = "provenance.json"  # what the execution ran with (execution/provenance.py)
CODE_DIFF = "code.diff"  # its uncommitted changes, when the git tree was dirty
TRIAL_JSON = "trial.json"
STATUS_JSON = "status.json"


def start_status(info: Mapping[str, Any]) -> dict[str, Any]:
    """The first status of a trial, kept in its trial.json (``TrialWriter.begin``)."""
    start = info.get("start")
    return dict(start) if isinstance(start, dict) else {}


LOG_TXT = "log.txt"
OUTPUT_LOG = "output.log"


def check_segment(name: Any, what: str) -> str:
    """A single folder name: no separators, not '.' or '..' (ids and uids become folder names)."""
    if (
        not isinstance(name, str)
        or not name
        or name in (".", "..")
        or "/" in name
        or "\\" in name
        or "\x00" in name
    ):
        raise StorageError(f"{what} must be a plain folder name, not {name!r}")
    return name
