"""Overrides and sweeps from the command line and ``ml.execute(overrides=)``; strict keys and types; ``--cfg``.

``machinable linreg lr=0.1`` sets a key, ``lr=0.1,0.01`` sweeps it (one trial each), ``+key=v`` adds a key and
``~key`` removes one. What the user writes may only change keys the configuration has, with values of the
default's type; a mistake is one line on stderr and exit code 4 (or a MachinableError from ``ml.execute``).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from cli_helpers import run_inprocess, write_project

import machinable as ml
from machinable.config.errors import ConfigTypeError, UnknownKeyError
from machinable.errors import MachinableError, UsageError

YAML = """
components:
  - linreg:
      lr: 0.001
      steps: 10
      name: base
      layers: [32]
      opt: {name: sgd, momentum: 0.9}
      data: {name: cifar, size: 32}
      extra: null
      copy: $self.lr
      ~fast:
        lr: 0.1
        steps: 1
      ~wide:
        width: 128
mixins:
  - imagenet:
      pretrained: true
"""

# A trial leaves a file behind, so a test can tell whether anything ran.
LINREG = """
from pathlib import Path

import machinable as ml


class Linreg(ml.Component):
    def on_execute(self):
        (Path(__file__).parent / "ran").touch()
"""


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return write_project(tmp_path / "project", YAML, {"linreg.py": LINREG})


@pytest.fixture
def cli(capsys, root):
    return lambda *args: run_inprocess(capsys, root, *args)


@pytest.fixture
def configs(cli):
    """configs(*args) -> {node_id: config} of the selected trials, from ``--cfg --json``."""

    def read(*args: str) -> dict:
        result = cli("--cfg", "--json", *args)
        assert result.ret == 0, result.err
        return json.loads(result.out)

    return read


@pytest.fixture
def config(configs):
    """config(*args) -> the configuration of the one selected trial."""

    def read(*args: str) -> dict:
        [only] = configs(*args).values()
        return only

    return read


def run(root: Path, task, **kwargs) -> ml.Execution:
    return ml.execute(task, project=root, echo=False, **kwargs)


def collected(cli, *args: str) -> list[str]:
    """The node ids ``--collect-only -q`` lists."""
    result = cli("--collect-only", "-q", *args)
    assert result.ret == 0, result.err
    return result.lines[: result.lines.index("")]


def assert_usage_error(result, *fragments: str) -> None:
    """Exit code 4 and one line on stderr holding every fragment."""
    assert result.ret == 4
    assert result.err.startswith("ERROR: ") and result.err.count("\n") == 1, result.err
    for fragment in fragments:
        assert fragment in result.err


# -- overrides -------------------------------------------------------------------------------------------------


def test_an_override_sets_a_key(config):
    assert config("linreg", "lr=0.1")["lr"] == 0.1


def test_an_override_changes_what_the_trial_runs_with(cli, tmp_path):
    results = tmp_path / "results"
    assert cli("-q", "linreg", "lr=0.1", "--storage", str(results)).ret == 0
    [execution] = ml.Storage(str(results)).executions()
    [trial] = execution.trials
    assert trial.node_id == "linreg"  # one value is not a sweep: the node id stays
    assert trial.config["lr"] == 0.1


@pytest.mark.parametrize(
    ("override", "key", "value"),
    [
        ("lr=1e-3", "lr", 0.001),
        ("name=mnist", "name", "mnist"),
        ("layers=[64,64]", "layers", [64, 64]),
        ('name="1"', "name", "1"),
        ("name=''", "name", ""),
        ("name=null", "name", None),
    ],
)
def test_override_values_are_yaml_flow_values(config, override, key, value):
    assert config("linreg", override)[key] == value


def test_a_float_in_exponent_notation_is_a_float(config):
    assert isinstance(config("linreg", "lr=1e-3")["lr"], float)


def test_a_mapping_value_is_merged_into_a_mapping_default(config):
    assert config("linreg", "opt={name: adam}")["opt"] == {"name": "adam", "momentum": 0.9}


def test_a_dotted_key_sets_a_nested_key(config):
    assert config("linreg", "data.name=mnist")["data"] == {"name": "mnist", "size": 32}


def test_an_override_in_brackets_is_spelled_the_same(configs):
    assert configs("linreg[lr=0.1]") == {"linreg[lr=0.1]": configs("linreg", "lr=0.1")["linreg"]}


def test_an_override_is_applied_after_the_named_version(config):
    fast = config("linreg[~fast]", "lr=0.5")
    assert (fast["lr"], fast["steps"]) == (0.5, 1)  # ~fast sets lr 0.1 and steps 1


def test_an_override_is_applied_before_references_resolve(config):
    assert config("linreg", "lr=0.2")["copy"] == 0.2


def test_an_override_is_applied_after_parametrizations(capsys, tmp_path):
    module = LINREG.replace("class Linreg", '@ml.parametrize("lr", [0.2])\nclass Linreg')
    root = write_project(tmp_path / "parametrized", YAML, {"linreg.py": module})
    result = run_inprocess(capsys, root, "--cfg", "--json", "linreg", "lr=0.5")
    assert result.ret == 0, result.err
    assert {n: c["lr"] for n, c in json.loads(result.out).items()} == {"linreg[lr=0.2]": 0.5}


def test_ml_execute_applies_overrides_to_every_trial(root):
    task = ml.Task().component("linreg", ["~fast", "~wide"])
    execution = run(root, task, overrides=["steps=3"])
    assert [t.config["steps"] for t in execution.trials] == [3, 3]


# -- sweeps ----------------------------------------------------------------------------------------------------


def test_several_values_sweep_one_trial_each(configs):
    assert {n: c["lr"] for n, c in configs("linreg", "lr=0.1,0.01").items()} == {
        "linreg[lr=0.1]": 0.1,
        "linreg[lr=0.01]": 0.01,
    }


def test_range_sweeps_integers_like_python(configs):
    values = [c["steps"] for c in configs("linreg", "steps=range(1,4)").values()]
    assert values == [1, 2, 3]
    assert all(type(v) is int for v in values)


def test_range_with_a_float_step_sweeps_floats(configs):
    assert [c["lr"] for c in configs("linreg", "lr=range(0,1,0.25)").values()] == [0.0, 0.25, 0.5, 0.75]


def test_two_swept_keys_give_the_product_in_the_order_written(cli):
    assert collected(cli, "linreg", "lr=0.1,0.01", "steps=1,2") == [
        "linreg[lr=0.1-steps=1]",
        "linreg[lr=0.1-steps=2]",
        "linreg[lr=0.01-steps=1]",
        "linreg[lr=0.01-steps=2]",
    ]
    assert collected(cli, "linreg", "steps=1,2", "lr=0.1,0.01")[:2] == [
        "linreg[steps=1-lr=0.1]",
        "linreg[steps=1-lr=0.01]",
    ]


def test_a_list_is_one_value(configs):
    assert {n: c["layers"] for n, c in configs("linreg", "layers=[64,64]").items()} == {"linreg": [64, 64]}


def test_commas_between_lists_sweep_the_lists(configs):
    assert [c["layers"] for c in configs("linreg", "layers=[64,64],[128]").values()] == [[64, 64], [128]]


def test_a_swept_key_is_a_keyword_for_dash_k(cli):
    assert collected(cli, "linreg", "lr=0.1,0.01", "-k", "lr=0.1") == ["linreg[lr=0.1]"]


def test_collect_only_shows_the_expansion(cli):
    result = cli("--collect-only", "linreg", "lr=0.1,0.01")
    assert result.ret == 0
    assert "    <Trial linreg[lr=0.1]>" in result.lines
    assert "    <Trial linreg[lr=0.01]>" in result.lines


def test_a_sweep_runs_every_trial(cli, tmp_path):
    results = tmp_path / "results"
    assert cli("-q", "linreg", "lr=0.1,0.01", "--storage", str(results)).ret == 0
    [execution] = ml.Storage(str(results)).executions()
    assert sorted((t.node_id, t.config["lr"]) for t in execution.trials) == [
        ("linreg[lr=0.01]", 0.01),
        ("linreg[lr=0.1]", 0.1),
    ]


def test_adding_a_value_to_a_sweep_keeps_the_other_trials_seeds(cli):
    def seeds(*args: str) -> dict[str, int]:
        result = cli("--collect-only", "--json", "--seed", "42", "linreg", *args)
        return {t["node_id"]: t["seed"] for t in json.loads(result.out)["trials"]}

    before, after = seeds("lr=0.1,0.2"), seeds("lr=0.1,0.2,0.3")
    assert list(after) == ["linreg[lr=0.1]", "linreg[lr=0.2]", "linreg[lr=0.3]"]
    assert {n: after[n] for n in before} == before
    assert len(set(after.values())) == 3


def test_ml_execute_sweeps_overrides(root):
    execution = run(root, "linreg", overrides=["lr=0.1,0.01"])
    assert [(t.node_id, t.config["lr"]) for t in execution.trials] == [
        ("linreg[lr=0.1]", 0.1),
        ("linreg[lr=0.01]", 0.01),
    ]


def test_a_version_string_in_override_spelling_sweeps(root):
    execution = run(root, ml.Task().component("linreg", "lr=0.1,0.01"))
    assert [(t.node_id, t.config["lr"]) for t in execution.trials] == [
        ("linreg[lr=0.1]", 0.1),
        ("linreg[lr=0.01]", 0.01),
    ]


def test_a_version_string_combines_a_named_version_and_a_sweep(root):
    execution = run(root, ml.Task().component("linreg", "~fast-lr=0.5,0.05"))
    assert [(t.config["lr"], t.config["steps"]) for t in execution.trials] == [(0.5, 1), (0.05, 1)]


# -- strict keys -----------------------------------------------------------------------------------------------

UNKNOWN_STPES = (
    "unknown configuration key 'stpes' for component 'linreg'",
    "did you mean 'steps'",
    "+stpes",
)


@pytest.mark.parametrize("args", [["linreg[stpes=5]"], ["linreg", "stpes=5"]])
def test_an_unknown_key_on_the_command_line_is_a_usage_error(cli, args):
    assert_usage_error(cli(*args), *UNKNOWN_STPES)


@pytest.mark.parametrize("version", [{"stpes": 5}, "stpes: 5"])
def test_an_unknown_key_in_a_task_version_is_an_error(root, version):
    with pytest.raises(UnknownKeyError) as info:
        run(root, ml.Task().component("linreg", version))
    assert all(fragment in str(info.value) for fragment in UNKNOWN_STPES)


def test_an_unknown_key_in_ml_execute_overrides_is_an_error(root):
    with pytest.raises(UnknownKeyError, match="unknown configuration key 'stpes'"):
        run(root, "linreg", overrides=["stpes=5"])


def test_an_unknown_nested_key_is_named_by_its_dotted_path(cli, root):
    assert_usage_error(cli("linreg", "data.nmae=x"), "'data.nmae'", "did you mean 'data.name'", "+data.nmae")
    with pytest.raises(UnknownKeyError, match="'data.nmae'"):
        run(root, ml.Task().component("linreg", {"data": {"nmae": "x"}}))


def test_plus_adds_a_key(config, root):
    assert config("linreg", "+note=x")["note"] == "x"
    [trial] = run(root, ml.Task().component("linreg", {"+note": "x"})).trials
    assert trial.config["note"] == "x"


def test_tilde_removes_a_key(config, root):
    assert "extra" not in config("linreg", "~extra")
    [trial] = run(root, ml.Task().component("linreg", {"~extra": None})).trials
    assert "extra" not in trial.config


def test_removing_a_key_there_is_not_is_a_usage_error(cli):
    assert_usage_error(cli("linreg", "~nope"), "cannot remove configuration key 'nope'")


def test_a_named_version_may_add_keys(config, root):
    assert config("linreg[~wide]")["width"] == 128
    [trial] = run(root, ml.Task().component("linreg", "~wide")).trials
    assert trial.config["width"] == 128


def test_a_mixin_may_add_keys(config, root):
    assert config("linreg[_imagenet_]")["pretrained"] is True
    [trial] = run(root, ml.Task().component("linreg", "_imagenet_")).trials
    assert trial.config["pretrained"] is True


def test_an_override_may_set_a_key_its_named_version_added(cli, config):
    assert config("linreg[~wide]", "width=3")["width"] == 3
    assert_usage_error(cli("linreg", "width=3"), "unknown configuration key 'width'")


def test_a_parametrization_may_add_keys(capsys, tmp_path):
    module = LINREG.replace("class Linreg", '@ml.parametrize("depth", [2])\nclass Linreg')
    root = write_project(tmp_path / "parametrized", YAML, {"linreg.py": module})
    result = run_inprocess(capsys, root, "--cfg", "--json", "linreg")
    assert result.ret == 0, result.err
    assert json.loads(result.out)["linreg[depth=2]"]["depth"] == 2


# -- types -----------------------------------------------------------------------------------------------------


def test_a_value_of_the_wrong_type_is_a_usage_error_naming_key_default_and_value(cli, root):
    assert_usage_error(cli("linreg", "lr=abc"), "lr expects a float (default 0.001), got 'abc'", "'linreg'")
    with pytest.raises(ConfigTypeError, match="lr expects a float"):
        run(root, "linreg", overrides=["lr=abc"])


def test_an_int_for_a_float_default_is_fine(config):
    assert config("linreg", "lr=1")["lr"] == 1


def test_a_null_default_takes_anything(config):
    assert config("linreg", "extra=[1,2]")["extra"] == [1, 2]
    assert config("linreg", "extra=abc")["extra"] == "abc"


def test_a_mapping_default_takes_only_a_mapping(cli):
    assert_usage_error(cli("linreg", "data=5"), "data expects a mapping", "got 5")


def test_a_float_for_an_int_default_is_an_error(cli):
    assert_usage_error(cli("linreg", "steps=1.5"), "steps expects an int (default 10), got 1.5")


# -- --cfg -----------------------------------------------------------------------------------------------------


def test_cfg_prints_each_trials_configuration_as_yaml_and_runs_nothing(cli, root, tmp_path):
    results = tmp_path / "results"
    result = cli("--cfg", "linreg", "lr=0.1,0.01", "--storage", str(results))
    assert result.ret == 0
    assert [line for line in result.lines if line.startswith("# ")] == [
        "# linreg[lr=0.1]",
        "# linreg[lr=0.01]",
    ]
    assert [doc["lr"] for doc in yaml.safe_load_all(result.out)] == [0.1, 0.01]
    assert not (root / "ran").exists()
    assert not results.exists()


def test_cfg_shows_the_resolved_configuration(cli):
    result = cli("--cfg", "linreg[~fast]")
    assert result.ret == 0
    assert result.lines[0] == "# linreg[~fast]"
    assert yaml.safe_load(result.out) == {
        "lr": 0.1,
        "steps": 1,
        "name": "base",
        "layers": [32],
        "opt": {"name": "sgd", "momentum": 0.9},
        "data": {"name": "cifar", "size": 32},
        "extra": None,
        "copy": 0.1,
    }


def test_cfg_json_prints_a_json_object_of_node_ids_and_configurations(cli, root):
    result = cli("--cfg", "--json", "linreg", "lr=0.1,0.01")
    assert result.ret == 0
    parsed = json.loads(result.out)
    assert list(parsed) == ["linreg[lr=0.1]", "linreg[lr=0.01]"]
    assert parsed["linreg[lr=0.1]"]["copy"] == 0.1
    assert not (root / "ran").exists()


# -- malformed overrides ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["lr="], "lr="),
        (["=1"], "=1"),
        (["lr=range(1)"], "lr=range(1)"),
        (["lr=range(a,b)"], "lr=range(a,b)"),
        (["lr=1,,2"], "lr=1,,2"),
        (["lr=[1,2"], "lr=[1,2"),
        (["lr=1,2", "lr=3,4"], "lr=3,4"),
    ],
)
def test_a_malformed_override_is_a_usage_error_naming_it(cli, root, args, named):
    assert_usage_error(cli("linreg", *args), f"'{named}'")
    assert not (root / "ran").exists()


@pytest.mark.parametrize(
    "overrides",
    [["lr="], ["=1"], ["lr=range(1)"], ["lr=range(a,b)"], ["lr=1,,2"], ["lr=[1,2"], ["lr=1,2", "lr=3,4"]],
)
def test_ml_execute_refuses_a_malformed_override(root, overrides):
    with pytest.raises(MachinableError, match="override '"):
        run(root, "linreg", overrides=overrides)
    assert not (root / "ran").exists()


def test_ml_execute_takes_a_list_of_overrides_not_a_string(root):
    with pytest.raises(UsageError, match="list of strings"):
        run(root, "linreg", overrides="lr=0.1")
