"""The built-in plugin ``provenance``: what an execution ran with, stored beside its ``execution.json``.

``provenance.json`` holds the project's git state (commit, branch, dirty, remote, untracked files), Python, every
installed distribution with its version, the platform and CPU, GPUs, the Slurm job, host and user, when it was
collected and how long that took; ``code.diff`` holds the uncommitted changes (``git diff HEAD``) when tracked
files differed from the commit. A resume adds its own (``provenance-resume-<n>.json``, ``code-resume-<n>.diff``,
``n`` counting the resumes) and leaves the run's as it was: the trials it runs again may run with other code
on another machine. Re-runs into scratch storage (reproduce, the determinism check) record none.

Each part is collected on its own: a part that fails is stored as ``{"error": "<one line>"}`` and never stops
the execution. What cannot change while an interpreter lives (Python, the distributions, platform and CPU,
the GPUs nvidia-smi lists, the git remote) is collected once per process: reading every distribution's metadata
and starting nvidia-smi are the slow parts.
"""

from __future__ import annotations

import copy
import functools
import itertools
import os
import sys
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from machinable.execution.destinations import current_user
from machinable.execution.protocol import HOST
from machinable.hookspec import hookimpl

if TYPE_CHECKING:
    from machinable.execution.executions import Execution
    from machinable.execution.session import Session
    from machinable.storage import ExecutionWriter

GIT_TIMEOUT = 5.0  # seconds per git call: a repository on a slow network disk must not hold the run up
NVIDIA_SMI_TIMEOUT = 10.0
SLURM_VARIABLES = (
    "SLURM_JOB_ID",
    "SLURM_JOB_NODELIST",
    "SLURM_ARRAY_JOB_ID",
    "SLURM_ARRAY_TASK_ID",
    "SLURM_JOB_PARTITION",
)


@hookimpl
def machinable_execution_start(session: Session, execution: Execution) -> None:
    if execution.kind not in ("run", "resume") or execution.location is None:
        return  # reproduce and the determinism check write to scratch storage, which is discarded
    from machinable.errors import StorageError
    from machinable.storage import ExecutionWriter

    root = session.config.root  # the project's; a re-run's is the project whose current code runs
    provenance, diff = collect(str(root) if root is not None else None)
    writer = ExecutionWriter(execution.location, execution.id, execution.folder)
    try:
        write(writer, provenance, diff, resume=execution.kind == "resume")
    except (OSError, StorageError) as exc:  # the trials can still run and be stored
        import warnings

        warnings.warn(f"provenance of execution {execution.id} not stored: {_one_line(exc)}", stacklevel=2)


def write(writer: ExecutionWriter, provenance: dict[str, Any], diff: bytes | None, *, resume: bool) -> None:
    """Store ``provenance`` and ``diff`` in the execution's folder: a run's as ``provenance.json`` and
    ``code.diff``, a resume's as ``provenance-resume-<n>.json`` and ``code-resume-<n>.diff`` with the first ``n``
    not taken (created exclusively: resumes of one execution may run at once)."""
    from machinable.storage.encoding import dumpb
    from machinable.storage.layout import CODE_DIFF, PROVENANCE_JSON

    if resume:
        names: Iterator[tuple[str, str]] = (
            (f"provenance-resume-{n}.json", f"code-resume-{n}.diff") for n in itertools.count(1)
        )
    else:  # a new execution's folder is empty: the name is taken only if something else wrote it
        names = iter([(PROVENANCE_JSON, CODE_DIFF)])
    for name, diff_name in names:
        if diff is not None:
            provenance["git"]["diff"] = diff_name
        if writer.create_file(name, dumpb(provenance, pretty=True)):
            if diff is not None:
                writer.create_file(diff_name, diff)
            return


def collect(project_root: str | None) -> tuple[dict[str, Any], bytes | None]:
    """The provenance of an execution of the project at ``project_root`` (None: no project), and the
    uncommitted changes of its git tree (``git diff HEAD``; None when it is clean or not in git).

    A part that cannot be collected is ``{"error": "<one line>"}``; nothing raises.
    """
    start = time.perf_counter()
    provenance: dict[str, Any] = {"collected": time.time()}
    diff = None
    try:
        provenance["git"], diff = _git(project_root)
    except Exception as exc:  # noqa: BLE001 - recorded: the rest is still worth having
        provenance["git"] = _failed(exc)
    for name, part in _PARTS.items():
        try:
            provenance[name] = part()
        except Exception as exc:  # noqa: BLE001 - recorded: the rest is still worth having
            provenance[name] = _failed(exc)
    provenance["seconds"] = round(time.perf_counter() - start, 4)
    return provenance, diff


def _failed(exc: BaseException) -> dict[str, str]:
    return {"error": _one_line(exc)}


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def _first_line(output: bytes) -> str:
    return next(iter(output.decode("utf-8", "replace").strip().splitlines()), "")


# -- git ---------------------------------------------------------------------------------------------------------


def _git(root: str | None) -> tuple[dict[str, Any], bytes | None]:
    """Commit, branch, dirtiness and untracked files from one ``git status``; the diff only when dirty."""
    if root is None:
        return {"repository": False}, None
    done = _run_git(root, "status", "--porcelain=v2", "--branch", "--untracked-files=normal")
    if done.returncode != 0:
        error = _first_line(done.stderr)
        if "not a git repository" in error:
            return {"repository": False}, None
        raise RuntimeError(f"git status failed: {error or f'exit {done.returncode}'}")
    info: dict[str, Any] = {"repository": True, "commit": None, "branch": None, "dirty": False}
    untracked = []
    for line in done.stdout.decode("utf-8", "replace").splitlines():
        if line.startswith("# branch.oid "):
            oid = line[len("# branch.oid ") :]
            info["commit"] = None if oid == "(initial)" else oid
        elif line.startswith("# branch.head "):
            head = line[len("# branch.head ") :]
            info["branch"] = None if head == "(detached)" else head
        elif line.startswith("? "):
            untracked.append(line[2:])
        elif line and not line.startswith("#"):
            info["dirty"] = True  # as `git describe --dirty`: tracked files differ; untracked ones are listed
    info["remote"] = _remote(root)
    info["untracked"] = untracked
    diff = _diff(root, info) if info["dirty"] and info["commit"] else None
    return info, diff


def _diff(root: str, info: dict[str, Any]) -> bytes | None:
    from machinable.storage.backup import DEFAULT_MAX_FILE_SIZE

    done = _run_git(root, "diff", "HEAD", "--no-color", "--no-ext-diff")
    if done.returncode != 0:
        info["diff_error"] = _first_line(done.stderr) or f"exit {done.returncode}"
        return None
    if len(done.stdout) > DEFAULT_MAX_FILE_SIZE:  # the code backup's cap: a changed data file, not code
        info["diff_skipped"] = f"{len(done.stdout)} bytes, over the {DEFAULT_MAX_FILE_SIZE} bytes cap"
        return None
    return done.stdout or None


@functools.lru_cache(maxsize=16)
def _remote(root: str) -> str | None:
    """The URL of ``origin``, without credentials (``https://user:token@host/...``)."""
    from machinable.storage.url import printable_url

    done = _run_git(root, "config", "--get", "remote.origin.url")
    url = done.stdout.decode("utf-8", "replace").strip()
    return printable_url(url) if done.returncode == 0 and url else None


def _run_git(root: str, *args: str) -> Any:
    import subprocess

    # No optional locks: `git status` would otherwise refresh and write the index of the user's repository.
    # LC_ALL=C: the messages that are matched are git's English ones.
    env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0", "LC_ALL": "C"}
    return subprocess.run(
        ["git", "-c", "core.quotePath=false", *args],
        cwd=root,
        env=env,
        capture_output=True,
        timeout=GIT_TIMEOUT,
    )


# -- the interpreter and the machine -------------------------------------------------------------------------------


@functools.cache
def _python_info() -> dict[str, Any]:
    import platform

    return {
        "version": platform.python_version(),
        "implementation": platform.python_implementation(),
        "executable": sys.executable,
    }


@functools.cache
def _distributions() -> dict[str, str]:
    """Name -> version of every installed distribution (the first on ``sys.path`` wins, as for imports)."""
    from importlib import metadata

    found: dict[str, str] = {}
    for dist in metadata.distributions():
        name, version = _name_version(dist)
        if name and name not in found:
            found[name] = version
    return dict(sorted(found.items(), key=lambda item: item[0].lower()))


def _name_version(dist: Any) -> tuple[str, str]:
    # Name and Version are single-line headers at the top: reading them from the text is several times faster
    # than ``dist.metadata``, which parses every header and the long description with the email parser.
    text = dist.read_text("METADATA") or dist.read_text("PKG-INFO") or ""
    fields = {}
    for line in text.partition("\n\n")[0].splitlines():
        key, _, value = line.partition(":")
        if key in ("Name", "Version"):
            fields.setdefault(key, value.strip())
    return fields.get("Name", ""), fields.get("Version", "")


def _platform() -> dict[str, Any]:
    info = dict(_machine())
    if hasattr(os, "sched_getaffinity"):  # the CPUs this process may use: fewer under Slurm or taskset
        info["cpus_usable"] = len(os.sched_getaffinity(0))
    return info


@functools.cache
def _machine() -> dict[str, Any]:
    import platform

    return {
        "system": platform.system(),
        "release": platform.release(),
        "machine": platform.machine(),
        "cpu": _cpu_model() or platform.processor(),
        "cpu_count": os.cpu_count(),
    }


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() in ("model name", "Model", "cpu model"):  # x86, ARM, others
                    return value.strip()
    except OSError:  # not Linux
        pass
    return ""


def _gpus() -> dict[str, Any]:
    gpus = copy.deepcopy(_nvidia_smi())
    torch = sys.modules.get("torch")  # never imported here: only a trial's own torch is described
    if torch is not None:
        gpus["torch"] = _torch(torch)
    return gpus


@functools.cache
def _nvidia_smi() -> dict[str, Any]:
    import shutil
    import subprocess

    if shutil.which("nvidia-smi") is None:
        return {}
    query = "--query-gpu=name,memory.total,driver_version"
    # Errors are returned, not raised, so that they are cached too: a hanging driver costs its timeout once.
    try:
        done = subprocess.run(
            ["nvidia-smi", query, "--format=csv,noheader"], capture_output=True, timeout=NVIDIA_SMI_TIMEOUT
        )
    except (OSError, subprocess.SubprocessError) as exc:
        return {"nvidia_smi": _failed(exc)}
    if done.returncode != 0:
        return {"nvidia_smi": {"error": _first_line(done.stdout or done.stderr) or f"exit {done.returncode}"}}
    text = done.stdout.decode("utf-8", "replace").strip()
    keys = ("name", "memory_total", "driver_version")
    # split from the right: a GPU's name is the only field that may hold a comma
    gpus = [
        dict(zip(keys, (c.strip() for c in line.rsplit(",", 2)), strict=False)) for line in text.splitlines()
    ]
    return {"nvidia_smi": gpus}


def _torch(torch: Any) -> dict[str, Any]:
    info: dict[str, Any] = {
        "version": getattr(torch, "__version__", None),
        "cuda": getattr(getattr(torch, "version", None), "cuda", None),
    }
    cuda = getattr(torch, "cuda", None)
    # Naming the devices initializes CUDA, and a process that did cannot fork workers that use it: only a
    # process that initialized it already is asked.
    if cuda is not None and cuda.is_initialized():
        info["devices"] = [cuda.get_device_name(i) for i in range(cuda.device_count())]
    return info


def _slurm() -> dict[str, str]:
    return {name: os.environ[name] for name in SLURM_VARIABLES if name in os.environ}


# Copies of what is cached: a caller may change what collect() returns.
_PARTS: dict[str, Callable[[], Any]] = {
    "python": lambda: dict(_python_info()),
    "packages": lambda: dict(_distributions()),
    "platform": _platform,
    "gpus": _gpus,
    "slurm": _slurm,
    "host": lambda: HOST,
    "user": current_user,
}
