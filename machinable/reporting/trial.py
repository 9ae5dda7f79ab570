"""One stored trial in full: ``machinable show ID NODE_ID`` (docs/results.md).

Its status, seed, duration, earlier attempts (folders under ``attempts/``), configuration as YAML, the head and
tail rows of a record scope as a table, and on request its log and captured output. The trial is named by a
uid, a node id or a prefix of one; a prefix that matches several trials is a usage error listing them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from machinable.errors import UsageError
from machinable.reporting.show import GAP, format_csv, render, table_of, when
from machinable.storage import ATTEMPTS_DIR, TIMESTAMP_COLUMNS

if TYPE_CHECKING:
    from machinable.storage import StoredExecution, StoredTrial

__all__ = ["NoSuchTrial", "attempts", "find_entry", "render_trial", "shown_rows"]


class NoSuchTrial(UsageError):
    """No trial of the execution has this uid, node id or node id prefix."""


def find_entry(entries: Sequence[Mapping[str, Any]], key: str, execution: str) -> dict[str, Any]:
    """The index entry of the trial named ``key``: its uid, its node id, or the one node id starting with it."""
    for field in ("uid", "node_id"):
        exact = [e for e in entries if e.get(field) == key]
        if exact:
            return dict(exact[0])
    matches = [e for e in entries if str(e.get("node_id") or "").startswith(key)]
    if len(matches) == 1:
        return dict(matches[0])
    if matches:
        names = ", ".join(str(e.get("node_id")) for e in matches[:10]) + (
            ", ..." if len(matches) > 10 else ""
        )
        raise UsageError(
            f"trial {key!r} is ambiguous in execution {execution}: it starts {len(matches)} node ids: {names}"
        )
    known = ", ".join(str(e.get("node_id")) for e in entries[:10]) or "none"
    raise NoSuchTrial(f"execution {execution} has no trial {key!r}; its trials: {known}")


def attempts(trial: StoredTrial) -> int:
    """How many earlier attempts (a resume ran the trial again) are kept under ``attempts/``."""
    prefix = ATTEMPTS_DIR + "/"
    return len({f.split("/")[1] for f in trial.files() if f.startswith(prefix) and f.count("/") >= 2})


def shown_rows(count: int, limit: int) -> list[int]:
    """The indices of ``limit`` rows of ``count``: the first half and the last half (all when ``limit`` is 0)."""
    if limit <= 0 or count <= limit:
        return list(range(count))
    head = (limit + 1) // 2
    return [*range(head), *range(count - (limit - head), count)]


def _records(trial: StoredTrial, scope: str, limit: int) -> tuple[list[str], list[dict[str, Any]], int]:
    """(columns, the shown rows with their ``row`` number, the number of rows) of a record scope."""
    if scope != "default" and scope not in trial.record_scopes():
        scopes = ", ".join(trial.record_scopes()) or "none"
        raise UsageError(
            f"trial {trial.node_id or trial.uid} has no record scope {scope!r}; its scopes: {scopes}"
        )
    rows = trial.records_of(scope)
    columns: dict[str, None] = {"row": None}
    for row in rows:
        columns.update(dict.fromkeys(c for c in row if c not in TIMESTAMP_COLUMNS))
    shown = [{"row": i, **rows[i]} for i in shown_rows(len(rows), limit)]
    return list(columns), shown, len(rows)


def render_trial(
    stored: StoredExecution,
    key: str,
    fmt: str = "table",
    rows: int = 10,
    scope: str = "default",
    log: bool = False,
    output: bool = False,
) -> str:
    """The trial ``key`` of ``stored`` in full (``fmt``: table or md; json an object; csv its shown rows)."""
    entry = find_entry(stored.results(), key, stored.id)
    trial = stored.trial_at(entry["uid"])
    columns, shown, count = _records(trial, scope, rows)
    facts = {
        "execution": stored.id,
        **{k: entry.get(k) for k in ("node_id", "uid", "component", "status", "seed", "duration", "started")},
        "error": entry.get("error"),
        "attempts": attempts(trial),
        "config": entry.get("config") or {},
        "scope": scope,
        "rows": count,
    }
    if fmt == "json":
        texts = {"log": trial.log if log else None, "output": trial.output if output else None}
        extra = {name: text for name, text in texts.items() if text is not None}
        return json.dumps({**facts, "records": shown, **extra}, indent=2, default=str)
    if fmt == "csv":
        return format_csv([{c: r.get(c) for c in columns} for r in shown])
    text = "\n".join([*_summary(facts, trial), *_config(facts["config"])])
    if count:
        omitted = f", {count - len(shown)} not shown" if len(shown) < count else ""
        head = f"records ({scope}): {count} rows{omitted}"
        gap = [i for i in range(1, len(shown)) if shown[i]["row"] != shown[i - 1]["row"] + 1]
        if gap:
            shown.insert(gap[0], dict.fromkeys(columns, GAP))
        text += "\n" + render(table_of(shown, columns), fmt, [head])
    else:
        text += f"\nrecords ({scope}): none"
    for wanted, name, content in ((log, "log.txt", trial.log), (output, "output.log", trial.output)):
        if wanted:
            text += f"\n{name}:\n" + (content.rstrip("\n") or "(empty)")
    return text


def _summary(facts: Mapping[str, Any], trial: StoredTrial) -> list[str]:
    lines = [f"trial {facts['node_id']} of execution {facts['execution']}"]
    duration = facts.get("duration")
    pairs = [
        ("uid", facts["uid"]),
        ("component", facts["component"]),
        ("status", facts["status"]),
        ("error", facts["error"]),
        ("seed", facts["seed"]),
        ("started", when(facts["started"])),
        ("duration", f"{duration:.2f} s" if isinstance(duration, int | float) else "-"),
        ("attempts", facts["attempts"]),
    ]
    scopes = trial.record_scopes()
    if len(scopes) > 1:
        pairs.append(("scopes", ", ".join(scopes)))
    stored = sorted(trial.store)
    if stored:
        pairs.append(("stored", ", ".join(stored)))
    lines += [f"{name + ':':<11}{value}" for name, value in pairs if value is not None]
    return lines


def _config(config: Mapping[str, Any]) -> list[str]:
    import yaml

    plain = json.loads(json.dumps(config, default=str))
    text = (
        yaml.safe_dump(plain, sort_keys=False, default_flow_style=False, allow_unicode=True)
        if plain
        else "{}\n"
    )
    return ["configuration:", *("  " + line for line in text.rstrip("\n").split("\n"))]
