"""The CI recipe of docs/reproducibility.md works as written, against a copy of the example project."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "reproducibility.md"


def _recipe() -> list[list[str]]:
    [script] = re.findall(r"^```sh\n(.*?)^```", PAGE.read_text(), re.MULTILINE | re.DOTALL)
    return [shlex.split(line) for line in script.splitlines() if line.strip()]


def test_the_page_has_a_ci_recipe_that_runs_reproduce_and_the_determinism_check():
    commands = [" ".join(c) for c in _recipe()]
    assert any(c.startswith("machinable reproduce ") for c in commands)
    assert "machinable --check-determinism" in commands


@pytest.mark.slow
def test_the_ci_recipe_passes_on_the_example_project(tmp_path):
    project = shutil.copytree(
        ROOT / "example_project",
        tmp_path / "example_project",
        ignore=shutil.ignore_patterns("__pycache__", "results"),
    )
    env = {k: v for k, v in os.environ.items() if k != "MACHINABLE_MODE"}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    for command in _recipe():
        assert command[0] == "machinable"
        done = subprocess.run(
            [sys.executable, "-m", "machinable", *command[1:]],
            cwd=project,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, f"{shlex.join(command)}\n{done.stdout}\n{done.stderr}"
        if command[1] == "reproduce":
            assert "4 reproduced, 0 differ, 0 failed" in done.stdout
