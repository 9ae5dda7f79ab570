"""Checkpoints of a running class component: ``save_checkpoint()`` and ``on_save``, ``on_restore`` when a resumed
trial continues from one, and what a trial stopped by a warning signal or its timeout saves.

A checkpoint covers what the trial recorded before it: ``save_checkpoint()`` first ends the rows being filled
(inside ``on_execute_iteration(i)`` the default row gets ``_iteration=i``; a preemption, which may come half-way
through a row, leaves them out), and its marker keeps every record scope's number of saved rows and the
iteration to go on with (a checkpoint taken during iteration ``i``, also by a preemption, covers it). A trial
resumed from it starts with exactly those rows (the rows the earlier attempt wrote after it are dropped, so
records continue without duplicates), then runs ``on_seeding``, ``on_create``, ``on_restore(path)``,
``on_execute`` and the iterations after the checkpoint's. The layout is storage/checkpoints.py's.
"""

from __future__ import annotations

import time
import traceback
from typing import TYPE_CHECKING

from machinable.components.component import Component
from machinable.errors import TrialPreempted, TrialTimeout
from machinable.storage.checkpoints import checkpoint_folder, fetched, load_checkpoint, staged, write_marker
from machinable.storage.local_directory import sync_local_directory

if TYPE_CHECKING:
    from machinable.storage import TrialWriter


class TrialCheckpoints:
    """The checkpoints of one running trial (``Component._checkpoints``)."""

    __slots__ = ("tw", "number", "executing")

    def __init__(self, tw: TrialWriter) -> None:
        self.tw = tw
        self.number = 0  # the last checkpoint's number (the restored one's in a resumed trial)
        self.executing = False  # on_execute has begun: only from then on is there progress a preemption saves

    def save(self, component: Component) -> str:
        """``save_checkpoint()``: the rows being filled are saved, then :meth:`take`."""
        for scope, record in component._records.items():
            if scope == "default" and component._iteration is not None:
                record.save(_iteration=component._iteration)
            else:
                record.save()
        return self.take(component)

    def take(self, component: Component) -> str:
        """A new checkpoint of ``component``; returns its folder in the trial's storage."""
        # Taken before on_save runs: a checkpoint that failed half-way is never written into again.
        self.number += 1
        rel = checkpoint_folder(self.number)
        with staged(self.tw, rel) as path:
            component.on_save(path)
        # Before the marker: a complete checkpoint has the trial's local directory in storage.
        sync_local_directory(self.tw)
        marker = {
            "number": self.number,
            "time": time.time(),
            "records": {scope: len(record.rows) for scope, record in component._records.items()},
            "iteration": component._next_iteration,
        }
        write_marker(self.tw, rel, marker)
        return self.tw._prefix + rel

    def reload(self, component: Component, rel: str) -> None:
        """Before the events of a trial resumed from the checkpoint ``rel``: its records start with the rows the
        checkpoint kept, its numbering and its iterations go on after the checkpoint's."""
        marker, kept = load_checkpoint(self.tw, rel)
        for scope, rows in kept.items():
            component.record_writer(scope).rows.extend(rows)
        self.number = int(marker["number"])
        component._next_iteration = marker.get("iteration")

    def restore(self, component: Component, rel: str) -> None:
        """``on_restore`` with the files of the checkpoint ``rel`` (after on_create, before on_execute)."""
        with fetched(self.tw, rel) as path:
            component.on_restore(path)

    def stopped(self, component: Component, exc: TrialPreempted | TrialTimeout) -> bool:
        """The trial is stopped by ``exc`` (a warning signal, its timeout): a checkpoint is saved if the component
        implements ``on_save`` and ``on_execute`` has begun. Returns whether one was saved; what happened is
        noted on ``exc`` for the trial's error (:func:`ended_by`)."""
        saved = None
        if type(component).on_save is Component.on_save:
            note = "no checkpoint saved (the component has no on_save)"
        elif not self.executing:
            note = "no checkpoint saved (stopped before on_execute began)"
        else:
            try:
                self.take(component)
            except Exception as failed:  # the stop is what the trial reports; the failed save is noted on it
                note = f"no checkpoint saved: on_save failed: {type(failed).__name__}: {failed}"
            else:
                saved, note = self.number, f"checkpoint {self.number} saved"
        setattr(exc, _NOTE, (saved, note))
        return saved is not None


# The attribute of a stopping exception that says whether the stop saved a checkpoint: (number or None, note).
_NOTE = "__machinable_checkpoint__"


def ended_by(exc: BaseException) -> tuple[str, str]:
    """The status and error of a trial that raised ``exc``: ``preempted`` for a warning signal, and for a timeout
    that left a checkpoint to resume from (the error's last line says which, and whether a checkpoint was
    saved); else ``failed`` with the traceback."""
    trace = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    saved, note = getattr(exc, _NOTE, (None, "no checkpoint saved"))
    if isinstance(exc, TrialPreempted) or saved is not None:
        return "preempted", f"{trace}{exc}; {note}"
    return "failed", trace
