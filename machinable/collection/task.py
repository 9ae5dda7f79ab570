"""Tasks: the execution plan as the user writes it. A task describes; ``ml.execute`` runs."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from machinable.components.component import RESERVED_FLAGS, check_timeout
from machinable.errors import UsageError


@dataclass(frozen=True)
class TaskEntry:
    """One ``.component(...)`` call: what to run, with which version, how often."""

    component: Any  # a registered name, or a component class / function
    version: Any = None
    flags: Mapping[str, Any] = field(default_factory=dict)
    resources: Mapping[str, Any] | None = None
    timeout: float | None = None
    repeat_total: int = 1


# Far more trials than an experiment needs, far fewer than would exhaust memory while they are planned.
MAX_REPEAT = 1_000_000


class Task:
    """``ml.Task(name=None).component(name, version=None).repeat(n)`` -- chainable.

    ``version`` is a dict, ``'~name'``, ``'_mixin_'``, a YAML string, a tuple (merged in order) or a list (one trial
    per element). The original guide's ``component((name, version))`` form works too.
    """

    def __init__(self, name: str | None = None) -> None:
        if name is not None and not isinstance(name, str):
            raise UsageError(f"Task name must be a string, not {type(name).__name__}")
        self.name = name
        self.entries: list[TaskEntry] = []

    def component(
        self,
        name: Any,
        version: Any = None,
        flags: Mapping[str, Any] | None = None,
        resources: Mapping[str, Any] | None = None,
        timeout: float | None = None,
    ) -> Task:
        """Add a component to the plan; returns the task so calls chain."""
        if isinstance(name, tuple):
            if version is not None or not 1 <= len(name) <= 2:
                raise UsageError("component((name, version)) takes a tuple of a name and a version")
            name, version = (name + (None,))[:2]
        if not (isinstance(name, str) and name) and not callable(name):
            raise UsageError(f"component() takes a component name, class or function, not {name!r}")
        _check_flags(flags)
        check_timeout(timeout)
        self.entries.append(TaskEntry(name, version, dict(flags or {}), resources, timeout))
        return self

    def repeat(self, n: int) -> Task:
        """Repeat the whole task as planned so far ``n`` times, each repeat an independent trial."""
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise UsageError(f"repeat() takes a positive integer, not {n!r}")
        total = max((e.repeat_total for e in self.entries), default=1) * n
        if total > MAX_REPEAT:
            raise UsageError(
                f"repeat() would run each trial {total:,} times; at most {MAX_REPEAT:,} are allowed"
            )
        self.entries = [replace(e, repeat_total=e.repeat_total * n) for e in self.entries]
        return self

    def __repr__(self) -> str:
        parts = ", ".join(
            f"{e.component if isinstance(e.component, str) else getattr(e.component, '__name__', e.component)}"
            f"{'' if e.version is None else f'({e.version!r})'}{'' if e.repeat_total == 1 else f' x{e.repeat_total}'}"
            for e in self.entries
        )
        return f"Task({self.name!r}: {parts})" if self.name else f"Task({parts})"


def _check_flags(flags: Mapping[str, Any] | None) -> None:
    if flags is None:
        return
    if not isinstance(flags, Mapping):
        raise UsageError(f"flags must be a dict, not {type(flags).__name__}")
    for key in flags:
        if not isinstance(key, str):
            raise UsageError(f"flag names are strings, not {type(key).__name__} {key!r}")
        if key in RESERVED_FLAGS:
            # It would be overwritten without a word: machinable sets these for every trial.
            raise UsageError(
                f"flag '{key}' is set by machinable for every trial; give your flag another name"
            )
