"""References (``$self.``, ``$.``), includes (``$/file.yaml``), config methods and hidden keys."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from guide import make_project

from machinable.config.project import Project
from machinable.errors import ConfigError


@pytest.fixture
def isolated_imports(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Forget the project modules a test imported, so the next test's same-named modules are fresh."""
    monkeypatch.setattr(sys, "path", list(sys.path))
    before = set(sys.modules)
    yield
    for name in set(sys.modules) - before:
        del sys.modules[name]


# -- $self. ----------------------------------------------------------------------------------------------------


def test_self_reference_takes_a_value_of_the_components_configuration(tmp_path: Path) -> None:
    project = make_project(
        tmp_path,
        """
        components:
          - net:
              width: 8
              head: {units: $self.width}
        """,
    )
    assert project.config("net") == {"width": 8, "head": {"units": 8}}


def test_self_reference_sees_the_merged_version(tmp_path: Path) -> None:
    project = make_project(
        tmp_path,
        """
        components:
          - net:
              width: 8
              head: {units: $self.width}
              ~wide: {width: 64}
        """,
    )
    assert project.config("net", "~wide")["head"]["units"] == 64
    assert project.config("net", {"width": 3})["head"]["units"] == 3


def test_self_reference_may_point_into_nested_keys_and_lists(tmp_path: Path) -> None:
    project = make_project(
        tmp_path,
        """
        components:
          - net:
              data: {name: mnist, sizes: [28, 32]}
              name: $self.data.name
              size: $self.data.sizes.1
        """,
    )
    config = project.config("net")
    assert (config["name"], config["size"]) == ("mnist", 32)


def test_references_chain(tmp_path: Path) -> None:
    project = make_project(
        tmp_path,
        """
        components:
          - net:
              a: 1
              b: $self.a
              c: $self.b
        """,
    )
    assert project.config("net")["c"] == 1


def test_a_referenced_mapping_is_a_copy(tmp_path: Path) -> None:
    project = make_project(
        tmp_path,
        """
        components:
          - net:
              data: {name: mnist}
              same: $self.data
        """,
    )
    config = project.config("net")
    config["same"]["name"] = "changed"
    assert config["data"]["name"] == "mnist"


def test_a_reference_inside_a_longer_string_stays_text(tmp_path: Path) -> None:
    project = make_project(
        tmp_path,
        """
        components:
          - net:
              width: 8
              label: "width is $self.width"
        """,
    )
    assert project.config("net")["label"] == "width is $self.width"


def test_a_reference_to_a_missing_key_names_reference_component_and_keys(tmp_path: Path) -> None:
    project = make_project(
        tmp_path,
        """
        components:
          - net:
              data: {name: mnist}
              label: $self.data.nmae
        """,
    )
    with pytest.raises(ConfigError) as info:
        project.config("net")
    message = str(info.value)
    assert "component 'net', key 'label'" in message
    assert "'$self.data.nmae'" in message
    assert "'data' has no 'nmae' (did you mean 'name'?)" in message


def test_a_reference_loop_is_an_error(tmp_path: Path) -> None:
    project = make_project(
        tmp_path,
        """
        components:
          - net:
              a: $self.b
              b: $self.a
        """,
    )
    with pytest.raises(ConfigError, match=r"reference loop \$self\.b -> \$self\.a -> \$self\.b"):
        project.config("net")


# -- $. ---------------------------------------------------------------------------------------------------------


def test_dot_reference_takes_a_value_from_the_top_level_of_the_file(tmp_path: Path) -> None:
    project = make_project(
        tmp_path,
        """
        shared:
          dataset: {name: cifar10, root: /data}
        components:
          - net:
              data: $.shared.dataset
        """,
    )
    assert project.config("net")["data"] == {"name": "cifar10", "root": "/data"}


def test_a_missing_dot_reference_is_an_error(tmp_path: Path) -> None:
    project = make_project(tmp_path, "components:\n  - net:\n      a: $.nowhere\n")
    with pytest.raises(ConfigError, match=r"reference '\$\.nowhere' points to a missing key"):
        project.config("net")


# -- $/ includes ---------------------------------------------------------------------------------------------


def test_an_include_is_replaced_by_the_files_content(tmp_path: Path) -> None:
    project = make_project(
        tmp_path,
        """
        components:
          - net:
              data: $/configs/data.yaml
        """,
        **{"configs/data.yaml": "name: mnist\nsize: 28\n"},
    )
    assert project.config("net")["data"] == {"name": "mnist", "size": 28}


def test_an_included_file_may_define_versions(tmp_path: Path) -> None:
    project = make_project(
        tmp_path,
        """
        components:
          - net:
              width: 1
              ~big: $/big.yaml
        """,
        **{"big.yaml": "width: 1000\n"},
    )
    assert project.config("net", "~big") == {"width": 1000}


def test_an_include_given_in_a_version_works_too(tmp_path: Path) -> None:
    project = make_project(tmp_path, "components:\n  - net:\n      data: {}\n", **{"d.yaml": "name: svhn\n"})
    assert project.config("net", {"data": "$/d.yaml"})["data"] == {"name": "svhn"}


def test_a_missing_include_names_the_file_and_the_line(tmp_path: Path) -> None:
    (tmp_path / "machinable.yaml").write_text("components:\n  - net:\n      data: $/missing.yaml\n")
    with pytest.raises(
        ConfigError, match=r"machinable\.yaml:3: included file '\$/missing\.yaml' does not exist"
    ):
        Project(tmp_path)


def test_an_include_cycle_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"include cycle: a\.yaml -> b\.yaml -> a\.yaml"):
        make_project(tmp_path, "x: $/a.yaml\n", **{"a.yaml": "y: $/b.yaml\n", "b.yaml": "z: $/a.yaml\n"})


# -- config methods ----------------------------------------------------------------------------------------------


def test_a_config_method_value_is_replaced_by_the_methods_result(
    tmp_path: Path, isolated_imports: None
) -> None:
    project = make_project(
        tmp_path,
        """
        components:
          - doubling:
              value: double(21)
        """,
        **{
            "doubling.py": """
                class Doubling:
                    __machinable_component__ = True

                    def config_double(self, number):
                        return 2 * number
            """
        },
    )
    assert project.config("doubling") == {"value": 42}


def test_config_methods_see_the_configuration_as_self(tmp_path: Path, isolated_imports: None) -> None:
    project = make_project(
        tmp_path,
        """
        components:
          - scaled:
              width: 8
              units: times(3, offset=1)
        """,
        **{
            "scaled.py": """
                class Scaled:
                    __machinable_component__ = True

                    def config_times(self, factor, offset=0):
                        return self.width * factor + offset
            """
        },
    )
    assert project.config("scaled", {"width": 10})["units"] == 31


def test_function_components_use_module_level_config_functions(
    tmp_path: Path, isolated_imports: None
) -> None:
    project = make_project(
        tmp_path,
        """
        components:
          - fitting:
              names: join(["a", "b"], sep="-")
        """,
        **{
            "fitting.py": """
                def config_join(items, sep):
                    return sep.join(items)

                def fitting(config):
                    pass
                fitting.__machinable_component__ = True
            """
        },
    )
    assert project.config("fitting") == {"names": "a-b"}


def test_a_missing_config_method_names_the_method_and_the_component(
    tmp_path: Path, isolated_imports: None
) -> None:
    project = make_project(
        tmp_path,
        "components:\n  - tripling:\n      value: triple(1)\n",
        **{"tripling.py": "class Tripling:\n    __machinable_component__ = True\n"},
    )
    with pytest.raises(ConfigError) as info:
        project.config("tripling")
    message = str(info.value)
    assert "component 'tripling', key 'value'" in message
    assert "'config_triple'" in message and "'Tripling' has no such method" in message


def test_config_method_arguments_must_be_literals(tmp_path: Path) -> None:
    project = make_project(tmp_path, "components:\n  - net:\n      value: double(__import__('os'))\n")
    with pytest.raises(ConfigError, match=r"an argument that is not a literal \(__import__\('os'\)\)"):
        project.config("net")


def test_a_reference_as_a_config_method_argument_is_an_error_not_a_silent_string(tmp_path: Path) -> None:
    project = make_project(
        tmp_path, "components:\n  - net:\n      width: 2\n      value: double($self.width)\n"
    )
    with pytest.raises(
        ConfigError, match=r"passes a reference \(\$self\.width\).*read the key inside the method"
    ):
        project.config("net")


def test_a_missing_top_level_reference_says_where_it_looked(tmp_path: Path) -> None:
    project = make_project(tmp_path, "options: {x: 1}\ncomponents:\n  - net:\n      value: $.optoins.x\n")
    with pytest.raises(
        ConfigError, match="the top level of machinable.yaml has no 'optoins' \\(did you mean 'options'"
    ):
        project.config("net")


def test_an_expression_that_is_not_a_single_call_stays_text(tmp_path: Path) -> None:
    project = make_project(tmp_path, "components:\n  - net:\n      formula: 'f(x) + g(y)'\n")
    assert project.config("net")["formula"] == "f(x) + g(y)"


# -- hidden keys -------------------------------------------------------------------------------------------------


def test_hidden_keys_stay_in_the_configuration(tmp_path: Path) -> None:
    project = make_project(tmp_path, "components:\n  - net:\n      _note: internal\n      a: 1\n")
    assert project.config("net") == {"_note": "internal", "a": 1}
