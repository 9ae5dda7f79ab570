"""The heartbeat: one thread per process marks running trials alive; finished trials are left alone."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from machinable.storage import (
    ExecutionWriter,
    Storage,
    get_heartbeat_interval,
    open_storage,
    set_heartbeat_interval,
)
from machinable.storage.heartbeat import DEFAULT_INTERVAL, HEARTBEAT


@pytest.fixture
def fast_heartbeat():
    set_heartbeat_interval(0.05)
    yield 0.05
    set_heartbeat_interval(DEFAULT_INTERVAL)


def _status(tw):
    return json.loads(Path(tw.path, "status.json").read_text())


def _wait_for(condition, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return False


def test_the_default_interval_is_five_seconds():
    assert DEFAULT_INTERVAL == 5.0 and get_heartbeat_interval() == 5.0


def test_a_running_trial_gets_heartbeats(tmp_path, fast_heartbeat):
    tw = ExecutionWriter(open_storage(str(tmp_path)), "3K45al").trial("t")
    started = time.time()
    tw.write_status(outcome="running", started=started)
    tw.start_heartbeat()
    try:
        assert _wait_for(lambda: _status(tw).get("heartbeat", 0) > started)
        assert _status(tw)["heartbeat_interval"] == 0.05  # readers must know the beat is not the default
    finally:
        tw.write_status(outcome="passed", finished=time.time())
    assert tw not in HEARTBEAT._writers


def test_one_thread_serves_every_trial(tmp_path, fast_heartbeat):
    ew = ExecutionWriter(open_storage(str(tmp_path)), "3K45al")
    writers = [ew.trial(f"t{i}") for i in range(5)]
    for tw in writers:
        tw.write_status(outcome="running", started=time.time())
        tw.start_heartbeat()
    names = [t.name for t in threading.enumerate() if t.name == "machinable-heartbeat"]
    assert names == ["machinable-heartbeat"]
    assert _wait_for(lambda: all("heartbeat" in _status(tw) for tw in writers))
    for tw in writers:
        tw.close()
    assert not HEARTBEAT._writers


def test_trials_shorter_than_the_interval_are_never_rewritten():
    tw = ExecutionWriter(open_storage(), "3K45al").trial("t")
    tw.write_status(outcome="running", started=time.time())
    tw.start_heartbeat()
    HEARTBEAT.beat()  # a beat right after the start writes nothing
    assert "heartbeat" not in tw.status
    tw.write_status(outcome="passed")
    assert tw not in HEARTBEAT._writers


def test_a_finished_trial_is_not_marked_again(tmp_path, fast_heartbeat):
    tw = ExecutionWriter(open_storage(str(tmp_path)), "3K45al").trial("t")
    tw.write_status(outcome="running", started=time.time() - 1)
    tw.start_heartbeat()
    tw.stop_heartbeat()
    tw.write_status(outcome="passed")
    time.sleep(0.2)
    assert "heartbeat" not in _status(tw)


def test_heartbeats_keep_a_long_trial_running_and_their_absence_reads_as_crashed(tmp_path, fast_heartbeat):
    location = open_storage(str(tmp_path))
    ew = ExecutionWriter(location, "3K45al")
    ew.write_execution({"started": time.time()})
    tw = ew.trial("t")
    tw.write_status(outcome="running", started=time.time())
    tw.start_heartbeat()
    storage = Storage(location, stale_after=0.3)
    try:
        time.sleep(0.5)
        assert storage.get("3K45al").trial("t").status == "running"
    finally:
        tw.close()
    time.sleep(0.5)
    assert storage.get("3K45al").trial("t").status == "crashed"  # its heartbeats stopped without an outcome


def test_the_interval_must_be_positive():
    with pytest.raises(ValueError):
        set_heartbeat_interval(0)
