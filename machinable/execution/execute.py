"""``ml.execute``: plan a task, run its trials on an engine, keep every result in storage.

It builds a :class:`~machinable.execution.session.Session` from the task and runs the same pipeline (and so the
same hooks) as the ``machinable`` command.
"""

from __future__ import annotations

import os
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
) -> Execution:
    """Run ``task`` and return its :class:`Execution`.

    ``storage``: URL, path or dict (default: memory); ``seed``: int, execution id or None (random);
    ``engine``: ``'local'`` (default), ``'process:N'``, ``'ray'``, a dict or an Engine; ``project``: path or
    ``ml.Project`` (default: found upward from the working directory). A failing trial does not raise unless
    ``raise_on_failure=True``; ``timeout`` is the default per-trial timeout in seconds; ``echo=False`` keeps
    trial output off the console (it is still stored); ``plugins``: the plugin manager (default: the built-ins
    and the installed entry points).
    """
    from machinable.collection.guard import refuse_while_collecting

    refuse_while_collecting()  # importing a module for collection must never start an execution
    from machinable.collection.stage import TaskSource
    from machinable.execution.destinations import NewExecution
    from machinable.execution.engines.base import make_engine
    from machinable.execution.options import Config, run_options
    from machinable.execution.session import Session
    from machinable.plugins import default_plugin_manager
    from machinable.storage import open_storage

    plan = as_task(task)
    if not plan.entries:
        raise UsageError("the task has no components: add one with .component(name, version)")
    proj = resolve_project(project)
    execution_id = ids.execution_id(seed)
    pm = plugins or default_plugin_manager()
    eng = make_engine(engine, pm)
    dev = is_dev()
    location = open_storage(None if dev else storage, dev_mode=dev)
    config = Config(run_options(echo=echo, timeout=timeout), pm, proj.root)
    session = Session(config, TaskSource(plan), NewExecution(name=plan.name))
    session.configure(proj, execution_id, eng, location)
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
