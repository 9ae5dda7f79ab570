"""A real single-node Slurm for the whole test session (Slurm 22.05 from Debian 12, no systemd, run as root).

Registered from the root conftest.py (``pytest_plugins``). Tests ask for ``slurm`` (the cluster; every job
still queued or running is cancelled after the test, so nothing leaks into the next one) or ``slurm_cluster``
(the same object without that cleanup). The daemons need the Debian packages ``slurmctld slurmd slurm-client
munge`` (``scripts/install-system-deps.sh`` installs them as root) and root; without them the tests skip, or
fail when ``CI=true``.

The cluster is private to the session: its slurm.conf, state, spool and logs live in a fresh temporary folder
(``machinable-slurm-*``), /etc/slurm is never written, and controller and node daemon listen on free ports, so
a system Slurm or another session's cluster on this host does not collide with it. Daemons, clients and jobs
find the configuration through ``SLURM_CONF``, which is set in ``os.environ`` for the session, so a plain
``subprocess.run(["sbatch", ...])`` reaches this cluster. munged is shared: a running one is reused (and left
running), otherwise one is started, and stopped at the end unless another session's cluster still runs.
Clusters left behind by a session that died (their folder names an owner process that is gone) are killed and
removed when the next one starts.

Timing, as measured and as read in the 22.05 sources (src/slurmctld/controller.c, job_mgr.c, preempt.c):

* Start to an idle node takes about 0.3 s (stop about 0.2 s). A job starts within about 1 s of its submission,
  an array task within about 1 s of a slot freeing (``batch_sched_delay=0,bf_interval=1``; without them the
  first tasks of an array waited 2 s and the backfill scheduler runs only every 30 s).
* Time limits are whole minutes (``--time=0:10`` becomes 1 minute) and are enforced by a check that runs every
  30 s (``PERIODIC_TIMEOUT``, a compile-time constant; no slurm.conf setting changes it). A job is therefore
  killed 0-30 s after its limit (``OverTimeLimit=0`` adds nothing): SIGCONT and SIGTERM, then SIGKILL after
  ``KillWait`` (2 s here), and it ends as TIMEOUT (``ExitCode=0:15``).
* ``--signal=SIG@N`` is sent by that same 30 s check, at the first check where ``now + N + 30 >= end``: 0-30 s
  *earlier* than N seconds before the limit, never later. With ``--time=1 --signal=B:USR2@30`` it arrives
  0-30 s after the job starts. N is in seconds, at most 65535, and may exceed the limit (then: first check).
* Without ``B:`` the signal goes to the job *steps* only (``srun``), not to the batch script: a plain
  ``sbatch --wrap "python x.py"`` never sees it. With ``B:`` it goes to the batch shell's own pid, not its
  process group, so the script must ``exec`` the program (else the shell dies of the signal, the job ends as
  FAILED, and the program is orphaned). ``scancel --signal=USR2 --batch JOB`` delivers the same way at once,
  the quick way to test a handler (``--full`` would signal the whole process group, per the source).
* ``scancel`` of a running job: SIGCONT+SIGTERM, SIGKILL after KillWait. squeue shows it COMPLETING until its
  processes are gone (0.1 s for one that dies of SIGTERM, about 5 s for one that ignores it: KillWait plus
  proctrack/linuxproc's polling), then it is CANCELLED (``scontrol``: ``ExitCode=0:9`` after a SIGKILL).
* proctrack/linuxproc finds a job's processes through their parents, so a process orphaned to init escapes the
  job's cleanup; the fixture's teardown kills whatever still carries this cluster's ``SLURM_CONF``.
* Finished jobs stay visible to ``squeue -t all`` and ``scontrol show job`` for ``MinJobAge`` (120 s); every
  finished job is also appended to ``<base>/log/jobcomp.log`` (JobState=COMPLETED/CANCELLED/TIMEOUT/FAILED).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGES = "slurmctld slurmd slurm-client munge"
PARTITION = "debug"
PREFIX = "machinable-slurm-"
SBIN = Path("/usr/sbin")
MUNGE_RUN = Path("/run/munge")
START_TIMEOUT = 60.0
STOP_TIMEOUT = 15.0
DAEMONS = ("slurmctld", "slurmd")

SLURM_CONF = """\
ClusterName=localci
SlurmctldHost={node}(127.0.0.1)
SlurmctldPort={ctld_port}
SlurmdPort={slurmd_port}
SlurmUser=slurm
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/backfill
# jobs and array tasks that did not start at submission are picked up within a second, not after 2-30 s
SchedulerParameters=batch_sched_delay=0,bf_interval=1
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MpiDefault=none
KillWait=2
OverTimeLimit=0
InactiveLimit=0
MinJobAge=120
JobCompType=jobcomp/filetxt
JobCompLoc={base}/log/jobcomp.log
StateSaveLocation={base}/state
SlurmdSpoolDir={base}/spool
SlurmctldPidFile={base}/slurmctld.pid
SlurmdPidFile={base}/slurmd.pid
SlurmctldLogFile={base}/log/slurmctld.log
SlurmdLogFile={base}/log/slurmd.log
NodeName={node} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory=1000 State=UNKNOWN
PartitionName={partition} Nodes={node} Default=YES MaxTime=INFINITE State=UP
"""


@dataclass
class SlurmCluster:
    conf: Path
    base: Path
    partition: str
    cpus: int
    node: str

    def queue(self) -> list[str]:
        """``JOBID STATE`` of every job not finished yet (pending, running, completing); array tasks still
        pending are one line, ``7_[2-3%2]``."""
        out = self.run("squeue", "-h", "-o", "%i %T")
        return out.split("\n") if out else []

    def wait_idle(self, timeout: float = 30.0) -> None:
        """Until no job is pending, running or completing."""
        deadline = time.monotonic() + timeout
        while jobs := self.queue():
            if time.monotonic() > deadline:
                raise TimeoutError(f"Slurm jobs still queued after {timeout:.0f} s: {jobs}")
            time.sleep(0.2)

    def cancel_all(self, timeout: float = 30.0) -> None:
        """Cancel every job of the cluster and wait until they are gone."""
        # %A is the job id: a running array task's own id, or the array's id for its still pending tasks
        out = self.run("squeue", "-h", "-o", "%A")
        if ids := sorted(set(out.split())):
            # jobs that end in between make scancel complain; the wait below is what counts
            subprocess.run(["scancel", *ids], capture_output=True, timeout=30, env=self.env())
        self.wait_idle(timeout)

    def env(self) -> dict[str, str]:
        """os.environ with this cluster's SLURM_CONF, even where a test has changed the environment."""
        return {**os.environ, "SLURM_CONF": str(self.conf)}

    def run(self, *command: str) -> str:
        """A Slurm client command's output; raises if it fails."""
        done = subprocess.run(command, capture_output=True, text=True, timeout=30, env=self.env())
        if done.returncode:
            raise RuntimeError(f"{' '.join(command)} failed ({done.returncode}): {done.stderr.strip()}")
        return done.stdout.strip()

    def logs(self, lines: int = 40) -> str:
        """The end of the daemons' logs, for failure messages."""
        return _logs(self.base, lines)


def _missing() -> str | None:
    """Why this host cannot run the cluster, or None."""
    absent = [c for c in ("slurmctld", "slurmd", "sbatch", "munged") if not _found(c)]
    if absent:
        return (
            f"Slurm tests need {', '.join(absent)} (Debian packages {PACKAGES}; "
            "install with scripts/install-system-deps.sh as root)"
        )
    if os.geteuid() != 0:
        return (
            "Slurm tests need root to start slurmctld, slurmd and munged and run jobs "
            f"(Debian packages {PACKAGES}; install with scripts/install-system-deps.sh as root)"
        )
    return None


def _found(command: str) -> bool:
    # the daemons are in /usr/sbin, which is not on every PATH
    return shutil.which(command) is not None or os.access(SBIN / command, os.X_OK)


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot: with the pid, it names one process for good."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def _alive(pid: int) -> bool:
    # a dead daemon stays a zombie until init reaps it, which this machine's init does only now and then
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _processes_of(base: Path) -> list[int]:
    """Processes started with this cluster's SLURM_CONF: its daemons, their slurmstepds and the jobs'
    processes (sbatch passes its environment on), orphaned ones included."""
    marker = f"SLURM_CONF={base}/slurm.conf".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if marker in environ.split(b"\0"):
            found.append(int(entry.name))
    return found


def _signal(pids: list[int], sig: signal.Signals) -> None:
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def _wait_gone(pids: list[int], timeout: float) -> list[int]:
    """The pids still alive after the timeout."""
    deadline = time.monotonic() + timeout
    while (left := [p for p in pids if _alive(p)]) and time.monotonic() < deadline:
        time.sleep(0.1)
    return left


def _kill_cluster(base: Path, timeout: float = STOP_TIMEOUT) -> None:
    """Stop the daemons kindly (they save state and tell their steps), then kill whatever still runs."""
    ours = _processes_of(base)
    # a pid file's pid counts only while it is still this cluster's process, not a stranger that reused it
    daemons = [pid for d in DAEMONS if (pid := _read_pid(base / f"{d}.pid")) in ours]
    _signal(daemons, signal.SIGTERM)
    # slurmd ignores SIGTERM while it retries registering with a controller that is gone
    _signal(_wait_gone(daemons, timeout), signal.SIGKILL)
    rest = _processes_of(base)
    _signal(rest, signal.SIGKILL)
    _wait_gone(daemons + rest, timeout)


def _owned_by_live_session(base: Path) -> bool:
    try:
        owner = (base / "owner").read_text().split()
    except FileNotFoundError:
        try:
            # a session that has only just made its folder writes the owner file a moment later
            return time.time() - base.stat().st_mtime < 60
        except FileNotFoundError:
            return True  # removed meanwhile: nothing to sweep
    return len(owner) == 2 and owner[0].isdigit() and _start_time(int(owner[0])) == owner[1]


def _stop_leftovers() -> None:
    """Kill and remove the clusters of sessions that died without tearing theirs down."""
    for base in Path(tempfile.gettempdir()).glob(PREFIX + "*"):
        if not _owned_by_live_session(base):
            _kill_cluster(base, timeout=5.0)
            shutil.rmtree(base, ignore_errors=True)


def _others_running(base: Path) -> bool:
    """Whether another live session runs a cluster here (and may be using the munged this one started)."""
    return any(
        other != base and _owned_by_live_session(other)
        for other in Path(tempfile.gettempdir()).glob(PREFIX + "*")
    )


def _logs(base: Path, lines: int = 40) -> str:
    parts = []
    for path in sorted((base / "log").glob("*")):
        if path.name == "jobcomp.log":
            continue
        text = path.read_text(errors="replace").splitlines()[-lines:]
        parts.append(f"--- {path} (last {lines} lines)\n" + "\n".join(text))
    return "\n".join(parts) or f"(no logs in {base}/log)"


def _munge_answers() -> bool:
    return shutil.which("munge") is not None and (
        subprocess.run(["munge", "-n"], capture_output=True, timeout=30).returncode == 0
    )


def _start_munged() -> int | None:
    """The pid of the munged this started, or None if one was running already."""
    if _munge_answers():
        return None
    MUNGE_RUN.mkdir(mode=0o755, exist_ok=True)
    shutil.chown(MUNGE_RUN, "munge", "munge")
    # munged may outlive this session and serve the next: it must not carry this cluster's SLURM_CONF, by
    # which teardown and the next session's leftover sweep recognise processes to kill
    env = {k: v for k, v in os.environ.items() if k != "SLURM_CONF"}
    done = subprocess.run(
        ["runuser", "-u", "munge", "--", str(SBIN / "munged")],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=30,
        env=env,
    )
    if done.returncode and _munge_answers():
        return None  # another session started one meanwhile
    pid = _read_pid(MUNGE_RUN / "munged.pid")
    if done.returncode or not pid:
        pytest.fail(f"munged did not start ({done.returncode}): {done.stderr.strip()}", pytrace=False)
    return pid


def _start_daemons(cluster: SlurmCluster, ctld_port: int) -> None:
    for daemon in DAEMONS:
        # the daemons fork into the background; a pipe kept open by them would hang run(), a file does not
        with open(cluster.base / "log" / f"{daemon}.stderr", "w") as out:
            done = subprocess.run(
                [str(SBIN / daemon)],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=out,
                timeout=30,
                env=cluster.env(),
            )
        if done.returncode:
            pytest.fail(f"{daemon} exited with {done.returncode}\n{cluster.logs()}", pytrace=False)
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        for daemon in DAEMONS:
            pid = _read_pid(cluster.base / f"{daemon}.pid")
            if pid and not _alive(pid):
                pytest.fail(f"{daemon} died while starting\n{cluster.logs()}", pytrace=False)
        # sinfo retries a refused connection for about 10 s, so it waits for the controller's port first
        try:
            socket.create_connection(("127.0.0.1", ctld_port), timeout=1).close()
            done = subprocess.run(
                ["sinfo", "-h", "-p", cluster.partition, "-o", "%t"],
                capture_output=True,
                text=True,
                timeout=10,
                env=cluster.env(),
            )
            if done.returncode == 0 and "idle" in done.stdout.split():
                return
        except (OSError, subprocess.TimeoutExpired):
            pass
        if time.monotonic() > deadline:
            pytest.fail(f"Slurm node not idle after {START_TIMEOUT:.0f} s\n{cluster.logs()}", pytrace=False)
        time.sleep(0.2)


@pytest.fixture(scope="session")
def slurm_cluster() -> Iterator[SlurmCluster]:
    """A running single-node Slurm (partition ``debug``, all CPUs of this machine), ``SLURM_CONF`` set."""
    if reason := _missing():
        if os.environ.get("CI") == "true":
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    _stop_leftovers()
    base = Path(tempfile.mkdtemp(prefix=PREFIX))
    # mkdtemp's 0700 would keep slurmctld, which runs as the slurm user, out of its state and log folders
    base.chmod(0o755)
    (base / "owner").write_text(f"{os.getpid()} {_start_time(os.getpid())}\n")
    for sub in ("spool", "state", "log"):
        (base / sub).mkdir()
    for sub in ("state", "log"):
        shutil.chown(base / sub, "slurm", "slurm")
    node = socket.gethostname().split(".")[0]
    cpus = len(os.sched_getaffinity(0))
    ctld_port, slurmd_port = _free_ports(2)
    conf = base / "slurm.conf"
    conf.write_text(
        SLURM_CONF.format(
            node=node, cpus=cpus, base=base, partition=PARTITION, ctld_port=ctld_port, slurmd_port=slurmd_port
        )
    )
    cluster = SlurmCluster(conf=conf, base=base, partition=PARTITION, cpus=cpus, node=node)
    previous = os.environ.get("SLURM_CONF")
    os.environ["SLURM_CONF"] = str(conf)
    munged = None
    try:
        munged = _start_munged()
        _start_daemons(cluster, ctld_port)
        yield cluster
    finally:
        _kill_cluster(base)
        if munged and not _others_running(base):
            _signal([munged], signal.SIGTERM)
            _signal(_wait_gone([munged], STOP_TIMEOUT), signal.SIGKILL)
        if previous is None:
            os.environ.pop("SLURM_CONF", None)
        else:
            os.environ["SLURM_CONF"] = previous
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def slurm(slurm_cluster: SlurmCluster) -> Iterator[SlurmCluster]:
    """The session's cluster; jobs a test leaves behind are cancelled, and waited for, after it."""
    yield slurm_cluster
    slurm_cluster.cancel_all()
