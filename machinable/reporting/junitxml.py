"""The built-in plugin ``junitxml``: ``--junitxml PATH`` writes a JUnit XML report that CI systems display.

One ``<testcase>`` per trial that ran, with the properties ``seed``, ``execution_id``, ``uid`` and ``config``
(JSON); a failed trial has a ``<failure>`` with its traceback, a crashed, interrupted or preempted one an
``<error>`` (a preempted trial did not finish: not a skip; its message says whether it saved a checkpoint), and
either carries its captured output in ``<system-out>``. Collection errors are ``<testcase>``\\ s with an
``<error>`` too, so a broken task file is visible in CI. The suite's properties name the execution, its seed,
storage and engine.
"""

from __future__ import annotations

import json
import os
import platform
import re
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from machinable.hookspec import hookimpl
from machinable.plugins import getgroup

if TYPE_CHECKING:
    import argparse

    from machinable.collection.collect import CollectReport
    from machinable.execution.executions import Execution
    from machinable.execution.options import Config
    from machinable.execution.session import Session
    from machinable.reporting.terminal import TerminalReporter
    from machinable.trials import TrialResult

# XML 1.0 cannot hold most control characters, even escaped; trial output may contain them (progress bars).
_ILLEGAL_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def clean(text: Any) -> str:
    return _ILLEGAL_XML.sub(lambda m: f"#x{ord(m.group()):02X}", str(text))


def _classname_and_name(node_id: str, module: str) -> tuple[str, str]:
    """JUnit groups by classname: the task file (dotted, as pytest does) or the component's module."""
    if "::" in node_id:
        path, name = node_id.split("::", 1)
        return path.removesuffix(".py").replace("/", "."), name
    return module, node_id


class JunitXml:
    """Gathers the command's run from the hooks (collection reports, trial results, the execution) and writes
    the report when the session finishes."""

    def __init__(self, config: Config, path: Path) -> None:
        self.config = config
        self.path = path
        self.written = False
        self.session: Session | None = None
        self.errors: list[CollectReport] = []
        self.modules: dict[str, str] = {}
        self.results: list[TrialResult] = []
        self.execution: Execution | None = None

    @hookimpl
    def machinable_sessionstart(self, session: Session) -> None:
        if self.session is None and session.owns(self.config) and session.kind == "run":
            self.session = session

    @hookimpl
    def machinable_collectreport(self, report: CollectReport) -> None:
        if report.outcome == "error":
            self.errors.append(report)

    @hookimpl
    def machinable_collection_finish(self, session: Session) -> None:
        if session is self.session:
            self.modules = {s.node_id: s.module for s in session.items}

    @hookimpl
    def machinable_execution_start(self, session: Session, execution: Execution) -> None:
        if session is self.session:
            self.execution = execution

    @hookimpl
    def machinable_trial_result(self, session: Session, result: TrialResult) -> None:
        if session is self.session:
            self.results.append(result)

    @hookimpl(tryfirst=True)
    def machinable_sessionfinish(self, session: Session) -> None:
        from xml.etree import ElementTree as ET

        if session is not self.session:
            return
        suites = ET.Element("testsuites")
        suite = self._suite(suites, session.execution_id, session.started)
        for report in self.errors:
            case = ET.SubElement(suite, "testcase", classname="", name=clean(report.nodeid), time="0.000")
            error = ET.SubElement(case, "error", message=clean(f"collection failure: {report.nodeid}"))
            error.text = clean(report.message)
        # In plan order, as the execution keeps them.
        results = list(self.execution.trials) if self.execution is not None else self.results
        for result in results:
            self._testcase(suite, result, session.execution_id)
        ET.indent(suites)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        ET.ElementTree(suites).write(self.path, encoding="utf-8", xml_declaration=True)
        self.written = True

    def _suite(self, suites: Any, execution_id: str, session_started: float) -> Any:
        from xml.etree import ElementTree as ET

        execution, results = self.execution, self.results
        failures = sum(1 for r in results if r.status == "failed")
        errors = sum(1 for r in results if not r.passed and r.status != "failed") + len(self.errors)
        started = execution.started if execution is not None else session_started
        elapsed = (execution.finished or time.time()) - started if execution is not None else 0.0
        suite = ET.SubElement(
            suites,
            "testsuite",
            name="machinable",
            tests=str(len(results) + len(self.errors)),
            failures=str(failures),
            errors=str(errors),
            skipped="0",
            time=f"{elapsed:.3f}",
            timestamp=datetime.fromtimestamp(started, timezone.utc).isoformat(),
            hostname=platform.node(),
        )
        properties = ET.SubElement(suite, "properties")
        suite_props = {"execution_id": execution_id, "project": str(self.config.root)}
        if execution is not None:
            suite_props.update(seed=str(execution.seed), storage=execution.storage, engine=execution.engine)
        for key, value in suite_props.items():
            ET.SubElement(properties, "property", name=key, value=clean(value))
        return suite

    def _testcase(self, suite: Any, result: TrialResult, execution_id: str) -> None:
        from xml.etree import ElementTree as ET

        from machinable.reporting.terminal import reason, trim_traceback

        classname, name = _classname_and_name(
            result.node_id, self.modules.get(result.node_id, result.component)
        )
        case = ET.SubElement(
            suite, "testcase", classname=clean(classname), name=clean(name), time=f"{result.duration:.3f}"
        )
        props = ET.SubElement(case, "properties")
        for key, value in (
            ("seed", result.seed),
            ("execution_id", execution_id),
            ("uid", result.uid),
            ("config", json.dumps(result.config, sort_keys=True, default=str)),
        ):
            ET.SubElement(props, "property", name=key, value=clean(value))
        if result.passed:
            return
        tag = "failure" if result.status == "failed" else "error"
        element = ET.SubElement(case, tag, message=clean(f"{result.status}: {reason(result)}"))
        element.text = clean(trim_traceback(result.error or result.status))
        if result.output:
            ET.SubElement(case, "system-out").text = clean(result.output)
        if result.log:
            ET.SubElement(case, "system-err").text = clean(result.log)

    @hookimpl
    def machinable_terminal_summary(self, reporter: TerminalReporter) -> None:
        if self.written:
            reporter.section(f"generated xml file: {self.path}", sep="-")


@hookimpl
def machinable_addoption(parser: argparse.ArgumentParser) -> None:
    getgroup(parser, "reporting").add_argument(
        "--junitxml",
        "--junit-xml",
        dest="junitxml",
        metavar="PATH",
        help="write a JUnit XML report to PATH (one testcase per trial)",
    )


@hookimpl
def machinable_configure(config: Config) -> None:
    path = getattr(config.option, "junitxml", None)
    if path:
        target = Path(os.path.expanduser(path))
        target = target if target.is_absolute() else config.invocation_dir / target
        target = target.resolve()
        _check_writable(path, target)
        config.pm.register(JunitXml(config, target), name="junitxml-writer")


def _check_writable(option: str, target: Path) -> None:
    """Checked before anything runs: a report that cannot be written would otherwise fail after the run."""
    from machinable.errors import UsageError

    if target.is_dir():
        raise UsageError(
            f"--junitxml {option}: '{target}' is a folder; give a file, e.g. {target / 'junit.xml'}"
        )
    existing = target.parent
    while not existing.exists() and existing.parent != existing:
        existing = existing.parent
    if not existing.is_dir():
        raise UsageError(f"--junitxml {option}: '{existing}' is a file, not a folder")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(
            f"--junitxml {option}: cannot create the folder '{target.parent}' ({exc.strerror})"
        ) from None
    if not os.access(target.parent, os.W_OK) or (target.exists() and not os.access(target, os.W_OK)):
        raise UsageError(f"--junitxml {option}: '{target}' is not writable")


@hookimpl
def machinable_unconfigure(config: Config) -> None:
    writer = config.pm.get_plugin("junitxml-writer")
    if writer is not None:
        config.pm.unregister(writer)
