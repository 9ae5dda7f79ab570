"""The built-in plugin ``cacheprovider``: ``--lf``, ``--ff``, ``--cache-clear``, and ``--seed last``.

After every run, the node ids of trials that did not pass are kept in ``.machinable_cache/v/cache/lastfailed``,
each with the seed it failed with and its execution (a trial that passes is removed, also when it passes in
``resume``; failures of trials that did not run stay). The execution id, seed and storage go to
``cache/lastexecution`` when the execution starts, so that ``last`` names it even after the run was killed.
``--lf`` runs only the last failures (all trials when there are none, and says so), each with the seed it
failed with unless ``--seed`` is given; ``--ff`` runs them first, then the rest. ``--collect-only`` never changes
the cache.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from machinable.collection.cache import Cache
from machinable.errors import UsageError
from machinable.hookspec import hookimpl
from machinable.plugins import getgroup
from machinable.text import plural

if TYPE_CHECKING:
    import argparse

    from machinable.execution.executions import Execution
    from machinable.execution.options import Config
    from machinable.execution.session import Session
    from machinable.trials import TrialResult, TrialSpec

LASTFAILED_KEY = "cache/lastfailed"
LAST_EXECUTION_KEY = "cache/lastexecution"


class LastFailed:
    def __init__(self, config: Config, cache: Cache) -> None:
        self.config = config
        self.cache = cache
        value = cache.get(LASTFAILED_KEY, {})
        # node id -> {"seed": the trial's seed, "execution": its execution id} (True in older caches)
        self.lastfailed: dict[str, Any] = value if isinstance(value, dict) else {}
        self.active = bool(config.option.last_failed or config.option.failed_first)
        # Read before machinable_configure turns a missing --seed into the last execution's id.
        self.keep_seeds = getattr(config.option, "seed", None) is None
        self.status = ""

    @hookimpl
    def machinable_collect_modifyitems(self, config: Config, items: list[TrialSpec]) -> None:
        if not self.active or config is not self.config:  # a re-run inside the command has its own config
            return
        failed = [i for i in items if i.node_id in self.lastfailed]
        if not failed:
            self.status = (
                "run-last-failure: no previously failed trials, not deselecting items."
                if not self.lastfailed
                else f"run-last-failure: {plural(len(self.lastfailed), 'known failure')} not in the selection, "
                "not deselecting items."
            )
            return
        if self.keep_seeds:
            for item in failed:
                # In place: the collection tells deselected items by identity. A failure of an execution
                # before the last one has a seed of its own, not the one the last global seed derives.
                item.seed = failed_seed(self.lastfailed[item.node_id], item.seed)
        others = [i for i in items if i.node_id not in self.lastfailed]
        if config.option.last_failed:
            items[:] = failed
            if others:
                config.pm.hook.machinable_deselected(items=others)
            self.status = f"run-last-failure: rerun previous {plural(len(failed), 'failure')}"
        else:
            items[:] = failed + others
            self.status = f"run-last-failure: rerun previous {plural(len(failed), 'failure')} first"

    @hookimpl
    def machinable_report_collectionfinish(self) -> str | None:
        return self.status or None

    @hookimpl
    def machinable_execution_start(self, session: Session, execution: Execution) -> None:
        # Now, not at the end: after a kill -9, 'last' must name this execution, not the one before it.
        if session.owns(self.config) and not self.config.option.collect_only:
            remember_execution(self.cache, execution)

    @hookimpl
    def machinable_trial_result(self, session: Session, execution: Execution, result: TrialResult) -> None:
        if not session.owns(self.config):
            return
        if result.status == "passed":
            self.lastfailed.pop(result.node_id, None)
        else:
            self.lastfailed[result.node_id] = {"seed": result.seed, "execution": execution.id}

    @hookimpl
    def machinable_sessionfinish(self, session: Session) -> None:
        if self.config.option.collect_only or session.execution is None or not session.owns(self.config):
            return
        self.cache.set(LASTFAILED_KEY, self.lastfailed)
        remember_execution(self.cache, session.execution)


def remember_execution(cache: Cache, execution: Execution) -> None:
    cache.set(
        LAST_EXECUTION_KEY,
        {"id": execution.id, "seed": execution.seed, "storage": execution.storage, "time": time.time()},
    )


def failed_seed(entry: Any, default: int) -> int:
    """The seed a last failure ran with (``default`` for an entry of an older cache, which kept none)."""
    seed = entry.get("seed") if isinstance(entry, dict) else None
    return seed if isinstance(seed, int) and not isinstance(seed, bool) else default


@hookimpl
def machinable_sessionfinish(session: Session) -> None:
    """A trial that passes when its execution is resumed (``machinable resume``, ``ml.resume``) is no longer a
    last failure of the project; a failure recorded for another execution stays (it ran with another seed)."""
    execution, root = session.execution, session.config.root
    if session.kind != "resume" or execution is None or root is None:
        return
    cache = Cache(root)
    lastfailed = cache.get(LASTFAILED_KEY)
    if not isinstance(lastfailed, dict):
        return  # no cache to update: a resume does not start one
    passed = [
        t.node_id
        for t in execution.trials
        if t.passed and _failed_in(lastfailed.get(t.node_id), execution.id)
    ]
    if passed:
        for node_id in passed:
            del lastfailed[node_id]
        cache.set(LASTFAILED_KEY, lastfailed)


def _failed_in(entry: Any, execution_id: str) -> bool:
    if entry is None:
        return False
    # Entries of older caches say only that the trial failed somewhere.
    recorded = entry.get("execution") if isinstance(entry, dict) else None
    return recorded is None or recorded == execution_id


def last_execution(config: Config) -> dict[str, Any]:
    """What the last run of the project recorded about its execution (``id``, ``seed``, ``storage``), or {}."""
    last = config.cache.get(LAST_EXECUTION_KEY) if config.cache is not None else None
    return last if isinstance(last, dict) else {}


@hookimpl
def machinable_addoption(parser: argparse.ArgumentParser) -> None:
    group = getgroup(parser, "last failures (.machinable_cache)")
    group.add_argument(
        "--lf",
        "--last-failed",
        dest="last_failed",
        action="store_true",
        help="run only the trials that failed last time (all of them if none failed)",
    )
    group.add_argument(
        "--ff", "--failed-first", dest="failed_first", action="store_true", help="run last failures first"
    )
    group.add_argument("--cache-clear", action="store_true", help="empty .machinable_cache before the run")


@hookimpl(tryfirst=True)
def machinable_configure(config: Config) -> None:
    if config.root is None:
        return
    cache = Cache(config.root)
    if getattr(config.option, "cache_clear", False):
        cache.clear()
    config.cache = cache
    if hasattr(config.option, "last_failed"):
        config.pm.register(LastFailed(config, cache), name="lastfailed")
    if hasattr(config.option, "seed"):
        config.option.seed = _seed(config)


def _seed(config: Config) -> str | None:
    """``--seed last`` is the last execution's id; ``--lf`` re-runs the last failures with the seeds they failed
    with, unless ``--seed`` says otherwise."""
    text, last = config.option.seed, last_execution(config).get("id")
    if text is None:
        return last if getattr(config.option, "last_failed", False) and isinstance(last, str) else None
    if text.strip().lower() == "last":
        if not isinstance(last, str):
            raise UsageError("--seed last: no previous execution is recorded in .machinable_cache")
        return last
    return text


@hookimpl
def machinable_unconfigure(config: Config) -> None:
    plugin = config.pm.get_plugin("lastfailed")
    if plugin is not None:
        config.pm.unregister(plugin)
