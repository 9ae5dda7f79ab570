"""``Project``: a folder with a ``machinable.yaml``, its registry of components and mixins, and
configuration resolution (DESIGN.md §3).

machinable.yaml is read once per ``Project``. Each component's defaults (its parent's and mixins' merged
underneath its own) are computed on first use and cached; every resolution then merges the version over them
and builds a fresh configuration, so callers never share (or mutate) the cache. Structural problems of the file
(syntax, malformed entries, duplicates) are reported when the project is opened; problems of one component
(unknown parent or mixin, cycles) when that component is first used, so one bad entry does not break the rest.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from functools import reduce
from pathlib import Path
from typing import Any, TypeVar, final

from machinable.config.errors import InheritanceCycleError, UnknownMixinError
from machinable.config.importing import find_component, find_mixin, import_module, module_file
from machinable.config.includes import Includes
from machinable.config.loader import load_file
from machinable.config.merge import deep_merge, plain_copy
from machinable.config.references import Finalizer
from machinable.config.registry import EntrySpec, parse_sections
from machinable.config.settings import parse_settings
from machinable.config.versions import apply, expand
from machinable.errors import ConfigError, UnknownComponentError, UsageError, did_you_mean

_E = TypeVar("_E", bound="_Entry")

FILE = "machinable.yaml"


@final
@dataclass(frozen=True)
class ResolvedVersion:
    """One resolved configuration of a component.

    ``config`` is plain dicts all the way down, without ``~`` keys; ``versions`` are the applied named versions
    and mixins in order (``('~alexnet', '~mnist')``, ``('_imagenet_',)``); ``element`` is the version element
    as given (``None``, a dict, a string or a tuple), e.g. to build readable node ids.
    """

    config: dict[str, Any]
    versions: tuple[str, ...]
    element: Any


@dataclass(frozen=True)
class _Base:
    defaults: Mapping[str, Any]  # parent + mixins + own configuration, '~' keys included; never handed out
    versions: dict[str, Any]  # the '~name' keys of defaults


class _Entry:
    """What components and mixins share: a name, a module, a parent, a line, own configuration."""

    kind = ""

    def __init__(self, project: Project, spec: EntrySpec) -> None:
        self._project = project
        self._spec = spec
        self.name: str = spec.name
        self.parent: str | None = spec.parent
        self.line: int | None = spec.line
        self._declared_module = spec.module
        self._target: Any = None
        self._code_config: dict[str, Any] = {}
        self._loaded: Any = None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} module={self.module!r} line={self.line}>"

    @property
    def declared(self) -> bool:
        """True for an entry of machinable.yaml, False for one registered from code only."""
        return self._spec.declared

    @property
    def registered(self) -> Any:
        """The object given to ``Project.register`` for this entry, or None."""
        return self._target

    @property
    def declared_module(self) -> str:
        """The module as machinable.yaml (or the registration) names it, without looking at files."""
        return self._declared_module

    @property
    def module(self) -> str | None:
        """Import path of the entry's code; a child without its own module uses its parent's."""
        try:
            owner = self._code_owner()
        except ConfigError:
            return self._declared_module  # the broken chain is reported when the entry is loaded or resolved
        if owner._target is not None:
            return owner._target.__module__
        return owner._declared_module

    def _code_owner(self) -> _Entry:
        """The entry whose code this one runs: itself, or the nearest ancestor with a module of its own."""
        entry: _Entry = self
        seen: list[_Entry] = []
        while (
            entry._target is None
            and entry.parent is not None
            and module_file(self._project.root, entry._declared_module) is None
        ):
            seen.append(entry)
            entry = self._project._parent(entry)
            if entry in seen:
                raise _cycle_error(self, [*seen, entry])
        return entry

    @property
    def config(self) -> dict[str, Any]:
        """Default configuration (parent and mixins merged underneath, versions included, references
        unresolved); a copy."""
        return plain_copy(self._project._base(self).defaults)

    @property
    def mixins(self) -> list[str]:
        """Mixin names from the entry's ``_mixins_`` key."""
        raw = self._own().get("_mixins_")
        if raw is None:
            return []
        names = [raw] if isinstance(raw, str) else raw
        if not isinstance(names, list) or not all(isinstance(name, str) for name in names):
            raise ConfigError(f"{self._where()}: '_mixins_' of '{self.name}' must be a list of mixin names")
        return list(names)

    def _own(self) -> Mapping[str, Any]:
        # Code defaults (Project.register) underneath, machinable.yaml on top.
        if self._code_config:
            return deep_merge(self._code_config, self._spec.config)
        return self._spec.config

    def _where(self) -> str:
        return self._spec.where or f"{self.kind} '{self.name}'"

    def _owner(self) -> str:
        return f"{self.kind} '{self.name}'"

    def _installed(self) -> bool:
        # Only an explicit alias of a dotted path may import an installed package's module: a bare name is
        # the project's file or an error, never a same-named module found elsewhere on sys.path.
        return self._spec.alias and "." in self._declared_module


@final
class ComponentEntry(_Entry):
    """A registered component: ``.name``, ``.module``, ``.config``, ``.parent``, ``.mixins``, ``.line``."""

    kind = "component"

    def load(self) -> Any:
        """The component object: the target given to ``Project.register``; else, from the imported module, the
        attribute named like the last segment of the name, the one ``Component`` subclass, or the one
        ``@component`` function. A child (``child^parent``) without a module of its own loads its parent."""
        if self._target is not None:
            return self._target
        if self._loaded is None:
            owner = self._code_owner()
            if owner is not self:
                self._loaded = owner.load()
            else:
                module = import_module(
                    self._project.root, self._declared_module, self._owner(), installed=self._installed()
                )
                self._loaded = find_component(module, self.name.rsplit(".", 1)[-1], self._owner())
        return self._loaded


@final
class MixinEntry(_Entry):
    """A registered mixin: ``.name``, ``.module`` (``None`` without code), ``.config``, ``.line``."""

    kind = "mixin"

    @property
    def module(self) -> str | None:
        """The mixin's module if the project has that file (or the entry names one explicitly)."""
        if self._spec.alias or module_file(self._project.root, self._declared_module) is not None:
            return self._declared_module
        return None

    def load(self) -> Any:
        """The mixin class, or ``None`` when the mixin is configuration only."""
        if self._loaded is None and self.module is not None:
            module = import_module(
                self._project.root, self.module, self._owner(), installed=self._installed()
            )
            self._loaded = find_mixin(module, self.name.rsplit(".", 1)[-1])
        return self._loaded


@final
class Project:
    """A machinable project: ``Project(path=None)`` finds ``machinable.yaml`` in ``path`` (default: the working
    directory) or the nearest folder above it."""

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.root: Path = find_root(path)
        self.file: Path = self.root / FILE
        loaded = load_file(self.file)
        self._includes = Includes(self.root)
        self._data: Any = self._includes.expand(loaded)
        sections = parse_sections(loaded, self._data)
        self.settings: dict[str, Any] = parse_settings(loaded, self._data, self.root)
        self._components: dict[str, ComponentEntry] = {
            name: ComponentEntry(self, spec) for name, spec in sections["components"].items()
        }
        self._mixins: dict[str, MixinEntry] = {
            name: MixinEntry(self, spec) for name, spec in sections["mixins"].items()
        }
        self._bases: dict[tuple[str, str], _Base] = {}
        self._building: list[_Entry] = []

    def __repr__(self) -> str:
        return f"<Project {str(self.root)!r}: {len(self._components)} components, {len(self._mixins)} mixins>"

    @property
    def data(self) -> Any:
        """The parsed machinable.yaml (includes expanded, references not resolved); a copy."""
        return plain_copy(self._data)

    # -- registry -----------------------------------------------------------------------------------------

    @property
    def components(self) -> dict[str, ComponentEntry]:
        """Registered components by name, in file order (then code registrations)."""
        return dict(self._components)

    @property
    def mixins(self) -> dict[str, MixinEntry]:
        """Declared mixins by name, in file order."""
        return dict(self._mixins)

    def component(self, name: str) -> ComponentEntry:
        """The component registered as ``name``; unknown names raise ``UnknownComponentError``."""
        if not isinstance(name, str):
            raise UsageError(
                f"a component is named by a string, not {type(name).__name__} {name!r}; "
                f"{_listing('registered components', self._components)}"
            )
        entry = _lookup(self._components, name)
        if entry is None:
            raise UnknownComponentError(
                f"unknown component '{name}'{_suggest(name, self._components)}; "
                f"{_listing('registered components', self._components)} (in {self.file})"
            )
        return entry

    def mixin(self, name: str) -> MixinEntry:
        """The mixin declared as ``name``; unknown names raise ``UnknownMixinError``."""
        entry = _lookup(self._mixins, name)
        if entry is None:
            raise UnknownMixinError(
                f"unknown mixin '{name}'{_suggest(name, self._mixins)}; "
                f"{_listing('declared mixins', self._mixins)} (in {self.file})"
            )
        return entry

    def register(self, name: str, target: Any, config: Mapping[str, Any] | None = None) -> ComponentEntry:
        """Register a component found in code, with optional default configuration.

        A machinable.yaml entry of the same name keeps its place, parent and mixins; its configuration is
        merged *over* ``config`` (the file wins), and ``target`` becomes what ``load()`` returns.
        """
        entry = self._components.get(name)
        if entry is None:
            module = getattr(target, "__module__", None) or name
            spec = EntrySpec(
                name=name,
                module=module,
                parent=None,
                group=None,
                config={},
                line=None,
                where=f"component '{name}' (registered from {module})",
                declared=False,
            )
            entry = self._components[name] = ComponentEntry(self, spec)
        entry._target = target
        entry._code_config = dict(config or {})
        self._bases.clear()  # children and users of this entry must see the new defaults
        return entry

    # -- resolution ---------------------------------------------------------------------------------------

    def config(self, name: str, version: Any = None) -> dict[str, Any]:
        """The resolved configuration of ``name`` with ``version`` (anything but a list)."""
        if isinstance(version, list):
            raise ConfigError(
                f"a list version makes several configurations (one trial each); use "
                f"ml.Task().component('{name}', [...]) or Project.resolve(), not Project.config()"
            )
        return self.resolve(name, version)[0].config

    def resolve(self, name: str, version: Any = None) -> list[ResolvedVersion]:
        """Resolve ``version`` for component ``name``: one ``ResolvedVersion`` per list element, else one."""
        entry = self.component(name)
        base = self._base(entry)
        resolved = []
        for element in expand(version):
            merged, applied = apply(
                base.defaults, element, component=name, versions=base.versions, mixin=self._mixin_config
            )
            config = Finalizer(
                name, merged, top=self._data, include=self._includes.load, target=entry.load
            ).run()
            resolved.append(ResolvedVersion(config, applied, element))
        return resolved

    def _mixin_config(self, name: str) -> Mapping[str, Any]:
        return self._base(self.mixin(name)).defaults

    def _base(self, entry: _Entry) -> _Base:
        key = (entry.kind, entry.name)
        cached = self._bases.get(key)
        if cached is not None:
            return cached
        if entry in self._building:
            raise _cycle_error(entry, [*self._building[self._building.index(entry) :], entry])
        self._building.append(entry)
        try:
            layers: list[Mapping[str, Any]] = []
            if entry.parent is not None:
                layers.append(self._base(self._parent(entry)).defaults)
            for mixin in entry.mixins:
                found = _lookup(self._mixins, mixin)
                if found is None:
                    raise UnknownMixinError(
                        f"{entry._where()}: {entry.kind} '{entry.name}' uses unknown mixin '{mixin}'"
                        f"{_suggest(mixin, self._mixins)}; {_listing('declared mixins', self._mixins)}"
                    )
                layers.append(self._base(found).defaults)
            own = {key: value for key, value in entry._own().items() if key != "_mixins_"}
            defaults: Mapping[str, Any] = reduce(deep_merge, [*layers, own])
        finally:
            self._building.pop()
        versions = {key: value for key, value in defaults.items() if type(key) is str and key[:1] == "~"}
        base = self._bases[key] = _Base(defaults, versions)
        return base

    def _parent(self, entry: _Entry) -> _Entry:
        registry: Mapping[str, _Entry] = self._components if entry.kind == "component" else self._mixins
        assert entry.parent is not None
        candidates = [entry.parent]
        if entry._spec.group:
            candidates.insert(0, f"{entry._spec.group}.{entry.parent}")
        for candidate in candidates:
            found = _lookup(registry, candidate)
            if found is not None:
                return found
        error = UnknownComponentError if entry.kind == "component" else UnknownMixinError
        raise error(
            f"{entry._where()}: {entry.kind} '{entry.name}' inherits from unknown {entry.kind} "
            f"'{entry.parent}'{_suggest(entry.parent, registry)}; {_listing(f'declared {entry.kind}s', registry)}"
        )


def find_root(path: str | os.PathLike[str] | None = None) -> Path:
    """The folder holding ``machinable.yaml``: ``path`` (default: the working directory) or the nearest
    folder above it."""
    start = Path(path).expanduser() if path is not None else Path.cwd()
    if not start.exists():
        raise ConfigError(f"project path '{start}' does not exist")
    start = start.resolve()
    if start.is_file():
        start = start.parent
    for folder in (start, *start.parents):
        if (folder / FILE).is_file():
            return folder
    raise ConfigError(
        f"no {FILE} found in {start} or any folder above it; a project's root folder needs a {FILE} "
        "(it may be empty)"
    )


def _lookup(registry: Mapping[str, _E], name: str) -> _E | None:
    """The entry named ``name``, or the aliased entry whose module path is ``name``: the original machinable
    let ``mixins.trait=trait`` be named ``mixins.trait`` too (in ``^parent``, ``_mixins_`` and lookups)."""
    entry = registry.get(name)
    if entry is not None:
        return entry
    aliased = [e for e in registry.values() if e._spec.alias and e._spec.module == name]
    return aliased[0] if len(aliased) == 1 else None


def _cycle_error(entry: _Entry, cycle: list[_Entry]) -> InheritanceCycleError:
    chain = " -> ".join(item._owner() for item in cycle)
    return InheritanceCycleError(f"{entry._where()}: inheritance cycle: {chain}")


def _suggest(name: str, names: Mapping[str, Any]) -> str:
    hint = did_you_mean(name, names)
    if hint:
        return hint
    # 'baseline' for 'models.baseline' (a component of a group section)
    dotted = [candidate for candidate in names if candidate.endswith("." + name)]
    return f" (did you mean '{dotted[0]}'?)" if len(dotted) == 1 else ""


def _listing(what: str, names: Mapping[str, Any]) -> str:
    if not names:
        return f"no {what.split(' ', 1)[-1]}"
    shown = ", ".join(list(names)[:20])
    more = f", ... ({len(names)} in all)" if len(names) > 20 else ""
    return f"{what}: {shown}{more}"
