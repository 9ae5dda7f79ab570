"""Storage targets: every URL form, the dict form, dev mode and malformed URLs."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import pytest

from machinable.errors import StorageError
from machinable.storage import ExecutionWriter, Storage, open_storage


def test_default_is_a_fresh_memory_folder_per_call():
    a, b = open_storage(), open_storage(None)
    assert a.is_memory and b.is_memory and not a.is_local
    assert a.url.startswith("memory://") and a.root != b.root
    assert a.code_backup is True


def test_memory_without_a_name_is_fresh_and_with_a_name_is_shared():
    assert open_storage("memory://").root != open_storage("memory://").root
    assert (
        open_storage("memory://shared-name").root
        == open_storage("memory://shared-name").root
        == "/shared-name"
    )


def test_two_executions_on_default_storage_never_see_each_other():
    first, second = open_storage(), open_storage()
    ExecutionWriter(first, "3K45al").write_execution({"started": 1.0})
    ExecutionWriter(second, "OY1p1o").write_execution({"started": 2.0})
    assert [e.id for e in Storage(first.to_target()).executions()] == ["3K45al"]
    assert [e.id for e in Storage(second.to_target()).executions()] == ["OY1p1o"]


def test_mem_alias_is_memory():
    location = open_storage("mem://results")
    assert location.is_memory and location.url == "memory://results"


@pytest.mark.parametrize("form", ["~/observations", "~"])
def test_home_paths_expand(form):
    location = open_storage(form)
    assert location.is_local
    assert location.root == os.path.abspath(os.path.expanduser(form))
    assert location.url == location.root


def test_relative_paths_are_made_absolute_against_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert open_storage("./results").root == str(tmp_path / "results")
    assert open_storage("results").root == str(tmp_path / "results")


def test_absolute_paths_and_pathlike(tmp_path):
    assert open_storage(str(tmp_path)).root == str(tmp_path)
    assert open_storage(tmp_path / "x").root == str(tmp_path / "x")


@pytest.mark.parametrize("scheme", ["file", "osfs", "FILE", "local"])
def test_file_and_osfs_urls_are_local(tmp_path, scheme):
    location = open_storage(f"{scheme}://{tmp_path}/r")
    assert location.is_local and location.root == f"{tmp_path}/r"


def test_osfs_url_with_home(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    assert open_storage("osfs://~/observations").root == str(tmp_path / "observations")


def test_dict_accepts_url_and_the_guides_storage_key(tmp_path):
    by_url = open_storage({"url": str(tmp_path), "code_backup": False})
    by_storage = open_storage({"storage": str(tmp_path), "code_backup": False})
    assert by_url.root == by_storage.root == str(tmp_path)
    assert by_url.code_backup is by_storage.code_backup is False


def test_dict_without_url_is_default_memory():
    location = open_storage({"code_backup": False})
    assert location.is_memory and location.code_backup is False


def test_dict_with_two_different_urls_is_refused():
    with pytest.raises(StorageError, match="both 'url'"):
        open_storage({"url": "memory://a", "storage": "memory://b"})


def test_dict_code_backup_must_be_a_bool():
    with pytest.raises(StorageError, match="code_backup"):
        open_storage({"url": "memory://a", "code_backup": "no"})


def test_dict_extra_keys_are_storage_options():
    location = open_storage({"url": "memory://opts", "storage_options": {"a": 1}, "b": 2})
    assert location.storage_options == {"a": 1, "b": 2}
    assert location.options == {"url": "memory://opts", "code_backup": True, "a": 1, "b": 2}


def test_dev_mode_is_memory_without_code_backup(tmp_path):
    location = open_storage(str(tmp_path), dev_mode=True)
    assert location.is_memory and location.code_backup is False


@pytest.mark.parametrize("target", [None, "memory://", "memory://named", "local"])
def test_to_target_reopens_the_same_root_in_another_process(target, tmp_path):
    location = open_storage(str(tmp_path) if target == "local" else target)
    copy = pickle.loads(pickle.dumps(location.to_target()))
    again = open_storage(copy)
    assert (again.protocol, again.root, again.code_backup) == (
        location.protocol,
        location.root,
        location.code_backup,
    )


def test_storage_location_pickles_without_its_filesystem():
    location = open_storage("memory://pickled")
    assert location.fs is not None
    copy = pickle.loads(pickle.dumps(location))
    assert copy.root == location.root and "memory" in copy.fs.protocol


def test_a_storage_location_passes_through():
    location = open_storage()
    assert open_storage(location) is location


def test_other_fsspec_protocols_work_including_chained_urls():
    chained = open_storage("simplecache::memory://chained")
    assert chained.protocol == "simplecache" and chained.root == "/chained"


def test_urls_never_print_credentials():
    pytest.importorskip("aiohttp")
    location = open_storage({"url": "https://user:secret@example.invalid/path"})
    assert "secret" not in location.url and "secret" not in repr(location)
    assert location.url == "https://example.invalid/path"


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("", "empty storage URL"),
        ("   ", "empty storage URL"),
        ("s3:/bucket", "malformed storage URL"),
        ("nosuchproto://x/y", "unknown storage protocol 'nosuchproto'"),
        ("s3://", "names no bucket"),
        ("file://", "names no folder"),
        ("memory://../up", "leaves the memory"),
        (42, "must be a URL, a path or a dict"),
        (["memory://"], "must be a URL"),
    ],
)
def test_bad_targets_are_storage_errors(target, message):
    with pytest.raises(StorageError, match=message):
        open_storage(target)


def test_unknown_protocol_error_lists_what_is_available():
    with pytest.raises(StorageError) as info:
        open_storage("sftpx://host/path")
    text = str(info.value)
    assert "memory://" in text and "s3://" in text and "any other fsspec protocol" in text


def test_local_storage_never_imports_fsspec_for_writing(tmp_path):
    # Local storage writes with os calls only; the fsspec filesystem is still there on request.
    location = open_storage(str(tmp_path))
    assert location._fs is None
    ExecutionWriter(location, "3K45al").write_execution({"started": 1.0})
    assert location._fs is None
    assert location.fs.exists(str(Path(tmp_path) / "3K45al" / "execution.json"))
