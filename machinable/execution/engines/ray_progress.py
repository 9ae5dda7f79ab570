"""The ``ray`` engine's channel for running trials' record rows (``machinable_trial_progress``).

A small Ray actor (no CPU of its own) keeps the latest row each trial put into it; the engine takes what
arrived between its ``ray.wait`` calls without blocking and hands it to ``RunContext.progress``. It exists
only when a plugin wants rows (``RunContext.progress`` is set): otherwise workers send nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from machinable.execution.protocol import Progress

# seconds between two looks at the channel while trials run (the engine's ray.wait timeout)
POLL = 0.25


class _Rows:
    """The actor: the latest row of each trial since the last ``take``, in arrival order."""

    def __init__(self) -> None:
        self.rows: dict[str, dict[str, Any]] = {}

    def put(self, uid: str, row: dict[str, Any]) -> None:
        self.rows.pop(uid, None)
        self.rows[uid] = row

    def take(self) -> list[tuple[str, dict[str, Any]]]:
        rows, self.rows = self.rows, {}
        return list(rows.items())


class Channel:
    """The controller's end: ``handle`` goes to the tasks, :meth:`drain` hands the rows on."""

    def __init__(self, ray: Any, progress: Progress) -> None:
        self.ray = ray
        self.progress = progress
        self.handle: Any = ray.remote(_Rows).options(num_cpus=0, max_restarts=0).remote()
        self.taking: Any = None  # the ``take`` call under way

    @classmethod
    def open(cls, ray: Any, progress: Progress | None) -> Channel | None:
        return cls(ray, progress) if progress is not None else None

    def drain(self, wait: float = 0.0) -> None:
        """Hand on the rows of the ``take`` under way if it has come back (within ``wait`` seconds), and start
        the next one."""
        if self.handle is None:
            return
        if self.taking is None:
            self.taking = self.handle.take.remote()
        ready, _ = self.ray.wait([self.taking], timeout=wait)
        if not ready:
            return
        ref, self.taking = self.taking, None
        try:
            rows = self.ray.get(ref)
        except Exception:  # the actor is gone (the cluster lost its node): progress stops, trials go on
            self.handle = None
            return
        for uid, row in rows:
            self.progress(uid, row)

    def flush(self) -> None:
        """Everything put before now: a finished trial's last rows come before its result."""
        self.drain(wait=5.0)  # the take under way may predate the rows
        self.drain(wait=5.0)

    def close(self) -> None:
        if self.handle is not None:
            try:
                self.ray.kill(self.handle, no_restart=True)
            except Exception:  # Ray is shutting down already
                pass
            self.handle = None


def sender(handle: Any) -> Progress:
    """``progress(uid, row)`` in a Ray worker: puts the row into the channel (and waits until it is there, so
    that rows come before the trial's result)."""
    import ray

    def send(uid: str, row: dict[str, Any]) -> None:
        try:
            ray.get(handle.put.remote(uid, row))
        except ray.exceptions.RayError:  # the channel is gone: the trial goes on without showing progress
            pass

    return send
