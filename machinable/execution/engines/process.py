"""The ``process`` engine: a pool of long-lived worker processes, one trial at a time each.

``engine='process:4'`` or ``{'type': 'process', 'workers': 4}`` (default: one worker per CPU). Each worker is
started once per execution and runs trial after trial (a trial costs a message each way over a pipe, not a
process start). Workers are isolated from each other and from the controller:

* a trial that kills its worker (segfault, ``os._exit``, SIGKILL, the OOM killer) ends as ``crashed`` with the
  cause ("worker process died with signal 11 (SIGSEGV)" and, for fatal signals, the Python traceback that
  ``faulthandler`` wrote); the controller writes its status and starts a replacement worker;
* a trial past its timeout gets ``TrialTimeout`` raised inside it (it fails like any exception: teardown runs,
  records are kept); if it does not stop within ``kill_grace`` seconds, its worker is killed and replaced;
* Ctrl-C (or the controller closing the run early, e.g. ``-x``) interrupts the running trials (SIGUSR1 becomes
  KeyboardInterrupt inside them), waits briefly for them to write their ``interrupted`` status, then kills;
* SIGTERM to a worker preempts its trial (``preempted``), and the worker goes on; SIGTERM to the controller is
  forwarded to the running trials (``PREEMPT_GRACE`` seconds to save a checkpoint) and stops the execution.

Workers are forked while the controller runs no native thread pool, and started from a fork server once it does
(an OpenMP pool that ran in the controller deadlocks forked workers): ``start_method.py``. ``start_method='fork'``,
``'forkserver'`` or ``'spawn'`` choose one. Workers not forked get their specs pickled: their components must be
importable by name or defined at the top of a ``__main__`` file guarded by ``if __name__ == "__main__":``.

Each trial gets a share of the machine (``placement.py``): a thread budget of the CPUs over the workers (or its
``resources`` CPUs) unless the user set ``OMP_NUM_THREADS`` & co., and, when it asks for GPUs
(``resources={'gpu': 1}``), its own devices out of ``gpus`` (default: the controller's ``CUDA_VISIBLE_DEVICES``,
else what ``nvidia-smi -L`` lists); a trial waits until enough devices are free, and others see none. A worker's
CUDA devices cannot change once CUDA started in it, so a worker whose next trial needs other devices is replaced.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from machinable.errors import TrialPreempted, UsageError
from machinable.execution.engines import crash_files
from machinable.execution.engines import start_method as start_method_of
from machinable.execution.engines.base import Engine, RunContext, StopExecution, check_workers
from machinable.execution.engines.process_worker import Surroundings, worker_main
from machinable.execution.engines.worker import (
    INTERRUPT_SIGNAL,
    WorkerContext,
    death_cause,
    keep_unreported,
    lost_result,
    timeout_error,
)
from machinable.execution.placement import (
    Placement,
    Shares,
    machine_cpus,
    visible_gpus,
)
from machinable.hookspec import hookimpl
from machinable.trials import TrialResult, TrialSpec

if TYPE_CHECKING:
    from multiprocessing.connection import Connection

# multiprocessing and faulthandler are imported when the engine runs: building the plugin manager (every
# command line start) imports this module.

# seconds running trials get to record their interruption before their workers are killed
INTERRUPT_GRACE = 2.0
# seconds running trials get to save a checkpoint when the controller is preempted (Slurm's default KillWait:
# after that the scheduler kills everything anyway)
PREEMPT_GRACE = 30.0
# seconds idle workers get to tear their session fixtures down at the end
STOP_GRACE = 5.0


class ProcessEngine(Engine):
    """Runs trials in ``workers`` long-lived worker processes."""

    name = "process"

    def __init__(
        self,
        workers: int | None = None,
        start_method: str | None = None,
        kill_grace: float = 1.0,
        gpus: int | str | list[Any] | None = None,
    ):
        check_workers("process", workers)
        if not isinstance(kill_grace, int | float) or kill_grace < 0:
            raise UsageError(f"engine 'process': kill_grace must be a number of seconds, not {kill_grace!r}")
        self.workers = workers or machine_cpus()
        self.start_method = start_method_of.check(start_method)
        self.kill_grace = float(kill_grace)
        self.gpus = gpus
        if gpus is not None:
            visible_gpus(
                gpus
            )  # checked now; the devices of the machine are looked up when a trial asks for GPUs

    def describe(self) -> str:
        return f"process:{self.workers}"

    def run(self, specs: list[TrialSpec], context: RunContext) -> Iterator[TrialResult]:
        specs = [context.with_timeout(s) for s in specs]
        if not specs:
            return iter(())
        crash_files.remove_orphans()  # of controllers killed together with their workers
        return _Pool(self, specs, context).run()


@dataclass
class _Slot:
    """One worker process and the trial it runs (if any)."""

    process: Any
    conn: Connection
    crash_file: str
    spec: TrialSpec | None = None
    started: float = 0.0
    deadline: float | None = None  # when the worker is killed if the trial has not stopped
    devices: tuple[str, ...] | None = None  # the GPUs this worker's trials see (fixed once CUDA started)

    @property
    def busy(self) -> bool:
        return self.spec is not None


class _Pool:
    def __init__(self, engine: ProcessEngine, specs: list[TrialSpec], context: RunContext) -> None:
        self.engine = engine
        self.specs = specs
        self.context = context
        self.launch = start_method_of.Launcher(engine.start_method, specs)
        self.shares = Shares(specs, min(engine.workers, len(specs)), engine.gpus)
        self.worker_context = WorkerContext.of(context)
        self.slots: list[_Slot] = []
        self.late: list[TrialResult] = []  # results of the trials a Ctrl-C ended, not yet reported

    # -- the controller's loop -----------------------------------------------------------------------------------
    def run(self) -> Iterator[TrialResult]:
        from multiprocessing.connection import wait

        pending = deque(range(len(self.specs)))
        try:
            for _ in range(min(self.engine.workers, len(self.specs))):
                self.slots.append(self._start())
            while True:
                for i, slot in enumerate(self.slots):
                    picked = self.shares.pick(pending, slot.devices) if not slot.busy else None
                    if picked is None:
                        continue
                    index, devices = picked
                    # died while idle (killed from outside), or its CUDA may hold other devices
                    if not slot.process.is_alive() or slot.devices not in (None, devices):
                        self._retire(slot)
                        slot = self.slots[i] = self._start()
                    self._assign(slot, index, devices)
                busy = [s for s in self.slots if s.busy]
                if not busy:
                    return
                deadlines = [s.deadline for s in busy if s.deadline is not None]
                timeout = max(0.0, min(deadlines) - time.time()) if deadlines else None
                ready = set(wait([s.conn for s in busy] + [s.process.sentinel for s in busy], timeout))
                for slot in busy:
                    if slot.conn in ready or slot.process.sentinel in ready:
                        result = self._collect(slot)
                        if result is not None:
                            yield result
                    elif slot.deadline is not None and time.time() >= slot.deadline:
                        yield self._expire(slot)
        except (KeyboardInterrupt, StopExecution) as exc:
            # Ctrl-C while we wait for workers, or the controller stopping early: the trials that were running
            # end now (interrupted, or finished within the grace time) and are reported like every other result
            # before the interrupt goes on. A TrialPreempted's signal is forwarded to the trials.
            self.late = self._shutdown(getattr(exc, "signum", None))
            while self.late:
                yield self.late.pop(0)
            if isinstance(exc, KeyboardInterrupt):
                raise
        finally:
            # Also reached when the consumer stops early (-x) or was itself interrupted: nobody takes results
            # any more, so the trials' files are kept in storage only.
            for result in [*self.late, *self._shutdown()]:
                keep_unreported(result, self.context)

    def _assign(self, slot: _Slot, index: int, devices: tuple[str, ...] | None) -> None:
        spec = self.specs[index]
        slot.spec, slot.started, slot.devices = spec, time.time(), devices
        slot.deadline = slot.started + spec.timeout + self.engine.kill_grace if spec.timeout else None
        placement = Placement(self.shares.threads(spec), devices)
        try:
            slot.conn.send((index if self.launch.forked else spec, placement))
        except (BrokenPipeError, ConnectionResetError, EOFError):
            pass  # the worker is dead: its sentinel reports it as the trial's crash
        except Exception as exc:  # the spec cannot be pickled for a worker that was not forked
            self._free(slot)
            raise UsageError(
                f"trial {spec.node_id} cannot be sent to a '{self.launch.method}' worker process: "
                f"{type(exc).__name__}: {exc}; define the component at module level (or use start_method='fork')"
            ) from None

    def _free(self, slot: _Slot) -> None:
        """The slot's trial ended: its GPUs are free for the next trial."""
        if slot.spec is not None:
            self.shares.give_back(slot.devices)
        slot.spec = slot.deadline = None

    def _collect(self, slot: _Slot) -> TrialResult | None:
        """The result the worker sent, None while its trial runs on (it sent progress rows, handed on here), or
        a ``crashed`` result if it died without sending one."""
        spec = slot.spec
        assert spec is not None
        while True:
            try:
                ready = slot.conn.poll()
                if not ready and slot.process.is_alive():
                    return None
                if not ready and not slot.conn.poll():  # dead; a last message may have come meanwhile
                    break
                message = slot.conn.recv()
            except (EOFError, OSError):
                break
            if isinstance(message, tuple):  # ("progress", uid, row)
                if self.context.progress is not None:
                    self.context.progress(message[1], message[2])
                continue
            self._free(slot)
            return message
        slot.process.join(1.0)
        error = death_cause(slot.process.exitcode) + crash_files.fatal_traceback(slot.crash_file)
        self._replace(slot)
        return lost_result(spec, self.context, "crashed", error, slot.started)

    def _expire(self, slot: _Slot) -> TrialResult:
        spec = slot.spec
        assert spec is not None and spec.timeout is not None
        slot.process.kill()
        slot.process.join(5.0)
        self._replace(slot)
        return lost_result(spec, self.context, "failed", timeout_error(spec.timeout), slot.started)

    # -- workers -------------------------------------------------------------------------------------------------
    def _start(self) -> _Slot:
        crash_file = crash_files.create()
        ours, theirs = self.launch.context.Pipe()
        # A forked worker inherits the controller's end of its own pipe and of every other worker's: it closes
        # them, so that its sends fail (and it stops) when the controller dies instead of blocking forever.
        inherited = [ours, *(s.conn for s in self.slots)] if self.launch.forked else []
        process = self.launch.context.Process(
            target=worker_main,
            args=(
                theirs,
                self.specs if self.launch.forked else (),
                self.worker_context,
                crash_file,
                self.context.progress is not None,
                inherited,
                None if self.launch.forked else Surroundings(),
                self.engine.kill_grace,
            ),
            name="machinable-worker",
            daemon=False,  # trials may start processes of their own (data loaders): daemons may not
        )
        try:
            with self.launch.starting():
                process.start()
        except Exception as exc:
            crash_files.remove(crash_file)
            raise UsageError(
                f"engine 'process' cannot start a '{self.launch.method}' worker: {type(exc).__name__}: {exc}"
            ) from None
        theirs.close()
        return _Slot(process, ours, crash_file)

    def _replace(self, slot: _Slot) -> None:
        """Retire a dead or killed worker; a new one takes its place when there is work for it."""
        self._retire(slot)
        i = self.slots.index(slot)
        self.slots[i] = _Slot(_Dead(), slot.conn, "")

    def _retire(self, slot: _Slot) -> None:
        self._free(slot)
        with contextlib.suppress(OSError):
            slot.conn.close()
        if slot.process.is_alive():
            slot.process.kill()
        slot.process.join(5.0)
        crash_files.remove(slot.crash_file)

    def _shutdown(self, preempted: int | None = None) -> list[TrialResult]:
        """Stop every worker; running trials (Ctrl-C, or the consumer stopped early) are interrupted, or get the
        warning signal ``preempted`` that the controller received.

        Returns their results: what a worker sent within the grace time, else an ``interrupted`` (``preempted``)
        result whose status the controller wrote. Empty when the pool is already shut down.
        """
        slots = [s for s in self.slots if not isinstance(s.process, _Dead)]
        running = [s for s in slots if s.busy]
        for slot in running:
            _signal(slot.process, preempted or INTERRUPT_SIGNAL)
        _stop_idle(slots)
        results = _answers(running, PREEMPT_GRACE if preempted else INTERRUPT_GRACE)
        _stop_idle(running)  # the worker of a preempted trial goes on, waiting for the next one
        status, error = "interrupted", "the execution was interrupted"
        if preempted:
            status, error = "preempted", f"{TrialPreempted(preempted)}; no answer in {PREEMPT_GRACE:g} s"
        for slot in running:
            if slot.spec is not None:
                results.append(lost_result(slot.spec, self.context, status, error, slot.started))
        until = time.time() + STOP_GRACE
        for slot in slots:
            slot.process.join(max(0.0, until - time.time()) if not slot.busy else 0.1)
            if slot.process.is_alive():
                _signal(slot.process, INTERRUPT_SIGNAL)
                slot.process.join(1.0)
            if slot.process.is_alive():
                slot.process.kill()
                slot.process.join(1.0)
            slot.spec = None
            with contextlib.suppress(OSError):
                slot.conn.close()
            crash_files.remove(slot.crash_file)
        self.slots = []
        return results


def _stop_idle(slots: list[_Slot]) -> None:
    for slot in slots:
        if not slot.busy:
            with contextlib.suppress(OSError):
                slot.conn.send(None)  # done: tear session fixtures down and exit


def _answers(running: list[_Slot], seconds: float) -> list[TrialResult]:
    """The results the workers of ``running`` send within ``seconds``; their slots are freed."""
    from multiprocessing.connection import wait

    results: list[TrialResult] = []
    until = time.time() + seconds
    waiting = {s.conn: s for s in running}
    while waiting and time.time() < until:
        for conn in wait(list(waiting), max(0.0, until - time.time())):
            try:
                message = conn.recv()  # type: ignore[union-attr]
            except (EOFError, OSError):
                waiting.pop(conn)  # type: ignore[arg-type]
                continue
            if isinstance(message, tuple):
                continue  # a progress row: the result comes next
            waiting.pop(conn).spec = None  # type: ignore[arg-type]
            results.append(message)
    return results


def _signal(process: Any, signum: int) -> None:
    """Send ``signum`` to a worker that has not ended (unreaped, its pid cannot have been reused)."""
    if process.exitcode is None:
        with contextlib.suppress(OSError):
            os.kill(process.pid, signum)


class _Dead:
    """Stands in for a worker that was retired until a new one is needed."""

    sentinel = None
    exitcode = None

    def is_alive(self) -> bool:
        return False

    def join(self, timeout: float | None = None) -> None:
        pass

    def kill(self) -> None:
        pass


@hookimpl
def machinable_engines() -> dict[str, Any]:
    return {"process": ProcessEngine}
