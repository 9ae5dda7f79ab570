"""S3 through a real (moto) server: write an execution with the writers, read it back with Storage."""

from __future__ import annotations

import time

import pytest

from machinable.storage import ExecutionWriter, Record, Storage, open_storage

pytestmark = pytest.mark.slow


def _write_execution(location, execution_id="3K45al", started=1.0):
    ew = ExecutionWriter(location, execution_id)
    ew.write_execution({"id": execution_id, "started": started, "trials": ["t1", "t2"]})
    for n, uid in enumerate(["t1", "t2"]):
        tw = ew.trial(uid)
        tw.write_trial({"node_id": f"opt[{uid}]", "component": "opt", "config": {"n": n}, "seed": n})
        tw.write_status(outcome="running", started=time.time())
        record = Record(tw.record_writer())
        for i in range(3):
            record["loss"] = i * n
            record.save(_iteration=i)
        tw.log_stream().write("log line\n")
        tw.output_stream().write("printed\n")
        tw.store("model.json", {"n": n})
        tw.store("best", n)
        tw.write_status(outcome="passed", finished=time.time())
        tw.close()
    ew.write_execution({"finished": started + 1})
    return ew


def test_an_execution_written_to_s3_reads_back_completely(s3_server, tmp_path):
    target = s3_server.target()
    location = open_storage(target)
    assert location.protocol == "s3" and location.url == target["url"]
    (tmp_path / "code.py").write_text("x = 1\n")
    ew = _write_execution(location)
    assert ew.backup_code(tmp_path) == ["code.py"]

    execution = Storage(target).get("3K45al")
    assert execution.finished == 2.0 and execution.code_zip_names() == ["code.py"]
    assert [t.node_id for t in execution.trials] == ["opt[t1]", "opt[t2]"]
    trial = execution.trial("opt[t2]")
    assert trial.status == "passed" and trial.config == {"n": 1} and trial.seed == 1
    assert [r["loss"] for r in trial.records] == [0, 1, 2] and trial.record_scopes() == ["default"]
    assert trial.log == "log line\n" and trial.output == "printed\n"
    assert dict(trial.store) == {"model.json": {"n": 1}, "best": 1}


def test_s3_from_the_usual_aws_environment_variables(s3_env):
    url = s3_env.url()
    _write_execution(open_storage(url))
    assert Storage(url).get("3K45al").trials[0].status == "passed"


def test_the_guides_dict_form_with_s3(s3_server, tmp_path):
    target = {"code_backup": False, "storage": s3_server.url(), **s3_server.options}
    location = open_storage(target)
    assert location.code_backup is False
    assert ExecutionWriter(location, "3K45al").backup_code(tmp_path) is None


def test_listings_are_fresh_after_more_writes(s3_server):
    target = s3_server.target()
    storage = Storage(target)
    _write_execution(open_storage(target), "3K45al", started=1.0)
    assert [e.id for e in storage.executions()] == ["3K45al"]
    _write_execution(open_storage(target), "OY1p1o", started=2.0)
    assert [e.id for e in storage.executions()] == ["OY1p1o", "3K45al"]


def test_to_target_reopens_the_same_s3_prefix(s3_server):
    location = open_storage(s3_server.target())
    _write_execution(location)
    assert Storage(location.to_target()).get("3K45al").trials[1].store["best"] == 1


def test_s3_url_printing_keeps_credentials_out(s3_server):
    location = open_storage(s3_server.target())
    assert s3_server.options["secret"] not in location.url and s3_server.options["secret"] not in repr(
        location
    )


def test_two_claims_of_one_execution_id_on_s3_get_different_folders(s3_server):
    # The claim writes its marker with an exclusive create (If-None-Match), so the second claim sees it
    # even before either execution wrote anything else.
    location = open_storage(s3_server.target())
    first = ExecutionWriter.claim(location, "3K45al")
    second = ExecutionWriter.claim(location, "3K45al")
    assert (first.folder, second.folder) == ("3K45al", "3K45al-2")
