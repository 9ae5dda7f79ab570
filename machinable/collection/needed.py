"""Which collected trials a storage already holds: ``machinable plan`` and ``--needed`` (the built-in plugin
``needed``).

Each collected trial is looked up by its slot (component, configuration, repeat number) among every stored
attempt (:mod:`machinable.storage.identities`). Without ``--seed`` it takes the seed of the slot's latest
attempt, so a trial that ran before keeps its seed and a new one gets the seed a full run of this execution
would give it; with ``--seed`` every trial has the seed that seed gives, and a different one is a different
trial. Then, among the attempts with its seed:

* ``running``: one is running (a live heartbeat) elsewhere;
* ``done``: one passed (or was cached) with the same code: every file of its fingerprint is unchanged;
* ``stale``: one passed, but a file of its fingerprint changed since (the files are named);
* ``failed``: the latest one failed, crashed, was interrupted or preempted;
* ``new``: none.
"""

from __future__ import annotations

import copy
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from machinable import ids
from machinable.errors import UsageError
from machinable.hookspec import hookimpl
from machinable.plugins import getgroup

if TYPE_CHECKING:
    import argparse

    from machinable.execution.options import Config
    from machinable.execution.session import Session
    from machinable.storage import Storage
    from machinable.storage.identities import Attempt, StoredIdentities
    from machinable.trials import TrialResult, TrialSpec

STATES = ("new", "stale", "failed", "running", "done")
TO_RUN = frozenset({"new", "stale", "failed"})
PASSED = frozenset({"passed", "cached"})


@dataclass
class Planned:
    """A collected trial and what the storage holds of it."""

    spec: TrialSpec
    state: str
    attempt: Attempt | None = None  # the stored attempt the state refers to
    changed: list[str] = field(default_factory=list)  # stale: the files that changed

    def to_json(self) -> dict[str, Any]:
        attempt = self.attempt
        return {
            "node_id": self.spec.node_id,
            "component": self.spec.component,
            "config": self.spec.config,
            "seed": self.spec.seed,
            "state": self.state,
            "execution": attempt.execution if attempt else None,
            "uid": attempt.uid if attempt else None,
            "status": attempt.status if attempt else None,
            "changed": self.changed,
        }


def classify(specs: list[TrialSpec], stored: StoredIdentities, keep_seeds: bool) -> list[Planned]:
    """The state of each spec (with the seed it runs with).

    A spec keeps its own seed when the storage holds an attempt with it. Otherwise, with ``keep_seeds``, it takes
    the seed of its slot's latest attempt that no other spec has: two trials of one slot (the same component and
    configuration collected twice, from a task file and from the project) keep their own seeds and results.
    """
    slots = [ids.trial_slot(spec.component, spec.config, spec.repeat_number) for spec in specs]
    taken: dict[str, set[int]] = {}  # slot -> the seeds a spec keeps
    for slot, spec in zip(slots, specs, strict=True):
        if stored.attempts(slot, spec.seed):
            taken.setdefault(slot, set()).add(spec.seed)
    planned = []
    for slot, spec in zip(slots, specs, strict=True):
        mine = taken.setdefault(slot, set())
        if keep_seeds and spec.seed not in mine:
            seed = stored.seed_of(slot, exclude=mine)
            if seed is not None:
                mine.add(seed)
                spec = copy.copy(spec)  # dataclasses.replace re-runs __init__: 15 us a trial
                spec.seed = seed
        planned.append(_state(spec, stored.attempts(slot, spec.seed)))
    return planned


def _state(spec: TrialSpec, attempts: list[Attempt]) -> Planned:
    running = [a for a in attempts if a.status == "running"]
    if running:
        return Planned(spec, "running", running[-1])
    passed = [a for a in attempts if a.status in PASSED]
    if passed:
        changed = code_changes(passed[-1].code, spec)
        return Planned(spec, "stale" if changed else "done", passed[-1], changed)
    if attempts and attempts[-1].status != "not started":
        return Planned(spec, "failed", attempts[-1])
    return Planned(spec, "new")


def code_changes(stored: dict[str, str], spec: TrialSpec) -> list[str]:
    """What changed of a stored fingerprint: files added, removed or edited among those the spec's component
    imports now; for an executed fingerprint (``file::function``), the functions that changed or are gone."""
    from machinable.collection.fingerprint import SEP, changed

    if spec.project_root and any(SEP in key for key in stored):
        return changed(stored, spec.project_root)
    now = spec.code
    return sorted(rel for rel in stored.keys() | now.keys() if stored.get(rel) != now.get(rel))


def counts(planned: list[Planned]) -> dict[str, int]:
    found = Counter(p.state for p in planned)
    return {state: found[state] for state in STATES if found[state]}


# -- the plugin: --needed ---------------------------------------------------------------------------------------

IDENTITIES_DIR = ".identities"  # the claims of the trials --needed runs are running, at the storage's root
STASH_KEY = "needed"


class NeededRun:
    """One --needed session: the trials it runs are claimed by their identity in the storage (so a concurrent
    --needed run never starts one of them too), the ones that passed before are reported as cached."""

    def __init__(self, session: Session) -> None:
        from machinable.storage import Storage
        from machinable.storage.claims import TrialClaims
        from machinable.storage.identities import StoredIdentities

        assert session.location is not None
        self.session = session
        self.storage = Storage(session.location)
        self.claims = TrialClaims(session.location, IDENTITIES_DIR, stale_after=self.storage.stale_after)
        self.claims.io.makedirs(self.claims.path)
        self.stored = StoredIdentities.load(self.storage)  # once: the seed to plan with and the states
        self.planned: list[Planned] = []
        self.identity: dict[str, str] = {}  # uid -> identity of the trials this run claimed

    def select(self, items: list[TrialSpec]) -> list[TrialSpec]:
        """The items to run; the cached results and the trials running elsewhere go to the session."""
        keep_seeds = self.session.config.option.seed is None
        self.planned = classify(items, self.stored, keep_seeds)
        latest = self.claims.current()
        run: list[TrialSpec] = []
        for planned in self.planned:
            if planned.state == "running":
                self.session.elsewhere.append(planned.spec)
                continue
            claimed = self._claim(planned.spec, latest) if planned.state != "done" else planned.attempt
            if claimed is True:
                run.append(planned.spec)
            elif claimed is False:
                self.session.elsewhere.append(planned.spec)
            else:
                self.session.cached.append(cached_result(self.storage, planned.spec, claimed))
        return run

    def _claim(self, spec: TrialSpec, latest: dict[str, int]) -> bool | Attempt:
        """True: this run runs ``spec``; False: another run is running it; an attempt: another run passed it
        since the storage was read (its claim says so), so it is cached from that one."""
        from machinable.storage.identities import Attempt

        identity = _identity(spec)
        n = latest.get(identity, 0)
        if n:
            if self.claims.is_live(identity, n):
                return False
            info = self.claims.read(identity, n) or {}
            if info.get("status") in PASSED and not code_changes(info.get("code") or {}, spec):
                return Attempt(
                    info["execution"], info["uid"], spec.node_id, spec.seed, info["status"], info["code"]
                )
        if not self.claims.take(identity, n):
            return False  # another run took it just now
        self.identity[spec.uid] = identity
        return True

    def release(self, result: TrialResult) -> None:
        identity = self.identity.pop(result.uid, None)
        if identity is not None:
            assert self.session.execution is not None
            outcome = {
                "status": result.status,
                "execution": self.session.execution.folder,
                "uid": result.uid,
                "code": result.code,
            }
            self.claims.release([identity], outcome)

    def close(self) -> None:
        self.claims.release()


def _identity(spec: TrialSpec) -> str:
    return ids.trial_identity(ids.trial_slot(spec.component, spec.config, spec.repeat_number), spec.seed)


def cached_result(storage: Storage, spec: TrialSpec, attempt: Attempt | None) -> TrialResult:
    """A trial that passed before with the same identity and code, reported as ``cached`` with that trial's
    records and timings (``cached_from``: where it is stored)."""
    from machinable.storage import StoredExecution
    from machinable.trials import CACHED, TrialResult

    assert attempt is not None
    source = attempt.cached_from or f"{attempt.execution}/{attempt.uid}"
    folder, _, uid = source.rpartition("/")
    trial = StoredExecution(storage, folder).trial_at(uid)
    status = trial.status_info
    return TrialResult.of(
        spec,
        CACHED,
        None,
        records=trial.records,
        started=status.get("started"),
        finished=status.get("finished"),
        flags=trial.flags,
        cached_from=source,
    )


def _run(session: Session) -> NeededRun | None:
    return session.config.stash.get(STASH_KEY)


@hookimpl
def machinable_addoption(parser: argparse.ArgumentParser) -> None:
    group = getgroup(parser, "collection and running")
    group.add_argument(
        "--needed",
        action="store_true",
        help="run only the trials the storage does not hold yet, or whose code changed, or that failed; "
        "report the others as cached (see also: machinable plan)",
    )


@hookimpl(tryfirst=True)
def machinable_sessionstart(session: Session) -> None:
    if not getattr(session.config.option, "needed", False) or session.kind != "run":
        return
    if session.location is None or session.location.is_memory:
        raise UsageError("--needed compares with what a storage holds: give one with --storage (not memory)")
    run = NeededRun(session)
    session.config.stash[STASH_KEY] = run
    if session.config.option.seed is None:
        adopt_latest_seed(session, run.stored)


def adopt_latest_seed(session: Session, stored: StoredIdentities) -> None:
    """Plan with the global seed of the storage's latest execution: new trials get the seeds a full run of it
    would have given them (trials that ran keep theirs: :func:`classify`)."""
    if stored.latest is not None:
        session.execution_id = ids.execution_id(stored.latest)


@hookimpl(trylast=True)
def machinable_collect_modifyitems(session: Session, config: Config, items: list[TrialSpec]) -> None:
    run = _run(session)
    if run is not None and config is session.config:
        items[:] = run.select(items)


@hookimpl
def machinable_report_collectionfinish(config: Config) -> str | None:
    run = config.stash.get(STASH_KEY)
    if run is None or not run.planned:
        return None
    found = counts(run.planned)
    parts = [f"{n} {state}" for state, n in found.items()]
    elsewhere = len(run.session.elsewhere) - found.get("running", 0)
    if elsewhere:
        parts.append(f"{elsewhere} taken by a concurrent run")
    return "needed: " + ", ".join(parts)


@hookimpl
def machinable_trial_result(session: Session, result: TrialResult) -> None:
    run = _run(session)
    if run is not None:
        run.release(result)


@hookimpl
def machinable_sessionfinish(session: Session) -> None:
    run = session.config.stash.pop(STASH_KEY, None)
    if run is not None:
        run.close()
