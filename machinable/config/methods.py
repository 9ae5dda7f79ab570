"""Config methods: a value ``double(21)`` is replaced by what ``config_double(21)`` returns.

The method is looked up on the component class (``self`` is the configuration as a
:class:`~machinable.config.view.ConfigView`, with references resolved and method values not yet computed;
static and class methods are called as they are) or, for a function component, as a module-level function
``config_double`` of the component's module (called without ``self``).

Arguments are parsed with :mod:`ast` and must be literals (``literal_eval``); nothing is ever evaluated.
"""

from __future__ import annotations

import ast
import inspect
import re
import sys
from dataclasses import dataclass
from typing import Any

from machinable.config.errors import ConfigMethodError

_CALL = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\((.*)\)", re.DOTALL)


@dataclass(frozen=True)
class MethodCall:
    """A parsed ``name(args, key=value)`` value."""

    text: str
    name: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]


def looks_like_call(value: str) -> bool:
    """A cheap pre-check for the hot path: only strings that end in ')' can be calls."""
    return value[-1:] == ")" and "(" in value


def parse_call(text: str, where: str) -> MethodCall | None:
    """Parse ``text`` as a call with literal arguments; ``None`` when it is not shaped like one call."""
    match = _CALL.fullmatch(text)
    if match is None:
        return None
    source = f"_({match.group(2)})"
    try:
        tree = ast.parse(source, mode="eval")
    except SyntaxError:
        if "$" in match.group(2):
            # 'double($self.width)' would otherwise stay a string without a word; methods read keys from self.
            raise ConfigMethodError(
                f"{where}: config method call {text!r} passes a reference ({match.group(2).strip()}); arguments "
                f"must be literals: read the key inside the method instead (self.<key>)"
            ) from None
        # e.g. 'f(x' + ')(' mixtures: not a call of ours, keep the string.
        return None
    call = tree.body
    if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id == "_"):
        return None  # 'a(1) + b(2)' matched the pattern but is an expression, not one call
    args = [_literal(node, source, text, where) for node in call.args]
    kwargs = {}
    for keyword in call.keywords:
        if keyword.arg is None:
            raise _not_literal(text, "**" + (ast.get_source_segment(source, keyword.value) or ""), where)
        kwargs[keyword.arg] = _literal(keyword.value, source, text, where)
    return MethodCall(text, match.group(1), tuple(args), kwargs)


def _literal(node: ast.expr, source: str, text: str, where: str) -> Any:
    try:
        if isinstance(node, ast.Starred):
            raise ValueError
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        raise _not_literal(text, ast.get_source_segment(source, node) or "?", where) from None


def _not_literal(text: str, argument: str, where: str) -> ConfigMethodError:
    return ConfigMethodError(
        f"{where}: config method call {text!r} has an argument that is not a literal ({argument}); only "
        "numbers, strings, booleans, None, lists, tuples, dicts and sets are allowed, nothing is evaluated"
    )


def call_method(target: Any, call: MethodCall, config: Any, where: str) -> Any:
    """Call ``config_<name>`` for ``target`` (a component class or function)."""
    attribute = f"config_{call.name}"
    if inspect.isclass(target):
        raw = inspect.getattr_static(target, attribute, None)
        if raw is None:
            raise ConfigMethodError(
                f"{where}: value {call.text!r} calls config method '{attribute}', but class "
                f"'{target.__qualname__}' has no such method"
            )
        method = getattr(target, attribute)
        bound = isinstance(raw, (staticmethod, classmethod)) or not inspect.isfunction(raw)
        return _invoke(method, call, () if bound else (config,), where)
    module = sys.modules.get(getattr(target, "__module__", ""), None)
    function = getattr(module, attribute, None) if module is not None else None
    if function is None:
        module_name = getattr(target, "__module__", "?")
        raise ConfigMethodError(
            f"{where}: value {call.text!r} calls config method '{attribute}', but module '{module_name}' "
            "has no such function"
        )
    return _invoke(function, call, (), where)


def _invoke(function: Any, call: MethodCall, leading: tuple[Any, ...], where: str) -> Any:
    try:
        return function(*leading, *call.args, **call.kwargs)
    except Exception as exc:
        raise ConfigMethodError(
            f"{where}: config method call {call.text!r} failed: {type(exc).__name__}: {exc}"
        ) from exc
