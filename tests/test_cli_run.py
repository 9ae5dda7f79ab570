"""Running trials from the command line: the report, captured output, stopping early, seeds, storage, engines."""

from __future__ import annotations

import re
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest
from cli_helpers import FLAKY, run_inprocess, run_subprocess, write_project

import machinable as ml

YAML = """
components:
  - flaky:
      fail: false
      ~bad:
        fail: true
"""

TASKS = """
import machinable as ml

task = ml.Task().component("flaky", [{"fail": False}, {"fail": True}, {"fail": True}])
"""


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return write_project(tmp_path / "project", YAML, {"flaky.py": FLAKY, "tasks/sweep.py": TASKS})


@pytest.fixture
def cli(capsys, root):
    return lambda *args: run_inprocess(capsys, root, *args)


def test_a_run_reports_progress_failures_and_a_summary(cli, root):
    result = cli()
    assert result.ret == 1
    assert "collected 4 trials" in result.out
    assert re.search(r"^flaky \.\s+\[ 25%\]$", result.out, re.M)
    assert re.search(r"^tasks/sweep.py \.FF\s+\[100%\]$", result.out, re.M)
    assert re.search(r"^=+ FAILURES =+$", result.out, re.M)
    assert re.search(r"^_+ tasks/sweep.py::flaky\[fail=true\] _+$", result.out, re.M)
    assert re.search(r"^_+ tasks/sweep.py::flaky#2\[fail=true\] _+$", result.out, re.M)
    assert 'flaky.py", line 8, in on_execute' in result.out
    assert "ValueError: asked to fail" in result.out
    assert "FAILED tasks/sweep.py::flaky[fail=true] - ValueError: asked to fail" in result.out
    assert re.fullmatch(r"=+ 2 passed, 2 failed in \d+\.\d\d s =+", result.lines[-1])


def test_a_progress_line_ends_with_the_percentage_of_trials_reported_so_far(cli):
    assert cli("-q").ret == 1
    # --ff: the two failures of tasks/sweep.py first, then flaky, then the rest of tasks/sweep.py
    result = cli("--ff")
    assert re.search(
        r"^tasks/sweep.py FF\s+\[ 50%\]\nflaky \.\s+\[ 75%\]\ntasks/sweep.py \.\s+\[100%\]$", result.out, re.M
    )


def test_trial_output_is_shown_for_failures_not_interleaved_with_progress(cli):
    result = cli()
    assert re.search(r"^-+ Captured output -+\nrunning with fail=True$", result.out, re.M)
    assert "running with fail=False" not in result.out  # a passing trial's output stays in storage


def test_dash_s_shows_trial_output_live(cli):
    result = cli("-s", "flaky")
    assert "running with fail=False" in result.out


def test_verbose_prints_a_line_per_trial_with_its_status(cli):
    result = cli("-v")
    assert re.search(r"^flaky PASSED\s+\[ 25%\]$", result.out, re.M)
    assert re.search(r"^tasks/sweep.py::flaky#2\[fail=true\] FAILED\s+\[100%\]$", result.out, re.M)


def test_quiet_drops_the_header_and_frames(cli):
    result = cli("-q")
    assert "session starts" not in result.out
    assert result.lines[0].startswith(".")
    assert re.fullmatch(r"2 passed, 2 failed in \S+ s", result.lines[-1])


def test_maxfail_stops_after_n_failures(cli):
    result = cli("--maxfail", "1", "-v")
    assert "stopping after 1 failure" in result.out
    assert re.search(r"=+ 2 passed, 1 failed in \S+ s =+$", result.out)


def test_all_passed_is_exit_code_0(cli):
    assert cli("-k", "not fail=true").ret == 0


def test_the_header_names_the_execution_storage_and_engine(cli, root):
    result = cli("--seed", "42", "--co")
    assert f"project: {root}" in result.out
    assert re.search(r"^execution 8gWVkz \(seed \d+\), storage memory://\S+, engine local$", result.out, re.M)


def test_seed_takes_an_execution_id(cli):
    result = cli("--seed", "OY1p1o", "--co")
    assert "execution OY1p1o (seed 22490017876)" in result.out


def test_seed_last_reuses_the_previous_execution_id(cli):
    assert cli("-q", "--seed", "42").ret == 1
    assert "execution 8gWVkz" in cli("--seed", "last", "--co").out


def test_seed_last_without_a_previous_run_is_a_usage_error(cli):
    result = cli("--seed", "last")
    assert result.ret == 4
    assert result.err == "ERROR: --seed last: no previous execution is recorded in .machinable_cache\n"


def test_storage_keeps_results_where_the_user_says(cli, tmp_path):
    results = tmp_path / "results"
    result = cli("--storage", str(results), "-k", "not fail=true", "--seed", "42")
    assert result.ret == 0
    [execution] = ml.Storage(str(results)).executions()
    assert execution.id == "8gWVkz"
    assert sorted(t.node_id for t in execution.trials) == ["flaky", "tasks/sweep.py::flaky[fail=false]"]


def test_repeat_runs_every_trial_n_times(cli):
    result = cli("--repeat", "2", "--co", "-q", "flaky")
    assert result.lines[:6] == [
        "flaky[r0]",
        "flaky[r1]",
        "tasks/sweep.py::flaky[fail=false][r0]",
        "tasks/sweep.py::flaky[fail=false][r1]",
        "tasks/sweep.py::flaky[fail=true][r0]",
        "tasks/sweep.py::flaky[fail=true][r1]",
    ]


def test_timeout_fails_a_trial_that_runs_too_long(capsys, tmp_path):
    slow = "import time\nimport machinable as ml\n\n@ml.component\ndef slow():\n    time.sleep(5)\n"
    root = write_project(tmp_path / "slow", "components:\n", {"components/slow.py": slow})
    result = run_inprocess(capsys, root, "--timeout", "0.2")
    assert result.ret == 1
    assert "timed out after 0.2 s" in result.out


def test_the_process_engine_runs_the_same_trials(cli):
    result = cli("--engine", "process:2", "-q")
    assert result.ret == 1
    assert re.fullmatch(r"2 passed, 2 failed in \S+ s", result.lines[-1])


def test_nothing_collected_is_exit_code_5(capsys, tmp_path):
    root = write_project(tmp_path / "empty")
    result = run_inprocess(capsys, root)
    assert result.ret == 5
    assert "collected 0 trials" in result.out
    assert re.fullmatch(r"=+ no trials ran in \S+ s =+", result.lines[-1])


def test_everything_deselected_is_exit_code_5(cli):
    result = cli("-k", "nothing_matches_this")
    assert result.ret == 5
    assert "4 deselected" in result.lines[-1]


EVENTS = """
import os
import machinable as ml

@ml.component
def dies():
    os._exit(3)

@ml.component
def interrupted():
    raise KeyboardInterrupt

@ml.component
def fine():
    pass
"""


def test_a_trial_whose_worker_dies_is_reported_as_crashed(capsys, tmp_path):
    root = write_project(tmp_path / "events", files={"components/events.py": EVENTS})
    result = run_inprocess(capsys, root, "--engine", "process:2", "-k", "dies or fine")
    assert result.ret == 1
    assert re.search(r"^dies C\s+\[ *\d+%\]$", result.out, re.M)  # workers finish in any order
    assert "CRASHED dies - worker process died" in result.out
    assert re.fullmatch(r"=+ 1 passed, 1 crashed, 1 deselected in \S+ s =+", result.lines[-1])


def test_an_interrupted_run_is_exit_code_2(capsys, tmp_path):
    root = write_project(tmp_path / "events", files={"components/events.py": EVENTS})
    result = run_inprocess(capsys, root, "-k", "interrupted or fine")
    assert result.ret == 2
    assert re.search(r"^!+ KeyboardInterrupt !+$", result.out, re.M)
    assert re.fullmatch(r"=+ 1 interrupted, 1 deselected in \S+ s =+", result.lines[-1])


WORKER_EVENTS = """
import ctypes
import os
import signal
import time
import machinable as ml

@ml.component
def segfaults():
    ctypes.string_at(0)

@ml.component
def presses_ctrl_c():
    # On the process engine the controller is this worker's parent: the same as a user's Ctrl-C.
    time.sleep(0.1)
    os.kill(os.getppid(), signal.SIGINT)
    time.sleep(30)
"""


def test_a_crashed_trial_is_summarised_by_its_cause_in_the_report_and_the_junit_xml(capsys, tmp_path):
    root = write_project(tmp_path / "events", files={"components/workers.py": WORKER_EVENTS})
    xml = tmp_path / "junit.xml"
    result = run_inprocess(capsys, root, "--engine", "process:1", "-k", "segfaults", "--junitxml", str(xml))
    assert result.ret == 1
    # The error goes on with the stack faulthandler wrote; its last line is a frame, not the reason.
    assert "CRASHED segfaults - worker process died with signal 11 (SIGSEGV)\n" in result.out
    assert 'workers.py", line 10 in segfaults' in result.out
    assert "machinable/runner.py" not in result.out  # the trial's frames only
    error = ET.parse(xml).getroot().find("testsuite/testcase/error")
    assert error.get("message") == "crashed: worker process died with signal 11 (SIGSEGV)"


def test_ctrl_c_on_the_process_engine_reports_the_running_trial_and_keeps_the_results(tmp_path):
    files = {"components/events.py": EVENTS, "components/workers.py": WORKER_EVENTS}
    root = write_project(tmp_path / "events", files=files)
    results, xml = tmp_path / "results", tmp_path / "junit.xml"
    # One worker: 'fine' (events.py comes first) passes, then 'presses_ctrl_c' runs until the interrupt.
    args = ["--engine", "process:1", "-k", "fine or ctrl", "--storage", str(results), "--junitxml", str(xml)]
    result = run_subprocess(root, *args, script=True)
    assert result.ret == 2, result.out + result.err
    assert "INTERRUPTED presses_ctrl_c - KeyboardInterrupt" in result.out
    assert re.search(r"^!+ KeyboardInterrupt !+$", result.out, re.M)
    assert re.fullmatch(r"=+ 1 passed, 1 interrupted, 3 deselected in \S+ s =+", result.lines[-1])
    [execution] = ml.Storage(str(results)).executions()
    assert {t.node_id: t.status for t in execution.trials} == {
        "fine": "passed",
        "presses_ctrl_c": "interrupted",
    }
    assert len(ET.parse(xml).getroot().findall("testsuite/testcase")) == 2


def test_exitfirst_on_the_process_engine_reports_the_trials_it_ended_as_interrupted(capsys, tmp_path):
    yaml = "components:\n  - quick_failure\n  - long_runner\n"
    files = {
        "quick_failure.py": "import time\nimport machinable as ml\nclass QuickFailure(ml.Component):\n"
        "    def on_execute(self):\n        time.sleep(0.5)\n        raise ValueError('early')\n",
        "long_runner.py": "import time\nimport machinable as ml\nclass LongRunner(ml.Component):\n"
        "    def on_execute(self):\n        time.sleep(30)\n",
    }
    root = write_project(tmp_path / "project", yaml, files)
    storage = tmp_path / "results"
    result = run_inprocess(capsys, root, "-x", "--engine", "process:2", "--storage", str(storage))
    assert result.ret == 1
    assert re.search(r"=+ 1 failed, 1 interrupted in \S+ s =+$", result.out)
    [stored] = ml.Storage(str(storage)).executions()
    assert sorted(t.status for t in stored.trials) == ["failed", "interrupted"]
