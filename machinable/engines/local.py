"""The ``local`` engine: trials run one after another in this process (the default)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from machinable.engines.base import Engine, RunContext
from machinable.fixtures import FixtureManager
from machinable.hookspec import hookimpl
from machinable.runner import TrialEnvironment, run_trial
from machinable.spec import TrialResult, TrialSpec


class LocalEngine(Engine):
    name = "local"

    def run(self, specs: list[TrialSpec], context: RunContext) -> Iterator[TrialResult]:
        fixtures = FixtureManager(context.fixtures)
        env = TrialEnvironment(context.execution_id, context.writer, fixtures, echo=context.echo)
        try:
            for spec in specs:
                yield run_trial(context.with_timeout(spec), env)
        finally:
            fixtures.close()


@hookimpl
def machinable_engines() -> dict[str, Any]:
    return {"local": LocalEngine}
