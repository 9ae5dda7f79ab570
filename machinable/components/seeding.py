"""Library seeding, whenever a library is imported, and torch's opt-in deterministic mode.

``seed_libraries(seed)`` is the one place that decides what gets seeded: ``random``, and each library of
``LIBRARIES`` that is imported. Inside a trial (``TrialSeeding``, entered by the trial protocol) a library that is
first imported later in the trial is seeded with the same seed right after its module ran, by an import hook that
is in ``sys.meta_path`` only while the trial runs: a trial gets the same numbers whether its worker imported numpy
before it or the trial imports it inside ``on_create``. The hook costs a trial one dictionary look-up per module
it imports, and it is not installed at all once every library is imported.

A deterministic trial (``settings: deterministic:`` or a component's ``trial_deterministic``) gets
``CUBLAS_WORKSPACE_CONFIG`` from its start, and ``torch.use_deterministic_algorithms`` and cuDNN's deterministic
mode as soon as torch is imported (never importing it); all of them are put back when the trial ends, so that a
reused worker does not pass them on to the next trial.
"""

from __future__ import annotations

import os
import random
import sys
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from importlib.abc import Loader
    from importlib.machinery import ModuleSpec


def _seed_numpy(numpy: Any, seed: int) -> None:
    numpy.random.seed(seed % 2**32)  # the legacy global RandomState takes 32 bits


def _seed_torch(torch: Any, seed: int) -> None:
    torch.manual_seed(seed)  # CPU and every CUDA device


#: What machinable seeds besides ``random``: top-level module name -> how to seed it.
LIBRARIES: dict[str, Callable[[Any, int], None]] = {"numpy": _seed_numpy, "torch": _seed_torch}
#: cuBLAS reads it when CUDA starts; without it, deterministic algorithms refuse cuBLAS operations on CUDA >= 10.2.
CUBLAS_WORKSPACE = ("CUBLAS_WORKSPACE_CONFIG", ":4096:8")


class TrialSeeding:
    """The scope of one trial (``with TrialSeeding(spec.deterministic):``, entered by the trial protocol): the seed
    of its ``seed_libraries`` call, which libraries imported later in the trial get too, and its deterministic mode
    (False, True, or 'warn': ``warn_only``). On leaving, the import hook is gone and every flag is back.

    A class rather than a generator-based context manager: every trial enters it, and a class costs a third.
    """

    def __init__(self, deterministic: bool | str = False) -> None:
        self.seed: int | None = None
        self.deterministic = deterministic
        self._restore: list[Callable[[], None]] = []
        self._previous: TrialSeeding | None = None
        self._installed = False

    def __enter__(self) -> TrialSeeding:
        global _active
        self._previous, _active = _active, self
        # Nothing to wait for once every library is imported; a trial nested in a trial (ml.execute inside a
        # component) finds the hook already there.
        self._installed = _HOOK not in sys.meta_path and not sys.modules.keys() >= LIBRARIES.keys()
        if self._installed:
            sys.meta_path.insert(0, _HOOK)
        if self.deterministic:
            try:
                self._deterministic()
            except BaseException:
                self.__exit__()
                raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        global _active
        _active = self._previous
        if self._installed and _HOOK in sys.meta_path:
            sys.meta_path.remove(_HOOK)
        while self._restore:
            self._restore.pop()()

    def imported(self, name: str, module: ModuleType) -> None:
        """``name`` was imported in the trial: make it deterministic (torch) and seed it."""
        if name == "torch" and self.deterministic:
            self._torch_deterministic(module)
        if self.seed is not None:
            LIBRARIES[name](module, self.seed)

    def _deterministic(self) -> None:
        # The cuBLAS workspace before torch (and with it CUDA) may start; torch's flags now if it is imported.
        name, value = CUBLAS_WORKSPACE
        if name not in os.environ:  # a value the user chose is theirs
            os.environ[name] = value
            self._restore.append(lambda: os.environ.pop(name, None))
        if "torch" in sys.modules:
            self._torch_deterministic(sys.modules["torch"])

    def _torch_deterministic(self, torch: Any) -> None:
        cudnn = torch.backends.cudnn
        before = (
            torch.are_deterministic_algorithms_enabled(),
            torch.is_deterministic_algorithms_warn_only_enabled(),
            cudnn.deterministic,
            cudnn.benchmark,
        )
        self._restore.append(lambda: _torch_flags(torch, *before))
        _torch_flags(torch, True, self.deterministic == "warn", True, False)


def _torch_flags(torch: Any, algorithms: bool, warn_only: bool, cudnn: bool, benchmark: bool) -> None:
    torch.use_deterministic_algorithms(algorithms, warn_only=warn_only)
    torch.backends.cudnn.deterministic = cudnn
    torch.backends.cudnn.benchmark = benchmark


# The trial running in this process: trials run one at a time per process.
_active: TrialSeeding | None = None


def seed_libraries(seed: int) -> None:
    """Seed ``random`` and the imported libraries of ``LIBRARIES`` (numpy's global RandomState, torch) with
    ``seed``; inside a trial, also those the trial imports later.

    Nothing is imported here: a trial that never uses numpy or torch does not pay their import time.
    """
    random.seed(seed)
    for name, seed_library in LIBRARIES.items():
        module = sys.modules.get(name)
        if module is not None:
            seed_library(module, seed)
    if _active is not None:
        _active.seed = seed


class _SeedAfterImport:
    """The real loader of a library, followed by ``imported``."""

    def __init__(self, loader: Loader) -> None:
        self.loader = loader

    def create_module(self, spec: ModuleSpec) -> ModuleType | None:
        return self.loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        # The library's own code (and anything that reads __spec__.loader later, like importlib.resources) sees
        # its real loader.
        module.__loader__ = self.loader
        if module.__spec__ is not None:
            module.__spec__.loader = self.loader
        self.loader.exec_module(module)
        if _active is not None:
            _active.imported(module.__name__, module)


class _ImportHook:
    """Finds a library of ``LIBRARIES`` through the other finders and wraps its loader."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if fullname not in LIBRARIES:
            return None
        for finder in sys.meta_path:
            find = getattr(finder, "find_spec", None)
            if finder is self or find is None:
                continue
            spec = find(fullname, path, target)
            if spec is not None:
                if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                    spec.loader = _SeedAfterImport(spec.loader)
                return spec
        return None


_HOOK = _ImportHook()
