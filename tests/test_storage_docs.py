"""The examples of docs/storage.md run, in order, in a small project (S3 ones against a moto server)."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from tests import fixtures_s3

DOC = Path(__file__).resolve().parents[1] / "docs" / "storage.md"
S3_MARK = "# requires: s3"

PROJECT = {
    "machinable.yaml": """
        components:
          - optimization:
              learning_rate: 0.001
        """,
    "optimization.py": """
        import machinable as ml


        class Optimization(ml.Component):
            def on_execute(self):
                loss = None
                for step in range(2):
                    loss = self.config.learning_rate / (step + 1)
                    self.record["loss"] = loss
                    self.record.save()
                self.store("result.json", {"final": loss})
                self.store("best_loss", loss)
        """,
    ".gitignore": ".env\n",
    ".env": "TOKEN=secret\n",
}


def _blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.DOTALL)


@pytest.fixture
def project(tmp_path, monkeypatch):
    for name, text in PROJECT.items():
        (tmp_path / name).write_text(textwrap.dedent(text).lstrip())
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("MACHINABLE_MODE", raising=False)
    return tmp_path


def test_the_docs_have_examples_of_every_form():
    text = "\n".join(_blocks())
    for form in ("~/observations", "./results", "s3://", '"storage"', '"code_backup": False', "executions()"):
        assert form in text


def test_the_storage_docs_examples_run(project):
    namespace: dict = {"__name__": "__docs__"}
    for block in _blocks():
        if not block.startswith(S3_MARK):
            exec(compile(block, str(DOC), "exec"), namespace)
    assert (project / "home" / "observations").is_dir() and (project / "results").is_dir()


@pytest.mark.slow
def test_the_storage_docs_s3_examples_run(project, s3_env):
    boto3 = pytest.importorskip("boto3")
    boto3.client(
        "s3",
        endpoint_url=s3_env.endpoint,
        aws_access_key_id=fixtures_s3.KEY,
        aws_secret_access_key=fixtures_s3.SECRET,
        region_name=fixtures_s3.REGION,
    ).create_bucket(Bucket="my-bucket")
    blocks = [b for b in _blocks() if b.startswith(S3_MARK)]
    assert len(blocks) == 2
    for block in blocks:
        exec(compile(block, str(DOC), "exec"), {"__name__": "__docs__"})
