"""Choosing trials: TARGETS on the command line, and the built-in plugin ``select`` for ``-k EXPR``.

A target is one of:

- a file or folder (``tasks/example.py``, ``components/``): the trials collected from there; ``FILE::ID`` narrows
  to the node ids below it (``tasks/example.py::optimization``);
- a component name (``optimization``): every trial of that component, from machinable.yaml and task files;
- a node id or the start of one up to a bracket (``optimization[~mnist]``, ``tasks/example.py::sweep``);
- ``NAME[VERSION]`` of a known component that was not collected with that version: planned on the spot, so
  ``machinable 'optimization[~mnist]'`` runs a named version. VERSION is parts joined by ``-``: ``~version``,
  ``_mixin_`` or ``key=value`` (dotted keys, YAML values), e.g. ``optimization[~alexnet-learning_rate=0.5]``.

Anything else is a usage error that suggests the closest component.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from machinable.collection.expression import Expression
from machinable.errors import UsageError, did_you_mean
from machinable.hookspec import hookimpl

if TYPE_CHECKING:
    import argparse

    from machinable.execution.options import Config
    from machinable.execution.session import Session
    from machinable.trials import TrialSpec


@dataclass
class Targets:
    paths: list[tuple[Path, str]] = field(default_factory=list)  # (file or folder, node id suffix after ::)
    names: list[str] = field(default_factory=list)

    @property
    def collect_paths(self) -> list[Path] | None:
        """Files to restrict collection to: only when every target is a path (a name may be anywhere)."""
        if not self.paths or self.names:
            return None
        return [p for p, _ in self.paths]


def parse_targets(args: Iterable[str], root: Path, invocation_dir: Path) -> Targets:
    targets = Targets()
    for arg in args:
        head, sep, rest = arg.partition("::")
        for base in (invocation_dir, root):
            candidate = (base / head).resolve() if head else None
            if candidate is not None and candidate.exists() and (head.endswith(".py") or candidate.is_dir()):
                if root.resolve() not in (candidate, *candidate.parents):
                    raise UsageError(f"target '{arg}' is outside the project {root}")
                targets.paths.append((candidate, rest if sep else ""))
                break
        else:
            if head.endswith(".py") or "/" in head:
                raise UsageError(f"file or folder not found: {head}")
            targets.names.append(arg)
    return targets


def _starts(node_id: str, prefix: str) -> bool:
    return node_id == prefix or (
        node_id.startswith(prefix) and node_id[len(prefix) : len(prefix) + 1] in ("[", "#", ":")
    )


def matches_name(item: TrialSpec, target: str) -> bool:
    return item.component == target or _starts(item.node_id, target)


def source_path(item: TrialSpec, root: Path) -> Path | None:
    """The file a trial was collected from: its task file, or its component's module."""
    if "::" in item.node_id:
        return root / item.node_id.split("::", 1)[0]
    base = root.joinpath(*item.module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def matches_path(item: TrialSpec, path: Path, suffix: str, root: Path) -> bool:
    source = source_path(item, root)
    if source is None:
        return False
    source = source.resolve()
    if not (source == path or path in source.parents):
        return False
    if not suffix:
        return True
    rel = source.relative_to(root.resolve()).as_posix()
    return _starts(item.node_id, f"{rel}::{suffix}") or (
        "::" not in item.node_id and matches_name(item, suffix)
    )


def select(items: list[TrialSpec], targets: Targets, root: Path) -> tuple[list[TrialSpec], list[str]]:
    """(items any target matches, name targets that matched nothing)."""
    if not targets.paths and not targets.names:
        return items, []
    unmatched = [n for n in targets.names if not any(matches_name(i, n) for i in items)]
    chosen = [
        item
        for item in items
        if any(matches_name(item, n) for n in targets.names)
        or any(matches_path(item, p, s, root) for p, s in targets.paths)
    ]
    return chosen, unmatched


def unmatched_ids(items: list[TrialSpec], targets: Targets, root: Path) -> list[str]:
    """``FILE::ID`` targets that name no collected trial (pytest says ``ERROR: not found``), relative to root."""
    from machinable.collection.collect import relative

    return [
        f"{relative(root, path)}::{suffix}"
        for path, suffix in targets.paths
        if suffix and not any(matches_path(item, path, suffix, root) for item in items)
    ]


def parse_version(text: str) -> Any:
    """The version a ``NAME[VERSION]`` target names (the inverse of a node id's version part), in override
    spelling: ``~alexnet-data.name=mnist``, ``lr=0.1,0.01`` (a sweep: a list of versions)."""
    from machinable.config.overrides import bracket_version

    return bracket_version(text)


def version_targets(
    unmatched: list[str], known: Iterable[str], errors: Iterable[Any] = ()
) -> list[tuple[str, Any]]:
    """``NAME[VERSION]`` targets of known components, to be planned; other unmatched targets are errors.

    ``errors``: the collection's error reports; a target whose component failed to import is reported with
    that import error, and a name no one defines names the modules that failed (they may define it)."""
    names, errors = list(known), list(errors)
    wanted = []
    for target in unmatched:
        match = re.fullmatch(r"([^\[\]]+)\[([^\[\]]+)\]", target)
        name = target.split("[", 1)[0]
        failed = [r for r in errors if r.nodeid == name]
        if failed:
            raise UsageError(f"target '{target}' cannot be collected: {failed[0].message}")
        if match and match.group(1) in names:
            wanted.append((match.group(1), parse_version(match.group(2))))
            continue
        broken = [r.nodeid for r in errors]
        hint = did_you_mean(name, names)
        raise UsageError(
            f"unknown target '{target}'{hint}: not a component, node id, module or task file"
            + ("" if hint else f"; components: {', '.join(names[:20]) or 'none'}")
            + (f"; these failed to collect and may define it: {', '.join(broken)}" if broken else "")
        )
    return wanted


# -- the ``select`` plugin: -k EXPR -----------------------------------------------------------------------------


@hookimpl
def machinable_addoption(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-k",
        dest="keyword",
        default="",
        metavar="EXPR",
        help="only trials whose node id or keywords match EXPR: substrings combined with and, or, not, "
        "parentheses, e.g. -k 'optimization and not mnist' (case-insensitive)",
    )


def _expression(config: Config) -> Expression:
    """The compiled ``-k`` of ``config`` (once per config: the command's, or a re-run's own)."""
    expression = config.stash.get("select.keyword")
    if expression is None:
        expression = config.stash["select.keyword"] = Expression.compile(
            getattr(config.option, "keyword", "") or ""
        )
    return expression


@hookimpl
def machinable_configure(config: Config) -> None:
    _expression(config)  # compiled now, so that a malformed expression is a usage error before collection


@hookimpl
def machinable_collect_modifyitems(session: Session, config: Config, items: list[TrialSpec]) -> None:
    expression = _expression(config)
    if not expression.text.strip():
        return
    kept, dropped = [], []
    for item in items:
        (kept if expression.matches((item.node_id, *item.keywords)) else dropped).append(item)
    if dropped:
        config.pm.hook.machinable_deselected(items=dropped)
        items[:] = kept
