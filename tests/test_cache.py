"""The .machinable_cache folder: JSON values between runs; a broken cache warns and never crashes."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from machinable.collection.cache import Cache, CacheWarning


def test_a_missing_value_reads_as_the_default(tmp_path: Path):
    cache = Cache(tmp_path)
    assert cache.get("cache/lastfailed") is None
    assert cache.get("cache/lastfailed", {}) == {}
    assert not (tmp_path / ".machinable_cache").exists()  # reading never creates the folder


def test_set_then_get_round_trips_json(tmp_path: Path):
    cache = Cache(tmp_path)
    value = {"optimization[~alexnet][r2]": True, "nested": [1, 2.5, None, "ü"]}
    cache.set("cache/lastfailed", value)
    assert cache.get("cache/lastfailed") == value
    assert Cache(tmp_path).get("cache/lastfailed") == value  # a new run sees it


def test_a_key_is_a_json_file_under_v(tmp_path: Path):
    Cache(tmp_path).set("cache/lastfailed", {"a": True})
    path = tmp_path / ".machinable_cache" / "v" / "cache" / "lastfailed"
    assert json.loads(path.read_text(encoding="utf-8")) == {"a": True}


def test_set_replaces_the_previous_value(tmp_path: Path):
    cache = Cache(tmp_path)
    cache.set("k", [1, 2, 3])
    cache.set("k", [])
    assert cache.get("k") == []


def test_first_write_creates_readme_and_gitignore(tmp_path: Path):
    Cache(tmp_path).set("cache/lastfailed", {})
    folder = tmp_path / ".machinable_cache"
    assert "machinable" in (folder / "README.md").read_text(encoding="utf-8")
    gitignore_lines = (folder / ".gitignore").read_text(encoding="utf-8").splitlines()
    assert "*" in gitignore_lines
    assert (folder / "CACHEDIR.TAG").read_bytes().startswith(b"Signature: 8a477f597d28d172789f06886806bc55")


def test_writing_leaves_no_temporary_files(tmp_path: Path):
    cache = Cache(tmp_path)
    for i in range(3):
        cache.set("cache/lastfailed", {"i": i})
    assert os.listdir(tmp_path) == [".machinable_cache"]
    assert os.listdir(tmp_path / ".machinable_cache" / "v" / "cache") == ["lastfailed"]


def test_a_write_goes_through_os_replace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    replaced: list[tuple[str, str]] = []
    real_replace = os.replace

    def spy(source, target):
        replaced.append((str(source), str(target)))
        real_replace(source, target)

    monkeypatch.setattr(os, "replace", spy)
    Cache(tmp_path).set("cache/lastfailed", {})
    [(source, target)] = replaced
    assert target == str(tmp_path / ".machinable_cache" / "v" / "cache" / "lastfailed")
    assert Path(source).parent == Path(target).parent


def test_a_value_json_cannot_hold_raises_and_writes_nothing(tmp_path: Path):
    cache = Cache(tmp_path)
    cache.set("k", 1)
    with pytest.raises(TypeError):
        cache.set("k", object())
    assert cache.get("k") == 1


def test_a_corrupt_file_reads_as_the_default_with_a_warning(tmp_path: Path):
    cache = Cache(tmp_path)
    cache.set("cache/lastfailed", {})
    (tmp_path / ".machinable_cache" / "v" / "cache" / "lastfailed").write_text("{not json", encoding="utf-8")
    with pytest.warns(CacheWarning, match="cache/lastfailed"):
        assert cache.get("cache/lastfailed", {"default": 1}) == {"default": 1}


def test_a_file_that_is_not_utf8_reads_as_the_default_with_a_warning(tmp_path: Path):
    cache = Cache(tmp_path)
    cache.set("k", 1)
    (tmp_path / ".machinable_cache" / "v" / "k").write_bytes(b"\xff\xfe\x00")
    with pytest.warns(CacheWarning):
        assert cache.get("k", "default") == "default"


def test_an_unreadable_entry_reads_as_the_default_with_a_warning(tmp_path: Path):
    cache = Cache(tmp_path)
    (tmp_path / ".machinable_cache" / "v" / "k").mkdir(parents=True)  # a folder where a file should be
    with pytest.warns(CacheWarning):
        assert cache.get("k", 7) == 7


def test_a_failed_write_warns_instead_of_crashing(tmp_path: Path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("", encoding="utf-8")
    with pytest.warns(CacheWarning, match="not saved"):
        Cache(blocker).set("k", 1)


def test_clear_removes_every_value(tmp_path: Path):
    cache = Cache(tmp_path)
    cache.set("a", 1)
    cache.set("b/c", 2)
    cache.clear()
    assert not (tmp_path / ".machinable_cache").exists()
    assert cache.get("a") is None
    cache.set("a", 3)  # usable again, folder recreated with its .gitignore
    assert cache.get("a") == 3
    assert (tmp_path / ".machinable_cache" / ".gitignore").exists()


def test_clear_without_a_cache_is_fine(tmp_path: Path):
    Cache(tmp_path).clear()


@pytest.mark.parametrize("key", ["", "/etc/passwd", "../outside", "a/../../b", "a\\b", "./a", "a//b", "a/"])
def test_keys_cannot_leave_the_cache_folder(tmp_path: Path, key: str):
    with pytest.raises(ValueError, match="invalid cache key"):
        Cache(tmp_path).set(key, 1)
    with pytest.raises(ValueError):
        Cache(tmp_path).get(key)
