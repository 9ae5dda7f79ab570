"""Every ``>>>`` example of the documentation runs against the project files the page shows before it.

A fenced ``yaml`` block is the project's machinable.yaml from there on; a block with a file name after the
language (```` ```python fit.py ````) is another project file; a ``pycon`` block runs as a doctest in that
project (the working directory), with ``project`` bound to a fresh ``Project`` of it. Pages about running
things start from a copy of the example project, the configuration page from an empty folder.
"""

from __future__ import annotations

import doctest
import re
import shutil
from pathlib import Path

import pytest

from machinable.config.project import Project

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "example_project"
PAGES = {
    "configuration.md": None,
    "tasks.md": EXAMPLE,
    "components.md": EXAMPLE,
    "architecture.md": EXAMPLE,
    "results.md": EXAMPLE,
    "reproducibility.md": EXAMPLE,
    "pytorch.md": None,
}
# What a page's examples import beyond machinable's own dependencies: they skip where one is missing.
NEEDS = {"pytorch.md": ("torch", "sklearn")}
FENCE = re.compile(r"^```(\w+)[ \t]*(\S*)\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)


def sessions(page: str) -> list[tuple[int, str, dict[str, str]]]:
    """(line, doctest text, project files as shown up to there) per pycon block of ``page``."""
    text = (ROOT / "docs" / page).read_text()
    files: dict[str, str] = {}
    found = []
    for match in FENCE.finditer(text):
        line = text.count("\n", 0, match.start()) + 1
        language, name, body = match.groups()
        if language == "pycon":
            found.append((line, body, dict(files)))
        elif name:
            files[name] = body
        elif language == "yaml":
            files["machinable.yaml"] = body
    return found


@pytest.mark.parametrize("page", PAGES)
def test_the_page_has_examples(page: str) -> None:
    assert len(sessions(page)) >= 3


@pytest.mark.parametrize(
    ("page", "line", "session", "files"),
    [(page, *session) for page in PAGES for session in sessions(page)],
    ids=lambda value: (
        value
        if isinstance(value, str) and value.endswith(".md")
        else (f"line{value}" if isinstance(value, int) else "")
    ),
)
def test_example(
    tmp_path: Path, monkeypatch, page: str, line: int, session: str, files: dict[str, str]
) -> None:
    for module in NEEDS.get(page, ()):
        pytest.importorskip(module, reason=f"the examples of docs/{page} need {module}")
    base = PAGES[page]
    root = tmp_path / "project"
    if base is not None:
        shutil.copytree(base, root, ignore=shutil.ignore_patterns("__pycache__", "results"))
    root.mkdir(exist_ok=True)
    for name, body in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(body)
    monkeypatch.chdir(root)
    test = doctest.DocTestParser().get_doctest(
        session, {"project": Project(root)}, f"{page}:{line}", str(ROOT / "docs" / page), line
    )
    assert test.examples, "a pycon block without >>> examples"
    output: list[str] = []
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    runner.run(test, out=output.append)
    assert runner.failures == 0, "".join(output)
