"""The layout writer: execution and trial folders, JSON files, records, streams, stored objects, shipping."""

from __future__ import annotations

import datetime
import json
import os
import threading
from pathlib import Path

import pytest

from machinable.errors import StorageError
from machinable.storage import ExecutionWriter, Record, Storage, open_storage
from machinable.storage.local_backend import _tmp_name

np = pytest.importorskip("numpy")


@pytest.fixture
def local(tmp_path):
    return open_storage(str(tmp_path / "results"))


def _trial(location, uid="t1"):
    return ExecutionWriter(location, "3K45al").trial(uid)


def test_the_layout_on_disk(local, tmp_path):
    ew = ExecutionWriter(local, "3K45al")
    ew.write_execution({"id": "3K45al", "started": 1.0})
    tw = ew.trial("a1b2c3")
    tw.write_trial({"node_id": "optimization[r1]"})
    tw.write_status(outcome="running", started=1.0)
    tw.record_writer().write({"loss": 1})
    tw.record_writer("validation").write({"acc": 1})
    tw.log_stream().write("log\n")
    tw.output_stream().write("out\n")
    tw.store("model.json", {"w": 1})
    tw.store("best", 3)
    tw.close()
    root = tmp_path / "results" / "3K45al"
    assert ew.path == str(root) and tw.path == str(root / "a1b2c3")
    found = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
    assert found == [
        "a1b2c3/log.txt",
        "a1b2c3/output.log",
        "a1b2c3/records.jsonl",
        "a1b2c3/records/validation.jsonl",
        "a1b2c3/status.json",
        "a1b2c3/store.json",
        "a1b2c3/store/model.json",
        "a1b2c3/trial.json",
        "execution.json",
    ]


def test_nothing_is_created_before_the_first_write(local, tmp_path):
    ew = ExecutionWriter(local, "3K45al")
    ew.trial("t1")
    assert not (tmp_path / "results").exists()


def test_execution_json_merges_every_write_and_what_was_there(local):
    ExecutionWriter(local, "3K45al").write_execution({"id": "3K45al", "started": 1.0})
    again = ExecutionWriter(local, "3K45al")
    assert again.exists()
    again.write_execution({"finished": 2.0})
    info = json.loads(Path(again.path, "execution.json").read_text())
    assert info == {"id": "3K45al", "started": 1.0, "finished": 2.0}


def test_status_merges_fields(local):
    tw = _trial(local)
    tw.write_status(outcome="running", started=1.0, pid=12)
    tw.write_status(outcome="passed", finished=2.0, error=None)
    assert json.loads(Path(tw.path, "status.json").read_text()) == {
        "outcome": "passed",
        "started": 1.0,
        "pid": 12,
        "finished": 2.0,
        "error": None,
    }
    assert tw.status["outcome"] == "passed"


def test_trial_json_holds_plain_json_of_configs(local):
    tw = _trial(local)
    tw.write_trial({"config": {"lr": np.float32(0.5), "path": Path("/data")}, "seed": np.int64(3)})
    assert json.loads(Path(tw.path, "trial.json").read_text()) == {
        "config": {"lr": 0.5, "path": "/data"},
        "seed": 3,
    }


def test_json_writes_leave_no_temp_files(local):
    tw = _trial(local)
    for i in range(5):
        tw.write_status(i=i)
    assert sorted(os.listdir(tw.path)) == ["status.json"]


def test_temp_names_are_unique_per_process_and_thread(tmp_path):
    names = {_tmp_name("x")}
    thread = threading.Thread(target=lambda: names.add(_tmp_name("x")))
    thread.start()
    thread.join()
    assert len(names) == 2 and all(str(os.getpid()) in n for n in names)


def test_record_rows_are_json_lines_visible_before_close(local):
    tw = _trial(local)
    writer = tw.record_writer()
    writer.write({"loss": 0.5, "step": 1})
    writer.write({"loss": 0.25, "step": 2})
    lines = Path(tw.path, "records.jsonl").read_text().splitlines()
    assert [json.loads(line) for line in lines] == [{"loss": 0.5, "step": 1}, {"loss": 0.25, "step": 2}]


def test_records_convert_numpy_paths_and_datetimes(local):
    tw = _trial(local)
    when = datetime.datetime(2024, 1, 2, 3, 4, 5)
    tw.record_writer().write(
        {
            "f32": np.float32(1.5),
            "i64": np.int64(7),
            "arr": np.arange(3),
            "bool": np.bool_(True),
            "path": Path("/tmp/x"),
            "when": when,
            "day": when.date(),
            "set": {2, 1},
            "tuple_key": {(1, 2): "a"},
            "text": "line\nbreak",
        }
    )
    row = json.loads(Path(tw.path, "records.jsonl").read_text())
    assert row == {
        "f32": 1.5,
        "i64": 7,
        "arr": [0, 1, 2],
        "bool": True,
        "path": "/tmp/x",
        "when": "2024-01-02T03:04:05",
        "day": "2024-01-02",
        "set": [1, 2],
        "tuple_key": {"(1, 2)": "a"},
        "text": "line\nbreak",
    }


def test_record_scopes_must_be_plain_names(local):
    with pytest.raises(StorageError, match="record scope"):
        _trial(local).record_writer("../x")


def test_log_and_output_streams_create_their_files_on_first_write(local):
    tw = _trial(local)
    log, out = tw.log_stream(), tw.output_stream()
    tw.write_status(outcome="running")
    assert not Path(tw.path, "log.txt").exists() and not Path(tw.path, "output.log").exists()
    log.write("first line\n")
    print("printed", file=out)
    assert Path(tw.path, "log.txt").read_text() == "first line\n"
    assert Path(tw.path, "output.log").read_text() == "printed\n"
    tw.close()
    assert log.closed and out.closed


def test_streams_are_text_files(local):
    stream = _trial(local).output_stream()
    assert stream.writable() and not stream.isatty() and stream.encoding == "utf-8"
    with pytest.raises(TypeError):
        stream.write(b"bytes")


def test_writing_after_close_reopens_records(local):
    tw = _trial(local)
    tw.record_writer().write({"a": 1})
    tw.close()
    tw.record_writer().write({"a": 2})
    tw.close()
    assert len(Path(tw.path, "records.jsonl").read_text().splitlines()) == 2


@pytest.mark.parametrize(
    ("name", "value", "file"),
    [
        ("result.json", {"a": [1, 2]}, "store/result.json"),
        ("notes.txt", "hello", "store/notes.txt"),
        ("weights.npy", np.arange(4.0), "store/weights.npy"),
        ("model.pkl", {"any": {1, 2}}, "store/model.pkl"),
        ("deep/er/x.json", [1], "store/deep/er/x.json"),
    ],
)
def test_store_known_extensions_become_files(local, name, value, file):
    tw = _trial(local)
    assert tw.store(name, value) == file
    assert Path(tw.path, file).is_file()
    tw.execution.write_execution({"started": 1.0})
    loaded = Storage(local).get("3K45al").trial("t1").store[name]
    if isinstance(value, np.ndarray):
        assert np.array_equal(loaded, value)
    else:
        assert loaded == value


def test_store_other_names_become_keys_of_store_json(local):
    tw = _trial(local)
    tw.store("best_loss", np.float64(0.25))
    tw.store("model.ckpt", [1, 2])  # an unknown extension is a key too
    assert json.loads(Path(tw.path, "store.json").read_text()) == {"best_loss": 0.25, "model.ckpt": [1, 2]}


def test_store_keeps_the_value_as_it_was_when_stored(local):
    tw = _trial(local)
    value = [1]
    tw.store("k", value)
    value.append(2)
    tw.store("other", 0)
    assert json.loads(Path(tw.path, "store.json").read_text())["k"] == [1]


@pytest.mark.parametrize("name", ["k", "a.json", "a.txt", "a.npy", "a.pkl"])
def test_storing_twice_needs_overwrite(local, name):
    tw = _trial(local)
    tw.store(name, 1)
    with pytest.raises(StorageError, match="overwrite=True"):
        tw.store(name, 2)
    tw.store(name, 3, overwrite=True)


def test_overwrite_is_also_refused_for_files_written_by_an_earlier_writer(local):
    _trial(local).store("a.json", 1)
    with pytest.raises(StorageError, match="overwrite=True"):
        _trial(local).store("a.json", 2)


@pytest.mark.parametrize(
    "name", ["../x", "../x.json", "/etc/passwd", "a/../../x.txt", "..", "", "C:\\x.json", "\\abs.json", "."]
)
def test_store_names_outside_the_trial_folder_are_refused(local, name):
    with pytest.raises(StorageError):
        _trial(local).store(name, 1)


def test_store_names_that_stay_inside_are_normalized(local):
    tw = _trial(local)
    assert tw.store("a/../b.json", 1) == "store/b.json"
    assert tw.store("./c", 1) == "c"


def test_npy_refuses_objects_and_points_to_pkl(local):
    with pytest.raises(StorageError, match=r"\.pkl"):
        _trial(local).store("x.npy", np.array([{}, 1], dtype=object))


@pytest.mark.parametrize("bad", ["", "..", "a/b", "a\\b", None])
def test_ids_and_uids_must_be_folder_names(local, bad):
    with pytest.raises(StorageError):
        ExecutionWriter(local, bad)
    with pytest.raises(StorageError):
        ExecutionWriter(local, "3K45al").trial(bad)


def test_export_and_import_ship_a_memory_trial_into_another_storage(local):
    worker = _trial(open_storage())
    worker.write_trial({"node_id": "n"})
    worker.write_status(outcome="passed")
    Record(worker.record_writer()).update(loss=1)
    record = Record(worker.record_writer())
    record["loss"] = 1
    record.save()
    worker.log_stream().write("hello\n")
    worker.store("a.npy", np.ones(2))
    worker.close()
    files = worker.export()
    assert sorted(files) == ["log.txt", "records.jsonl", "status.json", "store/a.npy", "trial.json"]
    controller = ExecutionWriter(local, "3K45al")
    controller.write_execution({"started": 1.0})
    tw = controller.import_trial("t1", files)
    assert tw.status == {"outcome": "passed"}
    trial = Storage(local).get("3K45al").trial("n")
    assert trial.status == "passed" and trial.records[0]["loss"] == 1 and trial.log == "hello\n"
    assert np.array_equal(trial.store["a.npy"], np.ones(2))


def test_export_remove_frees_the_workers_memory():
    location = open_storage()
    tw = _trial(location)
    tw.write_status(outcome="passed")
    tw.record_writer().write({"a": 1})
    assert set(tw.export(remove=True)) == {"status.json", "records.jsonl"}
    assert location.backend().files_under(location.root) == []


def test_export_of_a_local_trial_lists_its_folder(local):
    tw = _trial(local)
    tw.write_status(outcome="passed")
    tw.store("x.txt", "x")
    assert tw.export() == {"status.json": b'{"outcome": "passed"}', "store/x.txt": b"x"}


def test_import_refuses_paths_outside_the_trial(local):
    with pytest.raises(StorageError):
        ExecutionWriter(local, "3K45al").import_trial("t1", {"../evil.json": b"{}"})


def test_any_fsspec_filesystem_works_through_the_generic_path(tmp_path):
    import fsspec
    from fsspec.implementations.memory import MemoryFileSystem

    class OtherFileSystem(MemoryFileSystem):
        protocol = "machinabletest"
        store: dict = {}
        pseudo_dirs = [""]

    fsspec.register_implementation("machinabletest", OtherFileSystem, clobber=True)
    location = open_storage("machinabletest://bucket/results")
    assert not location.is_memory and not location.is_local
    ew = ExecutionWriter(location, "3K45al")
    ew.write_execution({"started": 1.0, "trials": ["t1"]})
    tw = ew.trial("t1")
    tw.write_trial({"node_id": "n"})
    tw.write_status(outcome="passed")
    tw.record_writer().write({"a": 1})
    tw.output_stream().write("out\n")
    tw.store("x.json", 1)
    tw.store("k", 2)
    tw.close()
    trial = Storage("machinabletest://bucket/results").get("3K45al").trials[0]
    assert (trial.node_id, trial.status, trial.records, trial.output) == ("n", "passed", [{"a": 1}], "out\n")
    assert dict(trial.store) == {"x.json": 1, "k": 2}
    assert sorted(tw.export()) == [
        "output.log",
        "records.jsonl",
        "status.json",
        "store.json",
        "store/x.json",
        "trial.json",
    ]
