"""The command-line examples of docs/cli.md run in a copy of the example project and print what the page shows.

A ```` ```console ```` block holds ``$ machinable ...`` lines, each followed by its output: what it prints on
stdout (``...`` stands for a varying part such as a duration), or, when the shown output starts with
``ERROR:``, its one line on stderr with exit code 4.
"""

from __future__ import annotations

import doctest
import re
import shlex
import shutil
from pathlib import Path

import pytest
from cli_helpers import run_inprocess

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "cli.md"
CONSOLE = re.compile(r"^```console\n(.*?)^```$", re.MULTILINE | re.DOTALL)


def examples(page: Path = PAGE, text: str | None = None) -> list[tuple[str, str]]:
    """(command line, expected output) for every ``$ machinable`` line of the page's console blocks (or of
    ``text``, a part of a page)."""
    found = []
    for block in CONSOLE.findall(page.read_text() if text is None else text):
        command, output = None, []
        for line in block.splitlines():
            if line.startswith("$ "):
                if command is not None:
                    found.append((command, "\n".join(output)))
                command, output = line[2:], []
            else:
                output.append(line)
        if command is not None:
            found.append((command, "\n".join(output)))
    return found


def test_the_page_has_command_examples() -> None:
    assert len(examples()) >= 8


def example_project(tmp_path: Path) -> Path:
    """A fresh copy of example_project/ (no results or cache of earlier runs)."""
    project = tmp_path / "example_project"
    ignore = shutil.ignore_patterns("__pycache__", "results", ".machinable_cache")
    shutil.copytree(ROOT / "example_project", project, ignore=ignore)
    return project


def mismatch(capsys, project: Path, command: str, expected: str) -> str | None:
    """Run ``$ command`` in ``project``; what differs from the page (output, or the exit code: 4 for an
    ``ERROR:`` line shown on stderr, else 0), None when it prints what the page shows."""
    words = shlex.split(command)
    assert words[0] == "machinable"
    result = run_inprocess(capsys, project, *words[1:])
    error = expected.startswith("ERROR:")
    shown = result.err if error else result.out
    if not doctest.OutputChecker().check_output(
        expected.rstrip() + "\n", shown.rstrip() + "\n", doctest.ELLIPSIS
    ):
        return f"$ {command}\nexpected:\n{expected}\ngot (exit {result.ret}):\n{result.out}{result.err}"
    if result.ret != (4 if error else 0):
        return f"$ {command}: exit {result.ret}"
    return None


@pytest.mark.parametrize(("command", "expected"), examples(), ids=[c for c, _ in examples()])
def test_example(tmp_path: Path, monkeypatch, capsys, command: str, expected: str) -> None:
    project = example_project(tmp_path)
    monkeypatch.chdir(project)
    wrong = mismatch(capsys, project, command, expected)
    assert wrong is None, wrong
