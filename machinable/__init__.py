"""machinable: components, versions and trials, run and kept like a test suite.

The public API is imported lazily so that ``import machinable`` stays fast (DESIGN.md §7): each name below is
imported from its stage's package on first use. docs/architecture.md maps the packages.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_API = {
    "Component": "machinable.components.component",
    "component": "machinable.components.component",
    "parametrize": "machinable.components.parametrize",
    "fixture": "machinable.components.fixtures",
    "Task": "machinable.collection.task",
    "Project": "machinable.config.project",
    "execute": "machinable.execution.execute",
    "Execution": "machinable.execution.executions",
    "reproduce": "machinable.replay.reproduce",
    "resume": "machinable.replay.resume",
    "report": "machinable.reporting.report",
    "Storage": "machinable.storage",
    "MachinableError": "machinable.errors",
    "hookimpl": "machinable.hookspec",
}

if TYPE_CHECKING:
    from machinable.collection.task import Task
    from machinable.components.component import Component, component
    from machinable.components.fixtures import fixture
    from machinable.components.parametrize import parametrize
    from machinable.config.project import Project
    from machinable.errors import MachinableError
    from machinable.execution.execute import execute
    from machinable.execution.executions import Execution
    from machinable.hookspec import hookimpl
    from machinable.replay.reproduce import reproduce
    from machinable.replay.resume import resume
    from machinable.reporting.report import report
    from machinable.storage import Storage

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
    "report",
    "reproduce",
    "resume",
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
