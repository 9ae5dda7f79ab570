"""Deep merge, and the laws the tuple form of versions obeys (checked with hypothesis)."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from machinable.config.merge import deep_merge, plain_copy
from machinable.config.project import Project

# -- deep_merge ------------------------------------------------------------------------------------------------


def test_mappings_merge_key_by_key_recursively() -> None:
    base = {"data": {"name": "cifar10", "augmentation": False}, "lr": 0.1}
    assert deep_merge(base, {"data": {"name": "mnist"}}) == {
        "data": {"name": "mnist", "augmentation": False},
        "lr": 0.1,
    }


def test_everything_but_a_mapping_is_replaced_lists_included() -> None:
    assert deep_merge({"a": [1, 2], "b": {"x": 1}, "c": 1}, {"a": [3], "b": 2, "c": {"y": 1}}) == {
        "a": [3],
        "b": 2,
        "c": {"y": 1},
    }


def test_none_replaces_a_mapping() -> None:
    assert deep_merge({"a": {"x": 1}}, {"a": None}) == {"a": None}


def test_deep_merge_changes_neither_argument() -> None:
    base = {"a": {"x": 1, "y": [1]}}
    override = {"a": {"x": 2, "z": {"k": 1}}}
    before = copy.deepcopy((base, override))
    deep_merge(base, override)
    assert (base, override) == before


def test_plain_copy_copies_mappings_and_lists() -> None:
    original = {"a": {"b": [1, {"c": 2}]}}
    copied = plain_copy(original)
    copied["a"]["b"][1]["c"] = 3
    assert original == {"a": {"b": [1, {"c": 2}]}}


# -- laws of the tuple form (through Project.resolve) ------------------------------------------------------------

keys = st.sampled_from(["a", "b", "c", "d"])
scalars = st.one_of(st.integers(-3, 3), st.booleans(), st.none(), st.sampled_from(["x", "y"]))
values = st.recursive(
    scalars | st.lists(st.integers(0, 3), max_size=2),
    lambda inner: st.dictionaries(keys, inner, max_size=3),
    max_leaves=8,
)
# A dict version is strict (config/strict.py): it may only change keys the configuration has, with values of the
# default's type. Its top-level keys are written '+key' so that every random dict is a valid version: '+key' sets
# the key whatever the configuration holds (deep-merging when both sides are mappings), as merging used to.
dicts = st.dictionaries(keys.map(lambda key: "+" + key), values, max_size=4)
elements = st.one_of(dicts, st.sampled_from(["~small", "~wide", "~deep", None]))


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Project:
    root: Path = tmp_path_factory.mktemp("laws")
    (root / "machinable.yaml").write_text(
        "components:\n"
        "  - net:\n"
        "      a: 1\n"
        "      b: {c: 2, d: [1, 2]}\n"
        "      ~small: {a: 0, b: {c: 0}}\n"
        "      ~wide: {a: 9, ~deep: {b: {d: 5}}}\n"
        "      ~deep: {b: 7}\n"
    )
    return Project(root)


@given(a=elements, b=elements, c=elements)
def test_merging_is_associative(project: Project, a, b, c) -> None:
    flat = project.config("net", (a, b, c))
    assert project.config("net", ((a, b), c)) == flat
    assert project.config("net", (a, (b, c))) == flat


@given(a=elements)
def test_a_tuple_of_one_element_equals_that_element(project: Project, a) -> None:
    assert project.config("net", (a,)) == project.config("net", a)


@given(a=elements)
def test_merging_an_empty_dict_changes_nothing(project: Project, a) -> None:
    expected = project.config("net", a)
    assert project.config("net", (a, {})) == expected
    assert project.config("net", ({}, a)) == expected


@given(a=dicts, b=dicts)
def test_resolution_never_changes_the_versions_passed_in(project: Project, a, b) -> None:
    before = copy.deepcopy((a, b))
    project.config("net", (a, b))
    assert (a, b) == before
