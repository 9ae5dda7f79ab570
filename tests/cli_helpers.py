"""Test helpers: write a small project (also behind conftest's ``make_project``), run ``machinable`` in or out
of process."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

from machinable.cli.main import main

REPO = Path(__file__).resolve().parent.parent
EXAMPLE_PROJECT = REPO / "example_project"

# A component that passes or fails as its configuration says, and prints so there is output to capture.
FLAKY = """\
import machinable as ml


class Flaky(ml.Component):
    def on_execute(self):
        print(f"running with fail={self.config.fail}")
        if self.config.fail:
            raise ValueError("asked to fail")
"""


def write_project(root: Path, yaml: str = "components:\n", files: dict[str, str] | None = None) -> Path:
    """``root`` with a machinable.yaml and ``files`` (dedented), returned for chaining."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "machinable.yaml").write_text(textwrap.dedent(yaml))
    for name, source in (files or {}).items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source))
    return root


def copy_example_project(target: Path) -> Path:
    shutil.copytree(
        EXAMPLE_PROJECT, target, ignore=shutil.ignore_patterns("__pycache__", ".machinable_cache")
    )
    return target


@dataclass
class Result:
    ret: int
    out: str
    err: str

    @property
    def lines(self) -> list[str]:
        return self.out.splitlines()


def clean_env(**extra: str) -> dict[str, str]:
    """The environment for a subprocess: no colour settings or mode leaking in from the caller."""
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR", "MACHINABLE_MODE")}
    env.update(COLUMNS="80", **extra)
    return env


def run_subprocess(cwd: Path, *args: str, script: bool = False, **env: str) -> Result:
    """Run the real command: the installed ``machinable`` script, or ``python -m machinable``."""
    command = [shutil.which("machinable") or "machinable"] if script else [sys.executable, "-m", "machinable"]
    done = subprocess.run(
        [*command, *args], cwd=cwd, capture_output=True, text=True, env=clean_env(**env), timeout=60
    )
    return Result(done.returncode, done.stdout, done.stderr)


def run_inprocess(capsys: pytest.CaptureFixture[str], root: Path, *args: str) -> Result:
    """``machinable --project ROOT ARGS`` in this process (fast: no interpreter start-up)."""
    capsys.readouterr()
    try:
        ret = main(["--project", str(root), *args])
    finally:
        forget_namespace_packages(root)
    captured = capsys.readouterr()
    return Result(ret, captured.out, captured.err)


def forget_namespace_packages(root: Path) -> None:
    """Drop namespace packages (``tasks/`` without ``__init__.py``) of ``root`` from ``sys.modules``.

    The autouse fixture in conftest.py forgets modules by ``__file__``; a namespace package has none, and a
    stale ``tasks`` would otherwise point the next test's project at this one's folder.
    """
    prefix = str(root.resolve())
    for name, module in list(sys.modules.items()):
        if getattr(module, "__file__", None) is None and any(
            str(p).startswith(prefix) for p in list(getattr(module, "__path__", None) or [])
        ):
            del sys.modules[name]
