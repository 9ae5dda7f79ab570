"""The built-in plugin ``commands``: the sub-commands for stored executions (``reproduce`` and ``resume`` here;
``show``, ``compare`` and ``report`` in :mod:`machinable.cli.results`; what they share in
:mod:`machinable.cli.stored`) and ``--check-determinism``.

Each sub-command parses its arguments and resolves the stored execution they name; the work and the report are
elsewhere (:mod:`machinable.reporting.replays` over :mod:`machinable.replay.reproduce` and
:mod:`machinable.replay.resume`, :mod:`machinable.reporting.show` and ``.compare``,
:mod:`machinable.replay.determinism`). Exit codes follow the command: 0 all good, 1 something differs or failed,
2 interrupted, 4 usage error (e.g. an unknown execution id), 5 nothing selected.

``--storage`` may be left out when the project's ``.machinable_cache`` remembers the last execution's storage
(a path or remote URL; memory storage is gone with its process), and ``last`` stands for that execution's id.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from machinable.cli.results import add_result_commands
from machinable.cli.stored import check_arguments, open_execution, project_option, storage_options, tolerance
from machinable.hookspec import hookimpl
from machinable.plugins import getgroup
from machinable.reporting.terminal import machinable_addoption as reporting_options

if TYPE_CHECKING:
    from machinable.execution.options import Config


def _rerun_options(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("--engine", metavar="NAME", help="local (default), process[:N], ray, ...")
    sub.add_argument("-s", dest="echo", action="store_true", help="show the re-run trials' output live")


@hookimpl
def machinable_subcommands(subparsers: Any) -> None:
    reproduce = subparsers.add_parser(
        "reproduce",
        help="re-run a stored execution's trials with their stored seeds and compare the results",
        description="Re-run each selected trial of a stored execution with its stored configuration and seed, "
        "into a fresh memory storage, and compare records and stored values with the stored ones. "
        "Exit 0 only if every trial reproduced.",
    )
    storage_options(reproduce, "required", color=False)
    # -q, -v and --color as a run takes them: the terminal plugin's own definitions.
    reporting_options(parser=reproduce)
    reproduce.add_argument(
        "-k", dest="keyword", metavar="EXPR", help="only trials matching EXPR (as for a run)"
    )
    reproduce.add_argument(
        "--rtol", type=tolerance, default=0.0, metavar="R", help="relative float tolerance"
    )
    reproduce.add_argument(
        "--atol", type=tolerance, default=0.0, metavar="A", help="absolute float tolerance"
    )
    reproduce.add_argument(
        "--from-backup",
        action="store_true",
        help="run the code in the execution's code.zip, not the current code",
    )
    _rerun_options(reproduce)
    reproduce.add_argument("--json", action="store_true", help="print the result as JSON")
    reproduce.set_defaults(run=run_reproduce)

    resume = subparsers.add_parser(
        "resume",
        help="run the trials of a stored execution that did not pass, into the same execution",
        description="Run exactly the trials of a stored execution that did not pass (failed, crashed, "
        "interrupted, preempted, never started) with their stored seeds, into the same execution; passed "
        "trials are left untouched. A trial that saved a checkpoint continues from its latest one.",
    )
    storage_options(resume, "optional")
    resume.add_argument(
        "--lf",
        "--last-failed",
        dest="resume_last",  # not 'last_failed': the cache plugin reads that one as a run's --lf
        action="store_true",
        help="resume the last execution of this project (the same as ID 'last')",
    )
    _rerun_options(resume)
    resume.set_defaults(run=run_resume)

    add_result_commands(subparsers)


@hookimpl
def machinable_addoption(parser: argparse.ArgumentParser) -> None:
    group = getgroup(parser, "reproducibility")
    group.add_argument(
        "--check-determinism",
        action="store_true",
        help="run every selected trial twice with the same seed and fail if their records or stored values differ",
    )


@hookimpl
def machinable_configure(config: Config) -> None:
    if getattr(config.option, "check_determinism", False):
        from machinable.replay.determinism import PLUGIN_NAME, DeterminismCheck

        config.pm.register(DeterminismCheck(config), name=PLUGIN_NAME)


@hookimpl
def machinable_unconfigure(config: Config) -> None:
    from machinable.replay.determinism import PLUGIN_NAME

    plugin = config.pm.get_plugin(PLUGIN_NAME)
    if plugin is not None:
        config.pm.unregister(plugin)


# -- the sub-commands: arguments here, the report in machinable.reporting.replays ---------------------------------


def run_reproduce(config: Config) -> int:
    from machinable.reporting.replays import report_reproduce

    stored = open_execution(config)  # an unknown id is a usage error before anything runs
    engine = check_arguments(config, config.option.keyword)
    return report_reproduce(config, stored, engine, project_option(config))


def run_resume(config: Config) -> int:
    from machinable.reporting.replays import report_resume

    stored = open_execution(config)
    engine = check_arguments(config)
    return report_resume(config, stored, engine, project_option(config))
