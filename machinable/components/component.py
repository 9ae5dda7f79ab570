"""Components: classes with life-cycle events, or plain functions whose parameters are fixtures.

The runner (``machinable.execution.protocol``) drives the events in this order::

    on_seeding -> on_create -> [on_restore(path)] -> on_execute -> on_execute_iteration(0, 1, ...)
    -> on_after_execute -> on_success | on_failure(exception) -> on_finish -> on_destroy

``on_restore`` runs only in a trial resumed from a checkpoint; ``on_save(path)`` whenever a checkpoint is saved
(``save_checkpoint()``, or the trial is preempted). Every event is optional.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, TypeVar, overload

from machinable.components.seeding import seed_libraries
from machinable.errors import MachinableError, UsageError

if TYPE_CHECKING:
    import logging

    from machinable.config.view import ConfigView
    from machinable.storage import Record, TrialWriter

F = TypeVar("F", bound=Callable[..., Any])


class FlagError(MachinableError, KeyError, AttributeError):
    """A flag that is not set: a KeyError for ``flags.get`` and ``flags['X']``, an AttributeError for
    ``hasattr(flags, 'X')`` and ``getattr(flags, 'X', default)``."""

    def __str__(self) -> str:
        return str(self.args[0])


#: The flags machinable sets on every trial; a task cannot set them.
RESERVED_FLAGS = ("SEED", "EXECUTION_ID", "TRIAL_ID", "NODE_ID", "COMPONENT", "REPEAT_NUMBER", "REPEAT_TOTAL")


class Flags(Mapping[str, Any]):
    """A trial's flags: ``flags.SEED`` and ``flags['SEED']`` both work.

    machinable's own flags are UPPERCASE (``SEED``, ``EXECUTION_ID``, ``TRIAL_ID``, ``NODE_ID``, ``COMPONENT``,
    ``REPEAT_NUMBER``, ``REPEAT_TOTAL``); users add their own with ``Task.component(..., flags={...})``.
    """

    __slots__ = ("_data",)

    def __init__(self, data: Mapping[str, Any] | None = None) -> None:
        object.__setattr__(self, "_data", dict(data or {}))

    def __getitem__(self, key: str) -> Any:
        try:
            return self._data[key]
        except KeyError:
            raise FlagError(
                f"flag '{key}' is not set; flags that exist: {', '.join(sorted(self._data)) or 'none'}"
            ) from None

    def __getattr__(self, key: str) -> Any:
        if key.startswith("__") or key == "_data":
            # Python's protocol probes, and '_data' before __init__ ran (copy and pickle build empty objects).
            raise AttributeError(key)
        return self[key]

    def __reduce__(self) -> tuple[Any, ...]:
        return (Flags, (self._data,))

    def __setattr__(self, key: str, value: Any) -> None:
        self._data[key] = value

    def __setitem__(self, key: str, value: Any) -> None:
        self._data[key] = value

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __repr__(self) -> str:
        return f"Flags({self._data!r})"

    def to_dict(self) -> dict[str, Any]:
        return dict(self._data)


class Component:
    """Base class of class components. Override any of the ``on_*`` events.

    Inside a running trial: ``self.config`` (attribute and item access), ``self.flags``, ``self.seed``,
    ``self.record`` (default record scope), ``self.log`` (a ``logging.Logger``), ``self.store(name, value)``,
    ``self.storage`` (the trial's storage writer), ``self.local_directory()`` (a local folder kept with the trial),
    ``self.record_writer(scope)`` for more record scopes and ``self.save_checkpoint()`` (``on_save`` /
    ``on_restore``: docs/components.md, checkpoints and preemption).
    Set ``__machinable_collect__ = False`` on a class to keep it out of collection (abstract bases, mixins).
    """

    __machinable_component__ = True
    # Defaults for every trial of this component; a task's .component(..., timeout=, resources=) wins.
    trial_timeout: float | None = None  # seconds
    trial_resources: Mapping[str, Any] | None = None  # e.g. {"num_gpus": 1} for the ray engine
    # True or 'warn': torch's deterministic mode (components/seeding.py); None: the project's settings decide.
    trial_deterministic: bool | str | None = None

    config: ConfigView
    flags: Flags
    seed: int
    record: Record
    log: logging.Logger
    storage: TrialWriter | None
    # Kept by the runner while the trial runs: its checkpoints (execution/checkpoints.py), the iteration running
    # and the one a checkpoint taken now goes on with in a resumed trial (None once the iterations are over).
    _checkpoints: Any = None
    _iteration: int | None = None
    _next_iteration: int | None = 0

    def __init__(
        self, config: Mapping[str, Any] | None = None, flags: Mapping[str, Any] | None = None
    ) -> None:
        from machinable.config.view import ConfigView

        self.config = config if isinstance(config, ConfigView) else ConfigView(dict(config or {}))
        self.flags = flags if isinstance(flags, Flags) else Flags(flags)
        self.seed = int(self.flags.get("SEED", 0))
        self.storage = None
        self._records: dict[str, Record] = {}

    # -- helpers available in events ---------------------------------------------------------------------------
    def store(self, name: str, value: Any, overwrite: bool = False) -> None:
        """Keep ``value`` with the trial: ``.json/.txt/.pkl/.pt/.pth/.npy/.npz`` names become files under store/,
        others keys of store.json (which refuses arrays and tensors)."""
        if self.storage is None:
            raise MachinableError("store() is only available while the component runs as a trial")
        self.storage.store(name, value, overwrite=overwrite)

    def local_directory(self, path: str = "") -> str:
        """A local folder for files that libraries write themselves (``path``: a folder inside it, created). Its
        files are kept with the trial under store/ and listed by ``trial.store``: on a local disk it is that
        folder, elsewhere a temporary one copied into storage at checkpoints and when the trial ends."""
        if self.storage is None:
            raise MachinableError("local_directory() is only available while the component runs as a trial")
        from machinable.storage.local_directory import local_directory

        return local_directory(self.storage, path)

    def record_writer(self, scope: str = "default") -> Record:
        """The record of ``scope`` (``self.record`` is ``record_writer('default')``)."""
        from machinable.storage import Record

        if scope not in self._records:
            self._records[scope] = Record(self.storage.record_writer(scope) if self.storage else None)
        return self._records[scope]

    def save_checkpoint(self) -> str:
        """Save a checkpoint now: the rows being filled are saved, ``on_save(path)`` writes the component's state
        into a new folder ``path``, and the checkpoint is complete once machinable has written its marker there.
        A resumed trial continues from the latest complete one. Returns the checkpoint's folder in storage."""
        if self._checkpoints is None:
            raise MachinableError("save_checkpoint() is only available while the component runs as a trial")
        return self._checkpoints.save(self)

    # -- life-cycle events ----------------------------------------------------------------------------------------
    def on_seeding(self) -> None:
        """Seed ``random``, numpy and torch now, or as the trial imports them; override to take control."""
        seed_libraries(self.seed)

    def on_create(self) -> None:
        """The component is built and seeded; set up models and data here."""

    def on_save(self, path: str) -> None:
        """Write the state a resumed trial needs into the local folder ``path`` (``save_checkpoint()``, and when
        the trial is preempted or times out). Without it, a preempted trial saves no checkpoint."""

    def on_restore(self, path: str) -> None:
        """A resumed trial continues from a checkpoint: read back what ``on_save`` wrote into ``path`` (after
        on_create, before on_execute; ``path`` is for reading only)."""

    def on_execute(self) -> Any:
        """The main work of the trial."""

    def on_execute_iteration(self, iteration: int) -> Any:
        """Called with 0, 1, 2 ... until it raises StopIteration or returns False, if overridden."""
        raise StopIteration

    def on_after_execute(self) -> None:
        """Execution (and iterations) ended without an exception."""

    def on_success(self) -> None:
        """The trial passed."""

    def on_failure(self, exception: BaseException) -> None:
        """The trial raised ``exception``; it is still reported as failed."""

    def on_finish(self) -> None:
        """After success or failure."""

    def on_destroy(self) -> None:
        """Last event: release resources."""


def check_timeout(timeout: Any, where: str = "timeout") -> None:
    """A trial timeout is None or a positive, finite number of seconds."""
    if timeout is not None and (
        isinstance(timeout, bool)
        or not isinstance(timeout, int | float)
        or not 0 < timeout < math.inf  # also refuses nan
    ):
        raise UsageError(f"{where} must be a positive number of seconds, not {timeout!r}")


@overload
def component(func: F) -> F: ...
@overload
def component(
    *,
    name: str | None = None,
    config: Mapping[str, Any] | None = None,
    timeout: float | None = None,
    resources: Mapping[str, Any] | None = None,
    deterministic: bool | str | None = None,
) -> Callable[[F], F]: ...


def component(
    func: F | None = None,
    *,
    name: str | None = None,
    config: Mapping[str, Any] | None = None,
    timeout: float | None = None,
    resources: Mapping[str, Any] | None = None,
    deterministic: bool | str | None = None,
) -> F | Callable[[F], F]:
    """Mark a plain function as a component; its parameters are fixtures injected by name.

    ``name`` registers it under another name; ``config`` gives its default configuration; ``timeout`` (seconds),
    ``resources`` and ``deterministic`` are defaults for its trials, like ``Component.trial_timeout`` /
    ``trial_resources`` / ``trial_deterministic``.
    """
    check_timeout(timeout, "component timeout")

    def mark(f: F) -> F:
        f.__machinable_component__ = True  # type: ignore[attr-defined]
        f.__machinable_name__ = name or f.__name__  # type: ignore[attr-defined]
        f.__machinable_config__ = dict(config or {})  # type: ignore[attr-defined]
        f.trial_timeout = timeout  # type: ignore[attr-defined]
        f.trial_resources = dict(resources) if resources else None  # type: ignore[attr-defined]
        f.trial_deterministic = deterministic  # type: ignore[attr-defined]
        return f

    return mark(func) if func is not None else mark


def is_component_class(obj: Any) -> bool:
    return isinstance(obj, type) and issubclass(obj, Component)


def is_component(obj: Any) -> bool:
    return is_component_class(obj) or (
        callable(obj) and getattr(obj, "__machinable_component__", False) is True
    )
