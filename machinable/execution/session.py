"""``Session``: one run of the pipeline, the same for every entry point.

``ml.execute``, the ``machinable`` command, ``resume``, ``reproduce`` and ``--check-determinism`` each build a
Session from a *source* of trials (a Task, the project's collection, a stored plan) and a *destination* for their
records (a new execution, the stored execution being resumed, a scratch memory storage), then call
:meth:`Session.main`, which fires the hooks in this order::

    machinable_sessionstart(session)
    machinable_collection(session)            collect and select; the built-in fires collectreport,
                                              collect_modifyitems, deselected and collection_finish
    machinable_runtrials(session)             the run loop; the built-in fires execution_start, then per trial
                                              trial_protocol (where the trial runs) and trial_result, then
                                              execution_finish
    machinable_sessionfinish(session, exitstatus)

``Session.kind`` (also ``Execution.kind``) says which entry point runs it: ``run``, ``resume``, ``reproduce`` or
``determinism``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from machinable.errors import MachinableError
from machinable.execution.options import ExitCode

if TYPE_CHECKING:
    import pluggy

    from machinable.collection.collect import CollectReport
    from machinable.components.fixtures import FixtureDef
    from machinable.config.project import Project
    from machinable.execution.engines.base import Engine
    from machinable.execution.executions import Execution
    from machinable.execution.options import Config
    from machinable.storage import ExecutionWriter, StorageLocation
    from machinable.trials import TrialResult, TrialSpec


CONF_PLUGIN = "machinable_conf"


class TrialSource(Protocol):
    """Where a session's trials come from: fills ``session.items``, ``session.fixtures`` and ``session.reports``."""

    def collect(self, session: Session) -> None: ...


class Destination(Protocol):
    """Where a session's records go: ``open`` creates (or re-opens) the execution, ``close`` ends it."""

    def open(self, session: Session) -> tuple[Execution, ExecutionWriter]: ...

    def close(self, session: Session) -> None: ...


class Session:
    """The state of one run, passed to the session hooks; see the module docstring for the stages."""

    def __init__(
        self, config: Config, source: TrialSource, destination: Destination, kind: str = "run"
    ) -> None:
        self.config = config
        self.source = source
        self.destination = destination
        self.kind = kind
        self.started = time.time()
        # ml.execute returns an Execution even for a task that plans no trial; the command reports exit code 5
        self.run_empty = False
        # set by configure()
        self.project: Project | None = None
        self.execution_id = ""
        self.engine: Engine | None = None
        self.location: StorageLocation | None = None
        # set by the collection stage
        self.items: list[TrialSpec] = []
        self.collected = 0  # trials matching the targets, before -k / --lf deselection
        self.deselected: list[TrialSpec] = []
        # --needed: trials that passed before (reported first, never run) and trials another run is running
        self.cached: list[TrialResult] = []
        self.elsewhere: list[TrialSpec] = []
        self.fixtures: dict[str, FixtureDef] = {}
        self.reports: list[CollectReport] = []  # collection errors and warnings
        # set by the run stage
        self.execution: Execution | None = None
        self.shouldstop = ""  # why the run stopped early (-x / --maxfail)
        self.failures = 0  # trials that did not pass, so far
        self.failed_checks: list[str] = []  # checks after the run that failed (--check-determinism): exit 1
        # called with each result after machinable_trial_result: what the caller of a replay waits for
        self.listeners: list[Callable[[TrialResult], None]] = []

    @property
    def pm(self) -> pluggy.PluginManager:
        return self.config.pm

    @property
    def errors(self) -> list[CollectReport]:
        return [r for r in self.reports if r.outcome == "error"]

    def configure(
        self, project: Project | None, execution_id: str, engine: Engine, location: StorageLocation
    ) -> Session:
        """The project, execution id (the global seed), engine and storage of this run."""
        self.project, self.execution_id, self.engine, self.location = project, execution_id, engine, location
        return self

    def main(self) -> int:
        """Run every stage and return the exit code. A usage error (:class:`MachinableError`) propagates
        without ``machinable_sessionfinish``: nothing ran, and the caller reports it in one line."""
        hook = self.pm.hook
        status = ExitCode.INTERNAL_ERROR
        conf = self._register_conf()
        try:
            hook.machinable_sessionstart(session=self)
            hook.machinable_collection(session=self)
            status = self._run()
        except KeyboardInterrupt:
            status = ExitCode.INTERRUPTED  # while collecting: the run stage keeps its own interruptions
        except MachinableError:
            status = ExitCode.USAGE_ERROR
            raise
        finally:
            if status != ExitCode.USAGE_ERROR:
                hook.machinable_sessionfinish(session=self, exitstatus=status)
            if conf is not None:
                self.pm.unregister(conf)
        return status

    def _register_conf(self) -> object | None:
        """The project's ``machinable_conf.py`` takes part in every session of the project, as it does in the
        command's (which registers it at start-up): registered for this session when it is not already."""
        from machinable.collection.guard import import_conf

        root, pm = self.config.root, self.pm
        if root is None or pm.has_plugin(CONF_PLUGIN) or pm.is_blocked(CONF_PLUGIN):
            return None
        try:
            conf = import_conf(root)
        except MachinableError:  # a broken conf fails collection (ml.execute) or the trials that need it
            return None
        if conf is None or pm.is_registered(conf):
            return None
        pm.register(conf, name=CONF_PLUGIN)
        return conf

    def _run(self) -> int:
        option = self.config.option
        if self.errors and not option.continue_on_collection_errors:
            return ExitCode.INTERRUPTED
        if option.collect_only or option.cfg:
            return ExitCode.OK if self.items else ExitCode.NO_TRIALS_COLLECTED
        if not self.items and not self.cached and not self.run_empty:
            return ExitCode.TESTS_FAILED if self.errors else ExitCode.NO_TRIALS_COLLECTED
        self.pm.hook.machinable_runtrials(session=self)
        return self.exitstatus()

    def exitstatus(self) -> int:
        if self.execution is None:
            return ExitCode.OK
        if self.execution.detached is not None and not self.execution.failed:
            return ExitCode.OK
        if self.execution.interrupted:
            return ExitCode.INTERRUPTED
        if self.execution.failed or self.errors or self.failed_checks:
            return ExitCode.TESTS_FAILED
        return ExitCode.OK

    def owns(self, config: Any) -> bool:
        """Whether this session runs under ``config``: plugins tied to one command's config use it to ignore
        the sessions a replay starts inside it (the second run of ``--check-determinism``)."""
        return self.config is config
