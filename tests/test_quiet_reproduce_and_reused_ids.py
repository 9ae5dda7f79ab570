"""Two small points of docs/reproducibility.md and docs/results.md: ``machinable reproduce -q`` (the run's ``-q``)
and executions that share an id (the same seed run again), told apart by their folder."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import machinable as ml
from machinable.cli.main import main

SOURCE = """\
from pathlib import Path

import machinable as ml


@ml.parametrize("n", [1, 2])
class Count(ml.Component):
    def on_execute(self):
        changed = Path(__file__).with_name("changed.txt")
        self.record["n"] = self.config.n + (changed.exists() and self.config.n == 2)
        self.record.save()
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch) -> Path:
    root = tmp_path / "project"
    root.mkdir()
    (root / "machinable.yaml").write_text("components:\n  - count\n")
    (root / "count.py").write_text(SOURCE)
    monkeypatch.chdir(root)
    return root


def _reproduce(capsys, *args: str) -> tuple[int, str]:
    capsys.readouterr()
    code = main(["reproduce", *args, "--color", "no"])
    return code, capsys.readouterr().out


def test_reproduce_q_prints_only_what_did_not_reproduce_and_the_summary(project, capsys):
    execution = ml.execute("count", storage="results", seed=42, echo=False)
    for quiet in ("-q", "--quiet"):
        code, out = _reproduce(capsys, execution.id, "--storage", "results", quiet)
        assert code == 0, out
        assert re.fullmatch(r"2 reproduced, 0 differ, 0 failed in \d+\.\d\d s\n", out), out

    (project / "changed.txt").write_text("")
    code, out = _reproduce(capsys, execution.id, "--storage", "results", "-q")
    assert code == 1
    lines = out.splitlines()
    assert lines[0] == "count[n=2] DIFFERS - records 'default' row 0, column 'n': stored 2, re-run 3"
    assert lines[1].startswith("1 reproduced, 1 differ, 0 failed in ") and len(lines) == 2
    code, out = _reproduce(capsys, execution.id, "--storage", "results", "-q", "-k", "n=1")
    assert code == 0 and out.startswith("1 reproduced, 0 differ, 0 failed in ")  # no line for the deselected

    code, out = _reproduce(capsys, execution.id, "--storage", "results")  # without -q: the whole report
    assert "=== reproduce 8gWVkz ===" in out and "count[n=1] REPRODUCED" in out and code == 1


def test_reproduce_takes_the_reporting_options_of_a_run(project, capsys):
    capsys.readouterr()
    assert main(["reproduce", "--help"]) == 0
    reproduce_help = capsys.readouterr().out
    assert main(["--help"]) == 0
    run_help = capsys.readouterr().out
    for option in ("-q, --quiet", "-v, --verbose", "--color {auto,yes,no}"):
        assert option in reproduce_help and option in run_help


def test_executions_of_one_id_are_told_apart_by_their_folder(project, capsys):
    runs = [ml.execute("count", storage="results", seed=42, echo=False) for _ in range(3)]
    assert [run.folder for run in runs] == ["8gWVkz", "8gWVkz-2", "8gWVkz-3"]
    assert [run.stored().folder for run in runs] == ["8gWVkz", "8gWVkz-2", "8gWVkz-3"]  # each its own run
    storage = ml.Storage("results")
    stored = storage.executions()
    assert [(s.id, s.folder) for s in stored] == [("8gWVkz", f) for f in ("8gWVkz-3", "8gWVkz-2", "8gWVkz")]
    assert [repr(s) for s in stored] == [
        "<StoredExecution 8gWVkz (folder 8gWVkz-3) trials=2>",
        "<StoredExecution 8gWVkz (folder 8gWVkz-2) trials=2>",
        "<StoredExecution 8gWVkz trials=2>",
    ]
    assert storage.get("8gWVkz").folder == "8gWVkz-3"  # an id names its latest folder
    second = storage.get("8gWVkz-2")  # a folder name exactly that one
    assert (second.id, second.folder) == ("8gWVkz", "8gWVkz-2")
    assert [t.uid for t in second.trials] == [t.uid for t in runs[1].trials]
    assert second.trials[0].path.replace("\\", "/").endswith(f"results/8gWVkz-2/{runs[1].trials[0].uid}")

    code, out = _reproduce(capsys, "8gWVkz-2", "--storage", "results")
    assert code == 0 and "execution 8gWVkz (seed 7957417341, folder 8gWVkz-2)" in out
    capsys.readouterr()
    assert main(["show", "--storage", "results", "--color", "no"]) == 0
    listed = [line.split()[0] for line in capsys.readouterr().out.splitlines()[2:]]
    assert listed == ["8gWVkz-3", "8gWVkz-2", "8gWVkz"]
