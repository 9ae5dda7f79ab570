"""Results by configuration (docs/results.md): ``machinable show`` grouped by configuration, its formats and
options, one trial in full, ``machinable compare`` and ``show --follow``; through the command (in process) and
the functions of machinable.reporting.results, on local disk and in memory. Expected means and deviations are
computed here from the stored records."""

from __future__ import annotations

import csv
import doctest
import io
import json
import re
import statistics
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from cli_helpers import clean_env, run_inprocess, write_project
from test_cli_docs import example_project, examples, mismatch

import machinable as ml
from machinable.errors import UsageError
from machinable.reporting.compare import compare
from machinable.reporting.results import Metric, Stat, parse_metrics, table
from machinable.reporting.show import View, ended, follow, render, render_results

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "results.md"

YAML = """\
components:
  - fit:
      lr: 0.1
      fail: false
      data: {name: mnist}
"""

# The metric depends on the seed, so the three repeats of a configuration differ; with fail=true the third
# repeat fails after recording its rows.
FIT = """\
import random

import machinable as ml


class Fit(ml.Component):
    def on_execute(self):
        noise = random.Random(self.seed).random()
        for step in range(4):
            self.record["loss"] = self.config.lr / (step + 1) + noise
            self.record["acc"] = 1 - noise / (step + 1)
            self.record["_hidden"] = step
            self.record.save()
        if self.config.fail and self.flags.get("REPEAT_NUMBER") == 2:
            raise ValueError("diverged")
"""


def sweep(*extra: dict) -> ml.Task:
    """3 seeds x 2 learning rates (and ``extra`` versions, 3 seeds each)."""
    task = ml.Task().component("fit", "lr=0.1,0.5")
    for version in extra:
        task.component("fit", version)
    return task.repeat(3)


@pytest.fixture
def project(tmp_path, monkeypatch):
    root = write_project(tmp_path / "project", YAML, {"fit.py": FIT})
    monkeypatch.chdir(root)
    return root


@pytest.fixture
def runs(project, tmp_path):
    """Two executions on local disk: the sweep (seed 1), and the sweep plus a configuration whose third repeat
    fails (seed 2)."""
    results = tmp_path / "results"
    a = ml.execute(sweep(), storage=str(results), seed=1, echo=False)
    b = ml.execute(sweep({"lr": 0.9, "fail": True}), storage=str(results), seed=2, echo=False)
    return results, a.id, b.id


def expected(results: Path, execution: str, stat: str = "last") -> dict[float, dict]:
    """Per lr: the stored values of each metric over the passed trials (last row, or min / max over rows),
    and the trial counts, read from the trials' records."""
    groups: dict[float, dict] = {}
    for trial in ml.Storage(str(results)).get(execution).trials:
        group = groups.setdefault(trial.config["lr"], {"n": 0, "failed": 0, "loss": [], "acc": []})
        group["n"] += 1
        if trial.status != "passed":
            group["failed"] += 1
            continue
        for name in ("loss", "acc"):
            column = [row[name] for row in trial.records]
            group[name].append({"last": column[-1], "min": min(column), "max": max(column)}[stat])
    return groups


def _show(capsys, root: Path, *args: str):
    return run_inprocess(capsys, root, "show", *args)


# -- the grouped table through the command -------------------------------------------------------------------


def test_csv_has_one_row_per_configuration_with_mean_and_sample_std_as_numbers(runs, project, capsys):
    results, a, _ = runs
    result = _show(capsys, project, a, "--storage", str(results), "--format", "csv")
    assert result.ret == 0, result.err
    rows = list(csv.DictReader(io.StringIO(result.out)))
    want = expected(results, a)
    assert [float(r["lr"]) for r in rows] == [0.1, 0.5]
    for row in rows:
        group = want[float(row["lr"])]
        assert (int(row["n"]), int(row["failed"])) == (3, 0)
        for name in ("loss", "acc"):
            assert float(row[f"{name}.mean"]) == pytest.approx(statistics.mean(group[name]))
            assert float(row[f"{name}.std"]) == pytest.approx(statistics.stdev(group[name]))
        # Common keys are in every row; hidden record columns are no metric.
        assert (row["component"], row["data.name"], row["fail"]) == ("fit", "mnist", "false")
        assert not any(name.startswith("_hidden") for name in row)


def test_json_is_a_list_of_objects_with_numbers_and_counts_only_passed_trials(runs, project, capsys):
    results, _, b = runs
    result = _show(capsys, project, b, "--storage", str(results), "--json")
    rows = json.loads(result.out)
    want = expected(results, b)
    assert [(r["lr"], r["n"], r["failed"]) for r in rows] == [(0.1, 3, 0), (0.5, 3, 0), (0.9, 3, 1)]
    for row in rows:
        group = want[row["lr"]]
        assert row["loss"]["n"] == len(group["loss"])
        assert row["loss"]["mean"] == pytest.approx(statistics.mean(group["loss"]))
        assert row["loss"]["std"] == pytest.approx(statistics.stdev(group["loss"]))
    # The failed repeat's rows are stored but not averaged: two passed trials.
    assert rows[2]["loss"]["n"] == 2 and rows[2]["fail"] is True and rows[0]["fail"] is False


def test_the_table_shows_differing_keys_common_keys_above_and_failures_below(runs, project, capsys):
    results, _, b = runs
    result = _show(capsys, project, b, "--storage", str(results))
    lines = result.lines
    assert lines[0].startswith(f"execution {b} (seed ")
    assert lines[1] == "9 trials: 8 passed, 1 failed"
    assert lines[2] == "common: component=fit data.name=mnist"
    assert lines[3].split() == ["lr", "fail", "N", "FAILED", "loss", "acc"]
    want = expected(results, b)
    mean, std = statistics.mean(want[0.9]["loss"]), statistics.stdev(want[0.9]["loss"])
    assert lines[6].split()[:6] == ["0.9", "true", "3", "1", f"{mean:.4g}", "±"]
    assert lines[6].split()[6] == f"{std:.2g}"
    failed = next(t for t in ml.Storage(str(results)).get(b).trials if t.status == "failed")
    assert lines[7:] == [f"FAILED {failed.node_id} - ValueError: diverged"]


def test_color_marks_the_trials_that_did_not_pass_in_tables_only(runs, project, capsys):
    results, _, b = runs
    failed = next(t for t in ml.Storage(str(results)).get(b).trials if t.status == "failed")
    red = f"\x1b[31mFAILED {failed.node_id} - ValueError: diverged\x1b[0m"
    coloured = _show(capsys, project, b, "--storage", str(results), "--color", "yes")
    assert coloured.lines[-1] == red
    assert sum("\x1b[" in line for line in coloured.lines) == 1  # the rest of the table stays plain
    plain = _show(capsys, project, b, "--storage", str(results), "--color", "no")
    assert "\x1b[" not in plain.out
    markdown = _show(capsys, project, b, "--storage", str(results), "--color", "yes", "--format", "md")
    assert "\x1b[" not in markdown.out  # md, csv and json are read by programs


def test_markdown_is_a_github_table_with_failures_as_a_list(runs, project, capsys):
    results, _, b = runs
    result = _show(capsys, project, b, "--storage", str(results), "--format", "md", "--metric", "loss")
    lines = result.lines
    table_lines = [line for line in lines if line.startswith("|")]
    assert table_lines[0] == "| lr | fail | N | FAILED | loss |"
    assert table_lines[1] == "|---:|---|---:|---:|---:|"
    assert len(table_lines) == 5 and " ± " in table_lines[2]
    assert lines[-1].startswith("- FAILED fit[") and lines[-1].endswith(" - ValueError: diverged")


def test_metric_picks_columns_and_min_max_take_the_best_row(runs, project, capsys):
    results, a, _ = runs
    result = _show(capsys, project, a, "--storage", str(results), "--metric", "acc:max,loss:min", "--json")
    rows = json.loads(result.out)
    assert [k for k in rows[0] if k.startswith(("acc", "loss"))] == ["acc:max", "loss:min"]
    best_acc, best_loss = expected(results, a, "max"), expected(results, a, "min")
    for row in rows:
        assert row["acc:max"]["mean"] == pytest.approx(statistics.mean(best_acc[row["lr"]]["acc"]))
        assert row["loss:min"]["mean"] == pytest.approx(statistics.mean(best_loss[row["lr"]]["loss"]))
    result = _show(capsys, project, a, "--storage", str(results), "--metric", "los")
    assert result.ret == 4 and "unknown metric 'los'; the trials recorded: loss, acc" in result.err
    result = _show(capsys, project, a, "--storage", str(results), "--metric", "loss:median")
    assert result.ret == 4 and "NAME:min or NAME:max" in result.err


def test_group_by_no_group_and_sort(runs, project, capsys):
    results, a, _ = runs
    args = ("--storage", str(results), "--metric", "loss")
    # --group-by component: all six trials in one row.
    rows = json.loads(_show(capsys, project, a, *args, "--group-by", "component", "--json").out)
    values = [v for group in expected(results, a).values() for v in group["loss"]]
    assert len(rows) == 1 and rows[0]["n"] == 6 and "lr" not in rows[0]
    assert rows[0]["loss"]["mean"] == pytest.approx(statistics.mean(values))
    assert rows[0]["loss"]["std"] == pytest.approx(statistics.stdev(values))
    # --no-group: one row per trial, the value itself.
    trials = json.loads(_show(capsys, project, a, *args, "--no-group", "--json").out)
    stored = {t.uid: t for t in ml.Storage(str(results)).get(a).trials}
    assert len(trials) == 6
    for row in trials:
        trial = stored[row["uid"]]
        assert (row["node_id"], row["seed"], row["lr"]) == (trial.node_id, trial.seed, trial.config["lr"])
        assert row["loss"] == trial.records[-1]["loss"]
    # --sort=-loss: descending by the mean; --sort loss ascending.
    down = json.loads(_show(capsys, project, a, *args, "--sort=-loss", "--json").out)
    up = json.loads(_show(capsys, project, a, *args, "--sort", "loss", "--json").out)
    assert [r["loss"]["mean"] for r in down] == sorted((r["loss"]["mean"] for r in down), reverse=True)
    assert [r["lr"] for r in up] == [r["lr"] for r in reversed(down)]
    assert _show(capsys, project, a, *args, "--group-by", "nope").ret == 4
    assert _show(capsys, project, a, *args, "--sort", "nope").ret == 4


def test_several_executions_and_k_over_the_whole_storage(runs, project, capsys):
    results, a, b = runs
    out = _show(capsys, project, a, b, "--storage", str(results), "--metric", "loss", "--json").out
    rows = json.loads(out)
    # Configurations run in both executions share a row: 3 + 3 trials.
    assert [(r["lr"], r["n"]) for r in rows] == [(0.1, 6), (0.5, 6), (0.9, 3)]
    result = _show(capsys, project, "-k", "lr=0.9", "--storage", str(results), "--no-group")
    assert result.ret == 0
    assert result.lines[1] == "3 trials matching -k 'lr=0.9': 2 passed, 1 failed"
    assert all("fit[lr=0.9" in line for line in result.lines[4:7])
    result = _show(capsys, project, a, b, "--storage", str(results), "--no-group", "--metric", "loss")
    assert result.lines[3].split()[:3] == ["EXECUTION", "NODE", "ID"]


def test_the_list_of_executions_counts_from_the_index(runs, project, capsys):
    results, a, b = runs
    result = _show(capsys, project, "--storage", str(results), "--format", "csv")
    rows = {r["id"]: r for r in csv.DictReader(io.StringIO(result.out))}
    assert (rows[a]["trials"], rows[a]["passed"]) == ("6", "6")
    assert (rows[b]["trials"], rows[b]["passed"], rows[b]["failed"]) == ("9", "8", "1")


# -- the functions, on memory storage --------------------------------------------------------------------------


def test_table_on_memory_storage(project):
    execution = ml.execute(sweep({"lr": 0.9, "fail": True}), seed=3, echo=False)
    stored = execution.stored()
    result = table(stored.results(), metrics="loss")
    assert [c.name for c in result.columns] == ["lr", "fail", "n", "failed", "loss"]
    assert result.common == {"component": "fit", "data.name": "mnist"}
    by_lr = {}
    for trial in execution.trials:
        if trial.status == "passed":
            by_lr.setdefault(trial.config["lr"], []).append(trial.records[-1]["loss"])
    for row in result.rows:
        stat = row.values["loss"]
        values = by_lr[row.values["lr"]]
        assert isinstance(stat, Stat) and stat.count == len(values)
        assert stat.mean == pytest.approx(statistics.mean(values))
        assert stat.std == pytest.approx(statistics.stdev(values))
    assert [(f["status"], f["error"]) for f in result.failures] == [("failed", "ValueError: diverged")]
    # The same table as CSV and the per-trial table, written by show's functions.
    rows = list(csv.DictReader(io.StringIO(render(result, "csv"))))
    assert float(rows[0]["loss.mean"]) == pytest.approx(result.rows[0].values["loss"].mean)
    text = render_results([stored], View("table", metrics="loss", no_group=True))
    assert text.splitlines()[3].split() == ["NODE", "ID", "STATUS", "SEED", "lr", "fail", "loss"]


def test_stat_and_metric_parsing():
    assert Stat.of([]) == Stat(None, None, 0)
    assert Stat.of([2.0]) == Stat(2.0, None, 1)
    assert Stat.of([1.0, 3.0]) == Stat(2.0, statistics.stdev([1.0, 3.0]), 2)
    assert parse_metrics("loss, acc:max,loss") == [Metric("loss"), Metric("acc", "max")]
    assert Metric("acc", "max").label == "acc:max"
    with pytest.raises(UsageError):
        parse_metrics("loss:avg")
    entries = [{"status": "passed", "config": {"a": 1}, "metrics": {"last": {"x": 1}}}]
    assert parse_metrics(None, entries) == [Metric("x")]
    with pytest.raises(UsageError, match="unknown metric 'y'"):
        parse_metrics("y", entries)


def test_a_key_named_like_a_column_gets_a_prefix():
    entries = [
        {"component": "c", "status": "passed", "config": {"n": n, "seed": 1}, "metrics": {"last": {"n": n}}}
        for n in (1, 2)
    ]
    result = table(entries)
    assert [c.name for c in result.columns] == ["config.n", "n", "failed", "last.n"]
    assert result.records()[0] == {
        "component": "c", "seed": 1, "config.n": 1, "n": 1, "failed": 0, "last.n": Stat(1, None, 1)
    }  # fmt: skip


# -- one trial ------------------------------------------------------------------------------------------------


def test_one_trial_in_full(runs, project, capsys):
    results, _, b = runs
    stored = ml.Storage(str(results)).get(b)
    failed = next(t for t in stored.trials if t.status == "failed")
    (Path(failed.path) / "attempts" / "1").mkdir(parents=True)
    (Path(failed.path) / "attempts" / "1" / "status.json").write_text("{}")
    result = _show(capsys, project, b, failed.node_id, "--storage", str(results), "--rows", "3", "--log")
    assert result.ret == 0, result.err
    lines = result.lines
    assert lines[0] == f"trial {failed.node_id} of execution {b}"
    facts = dict(line.split(":", 1) for line in lines[1:9])
    assert facts["uid"].strip() == failed.uid and facts["status"].strip() == "failed"
    assert facts["error"].strip() == "ValueError: diverged" and facts["seed"].strip() == str(failed.seed)
    assert facts["attempts"].strip() == "1"
    at = lines.index("configuration:")
    assert lines[at + 1 : at + 6] == [
        "  lr: 0.9",
        "  fail: true",
        "  data:",
        "    name: mnist",
        "records (default): 4 rows, 1 not shown",
    ]
    assert lines[at + 6].split() == ["row", "loss", "acc", "_hidden"]
    assert [line.split()[0] for line in lines[at + 7 : at + 11]] == ["0", "1", "...", "3"]
    assert lines[at + 11] == "log.txt:"
    # A uid works, and a prefix of one node id; a prefix of several is an error naming them.
    assert _show(capsys, project, b, failed.uid, "--storage", str(results)).lines[0] == lines[0]
    prefix = failed.node_id.rsplit("[", 1)[0]  # the configuration's node id without its repeat: 3 trials
    result = _show(capsys, project, b, prefix, "--storage", str(results))
    assert result.ret == 4
    assert (
        f"trial {prefix!r} is ambiguous in execution {b}: it starts 3 node ids: {prefix}[r0]," in result.err
    )
    result = _show(capsys, project, b, "nope", "--storage", str(results))
    assert (
        result.ret == 4 and "has no trial 'nope'" in result.err and "nor is 'nope' an execution" in result.err
    )
    result = _show(capsys, project, b, failed.uid, "--storage", str(results), "--scope", "eval")
    assert result.ret == 4 and "no record scope 'eval'" in result.err


def test_one_trial_as_json_and_csv(runs, project, capsys):
    results, a, _ = runs
    trial = ml.Storage(str(results)).get(a).trials[0]
    args = (a, trial.node_id, "--storage", str(results))
    detail = json.loads(_show(capsys, project, *args, "--format", "json", "--rows", "0", "--output").out)
    assert detail["config"] == {"lr": 0.1, "fail": False, "data": {"name": "mnist"}}
    assert detail["rows"] == 4 and [r["loss"] for r in detail["records"]] == [
        r["loss"] for r in trial.records
    ]
    assert detail["attempts"] == 0 and detail["output"] == ""
    rows = list(csv.DictReader(io.StringIO(_show(capsys, project, *args, "--format", "csv").out)))
    assert [float(r["acc"]) for r in rows] == [r["acc"] for r in trial.records]


# -- compare --------------------------------------------------------------------------------------------------


def test_compare_two_executions(runs, project, capsys):
    results, a, b = runs
    result = run_inprocess(capsys, project, "compare", a, b, "--storage", str(results), "--format", "csv")
    assert result.ret == 0, result.err
    rows = list(csv.DictReader(io.StringIO(result.out)))
    want_a, want_b = expected(results, a), expected(results, b)
    # lr=0.9 ran in B only; 0.1 and 0.5 are in both.
    assert [float(r["lr"]) for r in rows] == [0.1, 0.5]
    for row in rows:
        mean_a = statistics.mean(want_a[float(row["lr"])]["loss"])
        mean_b = statistics.mean(want_b[float(row["lr"])]["loss"])
        assert float(row["loss.a.mean"]) == pytest.approx(mean_a)
        assert float(row["loss.b.mean"]) == pytest.approx(mean_b)
        assert float(row["loss.b.std"]) == pytest.approx(statistics.stdev(want_b[float(row["lr"])]["loss"]))
        assert float(row["loss.diff"]) == pytest.approx(mean_b - mean_a)
    text = run_inprocess(capsys, project, "compare", a, b, "--storage", str(results), "--metric", "loss")
    lines = text.lines
    assert lines[0].startswith(f"A: execution {a} (seed ") and lines[0].endswith(", 6 trials: 6 passed")
    assert lines[2:5] == [
        "configuration keys that differ (A -> B):",
        "  lr: 0.1, 0.5 -> 0.1, 0.5, 0.9",
        "  fail: false -> false, true",
    ]
    assert lines[6].split() == ["lr", "N", "A", "N", "B", "loss", "A", "loss", "B", "loss", "B-A"]
    assert lines[-2] == "only in B: lr=0.9 fail=true (3 trials)"
    assert lines[-1].startswith("FAILED fit[lr=0.9")


def test_compare_two_trials_and_the_functions(runs, project, capsys):
    results, a, b = runs
    trials = ml.Storage(str(results)).get(a).trials
    one, other = trials[0], trials[-1]
    result = run_inprocess(
        capsys,
        project,
        "compare",
        f"{a}/{one.uid}",
        f"{a}/{other.node_id}",
        "--storage",
        str(results),
        "--json",
    )
    [row] = json.loads(result.out)
    assert (
        row["loss.a"]["mean"] == one.records[-1]["loss"]
        and row["loss.b"]["mean"] == other.records[-1]["loss"]
    )
    assert row["loss.diff"] == pytest.approx(other.records[-1]["loss"] - one.records[-1]["loss"])
    result = run_inprocess(capsys, project, "compare", f"{a}/{one.uid}", b, "--storage", str(results))
    assert result.ret == 4 and "not one of each" in result.err
    stored_a, stored_b = (ml.Storage(str(results)).get(x) for x in (a, b))
    comparison = compare(stored_a.results(), stored_b.results(), metrics="acc", group_by="lr")
    assert [r.values["lr"] for r in comparison.table.rows] == [0.1, 0.5]
    assert [r.keys["lr"] for r in comparison.only_b] == [0.9]


# -- follow ---------------------------------------------------------------------------------------------------


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_follow_redraws_in_place_on_a_terminal_and_stops_when_every_trial_ended(project):
    execution = ml.execute(sweep(), seed=4, echo=False)
    stored = execution.stored()
    entries = stored.results()
    running = [{**e, "status": "running"} if i else e for i, e in enumerate(entries)]
    states = iter([running, running, entries])

    class Live:
        """The stored execution, its trials' statuses as the run goes on."""

        folder, id, seed, name, started, storage = (
            stored.folder,
            stored.id,
            stored.seed,
            None,
            None,
            stored.storage,
        )
        finished = None

        def __init__(self) -> None:
            self.entries = next(states)

        def results(self):
            return self.entries

    terminal, sleeps = _Terminal(), []
    follow(lambda: [Live()], View(), file=terminal, interval=0.5, sleep=sleeps.append)
    out = terminal.getvalue()
    # Drawn once while running (the second read changed nothing), then redrawn once in place.
    assert sleeps == [0.5, 0.5]
    assert len(re.findall(r"\x1b\[\d+A\x1b\[J", out)) == 1 and out.count("\x1b[") == 2
    first, last = re.split(r"\x1b\[\d+A\x1b\[J", out)
    assert "RUNNING" in first and "5 running" in first
    assert "RUNNING" not in last and "6 trials: 6 passed" in last
    assert ended([{"status": "passed"}, {"status": "not started"}], finished=True)
    assert ended([{"status": "crashed"}, {"status": "not started"}], finished=False)
    assert not ended([{"status": "passed"}, {"status": "not started"}], finished=False)
    assert not ended([{"status": "running"}], finished=True)


SLOW = """\
import time

import machinable as ml


class Slow(ml.Component):
    def on_execute(self):
        for step in range(3):
            time.sleep(0.2)
            self.record["loss"] = self.config.lr + step + self.seed % 10
            self.record.save()
"""


@pytest.mark.slow
def test_follow_an_execution_that_another_process_runs(tmp_path):
    root = tmp_path / "project"
    root.mkdir()
    (root / "machinable.yaml").write_text("components:\n  - slow:\n      lr: 0.1\n")
    (root / "slow.py").write_text(SLOW)
    results = tmp_path / "results"
    script = (
        "import machinable as ml; "
        "ml.execute(ml.Task().component('slow', 'lr=0.1,0.5').repeat(2), storage='../results', seed=5, echo=False)"
    )
    env = clean_env(PYTHONPATH=str(ROOT))
    runner = subprocess.Popen([sys.executable, "-c", script], cwd=root, env=env)
    follower = None
    try:
        deadline = time.monotonic() + 30
        while not (results.is_dir() and any((p / "execution.json").exists() for p in results.iterdir())):
            assert time.monotonic() < deadline and runner.poll() is None, "the run did not start"
            time.sleep(0.02)
        [folder] = [p.name for p in results.iterdir()]
        follower = subprocess.Popen(
            [sys.executable, "-m", "machinable", "show", "--follow", folder, "--storage", str(results), "--interval", "0.1"],
            cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        out, err = follower.communicate(timeout=60)
        assert follower.returncode == 0, err
        assert runner.wait(timeout=30) == 0
    finally:
        for process in (runner, follower):
            if process is not None and process.poll() is None:
                process.kill()
    tables = out.split("\n\n")
    # Printed while trials ran (a pipe: each changed table again), and a last table with every trial passed.
    assert len(tables) >= 2 and "RUNNING" in tables[0]
    assert "4 trials: 4 passed" in tables[-1] and "RUNNING" not in tables[-1]
    assert "\x1b[" not in out


# -- docs/results.md -------------------------------------------------------------------------------------------

CONSOLE = re.compile(r"^```console\n(.*?)^```$", re.MULTILINE | re.DOTALL)
PYCON = re.compile(r"^```pycon\n(.*?)^```$", re.MULTILINE | re.DOTALL)
OTHERS = "## In Python: to_pandas and to_records"  # another page's part: its examples are tested there


def console_examples() -> list[tuple[str, str]]:
    return examples(PAGE)


def test_the_page_shows_show_compare_and_a_trial():
    commands = [c for c, _ in console_examples()]
    assert len(commands) >= 10
    assert any(c.startswith("machinable compare ") for c in commands)
    assert OTHERS in PAGE.read_text()


def test_the_console_examples_print_what_the_page_shows(tmp_path, monkeypatch, capsys):
    project = example_project(tmp_path)
    monkeypatch.chdir(project)
    monkeypatch.setenv("COLUMNS", "80")
    wrong = [mismatch(capsys, project, command, want) for command, want in console_examples()]
    assert not any(wrong), "\n\n".join(w for w in wrong if w)


def test_the_python_examples_run(tmp_path, monkeypatch):
    project = example_project(tmp_path)
    monkeypatch.chdir(project)
    text = PAGE.read_text().split(OTHERS)[0]
    blocks = PYCON.findall(text)
    assert blocks
    parser, runner = doctest.DocTestParser(), doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    for i, block in enumerate(blocks):
        test = parser.get_doctest(textwrap.dedent(block), {}, f"results.md pycon {i}", str(PAGE), 0)
        runner.run(test)
    assert runner.failures == 0


# -- after a run ---------------------------------------------------------------------------------------------------


def test_a_run_with_repeats_prints_the_grouped_table_under_its_summary_line(project, capsys):
    result = run_inprocess(capsys, project, "fit", "lr=0.1,0.5", "--repeat", "3", "--seed", "42")
    assert result.ret == 0, result.out + result.err
    lines = result.lines
    summary = next(i for i, line in enumerate(lines) if "6 passed" in line)
    below = "\n".join(lines[summary + 1 :]).strip()
    assert re.search(r"^\s*lr\s+N\s+FAILED\s+loss\s+acc$", below, re.M), below
    # The same table as `machinable show` prints for the stored trials (mean ± std over the three seeds).
    url = re.search(r"storage (memory://\S+),", result.out).group(1)
    stored = ml.Storage(url).get("8gWVkz")
    assert below == render_results([stored]).split("\n", 2)[2]


def test_a_run_without_repeats_prints_no_table(project, capsys):
    result = run_inprocess(capsys, project, "fit", "lr=0.1,0.5")
    assert result.ret == 0
    assert "FAILED" not in result.out and result.lines[-1].startswith("=")


def test_sort_takes_a_descending_name_after_a_space(project, capsys):
    execution = ml.execute(sweep(), storage="./results", seed=42, echo=False)
    ascending = run_inprocess(capsys, project, "show", execution.id, "--storage", "results", "--sort", "loss")
    descending = run_inprocess(
        capsys, project, "show", execution.id, "--storage", "results", "--sort", "-loss"
    )
    assert descending.ret == ascending.ret == 0, descending.err
    rows = [line.split()[0] for line in ascending.lines if line.strip()[:3] in ("0.1", "0.5")]
    assert (
        rows
        and [line.split()[0] for line in descending.lines if line.strip()[:3] in ("0.1", "0.5")] == rows[::-1]
    )
