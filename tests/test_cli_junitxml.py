"""--junitxml: one testcase per trial, with seed, execution id and configuration, failures with tracebacks."""

from __future__ import annotations

import json
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest
from cli_helpers import FLAKY, run_inprocess, write_project

YAML = "components:\n  - flaky:\n      fail: false\n"
TASK = 'import machinable as ml\n\ntask = ml.Task().component("flaky", {"fail": True})\n'


@pytest.fixture
def report(capsys, tmp_path: Path):
    """Run the project with --junitxml and return (result, parsed <testsuite>)."""
    root = write_project(tmp_path / "project", YAML, {"flaky.py": FLAKY, "tasks/sweep.py": TASK})

    def run(*args: str):
        path = tmp_path / "out" / "junit.xml"
        result = run_inprocess(capsys, root, "--junitxml", str(path), "--seed", "42", *args)
        return result, ET.parse(path).getroot().find("testsuite")

    return run


def properties(element) -> dict[str, str]:
    return {p.get("name"): p.get("value") for p in element.find("properties").findall("property")}


def test_one_testcase_per_trial_with_counts(report):
    result, suite = report()
    assert result.ret == 1
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("2", "1", "0")
    cases = suite.findall("testcase")
    assert [(c.get("classname"), c.get("name")) for c in cases] == [
        ("flaky", "flaky"),
        ("tasks.sweep", "flaky[fail=true]"),
    ]
    assert "generated xml file:" in result.out


def test_testcases_carry_seed_execution_id_and_config(report):
    _, suite = report()
    passed = properties(suite.find("testcase"))
    assert passed["execution_id"] == "8gWVkz"
    assert int(passed["seed"]) > 0
    assert json.loads(passed["config"]) == {"fail": False}
    assert properties(suite)["execution_id"] == "8gWVkz"


def test_a_failure_holds_the_traceback_and_the_output(report):
    _, suite = report()
    failed = suite.findall("testcase")[1]
    failure = failed.find("failure")
    assert failure.get("message") == "failed: ValueError: asked to fail"
    assert 'flaky.py", line 8, in on_execute' in failure.text
    assert failed.find("system-out").text == "running with fail=True\n"


def test_collection_errors_are_testcases_with_an_error(report, tmp_path):
    (tmp_path / "project" / "tasks" / "broken.py").write_text("import no_such_module_anywhere\n")
    result, suite = report("--continue-on-collection-errors")
    assert suite.get("errors") == "1"
    [error_case] = [c for c in suite.findall("testcase") if c.find("error") is not None]
    assert error_case.get("name") == "tasks/broken.py"
    assert "no_such_module_anywhere" in error_case.find("error").text
