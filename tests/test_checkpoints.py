"""Checkpoints and preemption: ``save_checkpoint()`` / ``on_save``, a warning signal (SIGTERM) or a timeout ending a
trial ``preempted``, and ``resume`` continuing it from its latest complete checkpoint (``on_restore``), with the
same seed and records that go on without duplicates.

The fast tests preempt a trial by having it send SIGTERM to its own process (this one on the local engine, a
worker on the others); the slow ones run ``machinable`` in a subprocess and send SIGTERM from outside.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import REPO, clean_env, run_inprocess, write_project

import machinable as ml
from machinable.errors import MachinableError
from machinable.execution.executions import ExecutionInterrupted
from machinable.storage import ExecutionWriter, Storage, open_storage
from machinable.storage.checkpoints import CHECKPOINT_JSON, latest_checkpoint

pytestmark = pytest.mark.skipif(os.name != "posix", reason="signals")

# Adds its iteration to a total; saves a checkpoint at the iterations listed in ``checkpoint_at`` and sends itself
# SIGTERM (a scheduler's warning) at ``preempt_at``, in the first repeat only, unless STEPS_CALM is set.
STEPS = """\
import json
import os
import signal
from pathlib import Path

import machinable as ml


class Steps(ml.Component):
    def on_create(self):
        self.total = 0
        if os.environ.get("STEPS_BROKEN"):
            raise RuntimeError("cannot create")

    def on_save(self, path):
        Path(path, "state.json").write_text(json.dumps({"total": self.total}))

    def on_restore(self, path):
        self.total = json.loads(Path(path, "state.json").read_text())["total"]
        restores = self.record_writer("restores")
        restores["total"] = self.total
        restores["seed"] = self.seed
        restores.save()

    def on_execute_iteration(self, iteration):
        if iteration == self.config.steps:
            return False
        self.total += iteration
        self.record["total"] = self.total
        self.record["seed"] = self.seed
        if iteration in self.config.checkpoint_at:
            self.save_checkpoint()
        if (
            iteration == self.config.preempt_at
            and self.flags.REPEAT_NUMBER == 0
            and not os.environ.get("STEPS_CALM")
        ):
            os.kill(os.getpid(), signal.SIGTERM)
"""

# A random walk whose state is its records: each step's position follows from the last saved row and the step's
# own seed, so a signal that lands anywhere (inside record.save() too) leaves no state the kept rows do not tell.
# WALK_PAUSE slows it down; WALK_PIDS names a folder where the process running the trial leaves its pid.
WALK = """\
import json
import os
import random
import time
from pathlib import Path

import machinable as ml


class Walk(ml.Component):
    def on_create(self):
        if os.environ.get("WALK_PIDS"):
            Path(os.environ["WALK_PIDS"], str(os.getpid())).write_text("")

    def on_save(self, path):
        Path(path, "state.json").write_text(json.dumps({"rows": len(self.record.rows)}))

    def on_restore(self, path):
        restores = self.record_writer("restores")
        restores["saved"] = json.loads(Path(path, "state.json").read_text())["rows"]
        restores["rows"] = len(self.record.rows)
        restores["seed"] = self.seed
        restores.save()

    def on_execute(self):
        pause = float(os.environ.get("WALK_PAUSE") or 0)
        while len(self.record.rows) < self.config.steps:
            time.sleep(pause)
            step = len(self.record.rows)
            last = self.record.rows[-1]["position"] if step else 0
            self.record["step"] = step
            self.record["position"] = last + random.Random(self.seed * 1000 + step).choice((-1, 1))
            self.record.save()
"""

STEPS_YAML = "components:\n  - steps:\n      steps: 8\n      checkpoint_at: []\n      preempt_at: 3\n"
WALK_YAML = "components:\n  - walk:\n      steps: 40\n"


@pytest.fixture
def steps(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = write_project(tmp_path / "project", STEPS_YAML, {"steps.py": STEPS})
    monkeypatch.chdir(root)
    return root


def preempted_run(task: Any, results: Any, **options: Any) -> ml.Execution:
    """The execution that a SIGTERM inside its trial stopped (``ml.execute`` raises ExecutionInterrupted)."""
    with pytest.raises(ExecutionInterrupted) as stopped:
        ml.execute(
            task,
            storage=str(results) if isinstance(results, Path) else results,
            seed=42,
            echo=False,
            **options,
        )
    return stopped.value.execution


def without_time(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in row.items() if k != "_time"} for row in rows]


def reference(task: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """The records of an uninterrupted run of ``task`` with the same seed."""
    monkeypatch.setenv("STEPS_CALM", "1")
    execution = ml.execute(task, storage=str(tmp_path / "reference"), seed=42, echo=False)
    monkeypatch.delenv("STEPS_CALM")
    return without_time(execution.trials[0].records)


# -- saving ------------------------------------------------------------------------------------------------------


SAVER = """\
from pathlib import Path

import machinable as ml


class Saver(ml.Component):
    def on_save(self, path):
        Path(path, "model.txt").write_text(f"after {len(self.record.rows)} rows")
        Path(path, "nested").mkdir()
        Path(path, "nested", "part.bin").write_bytes(b"\\x00\\x01")

    def on_execute(self):
        self.record["loss"] = 1.0
        self.record.save()
        self.record["loss"] = 0.5  # not saved yet: the checkpoint saves it first
        self.record_writer("validation")["accuracy"] = 0.9
        self.store("first.json", self.save_checkpoint())
        self.record["loss"] = 0.25
        self.store("second.json", self.save_checkpoint())
"""


@pytest.mark.parametrize("storage", ["local", "memory"])
def test_save_checkpoint_writes_what_on_save_wrote_and_then_its_marker(tmp_path, monkeypatch, storage):
    root = write_project(tmp_path / "project", "components:\n  - saver\n", {"saver.py": SAVER})
    monkeypatch.chdir(root)
    target = str(tmp_path / "results") if storage == "local" else f"memory://checkpoints-{tmp_path.name}"
    execution = ml.execute("saver", storage=target, echo=False)
    [result] = execution.trials
    assert result.status == "passed", result.error
    trial = Storage(target).get(execution.id).trial(result.uid)
    files = set(trial.files())
    for number in (1, 2):
        assert {
            f"checkpoints/{number}/model.txt",
            f"checkpoints/{number}/nested/part.bin",
            f"checkpoints/{number}/{CHECKPOINT_JSON}",
        } <= files
    assert trial.store["first.json"] == f"{trial.path}/checkpoints/1"  # where it is in storage
    assert trial.store["second.json"] == f"{trial.path}/checkpoints/2"
    backend = open_storage(target).backend()
    read = lambda rel: backend.read_bytes(f"{trial.path}/{rel}")  # noqa: E731
    assert read("checkpoints/1/model.txt") == b"after 2 rows"
    assert read("checkpoints/2/nested/part.bin") == b"\x00\x01"
    markers = [json.loads(read(f"checkpoints/{n}/{CHECKPOINT_JSON}")) for n in (1, 2)]
    assert [(m["number"], m["records"], m["iteration"]) for m in markers] == [
        (1, {"default": 2, "validation": 1}, 0),
        (2, {"default": 3, "validation": 1}, 0),
    ]
    assert [r["loss"] for r in trial.records] == [1.0, 0.5, 0.25]


def test_save_checkpoint_outside_a_trial_is_an_error():
    with pytest.raises(MachinableError, match="only available while the component runs"):
        ml.Component().save_checkpoint()


# -- preemption and resume ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("storage", ["local", "memory", pytest.param("s3", marks=pytest.mark.slow)])
def test_a_preempted_iteration_is_covered_by_its_checkpoint_and_resume_goes_on_with_the_next(
    steps, tmp_path, monkeypatch, request, storage
):
    # On memory and S3, on_save and on_restore get local temporary folders, copied to and from storage.
    results: Any = {
        "local": lambda: str(tmp_path / "results"),
        "memory": lambda: f"memory://preempted-{tmp_path.name}",
        "s3": lambda: request.getfixturevalue("s3_server").target(),
    }[storage]()
    execution = preempted_run("steps", results)
    [trial] = execution.trials
    assert trial.status == "preempted"
    assert trial.error.splitlines()[-1] == "preempted by SIGTERM; checkpoint 1 saved"
    assert [r["_iteration"] for r in trial.records] == [0, 1, 2, 3]  # the preempted iteration's row is kept

    resumed = ml.resume(execution.id, storage=results)
    [again] = resumed.trials
    assert again.status == "passed" and again.seed == trial.seed
    assert [r["_iteration"] for r in again.records] == list(range(8))  # restored rows, then 4 ... 7
    stored = Storage(results).get(execution.id).trial(trial.uid)
    assert [(r["total"], r["seed"]) for r in stored.records_of("restores")] == [(6, trial.seed)]
    assert stored.info["start"]["restored"] == "attempts/1/checkpoints/1"
    assert without_time(stored.records) == reference("steps", tmp_path, monkeypatch)


def test_a_checkpoint_without_its_marker_is_ignored_and_the_records_go_on_from_the_one_before(
    steps, tmp_path, monkeypatch
):
    task = ml.Task().component("steps", {"checkpoint_at": [1, 3], "preempt_at": 5})
    results = tmp_path / "results"
    execution = preempted_run(task, results)
    [trial] = execution.trials
    assert trial.error.splitlines()[-1] == "preempted by SIGTERM; checkpoint 3 saved"
    folder = Path(results, execution.id, trial.uid)
    (folder / "checkpoints/3" / CHECKPOINT_JSON).unlink()  # as if killed while saving it

    # A resume whose attempt fails before its first checkpoint; the next one goes back to the first attempt's.
    monkeypatch.setenv("STEPS_BROKEN", "1")
    assert ml.resume(execution.id, storage=str(results)).trials[0].status == "failed"
    monkeypatch.delenv("STEPS_BROKEN")
    writer = ExecutionWriter(open_storage(str(results)), execution.id)
    assert latest_checkpoint(writer, trial.uid) == "attempts/1/checkpoints/2"

    monkeypatch.setenv("STEPS_CALM", "1")
    [again] = ml.resume(execution.id, storage=str(results)).trials
    assert again.status == "passed"
    stored = Storage(results).get(execution.id).trial(trial.uid)
    # Checkpoint 2 was taken in iteration 3: the rows of iterations 4 and 5 the first attempt wrote are dropped.
    assert [r["total"] for r in stored.records_of("restores")] == [6]
    assert [r["_iteration"] for r in stored.records] == list(range(8))
    monkeypatch.delenv("STEPS_CALM")
    assert without_time(stored.records) == reference(task, tmp_path, monkeypatch)


PATIENT = """\
import time

import machinable as ml


class Patient(ml.Component):
    def on_execute(self):
        time.sleep(30)
"""

SAVING = """\
from pathlib import Path

from patient import Patient


class Saving(Patient):
    def on_save(self, path):
        Path(path, "state.txt").write_text("half-way")
"""


def test_a_timeout_with_on_save_ends_preempted_and_one_without_fails(make_project, monkeypatch):
    root = make_project(
        "components:\n  - saving\n  - patient\n", {"patient.py": PATIENT, "saving.py": SAVING}
    )
    monkeypatch.chdir(root)
    task = ml.Task().component("saving", timeout=0.2).component("patient", timeout=0.2)
    saving, patient = ml.execute(task, storage=str(root / "results"), echo=False).trials
    assert saving.status == "preempted"
    assert saving.error.splitlines()[-1] == "trial timed out after 0.2 s; checkpoint 1 saved"
    folder = Path(root, "results", saving.flags["EXECUTION_ID"], saving.uid, "checkpoints/1")
    assert (folder / "state.txt").read_text() == "half-way" and (folder / CHECKPOINT_JSON).is_file()
    assert patient.status == "failed" and "TrialTimeout: trial timed out after 0.2 s" in patient.error


WARN = """\
import os
import signal
from pathlib import Path

import machinable as ml


def warn():
    os.kill(os.getpid(), signal.SIGTERM)

"""

STOPPERS = {
    "early": """
class Early(ml.Component):
    def on_create(self):
        warn()

    def on_save(self, path):
        raise AssertionError("nothing to save before on_execute")
""",
    "twice": """
class Twice(ml.Component):
    def on_execute(self):
        warn()

    def on_save(self, path):
        warn()  # the scheduler's second SIGTERM, or the controller's forwarded one: ignored
        Path(path, "state.txt").write_text("complete")
""",
    "broken": """
class Broken(ml.Component):
    def on_execute(self):
        warn()

    def on_save(self, path):
        raise OSError("disk full")
""",
    "function": """
@ml.component
def function():
    warn()
""",
}


@pytest.mark.parametrize(
    ("name", "line", "complete"),
    [
        ("early", "preempted by SIGTERM; no checkpoint saved (stopped before on_execute began)", False),
        ("twice", "preempted by SIGTERM; checkpoint 1 saved", True),
        ("broken", "preempted by SIGTERM; no checkpoint saved: on_save failed: OSError: disk full", False),
        ("function", "preempted by SIGTERM; no checkpoint saved", False),
    ],
)
def test_what_a_preemption_saves(make_project, monkeypatch, tmp_path, name, line, complete):
    root = make_project(f"components:\n  - {name}\n", {f"{name}.py": WARN + STOPPERS[name]})
    monkeypatch.chdir(root)
    results = tmp_path / "results"
    [trial] = preempted_run(name, results).trials
    assert trial.status == "preempted"
    assert trial.error.splitlines()[-1] == line
    writer = ExecutionWriter(open_storage(str(results)), trial.flags["EXECUTION_ID"])
    marker = Path(writer.path, trial.uid, "checkpoints/1", CHECKPOINT_JSON)
    assert marker.is_file() == complete
    assert Path(writer.path, trial.uid, "checkpoints").exists() == (name in ("twice", "broken"))


def test_a_sigterm_to_a_process_worker_preempts_its_trial_and_the_worker_goes_on(
    steps, tmp_path, monkeypatch
):
    results = tmp_path / "results"
    task = ml.Task().component("steps").repeat(2)
    execution = ml.execute(task, storage=str(results), seed=42, engine="process:1", echo=False)
    first, second = execution.trials
    assert (first.status, second.status) == ("preempted", "passed")
    assert first.error.splitlines()[-1] == "preempted by SIGTERM; checkpoint 1 saved"
    assert not execution.interrupted

    [again] = ml.resume(execution.id, storage=str(results), engine="process:1").trials
    assert again.uid == first.uid and again.status == "passed"
    assert [r["_iteration"] for r in again.records] == list(range(8))
    assert Storage(results).get(execution.id).trial(first.uid).records_of("restores")[0]["total"] == 6


def test_the_terminal_junit_show_and_lf_report_a_preempted_trial(steps, tmp_path, capsys, monkeypatch):
    results, junit = tmp_path / "results", tmp_path / "junit.xml"
    ran = run_inprocess(capsys, steps, "--storage", str(results), "--junitxml", str(junit))
    assert ran.ret == 2, ran.out + ran.err
    assert "steps P" in ran.out
    assert "PREEMPTED steps - preempted by SIGTERM; checkpoint 1 saved" in ran.out
    assert "preempted by SIGTERM: the execution stopped" in ran.out and "KeyboardInterrupt" not in ran.out
    assert ran.lines[-1].startswith("=") and " 1 preempted in " in ran.lines[-1]
    xml = junit.read_text()
    assert '<error message="preempted: preempted by SIGTERM; checkpoint 1 saved">' in xml

    [stored] = Storage(results).executions()
    shown = run_inprocess(capsys, steps, "show", stored.id, "--storage", str(results))
    assert "1 trial: 1 preempted" in shown.out
    assert "PREEMPTED steps - preempted by SIGTERM; checkpoint 1 saved" in shown.out

    monkeypatch.setenv("STEPS_CALM", "1")
    again = run_inprocess(capsys, steps, "--lf", "--storage", str(results))
    assert again.ret == 0, again.out
    assert "run-last-failure: rerun previous 1 failure" in again.out and "1 passed" in again.out


# -- real processes, signals from outside ------------------------------------------------------------------------


def start(root: Path, *args: str, **env: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "machinable", *args],
        cwd=root,
        env=clean_env(PYTHONPATH=str(REPO), PYTHONDONTWRITEBYTECODE="1", **env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for(condition: Any, what: str, process: subprocess.Popen[str], seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if process.poll() is not None:
            pytest.fail(
                f"machinable ended (exit {process.returncode}) before {what}: {process.communicate()}"
            )
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"{what} did not happen within {seconds:g} s")
        time.sleep(0.02)


def rows_written(results: Path) -> int:
    return max((len(p.read_bytes().splitlines()) for p in results.glob("*/*/records.jsonl")), default=0)


def machinable(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "machinable", *args],
        cwd=root,
        env=clean_env(PYTHONPATH=str(REPO), PYTHONDONTWRITEBYTECODE="1"),
        capture_output=True,
        text=True,
        timeout=120,
    )


def check_resumed(root: Path, results: Path, monkeypatch: pytest.MonkeyPatch, task: Any) -> None:
    """``machinable resume`` continues every preempted trial from its checkpoint: on_restore sees the rows the
    checkpoint kept and the same seed, and the records equal an uninterrupted run's (``_time`` aside)."""
    [stored] = Storage(results).executions()
    preempted = [t for t in stored.trials if t.status == "preempted"]
    assert preempted, [t.status for t in stored.trials]
    kept = {}
    for trial in preempted:
        assert trial.error.splitlines()[-1] == "preempted by SIGTERM; checkpoint 1 saved"
        marker = json.loads(Path(trial.path, "checkpoints/1", CHECKPOINT_JSON).read_text())
        kept[trial.uid] = marker["records"]["default"]
        # A signal inside record.save() may leave a row written but not yet counted (it is dropped on resume).
        assert 0 < kept[trial.uid] <= len(trial.records) < 40
    done = machinable(root, "resume", stored.id, "--storage", str(results))
    assert done.returncode == 0, done.stdout + done.stderr
    monkeypatch.chdir(root)
    expected = ml.execute(task, storage=str(root.parent / "reference"), seed=42, echo=False)
    after = Storage(results).get(stored.id)
    for trial, full in zip(after.trials, expected.trials, strict=True):
        assert trial.status == "passed" and trial.seed == full.seed
        assert without_time(trial.records) == without_time(full.records)
        restores = [(r["saved"], r["rows"], r["seed"]) for r in trial.records_of("restores")]
        assert restores == ([(kept[trial.uid], kept[trial.uid], trial.seed)] if trial.uid in kept else [])


@pytest.mark.slow
def test_sigterm_to_a_local_run_preempts_its_trial_and_resume_continues_it(tmp_path, monkeypatch):
    root = write_project(tmp_path / "project", WALK_YAML, {"walk.py": WALK})
    results = tmp_path / "results"
    run = start(root, "--storage", str(results), "--seed", "42", WALK_PAUSE="0.02")
    wait_for(lambda: rows_written(results) >= 5, "5 rows", run)
    os.kill(run.pid, signal.SIGTERM)
    out, err = run.communicate(timeout=60)
    assert run.returncode == 2, out + err
    assert "1 preempted" in out and "preempted by SIGTERM: the execution stopped" in out
    check_resumed(root, results, monkeypatch, "walk")


@pytest.mark.slow
@pytest.mark.parametrize("target", ["worker", "controller"])
def test_sigterm_to_a_process_engine_preempts_and_resume_continues(tmp_path, monkeypatch, target):
    root = write_project(tmp_path / "project", WALK_YAML, {"walk.py": WALK})
    results, pids = tmp_path / "results", tmp_path / "pids"
    pids.mkdir()
    args = ("--storage", str(results), "--seed", "42", "--repeat", "2", "--engine", "process:1")
    run = start(root, *args, WALK_PAUSE="0.02", WALK_PIDS=str(pids))
    wait_for(lambda: rows_written(results) >= 5 and any(pids.iterdir()), "5 rows", run)
    [worker] = [int(p.name) for p in pids.iterdir()]
    os.kill(worker if target == "worker" else run.pid, signal.SIGTERM)
    out, err = run.communicate(timeout=60)
    if target == "worker":  # the worker goes on with the second trial; the run ends with a trial not passed
        assert run.returncode == 1, out + err
        assert "1 passed, 1 preempted" in out
    else:  # forwarded to the worker; the run stops
        assert run.returncode == 2, out + err
        assert "1 preempted" in out and "passed" not in out.splitlines()[-1]
    check_resumed(root, results, monkeypatch, ml.Task().component("walk").repeat(2))


# Its own local Ray, in a process of its own, and no ``import ray`` here: Ray imported into the test process
# before tests/test_components.py runs a project module named ``inspect`` (which takes the standard library's
# place in sys.modules until the test ends) keeps the old ``inspect``, and Ray then fails to load a later test's
# actor class (tests/test_live.py's progress channel) with "unexpected object <Signature ...>".
RAY_SCRIPT = """\
import json
import machinable as ml
from machinable.execution.engines.ray_engine import connect

connect(num_cpus=1)
execution = ml.execute("steps", storage="results", seed=42, engine="ray", echo=False)
again = ml.resume(execution.id, storage="results", engine="ray")
print(json.dumps([[t.status, t.seed, t.error, [r["_iteration"] for r in t.records]]
                  for t in (execution.trials[0], again.trials[0])]))
"""


@pytest.mark.slow
def test_sigterm_to_a_ray_worker_preempts_its_trial_and_resume_continues_it(tmp_path):
    if importlib.util.find_spec("ray") is None:
        pytest.skip("needs Ray")
    done = subprocess.run(
        [sys.executable, "-c", RAY_SCRIPT],
        cwd=write_project(tmp_path / "project", STEPS_YAML, {"steps.py": STEPS}),
        env=clean_env(PYTHONPATH=str(REPO), PYTHONDONTWRITEBYTECODE="1"),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    (status, seed, error, iterations), (again, again_seed, _, all_iterations) = json.loads(
        done.stdout.splitlines()[-1]
    )
    assert status == "preempted" and error.splitlines()[-1] == "preempted by SIGTERM; checkpoint 1 saved"
    assert iterations == [0, 1, 2, 3]
    assert again == "passed" and again_seed == seed and all_iterations == list(range(8))
