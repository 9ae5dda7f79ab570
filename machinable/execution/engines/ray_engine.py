"""The ``ray`` engine: every trial is a Ray task, on a local Ray or a running cluster.

``engine='ray'`` starts a local Ray (quietly: no dashboard, no log forwarding, errors only) unless Ray is
already initialized in this process (then it is used as is and never shut down by us) or ``address`` / the
``RAY_ADDRESS`` environment variable names a running cluster (``'auto'``, ``'ray://host:10001'``). A Ray this
engine started stays up for later executions in the same process; Ray shuts it down when the process exits, and
all of it goes within a second or so when the process is killed (``ray_fate.py``).

Per-trial resources come from ``Task.component(..., resources={...})``: ``num_cpus`` (default 1), ``num_gpus``,
``memory`` (bytes), ``accelerator_type``, ``scheduling_strategy``, ``runtime_env``; any other key is a custom Ray
resource (``{'TPU': 1}``). Trials are submitted as resources free up (in plan order), so a submitted trial
starts at once and its timeout counts from there.

Crashes (the worker process died) end as ``crashed``; a trial past its timeout gets ``TrialTimeout`` raised
inside it and, if it does not stop within ``kill_grace`` seconds, is cancelled with ``ray.cancel(force=True)``
(which kills its worker). SIGTERM to the Ray worker running a trial preempts it (a checkpoint, ``preempted``);
Ctrl-C, ``-x`` and SIGTERM to the controller cancel the running trials (``interrupted``). ``import ray`` happens
only when the engine runs.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from machinable.errors import TrialPreempted, UsageError
from machinable.execution.engines import ray_fate, ray_resources
from machinable.execution.engines.base import Engine, RunContext, StopExecution, check_workers
from machinable.execution.engines.ray_progress import POLL, Channel, sender
from machinable.execution.engines.worker import (
    WorkerContext,
    keep_unreported,
    lost_result,
    run,
    timeout_error,
)
from machinable.execution.placement import Placement, thread_budget
from machinable.hookspec import hookimpl
from machinable.trials import TrialResult, TrialSpec

INTERRUPT_GRACE = 2.0
# What the raylet tells the driver when a worker dies; we report such trials as crashed ourselves.
_DEATH_NOTICE = "A worker died or was killed while executing a task"


class RayEngine(Engine):
    """Runs each trial as a Ray task."""

    name = "ray"

    def __init__(
        self,
        address: str | None = None,
        num_cpus: float | None = None,
        num_gpus: float | None = None,
        workers: int | None = None,
        runtime_env: Mapping[str, Any] | None = None,
        log_to_driver: bool = False,
        kill_grace: float = 5.0,
        init: Mapping[str, Any] | None = None,
    ) -> None:
        check_workers("ray", workers)
        for key, value in (("num_cpus", num_cpus), ("num_gpus", num_gpus)):
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int | float) or value < 0
            ):
                raise UsageError(f"engine 'ray': {key} must be a non-negative number, not {value!r}")
        if address is not None and not isinstance(address, str):
            raise UsageError(
                f"engine 'ray': address must be a string ('auto', 'ray://host:10001'), not {address!r}"
            )
        self.address = address
        self.num_cpus = num_cpus
        self.num_gpus = num_gpus
        # most trials in flight at once (default: as many as the cluster's free resources fit)
        self.workers = workers
        self.runtime_env = dict(runtime_env) if runtime_env else None
        self.log_to_driver = log_to_driver
        self.kill_grace = float(kill_grace)
        self.init = dict(init or {})

    def describe(self) -> str:
        return f"ray({self.address})" if self.address else "ray"

    def run(self, specs: list[TrialSpec], context: RunContext) -> Iterator[TrialResult]:
        specs = [context.with_timeout(s) for s in specs]
        if not specs:
            return iter(())
        ray = connect(
            self.address,
            num_cpus=self.num_cpus,
            num_gpus=self.num_gpus,
            runtime_env=self.runtime_env,
            log_to_driver=self.log_to_driver,
            **self.init,
        )
        remote = _remote(ray)
        options = [ray_resources.task_options(s) for s in specs]
        for spec, opts in zip(specs, options, strict=True):
            try:
                remote.options(**opts)
            except (TypeError, ValueError) as exc:
                raise UsageError(
                    f"trial {spec.node_id}: resources {spec.resources!r} are not valid for Ray: {exc}"
                ) from None
        return self._run(ray, remote, specs, options, context)

    def _run(
        self,
        ray: Any,
        remote: Any,
        specs: list[TrialSpec],
        options: list[dict[str, Any]],
        context: RunContext,
    ) -> Iterator[TrialResult]:
        worker_context = WorkerContext.of(context)
        channel = Channel.open(ray, context.progress)  # running trials' rows, if a plugin wants them
        handle = channel.handle if channel is not None else None
        totals = ray_resources.totals(ray)
        used: dict[str, float] = {}
        pending = deque(range(len(specs)))
        flights: dict[Any, _Flight] = {}
        try:
            while pending or flights:
                while pending and (self.workers is None or len(flights) < self.workers):
                    i = pending[0]
                    need = ray_resources.demand(options[i])
                    if not ray_resources.fits(need, totals):
                        totals = ray_resources.totals(ray)  # the cluster may have grown
                        if not ray_resources.fits(need, totals):
                            pending.popleft()
                            error = f"cannot be scheduled: it needs {need} and the Ray cluster has {ray_resources.shown(totals)}"
                            yield lost_result(specs[i], context, "failed", error, None)
                            continue
                    if flights and not ray_resources.fits(need, ray_resources.free(totals, used)):
                        break
                    pending.popleft()
                    spec = specs[i]
                    ref = remote.options(name=f"machinable {spec.node_id}", **options[i]).remote(
                        spec, worker_context, handle, thread_budget(options[i]["num_cpus"])
                    )
                    started = time.time()
                    deadline = started + spec.timeout + self.kill_grace if spec.timeout else None
                    flights[ref] = _Flight(spec, need, started, deadline)
                    ray_resources.add(used, need, 1)
                if flights:
                    yield from _finished(ray, flights, used, context, channel)
                    yield from _expired(ray, flights, used, context)
        except (KeyboardInterrupt, StopExecution) as exc:
            # Ctrl-C while we wait for Ray, or the controller stopping early: the running trials end now and
            # are reported before the interrupt goes on (the finally below then has nothing left to do).
            yield from _report_stopped(ray, flights, context)
            if isinstance(exc, KeyboardInterrupt):
                raise
        finally:
            # The consumer stopped early (-x) or was interrupted itself: nobody takes these results any more.
            if flights:
                for result in _interrupt(ray, flights, context):
                    keep_unreported(result, context)
            if channel is not None:
                channel.close()


@dataclass
class _Flight:
    spec: TrialSpec
    need: dict[str, float]
    started: float
    deadline: float | None


def _finished(
    ray: Any,
    flights: dict[Any, _Flight],
    used: dict[str, float],
    context: RunContext,
    channel: Channel | None = None,
) -> Iterator[TrialResult]:
    """The trials that end within a second (a quarter with a progress channel, drained meanwhile), or before
    the next deadline: the wait is short so that new trials are submitted and timeouts enforced while long
    trials run."""
    deadlines = [f.deadline for f in flights.values() if f.deadline is not None]
    timeout = min([1.0 if channel is None else POLL, *(max(0.0, d - time.time()) for d in deadlines)])
    ready, _ = ray.wait(list(flights), num_returns=1, timeout=timeout)
    if channel is not None:
        if ready:
            channel.flush()  # the rows the finished trials sent come before their results
        else:
            channel.drain()
    for ref in ready:
        flight = flights.pop(ref)
        ray_resources.add(used, flight.need, -1)
        yield _result(ray, ref, flight, context)


def _expired(
    ray: Any, flights: dict[Any, _Flight], used: dict[str, float], context: RunContext
) -> Iterator[TrialResult]:
    """Failed results of the trials past their deadline, whose workers are killed: such a trial did not stop
    within ``kill_grace`` of the TrialTimeout raised inside it."""
    now = time.time()
    for ref, flight in list(flights.items()):
        if flight.deadline is not None and now >= flight.deadline:
            ray.cancel(ref, force=True)
            del flights[ref]
            ray_resources.add(used, flight.need, -1)
            error = timeout_error(flight.spec.timeout or 0)
            yield lost_result(flight.spec, context, "failed", error, flight.started)


def _report_stopped(ray: Any, flights: dict[Any, _Flight], context: RunContext) -> Iterator[TrialResult]:
    """The results of the running trials, stopped now (:func:`_interrupt`); ``flights`` is left empty."""
    late = _interrupt(ray, flights, context)
    flights.clear()
    try:
        while late:
            yield late.pop(0)
    finally:
        for result in late:  # the consumer stopped taking results: keep their files in storage
            keep_unreported(result, context)


def _run_trial_task(
    spec: TrialSpec, context: WorkerContext, channel: Any = None, placement: Placement | None = None
) -> TrialResult:
    """The Ray task: one trial in a Ray worker (which keeps its environment for the execution's next trials);
    its record rows go to the progress ``channel`` if there is one. SIGTERM to the worker preempts the trial
    (instead of Ray's exit): its result says so, and the worker goes on. ``placement``: its thread budget, also
    for pools that a reused worker loaded before (Ray only sets the variables)."""
    if placement is not None:
        placement.apply()
    try:
        return run(spec, context, sender(channel) if channel is not None else None)
    except TrialPreempted as exc:
        return exc.result  # type: ignore[attr-defined]


_remote_function: Any = None


def _remote(ray: Any) -> Any:
    global _remote_function
    if _remote_function is None:
        # No retries: a trial that crashed its worker must be reported, not run again.
        _remote_function = ray.remote(max_retries=0, retry_exceptions=False)(_run_trial_task)
    return _remote_function


def connect(
    address: str | None = None,
    *,
    num_cpus: float | None = None,
    num_gpus: float | None = None,
    runtime_env: Mapping[str, Any] | None = None,
    log_to_driver: bool = False,
    **init: Any,
) -> Any:
    """The ``ray`` module, connected: an initialized Ray is used as is; else a quiet local Ray is started (or
    the cluster at ``address`` / ``RAY_ADDRESS`` is joined). The test suite's session Ray is started with this."""
    try:
        import ray
    except ImportError:
        raise UsageError("engine 'ray' needs Ray: pip install 'machinable[ray]'") from None
    _quiet_worker_deaths(ray)
    if ray.is_initialized():
        return ray
    address = address or os.environ.get("RAY_ADDRESS") or "local"
    options: dict[str, Any] = {
        "address": address,
        "logging_level": logging.ERROR,
        "log_to_driver": log_to_driver,
    }
    if address == "local":
        options.update(num_cpus=num_cpus, num_gpus=num_gpus, include_dashboard=False)
    elif num_cpus is not None or num_gpus is not None:
        raise UsageError(
            f"engine 'ray': num_cpus/num_gpus size a local Ray; the running cluster at '{address}' has its own"
        )
    if runtime_env:
        options["runtime_env"] = dict(runtime_env)
    options.update(init)
    try:
        with _importable_here(address == "local"):
            context = ray.init(**options)
            if options.get("address") == "local":  # started here, not joined: it ends with this process
                ray_fate.watch(ray, context)
    except ConnectionError as exc:
        raise UsageError(f"engine 'ray': cannot connect to the Ray cluster at '{address}': {exc}") from None
    return ray


@contextlib.contextmanager
def _importable_here(local: bool) -> Iterator[None]:
    """A local Ray's workers import machinable from where this process does (also from a source checkout).

    The raylet and the workers it prestarts inherit the environment of ``ray.init``; setting PYTHONPATH there,
    rather than in a job ``runtime_env``, lets Ray use its prestarted workers instead of starting new ones.
    """
    import machinable

    home = os.path.dirname(os.path.dirname(os.path.abspath(machinable.__file__)))
    before = os.environ.get("PYTHONPATH")
    if local and home not in (before or "").split(os.pathsep):
        os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (home, before) if p)
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = before


def _quiet_worker_deaths(ray: Any) -> None:
    """Drop the raylet's "A worker died ..." notices on the driver: the trial is reported as crashed instead.

    Ray prints them from a background thread through ``ray._private.worker.print_to_stdstream`` and has no
    setting to turn them off; if Ray's internals change, the notices are simply printed again.
    """
    try:
        from ray._private import worker as ray_worker
    except ImportError:
        return
    original = getattr(ray_worker, "print_to_stdstream", None)
    if original is None or getattr(original, "__machinable__", False):
        return

    def print_to_stdstream(data: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(data, dict) and data.get("pid") == "raylet":
            lines = [line for line in data.get("lines", ()) if _DEATH_NOTICE not in str(line)]
            if not lines:
                return None
            data = {**data, "lines": lines}
        return original(data, *args, **kwargs)

    print_to_stdstream.__machinable__ = True  # type: ignore[attr-defined]
    ray_worker.print_to_stdstream = print_to_stdstream


def _result(ray: Any, ref: Any, flight: _Flight, context: RunContext) -> TrialResult:
    from ray import exceptions

    try:
        return ray.get(ref)
    except exceptions.WorkerCrashedError as exc:
        error = (
            "Ray worker process died while running the trial (a segfault, os._exit, a kill or the out-of-memory "
            f"killer): {type(exc).__name__}: {str(exc).strip()}"
        )
    except exceptions.RayTaskError as exc:
        error = f"the Ray worker could not run the trial: {exc}"
    except exceptions.RayError as exc:
        error = f"{type(exc).__name__}: {str(exc).strip()}"
    return lost_result(flight.spec, context, "crashed", error, flight.started)


def _interrupt(ray: Any, flights: dict[Any, _Flight], context: RunContext) -> list[TrialResult]:
    """Ctrl-C or an early stop: running trials get KeyboardInterrupt, then their workers are killed.

    Returns the trials' results: what a trial returned within the grace time, else an ``interrupted`` result
    whose status the controller wrote.
    """
    refs = list(flights)
    results: list[TrialResult] = []
    for ref in refs:
        ray.cancel(ref)
    ready, rest = ray.wait(refs, num_returns=len(refs), timeout=INTERRUPT_GRACE)
    for ref in rest:
        ray.cancel(ref, force=True)
    for ref in refs:
        flight = flights[ref]
        result = None
        if ref in ready:
            try:
                result = ray.get(ref, timeout=0)
            except Exception:  # cancelled: the trial did not return
                result = None
        if result is None:
            result = lost_result(
                flight.spec, context, "interrupted", "the execution was interrupted", flight.started
            )
        results.append(result)
    return results


@hookimpl
def machinable_engines() -> dict[str, Any]:
    return {"ray": RayEngine}
