"""What one measurement does, run by ``benchmarks/run.py`` in a fresh interpreter each time:
``python benchmarks/workloads.py NAME ARG...`` prints one JSON object (the figures) as its last line.

Every workload times only its own work (``time.perf_counter``); start-up and ``import machinable`` are
measured by the ``import`` figure of run.py, never here.
"""

from __future__ import annotations

import json
import os
import resource
import statistics
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


def peers(project: str, storage: str, *sizes: str) -> dict[str, Any]:
    """The peers' workload on local disk, one execution per size: the seconds of each (the marginal cost per
    trial is the difference over the difference in trials)."""
    seconds = [_execute("peers", project, size, f"{storage}-{size}")[1] for size in sizes]
    return {"seconds": seconds, "sizes": [int(n) for n in sizes]}


def peers_floor(folder: str, *sizes: str) -> dict[str, Any]:
    """The floor of ``peers``: a plain loop seeding ``random`` per trial and writing its 10 steps to one JSON
    Lines file per trial, each row flushed (what a killed process may not lose)."""
    import random

    seconds = []
    for size in sizes:
        target = os.path.join(folder, size)
        os.makedirs(target, exist_ok=True)
        start = time.perf_counter()
        for n in range(int(size)):
            random.seed(n)
            with open(os.path.join(target, f"{n}.jsonl"), "w") as f:
                for step in range(10):
                    f.write(json.dumps({"step": step, "loss": random.random(), "_time": time.time()}) + "\n")
                    f.flush()
        seconds.append(time.perf_counter() - start)
    return {"seconds": seconds, "sizes": [int(n) for n in sizes]}


def slurm(project: str, storage: str, trials: str, max_parallel: str, mode: str) -> dict[str, Any]:
    """``trials`` trivial trials through the running Slurm: ``arrays`` (the engine: pull workers in one job
    array of ``max_parallel`` tasks) or ``per-trial`` (one job per trial, as launchers that map a trial to a
    job do: the same engine submitting each trial as its own batch)."""
    import machinable as ml
    from machinable.execution.engines.slurm.engine import SlurmEngine

    class PerTrial(SlurmEngine):
        def _submit(self, submission: Any, specs: list[Any], context: Any) -> None:
            for spec in specs:
                super()._submit(submission, [spec], context)

    factory = SlurmEngine if mode == "arrays" else PerTrial
    engine = factory(max_parallel=int(max_parallel))
    task = ml.Task().component("noop").repeat(int(trials))
    start = time.perf_counter()
    execution = ml.execute(task, storage=storage, engine=engine, project=project, echo=False)
    seconds = time.perf_counter() - start
    _check(execution)
    return {"seconds": seconds, "trials": len(execution.trials)}


def provenance(project: str, storage: str, rounds: str = "20") -> dict[str, Any]:
    """What provenance costs, in ms: ``collect()`` of ``project`` (a dirty git work tree) on its first call in
    this interpreter and cached (median of ``rounds``), and what it adds to an execution of one ``noop`` trial on
    local disk: with the plugin minus with ``-p no:provenance`` (interleaved pairs, median)."""
    import machinable as ml
    from machinable.execution.provenance import collect
    from machinable.plugins import create_plugin_manager

    # As in a run: the plugin managers load the entry points (importlib.metadata) before provenance is collected.
    with_pm, without_pm = create_plugin_manager(), create_plugin_manager(disabled=["provenance"])
    start = time.perf_counter()
    collect(project)
    cold = time.perf_counter() - start
    cached = []
    for _ in range(int(rounds)):
        start = time.perf_counter()
        collect(project)
        cached.append(time.perf_counter() - start)

    def run(pm: Any, n: int) -> float:
        start = time.perf_counter()
        execution = ml.execute("noop", storage=f"{storage}-{n}", project=project, plugins=pm, echo=False)
        seconds = time.perf_counter() - start
        _check(execution)
        return seconds

    added = [run(with_pm, 2 * n) - run(without_pm, 2 * n + 1) for n in range(int(rounds))]
    return {
        "cold_ms": cold * 1e3,
        "cached_ms": statistics.median(cached) * 1e3,
        "added_ms": statistics.median(added) * 1e3,
    }


def plan_storage(project: str, storage: str, executions: str, per_execution: str) -> dict[str, Any]:
    """A storage holding ``executions`` x ``per_execution`` finished trials of ``grid`` (benchmarks/projects.py),
    written as machinable writes them at the end of an execution (execution.json, index.jsonl, identities.json):
    every configuration of the 100 x 100 sweep, several times, each time with another seed. Not timed: it sets
    up the ``plan`` figure."""
    import random

    from machinable import ids
    from machinable.collection.fingerprint import Fingerprints
    from machinable.storage import ExecutionWriter, open_storage
    from machinable.storage.identities import write_identities
    from machinable.storage.index import result_entry
    from machinable.trials import TrialResult

    code = Fingerprints(project).of_module("grid")
    location = open_storage(storage)
    rng = random.Random(1)
    configs = [{"a": a, "b": b} for a in range(100) for b in range(100)]
    n = 0
    for e in range(int(executions)):
        execution_id = ids.execution_id(e + 1)
        writer = ExecutionWriter(location, execution_id, execution_id)
        results = []
        for _ in range(int(per_execution)):
            config = configs[n % len(configs)]
            n += 1
            result = TrialResult(
                node_id=f"grid[a={config['a']}-b={config['b']}]",
                uid=f"{n:012x}",
                component="grid",
                config=config,
                versions=(),
                seed=rng.randrange(2**31),
                status="passed",
                records=[{"ab": 0}],
                started=1.0 + n,
                finished=2.0 + n,
                code=code,
            )
            writer.add_to_index(result_entry(result))
            results.append(result)
        writer.close_index()
        writer.write_execution(
            {
                "id": execution_id,
                "seed": e + 1,
                "started": float(e),
                "finished": e + 1.0,
                "trials": [r.uid for r in results],
            }
        )
        write_identities(writer, execution_id, float(e), results)
    return {"trials": n}


def code_identity(project: str, mode: str, trials: str) -> dict[str, Any]:
    """``trials`` trivial trials (memory storage) with ``settings: code_identity: MODE``: seconds."""
    import machinable as ml
    from machinable.config.project import Project

    proj = Project(project)
    proj.settings["code_identity"] = mode
    task = ml.Task().component("noop").repeat(int(trials))
    start = time.perf_counter()
    execution = ml.execute(task, engine="local", project=proj, echo=False)
    seconds = time.perf_counter() - start
    _check(execution)
    return {"seconds": seconds, "trials": len(execution.trials)}


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


def pooled(trials: str = "4") -> dict[str, Any]:
    """4 torch trials (a small MLP, ~2 s) on local and process:2 after the same task ran on local once in this
    controller (a notebook's sequence: torch and its OpenMP pool are loaded here): wall times in s. ``first`` is the
    first process run (the fork server starts and imports what the controller imported), timed apart;
    ``unbudgeted`` is process:2 with ``OMP_NUM_THREADS`` set to every CPU (the user's setting wins, so each worker
    runs as many threads as there are CPUs: what the engine did before it gave trials a thread budget)."""
    bench = _engine_bench()
    project = bench.make_project()
    train = bench.ml.Task().component("train").repeat(int(trials))
    bench.timed(train, "local", project)
    walls = {"local": bench.timed(train, "local", project), "first": bench.timed(train, "process:2", project)}
    walls["process"] = bench.timed(train, "process:2", project)
    os.environ["OMP_NUM_THREADS"] = str(os.cpu_count() or 1)
    try:
        walls["unbudgeted"] = bench.timed(train, "process:2", project)
    finally:
        del os.environ["OMP_NUM_THREADS"]
    return walls


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


# -- results: reading what was stored (``show``, ``to_pandas``) ---------------------------------------------


def results_storage(project: str, storage: str, trials: str, copies: str = "1") -> dict[str, Any]:
    """Setup of the ``results`` group, not a figure: the executions its figures read, on local disk.

    ``ml.execute`` runs ``trials`` trials of ``fit`` (benchmarks/projects.py: one record row each) once, seed
    42. With ``copies`` > 1 the execution's folder is then copied ``copies - 1`` times under new execution ids
    (the ids of seeds 1001, 1002, ...) instead of running ``ml.execute`` again (100 executions x 1,000 trials
    would take ~100 s). A copy is a new folder: ``execution.json`` written anew with the copy's ``id``,
    ``seed``, ``started`` (one second earlier per copy, so that the order is fixed) and the plan's
    ``execution_id``; ``index.jsonl`` and ``code.zip`` hard-linked; each trial folder a symbolic link to the
    original's (reading results never opens them: rows come from ``execution.json`` and ``index.jsonl``; and
    deleting 300,000 copied trial files took ~50 s on the reference machine's disk, 99,000 links < 1 s).
    """
    import machinable as ml
    from machinable import ids

    sys.path.insert(0, str(HERE))
    import projects

    task = ml.Task().component("fit").repeat(int(trials) // projects.FIT_RATES)
    start = time.perf_counter()
    execution = ml.execute(task, storage=storage, seed=42, engine="local", project=project, echo=False)
    made = time.perf_counter() - start
    _check(execution)
    source = Path(storage) / execution.folder
    info = json.loads((source / "execution.json").read_text())
    folders = [execution.folder]
    start = time.perf_counter()
    for n in range(1, int(copies)):
        seed = 1000 + n
        new_id = ids.execution_id(seed)
        target = Path(storage) / new_id
        target.mkdir()
        for entry in os.scandir(source):
            if entry.is_dir():
                os.symlink(os.path.abspath(entry.path), target / entry.name, target_is_directory=True)
            elif entry.name != "execution.json":
                os.link(entry.path, target / entry.name)
        plan = [{**spec, "execution_id": new_id} for spec in info.get("plan") or []]
        started = info["started"] - n
        copy = {**info, "id": new_id, "seed": seed, "started": started, "plan": plan}
        (target / "execution.json").write_text(json.dumps(copy))
        folders.append(new_id)
    return {
        "ids": folders,
        "trials": len(execution.trials),
        "execute_seconds": made,
        "copy_seconds": time.perf_counter() - start,
    }


def _results_table() -> Any:
    """``machinable.reporting.results.table`` (the grouped table ``show`` prints); None if there is none."""
    try:
        from machinable.reporting.results import table
    except ImportError:
        return None
    return table


def _read_results(target: Any, execution_id: str) -> dict[str, Any]:
    """What ``machinable show ID`` computes, timed: ``StoredExecution.results()`` and the grouped results
    table (``to_records()`` where there is no table); ``to_records()`` is also timed on its own."""
    from machinable.storage import Storage

    table = _results_table()
    start = time.perf_counter()
    stored = Storage(target).get(execution_id)
    entries = stored.results()
    read = time.perf_counter() - start
    rows = len(table(entries).rows) if table is not None else len(stored.to_records())
    seconds = time.perf_counter() - start
    start = time.perf_counter()
    records = Storage(target).get(execution_id).to_records()
    records_seconds = time.perf_counter() - start
    if len(entries) != len(records) or any(e.get("status") != "passed" for e in entries):
        raise SystemExit(f"expected {len(records)} passed trials, read {len(entries)}")
    return {
        "seconds": seconds,
        "read": read,
        "trials": len(entries),
        "rows": rows,
        "table": table is not None,
        "to_records": records_seconds,
    }


def show(storage: str, execution_id: str) -> dict[str, Any]:
    """``show`` of one execution on local disk (see :func:`_read_results`)."""
    import machinable  # noqa: F401  (imported before the clock starts)

    return _read_results(storage, execution_id)


def jsonl_floor(path: str) -> dict[str, Any]:
    """The floor of ``show``: read one JSON Lines file (the execution's ``index.jsonl``), parse each line."""
    start = time.perf_counter()
    with open(path, "rb") as f:
        rows = [json.loads(line) for line in f.read().splitlines() if line]
    return {"seconds": time.perf_counter() - start, "lines": len(rows)}


def frames(storage: str) -> dict[str, Any]:
    """``ml.Storage(storage).to_pandas()`` over every execution of the storage."""
    import pandas  # noqa: F401  (imported before the clock starts, as a notebook would have it)

    import machinable as ml

    start = time.perf_counter()
    frame = ml.Storage(storage).to_pandas()
    seconds = time.perf_counter() - start
    return {
        "seconds": seconds,
        "rows": len(frame),
        "columns": len(frame.columns),
        "executions": int(frame["execution_id"].nunique()),
    }


def frames_floor(storage: str) -> dict[str, Any]:
    """The floor of ``to_pandas``: parse each execution's ``index.jsonl``; one DataFrame of all lines."""
    import pandas

    start = time.perf_counter()
    rows = []
    for name in sorted(os.listdir(storage)):
        path = os.path.join(storage, name, "index.jsonl")
        if os.path.isfile(path):
            with open(path, "rb") as f:
                rows += [{"execution_id": name, **json.loads(line)} for line in f.read().splitlines() if line]
    frame = pandas.DataFrame(rows)
    return {"seconds": time.perf_counter() - start, "rows": len(frame)}


def report_storage(project: str, storage: str, trials: str) -> dict[str, Any]:
    """Setup of the ``report`` group, not a figure: ``trials`` trials of ``curve`` (benchmarks/projects.py:
    1,000 record rows each) by one ``ml.execute`` on local disk, seed 42."""
    import machinable as ml

    sys.path.insert(0, str(HERE))
    import projects

    task = ml.Task().component("curve").repeat(int(trials) // projects.REPORT_RATES)
    start = time.perf_counter()
    execution = ml.execute(task, storage=storage, seed=42, engine="local", project=project, echo=False)
    seconds = time.perf_counter() - start
    _check(execution)
    rows = sum(len(t.records) for t in execution.trials)
    return {"id": execution.folder, "trials": len(execution.trials), "rows": rows, "seconds": seconds}


def report(storage: str, execution_id: str, output: str) -> dict[str, Any]:
    """``ml.report`` of one execution on local disk into ``output``: reading every trial's records, the
    figures, the page, plotly's import (inside ``ml.report``) and writing the file, timed; the file's size."""
    import machinable as ml

    ml.report  # noqa: B018  (the lazy attribute resolved before the clock; plotly is not imported yet)
    start = time.perf_counter()
    path = ml.report(execution_id, output, storage=storage)
    seconds = time.perf_counter() - start
    text = path.read_text(encoding="utf-8")
    return {
        "seconds": seconds,
        "mb": os.path.getsize(path) / 1e6,
        "plots": text.count("<div class='plot'"),
        "maxrss_mb": _maxrss_mb(),
    }


S3_BUCKET, S3_KEY, S3_SECRET, S3_REGION = "machinable-bench", "bench-key", "bench-secret", "us-east-1"


def _seed_s3(endpoint: str, folder: Path, prefix: str) -> int:
    """Put every file of ``folder`` under ``prefix/<folder name>/`` in the bucket: straight into the moto
    server's backend in this process (30,000 PUTs over HTTP would take ~2 min); over HTTP if that fails."""
    import boto3

    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=S3_KEY,
        aws_secret_access_key=S3_SECRET,
        region_name=S3_REGION,
    )
    client.create_bucket(Bucket=S3_BUCKET)
    files = [p for p in folder.rglob("*") if p.is_file()]
    keys = [f"{prefix}/{folder.name}/{p.relative_to(folder).as_posix()}" for p in files]
    try:
        from moto.core import DEFAULT_ACCOUNT_ID
        from moto.s3.models import s3_backends

        backend = s3_backends[DEFAULT_ACCOUNT_ID]["aws"]
        put = backend.put_object
        for path, key in zip(files, keys, strict=True):
            put(S3_BUCKET, key, path.read_bytes())
    except (ImportError, KeyError, AttributeError):
        for path, key in zip(files, keys, strict=True):
            client.put_object(Bucket=S3_BUCKET, Key=key, Body=path.read_bytes())
    return len(files)


def show_s3(storage: str, execution_id: str, cli: str = "0", timeout: str = "60") -> dict[str, Any]:
    """``show`` of one execution on S3: a moto server started here on 127.0.0.1 (as tests/fixtures_s3.py
    does), the local execution ``storage/execution_id`` put into it (not timed), then read over HTTP as on
    local disk (:func:`_read_results`). The floor: one GET of the execution's ``index.jsonl`` (boto3), its
    lines parsed. ``cli='1'``: also the wall time of ``machinable show ID --storage s3://...`` (its own
    process, configured through the AWS environment variables); None, with ``cli_error``, when it takes longer
    than ``timeout`` seconds or fails."""
    import socket
    import subprocess

    import boto3
    from moto.server import ThreadedMotoServer

    import machinable  # noqa: F401  (imported before the clock starts)

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    try:
        objects = _seed_s3(endpoint, Path(storage) / execution_id, "results")
        target = {
            "url": f"s3://{S3_BUCKET}/results",
            "endpoint_url": endpoint,
            "key": S3_KEY,
            "secret": S3_SECRET,
            "client_kwargs": {"region_name": S3_REGION},
        }
        figures = _read_results(target, execution_id)
        client = boto3.client(
            "s3",
            endpoint_url=endpoint,
            aws_access_key_id=S3_KEY,
            aws_secret_access_key=S3_SECRET,
            region_name=S3_REGION,
        )
        client.head_bucket(Bucket=S3_BUCKET)  # the floor's connection is made before its clock starts
        start = time.perf_counter()
        body = client.get_object(Bucket=S3_BUCKET, Key=f"results/{execution_id}/index.jsonl")["Body"].read()
        lines = [json.loads(line) for line in body.splitlines() if line]
        floor_seconds = time.perf_counter() - start
        wall, cli_error = None, ""
        if cli == "1":
            env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_") and k != "MACHINABLE_MODE"}
            env.update(
                AWS_ACCESS_KEY_ID=S3_KEY,
                AWS_SECRET_ACCESS_KEY=S3_SECRET,
                AWS_DEFAULT_REGION=S3_REGION,
                AWS_ENDPOINT_URL=endpoint,
            )
            script = Path(sys.executable).with_name("machinable")
            command = [str(script)] if script.exists() else [sys.executable, "-m", "machinable"]
            command += ["show", execution_id, "--storage", target["url"]]
            start = time.perf_counter()
            try:
                done = subprocess.run(command, env=env, capture_output=True, timeout=float(timeout))
            except subprocess.TimeoutExpired:
                cli_error = f"over {float(timeout):.0f} s"
            else:
                wall = time.perf_counter() - start
                if done.returncode != 0:
                    wall, cli_error = None, f"exit {done.returncode}: {_last_line(done.stderr)}"
    finally:
        server.stop()
    return {
        **figures,
        "floor": floor_seconds,
        "floor_lines": len(lines),
        "objects": objects,
        "cli": wall,
        "cli_error": cli_error,
    }


def _last_line(data: bytes) -> str:
    lines = [line.strip() for line in data.decode("utf-8", "replace").splitlines() if line.strip()]
    return lines[-1][:200] if lines else ""


WORKLOADS = {
    f.__name__: f
    for f in (
        collect,
        sweep,
        trivial,
        disk,
        floor,
        peers,
        peers_floor,
        provenance,
        slurm,
        plan_storage,
        code_identity,
        speedup,
        pooled,
        overhead,
        results_storage,
        show,
        jsonl_floor,
        frames,
        frames_floor,
        show_s3,
        report_storage,
        report,
    )
}


def main(argv: list[str]) -> None:
    name, *args = argv
    result = WORKLOADS[name](*args)
    sys.stdout.flush()
    print("\n" + json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1:])
