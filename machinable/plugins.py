"""The plugin manager: built-in plugins, entry points of group ``machinable``, and plugins named by the user."""

from __future__ import annotations

import importlib
from collections.abc import Iterable

import pluggy

from machinable import hookspec
from machinable.errors import UsageError

ENTRY_POINT_GROUP = "machinable"

# Built-in features are plugins like any other: ``-p no:NAME`` disables one.
BUILTIN_PLUGINS: dict[str, str] = {
    "local": "machinable.engines.local",
    "process": "machinable.engines.process",
    "ray": "machinable.engines.ray_engine",
}


def create_plugin_manager(plugins: Iterable[str | object] = (), disabled: Iterable[str] = ()) -> pluggy.PluginManager:
    """A plugin manager with the built-ins, the installed entry points and ``plugins`` (modules or objects)."""
    pm = pluggy.PluginManager("machinable")
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
