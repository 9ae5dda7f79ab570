"""The test Slurm of tests/fixtures_slurm.py is a working cluster: batch jobs run, arrays are throttled,
scancel ends jobs, and the time-limit warning signal reaches a job before its limit."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.fixtures_slurm import SlurmCluster

pytestmark = pytest.mark.slow

HANDLER = """\
import signal, sys, time
from pathlib import Path

started = time.time()
Path("started").write_text(str(started))

def warned(signum, frame):
    Path("warned.tmp").write_text(f"{time.time() - started:.1f}")
    Path("warned.tmp").rename("warned")
    sys.exit(0)

signal.signal(signal.SIGUSR2, warned)
while True:
    time.sleep(0.1)
"""


def sbatch(*args: str, cwd: Path) -> str:
    """Submit; the job id. Output goes to cwd, not to the folder pytest runs in."""
    done = subprocess.run(
        ["sbatch", "--parsable", f"--chdir={cwd}", f"--output={cwd}/slurm-%j.out", *args],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return done.stdout.strip().split(";")[0]


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> float:
    """Seconds until condition holds."""
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"{what}: not within {timeout:.0f} s")
        time.sleep(0.1)
    return time.monotonic() - start


def job_state(job: str) -> str:
    out = subprocess.run(
        ["scontrol", "show", "job", job], capture_output=True, text=True, timeout=30, check=True
    ).stdout
    return out.split("JobState=")[1].split()[0]


def test_a_batch_job_runs_and_sees_its_slurm_environment(slurm: SlurmCluster, tmp_path: Path):
    # written under another name and renamed, so the test never reads half a file
    job = sbatch("--wrap", "env > env.tmp && mv env.tmp env", cwd=tmp_path)
    wait_for((tmp_path / "env").exists, 30, "the job's file")
    env = dict(line.split("=", 1) for line in (tmp_path / "env").read_text().splitlines() if "=" in line)
    assert env["SLURM_JOB_ID"] == job
    assert env["SLURMD_NODENAME"] == slurm.node
    assert env["SLURM_JOB_PARTITION"] == slurm.partition
    assert env["SLURM_CONF"] == str(slurm.conf)
    assert "SLURM_ARRAY_TASK_ID" not in env


def test_an_array_runs_every_task_and_at_most_two_at_once(slurm: SlurmCluster, tmp_path: Path):
    job = sbatch(
        "--array=0-3%2",
        "--wrap",
        'id=$SLURM_ARRAY_TASK_ID; echo "$SLURM_ARRAY_JOB_ID $(date +%s.%N)" > start.$id; sleep 1; '
        "date +%s.%N > end.tmp.$id && mv end.tmp.$id end.$id",
        cwd=tmp_path,
    )
    running, reasons = [], set()

    def finished() -> bool:
        lines = subprocess.run(
            ["squeue", "-h", "-j", job, "-o", "%i %T %r"], capture_output=True, text=True, timeout=30
        ).stdout.splitlines()
        running.append(sum(line.split()[1] == "RUNNING" for line in lines))
        reasons.update(line.split()[2] for line in lines if line.split()[1] == "PENDING")
        return len(list(tmp_path.glob("end.[0-9]"))) == 4

    wait_for(finished, 60, "all four array tasks")
    spans = []
    for task in range(4):
        array_job, started = (tmp_path / f"start.{task}").read_text().split()
        assert array_job == job
        spans.append((float(started), float((tmp_path / f"end.{task}").read_text())))
    overlaps = [sum(s <= start < e for s, e in spans) for start, _ in spans]
    assert max(overlaps) <= 2 and max(running) <= 2
    # with 2 CPUs the CPUs alone would allow no more than 2: the throttle has to be seen holding tasks back
    assert "JobArrayTaskLimit" in reasons


def test_scancel_ends_a_running_job(slurm: SlurmCluster, tmp_path: Path):
    # exec: the pid written is the sleep's, the process scancel has to end
    job = sbatch("--wrap", "echo $$ > pid.tmp && mv pid.tmp pid && exec sleep 300", cwd=tmp_path)
    wait_for((tmp_path / "pid").exists, 30, "the job's start")
    pid = int((tmp_path / "pid").read_text())
    subprocess.run(["scancel", job], check=True, timeout=30)
    took = wait_for(lambda: not any(line.split()[0] == job for line in slurm.queue()), 30, "the job's end")
    print(f"\nscancel to job gone from squeue: {took:.1f} s")
    assert job_state(job) == "CANCELLED"
    stat = Path(f"/proc/{pid}/stat")
    assert not stat.exists() or stat.read_text().rsplit(")", 1)[1].split()[0] == "Z"


def test_scancel_signal_reaches_the_batch_program_at_once(slurm: SlurmCluster, tmp_path: Path):
    (tmp_path / "handler.py").write_text(HANDLER)
    job = sbatch("--wrap", f"exec {sys.executable} handler.py", cwd=tmp_path)
    wait_for((tmp_path / "started").exists, 30, "the job's start")
    subprocess.run(["scancel", "--signal=USR2", "--batch", job], check=True, timeout=30)
    took = wait_for((tmp_path / "warned").exists, 10, "SIGUSR2 from scancel")
    print(f"\nscancel --signal=USR2 --batch to handler: {took:.1f} s")


def test_the_time_limit_warning_signal_arrives_before_the_limit(slurm: SlurmCluster, tmp_path: Path):
    (tmp_path / "handler.py").write_text(HANDLER)
    # B: sends the signal to the batch shell, which exec made the Python program; without it only srun
    # steps would get it
    job = sbatch(
        "--time=1", "--signal=B:USR2@30", "--wrap", f"exec {sys.executable} handler.py", cwd=tmp_path
    )
    # slurmctld checks time limits every 30 s: the signal comes at the first check after the start
    wait_for((tmp_path / "warned").exists, 100, "SIGUSR2 before the time limit")
    after = float((tmp_path / "warned").read_text())
    print(f"\n--time=1 --signal=B:USR2@30: signal {after:.1f} s after the job started")
    assert after < 60
    wait_for(lambda: job_state(job) != "RUNNING", 30, "the job's end")
    assert job_state(job) in ("COMPLETING", "COMPLETED")
