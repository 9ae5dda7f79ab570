"""The built-in plugin ``commands``: ``machinable reproduce | resume | show`` and ``--check-determinism``.

Each sub-command parses its arguments and resolves the stored execution they name; the work and the report are
elsewhere (:mod:`machinable.reporting.replays` over :mod:`machinable.replay.reproduce` and
:mod:`machinable.replay.resume`, :mod:`machinable.reporting.show`, :mod:`machinable.replay.determinism`). Exit codes follow the command: 0 all good, 1 something differs or failed,
2 interrupted, 4 usage error (e.g. an unknown execution id), 5 nothing selected.

``--storage`` may be left out when the project's ``.machinable_cache`` remembers the last execution's storage
(a path or remote URL; memory storage is gone with its process), and ``last`` stands for that execution's id.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from machinable.collection.cacheprovider import last_execution
from machinable.config.settings import default
from machinable.errors import StorageError, UsageError
from machinable.execution.options import ExitCode
from machinable.hookspec import hookimpl
from machinable.plugins import getgroup

if TYPE_CHECKING:
    from machinable.execution.engines.base import Engine
    from machinable.execution.options import Config


def _tolerance(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a non-negative number, got {text!r}")
    return value


def _storage_options(sub: argparse.ArgumentParser, with_id: str) -> None:
    nargs = "?" if with_id == "optional" else None
    sub.add_argument(
        "id", nargs=nargs, metavar="ID", help="the execution id (e.g. OY1p1o); 'last': the last run's"
    )
    sub.add_argument(
        "--storage",
        metavar="URL",
        help="where the execution is stored: a path or fsspec URL (default: the last run's storage, if on disk)",
    )
    sub.add_argument("--color", choices=("auto", "yes", "no"), default="auto", help="colour the output")


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
    _storage_options(reproduce, "required")
    reproduce.add_argument(
        "-k", dest="keyword", metavar="EXPR", help="only trials matching EXPR (as for a run)"
    )
    reproduce.add_argument(
        "--rtol", type=_tolerance, default=0.0, metavar="R", help="relative float tolerance"
    )
    reproduce.add_argument(
        "--atol", type=_tolerance, default=0.0, metavar="A", help="absolute float tolerance"
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
        "interrupted, never started) with their stored seeds, into the same execution; passed trials are "
        "left untouched.",
    )
    _storage_options(resume, "optional")
    resume.add_argument(
        "--lf",
        "--last-failed",
        dest="resume_last",  # not 'last_failed': the cache plugin reads that one as a run's --lf
        action="store_true",
        help="resume the last execution of this project (the same as ID 'last')",
    )
    _rerun_options(resume)
    resume.set_defaults(run=run_resume)

    show = subparsers.add_parser(
        "show",
        help="list stored executions, or one execution's trials",
        description="Without ID: the executions in the storage, newest first. With ID: its trials with status, "
        "seed, key configuration values and the last value of each record column.",
    )
    _storage_options(show, "optional")
    show.add_argument("--json", action="store_true", help="machine-readable output")
    show.set_defaults(run=run_show)


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


# -- arguments shared by the sub-commands -------------------------------------------------------------------------


def _storage(config: Config) -> str:
    """``--storage``, else where the last run of the project kept its results, else ``MACHINABLE_STORAGE`` or the
    project's ``settings: storage:``."""
    given = config.option.storage
    if given:
        return given
    remembered = last_execution(config).get("storage")
    if isinstance(remembered, str) and remembered and not remembered.startswith("memory://"):
        return remembered
    configured = default(_settings(config), "storage", None)
    if isinstance(configured, str) and configured:
        return configured
    raise UsageError("--storage URL is required (no earlier run of this project kept its results on disk)")


def _settings(config: Config) -> dict[str, Any]:
    if config.root is None:
        return {}
    from machinable.config.project import Project

    return Project(config.root).settings


def _execution_id(config: Config) -> str:
    given = config.option.id
    if getattr(config.option, "resume_last", False):
        if given not in (None, "last"):
            raise UsageError(f"give an execution id ({given}) or --lf (the last execution), not both")
        given = "last"
    if given is None:
        raise UsageError("an execution ID is required (or --lf for the last execution)")
    if given != "last":
        return given
    remembered = last_execution(config).get("id")
    if not isinstance(remembered, str):
        raise UsageError("'last': no previous execution is recorded in .machinable_cache")
    return remembered


def _project(config: Config) -> str | None:
    # Only an explicit --project overrides the execution's own project folder (see replay.stored.project_root).
    return config.option.project


def _check_arguments(config: Config, keyword: str | None = None) -> Engine:
    """The engine, after the usage errors (a bad -k expression, an unknown engine) that must come before any
    report line is printed."""
    from machinable.collection.expression import Expression
    from machinable.execution.engines.base import make_engine

    Expression.compile(keyword or "")
    return make_engine(config.option.engine, config.pm)


def _open(config: Config) -> Any:
    """The stored execution named on the command line (UsageError naming a few ids when there is none)."""
    from machinable.storage import Storage

    url = _storage(config)
    try:
        return Storage(url).get(_execution_id(config))
    except StorageError as exc:
        raise UsageError(str(exc)) from None


# -- the sub-commands: arguments here, the report in machinable.reporting.replays ---------------------------------


def run_reproduce(config: Config) -> int:
    from machinable.reporting.replays import report_reproduce

    stored = _open(config)  # an unknown id is a usage error before anything runs
    engine = _check_arguments(config, config.option.keyword)
    return report_reproduce(config, stored, engine, _project(config))


def run_resume(config: Config) -> int:
    from machinable.reporting.replays import report_resume

    stored = _open(config)
    engine = _check_arguments(config)
    return report_resume(config, stored, engine, _project(config))


def run_show(config: Config) -> int:
    from machinable.reporting.show import render_execution, render_executions
    from machinable.storage import Storage

    option = config.option
    if option.id is None:
        try:
            storage = Storage(_storage(config))
        except StorageError as exc:
            raise UsageError(str(exc)) from None
        print(render_executions(storage, as_json=option.json))
        return ExitCode.OK
    print(render_execution(_open(config), as_json=option.json))
    return ExitCode.OK
