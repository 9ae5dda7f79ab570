"""What a storage holds of each trial of a sweep: every attempt's seed, status, execution and code fingerprint,
looked up by the trial's slot (``ids.trial_slot``: component, configuration, repeat number).

An execution that ran to its end keeps them compactly in ``identities.json`` (written once, at its end: one
small list per trial, each distinct fingerprint once), so that looking up 100,000 stored trials reads 100
small files. An execution without one (killed, running, resumed since, or written before it existed) is read
from its index lines and, for trials without a line, their folders (:func:`machinable.storage.index.read_index`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from machinable import ids
from machinable.storage.encoding import dumpb
from machinable.storage.index import read_index

if TYPE_CHECKING:
    from machinable.storage.reader import Storage, StoredExecution
    from machinable.storage.writer import ExecutionWriter
    from machinable.trials import TrialResult

IDENTITIES_JSON = "identities.json"

# Outcomes of an attempt that did not pass: a --needed run runs the trial again.
FAILED = frozenset({"failed", "crashed", "interrupted", "preempted"})


@dataclass(frozen=True)
class Attempt:
    """One stored trial (an attempt at a slot)."""

    execution: str  # the execution's folder
    uid: str
    node_id: str | None
    seed: int | None
    status: str
    code: dict[str, str] = field(default_factory=dict)
    finished: float = 0.0
    cached_from: str | None = None  # 'FOLDER/UID' of the trial a cached line stands for


@dataclass
class StoredIdentities:
    """slot -> the attempts a storage holds of it, oldest first."""

    slots: dict[str, list[Attempt]] = field(default_factory=dict)
    latest: str | None = None  # the id of the execution that started last
    _started: float = -1.0

    @classmethod
    def load(cls, storage: Storage) -> StoredIdentities:
        found = cls()
        for stored in storage.executions():
            found.add_execution(stored)
        for attempts in found.slots.values():
            attempts.sort(key=lambda a: a.finished)
        return found

    def add_execution(self, stored: StoredExecution) -> None:
        io = stored.storage.location.backend()
        try:
            compact = json.loads(io.read_bytes(io.join(stored.path, IDENTITIES_JSON)))
        except (FileNotFoundError, ValueError):
            compact = None
        if isinstance(compact, dict):
            self._note(compact.get("id") or stored.folder, compact.get("started"))
            codes = compact.get("codes") or []
            for slot, seed, status, uid, node_id, code, finished, cached in compact.get("trials") or []:
                attempt = Attempt(
                    stored.folder, uid, node_id, seed, status, codes[code], finished or 0.0, cached
                )
                self.slots.setdefault(slot, []).append(attempt)
            return
        self._note(stored.id, stored.started)
        for line in read_index(stored):
            self.add(stored.folder, line)

    def _note(self, execution_id: str, started: Any) -> None:
        if isinstance(started, int | float) and started > self._started:
            self._started, self.latest = float(started), execution_id

    def add(self, folder: str, line: dict[str, Any]) -> None:
        component, config = line.get("component"), line.get("config")
        if not isinstance(component, str) or not isinstance(config, dict):
            return
        slot = ids.trial_slot(component, config, line.get("repeat_number") or 0)
        finished = line.get("finished") or line.get("started") or 0.0
        self.slots.setdefault(slot, []).append(
            Attempt(
                execution=folder,
                uid=line.get("uid") or "",
                node_id=line.get("node_id"),
                seed=line.get("seed"),
                status=line.get("status") or "",
                code=dict(line.get("code") or {}),
                finished=float(finished) if isinstance(finished, int | float) else 0.0,
                cached_from=line.get("cached_from"),
            )
        )

    def attempts(self, slot: str, seed: int | None = None) -> list[Attempt]:
        """The attempts at ``slot`` (with ``seed``, if given), oldest first."""
        found = self.slots.get(slot, [])
        return found if seed is None else [a for a in found if a.seed == seed]

    def seed_of(self, slot: str, exclude: set[int] | frozenset[int] = frozenset()) -> int | None:
        """The seed of the latest attempt at ``slot`` that began (not only planned), other than ``exclude``."""
        for attempt in reversed(self.slots.get(slot, [])):
            if (
                isinstance(attempt.seed, int)
                and attempt.status != "not started"
                and attempt.seed not in exclude
            ):
                return attempt.seed
        return None


def write_identities(
    writer: ExecutionWriter, execution_id: str, started: float, results: Iterable[TrialResult]
) -> None:
    """Keep the trials of an execution that ran to its end compactly (see the module's docstring)."""
    codes: dict[str, int] = {}
    by_object: dict[int, int] = {}  # the trials of a component share their spec's fingerprint dict
    trials = []
    for r in results:
        index = by_object.get(id(r.code))
        if index is None:
            index = by_object[id(r.code)] = codes.setdefault(json.dumps(r.code, sort_keys=True), len(codes))
        slot = ids.trial_slot(r.component, r.config, r.repeat_number)
        trials.append([slot, r.seed, r.status, r.uid, r.node_id, index, r.finished, r.cached_from])
    data = {"id": execution_id, "started": started, "codes": [json.loads(c) for c in codes], "trials": trials}
    try:
        writer.create_file(IDENTITIES_JSON, dumpb(data))
    except OSError:
        pass  # a shortcut only: without it, the identities are read from the index lines


def forget_identities(writer: ExecutionWriter) -> None:
    """An execution that is resumed changes: its compact identities would be out of date."""
    io = writer.location.backend()
    try:
        io.remove(io.join(writer.path, IDENTITIES_JSON))
    except FileNotFoundError:
        pass
