"""The live display of a running execution, for the terminal reporter (``machinable_trial_progress``).

On a terminal a line at the bottom is redrawn in place: ``[=====>    ] 12/40 trials  elapsed 0:00:12  ETA
0:00:28`` (the ETA from the mean duration of the finished trials and the workers busy), and with ``-v`` a line per
running trial with its latest record values below it. The report's own output (progress letters, ``-v`` lines)
still goes above it: the reporter writes through :class:`_Stream`, which takes the display away, writes, and
draws it again in one write (at most ~20 writes a second; new record values at most ~4 redraws a second). It is
cleared at the end and on Ctrl-C, so the final screen holds the report alone. Nothing is redrawn when trials
echo their output (``-s``) or the terminal cannot move the cursor (``TERM=dumb``).

Elsewhere (a pipe, CI logs) nothing is redrawn: with ``-v`` a running trial gets at most one line
``node_id: loss=0.12 acc=0.9`` per ``MACHINABLE_PROGRESS_INTERVAL`` seconds (default 10), the first after it
has run that long; without ``-v`` nothing is added (and workers send no rows at all).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import threading
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, TextIO

from machinable.hookspec import hookimpl

if TYPE_CHECKING:
    from machinable.execution.session import Session
    from machinable.reporting.terminal import TerminalReporter
    from machinable.trials import TrialResult, TrialSpec

INTERVAL_ENV = "MACHINABLE_PROGRESS_INTERVAL"
DEFAULT_INTERVAL = 10.0  # seconds between two lines of a running trial where nothing is redrawn
WRITE = 0.05  # seconds between two writes to the terminal (the report's text and the display)
REDRAW = 0.25  # seconds between two redraws for new record values
TICK = 1.0  # the clock: redrawn at least this often
MAX_TRIAL_LINES = 12
_ESCAPE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def start_live(reporter: TerminalReporter, session: Session, total: int) -> _Live | None:
    """The live display for ``session`` (registered as a plugin until the execution ends), or None."""
    file = reporter.tw.file
    isatty = getattr(file, "isatty", None)
    echo = bool(getattr(reporter.config.option, "echo", False))
    live: _Live
    if isatty is not None and isatty() and os.environ.get("TERM") != "dumb" and not echo:
        live = (TerminalRowsLive if reporter.verbosity > 0 else TerminalLive)(reporter, session, total)
    elif reporter.verbosity > 0:
        live = LogLive(reporter, session, total)
    else:
        return None
    reporter.config.pm.register(live)
    return live


def progress_interval() -> float:
    try:
        return max(0.0, float(os.environ.get(INTERVAL_ENV, DEFAULT_INTERVAL)))
    except ValueError:
        return DEFAULT_INTERVAL


def values(row: dict[str, Any]) -> str:
    """``loss=0.1235 acc=0.9``: a row's own columns (machinable's ``_``-prefixed ones left out), short."""
    return " ".join(f"{key}={_short(value)}" for key, value in row.items() if not key.startswith("_"))


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if value is None or isinstance(value, bool | int):
        return str(value)
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= 20 else text[:17] + "..."


def clock(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


class _Live:
    """What both displays count: trials done, their mean duration, the running trials' latest rows."""

    def __init__(self, reporter: TerminalReporter, session: Session, total: int) -> None:
        self.reporter = reporter
        self.session = session
        self.total = total
        self.done = 0
        self.busy = 0.0  # seconds the finished trials took, together
        self.started = time.monotonic()
        self.running: dict[str, tuple[str, dict[str, Any]]] = {}  # uid -> (node id, latest row)
        workers = getattr(session.engine, "workers", None)
        self.workers = workers if isinstance(workers, int) and workers > 0 else None
        self.active = True

    def eta(self, now: float) -> float | None:
        """Seconds left: the mean duration of a finished trial times the trials left, over the workers busy
        (the engine's workers, else as many as ran at once on average so far)."""
        left = self.total - self.done
        if left <= 0:
            return 0.0
        if not self.done:
            return None
        workers = self.workers or max(1, round(self.busy / max(now - self.started, 1e-9)))
        return self.busy / self.done * left / min(workers, left)

    def progress(self, spec: TrialSpec, row: dict[str, Any]) -> None:
        self.running[spec.uid] = (spec.node_id, row)

    def result(self, result: TrialResult) -> None:
        self.done += 1
        self.busy += result.duration
        self.running.pop(result.uid, None)

    def stop(self) -> None:
        self.active = False
        pm = self.reporter.config.pm
        if pm.is_registered(self):
            pm.unregister(self)

    # -- hooks ------------------------------------------------------------------------------------------------
    @hookimpl(tryfirst=True)
    def machinable_trial_result(self, session: Session, result: TrialResult) -> None:
        if session is self.session and self.active:
            self.result(result)

    @hookimpl(tryfirst=True)
    def machinable_execution_finish(self, session: Session) -> None:
        if session is self.session:
            self.stop()

    @hookimpl(tryfirst=True)
    def machinable_sessionfinish(self) -> None:
        self.stop()  # the execution did not finish (an error on the way): the display goes all the same

    @hookimpl(tryfirst=True)
    def machinable_unconfigure(self) -> None:
        self.stop()


class _WantsRows:
    """The displays that show record values implement ``machinable_trial_progress``: only for them do workers
    send rows (a plugin without it costs the trials nothing)."""

    session: Session
    active: bool
    progress: Callable[[TrialSpec, dict[str, Any]], None]  # _Live's

    @hookimpl
    def machinable_trial_progress(self, session: Session, spec: TrialSpec, row: dict[str, Any]) -> None:
        if session is self.session and self.active:
            self.progress(spec, row)


class LogLive(_Live, _WantsRows):
    """Where nothing is redrawn: a line per running trial at most every ``MACHINABLE_PROGRESS_INTERVAL`` s."""

    def __init__(self, reporter: TerminalReporter, session: Session, total: int) -> None:
        super().__init__(reporter, session, total)
        self.interval = progress_interval()
        self.shown: dict[str, float] = {}  # uid -> when its last line was written (or it was first seen)

    def progress(self, spec: TrialSpec, row: dict[str, Any]) -> None:
        now = time.monotonic()
        last = self.shown.setdefault(spec.uid, now)
        text = values(row)
        if now - last >= self.interval and text:
            self.shown[spec.uid] = now
            self.reporter.line(f"{spec.node_id}: {text}")

    def result(self, result: TrialResult) -> None:
        super().result(result)
        self.shown.pop(result.uid, None)


class TerminalLive(_Live):
    """The display redrawn in place below the report's output on a terminal."""

    def __init__(self, reporter: TerminalReporter, session: Session, total: int) -> None:
        super().__init__(reporter, session, total)
        self.verbose = reporter.verbosity > 0
        self.tw = reporter.tw
        self.out: TextIO = self.tw.file
        self.lock = threading.RLock()
        self.pending: list[str] = []  # the report's text not yet written
        self.column = self.tw.width_of_current_line  # where the report's output goes on
        self.shown = 0  # lines of the display on the screen (the cursor is at the end of the last)
        self.changed = False  # new values since the last redraw
        self.written = self.drawn = float("-inf")
        self.closing = threading.Event()
        self.thread = threading.Thread(target=self._ticker, name="machinable-live", daemon=True)
        self.tw.file = _Stream(self)  # type: ignore[assignment]
        _watch_forks(self)
        try:
            with self.lock:
                self._write(self.started)
        except BaseException:
            self.tw.file = self.out
            _drawing.discard(self)
            raise
        self.thread.start()

    # -- what changes ---------------------------------------------------------------------------------------
    def progress(self, spec: TrialSpec, row: dict[str, Any]) -> None:
        with self.lock:
            super().progress(spec, row)
            self.changed = self.verbose

    def result(self, result: TrialResult) -> None:
        with self.lock:
            super().result(result)
            self.changed = True  # the reporter's flush right after draws it with the progress letter

    def text(self, text: str) -> None:
        with self.lock:
            self.pending.append(text)

    def flush(self) -> None:
        now = time.monotonic()
        with self.lock:
            if self.active and now - self.written >= WRITE:
                self._write(now)

    def stop(self) -> None:
        self.closing.set()
        if self.thread.is_alive() and self.thread is not threading.current_thread():
            self.thread.join(2.0)
        with self.lock, _deferred_interrupt():
            if self.active:
                data = _clear(self.shown, self.column) + "".join(self.pending)
                self.pending.clear()
                self.shown = 0
                self.tw.file = self.out
                self.active = False
                self.out.write(data)
                self.out.flush()
        _drawing.discard(self)
        super().stop()

    # -- drawing --------------------------------------------------------------------------------------------
    def _ticker(self) -> None:
        with contextlib.suppress(AttributeError, OSError, ValueError):
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})  # Ctrl-C is the main thread's
        while not self.closing.wait(WRITE):
            now = time.monotonic()
            with self.lock:
                if not self.active:
                    return
                if (
                    (self.pending and now - self.written >= WRITE)
                    or (self.changed and now - self.drawn >= REDRAW)
                    or now - self.drawn >= TICK
                ):
                    try:
                        self._write(now)
                    except (OSError, ValueError):  # the terminal is gone: the report's next write says so
                        return

    def _write(self, now: float) -> None:
        """Take the display away, write the pending text, draw the display again: one write (lock held)."""
        text = "".join(self.pending)
        lines = self._render(now)
        data = _clear(self.shown, self.column) + text
        self.column = _column(self.column, text)
        data += _draw(lines, self.column)
        self.pending.clear()
        self.shown, self.written, self.drawn, self.changed = len(lines), now, now, False
        with _deferred_interrupt():
            self.out.write(data)
            self.out.flush()

    def _render(self, now: float) -> list[str]:
        width, height = self._size()
        eta = self.eta(now)
        tail = (
            f" {self.done}/{self.total} trials  elapsed {clock(now - self.started)}"
            f"  ETA {clock(eta) if eta is not None else '-:--:--'}"
        )
        size = max(10, min(30, width - len(tail) - 2))
        filled = size * self.done // max(self.total, 1)
        bar = ("=" * filled + (">" if filled < size else "")).ljust(size)
        lines = [f"[{bar}]{tail}"]
        if self.verbose and self.running:
            room = max(0, min(MAX_TRIAL_LINES, height - 3))
            trials = list(self.running.values())
            shown = trials if len(trials) <= room else trials[: max(room - 1, 0)]
            lines += [f"  {node_id}  {values(row)}".rstrip() for node_id, row in shown]
            if len(shown) < len(trials) and room:
                lines.append(f"  ... and {len(trials) - len(shown)} more running")
        return [line[:width] for line in lines]

    def _size(self) -> tuple[int, int]:
        """Columns to use (one less than the terminal's: no line may wrap) and the terminal's lines."""
        columns, lines = self.tw.fullwidth, 24
        with contextlib.suppress(AttributeError, OSError, ValueError):
            size = os.get_terminal_size(self.out.fileno())
            columns = min(columns, size.columns) if size.columns else columns
            lines = size.lines or lines
        return max(columns - 1, 20), lines


class TerminalRowsLive(TerminalLive, _WantsRows):
    """``-v`` on a terminal: the running trials' latest record values below the bar."""


class _Stream:
    """The reporter's file while the display is up: its text goes through the display."""

    def __init__(self, live: TerminalLive) -> None:
        self._live = live

    def write(self, text: str) -> int:
        self._live.text(text)
        return len(text)

    def flush(self) -> None:
        self._live.flush()

    def isatty(self) -> bool:
        return True

    def __getattr__(self, name: str) -> Any:
        return getattr(self._live.out, name)


def _column(column: int, text: str) -> int:
    """The cursor's column after ``column`` and ``text`` (colour codes take no room)."""
    last = re.split(r"[\r\n]", text)
    visible = len(_ESCAPE.sub("", last[-1]))
    return visible if len(last) > 1 else column + visible


def _draw(lines: list[str], column: int) -> str:
    """The display, from where the report's output goes on (a line further down if that line has text)."""
    return ("\n" if column else "") + "\n".join("\r\x1b[2K" + line for line in lines)


def _clear(shown: int, column: int) -> str:
    """Erase a display of ``shown`` lines drawn by :func:`_draw`, back to ``column`` of the report's line."""
    if not shown:
        return ""
    data = "\r\x1b[2K" + "\x1b[1A\x1b[2K" * (shown - 1)
    return data + (f"\x1b[1A\x1b[{column + 1}G" if column else "")


# The displays being drawn. A process forked meanwhile (the process engine's workers) must not copy one half
# written: a fork waits for the display's lock, and the child never draws.
_drawing: set[TerminalLive] = set()


def _watch_forks(live: TerminalLive) -> None:
    if hasattr(os, "register_at_fork") and not getattr(_watch_forks, "registered", False):
        os.register_at_fork(before=_before_fork, after_in_parent=_after_fork, after_in_child=_in_child)
        _watch_forks.registered = True  # type: ignore[attr-defined]
    _drawing.add(live)


def _before_fork() -> None:
    for live in _drawing:
        live.lock.acquire()


def _after_fork() -> None:
    for live in _drawing:
        live.lock.release()


def _in_child() -> None:
    for live in _drawing:
        live.active = False
        live.lock.release()
    _drawing.clear()


@contextlib.contextmanager
def _deferred_interrupt() -> Iterator[None]:
    """Ctrl-C waits until the display is written whole (in the main thread; other threads never get it)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[Any] = []
    previous = signal.getsignal(signal.SIGINT)
    if previous is None:  # a handler not set from Python: it cannot be put back
        yield
        return
    signal.signal(signal.SIGINT, lambda signum, frame: caught.append(frame))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if caught:
            if callable(previous):
                previous(signal.SIGINT, caught[0])
            elif previous == signal.SIG_DFL:
                raise KeyboardInterrupt
