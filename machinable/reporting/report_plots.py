"""The plots of ``machinable report``: figures as plain dicts for plotly.js, and the downsampling that keeps them
small.

Nothing here imports plotly: a figure is the ``{"data": [...], "layout": {...}}`` that ``Plotly.newPlot`` takes,
built from numbers, so that a report of 1,000 trials does not pay for plotly's validation of every trace
(:mod:`machinable.reporting.report` inlines plotly.js and the figures into one page).

* :func:`curve_figure`: a metric over the record rows (or a step-like column), one line per configuration as
  the mean over its passed trials with a shaded band of ± one standard deviation; each trial's own line is a
  ``legendonly`` trace (one legend entry per configuration shows them all); a linear / log toggle.
* :func:`scatter_figure`: a metric's final (or best) value against one swept configuration key: each passed
  trial, and the mean ± std of each configuration. :func:`parcoords_figure`: against every swept key at once.

A line of more than :data:`MAX_POINTS` points is min-max decimated (:func:`downsample`): per bucket of
consecutive points, the smallest and the largest value, in their order, so that spikes and the extremes stay
visible. The trials' own lines share a budget of :data:`TRIAL_POINTS` points per page.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "MAX_POINTS",
    "STEP_COLUMNS",
    "TRIAL_POINTS",
    "Line",
    "Point",
    "curve_figure",
    "downsample",
    "downsample_indices",
    "parcoords_figure",
    "scatter_figure",
    "step_column",
    "trial_cap",
    "trial_traces",
]

MAX_POINTS = 1000  # per line
TRIAL_POINTS = 200_000  # all trials' own lines of a page together
MIN_TRIAL_POINTS = 20  # per trial line, however many trials there are
TRIAL_DIGITS = 4  # significant digits of a trial's own line (the means keep 6)
STEP_COLUMNS = ("step", "epoch", "iteration", "_iteration")
COLORS = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
    "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
)  # fmt: skip
CONFIG = {"responsive": True, "displaylogo": False}


def color(index: int, alpha: float | None = None) -> str:
    value = COLORS[index % len(COLORS)]
    if alpha is None:
        return value
    red, green, blue = (int(value[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({red},{green},{blue},{alpha})"


def is_number(value: Any) -> bool:
    """A finite int or float (not a bool)."""
    return type(value) in (int, float) and math.isfinite(value)


def compact(value: float, digits: int = 6) -> float:
    """``value`` in ``digits`` significant digits (enough for hover and a line; halves the page's size)."""
    return value if type(value) is int else float(f"{value:.{digits}g}")


# -- downsampling -------------------------------------------------------------------------------------------------


def downsample_indices(ys: Sequence[float], limit: int = MAX_POINTS) -> list[int]:
    """The indices of the points of ``ys`` to keep: all when there are at most ``limit``; else ``limit // 2``
    buckets of consecutive points, and of each its smallest and its largest value, in their order."""
    n = len(ys)
    if n <= limit:
        return list(range(n))
    buckets = max(1, limit // 2)
    value = ys.__getitem__
    keep: list[int] = []
    for bucket in range(buckets):
        low, high = bucket * n // buckets, (bucket + 1) * n // buckets
        if low >= high:
            continue
        span = range(low, high)
        smallest, largest = min(span, key=value), max(span, key=value)
        keep.extend(sorted({smallest, largest}))
    return keep


def downsample(xs: Sequence[Any], ys: Sequence[float], limit: int = MAX_POINTS) -> tuple[list, list]:
    """``(xs, ys)`` with at most ``limit`` points, min-max decimated (see :func:`downsample_indices`)."""
    keep = downsample_indices(ys, limit)
    return [xs[i] for i in keep], [ys[i] for i in keep]


def trial_cap(lines: int) -> int:
    """Points per trial line when a page has ``lines`` of them: the budget shared, within bounds."""
    if lines <= 0:
        return MAX_POINTS
    return max(MIN_TRIAL_POINTS, min(MAX_POINTS, TRIAL_POINTS // lines))


def step_column(row: Mapping[str, Any]) -> str | None:
    """The first of :data:`STEP_COLUMNS` that ``row`` has a number in (the x axis of the curves)."""
    return next((name for name in STEP_COLUMNS if is_number(row.get(name))), None)


# -- curves -------------------------------------------------------------------------------------------------------


@dataclass
class Line:
    """One configuration's curve of one metric: its passed trials' values by x, and each trial's own line
    (hover text, xs, ys), already downsampled."""

    label: str
    index: int  # its colour
    values: dict[Any, list[float]] = field(default_factory=dict)
    trials: list[tuple[str, list, list]] = field(default_factory=list)
    trials_downsampled: bool = False
    mean_downsampled: bool = False

    def add(self, name: str, xs: list, ys: list, passed: bool, cap: int) -> None:
        if passed:
            values = self.values
            for x, y in zip(xs, ys, strict=True):
                found = values.get(x)
                if found is None:
                    values[x] = [y]
                else:
                    found.append(y)
        if len(ys) > cap:
            xs, ys = downsample(xs, ys, cap)
            self.trials_downsampled = True
        self.trials.append((name, xs, [compact(y, TRIAL_DIGITS) for y in ys]))

    def mean(self) -> tuple[list, list[float], list[float], list[float], bool]:
        """x, mean, mean - std, mean + std over the passed trials (std 0 where one trial has a value), and
        whether any x has two values or more."""
        xs = sorted(self.values)
        means, lower, upper, spread = [], [], [], False
        for x in xs:
            values = self.values[x]
            mean = math.fsum(values) / len(values)
            std = 0.0
            if len(values) > 1:
                spread = True
                std = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (len(values) - 1))
            means.append(mean)
            lower.append(mean - std)
            upper.append(mean + std)
        return xs, means, lower, upper, spread


def _mean_traces(line: Line, metric: str) -> list[dict[str, Any]]:
    xs, means, lower, upper, spread = line.mean()
    if not xs:
        return []
    keep = downsample_indices(means)
    if len(keep) < len(xs):
        line.mean_downsampled = True
        xs, means, lower, upper = ([values[i] for i in keep] for values in (xs, means, lower, upper))
    traces = []
    if spread:
        traces.append(
            {
                "type": "scatter",
                "x": xs + xs[::-1],
                "y": [compact(v) for v in upper + lower[::-1]],
                "fill": "toself",
                "fillcolor": color(line.index, 0.2),
                "line": {"width": 0},
                "mode": "lines",
                "hoverinfo": "skip",
                "showlegend": False,
                "legendgroup": line.label,
                "name": f"{line.label} ± std",
            }
        )
    traces.append(
        {
            "type": "scatter",
            "mode": "lines",
            "x": xs,
            "y": [compact(v) for v in means],
            "name": line.label,
            "legendgroup": line.label,
            "line": {"color": color(line.index), "width": 2},
            "hovertemplate": f"%{{y}}<extra>{_escape(line.label)}: mean of {metric}</extra>",
        }
    )
    return traces


def _trial_lines(line: Line) -> dict[str, Any]:
    """Each trial's line, in the compact form the page's script turns into traces (one per trial, hidden until
    its configuration's '· trials' legend entry is clicked: they share one legend group and entry):
    ``{"name", "color", "lines": [[hover text, xs, ys], ...]}`` (see :func:`trial_traces`)."""
    return {
        "name": f"{line.label} · trials",
        "color": color(line.index, 0.6),
        # Shown from the start when no trial of the configuration passed: there is no mean to stand for them.
        "visible": "legendonly" if line.values else True,
        "lines": [[_escape(name), xs, ys] for name, xs, ys in line.trials],
    }


def trial_traces(figure: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The traces the page's script adds to ``figure`` for its ``trials`` (what a browser shows; for tests)."""
    traces = []
    for group in figure.get("trials") or []:
        for i, (hover, xs, ys) in enumerate(group["lines"]):
            trace = {"type": "scatter", "mode": "lines", "x": xs, "y": ys, "legendgroup": group["name"]}
            trace.update(
                showlegend=i == 0, visible=group["visible"], line={"color": group["color"], "width": 1}
            )
            trace.update(
                name=f"{group['name']} ({len(group['lines'])})", hovertemplate=f"%{{y}}<extra>{hover}</extra>"
            )
            traces.append(trace)
    return traces


def _escape(text: str) -> str:
    """Text for a hover template: its ``%{...}`` and markup taken literally."""
    return text.replace("%", "%%").replace("<", "&lt;").replace(">", "&gt;")


def log_toggle(axis: str = "yaxis") -> list[dict[str, Any]]:
    """The linear / log buttons (plotly updatemenus) for ``axis``."""
    return [
        {
            "type": "buttons",
            "direction": "right",
            "showactive": True,
            "active": 0,
            "x": 1.0,
            "xanchor": "right",
            "y": 1.02,
            "yanchor": "bottom",
            "pad": {"r": 0, "t": 0},
            "buttons": [
                {"label": "linear", "method": "relayout", "args": [{f"{axis}.type": "linear"}]},
                {"label": "log", "method": "relayout", "args": [{f"{axis}.type": "log"}]},
            ],
        }
    ]


def _layout(title: str, x_title: str, y_title: str, **more: Any) -> dict[str, Any]:
    return {
        "title": {"text": title, "x": 0.0, "xanchor": "left"},
        "xaxis": {"title": {"text": x_title}, "automargin": True},
        "yaxis": {"title": {"text": y_title}, "automargin": True},
        "hovermode": "closest",
        "margin": {"l": 60, "r": 20, "t": 60, "b": 50},
        "height": 420,
        "legend": {"orientation": "v"},
        **more,
    }


def curve_figure(metric: str, x_title: str, lines: Sequence[Line]) -> dict[str, Any]:
    """``metric`` over x: per configuration the mean with its ± std band, its trials' lines (legendonly)."""
    data = []
    for line in lines:
        data += _mean_traces(line, metric)
    layout = _layout(metric, x_title, metric, updatemenus=log_toggle())
    return {"data": data, "layout": layout, "trials": [_trial_lines(line) for line in lines if line.trials]}


# -- final values against configuration keys ----------------------------------------------------------------------


def axis_values(values: Sequence[Any]) -> tuple[list[Any], bool]:
    """Configuration values for an axis: numbers as they are, anything else as text (all as text when mixed);
    and whether the axis reads best as log (positive numbers over an order of magnitude: learning rates)."""
    if values and all(is_number(v) for v in values):
        low, high = min(values), max(values)
        return list(values), low > 0 and high / low >= 10
    return [_text(v) for v in values], False


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, default=str)


@dataclass
class Point:
    """A trial's final (or best) value of a metric at its configuration."""

    keys: Mapping[str, Any]
    value: float
    name: str  # hover text
    group: int  # its configuration's index


def scatter_figure(
    metric: str, key: str, points: Sequence[Point], groups: Sequence[tuple[str, Any, Any]]
) -> dict[str, Any]:
    """``metric`` against ``key``: each trial a marker coloured by its configuration, and each configuration's
    mean ± std (``groups``: label, mean, std per configuration, by index)."""
    xs, log = axis_values([p.keys.get(key) for p in points])
    data = []
    for index, (label, _, _) in enumerate(groups):
        chosen = [i for i, p in enumerate(points) if p.group == index]
        if not chosen:
            continue
        data.append(
            {
                "type": "scatter",
                "mode": "markers",
                "x": [xs[i] for i in chosen],
                "y": [compact(points[i].value) for i in chosen],
                "text": [points[i].name for i in chosen],
                "name": label,
                "marker": {"color": color(index), "size": 8, "opacity": 0.7},
                "hovertemplate": "%{text}<br>%{x}: %{y}<extra></extra>",
            }
        )
    data.append(_means(key, points, groups, xs))
    xaxis = {"title": {"text": key}, "automargin": True, **({"type": "log"} if log else {})}
    if not log and xs and not is_number(xs[0]):
        xaxis["type"] = "category"
    layout = _layout(f"{metric} by {key}", key, metric, xaxis=xaxis)
    return {"data": data, "layout": layout}


def _means(key: str, points: Sequence[Point], groups: Sequence[tuple[str, Any, Any]], xs: list) -> dict:
    at = {}
    for i, p in enumerate(points):
        at.setdefault(p.group, xs[i])
    shown = [i for i in range(len(groups)) if i in at and groups[i][1] is not None]
    return {
        "type": "scatter",
        "mode": "markers",
        "x": [at[i] for i in shown],
        "y": [compact(groups[i][1]) for i in shown],
        "error_y": {"type": "data", "array": [compact(groups[i][2] or 0.0) for i in shown], "visible": True},
        "text": [groups[i][0] for i in shown],
        "name": "mean ± std",
        "marker": {"color": "#222", "symbol": "diamond", "size": 11},
        "hovertemplate": "%{text}: mean %{y} ± %{error_y.array}<extra></extra>",
    }


def parcoords_figure(metric: str, keys: Sequence[str], points: Sequence[Point]) -> dict[str, Any]:
    """``metric`` against every swept key: one line per trial through the keys' axes to the metric's."""
    dimensions = []
    for key in keys:
        values, _ = axis_values([p.keys.get(key) for p in points])
        if values and is_number(values[0]):
            dimensions.append({"label": key, "values": values})
            continue
        names = sorted(set(values))
        code = {name: i for i, name in enumerate(names)}
        dimensions.append(
            {
                "label": key,
                "values": [code[v] for v in values],
                "tickvals": list(range(len(names))),
                "ticktext": names,
            }
        )
    scores = [compact(p.value) for p in points]
    dimensions.append({"label": metric, "values": scores})
    trace = {
        "type": "parcoords",
        "dimensions": dimensions,
        "line": {"color": scores, "colorscale": "Viridis", "showscale": True},
    }
    layout = _layout(f"{metric} by {', '.join(keys)}", "", "", margin={"l": 80, "r": 80, "t": 90, "b": 40})
    return {"data": [trace], "layout": layout}
