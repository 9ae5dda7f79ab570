"""One run of the command: prepare (seed, storage, engine), collect, select, execute, and the exit code.

Everything the user can get wrong on the command line (seed, storage URL, engine, targets) is checked before
the first trial runs and raised as a :class:`UsageError` (exit code 4).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from machinable import ids
from machinable.cli.cacheprovider import last_execution
from machinable.cli.main import ExitCode
from machinable.cli.terminal import plural
from machinable.errors import MachinableError, SeedError, StorageError, UsageError
from machinable.hookspec import hookimpl

if TYPE_CHECKING:
    from machinable.cli.main import Config
    from machinable.collect import Collection
    from machinable.engines.base import Engine
    from machinable.execution import Execution
    from machinable.project import Project
    from machinable.spec import TrialResult, TrialSpec
    from machinable.storage import StorageLocation


class Session:
    """The state of one run, passed to the session hooks."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.started = time.time()
        self.project: Project | None = None
        self.execution_id = ""
        self.engine: Engine | None = None
        self.location: StorageLocation | None = None
        self.collection: Collection | None = None
        self.items: list[TrialSpec] = []
        self.collected = 0  # trials matching the targets, before -k / --lf deselection
        self.deselected: list[TrialSpec] = []
        self.execution: Execution | None = None
        self.shouldstop = ""  # why the run stopped early (-x / --maxfail)
        self.failures = 0  # trials that did not pass, so far
        # checks of plugins after the run that failed (--check-determinism): exit 1
        self.failed_checks: list[str] = []

    @property
    def errors(self) -> list[Any]:
        return self.collection.errors if self.collection else []

    # -- preparation --------------------------------------------------------------------------------------------
    def prepare(self) -> None:
        from machinable.engines.base import make_engine
        from machinable.mode import is_dev
        from machinable.project import Project
        from machinable.storage import open_storage

        option = self.config.option
        if getattr(option, "json", False) and not option.collect_only:
            # A run reports on the terminal, in --junitxml and in storage; JSON describes the collection only.
            raise UsageError("--json only works with --collect-only (machinable --collect-only --json)")
        self.project = Project(self.config.root)
        try:
            self.execution_id = ids.execution_id(self._seed(option.seed))
        except SeedError as exc:
            raise UsageError(f"--seed takes an integer, an execution id or 'last': {exc}") from None
        self.engine = make_engine(option.engine, self.config.pm)
        dev = is_dev()
        try:
            self.location = open_storage(None if dev else option.storage, dev_mode=dev)
        except StorageError as exc:
            raise UsageError(f"--storage {option.storage}: {exc}") from None

    def _seed(self, text: str | None) -> int | str | None:
        if text is None:
            # --lf re-runs the last failures with the seeds they failed with, unless --seed says otherwise.
            return self._last_execution() if getattr(self.config.option, "last_failed", False) else None
        if text.strip().lower() == "last":
            last = self._last_execution()
            if last is None:
                raise UsageError("--seed last: no previous execution is recorded in .machinable_cache")
            return last
        return text

    def _last_execution(self) -> str | None:
        last = last_execution(self.config).get("id")
        return last if isinstance(last, str) else None

    # -- collection ---------------------------------------------------------------------------------------------
    def collect(self) -> None:
        from machinable.cli.select import parse_targets, select, unmatched_ids, version_targets
        from machinable.collect import collect

        assert self.project is not None
        option, root = self.config.option, Path(self.project.root)
        seed = ids.decode(self.execution_id)
        targets = parse_targets(option.targets, root, self.config.invocation_dir)
        self.collection = collect(self.project, seed, paths=targets.collect_paths, repeat=option.repeat)
        for report in self.collection.reports:
            self.config.pm.hook.machinable_collectreport(report=report)
        items, unmatched = select(self.collection.items, targets, root)
        missing = unmatched_ids(self.collection.items, targets, root)
        if missing and not self.collection.errors:  # a file that failed to import explains itself
            raise UsageError(f"not found: {', '.join(missing)} (no collected trial has that node id)")
        if unmatched:
            wanted = version_targets(unmatched, self.project.components)
            extra = collect(self.project, seed, versions=wanted, repeat=option.repeat, components=False)
            if extra.errors:
                raise UsageError("; ".join(r.message for r in extra.errors))
            self.collection.fixtures.update(extra.fixtures)
            known = {i.node_id for i in items}
            items += [i for i in extra.items if i.node_id not in known]
        self.collected = len(items)
        self.config.pm.hook.machinable_collect_modifyitems(session=self, config=self.config, items=items)
        self.items = items
        self.config.pm.hook.machinable_collection_finish(session=self)

    def deselect(self, items: list[TrialSpec]) -> None:
        self.deselected.extend(items)

    # -- running ------------------------------------------------------------------------------------------------
    def run(self) -> None:
        from machinable.execution import run_specs, start_execution

        assert self.project is not None and self.engine is not None and self.location is not None
        assert self.collection is not None
        option = self.config.option
        execution, writer = start_execution(
            self.items, self.project, self.location, self.execution_id, self.engine, self.config.pm, name=None
        )
        self.execution = execution
        run_specs(
            self.items,
            execution,
            writer,
            self.engine,
            self.config.pm,
            fixtures=self.collection.fixtures.values(),
            echo=bool(option.echo),
            timeout=option.timeout,
            stop=self._stop if option.maxfail else None,
        )

    def _stop(self, execution: Execution) -> bool:
        failed = self.failures  # counted as results arrive: recounting every time would be quadratic
        if failed >= self.config.option.maxfail:
            self.shouldstop = f"stopping after {plural(failed, 'failure')}"
            return True
        return False

    def exitstatus(self) -> int:
        if self.execution is None:
            return ExitCode.OK
        if self.execution.interrupted:
            return ExitCode.INTERRUPTED
        if self.execution.failed or self.errors or self.failed_checks:
            return ExitCode.TESTS_FAILED
        return ExitCode.OK


def run_session(config: Config) -> int:
    """Run the whole session and return the exit code; usage errors propagate (the caller prints them)."""
    session = Session(config)
    session.prepare()
    pm = config.pm
    pm.register(_SessionHooks(session), name="session")
    status = ExitCode.INTERNAL_ERROR
    try:
        pm.hook.machinable_sessionstart(session=session)
        session.collect()
        if session.errors and not config.option.continue_on_collection_errors:
            status = ExitCode.INTERRUPTED
        elif config.option.collect_only:
            status = ExitCode.OK if session.items else ExitCode.NO_TRIALS_COLLECTED
        elif not session.items:
            status = ExitCode.TESTS_FAILED if session.errors else ExitCode.NO_TRIALS_COLLECTED
        else:
            session.run()
            status = session.exitstatus()
    except KeyboardInterrupt:
        status = ExitCode.INTERRUPTED
    except MachinableError:
        status = ExitCode.USAGE_ERROR
        raise
    finally:
        if status != ExitCode.USAGE_ERROR:
            pm.hook.machinable_sessionfinish(session=session, exitstatus=status)
    return status


class _SessionHooks:
    """Keeps the session in step with hooks others call: deselections (any plugin) and trial results."""

    def __init__(self, session: Session) -> None:
        self.session = session

    @hookimpl
    def machinable_deselected(self, items: list[TrialSpec]) -> None:
        self.session.deselect(list(items))

    @hookimpl
    def machinable_trial_result(self, result: TrialResult) -> None:
        if result.status != "passed":
            self.session.failures += 1
