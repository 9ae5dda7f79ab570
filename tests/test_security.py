"""Security (issue 17): nothing outside the project or the trial's folder is read, archived, imported or written
because a hostile project or results folder says so (symlinks, includes, module names, store names)."""

from __future__ import annotations

import io
import os
import shutil
import stat
import subprocess
import sys
import warnings
import zipfile
from pathlib import Path

import pytest
from cli_helpers import run_inprocess, write_project

import machinable as ml
from machinable.config.project import Project
from machinable.errors import ConfigError, StorageError
from machinable.storage import ExecutionWriter, open_storage
from machinable.storage.backup import build_zip, project_files

needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
needs_symlinks = pytest.mark.skipif(not hasattr(os, "symlink") or sys.platform == "win32", reason="symlinks")

YAML = "components:\n  - optimization:\n      steps: 3\n"
OPTIMIZATION = """\
import machinable as ml


class Optimization(ml.Component):
    def on_execute(self):
        self.record.save(loss=1.0)
"""


def _project(tmp_path: Path, yaml: str = YAML, **files: str) -> Path:
    return write_project(tmp_path / "project", yaml, {"optimization.py": OPTIMIZATION, **files})


def _git(root: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=root, check=True, capture_output=True)


# -- 1. code.zip never follows a symlink out of the project or into an ignored file ----------------------------


def _hostile_links(tmp_path: Path, use_git: bool) -> Path:
    root = _project(tmp_path)
    if use_git:
        _git(root, "init", "-q")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("OUTSIDE=1\n")
    (root / ".gitignore").write_text(".env\n")
    (root / ".env").write_text("SECRET=1\n")
    (root / "sub").mkdir()
    (root / "sub" / "data.txt").write_text("data\n")
    os.symlink(".env", root / "env_link")
    os.symlink(outside / "secret.txt", root / "pw_link")
    os.symlink(outside, root / "outside_dir")
    os.symlink("optimization.py", root / "opt_link")
    os.symlink(root / "sub" / "data.txt", root / "sub" / "abs_link")  # absolute, but inside the project
    os.symlink("sub", root / "sub_link")
    return root


@needs_symlinks
@pytest.mark.parametrize("use_git", [False, pytest.param(True, marks=needs_git)])
def test_symlinks_are_archived_as_links_only_inside_the_project_and_never_into_ignored_files(
    tmp_path, use_git
):
    root = _hostile_links(tmp_path, use_git)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        data, names = build_zip(root)
    assert names == [
        ".gitignore",
        "machinable.yaml",
        "opt_link",
        "optimization.py",
        "sub/abs_link",
        "sub/data.txt",
        "sub_link",
    ]
    assert project_files(root) == names
    messages = sorted(str(w.message) for w in caught)
    assert messages == [
        "code backup skipped the symlink env_link: its target is ignored or not backed up",
        "code backup skipped the symlink outside_dir: its target is outside the project",
        "code backup skipped the symlink pw_link: its target is outside the project",
    ]
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        links = {
            i.filename: archive.read(i) for i in archive.infolist() if stat.S_ISLNK(i.external_attr >> 16)
        }
        content = b"".join(archive.read(name) for name in archive.namelist())
    # Targets relative to the link's folder: an extracted copy points into itself, not at the original project.
    assert links == {"opt_link": b"optimization.py", "sub/abs_link": b"data.txt", "sub_link": b"sub"}
    assert b"SECRET" not in content and b"OUTSIDE" not in content


@needs_symlinks
@needs_git
def test_a_tracked_file_below_a_folder_replaced_by_a_symlink_is_not_read_through_it(tmp_path):
    root = _project(tmp_path)
    _git(root, "init", "-q")
    (root / "sub").mkdir()
    (root / "sub" / "a.py").write_text("x = 1\n")
    _git(root, "add", "sub/a.py")
    shutil.rmtree(root / "sub")
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "a.py").write_text("OUTSIDE = 1\n")
    os.symlink(tmp_path / "outside", root / "sub")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        data, names = build_zip(root)
    assert sorted(str(w.message) for w in caught) == [
        "code backup skipped sub/a.py: it lies below a symlinked folder",
        "code backup skipped the symlink sub: its target is outside the project",  # untracked, listed by git
    ]
    assert "sub/a.py" not in names and b"OUTSIDE" not in data


@needs_symlinks
@needs_git
def test_the_command_keeps_secrets_and_outside_files_out_of_code_zip(tmp_path, capsys):
    root = _hostile_links(tmp_path, use_git=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = run_inprocess(capsys, root, "--storage", str(root / "r"))
    assert result.ret == 0, result.out
    (zip_path,) = (root / "r").glob("*/code.zip")
    with zipfile.ZipFile(zip_path) as archive:
        names = archive.namelist()
        content = b"".join(archive.read(name) for name in names)
    assert "env_link" not in names and "pw_link" not in names
    assert b"SECRET" not in content and b"OUTSIDE" not in content


@needs_symlinks
def test_reproduce_from_a_backup_with_links_still_runs_the_backed_up_files(tmp_path, monkeypatch):
    root = _hostile_links(tmp_path, use_git=False)
    monkeypatch.chdir(root)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        execution = ml.execute("optimization", storage=str(tmp_path / "results"), echo=False)
    assert execution.trials[0].passed
    result = ml.reproduce(execution.id, storage=str(tmp_path / "results"), from_backup=True)
    assert result.ok


# -- 2. includes stay inside the project root ------------------------------------------------------------------


@pytest.mark.parametrize(
    "include",
    ["$/../../../../../../../../etc/passwd", "$//etc/hostname", "$/../outside.yaml", "$/link.yaml"],
)
def test_an_include_outside_the_project_is_an_error_naming_file_and_line(tmp_path, include):
    (tmp_path / "outside.yaml").write_text("secret: 1\n")
    root = _project(tmp_path, YAML + f"      pw: {include}\n")
    if hasattr(os, "symlink"):
        os.symlink(tmp_path / "outside.yaml", root / "link.yaml")
    with pytest.raises(ConfigError) as info:
        Project(root).config("optimization")
    message = str(info.value)
    assert message.startswith(
        f"{root.resolve() / 'machinable.yaml'}:4: included file '{include}' lies outside"
    )
    assert "secret" not in message and "root:" not in message


def test_the_command_stores_no_outside_file_in_trial_json(tmp_path, capsys):
    root = _project(tmp_path, YAML + "      host: $//etc/hostname\n")
    result = run_inprocess(capsys, root, "--storage", str(root / "r"))
    assert result.ret != 0
    assert (
        "machinable.yaml:4: included file '$//etc/hostname' lies outside the project root"
        in result.out + result.err
    )
    assert not list((root / "r").glob("*/*/trial.json"))


def test_an_include_inside_the_project_still_works(tmp_path):
    root = _project(tmp_path, YAML + "      data: $/data/mnist.yaml\n", **{"data/mnist.yaml": "size: 10\n"})
    assert Project(root).config("optimization")["data"] == {"size": 10}


# -- 3. component modules come from the project, installed packages only through a dotted alias ---------------


@pytest.mark.parametrize("name", ["this", "json"])
def test_a_component_named_like_an_installed_module_is_not_imported_from_outside(tmp_path, capsys, name):
    before = sys.modules.get(name)
    root = _project(tmp_path, f"components:\n  - {name}: {{}}\n")
    result = run_inprocess(capsys, root, "--storage", str(root / "r"))
    assert result.ret != 0
    assert "Beautiful is better than ugly" not in result.out + result.err
    assert sys.modules.get(name) is before  # not imported (this) or re-imported (json)
    expected = f"component '{name}': module '{name}' not found in {root.resolve()} (expected {name}.py or "
    errors = [line for line in result.out.splitlines() if line.startswith(f"component '{name}'")]
    assert errors and errors[0].startswith(expected)


def test_a_project_module_named_like_an_installed_module_is_the_project_s(tmp_path, capsys):
    root = _project(tmp_path, "components:\n  - this: {}\n", **{"this.py": OPTIMIZATION})
    result = run_inprocess(capsys, root, "--storage", str(root / "r"))
    assert result.ret == 0, result.out
    assert "Beautiful is better than ugly" not in result.out


def test_a_built_in_module_hiding_the_project_file_is_an_error(tmp_path):
    root = _project(tmp_path, "components:\n  - time: {}\n", **{"time.py": OPTIMIZATION})
    with pytest.raises(ConfigError, match="module 'time' resolves to a built-in module, outside the project"):
        Project(root).component("time").load()


def test_an_alias_of_a_dotted_path_may_import_an_installed_package(tmp_path):
    import json.decoder

    root = _project(tmp_path, "components:\n  - json.decoder=JSONDecoder: {}\n  - this=zen: {}\n")
    project = Project(root)
    assert project.component("JSONDecoder").load() is json.decoder.JSONDecoder
    with pytest.raises(ConfigError, match="module 'this' not found in .* \\(expected this.py"):
        project.component("zen").load()


# -- 4. store() never writes outside the trial's folder, links included ----------------------------------------


@needs_symlinks
@pytest.mark.parametrize("planted", ["store/ln", "store"])
def test_store_refuses_a_symlink_planted_in_the_trial_folder(tmp_path, planted):
    out = tmp_path / "out"
    out.mkdir()
    trial = ExecutionWriter(open_storage(str(tmp_path / "results")), "3K45al").trial("t1")
    trial.write_trial({"node_id": "x"})
    link = Path(trial.path) / planted
    link.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(out, link)
    name = "ln/x.json" if planted == "store/ln" else "x.json"
    with pytest.raises(StorageError, match=f"store name '{name}' would resolve outside the trial's folder"):
        trial.store(name, {})
    with pytest.raises(StorageError, match="outside the trial's folder"):
        trial.import_files({f"store/{name}": b"{}"})
    assert list(out.iterdir()) == []


@needs_symlinks
def test_store_through_a_link_that_stays_inside_the_trial_folder_is_fine(tmp_path):
    trial = ExecutionWriter(open_storage(str(tmp_path / "results")), "3K45al").trial("t1")
    trial.store("real/a.json", {"a": 1})
    os.symlink(Path(trial.path) / "store" / "real", Path(trial.path) / "store" / "ln")
    assert trial.store("ln/b.json", {"b": 2}) == "store/ln/b.json"
    assert (Path(trial.path) / "store" / "real" / "b.json").is_file()


@needs_symlinks
def test_a_component_storing_through_a_planted_link_fails_and_writes_nothing_outside(tmp_path, monkeypatch):
    out = tmp_path / "out"
    out.mkdir()
    source = f"""\
import os

import machinable as ml


class Optimization(ml.Component):
    def on_execute(self):
        os.makedirs(os.path.join(self.storage.path, "store"), exist_ok=True)
        os.symlink({str(out)!r}, os.path.join(self.storage.path, "store", "ln"))
        self.store("ln/x.json", {{}})
"""
    root = write_project(tmp_path / "project", YAML, {"optimization.py": source})
    monkeypatch.chdir(root)
    execution = ml.execute("optimization", storage=str(tmp_path / "results"), echo=False)
    (trial,) = execution.trials
    assert not trial.passed and "outside the trial's folder" in str(trial.error)
    assert list(out.iterdir()) == []
