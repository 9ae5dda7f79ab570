"""@ml.parametrize: one trial per value, stacked as a cartesian product, merged on top of the version."""

from __future__ import annotations

import sys

import pytest

import machinable as ml
from machinable.collection.expression import Expression
from machinable.collection.plan import plan_task
from machinable.errors import UsageError

YAML = """
components:
  - optimization:
      learning_rate: 0.001
      width: 2
      double: $self.width
      data: {name: cifar10, augmentation: False}
      ~mnist:
        data: {name: mnist}
      ~alexnet:
        learning_rate: 0.1
        data: {name: imagenet}
"""


def module(*decorators: str) -> str:
    lines = "\n".join(decorators)
    return f"""
import machinable as ml

{lines}
class Optimization(ml.Component):
    def on_execute(self):
        self.record["lr"] = self.config.learning_rate
        self.record.save()
"""


@pytest.fixture
def plan(make_project, tmp_path):
    """plan('@ml.parametrize(...)', ..., version=None, repeat=1) -> the trial specs of 'optimization'."""
    projects = iter(range(100))

    def make(*decorators: str, version=None, repeat: int = 1):
        sys.modules.pop("optimization", None)  # each call is a new project with its own optimization.py
        root = make_project(
            YAML, {"optimization.py": module(*decorators)}, root=tmp_path / f"p{next(projects)}"
        )
        task = ml.Task().component("optimization", version).repeat(repeat)
        return plan_task(task, ml.Project(root), global_seed=3044900027)

    return make


def ids(specs):
    return [s.node_id for s in specs]


def test_one_trial_per_value_with_a_readable_id(plan):
    specs = plan('@ml.parametrize("learning_rate", [0.1, 0.01])')
    assert ids(specs) == ["optimization[learning_rate=0.1]", "optimization[learning_rate=0.01]"]
    assert [s.config["learning_rate"] for s in specs] == [0.1, 0.01]


def test_stacked_decorators_give_the_cartesian_product_in_written_order(plan):
    specs = plan('@ml.parametrize("learning_rate", [0.1, 0.01])', '@ml.parametrize("width", [1, 2])')
    assert ids(specs) == [
        "optimization[learning_rate=0.1-width=1]",
        "optimization[learning_rate=0.1-width=2]",
        "optimization[learning_rate=0.01-width=1]",
        "optimization[learning_rate=0.01-width=2]",
    ]


def test_a_version_string_value_applies_that_version(plan):
    specs = plan('@ml.parametrize("data", ["~mnist", "~alexnet"])')
    assert ids(specs) == ["optimization[data=~mnist]", "optimization[data=~alexnet]"]
    assert [s.config["data"]["name"] for s in specs] == ["mnist", "imagenet"]
    assert [s.versions for s in specs] == [("~mnist",), ("~alexnet",)]


def test_a_dict_value_merges_into_the_mapping_under_the_key(plan):
    [spec] = plan('@ml.parametrize("data", [{"name": "svhn"}])')
    assert spec.node_id == "optimization[data.name=svhn]"
    assert spec.config["data"] == {"name": "svhn", "augmentation": False}


def test_a_dotted_name_sets_a_nested_key(plan):
    [spec] = plan('@ml.parametrize("data.augmentation", [True])')
    assert spec.node_id == "optimization[data.augmentation=true]"
    assert spec.config["data"] == {"name": "cifar10", "augmentation": True}


def test_parametrization_is_merged_on_top_of_the_version(plan):
    specs = plan('@ml.parametrize("learning_rate", [0.5])', version=["~alexnet", "~mnist"])
    assert ids(specs) == [
        "optimization[~alexnet][learning_rate=0.5]",
        "optimization[~mnist][learning_rate=0.5]",
    ]
    assert [s.config["learning_rate"] for s in specs] == [0.5, 0.5]
    assert specs[0].config["data"]["name"] == "imagenet"
    assert specs[0].versions == ("~alexnet",)


def test_references_see_the_parameter_value(plan):
    specs = plan('@ml.parametrize("width", [3, 4])')
    assert [s.config["double"] for s in specs] == [3, 4]


def test_repeats_apply_to_every_parametrization(plan):
    specs = plan('@ml.parametrize("width", [3, 4])', repeat=2)
    assert ids(specs) == [
        "optimization[width=3][r0]",
        "optimization[width=3][r1]",
        "optimization[width=4][r0]",
        "optimization[width=4][r1]",
    ]


def test_ids_replace_the_generated_parts(plan):
    specs = plan('@ml.parametrize("learning_rate", [0.1, 0.01], ids=["fast", "slow"])')
    assert ids(specs) == ["optimization[fast]", "optimization[slow]"]


def test_an_ids_function_may_keep_the_generated_part_by_returning_none(plan):
    specs = plan('@ml.parametrize("learning_rate", [0.1, 0.01], ids=lambda v: "fast" if v > 0.05 else None)')
    assert ids(specs) == ["optimization[fast]", "optimization[learning_rate=0.01]"]


def test_keywords_hold_name_equals_value_for_k(plan):
    specs = plan('@ml.parametrize("learning_rate", [0.1, 0.01], ids=["fast", "slow"])')
    assert "learning_rate=0.1" in specs[0].keywords
    chosen = [
        s.node_id for s in specs if Expression.compile("learning_rate=0.01").matches((s.node_id, *s.keywords))
    ]
    assert chosen == ["optimization[slow]"]


def test_a_trial_keeps_its_seed_when_values_are_added(plan):
    before = plan('@ml.parametrize("width", [3])')
    after = plan('@ml.parametrize("width", [1, 2, 3])')
    assert before[0].seed == after[2].seed
    assert len({s.seed for s in after}) == 3


def test_ml_execute_runs_parametrized_function_components(make_project):
    root = make_project("components:\n")

    @ml.parametrize("k", [1, 2])
    @ml.component(config={"k": 0})
    def scaled(config):
        return {"value": 10 * config.k}

    execution = ml.execute(scaled, project=root, echo=False)
    assert [t.node_id for t in execution.trials] == ["scaled[k=1]", "scaled[k=2]"]
    assert [t.records[0]["value"] for t in execution.trials] == [10, 20]


def test_a_subclass_does_not_inherit_the_parametrization():
    @ml.parametrize("k", [1, 2])
    class Base(ml.Component):
        pass

    class Child(Base):
        pass

    from machinable.components.parametrize import combinations

    assert len(combinations(Base)) == 2
    assert combinations(Child) == []


@pytest.mark.parametrize(
    "args, message",
    [
        (("", [1]), "configuration key"),
        (("k", []), "no values"),
        (("k", "abc"), "list of values"),
        (("k", [1, 2], ["one"]), "1 ids for 2 values"),
    ],
)
def test_malformed_parametrize_is_a_usage_error(args, message):
    with pytest.raises(UsageError, match=message):
        ml.parametrize(*args)


def test_parametrize_refuses_what_is_not_a_component():
    with pytest.raises(UsageError, match="put it above @component"):

        @ml.parametrize("k", [1])
        def plain(config):
            pass


def test_the_same_name_twice_is_refused():
    with pytest.raises(UsageError, match="applied twice"):

        @ml.parametrize("k", [1])
        @ml.parametrize("k", [2])
        class Twice(ml.Component):
            pass
