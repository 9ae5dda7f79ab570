"""Claims: which process runs a stored trial again, and a short lock for updating ``execution.json``.

Whoever runs a trial first claims it with an atomic create (``Backend.create``: a hard link or ``O_EXCL`` on local
disk, a conditional put on object stores): the file ``.claim-<uid>.<n>.json`` in the execution folder, whose
``n`` counts the claims of that trial. The holder refreshes its ``heartbeat`` while it runs and marks the claim
``released`` when it is done. A claim that was released, whose process is gone (this host) or whose heartbeat
went stale may be taken over: by creating claim ``n + 1``, so of two processes taking it over only one succeeds.

``execution.json`` is updated by more than one process when resumes run at once: :class:`SharedExecutionWriter`
re-reads it under ``execution.json.lock`` (created the same way) and merges its keys into what is there.
"""

from __future__ import annotations

import json
import os
import re
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from machinable.storage import heartbeat
from machinable.storage.encoding import dumpb
from machinable.storage.liveness import process_gone
from machinable.storage.writer import EXECUTION_JSON, ExecutionWriter

if TYPE_CHECKING:
    from machinable.storage.backend import Backend
    from machinable.storage.url import StorageLocation

CLAIM_PREFIX = ".claim-"
_CLAIM = re.compile(r"^\.claim-(.+)\.(\d+)\.json$")
LOCK_STALE_AFTER = 10.0  # the execution.json lock is held for one read and one write


class TrialClaims:
    """The claims of the trials of one stored execution, and the ones this object holds."""

    def __init__(self, location: StorageLocation, folder: str, stale_after: float) -> None:
        self.io: Backend = location.backend()
        self.path = self.io.join(location.root, folder)
        self.stale_after = stale_after
        self.token = uuid.uuid4().hex
        self.held: dict[str, str] = {}  # uid -> the path of our claim
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def _name(self, uid: str, n: int) -> str:
        return self.io.join(self.path, f"{CLAIM_PREFIX}{uid}.{n}.json")

    def current(self) -> dict[str, int]:
        """uid -> the number of its latest claim, from one listing of the execution folder."""
        try:
            entries = self.io.listdir(self.path)
        except (FileNotFoundError, NotADirectoryError):
            return {}
        latest: dict[str, int] = {}
        for name, is_dir in entries:
            match = None if is_dir else _CLAIM.match(name)
            if match:
                uid, n = match.group(1), int(match.group(2))
                latest[uid] = max(n, latest.get(uid, 0))
        return latest

    def is_live(self, uid: str, n: int) -> bool:
        """Whether claim ``n`` of ``uid`` is held by a process that still runs it (not this object)."""
        info = self.read(uid, n)
        if info is None:
            return True  # being written (fsspec stores without atomic writes): taken
        if not info or info.get("released") or info.get("token") == self.token:
            return False
        if process_gone(info):
            return False
        beat = info.get("heartbeat")
        return isinstance(beat, int | float) and time.time() - beat <= self.stale_after

    def released(self, uid: str, n: int) -> bool:
        """Whether claim ``n`` of ``uid`` was given up (or is gone): its holder is done with the trial."""
        info = self.read(uid, n)
        return info is not None and bool(info.get("released", True))

    def read(self, uid: str, n: int) -> dict[str, Any] | None:
        """What claim ``n`` of ``uid`` holds ({} when it is gone); None while it is being written."""
        try:
            info = json.loads(self.io.read_bytes(self._name(uid, n)))
        except FileNotFoundError:
            return {}
        except ValueError:
            return None
        return info if isinstance(info, dict) else {}

    def held_elsewhere(self, uids: Iterable[str]) -> set[str]:
        """The trials among ``uids`` that another live process has claimed."""
        latest = self.current()
        return {uid for uid in uids if uid in latest and self.is_live(uid, latest[uid])}

    def acquire(self, uid: str) -> bool:
        """Claim trial ``uid``; False when another live process holds it (or took it over just now)."""
        n = self.current().get(uid, 0)
        if n and self.is_live(uid, n):
            return False
        return self.take(uid, n)

    def take(self, uid: str, after: int) -> bool:
        """Create claim ``after + 1`` of ``uid``; of all processes trying, exactly one gets True."""
        path = self._name(uid, after + 1)
        if not self.io.create(path, self._content()):
            return False
        with self._lock:
            self.held[uid] = path
        self._start_refresher()
        return True

    def held_number(self, uid: str) -> int:
        """The number of the claim of ``uid`` this object holds (0 when it holds none)."""
        path = self.held.get(uid)
        match = _CLAIM.match(path.rpartition("/")[2]) if path else None
        return int(match.group(2)) if match else 0

    def release(self, uids: Iterable[str] | None = None, outcome: dict[str, Any] | None = None) -> None:
        """Mark our claims (of ``uids``, default all) released; others may take the trials from now on.
        ``outcome`` stays in the claim: how the holder's run of the trial ended."""
        with self._lock:
            done = {
                uid: self.held.pop(uid)
                for uid in list(self.held if uids is None else uids)
                if uid in self.held
            }
            if not self.held:
                self._stop.set()
        for path in done.values():
            self.io.write_bytes(path, self._content(released=True, outcome=outcome), atomic=True)

    def _content(self, released: bool = False, outcome: dict[str, Any] | None = None) -> bytes:
        return dumpb(
            {
                **(outcome or {}),
                "token": self.token,
                "pid": os.getpid(),
                "host": socket.gethostname(),
                "heartbeat": time.time(),
                "released": released,
            }
        )

    def _start_refresher(self) -> None:
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
            self._stop.clear()
            self._thread = threading.Thread(target=self._refresh, name="machinable-claims", daemon=True)
            self._thread.start()

    def _refresh(self) -> None:
        interval = min(heartbeat.get_interval(), self.stale_after / 3)
        while not self._stop.wait(interval):
            with self._lock:
                paths = list(self.held.values())
                for path in paths:  # under the lock: a claim released meanwhile is never marked held again
                    try:
                        self.io.write_bytes(path, self._content(), atomic=True)
                    except OSError:
                        pass


def locked(io: Backend, path: str, action: Callable[[], Any], timeout: float = 30.0) -> Any:
    """Run ``action`` while holding the lock file ``path`` (a lock left by a dead process is taken over)."""
    content = dumpb({"pid": os.getpid(), "host": socket.gethostname(), "at": time.time()})
    until = time.time() + timeout
    while not io.create(path, content):
        try:
            info = json.loads(io.read_bytes(path))
        except FileNotFoundError:
            continue
        except ValueError:
            info = {}
        at = info.get("at") if isinstance(info, dict) else None
        if isinstance(info, dict) and (
            process_gone(info) or not isinstance(at, int | float) or time.time() - at > LOCK_STALE_AFTER
        ):
            try:
                io.remove(path)
            except FileNotFoundError:
                pass
            continue
        if time.time() > until:
            raise TimeoutError(f"could not lock '{path}' within {timeout:g} s")
        time.sleep(0.005)
    try:
        return action()
    finally:
        io.remove(path)


class SharedExecutionWriter(ExecutionWriter):
    """An ExecutionWriter for an execution that other processes update too: every write re-reads
    ``execution.json`` under its lock and merges the given keys into it; ``update`` computes them from it."""

    def write_execution(self, info: Any) -> None:
        self.update(lambda current: info)

    def update(self, change: Callable[[dict[str, Any]], Any]) -> None:
        """Under the lock: ``change(current execution.json)`` returns the keys to write."""
        self._prepare()

        def merge() -> None:
            self._info, self._encoded = None, {}
            self._info = self._read_info()
            ExecutionWriter.write_execution(self, change(dict(self._info)))

        locked(self._io, self._io.join(self.path, EXECUTION_JSON + ".lock"), merge)
