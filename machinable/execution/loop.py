"""The built-in plugin ``runtrials``: the run loop of a session (like pytest's ``pytest_runtestloop``).

It opens the session's destination (the execution record), announces the execution, hands the selected trials
to the engine, reports every result as it arrives (``machinable_trial_result``), stops early on ``-x`` /
``--maxfail``, keeps every finished result on Ctrl-C, and closes the execution. Engines run each trial through
``machinable_trial_protocol`` where the trial runs; when a plugin implements ``machinable_trial_progress``,
they also hand the running trials' record rows back (``RunContext.progress``), and the loop fires the hook.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace
from typing import TYPE_CHECKING

from machinable.errors import TrialPreempted
from machinable.hookspec import hookimpl
from machinable.storage.identities import write_identities
from machinable.storage.index import result_entry
from machinable.text import plural

if TYPE_CHECKING:
    from typing import Any

    from machinable.execution.executions import Execution
    from machinable.execution.session import Session
    from machinable.storage import ExecutionWriter
    from machinable.trials import TrialResult, TrialSpec


@hookimpl(trylast=True)
def machinable_runtrials(session: Session) -> bool:
    from machinable.execution.capture import preemptible
    from machinable.execution.engines.base import Detached, RunContext

    assert session.engine is not None and session.location is not None
    option = session.config.option
    # Before the plan is stored: resume and reproduce run the stored specs, so they must carry the timeout.
    session.items = with_default_timeout(session.items, option.timeout)
    execution, writer = session.destination.open(session)
    session.execution = execution
    specs = session.items
    session.pm.hook.machinable_execution_start(session=session, execution=execution, specs=specs)
    # Only when a plugin wants them do workers send record rows at all.
    progress = _Progress(session, execution) if _wants_progress(session) else None
    context = RunContext(
        execution.id,
        session.location,
        writer,
        list(session.fixtures.values()),
        echo=bool(option.echo),
        timeout=option.timeout,
        pm=session.pm,
        progress=progress,
    )
    order = {uid: i for i, uid in enumerate([*(r.uid for r in session.cached), *(s.uid for s in specs)])}
    try:
        with preemptible():  # SIGTERM stops the run as Ctrl-C does; its running trials are preempted
            stream = session.engine.run(specs, context)
            if session.cached:  # known without running (--needed): reported first
                stream = _chained(session.cached, stream)
            _consume(session, execution, writer, stream, progress)
    except Detached as detached:
        execution.detached = str(detached)
    finally:
        # Results are appended as they end and put in plan order once: sorting after every trial would make
        # long executions quadratic.
        execution.trials.sort(key=lambda t: order.get(t.uid, -1))
        if execution.detached is None:  # a detached execution ends when its last trial does
            execution.finished = time.time()
            writer.write_execution({"finished": execution.finished, "interrupted": execution.interrupted})
            if session.kind == "run":
                write_identities(writer, execution.id, execution.started, execution.trials)
        writer.close_index()
        session.destination.close(session)
        session.pm.hook.machinable_execution_finish(session=session, execution=execution)
    return True


def _chained(first: list[TrialResult], stream: Iterator[TrialResult]) -> Iterator[TrialResult]:
    """``first``, then what ``stream`` yields; ``throw`` and ``close`` (StopExecution, Ctrl-C) reach the engine."""
    yield from first
    yield from stream


def with_default_timeout(specs: list[TrialSpec], timeout: float | None) -> list[TrialSpec]:
    """``specs``, each with the execution's default ``timeout`` when it has none of its own."""
    if timeout is None:
        return specs
    return [spec if spec.timeout is not None else replace(spec, timeout=timeout) for spec in specs]


def _wants_progress(session: Session) -> bool:
    return bool(session.pm.hook.machinable_trial_progress.get_hookimpls())


class _Progress:
    """``RunContext.progress``: fires ``machinable_trial_progress`` for a row of a trial that is still running
    (a row that arrives after the trial's result is dropped)."""

    def __init__(self, session: Session, execution: Execution) -> None:
        self.session, self.execution = session, execution
        self.hook = session.pm.hook.machinable_trial_progress
        self.running = {s.uid: s for s in session.items}

    def __call__(self, uid: str, row: dict[str, Any]) -> None:
        spec = self.running.get(uid)
        if spec is not None:
            self.hook(session=self.session, execution=self.execution, spec=spec, row=row)


def _consume(
    session: Session,
    execution: Execution,
    writer: ExecutionWriter,
    stream: Iterator[TrialResult],
    progress: _Progress | None = None,
) -> None:
    """Report each result of ``stream``; Ctrl-C marks the execution interrupted and keeps what finished, and so
    does a warning signal (TrialPreempted), whose running trials the engine preempts and hands over."""

    def report(result: TrialResult) -> None:
        if progress is not None:
            progress.running.pop(result.uid, None)
        if result.files is not None:  # a worker's memory-storage files come into this process's storage
            writer.import_trial(result.uid, result.files)
            result.files = None
        writer.add_to_index(result_entry(result))
        execution.attach(result)
        execution.trials.append(result)
        if not result.passed:
            session.failures += 1
        session.pm.hook.machinable_trial_result(session=session, execution=execution, result=result)
        for listener in session.listeners:
            listener(result)

    try:
        for result in stream:
            report(result)
            if _should_stop(session):
                from machinable.execution.engines.base import StopExecution

                # The engine ends the trials still running and hands their results over, so the report and
                # the Execution show them as interrupted instead of leaving them only in storage.
                for late in _stopped(stream, StopExecution()):
                    report(late)
                break
    except KeyboardInterrupt as exc:
        execution.interrupted = True
        partial = getattr(exc, "result", None)
        if partial is not None:
            report(partial)
        if isinstance(exc, TrialPreempted):
            session.shouldstop = f"{exc}: the execution stopped"
            for late in _stopped(stream, exc):
                report(late)
    finally:
        close = getattr(stream, "close", None)
        if close is not None:
            close()


def _should_stop(session: Session) -> bool:
    maxfail = session.config.option.maxfail
    if maxfail and session.failures >= maxfail:
        session.shouldstop = f"stopping after {plural(session.failures, 'failure')}"
        return True
    return False


def _stopped(stream: Iterator[TrialResult], stop: BaseException) -> Iterator[TrialResult]:
    """The results an engine hands over when ``stop`` is thrown into it: ``StopExecution`` (an early stop), or
    the TrialPreempted this process received (the engine preempts its running trials and raises it again)."""
    throw = getattr(stream, "throw", None)
    if throw is None:
        return
    try:
        yield throw(stop)
        yield from stream
    except (type(stop), StopIteration):
        return
