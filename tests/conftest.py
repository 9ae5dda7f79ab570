"""Shared test fixtures: each test's project modules are imported fresh and forgotten afterwards."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from cli_helpers import write_project


@pytest.fixture(autouse=True)
def _isolated_imports(monkeypatch, tmp_path_factory):
    """Projects in tmp_path reuse module names (optimization.py ...): forget them after every test."""
    base = str(tmp_path_factory.getbasetemp())
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.delenv("MACHINABLE_MODE", raising=False)
    before = dict(sys.modules)
    yield
    for name, module in list(sys.modules.items()):
        if (getattr(module, "__file__", None) or "").startswith(base):
            del sys.modules[name]
    # A project module named like a library one (tests/test_components.py has an 'inspect.py') replaced it:
    # the library's module comes back, or code imported before (Ray's pickling) meets two 'inspect' modules.
    for name, module in before.items():
        if name not in sys.modules:
            sys.modules[name] = module


@pytest.fixture
def make_project(tmp_path):
    """Write a project: ``make_project(yaml, {"module.py": source, ...})`` -> its root."""

    def make(
        yaml: str = "components:\n", files: dict[str, str] | None = None, root: Path | None = None
    ) -> Path:
        return write_project(root or tmp_path / "project", yaml, files)

    return make
