"""The built-in plugin ``cacheprovider``: ``--lf``, ``--ff``, ``--cache-clear``, and ``--seed last``.

After every run, the node ids of trials that did not pass are kept in ``.machinable_cache/v/cache/lastfailed``
(a trial that passes is removed; failures of trials that did not run stay), and the execution id in
``cache/lastexecution``. ``--lf`` runs only the last failures (all trials when there are none, and says so);
``--ff`` runs them first, then the rest. ``--collect-only`` never changes the cache.
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
        self.lastfailed: dict[str, bool] = value if isinstance(value, dict) else {}
        self.active = bool(config.option.last_failed or config.option.failed_first)
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
    def machinable_trial_result(self, session: Session, result: TrialResult) -> None:
        if not session.owns(self.config):
            return
        if result.status == "passed":
            self.lastfailed.pop(result.node_id, None)
        else:
            self.lastfailed[result.node_id] = True

    @hookimpl
    def machinable_sessionfinish(self, session: Session) -> None:
        if self.config.option.collect_only or session.execution is None or not session.owns(self.config):
            return
        self.cache.set(LASTFAILED_KEY, self.lastfailed)
        execution = session.execution
        self.cache.set(
            LAST_EXECUTION_KEY,
            {"id": execution.id, "seed": execution.seed, "storage": execution.storage, "time": time.time()},
        )


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
