"""A normal run of the command: the options become a session (seed, storage, engine, targets), and it runs.

Everything the user can get wrong on the command line (seed, storage URL, engine, targets) is checked before
the first trial runs and raised as a :class:`UsageError` naming the option (exit code 4).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from machinable import ids
from machinable.config.overrides import is_override, parse_overrides, yaml_value
from machinable.config.settings import default
from machinable.errors import SeedError, StorageError, UsageError

if TYPE_CHECKING:
    from machinable.execution.options import Config
    from machinable.execution.session import Session


def run_session(config: Config) -> int:
    """Run the command's session and return the exit code; usage errors propagate (the caller prints them)."""
    return build_session(config).main()


def build_session(config: Config) -> Session:
    from machinable.collection.stage import ProjectSource
    from machinable.config.project import Project
    from machinable.execution.destinations import NewExecution
    from machinable.execution.engines.base import make_engine
    from machinable.execution.session import Session
    from machinable.mode import is_dev
    from machinable.storage import open_storage

    option = config.option
    if getattr(option, "json", False) and not (option.collect_only or option.cfg):
        # A run reports on the terminal, in --junitxml and in storage; JSON describes the collection only.
        raise UsageError("--json only works with --collect-only or --cfg (machinable --collect-only --json)")
    project = Project(config.root)
    targets, overrides = split_arguments(option.targets, config.invocation_dir)
    option.targets, option.overrides = targets, overrides
    parsed = parse_overrides(overrides)  # a malformed override is a usage error before anything is collected
    settings = project.settings
    option.storage = default(settings, "storage", option.storage)
    option.timeout = default(settings, "timeout", option.timeout)
    try:
        execution_id = ids.execution_id(default(settings, "seed", option.seed))
    except SeedError as exc:
        raise UsageError(f"--seed takes an integer, an execution id or 'last': {exc}") from None
    engine = make_engine(engine_choice(settings, option), config.pm)
    dev = is_dev()
    try:
        location = open_storage(None if dev else option.storage, dev_mode=dev)
        if not (option.collect_only or option.cfg):  # only a run writes to storage
            location.check_writable()
    except StorageError as exc:
        raise UsageError(f"--storage {option.storage}: {exc}") from None
    source = ProjectSource(targets, config.invocation_dir, repeat=option.repeat, overrides=parsed)
    return Session(config, source, NewExecution()).configure(project, execution_id, engine, location)


def engine_choice(settings: Any, option: Any) -> Any:
    """The engine and its options: ``--engine`` (or MACHINABLE_ENGINE, or ``settings: engine:``), with the
    setting's options when it names the same engine, then ``-E key=value``, ``--detach`` and ``--requeue``."""
    from machinable.execution.engines.base import parse_engine

    name, options = parse_engine(default(settings, "engine", option.engine))
    configured = settings.get("engine")
    if option.engine is not None and configured is not None:
        configured_name, configured_options = parse_engine(configured)
        if configured_name == name:
            options = {**configured_options, **options}
    for item in option.engine_options:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"-E/--engine-option takes KEY=VALUE (e.g. -E partition=gpu), not '{item}'")
        options[key.strip()] = yaml_value(value, f"-E {item}")
    if option.detach:
        options["detach"] = True
    if option.requeue:
        options["requeue"] = option.requeue
    if (option.detach or option.requeue) and name in ("local", "process", "ray"):
        flag = "--detach" if option.detach else "--requeue"
        raise UsageError(f"{flag} needs an engine that runs trials without this process (--engine slurm)")
    return {"type": name, **options}


def split_arguments(args: list[str], invocation_dir: Path) -> tuple[list[str], list[str]]:
    """(targets, overrides): an argument is an override when it reads as one (``key=value``, ``+key=value``,
    ``~key``) and is not an existing path."""
    targets, overrides = [], []
    for arg in args:
        is_path = (invocation_dir / arg).exists() if "=" in arg or arg.startswith("~") else False
        (overrides if is_override(arg) and not is_path else targets).append(arg)
    return targets, overrides
