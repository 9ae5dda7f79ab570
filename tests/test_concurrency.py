"""Processes that share an execution: resumes that run at once, workers whose controller was killed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from machinable.storage import Storage
from machinable.storage.claims import SharedExecutionWriter, TrialClaims
from machinable.storage.liveness import is_zombie

FLAKY = """\
import os
import time

import machinable as ml


@ml.parametrize("n", [0, 1, 2, 3, 4, 5, 6, 7])
class Flaky(ml.Component):
    def on_execute(self):
        time.sleep(0.05)
        self.record["n"] = self.config.n
        self.record.save()
        self.store("result", self.config.n)
        if os.environ.get("FLAKY_FAIL"):
            raise RuntimeError("flaky failure")
"""

RESUME = """\
import sys

import machinable as ml
from machinable.errors import UsageError

try:
    execution = ml.resume(sys.argv[1], storage=sys.argv[2], project=sys.argv[3])
except UsageError as exc:
    print("REFUSED", exc)
else:
    print("RAN", len(execution.trials), [t.status for t in execution.trials])
"""

BIG = """\
import os
import time

import machinable as ml


@ml.parametrize("n", [0, 1])
class Big(ml.Component):
    def on_execute(self):
        marks = os.environ["MARKS"]
        with open(os.path.join(marks, f"pid-{self.config.n}"), "w") as f:
            f.write(str(os.getpid()))
        self.record["big"] = "x" * 4_000_000
        self.record.save()
        open(os.path.join(marks, f"sending-{self.config.n}"), "w").close()
        return "y" * 4_000_000
"""


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("MACHINABLE_MODE", "FLAKY_FAIL")}
    env.update(PYTHONDONTWRITEBYTECODE="1", **extra)
    return env


def _project(root: Path, module: str, source: str) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "machinable.yaml").write_text(f"components:\n  - {module}\n")
    (root / f"{module}.py").write_text(textwrap.dedent(source))
    return root


@pytest.mark.skipif(os.name != "posix", reason="subprocesses started at once")
def test_two_resumes_at_once_run_every_pending_trial_exactly_once(tmp_path):
    root = _project(tmp_path / "project", "flaky", FLAKY)
    results = tmp_path / "results"
    cmd = [sys.executable, "-m", "machinable", "--storage", str(results), "--seed", "7", "-q"]
    subprocess.run(cmd, cwd=root, env=_env(FLAKY_FAIL="1"), capture_output=True, timeout=120)
    [stored] = Storage(results).executions()
    assert {t.status for t in stored.trials} == {"failed"}

    script = tmp_path / "resume.py"
    script.write_text(RESUME)
    args = [sys.executable, str(script), stored.folder, str(results), str(root)]
    runs = [
        subprocess.Popen(
            args, cwd=root, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    outs = [run.communicate(timeout=120) for run in runs]
    for run, (out, err) in zip(runs, outs, strict=True):
        assert run.returncode == 0, out + err
        assert "already stored" not in out + err
    ran = [out for out, _ in outs if out.startswith("RAN")]
    assert ran, outs
    for out, _ in outs:
        assert out.startswith("RAN") or "being resumed by another process" in out, out

    after = Storage(results).get(stored.folder)
    assert [t.status for t in after.trials] == ["passed"] * 8
    assert [len(t.records) for t in after.trials] == [1] * 8  # each ran once after the failed attempt
    entries = after.info["resumed"]
    assert len(entries) == len(ran)
    assert sorted(n for e in entries for n in e["trials"]) == sorted(t.node_id for t in after.trials)
    assert all(e["finished"] and set(e["outcomes"].values()) == {"passed"} for e in entries)


def test_a_claim_is_refused_while_held_and_taken_over_once_released(tmp_path):
    storage = Storage(tmp_path)
    (tmp_path / "E").mkdir()
    first = TrialClaims(storage.location, "E", stale_after=30)
    second = TrialClaims(storage.location, "E", stale_after=30)
    assert first.acquire("t1")
    assert not second.acquire("t1")
    assert second.held_elsewhere(["t1", "t2"]) == {"t1"}
    first.release()
    assert second.acquire("t1")
    assert first.held_elsewhere(["t1"]) == {"t1"}
    second.release()


def test_a_stale_claim_is_taken_over_by_exactly_one_process(tmp_path):
    (tmp_path / "E").mkdir()
    # a claim whose heartbeat stopped long ago, of a process on another host
    (tmp_path / "E" / ".claim-t1.1.json").write_text(
        '{"token": "x", "pid": 1, "host": "elsewhere", "heartbeat": 0}'
    )
    claimers = [TrialClaims(Storage(tmp_path).location, "E", stale_after=30) for _ in range(8)]
    won: list[bool] = []
    threads = [threading.Thread(target=lambda c=c: won.append(c.acquire("t1"))) for c in claimers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert won.count(True) == 1
    for c in claimers:
        c.release()


def test_resumed_entries_written_at_once_are_all_kept(tmp_path):
    storage = Storage(tmp_path)
    SharedExecutionWriter(storage.location, "E").write_execution({"id": "E", "resumed": []})

    def add(i: int) -> None:
        writer = SharedExecutionWriter(Storage(tmp_path).location, "E")
        writer.update(lambda current: {"resumed": [*current.get("resumed", []), {"at": i}]})
        writer.write_execution({"finished": i})

    threads = [threading.Thread(target=add, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    info = Storage(tmp_path).get("E").info
    assert sorted(e["at"] for e in info["resumed"]) == list(range(16))
    assert not (tmp_path / "E" / "execution.json.lock").exists()


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return is_zombie(pid)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="fork and /proc")
def test_workers_sending_a_large_result_die_with_a_killed_controller(tmp_path):
    root = _project(tmp_path / "project", "big", BIG)
    marks = tmp_path / "marks"
    marks.mkdir()
    code = "import machinable as ml; ml.execute(ml.Task().component('big'), storage=%r, engine='process:2')"
    controller = subprocess.Popen(
        [sys.executable, "-c", code % str(tmp_path / "results")],
        cwd=root,
        env=_env(MARKS=str(marks)),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    pids: list[int] = []
    try:
        deadline = time.monotonic() + 60
        while (
            time.monotonic() < deadline
            and not (marks / "sending-0").exists()
            and not (marks / "sending-1").exists()
        ):
            time.sleep(0.005)
        assert controller.poll() is None, "the controller ended before the trials sent their results"
        os.kill(controller.pid, signal.SIGKILL)
        controller.wait()
        pids = [int((marks / f"pid-{n}").read_text()) for n in (0, 1) if (marks / f"pid-{n}").exists()]
        assert pids
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not all(_gone(pid) for pid in pids):
            time.sleep(0.02)
        assert all(_gone(pid) for pid in pids), [p for p in pids if not _gone(p)]
    finally:
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
