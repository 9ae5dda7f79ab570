"""machinable: components, versions and trials, run and kept like a test suite.

The public API is imported lazily so that ``import machinable`` stays fast (DESIGN.md §7).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# ``component`` is both a submodule and a decorator: importing the decorator here, eagerly, keeps the import
# system from later rebinding ``machinable.component`` to the submodule.
from machinable.component import Component, component  # noqa: E402
from machinable.parametrize import parametrize  # noqa: E402  (same reason: a submodule of that name)
from machinable.reproduce import reproduce  # noqa: E402  (same reason; the module imports little at its top)

_API = {
    "Task": "machinable.task",
    "execute": "machinable.execution",
    "Execution": "machinable.execution",
    "Project": "machinable.project",
    "Storage": "machinable.storage",
    "MachinableError": "machinable.errors",
    "fixture": "machinable.fixtures",
    "hookimpl": "machinable.hookspec",
}

if TYPE_CHECKING:
    from machinable.errors import MachinableError
    from machinable.execution import Execution, execute
    from machinable.fixtures import fixture
    from machinable.hookspec import hookimpl
    from machinable.project import Project
    from machinable.storage import Storage
    from machinable.task import Task

__all__ = [
    "Component",
    "Execution",
    "MachinableError",
    "Project",
    "Storage",
    "Task",
    "component",
    "execute",
    "fixture",
    "hookimpl",
    "parametrize",
    "reproduce",
]


def __getattr__(name: str) -> Any:
    module = _API.get(name)
    if module is None:
        raise AttributeError(f"module 'machinable' has no attribute '{name}'")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(list(globals()) + list(_API))
