"""The slurm engine on a real single-node Slurm (tests/fixtures_slurm.py starts it): the same trials, seeds,
configurations and records as the local engine, max_parallel, failures, scancel, resume, detach and follow."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cli_helpers import clean_env

import machinable as ml
from machinable.errors import UsageError
from machinable.storage import Storage

pytestmark = pytest.mark.slow

PROJECT_YAML = """\
components:
  - steps:
      n: 3
  - boom:
      wait_for: ''
  - slow:
      wait_for: ''
"""

FILES = {
    "steps.py": """\
        import os
        import random
        import time

        import machinable as ml


        class Steps(ml.Component):
            def on_execute(self):
                for i in range(self.config.n):
                    self.record["i"] = i
                    self.record["value"] = random.random()
                    self.record.save()
                self.store("where.json", {
                    "task": os.environ.get("SLURM_ARRAY_TASK_ID"),
                    "start": time.time(),
                })
    """,
    "boom.py": """\
        import machinable as ml


        class Boom(ml.Component):
            def on_execute(self):
                raise ValueError("boom on the cluster")
    """,
    "slow.py": """\
        import os
        import time

        import machinable as ml


        class Slow(ml.Component):
            def on_execute(self):
                start = time.time()
                self.record["started"] = start
                self.record.save()
                flag = self.config.wait_for
                deadline = time.monotonic() + 120
                while flag and not os.path.exists(flag) and time.monotonic() < deadline:
                    time.sleep(0.05)
                self.record["ended"] = time.time()
                self.record.save()
    """,
}


@pytest.fixture
def project(make_project, slurm):
    return make_project(PROJECT_YAML, FILES)


def _comparable(execution):
    return {
        t.uid: (
            t.node_id,
            t.seed,
            t.config,
            [{k: v for k, v in r.items() if k != "_time"} for r in t.records],
        )
        for t in execution.trials
    }


def test_slurm_gives_the_same_trials_seeds_configs_and_records_as_local(project, tmp_path):
    task = ml.Task().component("steps").repeat(4)
    on_slurm = ml.execute(
        task,
        seed=42,
        project=project,
        storage=tmp_path / "slurm",
        engine={"type": "slurm", "max_parallel": 2, "cpus_per_task": 1},
        echo=False,
    )
    on_local = ml.execute(task, seed=42, project=project, storage=tmp_path / "local", echo=False)
    assert [t.status for t in on_slurm.trials] == ["passed"] * 4
    assert _comparable(on_slurm) == _comparable(on_local)
    stored = Storage(tmp_path / "slurm").get(on_slurm.id)
    # read back from storage, field by field, like the local run's
    assert _comparable(on_slurm) == {
        t.uid: (
            t.node_id,
            t.seed,
            t.config,
            [{k: v for k, v in r.items() if k != "_time"} for r in t.records],
        )
        for t in stored
    }
    # provenance: where each trial ran
    for trial in stored:
        where = json.loads((tmp_path / "slurm" / stored.folder / trial.uid / "slurm.json").read_text())
        assert where["job_id"] and where["node"] == os.uname().nodename.split(".")[0]
        assert where["array_task_id"] in ("0", "1")
        assert where["gpus"] == []
        # the array task's CPUs are its thread budget (unless the user set OMP_NUM_THREADS & co.)
        assert trial.status_info["placement"]["threads"] == 1
    jobs = stored.info["slurm"]
    assert len(jobs) == 1 and jobs[0]["job_id"].isdigit()


def test_max_parallel_bounds_the_array_tasks_running_at_once(project, tmp_path):
    execution = ml.execute(
        ml.Task().component("slow").repeat(6),
        project=project,
        storage=tmp_path / "r",
        engine={"type": "slurm", "max_parallel": 2},
        echo=False,
    )
    assert all(t.passed for t in execution.trials)
    spans = [(t.records[0]["started"], t.records[1]["ended"]) for t in execution.trials]
    most = max(sum(1 for s, e in spans if s <= start < e) for start, _ in spans)
    assert most <= 2
    script = next((tmp_path / "r" / execution.id / ".slurm").glob("*.sbatch")).read_text()
    assert "#SBATCH --array=0-1%2" in script


def test_a_failing_trial_fails_and_the_rest_pass(project, tmp_path):
    execution = ml.execute(
        ml.Task().component("steps").component("boom").component("steps", {"n": 1}),
        project=project,
        storage=tmp_path / "r",
        engine={"type": "slurm", "max_parallel": 3},
        echo=False,
    )
    statuses = {t.component + str(t.config.get("n", "")): t.status for t in execution.trials}
    assert statuses == {"steps3": "passed", "boom": "failed", "steps1": "passed"}
    failed = next(t for t in execution.trials if t.status == "failed")
    assert "ValueError: boom on the cluster" in failed.error


def _run(cwd: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """``machinable ARGS`` run to its end."""
    return subprocess.run(
        [sys.executable, "-m", "machinable", *args],
        cwd=cwd,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _machinable(cwd: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "machinable", *args],
        cwd=cwd,
        env=clean_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait(condition, timeout=60.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def _execution(storage: Path):
    def find():
        folders = (
            [p for p in storage.glob("*") if (p / "execution.json").exists()] if storage.exists() else []
        )
        if folders:
            info = json.loads((folders[0] / "execution.json").read_text())
            return folders[0] if info.get("slurm") else None
        return None

    return _wait(find, what="the execution and its job")


def _slow_run(
    project: Path, storage: Path, flag: str, repeat: int
) -> tuple[subprocess.Popen[str], Path, dict]:
    """``slow`` trials that wait for ``flag``, one array task at a time; returns once the first one runs."""
    proc = _machinable(
        project,
        "slow",
        f"wait_for={flag}",
        "--repeat",
        str(repeat),
        "--engine",
        "slurm",
        "-E",
        "max_parallel=1",
        "--storage",
        str(storage),
    )
    folder = _execution(storage)
    info = json.loads((folder / "execution.json").read_text())
    _wait(
        lambda: any((folder / uid / "records.jsonl").exists() for uid in info["trials"]),
        what="a running trial",
    )
    return proc, folder, info


def test_scancel_gives_crashed_and_resume_finishes_with_the_same_seeds(project, tmp_path):
    flag = tmp_path / "release"
    storage = tmp_path / "r"
    proc, folder, info = _slow_run(project, storage, str(flag), 3)
    subprocess.run(["scancel", info["slurm"][0]["job_id"]], check=True)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1, out + err
    assert "1 crashed" in out and "2 interrupted" in out, out
    stored = Storage(storage).get(folder.name)
    crashed = [t for t in stored if t.status == "crashed"]
    assert len(crashed) == 1 and "ended while the trial ran" in crashed[0].error
    planned = {t["uid"]: t["seed"] for t in stored.info["plan"]}
    flag.write_text("go")
    done = _run(project, "resume", folder.name, "--storage", str(storage), timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    stored = Storage(storage).get(folder.name)
    assert [t.status for t in stored] == ["passed"] * 3
    assert {t.uid: t.seed for t in stored} == planned


def test_detach_then_show_follow_sees_it_through(project, tmp_path):
    storage = tmp_path / "r"
    detached = _run(
        project,
        "steps",
        "--repeat",
        "3",
        "--engine",
        "slurm",
        "--detach",
        "--storage",
        str(storage),
        timeout=60,
    )
    assert detached.returncode == 0, detached.stdout + detached.stderr
    line = next(line for line in detached.stdout.splitlines() if line.startswith("detached:"))
    execution_id = line.split()[2]
    assert "machinable show --follow " + execution_id in line
    shown = _run(project, "show", "--follow", execution_id, "--storage", str(storage), timeout=120)
    assert shown.returncode == 0, shown.stdout + shown.stderr
    stored = Storage(storage).get(execution_id)
    assert [t.status for t in stored] == ["passed"] * 3
    assert "3 passed" in shown.stdout


def test_exitfirst_cancels_the_remaining_work(project, tmp_path):
    storage = tmp_path / "r"
    done = _run(
        project,
        "boom",
        "slow",
        "wait_for=/nonexistent",
        "--repeat",
        "2",
        "--engine",
        "slurm",
        "-E",
        "max_parallel=1",
        "-x",
        "--storage",
        str(storage),
        timeout=120,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "stopping after 1 failure" in done.stdout
    _wait(
        lambda: not subprocess.run(["squeue", "-h"], capture_output=True, text=True).stdout.strip(),
        what="the cancelled jobs to leave the queue",
    )


def test_a_partition_that_does_not_exist_is_slurms_message_in_one_line(project, tmp_path):
    with pytest.raises(UsageError) as info:
        ml.execute(
            ml.Task().component("steps"),
            project=project,
            storage=tmp_path / "r",
            engine={"type": "slurm", "partition": "nosuchpartition"},
            echo=False,
        )
    message = str(info.value)
    assert "sbatch refused the job" in message and "partition" in message.lower()
    assert "\n" not in message


def test_bad_options_are_refused_on_the_command_line(project, tmp_path):
    done = _run(
        project,
        "steps",
        "--engine",
        "slurm",
        "-E",
        "time=forever",
        "--storage",
        str(tmp_path / "r"),
        timeout=60,
    )
    assert done.returncode == 4
    assert "time 'forever' is no Slurm time limit" in done.stderr
    assert "Traceback" not in done.stderr


TRAIN = """\
    import json
    import signal
    import time
    from pathlib import Path

    import machinable as ml


    class Train(ml.Component):
        def on_create(self):
            self.weight = 0
            self.restored = None

        def on_save(self, path):
            Path(path, "state.json").write_text(json.dumps({"weight": self.weight}))

        def on_restore(self, path):
            self.weight = json.loads(Path(path, "state.json").read_text())["weight"]
            self.restored = self.weight

        def on_execute_iteration(self, iteration):
            if iteration == self.config.steps:
                self.store("restored.json", {"from": self.restored})
                return False
            # A step and its row go together: Slurm's warning waits until both are done.
            previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR2})
            self.weight += 1
            self.record["weight"] = self.weight
            signal.pthread_sigmask(signal.SIG_SETMASK, previous)
            if self.restored is None:
                time.sleep(0.02)  # the first attempt runs until the warning before the time limit
"""


@pytest.fixture
def train_project(make_project, slurm):
    return make_project("components:\n  - train:\n      steps: 3000\n", {"train.py": TRAIN})


def _continuous(trial, steps=3000):
    rows = trial.records
    assert [r["_iteration"] for r in rows] == list(range(steps))
    assert [r["weight"] for r in rows] == list(range(1, steps + 1))


def test_the_time_limit_warning_preempts_with_a_checkpoint_and_resume_continues(train_project, tmp_path):
    storage = tmp_path / "r"
    # time=1: Slurm's warning (USR2, 90 s before the limit) comes at its first time-limit check, 0-30 s in
    done = _run(
        train_project, "train", "--engine", "slurm", "-E", "time=1", "--storage", str(storage), timeout=120
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "1 preempted" in done.stdout
    execution_id = next(p.name for p in storage.iterdir() if (p / "execution.json").exists())
    trial = next(iter(Storage(storage).get(execution_id)))
    assert trial.status == "preempted" and "preempted by SIGUSR2; checkpoint 1 saved" in trial.error
    stopped_at = len(trial.records)
    assert 0 < stopped_at < 3000
    resumed = _run(train_project, "resume", execution_id, "--storage", str(storage), timeout=120)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    trial = next(iter(Storage(storage).get(execution_id)))
    assert trial.status == "passed"
    assert trial.store["restored.json"] == {"from": stopped_at}
    _continuous(trial)


def test_requeue_resubmits_a_preempted_trial_which_continues_from_its_checkpoint(train_project, tmp_path):
    execution = ml.execute(
        ml.Task().component("train"),
        project=train_project,
        storage=tmp_path / "r",
        # 2: the next attempt finishes in about a second, but Slurm's time-limit check (every 30 s) may warn it too
        engine={"type": "slurm", "time": "1", "requeue": 2},
        echo=False,
    )
    trial = execution.trials[0]
    assert trial.status == "passed", trial.error
    stored = next(iter(Storage(tmp_path / "r").get(execution.id)))
    assert 0 < stored.store["restored.json"]["from"] < 3000
    _continuous(stored)
    jobs = Storage(tmp_path / "r").get(execution.id).info["slurm"]
    assert [j["batch"] for j in jobs][:2] == [
        "batch-1",
        f"requeue-{stored.uid}-1",
    ]  # the first job, the requeue


def test_a_detached_execution_is_requeued_by_its_workers(train_project, tmp_path):
    storage = tmp_path / "r"
    detached = _run(
        train_project,
        "train",
        "--engine",
        "slurm",
        "-E",
        "time=1",
        "--requeue",
        "2",
        "--detach",
        "--storage",
        str(storage),
        timeout=60,
    )
    assert detached.returncode == 0, detached.stdout + detached.stderr
    execution_id = next(p.name for p in storage.iterdir() if (p / "execution.json").exists())
    shown = _run(train_project, "show", "--follow", execution_id, "--storage", str(storage), timeout=150)
    assert shown.returncode == 0, shown.stdout + shown.stderr
    trial = next(iter(Storage(storage).get(execution_id)))
    assert trial.status == "passed"
    assert 0 < trial.store["restored.json"]["from"] < 3000
    _continuous(trial)
    jobs = sorted(p.name for p in (storage / execution_id / ".slurm").glob("*.job"))
    assert jobs[:2] == ["batch-1.job", f"requeue-{trial.uid}-1.job"]


def test_ctrl_c_without_a_terminal_cancels_the_jobs_and_keeps_what_ran(project, tmp_path):
    storage = tmp_path / "r"
    proc, folder, info = _slow_run(project, storage, "/nonexistent", 2)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 2, out + err
    assert "1 interrupted" in out
    _wait(
        lambda: not subprocess.run(["squeue", "-h"], capture_output=True, text=True).stdout.strip(),
        what="the cancelled jobs to leave the queue",
    )
    stored = Storage(storage).get(folder.name)
    ran = [t for t in stored if t.status == "interrupted"]
    assert len(ran) == 1 and ran[0].records[0]["started"] > 0  # what it recorded is kept
