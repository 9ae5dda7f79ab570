"""A trial's share of the machine: how many threads its libraries may start, and which GPUs it sees.

Engines that run several trials on one machine split it (the ``process`` engine: CPUs / workers, or a trial's
``resources`` CPUs; disjoint GPUs); Ray and Slurm give each trial what they scheduled it with. The worker that runs
the trial applies its :class:`Placement` to its own environment before the trial starts: the thread variables of
OpenMP, MKL, OpenBLAS and friends (read by each library when it is loaded), the pools of libraries that are already
loaded (threadpoolctl, ``torch.set_num_threads``), and ``CUDA_VISIBLE_DEVICES``. What a trial saw is stored with it
(:func:`observed`).
"""

from __future__ import annotations

import math
import os
import sys
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from machinable.errors import UsageError

if TYPE_CHECKING:
    from machinable.trials import TrialSpec

# Every variable a common numerical library reads its thread count from, when it is loaded.
THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "BLIS_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)
GPU_VARIABLE = "CUDA_VISIBLE_DEVICES"
# Modules whose import loads a native thread pool (BLAS, OpenMP): once one is loaded, its pool size is only
# changed through threadpoolctl.
_POOLED = ("numpy", "scipy", "sklearn", "torch")


@dataclass(frozen=True)
class Placement:
    """``threads``: the trial's thread budget (None: leave the thread variables alone, the user set them);
    ``gpus``: the devices it sees (None: leave ``CUDA_VISIBLE_DEVICES`` alone; ``()``: none)."""

    threads: int | None = None
    gpus: tuple[str, ...] | None = None

    def apply(self) -> None:
        """Set this process's environment and its loaded libraries' pools for the next trial."""
        if self.gpus is not None:
            os.environ[GPU_VARIABLE] = ",".join(self.gpus)
        if self.threads is not None:
            for name in THREAD_VARIABLES:
                os.environ[name] = str(self.threads)
            _limit_loaded_pools(self.threads)


_limited: tuple[int, frozenset[str]] | None = None  # the last limit set, and the pooled modules loaded then


def _limit_loaded_pools(threads: int) -> None:
    """Libraries read the thread variables once, when loaded: pools that exist already are resized.

    threadpoolctl costs about half a millisecond, so it runs only when the budget or the loaded libraries changed;
    torch's own count is cheap and set every time (a trial may have changed it)."""
    global _limited
    loaded = frozenset(name for name in _POOLED if name in sys.modules)
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(threads)
    if not loaded or _limited == (threads, loaded):
        return
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=threads)
    _limited = (threads, loaded)


def user_threads() -> bool:
    """Whether the user chose thread counts themselves (then machinable sets none)."""
    return any(name in os.environ for name in THREAD_VARIABLES)


def _threads(cpus: float) -> int:
    """The thread budget of ``cpus`` CPUs: a fraction of one still runs a thread."""
    return max(1, math.ceil(cpus))


def _devices(items: str | Sequence[Any]) -> tuple[str, ...]:
    """Device ids from ``'0,2'`` (``CUDA_VISIBLE_DEVICES``) or a list: blanks left out."""
    parts = items.split(",") if isinstance(items, str) else items
    return tuple(str(d).strip() for d in parts if str(d).strip())


def observed() -> dict[str, Any]:
    """What the running trial sees: its thread budget and GPUs, as stored with it (absent when not set)."""
    seen: dict[str, Any] = {}
    threads = os.environ.get("OMP_NUM_THREADS", "")
    if threads.isdigit():
        seen["threads"] = int(threads)
    if GPU_VARIABLE in os.environ:
        seen["gpus"] = list(_devices(os.environ[GPU_VARIABLE]))
    return seen


# -- a trial's resources -------------------------------------------------------------------------------------
# Ray's names first; the short ones are what people write (``resources={'gpu': 1}``).
_CPU_KEYS = ("num_cpus", "CPU", "cpu", "cpus")
_GPU_KEYS = ("num_gpus", "GPU", "gpu", "gpus")


def _amount(resources: Mapping[str, Any] | None, keys: Sequence[str]) -> float | None:
    for key in keys:
        value = (resources or {}).get(key)
        if value is not None:
            return value
    return None


def cpus_of(resources: Mapping[str, Any] | None) -> float | None:
    """The CPUs a trial's ``resources`` ask for (``num_cpus``, ``CPU``, ``cpu`` or ``cpus``), or None."""
    return _amount(resources, _CPU_KEYS)


def gpus_of(resources: Mapping[str, Any] | None) -> float | None:
    """The GPUs a trial's ``resources`` ask for (``num_gpus``, ``GPU``, ``gpu`` or ``gpus``), or None."""
    return _amount(resources, _GPU_KEYS)


def resource_aliases() -> dict[str, str]:
    """Short resource names and the Ray option each stands for."""
    return {key: "num_cpus" for key in _CPU_KEYS[1:]} | {key: "num_gpus" for key in _GPU_KEYS[1:]}


# -- GPUs of one machine -------------------------------------------------------------------------------------
def visible_gpus(option: Any = None) -> tuple[str, ...]:
    """The GPUs the ``process`` engine hands out: its ``gpus`` option (a count, a list of device ids or
    ``'0,1'``), else ``CUDA_VISIBLE_DEVICES`` of this process, else the devices ``nvidia-smi -L`` lists."""
    if option is not None:
        if isinstance(option, bool) or not isinstance(option, int | str | list | tuple):
            raise UsageError(
                f"engine 'process': gpus must be a count or a list of device ids, not {option!r}"
            )
        if isinstance(option, int):
            if option < 0:
                raise UsageError(f"engine 'process': gpus must be a count >= 0, not {option}")
            return tuple(str(i) for i in range(option))
        return _devices(option)
    if GPU_VARIABLE in os.environ:
        return _devices(os.environ[GPU_VARIABLE])
    return _nvidia_smi_devices()


def _nvidia_smi_devices() -> tuple[str, ...]:
    import shutil
    import subprocess

    smi = shutil.which("nvidia-smi")
    if smi is None:
        return ()
    try:
        listing = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=10, check=False).stdout
    except (OSError, subprocess.SubprocessError):
        return ()
    return tuple(str(i) for i, line in enumerate(listing.splitlines()) if line.startswith("GPU "))


class GpuSlots:
    """The GPUs of one machine, each held by at most one running trial."""

    def __init__(self, devices: Sequence[str]) -> None:
        self.devices = tuple(devices)
        self.free = list(self.devices)

    def take(self, count: int, prefer: tuple[str, ...] | None = None) -> tuple[str, ...] | None:
        """``count`` free devices (``prefer`` if it is exactly that many and all free), or None to wait."""
        if count == 0:
            return ()
        if prefer is not None and len(prefer) == count and all(d in self.free for d in prefer):
            chosen = prefer
        elif len(self.free) >= count:
            chosen = tuple(self.free[:count])
        else:
            return None
        for device in chosen:
            self.free.remove(device)
        return chosen

    def give_back(self, devices: tuple[str, ...]) -> None:
        self.free.extend(d for d in devices if d not in self.free)
        self.free.sort(key=self.devices.index)


def machine_cpus() -> int:
    """The CPUs this process may run on (its affinity: a Slurm job's or a container's share, not the host's)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):
        return os.cpu_count() or 1


class Shares:
    """How the ``process`` engine splits one machine between the trials of a run: each trial's thread budget
    and, for trials that ask for GPUs, devices of their own."""

    def __init__(self, specs: Sequence[TrialSpec], workers: int, gpus: Any) -> None:
        # The user's own thread variables win: then machinable sets none.
        self.per_worker = None if user_threads() else max(1, machine_cpus() // max(1, workers))
        self.needs = [_whole_gpus(spec) for spec in specs]
        self.slots: GpuSlots | None = None
        if any(self.needs) or gpus is not None:
            self.slots = GpuSlots(visible_gpus(gpus))
            most = max(range(len(specs)), key=self.needs.__getitem__)
            if self.needs[most] > len(self.slots.devices):
                have = ", ".join(self.slots.devices) or "none"
                raise UsageError(
                    f"trial {specs[most].node_id} asks for {self.needs[most]} GPUs; engine 'process' has "
                    f"{len(self.slots.devices)} ({have}): set its gpus option or CUDA_VISIBLE_DEVICES"
                )

    def threads(self, spec: TrialSpec) -> int | None:
        """The trial's thread budget: its ``resources`` CPUs, else the machine's CPUs over the workers."""
        if self.per_worker is None:
            return None
        cpus = cpus_of(spec.resources)
        if cpus is None:
            return self.per_worker
        if isinstance(cpus, bool) or not isinstance(cpus, int | float) or cpus <= 0:
            raise UsageError(f"trial {spec.node_id}: resources CPUs must be a positive number, not {cpus!r}")
        return _threads(cpus)

    def pick(
        self, pending: deque[int], prefer: tuple[str, ...] | None
    ) -> tuple[int, tuple[str, ...] | None] | None:
        """The next pending trial that can start now and its devices (None: GPUs untouched), taken off
        ``pending``; trials whose GPUs are not free wait while later ones that fit go ahead."""
        if self.slots is None:
            return (pending.popleft(), None) if pending else None
        for index in pending:
            devices = self.slots.take(self.needs[index], prefer)
            if devices is not None:
                pending.remove(index)
                return index, devices
        return None

    def give_back(self, devices: tuple[str, ...] | None) -> None:
        if self.slots is not None and devices:
            self.slots.give_back(devices)


def _whole_gpus(spec: TrialSpec) -> int:
    value = gpus_of(spec.resources)
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0 or value != int(value):
        raise UsageError(
            f"trial {spec.node_id}: resources GPUs {value!r}: engine 'process' gives whole GPUs (a count such as 1)"
        )
    return int(value)


def thread_budget(cpus: Any) -> Placement | None:
    """The placement of a trial that a scheduler gave ``cpus`` CPUs (Ray, Slurm): as many threads, unless the
    user set the thread variables (then None: nothing is changed)."""
    if user_threads() or isinstance(cpus, bool) or not isinstance(cpus, int | float):
        return None
    return Placement(threads=_threads(cpus))
