"""``machinable show ID --env``: what an execution ran with (its ``provenance.json``), section by section.

The sections: code (commit, branch, uncommitted changes, remote, untracked files), python, platform, gpus, slurm,
host and, last because it is long, every installed package with its version. A part that could not be collected
shows its error. ``--json`` prints ``provenance.json`` as stored.
"""

from __future__ import annotations

import json
import shutil
import textwrap
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from machinable.reporting.show import when
from machinable.text import plural

if TYPE_CHECKING:
    from machinable.storage import StoredExecution

UNTRACKED_SHOWN = 10


def render_provenance(stored: StoredExecution, fmt: str = "table") -> str:
    """The provenance of ``stored`` as text, or with ``fmt='json'`` as stored."""
    provenance = stored.provenance
    if fmt == "json":
        return json.dumps(provenance, indent=2, default=str)
    if not provenance:
        return (
            f"execution {stored.id} has no provenance: it ran before machinable recorded it, or without the "
            "provenance plugin (-p no:provenance)"
        )
    sections: list[tuple[str, list[str]]] = [
        ("code", _part(provenance.get("git"), lambda git: _code(git, stored.code_diff))),
        ("python", _part(provenance.get("python"), _python)),
        ("platform", _part(provenance.get("platform"), _platform)),
        ("gpus", _part(provenance.get("gpus"), _gpus)),
        ("slurm", _part(provenance.get("slurm"), _slurm)),
        ("host", [f"{provenance.get('host') or '-'}, user {provenance.get('user') or '-'}"]),
    ]
    width = max(len(label) for label, _ in sections) + 2
    packages = provenance.get("packages")
    sections.append(("packages", _part(packages, lambda p: _packages(p, width))))
    seconds = provenance.get("seconds")
    took = f" in {seconds * 1000:.0f} ms" if isinstance(seconds, int | float) else ""
    lines = [f"execution {stored.id}: provenance collected {when(provenance.get('collected'))}{took}"]
    for label, body in sections:
        lines += [(label if i == 0 else "").ljust(width) + line for i, line in enumerate(body)]
    return "\n".join(lines)


def _part(part: Any, show: Callable[[Any], list[str]]) -> list[str]:
    if part is None:
        return ["-"]
    if isinstance(part, Mapping) and set(part) == {"error"}:
        return [f"not collected: {part['error']}"]
    return show(part)


def _code(git: Mapping[str, Any], diff: bytes | None) -> list[str]:
    if not git.get("repository"):
        return ["not in a git repository"]
    branch = git.get("branch")
    lines = [f"commit {git.get('commit') or '(none yet)'}" + (f" on {branch}" if branch else " (detached)")]
    if not git.get("dirty"):
        lines.append("clean: no uncommitted changes to tracked files")
    elif diff is not None:
        files = diff.count(b"\ndiff --git ") + diff.startswith(b"diff --git ")
        lines.append(f"dirty: uncommitted changes to {plural(files, 'file')} in {git.get('diff')}")
    else:
        why = git.get("diff_skipped") or git.get("diff_error") or "not stored"
        lines.append(f"dirty: uncommitted changes to tracked files (the diff: {why})")
    if git.get("remote"):
        lines.append(f"remote {git['remote']}")
    untracked = git.get("untracked") or []
    if untracked:
        more = len(untracked) - UNTRACKED_SHOWN
        shown = ", ".join(untracked[:UNTRACKED_SHOWN]) + (f" and {more} more" if more > 0 else "")
        lines.append(f"untracked: {shown}")
    return lines


def _python(python: Mapping[str, Any]) -> list[str]:
    return [f"{python.get('version')} ({python.get('implementation')}), {python.get('executable')}"]


def _platform(platform: Mapping[str, Any]) -> list[str]:
    cpus = f"{platform.get('cpu_count')} CPUs"
    if platform.get("cpus_usable") not in (None, platform.get("cpu_count")):
        cpus += f" ({platform['cpus_usable']} usable)"
    cpu = platform.get("cpu") or "CPU unknown"
    return [f"{platform.get('system')} {platform.get('release')} {platform.get('machine')}", f"{cpu}, {cpus}"]


def _gpus(gpus: Mapping[str, Any]) -> list[str]:
    lines = []
    listed = gpus.get("nvidia_smi")
    if isinstance(listed, Mapping):
        lines.append(f"nvidia-smi failed: {listed.get('error')}")
    for gpu in listed or []:
        lines.append(f"{gpu.get('name')}, {gpu.get('memory_total')}, driver {gpu.get('driver_version')}")
    torch = gpus.get("torch")
    if torch is not None:
        line = f"torch {torch.get('version')} (CUDA {torch.get('cuda') or '-'})"
        devices = torch.get("devices")
        lines.append(
            line
            + (f": {', '.join(devices)}" if devices else ", devices not asked (CUDA was not initialized)")
        )
    return lines or ["none found (no nvidia-smi)"]


def _slurm(slurm: Mapping[str, Any]) -> list[str]:
    if not slurm:
        return ["not a Slurm job"]
    line = f"job {slurm.get('SLURM_JOB_ID', '-')}"
    if "SLURM_ARRAY_JOB_ID" in slurm:
        line += f" (array {slurm['SLURM_ARRAY_JOB_ID']}_{slurm.get('SLURM_ARRAY_TASK_ID', '-')})"
    if "SLURM_JOB_PARTITION" in slurm:
        line += f", partition {slurm['SLURM_JOB_PARTITION']}"
    if "SLURM_JOB_NODELIST" in slurm:
        line += f", nodes {slurm['SLURM_JOB_NODELIST']}"
    return [line]


def _packages(packages: Mapping[str, Any], indent: int) -> list[str]:
    if not packages:
        return ["none found"]
    width = max(40, shutil.get_terminal_size((100, 24)).columns - indent)
    listed = ", ".join(f"{name}=={version}" for name, version in packages.items())
    # name==version never breaks: names hold hyphens, and the pairs are what pip understands
    wrapped = textwrap.wrap(listed, width, break_on_hyphens=False, break_long_words=False)
    return [f"{plural(len(packages), 'distribution')} installed:", *wrapped]
