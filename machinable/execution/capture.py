"""What a running trial prints and logs goes to its storage (and, with echo, to the console); its deadline and
the warning signals that preempt it."""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TextIO

from machinable.errors import TrialPreempted, TrialTimeout

if TYPE_CHECKING:
    from machinable.storage import TrialWriter

_LOG_FORMAT = logging.Formatter("%(asctime)s %(levelname)s %(message)s")
# The signals that warn a running trial that it is about to be stopped (a scheduler preempting it, ``kill PID``):
# each raises TrialPreempted inside it. The Slurm worker adds its ``--signal`` (SIGUSR2).
WARNING_SIGNALS: tuple[int, ...] = (signal.SIGTERM,)


class _Tee:
    """Writes to the console stream and to the trial's output.log."""

    def __init__(self, console: TextIO | None, stored: Callable[[], TextIO]) -> None:
        self._console = console
        self._stored = stored
        self._file: TextIO | None = None

    def write(self, text: str) -> int:
        if self._console is not None:
            self._console.write(text)
        if self._file is None:
            self._file = self._stored()
        self._file.write(text)
        return len(text)

    def flush(self) -> None:
        if self._console is not None:
            self._console.flush()
        if self._file is not None:
            self._file.flush()

    def isatty(self) -> bool:
        return False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._console or sys.__stdout__, name)


class _TrialLogHandler(logging.Handler):
    """Sends ``self.log`` to log.txt and to the (captured) console of the running trial."""

    def __init__(self) -> None:
        super().__init__()
        self.trial: TrialWriter | None = None
        self.echo = True
        self._file: TextIO | None = None

    def emit(self, record: logging.LogRecord) -> None:
        if self.trial is None:
            return
        try:
            line = _LOG_FORMAT.format(record) + "\n"
            if self._file is None:
                self._file = self.trial.log_stream()
            self._file.write(line)
            self._file.flush()
            if self.echo:
                sys.stderr.write(f"{record.levelname} {record.getMessage()}\n")
        except Exception:  # logging must never fail a trial
            self.handleError(record)

    def attach(self, trial: TrialWriter | None, echo: bool) -> None:
        self.trial, self.echo, self._file = trial, echo, None


_handler = _TrialLogHandler()
trial_logger = logging.getLogger("machinable.trial")
trial_logger.addHandler(_handler)
trial_logger.setLevel(logging.DEBUG)
trial_logger.propagate = False


@contextmanager
def captured_output(tw: TrialWriter, echo: bool) -> Iterator[None]:
    out, err = sys.stdout, sys.stderr
    sys.stdout = _Tee(out if echo else None, tw.output_stream)  # type: ignore[assignment]
    sys.stderr = _Tee(err if echo else None, tw.output_stream)  # type: ignore[assignment]
    _handler.attach(tw, echo)
    try:
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        sys.stdout, sys.stderr = out, err
        _handler.attach(None, echo)


class Deadline:
    """What ``deadline`` yields: ``expired`` is set once the timeout has passed, even when the trial caught the
    TrialTimeout raised inside it, so that such a trial still fails (see ``run_trial``)."""

    __slots__ = ("seconds", "expired")

    def __init__(self, seconds: float | None) -> None:
        self.seconds = seconds
        self.expired = False

    def error(self) -> str:
        return f"machinable.errors.TrialTimeout: trial timed out after {self.seconds:g} s"


@contextmanager
def deadline(seconds: float | None) -> Iterator[Deadline]:
    """A timeout for in-process trials, by SIGALRM where it can be used (the main thread on Unix)."""
    state = Deadline(seconds)
    usable = (
        seconds and hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()
    )
    if not usable:
        yield state
        return

    def expire(signum: int, frame: Any) -> None:
        state.expired = True
        raise TrialTimeout(f"trial timed out after {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield state
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


class _Warned:
    """The warning signal this process received inside its outermost ``preemptible`` block, if any."""

    pid = 0  # the process the state is of: a forked worker starts afresh, whatever its parent was doing
    depth = 0
    signum: int | None = None
    installed: frozenset[int] = frozenset()  # the signals the blocks entered so far handle


@contextmanager
def preemptible(signals: tuple[int, ...] = WARNING_SIGNALS) -> Iterator[None]:
    """While inside (in the main thread; elsewhere Python cannot handle signals), the first of ``signals`` raises
    TrialPreempted; later ones are ignored until the outermost such block ends, so that a second SIGTERM (a
    scheduler's and then the controller's own, forwarded) cannot cut short the checkpoint the first one asked for.
    Blocks nest: the controller's run holds one (local engine: around every trial's own)."""
    if not signals or threading.current_thread() is not threading.main_thread():
        yield
        return
    if _Warned.pid != os.getpid():
        _Warned.pid, _Warned.depth, _Warned.signum, _Warned.installed = os.getpid(), 0, None, frozenset()
    if _Warned.depth and _Warned.installed.issuperset(signals):
        # Inside a block that handles them already (the run's, around each trial's): installing the same handler
        # again would cost two signal.signal calls per signal and trial, for nothing.
        _Warned.depth += 1
        try:
            yield
        finally:
            _Warned.depth -= 1
        return

    def warn(signum: int, frame: Any) -> None:
        if _Warned.signum is None:
            _Warned.signum = signum
            raise TrialPreempted(signum)

    previous = {signum: signal.signal(signum, warn) for signum in signals}
    installed, _Warned.installed = _Warned.installed, _Warned.installed | frozenset(signals)
    _Warned.depth += 1
    try:
        yield
    finally:
        for signum, handler in previous.items():
            # None: a handler installed from C (not Python's); the default is the closest to put back.
            signal.signal(signum, signal.SIG_DFL if handler is None else handler)
        _Warned.installed = installed
        _Warned.depth -= 1
        if _Warned.depth == 0:
            _Warned.signum = None


@contextmanager
def warnings_held() -> Iterator[None]:
    """The warning signals that the ``preemptible`` blocks entered handle wait while machinable saves a row of its
    own (an iteration's): a preemption then comes before or after the row, never half-way through its writing
    and counting, so the checkpoint it saves and the rows it covers agree."""
    signals = _Warned.installed if _Warned.pid == os.getpid() else frozenset()
    if not signals or threading.current_thread() is not threading.main_thread():
        yield
        return
    with signals_held(signals):
        yield


@contextmanager
def signals_held(signals: Iterable[int]) -> Iterator[None]:
    """``signals`` wait (are blocked) in this thread inside the block, and are handled when it ends."""
    mask = getattr(signal, "pthread_sigmask", None)  # POSIX
    if mask is None:
        yield
        return
    previous = mask(signal.SIG_BLOCK, set(signals))
    try:
        yield
    finally:
        mask(signal.SIG_SETMASK, previous)
