"""``settings:`` in ``machinable.yaml``: the project's defaults for ``storage``, ``engine``, ``timeout`` and ``seed``,
``code_identity`` (how a trial's code fingerprint is taken) and ``deterministic`` (torch's deterministic mode in
every trial, unless a component says otherwise): docs/reproducibility.md.

They apply to the command and to ``ml.execute`` when the argument is not given; ``MACHINABLE_STORAGE`` and
``MACHINABLE_ENGINE`` override them, and explicit arguments win over both. A relative storage path is relative
to the project root. ``MACHINABLE_MODE=DEV`` still forces memory storage.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from machinable.errors import ConfigError, did_you_mean

SECTION = "settings"
KNOWN = ("storage", "engine", "timeout", "seed", "code_identity", "deterministic")
CODE_IDENTITIES = ("imported", "executed")
ENVIRONMENT = {"storage": "MACHINABLE_STORAGE", "engine": "MACHINABLE_ENGINE"}


def parse_settings(loaded: Any, data: Any, root: Path) -> dict[str, Any]:
    """The ``settings:`` mapping of a loaded ``machinable.yaml``, checked; {} when there is none."""
    settings = data.get(SECTION) if isinstance(data, Mapping) else None
    if settings is None:
        return {}
    if not isinstance(settings, Mapping):
        raise ConfigError(f"{loaded.where((SECTION,))}: 'settings' must be a mapping of {', '.join(KNOWN)}")
    checked: dict[str, Any] = {}
    for key, value in settings.items():
        where = loaded.where((SECTION, key))
        if key not in KNOWN:
            raise ConfigError(
                f"{where}: unknown setting '{key}'{did_you_mean(str(key), KNOWN)}; settings: {', '.join(KNOWN)}"
            )
        checked[key] = _check(key, value, where, root)
    return checked


def _check(key: str, value: Any, where: str, root: Path) -> Any:
    if key == "timeout" and value is not None:
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < math.inf:
            raise ConfigError(
                f"{where}: settings.timeout must be a positive number of seconds, not {value!r}"
            )
    elif (
        key == "seed" and value is not None and (isinstance(value, bool) or not isinstance(value, int | str))
    ):
        raise ConfigError(f"{where}: settings.seed must be an integer or an execution id, not {value!r}")
    elif key == "code_identity" and value not in CODE_IDENTITIES:
        raise ConfigError(
            f"{where}: settings.code_identity is 'imported' (the files a component imports, the default) or "
            f"'executed' (the functions a trial ran, measured with coverage), not {value!r}"
        )
    elif key == "deterministic" and not deterministic_mode(value):
        raise ConfigError(
            f"{where}: settings.deterministic is true (torch's deterministic algorithms and cuDNN flags), 'warn' "
            f"(the same, but an operation without a deterministic implementation warns instead of failing) or "
            f"false, not {value!r}"
        )
    elif key in ("storage", "engine") and value is not None and not isinstance(value, str | Mapping):
        raise ConfigError(f"{where}: settings.{key} must be a URL or name, or a mapping, not {value!r}")
    if key == "storage" and isinstance(value, str) and _relative_path(value):
        return str(root / value)  # relative to the project, wherever the command runs
    return value


def deterministic_mode(value: Any) -> bool:
    """``value`` is a deterministic mode: true, false or 'warn' (None: not given)."""
    return value is None or isinstance(value, bool) or value == "warn"


def _relative_path(value: str) -> bool:
    return "://" not in value and not value.startswith(("~", "/"))


def default(settings: Mapping[str, Any], key: str, given: Any) -> Any:
    """What a run uses for ``key``: the given value, else the environment variable, else the project setting."""
    if given is not None:
        return given
    variable = ENVIRONMENT.get(key)
    if variable and os.environ.get(variable):
        return os.environ[variable]
    return settings.get(key)
