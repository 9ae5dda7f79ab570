"""One background thread per process that marks running trials as alive.

Every ``interval`` seconds it writes ``heartbeat`` into ``status.json`` of each registered trial that has not
been marked for half an interval, so trials shorter than the interval cost one set insertion and removal.
Readers call a running trial whose last mark is older than the stale limit (at least 3 intervals) crashed.
"""

from __future__ import annotations

import os
import threading
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from machinable.storage.writer import TrialWriter

DEFAULT_INTERVAL = 5.0


class _Heartbeat:
    def __init__(self) -> None:
        self.interval = DEFAULT_INTERVAL
        self._writers: set[TrialWriter] = set()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def register(self, writer: TrialWriter) -> None:
        with self._lock:
            self._writers.add(writer)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="machinable-heartbeat", daemon=True)
                self._thread.start()

    def unregister(self, writer: TrialWriter) -> None:
        with self._lock:
            self._writers.discard(writer)

    def beat(self) -> None:
        now = time.time()
        with self._lock:
            writers = list(self._writers)
        for writer in writers:
            try:
                writer._beat(now, self.interval)
            except Exception:  # noqa: BLE001 - a full disk must not kill the thread that marks other trials
                pass

    def _run(self) -> None:
        while True:
            self._wake.wait(self.interval)
            self._wake.clear()
            self.beat()

    def _after_fork(self) -> None:
        # A forked child has no heartbeat thread and does not run its parent's trials.
        self._writers = set()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread = None


HEARTBEAT = _Heartbeat()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=HEARTBEAT._after_fork)


def set_interval(seconds: float) -> None:
    """Change how often running trials are marked (default 5 s); readers should use a stale limit of 3x it."""
    if not seconds > 0:
        raise ValueError(f"heartbeat interval must be positive, not {seconds!r}")
    HEARTBEAT.interval = float(seconds)
    HEARTBEAT._wake.set()


def get_interval() -> float:
    return HEARTBEAT.interval
