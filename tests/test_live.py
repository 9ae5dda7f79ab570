"""Live metrics while trials run: ``machinable_trial_progress`` on every engine, and the terminal's live display
(a progress bar with ETA redrawn in place on a terminal, a line per running trial now and then elsewhere)."""

from __future__ import annotations

import fcntl
import os
import re
import select
import signal
import struct
import subprocess
import sys
import termios
import time

import pytest
from cli_helpers import clean_env

import machinable as ml
from machinable.hookspec import hookimpl
from machinable.plugins import create_plugin_manager
from machinable.storage import Record

YAML = """
components:
  - burst:
      rows: 2000
      pause: 0.4
  - slow:
      steps: 12
      delay: 0.1
"""

# Many rows at once, a pause, then one last row: the pause lets the last row through the throttle.
BURST = """
import time

import machinable as ml


class Burst(ml.Component):
    def on_execute(self):
        for i in range(self.config.rows):
            self.record["i"] = i
            self.record["loss"] = 1 / (i + 1)
            self.record.save()
        time.sleep(self.config.pause)
        self.record["i"] = -1
        self.record.save()
"""

SLOW = """
import os
import time
from pathlib import Path

import machinable as ml


class Slow(ml.Component):
    def on_execute(self):
        mark = os.environ.get("LIVE_MARK")
        if mark:
            Path(mark).touch()
        for step in range(self.config.steps):
            time.sleep(self.config.delay)
            self.record["step"] = step
            self.record["loss"] = 1 / (step + 1)
            self.record.save()
"""


@pytest.fixture
def project(make_project):
    return make_project(YAML, {"burst.py": BURST, "slow.py": SLOW})


class Rows:
    """Records what the hooks see, in order."""

    def __init__(self):
        self.events = []

    @hookimpl
    def machinable_trial_progress(self, session, execution, spec, row):
        assert session.execution is execution
        self.events.append(("row", spec.node_id, row))

    @hookimpl
    def machinable_trial_result(self, result):
        self.events.append(("result", result.node_id, None))


def check_rows(rows: Rows, trials: list[str], total: int) -> None:
    for node_id in trials:
        seen = [(kind, row) for kind, node, row in rows.events if node == node_id]
        assert seen[-1][0] == "result"  # no row after the trial's result
        got = [row for kind, row in seen if kind == "row"]
        assert 1 <= len(got) < total / 10  # throttled: at most ~4 a second
        assert got[-1]["i"] == -1  # the last row, saved after a pause, came through
        assert all("_time" in row for row in got)
        assert [row["i"] for row in got[:-1]] == sorted(row["i"] for row in got[:-1])  # in order


@pytest.mark.parametrize("engine", ["local", "process:2"])
def test_progress_rows_reach_the_controller_throttled(project, engine):
    rows = Rows()
    task = ml.Task().component("burst").repeat(2)
    pm = create_plugin_manager(plugins=[rows])
    execution = ml.execute(task, project=project, engine=engine, plugins=pm, echo=False)
    assert not execution.failed, execution.summary()
    assert all(len(t.records) == 2001 for t in execution.trials)  # the stored records are complete
    check_rows(rows, ["burst[r0]", "burst[r1]"], 2001)


@pytest.mark.slow
@pytest.mark.usefixtures("ray_session")
def test_progress_rows_reach_the_controller_from_ray(project):
    rows = Rows()
    task = ml.Task().component("burst").repeat(2)
    pm = create_plugin_manager(plugins=[rows])
    execution = ml.execute(task, project=project, engine="ray", plugins=pm, echo=False)
    assert not execution.failed, execution.summary()
    check_rows(rows, ["burst[r0]", "burst[r1]"], 2001)


def test_without_an_implementation_no_rows_are_sent(project):
    seen = []

    class Watch:
        @hookimpl(wrapper=True)
        def machinable_trial_protocol(self, spec, context):
            seen.append(context.progress)
            return (yield)

    ml.execute("burst", project=project, plugins=create_plugin_manager(plugins=[Watch()]), echo=False)
    assert seen == [None]
    ml.execute("burst", project=project, plugins=create_plugin_manager(plugins=[Watch(), Rows()]), echo=False)
    assert seen[-1] is not None


def test_a_record_tells_its_observer_each_saved_row():
    got = []
    record = Record(observer=got.append)
    record["x"] = 1
    record.save()
    record.save()  # an empty row is not saved
    record.update(x=2)
    record.save(_iteration=3)
    assert [(r["x"], r.get("_iteration")) for r in got] == [(1, None), (2, 3)]
    assert got == record.rows


# -- the display ---------------------------------------------------------------------------------------------

SUMMARY = re.compile(r"=+ .*\d+ (passed|interrupted).* in [\d.]+ s =+$")
BAR = re.compile(r"\[[=> ]+\] \d+/\d+ trials  elapsed \d+:\d\d:\d\d  ETA (\d+:\d\d:\d\d|-:--:--)")


def screen(raw: str) -> list[str]:
    """The text a terminal shows after ``raw``: \\r, \\n and the few escape codes the report uses (colours,
    erase line, cursor up, cursor to column); any other code fails the test."""
    lines: list[list[str]] = [[]]
    row = col = 0
    i = 0
    while i < len(raw):
        char = raw[i]
        if char == "\x1b":
            match = re.match(r"\x1b\[([0-9;]*)([A-Za-z])", raw[i:])
            assert match, f"unknown escape code {raw[i : i + 12]!r}"
            args, code = match.groups()
            if code == "K":
                assert args == "2", match.group()
                lines[row] = []
            elif code == "A":
                row = max(0, row - int(args or 1))
            elif code == "G":
                col = int(args or 1) - 1
            else:
                assert code == "m", f"unexpected escape code {match.group()!r}"
            i += match.end()
            continue
        if char == "\r":
            col = 0
        elif char == "\n":
            row += 1
            if row == len(lines):
                lines.append([])
        else:
            line = lines[row]
            line.extend(" " * (col + 1 - len(line)))
            line[col] = char
            col += 1
        i += 1
    text = ["".join(line).rstrip() for line in lines]
    while text and not text[-1]:
        text.pop()
    return text


class Pty:
    """``python -m machinable ARGS`` with a pseudo-terminal (80x24) as its stdout and stderr."""

    def __init__(self, cwd, *args, **env):
        master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
        self.master = master
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "machinable", "-p", "no:cacheprovider", *args],
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=slave,
            stderr=slave,
            env=clean_env(TERM="xterm", **env),
            start_new_session=True,
        )
        os.close(slave)
        self.raw = b""

    def read_until(self, done, deadline: float) -> bool:
        """Read output until ``done(text)`` or the end of the output; False at the deadline."""
        while time.time() < deadline:
            if done(self.raw.decode(errors="replace")):
                return True
            ready, _, _ = select.select([self.master], [], [], 0.1)
            if ready:
                try:
                    data = os.read(self.master, 65536)
                except OSError:  # EIO: the child closed the terminal
                    data = b""
                if not data:
                    return done(self.raw.decode(errors="replace"))
                self.raw += data
        return False

    def finish(self, timeout: float = 60.0) -> tuple[int, str]:
        """Read the output to its end; the exit code and the output."""
        self.read_until(lambda text: False, time.time() + timeout)
        ret = self.proc.wait(timeout=10)
        os.close(self.master)
        return ret, self.raw.decode()

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def pty_run():
    started = []

    def start(*args, **kwargs):
        started.append(Pty(*args, **kwargs))
        return started[-1]

    yield start
    for run in started:
        run.kill()


def summary_at(final: list[str]) -> int:
    """The index of the summary line: the last screen line, or the line above the results table that a run with
    repeats prints under it."""
    found = [i for i, line in enumerate(final) if SUMMARY.search(line)]
    assert found, "\n".join(final)
    return found[-1]


def assert_clean(final: list[str]) -> None:
    summary = summary_at(final)
    assert all(
        "±" in line or "FAILED" in line or "common:" in line or not line for line in final[summary + 1 :]
    ), "\n".join(final)
    leftovers = [line for line in final if "trials  elapsed" in line or line.startswith("  slow[")]
    assert not leftovers, "\n".join(final)


@pytest.mark.parametrize("engine", ["local", "process:2"])
def test_the_live_display_on_a_terminal(project, pty_run, engine):
    run = pty_run(project, "slow", "--repeat", "3", "-v", "--engine", engine)
    started = time.time()
    ret, raw = run.finish()
    seconds = time.time() - started
    assert ret == 0, raw
    bars = BAR.findall(raw)
    assert bars and any(eta != "-:--:--" for eta in bars), raw  # an ETA once a trial finished
    assert re.search(r"\r\x1b\[2K  slow\[r\d\]  step=\d+ loss=[\d.]+", raw)  # -v: the running trials' values
    assert len(BAR.findall(raw)) <= 25 * seconds + 10  # redrawn a limited number of times
    final = screen(raw)
    assert_clean(final)
    passed = sorted(
        line.split()[0] for line in final if re.fullmatch(r"slow\[r\d\] PASSED +\[ *\d+%\]", line)
    )
    assert passed == ["slow[r0]", "slow[r1]", "slow[r2]"], "\n".join(final)
    assert "3 passed" in final[summary_at(final)]


def test_the_bar_stays_below_the_progress_letters(project, pty_run):
    ret, raw = pty_run(project, "slow", "--repeat", "2").finish()
    assert ret == 0
    assert BAR.search(raw)
    assert "step=" not in raw  # without -v no values (and workers send none)
    final = screen(raw)
    assert_clean(final)
    assert re.fullmatch(r"slow \.\. +\[100%\]", final[summary_at(final) - 1]), final


@pytest.mark.parametrize("engine", ["local", "process:2"])
def test_ctrl_c_during_the_live_display_leaves_no_garbage(project, pty_run, tmp_path, engine):
    mark = tmp_path / "started"
    run = pty_run(project, "slow", "--repeat", "2", "-v", "--engine", engine, LIVE_MARK=str(mark))
    values = re.compile(r"  slow\[r\d\]  step=\d+")
    assert run.read_until(lambda text: mark.exists() and bool(values.search(text)), time.time() + 60)
    run.proc.send_signal(signal.SIGINT)
    ret, raw = run.finish()
    assert ret == 2, raw
    final = screen(raw)
    assert_clean(final)
    assert any("KeyboardInterrupt" in line for line in final)
    assert "interrupted" in final[summary_at(final)]


@pytest.mark.parametrize("engine", ["local", "process:2"])
def test_no_redraw_and_a_line_per_trial_now_and_then_elsewhere(project, engine):
    interval = 0.5  # seconds; the trial saves a row every 0.1 s for 1.2 s
    done = subprocess.run(
        [sys.executable, "-m", "machinable", "-p", "no:cacheprovider", "slow", "--repeat", "2", "-v"]
        + ["--engine", engine],
        cwd=project,
        capture_output=True,
        text=True,
        env=clean_env(MACHINABLE_PROGRESS_INTERVAL=str(interval)),
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "\r" not in done.stdout and "\x1b" not in done.stdout
    for trial in ("slow[r0]", "slow[r1]"):
        lines = [line for line in done.stdout.splitlines() if line.startswith(f"{trial}: ")]
        assert lines, done.stdout
        assert all(re.fullmatch(rf"{re.escape(trial)}: step=\d+ loss=[\d.]+", line) for line in lines)
        # One line per interval at most (the first after the trial ran that long): 0.5 s is ~5 rows apart.
        steps = [0] + [int(line.split("step=")[1].split()[0]) for line in lines]
        assert all(b - a >= 3 for a, b in zip(steps, steps[1:], strict=False)), lines
    quiet = subprocess.run(
        [sys.executable, "-m", "machinable", "-p", "no:cacheprovider", "slow", "--repeat", "2"],
        cwd=project,
        capture_output=True,
        text=True,
        env=clean_env(MACHINABLE_PROGRESS_INTERVAL=str(interval)),
        timeout=60,
    )
    assert quiet.returncode == 0
    assert "step=" not in quiet.stdout and "\r" not in quiet.stdout and "\x1b" not in quiet.stdout
