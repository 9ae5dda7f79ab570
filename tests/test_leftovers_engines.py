"""What a killed controller's engines leave behind: the process engine's crash files, a local Ray's processes.

Machinable cleans up what it created, and only that: crash files of a controller that still runs, files of
other programs, another Ray (this test session's) and processes outside the killed controller's Ray are kept.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pytest
from cli_helpers import REPO, clean_env, write_project

import machinable as ml
from machinable.execution.engines import crash_files, ray_fate
from machinable.storage.liveness import pid_gone

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="SIGKILL, fork and /proc")

SLEEPER = """
import os
import signal
import time
from pathlib import Path

import machinable as ml


class Sleeper(ml.Component):
    def on_execute(self):
        if self.config.deaf:  # as a worker stuck in native code: no Python signal handler runs
            for name in ("SIGTERM", "SIGUSR1", "SIGINT"):
                signal.signal(getattr(signal, name), signal.SIG_IGN)
        if self.config.marks:  # written whole and renamed: the test never reads half a pid
            mark = Path(self.config.marks, f"pid-{os.getpid()}")
            Path(f"{mark}.tmp").write_text(str(os.getpid()))
            os.replace(f"{mark}.tmp", mark)
        time.sleep(self.config.seconds)
"""

CONTROLLER = """
import machinable as ml
ml.execute(
    ml.Task().component("sleeper", {{"marks": {marks!r}, "deaf": {deaf!r}}}).repeat({repeat}),
    storage={results!r},
    engine={engine!r},
    echo=False,
)
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return write_project(
        tmp_path / "project",
        "components:\n  - sleeper:\n      seconds: 60\n      marks: ''\n      deaf: false\n",
        {"sleeper.py": SLEEPER},
    )


def start_controller(
    project: Path, tmp_path: Path, engine: object, repeat: int, deaf: bool = False, **env: str
) -> subprocess.Popen:
    """A controller in a session of its own (so the test can find everything it started by its session id)."""
    marks = tmp_path / "marks"
    marks.mkdir()
    code = CONTROLLER.format(
        marks=str(marks), repeat=repeat, results=str(tmp_path / "results"), engine=engine, deaf=deaf
    )
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=project,
        env=clean_env(PYTHONPATH=str(REPO), PYTHONDONTWRITEBYTECODE="1", **env),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )


def wait_for(condition, what: str, controller: subprocess.Popen | None = None, seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not condition():
        if controller is not None and controller.poll() is not None:
            err = controller.stderr.read().decode()[-2000:] if controller.stderr else ""
            pytest.fail(f"the controller ended (exit {controller.returncode}) before {what}: {err}")
        time.sleep(0.05)
    assert condition(), f"{what} did not happen within {seconds:g} s"


def trial_pids(tmp_path: Path, count: int) -> list[int]:
    marks = sorted(p for p in (tmp_path / "marks").glob("pid-*") if p.suffix != ".tmp")  # written whole
    return [int(p.read_text()) for p in marks] if len(marks) >= count else []


def in_session(sid: int) -> list[int]:
    """The live processes (zombies left out) of session id ``sid``."""
    found = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                if os.getsid(int(name)) == sid and not pid_gone(int(name)):
                    found.append(int(name))
            except OSError:
                continue
    return found


def command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def kill_all(pids: list[int]) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


# -- the process engine's crash files ----------------------------------------------------------------------------


def test_only_crash_files_of_controllers_that_are_gone_are_removed(tmp_path: Path) -> None:
    dead, alive = dead_pid(), os.getpid()
    names = {
        f"machinable-worker-{dead}-k2j_4x9a.crash": False,
        f"machinable-worker-{alive}-a8d7_0qz.crash": True,  # a live controller's worker may still write to it
        "machinable-worker-q1w2e3r4.crash": True,  # named before the owner was part of the name: cannot tell
        f"machinable-worker-{dead}-k2j_4x9a.crash.bak": True,  # not a name machinable gives
        f"other-{dead}-k2j_4x9a.crash": True,
    }
    for name in names:
        (tmp_path / name).write_text("")
    removed = crash_files.remove_orphans(str(tmp_path))
    assert [Path(p).name for p in removed] == [name for name, kept in names.items() if not kept]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(name for name, kept in names.items() if kept)


def test_a_crash_file_is_named_after_its_controller(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    path = Path(crash_files.create())
    assert path.parent == tmp_path and path.name.startswith(f"machinable-worker-{os.getpid()}-")
    assert crash_files.remove_orphans(str(tmp_path)) == [] and path.exists()


@pytest.mark.slow
@pytest.mark.parametrize("deaf", [False, True], ids=["listening", "deaf"])
def test_workers_of_a_killed_controller_remove_their_crash_files(
    project: Path, tmp_path: Path, deaf: bool
) -> None:
    """Deaf: a worker stuck in native code (a deadlocked OpenMP pool) never runs a Python signal handler, so
    SIGTERM from Linux does nothing; faulthandler's watchdog, a native thread, ends it ``kill_grace`` s later."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    engine = {"type": "process", "workers": 2, "kill_grace": 1.0}
    controller = start_controller(project, tmp_path, engine, 2, deaf, TMPDIR=str(tmp))
    workers: list[int] = []
    try:
        wait_for(lambda: len(trial_pids(tmp_path, 2)) == 2, "both trials running", controller)
        workers = trial_pids(tmp_path, 2)
        assert len(list(tmp.glob(f"machinable-worker-{controller.pid}-*.crash"))) == 2
        os.kill(controller.pid, signal.SIGKILL)
        controller.wait()
        # The workers learn of it (SIGTERM on Linux, a closed pipe elsewhere) and end, removing their files.
        wait_for(lambda: all(pid_gone(pid) for pid in workers), "the workers ending", seconds=15)
        assert list(tmp.iterdir()) == []
    finally:
        kill_all([controller.pid, *workers])


@pytest.mark.slow
def test_the_next_run_removes_the_crash_files_of_a_controller_killed_with_its_workers(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    live = tmp / f"machinable-worker-{os.getpid()}-a8d7_0qz.crash"
    foreign = [tmp / "machinable-worker-q1w2e3r4.crash", tmp / "notes.crash"]
    for path in [live, *foreign]:
        path.write_text("")
    controller = start_controller(project, tmp_path, "process:2", 2, TMPDIR=str(tmp))
    workers: list[int] = []
    try:
        wait_for(lambda: len(trial_pids(tmp_path, 2)) == 2, "both trials running", controller)
        workers = trial_pids(tmp_path, 2)
        # All at once, as the out-of-memory killer or `kill -9 -PGID` do: nobody is left to clean up.
        os.killpg(controller.pid, signal.SIGKILL)
        controller.wait()
        wait_for(lambda: all(pid_gone(pid) for pid in workers), "the workers ending", seconds=10)
        leftovers = sorted(tmp.glob(f"machinable-worker-{controller.pid}-*.crash"))
        assert len(leftovers) == 2

        monkeypatch.setattr(tempfile, "tempdir", str(tmp))
        execution = ml.execute(
            ml.Task().component("sleeper", {"seconds": 0}), project=project, engine="process:1", echo=False
        )
        assert [t.status for t in execution.trials] == ["passed"]
        assert sorted(tmp.iterdir()) == sorted([live, *foreign])
    finally:
        kill_all([controller.pid, *workers])


# -- a local Ray that a killed controller started ----------------------------------------------------------------


@pytest.mark.slow
def test_the_watchdog_ends_the_processes_of_its_session_only(tmp_path: Path) -> None:
    session = tmp_path / "session_1"
    (session / "logs").mkdir(parents=True)
    other = tmp_path / "session_2"
    other.mkdir()
    hold = "import sys, time; f = open(sys.argv[1], 'a'); time.sleep(60)"

    def holding(path: Path, new_session: bool) -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-c", hold, str(path)], start_new_session=new_session)

    member = holding(session / "logs" / "raylet.out", False)
    # Another Ray's session directory from the same session id, and this session's logs read from another one.
    outsiders = [holding(other / "raylet.out", False), holding(session / "logs" / "gcs_server.out", True)]
    try:
        sid = os.getsid(0)
        wait_for(
            lambda: ray_fate.session_members(str(session), sid) == [member.pid], "the member opening its file"
        )
        # A driver that runs on after Ray was shut down (the raylet is gone): nothing is touched.
        ray_fate.main(os.getpid(), sid, dead_pid(), str(session))
        assert member.poll() is None
        ray_fate.main(dead_pid(), sid, 0, str(session))  # the driver is gone
        assert member.wait(5) == -signal.SIGKILL
        assert all(p.poll() is None for p in outsiders)
    finally:
        kill_all([member.pid, *(p.pid for p in outsiders)])
        for process in [member, *outsiders]:
            process.wait()


@pytest.mark.slow
def test_a_ray_that_the_user_started_gets_no_watchdog(ray_session) -> None:
    from machinable.execution.engines.ray_engine import connect

    before = list(ray_fate._watchdogs)
    assert connect() is ray_session and connect(address="auto") is ray_session
    assert ray_fate._watchdogs == before


@pytest.mark.slow
def test_the_ray_that_a_killed_controller_started_goes_with_it(project: Path, tmp_path: Path) -> None:
    # Ray's own directory, apart from this session's Ray; short, as Ray's socket paths must fit 107 bytes.
    temp_dir = tempfile.mkdtemp(prefix="mlray-", dir="/tmp")
    init = {"_temp_dir": temp_dir, "object_store_memory": 80 * 1024**2}
    engine = {"type": "ray", "num_cpus": 1, "init": init}
    controller = start_controller(project, tmp_path, engine, 1)
    ours: list[int] = []
    try:
        wait_for(lambda: trial_pids(tmp_path, 1), "the trial running on Ray", controller)

        def started() -> list[int]:
            return [pid for pid in in_session(controller.pid) if pid != controller.pid]

        agents = ("ray::DashboardAgent", "ray::RuntimeEnvAgent")
        wait_for(
            lambda: all(any(a in command_line(p) for p in started()) for a in agents),
            "Ray's agents",
            controller,
        )
        ours = started()
        watchdogs = watchdogs_of(controller.pid)
        assert len(watchdogs) == 1
        ours += watchdogs
        names = [command_line(p).split(" ")[0] for p in ours]
        assert any(n.endswith("raylet") for n in names) and any(n.endswith("gcs_server") for n in names)

        os.kill(controller.pid, signal.SIGKILL)
        controller.wait()
        wait_for(lambda: all(pid_gone(pid) for pid in ours), "the end of every process of its Ray", seconds=5)
    finally:
        kill_all([controller.pid, *ours])
        shutil.rmtree(temp_dir, ignore_errors=True)


def watchdogs_of(driver: int) -> list[int]:
    """The watchdogs (each in a session of its own) that watch ``driver``."""
    watching = f" -m {ray_fate.__name__} {driver} "
    return [
        int(name)
        for name in os.listdir("/proc")
        if name.isdigit() and watching in command_line(int(name)) and not pid_gone(int(name))
    ]
