"""``machinable --check-determinism``: run every selected trial a second time and report the ones that differ.

The second run uses the same specs (node id, configuration, seed) and engine as the first, into a fresh memory
storage, and compares records and stored values exactly (:mod:`machinable.compare`). A trial that passed the first
time and differs, or fails, the second time is reported; the command then exits with 1. Trials that did not pass
the first time are already failures and are not run again. No stored baseline is needed, which makes this a
cheap CI gate next to ``machinable reproduce``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from machinable.compare import compare_trials
from machinable.hookspec import hookimpl

if TYPE_CHECKING:
    from machinable.cli.main import Config
    from machinable.cli.session import Session
    from machinable.cli.terminal import TerminalReporter
    from machinable.engines.base import Engine
    from machinable.execution import Execution
    from machinable.fixtures import FixtureDef
    from machinable.spec import TrialSpec

PLUGIN_NAME = "determinism"


@dataclass
class DeterminismReport:
    """``checked`` trials ran twice; ``differing`` maps a node id to what differed between the runs."""

    checked: int = 0
    differing: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.differing

    def summary(self) -> str:
        same = self.checked - len(self.differing)
        return f"{same} deterministic, {len(self.differing)} differ"


def check_determinism(
    execution: Execution,
    specs: list[TrialSpec],
    engine: Engine,
    fixtures: Iterable[FixtureDef] = (),
) -> DeterminismReport:
    """Run the specs of ``execution``'s passed trials again (same seeds) and compare them with the first run."""
    from machinable.cli.terminal import first_line
    from machinable.rerun import discard, run_into
    from machinable.storage import Storage, open_storage

    passed = {t.uid for t in execution.trials if t.passed}
    again = [s for s in specs if s.uid in passed]
    report = DeterminismReport(checked=len(again))
    if not again:
        return report
    location = open_storage(None)
    try:
        second = run_into(again, location, execution.id, engine, fixtures=fixtures, seed=execution.seed)
        # The first run's folder: <id>-2 ... when the same --seed was stored before.
        first_stored = Storage(execution.location).get(execution.folder or execution.id)
        second_stored = Storage(location).get(execution.id)
        results = {r.uid: r for r in second.trials}
        for spec in again:
            result = results.get(spec.uid)
            if result is None:
                report.differing[spec.node_id] = "the second run did not run (interrupted)"
            elif not result.passed:
                detail = f"passed the first time, {result.status} the second"
                reason = first_line(result.error)
                report.differing[spec.node_id] = f"{detail}: {reason}" if reason else detail
            else:
                try:
                    difference = compare_trials(first_stored.trial(spec.uid), second_stored.trial(spec.uid))
                except Exception as exc:  # e.g. a stored .npy without numpy: say so rather than crash the run
                    report.differing[spec.node_id] = f"cannot compare the runs: {type(exc).__name__}: {exc}"
                    continue
                if difference is not None:
                    report.differing[spec.node_id] = difference.describe("first run", "second run")
        if second.interrupted:
            raise KeyboardInterrupt
    finally:
        discard(location)
    return report


class DeterminismCheck:
    """Registered by ``--check-determinism``: checks the session's execution once it has finished."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.session: Session | None = None
        self.report: DeterminismReport | None = None

    @hookimpl
    def machinable_sessionstart(self, session: Session) -> None:
        self.session = session

    @hookimpl(trylast=True)
    def machinable_execution_finish(self, execution: Execution) -> None:
        session = self.session
        if session is None or self.report is not None or execution.interrupted or session.engine is None:
            return
        fixtures: list[Any] = list(session.collection.fixtures.values()) if session.collection else []
        self.report = check_determinism(execution, list(session.items), session.engine, fixtures)
        if not self.report.ok:
            # Read by Session.exitstatus(): the run passed, but the check did not.
            session.failed_checks.append(f"--check-determinism: {len(self.report.differing)} trials differ")

    @hookimpl
    def machinable_terminal_summary(self, reporter: TerminalReporter) -> None:
        report = self.report
        if report is None:
            return
        if report.ok:
            noun = "trial" if report.checked == 1 else "trials"
            reporter.section(
                f"determinism: {report.checked} {noun} ran twice and matched", sep="-", green=True
            )
            return
        reporter.section("determinism", red=True)
        for node_id, detail in report.differing.items():
            reporter.line(f"{reporter.tw.markup('DIFFERS', red=True)} {node_id} - {detail}")
        reporter.line(f"{report.summary()} (each trial ran twice with the same seed)", red=True, bold=True)
