"""The terminal report's presentation: colour, the collect-only tree and JSON."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from cli_helpers import FLAKY, run_inprocess, write_project

from machinable.reporting.terminal import should_color, trim_traceback

YAML = "components:\n  - flaky:\n      fail: false\n      ~bad:\n        fail: true\n"
TASK = 'import machinable as ml\n\ntask = ml.Task().component("flaky", "~bad")\n'


@pytest.fixture
def cli(capsys, tmp_path: Path, monkeypatch):
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    root = write_project(tmp_path / "project", YAML, {"flaky.py": FLAKY, "tasks/sweep.py": TASK})
    return lambda *args: run_inprocess(capsys, root, *args)


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_output_that_is_not_a_terminal_has_no_colour(cli):
    assert "\x1b[" not in cli().out


def test_force_color_colours_the_report(cli, monkeypatch):
    monkeypatch.setenv("FORCE_COLOR", "1")
    out = cli().out
    assert "\x1b[31m" in out  # red: the failure
    assert "\x1b[32m" in out  # green: the passed trial


def test_no_color_wins_over_force_color_and_a_terminal(monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("FORCE_COLOR", "1")
    assert should_color(Tty()) is False


def test_a_terminal_gets_colour_unless_told_otherwise(monkeypatch):
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    monkeypatch.delenv("TERM", raising=False)
    assert should_color(Tty()) is True
    assert should_color(Tty(), "no") is False
    assert should_color(io.StringIO(), "yes") is True


def test_collect_only_shows_a_tree_of_components_and_task_files(cli, tmp_path):
    result = cli("--collect-only")
    assert result.ret == 0
    tree = result.out.split("collected 2 trials\n\n", 1)[1].splitlines()[:5]
    assert tree == [
        f"<Project {tmp_path / 'project'}>",
        "  <Component flaky>",
        "    <Trial flaky>",
        "  <TaskFile tasks/sweep.py>",
        "    <Trial tasks/sweep.py::flaky[~bad]>",
    ]


def test_collect_only_json_is_the_whole_output(cli):
    result = cli("--collect-only", "--json", "--seed", "42", "-k", "bad")
    data = json.loads(result.out)
    assert data["execution_id"] == "8gWVkz"
    assert data["deselected"] == ["flaky"]
    [trial] = data["trials"]
    assert trial["node_id"] == "tasks/sweep.py::flaky[~bad]"
    assert trial["config"] == {"fail": True}
    assert trial["versions"] == ["~bad"]
    assert isinstance(trial["seed"], int)


def test_tracebacks_leave_out_machinables_own_frames():
    import machinable.execution.protocol

    text = (
        "Traceback (most recent call last):\n"
        f'  File "{machinable.execution.protocol.__file__}", line 1, in run_trial\n'
        "    _run_class(target)\n"
        '  File "/project/flaky.py", line 8, in on_execute\n'
        "    raise ValueError\n"
        "ValueError\n"
    )
    assert trim_traceback(text) == (
        'Traceback (most recent call last):\n  File "/project/flaky.py", line 8, in on_execute\n'
        "    raise ValueError\nValueError\n"
    )
