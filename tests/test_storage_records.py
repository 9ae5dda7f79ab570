"""``self.record``: rows of user columns; machinable's own columns start with '_'."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from machinable.errors import UsageError
from machinable.storage import ExecutionWriter, Record, open_storage


def test_save_ends_the_row_and_adds_a_timestamp():
    record = Record()
    record["loss"] = 0.1
    record.update({"acc": 0.9}, epoch=1)
    row = record.save()
    assert row is not None and set(row) == {"loss", "acc", "epoch", "_time"}
    assert isinstance(row["_time"], float)
    assert record.rows == [row] and len(record) == 0


def test_saving_an_empty_row_is_a_no_op():
    record = Record()
    assert record.save() is None and record.save(_iteration=1) is None
    assert record.rows == []


def test_internal_fields_are_added_and_user_columns_never_touched():
    record = Record()
    record["time"] = "user's own column"
    row = record.save(_iteration=3)
    assert row["time"] == "user's own column" and row["_iteration"] == 3


def test_save_refuses_fields_without_underscore():
    record = Record()
    record["a"] = 1
    with pytest.raises(UsageError, match="record\\['echo'\\]"):
        record.save(echo=True)
    assert record["a"] == 1  # the row is kept


def test_rows_are_written_through_the_writer_one_line_each(tmp_path):
    tw = ExecutionWriter(open_storage(str(tmp_path)), "3K45al").trial("t1")
    record = Record(tw.record_writer())
    for i in range(3):
        record["loss"] = 1 / (i + 1)
        record.save(_iteration=i)
    lines = Path(tw.path, "records.jsonl").read_text().splitlines()
    assert [json.loads(line) for line in lines] == record.rows
    assert [r["_iteration"] for r in record.rows] == [0, 1, 2]


def test_the_current_row_reads_like_a_dict():
    record = Record()
    record["a"] = 1
    assert record["a"] == 1 and record.get("b", 2) == 2 and "a" in record and list(record) == ["a"]
    assert record.current == {"a": 1}
    del record["a"]
    assert len(record) == 0


def test_a_saved_row_is_not_changed_by_the_next_row():
    record = Record()
    record["a"] = 1
    first = record.save()
    record["a"] = 2
    record.save()
    assert first["a"] == 1 and [r["a"] for r in record.rows] == [1, 2]


def test_saved_rows_in_memory_equal_the_rows_read_back(tmp_path):
    import datetime

    from machinable.storage import Storage

    tw = ExecutionWriter(open_storage(str(tmp_path)), "3K45al").trial("t1")
    record = Record(tw.record_writer())
    weights = [1, 2]
    record.update(path=Path("model"), pair=(1, 2), when=datetime.date(2024, 5, 2), weights=weights)
    row = record.save()
    weights.append(3)  # a saved row never changes afterwards
    stored = Storage(str(tmp_path)).get("3K45al").trial("t1").records
    assert record.rows == stored == [row]
    assert row["path"] == "model" and row["pair"] == [1, 2] and row["weights"] == [1, 2]


def test_rows_without_a_writer_are_json_values_too():
    record = Record()
    record["pair"] = (1, 2)
    assert record.save()["pair"] == [1, 2]
