"""Real processes: a writer killed with SIGKILL leaves parseable files; concurrent executions never collide."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from machinable.storage import Storage

REPO = str(Path(__file__).resolve().parents[1])

WRITER = """
import os, socket, sys, time
sys.path.insert(0, {repo!r})
from machinable.storage import ExecutionWriter, Record, open_storage

ew = ExecutionWriter(open_storage({root!r}), {execution_id!r})
ew.write_execution({{"id": {execution_id!r}, "started": time.time(), "trials": [f"t{{i}}" for i in range({trials})]}})
for n in range({trials}):
    tw = ew.trial(f"t{{n}}")
    tw.write_trial({{"node_id": f"node{{n}}", "config": {{"n": n}}}})
    tw.write_status(outcome="running", started=time.time(), pid=os.getpid(), host=socket.gethostname())
    record = Record(tw.record_writer())
    i = 0
    while {rows} < 0 or i < {rows}:
        record["i"] = i
        record["payload"] = "x" * {payload}
        record.save(_iteration=i)
        tw.write_status(heartbeat=time.time(), rows=i + 1)
        tw.store("progress", i, overwrite=True)
        tw.store("progress.json", {{"i": i}}, overwrite=True)
        i += 1
    tw.write_status(outcome="passed", finished=time.time())
    tw.close()
ew.write_execution({{"finished": time.time()}})
"""


def _script(root, execution_id, trials, rows, payload=10):
    code = WRITER.format(
        repo=REPO, root=str(root), execution_id=execution_id, trials=trials, rows=rows, payload=payload
    )
    return [sys.executable, "-c", textwrap.dedent(code)]


def _count_lines(path: Path) -> int:
    try:
        return path.read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


@pytest.mark.slow
@pytest.mark.skipif(os.name != "posix", reason="SIGKILL")
@pytest.mark.parametrize("payload", [10, 50_000])
def test_a_killed_writer_leaves_every_json_file_parseable_and_every_row_before_the_kill(tmp_path, payload):
    root = tmp_path / "results"
    process = subprocess.Popen(_script(root, "3K45al", trials=1, rows=-1, payload=payload))
    records = root / "3K45al" / "t0" / "records.jsonl"
    deadline = time.monotonic() + 60
    while _count_lines(records) < 200 and time.monotonic() < deadline:
        time.sleep(0.01)
    seen = _count_lines(records)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert seen >= 200, "the writer did not get going"

    for path in (root / "3K45al").rglob("*.json"):
        json.loads(path.read_text())  # every JSON file left parses
    lines = records.read_bytes().split(b"\n")
    complete, last = lines[:-1], lines[-1]
    rows = [json.loads(line) for line in complete]  # every line but a partial last one parses
    assert len(rows) >= seen and [r["i"] for r in rows] == list(range(len(rows)))
    if last:
        with pytest.raises(ValueError):
            json.loads(last)

    trial = Storage(str(root)).get("3K45al").trial("node0")
    assert [r["i"] for r in trial.records] == list(range(len(rows)))
    assert trial.status == "crashed"  # 'running', but its process is gone
    # the stores trail the newest row by one
    assert trial.store["progress"] >= seen - 2 and trial.store["progress.json"]["i"] >= seen - 2


@pytest.mark.slow
def test_two_processes_write_two_executions_into_one_storage_at_the_same_time(tmp_path):
    root = tmp_path / "shared"
    processes = [subprocess.Popen(_script(root, eid, trials=40, rows=10)) for eid in ("3K45al", "OY1p1o")]
    for process in processes:
        assert process.wait(timeout=120) == 0
    storage = Storage(str(root))
    assert sorted(e.id for e in storage.executions()) == ["3K45al", "OY1p1o"]
    for execution in storage.executions():
        assert execution.finished is not None
        assert [t.uid for t in execution.trials] == [f"t{i}" for i in range(40)]
        for trial in execution.trials:
            assert trial.status == "passed" and [r["i"] for r in trial.records] == list(range(10))
            assert trial.store["progress"] == 9
    assert not list(root.rglob("*.tmp"))


def test_threads_claiming_one_execution_id_in_one_memory_storage_get_their_own_folders():
    from machinable.storage import ExecutionWriter, open_storage

    location = open_storage("memory://claims-in-threads")
    start = threading.Barrier(4)
    folders: list[str] = []

    def claim() -> None:
        start.wait()
        folders.append(ExecutionWriter.claim(location, "3K45al").folder)

    threads = [threading.Thread(target=claim) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(folders) == ["3K45al", "3K45al-2", "3K45al-3", "3K45al-4"]


def test_a_claimed_memory_folder_is_taken_before_its_execution_json_is_written():
    from machinable.storage import ExecutionWriter, open_storage

    location = open_storage("memory://claims-in-sequence")
    first = ExecutionWriter.claim(location, "3K45al")
    assert ExecutionWriter.claim(location, "3K45al").folder == "3K45al-2"
    # The claim's placeholder is no execution yet; the real one replaces it.
    assert Storage(location).executions() == []
    first.write_execution({"id": "3K45al", "started": 1.0})
    assert [e.folder for e in Storage(location).executions()] == ["3K45al"]
