"""machinable's benchmarks: every figure of DESIGN.md §7, each the median of several runs in fresh processes.

    python benchmarks/run.py [--quick] [--runs N] [--only NAME[,NAME...]] [--json PATH]

Groups (``--only``): ``import``, ``collect``, ``sweep``, ``trivial``, ``disk``, ``engines``, ``results``,
``report``, ``slurm``, ``provenance``. The synthetic projects are written to a temporary folder
(``benchmarks/projects.py``); each run of a workload is a new interpreter (``benchmarks/workloads.py``), so
no cache of one run helps the next. The table shows each median beside its target; the exit code is 1 when a
target is missed, 3 when a workload failed (2: a usage error).

Figures, and how each is taken:

* ``import``: wall time of ``python -c "import machinable"`` (``python -c pass`` shown beside it), and the
  modules that must not be imported by it (Ray, numpy, fsspec's backends, s3fs ...).
* ``collect``: ``Project(root)`` + the collector (``machinable.collection.collect.collect``, what the command runs) on
  1,000 components x 10 parametrizations, timed inside the process; peak memory is that process's
  ``ru_maxrss`` (interpreter included, so an upper bound); the wall time of ``machinable --collect-only -q``
  in the project is shown as a note.
* ``sweep``: ``Project(root)`` + the collector + the overrides ``a=range(0,100) b=range(0,100)`` applied to
  the one component of a small project (what ``machinable grid a=range(0,100) b=range(0,100)`` collects),
  timed inside the process; the command's wall time with ``--collect-only -q`` is shown as a note.
* ``trivial``: ``ml.execute`` of 10,000 trivial trials (one record row each), local engine, memory storage;
  the floor is a plain loop writing one JSON Lines file per trial on local disk.
* ``disk``: 1,000 trials of 10 record rows each on local-disk storage; the floor writes the same rows. And the
  peers' workload (a seeded trial, 10 steps of one metric, on local disk): machinable's marginal cost per trial
  (the time of an execution of 2,500 trials minus one of 500, per trial) over the floor's (a plain loop seeding
  ``random`` and writing one flushed JSON Lines file per trial), interleaved; target within 3x.
* ``engines``: 4 CPU-bound ~1 s trials on ``local``, ``process:2`` and ``ray`` (num_cpus=2; Ray's start not
  counted): speed-up = local / engine; per-trial overhead = trivial trials one at a time on ``process:1`` and
  ``ray`` minus ``local``, per trial (``benchmarks/engines.py`` has the projects and timing). And 4 torch trials
  (a small MLP, torch's OpenMP pool) on ``local`` and ``process:2`` in a controller that used torch first (a
  notebook): speed-up >= 1.8x, with the same run without a thread budget (``OMP_NUM_THREADS`` = CPUs) as a note.
* ``results`` (reading stored results): the executions are made once per group by ``ml.execute`` of a
  trivial one-row component (``fit``, benchmarks/projects.py) on local disk (``workloads.results_storage``;
  the 100 executions are one execution of 1,000 trials copied 99 times under new ids, its trial folders
  linked). ``show``: one
  execution of 10,000 trials, timed inside the process: ``Storage(dir).get(id).results()`` + the grouped
  results table (``machinable.reporting.results.table``; ``to_records()`` where it does not exist); the floor
  reads and parses one JSON Lines file of 10,000 lines (the execution's ``index.jsonl``); the wall time of
  ``machinable show ID --storage DIR`` is a note. ``to_pandas``: ``ml.Storage(dir).to_pandas()`` over 100
  executions x 1,000 trials (pandas imported before the clock); the floor parses the 100 ``index.jsonl``
  files into one DataFrame. ``show on S3``: the same as ``show``, from a moto S3 server the workload starts on
  127.0.0.1 (the files are put into it untimed); the floor is one GET of the ``index.jsonl`` and parsing it;
  ``machinable show`` on S3 is a note (first run only, cut off after 60 s).
* ``report``: ``ml.report`` of one execution of 1,000 trials x 1,000 record rows (``loss``, ``acc``) on local
  disk, made once per group by one ``ml.execute`` of ``curve`` (benchmarks/projects.py; its time is a note):
  reading every trial's records, the figures, the page and plotly's import, timed inside the process; the
  file's size in MB (plotly.js, ~4.8 MB, included); the wall time of ``machinable report ID --storage DIR``
  is a note. Needs plotly (``pip install "machinable[report]"``).
* ``provenance``: in a git work tree with an uncommitted change (the trivial project), timed inside the
  process: ``machinable.execution.provenance.collect()`` on its first call in the interpreter (the plugin
  managers, which load entry points through importlib.metadata as a run does, are made before the clock) and
  cached (median of 20), and what it adds to an execution of one trivial trial on local disk (the execution
  minus the same with ``-p no:provenance``, 20 interleaved pairs, median).
* ``plan``: ``machinable plan`` of the 10,000-trial sweep against a storage of 100,000 stored trials (index lines
  as machinable writes them), wall time of the command; and the cost per trial of ``code_identity: executed``.
* ``slurm``: 200 trivial trials through the Slurm that ``sinfo`` answers for (``SLURM_CONF``), ``max_parallel=2``,
  and once the same trials as one Slurm job each for comparison; skipped when no Slurm runs.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.util
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from statistics import median
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import projects  # noqa: E402

GROUPS = (
    "import",
    "collect",
    "sweep",
    "trivial",
    "disk",
    "engines",
    "results",
    "report",
    "slurm",
    "provenance",
    "plan",
)
# Imported by ``import machinable`` = a target missed (DESIGN.md §7: no ray, fsspec backends, numpy).
FORBIDDEN = ("ray", "numpy", "torch", "pandas", "s3fs", "gcsfs", "adlfs", "botocore", "aiobotocore", "boto3")
FORBIDDEN_PREFIXES = ("fsspec.implementations",)


@dataclass
class Figure:
    name: str
    label: str
    value: float | None
    unit: str
    target: str
    ok: bool | None  # None: reported, no target
    samples: list[float] = field(default_factory=list)
    note: str = ""


class WorkloadError(RuntimeError):
    pass


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("MACHINABLE_MODE", None)
    env.pop("COVERAGE_PROCESS_START", None)
    return env


def child(name: str, *args: Any, cwd: Path) -> dict[str, Any]:
    """Run one workload in a fresh interpreter; its figures come back as the last line of its output."""
    command = [sys.executable, str(HERE / "workloads.py"), name, *map(str, args)]
    proc = subprocess.run(command, cwd=cwd, env=_env(), capture_output=True, text=True)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-15:]
        raise WorkloadError(f"workload {name} failed (exit {proc.returncode}):\n  " + "\n  ".join(tail))
    return json.loads(proc.stdout.strip().splitlines()[-1])


def wall(command: list[str], cwd: Path) -> float:
    """Wall time of ``command`` in seconds (it must succeed)."""
    start = time.perf_counter()
    proc = subprocess.run(command, cwd=cwd, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise WorkloadError(f"{' '.join(command)} exited {proc.returncode}: {proc.stderr.decode()[-800:]}")
    return elapsed


# -- groups --------------------------------------------------------------------------------------------------


def bench_import(runs: int, tmp: Path, quick: bool) -> list[Figure]:
    n = max(runs * 3, 5)  # cheap and noisy: more samples
    python = sys.executable
    base = [wall([python, "-c", "pass"], tmp) * 1000 for _ in range(n)]
    samples = [wall([python, "-c", "import machinable"], tmp) * 1000 for _ in range(n)]
    probe = (
        "import json, sys; import machinable; import machinable as ml; ml.Task; ml.execute; ml.Storage; "
        "print(json.dumps(sorted(sys.modules)))"
    )
    out = subprocess.run(
        [python, "-c", probe], cwd=tmp, env=_env(), capture_output=True, text=True, check=True
    )
    modules = json.loads(out.stdout)
    offenders = sorted(m for m in modules if m.split(".")[0] in FORBIDDEN or m.startswith(FORBIDDEN_PREFIXES))
    value = median(samples)
    shown = ", ".join(offenders[:8]) + (" ..." if len(offenders) > 8 else "") if offenders else "none"
    return [
        Figure(
            "import",
            'python -c "import machinable"',
            value,
            "ms",
            "< 150 ms",
            value < 150,
            samples,
            f"python -c pass: {median(base):.0f} ms",
        ),
        Figure(
            "import-modules",
            "heavy modules after import (+ml.execute, ml.Storage)",
            float(len(offenders)),
            "",
            "none",
            not offenders,
            note=f"{shown}; fsspec core: {'yes' if 'fsspec' in modules else 'no'}; {len(modules)} modules",
        ),
    ]


def bench_collect(runs: int, tmp: Path, quick: bool) -> list[Figure]:
    root = projects.collection_project(tmp / "collection")
    results = [child("collect", root, cwd=tmp) for _ in range(runs)]
    for r in results:
        if r["trials"] != projects.COMPONENTS * projects.PARAMETRIZATIONS:
            raise WorkloadError(f"collected {r['trials']} trials, expected 10,000")
    # The console script beside this interpreter: a version manager's shim (pyenv) would add its own start-up.
    script = Path(sys.executable).with_name("machinable")
    cli = [str(script)] if script.exists() else [sys.executable, "-m", "machinable"]
    cli += ["--collect-only", "-q"]
    walls = [wall(cli, root) for _ in range(runs)]
    seconds = [r["seconds"] for r in results]
    rss = [r["maxrss_mb"] for r in results]
    after_import = median([r["rss_after_import_mb"] for r in results])
    return [
        Figure(
            "collect",
            "collect 10,000 trials (1,000 components x 10)",
            median(seconds),
            "s",
            "< 1 s",
            median(seconds) < 1.0,
            seconds,
            f"`machinable --collect-only -q`: {median(walls):.2f} s wall",
        ),
        Figure(
            "collect-memory",
            "peak memory collecting 10,000 trials",
            median(rss),
            "MB",
            "< 200 MB",
            median(rss) < 200,
            rss,
            f"ru_maxrss of the process (after import: {after_import:.0f} MB)",
        ),
    ]


def bench_sweep(runs: int, tmp: Path, quick: bool) -> list[Figure]:
    root = projects.sweep_project(tmp / "sweep")
    results = [child("sweep", root, *projects.SWEEP, cwd=tmp) for _ in range(runs)]
    for r in results:
        if r["trials"] != 10_000:
            raise WorkloadError(f"the sweep made {r['trials']} trials, expected 10,000")
    script = Path(sys.executable).with_name("machinable")
    cli = [str(script)] if script.exists() else [sys.executable, "-m", "machinable"]
    walls = [wall([*cli, "grid", *projects.SWEEP, "--collect-only", "-q"], root) for _ in range(runs)]
    seconds = [r["seconds"] for r in results]
    return [
        Figure(
            "sweep",
            "collect a command-line sweep of 10,000 trials (100 x 100)",
            median(seconds),
            "s",
            "< 1 s",
            median(seconds) < 1.0,
            seconds,
            f"`machinable grid a=range(0,100) b=range(0,100) --collect-only -q`: {median(walls):.2f} s wall",
        )
    ]


def _floor(tmp: Path, trials: int, rows: int) -> float:
    return child("floor", tmp / f"floor-{time.monotonic_ns()}", trials, rows, cwd=tmp)["seconds"]


def _interleaved(runs: int, tmp: Path, run: Callable[[], float], trials: int, rows: int) -> tuple[list, list]:
    """``runs`` times: machinable's run, then the floor's.

    Nothing is deleted until every run is done: on this machine's ext4 (mounted with ``discard``) deleting
    thousands of files slows every file created for a while after (1,000 trials x 10 rows: 0.55 s; 1.4 s right
    after deleting 3,000 trial folders; 4 s after 50,000 files).
    """
    seconds, floor = [], []
    for _ in range(runs):
        seconds.append(run())
        floor.append(_floor(tmp, trials, rows))
    return seconds, floor


def _floor_figure(name: str, value: float, floor: list[float]) -> Figure:
    return Figure(
        f"{name}-floor",
        "  floor: plain loop, one .jsonl per trial",
        median(floor),
        "s",
        "",
        None,
        floor,
        f"machinable / floor = {value / median(floor):.2f}",
    )


def bench_trivial(runs: int, tmp: Path, quick: bool) -> list[Figure]:
    root = projects.trivial_project(tmp / "trivial")
    seconds, floor = _interleaved(
        runs, tmp, lambda: child("trivial", root, 10_000, cwd=tmp)["seconds"], 10_000, 1
    )
    value = median(seconds)
    return [
        Figure(
            "trivial",
            "10,000 trivial trials, local engine, memory",
            value,
            "s",
            "< 5 s",
            value < 5.0,
            seconds,
            f"{value / 10_000 * 1e6:.0f} us/trial",
        ),
        _floor_figure("trivial", value, floor),
    ]


def bench_disk(runs: int, tmp: Path, quick: bool) -> list[Figure]:
    root = projects.trivial_project(tmp / "trivial")

    def run() -> float:
        return child("disk", root, 1000, tmp / f"results-{time.monotonic_ns()}", cwd=tmp)["seconds"]

    seconds, floor = _interleaved(runs, tmp, run, 1000, 10)
    value = median(seconds)
    return [
        Figure(
            "disk",
            "1,000 trials x 10 record rows, local disk",
            value,
            "s",
            "< 3 s",
            value < 3.0,
            seconds,
            f"{value / 1000 * 1e3:.2f} ms/trial",
        ),
        _floor_figure("disk", value, floor),
        _peers(runs, tmp, root, quick),
    ]


def _peers(runs: int, tmp: Path, root: Path, quick: bool) -> Figure:
    """The marginal cost per trial of the peers' workload (issue 17: within 3x of the plain loop), machinable
    and the floor interleaved: the difference between a small and a large execution, per trial."""
    sizes = (200, 1000) if quick else (500, 2500)
    ours, floors = [], []
    for _ in range(runs):
        got = child("peers", root, tmp / f"peers-{time.monotonic_ns()}", *sizes, cwd=tmp)["seconds"]
        ours.append((got[1] - got[0]) / (sizes[1] - sizes[0]) * 1e6)
        base = child("peers_floor", tmp / f"peers-floor-{time.monotonic_ns()}", *sizes, cwd=tmp)["seconds"]
        floors.append((base[1] - base[0]) / (sizes[1] - sizes[0]) * 1e6)
    value, floor = median(ours), median(floors)
    return Figure(
        "peers-per-trial",
        "peers' workload, marginal cost per trial (local disk)",
        value / floor,
        "x",
        "<= 3x the floor",
        value / floor <= 3.0,
        [o / f for o, f in zip(ours, floors, strict=True)],
        f"machinable {value:.0f} us/trial, floor (seeded plain loop, one .jsonl per trial) {floor:.0f} us/trial",
    )


def bench_engines(runs: int, tmp: Path, quick: bool) -> list[Figure]:
    runs = min(runs, 2) if quick else runs  # each run starts a Ray: ~15 s
    speed = [child("speedup", 4, cwd=tmp) for _ in range(runs)]
    local = median([s["local"] for s in speed])
    trials = 50 if quick else 200
    over = [child("overhead", trials, cwd=tmp) for _ in range(runs)]
    local_ms = median([o["local"] for o in over])
    figures = []
    for engine, limit in (("process", 20.0), ("ray", 50.0)):
        wall_ = median([s[engine] for s in speed])
        figures.append(
            Figure(
                f"{engine}-speedup",
                f"{engine} engine speed-up, 4 x 1 s CPU, 2 at a time",
                local / wall_,
                "x",
                ">= 1.8x",
                local / wall_ >= 1.8,
                [s["local"] / s[engine] for s in speed],
                f"local {local:.2f} s, {engine} {wall_:.2f} s"
                + (_ray_note(speed) if engine == "ray" else ""),
            )
        )
        extra = [o[engine] - o["local"] for o in over]
        figures.append(
            Figure(
                f"{engine}-overhead",
                f"{engine} engine overhead per trial",
                median(extra),
                "ms",
                f"< {limit:.0f} ms",
                median(extra) < limit,
                extra,
                f"{trials} trivial trials one at a time, minus local ({local_ms:.2f} ms)",
            )
        )
    figures.append(_pooled(runs, tmp))
    return figures


def _pooled(runs: int, tmp: Path) -> Figure:
    """The process engine where trials use torch's OpenMP pool, after the controller used it (a notebook)."""
    if importlib.util.find_spec("torch") is None:
        return Figure(
            "process-pooled-speedup",
            "process engine speed-up, torch trials",
            None,
            "x",
            ">= 1.8x",
            None,
            note="torch is not installed (pip install -e '.[test]')",
        )
    pooled = [child("pooled", 4, cwd=tmp) for _ in range(runs)]
    local, ours = median([p["local"] for p in pooled]), median([p["process"] for p in pooled])
    unbudgeted, first = median([p["unbudgeted"] for p in pooled]), median([p["first"] for p in pooled])
    return Figure(
        "process-pooled-speedup",
        "process engine speed-up, 4 x 2 s torch (OpenMP), 2 at a time",
        local / ours,
        "x",
        ">= 1.8x",
        local / ours >= 1.8,
        [p["local"] / p["process"] for p in pooled],
        f"local {local:.2f} s, process:2 {ours:.2f} s; without a thread budget {unbudgeted:.2f} s "
        f"({local / unbudgeted:.2f}x); first process run {first:.2f} s (the fork server imports torch)",
    )


def _ray_note(speed: list[dict[str, Any]]) -> str:
    again = median([s["ray_again"] for s in speed])
    init = median([s["ray_start"] for s in speed])
    workers = median([s["workers_start"] for s in speed])
    return f" (next run {again:.2f} s); not counted: ray.init {init:.1f} s + its workers {workers:.1f} s"


def _cli() -> list[str]:
    # The console script beside this interpreter: a version manager's shim (pyenv) would add its own start-up.
    script = Path(sys.executable).with_name("machinable")
    return [str(script)] if script.exists() else [sys.executable, "-m", "machinable"]


def _try_wall(command: list[str], cwd: Path) -> float | str:
    """Wall time of ``command``, or why it failed (a note must not fail the group)."""
    try:
        return wall(command, cwd)
    except WorkloadError as exc:
        return str(exc).strip().splitlines()[-1][:120]


def _wall_note(label: str, walls: list[float | str]) -> str:
    times = [w for w in walls if isinstance(w, float)]
    if times:
        return f"{label}: {median(times):.2f} s wall"
    return f"{label} failed: {walls[0] if walls else 'not run'}"


def _ratio(value: float, floor: list[float]) -> str:
    return f"machinable / floor = {value / median(floor):.1f}"


SHOW_TRIALS, FRAME_EXECUTIONS, FRAME_TRIALS = 10_000, 100, 1000


def bench_results(runs: int, tmp: Path, quick: bool) -> list[Figure]:
    root = projects.results_project(tmp / "results-project")
    one = tmp / "results-one"
    made = child("results_storage", root, one, SHOW_TRIALS, cwd=tmp)
    [execution_id] = made["ids"]
    many = tmp / "results-many"
    copied = child("results_storage", root, many, FRAME_TRIALS, FRAME_EXECUTIONS, cwd=tmp)

    shows, floors, walls = [], [], []
    for _ in range(runs):
        shows.append(child("show", one, execution_id, cwd=tmp))
        floors.append(child("jsonl_floor", one / execution_id / "index.jsonl", cwd=tmp)["seconds"])
        walls.append(_try_wall([*_cli(), "show", execution_id, "--storage", str(one)], tmp))
    for r in shows:
        if r["trials"] != SHOW_TRIALS:
            raise WorkloadError(f"show read {r['trials']} trials, expected {SHOW_TRIALS}")
    show_value = median([r["seconds"] for r in shows])
    computed = "table" if shows[0]["table"] else "to_records()"

    frames, frame_floors = [], []
    for _ in range(runs):
        frames.append(child("frames", many, cwd=tmp))
        frame_floors.append(child("frames_floor", many, cwd=tmp)["seconds"])
    expected = FRAME_EXECUTIONS * FRAME_TRIALS
    for r in frames:
        if (r["rows"], r["executions"]) != (expected, FRAME_EXECUTIONS):
            raise WorkloadError(f"to_pandas gave {r['rows']} rows of {r['executions']} executions")
    frame_value = median([r["seconds"] for r in frames])

    s3 = [child("show_s3", one, execution_id, "1" if n == 0 else "0", cwd=tmp) for n in range(runs)]
    s3_value = median([r["seconds"] for r in s3])
    s3_floor = [r["floor"] for r in s3]
    s3_cli = s3[0]["cli"]
    s3_note = (
        f"`machinable show ID --storage s3://...`: {s3_cli:.2f} s wall (one run)"
        if s3_cli is not None
        else f"`machinable show` on S3: {s3[0]['cli_error']}"
    )
    return [
        Figure(
            "show",
            "show: results of 1 execution x 10,000 trials, local disk",
            show_value,
            "s",
            "< 1 s",
            show_value < 1.0,
            [r["seconds"] for r in shows],
            f"results() {median([r['read'] for r in shows]):.2f} s + {computed}; "
            f"to_records() {median([r['to_records'] for r in shows]):.2f} s; "
            + _wall_note("`machinable show ID --storage DIR`", walls),
        ),
        Figure(
            "show-floor",
            "  floor: read + parse one JSON Lines file of 10,000 lines",
            median(floors),
            "s",
            "",
            None,
            floors,
            _ratio(show_value, floors),
        ),
        Figure(
            "to-pandas",
            "to_pandas(): 100 executions x 1,000 trials, local disk",
            frame_value,
            "s",
            "< 3 s",
            frame_value < 3.0,
            [r["seconds"] for r in frames],
            f"{frames[0]['rows']:,} rows x {frames[0]['columns']} columns; setup: 1 execution "
            f"{copied['execute_seconds']:.1f} s + {FRAME_EXECUTIONS - 1} copies {copied['copy_seconds']:.1f} s",
        ),
        Figure(
            "to-pandas-floor",
            "  floor: parse 100 index.jsonl files into one DataFrame",
            median(frame_floors),
            "s",
            "",
            None,
            frame_floors,
            _ratio(frame_value, frame_floors),
        ),
        Figure(
            "show-s3",
            "show: results of 1 execution x 10,000 trials, S3 (moto)",
            s3_value,
            "s",
            "< 10 s",
            s3_value < 10.0,
            [r["seconds"] for r in s3],
            f"results() {median([r['read'] for r in s3]):.2f} s + {computed}; " + s3_note,
        ),
        Figure(
            "show-s3-floor",
            "  floor: one GET of the 10,000-line index.jsonl + parse",
            median(s3_floor),
            "s",
            "",
            None,
            s3_floor,
            _ratio(s3_value, s3_floor),
        ),
    ]


REPORT_TRIALS = 1000


def bench_report(runs: int, tmp: Path, quick: bool) -> list[Figure]:
    root = projects.report_project(tmp / "report-project")
    storage = tmp / "report-results"
    made = child("report_storage", root, storage, REPORT_TRIALS, cwd=tmp)
    expected = REPORT_TRIALS * projects.REPORT_ROWS
    if (made["trials"], made["rows"]) != (REPORT_TRIALS, expected):
        raise WorkloadError(
            f"the setup made {made['trials']} trials, {made['rows']} rows; expected {expected}"
        )
    results, walls = [], []
    for n in range(runs):
        results.append(child("report", storage, made["id"], tmp / f"report-{n}.html", cwd=tmp))
        output = tmp / f"report-cli-{n}.html"
        walls.append(
            _try_wall([*_cli(), "report", made["id"], "--storage", str(storage), "-o", str(output)], tmp)
        )
    seconds = [r["seconds"] for r in results]
    sizes = [r["mb"] for r in results]
    value, size = median(seconds), median(sizes)
    return [
        Figure(
            "report",
            "report: 1 execution x 1,000 trials x 1,000 rows, local disk",
            value,
            "s",
            "< 10 s",
            value < 10.0,
            seconds,
            f"{results[0]['plots']} plots; peak memory {median([r['maxrss_mb'] for r in results]):.0f} MB; "
            + _wall_note("`machinable report ID --storage DIR`", walls)
            + f"; setup: ml.execute {made['seconds']:.1f} s",
        ),
        Figure(
            "report-size",
            "  its HTML file (plotly.js inline)",
            size,
            "MB",
            "< 10 MB",
            size < 10.0,
            sizes,
        ),
    ]


def _slurm_running() -> str | None:
    """None when a Slurm answers here (``sinfo``), else why not."""
    try:
        proc = subprocess.run(["sinfo", "-h", "-o", "%t"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"no Slurm here ({exc})"
    if proc.returncode != 0 or not proc.stdout.strip():
        return "no Slurm running (sinfo: " + (proc.stderr.strip().splitlines() or ["no nodes"])[-1] + ")"
    return None


def bench_slurm(runs: int, tmp: Path, quick: bool) -> list[Figure]:
    """200 trivial trials through the running Slurm with max_parallel=2 (the engine's pull workers), and the
    same trials as one job each; skipped when no Slurm answers (set SLURM_CONF to a cluster's slurm.conf)."""
    why = _slurm_running()
    label = "slurm: 200 trivial trials, max_parallel=2"
    if why is not None:
        return [Figure("slurm", label, None, "s", "< 30 s", None, note=f"skipped: {why}")]
    root = projects.trivial_project(tmp / "slurm-project")
    runs = min(runs, 2) if quick else runs
    arrays = [
        child("slurm", root, tmp / f"slurm-{time.monotonic_ns()}", 200, 2, "arrays", cwd=tmp)["seconds"]
        for _ in range(runs)
    ]
    per_trial = child("slurm", root, tmp / f"slurm-{time.monotonic_ns()}", 200, 2, "per-trial", cwd=tmp)
    value = median(arrays)
    return [
        Figure(
            "slurm", label, value, "s", "< 30 s", value < 30.0, arrays, f"{value / 200 * 1e3:.0f} ms/trial"
        ),
        Figure(
            "slurm-per-trial",
            "  the same, one Slurm job per trial",
            per_trial["seconds"],
            "s",
            "",
            None,
            [per_trial["seconds"]],
            f"{per_trial['seconds'] / value:.1f}x the job arrays' time",
        ),
    ]


def _git_project(root: Path) -> Path:
    """The trivial project as a git work tree with one uncommitted change: provenance runs ``git diff`` too."""
    projects.trivial_project(root)
    git = ["git", "-c", "user.name=bench", "-c", "user.email=bench@example.com"]
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "bench"]):
        subprocess.run([*git, *args], cwd=root, check=True, capture_output=True)
    with (root / "noop.py").open("a") as f:
        f.write("# an uncommitted change\n")
    return root


def bench_provenance(runs: int, tmp: Path, quick: bool) -> list[Figure]:
    root = _git_project(tmp / "provenance-project")
    found = [
        child("provenance", root, tmp / f"provenance-{time.monotonic_ns()}", cwd=tmp) for _ in range(runs)
    ]
    figures = []
    for key, name, label in (
        ("cold_ms", "provenance-cold", "provenance: collect(), first call in a fresh interpreter"),
        ("cached_ms", "provenance-cached", "  the same, cached (Python, packages, machine, GPUs, remote)"),
        ("added_ms", "provenance-added", "  added to a 1-trial execution vs -p no:provenance"),
    ):
        samples = [f[key] for f in found]
        value = median(samples)
        figures.append(Figure(name, label, value, "ms", "< 50 ms", value < 50, samples))
    figures[0].note = "a git work tree with an uncommitted change: git status + git diff"
    return figures


def bench_plan(runs: int, tmp: Path, quick: bool) -> list[Figure]:
    """``machinable plan`` of the 10,000-trial sweep against a storage of 100,000 stored trials (the command's
    wall time, start-up included); and what ``settings: code_identity: executed`` costs per trial."""
    root = projects.sweep_project(tmp / "plan")
    storage = tmp / "plan-storage"
    child("plan_storage", root, storage, 10 if quick else 100, 1000, cwd=tmp)
    command = [*_cli(), "plan", "grid", *projects.SWEEP, "--storage", str(storage), "--json"]
    walls = [wall(command, root) for _ in range(runs)]
    trivial = projects.trivial_project(tmp / "code-identity")
    n = 1000
    imported = [child("code_identity", trivial, "imported", n, cwd=tmp)["seconds"] for _ in range(runs)]
    executed = [child("code_identity", trivial, "executed", n, cwd=tmp)["seconds"] for _ in range(runs)]
    extra = [(e - i) / n * 1e3 for e, i in zip(executed, imported, strict=True)]
    stored = "10,000" if quick else "100,000"
    return [
        Figure(
            "plan",
            f"machinable plan: 10,000 collected trials against {stored} stored",
            median(walls),
            "s",
            "< 2 s",
            median(walls) < 2.0,
            walls,
            "command wall time, start-up included",
        ),
        Figure(
            "code-identity-executed",
            "settings: code_identity: executed, added per trial",
            median(extra),
            "ms",
            "",
            None,
            extra,
            f"{n} trivial trials, memory storage: imported {median(imported):.2f} s, executed {median(executed):.2f} s",
        ),
    ]


BENCHES: dict[str, Callable[[int, Path, bool], list[Figure]]] = {
    "import": bench_import,
    "collect": bench_collect,
    "sweep": bench_sweep,
    "trivial": bench_trivial,
    "disk": bench_disk,
    "engines": bench_engines,
    "results": bench_results,
    "report": bench_report,
    "slurm": bench_slurm,
    "provenance": bench_provenance,
    "plan": bench_plan,
}


# -- report --------------------------------------------------------------------------------------------------


def _fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "ms":
        return f"{value:.1f} ms"
    if unit == "s":
        return f"{value:.2f} s"
    if unit == "MB":
        return f"{value:.1f} MB" if value < 20 else f"{value:.0f} MB"
    if unit == "x":
        return f"{value:.2f}x"
    return f"{value:g}"


def table(figures: list[Figure]) -> str:
    rows = [("figure", "median", "target", "", "note")]
    for f in figures:
        status = "" if f.ok is None else ("ok" if f.ok else "MISSED")
        rows.append((f.label, _fmt(f.value, f.unit), f.target, status, f.note))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = []
    for i, r in enumerate(rows):
        lines.append(
            "  ".join(
                c.ljust(w) if j != 1 else c.rjust(w) for j, (c, w) in enumerate(zip(r, widths, strict=False))
            )
            + "  "
            + r[4]
        )
        if i == 0:
            lines.append("-" * (sum(widths) + 8 + len("note")))
    return "\n".join(line.rstrip() for line in lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python benchmarks/run.py",
        description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--quick", action="store_true", help="fewer runs (3; engines 2) and fewer overhead trials"
    )
    parser.add_argument(
        "--runs", type=int, default=None, help="runs per figure, each in a fresh process (default 5)"
    )
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="NAME",
        help=f"only these groups (repeat or comma-separate): {', '.join(GROUPS)}",
    )
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON to PATH")
    args = parser.parse_args(argv)
    args.only = [n.strip() for item in args.only for n in item.split(",") if n.strip()] or list(GROUPS)
    unknown = [n for n in args.only if n not in GROUPS]
    if unknown:
        parser.error(f"unknown --only {', '.join(unknown)}; choose from {', '.join(GROUPS)}")
    if args.runs is None:
        args.runs = 3 if args.quick else 5
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    figures: list[Figure] = []
    failures: list[str] = []
    machine = f"{os.cpu_count()} CPUs, Python {platform.python_version()}"
    print(f"machinable benchmarks: {args.runs} runs per figure (median), {machine}")
    with tempfile.TemporaryDirectory(prefix="machinable-bench-") as folder:
        tmp = Path(folder)
        for name in args.only:
            start = time.perf_counter()
            try:
                found = BENCHES[name](args.runs, tmp, args.quick)
            except WorkloadError as exc:
                failures.append(str(exc))
                print(f"  {name}: FAILED\n{exc}", file=sys.stderr)
                continue
            figures.extend(found)
            print(f"  {name}: {time.perf_counter() - start:.1f} s", file=sys.stderr)
    print()
    print(table(figures))
    missed = [f for f in figures if f.ok is False]
    if args.json:
        report = {
            "date": datetime.date.today().isoformat(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "runs": args.runs,
            "quick": args.quick,
            "figures": [asdict(f) for f in figures],
            "failures": failures,
        }
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    if failures:
        print(f"\n{len(failures)} workload(s) failed")
        return 3
    if missed:
        print(f"\nmissed: {', '.join(f.name for f in missed)}")
        return 1
    print("\nevery target met")
    return 0


if __name__ == "__main__":
    sys.exit(main())
