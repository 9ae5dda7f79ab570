"""The HTML of ``machinable report``: one self-contained page (styles, scripts, plotly.js and data inline).

:func:`render_page` writes what :mod:`machinable.reporting.report` collected. The page's contract (the browser
tests rely on it): the results table is ``<table id="results">`` and a click on a ``<th>`` sorts its rows
(numbers as numbers; a second click on the same header reverses them); every plot is a ``<div class="plot">``
drawn by ``Plotly.newPlot``; when all are drawn, ``window.machinableReady`` is ``true`` and
``document.body.dataset.plots`` is the number drawn; the ``<title>`` contains "machinable report".
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from html import escape
from typing import Any

from machinable import __version__
from machinable.reporting.report_plots import CONFIG, color
from machinable.reporting.results import Stat, Table
from machinable.reporting.show import cell, value_text, when
from machinable.text import count_parts, plural

__all__ = ["Content", "FailureGroup", "Plot", "render_page"]


@dataclass
class Plot:
    """A figure of the page, in ``section`` (``curves`` or ``finals``), with a note under it."""

    section: str
    title: str
    figure: dict[str, Any]
    note: str = ""


@dataclass
class FailureGroup:
    """Trials that failed with the same last error line: the first one's traceback, and each trial's entry
    with the command that reproduces it."""

    signature: str
    traceback: str
    trials: list[tuple[dict[str, Any], str]]


@dataclass
class Content:
    executions: list[Any]  # StoredExecution
    entries: list[dict[str, Any]]
    table: Table
    k: str | None
    x_title: str
    plots: list[Plot] = field(default_factory=list)
    failures: list[FailureGroup] = field(default_factory=list)


def render_page(content: Content, plotlyjs: str, plotly_version: str) -> str:
    ids = ", ".join(s.folder for s in content.executions)
    body = [
        _header(content, ids),
        _summary(content),
        _plots_section(content, "curves", "Curves", _CURVES_NOTE.format(x=escape(_over(content.x_title)))),
        _plots_section(content, "finals", "Final values by configuration", _FINALS_NOTE),
        _failures(content.failures),
        f"<footer>written by machinable {escape(__version__)} on {escape(when(time.time()))} with plotly.js "
        f"{escape(plotly_version)}, inline: this file needs no network.</footer>",
    ]
    figures = {f"plot-{i}": plot.figure for i, plot in enumerate(content.plots)}
    return _PAGE.format(
        title=escape(f"machinable report {ids}"),
        style=_STYLE,
        body="\n".join(part for part in body if part),
        plotlyjs=plotlyjs,
        figures=_script_json(figures),
        config=_script_json(CONFIG),
        script=_SCRIPT,
    )


def _script_json(value: Any) -> str:
    """``value`` as a JavaScript literal inside <script>: no ``<`` can end the script early."""
    return json.dumps(value, separators=(",", ":"), default=str).replace("<", "\\u003c")


# -- header and table --------------------------------------------------------------------------------------------


def code_version(info: Mapping[str, Any]) -> str:
    version = info.get("code_version") or {}
    commit = version.get("commit") if isinstance(version, Mapping) else None
    if not commit:
        return "not a git work tree" if isinstance(version, Mapping) else str(version)
    branch = f" ({version['branch']})" if version.get("branch") else ""
    return f"{commit[:12]}{branch}, {'dirty' if version.get('dirty') else 'clean'}"


FACTS = ("execution", "seed", "name", "project", "code version", "started", "finished", "engine", "host")


def _facts(stored: Any) -> list[str]:
    info = stored.info
    finished = info.get("finished")
    took = ""
    if isinstance(finished, int | float) and isinstance(info.get("started"), int | float):
        took = f" ({finished - info['started']:.1f} s)"
    return [
        stored.folder,
        str(stored.seed),
        stored.name or "-",
        str(info.get("project") or "-"),
        code_version(info),
        when(info.get("started")),
        when(finished) + took if finished is not None else "not finished",
        str(info.get("engine") or "-"),
        str(info.get("host") or "-"),
    ]


def _header(content: Content, ids: str) -> str:
    rows = "".join(
        "<tr>" + "".join(f"<td>{escape(v)}</td>" for v in _facts(s)) + "</tr>" for s in content.executions
    )
    heads = "".join(f"<th>{escape(name)}</th>" for name in FACTS)
    storage = content.executions[0].storage.url
    nav = " · ".join(
        f'<a href="#{anchor}">{name}</a>'
        for anchor, name, shown in (
            ("summary", "results", True),
            ("curves", "curves", any(p.section == "curves" for p in content.plots)),
            ("finals", "final values", any(p.section == "finals" for p in content.plots)),
            ("failures", "failures", bool(content.failures)),
        )
        if shown
    )
    return (
        f"<header><h1>machinable report <span class='ids'>{escape(ids)}</span></h1>"
        f"<table class='facts'><thead><tr>{heads}</tr></thead><tbody>{rows}</tbody></table>"
        f"<p class='muted'>storage {escape(storage)}</p><nav>{nav}</nav></header>"
    )


def _summary(content: Content) -> str:
    counts: dict[str, int] = {}
    for entry in content.entries:
        counts[str(entry.get("status"))] = counts.get(str(entry.get("status")), 0) + 1
    badges = " ".join(
        f"<span class='status {escape(part.split(' ', 1)[1].replace(' ', '-'))}'>{escape(part)}</span>"
        for part in count_parts(counts)
    )
    matching = f" matching <code>-k {escape(content.k)}</code>" if content.k else ""
    common = ""
    if content.table.common:
        pairs = " ".join(
            f"<code>{escape(k)}={escape(value_text(v))}</code>" for k, v in content.table.common.items()
        )
        common = f"<p>common: {pairs}</p>"
    return (
        f"<section id='summary'><h2>Results by configuration</h2>"
        f"<p class='counts'>{plural(len(content.entries), 'trial')}{matching}: {badges}</p>{common}"
        f"{results_table(content.table)}<p class='muted'>Metrics: mean ± sample standard deviation over the "
        "trials that passed. Click a column's title to sort by it, again to reverse.</p></section>"
    )


def results_table(result: Table) -> str:
    """``<table id="results">``: a row per configuration, its colour as in the plots; each number also in
    ``data-value`` for sorting."""
    heads = "".join(f"<th title='sort by {escape(c.name)}'>{escape(c.title)}</th>" for c in result.columns)
    rows = []
    for index, row in enumerate(result.rows):
        cells = []
        for position, column in enumerate(result.columns):
            value = row.values.get(column.name)
            text = escape(cell(value, None))
            if position == 0:
                text = f"<span class='swatch' style='background:{color(index)}'></span>{text}"
            cells.append(f"<td{_sort_value(value)}>{text}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return (
        f"<table id='results' class='sortable'><thead><tr>{heads}</tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def _sort_value(value: Any) -> str:
    if isinstance(value, Stat):
        value = value.mean
    if isinstance(value, int | float) and not isinstance(value, bool) and value == value:
        return f" data-value='{value!r}'"
    return ""


# -- plots and failures -----------------------------------------------------------------------------------------

_CURVES_NOTE = (
    "Each metric over {x}: per configuration, the mean over its passed trials with a band of ± one standard "
    "deviation. Click a legend entry to hide or show it; '· trials' shows each trial's own line (hover for "
    "its node id and seed). The buttons switch the y axis between linear and log."
)
_FINALS_NOTE = (
    "Each trial's value of a metric (its last row's, or its best with NAME:min / NAME:max) against the "
    "configuration keys that vary, with each configuration's mean ± std; parallel coordinates when more than "
    "two keys vary."
)


def _over(x_title: str) -> str:
    return "the record rows" if x_title == "record row" else f"{x_title} (a column of the records)"


def _plots_section(content: Content, section: str, title: str, note: str) -> str:
    shown = [(i, plot) for i, plot in enumerate(content.plots) if plot.section == section]
    if not shown:
        return ""
    figures = "".join(
        f"<figure><div class='plot' id='plot-{i}'></div>"
        + (f"<figcaption>{escape(plot.note)}</figcaption>" if plot.note else "")
        + "</figure>"
        for i, plot in shown
    )
    return f"<section id='{section}'><h2>{title}</h2><p class='muted'>{note}</p>{figures}</section>"


def _failures(groups: Sequence[FailureGroup]) -> str:
    if not groups:
        return ""
    parts = []
    for group in groups:
        items = "".join(
            f"<li><code>{escape(str(entry.get('node_id')))}</code> {escape(str(entry.get('status')))}, seed "
            f"{escape(str(entry.get('seed')))}"
            + (f", execution {escape(str(entry['execution']))}" if entry.get("execution") else "")
            + f"<pre class='command'>{escape(command)}</pre></li>"
            for entry, command in group.trials
        )
        traceback = (
            f"<details open><summary>traceback of {escape(str(group.trials[0][0].get('node_id')))}</summary>"
            f"<pre class='traceback'>{escape(group.traceback)}</pre></details>"
            if group.traceback.strip()
            else ""
        )
        parts.append(
            f"<div class='failure'><h3>{escape(group.signature)} "
            f"<span class='muted'>{plural(len(group.trials), 'trial')}</span></h3>{traceback}<ul>{items}</ul></div>"
        )
    count = sum(len(g.trials) for g in groups)
    return (
        f"<section id='failures'><h2>Failures</h2><p class='muted'>{plural(count, 'trial')} did not pass, "
        f"grouped by the last line of the error; each with the command that runs it again.</p>"
        f"{''.join(parts)}</section>"
    )


# -- the page ----------------------------------------------------------------------------------------------------

_STYLE = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0 auto;
  max-width: 1200px; padding: 16px 24px; color: #222; }
h1 { font-size: 22px; margin: 8px 0; } h1 .ids { color: #555; font-weight: normal; }
h2 { font-size: 18px; margin: 28px 0 8px; border-bottom: 1px solid #ddd; padding-bottom: 4px; }
h3 { font-size: 15px; margin: 16px 0 6px; }
table { border-collapse: collapse; margin: 8px 0; }
th, td { padding: 4px 10px; border-bottom: 1px solid #e5e5e5; text-align: left; white-space: nowrap; }
td[data-value] { text-align: right; font-variant-numeric: tabular-nums; }
table.sortable th { cursor: pointer; user-select: none; background: #f6f6f6; }
table.sortable th[aria-sort=ascending]::after { content: " \\25B2"; }
table.sortable th[aria-sort=descending]::after { content: " \\25BC"; }
table.facts { font-size: 13px; } .muted { color: #666; } nav a { color: #0b63b8; }
.swatch { display: inline-block; width: 10px; height: 10px; border-radius: 5px; margin-right: 6px; }
.status { padding: 1px 6px; border-radius: 3px; background: #eee; }
.status.passed { background: #dcf3dc; } .status.failed, .status.crashed { background: #f8d7d7; }
.status.interrupted, .status.preempted, .status.running, .status.not-started { background: #fdf1cc; }
figure { margin: 12px 0 20px; } figcaption { color: #666; font-size: 12px; }
div.plot { width: 100%; min-height: 420px; }
pre { background: #f6f6f6; padding: 8px; overflow-x: auto; font-size: 12px; }
pre.command { display: inline-block; margin: 4px 0 4px 8px; padding: 2px 6px; }
footer { margin-top: 32px; color: #888; font-size: 12px; }
"""

_SCRIPT = """
(function () {
  "use strict";
  function key(cell) {
    var given = cell.getAttribute("data-value");
    var text = given !== null ? given : cell.textContent.trim();
    var number = Number(text);
    return text !== "" && !isNaN(number) ? {number: number} : {text: text};
  }
  function compare(a, b) {
    if ("number" in a && "number" in b) { return a.number - b.number; }
    if ("number" in a) { return -1; }
    if ("number" in b) { return 1; }
    return a.text.localeCompare(b.text, undefined, {numeric: true});
  }
  document.querySelectorAll("table.sortable").forEach(function (table) {
    var heads = table.querySelectorAll("thead th");
    heads.forEach(function (th, column) {
      th.addEventListener("click", function () {
        var body = table.tBodies[0];
        var rows = Array.prototype.slice.call(body.rows);
        var order = th.getAttribute("aria-sort");
        if (order) {
          rows.reverse();
          th.setAttribute("aria-sort", order === "ascending" ? "descending" : "ascending");
        } else {
          rows.sort(function (a, b) { return compare(key(a.cells[column]), key(b.cells[column])); });
          heads.forEach(function (other) { other.removeAttribute("aria-sort"); });
          th.setAttribute("aria-sort", "ascending");
        }
        rows.forEach(function (row) { body.appendChild(row); });
      });
    });
  });
  function traces(figure) {
    var data = figure.data.slice();
    (figure.trials || []).forEach(function (group) {
      group.lines.forEach(function (line, i) {
        data.push({
          type: "scatter", mode: "lines", x: line[1], y: line[2], legendgroup: group.name,
          showlegend: i === 0, visible: group.visible, line: {color: group.color, width: 1},
          name: group.name + " (" + group.lines.length + ")", hovertemplate: "%{y}<extra>" + line[0] + "</extra>"
        });
      });
    });
    return data;
  }
  var drawn = Array.prototype.map.call(document.querySelectorAll("div.plot"), function (div) {
    var figure = FIGURES[div.id];
    return Plotly.newPlot(div, traces(figure), figure.layout, CONFIG);
  });
  Promise.all(drawn).then(function () {
    document.body.dataset.plots = String(drawn.length);
    window.machinableReady = true;
  });
})();
"""

_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>{style}</style>
</head>
<body>
{body}
<script>{plotlyjs}</script>
<script>
var FIGURES = {figures};
var CONFIG = {config};
{script}
</script>
</body>
</html>
"""
