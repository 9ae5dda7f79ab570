"""Where a run's records go: :class:`NewExecution` claims a new execution folder (``ml.execute``, the command).

Re-runs bring their own destinations (:mod:`machinable.replay.destinations`): the stored execution being resumed,
or a scratch memory storage for reproduce and the determinism check.
"""

from __future__ import annotations

import getpass
import platform
import sys
import time
from typing import TYPE_CHECKING, Any

from machinable import ids
from machinable.execution.executions import Execution

if TYPE_CHECKING:
    from machinable.config.project import Project
    from machinable.execution.session import Session
    from machinable.storage import ExecutionWriter
    from machinable.trials import TrialSpec


class NewExecution:
    """A new folder ``<storage>/<ID>`` (``<ID>-2`` ... when the id was stored before) with ``execution.json``
    (the whole plan included) and, unless turned off, ``code.zip``."""

    def __init__(self, name: str | None = None) -> None:
        self.name = name

    def open(self, session: Session) -> tuple[Execution, ExecutionWriter]:
        from machinable.storage import ExecutionWriter

        assert session.location is not None and session.engine is not None and session.project is not None
        location = session.location
        execution = Execution(
            id=session.execution_id,
            seed=ids.decode(session.execution_id),
            name=self.name,
            storage=location.url,
            engine=session.engine.describe(),
            started=time.time(),
            location=location,
            kind=session.kind,
        )
        writer = ExecutionWriter.claim(location, session.execution_id)
        execution.folder = writer.folder
        writer.write_execution(execution_info(execution, session.items, session.project))
        if location.code_backup:
            writer.backup_code(session.project.root)
        return execution, writer

    def close(self, session: Session) -> None:
        """Nothing to add: the run loop records ``finished`` and ``interrupted``."""


def execution_info(execution: Execution, specs: list[TrialSpec], project: Project) -> dict[str, Any]:
    """What ``execution.json`` holds when the execution starts."""
    from machinable.storage.backup import git_revision

    return {
        "id": execution.id,
        "seed": execution.seed,
        "name": execution.name,
        "started": execution.started,
        "engine": execution.engine,
        "trial_count": len(specs),
        "trials": [s.uid for s in specs],
        # The whole plan, so that trials that never started can be resumed without re-collecting the project.
        "plan": [s.trial_info(execution.id) for s in specs],
        "project": str(project.root),
        "host": platform.node(),
        "user": current_user(),
        "python": sys.version.split()[0],
        "argv": sys.argv,
        "code_version": git_revision(project.root),
    }


def current_user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no user name in some containers
        return ""
