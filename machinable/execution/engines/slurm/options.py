"""The slurm engine's options, checked before anything is submitted."""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

from machinable.errors import UsageError, did_you_mean
from machinable.execution.placement import cpus_of, gpus_of

if TYPE_CHECKING:
    from machinable.trials import TrialSpec

# Slurm's time formats (sbatch(1), --time): minutes, minutes:seconds, hours:minutes:seconds, days-hours,
# days-hours:minutes, days-hours:minutes:seconds; or no limit.
_TIME = re.compile(r"^(\d+)(:\d{1,2}){0,2}$|^\d+-\d+(:\d{1,2}){0,2}$")
_UNLIMITED = ("UNLIMITED", "INFINITE")
# sbatch --mem: a number with an optional unit (K, M, G, T)
_MEMORY = re.compile(r"^\d+[KMGT]?$", re.IGNORECASE)
_SIGNAL = re.compile(r"^(B:)?(SIG)?[A-Z0-9]+(@\d+)?$")
DEFAULT_MAX_PARALLEL = 16


@dataclass(frozen=True)
class SlurmOptions:
    """What ``{'type': 'slurm', ...}`` may say; every field is documented in docs/engines.md."""

    partition: str | None = None
    time: str | None = None
    cpus_per_task: int | None = None
    gpus: int | str | None = None
    mem: str | None = None
    account: str | None = None
    qos: str | None = None
    max_parallel: int = DEFAULT_MAX_PARALLEL
    sbatch_args: tuple[str, ...] = ()
    setup: tuple[str, ...] = ()
    signal: str = "USR2@90"
    detach: bool = False
    requeue: int = 0
    python: str = field(default_factory=lambda: sys.executable)
    poll_interval: float = 0.5
    log_dir: str | None = None

    @classmethod
    def parse(cls, options: Mapping[str, Any]) -> SlurmOptions:
        known = {f.name for f in fields(cls)}
        for key in options:
            if key not in known:
                raise UsageError(
                    f"engine 'slurm': unknown option '{key}'{did_you_mean(str(key), known)}; "
                    f"known options: {', '.join(sorted(known))}"
                )
        values = dict(options)
        if isinstance(values.get("time"), int) and not isinstance(values["time"], bool):
            values["time"] = str(values["time"])  # Slurm's plain number: minutes
        for key in ("sbatch_args", "setup"):
            if key in values:
                values[key] = _strings(key, values[key])
        made = cls(**values)
        made.check()
        return made

    def check(self) -> None:
        for key in ("partition", "account", "qos", "mem", "time", "python", "log_dir", "signal"):
            value = getattr(self, key)
            if value is not None and (not isinstance(value, str) or not value.strip()):
                raise UsageError(f"engine 'slurm': {key} must be a non-empty text, not {value!r}")
        if self.time is not None and not (_TIME.match(self.time) or self.time.upper() in _UNLIMITED):
            raise UsageError(
                f"engine 'slurm': time '{self.time}' is no Slurm time limit; use minutes ('30'), "
                "'HH:MM:SS' ('4:00:00') or 'D-HH:MM:SS' ('1-12:00:00')"
            )
        if self.mem is not None and not _MEMORY.match(self.mem):
            raise UsageError(
                f"engine 'slurm': mem '{self.mem}' is no Slurm memory size; use e.g. '4G' or '500M'"
            )
        if not _SIGNAL.match(self.signal.upper()):
            raise UsageError(
                f"engine 'slurm': signal '{self.signal}' is no Slurm --signal value; use e.g. 'USR2@90'"
            )
        _positive("cpus_per_task", self.cpus_per_task, allow_none=True)
        _positive("max_parallel", self.max_parallel)
        if self.gpus is not None and not (
            (isinstance(self.gpus, int) and not isinstance(self.gpus, bool) and self.gpus >= 0)
            or (isinstance(self.gpus, str) and re.match(r"^([\w-]+:)?\d+$", self.gpus))
        ):
            raise UsageError(f"engine 'slurm': gpus must be a number or 'type:number', not {self.gpus!r}")
        if isinstance(self.requeue, bool) or not isinstance(self.requeue, int) or self.requeue < 0:
            raise UsageError(
                f"engine 'slurm': requeue is how often a preempted trial is resubmitted, not {self.requeue!r}"
            )
        if not isinstance(self.detach, bool):
            raise UsageError(f"engine 'slurm': detach must be true or false, not {self.detach!r}")
        if not isinstance(self.poll_interval, int | float) or not 0 < self.poll_interval <= 60:
            raise UsageError(
                f"engine 'slurm': poll_interval must be seconds (0-60], not {self.poll_interval!r}"
            )

    @property
    def warning_signal(self) -> str:
        """The signal's name without 'B:', 'SIG' or '@seconds' (``USR2``)."""
        name = self.signal.upper().removeprefix("B:").split("@")[0]
        return name.removeprefix("SIG")


def _strings(key: str, value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise UsageError(f"engine 'slurm': {key} must be a list of texts, not {value!r}")
    return tuple(value)


def _positive(key: str, value: Any, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise UsageError(f"engine 'slurm': {key} must be a positive number, not {value!r}")


@dataclass(frozen=True)
class Shape:
    """The resources of one array task: trials with the same shape share a job array."""

    cpus: int | None
    gpus: int | str | None
    mem: str | None

    def describe(self) -> str:
        parts = [f"{self.cpus} cpus" if self.cpus else "", f"gpus {self.gpus}" if self.gpus else ""]
        parts.append(f"mem {self.mem}" if self.mem else "")
        return ", ".join(p for p in parts if p) or "default resources"


def shape_of(spec: TrialSpec, options: SlurmOptions) -> Shape:
    """A trial's array resources: its ``resources`` (Ray's names: num_cpus, num_gpus, memory in bytes) over the
    engine's defaults."""
    resources = spec.resources or {}
    cpus = cpus_of(resources) or options.cpus_per_task
    gpus = gpus_of(resources) or options.gpus
    memory = resources.get("memory")
    mem = f"{max(1, int(memory) // 2**20)}M" if isinstance(memory, int | float) and memory else options.mem
    if isinstance(cpus, float) and cpus.is_integer():
        cpus = int(cpus)
    if isinstance(gpus, float) and gpus.is_integer():
        gpus = int(gpus)
    return Shape(cpus if cpus else None, gpus if gpus else None, mem)
