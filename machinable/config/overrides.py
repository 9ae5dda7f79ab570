"""Overrides: configuration from the command line, spelled like Hydra's, and sweeps over it.

One override per argument (``machinable linreg lr=0.1 data.name=mnist``), or several in a version string or a
target's brackets, joined by ``-`` as in node ids (``'linreg[~mnist-lr=0.1,0.01]'``)::

    override := ["+"] key "=" values         set a key ("+": add a key the configuration does not have)
              | "~" key                      remove a key (command line only; in brackets "~name" is a version)
    key      := name ("." name)*             a dotted path into the configuration
    values   := value ("," value)*           several values sweep: one trial each
              | "range(" start "," stop ["," step] ")"    like Python's range, floats allowed
    value    := a YAML flow value            1e-3, mnist, [64, 64], {name: adam}, "1", null

Commas separate values only outside brackets and quotes, so ``layers=[64,64],[128]`` is two values. Several
swept keys give the cartesian product in the order written; each swept key adds ``key=value`` to the trial's
node id part and keywords, like ``@parametrize``. Every malformed override is a :class:`UsageError` naming it.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from machinable.errors import UsageError
from machinable.ids import scalar_text

_KEY = re.compile(r"[A-Za-z_][\w-]*(?:\.[A-Za-z_][\w-]*)*")
_SETTER = re.compile(r"\+?[A-Za-z_][\w.-]*=")
_REMOVAL = re.compile(r"~[A-Za-z_][\w.-]*")
_RANGE = re.compile(r"range\((.*)\)", re.DOTALL)
_OPEN, _CLOSE = "[{(", "]})"
# A version string splits into parts at "-" before "~name", "_mixin_" or "key=" (the node id's own spelling).
_PART = re.compile(r"-(?=[~_]|\+?[A-Za-z_][\w.]*=)")
MAX_SWEEP = 1_000_000


@dataclass(frozen=True)
class Override:
    """One override: ``path`` (``('data', 'name')``), ``op`` (``'set'``, ``'add'``, ``'remove'``) and its
    ``values`` (more than one: swept)."""

    text: str
    path: tuple[str, ...]
    op: str
    values: tuple[Any, ...] = ()
    swept: bool = False

    @property
    def key(self) -> str:
        return ".".join(self.path)

    def element(self, index: int = 0) -> dict[str, Any]:
        """The version element that applies value ``index``: ``{'data': {'+size': 224}}``."""
        leaf = {"add": "+", "remove": "~"}.get(self.op, "") + self.path[-1]
        result: Any = {leaf: self.values[index] if self.values else None}
        for name in reversed(self.path[:-1]):
            result = {name: result}
        return result

    def part(self, index: int) -> str:
        """``lr=0.1``: the node id part and keyword of value ``index``."""
        return f"{self.key}={scalar_text(self.values[index])}"


def is_override(arg: str) -> bool:
    """Whether a command-line argument is an override rather than a target: ``key=...`` with the ``=`` before
    any ``[``, ``+key=...`` or ``~key`` (the caller checks that it is not an existing path)."""
    if _REMOVAL.fullmatch(arg):
        return True
    equals, bracket = arg.find("="), arg.find("[")
    return equals >= 0 and (bracket < 0 or equals < bracket)


def parse_override(text: str) -> Override:
    """One override argument (module docstring); a malformed one is a UsageError naming it."""
    if _REMOVAL.fullmatch(text):
        return Override(text, _path(text[1:], text), "remove")
    key, equals, raw = text.partition("=")
    if not equals or not key:
        raise UsageError(f"override '{text}': expected KEY=VALUE (e.g. lr=0.1), +KEY=VALUE or ~KEY")
    op = "add" if key.startswith("+") else "set"
    path = _path(key[1:] if op == "add" else key, text)
    if not raw:
        raise UsageError(f"override '{text}': the value is empty; write {key}='' for an empty string")
    values = _values(raw, text)
    return Override(text, path, op, values, swept=len(values) > 1 or raw.startswith("range("))


def parse_overrides(args: Iterable[str]) -> list[Override]:
    """Overrides in the order written; a key given twice is an error."""
    found: list[Override] = []
    for text in args:
        override = parse_override(text)
        for earlier in found:
            if earlier.key == override.key:
                what = "swept twice" if earlier.swept and override.swept else "given twice"
                raise UsageError(
                    f"override '{text}': key '{override.key}' is {what} (also in '{earlier.text}')"
                )
        found.append(override)
    return found


@dataclass(frozen=True)
class Point:
    """One point of a sweep: its node id part (``''`` when nothing is swept), version element and keywords."""

    id: str
    element: dict[str, Any]
    keywords: tuple[str, ...]


def sweep(overrides: Sequence[Override]) -> list[Point]:
    """The cartesian product of the swept overrides (in the order written), each point carrying every override."""
    from machinable.config.merge import deep_merge

    swept = [o for o in overrides if o.swept]
    size = 1
    for override in swept:
        size *= len(override.values)
    if size > MAX_SWEEP:
        raise UsageError(
            f"the sweep {' '.join(o.text for o in swept)} makes {size:,} trials; at most {MAX_SWEEP:,}"
        )
    fixed: dict[str, Any] = {}
    for override in overrides:
        if not override.swept:
            fixed = deep_merge(fixed, override.element())
    points = []
    for indices in itertools.product(*(range(len(o.values)) for o in swept)):
        element = fixed
        parts = []
        for override, index in zip(swept, indices, strict=True):
            element = deep_merge(element, override.element(index))
            parts.append(override.part(index))
        points.append(Point("-".join(parts), element, tuple(parts)))
    return points


def version_from_string(text: str) -> Any:
    """A version string in override spelling (``'~alexnet-lr=0.1,0.01'``): its element (a ``~name``, a dict, or a
    tuple of them), or a list of elements when it sweeps; None when ``text`` is not in override spelling."""
    pieces = _PART.split(text)
    if not any(_SETTER.match(piece) for piece in pieces):
        return None
    return _combine(pieces, text)


def bracket_version(text: str) -> Any:
    """The version of a ``NAME[VERSION]`` target, the inverse of a node id's version part: ``~names``,
    ``_mixins_`` and overrides joined by ``-`` (a list of elements when it sweeps)."""
    return _combine(_PART.split(text), text)


def _combine(pieces: list[str], text: str) -> Any:
    parts: list[list[Any]] = []
    for piece in pieces:
        if piece.startswith(("~", "_")) and "=" not in piece:
            parts.append([piece])
        elif _SETTER.match(piece):
            override = parse_override(piece)
            parts.append([override.element(i) for i in range(len(override.values))])
        else:
            raise UsageError(f"version '{text}': '{piece}' is not KEY=VALUE, '~version' or '_mixin_'")
    elements = [combo[0] if len(combo) == 1 else combo for combo in itertools.product(*parts)]
    if len(elements) == 1:
        return elements[0]
    return elements


def _path(key: str, text: str) -> tuple[str, ...]:
    if not _KEY.fullmatch(key):
        raise UsageError(f"override '{text}': '{key}' is not a configuration key (e.g. lr or data.name)")
    return tuple(key.split("."))


def _values(raw: str, text: str) -> tuple[Any, ...]:
    ranged = _RANGE.fullmatch(raw.strip())
    if ranged:
        return _range(ranged.group(1), text)
    pieces = _split(raw, text)
    if any(not piece.strip() for piece in pieces):
        raise UsageError(
            f"override '{text}': an empty value between commas; quote it ('') for an empty string"
        )
    return tuple(yaml_value(piece, f"override '{text}'") for piece in pieces)


def _split(raw: str, text: str) -> list[str]:
    """``raw`` split at the commas outside brackets and quotes; unbalanced brackets or quotes are errors."""
    pieces, depth, quote, start = [], [], "", 0
    for i, char in enumerate(raw):
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char in _OPEN:
            depth.append(_CLOSE[_OPEN.index(char)])
        elif char in _CLOSE:
            if not depth or depth.pop() != char:
                raise UsageError(f"override '{text}': unbalanced '{char}'")
        elif char == "," and not depth:
            pieces.append(raw[start:i])
            start = i + 1
    if quote or depth:
        raise UsageError(
            f"override '{text}': unclosed {quote or depth[-1]!r}"
            if quote
            else f"override '{text}': a bracket is not closed"
        )
    pieces.append(raw[start:])
    return pieces


def yaml_value(piece: str, where: str) -> Any:
    """``piece`` read as a YAML value the way machinable.yaml is read (``4:00:00`` stays text); a UsageError
    naming ``where`` (the override, the option) when it is none."""
    from machinable.config.loader import parse_mapping_string
    from machinable.errors import ConfigError

    try:
        return parse_mapping_string(f"v: {piece.strip()}", where)["v"]
    except (ConfigError, TypeError, KeyError):
        raise UsageError(f"{where}: '{piece}' is not a YAML value") from None


def _range(arguments: str, text: str) -> tuple[Any, ...]:
    """``range(start, stop[, step])`` with numbers (floats allowed, counted exactly in decimal)."""
    parts = [p.strip() for p in arguments.split(",")]
    if len(parts) not in (2, 3):
        raise UsageError(
            f"override '{text}': range takes a start, a stop and an optional step, e.g. range(0,1,0.25)"
        )
    try:
        start, stop, step = (Decimal(p) for p in (*parts, "1")[:3])
    except InvalidOperation:
        raise UsageError(f"override '{text}': range takes numbers, not {', '.join(parts)}") from None
    if step == 0:
        raise UsageError(f"override '{text}': the step of range cannot be 0")
    count = max(0, int((stop - start) / step) + (1 if (stop - start) % step else 0))
    if count == 0:
        raise UsageError(f"override '{text}': the range has no values")
    integral = all("." not in p and "e" not in p.lower() for p in parts)
    values = (start + i * step for i in range(count))
    return tuple(int(v) if integral else float(v) for v in values)
