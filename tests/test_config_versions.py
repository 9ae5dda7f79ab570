"""The version algebra of DESIGN.md §3, through ``Project.config`` / ``Project.resolve``."""

from __future__ import annotations

from pathlib import Path

import pytest
from guide import make_project

from machinable.config.errors import YamlSyntaxError
from machinable.config.project import Project, ResolvedVersion
from machinable.errors import ConfigError, UnknownVersionError


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return make_project(tmp_path)


# -- golden cases ----------------------------------------------------------------------------------------------


def test_golden_tuple_of_named_versions_and_dict(project: Project) -> None:
    config = project.config("optimization", ("~alexnet", "~mnist", {"learning_rate": 0.5}))
    assert config == {"learning_rate": 0.5, "data": {"name": "mnist", "augmentation": False}}


def test_golden_tuple_of_dicts_equals_the_last_merged_over_the_first(tmp_path: Path) -> None:
    # Dict versions may only change keys the configuration has (config/strict.py): declare a and b.
    project = make_project(tmp_path, "components:\n  - optimization:\n      a: 0\n      b: 0\n")
    merged = project.config("optimization", ({"a": 1}, {"a": 2, "b": 3}))
    assert merged == project.config("optimization", {"a": 2, "b": 3})
    assert merged["a"] == 2 and merged["b"] == 3


def test_golden_list_of_two_dicts_gives_two_resolved_versions(project: Project) -> None:
    resolved = project.resolve("optimization", [{"learning_rate": lr} for lr in (0.1, 0.01)])
    assert [r.config["learning_rate"] for r in resolved] == [0.1, 0.01]
    assert [r.element for r in resolved] == [{"learning_rate": 0.1}, {"learning_rate": 0.01}]


def test_golden_example_project() -> None:
    example = Path(__file__).resolve().parent.parent / "example_project"
    config = Project(example).config("optimization", ("~alexnet", "~mnist", {"learning_rate": 0.5}))
    assert config["learning_rate"] == 0.5
    assert config["data"] == {"name": "mnist", "augmentation": False}


# -- each kind of version ----------------------------------------------------------------------------------------


def test_no_version_gives_the_defaults_without_version_keys(project: Project) -> None:
    assert project.config("optimization") == {
        "learning_rate": 0.001,
        "data": {"name": "cifar10", "augmentation": False},
    }


def test_a_dict_version_is_deep_merged_over_the_defaults(project: Project) -> None:
    config = project.config("optimization", {"data": {"name": "svhn"}})
    assert config["data"] == {"name": "svhn", "augmentation": False}


def test_a_named_version_is_a_diff_against_the_defaults(project: Project) -> None:
    assert project.config("optimization", "~alexnet") == {
        "learning_rate": 0.1,
        "data": {"name": "imagenet", "augmentation": False},
    }


def test_a_mixin_version_merges_the_mixins_configuration(project: Project) -> None:
    config = project.config("optimization", "_imagenet_")
    assert config["data"] == {"name": "imagenet", "augmentation": False, "size": 224}


def test_a_yaml_string_version_is_parsed_as_a_mapping(project: Project) -> None:
    config = project.config("optimization", "{learning_rate: 0.2, data: {augmentation: true}}")
    assert config["learning_rate"] == 0.2
    assert config["data"] == {"name": "cifar10", "augmentation": True}


def test_a_multiline_yaml_string_version_works(project: Project) -> None:
    version = "learning_rate: 0.3\ndata:\n  name: svhn\n"
    assert project.config("optimization", version)["data"]["name"] == "svhn"


def test_later_elements_of_a_tuple_win(project: Project) -> None:
    assert project.config("optimization", ("~mnist", "~alexnet"))["data"]["name"] == "imagenet"
    assert project.config("optimization", ("~alexnet", "~mnist"))["data"]["name"] == "mnist"


def test_lists_are_replaced_not_merged(tmp_path: Path) -> None:
    project = make_project(tmp_path, "components:\n  - net:\n      layers: [1, 2, 3]\n")
    assert project.config("net", {"layers": [4]}) == {"layers": [4]}


def test_a_mapping_replaces_a_scalar_and_a_scalar_replaces_a_mapping(project: Project) -> None:
    # A plain key must keep its default's type (config/strict.py); '+key' sets a key whatever it holds.
    assert project.config("optimization", {"+data": "none"})["data"] == "none"
    assert project.config("optimization", {"+learning_rate": {"start": 1}})["learning_rate"] == {"start": 1}


def test_a_list_element_may_be_a_tuple(project: Project) -> None:
    resolved = project.resolve("optimization", [("~alexnet", "~mnist"), "~mnist"])
    assert [r.config["learning_rate"] for r in resolved] == [0.1, 0.001]
    assert [r.versions for r in resolved] == [("~alexnet", "~mnist"), ("~mnist",)]


def test_resolved_versions_record_applied_names_in_order(project: Project) -> None:
    element = ("~alexnet", {"learning_rate": 0.5}, "_imagenet_", "~mnist")
    (resolved,) = project.resolve("optimization", element)
    assert resolved.versions == ("~alexnet", "_imagenet_", "~mnist")
    assert resolved.element == ("~alexnet", {"learning_rate": 0.5}, "_imagenet_", "~mnist")


def test_resolve_without_a_list_gives_one_result(project: Project) -> None:
    assert project.resolve("optimization") == [ResolvedVersion(project.config("optimization"), (), None)]


def test_an_empty_list_gives_no_configurations(project: Project) -> None:
    assert project.resolve("optimization", []) == []


# -- nested versions and scoping -----------------------------------------------------------------------------

NESTED_YAML = """
components:
  - net:
      width: 10
      depth: 2
      ~small:
        width: 5
      ~wide:
        width: 100
        ~small:        # a version carried by ~wide: "small" relative to wide
          width: 50
        ~shallow:
          depth: 1
"""


def test_a_version_may_carry_nested_versions(tmp_path: Path) -> None:
    project = make_project(tmp_path, NESTED_YAML)
    assert project.config("net", ("~wide", "~shallow")) == {"width": 100, "depth": 1}


def test_a_carried_version_shadows_the_components_version_of_the_same_name(tmp_path: Path) -> None:
    project = make_project(tmp_path, NESTED_YAML)
    assert project.config("net", ("~wide", "~small"))["width"] == 50
    assert project.config("net", "~small")["width"] == 5


def test_nested_versions_are_not_visible_before_their_carrier(tmp_path: Path) -> None:
    project = make_project(tmp_path, NESTED_YAML)
    with pytest.raises(UnknownVersionError, match="'~shallow'"):
        project.config("net", ("~shallow", "~wide"))


def test_dict_versions_can_carry_versions_too(tmp_path: Path) -> None:
    project = make_project(tmp_path, NESTED_YAML)
    config = project.config("net", ({"~tiny": {"width": 1}}, "~tiny"))
    assert config == {"width": 1, "depth": 2}


def test_version_keys_never_reach_the_configuration(tmp_path: Path) -> None:
    project = make_project(tmp_path, NESTED_YAML)
    for version in (None, "~wide", ("~wide", "~small"), {"~x": {"a": 1}}):
        assert not [key for key in project.config("net", version) if key.startswith("~")]


def test_an_empty_named_version_changes_nothing_but_is_recorded(tmp_path: Path) -> None:
    project = make_project(tmp_path, "components:\n  - net:\n      a: 1\n      ~same:\n")
    (resolved,) = project.resolve("net", "~same")
    assert resolved.config == {"a": 1}
    assert resolved.versions == ("~same",)


# -- bad versions ---------------------------------------------------------------------------------------------


def test_an_unknown_named_version_lists_the_available_ones(project: Project) -> None:
    with pytest.raises(UnknownVersionError) as info:
        project.config("optimization", "~mnst")
    message = str(info.value)
    assert "'~mnst'" in message
    assert "did you mean '~mnist'?" in message
    assert "available versions: ~mnist, ~alexnet" in message


def test_an_unknown_mixin_version_names_the_declared_mixins(project: Project) -> None:
    with pytest.raises(UnknownVersionError, match="unknown mixin 'imagenett'.*did you mean 'imagenet'"):
        project.config("optimization", "_imagenett_")


def test_a_yaml_string_that_is_not_a_mapping_is_an_error(project: Project) -> None:
    with pytest.raises(ConfigError, match="version string 'just words' of component 'optimization' is not"):
        project.config("optimization", "just words")


def test_a_version_name_without_tilde_suggests_the_tilde(project: Project) -> None:
    with pytest.raises(ConfigError, match="did you mean '~mnist'"):
        project.config("optimization", "mnist")


def test_a_yaml_string_with_a_syntax_error_names_the_string_the_component_and_the_place(
    project: Project,
) -> None:
    with pytest.raises(YamlSyntaxError) as info:
        project.config("optimization", "{a: [1, 2}")
    assert str(info.value).startswith(
        "version string '{a: [1, 2}' of component 'optimization' is not valid YAML (line 1, column 10: "
    )
    assert isinstance(info.value, ConfigError)


def test_a_key_written_twice_in_a_yaml_string_version_is_an_error(project: Project) -> None:
    with pytest.raises(YamlSyntaxError, match="key 'learning_rate' is written twice"):
        project.config("optimization", "{learning_rate: 0.1, learning_rate: 0.2}")


def test_a_yaml_string_version_reads_exponent_notation_as_a_float(project: Project) -> None:
    assert project.config("optimization", "learning_rate: 1e-4")["learning_rate"] == 0.0001


def test_spaces_around_a_version_name_are_ignored(project: Project) -> None:
    assert project.config("optimization", " ~mnist ") == project.config("optimization", "~mnist")
    assert project.config("optimization", "_imagenet_ ")["data"]["size"] == 224


def test_a_list_inside_a_tuple_is_an_error(project: Project) -> None:
    with pytest.raises(ConfigError, match="a list inside a tuple"):
        project.resolve("optimization", ("~mnist", [{"a": 1}, {"a": 2}]))


def test_a_list_inside_a_list_is_an_error(project: Project) -> None:
    with pytest.raises(ConfigError, match="a list inside a list"):
        project.resolve("optimization", [[{"a": 1}]])


def test_config_refuses_a_list_and_points_to_task(project: Project) -> None:
    with pytest.raises(ConfigError, match=r"ml\.Task\(\)\.component\('optimization', \[\.\.\.\]\)"):
        project.config("optimization", [{"a": 1}, {"a": 2}])


def test_a_version_of_another_type_is_an_error(project: Project) -> None:
    with pytest.raises(ConfigError, match="has type int"):
        project.config("optimization", 3)


def test_a_named_version_that_is_not_a_mapping_is_an_error(tmp_path: Path) -> None:
    project = make_project(tmp_path, "components:\n  - net:\n      ~odd: 5\n")
    with pytest.raises(ConfigError, match="version '~odd' of component 'net' is 5, not a mapping"):
        project.config("net", "~odd")
