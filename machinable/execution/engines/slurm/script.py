"""The ``sbatch`` script of one job array: resources as ``#SBATCH`` lines, the user's setup, then the worker."""

from __future__ import annotations

import shlex
from collections.abc import Sequence

from machinable.execution.engines.slurm.options import Shape, SlurmOptions


def render(
    options: SlurmOptions,
    shape: Shape,
    *,
    job_name: str,
    tasks: int,
    log: str,
    chdir: str,
    worker: Sequence[str],
) -> str:
    """The script text; ``worker`` is the command every array task runs (it replaces the batch shell, so the
    warning signal sent to the batch shell, ``B:``, reaches it)."""
    lines = ["#!/bin/bash", f"#SBATCH --job-name={job_name}"]
    lines.append(f"#SBATCH --array=0-{tasks - 1}%{min(tasks, options.max_parallel)}")
    lines += [f"#SBATCH --output={log}", "#SBATCH --open-mode=append", f"#SBATCH --chdir={chdir}"]
    signal = options.signal if options.signal.upper().startswith("B:") else f"B:{options.signal}"
    lines.append(f"#SBATCH --signal={signal}")
    for flag, value in (
        ("partition", options.partition),
        ("time", options.time),
        ("account", options.account),
        ("qos", options.qos),
        ("cpus-per-task", shape.cpus),
        ("gpus-per-task", shape.gpus),
        ("mem", shape.mem),
    ):
        if value is not None:
            lines.append(f"#SBATCH --{flag}={value}")
    lines += [f"#SBATCH {arg}" for arg in options.sbatch_args]
    lines += list(options.setup)
    lines.append("exec " + shlex.join(worker))
    return "\n".join(lines) + "\n"
