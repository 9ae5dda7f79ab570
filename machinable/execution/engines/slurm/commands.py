"""``sbatch``, ``squeue`` and ``scancel``: each failure is one line with Slurm's own message."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterable

from machinable.errors import UsageError

TIMEOUT = 60.0  # seconds a Slurm command may take before the controller gives up on it


class SlurmError(UsageError):
    """A Slurm command is missing or refused what machinable asked."""


def require(command: str) -> str:
    path = shutil.which(command)
    if path is None:
        raise SlurmError(
            f"engine 'slurm': '{command}' is not on PATH; run machinable on a Slurm login node "
            "(or put Slurm's client commands on PATH)"
        )
    return path


def _run(args: list[str], stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(args, input=stdin, capture_output=True, text=True, timeout=TIMEOUT, check=False)
    except subprocess.TimeoutExpired:
        raise SlurmError(f"engine 'slurm': '{args[0]}' did not answer within {TIMEOUT:g} s") from None


def _message(proc: subprocess.CompletedProcess[str]) -> str:
    lines = [line.strip() for line in (proc.stderr or proc.stdout or "").splitlines() if line.strip()]
    return " ".join(lines) or f"exit code {proc.returncode}"


def sbatch(script: str) -> str:
    """Submit ``script`` (read by sbatch from standard input); returns the job id."""
    proc = _run([require("sbatch"), "--parsable"], stdin=script)
    if proc.returncode != 0:
        raise SlurmError(f"engine 'slurm': sbatch refused the job: {_message(proc)}")
    return proc.stdout.strip().split(";")[0]


def squeue(job_ids: Iterable[str]) -> dict[str, str]:
    """Array task or job (``'12_3'``, ``'12_[4-9%2]'``, ``'13'``) -> state, for the given jobs that are still
    known to the controller (pending, running, completing)."""
    ids = ",".join(job_ids)
    if not ids:
        return {}
    proc = _run([require("squeue"), "-h", "-j", ids, "-o", "%i %T"])
    if proc.returncode != 0:
        if "Invalid job id" in _message(proc):  # every job ended and was purged from the controller
            return {}
        raise SlurmError(f"engine 'slurm': squeue failed: {_message(proc)}")
    states = {}
    for line in proc.stdout.splitlines():
        key, _, state = line.strip().partition(" ")
        if key:
            states[key] = state.strip()
    return states


def scancel(job_ids: Iterable[str], signal: str | None = None, batch: bool = False) -> None:
    """Cancel the jobs (or send ``signal``, to the batch shell only with ``batch``); jobs already gone are
    no error."""
    ids = list(job_ids)
    if not ids:
        return
    args = [require("scancel")]
    if signal is not None:
        args += ["--signal", signal]
    if batch:
        args.append("--batch")
    proc = _run(args + ids)
    if proc.returncode != 0 and "Invalid job id" not in _message(proc):
        raise SlurmError(f"engine 'slurm': scancel failed: {_message(proc)}")
