"""Loading YAML safely, with file, line and column in every syntax error."""

from __future__ import annotations

from pathlib import Path

import pytest

from machinable.config.errors import YamlSyntaxError
from machinable.config.loader import load_file, load_text
from machinable.errors import ConfigError
from machinable.project import Project


def test_a_syntax_error_in_machinable_yaml_names_file_line_and_column(tmp_path: Path) -> None:
    (tmp_path / "machinable.yaml").write_text("components:\n  - net:\n      data: {name: mnist\n")
    with pytest.raises(YamlSyntaxError) as info:
        Project(tmp_path)
    error = info.value
    assert isinstance(error, ConfigError)
    assert str(error).startswith(f"{tmp_path / 'machinable.yaml'}:4:1: invalid YAML: ")
    assert (error.line, error.column) == (4, 1)


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
    assert load_text("a: False\nb: 0.001\nc: 1e-3\nd: ~\n").data == {
        "a": False,
        "b": 0.001,
        "c": "1e-3",
        "d": None,
    }


def test_an_unreadable_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_file(tmp_path / "missing.yaml")
