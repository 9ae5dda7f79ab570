"""MACHINABLE_MODE: unset, empty or ``default`` (normal) and ``dev`` (no code backup, memory storage)."""

from __future__ import annotations

import os

from machinable.errors import UsageError

MODES = ("default", "dev")


def current_mode() -> str:
    value = os.environ.get("MACHINABLE_MODE", "").strip().lower() or "default"
    if value not in MODES:
        raise UsageError(
            f"MACHINABLE_MODE={os.environ['MACHINABLE_MODE']!r} is not a mode; use DEV, DEFAULT or leave it unset"
        )
    return value


def is_dev() -> bool:
    return current_mode() == "dev"
