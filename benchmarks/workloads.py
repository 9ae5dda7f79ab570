"""What one measurement does, run by ``benchmarks/run.py`` in a fresh interpreter each time:
``python benchmarks/workloads.py NAME ARG...`` prints one JSON object (the figures) as its last line.

Every workload times only its own work (``time.perf_counter``); start-up and ``import machinable`` are
measured by the ``import`` figure of run.py, never here.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def _maxrss_mb() -> float:
    # Linux reports ru_maxrss in KiB (macOS in bytes).
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (1024 * 1024) if sys.platform == "darwin" else rss / 1024


def _check(execution: Any) -> None:
    bad = [t for t in execution.trials if not t.passed]
    if bad:
        raise SystemExit(f"benchmark trial did not pass: {bad[0].node_id}: {bad[0].error}")


def collect(project: str) -> dict[str, Any]:
    """Open the project and collect it (the collector the command uses); peak RSS of this process after."""
    import machinable  # noqa: F401  (imported before the clock starts)
    from machinable.collection.collect import collect as run_collect
    from machinable.config.project import Project

    baseline = _maxrss_mb()
    start = time.perf_counter()
    result = run_collect(Project(project), 3044900027)
    seconds = time.perf_counter() - start
    if result.errors:
        raise SystemExit(f"collection errors: {result.errors[0].message}")
    return {
        "seconds": seconds,
        "trials": len(result.items),
        "maxrss_mb": _maxrss_mb(),
        "rss_after_import_mb": baseline,
    }


def sweep(project: str, *overrides: str) -> dict[str, Any]:
    """Collect one component swept from the command line (``overrides``), as the command does: collect, select
    the target, apply the overrides."""
    import machinable  # noqa: F401  (imported before the clock starts)
    from machinable.collection.collect import collect as run_collect
    from machinable.collection.sweep import apply_overrides
    from machinable.config.overrides import parse_overrides
    from machinable.config.project import Project

    start = time.perf_counter()
    project_ = Project(project)
    result = run_collect(project_, 3044900027)
    items = [item for item in result.items if item.component == "grid"]
    swept = apply_overrides(items, parse_overrides(overrides), project_, 3044900027)
    seconds = time.perf_counter() - start
    if result.errors:
        raise SystemExit(f"collection errors: {result.errors[0].message}")
    return {"seconds": seconds, "trials": len(swept), "maxrss_mb": _maxrss_mb()}


def _execute(component: str, project: str, trials: str, storage: str | None) -> tuple[Any, float]:
    """``trials`` trials of ``component`` on the local engine: the execution and its seconds."""
    import machinable as ml

    task = ml.Task().component(component).repeat(int(trials))
    start = time.perf_counter()
    execution = ml.execute(task, storage=storage, engine="local", project=project, echo=False)
    seconds = time.perf_counter() - start
    _check(execution)
    return execution, seconds


def trivial(project: str, trials: str) -> dict[str, Any]:
    """``trials`` trivial trials of ``noop``, memory storage."""
    execution, seconds = _execute("noop", project, trials, None)
    return {"seconds": seconds, "trials": len(execution.trials)}


def disk(project: str, trials: str, storage: str) -> dict[str, Any]:
    """``trials`` trials of ``rows`` (10 record rows each) on local-disk storage."""
    execution, seconds = _execute("rows", project, trials, storage)
    rows = sum(len(t.records) for t in execution.trials)
    return {"seconds": seconds, "trials": len(execution.trials), "rows": rows}


def floor(folder: str, trials: str, rows: str) -> dict[str, Any]:
    """The floor: the same workload as a plain loop, one JSON Lines file per trial, ``rows`` rows each."""
    os.makedirs(folder, exist_ok=True)
    start = time.perf_counter()
    for n in range(int(trials)):
        with open(os.path.join(folder, f"{n}.jsonl"), "w") as f:
            for i in range(int(rows)):
                row = {"i": i, "loss": 1.0 / (i + 1), "_time": time.time()}
                f.write(json.dumps(row) + "\n")
                f.flush()
    return {"seconds": time.perf_counter() - start, "trials": int(trials)}


def _engine_bench() -> Any:
    sys.path.insert(0, str(HERE))
    import engines  # benchmarks/engines.py: the engines' own benchmark (its project and timing)

    return engines


def _start_workers(ray: Any, cpus: int = 2) -> None:
    """Make Ray start its worker processes (``ray.init`` returns before they exist): tasks that overlap."""

    def hold() -> int:
        time.sleep(0.2)
        return os.getpid()

    remote = ray.remote(hold)
    ray.get([remote.remote() for _ in range(cpus)])


def speedup(trials: str = "4") -> dict[str, Any]:
    """4 CPU-bound trials of ~1 s: wall time on local, process:2 and ray (num_cpus=2).

    Ray's start (``ray.init`` and its worker processes) is not counted: it is timed separately. ``ray`` is the
    first machinable execution on that Ray, ``ray_again`` the next one (workers that ran machinable before).
    """
    bench = _engine_bench()
    project = bench.make_project()
    start = time.perf_counter()
    ray = bench.connect(num_cpus=2)
    ray_start = time.perf_counter() - start
    start = time.perf_counter()
    _start_workers(ray)
    workers_start = time.perf_counter() - start
    burn = bench.ml.Task().component("burn").repeat(int(trials))
    walls = {
        "local": bench.timed(burn, "local", project),
        "process": bench.timed(burn, "process:2", project),
        "ray": bench.timed(burn, bench.RayEngine(), project),
        "ray_again": bench.timed(burn, bench.RayEngine(), project),
    }
    return {**walls, "ray_start": ray_start, "workers_start": workers_start}


def overhead(trials: str = "200") -> dict[str, Any]:
    """Per-trial cost of trivial trials run one at a time, in ms: local, process:1, ray (1 in flight)."""
    bench = _engine_bench()
    project = bench.make_project()
    bench.connect(num_cpus=2)
    n = int(trials)
    noop = bench.ml.Task().component("noop").repeat(n)
    bench.timed(bench.ml.Task().component("noop"), bench.RayEngine(workers=1), project)  # warm a Ray worker
    per = {
        "local": bench.timed(noop, "local", project),
        "process": bench.timed(noop, "process:1", project),
        "ray": bench.timed(noop, bench.RayEngine(workers=1), project),
    }
    return {name: seconds / n * 1000 for name, seconds in per.items()}


WORKLOADS = {f.__name__: f for f in (collect, sweep, trivial, disk, floor, speedup, overhead)}


def main(argv: list[str]) -> None:
    name, *args = argv
    result = WORKLOADS[name](*args)
    sys.stdout.flush()
    print("\n" + json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1:])
