"""The plugin manager: built-in plugins, entry points of group ``machinable``, and plugins named by the user."""

from __future__ import annotations

import importlib
import inspect
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


def create_plugin_manager(plugins: Iterable[str | object] = (), disabled: Iterable[str] = ()) -> pluggy.PluginManager:
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
    pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
    for plugin in plugins:
        if isinstance(plugin, str):
            if plugin in blocked or pm.has_plugin(plugin):
                continue
            try:
                pm.register(importlib.import_module(plugin), name=plugin)
            except ImportError as exc:
                raise UsageError(f"plugin '{plugin}' cannot be imported: {exc}") from None
        else:
            pm.register(plugin)
    return pm


_default: pluggy.PluginManager | None = None


def default_plugin_manager() -> pluggy.PluginManager:
    """The plugin manager used by ``ml.execute`` when none is given, built once per process."""
    global _default
    if _default is None:
        _default = create_plugin_manager()
    return _default
