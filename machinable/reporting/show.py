"""Inspecting stored results: ``machinable show``, as an aligned table, Markdown, CSV or JSON (docs/results.md).

Without an id: the storage's executions, newest first (id, name, start, trial counts by status). With ids (or
``-k`` over the whole storage): their trials, one row per configuration with each metric's mean ± std over the
trials that passed (:mod:`machinable.reporting.results` computes the table; this module only writes it), or one
row per trial with ``--no-group``; trials that did not pass are listed below it. ``--follow`` re-reads storage
and redraws the table until every trial has ended. Statuses come from the execution's index and the storage
reader, so a trial whose heartbeat stopped shows as ``crashed``, a planned trial that never started as
``not started``.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import shutil
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TextIO

from machinable.errors import UsageError
from machinable.reporting.results import ENDED, Column, Row, Stat, Table, select, table
from machinable.text import count_parts, plural
from machinable.trials import PASSING

if TYPE_CHECKING:
    from machinable.storage import Storage, StoredExecution

FORMATS = ("table", "md", "csv", "json")
GAP = Ellipsis  # a cell of the row that stands for rows left out: "..."
COUNTED = ("passed", "failed", "crashed")
MAX_CELL = 32

__all__ = [
    "FORMATS",
    "View",
    "execution_rows",
    "follow",
    "format_table",
    "gather",
    "render",
    "render_executions",
    "render_results",
]


@dataclass
class View:
    """How to show results: the output format and the table's options (see :func:`results.table`)."""

    fmt: str = "table"
    k: str | None = None
    metrics: str | None = None
    group_by: str | None = None
    no_group: bool = False
    sort: str | None = None

    def __post_init__(self) -> None:
        if self.fmt not in FORMATS:
            raise UsageError(f"unknown format {self.fmt!r}; formats: {', '.join(FORMATS)}")


# -- cells and formats ----------------------------------------------------------------------------------------


def cell(value: Any, limit: int | None = MAX_CELL) -> str:
    """A value as a table cell: floats in 6 significant digits, a :class:`Stat` as ``mean ± std`` (4 and 2
    significant digits; one value alone as itself), values longer than ``limit`` cut."""
    if isinstance(value, Stat):
        if value.mean is None:
            return "-"
        if value.std is None:
            return cell(value.mean, None)
        return f"{value.mean:.4g} ± {value.std:.2g}"
    if value is None:
        text = "-"
    elif value is GAP:
        text = "..."
    elif isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, float):
        text = repr(value) if len(repr(value)) <= 8 else f"{value:.6g}"  # 1.0 stays 1.0, long ones get short
    elif isinstance(value, str):
        text = value
    else:
        text = json.dumps(value, default=str)
    return text if limit is None or len(text) <= limit else text[: limit - 3] + "..."


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float | Stat) and not isinstance(value, bool)


def _numeric(raw: Sequence[Sequence[Any]], width: int) -> list[bool]:
    return [
        any(_is_number(r[i]) for r in raw)
        and all(_is_number(r[i]) or r[i] is None or r[i] is GAP for r in raw)
        for i in range(width)
    ]


def format_table(headers: Sequence[str], rows: Iterable[Sequence[Any]], uncut: int = 1) -> str:
    """Left-aligned columns separated by two spaces, numbers right-aligned; the first ``uncut`` columns (ids)
    are never shortened."""
    raw = [list(row) for row in rows]
    body = [[cell(v, None if i < uncut else MAX_CELL) for i, v in enumerate(row)] for row in raw]
    widths = [len(h) for h in headers]
    for row in body:
        widths = [max(w, len(c)) for w, c in zip(widths, row, strict=True)]
    numeric = _numeric(raw, len(headers))
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


def format_markdown(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A GitHub Markdown table (numbers right-aligned)."""
    raw = [list(row) for row in rows]
    numeric = _numeric(raw, len(headers))

    def line(cells: Iterable[str]) -> str:
        return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"

    lines = [line(headers), "|" + "|".join("---:" if n else "---" for n in numeric) + "|"]
    lines += [line(cell(v, None) for v in row) for row in raw]
    return "\n".join(lines)


def _machine(value: Any) -> Any:
    """A value for JSON: a Stat as {mean, std, n}; NaN and infinities as null (strict JSON has neither)."""
    if isinstance(value, Stat):
        return {"mean": _machine(value.mean), "std": _machine(value.std), "n": value.count}
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {str(k): _machine(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_machine(v) for v in value]
    return value


def format_json(records: Sequence[Mapping[str, Any]]) -> str:
    return json.dumps([_machine(r) for r in records], indent=2, default=str)


def format_csv(records: Sequence[Mapping[str, Any]]) -> str:
    """One line per record; a Stat becomes two numeric columns, ``NAME.mean`` and ``NAME.std``."""
    flat = []
    for record in records:
        row: dict[str, Any] = {}
        for name, value in record.items():
            if isinstance(value, Stat):
                row[f"{name}.mean"], row[f"{name}.std"] = value.mean, value.std
            elif isinstance(value, list | dict):
                row[name] = json.dumps(value, default=str)
            else:
                row[name] = "true" if value is True else "false" if value is False else value
        flat.append(row)
    names: dict[str, None] = {}
    for row in flat:
        names.update(dict.fromkeys(row))
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(names), lineterminator="\n")
    writer.writeheader()
    writer.writerows(flat)
    return out.getvalue().rstrip("\n")


def value_text(value: Any) -> str:
    """A configuration value as an override would write it: ``name=mnist``, ``augmentation=false``."""
    return value if isinstance(value, str) else json.dumps(value, default=str)


def render(result: Table, fmt: str = "table", head: Sequence[str] = (), notes: Sequence[str] = ()) -> str:
    """``result`` in ``fmt``: table and md with ``head`` lines, the common keys above and, below, ``notes``
    and the trials that did not pass; csv and json: the rows alone (common keys in every row)."""
    if fmt == "json":
        return format_json(result.records())
    if fmt == "csv":
        return format_csv(result.records())
    above = list(head)
    if result.common:
        above.append("common: " + " ".join(f"{k}={value_text(v)}" for k, v in result.common.items()))
    failures = failure_lines(result.failures)
    if fmt == "md":
        blocks = [*above, format_markdown(result.headers, result.cells()) if result.rows else ""]
        blocks += [*notes, "\n".join(f"- {line}" for line in failures)]
        return "\n\n".join(b for b in blocks if b)
    ids = next((i for i, c in enumerate(result.columns) if c.kind != "text"), len(result.columns))
    body = [format_table(result.headers, result.cells(), uncut=ids)] if result.rows else []
    return "\n".join([*above, *body, *notes, *failures])


def failure_lines(failures: Sequence[Mapping[str, Any]]) -> list[str]:
    """``FAILED node_id - first error line`` per trial that did not pass (its execution when there are several)."""
    several = len({f.get("execution") for f in failures}) > 1
    lines = []
    for entry in failures:
        where = f" ({entry.get('execution')})" if several else ""
        error = entry.get("error")
        if not error and entry.get("status") == "crashed":
            error = "its process stopped (no heartbeat)"
        lines.append(
            f"{str(entry.get('status')).upper()} {entry.get('node_id')}{where}"
            + (f" - {error}" if error else "")
        )
    return lines


# -- executions ---------------------------------------------------------------------------------------------------


def when(stamp: Any) -> str:
    if not isinstance(stamp, int | float):
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(stamp))


def execution_rows(storage: Storage) -> list[dict[str, Any]]:
    """One dict per stored execution, newest first: id, name, started, finished, trials and status counts (from
    the execution's index)."""
    rows = []
    for stored in storage.executions():
        statuses = [str(e.get("status")) for e in stored.results()]
        rows.append(
            {
                "id": stored.id,
                "folder": stored.folder,
                "name": stored.name,
                "started": stored.started,
                "finished": stored.finished,
                "trials": len(statuses),
                **{s: statuses.count(s) for s in COUNTED},
                "other": sum(s not in COUNTED for s in statuses),
            }
        )
    return rows


def render_executions(storage: Storage, fmt: str = "table") -> str:
    """The table (or JSON, CSV, Markdown) of every execution in ``storage``, newest first."""
    rows = execution_rows(storage)
    if fmt == "json":
        return json.dumps({"storage": storage.url, "executions": rows}, indent=2, default=str)
    if fmt == "csv":
        return format_csv(rows)
    if not rows:
        location = storage.location
        if location.is_local and not os.path.isdir(location.root):
            return f"storage {storage.url} holds no executions: the folder does not exist"  # a typo, often
        return f"storage {storage.url} holds no executions"
    headers = ["ID", "NAME", "STARTED", "TRIALS", "PASSED", "FAILED", "CRASHED", "OTHER"]
    # The folder, not the id: an id stored again is in <id>-2 ..., and `show` takes both.
    names = ("folder", "name", "started", "trials", "passed", "failed", "crashed", "other")
    cells = [[when(r[n]) if n == "started" else r[n] for n in names] for r in rows]
    title = f"storage {storage.url}: {plural(len(rows), 'execution')}, newest first"
    if fmt == "md":
        return f"{title}\n\n{format_markdown(headers, cells)}"
    return f"{title}\n{format_table(headers, cells)}"


def gather(
    executions: Sequence[StoredExecution], k: str | None = None, stale: bool = False
) -> list[dict[str, Any]]:
    """The index entries of ``executions`` matching ``k``, each with ``execution`` (its folder name). With
    ``stale``, a trial that passed with code that has changed since in its project's folder (where the
    execution ran, when it is on this machine) gets ``stale``: what changed."""
    from machinable.collection.fingerprint import changed

    entries = []
    for stored in executions:
        found = [{**entry, "execution": stored.folder} for entry in select(stored.results(), k)]
        root = (getattr(stored, "info", None) or {}).get("project") if stale else None
        if isinstance(root, str) and os.path.isdir(root):
            for entry in found:
                code = entry.get("code")
                if code and entry.get("status") in PASSING and (files := changed(code, root)):
                    entry["stale"] = files
        entries.extend(found)
    return entries


def head_lines(
    executions: Sequence[StoredExecution], entries: Sequence[Mapping[str, Any]], k: str | None
) -> list[str]:
    """What the table shows: the execution (id, seed, name, start, storage) or executions, and trial counts."""
    if len(executions) == 1:
        stored = executions[0]
        folder = "" if stored.folder == stored.id else f", folder {stored.folder}"
        title = f"execution {stored.id} (seed {stored.seed}{folder})" + (
            f" '{stored.name}'" if stored.name else ""
        )
        title += f", started {when(stored.started)}, storage {stored.storage.url}"
    else:
        names = [s.folder for s in executions]
        shown = ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")
        storage = executions[0].storage.url if executions else "-"
        title = f"{plural(len(names), 'execution')} ({shown}), storage {storage}"
    counts: dict[str, int] = {}
    for entry in entries:
        counts[str(entry.get("status"))] = counts.get(str(entry.get("status")), 0) + 1
    selected = f" matching -k {k!r}" if k else ""
    lines = [title, f"{plural(len(entries), 'trial')}{selected}: {', '.join(count_parts(counts)) or 'none'}"]
    stale = [e for e in entries if e.get("stale")]
    if stale:
        files = sorted({f for e in stale for f in e["stale"]})
        lines.append(
            f"STALE: {plural(len(stale), 'trial')} ran code that changed since ({', '.join(files)}); "
            "`machinable plan` lists them, `machinable --needed` runs them again"
        )
    return lines


def render_results(executions: Sequence[StoredExecution], view: View | None = None) -> str:
    """The results table of ``executions`` (trials matching ``view.k``) in ``view.fmt``."""
    view = view or View()
    entries = gather(executions, view.k, stale=True)
    result = table(entries, view.metrics, view.group_by, view.no_group, view.sort)
    return render(result, view.fmt, head_lines(executions, entries, view.k))


def grouped_summary(stored: StoredExecution) -> str:
    """The grouped results table of one execution without its head lines: what the terminal prints under the
    summary line of a run with repeats."""
    return render(table(gather([stored], None)), "table")


def ended(entries: Sequence[Mapping[str, Any]], finished: bool) -> bool:
    """Whether a followed run is over: no trial is running, and every trial has ended, or the executions have
    finished, or a trial crashed (its run was killed: the trials it did not start never will)."""
    statuses = [e.get("status") for e in entries]
    if any(s == "running" for s in statuses):
        return False
    return finished or all(s in ENDED for s in statuses) or "crashed" in statuses


def follow(
    load: Callable[[], Sequence[StoredExecution]],
    view: View | None = None,
    file: TextIO | None = None,
    interval: float = 1.0,
    tty: bool | None = None,
    sleep: Callable[[float], Any] = time.sleep,
) -> None:
    """Show the results of the executions ``load()`` returns (read again every ``interval`` seconds) until their
    trials have ended: redrawn in place on a terminal, printed again when it changed elsewhere."""
    view = view or View()
    file = file or sys.stdout
    tty = bool(getattr(file, "isatty", lambda: False)()) if tty is None else tty
    shown, height = None, 0
    while True:
        executions = load()
        entries = gather(executions, view.k, stale=True)
        result = table(entries, view.metrics, view.group_by, view.no_group, view.sort)
        text = render(result, view.fmt, head_lines(executions, entries, view.k))
        if text != shown:
            if tty and height:
                file.write(f"\x1b[{height}A\x1b[J")  # cursor up over the last table, clear to the end
            elif shown is not None:
                file.write("\n")
            file.write(text + "\n")
            file.flush()
            shown, height = text, _height(text)
        if ended(entries, all(s.finished is not None for s in executions)):
            return
        sleep(interval)


def _height(text: str) -> int:
    """The terminal lines ``text`` takes (long lines wrap)."""
    width = max(shutil.get_terminal_size(fallback=(80, 24)).columns, 1)
    return sum(max(1, -(-len(line) // width)) for line in text.split("\n"))


def table_of(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> Table:
    """A plain table of dicts (record rows), for the formats above."""
    return Table([Column(c, c) for c in columns], [Row([], {}, dict(r)) for r in rows])
