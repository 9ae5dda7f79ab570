"""Hook specifications: every stage of machinable is a hook, and built-in features implement them as plugins.

A plugin is any object or module with functions named like these, decorated with ``machinable.hookimpl``.
Implementations may declare any subset of a hook's parameters (pluggy prunes the rest), which keeps plugins
working when a hook gains a parameter. Outside plugins register through the entry point group ``machinable``
or ``-p NAME`` on the command line.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    import argparse

    from machinable.cli.main import Config
    from machinable.cli.session import Session
    from machinable.cli.terminal import TerminalReporter
    from machinable.collect import CollectReport
    from machinable.execution import Execution
    from machinable.spec import TrialResult, TrialSpec

hookspec = pluggy.HookspecMarker("machinable")
hookimpl = pluggy.HookimplMarker("machinable")


@hookspec
def machinable_engines() -> dict[str, Any]:
    """Return engines this plugin provides, as ``{name: factory}``.

    ``factory(**options)`` returns an :class:`~machinable.engines.base.Engine`; options come from
    ``engine={'type': name, ...}`` or ``--engine name:N`` (``workers=N``). Results of all plugins are merged;
    a later-registered plugin may override a name.
    """


@hookspec
def machinable_execution_start(execution: Execution, specs: list[TrialSpec]) -> None:
    """Called once the execution id, seed, storage and plan are known, before any trial runs."""


@hookspec
def machinable_trial_result(execution: Execution, result: TrialResult) -> None:
    """Called in the controlling process for every trial that ended (passed, failed, crashed, interrupted)."""


@hookspec
def machinable_execution_finish(execution: Execution) -> None:
    """Called after the last trial (also after an interruption), when every result is stored."""


# -- the ``machinable`` command ------------------------------------------------------------------------------------
# Implemented by the built-in plugins of ``machinable/cli/`` (select, terminal, junitxml, cacheprovider), by
# ``machinable_conf.py`` at the project root, and by outside plugins. The command calls them in this order:
# addoption -> configure -> sessionstart -> collect_modifyitems / deselected -> collection_finish -> (execution
# hooks above) -> sessionfinish -> terminal_summary -> unconfigure.


@hookspec
def machinable_addoption(parser: argparse.ArgumentParser) -> None:
    """Add command line options: ``parser.add_argument('--my-option', ...)`` (``argparse``).

    Called once, before the command line is parsed, for built-in plugins, entry points, ``-p NAME`` plugins and
    the project's ``machinable_conf.py``. The values are on ``config.option`` (e.g. ``config.option.my_option``).
    Use ``parser.add_argument_group(title)`` to keep a plugin's options together in ``--help``.
    """


@hookspec
def machinable_subcommands(subparsers: Any) -> None:
    """Add a sub-command, ``machinable NAME ...``, instead of a normal run.

    ``subparsers`` is an ``argparse`` sub-parsers action: ``sub = subparsers.add_parser('show', help=...)``,
    add its arguments, and ``sub.set_defaults(run=function)`` where ``function(config) -> int`` returns the exit
    code. A first argument that names a sub-command dispatches to it; anything else is a normal run
    (``machinable -- show`` collects a target named ``show``).
    """


@hookspec
def machinable_configure(config: Config) -> None:
    """The command line is parsed: ``config.option``, ``config.pm``, ``config.root`` are set.

    Plugins register helper objects here (``config.pm.register(reporter, 'terminalreporter')``), so that hooks of
    a run are only active in the command and never inside ``ml.execute``.
    """


@hookspec
def machinable_unconfigure(config: Config) -> None:
    """The command ends (also after an error); undo what ``machinable_configure`` did."""


@hookspec
def machinable_report_header(config: Config) -> str | list[str] | None:
    """Lines for the header of the terminal report, after the ``machinable x.y, python ...`` line."""


@hookspec
def machinable_sessionstart(session: Session) -> None:
    """The session exists (``session.project``, ``session.execution_id``), before collection."""


@hookspec
def machinable_collectreport(report: CollectReport) -> None:
    """A collection error or warning (``report.outcome`` is ``'error'`` or ``'warning'``) about ``report.nodeid``."""


@hookspec
def machinable_collect_modifyitems(session: Session, config: Config, items: list[TrialSpec]) -> None:
    """Filter or re-order the collected trials in place (``items[:] = ...``).

    Built-ins use it for ``-k`` (plugin ``select``) and ``--lf`` / ``--ff`` (plugin ``cacheprovider``). A plugin
    that drops items should call ``config.pm.hook.machinable_deselected(items=dropped)`` so that they are
    counted as deselected.
    """


@hookspec
def machinable_deselected(items: list[TrialSpec]) -> None:
    """``items`` were deselected (``-k``, ``--lf``, a plugin); they do not run."""


@hookspec
def machinable_report_collectionfinish(config: Config, items: list[TrialSpec]) -> str | list[str] | None:
    """Lines shown after the ``collected N trials`` line (e.g. ``run-last-failure: ...``)."""


@hookspec
def machinable_collection_finish(session: Session) -> None:
    """Collection and selection are done: ``session.items`` run next (or are listed by ``--collect-only``)."""


@hookspec
def machinable_sessionfinish(session: Session, exitstatus: int) -> None:
    """Everything ran (or collection failed); ``session.execution`` holds the results, if any ran."""


@hookspec
def machinable_terminal_summary(reporter: TerminalReporter, exitstatus: int, config: Config) -> None:
    """Add sections to the end of the terminal report: ``reporter.section('title')``, ``reporter.line(text)``."""
