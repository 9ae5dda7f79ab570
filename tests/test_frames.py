"""``to_records()`` / ``to_pandas()`` on an Execution, a stored execution and a whole storage, on memory,
local disk and S3: columns and values as stored, ``histories=True``, the ``k=`` and ``status=`` filters, and
pandas missing."""

from __future__ import annotations

import math
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

import machinable as ml
from machinable.errors import UsageError
from machinable.storage import MissingDependencyError
from machinable.storage.index import INDEX_JSONL

pd = pytest.importorskip("pandas")

YAML = """\
components:
  - train:
      lr: 0.1
      steps: 3
      fail: false
      data: {name: mnist, size: 28}
      ~big:
        data: {size: 64}
  - probe:
      depth: 2
"""

TRAIN = """\
import machinable as ml


class Train(ml.Component):
    def on_execute(self):
        for i in range(self.config.steps):
            self.record["loss"] = self.config.lr * (self.config.steps - i)
            self.record["phase"] = f"s{i}"
            self.record["ok"] = True
            self.record.save()
        if self.config.fail:
            raise ValueError("asked to fail\\nsecond line")
"""

PROBE = """\
import machinable as ml


class Probe(ml.Component):
    def on_execute(self):
        self.record["acc"] = self.config.depth / 10
        self.record.save()
"""

BASE = ["execution_id", "node_id", "uid", "component", "seed", "status", "duration"]
TRAIN_CONFIG = ["config.lr", "config.steps", "config.fail", "config.data.name", "config.data.size"]


@pytest.fixture
def project(make_project) -> Path:
    return make_project(YAML, {"train.py": TRAIN, "probe.py": PROBE})


def _task() -> ml.Task:
    """Four trials of ``train`` (one fails) and one of ``probe``: differing configurations and metrics."""
    versions = [{"lr": 0.1}, {"lr": 0.01}, ("~big", {"lr": 0.5}), {"fail": True}]
    return ml.Task().component("train", versions).component("probe")


@pytest.fixture(
    params=["memory", "local", pytest.param("s3", marks=pytest.mark.slow)],
)
def target(request, tmp_path) -> Any:
    """A fresh storage of each kind that ``ml.execute`` writes and ``ml.Storage`` reads."""
    if request.param == "memory":
        return f"memory://frames-{uuid.uuid4().hex[:8]}"
    if request.param == "local":
        return str(tmp_path / "results")
    return request.getfixturevalue("s3_server").target()


def _run(project: Path, target: Any, seed: int = 42, task: ml.Task | None = None) -> ml.Execution:
    return ml.execute(task or _task(), storage=target, seed=seed, project=project, echo=False)


def _same(a: Any, b: Any) -> bool:
    return a == b or (isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b))


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _check_rows_against_storage(rows: list[dict[str, Any]], stored: Any) -> None:
    """Every row says what the trial's own folder says (trial.json, status.json, its last record row)."""
    assert [row["uid"] for row in rows] == [t.uid for t in stored.trials]
    for row in rows:
        trial = stored.trial(row["uid"])
        assert row["execution_id"] == stored.id
        assert (row["node_id"], row["component"], row["seed"], row["status"]) == (
            trial.node_id,
            trial.component,
            trial.seed,
            trial.status,
        )
        assert row["duration"] == pytest.approx(trial.finished - trial.started)
        config = {key[len("config.") :]: value for key, value in row.items() if key.startswith("config.")}
        expected = {}
        for key, value in trial.config.items():
            if isinstance(value, dict):
                expected.update({f"{key}.{k}": v for k, v in value.items()})
            else:
                expected[key] = value
        assert config == expected
        last = trial.records[-1]
        metrics = {k: v for k, v in last.items() if not k.startswith("_") and not isinstance(v, bool | str)}
        assert {k: row[k] for k in metrics} == metrics
        # strings, booleans and the _time/_iteration columns are no metrics
        assert not {"phase", "ok", "_time", "_iteration"} & set(row)


# -- one execution ------------------------------------------------------------------------------------------


def test_to_records_of_an_execution_has_one_row_per_trial_with_config_and_final_metrics(project, target):
    execution = _run(project, target)
    rows = execution.to_records()
    assert [row["node_id"] for row in rows] == [t.node_id for t in execution.trials]
    assert [row["status"] for row in rows] == ["passed", "passed", "passed", "failed", "passed"]
    assert list(rows[0]) == [*BASE, *TRAIN_CONFIG, "loss"]
    assert list(rows[-1]) == [*BASE, "config.depth", "acc"]
    first = rows[0]
    assert first["execution_id"] == execution.id == "8gWVkz"
    assert (first["config.lr"], first["config.data.size"], first["loss"]) == (0.1, 28, pytest.approx(0.1))
    big = rows[2]
    assert (big["config.lr"], big["config.data.size"], big["loss"]) == (0.5, 64, pytest.approx(0.5))
    assert rows[-1]["acc"] == pytest.approx(0.2)
    for row, trial in zip(rows, execution.trials, strict=True):
        assert (row["uid"], row["seed"], row["component"]) == (trial.uid, trial.seed, trial.component)
    _check_rows_against_storage(rows, execution.stored())


def test_the_stored_execution_gives_the_same_rows_as_the_execution(project, target):
    execution = _run(project, target)
    stored = ml.Storage(target).get(execution.id)
    assert stored.to_records() == execution.to_records()
    _check_rows_against_storage(stored.to_records(), stored)
    frame = stored.to_pandas()
    assert isinstance(frame, pd.DataFrame) and len(frame) == 5
    assert list(frame.columns) == [*BASE, *TRAIN_CONFIG, "loss", "config.depth", "acc"]
    assert list(frame["status"]) == ["passed", "passed", "passed", "failed", "passed"]
    assert frame["acc"].isna().tolist() == [True, True, True, True, False]
    assert frame["config.depth"].isna().sum() == 4


def test_hidden_configuration_keys_are_not_columns(make_project, tmp_path):
    root = make_project("components:\n  - probe:\n      depth: 2\n      _secret: 1\n", {"probe.py": PROBE})
    execution = ml.execute("probe", storage=str(tmp_path / "r"), seed=42, project=root, echo=False)
    assert execution.trials[0].config["_secret"] == 1
    [row] = execution.to_records()
    assert [k for k in row if k.startswith("config.")] == ["config.depth"]


def test_to_records_equals_to_pandas_to_dict_records_but_for_missing_columns(project, target):
    execution = _run(project, target)
    rows = execution.to_records()
    frame = execution.to_pandas()
    assert len(frame) == len(rows)
    columns = list(frame.columns)
    for row, framed in zip(rows, frame.to_dict("records"), strict=True):
        assert set(row) <= set(framed) and list(framed) == columns
        for key, value in framed.items():
            if key in row:
                assert _same(row[key], value), (key, row[key], value)
            else:
                assert _missing(value), (key, value)


# -- histories ----------------------------------------------------------------------------------------------


def test_histories_give_one_row_per_record_row(project, target):
    execution = _run(project, target)
    stored = execution.stored()
    rows = execution.to_records(histories=True)
    expected = [(t.uid, step, record) for t in stored.trials for step, record in enumerate(t.records)]
    assert len(rows) == len(expected) == 3 + 3 + 3 + 3 + 1
    for row, (uid, step, record) in zip(rows, expected, strict=True):
        assert row["uid"] == uid and row["step"] == step
        assert {k: row[k] for k in record} == record  # every column of the row, strings and _time too
    summaries = {row["uid"]: row for row in execution.to_records()}
    for row in rows:
        assert {k: v for k, v in row.items() if k in BASE or k.startswith("config.")} == {
            k: v for k, v in summaries[row["uid"]].items() if k in BASE or k.startswith("config.")
        }
    frame = execution.to_pandas(histories=True)
    assert len(frame) == len(rows) and {"step", "loss", "phase", "ok", "_time"} <= set(frame)
    assert frame[frame["node_id"] == execution.trials[0].node_id]["step"].tolist() == [0, 1, 2]


def test_histories_with_filters(project, target):
    execution = _run(project, target)
    rows = execution.to_records(k="probe", histories=True)
    assert [(row["component"], row["step"]) for row in rows] == [("probe", 0)]
    failed = execution.to_records(status="failed", histories=True)
    assert [row["step"] for row in failed] == [0, 1, 2]
    assert {row["config.fail"] for row in failed} == {True}


# -- filters ------------------------------------------------------------------------------------------------


def test_k_selects_by_node_id_component_and_version(project, target):
    execution = _run(project, target)

    def nodes(**kwargs: Any) -> list[str]:
        return [row["node_id"] for row in execution.to_records(**kwargs)]

    trials = [t.node_id for t in execution.trials]
    assert nodes(k="probe") == [trials[4]]
    assert nodes(k="not probe") == trials[:4]
    assert nodes(k="~big") == [trials[2]]
    assert nodes(k="lr=0.01 or fail") == [trials[1], trials[3]]
    assert nodes(k="train and not lr") == [trials[3]]
    assert nodes(k="") == trials and nodes(k=None) == trials
    assert nodes(k="nothing-like-this") == []
    assert len(execution.to_pandas(k="train")) == 4


def test_status_selects_one_or_several_statuses(project, target):
    execution = _run(project, target)
    failed = execution.to_records(status="failed")
    assert [row["node_id"] for row in failed] == [execution.trials[3].node_id]
    assert len(execution.to_records(status="passed")) == 4
    assert len(execution.to_records(status=["passed", "failed"])) == 5
    assert len(execution.to_records(status=("crashed", "not started"))) == 0
    assert len(execution.to_records(status="passed", k="train")) == 3
    assert list(execution.to_pandas(status="failed")["status"]) == ["failed"]


def test_an_empty_selection_is_an_empty_frame(project, target):
    execution = _run(project, target)
    assert execution.to_records(status="crashed") == []
    assert execution.to_pandas(status="crashed").empty


def test_an_unknown_status_is_a_usage_error_naming_the_statuses(project, tmp_path):
    execution = _run(project, str(tmp_path / "results"))
    for call in (execution.to_records, execution.to_pandas, ml.Storage(str(tmp_path / "results")).to_records):
        with pytest.raises(UsageError, match=r"unknown status 'pased'.*passed, failed, crashed"):
            call(status="pased")
        with pytest.raises(UsageError, match="unknown status 'done'"):
            call(status=["passed", "done"])


def test_a_bad_k_expression_is_a_usage_error(project, tmp_path):
    execution = _run(project, str(tmp_path / "results"))
    with pytest.raises(UsageError):
        execution.to_records(k="train and")


# -- a whole storage ----------------------------------------------------------------------------------------


def test_a_storage_gives_the_rows_of_every_execution_newest_first(project, target):
    first = _run(project, target, seed=1)
    second = _run(project, target, seed=2, task=ml.Task().component("probe", [{"depth": 3}, {"depth": 4}]))
    storage = ml.Storage(target)
    rows = storage.to_records()
    assert [row["execution_id"] for row in rows] == [second.id] * 2 + [first.id] * 5
    assert rows == second.to_records() + first.to_records()
    for stored in storage.executions():
        _check_rows_against_storage([r for r in rows if r["execution_id"] == stored.id], stored)
    assert [row["config.depth"] for row in storage.to_records(k="probe")] == [3, 4, 2]
    assert [row["execution_id"] for row in storage.to_records(status="failed")] == [first.id]
    assert len(storage.to_records(histories=True)) == 2 + 13
    frame = storage.to_pandas()
    assert len(frame) == 7 and frame["execution_id"].value_counts().to_dict() == {first.id: 5, second.id: 2}
    assert sorted(frame[frame["component"] == "probe"]["acc"].round(2)) == [0.2, 0.3, 0.4]
    assert len(storage.to_pandas(k="train", status="passed")) == 3


def test_an_empty_storage_has_no_rows(tmp_path):
    storage = ml.Storage(str(tmp_path / "nothing"))
    assert storage.to_records() == []
    assert storage.to_pandas().empty


# -- from the index -----------------------------------------------------------------------------------------


def test_rows_come_from_the_index_and_equal_a_rebuild_without_it(project, tmp_path):
    results = tmp_path / "results"
    execution = _run(project, str(results))
    before = execution.to_records()
    histories = execution.to_records(histories=True)
    (results / execution.folder / INDEX_JSONL).unlink()
    stored = ml.Storage(str(results)).get(execution.id)
    assert stored.to_records() == before
    assert stored.to_records(histories=True) == histories


def test_rows_need_no_trial_file_without_histories(project, tmp_path):
    results = tmp_path / "results"
    execution = _run(project, str(results))
    before = execution.to_records()
    for path in (results / execution.folder).glob("*/records.jsonl"):
        path.unlink()  # the final metrics are in the index
    assert ml.Storage(str(results)).get(execution.id).to_records() == before


# -- without pandas -----------------------------------------------------------------------------------------


def test_to_pandas_without_pandas_says_how_to_install_it(project, tmp_path, monkeypatch):
    results = str(tmp_path / "results")
    execution = _run(project, results)
    monkeypatch.setitem(sys.modules, "pandas", None)  # `import pandas` raises ImportError
    stored = ml.Storage(results).get(execution.id)
    for call in (execution.to_pandas, stored.to_pandas, ml.Storage(results).to_pandas):
        with pytest.raises(MissingDependencyError, match=r'pip install "machinable\[pandas\]"'):
            call()
        with pytest.raises(ImportError, match=r"to_records\(\)"):  # an ImportError too, naming the way out
            call(histories=True)
    assert len(execution.to_records()) == 5  # plain dicts need no pandas
