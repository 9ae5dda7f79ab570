"""The built-in plugin ``plan``: ``machinable plan [TARGETS] [OVERRIDES] [-k EXPR] --storage URL [--json]``.

It collects what a run with the same arguments would, and says of each trial what the storage holds of it
(new, done, stale, failed, running; :mod:`machinable.collection.needed`) without starting an execution. A
``--needed`` run runs the new, stale and failed ones.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from machinable.errors import UsageError
from machinable.hookspec import hookimpl

if TYPE_CHECKING:
    from machinable.execution.options import Config


@hookimpl
def machinable_subcommands(subparsers: Any) -> None:
    plan = subparsers.add_parser(
        "plan",
        help="list each trial a run would collect as new, done, stale, failed or running in --storage",
        description="Collect what a run with the same arguments would (targets, overrides, -k, --repeat, "
        "--seed) and compare every trial with what --storage holds, without running anything. "
        "`machinable --needed` runs the new, stale and failed ones.",
        usage="machinable plan [TARGETS ...] [KEY=VALUE ...] [-k EXPR] [--storage URL] [--json]",
    )
    plan.set_defaults(run=run_plan, run_arguments=True)


def run_plan(config: Config) -> int:
    from machinable.cli.main import _configured, run_parser
    from machinable.execution.options import Config

    args = list(config.args)
    del args[_position(args, "plan")]
    option = run_parser(config.pm, "machinable plan").parse_args(args)
    option.collect_only = True  # nothing is written: no execution starts
    plan_config = Config(option, config.pm, config.root, config.args)
    return _configured(plan_config, lambda: _plan(plan_config))


def _position(args: list[str], word: str) -> int:
    """Where the sub-command's name is: the first argument that is no common option (-p NAME, --project DIR)."""
    skip = False
    for i, arg in enumerate(args):
        if skip:
            skip = False
        elif arg in ("-p", "--project"):
            skip = True
        elif arg == word:
            return i
    raise UsageError(f"'{word}' not found in the arguments")


def _plan(config: Config) -> int:
    from machinable.cli.run import build_session
    from machinable.collection.needed import adopt_latest_seed, classify
    from machinable.collection.stage import collect_current
    from machinable.execution.options import ExitCode
    from machinable.reporting.plan import render_plan
    from machinable.storage import Storage
    from machinable.storage.identities import StoredIdentities

    session = build_session(config)
    if session.location is None or session.location.is_memory:
        raise UsageError(
            "machinable plan compares with a storage: give one with --storage (or settings: storage:)"
        )
    storage = Storage(session.location)
    stored = StoredIdentities.load(storage)
    if config.option.seed is None:
        adopt_latest_seed(session, stored)
    collect_current(session)
    errors = [r for r in session.reports if r.outcome == "error"]
    if errors:
        raise UsageError("; ".join(r.message for r in errors))
    items = list(session.items)
    config.pm.hook.machinable_collect_modifyitems(session=session, config=config, items=items)
    planned = classify(items, stored, keep_seeds=config.option.seed is None)
    print(render_plan(planned, storage.url, as_json=bool(config.option.json)))
    return ExitCode.OK if planned else ExitCode.NO_TRIALS_COLLECTED
