"""The reports of ``machinable reproduce`` and ``machinable resume``: a header, a line per trial as it ends, and
the summary line; the exit code. The command line (:mod:`machinable.cli.commands`) parses their arguments.
"""

from __future__ import annotations

import json
import sys
import time
from typing import TYPE_CHECKING, Any

from machinable.execution.options import ExitCode
from machinable.reporting.terminalwriter import TerminalWriter, should_color
from machinable.text import count_parts, first_line, plural, summary_line

if TYPE_CHECKING:
    from machinable.execution.engines.base import Engine
    from machinable.execution.options import Config
    from machinable.replay.reproduce import TrialReproduction
    from machinable.storage import StoredExecution
    from machinable.trials import TrialResult

_OUTCOME_COLOURS = {"REPRODUCED": "green", "DIFFERS": "red", "FAILED": "red"}


def _writer(config: Config) -> TerminalWriter:
    return TerminalWriter(sys.stdout, should_color(sys.stdout, config.option.color))


def _named(stored: Any, *, seed: bool = False) -> str:
    """``3K45al``, or ``3K45al (folder 3K45al-2)`` for an execution id that was stored more than once;
    ``seed=True``: ``3K45al (seed 3044900027, folder 3K45al-2)``."""
    details = [f"seed {stored.seed}"] if seed else []
    if stored.folder != stored.id:
        details.append(f"folder {stored.folder}")
    return f"{stored.id} ({', '.join(details)})" if details else stored.id


def report_reproduce(config: Config, stored: StoredExecution, engine: Engine, project: str | None) -> int:
    """``machinable reproduce``: re-run and compare, a line per trial as its outcome is known; the exit code."""
    from machinable.replay.reproduce import reproduce

    option = config.option
    tw = _writer(config)
    # -q as for a run: no header, a line only for each trial that did not reproduce, the final line unframed.
    quiet = bool(option.json) or option.quiet > 0
    if not quiet:
        source = "the code in code.zip" if option.from_backup else "the current code"
        tolerance = f"rtol={option.rtol:g}, atol={option.atol:g}" if option.rtol or option.atol else "exact"
        tw.sep("=", f"reproduce {stored.id}", bold=True)
        tw.line(f"execution {_named(stored, seed=True)}, storage {stored.storage.url}")
        tw.line(f"re-running with {source}, comparing {tolerance}")

    def show(outcome: TrialReproduction) -> None:
        if option.json or (quiet and outcome.ok):
            return
        tw.write(f"{outcome.node_id} ")
        tw.write(outcome.outcome, **{_OUTCOME_COLOURS[outcome.outcome]: True})
        tw.line(f" - {outcome.detail}" if outcome.detail else "")
        tw.flush()

    result = reproduce(
        stored.folder,  # exactly the folder shown above, also when the id was stored again (<id>-2 ...)
        storage=stored.storage.location,
        k=option.keyword,
        rtol=option.rtol,
        atol=option.atol,
        from_backup=option.from_backup,
        engine=engine,
        project=project,
        plugins=config.pm,
        echo=option.echo,
        on_result=show,
    )
    if option.json:
        print(json.dumps(result.to_dict(), indent=2, default=str))
    else:
        if result.deselected and not quiet:
            tw.line(f"{plural(result.deselected, 'trial')} deselected by -k")
        marks = {"green": True} if result.ok else {"red": True}
        if quiet:
            tw.line(result.summary(), bold=True, **marks)
        else:
            tw.sep("=", result.summary(), bold=True, **marks)
    if not result.trials:
        if not option.json:
            tw.line(f"no trial of execution {stored.id} matches -k {option.keyword!r}")
        return ExitCode.NO_TRIALS_COLLECTED
    return ExitCode.OK if result.ok else ExitCode.TESTS_FAILED


def report_resume(config: Config, stored: StoredExecution, engine: Engine, project: str | None) -> int:
    """``machinable resume``: what did not pass, a line per resumed trial as it ends; the exit code."""
    from machinable.replay.resume import check_importable, pending_specs, resume
    from machinable.storage import trial_states

    option = config.option
    tw = _writer(config)
    states = trial_states(stored)
    pending = pending_specs(stored)  # refuses an execution that is still running
    check_importable(pending)
    tw.sep("=", f"resume {stored.id}", bold=True)
    if not pending:
        tw.line(f"execution {stored.id}: all {len(states)} trials passed; nothing to resume")
        return ExitCode.OK
    reasons: dict[str, int] = {}
    for _, status in states:
        if status != "passed":
            reasons[status] = reasons.get(status, 0) + 1
    why = ", ".join(f"{n} {s}" for s, n in reasons.items())
    tw.line(
        f"execution {_named(stored)}, storage {stored.storage.url}: {len(pending)} of {len(states)} trials did not pass ({why})"
    )
    started = time.time()

    def show(result: TrialResult) -> None:
        colour = {"green": True} if result.passed else {"red": True}
        tw.write(f"{result.node_id} ")
        tw.line(result.status.upper(), **colour)
        reason = "" if result.passed else first_line(result.error)
        if reason:
            tw.line(f"    {reason}")

    execution = resume(
        stored.folder,
        storage=stored.storage.location,
        engine=engine,
        project=project,
        plugins=config.pm,
        echo=option.echo,
        on_result=show,
    )
    bad = execution.interrupted or bool(execution.failed) or len(execution.trials) < len(pending)
    tw.sep(
        "=",
        summary_line(count_parts(execution.counts()), time.time() - started),
        bold=True,
        **({"red": True} if bad else {"green": True}),
    )
    if execution.interrupted:
        return ExitCode.INTERRUPTED
    return ExitCode.TESTS_FAILED if bad else ExitCode.OK
