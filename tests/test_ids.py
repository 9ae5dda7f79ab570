"""Execution ids and seeds: DESIGN.md §4 golden values and stability rules."""

import pytest

from machinable import ids
from machinable.errors import SeedError


@pytest.mark.parametrize(("execution_id", "seed"), [("3K45al", 3044900027), ("OY1p1o", 22490017876)])
def test_an_execution_id_decodes_to_its_global_seed(execution_id, seed):
    assert ids.decode(execution_id) == seed
    assert ids.encode(seed) == execution_id


def test_an_integer_seed_gives_the_golden_execution_id():
    assert ids.execution_id(42) == "8gWVkz"


def test_an_execution_id_given_as_seed_is_kept():
    assert ids.execution_id("OY1p1o") == "OY1p1o"


def test_a_numeric_string_seed_is_an_integer_seed():
    assert ids.execution_id("42") == "8gWVkz"


def test_no_seed_gives_a_random_id_in_range():
    made = {ids.execution_id() for _ in range(20)}
    assert len(made) == 20
    assert all(ids.MIN_SEED <= ids.decode(i) <= ids.MAX_SEED for i in made)


@pytest.mark.parametrize("bad", ["abc", "OY1p1o!", "0000ab", "", "ÖY1p1o"])
def test_a_malformed_execution_id_is_a_clear_error(bad):
    with pytest.raises(SeedError, match="not an execution id"):
        ids.execution_id(bad)


@pytest.mark.parametrize("bad", [1.5, True, [1]])
def test_a_seed_of_another_type_is_a_clear_error(bad):
    with pytest.raises(SeedError, match="seed must be an integer or an execution id"):
        ids.execution_id(bad)


def test_a_trial_seed_depends_only_on_global_seed_and_node_id():
    a = ids.trial_seed(3044900027, "optimization[r0]")
    assert a == ids.trial_seed(3044900027, "optimization[r0]")
    assert a != ids.trial_seed(3044900027, "optimization[r1]")
    assert a != ids.trial_seed(3044900028, "optimization[r0]")
    assert 0 <= a < 2**31


def test_trial_uids_are_stable_and_filesystem_safe():
    uid = ids.trial_uid("optimization[~alexnet-learning_rate=0.5][r2]")
    assert uid == ids.trial_uid("optimization[~alexnet-learning_rate=0.5][r2]")
    assert uid.isalnum()


def test_six_id_characters_are_an_id_even_when_they_are_all_digits():
    # An id copied from a report must give back that execution's seed, not be read as the integer 123456.
    assert ids.execution_id("123456") == "123456"
    assert ids.execution_id("1234567") == ids.execution_id(1234567)
    assert ids.execution_id("012345") == ids.execution_id(12345)
