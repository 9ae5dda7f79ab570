"""Hot paths, timed with pytest-benchmark: what every trial and every collected item pays.

The suite runs with the rest of the tests in a quick mode (a few rounds, about 0.1 s per benchmark). Each test
checks its result and fails only on a *gross* regression: the fastest round must stay under a bound about
25 times what it takes on the 2-core reference machine, so noise, coverage tracing or a slow CI runner never
fail it, but an accidental quadratic loop or a per-item file round trip does. For finer comparisons run the
file alone and compare saved runs (docs/architecture.md, "Performance"):

    python -m pytest tests/test_bench_hotpaths.py --benchmark-autosave
    python -m pytest tests/test_bench_hotpaths.py --benchmark-compare --benchmark-compare-fail=min:25%

DESIGN.md §7's end-to-end figures are measured by ``python benchmarks/run.py``, not here.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import machinable as ml
from machinable.collection.collect import collect
from machinable.collection.expression import Expression
from machinable.collection.plan import plan_task
from machinable.config.project import Project
from machinable.ids import node_id, version_id
from machinable.storage import ExecutionWriter, Record, open_storage

pytestmark = pytest.mark.benchmark(group="hot paths", min_rounds=3, max_time=0.1, warmup=False)

YAML = """
components:
  - optimization:
      learning_rate: 0.001
      width: 8
      hidden: $self.width
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


def fastest(benchmark) -> float:
    """The fastest round in seconds; 0 when benchmarking is off (``--benchmark-disable``)."""
    stats = getattr(benchmark, "stats", None)
    if getattr(benchmark, "disabled", False) or stats is None:
        return 0.0
    return stats.stats.min


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Project:
    root = tmp_path_factory.mktemp("bench-project")
    (root / "machinable.yaml").write_text(textwrap.dedent(YAML))
    (root / "optimization.py").write_text(
        "import machinable as ml\n\nclass Optimization(ml.Component):\n    pass\n"
    )
    return Project(root)


def test_resolving_100_versions(benchmark, project):
    versions = [("~alexnet", "~mnist", {"learning_rate": i / 100, "width": i}) for i in range(100)]

    resolved = benchmark(project.resolve, "optimization", versions)

    assert len(resolved) == 100
    assert resolved[50].config == {
        "learning_rate": 0.5,
        "width": 50,
        "hidden": 50,
        "data": {"name": "mnist", "augmentation": False},
    }
    assert resolved[50].versions == ("~alexnet", "~mnist")
    assert fastest(benchmark) < 0.04  # 1.3 ms on the reference machine


def test_building_1000_node_ids(benchmark):
    elements = [
        ("~alexnet", {"learning_rate": i / 1000, "data": {"name": "mnist", "size": i}}) for i in range(999)
    ] + ["x" * 200]

    def build() -> list[str]:
        return [node_id("optimization", [version_id(e)], 1, 2, 3) for e in elements]

    ids = benchmark(build)

    assert ids[500] == "optimization[~alexnet-learning_rate=0.5-data.name=mnist-data.size=500][r2]"
    assert len(ids[-1]) < 100  # a long version is cut and hashed
    assert len(set(ids)) == 1000
    assert fastest(benchmark) < 0.12  # 4.4 ms


def test_planning_1000_trials(benchmark, project):
    task = ml.Task().component("optimization", [{"learning_rate": i / 100} for i in range(100)]).repeat(10)

    specs = benchmark(plan_task, task, project, 3044900027)

    assert len(specs) == 1000
    assert len({s.seed for s in specs}) == 1000
    assert specs[0].node_id == "optimization[learning_rate=0.0][r0]"
    assert fastest(benchmark) < 0.12  # 4.5 ms


@pytest.mark.parametrize("storage", ["memory", "local"])
def test_writing_1000_record_rows(benchmark, storage, tmp_path):
    location = open_storage(None if storage == "memory" else tmp_path / "results")
    trial = ExecutionWriter(location, "3K45al").trial("bench")
    writer = trial.record_writer("default")

    def write() -> Record:
        record = Record(writer)
        for i in range(1000):
            record["loss"] = 1 / (i + 1)
            record["step"] = i
            record.save()
        return record

    record = benchmark(write)
    trial.close()

    assert len(record.rows) == 1000
    assert record.rows[-1]["step"] == 999 and "_time" in record.rows[-1]
    assert fastest(benchmark) < 0.12  # 3.6 ms in memory, 4.6 ms on disk


def test_k_matching_10000_trials(benchmark):
    items = [
        (
            f"optimization[~{'mnist' if i % 3 else 'alexnet'}-learning_rate={i}][r{i % 5}]",
            "optimization",
            "models",
        )
        for i in range(10_000)
    ]
    expression = Expression.compile("optimization and not (alexnet or r4) and models")

    def select() -> int:
        return sum(expression.matches(names) for names in items)

    selected = benchmark(select)

    assert selected == sum(1 for i in range(10_000) if i % 3 and i % 5 != 4)
    assert fastest(benchmark) < 0.2  # 8.2 ms


def test_collecting_500_parametrized_trials(benchmark, make_project):
    yaml = "components:\n" + "".join(
        f"  - models=c{c:02d}:\n      lr: 0.1\n      data: {{name: mnist}}\n" for c in range(50)
    )
    classes = "".join(
        f"\n@ml.parametrize('lr', [{', '.join(str(i / 10) for i in range(10))}])\n"
        f"class c{c:02d}(ml.Component):\n    pass\n"
        for c in range(50)
    )
    root = make_project(yaml, {"models.py": "import machinable as ml\n" + classes})

    def run():
        return collect(Project(root), 3044900027)

    result = benchmark(run)

    assert not result.errors
    assert len(result.items) == 500
    assert fastest(benchmark) < 0.3  # 12.4 ms


def test_running_200_trivial_trials(benchmark, make_project):
    root = make_project(
        "components:\n  - noop:\n",
        {"noop.py": "import machinable as ml\n\n@ml.component\ndef noop(record):\n    record['x'] = 1\n"},
    )
    task = ml.Task().component("noop").repeat(200)

    def run():
        return ml.execute(task, storage={"url": "memory://", "code_backup": False}, project=root, echo=False)

    execution = benchmark(run)

    assert len(execution.passed) == 200
    assert execution.trials[0].records[0]["x"] == 1
    assert fastest(benchmark) < 0.5  # 18 ms


def test_the_benchmark_runner_reports_each_figure_beside_its_target(tmp_path):
    runner = Path(__file__).resolve().parents[1] / "benchmarks" / "run.py"
    report = tmp_path / "figures.json"

    proc = subprocess.run(
        [sys.executable, str(runner), "--only", "import", "--runs", "1", "--json", str(report)],
        capture_output=True,
        text=True,
    )

    assert proc.returncode in (0, 1), proc.stderr  # 1: a target missed (a slow runner), never a crash
    assert 'python -c "import machinable"' in proc.stdout and "< 150 ms" in proc.stdout
    figures = {f["name"]: f for f in json.loads(report.read_text())["figures"]}
    assert figures["import"]["unit"] == "ms" and figures["import"]["value"] > 0
    # No Ray, numpy, fsspec backends.
    assert figures["import-modules"]["ok"], figures["import-modules"]["note"]
