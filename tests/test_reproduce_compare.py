"""How reproduce compares values: exact by default, ``math.isclose`` per number with tolerances, recursively."""

from __future__ import annotations

import math

import pytest

from machinable.errors import UsageError
from machinable.replay.compare import MISSING, check_tolerances, compare_rows, first_mismatch, values_equal
from machinable.replay.numeric import Mismatch


def test_numbers_compare_exactly_by_default():
    assert values_equal(0.1 + 0.2, 0.1 + 0.2)
    assert not values_equal(0.1 + 0.2, 0.3)
    assert values_equal(1, 1.0)  # the same number, whatever JSON made of it


def test_tolerances_follow_math_isclose():
    assert values_equal(0.1 + 0.2, 0.3, rtol=1e-12)
    assert values_equal(1.0, 1.0 + 1e-7, atol=1e-6)
    assert not values_equal(1.0, 1.1, rtol=1e-3, atol=1e-3)
    assert values_equal(0.0, 1e-12, atol=1e-9) and not values_equal(0.0, 1e-12, rtol=0.5)


def test_nan_reproduces_nan_and_booleans_are_not_numbers():
    assert values_equal(math.nan, math.nan)
    assert not values_equal(True, 1)
    assert not values_equal("1", 1)


def test_the_first_mismatch_has_a_path_into_nested_values():
    old = {"w": [1.0, 2.0, {"b": 3.0}], "name": "x"}
    assert first_mismatch(old, {"w": [1.0, 2.0, {"b": 3.5}], "name": "x"}) == Mismatch(
        "['w'][2]['b']", 3.0, 3.5
    )
    assert first_mismatch(old, {"w": [1.0, 2.0]}) == Mismatch("['w'][2]", {"b": 3.0}, MISSING)
    assert first_mismatch([1, 2], [1, 2, 3]) == Mismatch("[2]", MISSING, 3)
    assert first_mismatch({"a": 1.0}, {"a": 1.0 + 1e-12}, atol=1e-9) is None


def test_rows_compare_column_by_column_ignoring_timestamps():
    old = [{"loss": 1.0, "_iteration": 0, "_time": 1.0}, {"loss": 0.5, "_iteration": 1, "_time": 2.0}]
    new = [{"loss": 1.0, "_iteration": 0, "_time": 9.0}, {"loss": 0.5, "_iteration": 2, "_time": 9.5}]
    found = compare_rows("default", old, new)
    assert (found.row, found.column, found.old, found.new) == (1, "_iteration", 1, 2)
    assert found.describe() == "records 'default' row 1, column '_iteration': stored 1, re-run 2"
    assert compare_rows("default", old, [dict(r, _time=0) for r in old]) is None


def test_a_new_column_or_a_missing_row_is_a_difference():
    found = compare_rows("eval", [{"a": 1}], [{"a": 1, "b": 2}])
    assert (found.column, found.old, found.new) == ("b", MISSING, 2)
    found = compare_rows("eval", [{"a": 1}, {"a": 2, "_time": 3.0}], [{"a": 1}])
    assert (found.row, found.column, found.old, found.new) == (1, None, {"a": 2}, MISSING)
    assert found.describe() == "records 'eval' row 1: stored {'a': 2}, re-run <missing>"


@pytest.mark.parametrize("bad", [-1.0, math.inf, math.nan, "0.1", True])
def test_tolerances_must_be_non_negative_numbers(bad):
    with pytest.raises(UsageError, match="non-negative number"):
        check_tolerances(bad, 0.0)
    assert check_tolerances(1e-6, 0) == (1e-6, 0.0)
