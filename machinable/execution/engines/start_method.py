"""How the ``process`` engine starts its workers: forked when that is safe, from a fork server when it is not.

A forked worker inherits everything (specs, components defined in ``__main__`` or inside functions) and starts in
milliseconds, but a process whose OpenMP pool has run (torch, scikit-learn, a local run of a trial that used them)
cannot be forked safely: the worker deadlocks the first time it enters that pool (libgomp has no fork handler),
and CUDA cannot be used again in a child forked after it started. So the default, ``auto``, forks unless this
process has loaded an OpenMP runtime and runs threads it did not start through Python, or has started CUDA; then
workers come from multiprocessing's fork server: a fresh interpreter, started once per controller, with machinable
and the numerical libraries the controller imported already imported, from which each worker is forked (Python
3.14 made ``forkserver`` Linux's default for this reason). OpenBLAS's own threads (numpy) are safe to fork: it
stops them around a fork. Workers are reused for many trials either way.
"""

from __future__ import annotations

import os
import pickle
import sys
import threading
import types
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING

from machinable.errors import UsageError
from machinable.trials import TrialSpec

if TYPE_CHECKING:
    from multiprocessing.context import BaseContext

AUTO = "auto"
# Imported once by the fork server, so that the workers it forks start with them; preload.py adds the modules of
# _LIBRARIES the controller imported (importing them starts no pool).
_PRELOAD = [
    "machinable.execution.engines.process_worker",
    "machinable.execution.protocol",
    "machinable.execution.engines.preload",
]
_LIBRARIES = ("numpy", "scipy", "sklearn", "torch", "pandas")
VARIABLE = "MACHINABLE_PRELOAD"  # their names, for preload.py
_OPENMP = ("libgomp", "libomp", "libiomp")


def native_threads() -> int | None:
    """Threads of this process that Python did not start (OpenMP, BLAS, CUDA or Ray pools); None where unknown."""
    try:
        return len(os.listdir("/proc/self/task")) - threading.active_count()
    except OSError:
        return None


def _unsafe_to_fork(threads: int) -> bool:
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_initialized():
        return True
    if threads <= 0:
        return False
    try:
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as maps:
            return any(name in line for line in maps for name in _OPENMP)
    except OSError:
        return True


def check(method: str | None) -> str:
    """The ``start_method`` option: ``auto`` (default) or one of the platform's multiprocessing start methods."""
    import multiprocessing

    methods = multiprocessing.get_all_start_methods()
    if method is None:
        return AUTO
    if method != AUTO and method not in methods:
        raise UsageError(
            f"engine 'process': start_method '{method}' is not available here; use auto or one of {', '.join(methods)}"
        )
    return method


def choose(method: str, specs: Iterable[TrialSpec]) -> str:
    """The start method for this run: ``method`` unless it is ``auto`` (see the module's docstring)."""
    import multiprocessing

    if method != AUTO:
        return method
    methods = multiprocessing.get_all_start_methods()
    threads = native_threads()
    if "fork" in methods and threads is not None and not _unsafe_to_fork(threads):
        return "fork"
    fresh = "forkserver" if "forkserver" in methods else "spawn"
    stuck = next((s for s in specs if not _sendable(s)), None)
    if stuck is None or "fork" not in methods:
        return fresh
    print(
        "machinable: engine 'process' forks its workers although this process runs an OpenMP pool (or started "
        f"CUDA): component '{stuck.component}' cannot be sent to a fresh worker "
        "(it is defined inside a function or in __main__). Forked workers can hang inside those "
        "pools; define the component in a module, or set OMP_NUM_THREADS=1 before they start.",
        file=sys.stderr,
    )
    return "fork"


def _sendable(spec: TrialSpec) -> bool:
    """Whether a worker started from a fresh interpreter can have the spec's component."""
    target = spec.target
    if target is None:
        return True  # imported by name
    if _in_main(spec):
        return False  # a notebook's or `python -c`'s __main__ is nowhere else; a script's would run again
    try:
        pickle.dumps(target)
    except Exception:
        return False
    return True


def _in_main(spec: TrialSpec) -> bool:
    return getattr(spec.target, "__module__", None) == "__main__"


class Launcher:
    """How one pool starts its workers, decided once for the pool: the start method (:func:`choose`), its
    multiprocessing context, and what a worker that is not forked gets."""

    def __init__(self, option: str, specs: Sequence[TrialSpec]) -> None:
        import multiprocessing

        self.method = choose(option, specs)
        self.forked = self.method == "fork"  # forked workers already hold every spec
        self.context: BaseContext = multiprocessing.get_context(self.method)
        if self.method == "forkserver":
            self.context.set_forkserver_preload(_PRELOAD)
        # A worker that is not forked would run the user's script again (multiprocessing imports __main__'s file
        # in it, and a script without an `if __name__ == "__main__":` guard would start another execution): it
        # gets no __main__ unless a component comes from there.
        self._hide_main = not self.forked and not any(_in_main(spec) for spec in specs)
        self._preload = "" if self.forked else ",".join(_imported_libraries())

    @contextmanager
    def starting(self) -> Iterator[None]:
        """Around starting a worker."""
        if self.forked:
            yield
            return
        main = sys.modules["__main__"]
        if self._hide_main:
            sys.modules["__main__"] = types.ModuleType("__main__")
        # Read by preload.py if this start starts the fork server (its environment is this process's now).
        os.environ[VARIABLE] = self._preload
        try:
            yield
        finally:
            sys.modules["__main__"] = main
            del os.environ[VARIABLE]


def _imported_libraries() -> list[str]:
    """The controller's modules of _LIBRARIES, in the order they were imported (plain ones: compiled parts are
    imported by their packages)."""
    return [
        name
        for name, module in list(sys.modules.items())
        if name.split(".")[0] in _LIBRARIES and str(getattr(module, "__file__", "")).endswith(".py")
    ]
