"""Turn a Task into TrialSpecs: resolve every configuration, build node ids, derive seeds.

Everything that can be wrong with a plan is found here, before anything runs.
Node ids are built from the *content* of a version, never from its position, so a trial keeps its id (and so its
seed) when other trials are added to or removed from the task: ``optimization[~alexnet-learning_rate=0.5][r2]``.
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from machinable import ids
from machinable.collection.fingerprint import Fingerprints
from machinable.components.component import check_timeout, is_component, is_component_class
from machinable.components.fixtures import BUILTIN, FixtureDef, discover_fixtures, injectable
from machinable.components.parametrize import Combination, combinations
from machinable.config.errors import ComponentImportError
from machinable.config.settings import deterministic_mode
from machinable.errors import CollectionError, MachinableError, UsageError, did_you_mean
from machinable.trials import TrialSpec

if TYPE_CHECKING:
    from machinable.collection.task import Task, TaskEntry
    from machinable.config.project import ComponentEntry, Project


def component_name(target: Any) -> str:
    return getattr(target, "__machinable_name__", None) or target.__name__


def ensure_registered(project: Project, target: Any) -> str:
    """The name of a component class or function given to ``Task.component`` by object, registered if needed.

    The project's own code keeps its machinable.yaml name and configuration (``Optimization`` imported from
    optimization.py is ``optimization``); other code is registered under its own name, and registered again when
    it was redefined (a notebook cell run twice). Code that takes the name of a machinable.yaml component whose
    code is different is an error: running either one silently would be wrong.
    """
    if not is_component(target):
        raise UsageError(
            f"{target!r} is not a component: derive from machinable.Component or decorate with @machinable.components.component"
        )
    declared = _declared_name(project, target)
    if declared is not None:
        return declared
    name = component_name(target)
    entry = project.components.get(name)
    if entry is not None:
        code = _module_code(entry)
        if code is not None and code is not target:
            raise UsageError(
                f"{target!r} is named '{name}' like the machinable.yaml component of module '{entry.module}', "
                f"which is other code; give it another name with @machinable.components.component(name=...)"
            )
        if entry.registered is target:
            return name
    # New, redefined, or code for a machinable.yaml entry that has configuration only.
    project.register(name, target, config=getattr(target, "__machinable_config__", None))
    return name


def _module_code(entry: ComponentEntry) -> Any:
    """The code a machinable.yaml entry has in the project's modules, or None (none, or only registered code)."""
    if not entry.declared or entry.registered is not None:
        return None
    try:
        return entry.load()
    except ComponentImportError:
        return None


def _declared_name(project: Project, target: Any) -> str | None:
    """The machinable.yaml name of ``target`` when it is the code of a declared component of its module."""
    module = getattr(target, "__module__", None)
    for name, entry in project.components.items():
        if entry.declared and entry.declared_module == module:
            try:
                if entry.load() is target:
                    return name
            except MachinableError:
                continue  # an entry that cannot load is reported when it is used by name
    return None


def check_fixtures(name: str, target: Any, available: Iterable[str]) -> None:
    """A functional component may only ask for fixtures that exist: an error now, not at run time."""
    if is_component_class(target):
        return
    known = set(available)
    try:
        signature = inspect.signature(target)
    except (TypeError, ValueError):  # builtins and C functions have no signature to check
        return
    for param in injectable(signature):
        if param.name in known or param.default is not param.empty:
            continue
        raise CollectionError(
            f"component '{name}' asks for fixture '{param.name}', which does not exist"
            f"{did_you_mean(param.name, known)}; available fixtures: {', '.join(sorted(known))} "
            f"(configuration values are read from 'config', e.g. config.{param.name})"
        )


def import_target(target: Any) -> tuple[str, str, Any]:
    """(module, attribute, object-to-ship) for a component; the object itself when it cannot be re-imported."""
    module = getattr(target, "__module__", "__main__")
    attribute = getattr(target, "__qualname__", target.__name__)
    shippable = target if module == "__main__" or "<locals>" in attribute else None
    return module, attribute, shippable


def trial_defaults(name: str, target: Any, entry: TaskEntry, settings: Mapping[str, Any]) -> dict[str, Any]:
    """The ``timeout``, ``resources`` and ``deterministic`` of a component's trials (TrialSpec fields): the
    task's, over the component's own defaults (``trial_timeout`` / ``trial_resources`` / ``trial_deterministic``
    of a class, or of ``@component(timeout=, resources=, deterministic=)``), over the project's settings."""
    default_timeout = getattr(target, "trial_timeout", None)
    check_timeout(default_timeout, f"trial_timeout of component '{name}'")
    default_resources = getattr(target, "trial_resources", None) or {}
    if not isinstance(default_resources, Mapping):
        raise UsageError(f"trial_resources of component '{name}' must be a dict, not {default_resources!r}")
    deterministic = getattr(target, "trial_deterministic", None)
    if not deterministic_mode(deterministic):
        raise UsageError(
            f"trial_deterministic of component '{name}' must be True, False, 'warn' or None, not {deterministic!r}"
        )
    return {
        "timeout": entry.timeout if entry.timeout is not None else default_timeout,
        "resources": {**default_resources, **(entry.resources or {})},
        "deterministic": (settings.get("deterministic") if deterministic is None else deterministic) or False,
    }


def _mixin_targets(project: Project, names: Iterable[str]) -> Iterable[tuple[str, str, str]]:
    for name in names:
        mixin = project.mixins[name].load()
        if mixin is not None:
            yield (name, *import_target(mixin)[:2])


def plan_task(
    task: Task,
    project: Project,
    global_seed: int,
    fixtures: dict[str, FixtureDef] | None = None,
    prefix: str = "",
) -> list[TrialSpec]:
    """Expand ``task`` into trial specs in plan order. ``prefix`` starts every node id (e.g. a task file).
    ``fixtures``: the user fixtures known so far; those of the component modules are added to it (for the engine).
    """
    specs: list[TrialSpec] = []
    seen: dict[str, int] = {}
    code = Fingerprints.of_project(project)
    scanned: set[str] = set()  # modules whose fixtures are known: scan each once, not once per entry
    fixtures = {} if fixtures is None else fixtures
    for entry in task.entries:
        name = _entry_name(project, entry)
        registered = project.component(name)
        target = registered.load()
        module, attribute, shippable = import_target(target)
        if module in sys.modules and module not in scanned:
            scanned.add(module)
            discover_fixtures(fixtures, modules=[sys.modules[module]])
        check_fixtures(name, target, (*BUILTIN, *fixtures))
        # Resolved before the mixins are imported: it names an unknown mixin with file:line and a suggestion.
        versions_resolved = project.resolve(name, entry.version)
        mixins = tuple(_mixin_targets(project, registered.mixins))
        defaults = trial_defaults(name, target, entry, project.settings)
        combos = combinations(target)
        for resolved in versions_resolved:
            for combo, config, versions, elements in _parametrized(project, name, resolved, combos):
                parts = [ids.version_id(resolved.element), ids.shorten(combo.id) if combo else ""]
                keywords = (name, module, *versions, *(combo.keywords if combo else ()))
                node_ids = _node_ids(prefix + name, parts, seen, entry.repeat_total)
                recipe = Recipe(prefix + name, elements, tuple(parts), seen[_base(prefix + name, parts)])
                for repeat, nid in enumerate(node_ids):
                    specs.append(
                        TrialSpec(
                            node_id=nid,
                            component=name,
                            module=module,
                            attribute=attribute,
                            project_root=str(project.root),
                            config=config,
                            versions=tuple(versions),
                            seed=ids.trial_seed(global_seed, nid),
                            uid=ids.trial_uid(nid),
                            repeat_number=repeat,
                            repeat_total=entry.repeat_total,
                            flags=dict(entry.flags),
                            keywords=keywords,
                            mixins=mixins,
                            target=shippable,
                            recipe=recipe,
                            **defaults,
                            **code.fields(module),
                        )
                    )
    return specs


def _entry_name(project: Project, entry: TaskEntry) -> str:
    """The component name of a task entry; a component given by object is registered under its name."""
    if isinstance(entry.component, str):
        return entry.component
    return ensure_registered(project, entry.component)


def _node_ids(name: str, parts: list[str], seen: dict[str, int], repeat_total: int) -> list[str]:
    """The node ids of the repeats of one configuration.

    ``seen`` counts the configurations planned so far by id: a task that lists the same configuration twice
    gets distinct ids (and so seeds) for the second one (``name#2[...]``).
    """
    base = _base(name, parts)
    seen[base] = occurrence = seen.get(base, 0) + 1
    return [ids.node_id(name, parts, occurrence, repeat, repeat_total) for repeat in range(repeat_total)]


def _base(name: str, parts: Iterable[str]) -> str:
    return name + "".join(f"[{p}]" for p in parts if p)


@dataclass(frozen=True)
class Recipe:
    """How a trial was planned: its node id's name, the version elements it was resolved from (version, then
    parametrization), its node id parts and occurrence. Overrides given after collection extend it."""

    name: str
    elements: tuple[Any, ...]
    parts: tuple[str, ...]
    occurrence: int


def _parametrized(
    project: Project, name: str, resolved: Any, combos: list[Combination]
) -> Iterable[tuple[Combination | None, dict[str, Any], tuple[str, ...], tuple[Any, ...]]]:
    """(combination, config, versions, elements) per ``@parametrize`` combination, merged on top of the resolved
    version; ``elements`` is the version as a tuple of elements, what the configuration was resolved from.

    Each combination is resolved as a tuple version ``(element, *parameters)`` so that ``$self`` references and
    config methods see the parameter values, exactly as if the user had written the tuple.
    """
    element = resolved.element
    head = element if isinstance(element, tuple) else (() if element is None else (element,))
    if not combos:
        yield None, resolved.config, tuple(resolved.versions), head
        return
    for combo in combos:
        elements = (*head, *combo.elements)
        [merged] = project.resolve(name, elements)
        yield combo, merged.config, tuple(merged.versions), elements
