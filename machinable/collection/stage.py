"""The built-in plugin ``collection``: collect a session's trials from its source, then select them.

Sources, one per entry point:

- :class:`TaskSource`: ``ml.execute(task)``: the task planned against the project; a broken plan raises.
- :class:`ProjectSource`: the ``machinable`` command: the project's components and task files, narrowed to the
  targets on the command line; errors become collection reports, per file or component.
- :class:`PlannedTrials`: re-runs (resume, reproduce, the determinism check): trial specs planned before.

After the source, ``machinable_collect_modifyitems`` selects (``-k``, ``--lf``, plugins); what it removed is
``session.deselected``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from machinable import ids
from machinable.collection.sweep import apply_overrides
from machinable.errors import UsageError
from machinable.hookspec import hookimpl

if TYPE_CHECKING:
    from machinable.collection.task import Task
    from machinable.components.fixtures import FixtureDef
    from machinable.config.overrides import Override
    from machinable.execution.session import Session
    from machinable.trials import TrialSpec


@hookimpl(trylast=True)
def machinable_collection(session: Session) -> bool:
    hook = session.pm.hook
    collect_current(session)
    for report in session.reports:
        hook.machinable_collectreport(report=report)
    session.collected = len(session.items)
    items = list(session.items)
    hook.machinable_collect_modifyitems(session=session, config=session.config, items=items)
    # By uid: a plugin may hand an item back changed (--needed gives it the seed it ran with before).
    kept = {item.uid for item in items} | {r.uid for r in session.cached} | {s.uid for s in session.elsewhere}
    session.deselected.extend(item for item in session.items if item.uid not in kept)
    session.items = items
    hook.machinable_collection_finish(session=session)
    return True


def collect_current(session: Session) -> None:
    """The session's source collects the code as it is on disk: project modules imported before whose files
    changed since are imported again (:func:`machinable.config.importing.refresh_modules`)."""
    from machinable.config.importing import note_modules, refresh_modules

    root = session.project.root if session.project is not None else None
    if root is not None:
        refresh_modules(root)
    session.source.collect(session)
    if root is not None:
        note_modules(root)


class TaskSource:
    """The trials of an ``ml.Task``, planned against the session's project."""

    def __init__(self, task: Task, overrides: Sequence[Override] = ()) -> None:
        self.task = task
        self.overrides = list(overrides)

    def collect(self, session: Session) -> None:
        from machinable.collection.plan import plan_task
        from machinable.components.fixtures import check_definitions, discover_fixtures

        assert session.project is not None
        fixtures = discover_fixtures(root=session.project.root)
        seed = ids.decode(session.execution_id)
        items = plan_task(self.task, session.project, seed, fixtures=fixtures)
        check_definitions(
            fixtures.values()
        )  # a fixture asking for a missing one: an error before anything runs
        session.items = apply_overrides(items, self.overrides, session.project, seed)
        session.fixtures = fixtures


class ProjectSource:
    """The project's components and task files, as the command collects them, narrowed to ``targets``."""

    def __init__(
        self,
        targets: Sequence[str],
        invocation_dir: Path,
        repeat: int = 1,
        overrides: Sequence[Override] = (),
    ) -> None:
        self.targets, self.invocation_dir, self.repeat = list(targets), invocation_dir, repeat
        self.overrides = list(overrides)

    def collect(self, session: Session) -> None:
        from machinable.collection.collect import collect
        from machinable.collection.select import parse_targets, select, unmatched_ids, version_targets

        project = session.project
        assert project is not None
        root, seed = Path(project.root), ids.decode(session.execution_id)
        targets = parse_targets(self.targets, root, self.invocation_dir)
        collection = collect(project, seed, paths=targets.collect_paths, repeat=self.repeat)
        session.reports, session.fixtures = collection.reports, collection.fixtures
        items, unmatched = select(collection.items, targets, root)
        missing = unmatched_ids(collection.items, targets, root)
        if missing and not collection.errors:  # a file that failed to import explains itself
            raise UsageError(f"not found: {', '.join(missing)} (no collected trial has that node id)")
        if unmatched:
            wanted = version_targets(unmatched, project.components, collection.errors)
            extra = collect(project, seed, versions=wanted, repeat=self.repeat, components=False)
            if extra.errors:
                raise UsageError("; ".join(r.message for r in extra.errors))
            session.fixtures.update(extra.fixtures)
            known = {i.node_id for i in items}
            items += [i for i in extra.items if i.node_id not in known]
        session.items = apply_overrides(items, self.overrides, project, seed)


class PlannedTrials:
    """Trial specs planned before (a stored plan), with the fixtures they may ask for."""

    def __init__(self, specs: Iterable[TrialSpec], fixtures: Iterable[FixtureDef] = ()) -> None:
        self.specs = list(specs)
        self.fixtures = {d.name: d for d in fixtures}

    def collect(self, session: Session) -> None:
        session.items = list(self.specs)
        session.fixtures = dict(self.fixtures)
