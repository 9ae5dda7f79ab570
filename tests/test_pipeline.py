"""One pipeline: ``ml.execute``, the command, ``resume``, ``reproduce`` and ``--check-determinism`` fire the same hooks.

An outside plugin (installed through the entry point group ``machinable``) sees ``machinable_trial_result`` for every
trial of every kind of session, and a ``machinable_trial_protocol`` wrapper (from a plugin or the project's
``machinable_conf.py``) runs where the trial runs: in this process on the ``local`` engine, in the worker processes
of ``process`` and in the Ray workers of ``ray``.
"""

from __future__ import annotations

import importlib
import json
import os
from pathlib import Path

import pytest
from cli_helpers import run_inprocess, write_project

import machinable as ml
import machinable.plugins

NODES = ["flaky[n=1]", "flaky[n=2]", "flaky[n=3]"]

# flaky[n=2] fails while the project holds a file named BROKEN; every other trial passes.
FLAKY = """\
from pathlib import Path

import machinable as ml


@ml.parametrize("n", [1, 2, 3])
class Flaky(ml.Component):
    def on_execute(self):
        self.record["n"] = self.config.n
        self.record.save()
        if self.config.n == 2 and (Path(__file__).parent / "BROKEN").exists():
            raise RuntimeError("broken on purpose")
"""

# The outside plugin: one JSON line per trial result, into the file $RECORDER_FILE names.
RECORDER = """\
import json
import os

import machinable as ml


@ml.hookimpl
def machinable_trial_result(session, execution, result):
    line = json.dumps([execution.kind, session.kind, result.node_id, result.status])
    with open(os.environ["RECORDER_FILE"], "a") as file:
        file.write(line + "\\n")
"""

# Each trial records the process it runs in.
WHERE = """\
import os

import machinable as ml


@ml.parametrize("n", [1, 2, 3, 4])
class Where(ml.Component):
    def on_execute(self):
        self.record["pid"] = os.getpid()
        self.record.save()
"""

# A wrapper of the trial protocol that records the process it runs in. The file's path is written into the
# source: a Ray worker may not see this test's environment.
PID_WRAPPER = """\
import json
import os

import machinable as ml

RECORDS = {records!r}
WHO = {who!r}


@ml.hookimpl(wrapper=True)
def machinable_trial_protocol(spec):
    result = yield
    with open(RECORDS, "a") as file:
        file.write(json.dumps({{"who": WHO, "pid": os.getpid(), "node_id": spec.node_id}}) + "\\n")
    return result
"""


def read_lines(path: Path) -> list:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def install_distribution(folder: Path, name: str, entry_points: str) -> None:
    """Make ``folder`` (on sys.path) hold an installed distribution ``name`` with ``entry_points``."""
    dist = folder / f"{name}-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(entry_points)
    importlib.invalidate_caches()  # importlib.metadata caches the distributions per sys.path folder


# -- an outside plugin sees every trial of every kind of session -------------------------------------------------


class Recorder:
    """What the installed recorder plugin wrote: ``(execution.kind, session.kind, node id, status)`` per trial."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def take(self) -> list[tuple[str, str, str, str]]:
        """The results recorded since the last call."""
        lines = [tuple(line) for line in read_lines(self.path)]
        self.path.unlink(missing_ok=True)
        return lines


@pytest.fixture
def recorder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Recorder:
    """The recorder plugin, installed as the entry point ``recorder`` of group ``machinable``."""
    folder = tmp_path / "site"
    folder.mkdir()
    (folder / "recorder_plugin.py").write_text(RECORDER)
    install_distribution(folder, "recorder_plugin", "[machinable]\nrecorder = recorder_plugin\n")
    monkeypatch.syspath_prepend(str(folder))
    monkeypatch.setenv("RECORDER_FILE", str(tmp_path / "results.jsonl"))
    # ml.execute's plugin manager is built once per process: build it again, now with the entry point.
    monkeypatch.setattr(machinable.plugins, "_default", None)
    return Recorder(tmp_path / "results.jsonl")


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return write_project(tmp_path / "project", "components:\n  - flaky\n", {"flaky.py": FLAKY})


@pytest.fixture
def cli(capsys, root):
    return lambda *args: run_inprocess(capsys, root, *args)


def test_an_installed_plugin_sees_every_trial_of_ml_execute(recorder, root):
    ml.execute("flaky", project=root, echo=False)
    assert recorder.take() == [("run", "run", node, "passed") for node in NODES]


def test_an_installed_plugin_sees_every_trial_of_the_command(recorder, root, cli):
    (root / "BROKEN").touch()
    assert cli("-q").ret == 1
    assert recorder.take() == [
        ("run", "run", "flaky[n=1]", "passed"),
        ("run", "run", "flaky[n=2]", "failed"),
        ("run", "run", "flaky[n=3]", "passed"),
    ]


def test_an_installed_plugin_sees_the_resumed_trials_of_machinable_resume(recorder, root, cli, tmp_path):
    results = str(tmp_path / "results")
    (root / "BROKEN").touch()
    assert cli("--storage", results, "--seed", "7", "-q").ret == 1
    [(_, _, _, failed)] = [r for r in recorder.take() if r[2] == "flaky[n=2]"]
    assert failed == "failed"

    (root / "BROKEN").unlink()
    execution_id = ml.Storage(results).executions()[0].id
    done = cli("resume", execution_id, "--storage", results)
    assert done.ret == 0, done.out + done.err
    assert recorder.take() == [("resume", "resume", "flaky[n=2]", "passed")]


def test_an_installed_plugin_sees_the_rerun_trials_of_machinable_reproduce(recorder, root, cli, tmp_path):
    results = str(tmp_path / "results")
    assert cli("--storage", results, "-q").ret == 0
    recorder.take()

    execution_id = ml.Storage(results).executions()[0].id
    done = cli("reproduce", execution_id, "--storage", results)
    assert done.ret == 0, done.out + done.err
    assert recorder.take() == [("reproduce", "reproduce", node, "passed") for node in NODES]


def test_an_installed_plugin_sees_both_runs_of_check_determinism(recorder, cli):
    done = cli("--check-determinism")
    assert done.ret == 0, done.out + done.err
    assert recorder.take() == [
        *[("run", "run", node, "passed") for node in NODES],
        *[("determinism", "determinism", node, "passed") for node in NODES],
    ]


# -- a trial protocol wrapper runs where the trial runs ----------------------------------------------------------


@pytest.fixture
def where(tmp_path: Path) -> Path:
    """A project of four trials that record their pid, whose machinable_conf.py wraps the trial protocol."""
    records = str(tmp_path / "wrappers.jsonl")
    return write_project(
        tmp_path / "where",
        "components:\n  - where\n",
        {"where.py": WHERE, "machinable_conf.py": PID_WRAPPER.format(records=records, who="machinable_conf")},
    )


@pytest.fixture
def plugin_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder on sys.path holding the module ``pid_wrapper``, a plugin that wraps the trial protocol too."""
    folder = tmp_path / "plugins"
    folder.mkdir()
    records = str(tmp_path / "wrappers.jsonl")
    (folder / "pid_wrapper.py").write_text(PID_WRAPPER.format(records=records, who="plugin"))
    monkeypatch.syspath_prepend(str(folder))
    return folder


def wrapper_and_trial_pids(capsys, project: Path, tmp_path: Path, *args: str) -> dict[str, dict[str, int]]:
    """Run the command on ``project`` and return ``{who: {node id: pid}}`` for each wrapper and the trials."""
    results = tmp_path / "results"
    done = run_inprocess(capsys, project, "--storage", str(results), "-q", *args)
    assert done.ret == 0, done.out + done.err
    pids: dict[str, dict[str, int]] = {}
    for line in read_lines(tmp_path / "wrappers.jsonl"):
        assert line["node_id"] not in pids.setdefault(line["who"], {}), f"{line} recorded twice"
        pids[line["who"]][line["node_id"]] = line["pid"]
    [stored] = ml.Storage(results).executions()
    pids["trial"] = {t.node_id: t.records[0]["pid"] for t in stored.trials}
    return pids


def assert_wrappers_ran_with_the_trials(pids: dict[str, dict[str, int]]) -> None:
    """One record per trial from each wrapper, each in the process its trial ran in."""
    assert sorted(pids) == ["machinable_conf", "plugin", "trial"]
    assert sorted(pids["trial"]) == [f"where[n={n}]" for n in (1, 2, 3, 4)]
    assert pids["plugin"] == pids["trial"]
    assert pids["machinable_conf"] == pids["trial"]


def test_trial_protocol_wrappers_run_in_this_process_on_the_local_engine(
    capsys, where, plugin_folder, tmp_path
):
    pids = wrapper_and_trial_pids(capsys, where, tmp_path, "-p", "pid_wrapper", "--engine", "local")
    assert_wrappers_ran_with_the_trials(pids)
    assert set(pids["plugin"].values()) == {os.getpid()}


@pytest.mark.parametrize("given_by", ["-p", "entry point"])
def test_trial_protocol_wrappers_run_in_the_worker_processes_of_the_process_engine(
    capsys, where, plugin_folder, tmp_path, given_by
):
    if given_by == "-p":
        plugin = ["-p", "pid_wrapper"]
    else:  # registered as 'pids': workers load it by module name, under the entry point's name
        install_distribution(plugin_folder, "pid_wrapper", "[machinable]\npids = pid_wrapper\n")
        plugin = []
    pids = wrapper_and_trial_pids(capsys, where, tmp_path, *plugin, "--engine", "process:2")
    assert_wrappers_ran_with_the_trials(pids)
    assert os.getpid() not in set(pids["plugin"].values())


@pytest.mark.slow
@pytest.mark.usefixtures("ray_session")
def test_trial_protocol_wrappers_run_in_ray_workers(capsys, where, plugin_folder, tmp_path):
    pids = wrapper_and_trial_pids(capsys, where, tmp_path, "-p", "pid_wrapper", "--engine", "ray")
    assert_wrappers_ran_with_the_trials(pids)
    assert os.getpid() not in set(pids["plugin"].values())


# -- Execution.kind ------------------------------------------------------------------------------------------------


def test_ml_execute_returns_an_execution_of_kind_run(root):
    assert ml.execute("flaky", project=root, echo=False).kind == "run"


def test_ml_resume_returns_an_execution_of_kind_resume(root, tmp_path):
    results = str(tmp_path / "results")
    (root / "BROKEN").touch()
    first = ml.execute("flaky", storage=results, project=root, echo=False)
    assert [t.status for t in first.trials] == ["passed", "failed", "passed"]

    (root / "BROKEN").unlink()
    resumed = ml.resume(first.id, storage=results, project=root)
    assert resumed.kind == "resume"
    assert [(t.node_id, t.status) for t in resumed.trials] == [("flaky[n=2]", "passed")]
