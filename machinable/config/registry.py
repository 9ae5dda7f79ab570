"""Reading the ``components:`` and ``mixins:`` sections of machinable.yaml into entry specs.

Entries are a list of one-key mappings (``- name: {config}``) or bare names (``- name``); a mapping of
``name: config`` is accepted too. An entry's key is ``[module=]name[^parent]``:

- ``path.to.module=name`` registers module ``path.to.module`` under ``name`` (an alias);
- ``child^parent`` merges ``parent``'s configuration underneath ``child``'s;
- a section ``components:<group>`` prefixes module *and* name of its entries with ``<group>.`` (aliases keep
  the name as written); an entry already spelled ``<group>.name`` is not prefixed again, as in the original
  machinable.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from machinable.config.loader import LoadedYaml
from machinable.errors import ConfigError

SECTIONS = ("components", "mixins")
_KEY = re.compile(r"(?:(?P<module>[^\s=^]+)=)?(?P<name>[^\s=^]+)(?:\^(?P<parent>[^\s=^]+))?")
_MODULE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")


@dataclass
class EntrySpec:
    """One entry as written: not yet merged with parents or mixins."""

    name: str
    module: str
    parent: str | None
    group: str | None
    config: dict[str, Any]  # the entry's own mapping, '_mixins_' still inside
    line: int | None
    alias: bool = False
    where: str = field(default="", repr=False)
    declared: bool = True  # written in machinable.yaml (False: registered from code)


def parse_sections(loaded: LoadedYaml, data: Any) -> dict[str, dict[str, EntrySpec]]:
    """Entry specs per section (``'components'``, ``'mixins'``) in file order; ``data`` has includes expanded."""
    found: dict[str, dict[str, EntrySpec]] = {section: {} for section in SECTIONS}
    if data is None:
        return found
    if not isinstance(data, Mapping):
        raise ConfigError(
            f"{loaded.path}: the top level must be a mapping with 'components:' and 'mixins:' sections, "
            f"not {type(data).__name__}"
        )
    for key, entries in data.items():
        if not isinstance(key, str):
            continue
        section, _, group = key.partition(":")
        if section not in SECTIONS:
            continue  # other top-level keys are free (e.g. targets of '$.' references)
        group = group.strip(":") or None
        if group is not None and not _MODULE.fullmatch(group):
            raise ConfigError(f"{loaded.where((key,))}: invalid group '{group}' in section '{key}'")
        for spec in _entries(loaded, key, group, entries):
            previous = found[section].get(spec.name)
            if previous is not None:
                raise ConfigError(
                    f"{spec.where}: {section[:-1]} '{spec.name}' is declared twice "
                    f"(first at {previous.where})"
                )
            found[section][spec.name] = spec
    return found


def _entries(loaded: LoadedYaml, key: str, group: str | None, entries: Any) -> list[EntrySpec]:
    if entries is None:
        return []
    if isinstance(entries, Mapping):
        items = [((key, name), name, config) for name, config in entries.items()]
    elif isinstance(entries, list):
        items = []
        for index, item in enumerate(entries):
            path = (key, index)
            if isinstance(item, str):
                items.append((path, item, None))
            elif isinstance(item, Mapping) and len(item) == 1:
                ((name, config),) = item.items()
                items.append((path + (name,), name, config))
            elif isinstance(item, Mapping):
                names = ", ".join(str(k) for k in item)
                raise ConfigError(
                    f"{loaded.where(path)}: an entry of '{key}' must be one 'name: configuration' mapping, "
                    f"found several keys ({names}); indent the configuration below the name"
                )
            else:
                raise ConfigError(
                    f"{loaded.where(path)}: an entry of '{key}' must be a name or 'name: configuration', "
                    f"not {item!r}"
                )
    else:
        raise ConfigError(
            f"{loaded.where((key,))}: '{key}' must be a list of entries ('- name: configuration'), "
            f"not {type(entries).__name__}"
        )
    return [_spec(loaded, group, path, name, config) for path, name, config in items]


def _spec(loaded: LoadedYaml, group: str | None, path: tuple, raw: Any, config: Any) -> EntrySpec:
    where = loaded.where(path)
    match = _KEY.fullmatch(raw) if isinstance(raw, str) else None
    if match is None:
        raise ConfigError(
            f"{where}: invalid entry name {raw!r}; expected 'name', 'path.to.module=name' or 'child^parent'"
        )
    if config is None:
        config = {}
    if not isinstance(config, Mapping):
        raise ConfigError(
            f"{where}: the configuration of '{raw}' must be a mapping, not {type(config).__name__} {config!r}"
        )
    alias = match.group("module") is not None
    module = _prefixed(group, match.group("module") or match.group("name"))
    if not _MODULE.fullmatch(module):
        raise ConfigError(f"{where}: '{module}' (from {raw!r}) is not a valid Python module path")
    name = match.group("name") if alias else _prefixed(group, match.group("name"))
    return EntrySpec(
        name=name,
        module=module,
        parent=match.group("parent"),
        group=group,
        config=dict(config),
        line=loaded.line(path),
        alias=alias,
        where=where,
    )


def _prefixed(group: str | None, text: str) -> str:
    # Projects written for the original machinable spell some entries of a group with its prefix already.
    if not group or text.startswith(group + "."):
        return text
    return f"{group}.{text}"
