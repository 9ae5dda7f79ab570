"""Collection: what becomes a trial, from where, and how broken files are reported (machinable.collection.collect)."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_helpers import forget_namespace_packages, write_project

import machinable as ml
from machinable.collection.collect import collect, find_files

YAML = """
components:
  - optimization:
      learning_rate: 0.001
      ~mnist:
        learning_rate: 0.5
"""

OPTIMIZATION = """
import machinable as ml

class Optimization(ml.Component):
    pass
"""


@pytest.fixture(autouse=True)
def _forget_packages(tmp_path: Path):
    yield
    forget_namespace_packages(tmp_path)


def project(tmp_path: Path, files: dict[str, str] | None = None, yaml: str = YAML) -> ml.Project:
    return ml.Project(
        write_project(tmp_path / "project", yaml, {"optimization.py": OPTIMIZATION, **(files or {})})
    )


def node_ids(collection) -> list[str]:
    return [item.node_id for item in collection.items]


def messages(collection) -> dict[str, str]:
    return {report.nodeid: report.message for report in collection.reports}


def test_every_yaml_component_is_one_trial_with_its_defaults(tmp_path: Path):
    result = collect(project(tmp_path), global_seed=3044900027)
    assert node_ids(result) == ["optimization"]
    assert result.items[0].config == {"learning_rate": 0.001}
    assert result.reports == []


def test_components_are_discovered_in_component_modules(tmp_path: Path):
    files = {
        "components/models.py": """
            import machinable as ml
            from optimization import Optimization  # imported, not defined here: not collected twice

            class Small(ml.Component):
                pass

            @ml.component(config={"k": 1})
            def train(config):
                pass

            def helper():  # a plain function is not a component
                pass
        """,
        "extra_component.py": "import machinable as ml\n\nclass Extra(ml.Component):\n    pass\n",
    }
    result = collect(project(tmp_path, files), global_seed=1)
    assert node_ids(result) == ["optimization", "Small", "train", "Extra"]  # in path order
    assert result.items[2].config == {"k": 1}


def test_a_component_opts_out_with_machinable_collect_false(tmp_path: Path):
    files = {
        "components/bases.py": """
            import machinable as ml

            class Base(ml.Component):
                __machinable_collect__ = False

            class Concrete(Base):  # the opt-out is not inherited
                pass

            @ml.component
            def helper_component(config):
                pass
            helper_component.__machinable_collect__ = False
        """
    }
    assert node_ids(collect(project(tmp_path, files), global_seed=1)) == ["optimization", "Concrete"]


def test_machinable_yaml_may_declare_more_component_modules(tmp_path: Path):
    yaml = YAML + "collect:\n  - models/*.py\n  - lib.nets\n"
    files = {
        "models/cnn.py": "import machinable as ml\n\nclass Cnn(ml.Component):\n    pass\n",
        "lib/nets.py": "import machinable as ml\n\nclass Net(ml.Component):\n    pass\n",
        "lib/other.py": "import machinable as ml\n\nclass Ignored(ml.Component):\n    pass\n",
    }
    assert node_ids(collect(project(tmp_path, files, yaml), global_seed=1)) == ["optimization", "Net", "Cnn"]


def test_tasks_in_task_files_are_collected_with_the_file_as_prefix(tmp_path: Path):
    files = {
        "tasks/example.py": """
            import machinable as ml
            task = ml.Task().component("optimization").repeat(2)
            sweep = ml.Task().component("optimization", "~mnist")
        """,
        "task_single.py": "import machinable as ml\ntask = ml.Task().component('optimization')\n",
    }
    result = collect(project(tmp_path, files), global_seed=1)
    assert node_ids(result) == [
        "optimization",
        "task_single.py::optimization",
        "tasks/example.py::optimization[r0]",
        "tasks/example.py::optimization[r1]",
        "tasks/example.py::sweep::optimization[~mnist]",
    ]
    assert result.items[-1].config == {"learning_rate": 0.5}


def test_collecting_a_task_file_never_runs_an_execution(tmp_path: Path):
    files = {
        "tasks/example.py": """
            import machinable as ml
            task = ml.Task().component("optimization").repeat(3)
            execution = ml.execute(task, "~/results")
            raise SystemExit("the line after ml.execute must not run either")
        """
    }
    result = collect(project(tmp_path, files), global_seed=1)
    assert node_ids(result)[1:] == [f"tasks/example.py::optimization[r{i}]" for i in range(3)]
    [warning] = result.warnings
    assert warning.nodeid == "tasks/example.py"
    assert 'if __name__ == "__main__":' in warning.message
    assert result.errors == []


def test_a_main_guard_keeps_a_task_file_quiet(tmp_path: Path):
    files = {
        "tasks/example.py": """
            import machinable as ml
            task = ml.Task().component("optimization")
            if __name__ == "__main__":
                ml.execute(task)
        """
    }
    result = collect(project(tmp_path, files), global_seed=1)
    assert result.reports == []
    assert node_ids(result) == ["optimization", "tasks/example.py::optimization"]


def test_a_broken_file_is_one_collection_error_and_the_rest_is_collected(tmp_path: Path):
    files = {
        "tasks/broken.py": "import machinable as ml\nimport no_such_module_anywhere\n",
        "tasks/fine.py": "import machinable as ml\ntask = ml.Task().component('optimization')\n",
    }
    result = collect(project(tmp_path, files), global_seed=1)
    assert node_ids(result) == ["optimization", "tasks/fine.py::optimization"]
    message = messages(result)["tasks/broken.py"]
    assert "No module named 'no_such_module_anywhere'" in message
    assert 'tasks/broken.py", line 2' in message  # where, in the user's file


def test_a_bad_version_in_a_task_is_an_error_of_that_task(tmp_path: Path):
    files = {"tasks/bad.py": "import machinable as ml\ntask = ml.Task().component('optimization', '~mnst')\n"}
    result = collect(project(tmp_path, files), global_seed=1)
    assert "did you mean '~mnist'" in messages(result)["tasks/bad.py::task"]


def test_a_component_asking_for_an_unknown_fixture_is_an_error(tmp_path: Path):
    files = {
        "components/fn.py": "import machinable as ml\n\n@ml.component\ndef fn(config, datset):\n    pass\n"
    }
    result = collect(project(tmp_path, files), global_seed=1)
    assert node_ids(result) == ["optimization"]
    assert "asks for fixture 'datset', which does not exist" in messages(result)["fn"]


def test_fixtures_come_from_machinable_conf_and_collected_modules(tmp_path: Path):
    files = {
        "machinable_conf.py": "import machinable as ml\n\n@ml.fixture(scope='session')\ndef dataset():\n    return [1]\n",
        "components/fn.py": """
            import machinable as ml

            @ml.fixture
            def model(dataset):
                return len(dataset)

            @ml.component
            def fn(model):
                pass
        """,
    }
    result = collect(project(tmp_path, files), global_seed=1)
    assert result.reports == []
    assert set(result.fixtures) == {"dataset", "model"}
    assert result.fixtures["dataset"].scope == "session"


def test_a_yaml_component_found_in_a_component_module_is_collected_once(tmp_path: Path):
    yaml = "components:\n  - components.net:\n      width: 1\n"
    files = {"components/net.py": "import machinable as ml\n\nclass Net(ml.Component):\n    pass\n"}
    assert node_ids(collect(project(tmp_path, files, yaml), global_seed=1)) == ["components.net"]


def test_paths_restrict_collection_to_those_files(tmp_path: Path):
    files = {
        "tasks/a.py": "import machinable as ml\ntask = ml.Task().component('optimization')\n",
        "tasks/b.py": "import no_such_module_anywhere\n",  # not imported at all
    }
    proj = project(tmp_path, files)
    result = collect(proj, global_seed=1, paths=[proj.root / "tasks" / "a.py"])
    assert node_ids(result) == ["tasks/a.py::optimization"]
    assert result.reports == []


def test_repeat_multiplies_every_trial(tmp_path: Path):
    files = {"tasks/a.py": "import machinable as ml\ntask = ml.Task().component('optimization').repeat(2)\n"}
    result = collect(project(tmp_path, files), global_seed=1, repeat=2)
    assert node_ids(result) == ["optimization[r0]", "optimization[r1]"] + [
        f"tasks/a.py::optimization[r{i}]" for i in range(4)
    ]


def test_hidden_and_virtualenv_folders_are_not_searched(tmp_path: Path):
    root = write_project(
        tmp_path / "project",
        files={
            ".venv/lib/tasks/x.py": "",
            "node_modules/task_y.py": "",
            "tasks/__init__.py": "",
            "tasks/real.py": "",
            "components/__init__.py": "",
            "components/c.py": "",
        },
    )
    found = find_files(root)
    assert [p.relative_to(root).as_posix() for p in found.task_files] == ["tasks/real.py"]
    assert [p.relative_to(root).as_posix() for p in found.component_modules] == ["components/c.py"]


def test_a_thousand_parametrized_components_give_ten_thousand_trials(tmp_path: Path):
    # The time this takes is measured by benchmarks/run.py (DESIGN.md §7), not here.
    classes = "".join(
        f"@ml.parametrize('lr', {[j / 10 for j in range(10)]})\nclass C{i}(ml.Component):\n    pass\n\n"
        for i in range(1000)
    )
    proj = project(tmp_path, {"components/many.py": "import machinable as ml\n\n" + classes})
    result = collect(proj, global_seed=1)
    assert len(result.items) == 10_001
    assert len({item.node_id for item in result.items}) == 10_001
