"""``machinable --check-determinism``: run every selected trial a second time and report the ones that differ.

The second run uses the same specs (node id, configuration, seed) and engine as the first, into a fresh memory
storage, and compares records and stored values exactly (:mod:`machinable.replay.compare`). A trial that passed the first
time and differs, or fails, the second time is reported; the command then exits with 1. Trials that did not pass
the first time are already failures and are not run again. No stored baseline is needed, which makes this a
cheap CI gate next to ``machinable reproduce``.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from machinable.hookspec import hookimpl
from machinable.replay.compare import compare_trials
from machinable.text import first_line

if TYPE_CHECKING:
    from machinable.execution.options import Config
    from machinable.execution.session import Session
    from machinable.reporting.terminal import TerminalReporter
    from machinable.trials import TrialResult

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


def check_determinism(session: Session) -> DeterminismReport:
    """Run the passed trials of ``session``'s execution again (same specs, seeds, engine and fixtures) into a
    scratch storage, and compare each with its first run."""
    from machinable.replay.destinations import Scratch
    from machinable.replay.stored import rerun
    from machinable.storage import Storage

    execution = session.execution
    assert execution is not None and session.engine is not None
    passed = {t.uid for t in execution.trials if t.passed}
    again = [s for s in session.items if s.uid in passed]
    report = DeterminismReport(checked=len(again))
    if not again:
        return report
    scratch = Scratch(execution.id, execution.seed)
    # The first run's folder: <id>-2 ... when the same --seed was stored before.
    first = Storage(execution.location).get(execution.folder or execution.id)
    compare = _Compare(first, Storage(scratch.location), execution.id, report)
    try:
        second = rerun(
            again,
            "determinism",
            scratch,
            session.engine,
            execution.id,
            session.pm,
            root=session.config.root,
            fixtures=session.fixtures.values(),
            listeners=[compare],
        ).execution
        for spec in again:
            if spec.uid not in compare.seen:
                report.differing[spec.node_id] = "the second run did not run (interrupted)"
        if second is None or second.interrupted:
            raise KeyboardInterrupt
    finally:
        scratch.discard()
    return report


class _Compare:
    """Compares each trial of the second run with its first run as the second run reports it."""

    def __init__(self, first: Any, scratch: Any, execution_id: str, report: DeterminismReport) -> None:
        self.first, self.scratch, self.execution_id, self.report = first, scratch, execution_id, report
        self.seen: set[str] = set()

    def __call__(self, result: TrialResult) -> None:
        self.seen.add(result.uid)
        detail = self.difference(result)
        if detail is not None:
            self.report.differing[result.node_id] = detail

    def difference(self, result: TrialResult) -> str | None:
        if not result.passed:
            detail = f"passed the first time, {result.status} the second"
            reason = first_line(result.error)
            return f"{detail}: {reason}" if reason else detail
        try:
            second = self.scratch.get(self.execution_id).trial(result.uid)
            difference = compare_trials(self.first.trial(result.uid), second)
        except Exception as exc:  # e.g. a stored .npy without numpy: say so rather than crash the run
            return f"cannot compare the runs: {type(exc).__name__}: {exc}"
        return difference.describe("first run", "second run") if difference is not None else None


class DeterminismCheck:
    """Registered by ``--check-determinism``: wraps the command's run stage and checks it once it has run."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.report: DeterminismReport | None = None

    @hookimpl(wrapper=True)
    def machinable_runtrials(self, session: Session) -> Generator[None, object, object]:
        result = yield
        execution = session.execution
        if (
            session.owns(self.config)
            and self.report is None
            and execution is not None
            and not execution.interrupted
        ):
            self.report = check_determinism(session)
            if not self.report.ok:
                # Read by Session.exitstatus(): the run passed, but the check did not.
                session.failed_checks.append(
                    f"--check-determinism: {len(self.report.differing)} trials differ"
                )
        return result

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
