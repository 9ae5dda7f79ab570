"""Engines benchmark (a script, not a timed test): ``python benchmarks/engines.py [--trials N]``.

Prints two figures per engine (DESIGN.md §7, issue 6):

* speed-up: 4 CPU-bound trials of about 1 s each on ``local`` vs ``process:2`` vs ``ray`` (num_cpus=2); target:
  at least 1.8x over ``local`` on a 2-core machine;
* per-trial overhead: many trivial trials, one at a time (``process:1``, ``ray`` with one trial in flight), minus
  what the same trials cost on ``local``; targets: process under 20 ms, ray under 50 ms (Ray's start excluded).
"""

from __future__ import annotations

import argparse
import atexit
import shutil
import statistics
import sys
import tempfile
import textwrap
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import machinable as ml  # noqa: E402
from machinable.execution.engines.ray_engine import RayEngine, connect  # noqa: E402

PROJECT = {
    "machinable.yaml": """
        components:
          - burn:
              seconds: 1.0
          - noop:
          - train:
              steps: 4000
    """,
    "burn.py": """
        import time
        import machinable as ml

        class Burn(ml.Component):
            def on_execute(self):
                # CPU-bound: spin (no sleeping) for the configured wall time
                end, n = time.perf_counter() + self.config.seconds, 0
                while time.perf_counter() < end:
                    n += sum(i * i for i in range(1000))
                self.record["n"] = n
                self.record.save()
    """,
    "train.py": """
        import machinable as ml

        class Train(ml.Component):
            \"\"\"A small MLP trained with torch on random data: the kind of trial whose many small operations
            gain little from a thread pool and lose much when pools oversubscribe the CPUs.\"\"\"

            def on_execute(self):
                import torch

                x, y = torch.randn(2048, 64), torch.randint(0, 10, (2048,))
                model = torch.nn.Sequential(torch.nn.Linear(64, 128), torch.nn.ReLU(), torch.nn.Linear(128, 10))
                optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
                for _ in range(self.config.steps):
                    batch = torch.randint(0, 2048, (64,))
                    loss = torch.nn.functional.cross_entropy(model(x[batch]), y[batch])
                    optimizer.zero_grad()
                    loss.backward()
                    optimizer.step()
                self.record.update(loss=float(loss), threads=torch.get_num_threads())
                self.record.save()
    """,
    "noop.py": """
        import machinable as ml

        class Noop(ml.Component):
            def on_execute(self):
                self.record["x"] = 1
                self.record.save()
    """,
}


def make_project() -> Path:
    """A temporary project with the benchmark components, removed when this process exits."""
    root = Path(tempfile.mkdtemp(prefix="machinable-bench-"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    for name, text in PROJECT.items():
        (root / name).write_text(textwrap.dedent(text))
    return root


def timed(task: ml.Task, engine: object, project: Path, storage: str | None = None) -> float:
    start = time.perf_counter()
    execution = ml.execute(task, engine=engine, project=project, storage=storage, echo=False)
    elapsed = time.perf_counter() - start
    bad = [t for t in execution.trials if not t.passed]
    if bad:
        raise SystemExit(f"benchmark trial did not pass: {bad[0].node_id}: {bad[0].error}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=200, help="trivial trials for the overhead figure")
    parser.add_argument("--repeats", type=int, default=3, help="runs per figure (the median is shown)")
    args = parser.parse_args()
    project = make_project()

    start = time.perf_counter()
    connect(num_cpus=2)
    print(f"ray start (not counted below): {time.perf_counter() - start:.2f} s")

    burn = ml.Task().component("burn").repeat(4)
    engines = {"local": "local", "process:2": "process:2", "ray (num_cpus=2)": RayEngine()}
    walls = {
        name: statistics.median(timed(burn, e, project) for _ in range(args.repeats))
        for name, e in engines.items()
    }
    print("\n4 CPU-bound trials of ~1 s each (median wall time, speed-up over local):")
    for name, wall in walls.items():
        print(f"  {name:18s} {wall:6.2f} s   {walls['local'] / wall:4.2f}x")

    noop = ml.Task().component("noop").repeat(args.trials)
    single = {"local": "local", "process:1": "process:1", "ray (1 in flight)": RayEngine(workers=1)}
    for label, storage in (("memory", None), ("local disk", tempfile.mkdtemp(prefix="machinable-bench-"))):
        per = {
            name: statistics.median(timed(noop, e, project, storage) for _ in range(args.repeats))
            / args.trials
            * 1000
            for name, e in single.items()
        }
        print(f"\n{args.trials} trivial trials, one at a time, {label} storage (median ms per trial):")
        for name, ms in per.items():
            extra = "" if name == "local" else f"   overhead {ms - per['local']:6.2f} ms"
            print(f"  {name:18s} {ms:6.2f} ms{extra}")
    throughput = {"process:2": "process:2", "ray (num_cpus=2)": RayEngine()}
    print(f"\n{args.trials} trivial trials, two at a time (median ms per trial):")
    for name, e in throughput.items():
        ms = statistics.median(timed(noop, e, project) for _ in range(args.repeats)) / args.trials * 1000
        print(f"  {name:18s} {ms:6.2f} ms")


if __name__ == "__main__":
    main()
