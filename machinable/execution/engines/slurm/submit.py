"""Submitting one batch: its file in storage, its ``sbatch`` script, the job, and the job's record beside them.

The controller submits the first batches; a worker submits the next attempt of a trial preempted in it
(``requeue``), so a detached execution is requeued too. Either way the job is recorded in
``<execution>/.slurm/<batch>.job``, where the controller (when attached) learns of it.
"""

from __future__ import annotations

import json
import shlex
import time
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from machinable.execution.engines.slurm import commands
from machinable.execution.engines.slurm.batches import Batch, batch_folder, log_path, write_batch
from machinable.execution.engines.slurm.options import Shape, SlurmOptions
from machinable.execution.engines.slurm.script import render
from machinable.storage.encoding import dumpb

if TYPE_CHECKING:
    from machinable.storage import StorageLocation

JOB_SUFFIX = ".job"


def submit(
    location: StorageLocation,
    folder: str,
    execution_id: str,
    options: SlurmOptions,
    batch: Batch,
    shape: Shape,
    chdir: str,
) -> dict[str, Any]:
    """Write ``batch``, submit its job array and record the job; returns the record (job id, batch, log ...)."""
    write_batch(location, folder, batch)
    log = log_path(location, folder, batch.name, options.log_dir)
    script = render(
        options,
        shape,
        job_name=f"machinable-{execution_id}",
        tasks=min(len(batch.uids), options.max_parallel),
        log=log,
        chdir=chdir,
        worker=worker_command(options, location, folder, batch.name),
    )
    job = commands.sbatch(script)
    record = {
        "job_id": job,
        "batch": batch.name,
        "resources": shape.describe(),
        "submitted": time.time(),
        "log": log,
    }
    io = location.backend()
    base = batch_folder(location, folder)
    io.write_bytes(io.join(base, f"{batch.name}.sbatch"), script.encode("utf-8"))
    io.write_bytes(io.join(base, batch.name + JOB_SUFFIX), dumpb(record), atomic=True)
    return record


def worker_command(options: SlurmOptions, location: StorageLocation, folder: str, batch: str) -> list[str]:
    target = json.dumps(location.to_target(), separators=(",", ":"))
    return [
        options.python,
        "-m",
        "machinable",
        "worker",
        "--storage",
        target,
        "--execution",
        folder,
        "--batch",
        batch,
    ]


def options_of(batch: Batch) -> SlurmOptions:
    """The engine's options a batch was submitted with (for the batches its workers submit)."""
    return SlurmOptions.parse(batch.options)


def stored_options(options: SlurmOptions) -> dict[str, Any]:
    return {key: list(value) if isinstance(value, tuple) else value for key, value in asdict(options).items()}


def recorded_jobs(location: StorageLocation, folder: str) -> dict[str, dict[str, Any]]:
    """batch name -> its job record, for every batch submitted so far (by the controller or a worker)."""
    io = location.backend()
    base = batch_folder(location, folder)
    try:
        names = [name for name, is_dir in io.listdir(base) if not is_dir and name.endswith(JOB_SUFFIX)]
    except (FileNotFoundError, NotADirectoryError):
        return {}
    jobs = {}
    for name in names:
        try:
            jobs[name[: -len(JOB_SUFFIX)]] = json.loads(io.read_bytes(io.join(base, name)))
        except (FileNotFoundError, ValueError):
            continue  # being written: the next look finds it
    return jobs


def follow_command(execution_id: str, storage: str) -> str:
    return f"machinable show --follow {execution_id} --storage {shlex.quote(storage)}"
