"""``settings:`` in machinable.yaml: the project's defaults for storage, engine, timeout and seed.

An explicit argument wins, then ``MACHINABLE_STORAGE`` / ``MACHINABLE_ENGINE``, then the setting; a relative
storage path is relative to the project root; ``MACHINABLE_MODE=dev`` keeps results in memory.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from cli_helpers import run_inprocess, write_project

import machinable as ml
from machinable.errors import ConfigError

LINREG = """
import machinable as ml


class Linreg(ml.Component):
    def on_execute(self):
        pass
"""

SLOW = """
import time

import machinable as ml


class Slow(ml.Component):
    def on_execute(self):
        time.sleep(self.config.seconds)
"""


@pytest.fixture
def project(tmp_path: Path):
    """project(settings) -> the root of a project whose machinable.yaml ends with ``settings`` (YAML lines)."""

    def make(settings: str = "") -> Path:
        yaml = "components:\n  - linreg\n  - slow:\n      seconds: 5.0\n" + settings
        return write_project(tmp_path / "project", yaml, {"linreg.py": LINREG, "slow.py": SLOW})

    return make


def header(result) -> str:
    """The header line naming the execution, storage and engine."""
    [line] = [line for line in result.lines if line.startswith("execution ")]
    return line


def execution_ids(storage: Path) -> list[str]:
    return [e.id for e in ml.Storage(str(storage)).executions()]


def run(root: Path, task="linreg", **kwargs) -> ml.Execution:
    return ml.execute(task, project=root, echo=False, **kwargs)


# -- storage ---------------------------------------------------------------------------------------------------


def test_the_storage_setting_keeps_the_commands_results_in_the_project(capsys, project):
    root = project("settings:\n  storage: ./results\n")
    assert run_inprocess(capsys, root, "-q", "linreg", "--seed", "42").ret == 0
    assert execution_ids(root / "results") == ["8gWVkz"]


def test_a_relative_storage_setting_is_relative_to_the_project_not_the_working_directory(
    capsys, project, monkeypatch
):
    root = project("settings:\n  storage: ./results\n")
    (root / "sub").mkdir()
    monkeypatch.chdir(root / "sub")
    assert run_inprocess(capsys, root, "-q", "linreg", "--seed", "42").ret == 0
    assert execution_ids(root / "results") == ["8gWVkz"]
    assert not (root / "sub" / "results").exists()


def test_ml_execute_uses_the_storage_setting_from_any_working_directory(project, monkeypatch, tmp_path):
    root = project("settings:\n  storage: ./results\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    execution = run(root, seed=42)
    assert execution.storage == str(root / "results")
    assert execution_ids(root / "results") == ["8gWVkz"]
    assert list(elsewhere.iterdir()) == []


def test_machinable_storage_overrides_the_setting(capsys, project, monkeypatch, tmp_path):
    root = project("settings:\n  storage: ./results\n")
    monkeypatch.setenv("MACHINABLE_STORAGE", str(tmp_path / "env"))
    assert run_inprocess(capsys, root, "-q", "linreg", "--seed", "42").ret == 0
    run(root, seed=42)
    assert len(execution_ids(tmp_path / "env")) == 2
    assert not (root / "results").exists()


def test_an_explicit_storage_wins_over_the_environment_and_the_setting(
    capsys, project, monkeypatch, tmp_path
):
    root = project("settings:\n  storage: ./results\n")
    monkeypatch.setenv("MACHINABLE_STORAGE", str(tmp_path / "env"))
    given = tmp_path / "given"
    assert run_inprocess(capsys, root, "-q", "linreg", "--storage", str(given)).ret == 0
    run(root, storage=str(given))
    assert len(execution_ids(given)) == 2
    assert not (root / "results").exists()
    assert not (tmp_path / "env").exists()


def test_dev_mode_keeps_results_in_memory_despite_the_setting(capsys, project, monkeypatch):
    root = project("settings:\n  storage: ./results\n")
    monkeypatch.setenv("MACHINABLE_MODE", "dev")
    result = run_inprocess(capsys, root, "linreg")
    assert result.ret == 0
    assert "storage memory://" in header(result)
    assert run(root).storage.startswith("memory://")
    assert not (root / "results").exists()


# -- engine ----------------------------------------------------------------------------------------------------


def test_the_engine_setting_is_the_default_engine(capsys, project):
    root = project("settings:\n  engine: process:2\n")
    assert header(run_inprocess(capsys, root, "--co", "linreg")).endswith("engine process:2")
    assert run(root).engine == "process:2"


def test_machinable_engine_overrides_the_setting(capsys, project, monkeypatch):
    root = project("settings:\n  engine: process:2\n")
    monkeypatch.setenv("MACHINABLE_ENGINE", "process:3")
    assert header(run_inprocess(capsys, root, "--co", "linreg")).endswith("engine process:3")


def test_an_explicit_engine_wins_over_the_environment_and_the_setting(capsys, project, monkeypatch):
    root = project("settings:\n  engine: process:2\n")
    monkeypatch.setenv("MACHINABLE_ENGINE", "process:3")
    assert header(run_inprocess(capsys, root, "--co", "linreg", "--engine", "local")).endswith("engine local")
    assert run(root, engine="local").engine == "local"


# -- timeout and seed ------------------------------------------------------------------------------------------


def test_the_timeout_setting_is_the_default_per_trial_timeout(capsys, project):
    root = project("settings:\n  timeout: 0.2\n")
    result = run_inprocess(capsys, root, "slow")
    assert result.ret == 1
    assert "timed out after 0.2 s" in result.out
    [trial] = run(root, "slow").trials
    assert trial.status == "failed"
    assert "timed out after 0.2 s" in trial.error


def test_an_explicit_timeout_wins_over_the_setting(capsys, project):
    root = project("settings:\n  timeout: 0.2\n")
    result = run_inprocess(capsys, root, "slow", "seconds=0.1", "--timeout", "0.05")
    assert result.ret == 1
    assert "timed out after 0.05 s" in result.out


def test_the_seed_setting_fixes_the_execution_id(capsys, project):
    root = project("settings:\n  seed: 42\n")
    assert re.match(r"execution 8gWVkz ", header(run_inprocess(capsys, root, "--co", "linreg")))
    assert run(root).id == "8gWVkz"


def test_an_explicit_seed_wins_over_the_setting(capsys, project):
    root = project("settings:\n  seed: 42\n")
    assert re.match(r"execution OY1p1o ", header(run_inprocess(capsys, root, "--co", "--seed", "OY1p1o")))
    assert run(root, seed="OY1p1o").id == "OY1p1o"


# -- mistakes --------------------------------------------------------------------------------------------------


def test_an_unknown_setting_is_an_error_naming_the_file_and_line(capsys, project):
    root = project("settings:\n  seed: 42\n  stroage: ./results\n")
    result = run_inprocess(capsys, root, "linreg")
    assert result.ret == 4
    assert result.err.count("\n") == 1
    assert f"{root / 'machinable.yaml'}:7: unknown setting 'stroage'" in result.err
    assert "did you mean 'storage'" in result.err
    with pytest.raises(ConfigError, match="unknown setting 'stroage'"):
        run(root)


def test_a_timeout_setting_that_is_not_a_positive_number_is_an_error(capsys, project):
    root = project("settings:\n  timeout: soon\n")
    result = run_inprocess(capsys, root, "linreg")
    assert result.ret == 4
    assert "settings.timeout must be a positive number of seconds" in result.err


def test_a_timeout_setting_must_be_a_finite_number_of_seconds(tmp_path):
    from machinable.config.project import Project
    from machinable.errors import ConfigError

    (tmp_path / "machinable.yaml").write_text("settings:\n  timeout: .inf\ncomponents:\n  - fit: {}\n")
    with pytest.raises(ConfigError, match="settings.timeout must be a positive number of seconds"):
        Project(tmp_path)
