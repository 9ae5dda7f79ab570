"""The process engine after the controller used an OpenMP pool, and each trial's thread budget.

scikit-learn bundles libgomp: fitting KMeans starts its OpenMP pool. A worker forked from a controller whose pool ran
deadlocks the first time it enters that pool with more than one thread (libgomp has no fork handler). Each
controller here is a fresh interpreter (a subprocess), as a notebook or a script is.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from cli_helpers import clean_env, write_project

import machinable as ml
from machinable.execution.placement import THREAD_VARIABLES, machine_cpus

pytest.importorskip("sklearn", reason="scikit-learn (its bundled libgomp) is installed with the test extras")
pytest.importorskip("threadpoolctl", reason="threadpoolctl is a dependency of scikit-learn")

CPUS = machine_cpus()
needs_two_cpus = pytest.mark.skipif(CPUS < 2, reason="a thread budget below the machine's needs two CPUs")

KMEANS = """
import os
import sys

import machinable as ml


class Kmeans(ml.Component):
    def on_execute(self):
        preloaded = "sklearn.cluster" in sys.modules  # imported by the controller's local run
        import numpy as np
        from sklearn.cluster import KMeans
        from threadpoolctl import threadpool_info

        data = np.random.RandomState(0).rand(3000, 8)
        KMeans(4, n_init=1, random_state=0).fit(data)
        pools = {pool["internal_api"]: pool["num_threads"] for pool in threadpool_info()}
        self.record.update(openmp=pools.get("openmp"), blas=pools.get("openblas"))
        self.record.update(omp=os.environ.get("OMP_NUM_THREADS"), preloaded=preloaded)
        self.record.save()
"""

# A notebook's sequence: a local run (the controller's OpenMP pool starts), then the process engine.
CONTROLLER = """
import json, sys
import machinable as ml

task = ml.Task().component("kmeans", resources=json.loads(sys.argv[3])).repeat(2)
ml.execute(task, storage=sys.argv[1], echo=False)
execution = ml.execute(task, storage=sys.argv[1], engine=json.loads(sys.argv[2]), echo=False, timeout=float(sys.argv[4]))
stored = ml.Storage(sys.argv[1]).get(execution.id)
print(json.dumps([{"status": t.status, "error": t.error, **(t.records[-1] if t.records else {}),
                   "placement": t.status_info.get("placement")} for t in stored.trials]))
"""


def _without_thread_variables(**env: str) -> dict[str, str]:
    """The test's environment without thread counts of the caller's, plus ``env``."""
    environment = {k: v for k, v in clean_env().items() if k not in THREAD_VARIABLES}
    return {**environment, **env}


def _run(
    tmp_path: Path, engine: dict, resources: dict | None = None, timeout: float = 60, **env: str
) -> list[dict]:
    root = write_project(tmp_path / "project", "components:\n  - kmeans\n", {"kmeans.py": KMEANS})
    (root / "controller.py").write_text(CONTROLLER)
    environment = _without_thread_variables(**env)
    done = subprocess.run(
        [
            sys.executable,
            "controller.py",
            str(tmp_path / "results"),
            json.dumps(engine),
            json.dumps(resources or {}),
            str(timeout),
        ],
        cwd=root,
        capture_output=True,
        text=True,
        env=environment,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.slow
@needs_two_cpus
def test_workers_do_not_hang_after_the_controller_ran_an_openmp_pool(tmp_path: Path) -> None:
    # One worker: its budget is every CPU, so the trial enters the OpenMP pool with several threads.
    trials = _run(tmp_path, {"type": "process", "workers": 1})
    assert [t["status"] for t in trials] == ["passed", "passed"], trials
    assert {t["openmp"] for t in trials} == {CPUS}
    # from the fork server, which imported the libraries' modules the controller had: not once per worker
    assert all(t["preloaded"] for t in trials)


@pytest.mark.slow
@needs_two_cpus
def test_a_forked_worker_that_hangs_is_killed_at_its_timeout(tmp_path: Path) -> None:
    """What the default avoids: fork forced after the controller's pool ran. The deadlocked workers are killed
    at the trial's timeout, and the run ends."""
    engine = {"type": "process", "workers": 1, "start_method": "fork", "kill_grace": 0.5}
    trials = _run(tmp_path, engine, timeout=4)
    assert [t["status"] for t in trials] == ["failed", "failed"]
    assert all(
        "timed out after 4 s" in t["error"] and "worker process was killed" in t["error"] for t in trials
    )


@pytest.mark.slow
@needs_two_cpus
def test_each_worker_gets_the_cpus_over_the_workers(tmp_path: Path) -> None:
    trials = _run(tmp_path, {"type": "process", "workers": 2})
    budget = max(1, CPUS // 2)
    assert [t["status"] for t in trials] == ["passed", "passed"]
    for trial in trials:
        assert (trial["openmp"], trial["blas"], trial["omp"]) == (budget, budget, str(budget))
        assert trial["placement"] == {"threads": budget}


@pytest.mark.slow
@needs_two_cpus
def test_a_trials_resources_cpus_are_its_budget(tmp_path: Path) -> None:
    trials = _run(tmp_path, {"type": "process", "workers": 2}, {"cpus": 2})
    assert {(t["openmp"], t["omp"]) for t in trials} == {(2, "2")}


@pytest.mark.slow
@needs_two_cpus
def test_thread_variables_the_user_set_are_kept(tmp_path: Path) -> None:
    trials = _run(tmp_path, {"type": "process", "workers": 2}, OMP_NUM_THREADS=str(CPUS))
    assert {(t["openmp"], t["omp"]) for t in trials} == {(CPUS, str(CPUS))}
    assert all(t["placement"] == {"threads": CPUS} for t in trials)


TORCH = """
import os

import machinable as ml


class Net(ml.Component):
    def on_execute(self):
        import torch

        x = torch.randn(256, 256)
        for _ in range(5):
            x = torch.tanh(x @ x.T / 256)
        self.record.update(threads=torch.get_num_threads(), value=float(x.sum()))
        self.record.save()
"""

TORCH_CONTROLLER = """
import json, sys
import torch
import machinable as ml

torch.randn(512, 512) @ torch.randn(512, 512)  # the controller's OpenMP pool runs
task = ml.Task().component("net").repeat(2)
local = ml.execute(task, storage=sys.argv[1], echo=False)
process = ml.execute(task, storage=sys.argv[1], engine=json.loads(sys.argv[2]), echo=False, timeout=60)
storage = ml.Storage(sys.argv[1])
print(json.dumps([[t.status, t.records[-1]] for e in (local, process) for t in storage.get(e.id).trials]))
"""


@pytest.mark.slow
@needs_two_cpus
@pytest.mark.parametrize("workers", [1, 2])
def test_torch_in_the_controller_then_process_workers(tmp_path: Path, workers: int) -> None:
    pytest.importorskip("torch", reason="torch is installed with the test extras (a CPU wheel)")
    root = write_project(tmp_path / "project", "components:\n  - net\n", {"net.py": TORCH})
    (root / "controller.py").write_text(TORCH_CONTROLLER)
    engine = json.dumps({"type": "process", "workers": workers})
    done = subprocess.run(
        [sys.executable, "controller.py", str(tmp_path / "results"), engine],
        cwd=root,
        capture_output=True,
        text=True,
        env=_without_thread_variables(),
        timeout=240,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    (local_a, local_b, *processed) = json.loads(done.stdout.strip().splitlines()[-1])
    assert [status for status, _ in processed] == ["passed", "passed"]
    assert {row["threads"] for _, row in processed} == {max(1, CPUS // workers)}
    # the same seeds give the same numbers whatever the thread count
    assert [row["value"] for _, row in processed] == pytest.approx([local_a[1]["value"], local_b[1]["value"]])


def test_the_start_method_is_fork_until_an_openmp_pool_runs() -> None:
    from machinable.execution.engines import start_method

    code = (
        "from machinable.execution.engines import start_method as s\n"
        "import numpy as np\n"
        "print(s.choose('auto', []))\n"  # OpenBLAS's threads (numpy) are safe to fork
        "from sklearn.cluster import KMeans\n"
        "KMeans(2, n_init=1).fit(np.random.rand(500, 4))\n"
        "print(s.choose('auto', []), s.native_threads() > 0)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=_without_thread_variables(),
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    first, second = done.stdout.splitlines()
    if CPUS >= 2:
        assert (first, second) == ("fork", "forkserver True")
    assert start_method.choose("spawn", []) == "spawn"


POOLS = """
import os

import machinable as ml


class Pools(ml.Component):
    def on_execute(self):
        import numpy  # noqa: F401 - its OpenBLAS pool, loaded now or by an earlier trial of this Ray worker
        from threadpoolctl import threadpool_info

        blas = [pool["num_threads"] for pool in threadpool_info() if pool["internal_api"] == "openblas"]
        self.record.update(blas=blas[0], omp=os.environ.get("OMP_NUM_THREADS"))
        self.record.save()
"""


@pytest.mark.slow
@pytest.mark.usefixtures("ray_session")
def test_ray_trials_get_their_cpus_as_threads_also_in_pools_loaded_before(
    make_project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = make_project("components:\n  - pools\n", {"pools.py": POOLS})
    for name in THREAD_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    task = ml.Task().component("pools").component("pools", resources={"cpus": 2}).repeat(2)
    execution = ml.execute(task, project=root, storage=str(tmp_path / "results"), engine="ray", echo=False)
    stored = ml.Storage(str(tmp_path / "results")).get(execution.id).trials
    assert [t.status for t in stored] == ["passed"] * 4
    seen = [
        (t.records[-1]["blas"], t.records[-1]["omp"], t.status_info["placement"]["threads"]) for t in stored
    ]
    assert sorted(seen) == [(1, "1", 1), (1, "1", 1), (2, "2", 2), (2, "2", 2)]
