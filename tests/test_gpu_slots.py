"""GPU slots: trials that ask for GPUs get disjoint ``CUDA_VISIBLE_DEVICES`` on the process engine, wait for free
devices, and the assignment is stored with them; Ray and Slurm get the request in their own terms.

No GPU is needed: the devices are a list given to the engine (or the controller's ``CUDA_VISIBLE_DEVICES``), and
each trial records the environment it saw.
"""

from __future__ import annotations

from itertools import combinations
from pathlib import Path

import pytest

import machinable as ml
from machinable.errors import UsageError
from machinable.execution.engines.ray_resources import task_options
from machinable.execution.engines.slurm.options import SlurmOptions, shape_of
from machinable.trials import TrialSpec

GPU = """
import os
import time

import machinable as ml


class Gpu(ml.Component):
    def on_execute(self):
        self.record.update(devices=os.environ.get("CUDA_VISIBLE_DEVICES"), pid=os.getpid(), start=time.time())
        time.sleep(self.config.hold)  # the trial's work: it holds its devices meanwhile
        self.record.update(end=time.time())
        self.record.save()
"""


@pytest.fixture
def project(make_project, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = make_project("components:\n  - gpu:\n      hold: 0.3\n", {"gpu.py": GPU})
    monkeypatch.chdir(root)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    return root


def _trials(task: ml.Task, engine: dict, tmp_path: Path) -> list:
    execution = ml.execute(task, storage=str(tmp_path / "results"), engine=engine, echo=False)
    trials = ml.Storage(str(tmp_path / "results")).get(execution.id).trials
    assert [t.status for t in trials] == ["passed"] * len(trials), [t.error for t in trials]
    return trials


def test_trials_asking_for_gpus_get_disjoint_devices_and_wait_for_free_ones(
    project: Path, tmp_path: Path
) -> None:
    task = (
        ml.Task()
        .component("gpu", resources={"gpu": 1}, flags={"gpu": True})
        .component("gpu", flags={"gpu": False})
        .repeat(3)
    )
    trials = _trials(task, {"type": "process", "workers": 3, "gpus": ["0", "1"]}, tmp_path)
    rows = [t.records[-1] for t in trials]
    on_gpu = [row for t, row in zip(trials, rows, strict=True) if t.flags["gpu"]]
    without = [row for t, row in zip(trials, rows, strict=True) if not t.flags["gpu"]]
    assert len(on_gpu) == len(without) == 3
    assert all(row["devices"] in ("0", "1") for row in on_gpu)
    assert [row["devices"] for row in without] == ["", "", ""]  # the others see none
    for a, b in combinations(on_gpu, 2):
        if a["devices"] == b["devices"]:  # one device, one trial at a time
            assert a["end"] <= b["start"] or b["end"] <= a["start"], (a, b)
    for trial, row in zip(trials, rows, strict=True):
        assert trial.status_info["placement"]["gpus"] == ([row["devices"]] if row["devices"] else [])


def test_the_controllers_visible_devices_are_handed_out(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "4,7")
    task = ml.Task().component("gpu", resources={"num_gpus": 2}).component("gpu", resources={"gpu": 1})
    rows = [t.records[-1] for t in _trials(task, {"type": "process", "workers": 2}, tmp_path)]
    assert rows[0]["devices"] == "4,7" and rows[1]["devices"] in ("4", "7")
    assert rows[1]["start"] >= rows[0]["end"] or rows[0]["start"] >= rows[1]["end"]


def test_a_worker_is_replaced_when_its_trial_needs_other_devices(project: Path, tmp_path: Path) -> None:
    """CUDA keeps the devices it started with: a worker does not carry one trial's devices into the next."""
    task = (
        ml.Task()
        .component("gpu", resources={"gpu": 1}, flags={"n": 0})
        .component("gpu", resources={"gpu": 1}, flags={"n": 1})
        .component("gpu", flags={"n": 2})
    )
    rows = [t.records[-1] for t in _trials(task, {"type": "process", "workers": 1, "gpus": 1}, tmp_path)]
    assert [row["devices"] for row in rows] == ["0", "0", ""]
    assert rows[0]["pid"] == rows[1]["pid"] != rows[2]["pid"]


def test_without_gpu_requests_the_devices_are_left_alone(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3")
    rows = [
        t.records[-1]
        for t in _trials(ml.Task().component("gpu"), {"type": "process", "workers": 1}, tmp_path)
    ]
    assert rows[0]["devices"] == "3"


@pytest.mark.parametrize(
    ("resources", "engine", "message"),
    [
        ({"gpu": 3}, {"gpus": ["0", "1"]}, "asks for 3 GPUs; engine 'process' has 2 (0, 1)"),
        ({"gpu": 1}, {"gpus": 0}, "asks for 1 GPUs; engine 'process' has 0 (none)"),
        ({"gpu": 0.5}, {"gpus": 1}, "engine 'process' gives whole GPUs"),
        ({"cpus": -1}, {}, "resources CPUs must be a positive number"),
    ],
)
def test_requests_the_engine_cannot_meet_are_refused(
    project: Path, tmp_path: Path, resources: dict, engine: dict, message: str
) -> None:
    task = ml.Task().component("gpu", resources=resources)
    with pytest.raises(UsageError, match=message.replace("(", r"\(").replace(")", r"\)")):
        ml.execute(task, storage=str(tmp_path / "results"), engine={"type": "process", **engine}, echo=False)


def test_a_malformed_gpus_option_is_refused(project: Path) -> None:
    with pytest.raises(UsageError, match="gpus must be a count or a list of device ids"):
        ml.execute(
            ml.Task().component("gpu"), engine={"type": "process", "gpus": {"a": 1}}, storage="memory://"
        )


def _spec(resources: dict) -> TrialSpec:
    return TrialSpec("n", "c", "m", "a", None, {}, (), 0, "u", resources=resources)


@pytest.mark.parametrize("key", ["gpu", "gpus", "GPU", "num_gpus"])
def test_ray_and_slurm_get_the_request_in_their_terms(key: str) -> None:
    assert task_options(_spec({key: 1}))["num_gpus"] == 1
    assert shape_of(_spec({key: 2}), SlurmOptions()).gpus == 2
