"""The sub-commands over stored results: ``machinable show``, ``compare`` and ``report``: their arguments here,
the tables in :mod:`machinable.reporting.show` and ``.compare``, the page in :mod:`machinable.reporting.report`.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from machinable.cli.stored import get_execution, open_results_storage, resolve_id, tolerance
from machinable.errors import StorageError, UsageError
from machinable.execution.options import ExitCode

if TYPE_CHECKING:
    from machinable.execution.options import Config


def add_result_commands(subparsers: Any) -> None:
    """``show``, ``compare`` and ``report``."""
    _add_show(subparsers)
    _add_compare(subparsers)
    _add_report(subparsers)


def _count(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"expected a number of rows (0: all), got {text!r}")
    return int(text)


def _seconds(text: str) -> float:
    value = tolerance(text)
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
    sub.add_argument(
        "--color",
        choices=("auto", "yes", "no"),
        default="auto",
        help="mark the trials that did not pass in red (tables on a terminal: auto)",
    )


def _selection_options(sub: argparse.ArgumentParser) -> None:
    """Storage, -k, --metric and --group-by: which results, and how they are grouped (show, compare, report)."""
    sub.add_argument(
        "--storage",
        metavar="URL",
        help="where the executions are stored: a path or fsspec URL (default: the last run's storage, if on disk)",
    )
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
    show.add_argument(
        "--env",
        action="store_true",
        help="ID --env: what the execution ran with: git commit and uncommitted changes, Python, packages, "
        "platform, GPUs, Slurm job, host (--json: provenance.json as stored)",
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


# -- show and compare: arguments here, the tables in machinable.reporting.show and .compare -----------------------


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
    storage = open_results_storage(config)
    if option.env:
        return _show_env(config, storage, view.fmt)
    if not option.ids and not option.keyword:
        if option.follow:
            raise UsageError("--follow needs an execution ID (or -k EXPR)")
        _print(config, render_executions(storage, view.fmt), view.fmt)
        return ExitCode.OK
    ids = [resolve_id(config, given) for given in option.ids]
    if len(ids) == 2 and not _is_execution(storage, ids[1]):
        from machinable.reporting.trial import NoSuchTrial, render_trial

        stored = get_execution(storage, ids[0])
        try:
            text = render_trial(
                stored, ids[1], view.fmt, option.rows, option.scope, option.log, option.output
            )
        except NoSuchTrial as exc:
            raise UsageError(f"{exc} (nor is {ids[1]!r} an execution in storage {storage.url})") from None
        _print(config, text, view.fmt)
        return ExitCode.OK
    executions = [get_execution(storage, i) for i in ids] if ids else storage.executions()
    if option.follow:
        return _follow(storage, [e.folder for e in executions] if ids else None, view, option.interval)
    _print(config, render_results(executions, view), view.fmt)
    return ExitCode.OK


def _show_env(config: Config, storage: Any, fmt: str) -> int:
    from machinable.reporting.provenance import render_provenance

    if len(config.option.ids) != 1:
        raise UsageError("--env shows the provenance of one execution: machinable show ID --env")
    stored = get_execution(storage, resolve_id(config, config.option.ids[0]))
    _print(config, render_provenance(stored, fmt), fmt)
    return ExitCode.OK


# the first word of the lines below a table that name a trial which did not pass (reporting/show.failure_lines)
NOT_PASSED = ("FAILED", "CRASHED", "INTERRUPTED")


def _print(config: Config, text: str, fmt: str) -> None:
    """``text`` on stdout; in a table with colour on (``--color``), the trials that did not pass in red. md, csv
    and json stay plain: they are read by other programs."""
    import sys

    from machinable.reporting.terminalwriter import TerminalWriter, should_color

    tw = TerminalWriter(sys.stdout, fmt == "table" and should_color(sys.stdout, config.option.color))
    for line in text.split("\n"):
        tw.line(line, red=line.split(" ", 1)[0] in NOT_PASSED)


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

    storage = open_results_storage(config)
    sides = []
    for given in (config.option.a, config.option.b):
        execution_id, _, node = given.partition("/")
        sides.append(Side(get_execution(storage, resolve_id(config, execution_id)), node or None))
    view = _view(config)
    _print(config, render_comparison(sides[0], sides[1], view), view.fmt)
    return ExitCode.OK


def run_report(config: Config) -> int:
    from machinable.reporting.report import check_output, report_command

    option = config.option
    check_output(option.output)  # a path that cannot be written is an error before anything is read
    storage = open_results_storage(config)
    given = option.ids or ([] if option.keyword else ["last"])
    executions = [resolve_id(config, i) for i in given] if given else storage.executions()
    return report_command(executions, storage, option)
