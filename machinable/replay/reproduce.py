"""``ml.reproduce``: run a stored execution's trials again with their stored configuration and seed, and compare.

Each selected trial is re-run from its stored spec (``execution.json``'s plan), with the current code of the
project or (``from_backup=True``) the code in the execution's ``code.zip``, into a fresh memory storage: the
original execution is never written. Its records (every scope, row by row, ``_time`` ignored) and stored values
are then compared with the stored ones (see :mod:`machinable.replay.compare` for equality and tolerances).

Per trial the outcome is ``REPRODUCED``, ``DIFFERS`` (with the first difference) or ``FAILED`` (the stored trial
did not pass, or the re-run did not). ``machinable reproduce ID`` is the same on the command line
(:mod:`machinable.cli.commands`); docs/reproducibility.md has a CI recipe.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from machinable.text import summary_line

if TYPE_CHECKING:
    import pluggy

    from machinable.replay.compare import Difference
    from machinable.storage import StoredExecution
    from machinable.trials import TrialResult

REPRODUCED = "REPRODUCED"
DIFFERS = "DIFFERS"
FAILED = "FAILED"
OUTCOMES = (REPRODUCED, DIFFERS, FAILED)

__all__ = ["DIFFERS", "FAILED", "REPRODUCED", "ReproduceResult", "TrialReproduction", "reproduce"]


@dataclass
class TrialReproduction:
    """One trial's outcome: ``REPRODUCED``, ``DIFFERS`` (``difference`` says where) or ``FAILED`` (``detail``)."""

    node_id: str
    uid: str
    outcome: str
    detail: str = ""
    difference: Difference | None = None
    seed: int | None = None
    duration: float = 0.0

    @property
    def ok(self) -> bool:
        return self.outcome == REPRODUCED

    def line(self) -> str:
        return f"{self.node_id} {self.outcome}" + (f" - {self.detail}" if self.detail else "")

    def to_dict(self) -> dict[str, Any]:
        return {
            "node_id": self.node_id,
            "uid": self.uid,
            "outcome": self.outcome,
            "detail": self.detail,
            "difference": self.difference.to_dict() if self.difference is not None else None,
            "seed": self.seed,
            "duration": self.duration,
        }


@dataclass
class ReproduceResult:
    """What ``ml.reproduce`` found: ``.trials`` in plan order, ``.ok``, ``.summary()``."""

    execution_id: str
    storage: str
    source: str  # 'current code' or 'code.zip'
    rtol: float = 0.0
    atol: float = 0.0
    trials: list[TrialReproduction] = field(default_factory=list)
    deselected: int = 0
    started: float = field(default_factory=time.time)
    finished: float | None = None

    @property
    def ok(self) -> bool:
        """Every selected trial reproduced (and at least one was selected: an empty check proves nothing)."""
        return bool(self.trials) and all(t.ok for t in self.trials)

    @property
    def duration(self) -> float:
        return (self.finished or time.time()) - self.started

    def counts(self) -> dict[str, int]:
        return {outcome: sum(1 for t in self.trials if t.outcome == outcome) for outcome in OUTCOMES}

    def by_outcome(self, outcome: str) -> list[TrialReproduction]:
        return [t for t in self.trials if t.outcome == outcome]

    def summary(self) -> str:
        """``2 reproduced, 1 differ, 0 failed in 0.53 s``."""
        c = self.counts()
        parts = [f"{c[REPRODUCED]} reproduced", f"{c[DIFFERS]} differ", f"{c[FAILED]} failed"]
        return summary_line(parts, self.duration)

    def to_dict(self) -> dict[str, Any]:
        return {
            "execution_id": self.execution_id,
            "storage": self.storage,
            "source": self.source,
            "rtol": self.rtol,
            "atol": self.atol,
            "ok": self.ok,
            "counts": self.counts(),
            "deselected": self.deselected,
            "duration": self.duration,
            "trials": [t.to_dict() for t in self.trials],
        }

    def __repr__(self) -> str:
        return f"<ReproduceResult {self.execution_id} {self.summary()}>"


def reproduce(
    id: str,
    storage: Any = None,
    k: str | None = None,
    rtol: float = 0.0,
    atol: float = 0.0,
    from_backup: bool = False,
    engine: Any = None,
    project: Any = None,
    *,
    plugins: pluggy.PluginManager | None = None,
    echo: bool = False,
    on_result: Any = None,
) -> ReproduceResult:
    """Re-run execution ``id`` of ``storage`` and compare every selected trial with what is stored.

    ``k``: a ``-k`` expression selecting trials; ``rtol`` / ``atol``: float tolerances (``math.isclose``), exact
    by default; ``from_backup``: run the code of the execution's ``code.zip`` instead of the current code;
    ``engine``: as for ``ml.execute``; ``project``: the project whose current code runs (default: the execution's
    own project folder, else the one found from the working directory). ``on_result(trial_reproduction)`` is
    called as each trial's outcome is known. An unknown id raises a StorageError naming recent executions.
    """
    from machinable.collection.expression import Expression
    from machinable.execution.engines.base import make_engine
    from machinable.plugins import default_plugin_manager
    from machinable.replay.compare import check_tolerances
    from machinable.storage import Storage, stored_specs

    rtol, atol = check_tolerances(rtol, atol)
    expression = Expression.compile(k or "")
    stored = Storage(storage).get(id)
    pm = plugins or default_plugin_manager()
    eng = make_engine(engine, pm)  # a bad engine is a usage error before anything runs
    specs = stored_specs(stored)
    selected = [s for s in specs if expression.matches((s.node_id, *s.keywords))]
    result = ReproduceResult(
        stored.id,
        stored.storage.url,
        "code.zip" if from_backup else "current code",
        rtol,
        atol,
        deselected=len(specs) - len(selected),
    )
    outcomes: dict[str, TrialReproduction] = {}

    def settle(outcome: TrialReproduction) -> None:
        outcomes[outcome.uid] = outcome
        if on_result is not None:
            on_result(outcome)

    runnable = _runnable(selected, {t.uid: t for t in stored.trials}, settle)
    try:
        if runnable:
            _rerun(stored, runnable, eng, pm, from_backup, project, (rtol, atol), echo, settle)
    finally:
        result.trials = [outcomes[s.uid] for s in selected if s.uid in outcomes]
        result.finished = time.time()
    return result


def _runnable(
    selected: list[Any], originals: dict[str, Any], settle: Callable[[TrialReproduction], None]
) -> list[Any]:
    """The specs that can be re-run; the others are settled as FAILED here (nothing to compare, or their
    component cannot be imported again)."""
    from machinable.replay.stored import not_importable

    runnable = []
    for spec in selected:
        original = originals.get(spec.uid)
        status = original.status if original is not None else None
        reason = not_importable(spec)
        if status != "passed":
            why = f"the stored trial {status}" if status else "the stored trial never ran"
            settle(_outcome(spec, FAILED, f"{why}; nothing to compare"))
        elif reason is not None:
            settle(_outcome(spec, FAILED, reason))
        else:
            runnable.append(spec)
    return runnable


def _rerun(
    stored: StoredExecution,
    specs: list[Any],
    engine: Any,
    pm: pluggy.PluginManager,
    from_backup: bool,
    project: Any,
    tolerances: tuple[float, float],
    echo: bool,
    settle: Callable[[TrialReproduction], None],
) -> None:
    from machinable.replay.destinations import Scratch
    from machinable.replay.stored import rerun, with_root
    from machinable.storage import Storage

    with _code(stored, from_backup, project) as root:
        specs = with_root(specs, root)
        scratch = Scratch(stored.id, stored.seed or 0)  # the original execution is never written
        # Each trial is judged as soon as it ends, so a long reproduction reports as it goes.
        judge = _Judge({s.uid: s for s in specs}, stored, Storage(scratch.location), tolerances, settle)
        try:
            session = rerun(
                specs,
                "reproduce",
                scratch,
                engine,
                stored.id,
                pm,
                root=root,
                echo=echo,
                listeners=[judge],
            )
            for spec in specs:
                if spec.uid not in judge.done:
                    settle(_outcome(spec, FAILED, "the re-run did not run (interrupted)"))
            if session.execution is None or session.execution.interrupted:
                raise KeyboardInterrupt
        finally:
            scratch.discard()


class _Judge:
    """Compares each re-run trial with the stored one as the run reports it."""

    def __init__(
        self,
        specs: dict[str, Any],
        stored: StoredExecution,
        scratch: Any,
        tolerances: tuple[float, float],
        settle: Callable[[TrialReproduction], None],
    ) -> None:
        self.specs, self.stored, self.scratch = specs, stored, scratch
        self.rtol, self.atol = tolerances
        self.settle = settle
        self.done: set[str] = set()

    def __call__(self, result: TrialResult) -> None:
        spec = self.specs.get(result.uid)
        if spec is None or result.uid in self.done:
            return
        self.done.add(result.uid)
        self.settle(self.judge(spec, result))

    def judge(self, spec: Any, ran: TrialResult) -> TrialReproduction:
        from machinable.replay.compare import compare_trials
        from machinable.text import first_line

        if not ran.passed:
            reason = first_line(ran.error)
            detail = f"the re-run {ran.status}" + (f": {reason}" if reason else "")
            return _outcome(spec, FAILED, detail, duration=ran.duration)
        try:
            rerun = self.scratch.get(self.stored.id)
            difference = compare_trials(
                self.stored.trial(spec.uid), rerun.trial(spec.uid), self.rtol, self.atol
            )
        except Exception as exc:  # e.g. a stored .npy without numpy here: this trial cannot be judged
            detail = f"cannot compare the results: {type(exc).__name__}: {exc}"
            return _outcome(spec, FAILED, detail, duration=ran.duration)
        if difference is None:
            return _outcome(spec, REPRODUCED, duration=ran.duration)
        return _outcome(spec, DIFFERS, difference.describe(), difference, ran.duration)


def _outcome(
    spec: Any, outcome: str, detail: str = "", difference: Difference | None = None, duration: float = 0.0
) -> TrialReproduction:
    return TrialReproduction(spec.node_id, spec.uid, outcome, detail, difference, spec.seed, duration)


@contextmanager
def _code(stored: StoredExecution, from_backup: bool, project: Any) -> Iterator[Path]:
    """The project folder whose code the re-run imports, with no stale module of it left in ``sys.modules``."""
    from machinable.replay.stored import extracted_backup, forget_modules, project_root

    if from_backup:
        current = None
        try:
            current = project_root(stored, project)
        except Exception:  # with a backup, the current project may be gone: that is fine
            pass
        with extracted_backup(stored, current) as folder:
            yield folder
        return
    root = project_root(stored, project)
    forget_modules(root)  # "the current code" is what is on disk now, not what this process imported before
    yield root
