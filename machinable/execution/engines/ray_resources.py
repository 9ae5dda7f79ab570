"""What a trial's Ray task asks the cluster for, and the bookkeeping of what running tasks hold."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from machinable.execution.placement import resource_aliases
from machinable.trials import TrialSpec

# ray.remote / .options() arguments a trial's ``resources`` may set; any other key is a custom resource.
TASK_OPTIONS = (
    "num_cpus",
    "num_gpus",
    "memory",
    "resources",
    "accelerator_type",
    "scheduling_strategy",
    "runtime_env",
)
ALIASES = resource_aliases()  # resources={'gpu': 1} is num_gpus


def task_options(spec: TrialSpec) -> dict[str, Any]:
    """``.options()`` of the trial's Ray task from its ``resources``."""
    options: dict[str, Any] = {"num_cpus": 1}
    custom: dict[str, Any] = {}
    for key, value in (spec.resources or {}).items():
        if key in TASK_OPTIONS:
            options[key] = value
        elif key in ALIASES:
            options[ALIASES[key]] = value
        else:
            custom[key] = value
    if custom:
        options["resources"] = {**(options.get("resources") or {}), **custom}
    return options


def demand(options: Mapping[str, Any]) -> dict[str, float]:
    """What a task takes from the cluster while it runs, in ``ray.cluster_resources()`` names."""
    need: dict[str, Any] = {
        "CPU": options.get("num_cpus", 1),
        "GPU": options.get("num_gpus", 0),
        "memory": options.get("memory", 0),
        **(options.get("resources") or {}),
    }
    return {key: float(value) for key, value in need.items() if value}


def totals(ray: Any) -> dict[str, float]:
    return {k: float(v) for k, v in ray.cluster_resources().items()}


def free(totals: Mapping[str, float], used: Mapping[str, float]) -> dict[str, float]:
    return {k: v - used.get(k, 0.0) for k, v in totals.items()}


def fits(need: Mapping[str, float], free: Mapping[str, float]) -> bool:
    return all(free.get(k, 0.0) + 1e-9 >= v for k, v in need.items())


def add(used: dict[str, float], need: Mapping[str, float], sign: int) -> None:
    for k, v in need.items():
        used[k] = used.get(k, 0.0) + sign * v


def shown(totals: Mapping[str, float]) -> dict[str, float]:
    return {k: v for k, v in totals.items() if not k.startswith(("node:", "object_store_memory"))}
