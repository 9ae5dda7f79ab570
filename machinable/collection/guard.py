"""Importing a project module never runs an execution: the guard ``ml.execute`` checks first.

Collection imports modules and task files inside :func:`collecting`; ``ml.execute`` called meanwhile raises
:class:`ExecuteWhileCollecting`, which stops that module's import at the call (the guide's own example calls
``ml.execute`` at module level).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from types import ModuleType

from machinable.errors import UsageError

GUARD_HINT = 'put the call under `if __name__ == "__main__":` so that importing the file does not run it'


class ExecuteWhileCollecting(BaseException):
    """``ml.execute`` was called while a module was imported for collection; it did not run.

    A BaseException, so that a module's own ``except Exception`` cannot swallow it and run on.
    """


_collecting: ContextVar[str | None] = ContextVar("machinable_collecting", default=None)


def refuse_while_collecting() -> None:
    """Called first thing by ``ml.execute``: importing a project module must never start an execution."""
    where = _collecting.get()
    if where is not None:
        raise ExecuteWhileCollecting(f"{where} calls ml.execute() while it is imported for collection")


@contextmanager
def collecting(where: str) -> Iterator[None]:
    """While this runs, ``ml.execute`` refuses to run (``where`` names what is being imported)."""
    token = _collecting.set(where)
    try:
        yield
    finally:
        _collecting.reset(token)


def import_conf(root: str | Path) -> ModuleType | None:
    """The project's ``machinable_conf.py`` (fixtures and hooks), imported under the guard, or None."""
    from machinable.components.fixtures import CONF_MODULE, project_conf

    try:
        with collecting(f"{CONF_MODULE}.py"):
            return project_conf(root)
    except ExecuteWhileCollecting as exc:
        raise UsageError(f"{exc}: {GUARD_HINT}") from None
