"""Resuming an execution: run exactly its trials that did not pass, into the same execution.

A trial is pending when it failed, crashed (a ``running`` trial whose heartbeat stopped or whose process is gone
reads as crashed), was interrupted, or never started (it is in the stored plan but has no folder or no status).
Pending trials run again with their stored spec (configuration, seed, node id) and the project's current code,
into their own trial folder of the same execution; passed trials are never touched.

Before a pending trial runs, the files of its previous attempt are moved to ``attempts/<n>/`` inside its folder,
so the new attempt starts from an empty folder (records never mix) and nothing recorded before is lost.
``execution.json`` gets a ``"resumed"`` entry per resume: ``{"at", "trials", "engine", "finished"}``.

``--lf`` of the command can use the same machinery for the last execution: :func:`pending_specs` and
:func:`resume_into`.
"""

from __future__ import annotations

import posixpath
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from machinable.errors import UsageError
from machinable.hookspec import hookimpl

if TYPE_CHECKING:
    import pluggy

    from machinable.engines.base import Engine
    from machinable.execution import Execution
    from machinable.fixtures import FixtureDef
    from machinable.spec import TrialResult, TrialSpec
    from machinable.storage import StoredExecution

NOT_STARTED = "not started"
ATTEMPTS_DIR = "attempts"

__all__ = ["NOT_STARTED", "check_importable", "pending_specs", "resume", "resume_into", "trial_states"]


def trial_states(stored: StoredExecution) -> list[tuple[TrialSpec, str]]:
    """Every planned trial with its status (``'not started'`` when it has none), in plan order."""
    from machinable.rerun import stored_specs

    present = {t.uid: t for t in stored.trials}
    states = []
    for spec in stored_specs(stored):
        trial = present.get(spec.uid)
        status = trial.status if trial is not None else None
        states.append((spec, status or NOT_STARTED))
    return states


def pending_specs(stored: StoredExecution) -> list[TrialSpec]:
    """The specs of the trials of ``stored`` that did not pass, in plan order, with their stored seeds.

    Raises UsageError when a trial is still running (its heartbeat is fresh): running it again now would
    write into the folder of a live trial.
    """
    states = trial_states(stored)
    running = [spec.node_id for spec, status in states if status == "running"]
    if running:
        raise UsageError(
            f"execution {stored.id} is still running ({', '.join(running[:3])}{' ...' if len(running) > 3 else ''}"
            f" {'is' if len(running) == 1 else 'are'} alive); resume it once it has stopped (a trial whose "
            f"heartbeat stopped reads as crashed after {stored.storage.stale_after:g} s)"
        )
    return [spec for spec, status in states if status != "passed"]


def check_importable(specs: Iterable[TrialSpec]) -> None:
    """UsageError for the first spec whose component cannot be imported again (defined in a notebook ...)."""
    from machinable.rerun import not_importable

    for spec in specs:
        reason = not_importable(spec)
        if reason is not None:
            raise UsageError(f"cannot resume {spec.node_id}: {reason}")


def reset_trial(stored: StoredExecution, uid: str) -> int:
    """Move the files of trial ``uid``'s previous attempt to ``attempts/<n>/``; returns how many were moved.

    The files are copied before they are removed, so a resume that is itself killed loses nothing either.
    """
    from machinable.storage.reader import list_folder

    io = stored._io
    folder = io.join(stored.path, uid)
    try:
        files = [f for f in io.files_under(folder) if not f.startswith(ATTEMPTS_DIR + "/")]
    except FileNotFoundError:
        return 0
    if not files:
        return 0
    attempt = 1 + sum(
        1 for name, is_dir in list_folder(io, io.join(folder, ATTEMPTS_DIR)) if is_dir and name.isdigit()
    )
    target = io.join(folder, ATTEMPTS_DIR, str(attempt))
    for rel in files:
        parent = posixpath.dirname(rel)
        io.makedirs(io.join(target, parent) if parent else target)
        io.write_bytes(io.join(target, rel), io.read_bytes(io.join(folder, rel)), atomic=True)
    for rel in files:
        io.remove(io.join(folder, rel))
    return len(files)


def resume_into(
    stored: StoredExecution,
    specs: list[TrialSpec],
    engine: Engine,
    *,
    fixtures: Iterable[FixtureDef] = (),
    echo: bool = False,
    pm: pluggy.PluginManager | None = None,
) -> Execution:
    """Reset the folders of ``specs`` and run them into execution ``stored`` (same id, same trial folders).

    ``pm`` receives the run's hooks (``machinable_trial_result`` ...); default: none. Returns the Execution of
    the resumed trials only.
    """
    from machinable.rerun import run_into
    from machinable.storage import ExecutionWriter

    uids = {s.uid for s in specs}
    planned = {t.uid for t in stored.trials} | {s.uid for s in specs}
    assert uids <= planned  # only trials of this execution are ever reset
    for spec in specs:
        reset_trial(stored, spec.uid)
    writer = ExecutionWriter(stored.storage.location, stored.id, stored.folder)
    history = list(stored.info.get("resumed") or [])
    entry: dict[str, Any] = {
        "at": time.time(),
        "trials": [s.node_id for s in specs],
        "engine": engine.describe(),
        "finished": None,
    }
    writer.write_execution({"resumed": [*history, entry]})
    execution = run_into(
        specs,
        stored.storage.location,
        stored.id,
        engine,
        fixtures=fixtures,
        echo=echo,
        pm=pm,
        seed=stored.seed,
        folder=stored.folder,  # the folder that was read: an id stored again lives in <id>-2 ...
    )
    entry.update(finished=execution.finished, outcomes={t.node_id: t.status for t in execution.trials})
    # A fresh writer: the run wrote the new 'finished' meanwhile, which this writer's copy of execution.json
    # predates and would put back.
    ExecutionWriter(stored.storage.location, stored.id, stored.folder).write_execution(
        {"resumed": [*history, entry]}
    )
    return execution


def resume(
    id: str,
    storage: Any = None,
    engine: Any = None,
    project: Any = None,
    *,
    echo: bool = False,
    plugins: pluggy.PluginManager | None = None,
    on_result: Callable[[TrialResult], None] | None = None,
) -> Execution:
    """Run the trials of execution ``id`` of ``storage`` that did not pass, into that same execution.

    ``engine``: as for ``ml.execute`` (default local); ``project``: the project whose current code runs (default:
    the execution's own project folder, else the one found from the working directory). ``on_result(result)`` is
    called as each trial ends. Returns the Execution of the resumed trials (empty when every trial had passed).
    """
    from machinable.engines.base import make_engine
    from machinable.plugins import default_plugin_manager
    from machinable.rerun import gather_fixtures, project_root, quiet_plugin_manager, with_root
    from machinable.storage import Storage

    stored = Storage(storage).get(id)
    eng = make_engine(engine, plugins or default_plugin_manager())
    specs = pending_specs(stored)
    check_importable(specs)
    pm = quiet_plugin_manager()
    if on_result is not None:
        pm.register(_ResultCallback(on_result))
    if not specs:
        from machinable.execution import Execution

        # Nothing to run: the execution (execution.json included) stays exactly as it is.
        now = time.time()
        return Execution(
            stored.id,
            stored.seed or 0,
            stored.name,
            stored.storage.url,
            eng.describe(),
            started=now,
            finished=now,
            folder=stored.folder,
        )
    root = project_root(stored, project)
    specs = with_root(specs, root)
    return resume_into(stored, specs, eng, fixtures=gather_fixtures(root, specs), echo=echo, pm=pm)


class _ResultCallback:
    def __init__(self, callback: Callable[[TrialResult], None]) -> None:
        self.callback = callback

    @hookimpl
    def machinable_trial_result(self, result: TrialResult) -> None:
        self.callback(result)
