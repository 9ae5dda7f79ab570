"""The built-in plugin ``protocol``: one trial from storage to status, the same on every engine.

storage -> fixtures -> component events -> teardown -> status. It implements ``machinable_trial_protocol``,
which engines call where the trial runs (this process, a worker process, a Ray worker), so a plugin can wrap or
replace it. ``run_trial`` never raises for a failing trial: the failure is recorded and returned. Only
KeyboardInterrupt (after the trial is marked ``interrupted``) and TrialPreempted (a warning signal such as SIGTERM:
the trial saved a checkpoint if it can and is marked ``preempted``) propagate, carrying the result as ``.result``,
so that the execution (or a worker) can stop cleanly.
"""

from __future__ import annotations

import inspect
import logging
import os
import shutil
import socket
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from machinable.components.component import Component, Flags, is_component_class
from machinable.components.fixtures import FixtureManager
from machinable.components.seeding import TrialSeeding, seed_libraries
from machinable.config.importing import Targets, import_attribute
from machinable.errors import TrialPreempted, TrialTimeout
from machinable.execution.capture import (
    WARNING_SIGNALS,
    Deadline,
    captured_output,
    deadline,
    preemptible,
    trial_logger,
    warnings_held,
)
from machinable.execution.checkpoints import TrialCheckpoints, ended_by
from machinable.execution.executed_code import executed_code
from machinable.execution.placement import observed
from machinable.hookspec import hookimpl
from machinable.storage.local_directory import close_local_directory, local_directory
from machinable.trials import TrialResult, TrialSpec

if TYPE_CHECKING:
    from machinable.storage import ExecutionWriter, Record, TrialWriter

HOST = socket.gethostname()
_LOG_FORMAT = logging.Formatter("%(asctime)s %(levelname)s %(message)s")
# Seconds between two progress rows of one trial: at most ~4 a second reach the controller.
PROGRESS_INTERVAL = 0.25

# ``progress(uid, row)``: a running trial saved ``row`` (see machinable_trial_progress)
Progress = Callable[[str, dict[str, Any]], None]


@dataclass
class TrialContext:
    """What a worker holds for the trials it runs (one per process)."""

    execution_id: str
    writer: ExecutionWriter
    fixtures: FixtureManager = field(default_factory=FixtureManager)
    echo: bool = True  # show the trial's stdout/stderr and log on the console as well as storing them
    ship_files: bool = False  # return the trial's folder with the result (memory storage in another process)
    targets: Targets = field(default_factory=dict)
    # where saved record rows go while the trial runs (throttled); None: nowhere (no plugin wants them)
    progress: Progress | None = None
    # the signals that preempt a running trial (TrialPreempted inside it); the Slurm worker adds its --signal
    warning_signals: tuple[int, ...] = WARNING_SIGNALS


class _Throttled:
    """A trial's record observer: hands the row being saved to ``progress(uid, row)`` when the last row it
    handed on is at least ``PROGRESS_INTERVAL`` old, so the rows passed on are always the latest at the time;
    rows in between are skipped (the stored records are complete)."""

    __slots__ = ("progress", "uid", "last")

    def __init__(self, progress: Progress, uid: str) -> None:
        self.progress: Progress | None = progress
        self.uid = uid
        self.last = float("-inf")

    def __call__(self, row: dict[str, Any]) -> None:
        now = time.monotonic()
        if self.progress is None or now - self.last < PROGRESS_INTERVAL:
            return
        self.last = now
        try:
            self.progress(self.uid, row)
        except Exception as exc:  # showing progress must never fail the trial: stop showing it
            self.progress = None
            print(
                f"machinable: progress of trial {self.uid} not shown: {type(exc).__name__}: {exc}",
                file=sys.stderr,
            )


def load_target(spec: TrialSpec, cache: Targets | None = None) -> Any:
    """The component class or function of ``spec``; ``cache`` saves the import machinery per trial."""
    if spec.target is not None:
        return spec.target
    return import_attribute(
        spec.project_root, spec.module, spec.attribute, f"component '{spec.component}'", cache
    )


def _run_iterations(component: Component) -> None:
    """``on_execute_iteration`` from ``_next_iteration`` on: 0, or after a resumed trial's checkpoint."""
    iteration = component._next_iteration
    if iteration is None or type(component).on_execute_iteration is Component.on_execute_iteration:
        return
    while True:
        # A checkpoint taken now (save_checkpoint(), a preemption) covers this iteration: a trial resumed from it
        # goes on with the next one.
        component._iteration, component._next_iteration = iteration, iteration + 1
        try:
            result = component.on_execute_iteration(iteration)
        except StopIteration:
            result = False
        except BaseException:
            component._iteration = None
            component.record.save(_iteration=iteration)  # what the failing iteration recorded is its row
            raise
        with warnings_held():
            component._iteration = None
            component.record.save(_iteration=iteration)
        if result is False:
            # Over: a trial resumed from a checkpoint taken after this does not start them again.
            component._next_iteration = None
            return
        iteration += 1


def _run_class(
    cls: type[Component], spec: TrialSpec, flags: Flags, tw: TrialWriter, record: Record, targets: Targets
) -> None:
    component = cls(spec.config, flags)
    component.seed = spec.seed
    component.storage = tw
    component.log = trial_logger
    component._records["default"] = record
    component.record = record
    component._checkpoints = checkpoints = TrialCheckpoints(tw)
    _bind_mixins(component, spec, targets)
    if spec.checkpoint is not None:
        checkpoints.reload(component, spec.checkpoint)
    try:
        try:
            component.on_seeding()
            component.on_create()
            if spec.checkpoint is not None:
                checkpoints.restore(component, spec.checkpoint)
            checkpoints.executing = True
            component.on_execute()
            _run_iterations(component)
            component.on_after_execute()
            component.on_success()
        except TrialPreempted as exc:
            checkpoints.stopped(component, exc)
            raise
        except (Exception, SystemExit) as exc:  # sys.exit() in a component is a failure like any other
            # A timeout that saved a checkpoint is no failure: the trial ends preempted and can be resumed.
            if not (isinstance(exc, TrialTimeout) and checkpoints.stopped(component, exc)):
                component.on_failure(exc)
            raise
        finally:
            component.on_finish()
    finally:
        try:
            component.on_destroy()
        finally:
            # Keep a row the component filled but never saved, also when on_destroy itself raised.
            for rec in component._records.values():
                rec.save()


def _bind_mixins(component: Component, spec: TrialSpec, targets: Targets) -> None:
    for name, module, attribute in spec.mixins:
        mixin = import_attribute(spec.project_root, module, attribute, f"component '{name}'", targets)
        setattr(component, f"_{name}_", _MixinBinding(component, mixin))


class _MixinBinding:
    """``self._<mixin>_.method()`` calls the mixin's method with the component as ``self``."""

    def __init__(self, component: Component, mixin: type) -> None:
        self._component, self._mixin = component, mixin

    def __getattr__(self, name: str) -> Any:
        value = inspect.getattr_static(self._mixin, name)
        if isinstance(value, staticmethod | classmethod):
            return getattr(self._mixin, name)
        if callable(value):
            return value.__get__(self._component, type(self._component))
        return value


def _run_function(
    func: Callable[..., Any],
    spec: TrialSpec,
    flags: Flags,
    tw: TrialWriter,
    record: Record,
    fixtures: FixtureManager,
) -> None:
    from machinable.config.view import ConfigView

    tmp: list[str] = []

    def tmp_path() -> Path:
        tmp.append(tempfile.mkdtemp(prefix=f"machinable-{spec.uid}-"))
        return Path(tmp[-1])

    builtins: dict[str, Callable[[], Any]] = {
        "config": lambda: ConfigView(spec.config),
        "seed": lambda: spec.seed,
        "flags": lambda: flags,
        "record": lambda: record,
        "log": lambda: trial_logger,
        "store": lambda: tw.store,
        "storage": lambda: tw,
        "local_directory": lambda: local_directory(tw),
        "tmp_path": tmp_path,
    }
    teardown: list[Any] = []
    try:
        try:
            seed_libraries(spec.seed)
            positional, keywords = fixtures.arguments(inspect.signature(func), builtins, teardown)
            result = func(*positional, **keywords)
            if isinstance(result, dict):
                record.update(result)
            record.save()
        except BaseException as exc:
            # The trial's own error is the one to report; a teardown error is only noted on it.
            try:
                fixtures.finish(teardown)
            except Exception as failed:
                note = getattr(exc, "add_note", None)
                if note is not None:
                    note(f"fixture teardown failed too: {type(failed).__name__}: {failed}")
            raise
        fixtures.finish(teardown)
    finally:
        for path in tmp:
            shutil.rmtree(path, ignore_errors=True)


def trial_flags(spec: TrialSpec, execution_id: str) -> dict[str, Any]:
    """The user's flags of ``spec`` plus machinable's own (``SEED``, ``EXECUTION_ID``, ``TRIAL_ID`` ...)."""
    return {
        **spec.flags,
        "SEED": spec.seed,
        "EXECUTION_ID": execution_id,
        "TRIAL_ID": spec.uid,
        "NODE_ID": spec.node_id,
        "COMPONENT": spec.component,
        "REPEAT_NUMBER": spec.repeat_number,
        "REPEAT_TOTAL": spec.repeat_total,
    }


def _begin(spec: TrialSpec, env: TrialContext) -> tuple[TrialWriter, float]:
    """The trial's writer and start time: its start status written (outcome 'running', started, pid, host, and
    in a resumed trial the checkpoint it restores) and its heartbeat on."""
    tw = env.writer.trial(spec.uid)
    started = time.time()
    more: dict[str, Any] = {"restored": spec.checkpoint} if spec.checkpoint is not None else {}
    placement = observed()  # the threads and GPUs its engine gave it
    if placement:
        more["placement"] = placement
    tw.begin(
        spec.trial_info(env.execution_id),
        outcome="running",
        started=started,
        pid=os.getpid(),
        host=HOST,
        **more,
    )
    tw.start_heartbeat()
    return tw, started


@contextmanager
def _local_directory_kept(tw: TrialWriter) -> Iterator[None]:
    """The trial's local directory (storage/local_directory.py) is copied into its storage when it ends, whatever
    its outcome, before its files are shipped; the warning signals wait meanwhile, so no preemption cuts the copy
    short."""
    try:
        yield
    except BaseException as exc:
        try:
            with warnings_held():
                close_local_directory(tw)
        except Exception as failed:  # the trial's own error is the one to report
            exc.add_note(f"its local directory was not copied: {type(failed).__name__}: {failed}")
        raise
    with warnings_held():
        close_local_directory(tw)


def _past_deadline(timer: Deadline | None, status: str, error: str | None) -> tuple[str, str | None]:
    """A trial that caught its TrialTimeout and returned later is past its deadline: it fails all the same."""
    if timer is not None and timer.expired and status == "passed":
        return "failed", f"{timer.error()} (the trial caught the timeout and ran on until it returned)"
    return status, error


def run_trial(spec: TrialSpec, env: TrialContext) -> TrialResult:
    """Run one trial to its end and return its result; its records and status are in storage."""
    from machinable.storage import Record

    tw, started = _begin(spec, env)
    flags = Flags(trial_flags(spec, env.execution_id))
    observer = _Throttled(env.progress, spec.uid) if env.progress is not None else None
    record = Record(tw.record_writer("default"), observer)
    status, error = "passed", None
    interrupted: BaseException | None = None
    timer = measured = None
    try:
        with (
            captured_output(tw, env.echo),
            deadline(spec.timeout) as timer,
            preemptible(env.warning_signals),
            TrialSeeding(spec.deterministic),  # numpy / torch imported in the trial are seeded too
            _local_directory_kept(tw),
            executed_code(spec) as measured,
        ):
            target = load_target(spec, env.targets)
            if is_component_class(target):
                _run_class(target, spec, flags, tw, record, env.targets)
            else:
                _run_function(target, spec, flags, tw, record, env.fixtures)
    except TrialPreempted as exc:
        (status, error), interrupted = ended_by(exc), exc
    except KeyboardInterrupt as exc:
        status, error, interrupted = "interrupted", "KeyboardInterrupt: the execution was interrupted", exc
    except BaseException as exc:  # SystemExit too: a trial calling sys.exit() fails alone
        status, error = ended_by(exc)
    status, error = _past_deadline(timer, status, error)
    finished = time.time()
    tw.stop_heartbeat()
    tw.write_status(outcome=status, finished=finished, error=error)
    tw.close()
    # A trial that did not pass carries what it printed and logged, for reports (which never read storage).
    output, log = tw.captured() if status != "passed" else ("", "")
    result = TrialResult.of(
        spec,
        status,
        error,
        output=output,
        log=log,
        records=record.rows,
        started=started,
        finished=finished,
        flags=flags.to_dict(),
        files=tw.export(remove=True) if env.ship_files else None,  # shipped: the worker keeps no copy
        code=measured.code if measured is not None else spec.code,
    )
    if interrupted is not None:
        interrupted.result = result  # type: ignore[attr-defined]
        raise interrupted
    return result


@hookimpl(trylast=True)
def machinable_trial_protocol(spec: TrialSpec, context: TrialContext) -> TrialResult:
    return run_trial(spec, context)
