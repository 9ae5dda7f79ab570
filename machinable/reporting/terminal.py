"""The built-in plugin ``terminal``: the report on the console, shaped like pytest's.

A header (versions, project, execution id and seed, storage, engine), ``collected N trials``, a progress line per
component or task file (``.`` passed, ``F`` failed, ``C`` crashed, ``I`` interrupted, ``P`` preempted) ending in
a percentage, or with ``-v`` a line per trial; then the collection errors, the failures with their tracebacks
and captured output, warnings, a short summary and the final ``N passed, M failed in X s`` line.
``--collect-only`` lists the trials (a tree, ``-q``: node ids, ``--json``: machine-readable). Colour follows
``--color``, ``NO_COLOR``, ``FORCE_COLOR`` and whether the output is a terminal. While trials run, ``live.py``
shows a progress bar on a terminal (and with ``-v`` the running trials' latest record values).
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from collections import Counter
from collections.abc import Iterator
from typing import TYPE_CHECKING, TextIO

from machinable import __version__, ids
from machinable.execution.options import ExitCode
from machinable.hookspec import hookimpl
from machinable.plugins import getgroup
from machinable.reporting.live import start_live
from machinable.reporting.terminalwriter import TerminalWriter, should_color
from machinable.text import count_parts, first_line, plural, summary_line
from machinable.trials import PASSING

if TYPE_CHECKING:
    import argparse

    from machinable.collection.collect import CollectReport
    from machinable.execution.options import Config
    from machinable.execution.session import Session
    from machinable.trials import TrialResult, TrialSpec

LETTERS = {"passed": ".", "cached": "c", "failed": "F", "crashed": "C", "interrupted": "I", "preempted": "P"}
COLOURS = {"passed": "green", "failed": "red", "crashed": "red"}  # any other outcome: yellow
OUTPUT_TAIL = 40  # lines of a failed trial's captured output shown in the failures section


def group_of(node_id: str) -> str:
    """Progress lines and the collect-only tree group trials by task file, else by component."""
    if "::" in node_id:
        return node_id.split("::", 1)[0]
    return node_id.split("[", 1)[0].split("#", 1)[0]


def _hook_lines(results: list[str | list[str] | None]) -> Iterator[str]:
    """The lines report hooks returned (a string or a list of them each), the first registered plugin first."""
    for lines in reversed(results):
        yield from [lines] if isinstance(lines, str) else lines or []


def reason(result: TrialResult) -> str:
    """One line on why a trial did not pass (short summary, JUnit message).

    A crash's error starts with its cause ("worker process died with signal 11 (SIGSEGV)") and may go on with
    the stack the dying worker wrote, whose last line is a frame, not an explanation.
    """
    if result.status == "crashed":
        lines = [line.strip() for line in (result.error or "").splitlines() if line.strip()]
        return lines[0] if lines else ""
    return first_line(result.error)


class TerminalReporter:
    """Registered as ``terminalreporter`` while the command runs; plugins may write through it."""

    def __init__(self, config: Config, file: TextIO | None = None) -> None:
        self.config = config
        option = config.option
        self.verbosity = int(getattr(option, "verbose", 0) or 0) - int(getattr(option, "quiet", 0) or 0)
        self.tw = TerminalWriter(file, should_color(file or sys.stdout, getattr(option, "color", "auto")))
        # --cfg (the configurations) and --collect-only --json print nothing but what was asked for
        self.cfg = bool(getattr(option, "cfg", False))
        self.json = (
            bool(getattr(option, "json", False) and getattr(option, "collect_only", False)) and not self.cfg
        )
        self.reports: list[CollectReport] = []
        self.results: list[TrialResult] = []
        self.any_failed = False
        self.total = 0
        self.done = 0
        self.remaining: Counter[str] = Counter()
        self.current_group: str | None = None
        self.started = time.time()
        self.session: Session | None = None

    # -- helpers plugins may use ------------------------------------------------------------------------------
    def line(self, text: str = "", **marks: bool) -> None:
        self._end_progress_line()
        self.tw.line(text, **marks)

    def write(self, text: str, **marks: bool) -> None:
        self.tw.write(text, **marks)

    def section(self, title: str, sep: str = "=", **marks: bool) -> None:
        self._end_progress_line()
        self.tw.sep(sep, title, **marks)

    @property
    def quiet(self) -> bool:
        return self.verbosity < 0

    # -- session start and collection -------------------------------------------------------------------------
    def _mine(self, session: Session) -> bool:
        """Whether ``session`` is the command's own run: a re-run inside it (the second run of
        ``--check-determinism``) and the re-runs of sub-commands report elsewhere."""
        return session is self.session

    @hookimpl
    def machinable_sessionstart(self, session: Session) -> None:
        if self.session is not None or not session.owns(self.config) or session.kind != "run":
            return
        self.session = session
        self.started = session.started
        if self.quiet or self.json or self.cfg:
            return
        self.section("machinable session starts", bold=True)
        python = platform.python_version()
        self.tw.line(f"machinable {__version__}, python {python}, project: {session.config.root}")
        location = session.location.url if session.location is not None else "memory"
        engine = session.engine.describe() if session.engine is not None else "local"
        seed = ids.decode(session.execution_id)
        self.tw.line(f"execution {session.execution_id} (seed {seed}), storage {location}, engine {engine}")
        for text in _hook_lines(self.config.pm.hook.machinable_report_header(config=self.config)):
            self.tw.line(text)

    @hookimpl
    def machinable_collectreport(self, report: CollectReport) -> None:
        self.reports.append(report)

    @hookimpl(trylast=True)
    def machinable_collection_finish(self, session: Session) -> None:
        if not self._mine(session):
            return
        if self.cfg:
            from machinable.reporting.cfg import render_configs

            if session.items:
                self.tw.line(
                    render_configs(session.items, as_json=bool(getattr(self.config.option, "json", False)))
                )
            return
        if self.json:
            self._print_json(session)
            return
        errors = len(session.errors)
        if not self.quiet:
            text = f"collected {plural(session.collected, 'trial')}"
            if errors:
                text += f" / {plural(errors, 'error')}"
            if session.deselected:
                text += f" / {len(session.deselected)} deselected / {len(session.items)} selected"
            self.tw.line(text, bold=True)
            hook = self.config.pm.hook.machinable_report_collectionfinish
            for line in _hook_lines(hook(config=self.config, items=session.items)):
                self.tw.line(line)
        if self.config.option.collect_only:
            self._print_collected(session)
        elif not self.quiet:
            self.tw.line()

    def _print_collected(self, session: Session) -> None:
        if self.quiet:
            for item in session.items:
                self.tw.line(item.node_id)
            self.tw.line()
            return
        self.tw.line()
        self.tw.line(f"<Project {session.config.root}>")
        group = None
        for item in session.items:
            if group_of(item.node_id) != group:
                group = group_of(item.node_id)
                kind = "TaskFile" if "::" in item.node_id else "Component"
                self.tw.line(f"  <{kind} {group}>")
            self.tw.line(f"    <Trial {item.node_id}>")
            if self.verbosity > 0:
                self.tw.line(f"      seed {item.seed}, config {json.dumps(item.config, default=str)}")

    def _print_json(self, session: Session) -> None:
        payload = {
            "execution_id": session.execution_id,
            "seed": ids.decode(session.execution_id),
            "project": str(session.config.root),
            "trials": [
                {
                    "node_id": s.node_id,
                    "component": s.component,
                    "module": s.module,
                    "config": s.config,
                    "versions": list(s.versions),
                    "seed": s.seed,
                    "uid": s.uid,
                    "repeat_number": s.repeat_number,
                    "repeat_total": s.repeat_total,
                }
                for s in session.items
            ],
            "deselected": [s.node_id for s in session.deselected],
            "errors": [{"nodeid": r.nodeid, "message": r.message} for r in session.errors],
        }
        self.tw.line(json.dumps(payload, indent=2, default=str))

    # -- progress ---------------------------------------------------------------------------------------------
    @hookimpl
    def machinable_execution_start(self, session: Session, specs: list[TrialSpec]) -> None:
        if not self._mine(session):
            return
        self.total = len(specs) + len(session.cached)  # cached ones (--needed) are reported too
        self.remaining = Counter(group_of(s.node_id) for s in [*session.cached, *specs])
        if not (self.json or self.cfg):
            start_live(self, session, self.total)

    @hookimpl
    def machinable_trial_result(self, session: Session, result: TrialResult) -> None:
        if not self._mine(session):
            return
        self.results.append(result)
        group = group_of(result.node_id)
        status = result.status
        colour = {COLOURS.get(status, "yellow"): True}
        if self.verbosity > 0:
            self._end_progress_line()
            self._count(group, status)
            text = f"{result.node_id} "
            self.tw.write(text)
            self.tw.write(status.upper(), **colour)
            self._write_progress(colour)
            return
        # -q: one run of letters for everything; else a line per component or task file. A line that ends
        # here (another group's result came, or the line is full) shows the percentage before this trial.
        new_group = group != self.current_group and not (self.quiet and self.current_group is not None)
        if new_group or self.tw.width_of_current_line > self.tw.fullwidth - 9:
            self._end_progress_line()
            self.current_group = group
            if not self.quiet:
                self.tw.write(f"{group} ")
        self._count(group, status)
        self.tw.write(LETTERS.get(status, "?"), flush=True, **colour)
        if self.done >= self.total or (self.remaining[group] <= 0 and not self.quiet):
            self._end_progress_line()

    def _count(self, group: str, status: str) -> None:
        self.done += 1
        self.remaining[group] -= 1
        self.any_failed = self.any_failed or status not in PASSING

    def _write_progress(self, colour: dict[str, bool]) -> None:
        percent = 100 * self.done // max(self.total, 1)
        text = f"[{percent:3d}%]"
        pad = max(self.tw.fullwidth - 1 - self.tw.width_of_current_line - len(text), 1)
        self.tw.write(" " * pad)
        self.tw.line(text, **colour)
        self.tw.flush()

    def _end_progress_line(self) -> None:
        if self.current_group is None:
            return
        self.current_group = None
        self._write_progress({"green": not self.any_failed, "red": self.any_failed})

    @hookimpl
    def machinable_execution_finish(self, session: Session) -> None:
        if self._mine(session):
            self._end_progress_line()

    # -- the end ----------------------------------------------------------------------------------------------
    @hookimpl(trylast=True)
    def machinable_sessionfinish(self, session: Session, exitstatus: int) -> None:
        if not self._mine(session):
            return
        self._end_progress_line()
        if self.json or (self.cfg and not session.errors):
            return
        self._summary_errors(session)
        self._summary_failures(session)
        self._summary_warnings()
        self.config.pm.hook.machinable_terminal_summary(
            reporter=self, exitstatus=exitstatus, config=self.config
        )
        self._short_summary(session)
        if session.shouldstop:
            self.section(session.shouldstop, sep="!", red=True)
        if session.execution is not None and session.execution.detached is not None:
            self.tw.line(session.execution.detached)
            return
        # Ctrl-C while trials ran, or while collecting (then there is no execution); not a preemption (shouldstop)
        interrupted = session.execution.interrupted if session.execution is not None else False
        if (
            interrupted or exitstatus == ExitCode.INTERRUPTED and not session.errors
        ) and not session.shouldstop:
            self.section("KeyboardInterrupt", sep="!", yellow=True)
        elif session.errors and not self.config.option.continue_on_collection_errors:
            self.section(
                f"Interrupted: {plural(len(session.errors), 'error')} during collection", sep="!", red=True
            )
        self._final_line(session)
        self._grouped_results(session)

    def _summary_errors(self, session: Session) -> None:
        if not session.errors:
            return
        self.section("ERRORS")
        for report in session.errors:
            self.tw.sep("_", f"ERROR collecting {report.nodeid}", red=True, bold=True)
            self.tw.line(report.message)

    def _summary_failures(self, session: Session) -> None:
        # An interrupted or preempted trial's story is its line in the short summary (and the stop's line).
        failed = [r for r in self.results if not r.passed and r.status not in ("interrupted", "preempted")]
        if not failed or session.execution is None:
            return
        self.section("FAILURES")
        for result in failed:
            self.tw.sep("_", result.node_id, red=True, bold=True)
            self.tw.line(f"seed {result.seed}, trial {result.uid}, status {result.status}")
            if result.error:
                text = result.error if self.verbosity > 1 else trim_traceback(result.error)
                self.tw.line(text.rstrip())
            output, log = result.output, result.log
            for title, text in (("Captured output", output), ("Captured log", log)):
                if text.strip():
                    lines = text.rstrip().splitlines()
                    more = f" (last {OUTPUT_TAIL} of {len(lines)} lines)" if len(lines) > OUTPUT_TAIL else ""
                    self.tw.sep("-", title + more)
                    self.tw.line("\n".join(lines[-OUTPUT_TAIL:]))

    def _summary_warnings(self) -> None:
        warnings = [r for r in self.reports if r.outcome == "warning"]
        if not warnings:
            return
        self.section("warnings summary", yellow=True)
        for report in warnings:
            self.tw.line(report.nodeid)
            self.tw.line(f"  {report.message}")
        self.tw.line()

    def _short_summary(self, session: Session) -> None:
        failed = [r for r in self.results if not r.passed]
        if not failed and not session.errors:
            return
        self.section("short trial summary info", cyan=True)
        for report in session.errors:
            self.tw.line(
                f"{self.tw.markup('ERROR', red=True)} {report.nodeid} - {first_line(report.message)}"
            )
        for result in failed:
            word = self.tw.markup(result.status.upper(), **{COLOURS.get(result.status, "yellow"): True})
            message = reason(result)
            self.tw.line(f"{word} {result.node_id}" + (f" - {message}" if message else ""))

    def _grouped_results(self, session: Session) -> None:
        """After a run with repeats, the answer to "which configuration is better": the results grouped by
        configuration, mean ± std over the repeats (``machinable show`` prints the same table)."""
        execution = session.execution
        repeated = any(r.repeat_total > 1 for r in self.results)
        if execution is None or execution.interrupted or self.quiet or not repeated:
            return
        from machinable.reporting.show import grouped_summary

        try:
            text = grouped_summary(execution.stored())
        except Exception as exc:  # the run's report stands even if its results cannot be read back
            text = f"(results table unavailable: {type(exc).__name__}: {exc})"
        self.tw.line()
        self.tw.line(text)

    def _final_line(self, session: Session) -> None:
        parts = count_parts(Counter(r.status for r in self.results))
        if session.deselected:
            parts.append(f"{len(session.deselected)} deselected")
        if session.errors:
            parts.append(plural(len(session.errors), "error"))
        warnings = sum(1 for r in self.reports if r.outcome == "warning")
        if warnings:
            parts.append(plural(warnings, "warning"))
        if self.config.option.collect_only:
            selected, total = len(session.items), session.collected
            head = f"{selected}/{plural(total, 'trial')}" if session.deselected else plural(total, "trial")
            text = f"{head} collected" + (
                f" ({len(session.deselected)} deselected)" if session.deselected else ""
            )
            parts = [text] + [p for p in parts if "error" in p or "warning" in p]
        text = summary_line(parts, time.time() - self.started)
        bad = session.errors or any(not r.passed for r in self.results)
        marks = {"red": bool(bad), "green": not bad and bool(self.results or session.items), "bold": True}
        if not bad and not self.results and not session.items:
            marks = {"yellow": True, "bold": True}
        if self.quiet:
            self.tw.line(text, **marks)
        else:
            self.tw.sep("=", text, **marks)


_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def trim_traceback(text: str) -> str:
    """Drop the frames of machinable's own code from a trial's traceback: the user's frames tell the story.

    ``-vv`` shows the traceback whole.
    """
    kept: list[str] = []
    skipping = False
    for line in text.splitlines(keepends=True):
        if line.startswith('  File "'):
            path = line[len('  File "') :].split('"', 1)[0]
            skipping = os.path.abspath(path).startswith(_PACKAGE_DIR + os.sep)
        elif not line.startswith("    "):
            skipping = False
        if not skipping:
            kept.append(line)
    return "".join(kept)


# -- the plugin -------------------------------------------------------------------------------------------------


@hookimpl
def machinable_addoption(parser: argparse.ArgumentParser) -> None:
    group = getgroup(parser, "reporting")
    group.add_argument(
        "-v", "--verbose", action="count", default=0, help="a line per trial; -vv: more details"
    )
    group.add_argument("-q", "--quiet", action="count", default=0, help="less output: no header, no tree")
    group.add_argument(
        "--color",
        choices=("auto", "yes", "no"),
        default="auto",
        help="colour the output (auto: on a terminal unless NO_COLOR is set; FORCE_COLOR forces it)",
    )


@hookimpl
def machinable_configure(config: Config) -> None:
    # Registered here, not at import: ml.execute uses the same plugin manager and must stay silent.
    config.pm.register(TerminalReporter(config), name="terminalreporter")


@hookimpl
def machinable_unconfigure(config: Config) -> None:
    reporter = config.pm.get_plugin("terminalreporter")
    if reporter is not None:
        config.pm.unregister(reporter)
