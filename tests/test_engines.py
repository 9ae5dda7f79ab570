"""Engines: local, process and ray run the same trials with the same results; crashes and timeouts stay isolated.

Ray tests use the session's one local Ray (``ray_session``, tests/fixtures_ray.py) and are marked slow.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

import machinable as ml
from machinable.errors import UsageError
from machinable.execution.engines.base import make_engine
from machinable.execution.execute import ExecutionInterrupted
from machinable.hookspec import hookimpl
from machinable.plugins import create_plugin_manager, default_plugin_manager

YAML = """
components:
  - experiment:
      steps: 3
  - misbehave:
      how: pass
      seconds: 30
      mark: ''
      controller: 0
"""

EXPERIMENT = """
import random

import numpy as np

import machinable as ml


class Experiment(ml.Component):
    def on_execute(self):
        for step in range(self.config.steps):
            self.record["step"] = step
            self.record["value"] = random.random()
            self.record["noise"] = float(np.random.normal())
            self.record.save()
        self.store("final", {"value": random.random(), "seed": self.seed})
        self.store("draws.json", [random.randint(0, 100) for _ in range(5)])
        self.log.info("done")
        print("printed", self.config.steps)
"""

MISBEHAVE = """
import ctypes
import os
import signal
import time
from pathlib import Path

import machinable as ml


class Misbehave(ml.Component):
    def on_execute(self):
        if self.config.mark:
            # Written whole and renamed, so the test never reads a half-written pid.
            Path(self.config.mark + ".tmp").write_text(str(os.getpid()))
            os.replace(self.config.mark + ".tmp", self.config.mark)
        self.record["pid"] = os.getpid()
        self.record.save()
        how = self.config.how
        if how == "segfault":
            ctypes.string_at(0)
        elif how == "exit":
            os._exit(3)
        elif how == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        elif how == "sleep":
            time.sleep(self.config.seconds)
        elif how == "ctrl-c":  # what a user's Ctrl-C does to the controlling process
            os.kill(self.config.controller, signal.SIGINT)
            time.sleep(self.config.seconds)
        elif how == "stubborn":  # swallows the TrialTimeout raised in it
            end = time.time() + self.config.seconds
            while time.time() < end:
                try:
                    time.sleep(0.05)
                except BaseException:
                    pass
"""

RAY = {"type": "ray", "kill_grace": 1.0}
CRASHES = {
    "segfault": "signal 11 (SIGSEGV)",
    "exit": "exit code 3",
    "kill": "signal 9 (SIGKILL)",
}


@pytest.fixture
def project(make_project):
    return make_project(YAML, {"experiment.py": EXPERIMENT, "misbehave.py": MISBEHAVE})


def run(project, task, engine, **kwargs):
    kwargs.setdefault("echo", False)
    return ml.execute(task, project=project, engine=engine, **kwargs)


def outcomes(execution):
    return {t.node_id: t.status for t in execution.trials}


def stored_outcomes(execution):
    stored = ml.Storage(execution.location).get(execution.id)
    return {t.node_id: t.status for t in stored.trials}


def summary(execution):
    """Everything a trial produced that must not depend on the engine (``_`` columns are timestamps)."""
    stored = ml.Storage(execution.location).get(execution.id)
    out = {}
    for result in execution.trials:
        trial = stored.trial(result.uid)
        out[result.node_id] = {
            "uid": result.uid,
            "status": result.status,
            "config": result.config,
            "versions": list(result.versions),
            "seed": result.seed,
            "flags": result.flags,
            "records": [{k: v for k, v in row.items() if not k.startswith("_")} for row in result.records],
            "stored status": trial.status,
            "stored config": trial.config,
            "stored seed": trial.seed,
            "stored records": [
                {k: v for k, v in row.items() if not k.startswith("_")} for row in trial.records
            ],
            "stored values": dict(trial.store),
            "output": trial.output,
        }
    return out


def assert_same(expected, actual, engine):
    assert list(actual) == list(expected), f"{engine}: other trials than local"
    for node_id, fields in expected.items():
        for field, value in fields.items():
            assert actual[node_id][field] == value, f"{engine}: {node_id}: {field} differs from local"


# -- choosing an engine ------------------------------------------------------------------------------------------
def test_an_unknown_engine_name_is_an_error_listing_the_known_engines(project):
    with pytest.raises(
        UsageError, match=r"unknown engine 'rya' \(did you mean 'ray'\?\); known engines: local, process, ray"
    ):
        run(project, ml.Task().component("experiment"), "rya")


@pytest.mark.parametrize(
    "engine", ["process:0", "process:-1", "process:two", {"type": "process", "workers": 0}]
)
def test_process_needs_a_positive_number_of_workers(project, engine):
    with pytest.raises(UsageError, match="positive number"):
        run(project, ml.Task().component("experiment"), engine)


@pytest.mark.parametrize(
    ("engine", "message"),
    [
        ({"type": "process", "start_method": "teleport"}, "start_method 'teleport' is not available"),
        ({"type": "process", "threads": 2}, "does not take these options"),
        ({"type": "ray", "workers": 0}, "positive number"),
        ({"type": "ray", "num_cpus": -1}, "non-negative number"),
        ({"type": "ray", "address": "auto", "num_cpus": 2}, None),
    ],
)
def test_engine_options_are_checked_when_the_engine_is_chosen(engine, message):
    if message is None:  # num_cpus with a cluster address is refused only when Ray would be started
        assert make_engine(engine, default_plugin_manager()).describe() == "ray(auto)"
        return
    with pytest.raises(UsageError, match=message):
        make_engine(engine, default_plugin_manager())


def test_engines_describe_themselves():
    pm = default_plugin_manager()
    assert make_engine("process:3", pm).describe() == "process:3"
    assert make_engine(None, pm).describe() == "local"
    assert (
        make_engine({"type": "ray", "address": "ray://head:10001"}, pm).describe() == "ray(ray://head:10001)"
    )
    assert make_engine("process", pm).describe() == f"process:{os.cpu_count()}"


def test_importing_the_engines_does_not_import_ray():
    code = "import sys, machinable.execution.engines.ray_engine, machinable.execution.engines.process; print('ray' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=os.getcwd(), check=True
    )
    assert out.stdout.strip() == "False"


# -- process ------------------------------------------------------------------------------------------------------
def test_process_workers_are_other_processes_reused_across_trials(project):
    execution = run(project, ml.Task().component("misbehave").repeat(6), "process:2")
    pids = {t.records[0]["pid"] for t in execution.trials}
    assert outcomes(execution) == {f"misbehave[r{i}]": "passed" for i in range(6)}
    assert os.getpid() not in pids
    assert 1 <= len(pids) <= 2


@pytest.mark.parametrize("storage", ["memory", "local"])
def test_local_and_process_give_identical_results(project, tmp_path, storage):
    task = ml.Task().component("experiment", [{"steps": 2}, {"steps": 4}]).repeat(2)
    results = {}
    for engine in ("local", "process:2", {"type": "process", "workers": 1, "start_method": "spawn"}):
        where = None if storage == "memory" else tmp_path / f"results-{len(results)}"
        results[str(engine)] = summary(run(project, task, engine, seed=42, storage=where))
    expected = results.pop("local")
    assert len(expected) == 4 and all(t["status"] == "passed" for t in expected.values())
    assert all(len(t["stored values"]) == 2 for t in expected.values())
    for engine, actual in results.items():
        assert_same(expected, actual, engine)


@pytest.mark.parametrize("how", sorted(CRASHES))
def test_a_trial_that_kills_its_worker_is_crashed_and_the_others_go_on(project, tmp_path, how):
    task = (
        ml.Task()
        .component("experiment")
        .component("misbehave", {"how": how})
        .component("experiment", {"steps": 1})
        .component("experiment", {"steps": 2})
    )
    execution = run(project, task, "process:2", storage=tmp_path / "results")
    crashed = execution.trials[1]
    assert crashed.status == "crashed"
    assert f"worker process died with {CRASHES[how]}" in crashed.error
    assert [t.status for t in execution.trials] == ["passed", "crashed", "passed", "passed"]
    assert stored_outcomes(execution)[crashed.node_id] == "crashed"
    stored = ml.Storage(execution.location).get(execution.id).trial(crashed.uid)
    assert CRASHES[how] in stored.error
    assert [row["pid"] for row in stored.records] != []  # rows saved before the crash are kept


def test_a_segfault_reports_where_the_trial_was_and_prints_nothing(project, capfd):
    execution = run(project, ml.Task().component("misbehave", {"how": "segfault"}), "process:1")
    error = execution.trials[0].error
    assert "Segmentation fault" in error and "misbehave.py" in error and "in on_execute" in error
    assert "process.py" not in error and "runner.py" not in error  # machinable's own frames are left out
    assert capfd.readouterr() == ("", "")


def test_crashed_trials_in_memory_storage_are_kept_by_the_controller(project):
    task = ml.Task().component("misbehave", {"how": "exit"}).component("experiment")
    execution = run(project, task, "process:2")
    assert stored_outcomes(execution) == {"misbehave[how=exit]": "crashed", "experiment": "passed"}


def test_a_component_timeout_fails_the_trial_and_the_others_go_on(project):
    task = ml.Task().component("misbehave", {"how": "sleep"}, timeout=1).component("experiment").repeat(2)
    start = time.time()
    execution = run(project, task, "process:2")
    assert time.time() - start < 10
    assert [t.status for t in execution.trials] == ["failed", "failed", "passed", "passed"]
    assert "TrialTimeout: trial timed out after 1 s" in execution.trials[0].error


def test_an_execution_timeout_applies_to_every_trial(project, tmp_path):
    task = ml.Task().component("misbehave", {"how": "sleep"}).component("experiment")
    execution = run(project, task, "process:2", timeout=1, storage=tmp_path / "results")
    assert [t.status for t in execution.trials] == ["failed", "passed"]
    assert "timed out after 1 s" in ml.Storage(execution.location).get(execution.id).trials[0].error


def test_a_trial_that_ignores_its_timeout_is_killed_and_its_worker_replaced(project, tmp_path):
    task = (
        ml.Task()
        .component("misbehave", {"how": "stubborn"}, timeout=0.5)
        .component("experiment", [{"steps": s} for s in range(1, 4)])
    )
    execution = run(project, task, "process:1", storage=tmp_path / "results")
    assert [t.status for t in execution.trials] == ["failed", "passed", "passed", "passed"]
    error = execution.trials[0].error
    assert "timed out after 0.5 s" in error and "worker process was killed" in error
    assert stored_outcomes(execution)["misbehave[how=stubborn]"] == "failed"


class _InterruptAfterFirstResult:
    @hookimpl
    def machinable_trial_result(self, result):
        raise KeyboardInterrupt


def test_ctrl_c_stops_the_workers_and_keeps_finished_results(project, tmp_path):
    marks = [tmp_path / "sleeper-0", tmp_path / "sleeper-1"]
    task = (
        ml.Task()
        .component("misbehave", [{"how": "sleep", "mark": str(mark)} for mark in marks])
        .component("experiment")
    )
    pm = create_plugin_manager(plugins=[_InterruptAfterFirstResult()])
    start = time.time()
    with pytest.raises(ExecutionInterrupted) as info:
        run(project, task, "process:3", storage=tmp_path / "results", plugins=pm)
    assert time.time() - start < 10
    execution = info.value.execution
    assert outcomes(execution) == {"experiment": "passed"}
    stored = stored_outcomes(execution)
    assert stored["experiment"] == "passed"
    assert {stored[t] for t in stored if t != "experiment"} == {"interrupted"}
    for mark in marks:
        if mark.exists():  # the sleeper started: its worker is gone
            with pytest.raises(ProcessLookupError):
                os.kill(int(mark.read_text()), 0)


def interrupted_by_ctrl_c(project, tmp_path, engine):
    """Run two trials on ``engine`` until the first presses Ctrl-C in the controller; return the execution."""
    task = (
        ml.Task()
        .component("misbehave", {"how": "ctrl-c", "controller": os.getpid()})
        .component("misbehave", {"how": "sleep"})
    )
    with pytest.raises(ExecutionInterrupted) as info:
        run(project, task, engine, storage=tmp_path / "results")
    return info.value.execution


def test_ctrl_c_reports_the_trials_it_ended_on_process(project, tmp_path):
    execution = interrupted_by_ctrl_c(project, tmp_path, "process:2")
    # Both were running when the controller got SIGINT: results of the execution, not only of storage.
    assert set(outcomes(execution).values()) == {"interrupted"}
    assert stored_outcomes(execution) == outcomes(execution)


def test_a_component_defined_in_a_test_function_runs_on_forked_workers(project):
    @ml.component
    def draw(record, seed):
        import random

        record["draw"] = random.random()
        record["seed"] = seed

    local = run(project, ml.Task().component(draw).repeat(2), "local", seed=7)
    forked = run(project, ml.Task().component(draw).repeat(2), "process:2", seed=7)
    assert [t.records[0]["draw"] for t in forked.trials] == [t.records[0]["draw"] for t in local.trials]
    assert [t.status for t in forked.trials] == ["passed", "passed"]


def test_spawned_workers_refuse_components_defined_in_a_function(project):
    @ml.component
    def nested(record):
        record["x"] = 1

    engine = {"type": "process", "workers": 1, "start_method": "spawn"}
    with pytest.raises(UsageError, match=r"cannot be sent to a 'spawn' worker process.*module level"):
        run(project, ml.Task().component(nested), engine)


def test_a_record_value_that_cannot_be_pickled_comes_back_as_stored(project):
    @ml.component
    def odd(record):
        record["thing"] = lambda: None
        record["x"] = 1

    execution = run(project, ml.Task().component(odd), "process:1")
    row = execution.trials[0].records[0]
    assert execution.trials[0].status == "passed"
    assert row["x"] == 1 and row["thing"].startswith("<function")


# -- ray (one local Ray per session) ---------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.usefixtures("ray_session")
@pytest.mark.parametrize("storage", ["memory", "local"])
def test_local_process_and_ray_give_identical_results(project, tmp_path, storage):
    task = ml.Task().component("experiment", [{"steps": 2}, {"steps": 4}]).repeat(2)
    results = {}
    for engine in ("local", "process:2", "ray"):
        where = None if storage == "memory" else tmp_path / f"results-{engine}"
        results[engine] = summary(run(project, task, engine, seed=42, storage=where))
    expected = results.pop("local")
    assert all(t["status"] == "passed" for t in expected.values())
    for engine, actual in results.items():
        assert_same(expected, actual, engine)


@pytest.mark.slow
@pytest.mark.parametrize("how", sorted(CRASHES))
def test_ray_reports_a_trial_that_kills_its_worker_as_crashed_quietly(
    project, tmp_path, how, ray_session, capfd
):
    task = (
        ml.Task()
        .component("experiment")
        .component("misbehave", {"how": how})
        .component("experiment", {"steps": 1})
    )
    execution = run(project, task, RAY, storage=tmp_path / "results")
    assert [t.status for t in execution.trials] == ["passed", "crashed", "passed"]
    assert "worker process died" in execution.trials[1].error
    assert stored_outcomes(execution)["misbehave[how=" + how + "]"] == "crashed"
    time.sleep(1.0)  # Ray's notices arrive from a background thread
    out, err = capfd.readouterr()
    assert "died" not in out + err and "WARNING" not in out + err
    assert ray_session.is_initialized()  # a Ray we did not start is never shut down


@pytest.mark.slow
@pytest.mark.usefixtures("ray_session")
def test_ray_timeouts_fail_the_trial_and_the_others_go_on(project, tmp_path):
    task = (
        ml.Task()
        .component("misbehave", {"how": "sleep"}, timeout=1)
        .component("misbehave", {"how": "stubborn"}, timeout=1)
        .component("experiment")
    )
    start = time.time()
    execution = run(project, task, RAY, storage=tmp_path / "results")
    assert time.time() - start < 15
    assert [t.status for t in execution.trials] == ["failed", "failed", "passed"]
    assert "TrialTimeout: trial timed out after 1 s" in execution.trials[0].error
    assert "timed out after 1 s" in execution.trials[1].error and "killed" in execution.trials[1].error
    assert list(stored_outcomes(execution).values()) == ["failed", "failed", "passed"]


@pytest.mark.slow
@pytest.mark.usefixtures("ray_session")
def test_ray_takes_per_trial_resources_from_the_task(project):
    task = (
        ml.Task()
        .component("experiment", {"steps": 1}, resources={"num_cpus": 2})
        .component("experiment", {"steps": 2}, resources={"num_gpus": 1})
        .component("experiment", {"steps": 3}, resources={"licence": 1})
    )
    execution = run(project, task, "ray")
    assert [t.status for t in execution.trials] == ["passed", "failed", "failed"]
    assert "cannot be scheduled: it needs {'CPU': 1.0, 'GPU': 1.0}" in execution.trials[1].error
    assert "'licence': 1.0" in execution.trials[2].error


@pytest.mark.slow
@pytest.mark.usefixtures("ray_session")
def test_ray_ships_components_defined_in_a_test_function(project):
    @ml.component
    def draw(record, seed):
        import random

        record["draw"] = random.random()

    local = run(project, ml.Task().component(draw).repeat(2), "local", seed=7)
    remote = run(project, ml.Task().component(draw).repeat(2), "ray", seed=7)
    assert [t.records[0]["draw"] for t in remote.trials] == [t.records[0]["draw"] for t in local.trials]


@pytest.mark.slow
@pytest.mark.usefixtures("ray_session")
def test_ctrl_c_on_ray_keeps_finished_results(project, tmp_path):
    task = ml.Task().component("misbehave", {"how": "sleep"}).component("experiment")
    pm = create_plugin_manager(plugins=[_InterruptAfterFirstResult()])
    with pytest.raises(ExecutionInterrupted) as info:
        run(project, task, "ray", storage=tmp_path / "results", plugins=pm)
    assert outcomes(info.value.execution) == {"experiment": "passed"}
    assert stored_outcomes(info.value.execution) == {
        "misbehave[how=sleep]": "interrupted",
        "experiment": "passed",
    }


@pytest.mark.slow
@pytest.mark.usefixtures("ray_session")
def test_ctrl_c_reports_the_trials_it_ended_on_ray(project, tmp_path):
    execution = interrupted_by_ctrl_c(project, tmp_path, RAY)
    assert set(outcomes(execution).values()) == {"interrupted"}
    assert stored_outcomes(execution) == outcomes(execution)


def test_a_reused_execution_id_on_the_process_engine_writes_into_its_own_folder(make_project, tmp_path):
    root = make_project(
        "components:\n  - noisy\n",
        {
            "noisy.py": "import machinable as ml\nclass Noisy(ml.Component):\n    def on_execute(self):\n        self.record['x'] = 1\n"
        },
    )
    results = str(tmp_path / "results")
    for _ in range(2):
        execution = ml.execute("noisy", seed=3, storage=results, engine="process:1", project=root, echo=False)
    assert execution.folder.endswith("-2")
    stored = ml.Storage(results).get(execution.id)
    assert stored.folder == execution.folder
    assert [t.status for t in stored.trials] == ["passed"]
    assert [r["x"] for r in stored.trials[0].records] == [1]


def _children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    if int(stat.read().rsplit(")", 1)[1].split()[1]) == pid:
                        found.append(int(entry))
            except (OSError, IndexError, ValueError):
                continue
    return found


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_process_workers_do_not_outlive_a_controller_killed_with_sigkill(make_project):
    root = make_project(
        "components:\n  - sleepy\n",
        {
            "sleepy.py": "import time\nimport machinable as ml\nclass Sleepy(ml.Component):\n    def on_execute(self):\n        time.sleep(30)\n"
        },
    )
    script = "import machinable as ml; ml.execute(ml.Task().component('sleepy').repeat(2), engine='process:2', echo=False)"
    controller = subprocess.Popen([sys.executable, "-c", script], cwd=root)
    try:
        deadline = time.time() + 20
        while len(workers := _children(controller.pid)) < 2 and time.time() < deadline:
            time.sleep(0.1)
        assert len(workers) >= 2
        time.sleep(0.5)  # the workers are inside their trials
        controller.kill()
        controller.wait()
        deadline = time.time() + 10
        while (
            any(os.path.exists(f"/proc/{w}") and _state(w) != "Z" for w in workers) and time.time() < deadline
        ):
            time.sleep(0.1)
        assert not [w for w in workers if os.path.exists(f"/proc/{w}") and _state(w) != "Z"]
    finally:
        controller.kill()


def _state(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "Z"
