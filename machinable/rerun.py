"""Running a stored execution's trials again: its stored plan, the code to run it with, and a quiet run.

Shared by ``reproduce`` (into a fresh memory storage), ``resume`` (into the original execution) and
``--check-determinism`` (a second run of what just ran). A stored plan never needs the project to be collected
again: ``execution.json`` keeps every trial's spec under ``"plan"`` (``trial.json`` has it too).
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from machinable.errors import MachinableError, UsageError
from machinable.spec import TrialSpec

if TYPE_CHECKING:
    import pluggy

    from machinable.engines.base import Engine
    from machinable.execution import Execution
    from machinable.fixtures import FixtureDef
    from machinable.storage import StorageLocation, StoredExecution


def stored_specs(stored: StoredExecution) -> list[TrialSpec]:
    """Every trial's spec in plan order: ``execution.json``'s plan, then trials only ``trial.json`` describes."""
    specs: list[TrialSpec] = []
    seen: set[str] = set()
    plan = stored.info.get("plan")
    for info in plan if isinstance(plan, list) else []:
        spec = _spec(info)
        if spec is not None and spec.uid not in seen:
            specs.append(spec)
            seen.add(spec.uid)
    for trial in stored.trials:  # executions written before the plan was kept, or trials added later
        if trial.uid not in seen:
            spec = _spec({"uid": trial.uid, **trial.info})
            if spec is not None:
                specs.append(spec)
                seen.add(spec.uid)
    return specs


def _spec(info: Any) -> TrialSpec | None:
    if not isinstance(info, dict):
        return None
    try:
        return TrialSpec.from_info(info)
    except (KeyError, TypeError, ValueError):  # a damaged or foreign trial.json: nothing to run
        return None


def not_importable(spec: TrialSpec) -> str | None:
    """Why ``spec``'s component cannot be imported again by name (None when it can)."""
    module = spec.module or ""
    if module in ("__main__", "__mp_main__"):
        where = "__main__ (a notebook or a script)"
    elif not all(part.isidentifier() for part in module.split(".")):
        # runpy.run_path and exec() name modules '<run_path>' and the like: no file has that name.
        where = f"module {module!r}, which no file can be imported as"
    elif "<locals>" in (spec.attribute or ""):
        where = "a function"
    else:
        return None
    return (
        f"component '{spec.component}' was defined in {where} and cannot be imported again; "
        "define it in a project module to reproduce or resume it"
    )


def project_root(stored: StoredExecution, project: Any = None) -> Path:
    """The project to run the current code of: ``project`` if given, else the execution's own project folder
    if it still exists, else the project found upward from the working directory."""
    from machinable.project import Project, find_root

    if isinstance(project, Project):
        return Path(project.root)
    if project is not None:
        return find_root(project)
    recorded = stored.info.get("project")
    if isinstance(recorded, str) and (Path(recorded) / "machinable.yaml").is_file():
        return Path(recorded)
    try:
        return find_root(None)
    except MachinableError:
        raise UsageError(
            f"execution {stored.id} was run in {recorded or 'an unknown folder'}, which is no longer a project; "
            "run this from the project folder or pass --project DIR"
        ) from None


def with_root(specs: Iterable[TrialSpec], root: Path) -> list[TrialSpec]:
    """``specs`` importing their components (and mixins) from ``root``."""
    return [replace(s, project_root=str(root), target=None) for s in specs]


def forget_modules(root: Path) -> None:
    """Drop every module imported from ``root`` so that the next import reads the files as they are now.

    A stored trial's component must run the code on disk (the current code, or the extracted backup), not a
    module this process imported earlier from the same names.
    """
    prefix = str(root.resolve()) + os.sep
    for name, module in list(sys.modules.items()):
        origin = getattr(module, "__file__", None)
        paths = [str(p) for p in getattr(module, "__path__", None) or []] if origin is None else [origin]
        if any(os.path.realpath(p).startswith(prefix) for p in paths):
            del sys.modules[name]
    import importlib

    importlib.invalidate_caches()


@contextmanager
def extracted_backup(stored: StoredExecution, current: Path | None = None) -> Iterator[Path]:
    """The execution's ``code.zip`` extracted into a temporary project folder, imported instead of ``current``.

    Modules of the current project are dropped first and the backup's modules afterwards, and the backup folder
    goes first on ``sys.path`` while it is in use, so that helper modules a component imports come from the
    backup too. Objects created earlier from the current modules keep their classes: for full isolation use the
    command (``machinable reproduce --from-backup``), which runs in a process of its own.
    """
    import io
    import zipfile

    data = stored.code_zip()
    if data is None:
        raise UsageError(
            f"execution {stored.id} has no code backup (code.zip): it ran with code_backup=False or "
            "MACHINABLE_MODE=DEV; reproduce it without --from-backup"
        )
    folder = Path(tempfile.mkdtemp(prefix=f"machinable-{stored.id}-code-")).resolve()
    saved_path = list(sys.path)
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            for name in archive.namelist():
                # Paths in code.zip are relative to the project root; refuse anything that would leave it.
                target = (folder / name).resolve()
                if target != folder and not str(target).startswith(str(folder) + os.sep):
                    raise UsageError(f"code.zip of execution {stored.id} holds an unsafe path: {name}")
            archive.extractall(folder)
        for root in (current, _recorded_root(stored)):
            if root is not None and root.exists():
                forget_modules(root)
        sys.path.insert(0, str(folder))
        yield folder
    finally:
        forget_modules(folder)
        sys.path[:] = saved_path
        shutil.rmtree(folder, ignore_errors=True)


def _recorded_root(stored: StoredExecution) -> Path | None:
    recorded = stored.info.get("project")
    return Path(recorded) if isinstance(recorded, str) and recorded else None


def gather_fixtures(root: Path, specs: Iterable[TrialSpec]) -> list[FixtureDef]:
    """The fixtures the specs may ask for: the project's ``machinable_conf.py`` and their components' modules.

    Importing each component here (as collection would have) also finds them in the modules' namespaces; an
    import error is left for the trial itself to report.
    """
    from machinable.fixtures import fixtures_in, project_fixtures
    from machinable.runner import load_target

    found: dict[str, FixtureDef] = {}
    try:
        found.update(project_fixtures(root))
    except MachinableError:
        pass  # a broken machinable_conf.py fails the trials that need its fixtures, with its own error
    modules: set[str] = set()
    for spec in specs:
        if spec.module in modules:
            continue
        modules.add(spec.module)
        try:
            load_target(spec)
        except Exception:  # reported by the trial when it runs
            continue
        module = sys.modules.get(spec.module)
        if module is not None:
            found.update((d.name, d) for d in fixtures_in(vars(module)))
    return list(found.values())


def quiet_plugin_manager() -> pluggy.PluginManager:
    """A plugin manager with machinable's hook specs and no plugins: a re-run must not report as a new run
    (terminal progress, ``--lf`` cache, outside loggers). Engines still come from the caller's manager."""
    from machinable import hookspec
    from machinable.plugins import PluginManager

    pm = PluginManager("machinable")
    pm.add_hookspecs(hookspec)
    return pm


def run_into(
    specs: list[TrialSpec],
    location: StorageLocation,
    execution_id: str,
    engine: Engine,
    *,
    fixtures: Iterable[FixtureDef] = (),
    echo: bool = False,
    pm: pluggy.PluginManager | None = None,
    seed: int | None = None,
    folder: str | None = None,
) -> Execution:
    """Run ``specs`` on ``engine`` into execution ``execution_id`` of ``location``; results in plan order.

    ``folder``: the execution's folder when it is not the id (``<id>-2`` ... for an id stored again). Nothing
    but the trials' folders (and ``finished`` in ``execution.json``) is written: the caller owns the execution
    record.
    """
    from machinable import ids
    from machinable.execution import Execution, run_specs
    from machinable.storage import ExecutionWriter

    if seed is None:
        try:
            seed = ids.decode(execution_id)
        except MachinableError:
            seed = 0
    execution = Execution(
        id=execution_id,
        seed=seed,
        name=None,
        storage=location.url,
        engine=engine.describe(),
        started=time.time(),
        location=location,
        folder=folder or execution_id,
    )
    writer = ExecutionWriter(location, execution_id, folder)
    return run_specs(
        specs, execution, writer, engine, pm or quiet_plugin_manager(), fixtures=fixtures, echo=echo
    )


def discard(location: StorageLocation) -> None:
    """Free a scratch memory storage (re-runs of big trials would otherwise stay in this process's memory)."""
    if not location.is_memory:
        return
    try:
        location.fs.rm(location.root, recursive=True)
    except (FileNotFoundError, OSError):
        pass
