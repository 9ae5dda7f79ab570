"""``machinable show``: stored executions, newest first, and one execution's trials, as tables or JSON."""

from __future__ import annotations

import json
import shutil
import textwrap
import time
from pathlib import Path

import pytest

import machinable as ml
from machinable.cli.main import main
from machinable.reporting.show import format_table

FIT = """\
import machinable as ml


@ml.parametrize("lr", [0.1, 0.5, 0.9])
class Fit(ml.Component):
    def on_execute(self):
        for step in range(3):
            self.record["loss"] = self.config.lr / (step + 1)
            self.record["step"] = step
            self.record.save()
        if self.config.lr > 0.8:
            raise ValueError("diverged")
"""


@pytest.fixture
def stored(tmp_path, monkeypatch):
    """Two executions of a three-trial project: one with a failed trial, a newer one with a crashed trial and a
    trial that never started."""
    root = tmp_path / "project"
    root.mkdir()
    (root / "machinable.yaml").write_text(
        "components:\n  - fit:\n      width: 3\n      data: {name: mnist}\n"
    )
    (root / "fit.py").write_text(textwrap.dedent(FIT))
    monkeypatch.chdir(root)
    results = tmp_path / "results"
    first = ml.execute(ml.Task(name="sweep").component("fit"), storage=str(results), seed=1, echo=False)
    second = ml.execute("fit", storage=str(results), seed=2, echo=False)
    trials = {t.node_id: t for t in second.trials}
    folder = results / second.id
    # A trial whose process vanished an hour ago without finishing; another that never started.
    status = folder / trials["fit[lr=0.1]"].uid / "status.json"
    stale = time.time() - 3600
    status.write_text(
        json.dumps({"outcome": "running", "started": stale, "heartbeat": stale, "host": "elsewhere"})
    )
    shutil.rmtree(folder / trials["fit[lr=0.5]"].uid)
    # Neither trial ended, so neither has a line in the execution's index (show counts from the index).
    gone = {trials["fit[lr=0.1]"].uid, trials["fit[lr=0.5]"].uid}
    index = folder / "index.jsonl"
    lines = [line for line in index.read_text().splitlines() if json.loads(line)["uid"] not in gone]
    index.write_text("".join(f"{line}\n" for line in lines))
    return results, first.id, second.id


def _show(capsys, *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(["show", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_without_an_id_show_lists_executions_newest_first_with_status_counts(stored, capsys):
    results, first, second = stored
    code, out, _ = _show(capsys, "--storage", str(results))
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == f"storage {results}: 2 executions, newest first"
    assert lines[1].split() == ["ID", "NAME", "STARTED", "TRIALS", "PASSED", "FAILED", "CRASHED", "OTHER"]
    newer, older = lines[2].split(), lines[3].split()
    assert newer[0] == second and newer[1] == "-" and newer[4:] == ["3", "0", "1", "1", "1"]
    assert older[0] == first and older[1] == "sweep" and older[4:] == ["3", "2", "1", "0", "0"]


def test_with_an_id_show_lists_one_row_per_configuration_and_the_failures_below(stored, capsys):
    results, first, _ = stored
    code, out, _ = _show(capsys, first, "--storage", str(results))
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith(f"execution {first} (seed ") and "'sweep'" in lines[0]
    assert lines[1] == "3 trials: 2 passed, 1 failed"
    # Only lr differs between the configurations: width and data.name are shown once, above the table.
    assert lines[2] == "common: component=fit width=3 data.name=mnist"
    assert lines[3].split() == ["lr", "N", "FAILED", "loss", "step"]
    rows = [line.split() for line in lines[4:7]]
    # One trial per configuration: its value alone; the failed trial's configuration has no passed trial.
    assert rows == [
        ["0.1", "1", "0", "0.0333333", "2"],
        ["0.5", "1", "0", "0.166667", "2"],
        ["0.9", "1", "1", "-", "-"],
    ]
    assert lines[7:] == ["FAILED fit[lr=0.9] - ValueError: diverged"]


def test_no_group_lists_trials_with_status_seed_config_and_last_record_values(stored, capsys):
    """The per-trial table (show ID before results were grouped) is ``--no-group``."""
    results, first, _ = stored
    code, out, _ = _show(capsys, first, "--no-group", "--storage", str(results))
    assert code == 0
    lines = out.splitlines()
    assert lines[1] == "3 trials: 2 passed, 1 failed"
    assert lines[3].split() == ["NODE", "ID", "STATUS", "SEED", "lr", "loss", "step"]
    rows = [line.split() for line in lines[4:7]]
    seeds = {t.node_id: t.seed for t in ml.Storage(str(results)).get(first).trials}
    assert rows == [
        ["fit[lr=0.1]", "passed", str(seeds["fit[lr=0.1]"]), "0.1", "0.0333333", "2"],
        ["fit[lr=0.5]", "passed", str(seeds["fit[lr=0.5]"]), "0.5", "0.166667", "2"],
        ["fit[lr=0.9]", "failed", str(seeds["fit[lr=0.9]"]), "0.9", "0.3", "2"],
    ]


def test_a_stale_running_trial_shows_as_crashed_and_a_missing_one_as_not_started(stored, capsys):
    results, _, second = stored
    code, out, _ = _show(capsys, second, "--no-group", "--storage", str(results))
    assert code == 0
    assert out.splitlines()[1] == "3 trials: 1 failed, 1 crashed, 1 not started"
    by_node = {line.split()[0]: line for line in out.splitlines()[4:7]}
    assert " crashed " in by_node["fit[lr=0.1]"]
    assert " not started " in by_node["fit[lr=0.5]"]
    assert "CRASHED fit[lr=0.1] - its process stopped (no heartbeat)" in out.splitlines()


def test_json_output_is_machine_readable(stored, capsys):
    results, first, second = stored
    code, out, _ = _show(capsys, "--storage", str(results), "--json")
    assert code == 0
    payload = json.loads(out)
    assert [e["id"] for e in payload["executions"]] == [second, first]
    assert payload["executions"][1] | {"started": None, "finished": None} == {
        "id": first, "folder": first, "name": "sweep", "started": None, "finished": None,
        "trials": 3, "passed": 2, "failed": 1, "crashed": 0, "other": 0,
    }  # fmt: skip
    # With an id: a list of objects, one per trial with --no-group (flattened configuration keys).
    code, out, _ = _show(capsys, first, "--storage", str(results), "--json", "--no-group")
    trials = json.loads(out)
    assert trials[2]["status"] == "failed" and trials[2]["error"] == "ValueError: diverged"
    assert {k: trials[0][k] for k in ("component", "width", "data.name", "lr")} == {
        "component": "fit", "width": 3, "data.name": "mnist", "lr": 0.1,
    }  # fmt: skip
    assert trials[0]["loss"] == pytest.approx(0.1 / 3) and trials[0]["step"] == 2
    # --json is --format json: one object per configuration, a metric as mean, std and count.
    code, out, _ = _show(capsys, first, "--storage", str(results), "--format", "json")
    rows = json.loads(out)
    assert [(r["lr"], r["n"], r["failed"]) for r in rows] == [(0.1, 1, 0), (0.5, 1, 0), (0.9, 1, 1)]
    assert rows[0]["loss"] == {"mean": pytest.approx(0.1 / 3), "std": None, "n": 1}
    assert rows[2]["loss"] == {"mean": None, "std": None, "n": 0}


def test_an_unknown_id_is_a_usage_error_that_names_recent_executions(stored, capsys):
    results, first, second = stored
    code, _, err = _show(capsys, "ZZZZZZ", "--storage", str(results))
    assert code == 4
    assert f"no execution 'ZZZZZZ' in storage {results}; recent executions: {second}, {first}" in err


def test_show_needs_a_storage(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, _, err = _show(capsys)
    assert code == 4 and "--storage URL is required" in err
    code, out, _ = _show(capsys, "--storage", str(tmp_path / "empty"))
    assert code == 0 and "holds no executions" in out


def test_tables_align_text_left_and_numbers_right():
    assert format_table(["NAME", "N"], [["a", 1], ["long name", 100]]).splitlines() == [
        "NAME         N",
        "a            1",
        "long name  100",
    ]


def test_a_folder_without_execution_json_is_not_listed(stored, capsys):
    results, first, _ = stored
    # A reader must not break on an execution folder without execution.json (a run killed at its start).
    (Path(results) / "broken").mkdir()
    code, out, _ = _show(capsys, "--storage", str(results))
    assert code == 0 and "broken" not in out


def test_an_execution_id_stored_twice_is_listed_by_folder(tmp_path, monkeypatch, capsys):
    root = tmp_path / "project"
    root.mkdir()
    (root / "machinable.yaml").write_text("components:\n  - fit\n")
    (root / "fit.py").write_text(textwrap.dedent(FIT))
    monkeypatch.chdir(root)
    results = tmp_path / "results"
    first = ml.execute("fit", storage=str(results), seed=5, echo=False)
    ml.execute("fit", storage=str(results), seed=5, echo=False)
    code, out, _ = _show(capsys, "--storage", str(results))
    assert [line.split()[0] for line in out.splitlines()[2:]] == [f"{first.id}-2", first.id]
    code, out, _ = _show(capsys, first.id, "--storage", str(results))
    assert out.startswith(f"execution {first.id} (seed {first.seed}, folder {first.id}-2)")


def test_show_says_when_the_storage_folder_does_not_exist(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    code, out, _ = _show(capsys, "--storage", str(tmp_path / "empty"))
    assert code == 0 and out.strip().endswith("holds no executions")
    code, out, _ = _show(capsys, "--storage", str(tmp_path / "typo"))
    assert code == 0 and "holds no executions: the folder does not exist" in out
