"""``machinable compare A B``: two executions, or two trials (``ID/NODE``), side by side (docs/results.md).

For two executions: the configuration keys whose values differ between them, then each configuration present
in both (matched by component and configuration, or by the ``--group-by`` keys only) with each metric's
mean ± std on both sides and the difference of the means, B - A. Configurations on one side only are listed
below. For two trials: the keys that differ and each metric on both sides and its difference.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from machinable.errors import UsageError
from machinable.reporting.results import (
    Column,
    Metric,
    Row,
    Table,
    agreed,
    canonical,
    group_keys,
    keys_of,
    parse_metrics,
    split_keys,
    table,
)
from machinable.reporting.show import View, gather, head_lines, render, value_text
from machinable.reporting.trial import find_entry

if TYPE_CHECKING:
    from machinable.storage import StoredExecution

__all__ = ["Comparison", "Side", "compare", "differing_keys", "render_comparison"]

MAX_LISTED = 10


@dataclass
class Comparison:
    """The matched rows as a :class:`Table`, the keys whose values differ between the sides (values of A, of B),
    and the rows of one side only."""

    table: Table
    differing: dict[str, tuple[list[Any], list[Any]]]
    only_a: list[Row] = field(default_factory=list)
    only_b: list[Row] = field(default_factory=list)


def differing_keys(
    entries_a: Sequence[Mapping[str, Any]], entries_b: Sequence[Mapping[str, Any]]
) -> dict[str, tuple[list[Any], list[Any]]]:
    """The configuration keys (and ``component``) whose sets of values differ between the two sides."""

    def values(entries: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        for entry in entries:
            for key, value in keys_of(entry).items():
                found.setdefault(key, {}).setdefault(canonical(value), value)
        return found

    a, b = values(entries_a), values(entries_b)
    names = list(dict.fromkeys([*a, *b]))
    return {
        n: (list(a.get(n, {}).values()), list(b.get(n, {}).values()))
        for n in names
        if set(a.get(n, {})) != set(b.get(n, {}))
    }


def compare(
    entries_a: Sequence[Mapping[str, Any]],
    entries_b: Sequence[Mapping[str, Any]],
    metrics: str | Sequence[str] | None = None,
    group_by: str | Sequence[str] | None = None,
    pair: bool = False,
) -> Comparison:
    """Compare two sides' index entries: rows matched by configuration (or by ``group_by``); ``pair``: the two
    sides are one trial each, compared whatever their configurations."""
    chosen = parse_metrics(metrics, [*entries_a, *entries_b])
    by = group_keys(group_by, [keys_of(e) for e in [*entries_a, *entries_b]])
    side_a, side_b = table(entries_a, chosen, by), table(entries_b, chosen, by)
    if pair:
        pairs = list(zip(side_a.rows, side_b.rows, strict=True))
        only_a: list[Row] = []
        only_b: list[Row] = []
    else:
        rows_b = {_ident(row, by): row for row in side_b.rows}
        pairs = [(row, rows_b[_ident(row, by)]) for row in side_a.rows if _ident(row, by) in rows_b]
        matched = {_ident(a, by) for a, _ in pairs}
        only_a = [row for row in side_a.rows if _ident(row, by) not in matched]
        only_b = [row for row in side_b.rows if _ident(row, by) not in matched]
    keys = [agreed([a.keys, b.keys]) for a, b in pairs]
    columns_keys, common = split_keys(keys, by)
    columns = [Column(k, k, "key", k) for k in columns_keys] + _metric_columns(chosen)
    rows = [_row(p, (side_a, side_b), k, columns, chosen) for p, k in zip(pairs, keys, strict=True)]
    failures = side_a.failures + side_b.failures
    result = Table(columns, rows, common, failures, [*side_a.entries, *side_b.entries])
    return Comparison(result, differing_keys(entries_a, entries_b), only_a, only_b)


def _ident(row: Row, by: list[str] | None) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((k, canonical(v)) for k, v in row.keys.items() if by is None or k in by))


def _metric_columns(metrics: Sequence[Metric]) -> list[Column]:
    columns = [Column("n.a", "N A", "count"), Column("n.b", "N B", "count")]
    for m in metrics:
        columns += [
            Column(f"{m.label}.a", f"{m.label} A", "metric"),
            Column(f"{m.label}.b", f"{m.label} B", "metric"),
            Column(f"{m.label}.diff", f"{m.label} B-A", "metric"),
        ]
    return columns


def _stats(side: Table, row: Row, metrics: Sequence[Metric]) -> list[Any]:
    """``row``'s Stat of each metric (a metric column may carry a prefix: see results._columns)."""
    names = [c.name for c in side.columns if c.kind == "metric"]
    return [row.values[name] for name in names[: len(metrics)]]


def _row(
    pair: tuple[Row, Row],
    sides: tuple[Table, Table],
    keys: dict[str, Any],
    columns: list[Column],
    metrics: Sequence[Metric],
) -> Row:
    a, b = pair
    values: dict[str, Any] = {c.name: keys.get(c.key) for c in columns if c.kind == "key"}
    values["n.a"], values["n.b"] = a.values["n"], b.values["n"]
    stats = zip(metrics, _stats(sides[0], a, metrics), _stats(sides[1], b, metrics), strict=True)
    for m, stat_a, stat_b in stats:
        values[f"{m.label}.a"], values[f"{m.label}.b"] = stat_a, stat_b
        both = stat_a.mean is not None and stat_b.mean is not None
        values[f"{m.label}.diff"] = stat_b.mean - stat_a.mean if both else None
    return Row([*a.entries, *b.entries], keys, values)


@dataclass
class Side:
    """One side of a comparison: an execution, or one of its trials (a uid, node id or node id prefix)."""

    stored: StoredExecution
    trial: str | None = None

    def entries(self, k: str | None) -> list[dict[str, Any]]:
        entries = gather([self.stored], k)
        if self.trial is None:
            return entries
        return [{**find_entry(entries, self.trial, self.stored.id), "execution": self.stored.folder}]


def render_comparison(a: Side, b: Side, view: View | None = None) -> str:
    """``compare A B`` in ``view.fmt`` (table, md, csv, json)."""
    view = view or View()
    if (a.trial is None) != (b.trial is None):
        raise UsageError("compare two executions (A B) or two trials (A/NODE B/NODE), not one of each")
    entries_a, entries_b = a.entries(view.k), b.entries(view.k)
    result = compare(entries_a, entries_b, view.metrics, view.group_by, pair=a.trial is not None)
    if view.sort:
        from machinable.reporting.results import sort_rows

        sort_rows(result.table, view.sort)
    head = [
        f"{name}: {_title(side, entries)}"
        for name, side, entries in (("A", a, entries_a), ("B", b, entries_b))
    ]
    head += _differing_lines(result.differing)
    return render(result.table, view.fmt, head, _notes(result))


def _title(side: Side, entries: Sequence[Mapping[str, Any]]) -> str:
    if side.trial is not None:
        return f"trial {entries[0].get('node_id')} of execution {side.stored.id}"
    title, counts = head_lines([side.stored], entries, None)
    return f"{title.split(', started')[0]}, {counts}"


def _differing_lines(differing: Mapping[str, tuple[list[Any], list[Any]]]) -> list[str]:
    if not differing:
        return ["configuration: no key differs"]

    def listed(values: list[Any]) -> str:
        return ", ".join(value_text(v) for v in values) if values else "(absent)"

    lines = ["configuration keys that differ (A -> B):"]
    lines += [f"  {key}: {listed(a)} -> {listed(b)}" for key, (a, b) in differing.items()]
    return lines


def _notes(result: Comparison) -> list[str]:
    notes = []
    if not result.table.rows and (result.only_a or result.only_b):
        notes.append(f"no configuration is in both; to match on fewer keys: --group-by {_suggest(result)}")
    for name, rows in (("A", result.only_a), ("B", result.only_b)):
        for row in rows[:MAX_LISTED]:
            common = result.table.common
            keys = " ".join(
                f"{k}={value_text(v)}"
                for k, v in row.keys.items()
                if k not in common or canonical(common[k]) != canonical(v)
            )
            notes.append(f"only in {name}: {keys or '(all keys as above)'} ({row.values['n']} trials)")
        if len(rows) > MAX_LISTED:
            notes.append(f"only in {name}: {len(rows) - MAX_LISTED} more configurations")
    return notes


def _suggest(result: Comparison) -> str:
    """The keys that vary within a side and do not differ between the sides (what a sweep varied)."""
    varying: dict[str, set[str]] = {}
    for row in [*result.only_a, *result.only_b]:
        for key, value in row.keys.items():
            varying.setdefault(key, set()).add(canonical(value))
    for rows in (result.only_a, result.only_b):
        for key in list(varying):
            if len({canonical(r.keys.get(key)) for r in rows}) <= 1 and key not in result.differing:
                varying.pop(key)
    keys = [k for k, values in varying.items() if len(values) > 1 and k not in result.differing]
    return ",".join(keys) or "component"
