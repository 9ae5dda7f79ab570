"""``ml.execute``: plan a task, run its trials on an engine, keep every result in storage."""

from __future__ import annotations

import getpass
import os
import platform
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from machinable import ids
from machinable.errors import MachinableError, UsageError
from machinable.mode import is_dev
from machinable.spec import TrialResult, TrialSpec
from machinable.task import Task

if TYPE_CHECKING:
    import pluggy

    from machinable.engines.base import Engine
    from machinable.fixtures import FixtureDef
    from machinable.project import Project
    from machinable.storage import ExecutionWriter, StorageLocation


class ExecutionFailed(MachinableError):
    """Raised by ``execute(..., raise_on_failure=True)`` when a trial did not pass; ``.execution`` has them all."""

    def __init__(self, execution: Execution) -> None:
        bad = [t for t in execution.trials if not t.passed]
        super().__init__(
            f"execution {execution.id}: {len(bad)} of {len(execution.trials)} trials did not pass: "
            + ", ".join(f"{t.node_id} ({t.status})" for t in bad[:5])
            + (" ..." if len(bad) > 5 else "")
        )
        self.execution = execution


class ExecutionInterrupted(KeyboardInterrupt):
    """Ctrl-C during ``execute``: finished results are stored; ``.execution`` holds them."""

    def __init__(self, execution: Execution) -> None:
        super().__init__(f"execution {execution.id} interrupted after {len(execution.trials)} trials")
        self.execution = execution


@dataclass
class Execution:
    """One call of ``ml.execute``: its id (which encodes its seed), its trials in plan order, its storage."""

    id: str
    seed: int
    name: str | None
    storage: str
    engine: str
    trials: list[TrialResult] = field(default_factory=list)
    started: float = 0.0
    finished: float | None = None
    interrupted: bool = False
    folder: str = ""  # the execution's folder in storage: its id, or <id>-2 ... when the id was stored before
    location: Any = field(default=None, repr=False)

    @property
    def passed(self) -> list[TrialResult]:
        return [t for t in self.trials if t.status == "passed"]

    @property
    def failed(self) -> list[TrialResult]:
        return [t for t in self.trials if t.status != "passed"]

    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for t in self.trials:
            counts[t.status] = counts.get(t.status, 0) + 1
        return counts

    def summary(self) -> str:
        """``3 passed, 1 failed in 0.42 s``."""
        counts = self.counts()
        text = ", ".join(f"{n} {s}" for s, n in counts.items()) or "no trials"
        return f"{text} in {((self.finished or time.time()) - self.started):.2f} s"

    def __repr__(self) -> str:
        return f"<Execution {self.id} seed={self.seed} {self.summary()} storage={self.storage}>"


def resolve_project(project: Any) -> Project:
    from machinable.project import Project

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


def _execution_info(execution: Execution, specs: list[TrialSpec], project: Project) -> dict[str, Any]:
    return {
        "id": execution.id,
        "seed": execution.seed,
        "name": execution.name,
        "started": execution.started,
        "engine": execution.engine,
        "trial_count": len(specs),
        "trials": [s.uid for s in specs],
        # The whole plan, so that trials that never started can be resumed without re-collecting the project.
        "plan": [s.trial_info(execution.id) for s in specs],
        "project": str(project.root),
        "host": platform.node(),
        "user": _user(),
        "python": sys.version.split()[0],
        "argv": sys.argv,
        "code_version": _code_version(project),
    }


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no user name in some containers
        return ""


def _code_version(project: Project) -> dict[str, Any]:
    from machinable.storage.backup import git_revision

    return git_revision(project.root)


def run_specs(
    specs: list[TrialSpec],
    execution: Execution,
    writer: ExecutionWriter,
    engine: Engine,
    pm: pluggy.PluginManager,
    fixtures: Iterable[FixtureDef] = (),
    echo: bool = True,
    timeout: float | None = None,
    stop: Callable[[Execution], bool] | None = None,
) -> Execution:
    """Run ``specs`` on ``engine`` into ``execution``; results come back in plan order.

    ``stop(execution)`` is asked after every result (``-x``/``--maxfail``); once it says yes no further trial
    starts. Ctrl-C stops the engine, keeps every finished result and raises :class:`ExecutionInterrupted`.
    """
    from machinable.engines.base import RunContext

    context = RunContext(execution.id, execution.location, writer, list(fixtures), echo=echo, timeout=timeout)
    order = {s.uid: i for i, s in enumerate(specs)}
    # Results are appended as they end and put in plan order once, at the end: sorting after every trial
    # would make long executions quadratic.
    stream: Iterator[TrialResult] = engine.run(specs, context)

    def report(result: TrialResult) -> None:
        _keep(result, execution, writer)
        execution.trials.append(result)
        pm.hook.machinable_trial_result(execution=execution, result=result)

    try:
        for result in stream:
            report(result)
            if stop is not None and stop(execution):
                # The engine ends the trials still running and hands their results over, so the report and
                # the Execution show them as interrupted instead of leaving them only in storage.
                for late in _stopped(stream):
                    report(late)
                break
    except KeyboardInterrupt as exc:
        execution.interrupted = True
        partial = getattr(exc, "result", None)
        if partial is not None:
            report(partial)
    finally:
        close = getattr(stream, "close", None)
        if close is not None:
            close()
        execution.trials.sort(key=lambda t: order.get(t.uid, -1))
        execution.finished = time.time()
        writer.write_execution({"finished": execution.finished, "interrupted": execution.interrupted})
        pm.hook.machinable_execution_finish(execution=execution)
    return execution


def _stopped(stream: Iterator[TrialResult]) -> Iterator[TrialResult]:
    """The results an engine hands over when told to stop early (see ``StopExecution``)."""
    from machinable.engines.base import StopExecution

    throw = getattr(stream, "throw", None)
    if throw is None:
        return
    try:
        first = throw(StopExecution())
    except (StopExecution, StopIteration):
        return
    yield first
    yield from stream


def _keep(result: TrialResult, execution: Execution, writer: ExecutionWriter) -> None:
    """Bring a worker's memory-storage files into this process and attach the result to storage."""
    if result.files is not None:
        writer.import_trial(result.uid, result.files)
        result.files = None
    result._stored = _StoredHandle(execution.location, execution.folder, result.uid)


class _StoredHandle:
    """Reads a result's stored objects lazily, on first access only."""

    def __init__(self, location: StorageLocation, folder: str, uid: str) -> None:
        self._args = (location, folder, uid)

    @property
    def store(self) -> Any:
        from machinable.storage import Storage

        location, folder, uid = self._args
        return Storage(location).get(folder).trial(uid).store


def start_execution(
    specs: list[TrialSpec],
    project: Project,
    location: StorageLocation,
    execution_id: str,
    engine: Engine,
    pm: pluggy.PluginManager,
    name: str | None = None,
) -> tuple[Execution, ExecutionWriter]:
    """Create the execution record and code backup in storage, and announce the execution to plugins."""
    from machinable.storage import ExecutionWriter

    execution = Execution(
        id=execution_id,
        seed=ids.decode(execution_id),
        name=name,
        storage=location.url,
        engine=engine.describe(),
        started=time.time(),
        location=location,
    )
    writer = ExecutionWriter.claim(location, execution_id)
    execution.folder = writer.folder
    writer.write_execution(_execution_info(execution, specs, project))
    if location.code_backup:
        writer.backup_code(project.root)
    pm.hook.machinable_execution_start(execution=execution, specs=specs)
    return execution, writer


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
    trial output off the console (it is still stored).
    """
    from machinable.collect import refuse_while_collecting

    refuse_while_collecting()  # importing a module for collection must never start an execution
    from machinable.engines.base import make_engine
    from machinable.fixtures import check_definitions, project_fixtures
    from machinable.plan import plan_task
    from machinable.plugins import default_plugin_manager
    from machinable.storage import open_storage

    dev = is_dev()
    plan = as_task(task)
    if not plan.entries:
        raise UsageError("the task has no components: add one with .component(name, version)")
    proj = resolve_project(project)
    execution_id = ids.execution_id(seed)
    pm = plugins or default_plugin_manager()
    eng = make_engine(engine, pm)
    fixture_defs = project_fixtures(proj.root)
    specs = plan_task(plan, proj, ids.decode(execution_id), fixtures=fixture_defs)
    # A fixture asking for a missing one: an error before anything runs.
    check_definitions(fixture_defs.values())
    location = open_storage(None if dev else storage, dev_mode=dev)
    execution, writer = start_execution(specs, proj, location, execution_id, eng, pm, name=plan.name)
    run_specs(specs, execution, writer, eng, pm, fixtures=fixture_defs.values(), echo=echo, timeout=timeout)
    if execution.interrupted:
        raise ExecutionInterrupted(execution)
    if raise_on_failure and execution.failed:
        raise ExecutionFailed(execution)
    return execution
