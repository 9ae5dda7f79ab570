"""Running a stored execution's trials again: its stored plan, the code to run it with, and the re-run.

Shared by ``reproduce`` (into a fresh memory storage), ``resume`` (into the original execution) and
``--check-determinism`` (a second run of what just ran). A stored plan never needs the project to be collected
again: ``execution.json`` keeps every trial's spec under ``"plan"`` (``trial.json`` has it too).
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from machinable.config.importing import forget_modules
from machinable.errors import MachinableError, UsageError
from machinable.execution.engines.worker import gather_fixtures
from machinable.trials import TrialResult, TrialSpec

if TYPE_CHECKING:
    import pluggy

    from machinable.components.fixtures import FixtureDef
    from machinable.execution.engines.base import Engine
    from machinable.execution.session import Session
    from machinable.storage import StoredExecution


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
    from machinable.config.project import Project, find_root

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


def rerun(
    specs: list[TrialSpec],
    kind: str,
    destination: Any,
    engine: Engine,
    execution_id: str,
    pm: pluggy.PluginManager,
    *,
    root: Path | None,
    fixtures: Iterable[FixtureDef] | None = None,
    echo: bool = False,
    listeners: Iterable[Callable[[TrialResult], None]] = (),
    **options: Any,
) -> Session:
    """Run ``specs`` again through the session pipeline (every hook fires, with ``session.kind == kind``) into
    ``destination``; returns the finished session (``session.execution`` has the results in plan order).

    ``fixtures``: the fixtures the trials may ask for (default: found in ``root``'s project and the trials'
    modules). ``options`` are further run options (``keyword='...'`` selects by ``-k``).
    """
    from machinable.collection.stage import PlannedTrials
    from machinable.execution.options import Config, run_options
    from machinable.execution.session import Session

    if fixtures is None:
        fixtures = gather_fixtures(root, specs) if root is not None else ()
    config = Config(run_options(echo=echo, **options), pm, root)
    session = Session(config, PlannedTrials(specs, fixtures), destination, kind=kind)
    session.configure(None, execution_id, engine, destination.location)
    session.listeners.extend(listeners)
    session.main()
    return session
