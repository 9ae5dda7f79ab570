"""Resume: a run killed half-way is finished by ``machinable resume`` in the same execution, touching no passed trial."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import machinable as ml
from machinable.cli.main import main
from machinable.errors import UsageError
from machinable.replay.resume import NOT_STARTED, pending_specs, resume, trial_states
from machinable.storage import Storage

SLOW_STEPS = """\
import time

import machinable as ml


@ml.parametrize("step", [0, 1, 2, 3, 4, 5])
class Steps(ml.Component):
    def on_execute(self):
        for i in range(3):
            time.sleep(0.1)
            self.record["step"] = self.config.step
            self.record["i"] = i
            self.record["seed"] = self.seed
            self.record.save()
        self.store("done", self.config.step)
"""

FLAKY = """\
import os

import machinable as ml


@ml.parametrize("n", [1, 2, 3])
class Flaky(ml.Component):
    def on_execute(self):
        self.record["n"] = self.config.n
        self.record.save()
        if self.config.n == 2 and os.environ.get("FLAKY_FAIL"):
            raise RuntimeError("flaky failure")
"""


def _project(root: Path, module: str, source: str) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "machinable.yaml").write_text(f"components:\n  - {module}\n")
    (root / f"{module}.py").write_text(textwrap.dedent(source))
    return root


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("MACHINABLE_MODE", "FLAKY_FAIL")}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def _passed(results: Path) -> int:
    return sum(
        1
        for path in results.glob("*/*/status.json")
        if json.loads(path.read_text() or "{}").get("outcome") == "passed"
    )


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


@pytest.mark.slow
@pytest.mark.skipif(os.name != "posix", reason="SIGKILL")
def test_a_killed_run_is_resumed_into_the_same_execution_without_rerunning_passed_trials(tmp_path):
    root = _project(tmp_path / "project", "steps", SLOW_STEPS)
    results = tmp_path / "results"
    run = subprocess.Popen(
        [sys.executable, "-m", "machinable", "--storage", str(results), "--seed", "42", "-q"],
        cwd=root,
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while _passed(results) < 3 and time.monotonic() < deadline:
        time.sleep(0.02)
    os.kill(run.pid, signal.SIGKILL)
    run.wait()  # reaped: its pid is gone, so its running trial reads as crashed at once

    [stored] = Storage(results).executions()
    states = {spec.node_id: status for spec, status in trial_states(stored)}
    assert len(states) == 6
    before = {t.uid: (t.started, _snapshot(Path(t.path))) for t in stored.trials if t.status == "passed"}
    assert 3 <= len(before) < 6, states
    assert set(states.values()) <= {"passed", "crashed", NOT_STARTED}
    crashed = {t.uid: _snapshot(Path(t.path)) for t in stored.trials if t.status == "crashed"}

    done = subprocess.run(
        [sys.executable, "-m", "machinable", "resume", stored.id, "--storage", str(results)],
        cwd=root,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"{6 - len(before)} of 6 trials did not pass" in done.stdout
    assert f"{6 - len(before)} passed" in done.stdout

    after = Storage(results).get(stored.id)
    assert [t.status for t in after.trials] == ["passed"] * 6
    for trial in after.trials:
        if trial.uid in before:
            started, files = before[trial.uid]
            assert trial.started == started  # never ran again
            assert _snapshot(Path(trial.path)) == files  # not a byte touched
        else:
            # A clean new attempt: its own three rows, with its stored seed; the crashed attempt's rows are kept.
            assert [r["i"] for r in trial.records] == [0, 1, 2]
            assert {r["seed"] for r in trial.records} == {trial.seed}
            # What the crashed attempt recorded before the kill is kept, byte for byte.
            if trial.uid in crashed:
                kept = _snapshot(Path(trial.path) / "attempts" / "1")
                assert kept == crashed[trial.uid]
    assert [e["trials"] for e in after.info["resumed"]] == [[s for s, v in states.items() if v != "passed"]]
    assert after.info["resumed"][0]["finished"] is not None
    assert len(Storage(results).executions()) == 1  # no new execution


def test_resume_runs_only_the_failed_trials_with_their_original_seeds(make_project, tmp_path, monkeypatch):
    root = _project(tmp_path / "project", "flaky", FLAKY)
    monkeypatch.chdir(root)
    monkeypatch.setenv("FLAKY_FAIL", "1")
    results = tmp_path / "results"
    execution = ml.execute("flaky", storage=str(results), seed=7, echo=False)
    assert [t.status for t in execution.trials] == ["passed", "failed", "passed"]
    stored = Storage(results).get(execution.id)
    passed_started = {t.uid: t.started for t in stored.trials if t.status == "passed"}
    [failed] = [t for t in stored.trials if t.status == "failed"]
    assert [s.node_id for s in pending_specs(stored)] == [failed.node_id]

    monkeypatch.delenv("FLAKY_FAIL")
    resumed = resume(execution.id, storage=str(results), project=root)
    assert [(t.node_id, t.status, t.seed) for t in resumed.trials] == [
        (failed.node_id, "passed", failed.seed)
    ]

    after = Storage(results).get(execution.id)
    assert [t.status for t in after.trials] == ["passed"] * 3
    assert {t.uid: t.started for t in after.trials if t.uid in passed_started} == passed_started
    again = after.trial(failed.uid)
    assert again.records == [{"n": 2, "_time": again.records[0]["_time"]}]  # one row: the attempts never mix
    assert "attempts/1/status.json" in again.files()  # the failed attempt is kept, not lost
    assert "flaky failure" in json.loads((Path(again.path) / "attempts/1/status.json").read_text())["error"]


def test_resuming_an_execution_whose_trials_all_passed_changes_nothing(tmp_path, monkeypatch, capsys):
    root = _project(tmp_path / "project", "flaky", FLAKY)
    monkeypatch.chdir(root)
    results = tmp_path / "results"
    execution = ml.execute("flaky", storage=str(results), echo=False)
    info = (results / execution.id / "execution.json").read_bytes()
    assert main(["resume", execution.id, "--storage", str(results)]) == 0
    assert "all 3 trials passed; nothing to resume" in capsys.readouterr().out
    assert (results / execution.id / "execution.json").read_bytes() == info


def test_a_trial_with_a_fresh_heartbeat_is_still_running_and_is_not_resumed(tmp_path, monkeypatch):
    root = _project(tmp_path / "project", "flaky", FLAKY)
    monkeypatch.chdir(root)
    results = tmp_path / "results"
    execution = ml.execute("flaky", storage=str(results), echo=False)
    trial = execution.trials[0]
    status = results / execution.id / trial.uid / "status.json"
    # Another host's live trial: a recent heartbeat and a pid this machine cannot check.
    status.write_text(
        json.dumps(
            {
                "outcome": "running",
                "started": time.time(),
                "heartbeat": time.time(),
                "host": "elsewhere",
                "pid": 1,
            }
        )
    )
    with pytest.raises(UsageError, match="still running"):
        pending_specs(Storage(results).get(execution.id))


def test_resume_of_an_unknown_execution_is_a_usage_error_that_lists_known_ids(tmp_path, monkeypatch, capsys):
    root = _project(tmp_path / "project", "flaky", FLAKY)
    monkeypatch.chdir(root)
    results = tmp_path / "results"
    execution = ml.execute("flaky", storage=str(results), echo=False)
    assert main(["resume", "zzzzzz", "--storage", str(results)]) == 4
    err = capsys.readouterr().err
    assert "no execution 'zzzzzz'" in err and execution.id in err


def test_resume_of_an_id_stored_twice_resumes_its_latest_folder_only(tmp_path, monkeypatch):
    root = _project(tmp_path / "project", "flaky", FLAKY)
    monkeypatch.chdir(root)
    results = tmp_path / "results"
    first = ml.execute("flaky", storage=str(results), seed=3, echo=False)
    monkeypatch.setenv("FLAKY_FAIL", "1")
    ml.execute("flaky", storage=str(results), seed=3, echo=False)  # the same id again: folder <id>-2
    monkeypatch.delenv("FLAKY_FAIL")
    untouched = {str(p): p.read_bytes() for p in (results / first.id).rglob("*") if p.is_file()}

    resumed = resume(first.id, storage=str(results))
    assert [t.node_id for t in resumed.trials] == ["flaky[n=2]"]
    latest = Storage(results).get(first.id)
    assert latest.folder == f"{first.id}-2"
    assert [t.status for t in latest.trials] == ["passed"] * 3
    assert len(latest.info["resumed"]) == 1
    assert {str(p): p.read_bytes() for p in (results / first.id).rglob("*") if p.is_file()} == untouched


def test_resuming_a_notebook_defined_component_is_one_usage_error_before_any_report(
    tmp_path, monkeypatch, capsys
):
    root = _project(tmp_path / "project", "flaky", FLAKY)
    results = tmp_path / "results"
    script = (
        "import machinable as ml\n"
        "class Cell(ml.Component):  # as in a notebook cell: the class lives in __main__\n"
        "    def on_execute(self):\n"
        "        raise RuntimeError('failed in the notebook')\n"
        f"print(ml.execute(ml.Task().component(Cell), storage={str(results)!r}, echo=False).id)\n"
    )
    run = subprocess.run([sys.executable, "-c", script], cwd=root, env=_env(), capture_output=True, text=True)
    execution_id = run.stdout.split()[-1]
    monkeypatch.chdir(root)
    assert main(["resume", execution_id, "--storage", str(results)]) == 4
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("ERROR: cannot resume Cell: component 'Cell' was defined in __main__")


def test_resume_lf_resumes_the_last_execution_of_the_project(tmp_path, monkeypatch, capsys):
    root = _project(tmp_path / "project", "flaky", FLAKY)
    results = tmp_path / "results"
    monkeypatch.chdir(root)
    monkeypatch.setenv("FLAKY_FAIL", "1")
    assert main(["--storage", str(results), "-q"]) == 1
    monkeypatch.delenv("FLAKY_FAIL")
    (execution,) = Storage(results).executions()
    capsys.readouterr()
    assert main(["resume", "--lf"]) == 0  # storage and id come from .machinable_cache
    assert f"resume {execution.id}" in capsys.readouterr().out
    assert [t.status for t in Storage(results).get(execution.id).trials] == ["passed"] * 3
    assert main(["resume"]) == 4
    assert "an execution ID is required (or --lf" in capsys.readouterr().err


def test_a_resume_gives_the_execution_its_new_finished_time(tmp_path, monkeypatch):
    root = _project(tmp_path / "project", "flaky", FLAKY)
    monkeypatch.chdir(root)
    monkeypatch.setenv("FLAKY_FAIL", "1")
    results = tmp_path / "results"
    execution = ml.execute("flaky", storage=str(results), echo=False)
    monkeypatch.delenv("FLAKY_FAIL")
    first_finish = Storage(results).get(execution.id).finished
    resumed = resume(execution.id, storage=str(results))
    after = Storage(results).get(execution.id).info
    assert after["finished"] == resumed.finished == after["resumed"][0]["finished"] != first_finish
