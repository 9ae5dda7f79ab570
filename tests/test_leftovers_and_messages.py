"""Leftovers a kill leaves behind, messages that named the wrong thing, and original machinable spellings."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
from cli_helpers import FLAKY, run_inprocess, write_project
from guide import make_project

from machinable.errors import UsageError
from machinable.storage import ExecutionWriter, Record, archive_attempt, open_storage
from machinable.storage.encoding import StoredAsTextWarning

# -- projects written for the original machinable ----------------------------------------------------------------


def test_a_group_entry_already_spelled_with_its_prefix_is_not_prefixed_twice(tmp_path: Path) -> None:
    project = make_project(tmp_path, "components:models:\n  - models.baseline: {a: 1}\n  - deep\n")
    assert list(project.components) == ["models.baseline", "models.deep"]
    assert project.component("models.baseline").declared_module == "models.baseline"
    assert project.config("models.baseline") == {"a": 1}


def test_an_aliased_entry_can_be_named_by_its_module_path(tmp_path: Path) -> None:
    project = make_project(
        tmp_path,
        "mixins:\n  - mixins.trait=trait: {t: 1}\n  - extended^mixins.trait: {e: 1}\n"
        "components:\n  - models.net=net: {n: 1}\n"
        "  - child^models.net: {c: 1}\n"
        "  - user: {_mixins_: [mixins.trait, extended], u: 1}\n",
    )
    assert project.mixin("mixins.trait") is project.mixin("trait")
    assert project.component("models.net") is project.component("net")
    assert project.config("child") == {"n": 1, "c": 1}
    assert project.config("user") == {"t": 1, "e": 1, "u": 1}


# -- temp files of a killed run ----------------------------------------------------------------------------------


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_resuming_a_trial_removes_the_temp_files_a_killed_run_left(tmp_path: Path) -> None:
    location = open_storage(str(tmp_path))
    folder = tmp_path / "3K45al" / "t1"
    (folder / "store").mkdir(parents=True)
    dead, alive = _dead_pid(), os.getpid()
    stale = [folder / f"status.json.{dead}-7.tmp", folder / "store" / f"model.npy.{dead}-7.tmp"]
    live = folder / "store" / f"other.npy.{alive}-7.tmp"  # a write of a live process may still finish
    for path in [*stale, live, folder / "status.json"]:
        path.write_bytes(b"partial")
    # Resume resets the trial's folder (replay/destinations.py IntoStored): the previous attempt is archived,
    # and what a dead process never finished writing is dropped, not archived.
    assert archive_attempt(ExecutionWriter(location, "3K45al"), "t1") == 1
    assert sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()) == [
        "attempts/1/status.json",
        f"store/{live.name}",
    ]
    tw = ExecutionWriter(location, "3K45al").trial("t1")
    tw.write_status(outcome="running")
    tw.store("model.json", {"a": 1})
    assert sorted(p.name for p in folder.glob("**/*") if p.is_file() and "attempts" not in p.parts) == [
        "model.json",
        live.name,
        "status.json",
    ]


# -- values JSON cannot hold, reserved columns --------------------------------------------------------------------


class Opaque:
    def __repr__(self) -> str:
        return "<opaque>"


def test_a_record_value_json_cannot_hold_warns_once_per_key(tmp_path: Path) -> None:
    tw = ExecutionWriter(open_storage(str(tmp_path)), "3K45al").trial("t1")
    record = Record(tw.record_writer())
    with pytest.warns(StoredAsTextWarning) as caught:
        for _ in range(3):
            record["model"] = Opaque()
            record["loss"] = 0.5
            record.save()
    assert len(caught) == 1
    message = str(caught[0].message)
    assert "'model'" in message and "Opaque" in message and ".pkl" in message
    assert record.rows[-1]["model"] == "<opaque>"


def test_a_stored_value_json_cannot_hold_warns_with_its_name(tmp_path: Path) -> None:
    tw = ExecutionWriter(open_storage(str(tmp_path)), "3K45al").trial("t1")
    with pytest.warns(StoredAsTextWarning, match=r"'net' holds a Opaque.*self\.store\('net\.pkl'"):
        tw.store("net", Opaque())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tw.store("net", Opaque(), overwrite=True)  # once per trial and name
        tw.store("fine", {"a": [1, 2]})


@pytest.mark.parametrize("column", ["_time", "_iteration"])
def test_a_user_column_may_not_take_a_machinable_column_name(column: str) -> None:
    record = Record()
    with pytest.raises(UsageError, match=f"record column '{column}' is reserved"):
        record[column] = 1
    with pytest.raises(UsageError, match="is reserved"):
        record.update({column: 1})
    record["_mine"] = 1  # other '_' names stay the user's
    assert record.save()["_mine"] == 1


# -- a component whose module fails to import ----------------------------------------------------------------------


@pytest.mark.parametrize("target", ["optimization", "optimization[~fast]"])
def test_a_target_whose_module_fails_to_import_reports_the_import_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, target: str
) -> None:
    yaml = "components:\n  - optimization:\n      lr: 1\n      ~fast: {lr: 2}\n  - other\n"
    files = {"optimization.py": "import no_such_module_here\n", "other.py": FLAKY.replace("Flaky", "Other")}
    root = write_project(tmp_path / "project", yaml, files)
    result = run_inprocess(capsys, root, "--co", "-q", target)
    assert result.ret != 0
    assert "no_such_module_here" in result.err
    assert "did you mean" not in result.err


def test_the_temp_name_pattern_follows_the_backend() -> None:
    from machinable.storage.local_backend import _TEMP_NAME, _tmp_name

    match = _TEMP_NAME.fullmatch(os.path.basename(_tmp_name("/x/store/model.npy")))
    assert match is not None and int(match.group(1)) == os.getpid()
