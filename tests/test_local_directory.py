"""A trial's local directory (``self.local_directory()``, the ``local_directory`` fixture) for files that libraries
write themselves: the trial's ``store/`` folder on a local disk, elsewhere a temporary folder copied into storage
at checkpoints and when the trial ends (whatever its outcome) and then removed; its files appear in
``trial.store``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import write_project

import machinable as ml
from machinable.errors import MachinableError
from machinable.execution.executions import ExecutionInterrupted

# Writes a text file and, in a folder of its own, a file machinable has no format for; records where the folder
# was and which process ran it; then ends as ``config.end`` says.
WRITER = """\
import os
import signal
from pathlib import Path

import machinable as ml


class Writer(ml.Component):
    def on_execute(self):
        folder = self.local_directory()
        Path(folder, "notes.txt").write_text(f"trial {self.flags.REPEAT_NUMBER}")
        Path(self.local_directory("runs/1"), "events.bin").write_bytes(bytes([self.flags.REPEAT_NUMBER]))
        self.record["folder"] = folder
        self.record["pid"] = os.getpid()
        self.record.save()
        if self.config.end == "fail":
            raise RuntimeError("broken")
        if self.config.end == "preempt":
            os.kill(os.getpid(), signal.SIGTERM)
        if self.config.end == "escape":
            self.local_directory("../elsewhere")
"""

# Writes a file, saves a checkpoint and notes what storage holds then, deletes the file and writes another.
CHECKPOINTED = """\
from pathlib import Path

import machinable as ml


class Checkpointed(ml.Component):
    def on_save(self, path):
        Path(path, "state.txt").write_text("state")

    def on_execute(self):
        first = Path(self.local_directory(), "first.txt")
        first.write_text("1")
        self.save_checkpoint()
        stored = ml.Storage(self.config.storage).get(self.flags.EXECUTION_ID).trial(self.flags.TRIAL_ID).store
        self.record["at_checkpoint"] = sorted(stored)
        first.unlink()
        Path(self.local_directory(), "second.txt").write_text("2")
"""

FUNCTION = """\
from pathlib import Path

import machinable as ml


@ml.component
def logs(local_directory, record):
    Path(local_directory, "log.json").write_text('{"steps": 3}')
    record["folder"] = local_directory
"""

YAML = """\
components:
  - writer:
      end: pass
  - checkpointed:
      storage: ''
  - logs
"""


@pytest.fixture
def project(tmp_path, monkeypatch) -> Path:
    root = write_project(
        tmp_path / "project",
        YAML,
        {"writer.py": WRITER, "checkpointed.py": CHECKPOINTED, "logs.py": FUNCTION},
    )
    monkeypatch.chdir(root)
    return root


def _stored(target: Any, execution: Any) -> list[Any]:
    return ml.Storage(target).get(execution.folder).trials


def _assert_written_files(trial: Any, repeat: int = 0) -> None:
    assert {"notes.txt", "runs/1/events.bin"} <= set(trial.store)
    assert trial.store["notes.txt"] == f"trial {repeat}"
    assert trial.store["runs/1/events.bin"] == bytes([repeat])  # a format machinable does not know: its bytes


def test_on_a_local_disk_it_is_the_trials_store_folder(project, tmp_path):
    results = tmp_path / "results"
    execution = ml.execute("writer", storage=str(results), echo=False)
    [trial] = _stored(str(results), execution)
    assert trial.status == "passed", trial.error
    assert trial.records[0]["folder"] == str(results / execution.folder / trial.uid / "store")
    _assert_written_files(trial)
    assert sorted(trial.files()) == [
        "records.jsonl",
        "status.json",
        "store/notes.txt",
        "store/runs/1/events.bin",
        "trial.json",
    ]


@pytest.mark.parametrize("engine", ["local", "process:2"])
def test_on_memory_storage_it_is_a_temporary_folder_copied_into_storage_and_removed(
    project, tmp_path, engine
):
    target = f"memory://local-directory-{tmp_path.name}"
    execution = ml.execute(ml.Task().component("writer").repeat(3), storage=target, engine=engine, echo=False)
    trials = _stored(target, execution)
    assert [t.status for t in trials] == ["passed"] * 3
    folders = set()
    for repeat, trial in enumerate(trials):
        _assert_written_files(trial, repeat)  # shipped back from the worker with the trial's other files
        folder = trial.records[0]["folder"]
        assert not os.path.exists(folder) and "local-directory" not in folder  # a local folder, removed
        folders.add(folder)
    assert len(folders) == 3
    pids = {t.records[0]["pid"] for t in trials}
    assert (pids == {os.getpid()}) == (engine == "local")


@pytest.mark.parametrize(
    "end", ["fail", pytest.param("preempt", marks=pytest.mark.skipif(os.name != "posix", reason="signals"))]
)
def test_the_files_of_a_trial_that_did_not_pass_are_kept(project, tmp_path, end):
    target = f"memory://local-directory-{tmp_path.name}"
    task = ml.Task().component("writer", {"end": end})
    try:
        execution = ml.execute(task, storage=target, echo=False)
    except ExecutionInterrupted as stopped:  # the preemption reached the local engine's own process
        execution = stopped.execution
    [trial] = _stored(target, execution)
    assert trial.status == {"fail": "failed", "preempt": "preempted"}[end]
    _assert_written_files(trial)
    assert not os.path.exists(trial.records[0]["folder"])


@pytest.mark.parametrize("storage", ["local", "memory"])
def test_a_checkpoint_copies_the_folder_and_deleted_files_go_from_storage(project, tmp_path, storage):
    target = str(tmp_path / "results") if storage == "local" else f"memory://checkpointed-{tmp_path.name}"
    execution = ml.execute(
        ml.Task().component("checkpointed", {"storage": target}), storage=target, echo=False
    )
    [trial] = _stored(target, execution)
    assert trial.status == "passed", trial.error
    assert trial.records[0]["at_checkpoint"] == ["first.txt"]
    assert sorted(trial.store) == ["second.txt"] and trial.store["second.txt"] == "2"
    assert "checkpoints/1/state.txt" in trial.files()


def test_a_function_gets_it_as_the_local_directory_fixture(project, tmp_path):
    target = f"memory://logs-{tmp_path.name}"
    execution = ml.execute("logs", storage=target, echo=False)
    [trial] = _stored(target, execution)
    assert trial.status == "passed", trial.error
    assert trial.store["log.json"] == {"steps": 3}
    assert not os.path.exists(trial.records[0]["folder"])


def test_a_folder_outside_the_trials_is_refused(project, tmp_path):
    execution = ml.execute(
        ml.Task().component("writer", {"end": "escape"}), storage=str(tmp_path / "results"), echo=False
    )
    [trial] = execution.trials
    assert trial.status == "failed"
    assert (
        "StorageError: local directory '../elsewhere' would resolve outside the trial's folder" in trial.error
    )
    assert not (tmp_path / "results" / execution.folder / "elsewhere").exists()


def test_outside_a_trial_it_is_an_error():
    with pytest.raises(
        MachinableError, match=r"local_directory\(\) is only available while the component runs"
    ):
        ml.Component().local_directory()


@pytest.mark.slow
def test_on_s3_it_is_a_temporary_folder_copied_into_the_bucket(project, s3_env):
    target = s3_env.url()
    execution = ml.execute(ml.Task().component("writer", {"end": "fail"}), storage=target, echo=False)
    [trial] = _stored(target, execution)
    assert trial.status == "failed"
    _assert_written_files(trial)
    assert not os.path.exists(trial.records[0]["folder"])
    execution = ml.execute(
        ml.Task().component("checkpointed", {"storage": target}), storage=target, echo=False
    )
    [trial] = _stored(target, execution)
    assert trial.status == "passed", trial.error
    assert trial.records[0]["at_checkpoint"] == ["first.txt"]
    assert sorted(trial.store) == ["second.txt"]
