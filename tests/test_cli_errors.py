"""Exit codes and error reports: collection errors (2), internal errors (3), bad input (4)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from cli_helpers import FLAKY, run_inprocess, write_project

from machinable.cli.main import main

YAML = "components:\n  - flaky:\n      fail: false\n"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return write_project(tmp_path / "project", YAML, {"flaky.py": FLAKY})


@pytest.fixture
def cli(capsys, root):
    return lambda *args: run_inprocess(capsys, root, *args)


@pytest.fixture
def broken(root: Path) -> Path:
    (root / "tasks").mkdir()
    (root / "tasks" / "broken.py").write_text(
        "import machinable as ml\n\nraise RuntimeError('cannot even import')\n"
    )
    return root


def test_a_collection_error_is_reported_per_file_and_nothing_runs(cli, broken):
    result = cli()
    assert result.ret == 2
    assert "collected 1 trial / 1 error" in result.out
    assert re.search(r"^_+ ERROR collecting tasks/broken.py _+$", result.out, re.M)
    assert 'tasks/broken.py", line 3, in <module>' in result.out
    assert "ERROR tasks/broken.py - RuntimeError: cannot even import" in result.out
    assert re.search(r"^!+ Interrupted: 1 error during collection !+$", result.out, re.M)
    assert re.fullmatch(r"=+ 1 error in \S+ s =+", result.lines[-1])


def test_a_node_id_in_a_file_that_does_not_import_is_reported_as_its_collection_error(cli, broken):
    result = cli("tasks/broken.py::flaky")
    assert result.ret == 2
    assert "ERROR collecting tasks/broken.py" in result.out


def test_ctrl_c_while_collecting_is_exit_code_2_and_says_so(capsys, tmp_path):
    root = write_project(tmp_path / "project", files={"task_slow.py": "raise KeyboardInterrupt\n"})
    result = run_inprocess(capsys, root)
    assert result.ret == 2
    assert re.search(r"^!+ KeyboardInterrupt !+$", result.out, re.M)
    assert re.fullmatch(r"=+ no trials ran in \S+ s =+", result.lines[-1])


def test_continue_on_collection_errors_runs_the_rest(cli, broken):
    result = cli("--continue-on-collection-errors")
    assert result.ret == 1  # the error still counts against the run
    assert re.fullmatch(r"=+ 1 passed, 1 error in \S+ s =+", result.lines[-1])


def test_a_broken_machinable_yaml_component_is_an_error_of_that_component(capsys, tmp_path):
    root = write_project(tmp_path / "p", "components:\n  - missing_module:\n      a: 1\n")
    result = run_inprocess(capsys, root)
    assert result.ret == 2
    assert "ERROR collecting missing_module" in result.out
    assert "module 'missing_module' not found" in result.out


def test_a_task_file_calling_execute_at_import_time_is_a_warning(cli, root):
    (root / "task_now.py").write_text(
        "import machinable as ml\n\ntask = ml.Task().component('flaky')\nml.execute(task)\n"
    )
    result = cli()
    assert result.ret == 0
    assert re.search(
        r"^=+ warnings summary =+$\ntask_now.py\n  task_now.py calls ml.execute\(\)", result.out, re.M
    )
    assert 'if __name__ == "__main__":' in result.out
    assert re.fullmatch(r"=+ 2 passed, 1 warning in \S+ s =+", result.lines[-1])


@pytest.mark.parametrize(
    "args, message",
    [
        (["flaki"], "ERROR: unknown target 'flaki' (did you mean 'flaky'?)"),
        (["nowhere/file.py"], "ERROR: file or folder not found: nowhere/file.py"),
        (["-k", "flaky and"], "ERROR: -k expression 'flaky and': at column 10: expected"),
        (
            ["--seed", "not-an-id"],
            "ERROR: --seed takes an integer, an execution id or 'last': 'not-an-id' is",
        ),
        (["--storage", "nosuch://x"], "ERROR: --storage nosuch://x: unknown storage protocol 'nosuch'"),
        (["--engine", "proces"], "ERROR: unknown engine 'proces' (did you mean 'process'?)"),
        (["--repeat", "0"], "ERROR: argument --repeat: expected a positive integer, got '0'"),
        (["--no-such-option"], "ERROR: unrecognized arguments: --no-such-option"),
        (["flaky[~nope]"], "ERROR: component 'flaky' has no version '~nope'"),
        (["-p", "no_such_plugin_module"], "ERROR: plugin 'no_such_plugin_module' cannot be imported"),
        (["flaky.py::nope"], "ERROR: not found: flaky.py::nope (no collected trial has that node id)"),
        (["--json"], "ERROR: --json only works with --collect-only"),
    ],
)
def test_bad_input_is_one_error_line_and_exit_code_4(cli, args, message):
    result = cli(*args)
    assert result.ret == 4
    assert result.err.startswith(message)
    assert result.err.count("\n") == 1
    assert "Traceback" not in result.err + result.out


def test_outside_a_project_is_a_usage_error(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main([]) == 4
    assert capsys.readouterr().err.startswith("ERROR: no machinable.yaml found in")


def test_help_and_version_work_outside_a_project(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("machinable ")
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for option in ("--collect-only", "-k EXPR", "--lf", "--junitxml", "--seed", "--engine", "-p NAME"):
        assert option in out


def test_an_internal_error_is_exit_code_3_with_a_traceback(cli, root):
    (root / "machinable_conf.py").write_text(
        "def machinable_collection_finish(session):\n    raise RuntimeError('a plugin bug')\n"
    )
    result = cli()
    assert result.ret == 3
    assert "INTERNAL ERROR" in result.err
    assert "Traceback (most recent call last)" in result.err
    assert "RuntimeError: a plugin bug" in result.err
