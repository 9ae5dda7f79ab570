"""The guide's project through the real console script, the way a pytest user would drive it."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from cli_helpers import Result, copy_example_project, run_subprocess

# The guide's component with a configuration that cannot work: no samples means a division by zero.
BROKEN_TASK = """\
import machinable as ml

task = ml.Task().component("optimization", [{"samples": 0}, {"samples": 8}])
"""

EXAMPLE_IDS = [
    "optimization",
    "tasks/example.py::optimization[r0]",
    "tasks/example.py::optimization[r1]",
    "tasks/example.py::optimization[r2]",
]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return copy_example_project(tmp_path / "example_project")


@pytest.fixture
def broken_project(project: Path) -> Path:
    (project / "tasks" / "broken.py").write_text(BROKEN_TASK)
    return project


def final_line(result: Result) -> str:
    """The summary line: the last line, or the one above the results table a run with repeats prints (the
    example project's task repeats its trial three times)."""
    return next((line for line in reversed(result.lines) if line.startswith("=")), result.lines[-1])


def test_machinable_runs_every_trial_of_the_project(project: Path):
    result = run_subprocess(project, script=True)
    assert result.ret == 0, result.out + result.err
    assert result.lines[0].startswith("=") and "machinable session starts" in result.lines[0]
    assert f"project: {project}" in result.out
    # the example project keeps its results where its settings say: ./results
    storage = re.escape(str(project / "results"))
    assert re.search(rf"^execution \w{{6}} \(seed \d+\), storage {storage}, engine local$", result.out, re.M)
    assert "collected 4 trials" in result.out
    assert re.search(r"^optimization \.\s+\[ 25%\]$", result.out, re.M)
    assert re.search(r"^tasks/example.py \.\.\.\s+\[100%\]$", result.out, re.M)
    assert re.fullmatch(r"=+ 4 passed in \d+\.\d\d s =+", final_line(result))
    assert result.err == ""


def test_k_selects_trials_by_keyword(project: Path):
    result = run_subprocess(project, "-k", "optimization and not tasks")
    assert result.ret == 0
    assert "collected 4 trials / 3 deselected / 1 selected" in result.out
    assert "4 passed" not in result.out
    assert re.fullmatch(r"=+ 1 passed, 3 deselected in \S+ s =+", final_line(result))


def test_k_optimization_selects_every_trial_of_the_component(project: Path):
    result = run_subprocess(project, "-k", "optimization")
    assert result.ret == 0
    assert "4 passed" in final_line(result)


def test_collect_only_quiet_lists_node_ids_then_the_count(project: Path):
    result = run_subprocess(project, "--collect-only", "-q")
    assert result.ret == 0
    assert result.lines[:4] == EXAMPLE_IDS
    assert re.fullmatch(r"4 trials collected in \S+ s", final_line(result))


def test_exitfirst_stops_after_the_first_failed_trial(broken_project: Path):
    result = run_subprocess(broken_project, "-x")
    assert result.ret == 1
    assert "ZeroDivisionError" in result.out
    assert "stopping after 1 failure" in result.out
    assert re.search(r"^tasks/broken.py F\s+\[ 33%\]$", result.out, re.M)  # 2 of 6 trials ran
    assert re.fullmatch(r"=+ 1 passed, 1 failed in \S+ s =+", final_line(result))


def test_last_failed_reruns_only_the_failures(broken_project: Path):
    first = run_subprocess(broken_project)
    assert first.ret == 1
    assert "FAILED tasks/broken.py::optimization[samples=0] - ZeroDivisionError" in first.out

    again = run_subprocess(broken_project, "--lf")
    assert again.ret == 1
    assert "run-last-failure: rerun previous 1 failure" in again.out
    assert "collected 6 trials / 5 deselected / 1 selected" in again.out
    assert re.fullmatch(r"=+ 1 failed, 5 deselected in \S+ s =+", final_line(again))


def test_last_failed_reruns_a_failure_with_the_seed_it_failed_with(broken_project: Path):
    first = run_subprocess(broken_project)
    again = run_subprocess(broken_project, "--lf")
    header = re.compile(r"^execution (\w{6}) \(seed (\d+)\)", re.M)
    trial_seed = re.compile(r"^seed (\d+), trial", re.M)
    assert header.search(again.out).groups() == header.search(first.out).groups()
    assert trial_seed.search(again.out).group(1) == trial_seed.search(first.out).group(1)
    fresh = run_subprocess(broken_project, "--lf", "--seed", "7")
    assert header.search(fresh.out).group(2) != header.search(first.out).group(2)


def test_last_failed_without_failures_runs_everything_and_says_so(project: Path):
    assert run_subprocess(project).ret == 0
    result = run_subprocess(project, "--lf")
    assert result.ret == 0
    assert "run-last-failure: no previously failed trials, not deselecting items." in result.out
    assert "4 passed" in final_line(result)


def test_collect_only_json_gives_the_seeds_the_run_will_use(project: Path):
    listed = run_subprocess(project, "--collect-only", "--json", "--seed", "42")
    assert listed.ret == 0
    data = json.loads(listed.out)
    assert data["execution_id"] == "8gWVkz"  # DESIGN.md §4: seed 42
    assert [t["node_id"] for t in data["trials"]] == EXAMPLE_IDS
    first = data["trials"][0]
    assert first["component"] == "optimization"
    assert first["config"]["learning_rate"] == 0.3

    ran = run_subprocess(project, "--seed", "42", "--junitxml", "report.xml", "-q")
    assert ran.ret == 0
    xml = (project / "report.xml").read_text()
    for trial in data["trials"]:
        assert f'<property name="seed" value="{trial["seed"]}" />' in xml


def test_python_dash_m_machinable_is_the_same_command(project: Path):
    result = run_subprocess(project, "--version")
    assert result.ret == 0
    assert re.fullmatch(r"machinable \d+\.\d+\.\d+\n", result.out)


def test_bad_input_is_one_error_line_and_exit_code_4(project: Path):
    result = run_subprocess(project, "optimisation")
    assert result.ret == 4
    assert result.err == (
        "ERROR: unknown target 'optimisation' (did you mean 'optimization'?): "
        "not a component, node id, module or task file\n"
    )
