"""Code backup: code.zip holds what git would keep, relative to the project root, never secrets or .git/."""

from __future__ import annotations

import io
import shutil
import subprocess
import zipfile

import pytest

from machinable.storage import ExecutionWriter, Storage, open_storage
from machinable.storage.backup import build_zip, git_revision, project_files

needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


def _project(root):
    files = {
        "machinable.yaml": "components:\n",
        "optimization.py": "x = 1\n",
        "tasks/example.py": "y = 2\n",
        ".gitignore": ".env\nsecrets.yaml\n*.log\n!keep.log\nbuild/\n",
        ".env": "TOKEN=secret\n",
        "secrets.yaml": "password: x\n",
        "tasks/secrets.yaml": "password: y\n",
        "run.log": "noise\n",
        "keep.log": "kept\n",
        "build/out.py": "generated\n",
        "data/.gitignore": "*.csv\n!small.csv\n",
        "data/big.csv": "1,2\n",
        "data/small.csv": "1\n",
    }
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


EXPECTED = [
    ".gitignore",
    "data/.gitignore",
    "data/small.csv",
    "keep.log",
    "machinable.yaml",
    "optimization.py",
    "tasks/example.py",
]


def _git(root, *args):
    subprocess.run(["git", *args], cwd=root, check=True, capture_output=True)


def test_outside_git_gitignore_files_are_applied(tmp_path):
    root = _project(tmp_path / "p")
    assert project_files(root) == EXPECTED


@needs_git
def test_inside_git_the_file_list_is_gits(tmp_path):
    root = _project(tmp_path / "p")
    _git(root, "init", "-q")
    (root / ".git" / "info" / "exclude").write_text("local-only.py\n")
    (root / "local-only.py").write_text("z = 3\n")
    assert project_files(root) == EXPECTED


@needs_git
def test_a_project_in_a_subfolder_of_a_repository_has_paths_relative_to_itself(tmp_path):
    repo = tmp_path / "repo"
    root = _project(repo / "experiments" / "p")
    _git(repo, "init", "-q")
    (repo / "outside.py").write_text("")
    assert project_files(root) == EXPECTED


@needs_git
def test_tracked_and_untracked_files_are_both_backed_up(tmp_path):
    root = _project(tmp_path / "p")
    _git(root, "init", "-q")
    _git(root, "add", "optimization.py")
    _git(root, "-c", "user.email=a@b", "-c", "user.name=a", "commit", "-q", "-m", "x")
    assert "optimization.py" in project_files(root) and "tasks/example.py" in project_files(root)
    revision = git_revision(root)
    assert len(revision["commit"]) == 40 and revision["dirty"] is False
    (root / "optimization.py").write_text("x = 2\n")
    assert git_revision(root)["dirty"] is True


def test_git_revision_outside_git_is_empty(tmp_path):
    assert git_revision(tmp_path) == {}


@pytest.mark.parametrize("use_git", [False, pytest.param(True, marks=needs_git)])
def test_secrets_listed_in_gitignore_are_never_in_the_zip(tmp_path, use_git):
    root = _project(tmp_path / "p")
    if use_git:
        _git(root, "init", "-q")
    ew = ExecutionWriter(open_storage(str(tmp_path / "results")), "3K45al")
    names = ew.backup_code(root)
    with zipfile.ZipFile(tmp_path / "results" / "3K45al" / "code.zip") as archive:
        archived = archive.namelist()
        assert archive.read("optimization.py") == b"x = 1\n"
    assert names == archived == EXPECTED
    assert not {".env", "secrets.yaml", "tasks/secrets.yaml"} & set(archived)


def test_dot_git_is_never_included(tmp_path):
    root = tmp_path / "p"
    (root / ".git").mkdir(parents=True)
    (root / ".git" / "config").write_text("[core]\n")
    (root / "sub" / ".git").parent.mkdir()
    (root / "sub" / ".git").write_text("gitdir: elsewhere\n")
    (root / "a.py").write_text("")
    assert project_files(root) == ["a.py"]


def test_big_files_are_skipped_with_a_warning(tmp_path):
    root = tmp_path / "p"
    root.mkdir()
    (root / "small.py").write_text("x")
    (root / "weights.bin").write_bytes(b"0" * 2048)
    with pytest.warns(UserWarning, match="weights.bin"):
        _data, names = build_zip(root, max_file_size=1024)
    assert names == ["small.py"]


def test_the_size_cap_can_be_passed_to_backup_code(tmp_path):
    root = tmp_path / "p"
    root.mkdir()
    (root / "weights.bin").write_bytes(b"0" * 2048)
    ew = ExecutionWriter(open_storage(), "3K45al")
    assert ew.backup_code(root, max_file_size=None) == ["weights.bin"]


@pytest.mark.parametrize("target", [{"code_backup": False}, {"code_backup": False, "storage": "memory://nb"}])
def test_code_backup_false_turns_backups_off(tmp_path, target):
    root = _project(tmp_path / "p")
    ew = ExecutionWriter(open_storage(target), "3K45al")
    assert ew.backup_code(root) is None
    ew.write_execution({"started": 1.0})
    assert Storage(ew.location).get("3K45al").code_zip() is None


def test_dev_mode_makes_no_backup(tmp_path):
    root = _project(tmp_path / "p")
    assert ExecutionWriter(open_storage(str(tmp_path), dev_mode=True), "3K45al").backup_code(root) is None


def test_the_zip_extracts_to_a_runnable_copy(tmp_path):
    root = _project(tmp_path / "p")
    data, _ = build_zip(root)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        archive.extractall(tmp_path / "copy")
    assert (tmp_path / "copy" / "tasks" / "example.py").read_text() == "y = 2\n"


@pytest.mark.parametrize("use_git", [False, pytest.param(True, marks=needs_git)])
def test_results_kept_inside_the_project_are_not_archived(tmp_path, use_git):
    root = _project(tmp_path / "p")
    if use_git:
        _git(root, "init", "-q")
    location = open_storage(str(root / "results"))
    first = ExecutionWriter(location, "3K45al")
    first.write_execution({"started": 1.0})
    second = ExecutionWriter(location, "OY1p1o")
    second.write_execution({"started": 2.0})
    assert second.backup_code(root) == EXPECTED


def test_results_written_straight_into_the_project_folder_are_not_archived(tmp_path):
    root = _project(tmp_path / "p")
    ExecutionWriter(open_storage(str(root)), "3K45al").write_execution({"started": 1.0})
    second = ExecutionWriter(open_storage(str(root)), "OY1p1o")
    second.write_execution({"started": 2.0})
    assert second.backup_code(root) == EXPECTED


@needs_git
def test_a_secret_committed_before_gitignore_listed_it_is_never_in_the_zip(tmp_path):
    root = _project(tmp_path / "p")
    _git(root, "init", "-q")
    # Tracked files stay tracked when an ignore rule names them later (or when added with -f).
    _git(root, "add", "-f", ".env", "tasks/secrets.yaml", "build/out.py", "keep.log", "optimization.py")
    _git(root, "-c", "user.email=a@b", "-c", "user.name=a", "commit", "-q", "-m", "x")
    assert project_files(root) == EXPECTED


def test_info_exclude_applies_when_git_cannot_read_the_repository(tmp_path):
    root = _project(tmp_path / "p")
    # A .git/ without HEAD is no repository to git (as for one owned by another user): pathspec decides.
    (root / ".git" / "info").mkdir(parents=True)
    (root / ".git" / "info" / "exclude").write_text("local-only.py\n")
    (root / "local-only.py").write_text("z = 3\n")
    assert project_files(root) == EXPECTED
