"""Overrides applied to selected trials: ``machinable linreg lr=0.1,0.01`` and ``ml.execute(..., overrides=)``.

Each selected trial is resolved again from its recipe (the version elements it was planned from) with the
overrides as one more strict element, after its versions and parametrizations and before references resolve;
a sweep makes one trial per point, with the point's ``key=value`` part in the node id (before the repeat) and in
the keywords. Seeds follow the node ids, so a value added to a sweep leaves the other trials' seeds alone.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from machinable import ids
from machinable.config.overrides import Override, sweep
from machinable.errors import UsageError

if TYPE_CHECKING:
    from machinable.config.project import Project
    from machinable.trials import TrialSpec


def apply_overrides(
    items: list[TrialSpec], overrides: list[Override], project: Project, global_seed: int
) -> list[TrialSpec]:
    """``items`` with ``overrides`` applied, one trial per sweep point: per planned configuration (in plan order)
    each point in sweep order, with its repeats together, as ``@parametrize`` orders them."""
    if not overrides:
        return items
    points = sweep(overrides)
    groups: dict[int, list[TrialSpec]] = {}  # the repeats of one planned configuration share its recipe
    for item in items:
        if item.recipe is None:
            raise UsageError(
                f"overrides cannot be applied to {item.node_id}: it was not planned from a version"
            )
        groups.setdefault(id(item.recipe), []).append(item)
    swept: list[TrialSpec] = []
    for repeats in groups.values():
        recipe = repeats[0].recipe
        for point in points:
            [version] = project.resolve(repeats[0].component, (*recipe.elements, point.element))
            parts = [*recipe.parts, ids.shorten(point.id)]
            for item in repeats:
                nid = ids.node_id(
                    recipe.name, parts, recipe.occurrence, item.repeat_number, item.repeat_total
                )
                swept.append(
                    replace(
                        item,
                        node_id=nid,
                        uid=ids.trial_uid(nid),
                        seed=ids.trial_seed(global_seed, nid),
                        config=version.config,
                        versions=tuple(version.versions),
                        keywords=(*item.keywords, *point.keywords),
                    )
                )
    return swept
