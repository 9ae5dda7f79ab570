"""The index of an execution: ``index.jsonl``, one line per finished trial, so that reading results never opens
every trial's files (DESIGN.md §7a).

The controller appends a line when a trial ends (uid, node id, component, status, seed, timings, configuration,
versions, the error's first line and a summary of the default record scope: the number of rows and, per numeric
user column, its last, smallest and largest value). A trial run again (resume) appends a newer line; the last
line of a uid wins. The index is never the only copy of anything: :func:`read_index` reads any planned trial
that has no line (killed before its line was written, still running, never started) from its own folder, so it
gives the same answer as a rebuild from the trial folders (:func:`rebuild_index`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from machinable.storage.plan import NOT_STARTED
from machinable.storage.streams import parse_jsonl
from machinable.text import first_line

if TYPE_CHECKING:
    from machinable.storage.reader import StoredExecution, StoredTrial
    from machinable.trials import TrialResult

INDEX_JSONL = "index.jsonl"


def summarize(rows: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """``{'rows': n, 'last': {...}, 'min': {...}, 'max': {...}}`` over the numeric user columns (not ``_...``,
    not booleans) of record rows; ``last`` is the last row's values."""
    count, last, low, high = 0, {}, {}, {}
    for row in rows:
        count += 1
        last = {}
        for key, value in row.items():
            kind = type(value)
            # Exact types first: the common row costs two set lookups per value (this runs for every trial).
            if kind not in _NUMBERS and not _metric(key, value):
                continue
            if type(key) is not str or key[:1] == "_":
                continue
            last[key] = value
            if value == value:  # NaN is no minimum or maximum
                if key not in low:
                    low[key] = high[key] = value
                elif value < low[key]:
                    low[key] = value
                elif value > high[key]:
                    high[key] = value
    return {"rows": count, "last": last, "min": low, "max": high}


_NUMBERS = frozenset({int, float})


def _metric(key: Any, value: Any) -> bool:
    return (
        isinstance(key, str)
        and key[:1] != "_"
        and isinstance(value, int | float)
        and not isinstance(value, bool)
    )


def result_entry(result: TrialResult) -> dict[str, Any]:
    """The index line of a trial that ended (what the controller appends)."""
    return {
        "uid": result.uid,
        "node_id": result.node_id,
        "component": result.component,
        "status": result.status,
        "seed": result.seed,
        "started": result.started,
        "finished": result.finished,
        "duration": result.duration,
        "config": result.config,
        "versions": list(result.versions),
        "repeat_number": result.repeat_number,
        "repeat_total": result.repeat_total,
        "error": first_line(result.error) or None,
        "metrics": summarize(result.records),
        "code": result.code,
        **({"cached_from": result.cached_from} if result.cached_from else {}),
    }


def trial_entry(trial: StoredTrial, planned: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """An index line rebuilt from a trial's folder (``planned``: its spec in the stored plan, for a trial that
    has no folder or no ``trial.json`` yet)."""
    info = {**(planned or {}), **trial.info}
    status_info = trial.status_info
    status = trial.execution.storage._outcome(status_info) if status_info else None
    started, finished = status_info.get("started"), status_info.get("finished")
    duration = (
        finished - started if isinstance(started, int | float) and isinstance(finished, int | float) else 0.0
    )
    return {
        "uid": trial.uid,
        "node_id": info.get("node_id"),
        "component": info.get("component"),
        "status": status or NOT_STARTED,
        "seed": info.get("seed"),
        "started": started,
        "finished": finished,
        "duration": duration,
        "config": info.get("config") or {},
        "versions": list(info.get("versions") or []),
        "repeat_number": info.get("repeat_number", 0),
        "repeat_total": info.get("repeat_total", 1),
        "error": first_line(status_info.get("error")) or None,
        "metrics": summarize(trial.records) if status_info else summarize(()),
        "code": info.get("code") or {},
    }


def read_index(stored: StoredExecution) -> list[dict[str, Any]]:
    """Every trial of ``stored`` as an index line, in plan order: from ``index.jsonl``, and from the trial's own
    folder for a planned trial without a line, or whose line a later (killed) resume may have outdated."""
    lines = _lines(stored)
    if lines is None:
        return rebuild_index(stored)
    plan = {
        info["uid"]: info
        for info in stored.info.get("plan") or []
        if isinstance(info, dict) and "uid" in info
    }
    uids = [uid for uid in stored.info.get("trials") or [] if isinstance(uid, str)] or list(lines)
    unsure = _resumed_unfinished(stored, plan)
    entries = []
    for uid in uids:
        entry = lines.get(uid)
        if entry is None or uid in unsure:
            entry = trial_entry(stored.trial_at(uid), plan.get(uid))
        entries.append(entry)
    known = set(uids)
    entries.extend(entry for uid, entry in lines.items() if uid not in known)
    return entries


def rebuild_index(stored: StoredExecution) -> list[dict[str, Any]]:
    """The index lines as the trial folders tell them (every folder is read): what :func:`read_index` must equal."""
    plan = {
        info["uid"]: info
        for info in stored.info.get("plan") or []
        if isinstance(info, dict) and "uid" in info
    }
    present = {trial.uid: trial for trial in stored.trials}
    uids = [uid for uid in stored.info.get("trials") or [] if isinstance(uid, str)]
    uids += [uid for uid in present if uid not in set(uids)]
    return [trial_entry(present.get(uid) or stored.trial_at(uid), plan.get(uid)) for uid in uids]


def _lines(stored: StoredExecution) -> dict[str, dict[str, Any]] | None:
    """The index's lines by uid (the last line of a uid wins); None when the execution has no index."""
    io = stored._io
    path = io.join(stored.path, INDEX_JSONL)
    try:
        data = io.read_bytes(path)
    except FileNotFoundError:
        return None
    return {row["uid"]: row for row in parse_jsonl(data, path) if isinstance(row.get("uid"), str)}


def _resumed_unfinished(stored: StoredExecution, plan: Mapping[str, Mapping[str, Any]]) -> set[str]:
    """The uids of trials a resume started but did not see end (it was killed): their index lines may be old.

    A ``"resumed"`` entry names its trials by node id (``"trials"``, replay/destinations.py); they are mapped to
    uids through the plan (a node id not in the plan is taken as a uid, and ``"uids"`` is read as it is)."""
    pending: set[str] = set()
    by_node = {info.get("node_id"): uid for uid, info in plan.items()}
    for entry in stored.info.get("resumed") or []:
        if isinstance(entry, dict) and entry.get("finished") is None:
            pending.update(uid for uid in entry.get("uids") or [] if isinstance(uid, str))
            for node_id in entry.get("trials") or []:
                if isinstance(node_id, str):
                    pending.add(by_node.get(node_id, node_id))
    return pending
