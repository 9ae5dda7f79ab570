"""The engine interface and the choice of an engine from what the user wrote."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from machinable.errors import UsageError, did_you_mean

if TYPE_CHECKING:
    import pluggy

    from machinable.components.fixtures import FixtureDef, FixtureManager
    from machinable.execution.protocol import Progress, TrialContext
    from machinable.storage import ExecutionWriter, StorageLocation
    from machinable.trials import TrialResult, TrialSpec


@dataclass
class RunContext:
    """What every engine needs besides the specs."""

    execution_id: str
    location: StorageLocation
    writer: ExecutionWriter
    fixtures: list[FixtureDef] = field(default_factory=list)
    echo: bool = True
    timeout: float | None = None  # default per-trial timeout of the execution
    # the session's plugin manager: engines run each trial through its machinable_trial_protocol hook, here
    # or (by the plugins' names, see machinable.plugins.plugin_refs) in their workers
    pm: pluggy.PluginManager | None = None
    # ``progress(uid, row)``: called in this process with a running trial's saved record rows (throttled: at
    # most ~4 a second per trial), or None when no plugin wants them; engines whose trials run elsewhere
    # send the rows here (see machinable_trial_progress)
    progress: Progress | None = None

    def trial_context(self, fixtures: FixtureManager, ship_files: bool = False) -> TrialContext:
        """What the trial protocol of this process needs (the local engine's; workers build their own)."""
        from machinable.execution.protocol import TrialContext

        return TrialContext(
            self.execution_id,
            self.writer,
            fixtures,
            echo=self.echo,
            ship_files=ship_files,
            progress=self.progress,
        )

    def with_timeout(self, spec: TrialSpec) -> TrialSpec:
        """``spec`` with the execution's default timeout when it has none of its own."""
        if spec.timeout is None and self.timeout is not None:
            return replace(spec, timeout=self.timeout)
        return spec


class StopExecution(Exception):
    """Thrown into an engine's ``run()`` generator when the controller stops early (``-x``, ``--maxfail``).

    The engine starts no further trial, ends the running ones (``interrupted``), yields their results and
    returns. An engine that does not catch it simply ends: nothing of its was running (the local engine).
    """


class Detached(Exception):
    """Raised by an engine's ``run()`` when the trials go on without the controller (``--detach``): the
    execution is left open in storage (no ``finished``), and the message says how to follow it."""


class Engine:
    """Runs trial specs and yields their results as they end (in any order)."""

    name = "engine"

    def run(self, specs: list[TrialSpec], context: RunContext) -> Iterator[TrialResult]:
        raise NotImplementedError  # an abstract method: every engine defines it

    def describe(self) -> str:
        return self.name


def check_workers(engine: str, workers: Any) -> None:
    """``workers`` of an engine's options: ``None`` (the engine's default) or a positive integer."""
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise UsageError(f"engine '{engine}': workers must be a positive number, not {workers!r}")


def parse_engine(engine: Any) -> tuple[str, dict[str, Any]]:
    """``None``, ``'local'``, ``'process:4'``, ``{'type': 'ray', 'address': ...}`` -> (name, options)."""
    if engine is None:
        return "local", {}
    if isinstance(engine, str):
        name, _, workers = engine.partition(":")
        if not workers:
            return name.strip(), {}
        if not workers.strip().isdigit() or int(workers) < 1:
            raise UsageError(f"engine '{engine}': the number after ':' must be a positive number of workers")
        return name.strip(), {"workers": int(workers)}
    if isinstance(engine, Mapping):
        options = dict(engine)
        name = options.pop("type", None)
        if not isinstance(name, str):
            raise UsageError(
                f"engine dict needs a 'type' (e.g. {{'type': 'process', 'workers': 2}}), got {engine!r}"
            )
        return name, options
    raise UsageError(f"engine must be a name, a dict or an Engine, not {type(engine).__name__}")


def make_engine(engine: Any, pm: pluggy.PluginManager) -> Engine:
    """The engine instance for what the user wrote; unknown names list the known ones."""
    if isinstance(engine, Engine):
        return engine
    name, options = parse_engine(engine)
    factories: dict[str, Any] = {}
    for provided in reversed(pm.hook.machinable_engines()):
        factories.update(provided)
    if name not in factories:
        raise UsageError(
            f"unknown engine '{name}'{did_you_mean(name, factories)}; known engines: {', '.join(sorted(factories))}"
        )
    try:
        return factories[name](**options)
    except TypeError as exc:
        raise UsageError(f"engine '{name}' does not take these options {sorted(options)}: {exc}") from None
