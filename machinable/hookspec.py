"""Hook specifications: every stage of machinable is a hook, and built-in features implement them as plugins.

A plugin is a module or object with functions named like these, decorated with ``machinable.hookimpl`` (the
marker is optional for ``machinable_*`` functions; it carries options such as ``tryfirst``, ``trylast`` and
``wrapper``). Implementations may declare any subset of a hook's parameters, which keeps plugins working when a
hook gains one. Plugins come from the built-ins (``machinable.plugins.BUILTIN_PLUGINS``), the entry point group
``machinable``, ``-p NAME`` on the command line and the project's ``machinable_conf.py``.

Every entry point runs the same pipeline (:class:`machinable.execution.session.Session`), so the hooks fire in
this order for ``ml.execute``, the command, ``resume``, ``reproduce`` and ``--check-determinism`` alike::

    [command only]  addoption -> configure
    sessionstart
    collection                      collectreport*, collect_modifyitems, deselected*, collection_finish
    runtrials                       execution_start, (trial_protocol in the worker, trial_progress*,
                                    trial_result)*, execution_finish
    sessionfinish
    [command only]  terminal_summary (from the terminal reporter) -> unconfigure

Unless a hook says otherwise it is called in the controlling process, and ``machinable_conf.py`` may implement
it. ``session.kind`` (and ``execution.kind``) is ``'run'``, ``'resume'``, ``'reproduce'`` or ``'determinism'``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    import argparse

    from machinable.collection.collect import CollectReport
    from machinable.execution.executions import Execution
    from machinable.execution.options import Config
    from machinable.execution.protocol import TrialContext
    from machinable.execution.session import Session
    from machinable.reporting.terminal import TerminalReporter
    from machinable.trials import TrialResult, TrialSpec

hookspec = pluggy.HookspecMarker("machinable")
hookimpl = pluggy.HookimplMarker("machinable")


# -- engines -------------------------------------------------------------------------------------------------------


@hookspec
def machinable_engines() -> dict[str, Any]:
    """Return the engines this plugin provides, as ``{name: factory}``.

    ``factory(**options)`` returns an :class:`~machinable.execution.engines.base.Engine`; options come from
    ``engine={'type': name, ...}`` or ``--engine name:N`` (``workers=N``). The results of all plugins are
    merged; a later-registered plugin may override a name. Called when an engine is chosen, in the controller.

    Called in the controller when an engine is chosen. ``machinable_conf.py``: yes, for the command and for sessions of its project.
    """


# -- the pipeline --------------------------------------------------------------------------------------------------


@hookspec
def machinable_sessionstart(session: Session) -> None:
    """The session exists: ``session.project``, ``session.execution_id``, ``session.engine`` and
    ``session.location`` are set; nothing is collected yet.

    :param session: the session; ``session.kind`` says which entry point started it.

    Called in the controller, for every entry point. ``machinable_conf.py``: yes.
    """


@hookspec(firstresult=True)
def machinable_collection(session: Session) -> object | None:
    """Collect and select the session's trials into ``session.items`` (like ``pytest_collection``).

    The built-in (plugin ``collection``, ``trylast``) asks the session's source for its trials (a Task, the
    project's components and task files, or a stored plan), fires ``machinable_collectreport`` for each
    collection error or warning, ``machinable_collect_modifyitems`` to select (``-k``, ``--lf``), records what
    was dropped in ``session.deselected`` and fires ``machinable_collection_finish``. Stops at the first
    non-None result: a plugin that returns one replaces collection (and must set ``session.items``).

    :param session: the session; its ``source`` knows where trials come from.

    Called in the controller, for every entry point. ``machinable_conf.py``: yes.
    """


@hookspec
def machinable_collectreport(report: CollectReport) -> None:
    """A collection error or warning (``report.outcome`` is ``'error'`` or ``'warning'``) about ``report.nodeid``.

    :param report: what went wrong, where (``nodeid``) and why (``message``).

    Called in the controller, while the project is collected. ``machinable_conf.py``: yes.
    """


@hookspec
def machinable_collect_modifyitems(session: Session, config: Config, items: list[TrialSpec]) -> None:
    """Filter or re-order the collected trials in place (``items[:] = ...``).

    Built-ins use it for ``-k`` (plugin ``select``) and ``--lf`` / ``--ff`` (plugin ``cacheprovider``). Items
    removed here are counted as deselected; call ``config.pm.hook.machinable_deselected(items=dropped)`` to tell
    other plugins why.

    :param session: the session being collected.
    :param config: the session's options (``config.option``) and plugin manager.
    :param items: the collected trial specs, in plan order.

    Called in the controller, for every entry point. ``machinable_conf.py``: yes.
    """


@hookspec
def machinable_deselected(items: list[TrialSpec]) -> None:
    """``items`` were deselected (``-k``, ``--lf``, a plugin); they do not run.

    :param items: the deselected trial specs.

    Called in the controller by the plugin that deselects. ``machinable_conf.py``: yes.
    """


@hookspec
def machinable_collection_finish(session: Session) -> None:
    """Collection and selection are done: ``session.items`` run next (or are listed by ``--collect-only``).

    :param session: the session; ``items``, ``deselected``, ``collected`` and ``reports`` are final.

    Called in the controller, for every entry point. ``machinable_conf.py``: yes.
    """


@hookspec(firstresult=True)
def machinable_runtrials(session: Session) -> object | None:
    """Run ``session.items`` (like ``pytest_runtestloop``).

    The built-in (plugin ``runtrials``, ``trylast``) opens the session's destination (the execution record),
    fires ``machinable_execution_start``, hands the trials to ``session.engine``, fires
    ``machinable_trial_result`` for each as it ends, stops early on ``-x`` / ``--maxfail``, keeps every
    finished result on Ctrl-C and fires ``machinable_execution_finish``; it sets ``session.execution``.
    Stops at the first non-None result. A ``wrapper=True`` implementation runs code before and after the whole
    run (``--check-determinism`` runs the trials a second time this way).

    :param session: the session, collected and selected.

    Called in the controller, for every entry point. ``machinable_conf.py``: yes.
    """


@hookspec
def machinable_execution_start(session: Session, execution: Execution, specs: list[TrialSpec]) -> None:
    """The execution id, seed, storage and plan are known and stored; no trial has run yet.

    :param session: the session that runs the execution.
    :param execution: the execution; ``execution.kind`` says which entry point runs it.
    :param specs: the trials about to run, in plan order.

    Called in the controller, for every entry point. ``machinable_conf.py``: yes.
    """


@hookspec(firstresult=True)
def machinable_trial_protocol(spec: TrialSpec, context: TrialContext) -> TrialResult | None:
    """Run one trial from fixtures to teardown and return its result (like ``pytest_runtest_protocol``).

    Called **where the trial runs**: in the controller for the ``local`` engine, in the worker process or Ray
    worker otherwise. Workers load the built-in ``protocol`` plugin and the session's module plugins by name
    (entry points, ``-p NAME``, ``machinable_conf.py``); plugins that are objects are not carried to workers.
    The built-in (plugin ``protocol``, ``trylast``) writes ``trial.json`` and ``status.json``, seeds, runs the
    component's events or the function with its fixtures, and records the outcome; it raises only
    ``KeyboardInterrupt`` (with ``.result``), ``TrialPreempted`` (one, for a warning signal) included. Stops at the first non-None result; a ``wrapper=True``
    implementation sees every trial's start and result in the worker.

    :param spec: the trial: node id, component, resolved configuration, seed, uid, timeout.
    :param context: the execution id, the storage writer, the fixture manager and whether output is echoed.

    Called where the trial runs (controller or worker). ``machinable_conf.py``: yes (workers load it by name).
    """


@hookspec
def machinable_trial_progress(
    session: Session, execution: Execution, spec: TrialSpec, row: dict[str, Any]
) -> None:
    """A running trial saved a record row (``self.record.save()``, an iteration's row, a function's result).

    For live displays (the terminal's ``-v`` shows each running trial's latest values). Throttled: at most
    ~4 calls a second per trial, each with the row just saved (the latest), so rows may be skipped and the
    last rows of a trial may never come here; the stored records are complete and ``machinable_trial_result``
    carries all of them. Never called after the trial's ``machinable_trial_result``. Rows of the trial's
    default record only (not named scopes).

    Workers send rows to the controller only when some plugin implements this hook: without one, nothing is
    sent and a trial pays nothing for it.

    :param session: the session that runs the trial.
    :param execution: its execution.
    :param spec: the running trial.
    :param row: the saved row as stored (JSON values), with machinable's ``_time`` (and ``_iteration``).

    Called in the controller, for every engine (rows of trials in worker processes and Ray workers are sent
    over), in the order they arrive. ``machinable_conf.py``: yes.
    """


@hookspec
def machinable_trial_result(session: Session, execution: Execution, result: TrialResult) -> None:
    """A trial ended (passed, failed, crashed, interrupted or preempted) and its records are stored.

    Called in the controller, for every trial of every kind of session, in the order the trials end.

    :param session: the session that ran the trial.
    :param execution: its execution (``execution.kind``: ``run``, ``resume``, ``reproduce``, ``determinism``).
    :param result: the trial's status, error, records, timing, and for a trial that did not pass its output.

    ``machinable_conf.py``: yes.
    """


@hookspec
def machinable_execution_finish(session: Session, execution: Execution) -> None:
    """The last trial ended (also after an interruption or an early stop), and every result is stored.

    :param session: the session that ran the execution.
    :param execution: the execution, its trials in plan order.

    Called in the controller, for every entry point. ``machinable_conf.py``: yes.
    """


@hookspec
def machinable_sessionfinish(session: Session, exitstatus: int) -> None:
    """Everything ran (or collection failed); ``session.execution`` holds the results, if any ran.

    Not called when the session ended with a usage error (nothing ran; the error is reported in one line).

    :param session: the session.
    :param exitstatus: the exit code the run will have (0 passed, 1 failed, 2 interrupted, 5 nothing ran).

    Called in the controller, for every entry point. ``machinable_conf.py``: yes.
    """


# -- the ``machinable`` command ------------------------------------------------------------------------------------
# Called by the command line only (never inside ml.execute). Built-in plugins such as select, terminal, junitxml
# and cacheprovider implement them, and so may machinable_conf.py and outside plugins.


@hookspec
def machinable_addoption(parser: argparse.ArgumentParser) -> None:
    """Add command line options: ``parser.add_argument('--my-option', ...)`` (``argparse``).

    Called once, before the command line is parsed. The values are on ``config.option``
    (``config.option.my_option``). ``parser.add_argument_group(title)`` keeps a plugin's options together.

    :param parser: the parser of a normal run.

    Called in the controller by the command only. ``machinable_conf.py``: yes (it is registered before options are added).
    """


@hookspec
def machinable_subcommands(subparsers: Any) -> None:
    """Add a sub-command, ``machinable NAME ...``, instead of a normal run.

    ``sub = subparsers.add_parser('show', help=...)``, add its arguments, and ``sub.set_defaults(run=function)``
    where ``function(config) -> int`` returns the exit code. A first argument that names a sub-command
    dispatches to it; anything else is a normal run (``machinable -- show`` collects a target named ``show``).

    :param subparsers: an ``argparse`` sub-parsers action.

    Called in the controller by the command only. ``machinable_conf.py``: yes.
    """


@hookspec
def machinable_configure(config: Config) -> None:
    """The command line is parsed: ``config.option``, ``config.pm``, ``config.root`` are set.

    Plugins register helper objects here (``config.pm.register(reporter, 'terminalreporter')``), so that they
    take part in the command and never inside ``ml.execute``.

    :param config: the parsed options and the plugin manager.

    Called in the controller by the command only. ``machinable_conf.py``: yes.
    """


@hookspec
def machinable_unconfigure(config: Config) -> None:
    """The command ends (also after an error); undo what ``machinable_configure`` did.

    :param config: the parsed options and the plugin manager.

    Called in the controller by the command only. ``machinable_conf.py``: yes.
    """


@hookspec
def machinable_report_header(config: Config) -> str | list[str] | None:
    """Lines for the header of the terminal report, after the ``machinable x.y, python ...`` line.

    :param config: the command's options.

    Called in the controller by the terminal reporter. ``machinable_conf.py``: yes.
    """


@hookspec
def machinable_report_collectionfinish(config: Config, items: list[TrialSpec]) -> str | list[str] | None:
    """Lines shown after the ``collected N trials`` line (e.g. ``run-last-failure: ...``).

    :param config: the command's options.
    :param items: the selected trials.

    Called in the controller by the terminal reporter. ``machinable_conf.py``: yes.
    """


@hookspec
def machinable_terminal_summary(reporter: TerminalReporter, exitstatus: int, config: Config) -> None:
    """Add sections to the end of the terminal report: ``reporter.section('title')``, ``reporter.line(text)``.

    :param reporter: the terminal reporter.
    :param exitstatus: the exit code the run will have.
    :param config: the command's options.

    Called in the controller by the terminal reporter. ``machinable_conf.py``: yes.
    """
