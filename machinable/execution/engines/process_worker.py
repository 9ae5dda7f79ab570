"""The main function of a ``process`` engine worker: receive trials, run them, send results back.

A worker is started forked (it inherits every spec) or from a fresh interpreter (``forkserver``, ``spawn``: specs
arrive pickled, and the worker first takes the controller's environment, working directory and ``sys.path`` as they
are now). Before each trial it applies the trial's :class:`~machinable.execution.placement.Placement` (thread budget,
GPUs). It dies with its controller: SIGTERM first (its trial is preempted and may save a checkpoint), and
``kill_grace`` seconds later it exits whatever it is doing, through faulthandler's watchdog, a native thread: a
worker stuck inside a native library (a deadlocked OpenMP pool) never runs the Python handler of the signal.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from machinable.errors import TrialPreempted
from machinable.execution.engines import crash_files
from machinable.execution.engines.worker import (
    INTERRUPT_SIGNAL,
    WorkerContext,
    close_environment,
    held_signals,
    progress_sender,
    run,
)

if TYPE_CHECKING:
    from multiprocessing.connection import Connection

    from machinable.trials import TrialResult, TrialSpec

# seconds between two looks of a worker at whether its controller still runs
ORPHAN_POLL = 1.0


@dataclass
class Surroundings:
    """What a worker started from a fresh interpreter takes over from its controller (a forked one has it)."""

    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    cwd: str = field(default_factory=os.getcwd)
    path: list[str] = field(default_factory=lambda: list(sys.path))

    def enter(self) -> None:
        os.environ.clear()
        os.environ.update(self.environ)
        with contextlib.suppress(OSError):
            os.chdir(self.cwd)
        sys.path[:] = self.path


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def worker_main(
    conn: Connection,
    specs: list[TrialSpec],
    context: WorkerContext,
    crash_file: str,
    progress: bool = False,
    inherited: Iterable[Connection] = (),
    surroundings: Surroundings | None = None,
    kill_grace: float = 1.0,
) -> None:
    """Receive ``(spec index (fork) or spec, placement)``, run the spec, send its result back (and, with
    ``progress``, the running trial's record rows, throttled); ``None`` means stop. ``inherited``: the
    controller's connection ends a forked worker holds (closed here: only the controller may keep them open)."""
    import faulthandler

    for other in inherited:
        with contextlib.suppress(OSError):
            other.close()
    if surroundings is not None:
        surroundings.enter()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the controller's: it interrupts us itself
    signal.signal(INTERRUPT_SIGNAL, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)  # while idle; a running trial is preempted by it instead
    _die_with_parent(crash_file, kill_grace)
    crash_log = open(crash_file, "w", encoding="utf-8")  # noqa: SIM115 - lives as long as the process
    faulthandler.disable()
    for name in ("SIGSEGV", "SIGFPE", "SIGABRT", "SIGBUS", "SIGILL"):  # no inherited crash handlers (Ray's)
        with contextlib.suppress(AttributeError, OSError, ValueError):
            signal.signal(getattr(signal, name), signal.SIG_DFL)
    faulthandler.enable(crash_log, all_threads=False)
    try:
        _serve(conn, specs, context, progress_sender(conn) if progress else None)
    except KeyboardInterrupt:
        return
    finally:
        try:
            close_environment()
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            # Not dying of a signal, there is nothing in it for the controller to read; and a controller that
            # was killed (one way to get here) would never remove it.
            crash_files.remove(crash_file)


def _serve(conn: Connection, specs: list[TrialSpec], context: WorkerContext, send_progress: Any) -> None:
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return  # the controller is gone
        if message is None:
            return
        which, placement = message
        spec = specs[which] if isinstance(which, int) else which
        placement.apply()
        try:
            result = run(spec, context, send_progress)
        except TrialPreempted as exc:  # SIGTERM from outside: this trial ends, and the worker goes on
            result = exc.result  # type: ignore[attr-defined]
        except KeyboardInterrupt as exc:
            _send(conn, exc.result)  # type: ignore[attr-defined]
            return
        _send(conn, result)


def _die_with_parent(crash_file: str, grace: float) -> None:
    """Stop when the controller (or the fork server it started) dies, even by SIGKILL: forked siblings hold its
    pipe ends, so no EOF comes."""
    parent = os.getppid()
    if sys.platform.startswith("linux"):
        with contextlib.suppress(Exception):
            import ctypes

            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG
    if parent == 1 or os.getppid() != parent:  # the parent died before the request above took effect
        crash_files.remove(crash_file)
        os._exit(0)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(ORPHAN_POLL)
        # Nobody reads the crash file any more; the worker gets the grace of a timed-out trial to stop.
        crash_files.remove(crash_file)
        import faulthandler

        faulthandler.dump_traceback_later(grace + ORPHAN_POLL, exit=True, file=sys.__stderr__)

    threading.Thread(target=watch, name="machinable-orphan-watch", daemon=True).start()


def _send(conn: Connection, result: TrialResult) -> None:
    try:
        with held_signals():
            conn.send(result)
    except (BrokenPipeError, ConnectionResetError):
        raise KeyboardInterrupt from None  # the controller is gone
    except Exception:  # a record value that cannot be pickled: send the rows as they were stored (JSON)
        import json

        from machinable.storage.encoding import dumps

        result.records = json.loads(dumps(result.records))
        conn.send(result)
