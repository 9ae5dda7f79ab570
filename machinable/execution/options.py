"""``Config``: the options of one run and the plugin manager, handed to hooks; ``ExitCode``: how a run ends.

The command line fills ``Config.option`` from its arguments; ``ml.execute``, ``resume``, ``reproduce`` and the
determinism check fill it from :func:`run_options`, so that every plugin reads the same option names whichever
entry point started the run.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pluggy

    from machinable.collection.cache import Cache


class ExitCode:
    """pytest's exit codes."""

    OK = 0
    TESTS_FAILED = 1
    INTERRUPTED = 2
    INTERNAL_ERROR = 3
    USAGE_ERROR = 4
    NO_TRIALS_COLLECTED = 5


@dataclass
class Config:
    """The options of a run and the plugin manager, handed to every hook that takes ``config``."""

    option: argparse.Namespace
    pm: pluggy.PluginManager
    root: Path | None  # the project root; None only for sub-commands run outside a project
    args: list[str] = field(default_factory=list)  # the command line as given ([] outside the command)
    invocation_dir: Path = field(default_factory=Path.cwd)
    cache: Cache | None = None  # set by the cacheprovider plugin
    stash: dict[str, Any] = field(default_factory=dict)  # plugins keep their state here

    def getoption(self, name: str, default: Any = None) -> Any:
        return getattr(self.option, name, default)


# The options of a run that the pipeline itself reads, with the command's defaults.
RUN_DEFAULTS: dict[str, Any] = {
    "targets": [],
    "overrides": [],
    "cfg": False,
    "keyword": "",
    "collect_only": False,
    "json": False,
    "maxfail": None,
    "seed": None,
    "storage": None,
    "repeat": 1,
    "engine": None,
    "timeout": None,
    "echo": True,
    "continue_on_collection_errors": False,
    "needed": False,
}


def run_options(**values: Any) -> argparse.Namespace:
    """The options of a run outside the command line: the defaults above, updated by ``values``."""
    return argparse.Namespace(**{**RUN_DEFAULTS, **values})
