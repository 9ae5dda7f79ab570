"""The results index (``index.jsonl``): a line per finished trial, the newest line of a resumed trial wins,
and reading through it always gives the answer of a rebuild from the trial folders, also after a SIGKILL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

import machinable as ml
from machinable.plugins import create_plugin_manager
from machinable.storage import Storage
from machinable.storage.index import INDEX_JSONL, read_index, rebuild_index

REPO = str(Path(__file__).resolve().parents[1])
EXECUTION_ID = "8gWVkz"  # seed=42

# Trial n=3 fails, blocks until the file $RELEASE appears (at most 60 s), or passes, as $STEP3 says.
STEPS = """\
import os
import time
from pathlib import Path

import machinable as ml


@ml.parametrize("n", [0, 1, 2, 3, 4, 5])
class Steps(ml.Component):
    def on_execute(self):
        for i in range(2):
            self.record["n"] = self.config.n
            self.record["i"] = i
            self.record.save()
        if self.config.n != 3:
            return
        mode = os.environ.get("STEP3", "")
        if mode == "fail":
            raise RuntimeError("step 3 failed")
        if mode == "block":
            deadline = time.monotonic() + 60
            while not Path(os.environ["RELEASE"]).exists() and time.monotonic() < deadline:
                time.sleep(0.01)
"""


@pytest.fixture
def project(make_project) -> Path:
    return make_project("components:\n  - steps\n", {"steps.py": STEPS})


@pytest.fixture
def results(tmp_path) -> Path:
    return tmp_path / "results"


def _lines(results: Path, folder: str = EXECUTION_ID) -> list[dict[str, Any]]:
    path = results / folder / INDEX_JSONL
    return [json.loads(line) for line in path.read_text().splitlines()]


def _stored(results: Path) -> Any:
    return Storage(str(results)).get(EXECUTION_ID)


def _run(project: Path, results: Path, **kwargs: Any) -> ml.Execution:
    return ml.execute("steps", storage=str(results), seed=42, project=project, echo=False, **kwargs)


def _same_without_the_index(results: Path) -> tuple[list, list]:
    """results() and to_records() through the index, then again with ``index.jsonl`` deleted; both must agree
    with ``rebuild_index``."""
    stored = _stored(results)
    answer, rows = stored.results(), stored.to_records()
    assert answer == rebuild_index(stored)
    (results / EXECUTION_ID / INDEX_JSONL).unlink()
    again = _stored(results)
    assert again.results() == answer
    assert again.to_records() == rows
    assert rebuild_index(again) == answer
    return answer, rows


# -- written as trials end ----------------------------------------------------------------------------------


def test_a_line_is_appended_as_each_trial_ends(project, results):
    seen: list[tuple[str, list[str]]] = []

    class Watch:
        @ml.hookimpl
        def machinable_trial_result(self, session, execution, result):
            seen.append((result.uid, [line["uid"] for line in _lines(results, execution.folder)]))

    # A plugin manager of its own: registered on the shared default one, Watch would see every later test's run.
    execution = _run(project, results, plugins=create_plugin_manager(plugins=[Watch()]))
    uids = [t.uid for t in execution.trials]
    # When a trial's result is reported, its line (and the lines of every trial before it) is in the file.
    assert seen == [(uid, uids[: n + 1]) for n, uid in enumerate(uids)]
    lines = _lines(results)
    assert [line["uid"] for line in lines] == uids
    first = lines[0]
    assert (first["node_id"], first["component"], first["status"]) == ("steps[n=0]", "steps", "passed")
    assert first["config"] == {"n": 0} and first["seed"] == execution.trials[0].seed
    assert first["metrics"] == {
        "rows": 2,
        "last": {"n": 0, "i": 1},
        "min": {"n": 0, "i": 0},
        "max": {"n": 0, "i": 1},
    }


def test_the_index_says_what_the_trial_folders_say(project, results, monkeypatch):
    monkeypatch.setenv("STEP3", "fail")
    _run(project, results)
    stored = _stored(results)
    assert read_index(stored) == rebuild_index(stored)
    answer = stored.results()
    assert [e["status"] for e in answer] == ["passed"] * 3 + ["failed"] + ["passed"] * 2
    assert answer[3]["error"] == "RuntimeError: step 3 failed"
    assert [e["uid"] for e in answer] == [t.uid for t in stored.trials]
    assert _same_without_the_index(results)[0] == answer


def test_an_execution_without_its_index_reads_the_same_from_its_folders(project, results):
    _run(project, results)
    before = _stored(results)
    answer, rows, histories = before.results(), before.to_records(), before.to_records(histories=True)
    (results / EXECUTION_ID / INDEX_JSONL).unlink()
    after = _stored(results)
    assert after.results() == answer == rebuild_index(after)
    assert after.to_records() == rows and after.to_records(histories=True) == histories
    assert not (results / EXECUTION_ID / INDEX_JSONL).exists()  # reading never writes


def test_a_trial_without_a_line_is_read_from_its_folder(project, results):
    _run(project, results)
    path = results / EXECUTION_ID / INDEX_JSONL
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[:2]) + "\n" + lines[2][:20])  # a partial last line: killed mid-write
    stored = _stored(results)
    assert stored.results() == rebuild_index(stored)
    assert [e["status"] for e in stored.results()] == ["passed"] * 6


# -- resume -------------------------------------------------------------------------------------------------


def test_a_resumed_trials_newer_line_wins(project, results, monkeypatch):
    monkeypatch.setenv("STEP3", "fail")
    execution = _run(project, results)
    uid = execution.trials[3].uid
    monkeypatch.delenv("STEP3")
    resumed = ml.resume(EXECUTION_ID, storage=str(results), project=project)
    assert [t.uid for t in resumed.trials] == [uid]
    lines = _lines(results)
    assert len(lines) == 7 and [line["uid"] for line in lines][-1] == uid
    assert [line["status"] for line in lines if line["uid"] == uid] == ["failed", "passed"]
    stored = _stored(results)
    answer = stored.results()
    assert [e["status"] for e in answer] == ["passed"] * 6 and answer[3]["error"] is None
    assert [e["uid"] for e in answer] == [t.uid for t in execution.trials]  # plan order, each trial once
    assert [row["status"] for row in stored.to_records()] == ["passed"] * 6
    _same_without_the_index(results)


def test_a_trial_of_a_killed_resume_is_read_from_its_folder(project, results, monkeypatch):
    # The state a resume killed after its trial ended but before its line was written leaves: the index holds
    # the old (failed) line, execution.json a resume that never finished, the folder the new outcome.
    monkeypatch.setenv("STEP3", "fail")
    _run(project, results)
    monkeypatch.delenv("STEP3")
    ml.resume(EXECUTION_ID, storage=str(results), project=project)
    index = results / EXECUTION_ID / INDEX_JSONL
    index.write_text("".join(index.read_text().splitlines(keepends=True)[:6]))
    info_path = results / EXECUTION_ID / "execution.json"
    info = json.loads(info_path.read_text())
    info["resumed"][-1]["finished"] = None
    info_path.write_text(json.dumps(info))

    stored = _stored(results)
    assert [line["status"] for line in _lines(results)][3] == "failed"
    answer = stored.results()
    assert [e["status"] for e in answer] == ["passed"] * 6
    assert answer == rebuild_index(stored)
    _same_without_the_index(results)


# -- SIGKILL ------------------------------------------------------------------------------------------------

EXECUTE = """
import sys
sys.path.insert(0, {repo!r})
import machinable as ml
ml.execute("steps", storage={results!r}, seed=42, project={project!r}, echo=False)
"""

RESUME = """
import sys
sys.path.insert(0, {repo!r})
import machinable as ml
ml.resume({execution_id!r}, storage={results!r}, project={project!r})
"""


def _spawn(template: str, project: Path, results: Path, release: Path) -> subprocess.Popen:
    code = textwrap.dedent(
        template.format(repo=REPO, results=str(results), project=str(project), execution_id=EXECUTION_ID)
    )
    env = {k: v for k, v in os.environ.items() if k not in ("MACHINABLE_MODE",)}
    env.update(STEP3="block", RELEASE=str(release), PYTHONDONTWRITEBYTECODE="1")
    return subprocess.Popen(
        [sys.executable, "-c", code], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text() or "{}")
    except (FileNotFoundError, ValueError):
        return {}


def _running(results: Path) -> list[Path]:
    """Trial folders whose status.json says running (the blocked trial, once it started)."""
    return [
        path.parent
        for path in (results / EXECUTION_ID).glob("*/status.json")
        if _read_json(path).get("outcome") == "running"
    ]


def _index_lines(results: Path) -> int:
    try:
        return (results / EXECUTION_ID / INDEX_JSONL).read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


def _kill_when(process: subprocess.Popen, ready, what: str) -> None:
    """SIGKILL ``process`` as soon as ``ready()`` holds (polled against a deadline), and reap it."""
    deadline = time.monotonic() + 60
    while not ready() and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.01)
    ok = ready()
    if process.poll() is None:
        os.kill(process.pid, signal.SIGKILL)
    _, err = process.communicate(timeout=30)
    assert ok, f"{what} did not happen in time (exit {process.returncode}): {err.decode()[-2000:]}"
    assert process.returncode == -signal.SIGKILL


@pytest.mark.slow
@pytest.mark.skipif(os.name != "posix", reason="SIGKILL")
def test_an_execution_killed_half_way_reads_the_same_with_and_without_its_index(project, results, tmp_path):
    release = tmp_path / "release"  # never created: trial n=3 blocks until it is killed
    process = _spawn(EXECUTE, project, results, release)
    _kill_when(process, lambda: _index_lines(results) >= 3 and _running(results), "3 trials, then the 4th")

    stored = _stored(results)
    assert len(_lines(results)) == 3
    answer = stored.results()
    assert [e["status"] for e in answer] == ["passed"] * 3 + ["crashed"] + ["not started"] * 2
    assert [e["node_id"] for e in answer] == [f"steps[n={n}]" for n in range(6)]
    crashed, never = answer[3], answer[4]
    assert crashed["metrics"]["last"] == {"n": 3, "i": 1} and crashed["finished"] is None
    assert never["config"] == {"n": 4} and never["seed"] is not None and never["metrics"]["rows"] == 0
    rows = stored.to_records()
    assert [row["status"] for row in rows] == [e["status"] for e in answer]
    assert rows[3]["n"] == 3 and "n" not in rows[4]
    assert stored.to_records(status="crashed")[0]["node_id"] == "steps[n=3]"
    assert _same_without_the_index(results) == (answer, rows)


@pytest.mark.slow
@pytest.mark.skipif(os.name != "posix", reason="SIGKILL")
def test_a_killed_resume_reads_its_trial_from_the_folder(project, results, tmp_path, monkeypatch):
    monkeypatch.setenv("STEP3", "fail")
    _run(project, results)
    assert [line["status"] for line in _lines(results)][3] == "failed"

    process = _spawn(RESUME, project, results, tmp_path / "release")
    _kill_when(process, lambda: bool(_running(results)), "the resumed trial starting")

    info = _read_json(results / EXECUTION_ID / "execution.json")
    assert info["resumed"][-1]["finished"] is None  # the resume never ended
    assert [line["status"] for line in _lines(results)][3] == "failed"  # the index still has the old line
    stored = _stored(results)
    answer = stored.results()
    assert [e["status"] for e in answer] == ["passed"] * 3 + ["crashed"] + ["passed"] * 2
    assert answer[3]["error"] is None  # the failed attempt is archived, not the trial's outcome
    assert [row["status"] for row in stored.to_records()] == [e["status"] for e in answer]
    _same_without_the_index(results)
