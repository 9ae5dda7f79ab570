"""``machinable reproduce`` / ``ml.reproduce``: re-run a stored execution with its seeds and compare the results."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import machinable as ml
from machinable.cli.main import main
from machinable.replay.reproduce import DIFFERS, FAILED, REPRODUCED

# Seeded randomness in two record scopes and in stored values: reproducible by construction.
FIT = """\
import random

import machinable as ml
from helpers import OFFSET


@ml.parametrize("lr", [0.1, 0.2])
class Fit(ml.Component):
    def on_execute(self):
        rng = random.Random(self.seed)
        extra = self.record_writer("eval")
        for i in range(3):
            self.record["loss"] = rng.random() * self.config.lr + OFFSET
            self.record["step"] = i
            self.record.save()
        extra["accuracy"] = rng.random()
        extra.save()
        self.store("weights.json", {"w": [rng.random(), rng.random()]})
        self.store("best", rng.random())
"""
HELPERS = "OFFSET = 0.0\n"


def _write(root: Path, files: dict[str, str]) -> None:
    for name, source in files.items():
        (root / name).write_text(textwrap.dedent(source))


def _project(tmp_path: Path, source: str = FIT, name: str = "fit") -> Path:
    root = tmp_path / "project"
    root.mkdir()
    _write(
        root, {"machinable.yaml": f"components:\n  - {name}\n", f"{name}.py": source, "helpers.py": HELPERS}
    )
    return root


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "MACHINABLE_MODE"}
    env.update(PYTHONDONTWRITEBYTECODE="1", NO_COLOR="1", COLUMNS="100")
    return env


def _machinable(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "machinable", *args],
        cwd=root,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )


def _run(root: Path, monkeypatch: pytest.MonkeyPatch, storage: Path, name: str = "fit") -> str:
    """Run the project in this process (fast) and return the execution id."""
    monkeypatch.chdir(root)
    execution = ml.execute(name, storage=str(storage), echo=False)
    assert all(t.passed for t in execution.trials), [t.error for t in execution.trials]
    return execution.id


def _tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_the_command_reproduces_an_unchanged_project_and_exits_0(tmp_path):
    root = _project(tmp_path)
    run = _machinable(root, "--storage", "results", "--seed", "3K45al")
    assert run.returncode == 0, run.stdout + run.stderr
    before = _tree(root / "results")

    done = _machinable(root, "reproduce", "3K45al", "--storage", "results")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "fit[lr=0.1] REPRODUCED" in done.stdout
    assert "fit[lr=0.2] REPRODUCED" in done.stdout
    assert "2 reproduced, 0 differ, 0 failed in" in done.stdout
    assert _tree(root / "results") == before  # the stored execution is only read


def test_the_command_reports_the_first_difference_after_the_code_changed(tmp_path):
    root = _project(tmp_path)
    assert _machinable(root, "--storage", "results", "--seed", "3K45al").returncode == 0
    stored = json.loads(
        next((root / "results" / "3K45al").glob("*/records.jsonl")).read_text().splitlines()[0]
    )
    _write(root, {"helpers.py": "OFFSET = 0.5\n"})  # a change in a module the component imports

    done = _machinable(root, "reproduce", "3K45al", "--storage", "results", "-k", "lr=0.1")
    assert done.returncode == 1
    line = next(line for line in done.stdout.splitlines() if "DIFFERS" in line)
    assert line.startswith("fit[lr=0.1] DIFFERS - records 'default' row 0, column 'loss': stored ")
    assert "re-run " in line
    assert "0 reproduced, 1 differ, 0 failed" in done.stdout
    assert "1 trial deselected by -k" in done.stdout
    assert stored["loss"] is not None


def test_from_backup_runs_the_code_of_the_execution_not_the_current_code(tmp_path):
    root = _project(tmp_path)
    assert _machinable(root, "--storage", "results", "--seed", "3K45al").returncode == 0
    _write(root, {"helpers.py": "OFFSET = 1.0\n"})

    backed_up = _machinable(root, "reproduce", "3K45al", "--storage", "results", "--from-backup")
    assert backed_up.returncode == 0, backed_up.stdout + backed_up.stderr
    assert "re-running with the code in code.zip" in backed_up.stdout
    current = _machinable(root, "reproduce", "3K45al", "--storage", "results")
    assert current.returncode == 1
    assert "2 differ" in current.stdout


def test_ml_reproduce_returns_a_result_per_trial(tmp_path, monkeypatch):
    root = _project(tmp_path)
    execution_id = _run(root, monkeypatch, tmp_path / "results")
    result = ml.reproduce(execution_id, storage=str(tmp_path / "results"))
    assert result.ok
    assert [(t.node_id, t.outcome) for t in result.trials] == [
        ("fit[lr=0.1]", REPRODUCED),
        ("fit[lr=0.2]", REPRODUCED),
    ]
    assert result.summary().startswith("2 reproduced, 0 differ, 0 failed in ")
    assert result.to_dict()["counts"] == {REPRODUCED: 2, DIFFERS: 0, FAILED: 0}


def test_in_process_reproduce_reads_the_changed_code_not_a_cached_module(tmp_path, monkeypatch):
    root = _project(tmp_path)
    execution_id = _run(root, monkeypatch, tmp_path / "results")  # 'fit' and 'helpers' are now imported
    _write(root, {"helpers.py": "OFFSET = 0.25\n"})
    changed = ml.reproduce(execution_id, storage=str(tmp_path / "results"))
    assert [t.outcome for t in changed.trials] == [DIFFERS, DIFFERS]
    backed_up = ml.reproduce(execution_id, storage=str(tmp_path / "results"), from_backup=True)
    assert [t.outcome for t in backed_up.trials] == [REPRODUCED, REPRODUCED]
    # The backup's modules are gone again: the current code runs.
    again = ml.reproduce(execution_id, storage=str(tmp_path / "results"))
    assert [t.outcome for t in again.trials] == [DIFFERS, DIFFERS]


def test_an_edited_record_file_is_reported_with_scope_row_column_and_both_values(tmp_path, monkeypatch):
    root = _project(tmp_path)
    results = tmp_path / "results"
    execution_id = _run(root, monkeypatch, results)
    trial = ml.Storage(str(results)).get(execution_id).trial("fit[lr=0.2]")
    path = Path(trial.path) / "records" / "eval.jsonl"
    row = json.loads(path.read_text())
    original = row["accuracy"]
    row["accuracy"] = 0.5
    path.write_text(json.dumps(row) + "\n")

    result = ml.reproduce(execution_id, storage=str(results))
    assert [t.outcome for t in result.trials] == [REPRODUCED, DIFFERS]
    difference = result.trials[1].difference
    assert (difference.kind, difference.scope, difference.row, difference.column) == (
        "records",
        "eval",
        0,
        "accuracy",
    )
    assert (difference.old, difference.new) == (0.5, original)
    assert (
        result.trials[1].detail == f"records 'eval' row 0, column 'accuracy': stored 0.5, re-run {original!r}"
    )
    assert not result.ok


def test_an_edited_stored_value_is_reported_by_name_and_path(tmp_path, monkeypatch):
    root = _project(tmp_path)
    results = tmp_path / "results"
    execution_id = _run(root, monkeypatch, results)
    trial = ml.Storage(str(results)).get(execution_id).trial("fit[lr=0.1]")
    path = Path(trial.path) / "store" / "weights.json"
    weights = json.loads(path.read_text())
    weights["w"][1] += 1.0
    path.write_text(json.dumps(weights))

    [first, second] = ml.reproduce(execution_id, storage=str(results)).trials
    assert (first.outcome, second.outcome) == (DIFFERS, REPRODUCED)
    assert first.detail.startswith("stored object 'weights.json'['w'][1]: stored ")


def test_a_removed_record_row_is_reported_as_a_missing_row(tmp_path, monkeypatch):
    root = _project(tmp_path)
    results = tmp_path / "results"
    execution_id = _run(root, monkeypatch, results)
    trial = ml.Storage(str(results)).get(execution_id).trial("fit[lr=0.1]")
    path = Path(trial.path) / "records.jsonl"
    path.write_text("".join(path.read_text().splitlines(keepends=True)[:2]))

    [first, _] = ml.reproduce(execution_id, storage=str(results)).trials
    assert first.outcome == DIFFERS
    assert first.detail.startswith("records 'default' row 2: stored <missing>, re-run {'loss': ")


NOISY = """\
from pathlib import Path

import machinable as ml

CALLS = Path(__file__).with_name("calls.txt")


@ml.component
def noisy(record, store):
    # Tiny noise the seed does not control (as from non-deterministic GPU kernels): different on every call.
    calls = int(CALLS.read_text()) + 1 if CALLS.exists() else 1
    CALLS.write_text(str(calls))
    noise = calls * 1e-12
    record["value"] = 1.0 + noise
    record.save()
    store("values", [0.5 + noise, {"x": 2.0 - noise}])
"""


def test_float_tolerances_accept_tiny_noise_that_the_exact_comparison_rejects(tmp_path, monkeypatch):
    root = _project(tmp_path, NOISY, "noisy")
    results = tmp_path / "results"
    execution_id = _run(root, monkeypatch, results, "noisy")
    exact = ml.reproduce(execution_id, storage=str(results))
    assert [t.outcome for t in exact.trials] == [DIFFERS]
    assert ml.reproduce(execution_id, storage=str(results), atol=1e-6).ok
    assert ml.reproduce(execution_id, storage=str(results), rtol=1e-6).ok


def test_the_command_takes_tolerances(tmp_path, monkeypatch, capsys):
    root = _project(tmp_path, NOISY, "noisy")
    results = tmp_path / "results"
    execution_id = _run(root, monkeypatch, results, "noisy")
    assert main(["reproduce", execution_id, "--storage", str(results), "--color", "no"]) == 1
    assert "noisy DIFFERS - records 'default' row 0, column 'value'" in capsys.readouterr().out
    assert main(["reproduce", execution_id, "--storage", str(results), "--atol", "1e-9"]) == 0
    out = capsys.readouterr().out
    assert "comparing rtol=0, atol=1e-09" in out and "noisy REPRODUCED" in out
    assert main(["reproduce", execution_id, "--storage", str(results), "--rtol", "-1"]) == 4
    assert "expected a non-negative number" in capsys.readouterr().err


FAILING = """\
import machinable as ml


@ml.parametrize("fail", [False, True])
class Sometimes(ml.Component):
    def on_execute(self):
        self.record["ok"] = 1
        self.record.save()
        if self.config.fail:
            raise ValueError("asked to fail")
"""


def test_trials_that_did_not_pass_originally_or_in_the_rerun_are_failed(tmp_path, monkeypatch):
    root = _project(tmp_path, FAILING, "sometimes")
    results = tmp_path / "results"
    monkeypatch.chdir(root)
    execution = ml.execute("sometimes", storage=str(results), echo=False)
    assert [t.status for t in execution.trials] == ["passed", "failed"]
    result = ml.reproduce(execution.id, storage=str(results))
    assert [t.outcome for t in result.trials] == [REPRODUCED, FAILED]
    assert result.trials[1].detail == "the stored trial failed; nothing to compare"

    _write(root, {"sometimes.py": FAILING.replace("if self.config.fail:", "if True:")})
    result = ml.reproduce(execution.id, storage=str(results), k="fail=False")
    assert [(t.node_id, t.outcome) for t in result.trials] == [("sometimes[fail=false]", FAILED)]
    assert result.trials[0].detail == "the re-run failed: ValueError: asked to fail"
    assert result.deselected == 1


def test_unknown_ids_and_empty_selections(tmp_path, monkeypatch, capsys):
    root = _project(tmp_path)
    results = tmp_path / "results"
    execution_id = _run(root, monkeypatch, results)
    assert main(["reproduce", "Abcdef", "--storage", str(results)]) == 4
    err = capsys.readouterr().err
    assert "no execution 'Abcdef'" in err and f"recent executions: {execution_id}" in err
    assert main(["reproduce", execution_id, "--storage", str(results), "-k", "nothing-matches"]) == 5
    assert "no trial of execution" in capsys.readouterr().out
    assert main(["reproduce", execution_id, "--storage", str(results), "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["ok"] is True and [t["outcome"] for t in payload["trials"]] == [REPRODUCED, REPRODUCED]


def test_from_backup_without_a_backup_is_a_usage_error(tmp_path, monkeypatch, capsys):
    root = _project(tmp_path)
    monkeypatch.chdir(root)
    results = tmp_path / "results"
    execution = ml.execute("fit", storage={"url": str(results), "code_backup": False}, echo=False)
    assert main(["reproduce", execution.id, "--storage", str(results), "--from-backup"]) == 4
    assert "has no code backup (code.zip)" in capsys.readouterr().err


NOTEBOOK = """\
import sys

import machinable as ml


class Cell(ml.Component):  # as in a notebook cell: the class lives in __main__
    def on_execute(self):
        self.record["x"] = 1
        self.record.save()
        if len(sys.argv) > 2:
            raise RuntimeError("failed in the notebook")


execution = ml.execute(ml.Task().component(Cell), storage=sys.argv[1], echo=False)
print(execution.id)
"""


def test_an_execution_of_a_notebook_defined_component_fails_clearly_not_with_a_traceback(tmp_path):
    root = _project(tmp_path)
    _write(root, {"notebook.py": NOTEBOOK})
    results = tmp_path / "results"
    run = subprocess.run(
        [sys.executable, "notebook.py", str(results)], cwd=root, env=_env(), capture_output=True, text=True
    )
    execution_id = run.stdout.split()[-1]

    done = _machinable(root, "reproduce", execution_id, "--storage", str(results))
    assert done.returncode == 1 and "Traceback" not in done.stdout + done.stderr
    assert "Cell FAILED - component 'Cell' was defined in __main__" in done.stdout
    assert "cannot be imported again; define it in a project module" in done.stdout


def test_a_module_no_file_can_be_imported_as_is_not_importable():
    from machinable.replay.stored import not_importable
    from machinable.trials import TrialSpec

    def spec(module: str, attribute: str = "C") -> TrialSpec:
        return TrialSpec.from_info(
            {
                "node_id": "c",
                "component": "c",
                "module": module,
                "attribute": attribute,
                "config": {},
                "seed": 1,
                "uid": "u",
            }
        )

    # runpy.run_path and exec() give modules names like these.
    for module in ("<run_path>", "__main__", "__mp_main__", "my-notebook"):
        assert "cannot be imported again" in not_importable(spec(module))
    assert "a function" in not_importable(spec("tasks.fit", "make.<locals>.C"))
    assert not_importable(spec("tasks.fit")) is None


def test_usage_errors_come_before_any_report_line(tmp_path, monkeypatch, capsys):
    root = _project(tmp_path)
    results = tmp_path / "results"
    execution_id = _run(root, monkeypatch, results)
    for option in (["--engine", "nosuch"], ["-k", "and ("]):
        assert main(["reproduce", execution_id, "--storage", str(results), *option]) == 4
        captured = capsys.readouterr()
        assert captured.out == "" and captured.err.startswith("ERROR: ")


def test_the_header_names_seed_and_folder_of_an_id_stored_twice(tmp_path, monkeypatch, capsys):
    root = _project(tmp_path)
    results = tmp_path / "results"
    monkeypatch.chdir(root)
    first = ml.execute("fit", storage=str(results), seed=3, echo=False)
    ml.execute("fit", storage=str(results), seed=3, echo=False)
    assert main(["reproduce", first.id, "--storage", str(results)]) == 0
    assert (
        f"execution {first.id} (seed {first.seed}, folder {first.id}-2), storage" in capsys.readouterr().out
    )
