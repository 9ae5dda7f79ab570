"""Never run the same trial twice (docs/reproducibility.md): ``machinable plan``, ``--needed`` and the stale
marks of ``machinable show``, against real storage; the kills and concurrent runs in real ``machinable``
processes.

The project: ``alpha`` imports ``tools/scaling.py`` (a package module), ``beta`` imports no project module,
``notes.py`` is imported by no component.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from cli_helpers import clean_env, copy_example_project, run_inprocess, run_subprocess
from test_cli_docs import example_project, examples, mismatch

import machinable as ml
from machinable.storage import identities

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "reproducibility.md"
SECTION = "## Never run the same trial twice"

YAML = """\
components:
  - alpha:
      lr: 0.1
  - beta:
      n: 1
"""

FILES = {
    "alpha.py": """\
        import machinable as ml
        from tools.scaling import scale


        class Alpha(ml.Component):
            def on_execute(self):
                self.record["y"] = scale(self.config.lr)
                self.record["seed"] = self.seed
                self.record.save()
        """,
    "beta.py": """\
        import machinable as ml


        class Beta(ml.Component):
            def on_execute(self):
                self.record["n"] = self.config.n
                self.record["seed"] = self.seed
                self.record.save()
        """,
    "tools/__init__.py": "",
    "tools/scaling.py": "def scale(x):\n    return 2 * x\n",
    "notes.py": "NOTE = 'imported by no component'\n",
}
TRIPLE = "def scale(x):\n    return x * 3.0\n"  # tools/scaling.py, edited

# Trials that log when they start (n, seed, pid: to count how often each ran), and wait for the file GO_FLAG
# when their n is listed in WAIT_AT ('*': every trial), so that a test can kill or hold them mid-run.
STEPS = """\
import os
import time

import machinable as ml


class Steps(ml.Component):
    def on_execute(self):
        with open(os.environ["RAN_LOG"], "a") as log:
            log.write(f"{self.config.n} {self.seed} {os.getpid()}\\n")
        wait_at = os.environ.get("WAIT_AT", "").split(",")
        if "*" in wait_at or str(self.config.n) in wait_at:
            deadline = time.monotonic() + 60
            while not os.path.exists(os.environ["GO_FLAG"]) and time.monotonic() < deadline:
                time.sleep(0.02)
        self.record["n"] = self.config.n
        self.record.save()
"""


@pytest.fixture
def project(make_project) -> Path:
    return make_project(YAML, FILES)


def executions(results: Path) -> list[str]:
    return sorted(p.name for p in results.iterdir() if p.is_dir() and not p.name.startswith("."))


def index(results: Path, folder: str) -> dict[str, dict]:
    """The index lines of an execution folder, by node id."""
    lines = (results / folder / "index.jsonl").read_text().splitlines()
    return {row["node_id"]: row for row in map(json.loads, lines)}


def plan(capsys, root: Path, results: Path, *args: str) -> dict:
    done = run_inprocess(capsys, root, "plan", *args, "--storage", str(results), "--json")
    assert done.ret == 0, done.out + done.err
    return json.loads(done.out)


def states(planned: dict) -> dict[str, str]:
    return {t["node_id"]: t["state"] for t in planned["trials"]}


def snapshot(folder: Path) -> dict[str, bytes | None]:
    """Every file (bytes) and folder (None) below ``folder``."""
    return {str(p.relative_to(folder)): (p.read_bytes() if p.is_file() else None) for p in folder.rglob("*")}


def edit(path: Path, text: str) -> None:
    """Write ``text`` into ``path``: of another size, so that a coarse mtime cannot hide the change."""
    assert len(path.read_bytes()) != len(text.encode())
    path.write_text(text)


# -- a full run, then --needed -------------------------------------------------------------------------------


def test_after_a_full_run_needed_runs_nothing_and_reports_every_trial_cached(project, tmp_path, capsys):
    results = tmp_path / "results"
    first = run_inprocess(capsys, project, "--repeat", "2", "--storage", str(results))
    assert first.ret == 0 and "4 passed in" in first.out, first.out + first.err
    [execution_id] = executions(results)

    again = run_inprocess(capsys, project, "--repeat", "2", "--storage", str(results), "--needed")
    assert again.ret == 0, again.out + again.err
    assert f"execution {execution_id} (seed" in again.out  # the latest execution's global seed
    assert "collected 4 trials\nneeded: 4 done\n" in again.out
    assert re.search(r"^alpha cc\s+\[ 50%\]$", again.out, re.M), again.out
    assert re.search(r"^beta cc\s+\[100%\]$", again.out, re.M), again.out
    assert re.search(r"^=+ 4 cached in [\d.]+ s =+$", again.out, re.M), again.out

    # Stored as the same id, in a folder of its own: one cached line per trial, and no trial folder.
    assert executions(results) == [execution_id, f"{execution_id}-2"]
    assert not [p for p in (results / f"{execution_id}-2").iterdir() if p.is_dir()]
    original, cached = index(results, execution_id), index(results, f"{execution_id}-2")
    assert set(cached) == set(original) == {"alpha[r0]", "alpha[r1]", "beta[r0]", "beta[r1]"}
    for node_id, line in cached.items():
        ran = original[node_id]
        assert line["status"] == "cached"
        assert line["cached_from"] == f"{execution_id}/{ran['uid']}"
        assert (line["seed"], line["config"], line["code"]) == (ran["seed"], ran["config"], ran["code"])
        assert line["metrics"]["last"] == ran["metrics"]["last"]

    show = run_inprocess(capsys, project, "show", execution_id, "--storage", str(results), "--no-group")
    assert show.ret == 0 and "4 trials: 4 cached" in show.out, show.out + show.err
    assert len(re.findall(r"^(alpha|beta)\[r\d\]\s+cached\s", show.out, re.M)) == 4, show.out


def test_ml_execute_needed_gives_cached_results_with_the_stored_trials_records(project, tmp_path):
    results = str(tmp_path / "results")
    task = ml.Task().component("alpha").component("beta").repeat(2)
    first = ml.execute(task, storage=results, project=project, echo=False)
    assert [t.status for t in first.trials] == ["passed"] * 4

    again = ml.execute(task, storage=results, project=project, echo=False, needed=True)
    assert again.id == first.id and again.folder == f"{first.id}-2"
    assert again.summary().startswith("4 cached in ") and not again.failed
    ran = {t.node_id: t for t in first.trials}
    assert sorted(t.node_id for t in again.trials) == sorted(ran)
    for trial in again.trials:
        original = ran[trial.node_id]
        assert trial.status == "cached" and trial.passed
        assert trial.cached_from == f"{first.id}/{original.uid}"
        assert trial.seed == original.seed
        assert trial.records == original.records
        assert (trial.config, trial.code) == (original.config, original.code)

    stored = ml.Storage(results).get(again.folder)
    assert [(e["status"], e["cached_from"]) for e in stored.results()] == [
        ("cached", t.cached_from) for t in again.trials
    ]
    pytest.importorskip("pandas")
    frame = again.to_pandas()
    assert list(frame["status"]) == ["cached"] * 4


def test_the_code_fingerprint_holds_the_component_module_and_the_project_files_it_imports(project, tmp_path):
    results = tmp_path / "results"
    execution = ml.execute(
        ml.Task().component("alpha").component("beta"), storage=str(results), project=project, echo=False
    )
    alpha, beta = execution.trials
    # The module and what it imports, with each package on the way; never machinable.yaml, notes.py (imported
    # by nothing) or modules outside the project (machinable itself).
    assert sorted(alpha.code) == ["alpha.py", "tools/__init__.py", "tools/scaling.py"]
    assert sorted(beta.code) == ["beta.py"]
    trial_json = json.loads(next(results.glob(f"{execution.id}/*/trial.json")).read_text())
    assert trial_json["code"] in (alpha.code, beta.code)
    plan_codes = {
        p["node_id"]: p["code"]
        for p in json.loads((results / execution.id / "execution.json").read_text())["plan"]
    }
    assert plan_codes == {"alpha": alpha.code, "beta": beta.code}
    assert {k: v["code"] for k, v in index(results, execution.id).items()} == plan_codes


# -- a growing sweep -----------------------------------------------------------------------------------------


def test_a_new_sweep_value_runs_alone_with_the_seed_a_full_run_of_the_original_execution_gives_it(
    project, tmp_path, capsys
):
    results = tmp_path / "results"
    assert run_inprocess(capsys, project, "alpha", "--storage", str(results)).ret == 0
    [execution_id] = executions(results)
    before = index(results, execution_id)["alpha"]

    grown = run_inprocess(capsys, project, "alpha", "lr=0.1,0.2", "--storage", str(results), "--needed")
    assert grown.ret == 0, grown.out + grown.err
    assert "collected 2 trials\nneeded: 1 new, 1 done\n" in grown.out
    assert re.search(r"^=+ 1 passed, 1 cached in [\d.]+ s =+$", grown.out, re.M), grown.out
    lines = index(results, f"{execution_id}-2")
    # The default lr is 0.1: 'alpha' ran it before, under another node id, and keeps its seed.
    assert lines["alpha[lr=0.1]"]["status"] == "cached"
    assert lines["alpha[lr=0.1]"]["seed"] == before["seed"]
    assert lines["alpha[lr=0.2]"]["status"] == "passed"

    full = ml.execute(
        "alpha", storage=str(tmp_path / "full"), seed=execution_id, overrides=["lr=0.1,0.2"],
        project=project, echo=False,
    )  # fmt: skip
    assert full.id == execution_id
    assert lines["alpha[lr=0.2]"]["seed"] == {t.node_id: t.seed for t in full.trials}["alpha[lr=0.2]"]


def test_a_third_repeat_runs_alone_with_the_seeds_a_full_run_gives_it(project, tmp_path, capsys):
    results = tmp_path / "results"
    assert run_inprocess(capsys, project, "--repeat", "2", "--storage", str(results)).ret == 0
    [execution_id] = executions(results)

    more = run_inprocess(capsys, project, "--repeat", "3", "--storage", str(results), "--needed")
    assert more.ret == 0, more.out + more.err
    assert "collected 6 trials\nneeded: 2 new, 4 done\n" in more.out
    assert re.search(r"^=+ 2 passed, 4 cached in [\d.]+ s =+$", more.out, re.M), more.out
    lines = index(results, f"{execution_id}-2")
    ran = {node for node, line in lines.items() if line["status"] == "passed"}
    assert ran == {"alpha[r2]", "beta[r2]"}

    full = ml.execute(
        ml.Task().component("alpha").component("beta").repeat(3),
        storage=str(tmp_path / "full"), seed=execution_id, project=project, echo=False,
    )  # fmt: skip
    seeds = {t.node_id: t.seed for t in full.trials}
    assert {node: lines[node]["seed"] for node in ran} == {node: seeds[node] for node in ran}
    # ... and the trials that ran before have the seeds they ran with (the same as the full run's here).
    assert {node: line["seed"] for node, line in lines.items()} == seeds


# -- what makes a trial stale or new -------------------------------------------------------------------------


def test_editing_a_module_one_component_imports_makes_exactly_its_trials_stale_and_needed_reruns_them(
    project, tmp_path, capsys
):
    results = tmp_path / "results"
    assert run_inprocess(capsys, project, "--repeat", "2", "--storage", str(results)).ret == 0
    [execution_id] = executions(results)
    first = index(results, execution_id)
    edit(project / "tools" / "scaling.py", TRIPLE)

    shown = run_inprocess(capsys, project, "plan", "--repeat", "2", "--storage", str(results))
    assert shown.ret == 0, shown.out + shown.err
    for node in ("alpha[r0]", "alpha[r1]"):
        assert re.search(
            rf"^stale\s+{re.escape(node)}\s+{first[node]['seed']}\s+passed in {execution_id}; "
            r"changed: tools/scaling\.py$",
            shown.out,
            re.M,
        ), shown.out
    for node in ("beta[r0]", "beta[r1]"):
        assert re.search(rf"^done\s+{re.escape(node)}\s+\d+\s+passed in {execution_id}$", shown.out, re.M)
    assert shown.lines[-1] == "2 stale, 2 done; --needed would run 2 trials"
    planned = plan(capsys, project, results, "--repeat", "2")
    assert {t["node_id"]: t["changed"] for t in planned["trials"]} == {
        "alpha[r0]": ["tools/scaling.py"],
        "alpha[r1]": ["tools/scaling.py"],
        "beta[r0]": [],
        "beta[r1]": [],
    }

    # A process of its own, so the new code is what runs.
    rerun = run_subprocess(project, "--repeat", "2", "--storage", str(results), "--needed")
    assert rerun.ret == 0, rerun.out + rerun.err
    assert "needed: 2 stale, 2 done" in rerun.out
    assert re.search(r"^=+ 2 passed, 2 cached in [\d.]+ s =+$", rerun.out, re.M), rerun.out
    lines = index(results, f"{execution_id}-2")
    assert {node: line["status"] for node, line in lines.items()} == {
        "alpha[r0]": "passed",
        "alpha[r1]": "passed",
        "beta[r0]": "cached",
        "beta[r1]": "cached",
    }
    for node in ("alpha[r0]", "alpha[r1]"):
        assert lines[node]["seed"] == first[node]["seed"]  # the same trial, run again
        assert lines[node]["metrics"]["last"]["y"] == pytest.approx(0.3)  # with the new code
    assert set(states(plan(capsys, project, results, "--repeat", "2")).values()) == {"done"}


def test_editing_a_file_no_trial_imports_changes_nothing(project, tmp_path, capsys):
    results = tmp_path / "results"
    assert run_inprocess(capsys, project, "--repeat", "2", "--storage", str(results)).ret == 0
    edit(project / "notes.py", "NOTE = 'still imported by no component'\n")
    # A comment in machinable.yaml leaves every resolved configuration as it is.
    edit(project / "machinable.yaml", "# two components\n" + YAML)

    shown = run_inprocess(capsys, project, "plan", "--repeat", "2", "--storage", str(results))
    assert shown.ret == 0 and shown.lines[-1] == "4 done; --needed would run 0 trials", shown.out


def test_editing_the_defaults_of_one_component_makes_its_trials_new_and_leaves_the_others_done(
    project, tmp_path, capsys
):
    results = tmp_path / "results"
    assert run_inprocess(capsys, project, "--repeat", "2", "--storage", str(results)).ret == 0
    edit(project / "machinable.yaml", YAML.replace("n: 1", "n: 20"))

    planned = plan(capsys, project, results, "--repeat", "2")
    assert states(planned) == {"alpha[r0]": "done", "alpha[r1]": "done", "beta[r0]": "new", "beta[r1]": "new"}
    assert planned["counts"] == {"new": 2, "done": 2}
    for trial in planned["trials"]:
        if trial["state"] == "new":  # its configuration changed: it is another trial, nothing is stored of it
            assert trial["config"] == {"n": 20}
            assert (trial["execution"], trial["uid"], trial["status"]) == (None, None, None)
    rerun = run_inprocess(capsys, project, "--repeat", "2", "--storage", str(results), "--needed")
    assert rerun.ret == 0 and "needed: 2 new, 2 done" in rerun.out, rerun.out + rerun.err
    assert re.search(r"^=+ 2 passed, 2 cached in [\d.]+ s =+$", rerun.out, re.M), rerun.out


def test_a_stale_trial_run_again_in_the_same_process_runs_the_changed_code(project, tmp_path):
    """A notebook: run, edit a module the component imports, run with needed=True in the same process."""
    results = str(tmp_path / "results")
    first = ml.execute("alpha", storage=results, project=project, echo=False)
    assert first.trials[0].records[-1]["y"] == pytest.approx(0.2)
    edit(project / "tools" / "scaling.py", TRIPLE)

    again = ml.execute("alpha", storage=results, project=project, echo=False, needed=True)
    [trial] = again.trials
    assert trial.status == "passed"  # stale, so it ran again: with the code its fingerprint names
    assert trial.code["tools/scaling.py"] != first.trials[0].code["tools/scaling.py"]
    assert trial.records[-1]["y"] == pytest.approx(0.3)


def test_two_node_ids_of_one_configuration_keep_their_own_seeds_and_results(tmp_path, capsys):
    """The example project collects ``optimization[r0]`` (optimization.py) and
    ``tasks/example.py::optimization[r0]``: the same component, configuration and repeat number, two node ids,
    so a full run gives them two seeds. A --needed run after it must report each with its own result."""
    root = copy_example_project(tmp_path / "example_project")
    results = tmp_path / "results"
    first = run_inprocess(capsys, root, "--repeat", "2", "--seed", "42", "--storage", str(results))
    assert first.ret == 0, first.out + first.err
    ran = index(results, "8gWVkz")

    planned = plan(capsys, root, results, "--repeat", "2")
    assert {t["node_id"]: (t["state"], t["seed"], t["uid"]) for t in planned["trials"]} == {
        node: ("done", line["seed"], line["uid"]) for node, line in ran.items()
    }
    again = run_inprocess(capsys, root, "--repeat", "2", "--storage", str(results), "--needed")
    assert again.ret == 0, again.out + again.err
    cached = index(results, "8gWVkz-2")
    assert {node: line["cached_from"] for node, line in cached.items()} == {
        node: f"8gWVkz/{line['uid']}" for node, line in ran.items()
    }


# -- killed runs ---------------------------------------------------------------------------------------------


def steps_project(make_project, tmp_path: Path) -> tuple[Path, dict[str, str]]:
    root = make_project("components:\n  - steps:\n      n: 0\n", {"steps.py": STEPS})
    env = {
        "RAN_LOG": str(tmp_path / "ran.log"),
        "GO_FLAG": str(tmp_path / "go"),
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    return root, env


def start(root: Path, env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "machinable", *args],
        cwd=root,
        env=clean_env(**env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def wait_for_trial(
    process: subprocess.Popen[str], results: Path, node_id: str, folder: str = "*", timeout: float = 60
) -> None:
    """Poll the storage until the trial ``node_id`` of ``process`` has started (its trial.json is there)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()[0]
        for path in results.glob(f"{folder}/*/trial.json"):
            try:
                if json.loads(path.read_text()).get("node_id") == node_id:
                    return
            except ValueError:  # being written
                pass
        time.sleep(0.02)
    pytest.fail(f"{node_id} did not start within {timeout} s")


def kill(process: subprocess.Popen[str]) -> None:
    os.kill(process.pid, signal.SIGKILL)
    process.communicate(timeout=30)  # reaped: its pid is gone, so its running trial reads as crashed


@pytest.mark.slow
@pytest.mark.skipif(os.name != "posix", reason="SIGKILL")
def test_a_trial_killed_with_sigkill_is_failed_in_plan_and_needed_runs_it_again(
    make_project, tmp_path, capsys
):
    root, env = steps_project(make_project, tmp_path)
    results = tmp_path / "results"
    sweep = ("n=0,1,2,3", "--storage", str(results))
    run = start(root, {**env, "WAIT_AT": "2"}, *sweep)
    try:
        wait_for_trial(run, results, "steps[n=2]")
        [execution_id] = executions(results)
        # While it runs: running (neither started again by --needed nor counted as failed).
        assert states(plan(capsys, root, results, "n=0,1,2,3")) == {
            "steps[n=0]": "done",
            "steps[n=1]": "done",
            "steps[n=2]": "running",
            "steps[n=3]": "new",
        }
    finally:
        kill(run)

    shown = run_inprocess(capsys, root, "plan", *sweep)
    assert shown.ret == 0, shown.out + shown.err
    assert re.search(rf"^failed\s+steps\[n=2\]\s+\d+\s+crashed in {execution_id}$", shown.out, re.M), (
        shown.out
    )
    assert re.search(r"^new\s+steps\[n=3\]\s+\d+\s*$", shown.out, re.M), shown.out
    assert shown.lines[-1] == "1 new, 1 failed, 2 done; --needed would run 2 trials"
    [crashed] = [t for t in plan(capsys, root, results, "n=0,1,2,3")["trials"] if t["state"] == "failed"]
    assert (crashed["node_id"], crashed["status"]) == ("steps[n=2]", "crashed")

    (tmp_path / "go").touch()
    rerun = run_subprocess(root, *sweep, "--needed", **env)
    assert rerun.ret == 0, rerun.out + rerun.err
    assert "needed: 1 new, 1 failed, 2 done" in rerun.out
    assert re.search(r"^=+ 2 passed, 2 cached in [\d.]+ s =+$", rerun.out, re.M), rerun.out
    lines = index(results, f"{execution_id}-2")
    assert {node: line["status"] for node, line in lines.items()} == {
        "steps[n=0]": "cached",
        "steps[n=1]": "cached",
        "steps[n=2]": "passed",
        "steps[n=3]": "passed",
    }
    assert lines["steps[n=2]"]["seed"] == crashed["seed"]  # the same trial, run again


@pytest.mark.slow
@pytest.mark.skipif(os.name != "posix", reason="SIGKILL")
def test_kill_9_during_a_needed_run_then_plan_gives_each_trial_its_state(make_project, tmp_path, capsys):
    root, env = steps_project(make_project, tmp_path)
    results = tmp_path / "results"
    assert run_subprocess(root, "n=0,1", "--storage", str(results), **env).ret == 0
    [execution_id] = executions(results)

    sweep = ("n=0,1,2,3,4", "--storage", str(results))
    run = start(root, {**env, "WAIT_AT": "3"}, *sweep, "--needed")
    try:
        wait_for_trial(run, results, "steps[n=3]", folder=f"{execution_id}-2")
    finally:
        kill(run)

    planned = plan(capsys, root, results, "n=0,1,2,3,4")
    by_node = {t["node_id"]: t for t in planned["trials"]}
    assert {node: (t["state"], t["execution"], t["status"]) for node, t in by_node.items()} == {
        "steps[n=0]": ("done", execution_id, "passed"),  # ran before
        "steps[n=1]": ("done", execution_id, "passed"),
        "steps[n=2]": ("done", f"{execution_id}-2", "passed"),  # ended before the kill
        "steps[n=3]": ("failed", f"{execution_id}-2", "crashed"),  # killed while it ran
        "steps[n=4]": ("new", None, None),  # never started
    }
    assert planned["counts"] == {"new": 1, "failed": 1, "done": 3}

    # The killed run's claims are taken over: its process is gone.
    (tmp_path / "go").touch()
    rerun = run_subprocess(root, *sweep, "--needed", **env)
    assert rerun.ret == 0, rerun.out + rerun.err
    assert "needed: 1 new, 1 failed, 3 done" in rerun.out and "concurrent" not in rerun.out
    assert re.search(r"^=+ 2 passed, 3 cached in [\d.]+ s =+$", rerun.out, re.M), rerun.out
    assert set(states(plan(capsys, root, results, "n=0,1,2,3,4")).values()) == {"done"}


# -- concurrent --needed runs --------------------------------------------------------------------------------


def ran_counts(log: Path) -> Counter[str]:
    return Counter(line.split()[0] for line in log.read_text().splitlines())


@pytest.mark.slow
def test_two_concurrent_needed_runs_never_run_the_same_trial_twice(make_project, tmp_path):
    root, env = steps_project(make_project, tmp_path)
    results = tmp_path / "results"
    # A first run fixes the global seed that both runs then plan with.
    assert run_subprocess(root, "n=0", "--storage", str(results), **env).ret == 0
    [execution_id] = executions(results)

    sweep = ("n=0,1,2,3,4,5", "--storage", str(results), "--needed")
    runs = [start(root, {**env, "WAIT_AT": "*"}, *sweep) for _ in range(2)]
    try:
        # Every trial waits for GO_FLAG until both runs have chosen their trials (each opens its execution
        # after that): all claims are taken while no trial has ended.
        deadline = time.monotonic() + 60
        while len(executions(results)) < 3 and time.monotonic() < deadline:
            assert all(r.poll() is None for r in runs), [r.communicate()[0] for r in runs]
            time.sleep(0.02)
        (tmp_path / "go").touch()
        outputs = [r.communicate(timeout=60)[0] for r in runs]
    finally:
        for r in runs:
            if r.poll() is None:
                r.kill()
                r.communicate()
    assert [r.returncode for r in runs] == [0, 0], outputs

    assert ran_counts(tmp_path / "ran.log") == {str(n): 1 for n in range(6)}
    # Each run's report accounts for every trial: run, cached, or left to the other run (running there, or
    # claimed by it and not started yet).
    passed = []
    for out in outputs:
        line = re.search(r"^needed: (.*)$", out, re.M)
        summary = re.search(r"^=+ (?:(\d+) passed, )?1 cached in [\d.]+ s =+$", out, re.M)
        assert line and summary, out
        needed = {part.split(" ", 1)[1]: int(part.split(" ", 1)[0]) for part in line.group(1).split(", ")}
        assert needed.pop("done") == 1 and needed.get("new", 0) + needed.get("running", 0) == 5, out
        passed.append(int(summary.group(1) or 0))
        elsewhere = needed.get("running", 0) + needed.get("taken by a concurrent run", 0)
        assert passed[-1] + elsewhere == 5, out
    assert sum(passed) == 5
    # ... and so do the two executions' indexes.
    ran_by = []
    for folder in (f"{execution_id}-2", f"{execution_id}-3"):
        lines = index(results, folder)
        assert lines["steps[n=0]"]["status"] == "cached"
        ran_by.append({node for node, line in lines.items() if line["status"] == "passed"})
    assert sorted(len(r) for r in ran_by) == sorted(passed)
    assert not ran_by[0] & ran_by[1]
    assert ran_by[0] | ran_by[1] == {f"steps[n={n}]" for n in range(1, 6)}


@pytest.mark.slow
def test_a_needed_run_that_ends_while_another_chooses_its_trials_is_not_run_again(
    make_project, tmp_path, monkeypatch
):
    """Run B reads the storage, then run A (another process) runs the same trials and ends, then B takes its
    claims: what A ran must not run again in B (the window between reading the storage and claiming)."""
    root, env = steps_project(make_project, tmp_path)
    results = tmp_path / "results"
    assert run_subprocess(root, "n=0", "--storage", str(results), **env).ret == 0
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    load = identities.StoredIdentities.load.__func__

    def load_then_let_another_run_finish(cls, storage):
        found = load(cls, storage)
        if not (tmp_path / "other.done").exists():
            (tmp_path / "other.done").touch()
            other = run_subprocess(root, "n=0,1,2", "--storage", str(results), "--needed", **env)
            assert other.ret == 0 and "1 cached" in other.out and "2 passed" in other.out, other.out
        return found

    monkeypatch.setattr(identities.StoredIdentities, "load", classmethod(load_then_let_another_run_finish))
    execution = ml.execute(
        "steps", storage=str(results), project=root, overrides=["n=0,1,2"], needed=True, echo=False
    )
    assert ran_counts(tmp_path / "ran.log") == {"0": 1, "1": 1, "2": 1}
    assert {t.status for t in execution.trials} == {"cached"}  # what A ran is cached here, or left to A


# -- machinable plan -----------------------------------------------------------------------------------------


def test_plan_json_lists_each_trial_with_its_state_and_where_it_is_stored(project, tmp_path, capsys):
    results = tmp_path / "results"
    assert (
        run_inprocess(
            capsys, project, "alpha", "--repeat", "2", "--seed", "42", "--storage", str(results)
        ).ret
        == 0
    )
    ran = index(results, "8gWVkz")

    planned = plan(capsys, project, results, "alpha", "lr=0.1,0.2", "--repeat", "2")
    assert set(planned) == {"storage", "counts", "trials"}
    assert planned["storage"] == str(results) and planned["counts"] == {"new": 2, "done": 2}
    keys = {"node_id", "component", "config", "seed", "state", "execution", "uid", "status", "changed"}
    assert all(set(t) == keys for t in planned["trials"])
    by_node = {t["node_id"]: t for t in planned["trials"]}
    assert list(by_node) == [
        "alpha[lr=0.1][r0]",
        "alpha[lr=0.1][r1]",
        "alpha[lr=0.2][r0]",
        "alpha[lr=0.2][r1]",
    ]
    for r in (0, 1):
        done, stored = by_node[f"alpha[lr=0.1][r{r}]"], ran[f"alpha[r{r}]"]
        assert done == {
            "node_id": f"alpha[lr=0.1][r{r}]",
            "component": "alpha",
            "config": {"lr": 0.1},
            "seed": stored["seed"],
            "state": "done",
            "execution": "8gWVkz",
            "uid": stored["uid"],
            "status": "passed",
            "changed": [],
        }
        new = by_node[f"alpha[lr=0.2][r{r}]"]
        assert (new["state"], new["config"], new["execution"], new["uid"], new["status"]) == (
            "new", {"lr": 0.2}, None, None, None,
        )  # fmt: skip
        assert isinstance(new["seed"], int)
    # -k selects as a run does.
    assert states(plan(capsys, project, results, "alpha", "lr=0.1,0.2", "-k", "lr=0.2")) == {
        "alpha[lr=0.2]": "new"
    }


def test_plan_writes_nothing_to_the_storage(project, tmp_path, capsys):
    results = tmp_path / "results"
    assert run_inprocess(capsys, project, "--repeat", "2", "--storage", str(results)).ret == 0
    edit(project / "tools" / "scaling.py", TRIPLE)
    before = snapshot(results)
    for args in (["--repeat", "3"], ["--repeat", "3", "--json"], ["alpha", "lr=0.5", "--seed", "7"]):
        shown = run_inprocess(capsys, project, "plan", *args, "--storage", str(results))
        assert shown.ret == 0, shown.out + shown.err
    assert snapshot(results) == before
    # ... nor creates a storage that is not there.
    assert run_inprocess(capsys, project, "plan", "--storage", str(tmp_path / "none")).ret == 0
    assert not (tmp_path / "none").exists()


def test_with_an_explicit_seed_a_trial_stored_with_another_seed_is_new(project, tmp_path, capsys):
    results = tmp_path / "results"
    assert run_inprocess(capsys, project, "--seed", "42", "--storage", str(results)).ret == 0
    assert set(states(plan(capsys, project, results, "--seed", "42")).values()) == {"done"}
    assert set(states(plan(capsys, project, results, "--seed", "43")).values()) == {"new"}


def test_needed_and_plan_without_a_storage_on_disk_are_usage_errors(project, capsys):
    for args in (
        ["--needed", "--storage", "memory://"],
        ["--needed"],
        ["plan"],
        ["plan", "--storage", "memory://"],
    ):
        done = run_inprocess(capsys, project, *args)
        assert done.ret == 4, (args, done.out, done.err)
        assert done.out == ""
        [line] = done.err.splitlines()
        assert line.startswith("ERROR: ") and "storage" in line


# -- machinable show: stale results --------------------------------------------------------------------------


def test_show_marks_the_trials_whose_imported_code_changed_as_stale(project, tmp_path, capsys):
    results = tmp_path / "results"
    assert run_inprocess(capsys, project, "--repeat", "2", "--storage", str(results)).ret == 0
    [execution_id] = executions(results)
    show = ("show", execution_id, "--storage", str(results))
    before = run_inprocess(capsys, project, *show)
    assert before.ret == 0 and "STALE" not in before.out, before.out

    edit(project / "tools" / "scaling.py", TRIPLE)
    after = run_inprocess(capsys, project, *show)
    assert after.ret == 0, after.out + after.err
    assert (
        "STALE: 2 trials ran code that changed since (tools/scaling.py); `machinable plan` lists them, "
        "`machinable --needed` runs them again"
    ) in after.lines
    header = next(line.split() for line in after.lines if line.startswith("component "))
    column = header.index("STALE")
    rows = {
        line.split()[0]: line.split() for line in after.lines if line.split()[:1] in (["alpha"], ["beta"])
    }
    assert (rows["alpha"][column], rows["beta"][column]) == ("2", "0"), after.out
    one_by_one = run_inprocess(capsys, project, *show, "--no-group")
    header = next(line.split() for line in one_by_one.lines if line.startswith("NODE ID "))
    column = header.index("STALE") - 1  # "NODE ID" is two words
    marks = {row[0]: row[column] for row in map(str.split, one_by_one.lines) if row and "[r" in row[0]}
    assert marks == {"alpha[r0]": "1", "alpha[r1]": "1", "beta[r0]": "0", "beta[r1]": "0"}, one_by_one.out

    # Once --needed ran them again, the latest execution holds nothing stale.
    assert run_subprocess(project, "--repeat", "2", "--storage", str(results), "--needed").ret == 0
    latest = run_inprocess(capsys, project, *show)
    assert latest.ret == 0 and "STALE" not in latest.out, latest.out


def test_show_from_another_project_marks_nothing_stale(project, make_project, tmp_path, capsys):
    results = tmp_path / "results"
    assert run_inprocess(capsys, project, "--storage", str(results)).ret == 0
    [execution_id] = executions(results)
    elsewhere = make_project("components:\n", {}, root=tmp_path / "elsewhere")
    shown = run_inprocess(capsys, elsewhere, "show", execution_id, "--storage", str(results))
    assert shown.ret == 0, shown.out + shown.err
    # Not one file of the execution's project changed: they are just not in this other folder.
    assert "STALE" not in shown.out, shown.out


# -- the documentation ---------------------------------------------------------------------------------------


def section() -> str:
    text = PAGE.read_text()
    assert SECTION in text
    rest = text.split(SECTION, 1)[1]
    return rest.split("\n## ", 1)[0]


def doc_commands() -> list[tuple[str, str]]:
    """(command line, shown output) of the section's console blocks, in order."""
    return examples(text=section())


def test_the_section_shows_plan_needed_and_show():
    commands = [c for c, _ in doc_commands()]
    assert any(c.startswith("machinable plan ") for c in commands)
    assert any(c.endswith(" --needed") for c in commands)
    assert any(c.startswith("machinable show ") for c in commands)
    assert any(not c.startswith("machinable ") for c in commands)  # an edit between two commands


def test_the_console_examples_of_the_section_print_what_it_shows(tmp_path, monkeypatch, capsys):
    """One session in a copy of the example project, command after command: ``machinable`` in this process,
    anything else (the edit of a file) through the shell."""
    root = example_project(tmp_path)
    monkeypatch.chdir(root)
    monkeypatch.setenv("COLUMNS", "80")
    wrong = []
    for command, expected in doc_commands():
        if command.startswith("machinable "):
            wrong.append(mismatch(capsys, root, command, expected))
        else:
            done = subprocess.run(command, shell=True, cwd=root, capture_output=True, text=True, timeout=30)
            assert done.returncode == 0 and done.stdout == expected, (command, done.stdout, done.stderr)
    assert not any(wrong), "\n\n".join(w for w in wrong if w)


def test_the_section_is_linked_from_the_cli_page():
    assert "reproducibility.md#never-run-the-same-trial-twice" in (ROOT / "docs" / "cli.md").read_text()


EXECUTED_YAML = """\
settings:
  code_identity: executed
components:
  - train:
"""

EXECUTED_FILES = {
    "helper.py": """\
        SCALE = 2


        def used(x):
            return x * SCALE


        def unused(x):
            return x
    """,
    "train.py": """\
        import machinable as ml
        from helper import used


        class Train(ml.Component):
            def on_execute(self):
                self.record["y"] = used(3)
                self.record.save()
    """,
}


def test_code_identity_executed_fingerprints_the_functions_a_trial_ran(make_project, tmp_path, capsys):
    root = make_project(EXECUTED_YAML, EXECUTED_FILES)
    results = tmp_path / "results"
    assert run_inprocess(capsys, root, "--storage", str(results)).ret == 0
    (folder,) = executions(results)
    (line,) = index(results, folder).values()
    assert set(line["code"]) == {
        "helper.py::<module>",
        "helper.py::used",
        "train.py::<module>",
        "train.py::Train.on_execute",
    }
    helper = root / "helper.py"
    # a function no trial called: still done
    helper.write_text(helper.read_text().replace("return x\n", "return x + 1\n"))
    assert set(states(plan(capsys, root, results)).values()) == {"done"}
    # a constant at the top of a file the trial ran code of: stale, named
    helper.write_text(helper.read_text().replace("SCALE = 2", "SCALE = 3"))
    planned = plan(capsys, root, results)
    assert set(states(planned).values()) == {"stale"}
    assert planned["trials"][0]["changed"] == ["helper.py::<module>"]
    # --needed runs it again with the changed code
    done = run_inprocess(capsys, root, "--storage", str(results), "--needed")
    assert done.ret == 0 and "1 passed" in done.out
    latest = sorted(executions(results))[-1]
    assert [row["y"] for row in ml.Storage(results).get(latest).trials[0].records] == [9]
