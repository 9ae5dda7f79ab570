"""What the sub-commands for stored executions share: which storage (``--storage``, else the last run's, else
the project's settings), which execution (an id, ``last`` or ``--lf``), and opening it; a mistake is one
UsageError line (exit 4).
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from machinable.collection.cacheprovider import last_execution
from machinable.config.settings import default
from machinable.errors import StorageError, UsageError

if TYPE_CHECKING:
    from machinable.execution.engines.base import Engine
    from machinable.execution.options import Config


def tolerance(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a non-negative number, got {text!r}")
    return value


def storage_options(sub: argparse.ArgumentParser, with_id: str, color: bool = True) -> None:
    """ID and --storage; --color unless the sub-command takes the run's reporting options (``color=False``)."""
    nargs = "?" if with_id == "optional" else None
    sub.add_argument(
        "id", nargs=nargs, metavar="ID", help="the execution id (e.g. OY1p1o); 'last': the last run's"
    )
    sub.add_argument(
        "--storage",
        metavar="URL",
        help="where the execution is stored: a path or fsspec URL (default: the last run's storage, if on disk)",
    )
    if color:
        sub.add_argument("--color", choices=("auto", "yes", "no"), default="auto", help="colour the output")


def storage_url(config: Config) -> str:
    """``--storage``, else where the last run of the project kept its results, else ``MACHINABLE_STORAGE`` or the
    project's ``settings: storage:``."""
    given = config.option.storage
    if given:
        return given
    remembered = last_execution(config).get("storage")
    if isinstance(remembered, str) and remembered and not remembered.startswith("memory://"):
        return remembered
    configured = default(project_settings(config), "storage", None)
    if isinstance(configured, str) and configured:
        return configured
    raise UsageError("--storage URL is required (no earlier run of this project kept its results on disk)")


def project_settings(config: Config) -> dict[str, Any]:
    if config.root is None:
        return {}
    from machinable.config.project import Project

    return Project(config.root).settings


def execution_id(config: Config) -> str:
    given = config.option.id
    if getattr(config.option, "resume_last", False):
        if given not in (None, "last"):
            raise UsageError(f"give an execution id ({given}) or --lf (the last execution), not both")
        given = "last"
    if given is None:
        raise UsageError("an execution ID is required (or --lf for the last execution)")
    return resolve_id(config, given)


def project_option(config: Config) -> str | None:
    # Only an explicit --project overrides the execution's own project folder (see replay.stored.project_root).
    return config.option.project


def check_arguments(config: Config, keyword: str | None = None) -> Engine:
    """The engine, after the usage errors (a bad -k expression, an unknown engine) that must come before any
    report line is printed."""
    from machinable.collection.expression import Expression
    from machinable.execution.engines.base import make_engine

    Expression.compile(keyword or "")
    return make_engine(config.option.engine, config.pm)


def open_execution(config: Config) -> Any:
    """The stored execution named on the command line (UsageError naming a few ids when there is none)."""
    return get_execution(open_results_storage(config), execution_id(config))


def resolve_id(config: Config, given: str) -> str:
    """An execution id as given, or the last run's for 'last'."""
    if given != "last":
        return given
    remembered = last_execution(config).get("id")
    if not isinstance(remembered, str):
        raise UsageError("'last': no previous execution is recorded in .machinable_cache")
    return remembered


def open_results_storage(config: Config) -> Any:
    from machinable.storage import Storage

    try:
        return Storage(storage_url(config))
    except StorageError as exc:
        raise UsageError(str(exc)) from None


def get_execution(storage: Any, execution_id: str) -> Any:
    try:
        return storage.get(execution_id)
    except StorageError as exc:
        raise UsageError(str(exc)) from None
