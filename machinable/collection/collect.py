"""Collection: a project's components and task files become trial specs, before anything runs.

What is collected (DESIGN.md §2), in this order:

1. every component declared in ``machinable.yaml``: one trial with its default configuration (named versions are
   not expanded; name one as a target, ``machinable 'optimization[~mnist]'``, to run it);
2. components discovered in component modules: classes deriving ``ml.Component`` and ``@ml.component`` functions
   defined in ``components/*.py``, ``*_component.py`` or a module matched by the ``collect:`` list of
   ``machinable.yaml`` (globs relative to the root, or dotted module names);
3. module-level ``ml.Task`` objects of task files, ``tasks/*.py`` and ``task_*.py``; node ids start with the file:
   ``tasks/example.py::optimization[r0]`` (a task bound to any name other than ``task`` adds that name:
   ``tasks/example.py::sweep::optimization``).

``@ml.parametrize`` expands everywhere (see :mod:`machinable.collection.plan`). ``__machinable_collect__ = False`` on a
class or function keeps it out of collection (abstract bases, mixins); a subclass is collected again unless it
says the same. Fixtures come from ``machinable_conf.py`` at the root and from every collected module.

Importing a module never runs an execution: ``ml.execute`` called while collecting raises
:class:`ExecuteWhileCollecting`, which stops the module's import at that line; the module's tasks defined so far
are still collected and a warning suggests an ``if __name__ == "__main__":`` guard.
"""

from __future__ import annotations

import fnmatch
import os
import sys
import traceback
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from machinable.collection.guard import GUARD_HINT, ExecuteWhileCollecting, collecting
from machinable.collection.plan import component_name, plan_task
from machinable.collection.task import Task
from machinable.components.component import is_component, is_component_class
from machinable.components.fixtures import (
    CONF_MODULE,
    FixtureDef,
    check_definitions,
    discover_fixtures,
)
from machinable.config.importing import import_path
from machinable.errors import CollectionError, MachinableError

if TYPE_CHECKING:
    from machinable.config.project import Project
    from machinable.trials import TrialSpec

__all__ = [
    "Collection",
    "CollectReport",
    "collect",
    "find_files",
]

# Folders never searched (like pytest's norecursedirs); hidden folders (".git", ".venv", ...) neither.
SKIP_DIRS = frozenset({"__pycache__", "node_modules", "venv", "env", "build", "dist", "site-packages", "CVS"})
TASK_DIR, COMPONENT_DIR = "tasks", "components"
TASK_PATTERN, COMPONENT_PATTERN = "task_*.py", "*_component.py"


@dataclass(frozen=True)
class CollectReport:
    """A collection error (the item is missing) or warning, about a file or a component."""

    nodeid: str
    outcome: str  # "error" | "warning"
    message: str


@dataclass
class Collection:
    items: list[TrialSpec] = field(default_factory=list)
    reports: list[CollectReport] = field(default_factory=list)
    fixtures: dict[str, FixtureDef] = field(default_factory=dict)

    @property
    def errors(self) -> list[CollectReport]:
        return [r for r in self.reports if r.outcome == "error"]

    @property
    def warnings(self) -> list[CollectReport]:
        return [r for r in self.reports if r.outcome == "warning"]


@dataclass(frozen=True)
class ProjectFiles:
    component_modules: list[Path]
    task_files: list[Path]
    unmatched: list[str] = field(default_factory=list)  # ``collect:`` entries no file matched


def _is_task_file(rel: str) -> bool:
    parent, _, name = rel.rpartition("/")
    return name != "__init__.py" and (
        fnmatch.fnmatch(name, TASK_PATTERN) or parent.split("/")[-1] == TASK_DIR
    )


def _is_component_module(rel: str, declared: Iterable[str]) -> bool:
    parent, _, name = rel.rpartition("/")
    if name == "__init__.py" and parent.split("/")[-1] == COMPONENT_DIR:
        return False
    if fnmatch.fnmatch(name, COMPONENT_PATTERN) or parent.split("/")[-1] == COMPONENT_DIR:
        return True
    return any(fnmatch.fnmatchcase(rel, pattern) for pattern in declared)


def find_files(root: Path, declared: Iterable[str] = ()) -> ProjectFiles:
    """Component modules and task files below ``root``, in path order."""
    patterns = [_as_pattern(d) for d in declared]
    components, tasks, unmatched = [], [], dict(zip(patterns, declared, strict=True))
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(
            d for d in dirs if not d.startswith(".") and d not in SKIP_DIRS and not d.endswith(".egg")
        )
        rel_folder = os.path.relpath(folder, root).replace(os.sep, "/")
        for name in sorted(files):
            if not name.endswith(".py") or name == f"{CONF_MODULE}.py" and rel_folder == ".":
                continue
            rel = name if rel_folder == "." else f"{rel_folder}/{name}"
            for pattern in [p for p in unmatched if fnmatch.fnmatchcase(rel, p)]:
                del unmatched[pattern]
            if _is_task_file(rel):
                tasks.append(root / rel)
            elif _is_component_module(rel, patterns):
                components.append(root / rel)
    # Path order (as pytest's): the same project always collects in the same order.
    return ProjectFiles(
        sorted(components, key=_path_key), sorted(tasks, key=_path_key), list(unmatched.values())
    )


def _path_key(path: Path) -> tuple[str, ...]:
    return path.parts


def _as_pattern(declared: str) -> str:
    """A ``collect:`` entry: a glob relative to the root, or a dotted module name."""
    if "/" in declared or declared.endswith(".py") or any(c in declared for c in "*?["):
        return declared
    return declared.replace(".", "/") + ".py"


def declared_modules(project: Project) -> list[str]:
    """The optional top-level ``collect:`` list of machinable.yaml."""
    data = project.data
    value = data.get("collect") if isinstance(data, dict) else None
    if value is None:
        return []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise CollectionError(
            "machinable.yaml: 'collect' must be a list of module globs or dotted module names"
        )
    return value


def relative(root: Path, path: Path) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return path.as_posix()


def module_name(root: Path, path: Path) -> str:
    """The dotted name a file is imported as (workers import components by this name)."""
    parts = list(Path(relative(root, path)).with_suffix("").parts)
    if parts and parts[-1] == "__init__":
        parts.pop()
    if all(p.isidentifier() for p in parts):
        return ".".join(parts)
    return "machinable_collected." + "_".join("".join(c if c.isalnum() else "_" for c in p) for p in parts)


def import_file(root: Path, path: Path) -> tuple[ModuleType, CollectReport | None]:
    """Import ``path`` under its dotted name; a guarded ``ml.execute`` call becomes a warning, not an error."""
    rel = relative(root, path)
    name = module_name(root, path)
    existing = sys.modules.get(name)
    if existing is not None and Path(getattr(existing, "__file__", "") or "").resolve() == path.resolve():
        return existing, None
    warning = None
    with collecting(rel):
        try:
            module = import_path(root, path, name, keep=(ExecuteWhileCollecting,))
        except ExecuteWhileCollecting:
            # The module stays imported as far as it ran: its tasks above the call are still collected.
            message = f"{rel} calls ml.execute() when imported; it was not run: {GUARD_HINT}"
            warning = CollectReport(rel, "warning", message)
            module = sys.modules[name]
    return module, warning


def describe(error: BaseException) -> str:
    """A collection error's text: our own message, or the traceback of the user's code."""
    if isinstance(error, ExecuteWhileCollecting):
        return f"{error}: {GUARD_HINT}"
    if isinstance(error, MachinableError):
        cause = error.__cause__
        if cause is None or isinstance(cause, MachinableError):
            return str(error)
        # e.g. a component module that raises when imported: show where, below our one-line message
        return f"{error}\n{_user_traceback(cause)}"
    return _user_traceback(error)


_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep


def _user_traceback(error: BaseException) -> str:
    frames = [
        f
        for f in traceback.extract_tb(error.__traceback__)
        if "importlib" not in f.filename and not os.path.abspath(f.filename).startswith(_PACKAGE_DIR)
    ]
    text = "".join(traceback.format_list(frames)) + "".join(
        traceback.format_exception_only(type(error), error)
    )
    return text.rstrip()


def _opted_out(target: Any) -> bool:
    try:
        return vars(target).get("__machinable_collect__", True) is False
    except TypeError:
        return getattr(target, "__machinable_collect__", True) is False


def components_in(module: ModuleType) -> list[Any]:
    """Components defined (not merely imported) in ``module``, minus those that opt out."""
    found = []
    for value in list(vars(module).values()):
        if getattr(value, "__module__", None) != module.__name__ or not is_component(value):
            continue
        if _opted_out(value):
            continue
        if is_component_class(value) and getattr(value, "__abstractmethods__", None):
            continue
        found.append(value)
    return found


def tasks_in(module: ModuleType) -> list[tuple[str, Task]]:
    """(variable, task) for each Task bound at module level, first binding of each object only."""
    seen: set[int] = set()
    found = []
    for var, value in list(vars(module).items()):
        if isinstance(value, Task) and id(value) not in seen and not var.startswith("_"):
            seen.add(id(value))
            found.append((var, value))
    return found


def _repeated(task: Task, repeat: int) -> Task:
    """A copy of ``task`` repeated ``repeat`` times; the user's object is left alone."""
    copy = Task(task.name)
    copy.entries = list(task.entries)
    return copy.repeat(repeat) if repeat > 1 else copy


class _Collector:
    def __init__(self, project: Project, global_seed: int, repeat: int) -> None:
        self.project = project
        self.root = Path(project.root)
        self.seed = global_seed
        self.repeat = repeat
        self.result = Collection()

    def error(self, nodeid: str, error: BaseException) -> None:
        self.result.reports.append(CollectReport(nodeid, "error", describe(error)))

    def import_module(self, path: Path) -> ModuleType | None:
        """Import a component module or task file and keep its fixtures; None (reported) when it fails."""
        try:
            module, warning = import_file(self.root, path)
        except (Exception, ExecuteWhileCollecting) as exc:
            self.error(relative(self.root, path), exc)
            return None
        if warning:
            self.result.reports.append(warning)
        discover_fixtures(self.result.fixtures, modules=[module])
        return module

    def plan(self, task: Task, prefix: str = "") -> list[TrialSpec]:
        return plan_task(_repeated(task, self.repeat), self.project, self.seed, self.result.fixtures, prefix)

    def plan_components(self, names: list[str]) -> None:
        """All in one plan (fast); when that fails, one by one to say which component is broken."""
        if not names:
            return
        whole = Task()
        for name in names:
            whole.component(name)
        try:
            self.result.items.extend(self.plan(whole))
            return
        except (Exception, ExecuteWhileCollecting):
            pass
        for name in names:
            try:
                self.result.items.extend(self.plan(Task().component(name)))
            except (Exception, ExecuteWhileCollecting) as exc:
                self.error(name, exc)

    def plan_versions(self, wanted: Iterable[tuple[str, Any]]) -> None:
        for name, version in wanted:
            try:
                self.result.items.extend(self.plan(Task().component(name, version)))
            except (Exception, ExecuteWhileCollecting) as exc:
                self.error(f"{name}[{version}]" if version is not None else name, exc)

    def yaml_components(self, inside: list[Path] | None) -> list[str]:
        names = []
        for name in list(self.project.components):
            entry = self.project.components[name]
            if inside is not None and not _module_inside(self.root, getattr(entry, "module", ""), inside):
                continue
            try:
                with collecting(f"the module of component '{name}'"):
                    target = entry.load()
            except (Exception, ExecuteWhileCollecting) as exc:
                self.error(name, exc)
                continue
            if not _opted_out(target):
                names.append(name)
        return names

    def discovered_components(self, modules: list[Path]) -> list[str]:
        known = {id(t) for t in _loaded_targets(self.project)}
        names = []
        for path in modules:
            module = self.import_module(path)
            if module is None:
                continue
            rel = relative(self.root, path)
            for target in components_in(module):
                if id(target) in known:
                    continue  # declared in machinable.yaml as well: collected once, under its yaml name
                name = component_name(target)
                if name in self.project.components:
                    other = getattr(self.project.components[name], "module", "?")
                    self.error(
                        rel, CollectionError(f"component '{name}' in {rel} is already defined in {other}")
                    )
                    continue
                try:
                    self.project.register(name, target, config=getattr(target, "__machinable_config__", None))
                except (Exception, ExecuteWhileCollecting) as exc:
                    self.error(f"{rel}::{name}", exc)
                    continue
                names.append(name)
        return names

    def task_files(self, files: list[Path]) -> None:
        for path in files:
            module = self.import_module(path)
            if module is None:
                continue
            rel = relative(self.root, path)
            for var, task in tasks_in(module):
                prefix = f"{rel}::" if var == "task" else f"{rel}::{var}::"
                try:
                    self.result.items.extend(self.plan(task, prefix))
                except (Exception, ExecuteWhileCollecting) as exc:
                    self.error(f"{rel}::{var}", exc)


def _loaded_targets(project: Project) -> Iterator[Any]:
    for name in list(project.components):
        try:
            yield project.components[name].load()
        except (Exception, ExecuteWhileCollecting):
            continue  # reported where the component itself is collected


def _module_inside(root: Path, module: str, paths: list[Path]) -> bool:
    if not module:
        return False
    base = root.joinpath(*module.split("."))
    return any(_within(c, paths) for c in (base.with_suffix(".py"), base / "__init__.py", base))


def collect(
    project: Project,
    global_seed: int,
    *,
    paths: list[Path] | None = None,
    versions: Iterable[tuple[str, Any]] = (),
    repeat: int = 1,
    components: bool = True,
) -> Collection:
    """Collect the project (or only the files and folders in ``paths``) into trial specs.

    ``versions``: extra ``(component, version)`` trials to plan (targets such as ``optimization[~mnist]``).
    ``components=False`` skips the project's components and task files (only ``versions`` are planned).
    Errors are reported per item in ``Collection.reports``; nothing here raises for a broken project file.
    """
    collector = _Collector(project, global_seed, repeat)
    root = Path(project.root)
    result = collector.result
    with collecting("the project"):
        try:
            discover_fixtures(result.fixtures, root=root)
        except CollectionError as exc:
            collector.error(f"{CONF_MODULE}.py", exc)
        if components:
            inside = None if paths is None else [p.resolve() for p in paths]
            try:
                files = find_files(root, declared_modules(project))
            except CollectionError as exc:
                collector.error("machinable.yaml", exc)
                files = find_files(root)
            for entry in files.unmatched:  # most likely a typo: say so instead of collecting less in silence
                message = f"machinable.yaml: the collect: entry '{entry}' matches no module of the project"
                result.reports.append(CollectReport("machinable.yaml", "warning", message))
            modules, task_files = files.component_modules, files.task_files
            if inside is not None:
                modules = [m for m in modules if _within(m, inside)]
                task_files = [t for t in task_files if _within(t, inside)]
                # A module named explicitly is searched for components even if no pattern matches it.
                modules += [
                    p for p in inside if p.suffix == ".py" and p.is_file() and p not in modules + task_files
                ]
            names = collector.yaml_components(inside)
            names += collector.discovered_components(modules)
            collector.plan_components(names)
            collector.task_files(task_files)
        collector.plan_versions(versions)
    try:
        check_definitions(result.fixtures.values())
    except CollectionError as exc:
        collector.error("fixtures", exc)
    return result


def _within(path: Path, inside: list[Path]) -> bool:
    resolved = path.resolve()
    return any(resolved == p or p in resolved.parents for p in inside)
