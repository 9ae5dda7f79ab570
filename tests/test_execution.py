"""Tasks and ml.execute: trials, node ids, seeds, failure isolation, interruption, modes (the guide's promises)."""

import pytest
from guide import GUIDE_YAML

import machinable as ml
from machinable import ids
from machinable.errors import UsageError
from machinable.execution.execute import ExecutionFailed, ExecutionInterrupted

OPTIMIZATION = """
import random
import machinable as ml

class Optimization(ml.Component):
    def on_execute(self):
        if self.config.get("explode"):
            raise RuntimeError("exploded")
        if self.config.get("interrupt"):
            raise KeyboardInterrupt
        for step in range(3):
            self.record["step"] = step
            self.record["value"] = random.random()
            self.record.save()
"""


@pytest.fixture
def project(make_project):
    return make_project(GUIDE_YAML, {"optimization.py": OPTIMIZATION})


# The guide's project with defaults for the keys that tests below set in their versions: a version may only
# change keys the configuration has (config/strict.py). x, flag and note default to null, which takes any type,
# so each value is written in the node id exactly as given.
DECLARED_KEYS = """\
      a: 0
      b: 0
      explode: false
      interrupt: false
      x: null
      flag: null
      note: null
"""


@pytest.fixture
def declared(make_project):
    anchor = "      learning_rate: 0.001\n"
    assert anchor in GUIDE_YAML
    yaml = GUIDE_YAML.replace(anchor, anchor + DECLARED_KEYS)
    return make_project(yaml, {"optimization.py": OPTIMIZATION})


def run(project, task, **kwargs):
    return ml.execute(task, project=project, echo=False, **kwargs)


def configs(execution):
    return [t.config for t in execution.trials]


def test_the_guide_example_repeats_a_component_in_three_independent_trials(project):
    execution = run(project, ml.Task().component("optimization").repeat(3))
    assert [t.node_id for t in execution.trials] == [
        "optimization[r0]",
        "optimization[r1]",
        "optimization[r2]",
    ]
    assert [t.status for t in execution.trials] == ["passed"] * 3
    assert len({t.seed for t in execution.trials}) == 3
    assert all(len(t.records) == 3 for t in execution.trials)
    assert [t.flags["REPEAT_NUMBER"] for t in execution.trials] == [0, 1, 2]


def test_an_execution_has_a_six_character_id_that_encodes_its_seed(project):
    execution = run(project, "optimization", seed=42)
    assert execution.id == "8gWVkz"
    assert execution.seed == ids.decode("8gWVkz")
    assert run(project, "optimization", seed="OY1p1o").seed == 22490017876


def test_a_dict_version_adjusts_the_configuration(project):
    execution = run(
        project,
        ml.Task().component("optimization", version={"data": {"name": "mnist"}, "learning_rate": 0.5}),
    )
    assert configs(execution) == [{"learning_rate": 0.5, "data": {"name": "mnist", "augmentation": False}}]


def test_two_entries_of_one_component_compare_two_learning_rates(project):
    task = (
        ml.Task(name="learning_rates")
        .component("optimization", {"learning_rate": 0.1})
        .component("optimization", {"learning_rate": 0.01})
    )
    execution = run(project, task)
    assert execution.name == "learning_rates"
    assert [c["learning_rate"] for c in configs(execution)] == [0.1, 0.01]
    assert [t.node_id for t in execution.trials] == [
        "optimization[learning_rate=0.1]",
        "optimization[learning_rate=0.01]",
    ]


def test_a_list_version_gives_one_trial_per_element(project):
    execution = run(
        project, ml.Task().component("optimization", [{"learning_rate": lr} for lr in (0.1, 0.01)])
    )
    assert [c["learning_rate"] for c in configs(execution)] == [0.1, 0.01]


def test_a_tuple_version_merges_its_elements(declared):
    merged = run(declared, ml.Task().component("optimization", ({"a": 1}, {"a": 2, "b": 3})))
    direct = run(declared, ml.Task().component("optimization", {"a": 2, "b": 3}))
    assert configs(merged) == configs(direct)


def test_named_versions_and_the_guide_merge_example(project):
    execution = run(
        project, ml.Task().component("optimization", ("~alexnet", "~mnist", {"learning_rate": 0.5}))
    )
    trial = execution.trials[0]
    assert trial.config == {"learning_rate": 0.5, "data": {"name": "mnist", "augmentation": False}}
    assert trial.versions == ("~alexnet", "~mnist")
    assert trial.node_id == "optimization[~alexnet-~mnist-learning_rate=0.5]"


def test_a_mixin_version_and_a_yaml_string_version(project):
    mixin = run(project, ml.Task().component("optimization", "_imagenet_")).trials[0]
    assert mixin.config["data"] == {"name": "imagenet", "augmentation": False, "size": 224}
    yaml = run(project, ml.Task().component("optimization", "learning_rate: 0.3\ndata: {name: svhn}")).trials[
        0
    ]
    assert yaml.config == {"learning_rate": 0.3, "data": {"name": "svhn", "augmentation": False}}


def test_the_original_tuple_form_of_component_works(project):
    execution = run(project, ml.Task().component(("optimization", "~mnist")))
    assert configs(execution)[0]["data"]["name"] == "mnist"


def test_identical_entries_get_distinct_node_ids_and_seeds(project):
    execution = run(project, ml.Task().component("optimization").component("optimization"))
    assert [t.node_id for t in execution.trials] == ["optimization", "optimization#2"]
    assert execution.trials[0].seed != execution.trials[1].seed


def test_a_trial_seed_does_not_change_when_other_trials_are_added_or_removed(project):
    small = run(project, ml.Task().component("optimization", [{"learning_rate": 0.1}]), seed=5)
    large = run(
        project,
        ml.Task()
        .component("optimization", "~mnist")
        .component("optimization", [{"learning_rate": 0.3}, {"learning_rate": 0.1}]),
        seed=5,
    )
    seeds = {t.node_id: t.seed for t in large.trials}
    assert seeds["optimization[learning_rate=0.1]"] == small.trials[0].seed


def test_the_same_seed_and_task_give_identical_configs_seeds_and_records(project):
    task = ml.Task().component("optimization", ["~mnist", "~alexnet"]).repeat(2)

    def digest(execution):
        return [
            (t.node_id, t.config, t.seed, [{k: v for k, v in r.items() if k != "_time"} for r in t.records])
            for t in execution.trials
        ]

    assert digest(run(project, task, seed="OY1p1o")) == digest(run(project, task, seed="OY1p1o"))


def test_a_failing_trial_does_not_stop_the_others(declared):
    task = ml.Task().component("optimization", [{"explode": True}, {"explode": False}])
    execution = run(declared, task)
    assert [t.status for t in execution.trials] == ["failed", "passed"]
    assert "RuntimeError: exploded" in execution.trials[0].error
    assert execution.trials[1].error is None


def test_raise_on_failure_raises_after_all_trials_ran(declared):
    task = ml.Task().component("optimization", [{"explode": True}, {"explode": False}])
    with pytest.raises(ExecutionFailed, match="1 of 2 trials did not pass") as info:
        run(declared, task, raise_on_failure=True)
    assert [t.status for t in info.value.execution.trials] == ["failed", "passed"]


def test_ctrl_c_stops_cleanly_and_keeps_finished_results(declared):
    task = ml.Task().component("optimization", [{"a": 1}, {"interrupt": True}, {"a": 2}])
    with pytest.raises(ExecutionInterrupted) as info:
        run(declared, task)
    execution = info.value.execution
    assert [t.status for t in execution.trials] == ["passed", "interrupted"]
    assert len(execution.trials[0].records) == 3


def test_a_component_name_string_is_a_task(project):
    assert [t.node_id for t in run(project, "optimization").trials] == ["optimization"]


def test_a_component_class_can_be_given_directly(project):
    class Inline(ml.Component):
        def on_execute(self):
            self.record["x"] = 1

    trial = run(project, ml.Task().component(Inline)).trials[0]
    assert trial.status == "passed", trial.error
    assert trial.component == "Inline"


def test_a_component_redefined_in_a_notebook_runs_its_new_code_in_the_same_project(project):
    shared = ml.Project(project)

    def define(value):
        class Inline(ml.Component):
            def on_execute(self):
                self.record["value"] = value

        return Inline

    first = ml.execute(ml.Task().component(define(1)), project=shared, echo=False).trials[0]
    second = ml.execute(ml.Task().component(define(2)), project=shared, echo=False).trials[0]
    assert (first.records[0]["value"], second.records[0]["value"]) == (1, 2)


def test_the_projects_own_class_given_by_object_keeps_its_yaml_name_and_versions(project):
    own = ml.Project(project).component("optimization").load()

    trial = run(project, ml.Task().component(own, "~mnist")).trials[0]
    assert (trial.component, trial.node_id) == ("optimization", "optimization[~mnist]")
    assert trial.config["data"] == {"name": "mnist", "augmentation": False}


def test_code_named_like_a_yaml_component_with_other_code_is_an_error(project):
    class optimization(ml.Component):  # noqa: N801  (named like the yaml entry on purpose)
        pass

    with pytest.raises(UsageError, match="named 'optimization' like the machinable.yaml component"):
        run(project, ml.Task().component(optimization))


def test_a_function_may_supply_the_code_of_a_yaml_entry_that_only_has_configuration(make_project):
    root = make_project("components:\n  - fit:\n      lr: 0.5\n")

    @ml.component
    def fit(config):
        return {"lr": config.lr}

    trial = ml.execute(fit, project=root, echo=False).trials[0]
    assert trial.status == "passed", trial.error
    assert trial.records[0]["lr"] == 0.5


@pytest.mark.parametrize("mode", ["DEV", "dev", "", "default"])
def test_documented_modes_are_accepted(project, monkeypatch, mode):
    monkeypatch.setenv("MACHINABLE_MODE", mode)
    assert run(project, "optimization").trials[0].status == "passed"


def test_dev_mode_keeps_results_in_memory_and_skips_the_code_backup(project, tmp_path, monkeypatch):
    monkeypatch.setenv("MACHINABLE_MODE", "DEV")
    execution = run(project, "optimization", storage=str(tmp_path / "results"))
    assert execution.storage.startswith("memory://")
    assert not (tmp_path / "results").exists()


def test_an_unknown_mode_is_a_clear_error(project, monkeypatch):
    monkeypatch.setenv("MACHINABLE_MODE", "production")
    with pytest.raises(UsageError, match="MACHINABLE_MODE='production' is not a mode"):
        run(project, "optimization")


def test_results_agree_with_what_storage_reads_back(project, tmp_path):
    execution = run(project, ml.Task().component("optimization").repeat(2), storage=str(tmp_path / "results"))
    stored = ml.Storage(str(tmp_path / "results")).get(execution.id)
    assert stored.seed == execution.seed
    assert [(t.node_id, t.seed, t.config, t.status) for t in stored.trials] == [
        (t.node_id, t.seed, t.config, t.status) for t in execution.trials
    ]
    assert [t.records for t in stored.trials] == [t.records for t in execution.trials]


def test_bad_task_arguments_are_clear_errors():
    with pytest.raises(UsageError, match="repeat"):
        ml.Task().repeat(0)
    with pytest.raises(UsageError, match="component name"):
        ml.Task().component(3)
    with pytest.raises(UsageError, match="execute\\(\\) takes an ml.Task"):
        ml.execute(3)


def test_running_the_same_seed_again_into_the_same_storage_keeps_both_executions(project, tmp_path):
    results = str(tmp_path / "results")
    first = run(project, "optimization", seed=42, storage=results)
    second = run(project, "optimization", seed=42, storage=results)
    assert first.id == second.id == "8gWVkz"
    assert (first.folder, second.folder) == ("8gWVkz", "8gWVkz-2")
    storage = ml.Storage(results)
    assert storage.get("8gWVkz").folder == "8gWVkz-2"
    assert storage.get("8gWVkz-2").id == "8gWVkz"
    assert len(storage.executions()) == 2
    assert storage.get("8gWVkz").trials[0].records == second.trials[0].records


@pytest.mark.parametrize(
    ("value", "text"),
    [(1e-05, "1e-05"), (True, "true"), ("true", '"true"'), (None, "null"), ("null", '"null"'), ("", '""'),
     ("1e-5", '"1e-5"'), ("[1, 2]", '"[1, 2]"'), ([1, 2], "[1,2]"), ("two\nlines", '"two\\nlines"'), ("ü", "ü")],
)  # fmt: skip
def test_a_value_in_a_node_id_is_written_so_that_different_values_never_share_an_id(declared, value, text):
    execution = run(declared, ml.Task().component("optimization", {"x": value}))
    assert execution.trials[0].node_id == f"optimization[x={text}]"


def test_a_string_and_the_value_it_spells_are_different_trials_with_different_seeds(declared):
    execution = run(declared, ml.Task().component("optimization", [{"flag": True}, {"flag": "true"}]), seed=1)
    assert [t.node_id for t in execution.trials] == ["optimization[flag=true]", 'optimization[flag="true"]']
    assert execution.trials[0].seed != execution.trials[1].seed


def test_a_very_long_version_is_shortened_in_the_node_id_and_stays_distinct(declared):
    long = [{"note": "x" * 300}, {"note": "x" * 300 + "y"}]
    nodes = [t.node_id for t in run(declared, ml.Task().component("optimization", long)).trials]
    assert len(set(nodes)) == 2 and all(len(node) < 100 for node in nodes)


def test_repeats_multiply_and_each_repeat_is_its_own_trial(project):
    execution = run(project, ml.Task().component("optimization").repeat(2).repeat(3))
    assert [t.flags["REPEAT_TOTAL"] for t in execution.trials] == [6] * 6
    assert len({t.seed for t in execution.trials}) == 6


def test_an_all_digit_execution_id_given_as_seed_is_that_id(project):
    assert run(project, "optimization", seed="123456").id == "123456"


def test_the_project_may_be_a_pathlike_a_subfolder_or_the_yaml_file(project):
    (project / "sub").mkdir()
    for where in (project, project / "sub", project / "machinable.yaml", str(project)):
        assert ml.execute("optimization", project=where, echo=False).trials[0].status == "passed"


def test_a_task_cannot_set_a_flag_that_machinable_sets_for_every_trial():
    with pytest.raises(UsageError, match="flag 'SEED' is set by machinable for every trial"):
        ml.Task().component("optimization", flags={"SEED": 1})
    with pytest.raises(UsageError, match="flags must be a dict"):
        ml.Task().component("optimization", flags=["DEBUG"])


def test_user_flags_reach_the_trial_beside_machinables_own(project):
    trial = run(project, ml.Task().component("optimization", flags={"DEBUG": True})).trials[0]
    assert trial.flags["DEBUG"] is True
    assert trial.flags["NODE_ID"] == "optimization" and trial.flags["SEED"] == trial.seed


def test_an_empty_task_is_a_clear_error(project):
    with pytest.raises(UsageError, match="the task has no components"):
        run(project, ml.Task())
