"""A local Ray that the ``ray`` engine started ends with the process that started it, also when that is killed.

Ray ties most of such a Ray to the driver itself: the head processes (GCS, raylet, dashboard, monitors) get
SIGKILL when the driver dies (PR_SET_PDEATHSIG) and the workers exit once the raylet is gone. The raylet's agents
(the dashboard agent and the runtime-env agent) notice its death within seconds too, but then block for 60
seconds trying to report it to the GCS, which died with it: the timeout is fixed in Ray 2.x
(``ray._private.utils.publish_error_to_driver``) and no setting shortens it (not even
``RAY_gcs_rpc_server_reconnect_timeout_s``). So :func:`watch` starts a watchdog beside the Ray, which ends what
is left of its session as soon as the driver is gone.

The watchdog knows the session's processes by the files they hold open in the session directory (every Ray
process writes its logs there; the agents and workers overwrite their command line, and with it their
environment, with their title) among the processes of the driver's session id, which Ray's processes inherit: a
process of another Ray, or a ``tail -f`` of its logs from another terminal, is never touched. Only a Ray that
``ray.init`` started here gets one; a cluster the user started (``address=``, or Ray already initialised) is theirs.
The watchdog needs ``/proc`` (Linux); elsewhere Ray's own clean-up is all there is.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
from typing import Any

POLL = 0.2  # seconds between two looks at the driver
END_WITHIN = 5.0  # seconds the watchdog keeps ending the session's processes

_watchdogs: list[Any] = []  # subprocess.Popen of the watchdogs this process started


def watch(ray: Any, context: Any) -> None:
    """Start a watchdog for the local Ray that ``ray.init`` just started here (``context``: what it returned)."""
    if not sys.platform.startswith("linux"):
        return
    import subprocess

    try:
        session_dir = str(context.address_info["session_dir"])
    except (AttributeError, KeyError, TypeError):
        return  # another Ray than we know: its own clean-up applies
    _watchdogs[:] = [w for w in _watchdogs if w.poll() is None]  # reap the ones whose Ray was shut down
    command = [
        sys.executable,
        "-m",
        __name__,
        str(os.getpid()),
        str(os.getsid(0)),
        str(_raylet(ray)),
        session_dir,
    ]
    with contextlib.suppress(OSError):
        # A session of its own: neither Ctrl-C in the terminal nor a kill of the driver's process group reaches it.
        _watchdogs.append(
            subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
        )


def _raylet(ray: Any) -> int:
    """The pid of the raylet this process started, 0 if Ray does not say (then the watchdog stays as long as
    the driver, instead of ending with a Ray that the driver shuts down)."""
    try:
        return int(ray._private.worker._global_node.all_processes["raylet"][0].process.pid)
    except Exception:
        return 0


def main(driver: int, sid: int, raylet: int, session_dir: str) -> None:
    from machinable.storage.liveness import pid_gone

    while not pid_gone(driver):
        if raylet and pid_gone(raylet):
            # The driver's death kills the raylet a moment later (PR_SET_PDEATHSIG): one look more tells a
            # killed driver from one that shut Ray down and runs on (then Ray cleaned up after itself).
            time.sleep(POLL)
            if not pid_gone(driver):
                return
            break
        time.sleep(POLL)
    end(session_dir, sid)


def end(session_dir: str, sid: int) -> None:
    """Kill the processes of the Ray session in ``session_dir`` (of session id ``sid``) until none is left.

    SIGKILL, not SIGTERM: the agents are blocked in a call to the dead GCS and would not act on SIGTERM before
    it times out, and nothing can use any process of a session whose GCS and raylet are gone.
    """
    deadline = time.monotonic() + END_WITHIN
    while time.monotonic() < deadline:
        members = session_members(session_dir, sid)
        if not members:
            return
        for pid in members:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.1)


def session_members(session_dir: str, sid: int) -> list[int]:
    """The processes of session id ``sid`` that hold a file of ``session_dir`` open (zombies hold none)."""
    inside = os.path.realpath(session_dir) + os.sep
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == os.getpid():
            continue
        pid = int(name)
        try:
            if os.getsid(pid) != sid:
                continue
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:  # gone meanwhile, or not ours to look at
            continue
        for fd in fds:
            with contextlib.suppress(OSError):
                if os.readlink(f"/proc/{pid}/fd/{fd}").startswith(inside):
                    found.append(pid)
                    break
    return found


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4])
