"""Loading YAML safely, with file, line and column in every syntax error."""

from __future__ import annotations

from pathlib import Path

import pytest

from machinable.config.errors import YamlSyntaxError
from machinable.config.loader import load_file, load_text
from machinable.config.project import Project
from machinable.errors import ConfigError


def test_a_syntax_error_in_machinable_yaml_names_file_line_and_column(tmp_path: Path) -> None:
    (tmp_path / "machinable.yaml").write_text("components:\n  - net:\n      data: {name: mnist\n")
    with pytest.raises(YamlSyntaxError) as info:
        Project(tmp_path)
    error = info.value
    assert isinstance(error, ConfigError)
    assert str(error).startswith(f"{tmp_path / 'machinable.yaml'}:4:1: invalid YAML: ")
    assert (error.line, error.column) == (4, 1)


def test_an_unclosed_bracket_also_names_where_it_was_opened(tmp_path: Path) -> None:
    (tmp_path / "machinable.yaml").write_text("components:\n  - net:\n      data: {name: mnist\n")
    with pytest.raises(YamlSyntaxError, match=r"while parsing a flow mapping that starts at 3:13\)"):
        Project(tmp_path)


def test_a_bad_indentation_is_reported_where_it_happens(tmp_path: Path) -> None:
    (tmp_path / "machinable.yaml").write_text("components:\n  - net:\n      a: 1\n     b: 2\n")
    with pytest.raises(YamlSyntaxError, match=r"machinable\.yaml:4:6: invalid YAML"):
        Project(tmp_path)


def test_python_tags_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "evil.yaml"
    path.write_text("a: !!python/object/apply:os.system ['true']\n")
    with pytest.raises(YamlSyntaxError, match=r"evil\.yaml:1:4"):
        load_file(path)


def test_lines_of_keys_and_items_are_kept() -> None:
    loaded = load_text("components:\n  - net:\n      width: 1\n  - other\n", "m.yaml")
    assert loaded.lines[("components",)] == 1
    assert loaded.lines[("components", 0, "net")] == 2
    assert loaded.lines[("components", 0, "net", "width")] == 3
    assert loaded.lines[("components", 1)] == 4
    assert loaded.where(("components", 0, "net", "missing")) == "m.yaml:2"


def test_yaml_booleans_and_numbers_are_typed() -> None:
    assert load_text("a: False\nb: 0.001\nc: 1.0e-3\nd: ~\n").data == {
        "a": False,
        "b": 0.001,
        "c": 0.001,
        "d": None,
    }


def test_a_learning_rate_in_exponent_notation_is_a_float_not_a_string() -> None:
    # PyYAML (YAML 1.1) reads 1e-3 and 1.5e3 as strings; a config tool must not.
    data = load_text("a: 1e-3\nb: 1.5e3\nc: -2E+2\nd: .5e1\ne: 1_000\nf: 1.2.3\ng: e5\nh: '1e-3'\n").data
    assert data == {
        "a": 0.001,
        "b": 1500.0,
        "c": -200.0,
        "d": 5.0,
        "e": 1000,
        "f": "1.2.3",
        "g": "e5",
        "h": "1e-3",
    }


def test_a_key_written_twice_in_one_mapping_is_an_error_not_a_silent_override() -> None:
    with pytest.raises(YamlSyntaxError) as info:
        load_text("components:\n  - net:\n      width: 1\n      width: 2\n", "m.yaml")
    assert str(info.value).startswith(
        "m.yaml:4:7: key 'width' is written twice in one mapping (first on line 3)"
    )
    assert (info.value.line, info.value.column) == (4, 7)


def test_a_second_components_section_is_reported_instead_of_replacing_the_first(tmp_path: Path) -> None:
    (tmp_path / "machinable.yaml").write_text("components:\n  - a:\ncomponents:\n  - b:\n")
    with pytest.raises(YamlSyntaxError, match=r"machinable\.yaml:3:1: key 'components' is written twice"):
        Project(tmp_path)


def test_yaml_merge_keys_are_not_duplicates() -> None:
    data = load_text("base: &b {lr: 0.1, width: 2}\nwide:\n  <<: *b\n  width: 8\n").data
    assert data["wide"] == {"lr": 0.1, "width": 8}


def test_an_unreadable_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_file(tmp_path / "missing.yaml")
