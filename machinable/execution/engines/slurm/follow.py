"""The controller's view of a submission: which trials ended, from storage, and which array tasks died, from
``squeue`` (consulted only every few seconds, never ``sacct``).

A trial's state comes from what its worker wrote: its claim (taken), its status (running, or its outcome) and
its heartbeat. An array task that is gone from ``squeue`` while its trial still reads 'running' was cancelled
or killed: the trial is ``crashed``. When every array task of the submission is gone, trials nobody claimed are
``interrupted`` (not started); ``machinable resume`` runs both.
"""

from __future__ import annotations

import glob
import json
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from machinable.execution.engines.slurm import commands
from machinable.execution.engines.slurm.batches import SLURM_JSON, task_key
from machinable.execution.engines.worker import lost_result
from machinable.storage import Storage, StoredExecution, StoredTrial
from machinable.storage.claims import TrialClaims
from machinable.trials import TrialResult, TrialSpec

if TYPE_CHECKING:
    from machinable.execution.engines.base import RunContext
    from machinable.execution.engines.slurm.batches import Batch

SQUEUE_INTERVAL = 2.0  # seconds between two looks at squeue
ENDED = frozenset({"passed", "failed", "crashed", "interrupted", "preempted"})


class Submission:
    """The trials of one controller run and the Slurm jobs that run them."""

    def __init__(self, specs: list[TrialSpec], context: RunContext) -> None:
        self.context = context
        self.specs = {s.uid: s for s in specs}
        self.claimed: dict[str, int] = {}  # uid -> claim number its (next) worker must exceed
        self.records: dict[str, dict[str, Any]] = {}  # batch name -> its job record
        self.open: dict[str, TrialSpec] = {}  # not reported yet
        location = context.location
        self.stored = StoredExecution(Storage(location), context.writer.folder)
        self.claims = TrialClaims(location, context.writer.folder, stale_after=float("inf"))
        self._looked = float("-inf")

    @property
    def jobs(self) -> list[str]:
        return [record["job_id"] for record in self.records.values()]

    def add(self, record: dict[str, Any], batch: Batch) -> None:
        """A batch submitted (by the controller, or by a worker requeueing a preempted trial)."""
        self.records[batch.name] = record
        for uid in batch.uids:
            if uid in self.specs:
                self.open[uid] = self.specs[uid]
                self.claimed[uid] = batch.claims.get(uid, 0)
        self._looked = float("-inf")

    def save_jobs(self) -> None:
        """``execution.json``'s ``slurm``: every job submitted for the execution so far."""
        self.context.writer.write_execution({"slurm": list(self.records.values())})

    def _learn_requeues(self) -> None:
        from machinable.execution.engines.slurm.batches import read_batch
        from machinable.execution.engines.slurm.submit import recorded_jobs

        found = recorded_jobs(self.context.location, self.context.writer.folder)
        new = {name: record for name, record in found.items() if name not in self.records}
        for name, record in sorted(new.items(), key=lambda item: item[1].get("submitted", 0)):
            self.add(record, read_batch(self.context.location, self.context.writer.folder, name))
        if new:
            self.save_jobs()

    def poll(self) -> list[TrialResult]:
        """The results of the trials that ended since the last poll."""
        latest = self.claims.current()
        # Whether a claim was given up is read before the batches: a worker records a requeue's job before it
        # gives its claim up, so a trial seen released here and requeued is known as requeued below.
        released = {
            uid
            for uid in self.open
            if latest.get(uid, 0) > self.claimed[uid] and self.claims.released(uid, latest[uid])
        }
        self._learn_requeues()
        ended: list[TrialResult] = []
        running: dict[str, StoredTrial] = {}
        for uid in list(self.open):
            if latest.get(uid, 0) <= self.claimed[uid]:
                continue  # not taken yet (or requeued and waiting for its next worker)
            trial = self.stored.trial_at(uid)
            status = trial.status_info  # read again on every access: once per look
            if uid in released and status.get("outcome") in ENDED:
                ended.append(self._result(self.open.pop(uid), trial, status))
            else:  # running, or its worker is still closing it
                running[uid] = trial
        if running or self.open:
            ended += self._lost(running)
        return ended

    def _lost(self, running: dict[str, StoredTrial]) -> list[TrialResult]:
        now = time.monotonic()
        if now - self._looked < SQUEUE_INTERVAL:
            return []
        self._looked = now
        alive = commands.squeue(self.jobs)
        lost: list[TrialResult] = []
        for uid, trial in running.items():
            key = task_key(self._where(uid))
            if key is not None and key in alive:
                continue
            # Re-read: the worker may have written the outcome and exited between the two looks.
            status = trial.status_info
            if status.get("outcome") in ENDED:
                lost.append(self._result(self.open.pop(uid), trial, status))
                continue
            why = (
                f"its Slurm job {key or '(unknown)'} ended while the trial ran (cancelled, killed or failed)"
            )
            lost.append(self._lost_result(uid, "crashed", why, status.get("started")))
        if not alive and self.open:
            latest = self.claims.current()
            for uid in list(self.open):
                if latest.get(uid, 0) > self.claimed[uid]:
                    continue  # claimed meanwhile: the next poll reads it
                why = "not started: every Slurm job of the execution ended before it" + self._log_hint()
                lost.append(self._lost_result(uid, "interrupted", why, None))
        return lost

    def _where(self, uid: str) -> dict[str, Any]:
        io = self.context.location.backend()
        try:
            return json.loads(io.read_bytes(io.join(self.stored.path, uid, SLURM_JSON)))
        except (FileNotFoundError, ValueError):
            return {}

    def _log_hint(self) -> str:
        """The last line the array tasks wrote (a worker that failed to start says why there)."""
        for record in reversed(list(self.records.values())):
            found = sorted(glob.glob(record["log"].replace("%A", record["job_id"]).replace("%a", "*")))
            for path in found:
                with open(path, encoding="utf-8", errors="replace") as handle:
                    lines = [line.strip() for line in handle if line.strip()]
                if lines:
                    return f"; {path} ends: {lines[-1]}"
            if found:
                return f"; its log: {found[0]}"
        return ""

    def _lost_result(self, uid: str, status: str, error: str, started: float | None) -> TrialResult:
        spec = self.open.pop(uid)
        return lost_result(spec, self.context, status, error, started)

    def _result(self, spec: TrialSpec, trial: StoredTrial, status: dict[str, Any]) -> TrialResult:
        from machinable.execution.protocol import trial_flags

        outcome = status["outcome"]
        passed = outcome == "passed"
        return TrialResult.of(
            spec,
            outcome,
            status.get("error"),
            records=trial.records,
            started=status.get("started"),
            finished=status.get("finished"),
            flags=trial_flags(spec, self.context.execution_id),
            output="" if passed else trial.output,
            log="" if passed else trial.log,
        )

    def cancel(self, wait: Callable[[], None]) -> list[TrialResult]:
        """Interrupt the running trials (SIGINT to each worker: they write ``interrupted``), cancel every job,
        and return the results of the trials that had started."""
        self._learn_requeues()
        commands.scancel(self.jobs, signal="INT", batch=True)
        deadline = time.monotonic() + 10.0
        results: list[TrialResult] = []
        while time.monotonic() < deadline:
            results += self.poll()
            if not commands.squeue(self.jobs):
                break
            wait()
        commands.scancel(self.jobs)
        results += self.poll()
        latest = self.claims.current()
        for uid in list(self.open):
            if latest.get(uid, 0) > self.claimed[uid]:
                results.append(
                    self._lost_result(
                        uid, "interrupted", "KeyboardInterrupt: the execution was cancelled", None
                    )
                )
        return results
