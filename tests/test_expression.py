"""The -k language: a grammar of and/or/not/parentheses over case-insensitive substrings, never eval."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from machinable.collection.expression import MAX_DEPTH, Expression
from machinable.errors import UsageError


def selects(text: str, *names: str) -> bool:
    return Expression.compile(text).matches(names)


def truth(text: str, **values: bool) -> bool:
    """Evaluate with each ident true or false by name, to test the logic apart from matching."""
    return Expression.compile(text).evaluate(lambda ident: values[ident])


# --- grammar and logic ---------------------------------------------------------------------------------


def test_empty_expression_selects_everything():
    assert selects("", "anything")
    assert selects("   ", "anything")
    assert Expression.compile("").evaluate(lambda ident: False)


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [(False, False, False), (False, True, True), (True, False, True), (True, True, True)],
)
def test_or(a, b, expected):
    assert truth("a or b", a=a, b=b) is expected


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [(False, False, False), (False, True, False), (True, False, False), (True, True, True)],
)
def test_and(a, b, expected):
    assert truth("a and b", a=a, b=b) is expected


def test_not_negates_and_repeats():
    assert truth("not a", a=False)
    assert not truth("not a", a=True)
    assert truth("not not a", a=True)
    assert not truth("not not not a", a=True)


def test_and_binds_tighter_than_or():
    # a or (b and c), not (a or b) and c
    assert truth("a or b and c", a=True, b=False, c=False)
    assert not truth("a and b or c", a=False, b=True, c=False)


def test_not_binds_tighter_than_and():
    assert truth("not a and b", a=False, b=True)
    assert not truth("not a and b", a=False, b=False)


def test_parentheses_override_precedence():
    assert not truth("(a or b) and c", a=True, b=False, c=False)
    assert truth("not (a and b)", a=True, b=False)
    assert truth("((a))", a=True)


def test_parentheses_need_no_surrounding_spaces():
    assert truth("not(a)or(b)", a=True, b=True)


def test_long_chains_and_deep_nots_do_not_recurse():
    many = " or ".join(f"x{i}" for i in range(5000))
    assert Expression.compile(many).matches(["x4999"])
    assert Expression.compile("not " * 5000 + "a").matches(["a"])


def test_nesting_up_to_the_limit_works():
    text = "(" * MAX_DEPTH + "a" + ")" * MAX_DEPTH
    assert Expression.compile(text).matches(["a"])


def test_evaluate_passes_the_ident_as_written():
    seen: list[str] = []
    Expression.compile("Alex[~Net or b").evaluate(lambda ident: seen.append(ident) or False)
    assert seen == ["Alex[~Net", "b"]


def test_evaluate_short_circuits():
    seen: list[str] = []
    Expression.compile("a or b").evaluate(lambda ident: seen.append(ident) or True)
    assert seen == ["a"]


# --- matching ------------------------------------------------------------------------------------------


def test_matching_is_a_case_insensitive_substring():
    assert selects("alex", "optimization[~AlexNet]")
    assert selects("ALEXNET", "optimization[~alexnet]")
    assert not selects("vgg", "optimization[~alexnet]")


def test_any_name_may_match():
    assert selects("learning_rate=0.5", "optimization[r2]", "optimization", "learning_rate=0.5")


def test_an_ident_never_matches_across_two_names():
    assert not selects("ab", "a", "b")


def test_node_id_characters_are_part_of_idents():
    node = "tasks/example.py::optimization[~alexnet-learning_rate=0.5][r2]"
    for ident in [
        "optimization[~alexnet",
        "tasks/example.py::optimization",
        "learning_rate=0.5",
        "[r2]",
        "~alexnet-learning_rate=0.5",
    ]:
        assert selects(ident, node), ident
    assert selects("a+b,c@d#e", "x[a+b,c@d#e]")


def test_a_whole_node_id_selects_its_trial_only():
    nodes = ["optimization[lr=0.1][r1]", "optimization[lr=0.1][r2]", "optimization[lr=0.5][r1]"]
    expression = Expression.compile("optimization[lr=0.1][r2]")
    assert [n for n in nodes if expression.matches([n])] == ["optimization[lr=0.1][r2]"]


def test_numbers_select_only_what_contains_them():
    nodes = ["trial[01]", "trial[02]", "trial[03]", "trial[10]"]
    expression = Expression.compile("01 or 02")
    assert [n for n in nodes if expression.matches([n])] == ["trial[01]", "trial[02]"]


def test_keywords_inside_words_are_idents():
    assert selects("android", "android-model")
    assert not selects("android", "and")
    assert selects("order", "sort_order")
    assert selects("nothing", "nothing_here")
    assert selects("not_me", "not_me")


def test_keywords_are_lower_case_only():
    # 'AND' is an ident, so 'a AND b' is an ident followed by stray tokens.
    assert selects("AND", "band")
    with pytest.raises(UsageError, match="at column 3"):
        Expression.compile("a AND b")


def test_not_excludes_and_or_combines():
    nodes = ["optimization[~alexnet]", "optimization[~vgg]", "baseline"]
    expression = Expression.compile("optimization and not alexnet or baseline")
    assert [n for n in nodes if expression.matches([n])] == ["optimization[~vgg]", "baseline"]


def test_names_may_be_any_iterable():
    assert Expression.compile("b").matches(iter(["a", "b"]))
    assert not Expression.compile("a").matches([])


def test_never_evaluates_python():
    # Python's names are plain idents here, and a call is not part of the grammar.
    assert not selects("True", "x")
    assert not selects("__import__", "x")
    with pytest.raises(UsageError):
        Expression.compile("__import__('os')")


# --- errors --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("(", "at column 2: expected 'not', '(' or an identifier, got end of input"),
        ("(a", "at column 3: expected ')', got end of input"),
        ("a)", "at column 2: expected 'and', 'or' or end of input, got ')'"),
        ("()", "at column 2: expected 'not', '(' or an identifier, got ')'"),
        ("a and", "at column 6: expected 'not', '(' or an identifier, got end of input"),
        ("a or or b", "at column 6: expected 'not', '(' or an identifier, got 'or'"),
        ("and a", "at column 1: expected 'not', '(' or an identifier, got 'and'"),
        ("not", "at column 4: expected 'not', '(' or an identifier, got end of input"),
        ("a b", "at column 3: expected 'and', 'or' or end of input, got identifier 'b'"),
        ("(a) (b)", "at column 5: expected 'and', 'or' or end of input, got '('"),
        ("a not b", "at column 3: expected 'and', 'or' or end of input, got 'not'"),
    ],
)
def test_bad_expressions_name_the_column_and_the_problem(text, message):
    with pytest.raises(UsageError) as info:
        Expression.compile(text)
    assert str(info.value) == f"-k expression '{text}': {message}"
    assert "\n" not in str(info.value)


def test_too_deep_nesting_is_a_usage_error_not_a_crash():
    text = "(" * (MAX_DEPTH + 1) + "a" + ")" * (MAX_DEPTH + 1)
    with pytest.raises(UsageError, match=f"at column {MAX_DEPTH + 1}: parentheses nested deeper than"):
        Expression.compile(text)


# --- properties ----------------------------------------------------------------------------------------

letters = st.text(alphabet="abcAB", min_size=1, max_size=3)
idents = letters.filter(lambda s: s not in ("and", "or", "not"))
names = st.lists(st.text(alphabet="abcAB[]=~", max_size=6), max_size=4)


@given(a=idents, b=idents, names=names)
def test_de_morgan(a, b, names):
    left = Expression.compile(f"not ({a} or {b})").matches(names)
    right = Expression.compile(f"not {a} and not {b}").matches(names)
    assert left == right


@given(ident=idents, names=names)
def test_matches_is_substring_of_any_name_ignoring_case(ident, names):
    expected = any(ident.lower() in name.lower() for name in names)
    assert Expression.compile(ident).matches(names) is expected
