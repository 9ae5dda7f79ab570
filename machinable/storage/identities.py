"""What a storage holds of each trial of a sweep: every attempt's seed, status, execution and code fingerprint,
looked up by the trial's slot (``ids.trial_slot``: component, configuration, repeat number).

It is read from the executions' index lines (``index.jsonl``: one file per execution, never a trial's folder
for a trial that ended; see :mod:`machinable.storage.index`), which carry each trial's ``code`` fingerprint.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from machinable import ids
from machinable.storage.index import read_index

if TYPE_CHECKING:
    from machinable.storage.reader import Storage, StoredExecution

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

    @classmethod
    def load(cls, storage: Storage) -> StoredIdentities:
        found = cls()
        for stored in storage.executions():
            found.add_execution(stored)
        for attempts in found.slots.values():
            attempts.sort(key=lambda a: a.finished)
        return found

    def add_execution(self, stored: StoredExecution) -> None:
        for line in read_index(stored):
            self.add(stored.folder, line)

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

    def seed_of(self, slot: str) -> int | None:
        """The seed of the latest attempt at ``slot`` that did not end before it began (a planned one)."""
        for attempt in reversed(self.slots.get(slot, [])):
            if isinstance(attempt.seed, int) and attempt.status != "not started":
                return attempt.seed
        return None
