"""What ``machinable plan`` prints: each collected trial's state against a storage, and the counts."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING

from machinable.reporting.show import format_table
from machinable.text import plural

if TYPE_CHECKING:
    from machinable.collection.needed import Planned


def render_plan(planned: Sequence[Planned], storage: str, as_json: bool = False) -> str:
    from machinable.collection.needed import counts

    found = counts(planned)
    if as_json:
        # One line: json's indented output is a pure-Python encoder, seconds for 10,000 trials.
        return json.dumps(
            {"storage": storage, "counts": found, "trials": [p.to_json() for p in planned]},
            default=str,
        )
    rows = [[p.state, p.spec.node_id, p.spec.seed, _detail(p)] for p in planned]
    table = format_table(["STATE", "TRIAL", "SEED", "STORED"], rows, uncut=4) if rows else ""
    summary = ", ".join(f"{n} {state}" for state, n in found.items()) or "nothing collected"
    runs = sum(n for state, n in found.items() if state in ("new", "stale", "failed"))
    tail = f"{summary}; --needed would run {plural(runs, 'trial')}"
    return f"storage {storage}: {plural(len(planned), 'trial')}\n{table}\n{tail}" if rows else tail


def _detail(planned: Planned) -> str:
    attempt = planned.attempt
    if attempt is None:
        return ""
    where = f"{attempt.status} in {attempt.execution}"
    if planned.state == "stale":
        return f"{where}; changed: {', '.join(planned.changed)}"
    return where
