"""Choosing trials: TARGETS, -k, --lf and --ff."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_helpers import FLAKY, run_inprocess, write_project

YAML = """
components:
  - flaky:
      fail: false
      ~bad:
        fail: true
  - other:
      fail: false
"""

FILES = {
    "flaky.py": FLAKY,
    "other.py": FLAKY.replace("class Flaky", "class Other"),
    "tasks/sweep.py": """
        import machinable as ml

        task = ml.Task().component("flaky", [{"fail": False}, {"fail": True}])
    """,
    "tasks/more.py": """
        import machinable as ml

        task = ml.Task().component("other")
    """,
}


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return write_project(tmp_path / "project", YAML, FILES)


@pytest.fixture
def collected(capsys, root):
    """collected(*args) -> the node ids ``machinable --co -q ARGS`` lists."""

    def run(*args: str) -> list[str]:
        result = run_inprocess(capsys, root, "--co", "-q", *args)
        assert result.ret == 0, result.out + result.err
        return result.out.split("\n\n")[0].splitlines()

    return run


def test_no_target_collects_the_whole_project(collected):
    assert collected() == [
        "flaky",
        "other",
        "tasks/more.py::other",
        "tasks/sweep.py::flaky[fail=false]",
        "tasks/sweep.py::flaky[fail=true]",
    ]


def test_a_component_name_selects_all_its_trials(collected):
    assert collected("flaky") == [
        "flaky",
        "tasks/sweep.py::flaky[fail=false]",
        "tasks/sweep.py::flaky[fail=true]",
    ]


def test_a_node_id_selects_that_trial(collected):
    assert collected("tasks/sweep.py::flaky[fail=true]") == ["tasks/sweep.py::flaky[fail=true]"]


def test_a_task_file_selects_its_trials(collected, root, monkeypatch):
    assert collected("tasks/more.py") == ["tasks/more.py::other"]
    monkeypatch.chdir(root / "tasks")
    assert collected("sweep.py") == ["tasks/sweep.py::flaky[fail=false]", "tasks/sweep.py::flaky[fail=true]"]


def test_a_module_path_selects_its_component(collected):
    assert collected("other.py") == ["other"]


def test_a_folder_selects_everything_below_it(collected):
    assert collected("tasks") == [
        "tasks/more.py::other",
        "tasks/sweep.py::flaky[fail=false]",
        "tasks/sweep.py::flaky[fail=true]",
    ]


def test_a_named_version_target_is_planned_on_the_spot(capsys, root):
    result = run_inprocess(capsys, root, "flaky[~bad]", "-q")
    assert result.ret == 1
    assert "FAILED flaky[~bad] - ValueError: asked to fail" in result.out


def test_a_version_target_may_set_values(collected):
    assert collected("other[fail=true]", "flaky[~bad-fail=false]") == [
        "other[fail=true]",
        "flaky[~bad-fail=false]",
    ]


def test_k_matches_node_ids_and_keywords(collected):
    assert collected("-k", "fail=true") == ["tasks/sweep.py::flaky[fail=true]"]
    assert collected("-k", "more or (flaky and not tasks)") == ["flaky", "tasks/more.py::other"]
    assert collected("-k", "OTHER and not TASKS") == ["other"]  # case-insensitive


def test_k_combines_with_targets(collected):
    assert collected("tasks", "-k", "not flaky") == ["tasks/more.py::other"]


def test_last_failed_reruns_failures_and_failed_first_orders_them_first(capsys, root, collected):
    assert run_inprocess(capsys, root, "-q").ret == 1
    assert collected("--lf") == ["tasks/sweep.py::flaky[fail=true]"]
    assert collected("--ff")[0] == "tasks/sweep.py::flaky[fail=true]"
    assert len(collected("--ff")) == 5


def test_a_trial_that_passes_again_leaves_the_last_failures(capsys, tmp_path):
    fixable = """
        from pathlib import Path
        import machinable as ml

        @ml.component
        def fixable():
            assert Path(__file__).with_name("fixed").exists(), "not fixed yet"
    """
    root = write_project(tmp_path / "fixable", files={"components/fixable.py": fixable})
    assert run_inprocess(capsys, root, "-q").ret == 1
    (root / "components" / "fixed").touch()
    assert run_inprocess(capsys, root, "--lf", "-q").ret == 0
    result = run_inprocess(capsys, root, "--lf", "--co")
    assert "run-last-failure: no previously failed trials, not deselecting items." in result.out


def test_cache_clear_forgets_the_last_failures(capsys, root):
    run_inprocess(capsys, root, "-q")
    result = run_inprocess(capsys, root, "--lf", "--cache-clear", "--co")
    assert "run-last-failure: no previously failed trials" in result.out
    assert "collected 5 trials" in result.out


def test_collect_only_does_not_change_the_cache(capsys, root, collected):
    run_inprocess(capsys, root, "-q", "--seed", "42")
    collected("--seed", "7")
    assert "execution 8gWVkz" in run_inprocess(capsys, root, "--co", "--seed", "last").out
    assert collected("--lf") == ["tasks/sweep.py::flaky[fail=true]"]


def test_a_version_target_reads_values_as_machinable_yaml_does():
    from machinable.collection.select import parse_version

    assert parse_version("lr=1e-05") == {"lr": 1e-05}
    assert parse_version("~alexnet-data.name=mnist") == ("~alexnet", {"data": {"name": "mnist"}})
    assert parse_version('flag="true"') == {"flag": "true"}
