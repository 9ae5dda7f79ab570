"""The plugin manager: built-in plugins, entry points of group ``machinable``, and plugins named by the user.

Workers (worker processes, Ray workers) run each trial through ``machinable_trial_protocol`` of the same plugins:
:func:`plugin_refs` names the session's module plugins with the folder each was imported from, and
:func:`worker_plugin_manager` loads them by those names in the worker, once per process.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import os
import sys
import traceback
from collections.abc import Iterable
from types import ModuleType
from typing import Any

import pluggy

from machinable import hookspec
from machinable.errors import UsageError

ENTRY_POINT_GROUP = "machinable"

# Built-in features are plugins like any other: ``-p no:NAME`` disables one.
BUILTIN_PLUGINS: dict[str, str] = {
    # the pipeline's stages (docs/architecture.md)
    "collection": "machinable.collection.stage",
    "runtrials": "machinable.execution.loop",
    "protocol": "machinable.execution.protocol",
    # engines
    "local": "machinable.execution.engines.local",
    "process": "machinable.execution.engines.process",
    "ray": "machinable.execution.engines.ray_engine",
    "slurm": "machinable.execution.engines.slurm.engine",
    # features of the command, each a plugin like pytest's
    "select": "machinable.collection.select",
    "terminal": "machinable.reporting.terminal",
    "junitxml": "machinable.reporting.junitxml",
    "cacheprovider": "machinable.collection.cacheprovider",
    "needed": "machinable.collection.needed",  # --needed, and what `machinable plan` reports
    "commands": "machinable.cli.commands",  # reproduce, resume, show, --check-determinism
    "provenance": "machinable.execution.provenance",  # provenance.json: git, Python, packages, machine
    "worker": "machinable.cli.worker",  # what the slurm engine's array tasks run
    "plan": "machinable.cli.plan",  # machinable plan
}


# Built-ins that take part where a trial runs; a worker loads these and the session's other module plugins.
WORKER_BUILTINS = ("protocol",)

# (registered name, module name, the sys.path folder it was imported from or None)
PluginRef = tuple[str, str, str | None]


class PluginManager(pluggy.PluginManager):
    """pluggy's manager that, like pytest's, also takes unmarked ``machinable_*`` functions as hook implementations

    (so a project's ``machinable_conf.py`` may define ``def machinable_addoption(parser): ...`` without
    ``@machinable.hookimpl``; the marker is needed only for options such as ``tryfirst``).
    """

    def parse_hookimpl_opts(self, plugin: object, name: str) -> Any:
        opts = super().parse_hookimpl_opts(plugin, name)
        if opts is None and name.startswith("machinable_") and inspect.isroutine(getattr(plugin, name, None)):
            return {}
        return opts


def create_plugin_manager(
    plugins: Iterable[str | object] = (),
    disabled: Iterable[str] = (),
    builtins: Iterable[str] | None = None,
    entry_points: bool = True,
) -> pluggy.PluginManager:
    """A plugin manager with the built-ins (``builtins``: which ones; default all), the installed entry points
    and ``plugins`` (modules, module names or objects), minus the ``disabled`` names."""
    pm = PluginManager("machinable")
    pm.add_hookspecs(hookspec)
    blocked = set(disabled)
    for name in blocked:
        pm.set_blocked(name)
    wanted = set(BUILTIN_PLUGINS if builtins is None else builtins)
    for name, module in BUILTIN_PLUGINS.items():
        if name not in blocked and name in wanted:
            try:
                pm.register(importlib.import_module(module), name=name)
            except ModuleNotFoundError as exc:
                if exc.name != module:
                    raise
    try:
        if entry_points:
            pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
    except Exception as exc:  # an installed package's plugin is broken: its fault, not machinable's
        raise UsageError(
            f"a plugin of entry point group '{ENTRY_POINT_GROUP}' cannot be loaded: {_why(exc)}"
        ) from None
    for plugin in plugins:
        if isinstance(plugin, str):
            if plugin in blocked or pm.has_plugin(plugin):
                continue
            try:
                module = importlib.import_module(plugin)
            except Exception as exc:  # a missing module, or the user's module fails (SyntaxError, a raise)
                raise UsageError(f"plugin '{plugin}' cannot be imported: {_why(exc)}") from None
            pm.register(module, name=plugin)
        else:
            pm.register(plugin)
    return pm


def _why(error: Exception) -> str:
    """``SyntaxError: invalid syntax (plugin.py, line 1)``: the error and where the user's code raised it."""
    if isinstance(error, ImportError):
        return str(error)  # "No module named 'x'"
    text = f"{type(error).__name__}: {error}"
    if isinstance(error, SyntaxError):
        return text  # its text names the file and line
    frames = traceback.extract_tb(error.__traceback__)
    if frames:
        text += f" ({os.path.basename(frames[-1].filename)}, line {frames[-1].lineno})"
    return text


_default: pluggy.PluginManager | None = None


def default_plugin_manager() -> pluggy.PluginManager:
    """The plugin manager used by ``ml.execute`` when none is given, built once per process."""
    global _default
    if _default is None:
        _default = create_plugin_manager()
    return _default


def plugin_refs(pm: pluggy.PluginManager) -> tuple[PluginRef, ...]:
    """The module plugins of ``pm`` that workers load by name: every registered module except the built-ins
    (entry points, ``-p NAME``, ``machinable_conf.py``). Plugins that are objects live in the controller only."""
    builtin = set(BUILTIN_PLUGINS.values())
    refs = []
    for name, plugin in pm.list_name_plugin():
        if isinstance(plugin, ModuleType) and plugin.__name__ not in builtin:
            refs.append((name, plugin.__name__, _import_folder(plugin)))
    return tuple(refs)


def _import_folder(module: ModuleType) -> str | None:
    """The ``sys.path`` folder ``module`` was imported from (``a/b/pkg/mod.py`` as ``pkg.mod``: ``a/b``)."""
    origin = getattr(module, "__file__", None)
    if not origin:
        return None
    folder = os.path.dirname(os.path.abspath(origin))
    depth = module.__name__.count(".") + (1 if os.path.basename(origin) == "__init__.py" else 0)
    for _ in range(depth):
        folder = os.path.dirname(folder)
    return folder


_workers: dict[tuple[PluginRef, ...], pluggy.PluginManager] = {}


def worker_plugin_manager(refs: tuple[PluginRef, ...]) -> pluggy.PluginManager:
    """The plugin manager of a worker process: the built-ins that run trials and the plugins ``refs`` names,
    imported by name (their folder goes on ``sys.path`` when they are not importable otherwise)."""
    pm = _workers.get(refs)
    if pm is not None:
        return pm
    pm = create_plugin_manager(builtins=WORKER_BUILTINS, entry_points=False)
    for name, module, folder in refs:
        if module not in sys.modules and folder and folder not in sys.path:
            sys.path.append(folder)
        try:
            pm.register(importlib.import_module(module), name=name)
        except Exception as exc:  # the controller imported it: a worker that cannot is misconfigured
            raise UsageError(f"plugin '{name}' cannot be imported in a worker: {_why(exc)}") from None
    _workers[refs] = pm
    return pm


def forget_worker_plugins() -> None:
    """Build the workers' plugin managers afresh: a long-lived worker (Ray reuses its workers) that gets a new
    execution re-imports the project's edited modules, ``machinable_conf.py`` among them."""
    _workers.clear()


def getgroup(parser: argparse.ArgumentParser, title: str) -> argparse._ArgumentGroup:
    """The option group ``title`` of ``parser``, created on first use, so plugins can share a ``--help`` section
    from ``machinable_addoption`` (argparse itself would make a second section of the same title)."""
    for group in parser._action_groups:
        if group.title == title:
            return group
    return parser.add_argument_group(title)
