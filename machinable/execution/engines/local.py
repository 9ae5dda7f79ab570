"""The ``local`` engine: trials run one after another in this process (the default)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from machinable.components.fixtures import FixtureManager
from machinable.execution.engines.base import Engine, RunContext
from machinable.hookspec import hookimpl
from machinable.plugins import default_plugin_manager
from machinable.trials import TrialResult, TrialSpec


class LocalEngine(Engine):
    name = "local"
    workers = 1  # trials at a time

    def run(self, specs: list[TrialSpec], context: RunContext) -> Iterator[TrialResult]:
        fixtures = FixtureManager(context.fixtures)
        trial_context = context.trial_context(fixtures)
        protocol = (context.pm or default_plugin_manager()).hook.machinable_trial_protocol
        try:
            for spec in specs:
                yield protocol(spec=context.with_timeout(spec), context=trial_context)
        finally:
            fixtures.close()


@hookimpl
def machinable_engines() -> dict[str, Any]:
    return {"local": LocalEngine}
