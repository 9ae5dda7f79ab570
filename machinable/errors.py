"""machinable's own exceptions.

Every error a user can cause derives from :class:`MachinableError` and carries one readable message; the
command line prints that message (never a traceback of our internals) and exits non-zero.
"""

from __future__ import annotations

import signal
from collections.abc import Iterable


class MachinableError(Exception):
    """Base class of every error that machinable raises on purpose."""


class UsageError(MachinableError):
    """Bad input from the command line or a public call (exit code 4)."""


class ConfigError(MachinableError):
    """A problem in machinable.yaml, a version or a configuration lookup."""


class UnknownComponentError(ConfigError):
    """A component name that is not registered."""


class UnknownVersionError(ConfigError):
    """A `~version` or `_mixin_` that does not exist."""


class CollectionError(MachinableError):
    """A project module, task file or fixture that cannot be collected."""


class StorageError(MachinableError):
    """A malformed storage URL, a refused store name, or unreadable stored data."""


class SeedError(UsageError):
    """A seed that is neither an integer nor an execution id."""


class TrialTimeout(MachinableError):
    """A trial ran longer than its timeout."""


class TrialPreempted(KeyboardInterrupt):
    """A warning signal (SIGTERM; what a scheduler sends before it stops a job) told the running trial to stop.

    machinable saves a checkpoint (if the component implements ``on_save``) and ends the trial ``preempted``; a
    later ``resume`` continues from that checkpoint. A KeyboardInterrupt rather than an Exception: a component's
    ``except Exception`` does not swallow it, and the execution stops on it as on Ctrl-C.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum

    def __str__(self) -> str:
        return f"preempted by {signal_name(self.signum)}"


def signal_name(signum: int) -> str:
    """``SIGTERM`` for 15; 'unknown signal' for a number this platform has no name for."""
    try:
        return signal.Signals(signum).name
    except ValueError:
        return "unknown signal"


def did_you_mean(name: str, candidates: Iterable[str]) -> str:
    """Return ' (did you mean 'x'?)' for the closest candidate, or '' when nothing is close."""
    import difflib  # only on the error path: keeps `import machinable` fast

    matches = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    return f" (did you mean '{matches[0]}'?)" if matches else ""
