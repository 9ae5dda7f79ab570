"""Every example of docs/configuration.md, run against the YAML and files the page shows before it.

A fenced ``yaml`` block is the project's machinable.yaml from there on; a block with a file name after the
language (```` ```yaml data/mnist.yaml ````) is another project file; a ``pycon`` block runs as a doctest with
``project`` bound to a fresh ``Project`` of those files.
"""

from __future__ import annotations

import doctest
import re
from pathlib import Path

import pytest

from machinable.project import Project

DOC = Path(__file__).resolve().parent.parent / "docs" / "configuration.md"
FENCE = re.compile(r"^```(\w+)[ \t]*(\S*)\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)


def blocks() -> list[tuple[int, str, str, str]]:
    text = DOC.read_text()
    return [
        (text.count("\n", 0, match.start()) + 1, match.group(1), match.group(2), match.group(3))
        for match in FENCE.finditer(text)
    ]


def sessions() -> list[tuple[int, str, dict[str, str]]]:
    """(line, doctest text, project files as shown up to there) per pycon block."""
    files: dict[str, str] = {}
    found = []
    for line, language, name, body in blocks():
        if language == "pycon":
            found.append((line, body, dict(files)))
        elif name:
            files[name] = body
        elif language == "yaml":
            files["machinable.yaml"] = body
    return found


def test_the_page_has_examples() -> None:
    assert len(sessions()) >= 8


@pytest.mark.parametrize(
    ("line", "session", "files"),
    sessions(),
    ids=lambda value: f"line{value}" if isinstance(value, int) else "",
)
def test_example(tmp_path: Path, line: int, session: str, files: dict[str, str]) -> None:
    for name, body in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(body)
    test = doctest.DocTestParser().get_doctest(
        session, {"project": Project(tmp_path)}, f"configuration.md:{line}", str(DOC), line
    )
    assert test.examples, "a pycon block without >>> examples"
    output: list[str] = []
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    runner.run(test, out=output.append)
    assert runner.failures == 0, "".join(output)
