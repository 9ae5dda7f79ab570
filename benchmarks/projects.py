"""The synthetic projects of the benchmarks, written into a folder (run.py uses a temporary one).

* ``collection``: 1,000 components declared in machinable.yaml (aliases into ten modules of a ``models``
  package, 100 component classes each), every one with a nested default configuration, a named version and
  ``@ml.parametrize`` over 10 learning rates: 10,000 trials when the project is collected.
* ``trivial``: ``noop`` (one record row, the floor writes the same row) and ``rows`` (ten record rows).
* ``results``: ``fit``, one record row (``loss``, ``acc``) per trial, parametrized over 10 learning rates, so
  that the results table of its repeats has 10 rows (the ``results`` group reads what it stored).
* ``report``: ``curve``, 1,000 record rows (``loss``, ``acc``) per trial, parametrized over 10 learning rates:
  ``repeat(100)`` gives the 1,000 trials x 1,000 rows of the ``report`` group.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

COMPONENTS = 1000
MODULES = 10
PARAMETRIZATIONS = 10


def _write(root: Path, files: dict[str, str]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return root


def collection_project(root: Path, components: int = COMPONENTS, modules: int = MODULES) -> Path:
    """1,000 components x 10 parametrizations (see the module docstring)."""
    per_module = components // modules
    yaml = ["components:"]
    files: dict[str, str] = {"models/__init__.py": ""}
    rates = ", ".join(repr(10.0**-k) for k in range(1, PARAMETRIZATIONS + 1))
    for m in range(modules):
        source = ["import machinable as ml", ""]
        for c in range(m * per_module, (m + 1) * per_module):
            name = f"c{c:04d}"
            yaml += [
                f"  - models.m{m:02d}={name}:",
                "      learning_rate: 0.001",
                f"      width: {8 + c % 7}",
                "      data: {name: cifar10, batch_size: 32, augmentation: false}",
                "      ~small:",
                "        width: 4",
            ]
            source += [
                "",
                f"@ml.parametrize('learning_rate', [{rates}])",
                f"class {name}(ml.Component):",
                "    def on_execute(self):",
                "        self.record['loss'] = self.config.learning_rate",
                "        self.record.save()",
                "",
            ]
        files[f"models/m{m:02d}.py"] = "\n".join(source)
    files["machinable.yaml"] = "\n".join(yaml) + "\n"
    return _write(root, files)


# The command-line sweep of the sweep workload: 100 x 100 = 10,000 trials.
SWEEP = ("a=range(0,100)", "b=range(0,100)")


def sweep_project(root: Path) -> Path:
    """``grid``: one component with two keys, swept from the command line (``a=range(0,100) b=range(0,100)``)."""
    return _write(
        root,
        {
            "machinable.yaml": """
                components:
                  - grid:
                      a: 0
                      b: 0
            """,
            "grid.py": """
                import machinable as ml

                class Grid(ml.Component):
                    def on_execute(self):
                        self.record["ab"] = self.config.a * self.config.b
                        self.record.save()
            """,
        },
    )


def trivial_project(root: Path) -> Path:
    """``noop``: one record row per trial; ``rows``: ``rows`` record rows (default 10); ``peers``: the peers'
    per-trial workload (10 steps of one random metric)."""
    return _write(
        root,
        {
            "machinable.yaml": """
                components:
                  - noop:
                  - rows:
                      rows: 10
                  - peers:
                      steps: 10
            """,
            "peers.py": """
                import random

                import machinable as ml

                class Peers(ml.Component):
                    # The peers' workload (issue 17): a seeded trial, one metric per step, on local disk.
                    def on_execute(self):
                        for step in range(self.config.steps):
                            self.record["step"] = step
                            self.record["loss"] = random.random()
                            self.record.save()
            """,
            "noop.py": """
                import machinable as ml

                class Noop(ml.Component):
                    def on_execute(self):
                        self.record["x"] = 1
                        self.record.save()
            """,
            "rows.py": """
                import machinable as ml

                class Rows(ml.Component):
                    def on_execute(self):
                        for i in range(self.config.rows):
                            self.record["i"] = i
                            self.record["loss"] = 1.0 / (i + 1)
                            self.record.save()
            """,
        },
    )


# The learning rates of ``fit``: a results table groups a task's trials into this many configurations.
FIT_RATES = 10


def results_project(root: Path) -> Path:
    """``fit``: a trivial one-row component over 10 learning rates (``repeat(n)`` gives 10 x n trials)."""
    rates = ", ".join(repr(round(0.1 / 2**k, 6)) for k in range(FIT_RATES))
    return _write(
        root,
        {
            "machinable.yaml": """
                components:
                  - fit:
                      lr: 0.1
                      width: 8
                      data: {name: mnist, batch_size: 32}
            """,
            "fit.py": f"""
                import machinable as ml

                @ml.parametrize("lr", [{rates}])
                class Fit(ml.Component):
                    def on_execute(self):
                        self.record["loss"] = self.config.lr * (1 + self.seed % 7)
                        self.record["acc"] = 1.0 - self.config.lr
                        self.record.save()
            """,
        },
    )


# The learning rates of ``curve``; each trial records REPORT_ROWS rows.
REPORT_RATES, REPORT_ROWS = 10, 1000


def report_project(root: Path) -> Path:
    """``curve``: ``rows`` record rows per trial (a decaying loss with seed noise, an accuracy), over 10 learning
    rates."""
    rates = ", ".join(repr(round(0.1 / 2**k, 6)) for k in range(REPORT_RATES))
    return _write(
        root,
        {
            "machinable.yaml": f"""
                components:
                  - curve:
                      lr: 0.1
                      rows: {REPORT_ROWS}
            """,
            "curve.py": f"""
                import math
                import random

                import machinable as ml

                @ml.parametrize("lr", [{rates}])
                class Curve(ml.Component):
                    def on_execute(self):
                        noise = random.Random(self.seed)
                        lr = self.config.lr
                        for step in range(self.config.rows):
                            self.record["loss"] = math.exp(-lr * step) + 0.05 * noise.random()
                            self.record["acc"] = 1.0 - 0.9 * math.exp(-lr * step)
                            self.record.save()
            """,
        },
    )
