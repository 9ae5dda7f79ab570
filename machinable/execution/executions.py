"""``Execution``: what one run of the pipeline produced, and the two exceptions that carry it."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from machinable.errors import MachinableError
from machinable.text import count_parts, summary_line

if TYPE_CHECKING:
    from machinable.storage import StorageLocation
    from machinable.trials import TrialResult

# Which entry point ran the pipeline; reporters decide by it what to show.
KINDS = ("run", "resume", "reproduce", "determinism")


@dataclass
class Execution:
    """One run of trials: its id (which encodes its seed), its trials in plan order, its storage.

    ``kind`` says which entry point ran it: ``'run'`` (``ml.execute``, the ``machinable`` command), ``'resume'``,
    ``'reproduce'`` or ``'determinism'`` (the second run of ``--check-determinism``).
    """

    id: str
    seed: int
    name: str | None
    storage: str
    engine: str
    trials: list[TrialResult] = field(default_factory=list)
    started: float = 0.0
    finished: float | None = None
    interrupted: bool = False
    folder: str = ""  # the execution's folder in storage: its id, or <id>-2 ... when the id was stored before
    location: Any = field(default=None, repr=False)
    kind: str = "run"
    # how to follow an execution whose trials go on without the controller (``--detach``); None when attached
    detached: str | None = None

    @property
    def passed(self) -> list[TrialResult]:
        return [t for t in self.trials if t.passed]

    @property
    def failed(self) -> list[TrialResult]:
        return [t for t in self.trials if not t.passed]

    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for t in self.trials:
            counts[t.status] = counts.get(t.status, 0) + 1
        return counts

    def summary(self) -> str:
        """``3 passed, 1 failed in 0.42 s``."""
        seconds = (self.finished or time.time()) - self.started
        return summary_line(count_parts(self.counts()), seconds, empty="no trials")

    def stored(self) -> Any:
        """This execution as stored (``ml.Storage(...).get(...)``): results, records, ``to_pandas()``."""
        from machinable.storage import Storage, StoredExecution

        storage = Storage(self.location)
        # Its own folder: get(ID) is the latest run of that id, which a later run with the same seed may be.
        return StoredExecution(storage, self.folder) if self.folder else storage.get(self.id)

    def to_records(
        self, k: str | None = None, status: Any = None, histories: bool = False
    ) -> list[dict[str, Any]]:
        """One flat dict per trial (``execution_id``, ``node_id``, ``status``, ``config.*``, final metrics)."""
        return self.stored().to_records(k, status, histories)

    def to_pandas(self, k: str | None = None, status: Any = None, histories: bool = False) -> Any:
        """:meth:`to_records` as a pandas DataFrame (``pip install "machinable[pandas]"``)."""
        return self.stored().to_pandas(k, status, histories)

    def attach(self, result: TrialResult) -> None:
        """Let ``result.store`` read the trial's stored objects from this execution's storage, lazily."""
        result._stored = _StoredHandle(self.location, self.folder, result.uid)

    def __repr__(self) -> str:
        return f"<Execution {self.id} seed={self.seed} {self.summary()} storage={self.storage}>"


class _StoredHandle:
    """Reads a result's stored objects on first access only."""

    def __init__(self, location: StorageLocation, folder: str, uid: str) -> None:
        self._args = (location, folder, uid)

    @property
    def store(self) -> Any:
        from machinable.storage import Storage

        location, folder, uid = self._args
        return Storage(location).get(folder).trial(uid).store


class ExecutionFailed(MachinableError):
    """Raised by ``execute(..., raise_on_failure=True)`` when a trial did not pass; ``.execution`` has them all."""

    def __init__(self, execution: Execution) -> None:
        bad = [t for t in execution.trials if not t.passed]
        super().__init__(
            f"execution {execution.id}: {len(bad)} of {len(execution.trials)} trials did not pass: "
            + ", ".join(f"{t.node_id} ({t.status})" for t in bad[:5])
            + (" ..." if len(bad) > 5 else "")
        )
        self.execution = execution


class ExecutionInterrupted(KeyboardInterrupt):
    """Ctrl-C during ``execute``: finished results are stored; ``.execution`` holds them."""

    def __init__(self, execution: Execution) -> None:
        super().__init__(f"execution {execution.id} interrupted after {len(execution.trials)} trials")
        self.execution = execution
