"""A stored execution's plan: every planned trial's spec, and its status (``not started`` when it has none).

``execution.json`` keeps every trial's spec under ``"plan"`` (``trial.json`` has it too), so resume, reproduce
and ``show`` never need the project to be collected again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from machinable.trials import TrialSpec

if TYPE_CHECKING:
    from machinable.storage.reader import StoredExecution

NOT_STARTED = "not started"


def stored_specs(stored: StoredExecution) -> list[TrialSpec]:
    """Every trial's spec in plan order: ``execution.json``'s plan, then trials only ``trial.json`` describes."""
    specs: list[TrialSpec] = []
    seen: set[str] = set()
    plan = stored.info.get("plan")
    for info in plan if isinstance(plan, list) else []:
        spec = _spec(info)
        if spec is not None and spec.uid not in seen:
            specs.append(spec)
            seen.add(spec.uid)
    for trial in stored.trials:  # executions written before the plan was kept, or trials added later
        if trial.uid not in seen:
            spec = _spec({"uid": trial.uid, **trial.info})
            if spec is not None:
                specs.append(spec)
                seen.add(spec.uid)
    return specs


def _spec(info: Any) -> TrialSpec | None:
    if not isinstance(info, dict):
        return None
    try:
        return TrialSpec.from_info(info)
    except (KeyError, TypeError, ValueError):  # a damaged or foreign trial.json: nothing to run
        return None


def trial_states(stored: StoredExecution) -> list[tuple[TrialSpec, str]]:
    """Every planned trial with its status (``'not started'`` when it has none), in plan order."""
    present = {t.uid: t for t in stored.trials}
    states = []
    for spec in stored_specs(stored):
        trial = present.get(spec.uid)
        status = trial.status if trial is not None else None
        states.append((spec, status or NOT_STARTED))
    return states
