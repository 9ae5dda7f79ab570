"""Importing project modules and finding the component (or mixin) object inside them."""

from __future__ import annotations

import contextlib
import importlib
import inspect
import os
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from machinable.config.errors import ComponentImportError
from machinable.errors import CollectionError, MachinableError

MARK = "__machinable_component__"


def ensure_on_path(root: Path) -> None:
    """Put the project root first on ``sys.path`` (once)."""
    entry = str(root)
    if entry not in sys.path:
        sys.path.insert(0, entry)


def module_file(root: Path, module: str) -> Path | None:
    """The project file that defines ``module`` (``a/b.py`` or ``a/b/__init__.py``), if any."""
    base = root.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return base if base.is_dir() else None


def import_module(root: Path, module: str, owner: str, *, installed: bool = False) -> ModuleType:
    """Import ``module`` from the project; failures name ``owner`` (e.g. "component 'x'") and the cause.

    The module's file must lie in the project: a name in machinable.yaml that the project has no file for must
    not import an installed module of that name (``- this: {}`` would run the standard library's ``this``).
    ``installed`` lifts that rule for an explicit alias of a dotted module path (``package.module=name``) and
    for the import target of a planned trial.
    """
    ensure_on_path(root)
    if not installed and module_file(root, module) is None:
        rel = module.replace(".", "/")
        raise ComponentImportError(
            f"{owner}: module '{module}' not found in {root} (expected {rel}.py or {rel}/__init__.py; a module "
            "of an installed package needs an alias of its dotted path: 'package.module=name')"
        )
    _forget_foreign(root, module)
    try:
        try:
            imported = importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if not _is_missing(exc, module):
                raise
            # A file written moments ago may be hidden by the import system's directory cache.
            importlib.invalidate_caches()
            imported = importlib.import_module(module)
    except MachinableError:
        raise
    except ModuleNotFoundError as exc:
        if _is_missing(exc, module):
            raise ComponentImportError(
                f"{owner}: module '{module}' not found in {root} (expected "
                f"{module.replace('.', '/')}.py or a package of that name)"
            ) from None
        raise _import_failed(owner, module, exc) from exc
    except Exception as exc:
        raise _import_failed(owner, module, exc) from exc
    if not installed:
        _check_inside(root, imported, owner)
    return imported


def _check_inside(root: Path, module: ModuleType, owner: str) -> None:
    """A built-in module (``sys``, ``time``) is found before any file on ``sys.path``: refuse it by name."""
    origin = getattr(module, "__file__", None)
    paths = [origin] if origin else [str(p) for p in getattr(module, "__path__", None) or []]
    prefix = os.path.join(str(root), "")
    real = os.path.join(os.path.realpath(root), "")
    if paths and all(p.startswith(prefix) or os.path.realpath(p).startswith(real) for p in paths):
        return
    raise ComponentImportError(
        f"{owner}: module '{module.__name__}' resolves to {origin or 'a built-in module'}, outside the project "
        f"{root}; rename the project's file"
    )


def find_component(module: ModuleType, name: str, owner: str) -> Any:
    """The component in ``module``: the attribute named ``name``, else its one component class, else its one
    marked function."""
    attribute = getattr(module, name, None)
    if callable(attribute) and not inspect.ismodule(attribute):
        return attribute
    defined = [
        value for value in vars(module).values() if getattr(value, "__module__", None) == module.__name__
    ]
    classes = [value for value in defined if inspect.isclass(value) and getattr(value, MARK, False)]
    if len(classes) == 1:
        return classes[0]
    if len(classes) > 1:
        names = ", ".join(cls.__name__ for cls in classes)
        raise ComponentImportError(
            f"{owner}: module '{module.__name__}' defines several component classes ({names}); register each "
            f"under its own name, e.g. '{module.__name__}={classes[0].__name__}'"
        )
    functions = [value for value in defined if inspect.isfunction(value) and getattr(value, MARK, False)]
    if len(functions) == 1:
        return functions[0]
    if len(functions) > 1:
        names = ", ".join(function.__name__ for function in functions)
        raise ComponentImportError(
            f"{owner}: module '{module.__name__}' defines several component functions ({names}); register "
            "each under its own name"
        )
    raise ComponentImportError(
        f"{owner}: module '{module.__name__}' has no attribute '{name}', no class deriving "
        "machinable.Component and no function decorated with @machinable.components.component"
    )


def find_mixin(module: ModuleType, name: str) -> Any:
    """The mixin class in ``module``: the attribute named ``name``, else its one class, else ``None``."""
    attribute = getattr(module, name, None)
    if inspect.isclass(attribute):
        return attribute
    classes = [
        value
        for value in vars(module).values()
        if inspect.isclass(value) and value.__module__ == module.__name__
    ]
    return classes[0] if len(classes) == 1 else None


def _is_missing(exc: ModuleNotFoundError, module: str) -> bool:
    """True when ``exc`` is about ``module`` itself (or a parent package), not about one of its imports."""
    missing = exc.name or ""
    return module == missing or module.startswith(missing + ".")


def _import_failed(owner: str, module: str, exc: BaseException) -> ComponentImportError:
    return ComponentImportError(f"{owner}: importing module '{module}' failed: {type(exc).__name__}: {exc}")


def _forget_foreign(root: Path, module: str) -> None:
    """Drop a same-named module imported from another project, so ``module`` comes from *this* root."""
    parts = module.split(".")
    prefix = os.path.join(str(root), "")
    for depth in range(1, len(parts) + 1):
        name = ".".join(parts[:depth])
        loaded = sys.modules.get(name)
        if loaded is None:
            return
        origin = getattr(loaded, "__file__", None)
        if origin is not None and origin.startswith(prefix):
            continue  # imported from this root: the common case, decided without touching the file system
        if origin is None or module_file(root, name) is None:
            return
        try:
            Path(origin).resolve().relative_to(root)
        except ValueError:
            for stale in [key for key in sys.modules if key == name or key.startswith(name + ".")]:
                del sys.modules[stale]
            return


# Imported components and mixins by (project root, module, attribute).
Targets = dict[tuple[str | None, str, str], Any]


def import_attribute(root: str | None, module: str, attribute: str, owner: str, cache: Targets | None) -> Any:
    """``module.attribute`` imported from project ``root`` (or by name when ``root`` is None); ``cache`` keeps
    what was found, so a worker pays the import machinery once per target."""
    key = (root, module, attribute)
    if cache is not None and key in cache:
        return cache[key]
    # The controller chose the module when it planned the trial (a registered target may live in an installed
    # package), so the worker imports it as named.
    target: Any = (
        import_module(Path(root), module, owner, installed=True) if root else importlib.import_module(module)
    )
    for part in attribute.split("."):
        target = getattr(target, part)
    if cache is not None:
        cache[key] = target
    return target


def forget_modules(root: str | os.PathLike[str]) -> None:
    """Drop every module imported from ``root`` so that the next import reads the files as they are now.

    A re-run must run the code on disk (the current code, or an extracted backup), and a long-lived worker that
    gets a new execution must import edited code afresh, not modules imported earlier from the same names.
    machinable itself and ``__main__`` are never dropped.
    """
    for name, _ in _project_modules(root):
        del sys.modules[name]
    importlib.invalidate_caches()


def _project_modules(root: str | os.PathLike[str]) -> list[tuple[str, str | None]]:
    """(name, file or None for a namespace package) of the modules imported from ``root``."""
    prefix = os.path.join(os.path.realpath(root), "")
    found = []
    for name, module in list(sys.modules.items()):
        if name == "machinable" or name.startswith(("machinable.", "__main__", "__mp_main__")):
            continue
        origin = getattr(module, "__file__", None)
        paths = [str(p) for p in getattr(module, "__path__", None) or []] if origin is None else [origin]
        if any(os.path.realpath(p).startswith(prefix) for p in paths):
            found.append((name, origin))
    return found


# file -> (mtime_ns, size) when its module was imported, for the project modules a collection imported
_IMPORTED: dict[str, tuple[int, int]] = {}


def note_modules(root: str | os.PathLike[str]) -> None:
    """Remember the files of the project's modules as they were imported (after a collection)."""
    for _, origin in _project_modules(root):
        if origin is not None and origin not in _IMPORTED:
            with contextlib.suppress(OSError):
                stat = os.stat(origin)
                _IMPORTED[origin] = (stat.st_mtime_ns, stat.st_size)


def refresh_modules(root: str | os.PathLike[str]) -> None:
    """Forget the project's modules when a file of one changed since it was imported (before a collection), so
    a process that runs twice (a notebook editing a helper between two ``ml.execute``) runs the code on disk,
    the code its trials' fingerprints describe."""
    for _, origin in _project_modules(root):
        if origin is None or origin not in _IMPORTED:
            continue
        try:
            stat = os.stat(origin)
        except OSError:
            stat = None
        if stat is None or (stat.st_mtime_ns, stat.st_size) != _IMPORTED[origin]:
            prefix = os.path.join(os.path.realpath(root), "")
            for path in [p for p in _IMPORTED if os.path.realpath(p).startswith(prefix)]:
                del _IMPORTED[path]
            forget_modules(root)
            return


def import_path(root: Path, path: Path, name: str, keep: tuple[type[BaseException], ...] = ()) -> ModuleType:
    """Import the file ``path`` of project ``root`` as module ``name`` (its parent packages first, as a normal
    import would). A module that raises is not left half-imported in ``sys.modules``, unless what it raised is
    one of ``keep``: then it stays as far as it ran (collection keeps the tasks above an ``ml.execute`` call)."""
    import importlib.util

    ensure_on_path(root)
    parent = name.rpartition(".")[0]
    if parent and not name.startswith("machinable_collected."):
        importlib.import_module(parent)
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise CollectionError(f"{path.name} cannot be imported")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException as exc:
        if not isinstance(exc, keep):
            sys.modules.pop(name, None)
        raise
    return module
