"""``machinable --check-determinism``: every selected trial runs twice with the same seed; differences fail the run."""

from __future__ import annotations

import textwrap
from pathlib import Path

from machinable.cli.main import main

SEEDED = """\
import random

import machinable as ml


@ml.parametrize("n", [1, 2])
class Seeded(ml.Component):
    def on_execute(self):
        self.record["draw"] = random.random() * self.config.n  # random is seeded with the trial's seed
        self.record.save()
        self.store("draws.json", [random.random() for _ in range(3)])
"""

UNSEEDED = """\
import os

import machinable as ml


@ml.parametrize("n", [1, 2])
class Unseeded(ml.Component):
    def on_execute(self):
        self.record["n"] = self.config.n
        self.record.save()
        # The second trial draws from the operating system: no seed controls it.
        self.store("draw", int.from_bytes(os.urandom(8), "big") if self.config.n == 2 else 0)
"""


def _project(tmp_path: Path, name: str, source: str) -> Path:
    root = tmp_path / "project"
    root.mkdir()
    (root / "machinable.yaml").write_text(f"components:\n  - {name}\n")
    (root / f"{name}.py").write_text(textwrap.dedent(source))
    return root


def _main(capsys, root: Path, *args: str) -> tuple[int, str]:
    capsys.readouterr()
    code = main(["--project", str(root), "--color", "no", *args])
    return code, capsys.readouterr().out


def test_a_seeded_project_passes_the_determinism_check(tmp_path, capsys):
    root = _project(tmp_path, "seeded", SEEDED)
    code, out = _main(capsys, root, "--check-determinism")
    assert code == 0, out
    assert "determinism: 2 trials ran twice and matched" in out
    assert "2 passed" in out


def test_a_trial_that_is_not_deterministic_is_reported_and_the_run_exits_1(tmp_path, capsys):
    root = _project(tmp_path, "unseeded", UNSEEDED)
    code, out = _main(capsys, root, "--check-determinism", "--storage", str(tmp_path / "results"))
    assert code == 1, out
    assert "DIFFERS unseeded[n=2] - stored object 'draw': first run " in out
    assert "unseeded[n=1]" not in out.split("determinism")[-1]
    assert "1 deterministic, 1 differ (each trial ran twice with the same seed)" in out
    # The second run went to a memory storage: the stored execution holds one run of each trial.
    [execution] = [p for p in (tmp_path / "results").iterdir() if p.is_dir()]
    assert len([p for p in execution.iterdir() if p.is_dir()]) == 2


def test_without_the_option_nothing_runs_twice(tmp_path, capsys):
    root = _project(tmp_path, "unseeded", UNSEEDED)
    code, out = _main(capsys, root)
    assert code == 0
    assert "determinism" not in out


def test_the_check_respects_the_selection(tmp_path, capsys):
    root = _project(tmp_path, "unseeded", UNSEEDED)
    code, out = _main(capsys, root, "--check-determinism", "-k", "n=1")
    assert code == 0, out
    assert "determinism: 1 trial ran twice and matched" in out


def test_the_check_compares_with_the_folder_the_run_wrote_when_a_seed_is_used_again(tmp_path, capsys):
    root = _project(tmp_path, "seeded", SEEDED)
    results = str(tmp_path / "results")
    for _ in range(2):  # the second run goes to <id>-2, and the check must read that folder
        code, out = _main(capsys, root, "--check-determinism", "--seed", "9", "--storage", results)
        assert code == 0, out
        assert "determinism: 2 trials ran twice and matched" in out
    assert len(list((tmp_path / "results").iterdir())) == 2
