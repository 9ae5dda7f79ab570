"""Results as tables: trials grouped by configuration, each metric as the mean ± std over a group's passed trials.

Plain functions over index entries (the dicts :meth:`StoredExecution.results` returns: uid, node_id,
component, status, seed, config, error, metrics = {rows, last, min, max}), shared by ``machinable show``,
``machinable compare`` and any other reporter. Nothing here formats text: a :class:`Table` holds values
(numbers, :class:`Stat` for an aggregate), and :mod:`machinable.reporting.show` writes it as a table, Markdown,
CSV or JSON.

A row of the default table is one configuration: the trials whose component and flattened configuration are
equal (they differ only by seed or repeat). Its columns are the configuration keys whose values differ
between rows (dotted names; ``component`` when components differ), ``n``, ``failed`` and the metrics; the keys
every row agrees on are the table's ``common`` keys.
"""

from __future__ import annotations

import json
import math
import statistics
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from machinable.errors import UsageError
from machinable.storage import NOT_STARTED, flatten, select_entries
from machinable.trials import CACHED, OUTCOMES, PASSING

ENDED = (*OUTCOMES, CACHED)
FAILED = tuple(outcome for outcome in OUTCOMES if outcome not in PASSING)
STATS = ("last", "min", "max")

__all__ = [
    "Column",
    "Metric",
    "Row",
    "Stat",
    "Table",
    "agreed",
    "aggregate",
    "canonical",
    "flatten",
    "group_keys",
    "keys_of",
    "metric_names",
    "parse_metrics",
    "select",
    "sort_rows",
    "split_keys",
    "table",
]


def keys_of(entry: Mapping[str, Any]) -> dict[str, Any]:
    """What tells a trial's configuration apart: ``component`` and the flattened configuration."""
    return {"component": entry.get("component"), **flatten(entry.get("config") or {})}


def canonical(value: Any) -> str:
    """A value as comparable text (lists and mappings included)."""
    return json.dumps(value, sort_keys=True, default=str)


def select(entries: Iterable[Mapping[str, Any]], k: str | None) -> list[dict[str, Any]]:
    """The entries matching a ``-k`` expression over node id, component and applied versions."""
    return [dict(e) for e in select_entries(list(entries), k, None)]


# -- metrics ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Metric:
    """A record column and which value of it a trial contributes: its ``last`` row's, or its ``min`` / ``max``."""

    name: str
    stat: str = "last"

    @property
    def label(self) -> str:
        return self.name if self.stat == "last" else f"{self.name}:{self.stat}"

    def of(self, entry: Mapping[str, Any]) -> float | None:
        value = ((entry.get("metrics") or {}).get(self.stat) or {}).get(self.name)
        return value if isinstance(value, int | float) and not isinstance(value, bool) else None


def metric_names(entries: Iterable[Mapping[str, Any]]) -> list[str]:
    """Every numeric user column of the trials' last record rows, in the order they first appear."""
    names: dict[str, None] = {}
    for entry in entries:
        names.update(dict.fromkeys((entry.get("metrics") or {}).get("last") or {}))
    return list(names)


def parse_metrics(
    spec: str | Sequence[str] | None, entries: Sequence[Mapping[str, Any]] = ()
) -> list[Metric]:
    """``'loss,acc:max'`` -> [Metric('loss'), Metric('acc', 'max')]; None: every metric of ``entries``. A name
    no trial recorded is a UsageError (unless no trial recorded anything yet)."""
    known = metric_names(entries)
    if spec is None:
        return [Metric(name) for name in known]
    words = spec.split(",") if isinstance(spec, str) else list(spec)
    metrics = []
    for word in (w.strip() for w in words):
        if not word:
            continue
        name, _, stat = word.rpartition(":") if ":" in word else (word, "", "last")
        if stat not in STATS or not name:
            raise UsageError(f"metric {word!r}: write NAME, NAME:min or NAME:max")
        if known and name not in known:
            raise UsageError(f"unknown metric {name!r}; the trials recorded: {', '.join(known)}")
        if Metric(name, stat) not in metrics:
            metrics.append(Metric(name, stat))
    return metrics


@dataclass(frozen=True)
class Stat:
    """A metric over a group of trials: mean, sample standard deviation (None for fewer than two values) and the
    number of values."""

    mean: float | None
    std: float | None
    count: int

    @classmethod
    def of(cls, values: Iterable[float]) -> Stat:
        values = list(values)
        if not values:
            return cls(None, None, 0)
        if len(values) == 1:
            return cls(values[0], None, 1)
        return cls(statistics.fmean(values), statistics.stdev(values), len(values))


def aggregate(entries: Iterable[Mapping[str, Any]], metric: Metric) -> Stat:
    """``metric`` over the trials that passed (or were cached: they passed before)."""
    return Stat.of(v for e in entries if e.get("status") in PASSING and (v := metric.of(e)) is not None)


# -- tables -------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Column:
    """A table column: ``name`` in CSV and JSON, ``title`` in the table's header; ``kind`` is ``key`` (a
    configuration key), ``count``, ``metric`` (values are :class:`Stat` when grouped) or ``text``."""

    name: str
    title: str
    kind: str = "text"
    key: str = ""  # the configuration key of a ``key`` column


@dataclass
class Row:
    """One configuration (or one trial): its trials, the keys they agree on, and a value per column name;
    ``extra``: more fields for machine-readable output (a trial's uid and error)."""

    entries: list[dict[str, Any]]
    keys: dict[str, Any]
    values: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Table:
    """Rows and columns of values, the keys every row shares (``common``), and the trials that did not pass."""

    columns: list[Column]
    rows: list[Row]
    common: dict[str, Any] = field(default_factory=dict)
    failures: list[dict[str, Any]] = field(default_factory=list)
    entries: list[dict[str, Any]] = field(default_factory=list)

    @property
    def headers(self) -> list[str]:
        return [c.title for c in self.columns]

    def cells(self) -> list[list[Any]]:
        return [[row.values.get(c.name) for c in self.columns] for row in self.rows]

    def counts(self) -> Counter[str]:
        return Counter(str(e.get("status")) for e in self.entries)

    def records(self) -> list[dict[str, Any]]:
        """One dict per row: the common keys, then each column's value by name, then the extras."""
        names = {c.name for c in self.columns}
        common = {(k if k not in names else f"config.{k}"): v for k, v in self.common.items()}
        return [
            {**common, **{c.name: row.values.get(c.name) for c in self.columns}, **row.extra}
            for row in self.rows
        ]


def table(
    entries: Iterable[Mapping[str, Any]],
    metrics: str | Sequence[str] | Sequence[Metric] | None = None,
    group_by: str | Sequence[str] | None = None,
    no_group: bool = False,
    sort: str | None = None,
) -> Table:
    """The results table of ``entries`` (index lines; an ``execution`` key names their execution when they
    come from several): one row per configuration, or per trial with ``no_group``; ``group_by``: group by
    these keys only (dotted configuration keys or ``component``); ``sort``: a metric or key, ``-`` for
    descending (grouped: by the mean)."""
    entries = [dict(e) for e in entries]
    chosen = _metrics(metrics, entries)
    keys = [keys_of(e) for e in entries]
    by = group_keys(group_by, keys)
    groups = _groups(entries, keys, by, no_group)
    rows = [Row(members, agreed([keys[i] for i in idx])) for idx, members in groups]
    differing, common = split_keys([row.keys for row in rows], by)
    columns = _columns(rows, differing, chosen, no_group)
    for row in rows:
        _fill(row, columns, chosen, no_group)
    table_ = Table(columns, rows, common, [e for e in entries if e.get("status") in FAILED], entries)
    if sort:
        sort_rows(table_, sort)
    return table_


def _metrics(spec: Any, entries: Sequence[Mapping[str, Any]]) -> list[Metric]:
    if spec is not None and not isinstance(spec, str) and all(isinstance(m, Metric) for m in spec):
        return list(spec)
    return parse_metrics(spec, entries)


def group_keys(group_by: str | Sequence[str] | None, keys: Sequence[Mapping[str, Any]]) -> list[str] | None:
    if group_by is None:
        return None
    wanted = [w.strip() for w in (group_by.split(",") if isinstance(group_by, str) else group_by)]
    wanted = [w for w in wanted if w]
    known = _union(keys)
    unknown = [w for w in wanted if keys and w not in known]
    if unknown:
        raise UsageError(f"--group-by: unknown key {unknown[0]!r}; keys: {', '.join(known)}")
    return wanted


def _union(keys: Iterable[Mapping[str, Any]]) -> list[str]:
    names: dict[str, None] = {}
    for k in keys:
        names.update(dict.fromkeys(k))
    return list(names)


_ABSENT = "\x00absent"


def _groups(
    entries: list[dict[str, Any]], keys: list[dict[str, Any]], by: list[str] | None, no_group: bool
) -> list[tuple[list[int], list[dict[str, Any]]]]:
    """(indices, entries) per group, in the order each group first appears."""
    found: dict[Any, list[int]] = {}
    for i, k in enumerate(keys):
        if no_group:
            group: Any = i
        else:
            names = by if by is not None else sorted(k)
            group = tuple((n, canonical(k[n]) if n in k else _ABSENT) for n in names)
        found.setdefault(group, []).append(i)
    return [(idx, [entries[i] for i in idx]) for idx in found.values()]


def agreed(keys: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The keys all of ``keys`` have with one value."""
    first = keys[0]
    return {
        k: v
        for k, v in first.items()
        if all(k in other and canonical(other[k]) == canonical(v) for other in keys[1:])
    }


def split_keys(
    row_keys: Sequence[Mapping[str, Any]], by: list[str] | None
) -> tuple[list[str], dict[str, Any]]:
    """The keys whose values differ between rows (among ``by`` when given), and the keys all rows agree on."""
    common = agreed(row_keys) if row_keys else {}
    candidates = by if by is not None else _union(row_keys)
    return [n for n in candidates if n not in common], common


def _columns(rows: list[Row], differing: list[str], metrics: list[Metric], no_group: bool) -> list[Column]:
    """no_group: [execution], node id, status, seed, keys, metrics; grouped: keys, n, failed, [running], metrics
    (a key or metric named like a column before it gets a prefix: ``config.seed``, ``last.n``)."""
    if no_group:
        first = [Column("node_id", "NODE ID"), Column("status", "STATUS"), Column("seed", "SEED", "count")]
        if len({e.get("execution") for row in rows for e in row.entries}) > 1:
            first.insert(0, Column("execution", "EXECUTION"))
        counts: list[Column] = []
    else:
        first = []
        counts = [Column("n", "N", "count"), Column("failed", "FAILED", "count")]
        statuses = {e.get("status") for row in rows for e in row.entries}
        if "running" in statuses:
            counts.append(Column("running", "RUNNING", "count"))
        if NOT_STARTED in statuses:
            counts.append(Column("not_started", "NOT STARTED", "count"))
    if any(e.get("stale") for row in rows for e in row.entries):
        counts.append(Column("stale", "STALE", "count"))
    taken = {c.name for c in first + counts}
    keys = []
    for key in differing:
        name = key if key not in taken else f"config.{key}"
        keys.append(Column(name, name, "key", key))
        taken.add(name)
    values = []
    for m in metrics:
        name = m.label if m.label not in taken else f"{m.stat}.{m.label}"
        values.append(Column(name, name, "metric"))
        taken.add(name)
    return first + keys + counts + values


def _fill(row: Row, columns: list[Column], metrics: list[Metric], no_group: bool) -> None:
    """Each column's value for ``row``."""
    key_columns = [c for c in columns if c.kind == "key"]
    metric_columns = [c for c in columns if c.kind == "metric"]
    for column in key_columns:
        row.values[column.name] = row.keys.get(column.key)
    if no_group:
        entry = row.entries[0]
        for name in ("execution", "node_id", "status", "seed"):
            row.values[name] = entry.get(name)
        row.values["stale"] = 1 if entry.get("stale") else 0
        for column, metric in zip(metric_columns, metrics, strict=True):
            row.values[column.name] = metric.of(entry)
        row.extra = {"uid": entry.get("uid"), "error": entry.get("error")}
        return
    statuses = [e.get("status") for e in row.entries]
    row.values["n"] = len(statuses)
    row.values["failed"] = sum(s in FAILED for s in statuses)
    row.values["running"] = statuses.count("running")
    row.values["not_started"] = statuses.count(NOT_STARTED)
    row.values["stale"] = sum(1 for e in row.entries if e.get("stale"))
    for column, metric in zip(metric_columns, metrics, strict=True):
        row.values[column.name] = aggregate(row.entries, metric)


def sort_rows(table_: Table, spec: str) -> None:
    """Sort ``table_``'s rows by a column, a metric (``loss``, ``loss:min``) or a key; ``-NAME`` descending.
    Rows without a value come last either way."""
    descending = spec.startswith("-")
    name = spec[1:] if descending else spec
    value = _sort_value(table_, name)
    present = [r for r in table_.rows if value(r) is not None]
    missing = [r for r in table_.rows if value(r) is None]
    present.sort(key=lambda r: _order(value(r)), reverse=descending)
    table_.rows = present + missing


def _sort_value(table_: Table, name: str) -> Any:
    for column in table_.columns:
        if name in (column.name, column.title):
            return lambda row: _plain(row.values.get(column.name))
    if name in _union(row.keys for row in table_.rows):
        return lambda row: row.keys.get(name)
    try:
        [metric] = parse_metrics(name, table_.entries)
    except (UsageError, ValueError):
        options = [c.name for c in table_.columns]
        raise UsageError(f"--sort: unknown column {name!r}; columns: {', '.join(options)}") from None
    return lambda row: _plain(aggregate(row.entries, metric))


def _plain(value: Any) -> Any:
    if isinstance(value, Stat):
        value = value.mean
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def _order(value: Any) -> tuple[int, Any]:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return (0, value)
    return (1, str(value))
