"""Whether the process of a trial that says it is running is still there (this host only)."""

from __future__ import annotations

import os
from typing import Any


def process_gone(status: dict[str, Any]) -> bool:
    # A trial of this host whose process no longer exists crashed, whatever its last heartbeat says.
    import socket

    pid, host = status.get("pid"), status.get("host")
    if not isinstance(pid, int) or host != socket.gethostname():
        return False
    return pid_gone(pid)


def pid_gone(pid: int) -> bool:
    """Whether process ``pid`` of this host has ended (or is a zombie); False when that cannot be told: not
    POSIX (Windows' os.kill(pid, 0) would send CTRL_C_EVENT instead of probing), or no permission to probe."""
    if os.name != "posix" or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False
    return is_zombie(pid)


def is_zombie(pid: int) -> bool:
    # A killed process stays in the process table until its parent reaps it (forever, under an init that
    # does not reap orphans), and signal 0 still reaches it: it is dead all the same.
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return False  # no /proc (macOS): signal 0 is all there is
    # The state follows the command name, which is in parentheses and may itself contain ') '.
    return stat[stat.rfind(b")") + 2 : stat.rfind(b")") + 3] == b"Z"
