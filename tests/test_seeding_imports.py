"""numpy and torch are seeded however late a trial imports them, and torch's deterministic mode is an opt-in that
ends with its trial (machinable/components/seeding.py).

The trials run in fresh interpreters, where neither library is imported before the trial imports it (once with
it imported first, for the reference), on the local engine and on a reused ``process:1`` worker.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cli_helpers import clean_env, run_subprocess

import machinable as ml
from machinable.components import seeding
from machinable.config.project import Project
from machinable.errors import ConfigError, UsageError

HAS_TORCH = importlib.util.find_spec("torch") is not None
needs_torch = pytest.mark.skipif(not HAS_TORCH, reason="torch is not installed")

YAML = """\
components:
  - early:
  - late:
  - fn:
  - torchy:
  - det:
      torch: false
  - plain:
      torch: false
  - free:
      torch: false
"""
FILES = {
    "early.py": """\
        import machinable as ml

        class Early(ml.Component):
            def on_create(self):
                import numpy
                self.value = float(numpy.random.random())

            def on_execute(self):
                self.record["value"] = self.value
        """,
    "late.py": """\
        import machinable as ml

        class Late(ml.Component):
            def on_execute(self):
                import numpy
                self.record["value"] = float(numpy.random.random())
        """,
    "fn.py": """\
        import machinable as ml

        @ml.component
        def fn(record):
            import numpy
            record["value"] = float(numpy.random.random())
        """,
    "torchy.py": """\
        import machinable as ml

        class Torchy(ml.Component):
            def on_create(self):
                import torch
                self.value = torch.rand(3).tolist()

            def on_execute(self):
                self.record["value"] = self.value
        """,
    # What a trial sees of the deterministic mode; it imports torch only when its configuration says so.
    "flags.py": """\
        import os
        import sys

        def observed(record, use_torch):
            record["cublas"] = os.environ.get("CUBLAS_WORKSPACE_CONFIG")
            if use_torch:
                import torch
                record["algorithms"] = torch.are_deterministic_algorithms_enabled()
                record["warn_only"] = torch.is_deterministic_algorithms_warn_only_enabled()
                record["cudnn"] = [torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark]
            record["torch_imported"] = "torch" in sys.modules
        """,
    "det.py": """\
        import machinable as ml
        from flags import observed

        class Det(ml.Component):
            trial_deterministic = True

            def on_execute(self):
                observed(self.record, self.config.torch)
        """,
    "plain.py": """\
        import machinable as ml
        from flags import observed

        class Plain(ml.Component):
            trial_deterministic = False  # also when the project's settings say otherwise

            def on_execute(self):
                observed(self.record, self.config.torch)
        """,
    "free.py": """\
        import machinable as ml
        from flags import observed

        class Free(ml.Component):  # the project's settings decide
            def on_execute(self):
                observed(self.record, self.config.torch)
        """,
}

# Runs a task in a fresh interpreter and prints what came out as JSON; PRE runs before machinable is imported.
SCRIPT = """\
import json, os, sys
{pre}
import machinable as ml
before = sorted(name for name in ("numpy", "torch") if name in sys.modules)
task = ml.Task()
for name, config in {entries!r}:
    task.component(name, config)
execution = ml.execute(task.repeat(2), seed=7, engine={engine!r}, echo=False)
stored = {{trial.uid: trial.info for trial in execution.stored().trials}}
after = {{"cublas": os.environ.get("CUBLAS_WORKSPACE_CONFIG")}}
if "torch" in sys.modules:
    import torch
    after["algorithms"] = torch.are_deterministic_algorithms_enabled()
    after["cudnn"] = [torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark]
print(json.dumps({{
    "before": before,
    "trials": [
        {{"seed": t.seed, "status": t.status, "row": t.records[0] if t.records else None,
          "deterministic": stored[t.uid].get("deterministic")}}
        for t in execution.trials
    ],
    "hooks": [type(finder).__name__ for finder in sys.meta_path],
    "after": after,
}}))
"""


@pytest.fixture
def project(make_project) -> Path:
    return make_project(YAML, FILES)


def run(root: Path, entries: list[tuple[str, dict]], engine: str = "local", pre: str = "") -> dict:
    """``ml.execute`` of ``entries`` (component, config), each repeated twice, in a new interpreter."""
    script = SCRIPT.format(pre=pre, entries=entries, engine=engine)
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=root, capture_output=True, text=True, env=clean_env(), timeout=120
    )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert all(t["status"] == "passed" for t in out["trials"]), out
    assert "_ImportHook" not in out["hooks"]  # gone once the trials ended
    return out


def values(out: dict) -> list:
    return [t["row"]["value"] for t in out["trials"]]


def numpy_draw(seed: int) -> float:
    import numpy

    return float(numpy.random.RandomState(seed % 2**32).random_sample())


@pytest.mark.parametrize("component", ["early", "late", "fn"])
@pytest.mark.parametrize("engine", ["local", "process:1"])
def test_numpy_first_imported_in_the_trial_is_seeded(project: Path, component: str, engine: str) -> None:
    fresh = run(project, [(component, {})], engine)
    assert fresh["before"] == []  # nothing imported numpy before the trial did
    reference = run(project, [(component, {})], engine, pre="import numpy")
    assert reference["before"] == ["numpy"]
    assert values(fresh) == values(reference) == [numpy_draw(t["seed"]) for t in fresh["trials"]]
    assert len(set(values(fresh))) == 2  # each trial with its own seed


def test_the_command_seeds_numpy_imported_in_the_trial(project: Path, tmp_path: Path) -> None:
    storage = tmp_path / "results"
    done = run_subprocess(project, "early", "--seed", "7", "--storage", str(storage))
    assert done.ret == 0, done.err
    [trial] = ml.Storage(str(storage)).executions()[0].trials
    assert trial.records[0]["value"] == numpy_draw(trial.seed)


@needs_torch
@pytest.mark.parametrize("engine", ["local", "process:1"])
def test_torch_first_imported_in_the_trial_is_seeded(project: Path, engine: str) -> None:
    fresh = run(project, [("torchy", {})], engine)
    assert "torch" not in fresh["before"]
    reference = run(project, [("torchy", {})], engine, pre="import torch")
    assert values(fresh) == values(reference)
    assert values(fresh)[0] != values(fresh)[1]


def test_a_library_imported_in_the_scope_is_seeded_and_the_hook_goes(tmp_path, monkeypatch) -> None:
    (tmp_path / "seeded_library.py").write_text("seeds = []\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(seeding.LIBRARIES, "seeded_library", lambda module, seed: module.seeds.append(seed))
    with pytest.raises(ValueError, match="the trial failed"), seeding.TrialSeeding():
        seeding.seed_libraries(12)
        assert seeding._HOOK in sys.meta_path
        import seeded_library

        assert seeded_library.seeds == [12]
        assert type(seeded_library.__spec__.loader).__name__ == "SourceFileLoader"  # the real one, put back
        raise ValueError("the trial failed")
    assert seeding._HOOK not in sys.meta_path
    seeding.seed_libraries(13)  # outside a trial: only what is imported
    assert seeded_library.seeds == [12, 13]


def test_the_cublas_workspace_goes_with_the_trial_and_a_users_value_stays(monkeypatch) -> None:
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    with pytest.raises(ValueError, match="the trial failed"), seeding.TrialSeeding("warn"):
        assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
        raise ValueError("the trial failed")
    assert "CUBLAS_WORKSPACE_CONFIG" not in os.environ
    monkeypatch.setenv("CUBLAS_WORKSPACE_CONFIG", ":16:8")
    with seeding.TrialSeeding(True):
        assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":16:8"
    assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":16:8"


def test_deterministic_mode_is_recorded_and_restored_without_importing_torch(project: Path) -> None:
    out = run(project, [("det", {}), ("plain", {})], "process:1")
    det, _, plain, _ = out["trials"]
    assert det["row"]["cublas"] == ":4096:8" and det["deterministic"] is True
    assert plain["row"]["cublas"] is None and plain["deterministic"] is None  # the reused worker's next trial
    assert not det["row"]["torch_imported"]  # deterministic, and still no torch where it is not used
    assert out["after"]["cublas"] is None


@needs_torch
@pytest.mark.parametrize("engine", ["local", "process:1"])
@pytest.mark.parametrize("pre", ["", "import torch"])
def test_deterministic_flags_are_set_and_restored(project: Path, engine: str, pre: str) -> None:
    out = run(project, [("det", {"torch": True}), ("plain", {"torch": True})], engine, pre)
    det, _, plain, _ = out["trials"]
    assert (det["row"]["algorithms"], det["row"]["warn_only"], det["row"]["cudnn"]) == (
        True,
        False,
        [True, False],
    )
    assert (plain["row"]["algorithms"], plain["row"]["cudnn"]) == (False, [False, False])
    if engine == "local":
        assert out["after"] == {"cublas": None, "algorithms": False, "cudnn": [False, False]}


@needs_torch
def test_settings_make_every_trial_deterministic_unless_the_component_says(project: Path) -> None:
    yaml = (project / "machinable.yaml").read_text()
    (project / "machinable.yaml").write_text("settings:\n  deterministic: warn\n" + yaml)
    out = run(project, [("free", {"torch": True}), ("det", {"torch": True}), ("plain", {"torch": True})])
    assert [t["deterministic"] for t in out["trials"]] == ["warn", "warn", True, True, None, None]
    free, det, plain = (out["trials"][i]["row"] for i in (0, 2, 4))
    assert (free["algorithms"], free["warn_only"]) == (True, True)
    assert (det["algorithms"], det["warn_only"]) == (True, False)  # the component's True wins over 'warn'
    assert plain["algorithms"] is False


def test_an_unknown_or_wrong_setting_is_an_error(project: Path) -> None:
    (project / "machinable.yaml").write_text("settings:\n  determinstic: true\ncomponents:\n")
    with pytest.raises(
        ConfigError, match=r"unknown setting 'determinstic' \(did you mean 'deterministic'\?\)"
    ):
        Project(project)
    (project / "machinable.yaml").write_text("settings:\n  deterministic: always\ncomponents:\n")
    with pytest.raises(ConfigError, match="settings.deterministic is true .* not 'always'"):
        Project(project)


def test_a_wrong_component_attribute_is_an_error(project: Path) -> None:
    class Wrong(ml.Component):
        trial_deterministic = "yes"

    with pytest.raises(
        UsageError, match="trial_deterministic of component 'Wrong' must be True, False, 'warn'"
    ):
        ml.execute(Wrong, project=project, echo=False)
