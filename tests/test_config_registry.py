"""The sections of machinable.yaml: entry forms, groups, aliases, inheritance and mixins."""

from __future__ import annotations

from pathlib import Path

import pytest
from guide import make_project

from machinable.errors import ConfigError, UnknownComponentError, UnknownVersionError

# -- entries ---------------------------------------------------------------------------------------------------


def test_components_keep_the_order_of_the_file(tmp_path: Path) -> None:
    project = make_project(tmp_path, "components:\n  - b:\n  - a: {x: 1}\n  - c\n")
    assert list(project.components) == ["b", "a", "c"]


def test_a_bare_name_is_a_component_without_configuration(tmp_path: Path) -> None:
    project = make_project(tmp_path, "components:\n  - plain\n")
    assert project.config("plain") == {}
    assert project.component("plain").module == "plain"


def test_entries_know_their_line(tmp_path: Path) -> None:
    project = make_project(tmp_path, "components:\n  - first:\n      a: 1\n  - second\nmixins:\n  - m:\n")
    assert project.component("first").line == 2
    assert project.component("second").line == 4
    assert project.mixins["m"].line == 6


def test_an_entry_with_a_misindented_configuration_is_explained(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"machinable\.yaml:2: .*found several keys \(net, width\)"):
        make_project(tmp_path, "components:\n  - net:\n    width: 1\n")


def test_a_configuration_that_is_not_a_mapping_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(
        ConfigError, match=r"machinable\.yaml:2: the configuration of 'net' must be a mapping"
    ):
        make_project(tmp_path, "components:\n  - net: 5\n")


def test_a_component_declared_twice_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r":3: component 'net' is declared twice \(first at .*:2\)"):
        make_project(tmp_path, "components:\n  - net\n  - net\n")


def test_an_empty_file_is_an_empty_project(tmp_path: Path) -> None:
    project = make_project(tmp_path, "")
    assert project.components == {} and project.mixins == {}


def test_unknown_component_suggests_a_close_name(tmp_path: Path) -> None:
    project = make_project(tmp_path, "components:\n  - optimization\n  - other\n")
    with pytest.raises(UnknownComponentError) as info:
        project.component("optimisation")
    assert "unknown component 'optimisation' (did you mean 'optimization'?)" in str(info.value)
    assert "registered components: optimization, other" in str(info.value)


# -- groups and aliases --------------------------------------------------------------------------------------


def test_a_group_section_prefixes_module_and_name(tmp_path: Path) -> None:
    project = make_project(
        tmp_path,
        """
        components:models:
          - baseline:
              width: 1
        """,
    )
    entry = project.component("models.baseline")
    assert (entry.module, project.config("models.baseline")) == ("models.baseline", {"width": 1})


def test_a_short_name_of_a_group_component_suggests_the_full_name(tmp_path: Path) -> None:
    project = make_project(tmp_path, "components:models:\n  - baseline\n")
    with pytest.raises(UnknownComponentError, match="did you mean 'models.baseline'"):
        project.component("baseline")


def test_an_alias_registers_a_module_under_a_name(tmp_path: Path) -> None:
    project = make_project(tmp_path, "components:\n  - experiments.fitting.linear=linear:\n      a: 1\n")
    entry = project.component("linear")
    assert (entry.name, entry.module) == ("linear", "experiments.fitting.linear")


def test_an_alias_in_a_group_keeps_its_name(tmp_path: Path) -> None:
    project = make_project(tmp_path, "components:models:\n  - resnet.v2=resnet\n")
    assert project.component("resnet").module == "models.resnet.v2"


def test_an_invalid_module_path_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not a valid Python module path"):
        make_project(tmp_path, "components:\n  - 2fast\n")


# -- inheritance --------------------------------------------------------------------------------------------------

INHERITANCE_YAML = """
components:
  - child^base:
      width: 2
      ~deep: {depth: 20}
  - base:
      width: 1
      depth: 3
      ~wide: {width: 100}
      ~deep: {depth: 10, width: 5}
"""


def test_a_child_merges_its_configuration_over_its_parents(tmp_path: Path) -> None:
    project = make_project(tmp_path, INHERITANCE_YAML)
    assert project.config("child") == {"width": 2, "depth": 3}
    assert project.component("child").parent == "base"


def test_a_child_inherits_its_parents_versions(tmp_path: Path) -> None:
    project = make_project(tmp_path, INHERITANCE_YAML)
    assert project.config("child", "~wide")["width"] == 100


def test_a_childs_version_is_merged_over_the_parents_version_of_the_same_name(tmp_path: Path) -> None:
    project = make_project(tmp_path, INHERITANCE_YAML)
    assert project.config("child", "~deep") == {"width": 5, "depth": 20}


def test_an_inheritance_cycle_names_the_cycle(tmp_path: Path) -> None:
    project = make_project(tmp_path, "components:\n  - a^b\n  - b^c\n  - c^a\n")
    with pytest.raises(
        ConfigError,
        match="inheritance cycle: component 'a' -> component 'b' -> component 'c' -> component 'a'",
    ):
        project.config("a")


def test_an_unknown_parent_is_an_error_with_a_suggestion(tmp_path: Path) -> None:
    project = make_project(tmp_path, "components:\n  - child^bsae\n  - base\n")
    with pytest.raises(
        UnknownComponentError,
        match=r":2: component 'child' inherits from unknown component 'bsae' \(did you mean 'base'\?\)",
    ):
        project.config("child")


def test_a_parent_in_the_same_group_is_found_by_its_short_name(tmp_path: Path) -> None:
    project = make_project(tmp_path, "components:models:\n  - base: {a: 1}\n  - deep^base: {b: 2}\n")
    assert project.config("models.deep") == {"a": 1, "b": 2}


def test_one_broken_component_does_not_break_the_others(tmp_path: Path) -> None:
    project = make_project(tmp_path, "components:\n  - broken^nowhere\n  - fine: {a: 1}\n")
    assert project.config("fine") == {"a": 1}


# -- mixins ---------------------------------------------------------------------------------------------------

MIXIN_YAML = """
components:
  - net:
      _mixins_: [imagenet, logging]
      data: {augmentation: True}
      level: debug
mixins:
  - imagenet:
      data: {name: imagenet, size: 224}
  - logging:
      level: info
      every: 10
"""


def test_mixins_are_merged_underneath_the_component(tmp_path: Path) -> None:
    project = make_project(tmp_path, MIXIN_YAML)
    assert project.config("net") == {
        "data": {"name": "imagenet", "size": 224, "augmentation": True},
        "level": "debug",
        "every": 10,
    }


def test_the_mixins_key_is_consumed_not_kept(tmp_path: Path) -> None:
    project = make_project(tmp_path, MIXIN_YAML)
    assert "_mixins_" not in project.config("net")
    assert project.component("net").mixins == ["imagenet", "logging"]


def test_an_unknown_mixin_is_an_error_with_a_suggestion(tmp_path: Path) -> None:
    project = make_project(
        tmp_path, "components:\n  - net:\n      _mixins_: [imagnet]\nmixins:\n  - imagenet\n"
    )
    with pytest.raises(
        UnknownVersionError,
        match=r":2: component 'net' uses unknown mixin 'imagnet' \(did you mean 'imagenet'\?\)",
    ):
        project.config("net")


def test_a_mixin_without_a_module_has_module_none(tmp_path: Path) -> None:
    project = make_project(tmp_path, MIXIN_YAML)
    assert project.mixins["imagenet"].module is None
    assert project.mixins["imagenet"].load() is None
    assert project.mixins["imagenet"].config == {"data": {"name": "imagenet", "size": 224}}


def test_a_parents_mixins_come_with_the_parent(tmp_path: Path) -> None:
    child = "components:\n  - solo^net:\n      every: 1\n"
    project = make_project(tmp_path, MIXIN_YAML.replace("components:\n", child, 1))
    assert project.config("solo")["data"]["name"] == "imagenet"
    assert project.config("solo")["every"] == 1
