"""The slurm engine's options and sbatch script, checked without a cluster (the real one is in
tests/test_slurm_engine.py)."""

from __future__ import annotations

import pytest

import machinable as ml
from machinable.errors import UsageError
from machinable.execution.engines.slurm.options import Shape, SlurmOptions, shape_of
from machinable.execution.engines.slurm.script import render
from machinable.trials import TrialSpec


def options(**given):
    return SlurmOptions.parse(given)


def test_unknown_option_suggests_the_closest():
    with pytest.raises(UsageError, match=r"unknown option 'max_paralel' \(did you mean 'max_parallel'\?\)"):
        options(max_paralel=2)


@pytest.mark.parametrize("time", ["1:2:3:4", "abc", "1-", "-5", "10:99:00:00"])
def test_time_limits_slurm_cannot_parse_are_refused(time):
    with pytest.raises(UsageError, match="is no Slurm time limit"):
        options(time=time)


@pytest.mark.parametrize("time", ["30", "30:00", "4:00:00", "1-12", "1-12:30", "2-00:00:00", "UNLIMITED"])
def test_slurm_time_formats_are_accepted(time):
    assert options(time=time).time == time


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"max_parallel": 0}, "max_parallel must be a positive number"),
        ({"cpus_per_task": "two"}, "cpus_per_task must be a positive number"),
        ({"gpus": "many"}, "gpus must be a number or 'type:number'"),
        ({"mem": "lots"}, "no Slurm memory size"),
        ({"requeue": -1}, "requeue is how often"),
        ({"setup": [1]}, "setup must be a list of texts"),
        ({"signal": "USR2@x"}, "no Slurm --signal value"),
    ],
)
def test_bad_values_are_one_line(given, message):
    with pytest.raises(UsageError, match=message):
        options(**given)


def _spec(resources=None):
    return TrialSpec(
        node_id="m",
        uid="u1",
        component="m",
        module="m",
        attribute="M",
        config={},
        versions=(),
        seed=1,
        resources=resources or {},
        project_root="/p",
    )


def test_trials_with_the_same_resources_share_a_shape():
    opts = options(cpus_per_task=2, gpus=1, mem="4G")
    assert shape_of(_spec(), opts) == Shape(2, 1, "4G")
    assert shape_of(_spec({"num_gpus": 2, "num_cpus": 8.0}), opts) == Shape(8, 2, "4G")
    assert shape_of(_spec({"memory": 2 * 2**30}), opts) == Shape(2, 1, "2048M")


def test_the_script_asks_for_the_resources_and_runs_the_worker_last():
    opts = options(
        partition="gpu",
        time="4:00:00",
        account="lab",
        qos="high",
        max_parallel=3,
        sbatch_args=["--constraint=a100"],
        setup=["module load cuda/12", "source venv/bin/activate"],
    )
    script = render(
        opts,
        Shape(8, "a100:2", "32G"),
        job_name="machinable-X",
        tasks=10,
        log="/s/x-%A_%a.log",
        chdir="/project",
        worker=["/usr/bin/python3", "-m", "machinable", "worker", "--batch", "b 1"],
    )
    lines = script.splitlines()
    assert lines[0] == "#!/bin/bash"
    for expected in (
        "#SBATCH --array=0-9%3",
        "#SBATCH --partition=gpu",
        "#SBATCH --time=4:00:00",
        "#SBATCH --account=lab",
        "#SBATCH --qos=high",
        "#SBATCH --cpus-per-task=8",
        "#SBATCH --gpus-per-task=a100:2",
        "#SBATCH --mem=32G",
        "#SBATCH --constraint=a100",
        "#SBATCH --signal=B:USR2@90",
        "#SBATCH --output=/s/x-%A_%a.log",
        "#SBATCH --chdir=/project",
    ):
        assert expected in lines
    assert lines[-3:] == [
        "module load cuda/12",
        "source venv/bin/activate",
        "exec /usr/bin/python3 -m machinable worker --batch 'b 1'",
    ]


def test_memory_storage_is_refused(make_project):
    root = make_project(
        "components:\n  - m:\n",
        {
            "m.py": "import machinable as ml\n\nclass M(ml.Component):\n    def on_execute(self):\n        pass\n"
        },
    )
    with pytest.raises(UsageError, match="memory storage lives in this process only"):
        ml.execute(ml.Task().component("m"), project=root, engine={"type": "slurm"}, echo=False)


def _docs_example() -> str:
    import re
    from pathlib import Path

    text = (Path(__file__).parent.parent / "docs" / "engines.md").read_text()
    after = text.split("A complete example for a GPU cluster", 1)[1]
    return re.search(r"```yaml\n(.*?)```", after, re.S).group(1)


def test_the_documented_gpu_cluster_example_becomes_this_script(make_project):
    from machinable.cli.run import engine_choice
    from machinable.config.project import Project

    root = make_project(_docs_example() + "components:\n  - m:\n", {"m.py": "x = 1\n"})
    settings = Project(root).settings

    class Option:
        engine, engine_options, detach, requeue = "slurm", ["max_parallel=4"], False, None

    choice = engine_choice(settings, Option)
    assert choice["type"] == "slurm" and choice["partition"] == "gpu" and choice["max_parallel"] == 4
    opts = SlurmOptions.parse({k: v for k, v in choice.items() if k != "type"})
    spec = _spec()
    script = render(
        opts, shape_of(spec, opts), job_name="machinable-X", tasks=20, log="/l", chdir="/p", worker=["python"]
    )
    for line in (
        "#SBATCH --partition=gpu",
        "#SBATCH --time=4:00:00",
        "#SBATCH --gpus-per-task=1",
        "#SBATCH --cpus-per-task=8",
        "#SBATCH --mem=32G",
        "#SBATCH --account=my-lab",
        "#SBATCH --qos=normal",
        "#SBATCH --array=0-19%4",
        "#SBATCH --signal=B:USR2@90",
        "#SBATCH --constraint=a100",
        "module load cuda/12.4",
        "source ~/venvs/research/bin/activate",
    ):
        assert line in script.splitlines()


def test_sbatch_missing_from_path_is_one_line(make_project, tmp_path, monkeypatch):
    root = make_project(
        "components:\n  - m:\n",
        {
            "m.py": "import machinable as ml\n\nclass M(ml.Component):\n    def on_execute(self):\n        pass\n"
        },
    )
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(
        UsageError, match=r"^engine 'slurm': 'sbatch' is not on PATH; run machinable on a Slurm"
    ):
        ml.execute(
            ml.Task().component("m"),
            project=root,
            storage=tmp_path / "r",
            engine={"type": "slurm"},
            echo=False,
        )
