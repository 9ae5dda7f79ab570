"""How machinable words things, in one place: plurals, the line that says what went wrong, the summary line.

Every report (the terminal, ``Execution.summary()``, resume, reproduce, the determinism check) ends with the
same kind of line, ``3 passed, 1 failed in 0.42 s``; :func:`summary_line` is the only place that formats it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from machinable.trials import CACHED, OUTCOMES

# The order in which trial outcomes are listed; any other outcome (a plugin's) follows in the order seen.
OUTCOME_ORDER = (*OUTCOMES[:1], CACHED, *OUTCOMES[1:])  # '3 passed, 5 cached, 1 failed'


def plural(n: int, word: str) -> str:
    """``1 trial``, ``2 trials``."""
    return f"{n} {word}{'' if n == 1 else 's'}"


def first_line(text: str | None) -> str:
    """The line that says what went wrong: the last non-empty one of a traceback."""
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    return lines[-1] if lines else ""


def count_parts(
    counts: Mapping[str, int], order: Iterable[str] = OUTCOME_ORDER, keep_zero: bool = False
) -> list[str]:
    """``['3 passed', '1 failed']``: the known outcomes in ``order``, then the others as counted."""
    known = list(order)
    parts = [f"{counts.get(name, 0)} {name}" for name in known if keep_zero or counts.get(name)]
    parts += [f"{n} {name}" for name, n in counts.items() if name not in known and n]
    return parts


def summary_line(parts: Iterable[str], seconds: float, empty: str = "no trials ran") -> str:
    """``3 passed, 1 failed in 0.42 s`` (``empty`` when there are no parts)."""
    text = ", ".join(parts) or empty
    return f"{text} in {seconds:.2f} s"
