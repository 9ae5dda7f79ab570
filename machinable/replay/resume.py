"""Resuming an execution: run exactly its trials that did not pass, into the same execution.

A trial is pending when it failed, crashed (a ``running`` trial whose heartbeat stopped or whose process is gone
reads as crashed), was interrupted or preempted, or never started (it is in the stored plan but has no folder or
no status). Pending trials run again with their stored spec (configuration, seed, node id) and the project's
current code, into their own trial folder of the same execution; passed trials are never touched.

Before a pending trial runs, the files of its previous attempt are moved to ``attempts/<n>/`` inside its folder,
so the new attempt starts from an empty folder (records never mix) and nothing recorded before is lost. If an
attempt left a complete checkpoint, the new attempt continues from the latest one (execution/checkpoints.py):
it starts with the records up to that checkpoint and calls ``on_restore`` before ``on_execute``.
``execution.json`` gets a ``"resumed"`` entry per resume: ``{"at", "trials", "engine", "finished"}``.

Resumes of one execution may run at once: each trial is claimed first (storage/claims.py, an atomic create), so
a trial another live resume holds is left to it; a resume whose every pending trial is held elsewhere says so.

The resumed trials run through the session pipeline like any run (``Execution.kind == 'resume'``), into the
stored execution (:class:`machinable.replay.destinations.IntoStored`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from machinable.errors import UsageError
from machinable.storage import NOT_STARTED, trial_states

if TYPE_CHECKING:
    import pluggy

    from machinable.execution.execute import Execution
    from machinable.storage import StoredExecution
    from machinable.storage.claims import TrialClaims
    from machinable.trials import TrialResult, TrialSpec


__all__ = ["NOT_STARTED", "check_importable", "claim_specs", "pending_specs", "resume", "trial_states"]


def pending_specs(stored: StoredExecution, claims: TrialClaims | None = None) -> list[TrialSpec]:
    """The specs of the trials of ``stored`` that did not pass, in plan order, with their stored seeds; trials
    another live resume has claimed are left out.

    Raises UsageError when a trial is still running (its heartbeat is fresh) and no resume holds it: running it
    again now would write into the folder of a live trial; and when another resume holds every pending trial.
    """
    states = [(spec, status) for spec, status in trial_states(stored) if status != "passed"]
    held = (claims or _claims(stored)).held_elsewhere(spec.uid for spec, _ in states) if states else set()
    running = [spec.node_id for spec, status in states if status == "running" and spec.uid not in held]
    if running:
        raise UsageError(
            f"execution {stored.id} is still running ({', '.join(running[:3])}{' ...' if len(running) > 3 else ''}"
            f" {'is' if len(running) == 1 else 'are'} alive); resume it once it has stopped (a trial whose "
            f"heartbeat stopped reads as crashed after {stored.storage.stale_after:g} s)"
        )
    pending = [spec for spec, _ in states if spec.uid not in held]
    if not pending and held:
        raise UsageError(_busy(len(held)))
    return pending


def _busy(n: int) -> str:
    return f"nothing to resume: {n} {'trial is' if n == 1 else 'trials are'} being resumed by another process"


def _claims(stored: StoredExecution) -> TrialClaims:
    from machinable.storage.claims import TrialClaims

    return TrialClaims(stored.storage.location, stored.folder, stored.storage.stale_after)


def claim_specs(stored: StoredExecution, specs: list[TrialSpec], claims: TrialClaims) -> list[TrialSpec]:
    """The specs among ``specs`` whose trials this resume claimed and that still did not pass.

    A trial may have passed since its state was read (another resume ran it and let it go): states are read
    again once the claims are held. UsageError when another resume holds every one of them.
    """
    from machinable.storage import Storage

    taken = [spec for spec in specs if claims.acquire(spec.uid)]
    if not taken:
        raise UsageError(_busy(len(specs)))
    fresh = Storage(stored.storage.location, stale_after=stored.storage.stale_after).get(stored.folder)
    passed = {spec.uid for spec, status in trial_states(fresh) if status == "passed"}
    claims.release(uid for uid in passed if uid in claims.held)
    return [spec for spec in taken if spec.uid not in passed]


def check_importable(specs: Iterable[TrialSpec]) -> None:
    """UsageError for the first spec whose component cannot be imported again (defined in a notebook ...)."""
    from machinable.replay.stored import not_importable

    for spec in specs:
        reason = not_importable(spec)
        if reason is not None:
            raise UsageError(f"cannot resume {spec.node_id}: {reason}")


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
    the execution's own project folder, else the one found from the working directory); ``plugins``: the plugin
    manager whose hooks see the resumed trials (``Execution.kind == 'resume'``). ``on_result(result)`` is called
    as each trial ends. Returns the Execution of the resumed trials (empty when every trial had passed).
    """
    from machinable.execution.engines.base import make_engine
    from machinable.plugins import default_plugin_manager
    from machinable.replay.destinations import IntoStored
    from machinable.replay.stored import project_root, rerun, with_root
    from machinable.storage import Storage

    stored = Storage(storage).get(id)
    pm = plugins or default_plugin_manager()
    eng = make_engine(engine, pm)
    claims = _claims(stored)
    specs = pending_specs(stored, claims)
    check_importable(specs)
    try:
        if specs:
            specs = claim_specs(stored, specs, claims)
        if not specs:
            return _nothing_run(stored, eng.describe())
        root = project_root(stored, project)
        specs = with_root(specs, root)
        session = rerun(
            specs,
            "resume",
            IntoStored(stored),
            eng,
            stored.id,
            pm,
            root=root,
            echo=echo,
            listeners=[on_result] if on_result is not None else [],
        )
    finally:
        claims.release()
    assert session.execution is not None
    return session.execution


def _nothing_run(stored: StoredExecution, engine: str) -> Execution:
    """The Execution of a resume that ran nothing: the execution (execution.json included) stays as it is."""
    from machinable.execution.executions import Execution

    now = time.time()
    return Execution(
        stored.id,
        stored.seed or 0,
        stored.name,
        stored.storage.url,
        engine,
        started=now,
        finished=now,
        folder=stored.folder,
        kind="resume",
    )
