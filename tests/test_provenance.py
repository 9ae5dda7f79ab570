"""Provenance per execution: provenance.json (and code.diff) beside execution.json, and ``show ID --env``."""

from __future__ import annotations

import json
import platform
import subprocess
import sys
import types
from importlib import metadata
from pathlib import Path

import pytest

import machinable as ml
from machinable.cli.main import main
from machinable.execution import provenance
from machinable.plugins import create_plugin_manager
from machinable.storage import ExecutionWriter, open_storage

FIT = """\
import machinable as ml


class Fit(ml.Component):
    def on_execute(self):
        self.record["loss"] = self.config.lr
        self.record.save()
"""
GIT = ["git", "-c", "user.name=me", "-c", "user.email=me@example.com", "-c", "commit.gpgsign=false"]


def _git(root: Path, *args: str) -> str:
    return subprocess.run([*GIT, *args], cwd=root, check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A project folder that is no git work tree (git looks no further up than tmp_path)."""
    root = tmp_path / "project"
    root.mkdir()
    (root / "machinable.yaml").write_text("components:\n  - fit:\n      lr: 0.1\n")
    (root / "fit.py").write_text(FIT)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    monkeypatch.delenv("MACHINABLE_MODE", raising=False)
    monkeypatch.chdir(root)
    return root


@pytest.fixture
def repository(project):
    """The project as a git work tree with one commit."""
    _git(project, "init", "-q")
    _git(project, "add", ".")
    _git(project, "commit", "-q", "-m", "the fit")
    return project


def _run(root: Path, **kwargs) -> ml.StoredExecution:
    results = root.parent / "results"
    execution = ml.execute("fit", storage=str(results), project=root, echo=False, **kwargs)
    assert execution.trials[0].status == "passed"
    return ml.Storage(str(results)).get(execution.id)


def test_a_dirty_work_tree_stores_its_commit_branch_and_diff(repository):
    with (repository / "fit.py").open("a") as f:
        f.write("# tried something\n")
    (repository / "notes.txt").write_text("untracked\n")
    stored = _run(repository)
    git = stored.provenance["git"]
    assert git["repository"] is True
    assert git["commit"] == _git(repository, "rev-parse", "HEAD")
    assert git["branch"] == _git(repository, "symbolic-ref", "--short", "HEAD")
    assert git["dirty"] is True and git["diff"] == "code.diff"
    assert "notes.txt" in git["untracked"]
    diff = stored.code_diff
    assert diff is not None and b"+# tried something" in diff and b"fit.py" in diff
    assert (Path(stored.path) / "provenance.json").is_file()


def test_a_clean_work_tree_has_no_code_diff(repository):
    stored = _run(repository)
    git = stored.provenance["git"]
    assert git["dirty"] is False and "diff" not in git
    assert stored.code_diff is None
    assert not (Path(stored.path) / "code.diff").exists()


def test_the_remote_is_stored_without_credentials(repository):
    _git(repository, "remote", "add", "origin", "https://me:s3cret@example.com/me/project.git")
    stored = _run(repository)
    assert stored.provenance["git"]["remote"] == "https://example.com/me/project.git"
    assert "s3cret" not in (Path(stored.path) / "provenance.json").read_text()


def test_outside_a_git_work_tree_that_is_recorded_and_the_run_passes(project):
    found = _run(project).provenance
    assert found["git"] == {"repository": False}
    assert found["python"] == {
        "version": platform.python_version(),
        "implementation": platform.python_implementation(),
        "executable": sys.executable,
    }
    assert found["packages"]["machinable"] == metadata.version("machinable")
    assert found["packages"]["pytest"] == pytest.__version__
    assert found["platform"]["cpu_count"] >= 1 and found["host"] and "seconds" in found


def test_a_part_that_fails_is_recorded_and_the_run_still_passes(repository, monkeypatch):
    def broken(root):
        raise RuntimeError("the disk is gone\nsecond line")

    monkeypatch.setattr(provenance, "_git", broken)
    found = _run(repository).provenance
    assert found["git"] == {"error": "RuntimeError: the disk is gone"}
    assert found["python"]["version"] == platform.python_version()  # the other parts are there


def test_without_git_on_the_path_the_git_part_is_an_error(repository, monkeypatch):
    monkeypatch.setenv("PATH", str(repository / "nothing-here"))
    found = _run(repository).provenance
    assert set(found["git"]) == {"error"} and "git" in found["git"]["error"]


def test_a_provenance_that_cannot_be_written_is_a_warning(project, monkeypatch):
    def full(self, name, data):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(ExecutionWriter, "create_file", full)
    with pytest.warns(UserWarning, match="provenance of execution .* not stored: OSError"):
        stored = _run(project)
    assert stored.provenance == {}


def test_slurm_variables_are_recorded_when_set(monkeypatch):
    monkeypatch.setenv("SLURM_JOB_ID", "4242")
    monkeypatch.setenv("SLURM_JOB_NODELIST", "gpu[017-018]")
    monkeypatch.setenv("SLURM_JOB_PARTITION", "gpu")
    for name in ("SLURM_ARRAY_JOB_ID", "SLURM_ARRAY_TASK_ID"):
        monkeypatch.delenv(name, raising=False)
    found, _ = provenance.collect(None)
    assert found["slurm"] == {
        "SLURM_JOB_ID": "4242",
        "SLURM_JOB_NODELIST": "gpu[017-018]",
        "SLURM_JOB_PARTITION": "gpu",
    }
    for name in ("SLURM_JOB_ID", "SLURM_JOB_NODELIST", "SLURM_JOB_PARTITION"):
        monkeypatch.delenv(name)
    assert provenance.collect(None)[0]["slurm"] == {}


def _fake_torch(initialized: bool) -> types.ModuleType:
    def name(index: int) -> str:
        assert initialized, "asking for a device initializes CUDA"
        return f"Fake GPU {index}"

    torch = types.ModuleType("torch")
    torch.__version__ = "9.9.0"
    torch.version = types.SimpleNamespace(cuda="12.4")
    torch.cuda = types.SimpleNamespace(
        is_initialized=lambda: initialized, device_count=lambda: 2, get_device_name=name
    )
    return torch


def test_torch_is_described_only_when_it_was_imported(monkeypatch):
    monkeypatch.delitem(sys.modules, "torch", raising=False)
    assert "torch" not in provenance.collect(None)[0]["gpus"]
    assert "torch" not in sys.modules  # never imported to be described
    monkeypatch.setitem(sys.modules, "torch", _fake_torch(initialized=True))
    assert provenance.collect(None)[0]["gpus"]["torch"] == {
        "version": "9.9.0",
        "cuda": "12.4",
        "devices": ["Fake GPU 0", "Fake GPU 1"],
    }
    monkeypatch.setitem(sys.modules, "torch", _fake_torch(initialized=False))
    assert provenance.collect(None)[0]["gpus"]["torch"] == {"version": "9.9.0", "cuda": "12.4"}


def test_what_collect_returns_may_be_changed_without_changing_the_cache():
    first, _ = provenance.collect(None)
    first["packages"].clear()
    first["python"]["version"] = "0"
    second, _ = provenance.collect(None)
    assert second["packages"] and second["python"]["version"] == platform.python_version()


def test_each_resume_adds_its_own_provenance_and_keeps_the_runs():
    writer = ExecutionWriter(open_storage("memory://provenance-resumes"), "OY1p1o")
    for resume in (False, True, True):
        provenance.write(writer, {"git": {"commit": "abc"}, "resume": resume}, b"diff\n", resume=resume)
    stored = ml.Storage("memory://provenance-resumes").get("OY1p1o")
    assert stored.provenance == {"git": {"commit": "abc", "diff": "code.diff"}, "resume": False}
    assert stored.code_diff == b"diff\n"
    io = stored.storage.location.backend()
    second = json.loads(io.read_bytes(io.join(stored.path, "provenance-resume-2.json")))
    assert second["git"]["diff"] == "code-resume-2.diff"
    assert io.read_bytes(io.join(stored.path, "code-resume-2.diff")) == b"diff\n"


def test_a_resume_stores_its_provenance_beside_the_runs(repository, monkeypatch):
    failing = FIT.replace(
        "    def on_execute(self):\n",
        "    def on_execute(self):\n        assert not os.environ.get('FIT_FAILS')\n",
    )
    (repository / "fit.py").write_text("import os\n" + failing)
    monkeypatch.setenv("FIT_FAILS", "1")
    results = repository.parent / "results"
    execution = ml.execute("fit", storage=str(results), project=repository, echo=False)
    assert execution.trials[0].status == "failed"
    monkeypatch.delenv("FIT_FAILS")
    resumed = ml.resume(execution.id, storage=str(results), project=repository)
    assert [t.status for t in resumed.trials] == ["passed"]
    folder = results / execution.id
    run = json.loads((folder / "provenance.json").read_text())
    again = json.loads((folder / "provenance-resume-1.json").read_text())
    assert run["collected"] < again["collected"]
    assert run["git"]["diff"] == "code.diff" and again["git"]["diff"] == "code-resume-1.diff"
    assert (folder / "code-resume-1.diff").read_bytes() == (folder / "code.diff").read_bytes()


def test_reproduce_stores_no_provenance(project):
    stored = _run(project)
    before = sorted(p.name for p in Path(stored.path).iterdir())
    assert ml.reproduce(stored.id, storage=str(project.parent / "results"), project=project).ok
    assert sorted(p.name for p in Path(stored.path).iterdir()) == before


def test_without_the_plugin_nothing_is_stored(project):
    stored = _run(project, plugins=create_plugin_manager(disabled=["provenance"]))
    assert stored.provenance == {} and stored.code_diff is None


def _show(capsys, *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(["show", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_show_env_prints_the_sections(repository, capsys, monkeypatch):
    monkeypatch.setenv("SLURM_JOB_ID", "4242")
    with (repository / "fit.py").open("a") as f:
        f.write("# tried something\n")
    stored = _run(repository)
    code, out, _ = _show(capsys, stored.id, "--storage", str(stored.storage.url), "--env")
    assert code == 0
    commit = _git(repository, "rev-parse", "HEAD")
    assert out.splitlines()[0].startswith(f"execution {stored.id}: provenance collected ")
    labels = [line.split()[0] for line in out.splitlines()[1:] if line[:1] != " "]
    assert labels == ["code", "python", "platform", "gpus", "slurm", "host", "packages"]
    assert f"commit {commit} on " in out
    assert "dirty: uncommitted changes to 1 file in code.diff" in out
    assert f"python    {platform.python_version()} ({platform.python_implementation()})" in out
    assert "slurm     job 4242" in out
    assert "pytest==" in out


def test_show_env_json_prints_provenance_json(repository, capsys):
    stored = _run(repository)
    code, out, _ = _show(capsys, stored.id, "--storage", str(stored.storage.url), "--env", "--json")
    assert code == 0
    shown = json.loads(out)
    assert shown == stored.provenance
    assert shown["git"]["commit"] == _git(repository, "rev-parse", "HEAD")
    assert shown["python"]["version"] == platform.python_version()


def test_show_env_of_an_execution_without_provenance_says_so(project, capsys):
    stored = _run(project, plugins=create_plugin_manager(disabled=["provenance"]))
    code, out, _ = _show(capsys, stored.id, "--storage", str(stored.storage.url), "--env")
    assert code == 0 and out.startswith(f"execution {stored.id} has no provenance")


def test_show_env_shows_a_failed_part_and_needs_one_id(project, capsys, monkeypatch):
    monkeypatch.setattr(provenance, "_git", lambda root: 1 / 0)
    stored = _run(project)
    code, out, _ = _show(capsys, stored.id, "--storage", str(stored.storage.url), "--env")
    assert code == 0 and "code      not collected: ZeroDivisionError: division by zero" in out
    code, _, err = _show(capsys, "--storage", str(stored.storage.url), "--env")
    assert code == 4 and "--env shows the provenance of one execution" in err
