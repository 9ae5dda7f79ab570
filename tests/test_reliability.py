"""Issue 17: timeouts that hold, ``last`` and ``--lf`` that name the right execution and seed, and mistakes that
get the right message."""

from __future__ import annotations

import json
import math
import os
import signal
from pathlib import Path

import pytest
from cli_helpers import run_inprocess, run_subprocess, write_project

import machinable as ml
from machinable import ids
from machinable.collection.collect import collect
from machinable.collection.task import MAX_REPEAT
from machinable.config.errors import UnknownMixinError
from machinable.config.project import Project
from machinable.errors import SeedError, UsageError
from machinable.storage import Storage

# Catches the TrialTimeout raised inside it and sleeps on: still past its deadline, so it must fail.
STUBBORN = """\
import time

import machinable as ml


class Stubborn(ml.Component):
    def on_execute(self):
        end = time.time() + self.config.seconds
        while time.time() < end:
            try:
                time.sleep(0.02)
            except Exception:
                pass
"""

FAILING = """\
import os

import machinable as ml


@ml.component
def failing(seed, record):
    record["seed"] = seed
    record.save()
    if os.environ.get("RELIABILITY_FAIL"):
        raise RuntimeError("asked to fail")


@ml.component
def other(seed):
    pass
"""

LASTFAILED = ".machinable_cache/v/cache/lastfailed"
LASTEXECUTION = ".machinable_cache/v/cache/lastexecution"


def _cache(root: Path, key: str) -> dict:
    return json.loads((root / key).read_text())


@pytest.fixture
def stubborn(tmp_path: Path) -> Path:
    return write_project(
        tmp_path / "stubborn", "components:\n  - stubborn:\n      seconds: 0.4\n", {"stubborn.py": STUBBORN}
    )


@pytest.fixture
def failing(tmp_path: Path) -> Path:
    return write_project(tmp_path / "failing", "components:\n", {"components/failing.py": FAILING})


# -- 7. timeouts ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("engine", ["local", "process"])
def test_a_trial_that_catches_its_timeout_still_fails(stubborn, engine):
    # On process it returns within kill_grace (1 s), so its worker is not killed: the protocol must fail it.
    execution = ml.execute("stubborn", project=stubborn, engine=engine, timeout=0.1, echo=False)
    [trial] = execution.trials
    assert trial.status == "failed"
    assert "TrialTimeout: trial timed out after 0.1 s" in trial.error
    assert "caught the timeout" in trial.error


def test_a_trial_within_its_timeout_passes(stubborn):
    execution = ml.execute("stubborn", project=stubborn, timeout=30, echo=False)
    assert [t.status for t in execution.trials] == ["passed"]


def test_the_default_timeout_is_stored_in_the_plan_and_the_trial(stubborn, tmp_path):
    results = tmp_path / "results"
    ml.execute("stubborn", project=stubborn, storage=results, timeout=30, echo=False)
    [stored] = Storage(results).executions()
    assert [spec["timeout"] for spec in stored.info["plan"]] == [30]
    assert [t.info["timeout"] for t in stored.trials] == [30]


def test_a_trial_s_own_timeout_wins_over_the_default_in_the_plan(stubborn, tmp_path):
    results = tmp_path / "results"
    task = ml.Task().component("stubborn", timeout=20)
    ml.execute(task, project=stubborn, storage=results, timeout=30, echo=False)
    [stored] = Storage(results).executions()
    assert [spec["timeout"] for spec in stored.info["plan"]] == [20]


def test_resume_keeps_the_timeout_of_the_run(capsys, stubborn, tmp_path):
    results = tmp_path / "results"
    first = run_inprocess(capsys, stubborn, "--timeout", "0.1", "--storage", str(results), "-q")
    assert first.ret == 1 and "TrialTimeout" in first.out
    again = run_inprocess(capsys, stubborn, "resume", "last")  # no --timeout: the stored plan has it
    assert again.ret == 1, again.out + again.err
    [stored] = Storage(results).executions()
    [trial] = stored.trials
    assert trial.status == "failed" and "TrialTimeout" in trial.error


@pytest.mark.parametrize("value", ["inf", "nan", "0", "-1", "1e400", "-inf"])
def test_a_timeout_that_is_no_positive_finite_number_is_a_usage_error(capsys, stubborn, value):
    result = run_inprocess(capsys, stubborn, f"--timeout={value}")
    assert result.ret == 4
    assert result.err.strip().splitlines() == [
        f"ERROR: argument --timeout: expected a positive number of seconds, got '{value}'"
    ]


@pytest.mark.parametrize("value", [math.inf, math.nan, -math.inf, 0, -1])
def test_execute_refuses_a_timeout_that_is_no_positive_finite_number(stubborn, value):
    with pytest.raises(UsageError, match="timeout must be a positive number of seconds"):
        ml.execute("stubborn", project=stubborn, timeout=value, echo=False)
    with pytest.raises(UsageError, match="timeout must be a positive number of seconds"):
        ml.Task().component("stubborn", timeout=value)


# -- 8. last, --lf -----------------------------------------------------------------------------------------------


def test_the_last_execution_is_recorded_when_it_starts(capsys, tmp_path):
    # The trial reads the cache while it runs: it must already name the running execution.
    source = """\
import json
from pathlib import Path

import machinable as ml


@ml.component
def peek(flags, record):
    cache = Path(__file__).parent / ".machinable_cache/v/cache/lastexecution"
    record["last"] = json.loads(cache.read_text())["id"]
    record["me"] = flags.EXECUTION_ID
    record.save()
"""
    root = write_project(tmp_path / "peek", "components:\n", {"peek_component.py": source})
    results = tmp_path / "results"
    assert run_inprocess(capsys, root, "--storage", str(results), "--seed", "1").ret == 0
    assert run_inprocess(capsys, root, "--storage", str(results), "--seed", "2").ret == 0
    second = Storage(results).get(ids.execution_id(2))
    [row] = second.trials[0].records
    assert row["last"] == row["me"] == ids.execution_id(2)


@pytest.mark.slow
@pytest.mark.skipif(os.name != "posix", reason="SIGKILL")
def test_last_names_an_execution_killed_with_sigkill(tmp_path):
    source = f"""\
import os
import signal
from pathlib import Path

import machinable as ml


@ml.component
def victim():
    marker = Path(__file__).parent / "killed-once"
    if os.environ.get("KILL_ME") and not marker.exists():
        marker.write_text("")
        os.kill(os.getpid(), signal.{signal.SIGKILL.name})
"""
    root = write_project(tmp_path / "victim", "components:\n", {"victim_component.py": source})
    results = str(tmp_path / "results")
    assert run_subprocess(root, "--storage", results, "--seed", "1").ret == 0
    killed = run_subprocess(root, "--storage", results, "--seed", "2", KILL_ME="1")
    assert killed.ret == -signal.SIGKILL
    assert _cache(root, LASTEXECUTION)["id"] == ids.execution_id(2)
    resumed = run_subprocess(root, "resume", "last")
    assert resumed.ret == 0, resumed.out + resumed.err
    assert ids.execution_id(2) in resumed.out
    assert [t.status for t in Storage(results).get(ids.execution_id(2)).trials] == ["passed"]


def test_lf_reruns_a_failure_with_its_seed_after_an_unrelated_run(capsys, failing, tmp_path, monkeypatch):
    results = str(tmp_path / "results")
    monkeypatch.setenv("RELIABILITY_FAIL", "1")
    assert run_inprocess(capsys, failing, "failing", "--storage", results, "--seed", "1").ret == 1
    seed = ids.trial_seed(ids.decode(ids.execution_id(1)), "failing")
    assert _cache(failing, LASTFAILED) == {"failing": {"seed": seed, "execution": ids.execution_id(1)}}
    assert run_inprocess(capsys, failing, "other", "--storage", results, "--seed", "2").ret == 0

    again = run_inprocess(capsys, failing, "--lf", "--storage", results, "-v")
    assert again.ret == 1
    assert "run-last-failure: rerun previous 1 failure" in again.out
    assert f"seed {seed}, trial" in again.out
    newest = max(Storage(results).executions(), key=lambda e: e.started)
    [trial] = newest.trials
    assert trial.records[0]["seed"] == trial.seed == seed


def test_lf_with_a_seed_gives_the_failures_fresh_seeds(capsys, failing, monkeypatch):
    monkeypatch.setenv("RELIABILITY_FAIL", "1")
    assert run_inprocess(capsys, failing, "failing", "--seed", "1").ret == 1
    listed = run_inprocess(capsys, failing, "--lf", "--seed", "7", "--collect-only", "--json")
    [trial] = json.loads(listed.out)["trials"]
    assert trial["seed"] == ids.trial_seed(ids.decode(ids.execution_id(7)), "failing")


def test_a_resumed_trial_that_passes_leaves_the_last_failed_list(capsys, failing, tmp_path, monkeypatch):
    results = str(tmp_path / "results")
    monkeypatch.setenv("RELIABILITY_FAIL", "1")
    assert run_inprocess(capsys, failing, "--storage", results).ret == 1
    assert set(_cache(failing, LASTFAILED)) == {"failing"}
    monkeypatch.delenv("RELIABILITY_FAIL")
    resumed = run_inprocess(capsys, failing, "resume", "last")
    assert resumed.ret == 0, resumed.out + resumed.err
    assert _cache(failing, LASTFAILED) == {}
    rerun = run_inprocess(capsys, failing, "--lf")
    assert "no previously failed trials" in rerun.out


def test_resuming_another_execution_keeps_a_later_failure(capsys, failing, tmp_path, monkeypatch):
    results = str(tmp_path / "results")
    monkeypatch.setenv("RELIABILITY_FAIL", "1")
    assert run_inprocess(capsys, failing, "--storage", results, "--seed", "1").ret == 1
    assert run_inprocess(capsys, failing, "--storage", results, "--seed", "2").ret == 1
    monkeypatch.delenv("RELIABILITY_FAIL")
    # The first execution's failure passes now; the one of the second execution (another seed) stays.
    assert run_inprocess(capsys, failing, "resume", ids.execution_id(1), "--storage", results).ret == 0
    assert _cache(failing, LASTFAILED)["failing"]["execution"] == ids.execution_id(2)


# -- 13. messages ------------------------------------------------------------------------------------------------


def test_a_misspelled_subcommand_is_named(capsys, failing):
    result = run_inprocess(capsys, failing, "shwo", "last")
    assert result.ret == 4
    assert (
        result.err.strip()
        .splitlines()[-1]
        .startswith("ERROR: unknown sub-command 'shwo' (did you mean 'show'?)")
    )


def test_a_component_named_like_a_subcommand_still_runs(capsys, tmp_path):
    source = "import machinable as ml\n\n\n@ml.component\ndef reports():\n    pass\n"
    root = write_project(tmp_path / "named", "components:\n", {"components/reports.py": source})
    result = run_inprocess(capsys, root, "reports")
    assert result.ret == 0, result.out + result.err


def test_an_unknown_target_far_from_any_subcommand_keeps_its_message(capsys, failing):
    result = run_inprocess(capsys, failing, "zzzzzz")
    assert result.ret == 4
    assert "unknown target 'zzzzzz'" in result.err


def test_a_negative_seed_is_a_seed_of_its_own():
    assert ids.execution_id(-1) != ids.execution_id(1)
    assert ids.execution_id("-1") == ids.execution_id(-1)
    assert ids.execution_id(-5) == ids.execution_id(-5)
    assert ids.execution_id(42) == "8gWVkz"  # positive seeds keep the ids they always had
    with pytest.raises(SeedError):
        ids.execution_id("--1")


def test_seed_minus_one_on_the_command_line_is_not_seed_one(capsys, failing):
    negative = run_inprocess(capsys, failing, "other", "--seed", "-1", "--collect-only")
    positive = run_inprocess(capsys, failing, "other", "--seed", "1", "--collect-only")
    assert f"execution {ids.execution_id(-1)} " in negative.out
    assert f"execution {ids.execution_id(1)} " in positive.out


MIXINS = """\
components:
  - stubborn:
      _mixins_: [imagenett]
      seconds: 0.01
mixins:
  - imagenet:
      size: 224
"""


def test_an_unknown_mixin_names_the_file_line_and_a_suggestion(capsys, tmp_path):
    root = write_project(tmp_path / "mixins", MIXINS, {"stubborn.py": STUBBORN})
    with pytest.raises(
        UnknownMixinError, match=r"machinable.yaml:2: .*'imagenett' \(did you mean 'imagenet'\?\)"
    ):
        ml.execute("stubborn", project=root, echo=False)
    result = run_inprocess(capsys, root)
    assert "KeyError" not in result.out
    assert "uses unknown mixin 'imagenett' (did you mean 'imagenet'?)" in result.out


def test_a_collect_entry_that_matches_nothing_is_a_warning(capsys, tmp_path):
    yaml = "components:\ncollect:\n  - models/net.py\n  - modles/*.py\n  - models.nte\n"
    component = "import machinable as ml\n\n\n@ml.component\ndef net():\n    pass\n"
    root = write_project(tmp_path / "collect", yaml, {"models/net.py": component})
    found = collect(Project(root), 1)
    assert [i.node_id for i in found.items] == ["net"]
    assert [w.message for w in found.warnings] == [
        "machinable.yaml: the collect: entry 'modles/*.py' matches no module of the project",
        "machinable.yaml: the collect: entry 'models.nte' matches no module of the project",
    ]
    result = run_inprocess(capsys, root)
    assert result.ret == 0
    assert "'modles/*.py' matches no module" in result.out


@pytest.mark.parametrize("value", ["99999999999", str(MAX_REPEAT + 1)])
def test_an_absurd_repeat_is_a_usage_error(capsys, failing, value):
    result = run_inprocess(capsys, failing, "--repeat", value)
    assert result.ret == 4
    assert result.err.strip().splitlines() == [
        f"ERROR: argument --repeat: at most {MAX_REPEAT:,} repeats, got {value}"
    ]


def test_task_repeat_is_capped_also_when_repeats_multiply():
    ml.Task().component("x").repeat(MAX_REPEAT)
    with pytest.raises(UsageError, match="at most 1,000,000"):
        ml.Task().component("x").repeat(MAX_REPEAT + 1)
    with pytest.raises(UsageError, match="2,000,000 times"):
        ml.Task().component("x").repeat(1000).repeat(2000)
