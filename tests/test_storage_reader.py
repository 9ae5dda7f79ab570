"""Reading back: ``Storage(url)`` executions, trials, records, store, status (including crash detection)."""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from machinable.errors import StorageError
from machinable.storage import ExecutionWriter, MissingDependencyError, Record, Storage, open_storage
from machinable.storage.reader import parse_jsonl


def _write(location, execution_id="3K45al", started=1.0, trials=("a", "b"), **info):
    ew = ExecutionWriter(location, execution_id)
    ew.write_execution(
        {"id": execution_id, "started": started, "name": "demo", "trials": list(trials), **info}
    )
    for n, uid in enumerate(trials):
        tw = ew.trial(uid)
        tw.write_trial(
            {
                "node_id": f"opt[{uid}]",
                "component": "opt",
                "config": {"lr": 0.1 * (n + 1)},
                "versions": ["~v"],
                "seed": n,
                "flags": {"SEED": n},
            }
        )
        tw.write_status(outcome="passed", started=started, finished=started + 1, error=None)
        record = Record(tw.record_writer())
        record["loss"] = n
        record.save(_iteration=0)
        tw.close()
    return ew


@pytest.fixture
def local(tmp_path):
    return open_storage(str(tmp_path / "results"))


def test_executions_are_listed_newest_first(local):
    _write(local, "3K45al", started=10.0)
    _write(local, "OY1p1o", started=30.0)
    _write(local, "8gWVkz", started=20.0)
    assert [e.id for e in Storage(local).executions()] == ["OY1p1o", "8gWVkz", "3K45al"]


def test_folders_without_execution_json_are_not_executions(local, tmp_path):
    _write(local)
    (tmp_path / "results" / "unrelated").mkdir()
    (tmp_path / "results" / "notes.txt").write_text("x")
    assert [e.id for e in Storage(str(tmp_path / "results")).executions()] == ["3K45al"]


def test_an_empty_or_missing_storage_has_no_executions(tmp_path):
    assert Storage(str(tmp_path / "nothing")).executions() == []


def test_get_returns_the_execution_with_its_fields(local):
    _write(local, "OY1p1o", started=5.0)
    execution = Storage(local.url).get("OY1p1o")
    assert (execution.id, execution.seed, execution.name, execution.started) == (
        "OY1p1o",
        22490017876,
        "demo",
        5.0,
    )
    assert execution.info["trials"] == ["a", "b"]


def test_get_unknown_names_existing_ids(local):
    _write(local, "OY1p1o")
    with pytest.raises(StorageError, match="no execution 'zzzzzz'.*OY1p1o"):
        Storage(local).get("zzzzzz")
    with pytest.raises(StorageError, match="holds no executions"):
        Storage(open_storage()).get("OY1p1o")


def test_get_never_reads_a_folder_outside_the_storage_or_a_hidden_one(local, tmp_path):
    _write(local, "OY1p1o")
    (tmp_path / "results" / ".cache").mkdir()
    for name in ("..", ".", ".cache", "OY1p1o/..", "", "a\\b"):
        with pytest.raises(StorageError, match="no execution"):
            Storage(local).get(name)


def test_an_unknown_id_lists_each_stored_folder_once(local):
    for _ in range(2):
        ExecutionWriter.claim(local, "OY1p1o").write_execution({"id": "OY1p1o", "started": 1.0})
    with pytest.raises(StorageError, match=r"recent executions: OY1p1o(-2)?, OY1p1o(-2)?$") as info:
        Storage(local).get("zzzzzz")
    assert str(info.value).count("OY1p1o-2") == 1


def test_an_unknown_id_says_when_the_storage_folder_does_not_exist(tmp_path):
    with pytest.raises(StorageError, match="the folder does not exist"):
        Storage(str(tmp_path / "typo")).get("OY1p1o")


def test_an_unknown_id_in_a_fresh_memory_storage_says_where_to_look():
    with pytest.raises(StorageError, match="memory storage lives in the process that wrote it"):
        Storage().get("OY1p1o")


def test_trials_come_in_plan_order_then_by_uid(local):
    ew = _write(local, trials=("z", "a", "m"))
    ew.trial("extra").write_status(outcome="passed")
    assert [t.uid for t in Storage(local).get("3K45al").trials] == ["z", "a", "m", "extra"]


def test_trial_fields(local):
    _write(local)
    trial = Storage(local).get("3K45al").trials[1]
    assert (trial.uid, trial.node_id, trial.component, trial.seed) == ("b", "opt[b]", "opt", 1)
    assert trial.config == {"lr": 0.2} and trial.versions == ["~v"] and trial.flags == {"SEED": 1}
    assert trial.status == "passed" and trial.error is None and trial.status_info["finished"] == 2.0
    assert trial.records == [{"loss": 1, "_time": trial.records[0]["_time"], "_iteration": 0}]
    assert trial.log == "" and trial.output == ""


def test_a_trial_is_found_by_uid_or_node_id(local):
    _write(local)
    execution = Storage(local).get("3K45al")
    assert execution.trial("b").uid == execution.trial("opt[b]").uid == "b"
    with pytest.raises(StorageError, match="no trial 'nope'.*opt\\[a\\]"):
        execution.trial("nope")


def test_record_scopes_and_rows_of_each(local):
    tw = ExecutionWriter(local, "3K45al").trial("t")
    tw.record_writer().write({"a": 1})
    tw.record_writer("validation").write({"b": 2})
    tw.close()
    trial = Storage(local).get("3K45al").trial("t")
    assert trial.record_scopes() == ["default", "validation"]
    assert trial.records_of("validation") == [{"b": 2}]
    assert trial.records_of("missing") == []


def test_a_partial_last_line_is_dropped():
    assert parse_jsonl(b'{"a": 1}\n{"a": 2}\n{"a": ') == [{"a": 1}, {"a": 2}]
    assert parse_jsonl(b'{"a": 1}\n\n') == [{"a": 1}]


def test_a_damaged_line_in_the_middle_is_skipped_with_a_warning():
    with pytest.warns(UserWarning, match="line 2"):
        assert parse_jsonl(b'{"a": 1}\n{oops\n{"a": 3}\n') == [{"a": 1}, {"a": 3}]


def test_records_frame_needs_pandas(local):
    _write(local)
    trial = Storage(local).get("3K45al").trials[0]
    try:
        import pandas  # noqa: F401
    except ImportError:
        with pytest.raises(MissingDependencyError, match="pip install pandas"):
            trial.records_frame()
        with pytest.raises(ImportError):  # also an ImportError for code that expects one
            trial.records_frame()
    else:
        assert list(trial.records_frame()["loss"]) == [0]


def test_store_reads_back_as_a_read_only_mapping(local):
    tw = ExecutionWriter(local, "3K45al").trial("t")
    tw.store("a.json", {"x": 1})
    tw.store("b.txt", "text")
    tw.store("c", [1, 2])
    store = Storage(local).get("3K45al").trial("t").store
    assert sorted(store) == ["a.json", "b.txt", "c"] and len(store) == 3 and "c" in store
    assert store["a.json"] == {"x": 1} and store["b.txt"] == "text" and store["c"] == [1, 2]
    with pytest.raises(KeyError, match="nothing stored as 'd'"):
        store["d"]
    with pytest.raises(TypeError):
        store["c"] = 3  # type: ignore[index]


def test_status_running_with_a_fresh_heartbeat_stays_running(local):
    tw = ExecutionWriter(local, "3K45al").trial("t")
    tw.write_status(outcome="running", started=time.time(), heartbeat=time.time())
    assert Storage(local).get("3K45al").trial("t").status == "running"


def test_status_running_with_a_stale_heartbeat_reads_as_crashed(local):
    tw = ExecutionWriter(local, "3K45al").trial("t")
    tw.write_status(outcome="running", started=time.time() - 100, heartbeat=time.time() - 31)
    assert Storage(local).get("3K45al").trial("t").status == "crashed"
    assert Storage(local, stale_after=60).get("3K45al").trial("t").status == "running"


def test_status_running_without_heartbeat_uses_started(local):
    tw = ExecutionWriter(local, "3K45al").trial("t")
    tw.write_status(outcome="running", started=time.time() - 40)
    assert Storage(local).get("3K45al").trial("t").status == "crashed"


def test_a_slower_recorded_heartbeat_interval_extends_the_stale_limit(local):
    tw = ExecutionWriter(local, "3K45al").trial("t")
    tw.write_status(outcome="running", started=time.time() - 100, heartbeat_interval=60)
    assert Storage(local).get("3K45al").trial("t").status == "running"


def test_a_running_trial_whose_process_is_gone_reads_as_crashed(local):
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    tw = ExecutionWriter(local, "3K45al").trial("t")
    now = time.time()
    tw.write_status(outcome="running", started=now, heartbeat=now, pid=child.pid, host=socket.gethostname())
    assert Storage(local).get("3K45al").trial("t").status == "crashed"
    tw.write_status(pid=os.getpid())
    assert Storage(local).get("3K45al").trial("t").status == "running"


@pytest.mark.skipif(not os.path.exists("/proc/self/stat"), reason="zombies are seen through /proc")
def test_a_running_trial_whose_killed_process_was_never_reaped_reads_as_crashed(local):
    # Until its parent waits for it (forever under an init that does not reap orphans) a killed process is a
    # zombie that signal 0 still reaches.
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        tw = ExecutionWriter(local, "3K45al").trial("t")
        now = time.time()
        tw.write_status(
            outcome="running", started=now, heartbeat=now, pid=child.pid, host=socket.gethostname()
        )
        trial = Storage(local, stale_after=3600).get("3K45al").trial("t")
        assert trial.status == "running"
        child.kill()
        while Path(f"/proc/{child.pid}/stat").read_bytes().rsplit(b")", 1)[1][1:2] != b"Z":
            time.sleep(0.01)  # the kill is asynchronous; this waits for the state, it times nothing
        assert trial.status == "crashed"
    finally:
        child.kill()
        child.wait()


def test_finished_outcomes_are_never_reinterpreted(local):
    tw = ExecutionWriter(local, "3K45al").trial("t")
    tw.write_status(outcome="failed", started=0.0, error="boom")
    trial = Storage(local).get("3K45al").trial("t")
    assert (trial.status, trial.error) == ("failed", "boom")


def test_a_damaged_json_file_is_a_storage_error(local, tmp_path):
    _write(local)
    Path(tmp_path / "results" / "3K45al" / "a" / "trial.json").write_text("{")
    with pytest.raises(StorageError, match="not valid JSON"):
        _ = Storage(local).get("3K45al").trial("a").info


def test_code_zip_names(local, tmp_path):
    project = tmp_path / "project"
    (project / "tasks").mkdir(parents=True)
    (project / "optimization.py").write_text("x = 1\n")
    (project / "tasks" / "example.py").write_text("y = 2\n")
    ew = _write(local)
    assert ew.backup_code(project) == ["optimization.py", "tasks/example.py"]
    execution = Storage(local).get("3K45al")
    assert execution.code_zip_names() == ["optimization.py", "tasks/example.py"]
    with zipfile.ZipFile(io.BytesIO(execution.code_zip())) as archive:
        assert archive.read("tasks/example.py") == b"y = 2\n"


def test_executions_on_memory_read_back_by_name():
    location = open_storage("memory://readback-by-name")
    _write(location)
    assert Storage("memory://readback-by-name").get("3K45al").trials[0].status == "passed"


def test_execution_json_is_readable_by_humans(local):
    ew = _write(local)
    text = Path(ew.path, "execution.json").read_text()
    assert "\n" in text and json.loads(text)["name"] == "demo"


def test_read_back_drops_a_partial_last_row_left_by_a_killed_writer(local):
    tw = ExecutionWriter(local, "3K45al").trial("t")
    tw.record_writer().write({"i": 0})
    tw.close()
    with open(Path(tw.path, "records.jsonl"), "ab") as f:
        f.write(b'{"i": 1, "payl')
    assert Storage(local).get("3K45al").trial("t").records == [{"i": 0}]
