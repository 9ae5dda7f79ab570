"""The plugin manager: built-in plugins, entry points of group ``machinable``, and plugins named by the user."""

from __future__ import annotations

import importlib
import inspect
import os
import traceback
from collections.abc import Iterable
from typing import Any

import pluggy

from machinable import hookspec
from machinable.errors import UsageError

ENTRY_POINT_GROUP = "machinable"

# Built-in features are plugins like any other: ``-p no:NAME`` disables one.
BUILTIN_PLUGINS: dict[str, str] = {
    "local": "machinable.engines.local",
    "process": "machinable.engines.process",
    "ray": "machinable.engines.ray_engine",
    # the command line (machinable/cli/): each feature of the command is a plugin, like pytest's
    "select": "machinable.cli.select",
    "terminal": "machinable.cli.terminal",
    "junitxml": "machinable.cli.junitxml",
    "cacheprovider": "machinable.cli.cacheprovider",
    "commands": "machinable.cli.commands",  # reproduce, resume, show, --check-determinism
}


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
    plugins: Iterable[str | object] = (), disabled: Iterable[str] = ()
) -> pluggy.PluginManager:
    """A plugin manager with the built-ins, the installed entry points and ``plugins`` (modules or objects)."""
    pm = PluginManager("machinable")
    pm.add_hookspecs(hookspec)
    blocked = set(disabled)
    for name in blocked:
        pm.set_blocked(name)
    for name, module in BUILTIN_PLUGINS.items():
        if name not in blocked:
            try:
                pm.register(importlib.import_module(module), name=name)
            except ModuleNotFoundError as exc:
                if exc.name != module:
                    raise
    try:
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
