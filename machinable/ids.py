"""Execution ids, seeds and node ids (DESIGN.md §4).

An execution id is six base62 digits (alphabet ``0-9A-Za-z``) encoding an integer in ``[62**5, 62**6 - 1]``; that
integer *is* the global seed. A trial's seed depends only on the global seed and the trial's node id.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Iterable, Mapping
from typing import Any

from machinable.errors import SeedError

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_DIGIT = {c: i for i, c in enumerate(ALPHABET)}
MIN_SEED = 62**5
MAX_SEED = 62**6 - 1


def encode(number: int) -> str:
    """Encode an integer of the id range as a six-character execution id."""
    if not MIN_SEED <= number <= MAX_SEED:
        raise SeedError(f"{number} is outside the execution id range [{MIN_SEED}, {MAX_SEED}]")
    digits = []
    while number:
        number, rest = divmod(number, 62)
        digits.append(ALPHABET[rest])
    return "".join(reversed(digits))


def decode(execution_id: str) -> int:
    """Decode a six-character execution id into its global seed."""
    if len(execution_id) != 6 or any(c not in _DIGIT for c in execution_id):
        raise SeedError(
            f"'{execution_id}' is not an execution id: expected 6 characters of 0-9, A-Z, a-z (e.g. 'OY1p1o')"
        )
    number = 0
    for c in execution_id:
        number = number * 62 + _DIGIT[c]
    if number < MIN_SEED:
        raise SeedError(f"'{execution_id}' is not an execution id: it must not start with '0'")
    return number


def execution_id(seed: int | str | None = None) -> str:
    """The execution id for ``seed``: random for None, derived for an int, checked for an id string.

    A string of six id characters is always an id, even when they are all digits; any other string of digits is
    an integer seed (the command line's ``--seed 42``). Negative integers are seeds of their own: ``-1`` does not
    give the execution of ``1``.
    """
    if seed is None:
        return encode(random.SystemRandom().randint(MIN_SEED, MAX_SEED))
    if isinstance(seed, bool):
        raise SeedError(f"seed must be an integer or an execution id, not {seed!r}")
    if isinstance(seed, int):
        # random.Random seeds with the absolute value of an int, so -1 would give 1's execution: a negative
        # seed is hashed from its text instead (positive seeds keep the ids they always had).
        return encode(random.Random(seed if seed >= 0 else str(seed)).randint(MIN_SEED, MAX_SEED))
    if isinstance(seed, str):
        text = seed.strip()
        if _is_id(text):
            return text  # also '123456': an id copied from a report must reproduce that execution's seed
        if text.removeprefix("-").isdigit():  # one sign at most: int('--5') would raise ValueError
            return execution_id(int(text))
        decode(text)
        return text
    raise SeedError(f"seed must be an integer or an execution id, not {type(seed).__name__} {seed!r}")


def _is_id(text: str) -> bool:
    return len(text) == 6 and text[0] != "0" and all(c in _DIGIT for c in text)


def trial_seed(global_seed: int, node_id: str) -> int:
    """A trial's seed: a stable 31-bit hash of the global seed and the trial's node id."""
    digest = hashlib.blake2b(f"{global_seed}\x00{node_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % 2**31


def trial_slot(component: str, config: Any, repeat_number: int) -> str:
    """Which trial of a sweep a trial is, whatever its seed, execution or node id (a task file names it
    differently from the command): the component, its resolved configuration and its repeat number."""
    text = json.dumps([component, config, repeat_number], sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.blake2b(text.encode(), digest_size=10).hexdigest()


def trial_identity(slot: str, seed: int) -> str:
    """A trial's identity without its code: the same trial of a sweep with the same seed."""
    return hashlib.blake2b(f"{slot}\x00{seed}".encode(), digest_size=10).hexdigest()


def trial_uid(node_id: str) -> str:
    """The trial's folder name: short, filesystem-safe and stable for the node id."""
    return hashlib.blake2b(node_id.encode(), digest_size=6).hexdigest()


# -- node ids: built from the content of a version, never its position, so a trial keeps its id (and its seed)
# when other trials are added or removed: ``optimization[~alexnet-learning_rate=0.5][r2]``.


def scalar_text(value: Any) -> str:
    """How a value is written in ids and keywords: strings as they are, ``true``/``null``, numbers by repr, JSON."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


MAX_ID_LENGTH = 80


def _scalar_id(value: Any) -> str:
    if isinstance(value, str):
        # Imported here: ids are used by code that never reads YAML (workers, ml.execute's import).
        from machinable.config.loader import reads_as_string

        # Bare when it reads back as this string; else quoted, so that 'true', 'null', '' and '1e-5' never share
        # an id (and a seed) with true, null, an empty value and 1e-05, and a newline never enters an id.
        if value.isprintable() and value == value.strip() and reads_as_string(value):
            return value
        return json.dumps(value, ensure_ascii=False)
    return scalar_text(value)


def _flatten(mapping: Mapping[str, Any], prefix: str = "") -> Iterable[str]:
    for key, value in mapping.items():
        if isinstance(value, Mapping) and value:
            yield from _flatten(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}={_scalar_id(value)}"


def version_id(element: Any) -> str:
    """A readable id for one version element: ``~alexnet-learning_rate=0.5``; '' for no version."""
    if element is None:
        return ""
    if isinstance(element, tuple):
        text = "-".join(part for part in map(version_id, element) if part)
    elif isinstance(element, Mapping):
        text = "-".join(_flatten(element))
    elif isinstance(element, str):
        text = " ".join(element.split())
    else:
        text = _scalar_id(element)
    return shorten(text)


def shorten(text: str) -> str:
    """Cut a long id part for readability; the hash keeps it unique and stable."""
    if len(text) > MAX_ID_LENGTH:
        text = text[: MAX_ID_LENGTH - 9] + "~" + hashlib.blake2b(text.encode(), digest_size=4).hexdigest()
    return text


def node_id(
    component: str, parts: Iterable[str], occurrence: int, repeat_number: int, repeat_total: int
) -> str:
    base = component + ("" if occurrence == 1 else f"#{occurrence}")
    base += "".join(f"[{part}]" for part in parts if part)
    return base + (f"[r{repeat_number}]" if repeat_total > 1 else "")
