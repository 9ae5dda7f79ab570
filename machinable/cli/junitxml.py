"""The built-in plugin ``junitxml``: ``--junitxml PATH`` writes a JUnit XML report that CI systems display.

One ``<testcase>`` per trial that ran, with the properties ``seed``, ``execution_id``, ``uid`` and ``config``
(JSON); a failed trial has a ``<failure>`` with its traceback, a crashed or interrupted one an ``<error>``, and
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

from machinable.cli.options import getgroup
from machinable.hookspec import hookimpl

if TYPE_CHECKING:
    import argparse

    from machinable.cli.main import Config
    from machinable.cli.session import Session
    from machinable.cli.terminal import TerminalReporter
    from machinable.spec import TrialResult

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
    def __init__(self, path: Path) -> None:
        self.path = path
        self.written = False

    @hookimpl(tryfirst=True)
    def machinable_sessionfinish(self, session: Session, exitstatus: int) -> None:
        from xml.etree import ElementTree as ET

        from machinable.cli.terminal import captured, reason, trim_traceback

        execution = session.execution
        results: list[TrialResult] = list(execution.trials) if execution is not None else []
        modules = {s.node_id: s.module for s in session.items}
        failures = sum(1 for r in results if r.status == "failed")
        errors = sum(1 for r in results if r.status not in ("passed", "failed")) + len(session.errors)
        started = execution.started if execution is not None else session.started
        elapsed = (execution.finished or time.time()) - started if execution is not None else 0.0

        suites = ET.Element("testsuites")
        suite = ET.SubElement(
            suites,
            "testsuite",
            name="machinable",
            tests=str(len(results) + len(session.errors)),
            failures=str(failures),
            errors=str(errors),
            skipped="0",
            time=f"{elapsed:.3f}",
            timestamp=datetime.fromtimestamp(started, timezone.utc).isoformat(),
            hostname=platform.node(),
        )
        properties = ET.SubElement(suite, "properties")
        suite_props = {"execution_id": session.execution_id, "project": str(session.config.root)}
        if execution is not None:
            suite_props.update(seed=str(execution.seed), storage=execution.storage, engine=execution.engine)
        for key, value in suite_props.items():
            ET.SubElement(properties, "property", name=key, value=clean(value))

        for report in session.errors:
            case = ET.SubElement(suite, "testcase", classname="", name=clean(report.nodeid), time="0.000")
            error = ET.SubElement(case, "error", message=clean(f"collection failure: {report.nodeid}"))
            error.text = clean(report.message)

        for result in results:
            classname, name = _classname_and_name(
                result.node_id, modules.get(result.node_id, result.component)
            )
            case = ET.SubElement(
                suite, "testcase", classname=clean(classname), name=clean(name), time=f"{result.duration:.3f}"
            )
            props = ET.SubElement(case, "properties")
            for key, value in (
                ("seed", result.seed),
                ("execution_id", session.execution_id),
                ("uid", result.uid),
                ("config", json.dumps(result.config, sort_keys=True, default=str)),
            ):
                ET.SubElement(props, "property", name=key, value=clean(value))
            if result.status == "passed":
                continue
            tag = "failure" if result.status == "failed" else "error"
            element = ET.SubElement(case, tag, message=clean(f"{result.status}: {reason(result)}"))
            element.text = clean(trim_traceback(result.error or result.status))
            assert execution is not None
            output, log = captured(execution, result)
            if output:
                ET.SubElement(case, "system-out").text = clean(output)
            if log:
                ET.SubElement(case, "system-err").text = clean(log)

        ET.indent(suites)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        ET.ElementTree(suites).write(self.path, encoding="utf-8", xml_declaration=True)
        self.written = True

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
        config.pm.register(JunitXml(target.resolve()), name="junitxml-writer")


@hookimpl
def machinable_unconfigure(config: Config) -> None:
    writer = config.pm.get_plugin("junitxml-writer")
    if writer is not None:
        config.pm.unregister(writer)
