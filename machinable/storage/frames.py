"""Stored results as flat rows: ``to_records()`` (plain dicts) and ``to_pandas()`` (a DataFrame), one row per
trial, or per record row with ``histories=True``.

Columns: ``execution_id``, ``node_id``, ``uid``, ``component``, ``seed``, ``status``, ``duration``, the flattened
configuration (``config.data.name``; hidden ``_keys`` left out), then the final value of each metric (the
numeric user columns of the last record row, ``loss``) or, with ``histories=True``, every column of every
record row. Rows come from the execution's index (storage/index.py), so no trial folder is opened unless
``histories=True``, which reads each selected trial's records.
"""

from __future__ import annotations

import gc
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from machinable.errors import UsageError
from machinable.storage.plan import NOT_STARTED
from machinable.trials import OUTCOMES

if TYPE_CHECKING:
    from machinable.storage.reader import StoredExecution

STATUSES = (*OUTCOMES, "running", NOT_STARTED)


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


def entry_row(execution_id: str, entry: Mapping[str, Any]) -> dict[str, Any]:
    """One trial's row (without its metrics) from its index line."""
    row = {
        "execution_id": execution_id,
        "node_id": entry.get("node_id"),
        "uid": entry.get("uid"),
        "component": entry.get("component"),
        "seed": entry.get("seed"),
        "status": entry.get("status"),
        "duration": entry.get("duration"),
    }
    row.update({f"config.{key}": value for key, value in flatten(entry.get("config") or {}).items()})
    return row


def execution_records(
    stored: StoredExecution,
    *,
    k: str | None = None,
    status: str | Iterable[str] | None = None,
    histories: bool = False,
) -> list[dict[str, Any]]:
    """The rows of one stored execution (module docstring), filtered by a ``-k`` expression over node ids and
    keywords and by status (one or several of passed, failed, crashed, interrupted, preempted, running,
    not started)."""
    with gc_paused():
        entries = select(stored.results(), k, status)
        rows = []
        for entry in entries:
            base = entry_row(stored.id, entry)
            if not histories:
                rows.append({**base, **(entry.get("metrics") or {}).get("last", {})})
                continue
            for step, record in enumerate(stored.trial_at(entry["uid"]).records):
                rows.append({**base, "step": step, **record})
    return rows


def select(
    entries: list[dict[str, Any]], k: str | None, status: str | Iterable[str] | None
) -> list[dict[str, Any]]:
    """Index lines matching ``k`` (the ``-k`` language over node id, component and versions) and ``status``."""
    wanted = _statuses(status)
    if wanted is not None:
        entries = [e for e in entries if e.get("status") in wanted]
    if k:
        from machinable.collection.expression import Expression

        expression = Expression.compile(k)
        entries = [e for e in entries if expression.matches(_names(e))]
    return entries


def _names(entry: Mapping[str, Any]) -> tuple[str, ...]:
    names = [str(entry.get("node_id") or ""), str(entry.get("component") or "")]
    names += [str(v) for v in entry.get("versions") or []]
    return tuple(names)


def _statuses(status: str | Iterable[str] | None) -> set[str] | None:
    if status is None:
        return None
    wanted = {status} if isinstance(status, str) else set(status)
    unknown = sorted(wanted.difference(STATUSES))
    if unknown:
        raise UsageError(f"unknown status {', '.join(map(repr, unknown))}; statuses: {', '.join(STATUSES)}")
    return wanted


def data_frame(rows: list[dict[str, Any]]) -> Any:
    """``rows`` as a pandas DataFrame (pandas is the optional extra ``machinable[pandas]``)."""
    try:
        import pandas
    except ImportError:
        from machinable.storage.url import MissingDependencyError

        raise MissingDependencyError(
            'to_pandas() needs pandas: pip install "machinable[pandas]" (or use .to_records() for plain dicts)'
        ) from None
    return pandas.DataFrame(rows)


@contextmanager
def gc_paused() -> Iterator[None]:
    """Reading many executions builds hundreds of thousands of small dicts, which keeps triggering Python's
    cyclic garbage collector over all of them (it costs half the time of a 100 x 1,000-trial read); the rows
    hold no cycles, so collection waits until they are built."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
