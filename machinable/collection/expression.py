r"""The ``-k EXPR`` selection language.

The grammar is::

    expression: expr? EOF
    expr:       and_expr ('or' and_expr)*
    and_expr:   not_expr ('and' not_expr)*
    not_expr:   'not' not_expr | '(' expr ')' | ident
    ident:      any run of characters other than whitespace and parentheses that is not a keyword

The semantics are:

- The keywords ``and``, ``or`` and ``not`` are lower-case whole words; ``android`` or ``AND`` are idents.
- An ident is true when it is a case-insensitive substring of any of a trial's names (its node id and keywords:
  component name, module, version names, ``name=value`` parameters). Node ids such as
  ``optimization[~alexnet-learning_rate=0.5][r2]`` are therefore valid idents as they stand.
- ``not`` binds tighter than ``and``, which binds tighter than ``or``.
- An empty expression selects everything.

The text is tokenized, parsed by recursive descent into a tree of closures once, and never handed to ``eval``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import NoReturn, final

from machinable.errors import UsageError

__all__ = ["Expression"]

Matcher = Callable[[str], bool]
# A compiled (sub)expression: given a matcher for idents, is it true?
Evaluator = Callable[[Matcher], bool]

LPAREN, RPAREN, AND, OR, NOT, IDENT, EOF = "(", ")", "and", "or", "not", "ident", "eof"
_KEYWORDS = {AND, OR, NOT}
_DESCRIBE = {LPAREN: "'('", RPAREN: "')'", AND: "'and'", OR: "'or'", NOT: "'not'", EOF: "end of input"}

# Every character belongs to one alternative, so the tokenizer itself can never fail.
_TOKEN_RE = re.compile(r"(?P<space>\s+)|(?P<paren>[()])|(?P<word>[^\s()]+)")

# Parentheses are the only unbounded recursion in the parser; a limit turns a pathological
# argument into a usage error instead of a RecursionError traceback.
MAX_DEPTH = 100


@dataclass(frozen=True)
class Token:
    kind: str
    value: str
    column: int  # 1-based, as shown to the user

    def describe(self) -> str:
        return f"identifier '{self.value}'" if self.kind == IDENT else _DESCRIBE[self.kind]


def tokenize(text: str) -> Iterator[Token]:
    for match in _TOKEN_RE.finditer(text):
        value, column = match.group(), match.start() + 1
        if match.lastgroup == "paren":
            yield Token(value, value, column)
        elif match.lastgroup == "word":
            yield Token(value if value in _KEYWORDS else IDENT, value, column)
    yield Token(EOF, "", len(text) + 1)


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = tokenize(text)
        self.current = next(self.tokens)
        self.depth = 0

    def accept(self, kind: str) -> Token | None:
        if self.current.kind != kind:
            return None
        token = self.current
        if kind != EOF:
            self.current = next(self.tokens)
        return token

    def fail(self, column: int, message: str) -> NoReturn:
        raise UsageError(f"-k expression '{self.text}': at column {column}: {message}")

    def reject(self, *expected: str) -> NoReturn:
        wanted = [_DESCRIBE.get(kind, "an identifier") for kind in expected]
        listed = wanted[0] if len(wanted) == 1 else ", ".join(wanted[:-1]) + " or " + wanted[-1]
        self.fail(self.current.column, f"expected {listed}, got {self.current.describe()}")

    def expression(self) -> Evaluator | None:
        if self.accept(EOF):
            return None
        result = self.expr()
        if not self.accept(EOF):
            self.reject(AND, OR, EOF)
        return result

    def expr(self) -> Evaluator:
        operands = [self.and_expr()]
        while self.accept(OR):
            operands.append(self.and_expr())
        return operands[0] if len(operands) == 1 else _any(operands)

    def and_expr(self) -> Evaluator:
        operands = [self.not_expr()]
        while self.accept(AND):
            operands.append(self.not_expr())
        return operands[0] if len(operands) == 1 else _all(operands)

    def not_expr(self) -> Evaluator:
        # 'not not not x' is read in a loop, so a long chain of nots costs no recursion.
        negations = 0
        while self.accept(NOT):
            negations += 1
        if opening := self.accept(LPAREN):
            if self.depth >= MAX_DEPTH:
                self.fail(opening.column, f"parentheses nested deeper than {MAX_DEPTH} levels")
            self.depth += 1
            result = self.expr()
            self.depth -= 1
            if not self.accept(RPAREN):
                self.reject(RPAREN)
        elif ident := self.accept(IDENT):
            result = _ident(ident.value)
        else:
            self.reject(NOT, LPAREN, IDENT)
        return _not(result) if negations % 2 else result


def _ident(name: str) -> Evaluator:
    return lambda matcher: matcher(name)


def _not(operand: Evaluator) -> Evaluator:
    return lambda matcher: not operand(matcher)


def _any(operands: list[Evaluator]) -> Evaluator:
    def evaluate(matcher: Matcher) -> bool:
        for operand in operands:
            if operand(matcher):
                return True
        return False

    return evaluate


def _all(operands: list[Evaluator]) -> Evaluator:
    def evaluate(matcher: Matcher) -> bool:
        for operand in operands:
            if not operand(matcher):
                return False
        return True

    return evaluate


@final
class Expression:
    """A compiled ``-k`` expression; compile once, then evaluate it against every trial."""

    __slots__ = ("text", "_evaluate")

    def __init__(self, text: str, evaluate: Evaluator | None) -> None:
        self.text = text
        self._evaluate = evaluate  # None: the empty expression

    @classmethod
    def compile(cls, text: str) -> Expression:
        """Parse ``text``; raise :class:`UsageError` with the column of the first mistake."""
        return cls(text, _Parser(text).expression())

    def evaluate(self, matcher: Matcher) -> bool:
        """Whether the expression holds when each ident is true exactly when ``matcher(ident)`` is."""
        return True if self._evaluate is None else self._evaluate(matcher)

    def matches(self, names: Iterable[str]) -> bool:
        """Whether the expression holds with idents matched case-insensitively as substrings of ``names``."""
        if self._evaluate is None:
            return True
        # Idents never contain whitespace, so a newline-joined haystack cannot produce a match that spans
        # two names; one lower() per trial instead of one per name and ident.
        haystack = "\n".join(names).lower()
        return self._evaluate(lambda ident: ident.lower() in haystack)

    def __repr__(self) -> str:
        return f"Expression({self.text!r})"
