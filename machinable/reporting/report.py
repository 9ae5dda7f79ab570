"""``machinable report`` and ``ml.report``: one HTML file of an execution's results, to open in a browser.

The page holds everything it needs (plotly.js, the styles, the scripts and the data inline): it can be mailed,
attached to an issue or opened years later without a network or a server. It shows the executions (ids,
seeds, project, code version, times, engine, host), the trials counted by status, the grouped table of
:mod:`machinable.reporting.results` (sortable), each metric's curve over the record rows per configuration
(mean ± std over the seeds; each trial on a click), each metric's final or best value against the swept
configuration keys, and the trials that did not pass grouped by their error, with the command that reproduces
each. See docs/results.md ("The report").

plotly (the optional extra ``machinable[report]``) is imported only when a report is written: it provides
plotly.js, inlined once; the figures are plain dicts (:mod:`machinable.reporting.report_plots`) and the page
is written by :mod:`machinable.reporting.report_page`. Storage is read through ``machinable.storage`` only.
"""

from __future__ import annotations

import os
import shlex
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from machinable.errors import MachinableError, StorageError, UsageError
from machinable.reporting.report_page import Content, FailureGroup, Plot, render_page
from machinable.reporting.report_plots import (
    MAX_POINTS,
    Line,
    Point,
    curve_figure,
    parcoords_figure,
    scatter_figure,
    step_column,
    trial_cap,
)
from machinable.reporting.results import FAILED, Metric, Table, keys_of, metric_names, parse_metrics, table
from machinable.reporting.show import gather, value_text
from machinable.storage import Storage, StoredExecution, gc_paused
from machinable.trials import PASSING

__all__ = [
    "MissingPlotly",
    "check_output",
    "collect",
    "open_in_browser",
    "plotly_js",
    "report",
    "report_command",
    "resolve",
]

INSTALL = 'pip install "machinable[report]"'


class MissingPlotly(MachinableError, ImportError):
    """plotly, the optional extra ``machinable[report]``, is not installed."""


def report(
    execution: Any,
    path: str | os.PathLike[str] = "report.html",
    storage: Any = None,
    *,
    k: str | None = None,
    metrics: str | Sequence[str] | None = None,
    group_by: str | Sequence[str] | None = None,
) -> Path:
    """Write the report of ``execution`` to ``path`` (one self-contained HTML file) and return its path.

    ``execution``: an ``Execution`` (what ``ml.execute`` returns), a stored execution, an execution id or
    folder name in ``storage`` (a URL, path or ``ml.Storage``), or a list of these (one report of them all).
    ``k``: only the trials matching this ``-k`` expression; ``metrics``: ``'loss,acc:max'`` as for ``show``
    (``:min`` / ``:max``: the best value over each trial's rows in the table and the final-value plots);
    ``group_by``: the configuration keys that make a group (a line in the plots, a row in the table).

    Bad input is a UsageError, checked in this order: the output path (a folder, a missing or unwritable
    folder), plotly missing (MachinableError), an unknown execution, no trials, no records, an unknown metric.
    """
    target = check_output(path)
    plotlyjs, version = plotly_js()
    executions = resolve(execution, storage)
    content = collect(executions, k, metrics, group_by)
    html = render_page(content, plotlyjs, version)
    try:
        with open(target, "w", encoding="utf-8") as file:
            file.write(html)
    except OSError as exc:
        raise UsageError(f"cannot write the report to {os.fspath(path)}: {exc.strerror or exc}") from None
    return target


def report_command(executions: Sequence[StoredExecution], storage: Any, option: Any) -> int:
    """``machinable report``: write the report, print its path, open it with ``--open``."""
    from machinable.execution.options import ExitCode

    path = report(
        executions, option.output, storage, k=option.keyword, metrics=option.metric, group_by=option.group_by
    )
    print(path)
    if option.open and not open_in_browser(path):
        print("no web browser to open it in: open the file above", file=sys.stderr)
    return ExitCode.OK


def open_in_browser(path: Path) -> bool:
    """Open ``path`` in the default web browser (python's ``webbrowser``); False when there is none."""
    import webbrowser

    return bool(webbrowser.open(path.as_uri()))


def check_output(path: str | os.PathLike[str]) -> Path:
    """The absolute path to write to; UsageError when it is a folder or its folder is missing or unwritable."""
    target = Path(os.path.abspath(os.path.expanduser(os.fspath(path))))
    shown = os.fspath(path)
    if target.is_dir():
        raise UsageError(
            f"cannot write the report to {shown}: it is a folder (give a file name, e.g. report.html)"
        )
    folder = target.parent
    if not folder.is_dir():
        why = "is a file" if folder.exists() else "does not exist"
        raise UsageError(f"cannot write the report to {shown}: the folder {folder} {why}")
    try:
        handle, probe = tempfile.mkstemp(dir=folder, prefix=".machinable-report-")
        os.close(handle)
        os.unlink(probe)
    except OSError as exc:
        raise UsageError(f"cannot write the report to {shown}: {exc.strerror or exc}") from None
    if target.exists() and not os.access(target, os.W_OK):
        raise UsageError(f"cannot write the report to {shown}: the file is not writable")
    return target


def plotly_js() -> tuple[str, str]:
    """plotly.js (the library's source, inlined into the page) and its version; MissingPlotly without plotly."""
    try:
        from plotly.offline import get_plotlyjs, get_plotlyjs_version
    except ImportError:
        raise MissingPlotly(f"the report needs plotly: {INSTALL}") from None
    return get_plotlyjs(), get_plotlyjs_version()


def resolve(execution: Any, storage: Any = None) -> list[StoredExecution]:
    """The stored executions ``execution`` names (see :func:`report`); UsageError for an unknown id."""
    items = list(execution) if isinstance(execution, list | tuple) else [execution]
    if not items:
        raise UsageError("no execution to report on")
    opened: Storage | None = None
    found: dict[str, StoredExecution] = {}
    for item in items:
        if isinstance(item, StoredExecution):
            stored = item
        elif isinstance(item, str):
            if opened is None:
                opened = _storage(storage)
            try:
                stored = opened.get(item)
            except StorageError as exc:
                raise UsageError(str(exc)) from None
        elif callable(getattr(item, "stored", None)):
            stored = item.stored()  # an Execution
        else:
            raise UsageError(
                f"report: expected an Execution, a stored execution or an execution id, not {type(item).__name__}"
            )
        found.setdefault(f"{stored.storage.url}/{stored.folder}", stored)
    return list(found.values())


def _storage(storage: Any) -> Storage:
    if isinstance(storage, Storage):
        return storage
    try:
        return Storage(storage)
    except StorageError as exc:
        raise UsageError(str(exc)) from None


# -- what the page shows -----------------------------------------------------------------------------------------


def collect(executions: Sequence[StoredExecution], k: str | None, metrics: Any, group_by: Any) -> Content:
    """Everything the page shows, read from storage: UsageError when there is nothing to show."""
    entries = gather(executions, k)
    names = ", ".join(s.folder for s in executions)
    if not entries:
        matching = f" matches -k {k!r}" if k else ""
        raise UsageError(f"no trial of execution {names}{matching}: nothing to report")
    recorded = [e for e in entries if _rows(e)]
    if not recorded:
        raise UsageError(
            f"execution {names} has no records: no trial saved a record row (self.record['loss'] = ...; "
            "self.record.save())"
        )
    by_folder = {s.folder: s for s in executions}
    first = _trial(by_folder, recorded[0]).records
    x_name = step_column(first[0]) if first else None
    chosen = _metrics(metrics, entries, x_name)
    result = table(entries, chosen, group_by)
    labels = group_labels(result)
    curve_names = list(dict.fromkeys(m.name for m in chosen))
    lines = read_lines(by_folder, result, labels, curve_names, x_name)
    x_title = x_name or "record row"
    plots = [_curve_plot(name, x_title, lines[name]) for name in curve_names]
    plots += final_plots(result, chosen, labels, len(executions) > 1)
    return Content(
        executions=list(executions),
        entries=entries,
        table=result,
        k=k,
        x_title=x_title,
        plots=plots,
        failures=failure_groups(by_folder, entries, len(executions) > 1),
    )


def _rows(entry: Mapping[str, Any]) -> int:
    rows = (entry.get("metrics") or {}).get("rows")
    return rows if isinstance(rows, int) else 0


def _trial(by_folder: Mapping[str, StoredExecution], entry: Mapping[str, Any]) -> Any:
    stored = by_folder[entry["execution"]]
    cached = entry.get("cached_from")
    if (
        isinstance(cached, str) and "/" in cached
    ):  # a cached trial's records are those of the trial it stands for
        folder, _, uid = cached.rpartition("/")
        return stored.storage.get(folder).trial_at(uid)
    return stored.trial_at(entry["uid"])


def _metrics(spec: Any, entries: Sequence[Mapping[str, Any]], x_name: str | None) -> list[Metric]:
    """The chosen metrics; by default every numeric column but the curves' x column."""
    known = metric_names(entries)
    if spec is None:
        return [Metric(name) for name in known if name != x_name]
    if not known:
        raise UsageError("unknown metric: the trials recorded no numeric column")
    return parse_metrics(spec, entries)


def group_labels(result: Table) -> list[str]:
    """A label per row of ``result``: its values of the keys that differ (``lr=0.1, fail=false``)."""
    keys = [c for c in result.columns if c.kind == "key"]
    if not keys:
        return [str(result.common.get("component") or "all trials") for _ in result.rows]
    return [", ".join(f"{c.name}={value_text(row.values.get(c.name))}" for c in keys) for row in result.rows]


def read_lines(
    by_folder: Mapping[str, StoredExecution],
    result: Table,
    labels: Sequence[str],
    names: Sequence[str],
    x_name: str | None,
) -> dict[str, list[Line]]:
    """Per metric, a :class:`Line` per row of ``result``: every trial's records read once, one at a time."""
    lines = {name: [Line(label, i) for i, label in enumerate(labels)] for name in names}
    several = len(by_folder) > 1
    count = sum(1 for row in result.rows for entry in row.entries if _rows(entry))
    cap = trial_cap(count * len(names))
    with gc_paused():
        for index, row in enumerate(result.rows):
            for entry in row.entries:
                if not _rows(entry):
                    continue
                records = _trial(by_folder, entry).records
                passed = entry.get("status") in PASSING
                name = _hover(entry, several)
                for metric, (xs, ys) in columns(records, x_name, names).items():
                    if ys:
                        lines[metric][index].add(name, xs, ys, passed, cap)
    return lines


def columns(rows: Sequence[Mapping[str, Any]], x_name: str | None, names: Sequence[str]) -> dict[str, tuple]:
    """Per name, (xs, ys) of the rows with a finite number in it; x is ``x_name``'s value, else the row's
    position."""
    found: dict[str, tuple[list, list]] = {name: ([], []) for name in names}
    pairs = [(name, found[name]) for name in names]
    infinite = (float("inf"), float("-inf"))
    for i, row in enumerate(rows):
        x = row.get(x_name, i) if x_name else i
        if type(x) not in (int, float) or x != x or x in infinite:
            x = i
        for name, (xs, ys) in pairs:
            y = row.get(name)
            if (type(y) is float and y == y and y not in infinite) or type(y) is int:
                xs.append(x)
                ys.append(y)
    return found


def _hover(entry: Mapping[str, Any], several: bool) -> str:
    text = f"{entry.get('node_id')} (seed {entry.get('seed')}"
    if entry.get("status") not in PASSING:
        text += f", {entry.get('status')}"
    if several:
        text += f", {entry.get('execution')}"
    return text + ")"


def _curve_plot(name: str, x_title: str, lines: Sequence[Line]) -> Plot:
    figure = curve_figure(name, x_title, lines)
    notes = []
    if any(line.trials_downsampled for line in lines):
        notes.append("each trial's own line is min-max decimated to fit the page")
    if any(line.mean_downsampled for line in lines):
        notes.append(f"lines of more than {MAX_POINTS:,} points are min-max decimated to {MAX_POINTS:,}")
    return Plot("curves", name, figure, "; ".join(notes))


def final_plots(result: Table, chosen: Sequence[Metric], labels: Sequence[str], several: bool) -> list[Plot]:
    """Each metric's value (last row, or min / max) against the swept keys: a scatter per key, or parallel
    coordinates when more than two keys vary."""
    keys = [c.key for c in result.columns if c.kind == "key"]
    if not keys:
        return []
    metric_columns = [c for c in result.columns if c.kind == "metric"]
    plots = []
    for column, metric in zip(metric_columns, chosen, strict=True):
        points = [
            Point(keys_of(entry), value, _hover(entry, several), index)
            for index, row in enumerate(result.rows)
            for entry in row.entries
            if entry.get("status") in PASSING and (value := metric.of(entry)) is not None
        ]
        if not points:
            continue
        stats = [row.values.get(column.name) for row in result.rows]
        groups = [(label, stat.mean, stat.std) for label, stat in zip(labels, stats, strict=True)]
        if len(keys) > 2:
            plots.append(Plot("finals", metric.label, parcoords_figure(metric.label, keys, points)))
            continue
        for key in keys:
            plots.append(Plot("finals", metric.label, scatter_figure(metric.label, key, points, groups)))
    return plots


def failure_groups(
    by_folder: Mapping[str, StoredExecution], entries: Sequence[Mapping[str, Any]], several: bool = False
) -> list[FailureGroup]:
    """The trials that did not pass, grouped by the line that says what went wrong, the largest group first;
    each group with the traceback of its first trial."""
    grouped: dict[str, list[Mapping[str, Any]]] = {}
    for entry in entries:
        status = entry.get("status")
        if status not in FAILED:
            continue
        signature = entry.get("error") or (
            "its process stopped (no heartbeat)" if status == "crashed" else str(status)
        )
        grouped.setdefault(signature, []).append(entry)
    groups = []
    for signature, members in grouped.items():
        traceback = _trial(by_folder, members[0]).error or ""
        trials = [
            (
                {**e, "execution": e["execution"] if several else None},
                reproduce_command(by_folder[e["execution"]], e),
            )
            for e in members
        ]
        groups.append(FailureGroup(signature, traceback, trials))
    groups.sort(key=lambda g: -len(g.trials))
    return groups


def reproduce_command(stored: StoredExecution, entry: Mapping[str, Any]) -> str:
    """``machinable reproduce ID -k NODE --storage URL`` for one trial (no --storage for memory storage)."""
    words = ["machinable", "reproduce", stored.folder, "-k", str(entry.get("node_id") or entry.get("uid"))]
    url = stored.storage.url
    if not url.startswith("memory://"):
        words += ["--storage", url]
    return shlex.join(words)
