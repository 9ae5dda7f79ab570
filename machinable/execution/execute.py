"""``ml.execute``: plan a task, run its trials on an engine, keep every result in storage.

It builds a :class:`~machinable.execution.session.Session` from the task and runs the same pipeline (and so the
same hooks) as the ``machinable`` command.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from machinable import ids
from machinable.collection.task import Task
from machinable.errors import UsageError
from machinable.execution.executions import Execution, ExecutionFailed, ExecutionInterrupted
from machinable.mode import is_dev

if TYPE_CHECKING:
    import pluggy

    from machinable.config.project import Project

__all__ = ["Execution", "ExecutionFailed", "ExecutionInterrupted", "as_task", "execute", "resolve_project"]


def resolve_project(project: Any) -> Project:
    from machinable.config.project import Project

    if isinstance(project, Project):
        return project
    if project is None or isinstance(project, str | os.PathLike):
        return Project(project)
    raise UsageError(f"project must be a path or an ml.Project, not {type(project).__name__}")


def as_task(task: Any) -> Task:
    if isinstance(task, Task):
        return task
    if isinstance(task, str) or callable(task):
        return Task().component(task)
    raise UsageError(f"execute() takes an ml.Task or a component name, not {type(task).__name__}")


def execute(
    task: Task | str,
    storage: Any = None,
    seed: int | str | None = None,
    engine: Any = None,
    project: Any = None,
    *,
    raise_on_failure: bool = False,
    timeout: float | None = None,
    echo: bool = True,
    plugins: pluggy.PluginManager | None = None,
    overrides: Sequence[str] = (),
    needed: bool = False,
) -> Execution:
    """Run ``task`` and return its :class:`Execution`.

    ``storage``: URL, path or dict (default: memory); ``seed``: int, execution id or None (random);
    ``engine``: ``'local'`` (default), ``'process:N'``, ``'ray'``, a dict or an Engine; ``project``: path or
    ``ml.Project`` (default: found upward from the working directory). A failing trial does not raise unless
    ``raise_on_failure=True``; ``timeout``: the default per-trial timeout in seconds; ``echo=False`` keeps
    trial output off the console (still stored); ``plugins``: the plugin manager (default: the built-ins and
    the entry points); ``overrides``: overrides for every trial (``['lr=0.1,0.01']``, docs/cli.md);
    ``needed=True``: run only the trials ``storage`` does not hold as passed with the same code, the others
    are ``cached`` (docs/reproducibility.md). ``storage``, ``engine``, ``timeout`` and ``seed`` default to
    ``MACHINABLE_STORAGE`` / ``MACHINABLE_ENGINE`` and the project's ``settings:`` in ``machinable.yaml``.
    """
    from machinable.collection.guard import refuse_while_collecting

    refuse_while_collecting()  # importing a module for collection must never start an execution
    from machinable.collection.stage import TaskSource
    from machinable.config.overrides import parse_overrides
    from machinable.config.settings import default
    from machinable.execution.destinations import NewExecution
    from machinable.execution.options import Config, run_options
    from machinable.execution.session import Session
    from machinable.plugins import default_plugin_manager

    plan = _checked(task, overrides, timeout)
    parsed = parse_overrides(overrides)
    proj = resolve_project(project)
    pm = plugins or default_plugin_manager()
    options = run_options(
        echo=echo,
        timeout=default(proj.settings, "timeout", timeout),
        overrides=list(overrides),
        needed=needed,
        seed=default(proj.settings, "seed", seed),
    )
    session = Session(Config(options, pm, proj.root), TaskSource(plan, parsed), NewExecution(name=plan.name))
    _configure(session, proj, seed, engine, storage)
    session.run_empty = True
    session.main()
    execution = session.execution
    if execution is None:  # Ctrl-C while the task was planned
        raise KeyboardInterrupt
    if execution.interrupted:
        raise ExecutionInterrupted(execution)
    if raise_on_failure and execution.failed:
        raise ExecutionFailed(execution)
    return execution


def _checked(task: Task | str, overrides: Sequence[str], timeout: float | None) -> Task:
    """The task to run, after the arguments of ``ml.execute`` that a user can get wrong are checked."""
    from machinable.components.component import check_timeout

    plan = as_task(task)
    if not plan.entries:
        raise UsageError("the task has no components: add one with .component(name, version)")
    if isinstance(overrides, str):
        raise UsageError(f"overrides is a list of strings such as ['lr=0.1'], not the string {overrides!r}")
    check_timeout(timeout)
    return plan


def _configure(session: Any, project: Project, seed: Any, engine: Any, storage: Any) -> None:
    """Seed, engine and storage of ``ml.execute``: the arguments, else the environment and the project's
    ``settings:``; ``MACHINABLE_MODE=DEV`` keeps storage in memory."""
    from machinable.config.settings import default
    from machinable.execution.engines.base import make_engine
    from machinable.storage import open_storage

    settings = project.settings
    execution_id = ids.execution_id(default(settings, "seed", seed))
    eng = make_engine(default(settings, "engine", engine), session.pm)
    dev = is_dev()
    location = open_storage(None if dev else default(settings, "storage", storage), dev_mode=dev)
    location.check_writable()  # a storage that cannot be written fails here, before any trial runs
    session.configure(project, execution_id, eng, location)
