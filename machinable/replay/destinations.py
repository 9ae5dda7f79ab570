"""Where re-runs write: a scratch memory storage (reproduce, the determinism check) or the resumed execution."""

from __future__ import annotations

import time
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from machinable.execution.executions import Execution

if TYPE_CHECKING:
    from machinable.execution.session import Session
    from machinable.storage import ExecutionWriter, StoredExecution
    from machinable.storage.claims import SharedExecutionWriter


class Scratch:
    """A fresh memory storage under the original execution id: the original execution is never written.

    The caller compares what the re-run stored (``Storage(scratch.location)``) and then calls :meth:`discard`.
    """

    def __init__(self, execution_id: str, seed: int) -> None:
        from machinable.storage import open_storage

        self.execution_id, self.seed = execution_id, seed
        self.location = open_storage(None)

    def open(self, session: Session) -> tuple[Execution, ExecutionWriter]:
        from machinable.storage import ExecutionWriter

        return _execution(
            session, self.execution_id, self.seed, self.execution_id, self.location
        ), ExecutionWriter(self.location, self.execution_id)

    def close(self, session: Session) -> None:
        """The scratch records stay until :meth:`discard`: the comparison reads them."""

    def discard(self) -> None:
        """Free the scratch storage (re-runs of big trials would otherwise stay in this process's memory)."""
        try:
            self.location.fs.rm(self.location.root, recursive=True)
        except (FileNotFoundError, OSError):
            pass


class IntoStored:
    """The stored execution itself (same id, same folder, same trial folders), for ``resume``.

    Before the trials run, each one's previous attempt is moved to ``attempts/<n>/``, its spec names the latest
    complete checkpoint of its attempts to restore (``TrialSpec.checkpoint``, read by the trial where it runs),
    and ``execution.json`` gets a ``"resumed"`` entry ``{"at", "trials", "engine", "finished"}``; ``close`` adds ``finished`` and each
    trial's outcome to it. The caller holds the trials' claims (storage/claims.py); ``execution.json`` is
    re-read and merged under its lock, so the entries of resumes that run at once are all kept.
    """

    def __init__(self, stored: StoredExecution) -> None:
        self.stored = stored
        self.location = stored.storage.location
        self.entry: dict[str, Any] = {}

    def _writer(self) -> SharedExecutionWriter:
        from machinable.storage.claims import SharedExecutionWriter

        return SharedExecutionWriter(self.location, self.stored.id, self.stored.folder)

    def _put_entry(self, writer: SharedExecutionWriter) -> None:
        entry = self.entry

        def change(current: dict[str, Any]) -> dict[str, Any]:
            entries = [e for e in current.get("resumed") or [] if not _same(e, entry)]
            return {"resumed": [*entries, entry]}

        writer.update(change)

    def open(self, session: Session) -> tuple[Execution, ExecutionWriter]:
        from machinable.storage.checkpoints import next_attempt
        from machinable.storage.identities import forget_identities

        stored, specs = self.stored, session.items
        planned = {t.uid for t in stored.trials} | {s.uid for s in specs}
        assert {s.uid for s in specs} <= planned  # only trials of this execution are ever reset
        writer = self._writer()
        forget_identities(writer)  # the trials change: their identities are read from the index again
        session.items = specs = [replace(s, checkpoint=next_attempt(writer, s.uid)) for s in specs]
        assert session.engine is not None
        self.entry = {
            "at": time.time(),
            "trials": [s.node_id for s in specs],
            "engine": session.engine.describe(),
        }
        self.entry["finished"] = None
        self._put_entry(writer)
        execution = _execution(session, stored.id, stored.seed or 0, stored.folder, self.location)
        return execution, writer

    def close(self, session: Session) -> None:
        execution = session.execution
        assert execution is not None
        self.entry.update(
            finished=execution.finished, outcomes={t.node_id: t.status for t in execution.trials}
        )
        self._put_entry(self._writer())


def _same(entry: Any, ours: dict[str, Any]) -> bool:
    """Whether a stored ``resumed`` entry is ``ours`` as an earlier write stored it."""
    return isinstance(entry, dict) and entry.get("at") == ours["at"] and entry.get("trials") == ours["trials"]


def _execution(session: Session, execution_id: str, seed: int, folder: str, location: Any) -> Execution:
    assert session.engine is not None
    return Execution(
        id=execution_id,
        seed=seed,
        name=None,
        storage=location.url,
        engine=session.engine.describe(),
        started=time.time(),
        location=location,
        folder=folder,
        kind=session.kind,
    )
