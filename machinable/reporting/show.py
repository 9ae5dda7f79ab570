"""Inspecting stored results: ``machinable show [ID]`` as aligned tables or JSON.

Without an id: the storage's executions, newest first (id, name, start, trial count, passed / failed / crashed
and other counts). With an id: the execution's trials in plan order (node id, status, seed, the configuration
values that tell the trials apart, and the last value of each record column of the default scope). Status comes
from the storage reader, so a trial whose heartbeat stopped shows as ``crashed``, and a planned trial that never
started as ``not started``.
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from machinable.storage import TIMESTAMP_COLUMNS

if TYPE_CHECKING:
    from machinable.storage import Storage, StoredExecution

COUNTED = ("passed", "failed", "crashed")
MAX_CONFIG_COLUMNS = 6
MAX_CELL = 32

__all__ = ["execution_rows", "format_table", "render_execution", "render_executions", "trial_rows"]


def _status_counts(statuses: Iterable[str]) -> dict[str, int]:
    counts = Counter(statuses)
    out = {s: counts.get(s, 0) for s in COUNTED}
    out["other"] = sum(n for s, n in counts.items() if s not in COUNTED)
    return out


def execution_rows(storage: Storage) -> list[dict[str, Any]]:
    """One dict per stored execution, newest first: id, name, started, finished, trials and status counts."""
    from machinable.storage import trial_states

    rows = []
    for stored in storage.executions():
        states = trial_states(stored)
        rows.append(
            {
                "id": stored.id,
                "folder": stored.folder,
                "name": stored.name,
                "started": stored.started,
                "finished": stored.finished,
                "trials": len(states),
                **_status_counts(status for _, status in states),
            }
        )
    return rows


def trial_rows(stored: StoredExecution) -> list[dict[str, Any]]:
    """One dict per planned trial: node_id, uid, status, seed, config, last record values, error (first line)."""
    from machinable.storage import trial_states
    from machinable.text import first_line

    present = {t.uid: t for t in stored.trials}
    rows = []
    for spec, status in trial_states(stored):
        trial = present.get(spec.uid)
        rows.append(
            {
                "node_id": spec.node_id,
                "uid": spec.uid,
                "status": status,
                "seed": spec.seed,
                "config": spec.config,
                "last": last_values(trial.records) if trial is not None else {},
                "error": (first_line(trial.error) or None) if trial is not None else None,
            }
        )
    return rows


def last_values(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The last value of each record column (timestamps left out), in the order the columns first appear."""
    last: dict[str, Any] = {}
    for row in rows:
        for column, value in row.items():
            if column not in TIMESTAMP_COLUMNS:
                last[column] = value
    return last


def flatten(config: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{'data': {'name': 'x'}}`` -> ``{'data.name': 'x'}``; hidden keys (``_x``) are left out, as in reports."""
    out: dict[str, Any] = {}
    for key, value in config.items():
        if str(key).startswith(("_", "~")):
            continue
        if isinstance(value, Mapping) and value:
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def key_config(configs: Sequence[Mapping[str, Any]]) -> list[str]:
    """The configuration keys worth a column: those whose values differ between the trials; when none do, the
    top-level scalars. At most ``MAX_CONFIG_COLUMNS``."""
    flat = [flatten(c) for c in configs]
    keys: list[str] = []
    for f in flat:
        keys += [k for k in f if k not in keys]
    differing = [k for k in keys if len({_canonical(f.get(k, _ABSENT)) for f in flat}) > 1]
    if differing:
        return differing[:MAX_CONFIG_COLUMNS]
    first = configs[0] if configs else {}
    scalars = [
        k for k, v in first.items() if not str(k).startswith(("_", "~")) and not isinstance(v, Mapping | list)
    ]
    return scalars[:MAX_CONFIG_COLUMNS]


_ABSENT = object()


def _canonical(value: Any) -> str:
    if value is _ABSENT:
        return "\x00absent"
    return json.dumps(value, sort_keys=True, default=str)


def cell(value: Any, limit: int | None = MAX_CELL) -> str:
    """A value as a table cell: floats in 6 significant digits, values longer than ``limit`` cut."""
    if value is None or value is _ABSENT:
        text = "-"
    elif isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, float):
        text = repr(value) if len(repr(value)) <= 8 else f"{value:.6g}"  # 1.0 stays 1.0, long ones get short
    elif isinstance(value, str):
        text = value
    else:
        text = json.dumps(value, default=str)
    return text if limit is None or len(text) <= limit else text[: limit - 3] + "..."


def format_table(headers: Sequence[str], rows: Iterable[Sequence[Any]], uncut: int = 1) -> str:
    """Left-aligned columns separated by two spaces, numbers right-aligned; the first ``uncut`` columns (ids)
    are never shortened."""
    raw = [list(row) for row in rows]
    body = [[cell(v, None if i < uncut else MAX_CELL) for i, v in enumerate(row)] for row in raw]
    widths = [len(h) for h in headers]
    for row in body:
        widths = [max(w, len(c)) for w, c in zip(widths, row, strict=True)]
    numeric = [
        any(_is_number(r[i]) for r in raw) and all(_is_number(r[i]) or r[i] is None for r in raw)
        for i in range(len(headers))
    ]
    lines = [
        "  ".join(
            h.ljust(w) if not n else h.rjust(w) for h, w, n in zip(headers, widths, numeric, strict=True)
        ).rstrip()
    ]
    for row in body:
        lines.append(
            "  ".join(
                c.rjust(w) if n else c.ljust(w) for c, w, n in zip(row, widths, numeric, strict=True)
            ).rstrip()
        )
    return "\n".join(lines)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _when(stamp: Any) -> str:
    if not isinstance(stamp, int | float):
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(stamp))


def render_executions(storage: Storage, as_json: bool = False) -> str:
    """The table (or JSON) of every execution in ``storage``, newest first."""
    rows = execution_rows(storage)
    if as_json:
        return json.dumps({"storage": storage.url, "executions": rows}, indent=2, default=str)
    if not rows:
        location = storage.location
        if location.is_local and not os.path.isdir(location.root):
            return f"storage {storage.url} holds no executions: the folder does not exist"  # a typo, often
        return f"storage {storage.url} holds no executions"
    headers = ["ID", "NAME", "STARTED", "TRIALS", "PASSED", "FAILED", "CRASHED", "OTHER"]
    table = format_table(
        headers,
        [
            [
                r["folder"],  # the id, or <id>-2 ... for an id stored again: what `show ID` takes
                r["name"],
                _when(r["started"]),
                r["trials"],
                r["passed"],
                r["failed"],
                r["crashed"],
                r["other"],
            ]
            for r in rows
        ],
    )
    noun = "execution" if len(rows) == 1 else "executions"
    return f"storage {storage.url}: {len(rows)} {noun}, newest first\n{table}"


def render_execution(stored: StoredExecution, as_json: bool = False) -> str:
    """The table (or JSON) of one execution's trials."""
    rows = trial_rows(stored)
    counts = _status_counts(r["status"] for r in rows)
    if as_json:
        head = {
            "id": stored.id,
            "folder": stored.folder,
            "seed": stored.seed,
            "name": stored.name,
            "storage": stored.storage.url,
            "started": stored.started,
            "finished": stored.finished,
            "project": stored.info.get("project"),
            "resumed": stored.info.get("resumed") or [],
            "counts": counts,
        }
        return json.dumps({"execution": head, "trials": rows}, indent=2, default=str)
    parts = [f"{counts[s]} {s}" for s in COUNTED if counts[s]]
    parts += [f"{n} {s}" for s, n in Counter(r["status"] for r in rows).items() if s not in COUNTED]
    folder = "" if stored.folder == stored.id else f", folder {stored.folder}"
    title = f"execution {stored.id} (seed {stored.seed}{folder})" + (
        f" '{stored.name}'" if stored.name else ""
    )
    head = f"{title}, started {_when(stored.started)}, storage {stored.storage.url}"
    head += f"\n{len(rows)} trial{'' if len(rows) == 1 else 's'}: {', '.join(parts) or 'none'}"
    if not rows:
        return head
    config_keys = key_config([r["config"] for r in rows])
    flats = [flatten(r["config"]) for r in rows]
    columns: list[str] = []
    for r in rows:
        columns += [c for c in r["last"] if c not in columns]
    # A record column named like a configuration key gets a prefix, so the two never look alike.
    record_headers = [f"last.{c}" if c in config_keys else c for c in columns]
    headers = ["NODE ID", "STATUS", "SEED", *config_keys, *record_headers]
    table = format_table(
        headers,
        [
            [
                r["node_id"],
                r["status"],
                r["seed"],
                *(f.get(k) for k in config_keys),
                *(r["last"].get(c) for c in columns),
            ]
            for r, f in zip(rows, flats, strict=True)
        ],
    )
    return f"{head}\n{table}"
