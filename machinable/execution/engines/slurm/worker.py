"""What every array task of a Slurm submission runs (``python -m machinable worker``): take the batch's trials
one by one with an atomic claim in storage, run each through the trial protocol, and exit when none is left.

The warning signal before the job's time limit (``--signal=B:USR2@90``) preempts the running trial (its
component saves a checkpoint) and stops the worker from taking another; Ctrl-C from ``scancel --signal=INT``
(the controller stopping early) interrupts it.
"""

from __future__ import annotations

import os
import signal
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from machinable.errors import TrialPreempted
from machinable.execution.engines.slurm.batches import SLURM_JSON, Batch, read_batch, where
from machinable.execution.engines.worker import WorkerContext, environment, gather_fixtures, run
from machinable.execution.placement import machine_cpus, thread_budget
from machinable.storage import Storage, StoredExecution, open_storage, stored_specs
from machinable.storage.claims import TrialClaims
from machinable.storage.encoding import dumpb
from machinable.trials import TrialSpec

_stopping = False


def work(target: Any, folder: str, batch_name: str) -> int:
    """Run the trials of batch ``batch_name`` of the execution in ``folder`` that no one claimed yet; returns the
    process's exit code (130 when interrupted)."""
    location = open_storage(target)
    stored = StoredExecution(Storage(location), folder)
    batch = read_batch(location, folder, batch_name)
    plan = {spec.uid: spec for spec in stored_specs(stored)}
    specs = [replace(plan[uid], checkpoint=batch.checkpoints.get(uid)) for uid in batch.uids if uid in plan]
    warning = _signal(batch)
    context = _context(stored, location, specs, batch, warning)
    here = where()
    claims = TrialClaims(location, folder, stale_after=float("inf"))
    previous = signal.signal(warning, _stop) if warning is not None else None
    io = location.backend()
    budget = thread_budget(int(os.environ.get("SLURM_CPUS_PER_TASK") or machine_cpus()))  # the task's CPUs
    if budget is not None:
        budget.apply()
    try:
        for spec in specs:
            if _stopping:
                break
            if not claims.take(spec.uid, batch.claims.get(spec.uid, 0)):
                continue  # another array task has it
            try:
                trial = io.join(stored.path, spec.uid)
                io.makedirs(trial)
                io.write_bytes(io.join(trial, SLURM_JSON), dumpb(here), atomic=True)
                try:
                    run(spec, context)
                except TrialPreempted:  # written 'preempted' (with its checkpoint) before it was raised
                    _requeue(location, stored, batch, spec, claims.held_number(spec.uid))
                    break  # the job's time is up (or it is being preempted): no further trial
            finally:
                claims.release([spec.uid])
    except KeyboardInterrupt:
        return 130
    finally:
        if warning is not None:
            signal.signal(warning, previous)
    return 0


def _requeue(location: Any, stored: StoredExecution, batch: Batch, spec: TrialSpec, claim: int) -> None:
    """Submit the next attempt of a preempted trial (``requeue`` times at most); it continues from the trial's
    latest checkpoint. Done before the claim is given up, so a controller following sees the requeue first."""
    from machinable.execution.engines.slurm.options import shape_of
    from machinable.execution.engines.slurm.submit import options_of, submit
    from machinable.storage import ExecutionWriter
    from machinable.storage.checkpoints import next_attempt

    options = options_of(batch)
    count = batch.requeued.get(spec.uid, 0)
    if count >= options.requeue:
        return
    checkpoint = next_attempt(ExecutionWriter(location, stored.id, stored.folder), spec.uid)
    follow_up = Batch(
        name=f"requeue-{spec.uid}-{count + 1}",
        uids=[spec.uid],
        claims={spec.uid: claim},
        checkpoints={spec.uid: checkpoint} if checkpoint else {},
        plugins=batch.plugins,
        echo=batch.echo,
        warning=batch.warning,
        requeued={spec.uid: count + 1},
        options=batch.options,
    )
    try:
        submit(
            location,
            stored.folder,
            stored.id,
            options,
            follow_up,
            shape_of(spec, options),
            spec.project_root or ".",
        )
    except Exception as exc:  # e.g. no sbatch on the node: the trial stays preempted for `machinable resume`
        print(f"machinable worker: could not requeue {spec.node_id}: {exc}", file=sys.stderr)


def _context(
    stored: StoredExecution, location: Any, specs: list[Any], batch: Batch, warning: int | None
) -> WorkerContext:
    root = next((spec.project_root for spec in specs if spec.project_root), None)
    fixtures = tuple(gather_fixtures(Path(root), specs)) if root else ()
    context = WorkerContext(
        execution_id=stored.id,
        folder=stored.folder,
        storage=location.to_target(),
        memory=False,
        fixtures=fixtures,
        echo=batch.echo,
        plugins=tuple(tuple(ref) for ref in batch.plugins),  # type: ignore[misc]
    )
    # Only the warning preempts: SIGTERM is also what scancel sends, and a cancelled trial is crashed.
    environment(context).warning_signals = (warning,) if warning is not None else ()
    return context


def _signal(batch: Batch) -> int | None:
    return getattr(signal, f"SIG{batch.warning}", None)


def _stop(signum: int, frame: Any) -> None:
    # Between trials: the job's time is nearly up, so no further trial is started.
    global _stopping
    _stopping = True
