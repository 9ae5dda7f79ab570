"""What a worker (a process of the ``process`` engine, a Ray worker) does with trial specs, and what the controller
writes for a trial whose worker never answered.

A worker builds one :class:`~machinable.execution.protocol.TrialContext` from a picklable :class:`WorkerContext` (once per
process and execution) and runs each spec through :func:`machinable.execution.protocol.run_trial`, the same protocol as the
``local`` engine. With memory storage the worker's memory is not the controller's: the trial's files travel back
with the result (``ship_files``) and are removed from the worker.
"""

from __future__ import annotations

import atexit
import json
import signal
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from machinable.errors import MachinableError, signal_name
from machinable.trials import TrialResult, TrialSpec

if TYPE_CHECKING:
    from multiprocessing.connection import Connection

    from machinable.components.fixtures import FixtureDef
    from machinable.execution.engines.base import RunContext
    from machinable.execution.protocol import Progress, TrialContext
    from machinable.plugins import PluginRef
    from machinable.storage import TrialWriter

TIMEOUT_TEXT = "machinable.errors.TrialTimeout: trial timed out after {seconds:g} s"


@dataclass(frozen=True)
class WorkerContext:
    """The picklable part of a :class:`~machinable.execution.engines.base.RunContext`: enough to reopen the storage."""

    execution_id: str
    folder: str  # the execution's folder in storage (``<id>-2`` ... for a re-used id)
    storage: Any  # StorageLocation.to_target()
    memory: bool
    fixtures: tuple[FixtureDef, ...] = ()
    echo: bool = True
    # the session's plugins that workers load by name (machinable.plugins.plugin_refs)
    plugins: tuple[PluginRef, ...] = ()

    @classmethod
    def of(cls, context: RunContext) -> WorkerContext:
        from machinable.plugins import plugin_refs

        return cls(
            execution_id=context.execution_id,
            folder=context.writer.folder,
            storage=context.location.to_target(),
            memory=context.location.is_memory,
            fixtures=tuple(context.fixtures),
            echo=context.echo,
            plugins=plugin_refs(context.pm) if context.pm is not None else (),
        )

    def environment(self) -> TrialContext:
        from machinable.components.fixtures import FixtureManager
        from machinable.execution.protocol import TrialContext
        from machinable.storage import ExecutionWriter, open_storage

        writer = ExecutionWriter(open_storage(self.storage), self.execution_id, self.folder)
        return TrialContext(
            self.execution_id, writer, FixtureManager(self.fixtures), echo=self.echo, ship_files=self.memory
        )


_current: tuple[WorkerContext, TrialContext] | None = None
_roots: set[str] = set()  # project roots whose modules this process imported


def environment(context: WorkerContext) -> TrialContext:
    """This process's environment for ``context``, built once per process and execution.

    A long-lived worker (Ray reuses its workers across executions) that gets a new execution tears the previous
    one's session fixtures down and forgets the project modules it imported, so edited code is imported afresh.
    """
    global _current
    if _current is not None and _current[0] == context:
        return _current[1]
    if _current is not None:
        from machinable.plugins import forget_worker_plugins

        close_environment()
        _forget_project_modules()
        forget_worker_plugins()
    else:
        atexit.register(close_environment)
    env = context.environment()
    _current = (context, env)
    return env


def _forget_project_modules() -> None:
    from machinable.config.importing import forget_modules

    for root in _roots:
        forget_modules(root)
    _roots.clear()


def close_environment() -> None:
    """Tear down the session fixtures of this process's environment (at worker exit)."""
    global _current
    if _current is None:
        return
    env, _current = _current[1], None
    try:
        env.fixtures.close()
    except Exception as exc:  # a failing teardown must not take the worker (or other trials) down
        print(f"machinable: session fixture teardown failed: {type(exc).__name__}: {exc}", file=sys.stderr)


def run(spec: TrialSpec, context: WorkerContext, progress: Progress | None = None) -> TrialResult:
    """Run one trial in this worker process through the session's plugins' ``machinable_trial_protocol`` and
    return its result (with its files for memory storage); ``progress(uid, row)`` sends its record rows to
    the controller (throttled by the protocol)."""
    from machinable.plugins import worker_plugin_manager

    env = environment(context)
    env.progress = progress
    if spec.project_root:
        _roots.add(spec.project_root)
    pm = worker_plugin_manager(context.plugins)
    return pm.hook.machinable_trial_protocol(spec=spec, context=env)


# What the process engine's controller interrupts a worker's trial with (Ctrl-C, -x): KeyboardInterrupt inside it,
# ``interrupted``. Not SIGTERM: that is what a scheduler (or ``kill PID``) sends to preempt it, ``preempted``.
INTERRUPT_SIGNAL: int = getattr(signal, "SIGUSR1", signal.SIGTERM)


@contextmanager
def held_signals() -> Iterator[None]:
    """The controller's interrupt and the warning signals wait until a message to the controller is sent whole:
    a half-sent one would garble the messages that follow it."""
    from machinable.execution.capture import WARNING_SIGNALS, signals_held

    with signals_held({INTERRUPT_SIGNAL, *WARNING_SIGNALS}):
        yield


def progress_sender(conn: Connection) -> Progress:
    """``progress(uid, row)`` of a worker process: sends ``("progress", uid, row)`` to the controller, with the
    signals held (:func:`held_signals`). A controller that is gone is noticed when the result is sent."""
    lock = threading.Lock()

    def send(uid: str, row: dict[str, Any]) -> None:
        with lock, held_signals():
            try:
                conn.send(("progress", uid, row))
            except (OSError, ValueError):
                pass

    return send


def timeout_error(seconds: float) -> str:
    return (
        TIMEOUT_TEXT.format(seconds=seconds)
        + " (the trial did not stop at its deadline, so its worker process was killed)"
    )


def death_cause(exitcode: int | None) -> str:
    """'worker process died with signal 11 (SIGSEGV)' / 'worker process died with exit code 3'."""
    if exitcode is None:
        return "worker process died"
    if exitcode < 0:
        return f"worker process died with signal {-exitcode} ({signal_name(-exitcode)})"
    return f"worker process died with exit code {exitcode}"


def lost_result(
    spec: TrialSpec, context: RunContext, status: str, error: str, started: float | None
) -> TrialResult:
    """The result of a trial whose worker did not return one (it crashed, was killed at its timeout or
    interrupted); the controller writes its trial.json and status.json, which the worker may never have written
    (memory storage lives in the worker's memory) or left as 'running'."""
    from machinable.execution.protocol import HOST, trial_flags

    finished = time.time()
    tw = context.writer.trial(spec.uid)
    tw.write_trial(spec.trial_info(context.execution_id))
    fields: dict[str, Any] = {"started": started, "host": HOST, **_written_status(tw)}
    fields.update(outcome=status, finished=finished, error=error)
    started = fields["started"]
    tw.write_status(**fields)
    tw.close()
    output, log = tw.captured()  # what the worker wrote before it was lost (on storage the controller sees)
    return TrialResult.of(
        spec,
        status,
        error,
        started=started,
        finished=finished,
        flags=trial_flags(spec, context.execution_id),
        output=output,
        log=log,
    )


def _written_status(tw: TrialWriter) -> dict[str, Any]:
    """What the worker wrote of its status before it was lost (started, pid, host, heartbeat): status.json, or
    the start status in trial.json before the first heartbeat."""
    from machinable.storage.layout import STATUS_JSON, TRIAL_JSON, start_status

    backend = tw.execution.location.backend()
    for name in (STATUS_JSON, TRIAL_JSON):
        try:
            data = json.loads(backend.read_bytes(backend.join(tw.path, name)))
        except Exception:  # never written, unreadable or half-written: the controller's fields are enough
            continue
        if isinstance(data, dict):
            return data if name == STATUS_JSON else start_status(data)
    return {}


def keep_unreported(result: TrialResult, context: RunContext) -> None:
    """A result that arrives while the engine shuts down (Ctrl-C): it cannot be reported, but its files are kept."""
    if result.files is not None:
        context.writer.import_trial(result.uid, result.files)
        result.files = None


def gather_fixtures(root: Path, specs: Iterable[TrialSpec]) -> list[FixtureDef]:
    """The fixtures the specs may ask for: the project's ``machinable_conf.py`` and their components' modules.

    Importing each component here (as collection would have) also finds them in the modules' namespaces; an
    import error is left for the trial itself to report.
    """
    from machinable.components.fixtures import discover_fixtures
    from machinable.execution.protocol import load_target

    found: dict[str, FixtureDef] = {}
    try:
        discover_fixtures(found, root=root)
    except MachinableError:
        pass  # a broken machinable_conf.py fails the trials that need its fixtures, with its own error
    modules: set[str] = set()
    for spec in specs:
        if spec.module in modules:
            continue
        modules.add(spec.module)
        try:
            load_target(spec)
        except Exception:  # reported by the trial when it runs
            continue
        module = sys.modules.get(spec.module)
        if module is not None:
            discover_fixtures(found, modules=[module])
    return list(found.values())
