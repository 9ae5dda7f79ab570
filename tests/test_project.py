"""Project: finding the root, the registry, loading component code, registering from code, caching."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from guide import make_project

from machinable.config.errors import ComponentImportError
from machinable.config.project import ComponentEntry, Project
from machinable.errors import CollectionError, ConfigError, UsageError


@pytest.fixture(autouse=True)
def isolated_imports(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Forget the project modules a test imported, so the next test's same-named modules are fresh."""
    monkeypatch.setattr(sys, "path", list(sys.path))
    before = set(sys.modules)
    yield
    for name in set(sys.modules) - before:
        del sys.modules[name]


COMPONENT_CLASS = """
class Fitting:
    __machinable_component__ = True
"""

# -- finding the root ------------------------------------------------------------------------------------------


def test_the_root_is_the_folder_with_machinable_yaml(tmp_path: Path) -> None:
    make_project(tmp_path, "components:\n  - a\n")
    assert Project(tmp_path).root == tmp_path.resolve()


def test_the_root_is_searched_upward_from_a_subfolder(tmp_path: Path) -> None:
    make_project(tmp_path, "components:\n  - a\n")
    (tmp_path / "tasks" / "deep").mkdir(parents=True)
    assert Project(tmp_path / "tasks" / "deep").root == tmp_path.resolve()


def test_without_a_path_the_root_is_searched_from_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_project(tmp_path, "components:\n  - a\n")
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path / "sub")
    assert Project().root == tmp_path.resolve()


def test_no_machinable_yaml_says_where_it_looked(tmp_path: Path) -> None:
    with pytest.raises(
        ConfigError, match=f"no machinable.yaml found in {tmp_path.resolve()} or any folder above"
    ):
        Project(tmp_path)


def test_a_path_that_does_not_exist_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        Project(tmp_path / "nowhere")


# -- the registry ----------------------------------------------------------------------------------------------


def test_components_is_a_copy_of_the_registry(tmp_path: Path) -> None:
    project = make_project(tmp_path, "components:\n  - a\n")
    project.components.clear()
    assert list(project.components) == ["a"]


def test_entries_describe_themselves(tmp_path: Path) -> None:
    project = make_project(tmp_path, "components:\n  - a: {x: 1}\n")
    entry = project.component("a")
    assert isinstance(entry, ComponentEntry)
    assert (entry.name, entry.module, entry.parent, entry.mixins, entry.line) == ("a", "a", None, [], 2)
    assert entry.config == {"x": 1}


def test_entry_config_includes_versions_and_is_unresolved(tmp_path: Path) -> None:
    project = make_project(tmp_path, "components:\n  - a:\n      x: 1\n      y: $self.x\n      ~v: {x: 2}\n")
    assert project.component("a").config == {"x": 1, "y": "$self.x", "~v": {"x": 2}}


def test_the_file_is_read_once(tmp_path: Path) -> None:
    project = make_project(tmp_path, "components:\n  - a: {x: 1}\n")
    (tmp_path / "machinable.yaml").write_text("components:\n  - a: {x: 2}\n")
    assert project.config("a") == {"x": 1}


def test_callers_cannot_change_the_cached_defaults(tmp_path: Path) -> None:
    project = make_project(tmp_path, "components:\n  - a:\n      data: {name: mnist, sizes: [1]}\n")
    config = project.config("a")
    config["data"]["name"] = "changed"
    config["data"]["sizes"].append(2)
    project.component("a").config["data"]["name"] = "changed too"
    assert project.config("a") == {"data": {"name": "mnist", "sizes": [1]}}


def test_resolved_configurations_are_plain_dicts(tmp_path: Path) -> None:
    project = make_project(tmp_path, "components:\n  - a:\n      data: {name: mnist, size: 0}\n")
    config = project.config("a", {"data": {"size": 1}})
    assert type(config) is dict and type(config["data"]) is dict


# -- loading component code --------------------------------------------------------------------------------------


def test_load_returns_the_attribute_named_like_the_component(tmp_path: Path) -> None:
    project = make_project(
        tmp_path, "components:\n  - fit_a\n", **{"fit_a.py": "def fit_a(config):\n    return 1\n"}
    )
    assert project.component("fit_a").load().__name__ == "fit_a"


def test_load_returns_the_one_component_class(tmp_path: Path) -> None:
    project = make_project(tmp_path, "components:\n  - fit_b\n", **{"fit_b.py": COMPONENT_CLASS})
    assert project.component("fit_b").load().__name__ == "Fitting"


def test_load_returns_the_one_marked_function(tmp_path: Path) -> None:
    project = make_project(
        tmp_path,
        "components:\n  - fit_c\n",
        **{"fit_c.py": "def helper(): pass\ndef run(): pass\nrun.__machinable_component__ = True\n"},
    )
    assert project.component("fit_c").load().__name__ == "run"


def test_load_finds_subclasses_of_the_component_base_class(tmp_path: Path) -> None:
    component = pytest.importorskip("machinable.components.component")
    if not hasattr(component, "Component"):
        pytest.skip("machinable.components.component.Component is not written yet")
    project = make_project(
        tmp_path,
        "components:\n  - fit_d\n",
        **{"fit_d.py": "import machinable as ml\n\nclass Fit(ml.Component):\n    pass\n"},
    )
    assert project.component("fit_d").load().__name__ == "Fit"


def test_load_imports_modules_of_groups(tmp_path: Path) -> None:
    project = make_project(
        tmp_path,
        "components:grp_e:\n  - baseline\n",
        **{"grp_e/__init__.py": "", "grp_e/baseline.py": COMPONENT_CLASS},
    )
    assert project.component("grp_e.baseline").load().__module__ == "grp_e.baseline"


def test_a_child_without_a_module_loads_its_parents_code(tmp_path: Path) -> None:
    project = make_project(
        tmp_path,
        "components:\n  - fit_f: {a: 1}\n  - quick^fit_f: {a: 2}\n",
        **{"fit_f.py": COMPONENT_CLASS},
    )
    assert project.component("quick").load() is project.component("fit_f").load()
    assert project.component("quick").module == "fit_f"


def test_an_import_error_inside_the_module_names_module_and_cause(tmp_path: Path) -> None:
    project = make_project(
        tmp_path, "components:\n  - fit_g\n", **{"fit_g.py": "import not_installed_package_xyz\n"}
    )
    with pytest.raises(ComponentImportError) as info:
        project.component("fit_g").load()
    assert isinstance(info.value, ConfigError) and isinstance(info.value, CollectionError)
    message = str(info.value)
    assert "component 'fit_g': importing module 'fit_g' failed" in message
    assert "No module named 'not_installed_package_xyz'" in message


def test_any_exception_while_importing_is_reported_with_its_text(tmp_path: Path) -> None:
    project = make_project(tmp_path, "components:\n  - fit_h\n", **{"fit_h.py": "1 / 0\n"})
    with pytest.raises(ComponentImportError, match="ZeroDivisionError: division by zero"):
        project.component("fit_h").load()


def test_a_missing_module_says_which_file_was_expected(tmp_path: Path) -> None:
    project = make_project(tmp_path, "components:\n  - fit_i\n")
    with pytest.raises(ComponentImportError, match=r"module 'fit_i' not found in .* \(expected fit_i\.py"):
        project.component("fit_i").load()


def test_a_module_without_a_component_is_an_error(tmp_path: Path) -> None:
    project = make_project(tmp_path, "components:\n  - fit_j\n", **{"fit_j.py": "x = 1\n"})
    with pytest.raises(ComponentImportError, match="has no attribute 'fit_j', no class deriving"):
        project.component("fit_j").load()


def test_a_module_with_two_component_classes_is_ambiguous(tmp_path: Path) -> None:
    project = make_project(
        tmp_path,
        "components:\n  - fit_k\n",
        **{"fit_k.py": COMPONENT_CLASS + COMPONENT_CLASS.replace("Fitting", "Other")},
    )
    with pytest.raises(ComponentImportError, match=r"several component classes \(Fitting, Other\)"):
        project.component("fit_k").load()


def test_load_puts_the_root_on_sys_path_once(tmp_path: Path) -> None:
    project = make_project(
        tmp_path,
        "components:\n  - fit_l\n  - fit_m\n",
        **{"fit_l.py": COMPONENT_CLASS, "fit_m.py": COMPONENT_CLASS},
    )
    project.component("fit_l").load()
    project.component("fit_m").load()
    assert sys.path.count(str(project.root)) == 1


def test_a_mixin_with_a_module_loads_its_class(tmp_path: Path) -> None:
    project = make_project(
        tmp_path, "mixins:\n  - mix_n: {a: 1}\n", **{"mix_n.py": "class Helper:\n    pass\n"}
    )
    assert project.mixins["mix_n"].module == "mix_n"
    assert project.mixins["mix_n"].load().__name__ == "Helper"


# -- registering from code ---------------------------------------------------------------------------------------


def discovered(config):
    return config


def test_register_adds_a_component_found_in_code(tmp_path: Path) -> None:
    project = make_project(tmp_path, "components:\n  - a\n")
    project.register("discovered", discovered, {"steps": 3})
    entry = project.component("discovered")
    assert list(project.components) == ["a", "discovered"]
    assert (entry.load(), entry.module, entry.line) == (discovered, __name__, None)
    assert project.config("discovered") == {"steps": 3}


def test_the_yaml_entry_is_merged_over_code_defaults(tmp_path: Path) -> None:
    project = make_project(tmp_path, "components:\n  - found:\n      steps: 10\n      ~short: {steps: 1}\n")
    project.register("found", discovered, {"steps": 3, "noise": 0.1})
    assert project.config("found") == {"steps": 10, "noise": 0.1}
    assert project.config("found", "~short")["steps"] == 1
    assert project.component("found").load() is discovered
    assert project.component("found").line == 2


def test_register_updates_children_of_the_registered_component(tmp_path: Path) -> None:
    project = make_project(tmp_path, "components:\n  - base\n  - child^base: {b: 1}\n")
    assert project.config("child") == {"b": 1}
    project.register("base", discovered, {"a": 1})
    assert project.config("child") == {"a": 1, "b": 1}


def test_repr_names_the_root(tmp_path: Path) -> None:
    project = make_project(tmp_path, "components:\n  - a\n")
    assert str(tmp_path.resolve()) in repr(project)


def test_a_child_of_an_unknown_parent_still_has_a_module(tmp_path: Path) -> None:
    project = make_project(tmp_path, "components:\n  - orphan^nowhere\n")
    assert project.component("orphan").module == "orphan"


def test_loading_a_cycle_of_children_without_modules_names_the_cycle(tmp_path: Path) -> None:
    project = make_project(tmp_path, "components:\n  - a^b\n  - b^a\n")
    with pytest.raises(
        ConfigError, match="inheritance cycle: component 'a' -> component 'b' -> component 'a'"
    ):
        project.component("a").load()


def test_data_is_a_copy_of_the_parsed_file(tmp_path: Path) -> None:
    project = make_project(tmp_path, "collect: [tasks/*.py]\ncomponents:\n  - a\n")
    project.data["collect"].append("x")
    assert project.data == {"collect": ["tasks/*.py"], "components": ["a"]}


@pytest.mark.parametrize("name", [None, 3, ("net",)])
def test_a_component_name_that_is_not_a_string_is_a_usage_error(tmp_path: Path, name: object) -> None:
    project = make_project(tmp_path, "components:\n  - net:\n")
    with pytest.raises(UsageError, match=f"a component is named by a string, not {type(name).__name__}"):
        project.config(name)  # type: ignore[arg-type]
