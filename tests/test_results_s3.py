"""Results on S3 (moto's server on 127.0.0.1): ``show`` grouped, one trial, ``compare`` and ``to_records`` read
the index there as they do on local disk, through the command and the Python API."""

from __future__ import annotations

import csv
import io
import json
import statistics

import pytest
from cli_helpers import run_inprocess, write_project
from test_results import FIT, YAML, sweep

import machinable as ml

pytestmark = pytest.mark.slow


@pytest.fixture
def project(tmp_path, monkeypatch):
    root = write_project(tmp_path / "project", YAML, {"fit.py": FIT})
    monkeypatch.chdir(root)
    return root


@pytest.fixture
def s3_url(s3_env):
    """A fresh prefix, reached through the usual AWS environment variables (as the command is)."""
    return s3_env.url()


def test_show_groups_the_trials_of_an_execution_on_s3(project, s3_url, capsys):
    execution = ml.execute(sweep(), storage=s3_url, seed=42, echo=False)
    result = run_inprocess(capsys, project, "show", execution.id, "--storage", s3_url, "--format", "csv")
    assert result.ret == 0, result.err
    rows = {row["lr"]: row for row in csv.DictReader(io.StringIO(result.out))}
    for lr in ("0.1", "0.5"):
        finals = [t.records[-1]["loss"] for t in execution.trials if str(t.config["lr"]) == lr]
        assert float(rows[lr]["loss.mean"]) == pytest.approx(statistics.mean(finals))
        assert float(rows[lr]["loss.std"]) == pytest.approx(statistics.stdev(finals))
        assert rows[lr]["n"] == "3"


def test_show_one_trial_and_compare_two_executions_on_s3(project, s3_url, capsys):
    first = ml.execute(sweep(), storage=s3_url, seed=42, echo=False)
    second = ml.execute(sweep(), storage=s3_url, seed=43, echo=False)
    node = first.trials[0].node_id
    detail = run_inprocess(capsys, project, "show", first.id, node, "--storage", s3_url)
    assert detail.ret == 0 and node in detail.out and "passed" in detail.out
    compared = run_inprocess(
        capsys, project, "compare", first.id, second.id, "--storage", s3_url, "--format", "json"
    )
    assert compared.ret == 0, compared.err
    assert len(json.loads(compared.out)) == 2  # the two learning rates, each on both sides


def test_records_and_index_agree_on_s3(project, s3_url):
    from machinable.storage.index import rebuild_index

    execution = ml.execute(sweep(), storage=s3_url, seed=42, echo=False)
    stored = ml.Storage(s3_url).get(execution.id)
    assert stored.results() == rebuild_index(stored)
    assert [r["node_id"] for r in stored.to_records()] == [t.node_id for t in execution.trials]
