"""The built-in plugin ``commands``: ``machinable reproduce | resume | show | compare | report`` and
``--check-determinism``.

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

    _add_show(subparsers)
    _add_compare(subparsers)
    _add_report(subparsers)


def _count(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"expected a number of rows (0: all), got {text!r}")
    return int(text)


def _seconds(text: str) -> float:
    value = _tolerance(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {text!r}")
    return value


def _results_options(sub: argparse.ArgumentParser) -> None:
    """The options of a results table (show, compare): storage, selection, metrics, grouping, sorting, format."""
    _selection_options(sub)
    sub.add_argument(
        "--sort", metavar="[-]NAME", help="sort rows by a metric (its mean) or key; --sort -NAME: descending"
    )
    sub.add_argument(
        "--format", choices=("table", "md", "csv", "json"), help="table (default), md, csv or json"
    )
    sub.add_argument("--json", action="store_true", help="the same as --format json")


def _selection_options(sub: argparse.ArgumentParser) -> None:
    """Storage, -k, --metric and --group-by: which results, and how they are grouped (show, compare, report)."""
    sub.add_argument(
        "--storage",
        metavar="URL",
        help="where the executions are stored: a path or fsspec URL (default: the last run's storage, if on disk)",
    )
    sub.add_argument("--color", choices=("auto", "yes", "no"), default="auto", help="colour the output")
    sub.add_argument("-k", dest="keyword", metavar="EXPR", help="only trials matching EXPR (as for a run)")
    sub.add_argument(
        "--metric",
        metavar="NAME[:min|:max],...",
        help="the metrics to show (default: every numeric column of the last record row); NAME:min / NAME:max: "
        "the best value over the rows instead of the last",
    )
    sub.add_argument(
        "--group-by",
        metavar="KEY[,KEY]",
        help="group trials by these configuration keys (dotted) or 'component' only",
    )


def _add_show(subparsers: Any) -> None:
    show = subparsers.add_parser(
        "show",
        help="list stored executions, their results by configuration, or one trial in full",
        description="Without ID: the executions in the storage, newest first. With IDs (or -k over the whole "
        "storage): one row per configuration with each metric's mean +- std over the trials that passed "
        "(--no-group: one row per trial), and the trials that did not pass. ID NODE: one trial in full. "
        "See docs/results.md.",
    )
    show.add_argument(
        "ids",
        nargs="*",
        metavar="ID",
        help="execution ids ('last': the last run's); ID NODE: the trial NODE (a node id, its prefix or a uid) "
        "of execution ID",
    )
    _results_options(show)
    show.add_argument("--no-group", action="store_true", help="one row per trial")
    show.add_argument(
        "--follow",
        action="store_true",
        help="re-read storage and update the table until every trial has ended (Ctrl-C stops)",
    )
    show.add_argument(
        "--interval", type=_seconds, default=1.0, metavar="S", help="--follow: seconds between reads (1)"
    )
    trial = show.add_argument_group("one trial (ID NODE)")
    trial.add_argument(
        "--rows",
        type=_count,
        default=10,
        metavar="N",
        help="record rows shown: the first and last N/2 (0: all)",
    )
    trial.add_argument("--scope", default="default", metavar="NAME", help="the record scope (default)")
    trial.add_argument("--log", action="store_true", help="print the trial's log.txt")
    trial.add_argument("--output", action="store_true", help="print the trial's captured output.log")
    show.set_defaults(run=run_show)


def _add_compare(subparsers: Any) -> None:
    compare = subparsers.add_parser(
        "compare",
        help="two executions (or two trials, ID/NODE) side by side: metrics on both sides and B - A",
        description="A B: two executions: the configuration keys that differ, and for each configuration in both "
        "(matched by component and configuration, or by --group-by keys) each metric's mean +- std on both sides "
        "and the difference B - A. A/NODE B/NODE: two trials (NODE: a node id, its prefix or a uid). "
        "See docs/results.md.",
    )
    compare.add_argument(
        "a", metavar="A", help="an execution id ('last': the last run's), or ID/NODE: a trial"
    )
    compare.add_argument("b", metavar="B", help="the same for the other side")
    _results_options(compare)
    compare.set_defaults(run=run_compare)


def _add_report(subparsers: Any) -> None:
    report = subparsers.add_parser(
        "report",
        help="write executions' results as one HTML file: table, curves, final values, failures",
        description="One self-contained HTML file (no network needed to open it) of executions' results: the "
        "grouped table, each metric's curve per configuration (mean +- std over seeds), final values against "
        "the swept keys, failures with their tracebacks. No ID: the last run's execution (with -k: every "
        'execution in the storage). Needs plotly: pip install "machinable[report]". See docs/results.md.',
    )
    report.add_argument(
        "ids", nargs="*", metavar="ID", help="execution ids ('last', the default: the last run's)"
    )
    _selection_options(report)
    report.add_argument("-o", "--output", default="report.html", metavar="PATH", help="where (report.html)")
    report.add_argument("--open", action="store_true", help="open the report in the default web browser")
    report.set_defaults(run=run_report)


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
    return _resolve(config, given)


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
    return _get(_open_storage(config), _execution_id(config))


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


# -- show and compare: arguments here, the tables in machinable.reporting.show and .compare -----------------------


def _resolve(config: Config, given: str) -> str:
    """An execution id as given, or the last run's for 'last'."""
    if given != "last":
        return given
    remembered = last_execution(config).get("id")
    if not isinstance(remembered, str):
        raise UsageError("'last': no previous execution is recorded in .machinable_cache")
    return remembered


def _open_storage(config: Config) -> Any:
    from machinable.storage import Storage

    try:
        return Storage(_storage(config))
    except StorageError as exc:
        raise UsageError(str(exc)) from None


def _get(storage: Any, execution_id: str) -> Any:
    try:
        return storage.get(execution_id)
    except StorageError as exc:
        raise UsageError(str(exc)) from None


def _view(config: Config) -> Any:
    from machinable.reporting.show import View

    option = config.option
    fmt = "json" if option.json else option.format or "table"
    return View(
        fmt, option.keyword, option.metric, option.group_by, getattr(option, "no_group", False), option.sort
    )


def run_show(config: Config) -> int:
    from machinable.reporting.show import render_executions, render_results

    option, view = config.option, _view(config)
    storage = _open_storage(config)
    if not option.ids and not option.keyword:
        if option.follow:
            raise UsageError("--follow needs an execution ID (or -k EXPR)")
        print(render_executions(storage, view.fmt))
        return ExitCode.OK
    ids = [_resolve(config, given) for given in option.ids]
    if len(ids) == 2 and not _is_execution(storage, ids[1]):
        from machinable.reporting.trial import NoSuchTrial, render_trial

        stored = _get(storage, ids[0])
        try:
            text = render_trial(
                stored, ids[1], view.fmt, option.rows, option.scope, option.log, option.output
            )
        except NoSuchTrial as exc:
            raise UsageError(f"{exc} (nor is {ids[1]!r} an execution in storage {storage.url})") from None
        print(text)
        return ExitCode.OK
    executions = [_get(storage, i) for i in ids] if ids else storage.executions()
    if option.follow:
        return _follow(storage, [e.folder for e in executions] if ids else None, view, option.interval)
    print(render_results(executions, view))
    return ExitCode.OK


def _is_execution(storage: Any, word: str) -> bool:
    try:
        storage.get(word)
    except StorageError:
        return False
    return True


def _follow(storage: Any, folders: list[str] | None, view: Any, interval: float) -> int:
    from machinable.reporting.show import follow

    if view.fmt not in ("table", "md"):
        raise UsageError("--follow prints tables: --format table or md")

    def load() -> list[Any]:
        return [storage.get(f) for f in folders] if folders is not None else storage.executions()

    try:
        follow(load, view, interval=interval)
    except KeyboardInterrupt:
        print()
        return ExitCode.INTERRUPTED
    return ExitCode.OK


def run_compare(config: Config) -> int:
    from machinable.reporting.compare import Side, render_comparison

    storage = _open_storage(config)
    sides = []
    for given in (config.option.a, config.option.b):
        execution_id, _, node = given.partition("/")
        sides.append(Side(_get(storage, _resolve(config, execution_id)), node or None))
    print(render_comparison(sides[0], sides[1], _view(config)))
    return ExitCode.OK


def run_report(config: Config) -> int:
    from machinable.reporting.report import check_output, report_command

    option = config.option
    check_output(option.output)  # a path that cannot be written is an error before anything is read
    storage = _open_storage(config)
    given = option.ids or ([] if option.keyword else ["last"])
    executions = [_resolve(config, i) for i in given] if given else storage.executions()
    return report_command(executions, storage, option)
