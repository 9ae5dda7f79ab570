"""The machinable.yaml of the guide (DESIGN.md §3), which many tests start from, and a helper writing a project."""

from __future__ import annotations

import textwrap
from pathlib import Path

from machinable.config.project import Project

GUIDE_YAML = """
components:
  - optimization:
      learning_rate: 0.001
      data: {name: cifar10, augmentation: False}
      ~mnist:
        data: {name: mnist}
      ~alexnet:
        learning_rate: 0.1
        data: {name: imagenet}
mixins:
  - imagenet:
      data: {name: imagenet, size: 224}
"""


def make_project(tmp_path: Path, yaml: str = GUIDE_YAML, **files: str) -> Project:
    """Write ``yaml`` as ``tmp_path``'s machinable.yaml and ``files`` (relative path: source) beside it."""
    (tmp_path / "machinable.yaml").write_text(textwrap.dedent(yaml))
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return Project(tmp_path)
