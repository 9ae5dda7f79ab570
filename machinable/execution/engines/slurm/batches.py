"""What the workers of one submission read from storage: ``<execution>/.slurm/<batch>.json``.

A batch names its trials (uids, in plan order) and, for each, the number of the trial's claim at submission:
a worker takes a trial by creating the next claim (``storage.claims``), so a trial claimed after the
submission (by a worker of this batch) is never taken again, and a trial a dead worker claimed stays with it
(``crashed``) until ``machinable resume``. The specs themselves come from the stored plan (``execution.json``):
nothing is pickled.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from typing import Any

from machinable.storage import StorageLocation
from machinable.storage.encoding import dumpb

BATCH_DIR = ".slurm"  # a '.'-folder: readers never take it for a trial
SLURM_JSON = "slurm.json"  # per trial: where it ran (job, array task, node, GPUs)


@dataclass
class Batch:
    name: str
    uids: list[str]
    claims: dict[str, int]  # uid -> number of its latest claim when submitted
    # uid -> the checkpoint a resumed or requeued trial continues from (TrialSpec.checkpoint)
    checkpoints: dict[str, str] = field(default_factory=dict)
    plugins: list[list[Any]] = field(default_factory=list)  # machinable.plugins.plugin_refs, as lists
    echo: bool = False
    warning: str = "USR2"  # the signal that warns of the time limit (see SlurmOptions.signal)
    requeued: dict[str, int] = field(default_factory=dict)  # uid -> how often it was requeued so far
    # the engine's options (a requeue submits with them)
    options: dict[str, Any] = field(default_factory=dict)


def batch_folder(location: StorageLocation, execution_folder: str) -> str:
    """The execution's ``.slurm/`` folder: batches, their scripts, job records and (on local storage) logs."""
    io = location.backend()
    return io.join(location.root, execution_folder, BATCH_DIR)


def write_batch(location: StorageLocation, execution_folder: str, batch: Batch) -> None:
    io = location.backend()
    folder = batch_folder(location, execution_folder)
    io.makedirs(folder)
    io.write_bytes(io.join(folder, f"{batch.name}.json"), dumpb(asdict(batch), pretty=True), atomic=True)


def read_batch(location: StorageLocation, execution_folder: str, name: str) -> Batch:
    io = location.backend()
    data = json.loads(io.read_bytes(io.join(batch_folder(location, execution_folder), f"{name}.json")))
    return Batch(**data)


def log_path(location: StorageLocation, execution_folder: str, name: str, log_dir: str | None) -> str:
    """Where Slurm writes an array task's own output (``%A``: array job id, ``%a``: task): beside the batch on a
    local storage, in ``log_dir`` (a shared folder the user names) otherwise, or nowhere."""
    if log_dir is not None:
        return os.path.join(os.path.abspath(os.path.expanduser(log_dir)), f"{name}-%A_%a.log")
    if location.is_local:
        return os.path.join(batch_folder(location, execution_folder), f"{name}-%A_%a.log")
    return "/dev/null"


def where(environ: dict[str, str] | None = None) -> dict[str, Any]:
    """This array task's job id, array job and task ids, node and GPUs, from Slurm's environment."""
    env = os.environ if environ is None else environ
    gpus = env.get("SLURM_JOB_GPUS") or env.get("SLURM_STEP_GPUS") or env.get("CUDA_VISIBLE_DEVICES")
    return {
        "job_id": env.get("SLURM_JOB_ID"),
        "array_job_id": env.get("SLURM_ARRAY_JOB_ID"),
        "array_task_id": env.get("SLURM_ARRAY_TASK_ID"),
        "node": env.get("SLURMD_NODENAME"),
        "partition": env.get("SLURM_JOB_PARTITION"),
        "gpus": [g for g in gpus.split(",") if g] if gpus else [],
    }


def task_key(info: dict[str, Any]) -> str | None:
    """How squeue names the array task of ``where()``'s info (``'12_3'``)."""
    if info.get("array_job_id") and info.get("array_task_id") is not None:
        return f"{info['array_job_id']}_{info['array_task_id']}"
    return info.get("job_id")
